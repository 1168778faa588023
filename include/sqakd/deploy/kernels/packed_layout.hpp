// sqakd/deploy/kernels/packed_layout.hpp - the weight layout of the fast integer GEMM kernels and
// the instruction family the compile-time bit widths allow.
//
// Kernel choice (the idea of gemmlowp's bit_depth.h: the operand ranges pick the instructions):
//   bytes (k group 4): weight codes as the signed operand of vpmaddubsw / vpdpbusd, activation
//     codes as the unsigned one. Needs weight codes <= 127 (wbits <= 7) and, for vpmaddubsw's
//     saturating int16 pair sums, 2 * (2^abits - 1) * (2^wbits - 1) <= 32767 (W4A8: 7650, W7A8:
//     64770 -> not allowed). vpdpbusd adds its four products into int32 without saturation.
//   words (k group 2): both operands widened to int16 (pmovzx at packing) and multiplied with
//     vpmaddwd / vpdpwssd, pairs summed in int32: 2 * 255 * 255 = 130050, exact. Every other
//     pair, 8 x 8 bits included, goes here on tiers whose byte instruction is vpmaddubsw: it is
//     never used where it could saturate.
//   bytes on int32-quad tiers (AVX-512 VNNI vpdpbusd, AMX tdpbusd): these add each group of
//     four u8 x s8 products straight into int32 (no int16 intermediate, no saturation), so every
//     pair up to 8 x 8 bits runs as bytes there. 8-bit weight codes k in [0, 255] do not fit
//     the signed operand: they are stored biased, as k - 128 in [-128, 127] (shape.bias = 128),
//     and sum k*a = sum (k - 128)*a + 128 * sum a goes into the correction term (gemm_args.hpp).
//     |sum (k - 128) a| <= 128 * (2^abits - 1) * K < 2^31 for K <= max_reduction(8, abits).
//
// Weights (N output channels x K) are packed once, at model compile time, in panels of 16
// output channels (one zmm, two ymm or four xmm of int32 accumulators):
//   element (n, k) -> panel n / 16, k group k / G, lane n % 16, position k % G
//   offset = ((panel * groups_k + k / G) * 16 + n % 16) * G + k % G   (elements of 1 or 2 bytes)
// K is padded with zero codes to a multiple of G and N to a multiple of 16 (padding outputs are
// computed and dropped). A zero weight code adds k * a = 0 to the dot product; the correction
// term of the weight form uses the activations' sum over the real K only.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sqakd/deploy/packing.hpp"
#include "sqakd/deploy/status.hpp"

namespace sqakd::deploy::kernels {

inline constexpr std::size_t panel_width = 16;

enum class operand_kind { bytes, words };

/// The instruction family for codes of wbits x abits bits (see the header comment).
/// int32_quads: the tier's byte instruction sums four u8 x s8 products in int32 (vpdpbusd,
/// tdpbusd) rather than saturating int16 pairs (vpmaddubsw).
constexpr operand_kind kind_for(int wbits, int abits, bool int32_quads = false) noexcept {
    if (int32_quads) return operand_kind::bytes;
    const long pair = 2L * ((1L << abits) - 1) * ((1L << wbits) - 1);
    return wbits <= 7 && pair <= 32767 ? operand_kind::bytes : operand_kind::words;
}
/// What is subtracted from a weight code before it is stored: 128 for 8-bit codes as bytes
/// (they only fit the signed operand biased), else 0.
constexpr std::int32_t weight_bias(operand_kind kind, int wbits) noexcept {
    return kind == operand_kind::bytes && wbits == 8 ? 128 : 0;
}
constexpr std::size_t k_group(operand_kind k) noexcept { return k == operand_kind::bytes ? 4 : 2; }
constexpr std::size_t element_bytes(operand_kind k) noexcept { return k == operand_kind::bytes ? 1 : 2; }

/// The geometry of one packed weight matrix.
struct packed_shape {
    operand_kind kind = operand_kind::bytes;
    std::size_t n = 0, k = 0;  ///< real output channels and reduction length
    std::int32_t bias = 0;     ///< stored weight = code - bias (weight_bias)
    std::size_t k_align = 0;   ///< K is padded to a multiple of this (0: of the k group); AMX: 64

    constexpr std::size_t group() const noexcept { return k_group(kind); }
    constexpr std::size_t k_padded() const noexcept {
        const std::size_t q = k_align > group() ? k_align : group();
        return (k + q - 1) / q * q;
    }
    constexpr std::size_t panels() const noexcept { return (n + panel_width - 1) / panel_width; }
    constexpr std::size_t k_groups() const noexcept { return k_padded() / group(); }
    /// Bytes of the packed weights.
    constexpr std::size_t bytes() const noexcept { return panels() * panel_width * k_padded() * element_bytes(kind); }
    /// Bytes of one panel.
    constexpr std::size_t panel_bytes() const noexcept { return panel_width * k_padded() * element_bytes(kind); }
};

/// Packs W (n rows of k unsigned codes, row r at w + r*ldw) into `out` (shape.bytes() bytes,
/// aligned as the caller wishes; kernels load unaligned). Codes must be < 2^wbits; s.bias must
/// be weight_bias(s.kind, wbits).
inline status pack_weights(int wbits, const packed_shape& s, const std::uint8_t* w, std::size_t ldw,
                           void* out) noexcept {
    if (!valid_bits(wbits)) return status::bad_bit_width;
    if (s.n == 0 || s.k == 0 || ldw < s.k) return status::bad_shape;
    if (s.bias != weight_bias(s.kind, wbits)) return status::bad_bit_width;
    if (s.k_align % s.group()) return status::bad_shape;
    const std::size_t G = s.group(), groups = s.k_groups();
    auto* o8 = static_cast<std::uint8_t*>(out);
    auto* o16 = static_cast<std::int16_t*>(out);
    for (std::size_t p = 0; p < s.panels(); ++p)
        for (std::size_t kg = 0; kg < groups; ++kg)
            for (std::size_t lane = 0; lane < panel_width; ++lane)
                for (std::size_t j = 0; j < G; ++j) {
                    const std::size_t n = p * panel_width + lane, k = kg * G + j;
                    const std::size_t at = ((p * groups + kg) * panel_width + lane) * G + j;
                    unsigned c = 0;
                    if (n < s.n && k < s.k) {
                        c = w[n * ldw + k];
                        if (c >> wbits) return status::code_out_of_range;
                    }
                    if (s.kind == operand_kind::bytes)
                        o8[at] = static_cast<std::uint8_t>(static_cast<std::int8_t>(static_cast<int>(c) - s.bias));
                    else
                        o16[at] = static_cast<std::int16_t>(c);
                }
    return status::ok;
}

}  // namespace sqakd::deploy::kernels

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
//     pair, 8 x 8 bits included, goes here: vpmaddubsw is never used where it could saturate.
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
constexpr operand_kind kind_for(int wbits, int abits) noexcept {
    const long pair = 2L * ((1L << abits) - 1) * ((1L << wbits) - 1);
    return wbits <= 7 && pair <= 32767 ? operand_kind::bytes : operand_kind::words;
}
constexpr std::size_t k_group(operand_kind k) noexcept { return k == operand_kind::bytes ? 4 : 2; }
constexpr std::size_t element_bytes(operand_kind k) noexcept { return k == operand_kind::bytes ? 1 : 2; }

/// The geometry of one packed weight matrix.
struct packed_shape {
    operand_kind kind = operand_kind::bytes;
    std::size_t n = 0, k = 0;  ///< real output channels and reduction length

    constexpr std::size_t group() const noexcept { return k_group(kind); }
    constexpr std::size_t k_padded() const noexcept { return (k + group() - 1) / group() * group(); }
    constexpr std::size_t panels() const noexcept { return (n + panel_width - 1) / panel_width; }
    constexpr std::size_t k_groups() const noexcept { return k_padded() / group(); }
    /// Bytes of the packed weights.
    constexpr std::size_t bytes() const noexcept { return panels() * panel_width * k_padded() * element_bytes(kind); }
    /// Bytes of one panel.
    constexpr std::size_t panel_bytes() const noexcept { return panel_width * k_padded() * element_bytes(kind); }
};

/// Packs W (n rows of k unsigned codes, row r at w + r*ldw) into `out` (shape.bytes() bytes,
/// aligned as the caller wishes; kernels load unaligned). Codes must be < 2^wbits.
inline status pack_weights(int wbits, const packed_shape& s, const std::uint8_t* w, std::size_t ldw,
                           void* out) noexcept {
    if (!valid_bits(wbits)) return status::bad_bit_width;
    if (s.n == 0 || s.k == 0 || ldw < s.k) return status::bad_shape;
    if (s.kind == operand_kind::bytes && wbits > 7) return status::bad_bit_width;
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
                        o8[at] = static_cast<std::uint8_t>(c);
                    else
                        o16[at] = static_cast<std::int16_t>(c);
                }
    return status::ok;
}

}  // namespace sqakd::deploy::kernels

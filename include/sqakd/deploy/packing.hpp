// sqakd/deploy/packing.hpp - integer codes packed at their bit width, for storage.
//
// Layout: a little-endian bit stream; code i occupies bits [i*b, (i+1)*b) of the stream, bit j
// of the stream being bit (j % 8) of byte j / 8. At b = 1, 2, 4 and 8 no code straddles a byte
// (the model-size formula ceil(n*b/8) holds for every b). Unused high bits of the last byte are
// zero, so a packed buffer has one representation and can be checksummed.
//
//   std::vector<std::uint8_t> packed(deploy::packed_bytes(4, n));
//   deploy::pack_codes(4, codes.data(), n, packed.data());   // status::ok or code_out_of_range
//   deploy::unpack_codes(4, packed.data(), n, codes2.data());
#pragma once

#include <cstddef>
#include <cstdint>

#include "sqakd/deploy/status.hpp"

namespace sqakd::deploy {

/// True for the bit widths the integer path takes (1..8).
constexpr bool valid_bits(int bits) noexcept { return bits >= 1 && bits <= 8; }

/// Bytes that n codes of `bits` bits occupy: ceil(n * bits / 8).
constexpr std::size_t packed_bytes(int bits, std::size_t n) noexcept {
    return (n * static_cast<std::size_t>(bits) + 7) / 8;
}

/// Packs n codes (one per byte, each < 2^bits) into packed_bytes(bits, n) bytes at `out`.
/// Returns bad_bit_width or code_out_of_range (out is then unspecified) or ok.
inline status pack_codes(int bits, const std::uint8_t* codes, std::size_t n, std::uint8_t* out) noexcept {
    if (!valid_bits(bits)) return status::bad_bit_width;
    const unsigned limit = 1u << bits;
    const std::size_t nb = packed_bytes(bits, n);
    for (std::size_t i = 0; i < nb; ++i) out[i] = 0;
    std::size_t bit = 0;
    for (std::size_t i = 0; i < n; ++i, bit += static_cast<std::size_t>(bits)) {
        const unsigned c = codes[i];
        if (c >= limit) return status::code_out_of_range;
        // a code spans at most two bytes (bits <= 8)
        const std::size_t byte = bit / 8;
        const unsigned shift = static_cast<unsigned>(bit % 8);
        const unsigned v = c << shift;
        out[byte] = static_cast<std::uint8_t>(out[byte] | (v & 0xffu));
        if (shift + static_cast<unsigned>(bits) > 8) out[byte + 1] = static_cast<std::uint8_t>(out[byte + 1] | (v >> 8));
    }
    return status::ok;
}

/// Unpacks n codes of `bits` bits from `packed` into one byte each at `out`.
inline status unpack_codes(int bits, const std::uint8_t* packed, std::size_t n, std::uint8_t* out) noexcept {
    if (!valid_bits(bits)) return status::bad_bit_width;
    const unsigned mask = (1u << bits) - 1u;
    std::size_t bit = 0;
    for (std::size_t i = 0; i < n; ++i, bit += static_cast<std::size_t>(bits)) {
        const std::size_t byte = bit / 8;
        const unsigned shift = static_cast<unsigned>(bit % 8);
        unsigned v = static_cast<unsigned>(packed[byte]) >> shift;
        if (shift + static_cast<unsigned>(bits) > 8) v |= static_cast<unsigned>(packed[byte + 1]) << (8 - shift);
        out[i] = static_cast<std::uint8_t>(v & mask);
    }
    return status::ok;
}

}  // namespace sqakd::deploy

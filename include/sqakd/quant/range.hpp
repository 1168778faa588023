// sqakd/quant/range.hpp - integer code ranges of b-bit quantizers (SQAKD.md §3).
//
//   quant::int_range<Bits, Signed>   Qn, Qp, levels for b = 1..8
//
// For b bits there are L = 2^b codes q in [Qn, Qp], Qp - Qn = L - 1. Unsigned: [0, 2^b - 1];
// signed: [-2^(b-1), 2^(b-1) - 1]. (LSQ's 1-bit weights are the exception, codes {-1, +1};
// quant::lsq states it where it uses it.)
#pragma once

namespace sqakd::quant {

template <int Bits>
struct bits_check {
    static_assert(Bits >= 1 && Bits <= 8,
                  "quant: bit widths from 1 to 8 are supported; use the FP layers for 32-bit (no quantizer).");
    static constexpr int value = Bits;
};

template <int Bits, bool Signed>
struct int_range {
    static constexpr int bits = bits_check<Bits>::value;
    static constexpr int levels = 1 << Bits;
    static constexpr int qn = Signed ? -(1 << (Bits - 1)) : 0;
    static constexpr int qp = Signed ? (1 << (Bits - 1)) - 1 : levels - 1;
    static_assert(qp - qn == levels - 1, "int_range: Qp - Qn must be L - 1.");
};

/// What a quantizer quantizes: the weights of a layer or the activations entering it.
enum class tensor_role { weight, activation };

}  // namespace sqakd::quant

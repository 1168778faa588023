// sqakd/deploy/weight_form.hpp - how a stored weight code becomes the integer of the dot product.
//
// Every uniform quantizer of the trainer stores weights as unsigned codes k in [0, 2^b - 1]
// (packed at b bits) and multiplies with activations that are unsigned codes a (zero point 0:
// code 0 is the value 0, so zero padding is code 0). The integer weight is w = mul*k - offset:
//
//   interval, dorefa (value (2k - (L-1))/(L-1), no zero level):  mul 2, offset L - 1
//   lsq, b >= 2 (signed q in [-2^(b-1), 2^(b-1) - 1], k = q + 2^(b-1)): mul 1, offset 2^(b-1)
//   lsq, b = 1  (q in {-1, +1}, k = (q + 1)/2):                       mul 2, offset 1
//
// so sum_i w_i a_i = mul * sum_i k_i a_i - offset * sum_i a_i: every kernel computes the
// unsigned x unsigned dot product and the activations' sum (one per output pixel), and the
// correction is applied once per output. At 8 bits the interval numerators reach +-255, outside
// int8: the unsigned form is what lets one kernel family serve every method.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sqakd::deploy {

struct weight_form {
    std::int32_t mul = 1;     ///< w = mul * k - offset
    std::int32_t offset = 0;

    /// interval and dorefa weights (and lsq at 1 bit, which is the same form at L = 2).
    static constexpr weight_form odd_symmetric(int bits) noexcept { return {2, (1 << bits) - 1}; }
    /// lsq weights at b >= 2: two's-complement codes stored with a bias of 2^(b-1).
    static constexpr weight_form signed_biased(int bits) noexcept {
        return bits == 1 ? odd_symmetric(1) : weight_form{1, 1 << (bits - 1)};
    }
    /// Plain unsigned weights (w = k).
    static constexpr weight_form unsigned_codes() noexcept { return {1, 0}; }

    constexpr std::int32_t value(std::uint32_t k) const noexcept { return mul * static_cast<std::int32_t>(k) - offset; }
};

/// The longest reduction K for which mul * sum(k a) and offset * sum(a) both stay below
/// 2^31 - 1 (so does their difference; INT32_MIN and INT32_MAX are then never outputs, which
/// the threshold requantization uses as "always" and "never"), for codes of wbits and abits bits:
///   K <= (2^31 - 2) / (mul * (2^wbits - 1) * (2^abits - 1))  and  K <= (2^31 - 2) / (offset * (2^abits - 1)).
/// 8 x 8 bits, odd_symmetric: 16512, far above a 3x3x512 convolution's 4608.
constexpr std::size_t max_reduction(int wbits, int abits, weight_form f) noexcept {
    const std::int64_t top = 2147483646, amax = (std::int64_t{1} << abits) - 1;
    const std::int64_t per_dot = std::int64_t{f.mul > 0 ? f.mul : 1} * ((std::int64_t{1} << wbits) - 1) * amax;
    const std::int64_t per_sum = std::int64_t{f.offset > 0 ? f.offset : 1} * amax;
    const std::int64_t k = top / per_dot < top / per_sum ? top / per_dot : top / per_sum;
    return static_cast<std::size_t>(k);
}

}  // namespace sqakd::deploy

// sqakd/deploy/kernels/reference/gemm.hpp - the scalar reference of the integer dot products:
// the definition every fast kernel is tested against, bit-exactly, on the int32 accumulators.
//
//   C[m][n] = mul * sum_k A[m][k] * W[n][k] - offset * sum_k A[m][k]      (weight_form {mul, offset})
//
// A: activation codes, one unsigned code per byte, row m at A + m*lda; W: weight codes, row n
// (one output channel) at W + n*ldw; C: int32, row m at C + m*ldc. Codes must be < 2^abits and
// < 2^wbits (check_codes). Sums are formed in int64 and the result must fit int32, which holds
// for K <= max_reduction(wbits, abits, form): a longer K is refused with status::bad_shape.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sqakd/deploy/packing.hpp"
#include "sqakd/deploy/status.hpp"
#include "sqakd/deploy/weight_form.hpp"

namespace sqakd::deploy::reference {

/// ok when all n codes are < 2^bits.
inline status check_codes(int bits, const std::uint8_t* codes, std::size_t n) noexcept {
    if (!valid_bits(bits)) return status::bad_bit_width;
    for (std::size_t i = 0; i < n; ++i)
        if (codes[i] >> bits) return status::code_out_of_range;
    return status::ok;
}

/// sum_i a_i w_i of unsigned codes.
inline std::int64_t dot(const std::uint8_t* a, const std::uint8_t* w, std::size_t k) noexcept {
    std::int64_t s = 0;
    for (std::size_t i = 0; i < k; ++i) s += std::int64_t{a[i]} * std::int64_t{w[i]};
    return s;
}

/// sum_i a_i.
inline std::int64_t sum(const std::uint8_t* a, std::size_t k) noexcept {
    std::int64_t s = 0;
    for (std::size_t i = 0; i < k; ++i) s += a[i];
    return s;
}

/// The integer output of one (activation row, weight row) pair.
inline std::int32_t output(const std::uint8_t* a, const std::uint8_t* w, std::size_t k, weight_form f) noexcept {
    return static_cast<std::int32_t>(std::int64_t{f.mul} * dot(a, w, k) - std::int64_t{f.offset} * sum(a, k));
}

/// C = A (M x K) times W^T (W: N x K) in the weight form f; see the header comment.
inline status gemm(int wbits, int abits, std::size_t M, std::size_t N, std::size_t K, const std::uint8_t* A,
                   std::size_t lda, const std::uint8_t* W, std::size_t ldw, weight_form f, std::int32_t* C,
                   std::size_t ldc) noexcept {
    if (!valid_bits(wbits) || !valid_bits(abits)) return status::bad_bit_width;
    if (M == 0 || N == 0 || K == 0 || lda < K || ldw < K || ldc < N) return status::bad_shape;
    if (K > max_reduction(wbits, abits, f)) return status::bad_shape;
    for (std::size_t m = 0; m < M; ++m)
        for (std::size_t n = 0; n < N; ++n) C[m * ldc + n] = output(A + m * lda, W + n * ldw, K, f);
    return status::ok;
}

}  // namespace sqakd::deploy::reference

// sqakd/deploy/kernels/gemm_args.hpp - what every packed integer GEMM kernel takes.
//
//   C[r][n] = form.mul * sum_k A[r][k] * W[n][k] - form.offset * a_sum[r]      r < m, n < shape.n
//
// computed as mul * sum_k A * (W - bias) - (offset - mul * bias) * a_sum with the packed
// (biased) weights, the same integer.
//
// A: m rows of unsigned activation codes at a + r*lda, each row zero-padded to shape.k_padded()
// (lda >= k_padded); W: packed by pack_weights; a_sum[r]: the sum of row r's codes (over the real
// K; the padding is zero anyway), see row_sums(). The int32 accumulators are exact for
// K <= max_reduction(wbits, abits, form), which the callers check.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "sqakd/deploy/kernels/packed_layout.hpp"
#include "sqakd/deploy/weight_form.hpp"

namespace sqakd::deploy::kernels {

struct gemm_args {
    std::size_t m = 0;
    const std::uint8_t* a = nullptr;
    std::size_t lda = 0;
    const void* w = nullptr;
    packed_shape shape;
    const std::int32_t* a_sum = nullptr;
    weight_form form;
    std::int32_t* c = nullptr;
    std::size_t ldc = 0;
};

/// The sum of n codes, eight at a time in 64-bit words (SWAR): the even and odd bytes are added
/// into four 16-bit lanes, at most 2 * 255 per word, so the lanes are folded into the total every
/// 128 words (128 * 510 = 65280 < 65536).
inline std::int32_t code_sum(const std::uint8_t* a, std::size_t n) noexcept {
    constexpr std::uint64_t even = 0x00FF00FF00FF00FFull;
    const std::size_t words = n / 8;
    std::uint64_t total = 0;
    for (std::size_t w = 0; w < words;) {
        const std::size_t end = words - w < 128 ? words : w + 128;
        std::uint64_t lanes = 0;
        for (; w < end; ++w) {
            std::uint64_t v;
            std::memcpy(&v, a + w * 8, 8);
            lanes += (v & even) + ((v >> 8) & even);
        }
        total += (lanes & 0xFFFF) + ((lanes >> 16) & 0xFFFF) + ((lanes >> 32) & 0xFFFF) + (lanes >> 48);
    }
    for (std::size_t i = words * 8; i < n; ++i) total += a[i];
    return static_cast<std::int32_t>(total);
}

/// a_sum[r] = sum of the first k codes of row r.
inline void row_sums(const std::uint8_t* a, std::size_t m, std::size_t k, std::size_t lda, std::int32_t* out) noexcept {
    for (std::size_t r = 0; r < m; ++r) out[r] = code_sum(a + r * lda, k);
}

/// Writes one row's panel of 16 accumulators (lanes < count) with the weight-form correction.
inline void store_panel(const gemm_args& g, std::size_t r, std::size_t n0, const std::int32_t* acc) noexcept {
    const std::size_t count = g.shape.n - n0 < panel_width ? g.shape.n - n0 : panel_width;
    const std::int32_t corr = (g.form.offset - g.form.mul * g.shape.bias) * g.a_sum[r];
    std::int32_t* out = g.c + r * g.ldc + n0;
    for (std::size_t j = 0; j < count; ++j) out[j] = g.form.mul * acc[j] - corr;
}

/// The row loop every SIMD tier shares: blocks of MR rows, then single rows, through
/// Kernel::rows<rows, bytes>(g, first_row) for the operand kind of the packed weights.
template <class Kernel, std::size_t MR, bool Bytes>
void drive_rows(const gemm_args& g) noexcept {
    std::size_t r = 0;
    for (; r + MR <= g.m; r += MR) Kernel::template rows<MR, Bytes>(g, r);
    for (; r < g.m; ++r) Kernel::template rows<1, Bytes>(g, r);
}
template <class Kernel, std::size_t MR>
void drive(const gemm_args& g) noexcept {
    if (g.shape.kind == operand_kind::bytes)
        drive_rows<Kernel, MR, true>(g);
    else
        drive_rows<Kernel, MR, false>(g);
}

}  // namespace sqakd::deploy::kernels

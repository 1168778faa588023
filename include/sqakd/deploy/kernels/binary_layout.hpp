// sqakd/deploy/kernels/binary_layout.hpp - the 1-bit (W1A1) path: codes as bits, dot products
// as AND + popcount.
//
// At one bit, activation codes a are {0, 1} and weight codes k are {0, 1} (weight value 2k - 1,
// the odd_symmetric / lsq 1-bit form {2, 1}). Then
//   sum_i (2 k_i - 1) a_i = 2 popcount(k AND a) - popcount(a)
// which is exactly the weight-form output mul * dot - offset * sum with dot = popcount(k AND a)
// and sum = popcount(a). (XNOR + popcount is the form for {-1, +1} activations; ours have a zero
// level, so AND is the exact one.)
//
// Layout: rows of codes as little-endian 64-bit words, code i at bit i % 64 of word i / 64 (the
// same bit order as packing.hpp's stream), zero-padded to whole words. Weights are interleaved
// in panels of 8 output channels: word j of channel n at ((n / 8) * words + j) * 8 + n % 8, so
// one 512-bit load holds word j of 8 channels.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sqakd/deploy/kernels/gemm_args.hpp"
#include "sqakd/deploy/status.hpp"
#include "sqakd/deploy/weight_form.hpp"

namespace sqakd::deploy::kernels {

inline constexpr std::size_t binary_panel = 8;

struct binary_shape {
    std::size_t n = 0, k = 0;
    constexpr std::size_t words() const noexcept { return (k + 63) / 64; }
    constexpr std::size_t panels() const noexcept { return (n + binary_panel - 1) / binary_panel; }
    /// 64-bit words of the packed weights.
    constexpr std::size_t weight_words() const noexcept { return panels() * binary_panel * words(); }
};

/// Packs m rows of k {0, 1} codes (row r at codes + r*ld) into rows of `words` 64-bit words each
/// (words >= ceil(k/64); unused bits zero).
inline status pack_bit_rows(const std::uint8_t* codes, std::size_t m, std::size_t k, std::size_t ld,
                            std::uint64_t* out, std::size_t words) noexcept {
    if (words * 64 < k || ld < k) return status::bad_shape;
    for (std::size_t r = 0; r < m; ++r) {
        std::uint64_t* row = out + r * words;
        for (std::size_t j = 0; j < words; ++j) row[j] = 0;
        for (std::size_t i = 0; i < k; ++i) {
            const unsigned c = codes[r * ld + i];
            if (c > 1) return status::code_out_of_range;
            row[i / 64] |= std::uint64_t{c} << (i % 64);
        }
    }
    return status::ok;
}

/// Packs n weight rows of k {0, 1} codes into the panel layout (s.weight_words() words).
inline status pack_binary_weights(const binary_shape& s, const std::uint8_t* w, std::size_t ldw,
                                  std::uint64_t* out) noexcept {
    if (s.n == 0 || s.k == 0 || ldw < s.k) return status::bad_shape;
    const std::size_t words = s.words();
    for (std::size_t i = 0; i < s.weight_words(); ++i) out[i] = 0;
    for (std::size_t n = 0; n < s.n; ++n)
        for (std::size_t i = 0; i < s.k; ++i) {
            const unsigned c = w[n * ldw + i];
            if (c > 1) return status::code_out_of_range;
            const std::size_t j = i / 64;
            out[((n / binary_panel) * words + j) * binary_panel + n % binary_panel] |= std::uint64_t{c} << (i % 64);
        }
    return status::ok;
}

/// C[r][n] = form.mul * popcount(A_r AND W_n) - form.offset * popcount(A_r), for r < m, n < s.n.
struct binary_gemm_args {
    std::size_t m = 0;
    const std::uint64_t* a = nullptr;  ///< m rows of lda words
    std::size_t lda = 0;               ///< >= s.words()
    const std::uint64_t* w = nullptr;  ///< pack_binary_weights
    binary_shape shape;
    weight_form form = weight_form::odd_symmetric(1);
    std::int32_t* c = nullptr;
    std::size_t ldc = 0;
};

/// Writes one row's panel of 8 dot products (lanes < the real channel count) with the correction.
inline void store_binary_panel(const binary_gemm_args& g, std::size_t r, std::size_t p, const std::int64_t* dot,
                               std::int64_t a_pop) noexcept {
    const std::size_t n0 = p * binary_panel;
    const std::size_t count = g.shape.n - n0 < binary_panel ? g.shape.n - n0 : binary_panel;
    for (std::size_t j = 0; j < count; ++j)
        g.c[r * g.ldc + n0 + j] = static_cast<std::int32_t>(g.form.mul * dot[j] - g.form.offset * a_pop);
}

namespace generic {
/// Portable W1A1 kernel (the compiler's popcount: one instruction with -mpopcnt).
inline void binary_gemm(const binary_gemm_args& g) noexcept {
    const std::size_t words = g.shape.words();
    for (std::size_t r = 0; r < g.m; ++r) {
        const std::uint64_t* a = g.a + r * g.lda;
        std::int64_t a_pop = 0;
        for (std::size_t j = 0; j < words; ++j) a_pop += __builtin_popcountll(a[j]);
        for (std::size_t p = 0; p < g.shape.panels(); ++p) {
            std::int64_t dot[binary_panel] = {};
            const std::uint64_t* wp = g.w + p * words * binary_panel;
            for (std::size_t j = 0; j < words; ++j)
                for (std::size_t l = 0; l < binary_panel; ++l) dot[l] += __builtin_popcountll(a[j] & wp[j * binary_panel + l]);
            store_binary_panel(g, r, p, dot, a_pop);
        }
    }
}
}  // namespace generic

}  // namespace sqakd::deploy::kernels

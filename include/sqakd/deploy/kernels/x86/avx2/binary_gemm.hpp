// sqakd/deploy/kernels/x86/avx2/binary_gemm.hpp - AVX2 W1A1 kernel: AND, then popcount by the
// nibble table (vpshufb on the low and high nibbles, vpsadbw into four 64-bit lane sums; AVX2
// has no vector popcount). A panel's 8 channels are two ymm of 64-bit words.
#pragma once

#include "sqakd/deploy/kernels/x86/cpu.hpp"

#ifdef SQAKD_DEPLOY_X86
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "sqakd/deploy/kernels/binary_layout.hpp"

namespace sqakd::deploy::kernels::avx2 {

namespace detail {
__attribute__((target("avx2"))) inline __m256i popcount_epi64(__m256i v, __m256i table, __m256i low) noexcept {
    const __m256i lo = _mm256_shuffle_epi8(table, _mm256_and_si256(v, low));
    const __m256i hi = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(v, 4), low));
    return _mm256_sad_epu8(_mm256_add_epi8(lo, hi), _mm256_setzero_si256());
}
}  // namespace detail

/// Requires x86::cpu().avx2.
__attribute__((target("avx2"))) inline void binary_gemm(const binary_gemm_args& g) noexcept {
    const std::size_t words = g.shape.words();
    const __m256i table = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1,
                                           2, 2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(0x0f);
    for (std::size_t r = 0; r < g.m; ++r) {
        const std::uint64_t* a = g.a + r * g.lda;
        std::int64_t a_pop = 0;
        for (std::size_t j = 0; j < words; ++j) a_pop += __builtin_popcountll(a[j]);
        for (std::size_t p = 0; p < g.shape.panels(); ++p) {
            const std::uint64_t* wp = g.w + p * words * binary_panel;
            // byte counts (at most 8 per byte per word) summed by vpsadbw per word: no overflow
            __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
            for (std::size_t j = 0; j < words; ++j) {
                const __m256i av = _mm256_set1_epi64x(static_cast<long long>(a[j]));
                const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp + j * binary_panel));
                const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp + j * binary_panel + 4));
                acc0 = _mm256_add_epi64(acc0, detail::popcount_epi64(_mm256_and_si256(av, w0), table, low));
                acc1 = _mm256_add_epi64(acc1, detail::popcount_epi64(_mm256_and_si256(av, w1), table, low));
            }
            alignas(32) std::int64_t dot[binary_panel];
            _mm256_store_si256(reinterpret_cast<__m256i*>(dot), acc0);
            _mm256_store_si256(reinterpret_cast<__m256i*>(dot + 4), acc1);
            store_binary_panel(g, r, p, dot, a_pop);
        }
    }
}

}  // namespace sqakd::deploy::kernels::avx2
#endif

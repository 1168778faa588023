// sqakd/deploy/kernels/x86/avx2/gemm.hpp - AVX2 packed integer GEMM (tier: x86 micro-kernel).
//
// Per k group, the 16 output channels of a panel are two ymm of weights. One activation row's
// group is broadcast (4 codes as one int32, or 2 codes as an int16 pair) and multiplied:
//   bytes: vpmaddubsw (activations unsigned, weights signed <= 127; the pair bound of
//          packed_layout.hpp rules out saturation), then vpmaddwd with ones into int32;
//   words: vpmaddwd on int16 pairs (8-bit codes widened at packing), exact in int32.
// Register blocking: 4 rows x 16 channels = 8 ymm accumulators.
#pragma once

#include "sqakd/deploy/kernels/x86/cpu.hpp"

#ifdef SQAKD_DEPLOY_X86
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "sqakd/deploy/kernels/gemm_args.hpp"

namespace sqakd::deploy::kernels::avx2 {

namespace detail {
struct kernel {
    template <std::size_t MR, bool Bytes>
    __attribute__((target("avx2"))) static void rows(const gemm_args& g, std::size_t r0) noexcept {
        const std::size_t groups = g.shape.k_groups(), pb = g.shape.panel_bytes();
        const auto* wbase = static_cast<const std::uint8_t*>(g.w);
        const __m256i ones = _mm256_set1_epi16(1);
        for (std::size_t p = 0; p < g.shape.panels(); ++p) {
            const std::uint8_t* wp = wbase + p * pb;
            __m256i acc[MR][2];
            for (std::size_t i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
            for (std::size_t kg = 0; kg < groups; ++kg) {
                const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp + kg * 64));
                const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp + kg * 64 + 32));
                for (std::size_t i = 0; i < MR; ++i) {
                    const std::uint8_t* a = g.a + (r0 + i) * g.lda;
                    std::int32_t av;
                    if constexpr (Bytes) {
                        std::memcpy(&av, a + kg * 4, 4);
                        const __m256i b = _mm256_set1_epi32(av);
                        acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(_mm256_maddubs_epi16(b, w0), ones));
                        acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(_mm256_maddubs_epi16(b, w1), ones));
                    } else {
                        av = static_cast<std::int32_t>(a[kg * 2] | (std::uint32_t{a[kg * 2 + 1]} << 16));
                        const __m256i b = _mm256_set1_epi32(av);
                        acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(b, w0));
                        acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(b, w1));
                    }
                }
            }
            for (std::size_t i = 0; i < MR; ++i) {
                alignas(32) std::int32_t out[panel_width];
                _mm256_store_si256(reinterpret_cast<__m256i*>(out), acc[i][0]);
                _mm256_store_si256(reinterpret_cast<__m256i*>(out + 8), acc[i][1]);
                store_panel(g, r0 + i, p * panel_width, out);
            }
        }
    }
};
}  // namespace detail

/// Requires x86::cpu().avx2.
inline void gemm(const gemm_args& g) noexcept { drive<detail::kernel, 4>(g); }

}  // namespace sqakd::deploy::kernels::avx2
#endif

// sqakd/deploy/kernels/x86/sse41/gemm.hpp - SSE4.1 packed integer GEMM (tier: x86 micro-kernel).
//
// The AVX2 kernel at 128 bits: a panel's 16 channels are four xmm of weights per k group;
// pmaddubsw + pmaddwd (bytes) or pmaddwd (words), same bounds (packed_layout.hpp).
// Register blocking: 2 rows x 16 channels = 8 xmm accumulators.
#pragma once

#include "sqakd/deploy/kernels/x86/cpu.hpp"

#ifdef SQAKD_DEPLOY_X86
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "sqakd/deploy/kernels/gemm_args.hpp"

namespace sqakd::deploy::kernels::sse41 {

namespace detail {
struct kernel {
    template <std::size_t MR, bool Bytes>
    __attribute__((target("sse4.1"))) static void rows(const gemm_args& g, std::size_t r0) noexcept {
        const std::size_t groups = g.shape.k_groups(), pb = g.shape.panel_bytes();
        const auto* wbase = static_cast<const std::uint8_t*>(g.w);
        const __m128i ones = _mm_set1_epi16(1);
        for (std::size_t p = 0; p < g.shape.panels(); ++p) {
            const std::uint8_t* wp = wbase + p * pb;
            __m128i acc[MR][4];
            for (std::size_t i = 0; i < MR; ++i)
                for (std::size_t q = 0; q < 4; ++q) acc[i][q] = _mm_setzero_si128();
            for (std::size_t kg = 0; kg < groups; ++kg) {
                __m128i w[4];
                for (std::size_t q = 0; q < 4; ++q)
                    w[q] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(wp + kg * 64 + q * 16));
                for (std::size_t i = 0; i < MR; ++i) {
                    const std::uint8_t* a = g.a + (r0 + i) * g.lda;
                    std::int32_t av;
                    if constexpr (Bytes) {
                        std::memcpy(&av, a + kg * 4, 4);
                        const __m128i b = _mm_set1_epi32(av);
                        for (std::size_t q = 0; q < 4; ++q)
                            acc[i][q] = _mm_add_epi32(acc[i][q], _mm_madd_epi16(_mm_maddubs_epi16(b, w[q]), ones));
                    } else {
                        av = static_cast<std::int32_t>(a[kg * 2] | (std::uint32_t{a[kg * 2 + 1]} << 16));
                        const __m128i b = _mm_set1_epi32(av);
                        for (std::size_t q = 0; q < 4; ++q)
                            acc[i][q] = _mm_add_epi32(acc[i][q], _mm_madd_epi16(b, w[q]));
                    }
                }
            }
            for (std::size_t i = 0; i < MR; ++i) {
                alignas(16) std::int32_t out[panel_width];
                for (std::size_t q = 0; q < 4; ++q) _mm_store_si128(reinterpret_cast<__m128i*>(out + 4 * q), acc[i][q]);
                store_panel(g, r0 + i, p * panel_width, out);
            }
        }
    }
};
}  // namespace detail

/// Requires x86::cpu().sse41.
inline void gemm(const gemm_args& g) noexcept { drive<detail::kernel, 2>(g); }

}  // namespace sqakd::deploy::kernels::sse41
#endif

// sqakd/deploy/kernels/x86/avx512vnni/gemm.hpp - AVX-512 VNNI packed integer GEMM (tier: x86
// micro-kernel).
//
// A panel's 16 output channels are exactly one zmm of int32 accumulators. Per k group:
//   bytes: vpdpbusd (activations unsigned x weights signed <= 127, four products summed into
//          int32 without intermediate saturation);
//   words: vpdpwssd (int16 pairs, the widened 8-bit codes), exact in int32.
// Register blocking: 8 rows x 16 channels = 8 zmm accumulators.
#pragma once

#include "sqakd/deploy/kernels/x86/cpu.hpp"

#ifdef SQAKD_DEPLOY_X86
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "sqakd/deploy/kernels/gemm_args.hpp"

namespace sqakd::deploy::kernels::avx512vnni {

namespace detail {
struct kernel {
    template <std::size_t MR, bool Bytes>
    __attribute__((target("avx512f,avx512bw,avx512vnni"))) static void rows(const gemm_args& g,
                                                                            std::size_t r0) noexcept {
        const std::size_t groups = g.shape.k_groups(), pb = g.shape.panel_bytes();
        const auto* wbase = static_cast<const std::uint8_t*>(g.w);
        for (std::size_t p = 0; p < g.shape.panels(); ++p) {
            const std::uint8_t* wp = wbase + p * pb;
            __m512i acc[MR];
            for (std::size_t i = 0; i < MR; ++i) acc[i] = _mm512_setzero_si512();
            for (std::size_t kg = 0; kg < groups; ++kg) {
                const __m512i w = _mm512_loadu_si512(wp + kg * 64);
                for (std::size_t i = 0; i < MR; ++i) {
                    const std::uint8_t* a = g.a + (r0 + i) * g.lda;
                    std::int32_t av;
                    if constexpr (Bytes) {
                        std::memcpy(&av, a + kg * 4, 4);
                        acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_set1_epi32(av), w);
                    } else {
                        av = static_cast<std::int32_t>(a[kg * 2] | (std::uint32_t{a[kg * 2 + 1]} << 16));
                        acc[i] = _mm512_dpwssd_epi32(acc[i], _mm512_set1_epi32(av), w);
                    }
                }
            }
            for (std::size_t i = 0; i < MR; ++i) {
                alignas(64) std::int32_t out[panel_width];
                _mm512_store_si512(out, acc[i]);
                store_panel(g, r0 + i, p * panel_width, out);
            }
        }
    }
};
}  // namespace detail

/// Requires x86::cpu().avx512vnni.
inline void gemm(const gemm_args& g) noexcept { drive<detail::kernel, 8>(g); }

}  // namespace sqakd::deploy::kernels::avx512vnni
#endif

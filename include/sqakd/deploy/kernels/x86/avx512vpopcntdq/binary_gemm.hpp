// sqakd/deploy/kernels/x86/avx512vpopcntdq/binary_gemm.hpp - AVX-512 W1A1 kernel: a panel's 8
// channels are one zmm of 64-bit words; AND with the broadcast activation word, vpopcntq,
// add. Register blocking: 4 rows share each weight load.
#pragma once

#include "sqakd/deploy/kernels/x86/cpu.hpp"

#ifdef SQAKD_DEPLOY_X86
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "sqakd/deploy/kernels/binary_layout.hpp"

namespace sqakd::deploy::kernels::avx512vpopcntdq {

namespace detail {
template <std::size_t MR>
__attribute__((target("avx512f,avx512vpopcntdq"))) void rows(const binary_gemm_args& g, std::size_t r0) noexcept {
    const std::size_t words = g.shape.words();
    std::int64_t a_pop[MR] = {};
    for (std::size_t i = 0; i < MR; ++i)
        for (std::size_t j = 0; j < words; ++j) a_pop[i] += __builtin_popcountll(g.a[(r0 + i) * g.lda + j]);
    for (std::size_t p = 0; p < g.shape.panels(); ++p) {
        const std::uint64_t* wp = g.w + p * words * binary_panel;
        __m512i acc[MR];
        for (std::size_t i = 0; i < MR; ++i) acc[i] = _mm512_setzero_si512();
        for (std::size_t j = 0; j < words; ++j) {
            const __m512i w = _mm512_loadu_si512(wp + j * binary_panel);
            for (std::size_t i = 0; i < MR; ++i) {
                const __m512i av = _mm512_set1_epi64(static_cast<long long>(g.a[(r0 + i) * g.lda + j]));
                acc[i] = _mm512_add_epi64(acc[i], _mm512_popcnt_epi64(_mm512_and_si512(av, w)));
            }
        }
        for (std::size_t i = 0; i < MR; ++i) {
            alignas(64) std::int64_t dot[binary_panel];
            _mm512_store_si512(dot, acc[i]);
            store_binary_panel(g, r0 + i, p, dot, a_pop[i]);
        }
    }
}
}  // namespace detail

/// Requires x86::cpu().avx512vpopcntdq.
__attribute__((target("avx512f,avx512vpopcntdq"))) inline void binary_gemm(const binary_gemm_args& g) noexcept {
    std::size_t r = 0;
    for (; r + 4 <= g.m; r += 4) detail::rows<4>(g, r);
    for (; r < g.m; ++r) detail::rows<1>(g, r);
}

}  // namespace sqakd::deploy::kernels::avx512vpopcntdq
#endif

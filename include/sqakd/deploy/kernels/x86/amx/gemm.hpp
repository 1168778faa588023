// sqakd/deploy/kernels/x86/amx/gemm.hpp - AMX-INT8 packed integer GEMM (tier: x86 micro-kernel,
// Sapphire Rapids and later).
//
// tdpbusd C += A . B on tiles: A is 16 rows x 64 unsigned activation bytes (16 output pixels x
// 64 reduction codes, loaded from the im2col rows with stride lda), B is 16 rows x 64 signed
// weight bytes (16 k groups x 16 output channels x 4 codes: exactly 16 consecutive k groups of
// one packed panel, stride 64), C is 16 x 16 int32. Each group of four u8 x s8 products is added
// into int32 without an int16 intermediate or saturation (as vpdpbusd), so every pair up to
// 8 x 8 bits runs here on the bytes layout, 8-bit weights biased by 128 (packed_layout.hpp).
// The reduction is padded to a multiple of 64 at packing (packed_shape::k_align = 64), so every
// tile is full; rows beyond the last whole 16 (m % 16) go to the AVX-512 VNNI kernel, which reads
// the same layout.
//
// Register use (tile numbers are immediates, hence the fixed assignment): C tiles tmm0-tmm3
// (2 row tiles x 2 panels), A tiles tmm4-tmm5, B tiles tmm6-tmm7. The tile instructions are
// written as inline assembly: GCC and Clang spell the intrinsics' target requirements
// differently, the assembler (binutils >= 2.34, LLVM >= 10) knows the mnemonics in both.
//
// Linux gives a process AMX tile state only after arch_prctl(ARCH_REQ_XCOMP_PERM,
// XFEATURE_XTILEDATA); x86::cpu() asks once, and amx_int8 is true only when that succeeded.
#pragma once

#include "sqakd/deploy/kernels/x86/cpu.hpp"

#ifdef SQAKD_DEPLOY_X86
#include <cstddef>
#include <cstdint>

#include "sqakd/deploy/kernels/gemm_args.hpp"
#include "sqakd/deploy/kernels/x86/amx/tiles.hpp"
#include "sqakd/deploy/kernels/x86/avx512vnni/gemm.hpp"

namespace sqakd::deploy::kernels::amx {

/// The reduction alignment this tier's packing needs (one tile's 64 bytes).
inline constexpr std::size_t k_align = 64;

namespace detail {

/// Every tile used (tmm0-tmm7) as 16 rows of 64 bytes.
inline void configure() noexcept {
    static const tile_config cfg = [] {
        tile_config c;
        for (int i = 0; i < 8; ++i) c.colsb[i] = 64, c.rows[i] = 16;
        return c;
    }();
    load_config(cfg);
}

/// One block of RT row tiles (16 rows each, from row r0) x PT panels (from panel p0).
template <int RT, int PT>
void block(const gemm_args& g, std::size_t r0, std::size_t p0) noexcept {
    __asm__ volatile("tilezero %%tmm0" ::: "memory");
    if constexpr (PT == 2) __asm__ volatile("tilezero %%tmm1" ::: "memory");
    if constexpr (RT == 2) __asm__ volatile("tilezero %%tmm2" ::: "memory");
    if constexpr (RT == 2 && PT == 2) __asm__ volatile("tilezero %%tmm3" ::: "memory");
    const std::size_t groups = g.shape.k_groups(), chunks = g.shape.k_padded() / k_align;
    const auto* w = static_cast<const std::uint8_t*>(g.w);
    const std::uint8_t* a0 = g.a + r0 * g.lda;
    const std::uint8_t* a1 = a0 + 16 * g.lda;
    const std::uint8_t* b0 = w + p0 * groups * 64;
    const std::uint8_t* b1 = b0 + groups * 64;
    for (std::size_t t = 0; t < chunks; ++t) {
        SQAKD_AMX_LOAD("tmm4", a0 + t * 64, g.lda);
        SQAKD_AMX_LOAD("tmm6", b0 + t * 1024, 64);
        if constexpr (RT == 2) SQAKD_AMX_LOAD("tmm5", a1 + t * 64, g.lda);
        if constexpr (PT == 2) SQAKD_AMX_LOAD("tmm7", b1 + t * 1024, 64);
        __asm__ volatile("tdpbusd %%tmm6, %%tmm4, %%tmm0" ::: "memory");
        if constexpr (PT == 2) __asm__ volatile("tdpbusd %%tmm7, %%tmm4, %%tmm1" ::: "memory");
        if constexpr (RT == 2) __asm__ volatile("tdpbusd %%tmm6, %%tmm5, %%tmm2" ::: "memory");
        if constexpr (RT == 2 && PT == 2) __asm__ volatile("tdpbusd %%tmm7, %%tmm5, %%tmm3" ::: "memory");
    }
    alignas(64) std::int32_t out[4][16 * 16];
    SQAKD_AMX_STORE("tmm0", out[0], 64);
    if constexpr (PT == 2) SQAKD_AMX_STORE("tmm1", out[1], 64);
    if constexpr (RT == 2) SQAKD_AMX_STORE("tmm2", out[2], 64);
    if constexpr (RT == 2 && PT == 2) SQAKD_AMX_STORE("tmm3", out[3], 64);
    for (int rt = 0; rt < RT; ++rt)
        for (int pt = 0; pt < PT; ++pt)
            for (std::size_t i = 0; i < 16; ++i)
                store_panel(g, r0 + static_cast<std::size_t>(rt) * 16 + i, (p0 + static_cast<std::size_t>(pt)) * panel_width,
                            out[rt * 2 + pt] + i * 16);
}

}  // namespace detail

/// Requires x86::cpu().amx_int8 (and avx512vnni, for the rows past the last whole tile),
/// bytes operands and shape.k_padded() a multiple of k_align.
inline void gemm(const gemm_args& g) noexcept {
    const std::size_t full = g.m / 16 * 16, panels = g.shape.panels();
    if (full) {
        detail::configure();
        std::size_t r = 0;
        for (; r + 32 <= full; r += 32) {
            std::size_t p = 0;
            for (; p + 2 <= panels; p += 2) detail::block<2, 2>(g, r, p);
            if (p < panels) detail::block<2, 1>(g, r, p);
        }
        if (r < full) {
            std::size_t p = 0;
            for (; p + 2 <= panels; p += 2) detail::block<1, 2>(g, r, p);
            if (p < panels) detail::block<1, 1>(g, r, p);
        }
        detail::release();
    }
    if (full < g.m) {
        gemm_args t = g;
        t.m = g.m - full;
        t.a = g.a + full * g.lda;
        t.a_sum = g.a_sum + full;
        t.c = g.c + full * g.ldc;
        avx512vnni::gemm(t);
    }
}

}  // namespace sqakd::deploy::kernels::amx
#endif

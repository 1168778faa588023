// sqakd/deploy/kernels/x86/amx/tiles.hpp - what the AMX kernels (gemm.hpp, conv_direct.hpp)
// share: the tile configuration block of ldtilecfg, tilerelease, and tile loads/stores as
// inline assembly (tile numbers are immediates; GCC and Clang spell the intrinsics' target
// requirements differently, the assembler knows the mnemonics in both).
#pragma once

#include "sqakd/deploy/kernels/x86/cpu.hpp"

#ifdef SQAKD_DEPLOY_X86
#include <cstdint>

namespace sqakd::deploy::kernels::amx::detail {

/// ldtilecfg's 64-byte operand (palette 1): bytes per row and rows of tmm0-tmm15.
struct alignas(64) tile_config {
    std::uint8_t palette = 1, start_row = 0;
    std::uint8_t reserved[14] = {};
    std::uint16_t colsb[16] = {};
    std::uint8_t rows[16] = {};
};

inline void load_config(const tile_config& cfg) noexcept { __asm__ volatile("ldtilecfg %0" ::"m"(cfg)); }
inline void release() noexcept { __asm__ volatile("tilerelease" ::: "memory"); }

}  // namespace sqakd::deploy::kernels::amx::detail

/// tileloadd / tilestored of tile register `tmm` (a string literal, "tmm0".."tmm7") at ptr with
/// a row stride in bytes.
#define SQAKD_AMX_LOAD(tmm, ptr, stride) \
    __asm__ volatile("tileloadd (%0,%1,1), %%" tmm ::"r"(ptr), "r"(static_cast<std::int64_t>(stride)) : "memory")
#define SQAKD_AMX_STORE(tmm, ptr, stride) \
    __asm__ volatile("tilestored %%" tmm ", (%0,%1,1)" ::"r"(ptr), "r"(static_cast<std::int64_t>(stride)) : "memory")
#endif

// sqakd/deploy/kernels/generic/gemm_packed.hpp - the portable kernel on the packed layout: plain
// C++ over the same panels the SIMD kernels read (it checks the packing against the reference
// and is the fallback where no SIMD kernel is compiled).
#pragma once

#include <cstddef>
#include <cstdint>

#include "sqakd/deploy/kernels/gemm_args.hpp"

namespace sqakd::deploy::kernels::generic {

inline void gemm(const gemm_args& g) noexcept {
    const std::size_t G = g.shape.group(), groups = g.shape.k_groups();
    const auto* w8 = static_cast<const std::uint8_t*>(g.w);
    const auto* w16 = static_cast<const std::int16_t*>(g.w);
    for (std::size_t r = 0; r < g.m; ++r) {
        const std::uint8_t* a = g.a + r * g.lda;
        for (std::size_t p = 0; p < g.shape.panels(); ++p) {
            std::int32_t acc[panel_width] = {};
            for (std::size_t kg = 0; kg < groups; ++kg)
                for (std::size_t lane = 0; lane < panel_width; ++lane)
                    for (std::size_t j = 0; j < G; ++j) {
                        const std::size_t at = ((p * groups + kg) * panel_width + lane) * G + j;
                        const std::int32_t wv = g.shape.kind == operand_kind::bytes ? std::int32_t{static_cast<std::int8_t>(w8[at])} : w16[at];
                        acc[lane] += wv * a[kg * G + j];
                    }
            store_panel(g, r, p * panel_width, acc);
        }
    }
}

}  // namespace sqakd::deploy::kernels::generic

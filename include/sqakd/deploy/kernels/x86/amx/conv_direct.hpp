// sqakd/deploy/kernels/x86/amx/conv_direct.hpp - AMX-INT8 convolution without im2col (an
// implicit GEMM over a zero-padded copy of the input).
//
// With the input copied once into a zero-bordered NHWC image of width Wp = W + 2*pad_w, output
// pixel (oy, ox) computed at "wide" row q = oy * Wp + ox reads, for kernel position (ky, kx), the
// padded pixel q + ky * Wp + kx: a constant shift. A kernel row's kw pixels are contiguous, so
// its kw * Cp codes are cut into chunks of up to 64 bytes (the widest multiple of 4 dividing
// kw * Cp: 48 at 16 channels, 48 at 32, 64 at 64), and for each chunk 16 consecutive wide rows
// are one A tile loaded straight from the padded image (row stride Cp, colsb = the chunk),
// multiplied by the panel's B tile of the same reduction positions, which the packed layout
// already holds as consecutive 64-byte rows ([ky][kx][ci] order, 4 codes per row per channel).
// Wide rows with
// ox >= out_w (2 * pad_w per image row; 2/30 of them at 28x28) are computed and dropped.
//
// Stride s > 1 (equal in both directions): the padded rows are split by row phase (padded row
// mod s) into s images of width Wp rounded up to a multiple of s. Kernel row ky then reads phase
// ky mod s at row oy + ky / s, and with wide rows q = oy * (Wp / s) + ox the pixel is
// s * q + (ky / s) * Wp + kx of that phase: again a constant shift, with A tile row stride s * Cp.
//
// The activation sums of the weight-form correction come from per-pixel code sums of the
// padded image: a_sum(q) = sum over the kernel window of pixel_sum(q + ky * Wp + kx).
//
// Applies to: stride 1, one group, in_channels a multiple of 4 and either <= 64 or a multiple of
// 64, packed bytes (every pair on this tier). Requires x86::cpu().amx_int8.
#pragma once

#include "sqakd/deploy/kernels/x86/cpu.hpp"

#ifdef SQAKD_DEPLOY_AMX
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "sqakd/deploy/conv_geometry.hpp"
#include "sqakd/deploy/kernels/gemm_args.hpp"
#include "sqakd/deploy/kernels/x86/amx/tiles.hpp"

namespace sqakd::deploy::kernels::amx {

/// Whether conv_direct runs geometry g.
constexpr bool direct_applies(const conv_geometry& g) noexcept {
    return g.stride_h == g.stride_w && g.groups == 1 && g.in_channels % 4 == 0 &&
           (g.in_channels <= 64 || g.in_channels % 64 == 0);
}

/// Where conv_direct keeps what in its workspace, for g's height and width (any batch).
struct direct_layout {
    std::size_t s, hp, wpp, wq, oh, ow, wide_rows, rows, phase_pixels, hrows, bytes;
    constexpr explicit direct_layout(const conv_geometry& g) noexcept
        : s(g.stride_h), hp(g.height + 2 * g.pad_h), wpp((g.width + 2 * g.pad_w + s - 1) / s * s), wq(wpp / s),
          oh(g.out_h()), ow(g.out_w()), wide_rows((oh - 1) * wq + ow), rows((wide_rows + 15) / 16 * 16),
          // every pixel of a phase a tile or a window sum reaches: s * q + (kh - 1) / s * wpp + kx
          // (and every pixel of the padded rows of that phase)
          phase_pixels(std::max(s * rows + ((g.kernel_h - 1) / s + 1) * wpp + g.kernel_w, (hp + s - 1) / s * wpp) + 64),
          hrows(rows + (g.kernel_h - 1) / s * wq),
          bytes((s * phase_pixels * g.in_channels + 63) / 64 * 64 + 4 * (s * phase_pixels + s * hrows + rows) + 64) {}
    /// padded rows per phase
    constexpr std::size_t phase_rows() const noexcept { return (hp + s - 1) / s; }
};

/// Workspace bytes of conv_direct at g's height and width (any batch): the padded phase images
/// with room for every pixel a tile can reach, their per-pixel code sums, those summed along x
/// and the per-row window sums.
constexpr std::size_t direct_workspace_bytes(const conv_geometry& g) noexcept { return direct_layout(g).bytes; }

namespace detail {

struct direct_args {
    const std::uint8_t* img;   ///< padded phase images, pixel stride cp, phase_pixels each
    std::size_t cp, wpp, wq;   ///< channels per padded pixel, padded width, wide row width
    std::size_t s, phase_pixels;
    std::size_t kh, kw, chunk, chunks;
    const std::uint8_t* w;     ///< packed weights (bytes), k groups per panel = groups
    std::size_t groups;
    const std::int32_t* a_sum; ///< per wide row
    weight_form form;
    std::int32_t bias;
    std::size_t n, ow, wide_rows;
    std::int32_t* y;           ///< this image's NHWC output
    std::size_t ldc;
};

/// RT row tiles (16 wide rows each, from q0) x PT panels (from p0). Rows at or past wide_rows
/// and wide columns past ow are not stored. The epilogue (mul * acc - correction, masked to the
/// real channels) is AVX-512, which every AMX CPU has.
template <int RT, int PT>
__attribute__((target("avx512f"))) void direct_block(const direct_args& d, std::size_t q0, std::size_t p0) noexcept {
    static_assert(RT * PT <= 4 && (RT != 4 || PT == 1), "four C tiles");
    __asm__ volatile("tilezero %%tmm0" ::: "memory");
    if constexpr (PT == 2 || RT == 4) __asm__ volatile("tilezero %%tmm1" ::: "memory");
    if constexpr (RT >= 2) __asm__ volatile("tilezero %%tmm2" ::: "memory");
    if constexpr ((RT == 2 && PT == 2) || RT == 4) __asm__ volatile("tilezero %%tmm3" ::: "memory");
    const std::size_t sa = d.s * d.cp;  // A row stride
    for (std::size_t ky = 0; ky < d.kh; ++ky) {
        const std::uint8_t* phase = d.img + (ky % d.s) * d.phase_pixels * d.cp;
        // a kernel row's kw pixels are contiguous in its phase image (and its kw * cp codes are
        // consecutive k groups of the packed weights): chunks run across kx and channels
        const std::uint8_t* arow = phase + (d.s * q0 + ky / d.s * d.wpp) * d.cp;
        for (std::size_t ch = 0; ch < d.chunks; ++ch) {
            const std::uint8_t* a0 = arow + ch * d.chunk;
            const std::size_t kg = (ky * d.kw * d.cp + ch * d.chunk) / 4;
            const std::uint8_t* b0 = d.w + (p0 * d.groups + kg) * 64;
            SQAKD_AMX_LOAD("tmm4", a0, sa);
            SQAKD_AMX_LOAD("tmm6", b0, 64);
            if constexpr (RT >= 2) SQAKD_AMX_LOAD("tmm5", a0 + 16 * sa, sa);
            if constexpr (PT == 2) SQAKD_AMX_LOAD("tmm7", b0 + d.groups * 64, 64);
            __asm__ volatile("tdpbusd %%tmm6, %%tmm4, %%tmm0" ::: "memory");
            if constexpr (PT == 2) __asm__ volatile("tdpbusd %%tmm7, %%tmm4, %%tmm1" ::: "memory");
            if constexpr (RT >= 2) __asm__ volatile("tdpbusd %%tmm6, %%tmm5, %%tmm2" ::: "memory");
            if constexpr (RT == 2 && PT == 2) __asm__ volatile("tdpbusd %%tmm7, %%tmm5, %%tmm3" ::: "memory");
            if constexpr (RT == 4) {  // one panel, four row tiles: C in tmm0-3 as rows 0, 2, 1, 3
                SQAKD_AMX_LOAD("tmm4", a0 + 32 * sa, sa);
                SQAKD_AMX_LOAD("tmm5", a0 + 48 * sa, sa);
                __asm__ volatile("tdpbusd %%tmm6, %%tmm4, %%tmm1" ::: "memory");
                __asm__ volatile("tdpbusd %%tmm6, %%tmm5, %%tmm3" ::: "memory");
            }
            }
    }
    alignas(64) std::int32_t out[4][16 * 16];
    // out[rt * PT + pt]: tmm0 = (0, 0); PT 2: tmm1 = (0, 1), tmm2 = (1, 0), tmm3 = (1, 1);
    // PT 1: tmm2 = row tile 1, tmm1 = row tile 2, tmm3 = row tile 3
    SQAKD_AMX_STORE("tmm0", out[0], 64);
    if constexpr (PT == 2) SQAKD_AMX_STORE("tmm1", out[1], 64);
    if constexpr (PT == 2 && RT == 2) SQAKD_AMX_STORE("tmm2", out[2], 64);
    if constexpr (PT == 2 && RT == 2) SQAKD_AMX_STORE("tmm3", out[3], 64);
    if constexpr (PT == 1 && RT >= 2) SQAKD_AMX_STORE("tmm2", out[1], 64);
    if constexpr (PT == 1 && RT == 4) SQAKD_AMX_STORE("tmm1", out[2], 64);
    if constexpr (PT == 1 && RT == 4) SQAKD_AMX_STORE("tmm3", out[3], 64);
    const std::int32_t mul = d.form.mul;
    std::size_t oy = q0 / d.wq, ox = q0 % d.wq;  // one division per block, then counted
    for (int rt = 0; rt < RT; ++rt) {
        for (std::size_t i = 0; i < 16; ++i, ++ox == d.wq ? (ox = 0, ++oy) : 0) {
            const std::size_t q = q0 + static_cast<std::size_t>(rt) * 16 + i;
            if (q >= d.wide_rows) break;
            if (ox >= d.ow) continue;
            const std::int32_t corr = (d.form.offset - mul * d.bias) * d.a_sum[q];
            std::int32_t* yrow = d.y + (oy * d.ow + ox) * d.ldc;
            for (int pt = 0; pt < PT; ++pt) {
                const std::size_t n0 = (p0 + static_cast<std::size_t>(pt)) * panel_width;
                const std::size_t count = d.n - n0 < panel_width ? d.n - n0 : panel_width;
                const __m512i v = _mm512_sub_epi32(_mm512_mullo_epi32(_mm512_set1_epi32(mul),
                                                                      _mm512_load_si512(out[rt * PT + pt] + i * 16)),
                                                   _mm512_set1_epi32(corr));
                _mm512_mask_storeu_epi32(yrow + n0, static_cast<__mmask16>((1u << count) - 1), v);
            }
        }
    }
}

}  // namespace detail

/// One convolution of `batch` images x (NHWC codes, g's height and width) into y (NHWC int32),
/// weights packed for this tier (shape: bytes, K = kh * kw * in_channels). Requires
/// direct_applies(g) and direct_workspace_bytes(g) bytes of workspace.
inline void conv_direct(const conv_geometry& g, const packed_shape& shape, const void* weights, weight_form form,
                        std::size_t batch, const std::uint8_t* x, std::int32_t* y, void* workspace) noexcept {
    const direct_layout L(g);
    const std::size_t H = g.height, W = g.width, C = g.in_channels, s = L.s, pp = L.phase_pixels;
    auto* img = static_cast<std::uint8_t*>(workspace);
    auto* psum = reinterpret_cast<std::int32_t*>(img + (s * pp * C + 63) / 64 * 64);  // [phase][pixel]
    std::int32_t* hsum = psum + s * pp;                                               // [phase][q]
    std::int32_t* asum = hsum + s * L.hrows;
    detail::direct_args d;
    d.img = img;
    d.cp = C;
    d.wpp = L.wpp;
    d.wq = L.wq;
    d.s = s;
    d.phase_pixels = pp;
    d.kh = g.kernel_h;
    d.kw = g.kernel_w;
    // the widest chunk (a multiple of 4, at most 64 bytes) that divides a kernel row's codes
    const std::size_t span = g.kernel_w * C;
    d.chunk = 4;
    for (std::size_t c = 64; c > 4; c -= 4)
        if (span % c == 0) {
            d.chunk = c;
            break;
        }
    d.chunks = span / d.chunk;
    d.w = static_cast<const std::uint8_t*>(weights);
    d.groups = shape.k_groups();
    d.a_sum = asum;
    d.form = form;
    d.bias = shape.bias;
    d.n = shape.n;
    d.ow = L.ow;
    d.wide_rows = L.wide_rows;
    d.ldc = g.out_channels;
    detail::tile_config cfg;
    for (int t = 0; t < 4; ++t) cfg.colsb[t] = 64, cfg.rows[t] = 16;  // C
    for (int t = 4; t < 6; ++t) cfg.colsb[t] = static_cast<std::uint16_t>(d.chunk), cfg.rows[t] = 16;  // A
    for (int t = 6; t < 8; ++t) cfg.colsb[t] = 64, cfg.rows[t] = static_cast<std::uint8_t>(d.chunk / 4);  // B
    detail::load_config(cfg);
    const std::size_t panels = shape.panels(), img_pixels = L.phase_rows() * L.wpp;
    std::memset(img, 0, s * pp * C);  // borders (and the rows no tile stores) stay zero
    for (std::size_t i = 0; i < s * pp; ++i) psum[i] = 0;
    for (std::size_t n = 0; n < batch; ++n) {
        // the padded phase images and their per-pixel code sums
        for (std::size_t iy = 0; iy < H; ++iy) {
            const std::size_t py = iy + g.pad_h;
            std::memcpy(img + ((py % s) * pp + (py / s) * L.wpp + g.pad_w) * C, x + (n * H + iy) * W * C, W * C);
        }
        for (std::size_t r = 0; r < s; ++r) {
            const std::uint8_t* im = img + r * pp * C;
            std::int32_t* ps = psum + r * pp;
            if (C % 16 == 0) {  // psadbw: 16 codes into two 64-bit sums per instruction (SSE2)
                const __m128i zero = _mm_setzero_si128();
                for (std::size_t p = 0; p < img_pixels; ++p) {
                    __m128i acc = zero;
                    for (std::size_t c = 0; c < C; c += 16)
                        acc = _mm_add_epi64(acc, _mm_sad_epu8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(im + p * C + c)), zero));
                    ps[p] = _mm_cvtsi128_si32(acc) + _mm_extract_epi16(acc, 4);
                }
            } else {
                for (std::size_t p = 0; p < img_pixels; ++p) ps[p] = code_sum(im + p * C, C);
            }
            // along x (per phase): hsum[q] = sum over kx of psum[s * q + kx]
            std::int32_t* hs = hsum + r * L.hrows;
            for (std::size_t q = 0; q < L.hrows; ++q) hs[q] = ps[s * q];
            for (std::size_t kx = 1; kx < g.kernel_w; ++kx)
                for (std::size_t q = 0; q < L.hrows; ++q) hs[q] += ps[s * q + kx];
        }
        // along y: kernel row ky is phase ky % s, wide rows (ky / s) * wq further on
        for (std::size_t q = 0; q < L.rows; ++q) asum[q] = 0;
        for (std::size_t ky = 0; ky < g.kernel_h; ++ky) {
            const std::int32_t* hs = hsum + (ky % s) * L.hrows + ky / s * L.wq;
            for (std::size_t q = 0; q < L.rows; ++q) asum[q] += hs[q];
        }
        d.y = y + n * L.oh * L.ow * g.out_channels;
        std::size_t q = 0;
        if (panels == 1)  // one B tile per kernel position serves four row tiles
            for (; q + 64 <= L.rows; q += 64) detail::direct_block<4, 1>(d, q, 0);
        for (; q + 32 <= L.rows; q += 32) {
            std::size_t p = 0;
            for (; p + 2 <= panels; p += 2) detail::direct_block<2, 2>(d, q, p);
            if (p < panels) detail::direct_block<2, 1>(d, q, p);
        }
        if (q < L.rows) {
            std::size_t p = 0;
            for (; p + 2 <= panels; p += 2) detail::direct_block<1, 2>(d, q, p);
            if (p < panels) detail::direct_block<1, 1>(d, q, p);
        }
    }
    detail::release();
}

}  // namespace sqakd::deploy::kernels::amx
#endif

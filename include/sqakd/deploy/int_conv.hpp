// sqakd/deploy/int_conv.hpp - one integer convolution: weights packed once for a kernel tier,
// run on NHWC activation codes into NHWC int32 outputs (the weight form's correction applied).
//
//   deploy::int_conv conv;
//   deploy::conv_geometry g;  g.in_channels = 16; g.out_channels = 32; g.stride_h = g.stride_w = 2; ...
//   if (auto st = deploy::int_conv::make(4, 4, g, weight_codes, deploy::weight_form::odd_symmetric(4),
//                                        deploy::isa::best, conv); st != deploy::status::ok) ...
//   std::vector<unsigned char> ws(conv.workspace_bytes());
//   conv.run(batch, height, width, x_codes, y_int32, ws.data());
//
// How it runs: output pixels are processed in blocks of row_block rows; a block's receptive
// fields are gathered (im2col) into the workspace as zero-padded rows of k_padded codes (or
// 64-bit words at W1A1), their sums taken, and the packed GEMM kernel of the chosen tier
// computes the block. A 1x1, stride-1, unpadded, ungrouped convolution whose channels fill whole
// k groups reads the input directly. A made int_conv is immutable: several threads may run it at
// once, each with its own workspace.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "sqakd/deploy/conv_geometry.hpp"
#include "sqakd/deploy/kernels/binary_layout.hpp"
#include "sqakd/deploy/kernels/generic/gemm_packed.hpp"
#include "sqakd/deploy/kernels/packed_layout.hpp"
#include "sqakd/deploy/kernels/x86/amx/conv_direct.hpp"
#include "sqakd/deploy/kernels/x86/amx/gemm.hpp"
#include "sqakd/deploy/kernels/x86/avx2/binary_gemm.hpp"
#include "sqakd/deploy/kernels/x86/avx2/gemm.hpp"
#include "sqakd/deploy/kernels/x86/avx512vnni/gemm.hpp"
#include "sqakd/deploy/kernels/x86/avx512vpopcntdq/binary_gemm.hpp"
#include "sqakd/deploy/kernels/x86/sse41/gemm.hpp"
#include "sqakd/deploy/status.hpp"
#include "sqakd/deploy/weight_form.hpp"

namespace sqakd::deploy {

/// Kernel tiers. `best` picks the fastest one this CPU runs. amx: AMX-INT8 tiles for every
/// pair, W1A1 included (as 0/1 codes; the other tiers run W1A1 as AND + popcount).
enum class isa { generic, sse41, avx2, avx512, amx, best };

constexpr const char* isa_name(isa t) noexcept {
    switch (t) {
        case isa::generic: return "generic";
        case isa::sse41: return "sse4.1";
        case isa::avx2: return "avx2";
        case isa::avx512: return "avx512";
        case isa::amx: return "amx";
        case isa::best: return "best";
    }
    return "?";
}

/// Whether this CPU runs tier t (avx512 = VNNI for the multi-bit GEMM, VPOPCNTDQ at W1A1).
inline bool isa_available(isa t, bool binary = false) noexcept {
#ifdef SQAKD_DEPLOY_X86
    const auto& f = x86::cpu();
    switch (t) {
        case isa::generic: return true;
        case isa::sse41: return f.sse41 && !binary;  // W1A1 has no SSE tier: it falls back to generic
        case isa::avx2: return f.avx2;
        case isa::avx512: return binary ? f.avx512vpopcntdq : f.avx512vnni;
        case isa::amx: return f.amx_int8;  // W1A1 included: as 0/1 bytes on the tiles
        case isa::best: return true;
    }
    return false;
#else
    return t == isa::generic || t == isa::best;
#endif
}

/// The tier `best` resolves to on this CPU.
inline isa best_isa(bool binary = false) noexcept {
    for (isa t : {isa::amx, isa::avx512, isa::avx2, isa::sse41})
        if (isa_available(t, binary)) return t;
    return isa::generic;
}

class int_conv {
public:
    /// Output pixels per im2col block: 128 rows of at most 4608 codes (590 KB) stay in L2.
    static constexpr std::size_t row_block = 128;

    /// Packs the weights (codes [out][kh][kw][in/groups], < 2^wbits) for tier t. g's channels,
    /// kernel, stride, padding and groups are the layer's; its batch, height and width only have
    /// to be a valid example (run takes the real ones).
    static status make(int wbits, int abits, const conv_geometry& g, const std::uint8_t* weights, weight_form form,
                       isa t, int_conv& out) {
        if (!valid_bits(wbits) || !valid_bits(abits)) return status::bad_bit_width;
        if (const status st = g.check(); st != status::ok) return st;
        if (g.reduction() > max_reduction(wbits, abits, form)) return status::bad_shape;
        const bool binary = wbits == 1 && abits == 1;
        if (t == isa::best) t = best_isa(binary);
        if (!isa_available(t, binary)) return status::unsupported;
        int_conv c;
        c.m_geo = g;
        c.m_wbits = wbits;
        c.m_abits = abits;
        c.m_form = form;
        c.m_isa = t;
        // W1A1 runs AND + popcount, except on AMX, whose int8 tiles on 0/1 codes are faster
        // (measured: 540 vs 110 GOP/s on ResNet-20's 16-channel layer, scripts/bench_deploy.sh)
        c.m_binary = binary && t != isa::amx;
        const std::size_t cog = g.out_per_group(), K = g.reduction();
        c.m_codes.assign(packed_bytes(wbits, g.weight_size()), 0);  // what a model file stores
        if (const status st = pack_codes(wbits, weights, g.weight_size(), c.m_codes.data()); st != status::ok) return st;
        if (c.m_binary) {
            c.m_bshape = kernels::binary_shape{cog, K};
            c.m_bits.resize(c.m_bshape.weight_words() * g.groups);
            for (std::size_t gi = 0; gi < g.groups; ++gi)
                if (const status st = kernels::pack_binary_weights(c.m_bshape, weights + gi * cog * K, K,
                                                                   c.m_bits.data() + gi * c.m_bshape.weight_words());
                    st != status::ok)
                    return st;
        } else {
            // AVX-512 VNNI's vpdpbusd and AMX's tdpbusd sum byte quads in int32: every pair
            // runs as bytes there; AMX reads whole 64-byte tiles of the reduction
            const auto kind = kernels::kind_for(wbits, abits, t == isa::avx512 || t == isa::amx);
            const std::size_t align = t == isa::amx ? kernels::amx::k_align : 0;
            c.m_shape = kernels::packed_shape{kind, cog, K, kernels::weight_bias(kind, wbits), align};
#ifdef SQAKD_DEPLOY_AMX
            c.m_direct = t == isa::amx && kernels::amx::direct_applies(g);  // implicit GEMM, no im2col
#endif
            const std::size_t words = (c.m_shape.bytes() + 1) / 2;  // int16 storage keeps the words aligned
            c.m_packed.resize(words * g.groups);
            c.m_group_stride = words;
            for (std::size_t gi = 0; gi < g.groups; ++gi)
                if (const status st = kernels::pack_weights(wbits, c.m_shape, weights + gi * cog * K, K,
                                                            c.m_packed.data() + gi * words);
                    st != status::ok)
                    return st;
        }
        out = std::move(c);
        return status::ok;
    }

    isa tier() const noexcept { return m_isa; }
    const conv_geometry& geometry() const noexcept { return m_geo; }
    int weight_bits() const noexcept { return m_wbits; }
    int act_bits() const noexcept { return m_abits; }
    weight_form form() const noexcept { return m_form; }
    /// The weight codes [out][kh][kw][in/groups] packed at weight_bits() (packing.hpp's stream).
    const std::vector<std::uint8_t>& packed_codes() const noexcept { return m_codes; }

    /// Bytes of workspace one run needs (any alignment; the kernels load unaligned).
    std::size_t workspace_bytes() const noexcept {
        // binary: the gathered codes (one byte each, 64 per word) and their packed words
        const std::size_t row = m_binary ? m_bshape.words() * (8 + 64) : m_shape.k_padded();
        const std::size_t im2col = row_block * (row + sizeof(std::int32_t)) + 64;
#ifdef SQAKD_DEPLOY_AMX
        if (m_direct) return std::max(im2col, kernels::amx::direct_workspace_bytes(m_geo));
#endif
        return im2col;
    }

    /// x: NHWC codes (batch x height x width x in_channels), y: NHWC int32 (the output size of
    /// the geometry at that batch, height and width); workspace: workspace_bytes() bytes.
    status run(std::size_t batch, std::size_t height, std::size_t width, const std::uint8_t* x, std::int32_t* y,
               void* workspace) const noexcept {
        conv_geometry g = m_geo;
        g.batch = batch;
        g.height = height;
        g.width = width;
        if (const status st = g.check(); st != status::ok) return st;
#ifdef SQAKD_DEPLOY_AMX
        // the direct path at the made height and width (a larger image than the made one would
        // need more workspace than workspace_bytes() promised: it takes im2col)
        if (m_direct && kernels::amx::direct_workspace_bytes(g) <= workspace_bytes()) {
            kernels::amx::conv_direct(g, m_shape, m_packed.data(), m_form, batch, x, y, workspace);
            return status::ok;
        }
#endif
        const std::size_t rows = batch * g.out_h() * g.out_w();
        for (std::size_t gi = 0; gi < g.groups; ++gi)
            for (std::size_t r0 = 0; r0 < rows; r0 += row_block)
                block(g, gi, r0, rows - r0 < row_block ? rows - r0 : row_block, x, y, workspace);
        return status::ok;
    }

private:
    /// dst[0..n) = src[0..n) (src null: zeros) in fixed-size pieces the compiler inlines: the
    /// segments here are 1 to a few hundred bytes, too short for a call to memcpy to pay.
    static void copy_small(std::uint8_t* dst, const std::uint8_t* src, std::size_t n) noexcept {
        if (!src) {
            for (; n >= 32; n -= 32, dst += 32) std::memset(dst, 0, 32);
            for (; n >= 8; n -= 8, dst += 8) std::memset(dst, 0, 8);
            for (; n; --n) *dst++ = 0;
            return;
        }
        for (; n >= 32; n -= 32, dst += 32, src += 32) std::memcpy(dst, src, 32);
        for (; n >= 8; n -= 8, dst += 8, src += 8) std::memcpy(dst, src, 8);
        for (; n; --n) *dst++ = *src++;
    }

    /// The output pixel (image, row, column) of GEMM row r, advanced one row at a time (one
    /// division per block instead of three per row).
    struct pixel {
        std::size_t oh, ow, n, oy, ox;
        pixel(const conv_geometry& g, std::size_t r) noexcept
            : oh(g.out_h()), ow(g.out_w()), n(r / (oh * ow)), oy(r / ow % oh), ox(r % ow) {}
        void next() noexcept {
            if (++ox == ow) {
                ox = 0;
                if (++oy == oh) oy = 0, ++n;
            }
        }
    };

    /// Writes output pixel p's receptive field (group gi) to dst as K codes in [kh][kw][in/g]
    /// order, padding as code 0. Ungrouped, a kernel row inside the image is kernel_w * in
    /// contiguous NHWC codes: one copy.
    static void gather_row(const conv_geometry& g, std::size_t gi, const pixel& p, const std::uint8_t* x,
                           std::uint8_t* dst) noexcept {
        const std::size_t cig = g.in_per_group(), span = g.kernel_w * cig;
        const std::size_t iy0 = p.oy * g.stride_h, ix0 = p.ox * g.stride_w;  // + pad, kept non-negative
        const bool inside_x = ix0 >= g.pad_w && ix0 - g.pad_w + g.kernel_w <= g.width;
        for (std::size_t ky = 0; ky < g.kernel_h; ++ky, dst += span) {
            const std::size_t iy = iy0 + ky;
            if (iy < g.pad_h || iy - g.pad_h >= g.height) {
                copy_small(dst, nullptr, span);
                continue;
            }
            const std::uint8_t* src = x + (p.n * g.height + (iy - g.pad_h)) * g.width * g.in_channels + gi * cig;
            if (inside_x && g.groups == 1) {
                copy_small(dst, src + (ix0 - g.pad_w) * g.in_channels, span);
                continue;
            }
            for (std::size_t kx = 0; kx < g.kernel_w; ++kx) {
                const std::size_t ix = ix0 + kx;
                copy_small(dst + kx * cig,
                           ix < g.pad_w || ix - g.pad_w >= g.width ? nullptr : src + (ix - g.pad_w) * g.in_channels,
                           cig);
            }
        }
    }

    void block(const conv_geometry& g, std::size_t gi, std::size_t r0, std::size_t m, const std::uint8_t* x,
               std::int32_t* y, void* workspace) const noexcept {
        const std::size_t K = g.reduction(), cog = g.out_per_group();
        auto* ws = static_cast<unsigned char*>(workspace);
        std::int32_t* c = y + r0 * g.out_channels + gi * cog;
        if (m_binary) {
            const std::size_t words = m_bshape.words();
            auto* bits = reinterpret_cast<std::uint64_t*>(ws + (64 - reinterpret_cast<std::uintptr_t>(ws) % 64) % 64);
            // gather the codes as bytes (memcpy per kernel position), then pack 8 bytes of 0/1
            // at a time: (v * 0x0102040810204080) >> 56 moves byte i's low bit to bit i
            std::uint8_t* bytes = reinterpret_cast<std::uint8_t*>(bits + row_block * words);
            const std::size_t kb = words * 64;
            pixel px(g, r0);
            for (std::size_t i = 0; i < m; ++i, px.next()) {
                std::uint8_t* row = bytes;
                gather_row(g, gi, px, x, row);
                std::memset(row + K, 0, kb - K);
                std::uint64_t* dst = bits + i * words;
                for (std::size_t j = 0; j < words; ++j) {
                    std::uint64_t word = 0;
                    for (std::size_t q = 0; q < 8; ++q) {
                        std::uint64_t v;
                        std::memcpy(&v, row + j * 64 + q * 8, 8);
                        word |= ((v * 0x0102040810204080ull) >> 56) << (q * 8);
                    }
                    dst[j] = word;
                }
            }
            kernels::binary_gemm_args a;
            a.m = m;
            a.a = bits;
            a.lda = words;
            a.w = m_bits.data() + gi * m_bshape.weight_words();
            a.shape = m_bshape;
            a.form = m_form;
            a.c = c;
            a.ldc = g.out_channels;
            run_binary(a);
            return;
        }
        const std::size_t kp = m_shape.k_padded();
        std::int32_t* sums = reinterpret_cast<std::int32_t*>(ws);
        std::uint8_t* cols = ws + row_block * sizeof(std::int32_t);
        const std::uint8_t* a = cols;
        std::size_t lda = kp;
        const bool direct = g.kernel_h == 1 && g.kernel_w == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 &&
                            g.pad_w == 0 && g.groups == 1 && kp == K;
        if (direct) {
            a = x + r0 * g.in_channels;
            lda = g.in_channels;
        } else {
            pixel px(g, r0);
            for (std::size_t i = 0; i < m; ++i, px.next()) {
                std::uint8_t* dst = cols + i * kp;
                gather_row(g, gi, px, x, dst);
                copy_small(dst + K, nullptr, kp - K);
            }
        }
        kernels::row_sums(a, m, K, lda, sums);
        kernels::gemm_args args;
        args.m = m;
        args.a = a;
        args.lda = lda;
        args.w = m_packed.data() + gi * m_group_stride;
        args.shape = m_shape;
        args.a_sum = sums;
        args.form = m_form;
        args.c = c;
        args.ldc = g.out_channels;
        run_gemm(args);
    }

    void run_gemm(const kernels::gemm_args& a) const noexcept {
        switch (m_isa) {
#ifdef SQAKD_DEPLOY_X86
            case isa::amx: kernels::amx::gemm(a); return;
            case isa::avx512: kernels::avx512vnni::gemm(a); return;
            case isa::avx2: kernels::avx2::gemm(a); return;
            case isa::sse41: kernels::sse41::gemm(a); return;
#endif
            default: kernels::generic::gemm(a); return;
        }
    }
    void run_binary(const kernels::binary_gemm_args& a) const noexcept {
        switch (m_isa) {
#ifdef SQAKD_DEPLOY_X86
            case isa::avx512: kernels::avx512vpopcntdq::binary_gemm(a); return;
            case isa::avx2: kernels::avx2::binary_gemm(a); return;
#endif
            default: kernels::generic::binary_gemm(a); return;
        }
    }

    conv_geometry m_geo;
    int m_wbits = 0, m_abits = 0;
    weight_form m_form;
    isa m_isa = isa::generic;
    bool m_binary = false;
    bool m_direct = false;  ///< AMX implicit GEMM (kernels/x86/amx/conv_direct.hpp)
    kernels::packed_shape m_shape;
    kernels::binary_shape m_bshape;
    std::size_t m_group_stride = 0;
    std::vector<std::uint8_t> m_codes;
    std::vector<std::int16_t> m_packed;
    std::vector<std::uint64_t> m_bits;
};

}  // namespace sqakd::deploy

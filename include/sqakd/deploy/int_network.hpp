// sqakd/deploy/int_network.hpp - the integer network: what deploy::compile(student) produces.
//
// A flat list of steps over NHWC buffers, the float32 residual stream of SQAKD.md §4 between
// quantized convolutions:
//   fp_conv      float conv (first layer, FP shortcuts), BatchNorm folded, optional ReLU
//   quantize     float -> codes with the next quantized layer's activation grid
//   qconv        codes -> int_conv -> either the next layer's codes (threshold requantization,
//                when BN + ReLU + another quantized conv follow) or floats (folded affine,
//                optional ReLU: when the residual add follows)
//   save         keep the current floats as the residual input
//   add_relu     relu(current + shortcut(saved)); shortcut identity or option A
//   global_pool  mean over H x W
//   fc           float linear layer (the BatchNorm1d before it folded)
// A compiled network is immutable: run() takes a workspace, one per thread.
//
//   deploy::int_network net = deploy::compile(student, {1, 28, 28});
//   deploy::int_network::workspace ws;
//   std::vector<float> logits(batch * net.classes());
//   net.run(images_nhwc, batch, logits.data(), ws);
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "sqakd/deploy/int_conv.hpp"
#include "sqakd/deploy/requant.hpp"
#include "sqakd/deploy/status.hpp"

namespace sqakd::deploy {

struct dims {
    std::size_t c = 0, h = 0, w = 0;
    std::size_t size() const noexcept { return c * h * w; }
};

enum class step_kind { fp_conv, quantize, qconv, save, add_relu, global_pool, fc };

struct step {
    step_kind kind = step_kind::fp_conv;
    dims in, out;
    // fp_conv: weights [out][kh][kw][in/groups] with BN folded, bias per output channel
    conv_geometry geo;
    std::vector<float> w, b;
    bool relu = false;
    // quantize: the activation grid; qconv: int_conv + epilogue
    act_grid grid;
    int_conv conv;
    bool to_codes = false;  ///< qconv: thresholds to the next layer's codes (else floats M*acc + B)
    thresholds th;
    std::vector<float> m_mul, m_add;  ///< qconv float epilogue per channel
    // add_relu: shortcut
    bool option_a = false;
    std::size_t stride = 1, pad_c = 0;
    // fc: weights [out][in], bias
    std::size_t fc_in = 0, fc_out = 0;
    // reporting
    std::string name;
    int wbits = 32, abits = 32;
};

class int_network {
public:
    /// Per-thread buffers; grown on first use for a batch size, reused afterwards.
    struct workspace {
        std::vector<float> f, f2, saved, wt;
        std::vector<std::uint8_t> c, c2;
        std::vector<std::int32_t> acc;
        std::vector<unsigned char> conv;
    };

    std::vector<step>& steps() { return m_steps; }
    const std::vector<step>& steps() const { return m_steps; }
    dims input() const noexcept { return m_in; }
    void set_input(dims d) noexcept { m_in = d; }
    std::size_t classes() const noexcept { return m_steps.empty() ? 0 : m_steps.back().out.size(); }

    /// The model size in bytes, by the formula of the README:
    ///   sum over quantized convs of ceil(weights * wbits / 8)
    /// + 4 bytes per FP parameter (FP convs and the FC, BatchNorm folded in)
    /// + per-channel constants: 4 bytes per threshold ((2^a - 1) per channel) plus 1 byte of
    ///   direction when a quantized conv requantizes into the next layer's codes, 8 bytes
    ///   (scale, bias) per channel when it produces floats
    /// + 12 bytes per activation quantizer (clip low, clip high, 1/step as float32).
    std::size_t model_bytes() const noexcept {
        std::size_t bytes = 0;
        for (const auto& s : m_steps) bytes += step_bytes(s);
        return bytes;
    }
    /// Bytes of the quantized convs' packed weights alone.
    std::size_t packed_weight_bytes() const noexcept {
        std::size_t bytes = 0;
        for (const auto& s : m_steps)
            if (s.kind == step_kind::qconv) bytes += packed_bytes(s.wbits, s.conv.geometry().weight_size());
        return bytes;
    }
    static std::size_t step_bytes(const step& s) noexcept {
        switch (s.kind) {
            case step_kind::fp_conv:
            case step_kind::fc: return 4 * (s.w.size() + s.b.size());
            case step_kind::quantize: return 12;
            case step_kind::qconv:
                return packed_bytes(s.wbits, s.conv.geometry().weight_size()) +
                       (s.to_codes ? s.out.c * (4 * static_cast<std::size_t>(s.th.levels() - 1) + 1) : 8 * s.out.c);
            default: return 0;
        }
    }

    /// x: batch images NHWC float (normalised as in training); logits: batch x classes().
    status run(const float* x, std::size_t batch, float* logits, workspace& ws) const {
        if (m_steps.empty() || batch == 0) return status::bad_shape;
        std::size_t fmax = m_in.size(), cmax = 0, amax = 0, wmax = 0;
        for (const auto& s : m_steps) {
            fmax = std::max({fmax, s.in.size(), s.out.size()});
            if (s.kind == step_kind::qconv || s.kind == step_kind::quantize) cmax = std::max({cmax, s.in.size(), s.out.size()});
            if (s.kind == step_kind::qconv) {
                amax = std::max(amax, s.out.size());
                wmax = std::max(wmax, s.conv.workspace_bytes());
            }
        }
        grow(ws.f, batch * fmax);
        grow(ws.f2, batch * fmax);
        grow(ws.saved, batch * fmax);
        grow(ws.c, batch * cmax);
        grow(ws.c2, batch * cmax);
        grow(ws.acc, batch * amax);
        grow(ws.conv, wmax);
        std::copy(x, x + batch * m_in.size(), ws.f.begin());
        for (const auto& s : m_steps) {
            const std::size_t ni = batch * s.in.size(), no = batch * s.out.size();
            switch (s.kind) {
                case step_kind::fp_conv:
                    fp_conv(s, batch, ws.f.data(), ws.f2.data(), ws.wt);
                    ws.f.swap(ws.f2);
                    break;
                case step_kind::quantize: s.grid.codes(ws.f.data(), ni, ws.c.data()); break;
                case step_kind::qconv: {
                    if (const status st = s.conv.run(batch, s.in.h, s.in.w, ws.c.data(), ws.acc.data(), ws.conv.data());
                        st != status::ok)
                        return st;
                    const std::size_t C = s.out.c, pixels = no / C;
                    if (s.to_codes) {
                        s.th.codes(ws.acc.data(), ws.c2.data(), pixels);
                        ws.c.swap(ws.c2);
                    } else {
                        const float* mul = s.m_mul.data();
                        const float* add = s.m_add.data();
                        for (std::size_t p = 0; p < pixels; ++p) {
                            const std::int32_t* a = ws.acc.data() + p * C;
                            float* o = ws.f.data() + p * C;
                            if (s.relu)
                                for (std::size_t c = 0; c < C; ++c) o[c] = std::max(mul[c] * static_cast<float>(a[c]) + add[c], 0.0f);
                            else
                                for (std::size_t c = 0; c < C; ++c) o[c] = mul[c] * static_cast<float>(a[c]) + add[c];
                        }
                    }
                    break;
                }
                case step_kind::save:
                    std::copy(ws.f.begin(), ws.f.begin() + static_cast<std::ptrdiff_t>(ni), ws.saved.begin());
                    break;
                case step_kind::add_relu: add_relu(s, batch, ws.saved.data(), ws.f.data()); break;
                case step_kind::global_pool: {
                    const std::size_t hw = s.in.h * s.in.w, C = s.in.c;
                    for (std::size_t n = 0; n < batch; ++n)
                        for (std::size_t c = 0; c < C; ++c) {
                            float acc = 0;
                            for (std::size_t p = 0; p < hw; ++p) acc += ws.f[(n * hw + p) * C + c];
                            ws.f2[n * C + c] = acc / static_cast<float>(hw);
                        }
                    ws.f.swap(ws.f2);
                    break;
                }
                case step_kind::fc:
                    for (std::size_t n = 0; n < batch; ++n)
                        for (std::size_t o = 0; o < s.fc_out; ++o) {
                            float acc = s.b[o];
                            for (std::size_t i = 0; i < s.fc_in; ++i) acc += s.w[o * s.fc_in + i] * ws.f[n * s.fc_in + i];
                            ws.f2[n * s.fc_out + o] = acc;
                        }
                    ws.f.swap(ws.f2);
                    break;
            }
        }
        std::copy(ws.f.begin(), ws.f.begin() + static_cast<std::ptrdiff_t>(batch * classes()), logits);
        return status::ok;
    }

    /// run() over `threads` threads (std::thread), the batch split into contiguous chunks, one
    /// workspace each (ws grows to `threads` entries). Same results as run(): images are
    /// independent and each is computed the same way.
    status run_parallel(const float* x, std::size_t batch, float* logits, std::vector<workspace>& ws,
                        unsigned threads) const {
        if (threads <= 1 || batch < 2) {
            if (ws.empty()) ws.resize(1);
            return run(x, batch, logits, ws[0]);
        }
        if (threads > batch) threads = static_cast<unsigned>(batch);
        if (ws.size() < threads) ws.resize(threads);
        std::vector<status> st(threads, status::ok);
        std::vector<std::thread> pool;
        const std::size_t per_in = m_in.size(), per_out = classes();
        for (unsigned t = 0; t < threads; ++t) {
            const std::size_t b0 = batch * t / threads, b1 = batch * (t + 1) / threads;
            auto work = [&, t, b0, b1] { st[t] = run(x + b0 * per_in, b1 - b0, logits + b0 * per_out, ws[t]); };
            if (t + 1 < threads)
                pool.emplace_back(work);
            else
                work();  // the calling thread takes the last chunk
        }
        for (auto& th : pool) th.join();
        for (status s : st)
            if (s != status::ok) return s;
        return status::ok;
    }

private:
    template <class V>
    static void grow(V& v, std::size_t n) {
        if (v.size() < n) v.resize(n);
    }

    /// Direct float convolution; the innermost loop runs over the output channels of a group
    /// (weights transposed to [group][kh][kw][in/g][out/g] into wt), which the compiler
    /// vectorises, so that a 1-channel first layer is not a loop of length 1.
    static void fp_conv(const step& s, std::size_t batch, const float* x, float* y, std::vector<float>& wt) {
        const conv_geometry& g = s.geo;
        const std::size_t H = s.in.h, W = s.in.w, Ci = s.in.c, oh = s.out.h, ow = s.out.w, Co = s.out.c;
        const std::size_t cig = Ci / g.groups, cog = Co / g.groups, kk = g.kernel_h * g.kernel_w;
        grow(wt, s.w.size());
        for (std::size_t co = 0; co < Co; ++co)
            for (std::size_t p = 0; p < kk; ++p)
                for (std::size_t ci = 0; ci < cig; ++ci)
                    wt[(((co / cog) * kk + p) * cig + ci) * cog + co % cog] = s.w[(co * kk + p) * cig + ci];
        std::vector<float> acc(cog);
        for (std::size_t n = 0; n < batch; ++n)
            for (std::size_t oy = 0; oy < oh; ++oy)
                for (std::size_t ox = 0; ox < ow; ++ox)
                    for (std::size_t gi = 0; gi < g.groups; ++gi) {
                        float* a = acc.data();
                        for (std::size_t o = 0; o < cog; ++o) a[o] = s.b[gi * cog + o];
                        for (std::size_t ky = 0; ky < g.kernel_h; ++ky) {
                            const std::size_t iy = oy * g.stride_h + ky;
                            if (iy < g.pad_h || iy - g.pad_h >= H) continue;
                            for (std::size_t kx = 0; kx < g.kernel_w; ++kx) {
                                const std::size_t ix = ox * g.stride_w + kx;
                                if (ix < g.pad_w || ix - g.pad_w >= W) continue;
                                const float* xp = x + ((n * H + iy - g.pad_h) * W + ix - g.pad_w) * Ci + gi * cig;
                                const float* wp = wt.data() + ((gi * kk + ky * g.kernel_w + kx) * cig) * cog;
                                for (std::size_t ci = 0; ci < cig; ++ci) {
                                    const float xv = xp[ci];
                                    const float* w = wp + ci * cog;
                                    for (std::size_t o = 0; o < cog; ++o) a[o] += w[o] * xv;
                                }
                            }
                        }
                        float* out = y + ((n * oh + oy) * ow + ox) * Co + gi * cog;
                        for (std::size_t o = 0; o < cog; ++o) out[o] = s.relu ? std::max(a[o], 0.0f) : a[o];
                    }
    }

    static void add_relu(const step& s, std::size_t batch, const float* saved, float* f) {
        const std::size_t oh = s.out.h, ow = s.out.w, C = s.out.c;
        if (!s.option_a) {
            for (std::size_t i = 0; i < batch * s.out.size(); ++i) f[i] = std::max(f[i] + saved[i], 0.0f);
            return;
        }
        // option A: x[:, :, ::stride, ::stride] with pad_c zero channels before and after
        const std::size_t H = s.in.h, W = s.in.w, Ci = s.in.c;
        for (std::size_t n = 0; n < batch; ++n)
            for (std::size_t y = 0; y < oh; ++y)
                for (std::size_t x = 0; x < ow; ++x) {
                    float* o = f + ((n * oh + y) * ow + x) * C;
                    const float* in = saved + ((n * H + y * s.stride) * W + x * s.stride) * Ci;
                    for (std::size_t c = 0; c < C; ++c) {
                        const float sc = c >= s.pad_c && c - s.pad_c < Ci ? in[c - s.pad_c] : 0.0f;
                        o[c] = std::max(o[c] + sc, 0.0f);
                    }
                }
    }

    dims m_in;
    std::vector<step> m_steps;
};

}  // namespace sqakd::deploy

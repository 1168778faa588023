// sqakd/nn/conv2d.hpp - 2-D convolution (stride, zero padding, groups incl. depthwise, bias).
//
//   nn::conv2d<In, Out, K, Stride = 1, Pad = 0, Groups = 1, Bias = false, T = float>
//
// Weight layout [Out, In/Groups, K, K] (PyTorch's), input [N, In, H, W], output
// [N, Out, Ho, Wo] with Ho = (H + 2 Pad - K) / Stride + 1.
//
// Example:
//   nn::conv2d<16, 32, 3, 2, 1> conv;     // 3x3, stride 2, padding 1, no bias
//   const auto& y = conv.forward(x, nn::mode::train);
//
// Implementation: stride-1 convolutions without groups (every conv of the CIFAR ResNets but
// the two downsampling ones) run on the implicit-GEMM SIMD kernels of detail/conv_direct.hpp:
// forward, backward-data (a convolution of dY with the flipped weights) and backward-weights,
// one image per task. Everything else uses im2col + OpenBLAS GEMM. Images are processed in chunks whose column count
// (images x Ho x Wo) is at least ~512, so the late 7x7 stages still give OpenBLAS wide
// matrices; chunks are split statically across OpenMP threads; weight gradients are summed
// per thread and reduced in thread order (deterministic for a fixed thread count).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "sqakd/core/gemm.hpp"
#include "sqakd/core/parallel.hpp"
#include "sqakd/nn/detail/conv_direct.hpp"
#include "sqakd/nn/layer.hpp"

namespace sqakd::nn {

namespace detail {

/// Geometry of one convolution call.
struct conv_geom {
    std::size_t n, c, h, w;    // input
    std::size_t ho, wo;        // output spatial
    int k, s, p;
    std::size_t hw_out() const { return ho * wo; }
};

/// Writes rows [c0*K*K, (c0+cn)*K*K) of the im2col matrix of image `x` (shape [C, H, W])
/// into `col`, whose rows have length `ld`, starting at column `col_off`.
template <class T>
void im2col(const T* x, const conv_geom& g, std::size_t c0, std::size_t cn, T* col, std::size_t ld,
            std::size_t col_off) {
    const int K = g.k, S = g.s, P = g.p;
    const long H = static_cast<long>(g.h), W = static_cast<long>(g.w);
    const long Ho = static_cast<long>(g.ho), Wo = static_cast<long>(g.wo);
    std::size_t row = 0;
    for (std::size_t c = c0; c < c0 + cn; ++c) {
        const T* xc = x + c * g.h * g.w;
        for (int kh = 0; kh < K; ++kh) {
            for (int kw = 0; kw < K; ++kw, ++row) {
                T* dst = col + row * ld + col_off;
                // valid ow: 0 <= ow*S - P + kw < W
                long ow0 = 0;
                while (ow0 < Wo && ow0 * S - P + kw < 0) ++ow0;
                long ow1 = Wo;
                while (ow1 > ow0 && (ow1 - 1) * S - P + kw >= W) --ow1;
                for (long oh = 0; oh < Ho; ++oh) {
                    T* d = dst + oh * Wo;
                    const long ih = oh * S - P + kh;
                    if (ih < 0 || ih >= H) {
                        std::fill(d, d + Wo, T(0));
                        continue;
                    }
                    const T* src = xc + ih * W + (ow0 * S - P + kw);
                    std::fill(d, d + ow0, T(0));
                    if (S == 1) {
                        std::memcpy(d + ow0, src, static_cast<std::size_t>(ow1 - ow0) * sizeof(T));
                    } else {
                        for (long ow = ow0; ow < ow1; ++ow) d[ow] = src[(ow - ow0) * S];
                    }
                    std::fill(d + ow1, d + Wo, T(0));
                }
            }
        }
    }
}

/// Adds the im2col-shaped gradient `col` back into image gradient `dx` ([C, H, W]).
template <class T>
void col2im_add(const T* col, std::size_t ld, std::size_t col_off, const conv_geom& g,
                std::size_t c0, std::size_t cn, T* dx) {
    const int K = g.k, S = g.s, P = g.p;
    const long H = static_cast<long>(g.h), W = static_cast<long>(g.w);
    const long Ho = static_cast<long>(g.ho), Wo = static_cast<long>(g.wo);
    std::size_t row = 0;
    for (std::size_t c = c0; c < c0 + cn; ++c) {
        T* xc = dx + c * g.h * g.w;
        for (int kh = 0; kh < K; ++kh) {
            for (int kw = 0; kw < K; ++kw, ++row) {
                const T* srcrow = col + row * ld + col_off;
                long ow0 = 0;
                while (ow0 < Wo && ow0 * S - P + kw < 0) ++ow0;
                long ow1 = Wo;
                while (ow1 > ow0 && (ow1 - 1) * S - P + kw >= W) --ow1;
                for (long oh = 0; oh < Ho; ++oh) {
                    const long ih = oh * S - P + kh;
                    if (ih < 0 || ih >= H) continue;
                    const T* s = srcrow + oh * Wo;
                    T* d = xc + ih * W + (ow0 * S - P + kw);
                    if (S == 1) {
                        for (long ow = ow0; ow < ow1; ++ow) d[ow - ow0] += s[ow];
                    } else {
                        for (long ow = ow0; ow < ow1; ++ow) d[(ow - ow0) * S] += s[ow];
                    }
                }
            }
        }
    }
}

/// A reusable scratch buffer. Large per-call std::vectors are mmapped and unmapped by malloc
/// every call, and the page faults cost several percent of a training step; layers keep one
/// of these per thread and purpose instead. get() returns n elements, zero-filled whenever the
/// size or the geometry key changed (the padded-image buffers rely on their zero borders).
template <class T>
struct scratch_slot {
    std::vector<T> data;
    std::size_t key = 0;
    T* get(std::size_t n, std::size_t k) {
        if (data.size() != n || key != k) {
            data.assign(n, T(0));
            key = k;
        }
        return data.data();
    }
};

/// Per-thread scratch slots of one layer: slot(thread, purpose).
template <class T, std::size_t Purposes>
class scratch_pool {
public:
    /// Call outside parallel regions, before handing slots to `threads` threads.
    void reserve(int threads) {
        if (m_slots.size() < static_cast<std::size_t>(threads) * Purposes)
            m_slots.resize(static_cast<std::size_t>(threads) * Purposes);
    }
    scratch_slot<T>& slot(int thread, std::size_t purpose) {
        return m_slots[static_cast<std::size_t>(thread) * Purposes + purpose];
    }

private:
    std::vector<scratch_slot<T>> m_slots;
};

/// Images per chunk so that a chunk's GEMM has at least `target` columns.
inline std::size_t conv_chunk(std::size_t n, std::size_t hw, std::size_t target = 512) {
    return std::max<std::size_t>(1, std::min<std::size_t>(n, (target + hw - 1) / hw));
}

}  // namespace detail

template <int In, int Out, int K, int Stride = 1, int Pad = 0, int Groups = 1, bool Bias = false,
          class T = float>
class conv2d {
    static_assert(In > 0 && Out > 0, "conv2d: channel counts must be positive.");
    static_assert(K > 0 && Stride > 0 && Pad >= 0,
                  "conv2d: kernel and stride must be positive and padding non-negative.");
    static_assert(Groups > 0 && In % Groups == 0 && Out % Groups == 0,
                  "conv2d: Groups must divide both the input and the output channel count.");
    static_assert(std::is_floating_point_v<T>, "conv2d: the scalar type must be float or double.");

public:
    using scalar_type = T;
    static constexpr const char* kind = "conv2d";
    static constexpr int in_channels = In, out_channels = Out, kernel = K, stride = Stride,
                         padding = Pad, groups = Groups;
    static constexpr bool has_bias = Bias;

    conv2d() : m_w(shape_t{Out, In / Groups, K, K}), m_dw(shape_t{Out, In / Groups, K, K}) {
        m_w.fill(0);
        m_dw.fill(0);
        if constexpr (Bias) {
            m_b = tensor<T>(shape_t{Out});
            m_db = tensor<T>(shape_t{Out});
            m_b.fill(0);
            m_db.fill(0);
        }
    }

    /// Kaiming-normal (fan_in, gain sqrt 2) weights, as torch.nn.init.kaiming_normal_; bias
    /// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as PyTorch's default.
    void init(rng& g) {
        const double fan_in = static_cast<double>(In / Groups * K * K);
        fill_normal(m_w, g, std::sqrt(2.0 / fan_in));
        if constexpr (Bias) fill_uniform(m_b, g, 1.0 / std::sqrt(fan_in));
    }

    tensor<T>& weight() { return m_w; }
    tensor<T>& weight_grad() { return m_dw; }
    tensor<T>& bias() {
        static_assert(Bias, "conv2d: this convolution was declared without a bias.");
        return m_b;
    }
    tensor<T>& bias_grad() {
        static_assert(Bias, "conv2d: this convolution was declared without a bias.");
        return m_db;
    }

    detail::conv_geom geometry(const tensor<T>& x) const {
        check_shape(kind, x, {0, static_cast<std::size_t>(In), 0, 0});
        detail::conv_geom g{x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3], 0, 0, K, Stride, Pad};
        if (g.h + 2 * Pad < static_cast<std::size_t>(K) || g.w + 2 * Pad < static_cast<std::size_t>(K))
            throw error::shape_mismatch(std::string(kind) + ": input " + shape_str(x.shape()) +
                                        " is smaller than the " + std::to_string(K) + "x" +
                                        std::to_string(K) + " kernel with padding " + std::to_string(Pad));
        g.ho = (g.h + 2 * Pad - K) / Stride + 1;
        g.wo = (g.w + 2 * Pad - K) / Stride + 1;
        return g;
    }

    /// True when this configuration runs on the implicit-GEMM kernels.
    static constexpr bool direct_path = Groups == 1 && Pad <= K - 1;

    const tensor<T>& forward(const tensor<T>& x, mode = mode::train) {
        const auto g = geometry(x);
        m_x = &x;
        ensure_shape(m_y, {g.n, Out, g.ho, g.wo});
        if constexpr (direct_path) {
            forward_direct(x, g);
            return m_y;
        }
        const std::size_t hw = g.hw_out();
        const std::size_t nb = detail::conv_chunk(g.n, hw);
        const std::size_t chunks = (g.n + nb - 1) / nb;
        constexpr std::size_t Cg = In / Groups, Og = Out / Groups, Kc = Cg * K * K;
        const T* xp = x.data();
        T* yp = m_y.data();
        const T* wp = m_w.data();
        const std::size_t key = g.h << 32 | g.w;
        m_scratch.reserve(parallel_width(chunks));
        parallel_for(chunks, [&](std::size_t c0, std::size_t c1, int t) {
            T* colp = m_scratch.slot(t, s_col).get(Kc * nb * hw, key);
            T* tmpp = m_scratch.slot(t, s_tmp).get(nb > 1 ? Og * nb * hw : 0, key);
            for (std::size_t ch = c0; ch < c1; ++ch) {
                const std::size_t n0 = ch * nb, n1 = std::min(g.n, n0 + nb), cnt = n1 - n0;
                const std::size_t ld = cnt * hw;
                for (std::size_t gr = 0; gr < Groups; ++gr) {
                    for (std::size_t i = 0; i < cnt; ++i)
                        detail::im2col(xp + (n0 + i) * In * g.h * g.w, g, gr * Cg, Cg, colp, ld, i * hw);
                    const T* wg = wp + gr * Og * Kc;
                    if (cnt == 1) {
                        blas::gemm(false, false, Og, static_cast<int>(hw), Kc, T(1), wg, Kc, colp,
                                   static_cast<int>(ld), T(0), yp + (n0 * Out + gr * Og) * hw,
                                   static_cast<int>(hw));
                    } else {
                        blas::gemm(false, false, Og, static_cast<int>(ld), Kc, T(1), wg, Kc, colp,
                                   static_cast<int>(ld), T(0), tmpp, static_cast<int>(ld));
                        for (std::size_t i = 0; i < cnt; ++i)
                            for (std::size_t o = 0; o < Og; ++o)
                                std::memcpy(yp + ((n0 + i) * Out + gr * Og + o) * hw, tmpp + o * ld + i * hw,
                                            hw * sizeof(T));
                    }
                }
                if constexpr (Bias) {
                    for (std::size_t n = n0; n < n1; ++n)
                        for (std::size_t o = 0; o < Out; ++o) {
                            T* yo = yp + (n * Out + o) * hw;
                            const T b = m_b(o);
                            for (std::size_t j = 0; j < hw; ++j) yo[j] += b;
                        }
                }
            }
        });
        return m_y;
    }

    const tensor<T>& backward(const tensor<T>& dy, bool need_dx = true) {
        if (!m_x) throw std::logic_error("conv2d: backward() called before forward()");
        const tensor<T>& x = *m_x;
        const auto g = geometry(x);
        check_same_shape(kind, m_y, dy);
        const std::size_t hw = g.hw_out();
        const std::size_t nb = detail::conv_chunk(g.n, hw);
        const std::size_t chunks = (g.n + nb - 1) / nb;
        constexpr std::size_t Cg = In / Groups, Og = Out / Groups, Kc = Cg * K * K;
        if (need_dx) {
            ensure_shape(m_dx, {g.n, In, g.h, g.w});
        }
        if constexpr (direct_path) {
            backward_direct(x, dy, g, need_dx);
            return need_dx ? m_dx : detail::empty_tensor<T>();
        }
        const int p = parallel_width(chunks);
        const std::size_t key = g.h << 32 | g.w;
        m_scratch.reserve(p);
        // Per-thread partial weight/bias gradients, reduced in thread order below.
        for (int t = 0; t < p; ++t) {
            std::fill_n(m_scratch.slot(t, s_dw).get(m_w.size(), key), m_w.size(), T(0));
            std::fill_n(m_scratch.slot(t, s_db).get(Out, key), Out, T(0));
        }
        const T* xp = x.data();
        const T* dyp = dy.data();
        const T* wp = m_w.data();
        T* dxp = need_dx ? m_dx.data() : nullptr;
        parallel_for(chunks, [&](std::size_t c0, std::size_t c1, int t) {
            T* colp = m_scratch.slot(t, s_col).get(Kc * nb * hw, key);
            T* dcolp = m_scratch.slot(t, s_dcol).get(need_dx ? Kc * nb * hw : 0, key);
            T* dycp = m_scratch.slot(t, s_tmp).get(nb > 1 ? Og * nb * hw : 0, key);
            T* dw = m_scratch.slot(t, s_dw).data.data();
            for (std::size_t ch = c0; ch < c1; ++ch) {
                const std::size_t n0 = ch * nb, n1 = std::min(g.n, n0 + nb), cnt = n1 - n0;
                const std::size_t ld = cnt * hw;
                if (need_dx) std::fill(dxp + n0 * In * g.h * g.w, dxp + n1 * In * g.h * g.w, T(0));
                for (std::size_t gr = 0; gr < Groups; ++gr) {
                    const T* dyg;
                    if (cnt == 1) {
                        dyg = dyp + (n0 * Out + gr * Og) * hw;
                    } else {
                        for (std::size_t i = 0; i < cnt; ++i)
                            for (std::size_t o = 0; o < Og; ++o)
                                std::memcpy(dycp + o * ld + i * hw, dyp + ((n0 + i) * Out + gr * Og + o) * hw,
                                            hw * sizeof(T));
                        dyg = dycp;
                    }
                    for (std::size_t i = 0; i < cnt; ++i)
                        detail::im2col(xp + (n0 + i) * In * g.h * g.w, g, gr * Cg, Cg, colp, ld, i * hw);
                    // dW_g += dY_g [Og x ld] * col^T [ld x Kc]
                    blas::gemm(false, true, Og, Kc, static_cast<int>(ld), T(1), dyg, static_cast<int>(ld),
                               colp, static_cast<int>(ld), T(1), dw + gr * Og * Kc, Kc);
                    if (need_dx) {
                        // dcol [Kc x ld] = W_g^T [Kc x Og] * dY_g [Og x ld]
                        blas::gemm(true, false, Kc, static_cast<int>(ld), Og, T(1), wp + gr * Og * Kc, Kc, dyg,
                                   static_cast<int>(ld), T(0), dcolp, static_cast<int>(ld));
                        for (std::size_t i = 0; i < cnt; ++i)
                            detail::col2im_add(dcolp, ld, i * hw, g, gr * Cg, Cg,
                                               dxp + (n0 + i) * In * g.h * g.w);
                    }
                }
                if constexpr (Bias) {
                    T* db = m_scratch.slot(t, s_db).data.data();
                    for (std::size_t n = n0; n < n1; ++n)
                        for (std::size_t o = 0; o < Out; ++o) {
                            const T* d = dyp + (n * Out + o) * hw;
                            T s = 0;
                            for (std::size_t j = 0; j < hw; ++j) s += d[j];
                            db[o] += s;
                        }
                }
            }
        });
        T* dwp = m_dw.data();
        for (int t = 0; t < p; ++t) {
            const T* part = m_scratch.slot(t, s_dw).data.data();
            for (std::size_t i = 0; i < m_dw.size(); ++i) dwp[i] += part[i];
            if constexpr (Bias) {
                const T* bp = m_scratch.slot(t, s_db).data.data();
                for (std::size_t o = 0; o < Out; ++o) m_db(o) += bp[o];
            }
        }
        return need_dx ? m_dx : detail::empty_tensor<T>();
    }

    template <class F>
    void for_each_param(F&& f, const std::string& prefix = "") {
        f(prefix + "weight", m_w, m_dw, param_kind::weight);
        if constexpr (Bias) f(prefix + "bias", m_b, m_db, param_kind::bias);
    }
    template <class F>
    void for_each_buffer(F&&, const std::string& = "") {}

private:
    // Padded input of one image, split into Stride x Stride phases (polyphase): phase (a, b)
    // holds padded pixels (S*i + a, S*j + b) at (i, j), so [In][S*S][ph][pw] with
    // ph = ceil(Hp / S), pw = ceil(Wp / S), plus zero slack so the kernels' shifted row reads
    // (up to max offset + cols) stay inside the buffer. Tap (kh, kw) of a stride-S conv then
    // reads phase (kh % S, kw % S) shifted by (kh / S, kw / S): contiguous rows again, on a
    // wide output grid of Ho rows x pw columns. Stride 1 is the plain padded image.
    struct direct_geom {
        std::size_t hp, wp, ph, pw, cols, pad_len;  // forward: padded, phase, wide-grid columns, buffer
        std::size_t hq, wq, cols_dx, dpad_len;      // backward-data (stride 1): padded dY, grid over x
    };
    static direct_geom dgeom(const detail::conv_geom& g) {
        direct_geom d{};
        d.hp = g.h + 2 * Pad;
        d.wp = g.w + 2 * Pad;
        d.ph = (d.hp + Stride - 1) / Stride;
        d.pw = (d.wp + Stride - 1) / Stride;
        d.cols = detail::round_up_simd<T>(g.ho * d.pw);
        d.pad_len = In * Stride * Stride * d.ph * d.pw + d.cols + K * d.pw + K;
        constexpr std::size_t Q = K - 1 - Pad;
        d.hq = g.ho + 2 * Q;
        d.wq = g.wo + 2 * Q;
        d.cols_dx = detail::round_up_simd<T>(g.h * d.wq);
        d.dpad_len = Out * d.hq * d.wq + d.cols_dx + K * d.wq + K;
        return d;
    }
    // Copies image x into the interior of the padded buffer `out`. The border and the slack
    // are never written, so they keep the zeros the buffer was allocated with; a thread reuses
    // one buffer for all its images (same geometry) without clearing it again.
    static void pad_image(const T* x, std::size_t channels, std::size_t h, std::size_t w, std::size_t pad,
                          std::size_t hp, std::size_t wp, T* out) {
        for (std::size_t c = 0; c < channels; ++c)
            for (std::size_t r = 0; r < h; ++r)
                std::memcpy(out + (c * hp + r + pad) * wp + pad, x + (c * h + r) * w, w * sizeof(T));
    }
    // Polyphase copy of image x (see direct_geom); stride 1 is pad_image.
    static void pad_image_phases(const T* x, std::size_t h, std::size_t w, const direct_geom& d, T* out) {
        if constexpr (Stride == 1) {
            pad_image(x, In, h, w, Pad, d.hp, d.wp, out);
        } else {
            for (std::size_t c = 0; c < In; ++c)
                for (std::size_t r = 0; r < h; ++r) {
                    const std::size_t pr = r + Pad, a = pr % Stride, i = pr / Stride;
                    const T* src = x + (c * h + r) * w;
                    for (std::size_t b = 0; b < Stride; ++b) {
                        // padded columns pc = col + Pad with pc % Stride == b
                        T* dst = out + ((c * Stride * Stride + a * Stride + b) * d.ph + i) * d.pw;
                        std::size_t col = (b + Stride - Pad % Stride) % Stride;
                        for (; col < w; col += Stride) dst[(col + Pad) / Stride] = src[col];
                    }
                }
        }
    }
    // Row offsets of tap (c, kh, kw) in a polyphase buffer with phase planes of ph x pw.
    static std::vector<std::size_t> offsets(std::size_t channels, std::size_t ph, std::size_t pw,
                                            std::size_t stride = Stride) {
        std::vector<std::size_t> off;
        off.reserve(channels * K * K);
        for (std::size_t c = 0; c < channels; ++c)
            for (std::size_t kh = 0; kh < K; ++kh)
                for (std::size_t kw = 0; kw < K; ++kw)
                    off.push_back(((c * stride * stride + (kh % stride) * stride + kw % stride) * ph + kh / stride) * pw +
                                  kw / stride);
        return off;
    }

    void forward_direct(const tensor<T>& x, const detail::conv_geom& g) {
        const auto d = dgeom(g);
        constexpr std::size_t Kc = In * K * K;
        const auto apacked = detail::pack_a_all(m_w.data(), Out, Kc);
        const auto off = offsets(In, d.ph, d.pw);
        const T* xp = x.data();
        T* yp = m_y.data();
        const std::size_t hw = g.ho * g.wo;
        const std::size_t key = g.h << 32 | g.w;
        m_scratch.reserve(parallel_width(g.n));
        parallel_for(g.n, [&](std::size_t n0, std::size_t n1, int t) {
            T* xpad = m_scratch.slot(t, s_xpad_fwd).get(d.pad_len, key);
            T* wide = m_scratch.slot(t, s_wide).get(Out * d.cols, key);
            for (std::size_t n = n0; n < n1; ++n) {
                pad_image_phases(xp + n * In * g.h * g.w, g.h, g.w, d, xpad);
                detail::gemm_shifted(apacked.data(), Out, Kc, xpad, off.data(), d.cols, wide, d.cols);
                for (std::size_t o = 0; o < Out; ++o) {
                    T* yo = yp + (n * Out + o) * hw;
                    const T* src = wide + o * d.cols;
                    const T b = Bias ? m_b.data()[o] : T(0);
                    for (std::size_t r = 0; r < g.ho; ++r)
                        for (std::size_t c = 0; c < g.wo; ++c) yo[r * g.wo + c] = src[r * d.pw + c] + b;
                }
            }
        });
    }

    void backward_direct(const tensor<T>& x, const tensor<T>& dy, const detail::conv_geom& g, bool need_dx) {
        const auto d = dgeom(g);
        constexpr std::size_t Kc = In * K * K, Kd = Out * K * K, Q = K - 1 - Pad;
        const auto off = offsets(In, d.ph, d.pw);
        // Backward-data weights (stride 1): A'[ci][(co, kh, kw)] = W[co][ci][K-1-kh][K-1-kw].
        // Strided convs compute dX as col2im(W^T dY) with OpenBLAS instead.
        std::vector<T> apacked;
        std::vector<std::size_t> off_dx;
        if (need_dx && Stride == 1) {
            std::vector<T> wf(In * Kd);
            for (std::size_t co = 0; co < Out; ++co)
                for (std::size_t ci = 0; ci < In; ++ci)
                    for (std::size_t kh = 0; kh < K; ++kh)
                        for (std::size_t kw = 0; kw < K; ++kw)
                            wf[ci * Kd + (co * K + kh) * K + kw] =
                                m_w.data()[((co * In + ci) * K + (K - 1 - kh)) * K + (K - 1 - kw)];
            apacked = detail::pack_a_all(wf.data(), In, Kd);
            off_dx = offsets(Out, d.hq, d.wq, 1);
        }
        constexpr std::size_t Mp = detail::round_up_simd<T>(Out);
        const int p = parallel_width(g.n);
        const std::size_t key = g.h << 32 | g.w;
        m_scratch.reserve(p);
        // Per-thread partial weight gradients, transposed ([Kc][Mp]), reduced in thread order.
        for (int t = 0; t < p; ++t) {
            std::fill_n(m_scratch.slot(t, s_dw).get(Kc * Mp, key), Kc * Mp, T(0));
            std::fill_n(m_scratch.slot(t, s_db).get(Out, key), Out, T(0));
        }
        const T* xp = x.data();
        const T* dyp = dy.data();
        T* dxp = need_dx ? m_dx.data() : nullptr;
        const std::size_t hw = g.ho * g.wo;
        parallel_for(g.n, [&](std::size_t n0, std::size_t n1, int t) {
            T* xpad = m_scratch.slot(t, s_xpad_bwd).get(d.pad_len, key);
            T* gt = m_scratch.slot(t, s_gt).get(hw * Mp, key);
            T* dypad = m_scratch.slot(t, s_dypad).get(need_dx && Stride == 1 ? d.dpad_len : 0, key);
            T* dxw = m_scratch.slot(t, s_dxw).get(need_dx ? (Stride == 1 ? In * d.cols_dx : Kc * hw) : 0, key);
            T* dw = m_scratch.slot(t, s_dw).data.data();
            for (std::size_t n = n0; n < n1; ++n) {
                const T* dyn = dyp + n * Out * hw;
                pad_image_phases(xp + n * In * g.h * g.w, g.h, g.w, d, xpad);
                // dY transposed to [pixel][channel]; the padding channels stay zero.
                for (std::size_t o = 0; o < Out; ++o)
                    for (std::size_t j = 0; j < hw; ++j) gt[j * Mp + o] = dyn[o * hw + j];
                detail::wgrad_shifted(xpad, off.data(), Kc, g.ho, g.wo, d.pw, gt, Mp, dw);
                if constexpr (Bias) {
                    T* db = m_scratch.slot(t, s_db).data.data();
                    for (std::size_t o = 0; o < Out; ++o) {
                        T s = 0;
                        for (std::size_t j = 0; j < hw; ++j) s += dyn[o * hw + j];
                        db[o] += s;
                    }
                }
                if (need_dx && Stride != 1) {
                    // dcol [Kc x hw] = W^T [Kc x Out] * dY_n [Out x hw], then scatter-add
                    blas::gemm(true, false, Kc, static_cast<int>(hw), Out, T(1), m_w.data(), Kc, dyn,
                               static_cast<int>(hw), T(0), dxw, static_cast<int>(hw));
                    T* dxn = dxp + n * In * g.h * g.w;
                    std::fill(dxn, dxn + In * g.h * g.w, T(0));
                    detail::col2im_add(dxw, hw, 0, g, 0, In, dxn);
                } else if (need_dx) {
                    pad_image(dyn, Out, g.ho, g.wo, Q, d.hq, d.wq, dypad);
                    detail::gemm_shifted(apacked.data(), In, Kd, dypad, off_dx.data(), d.cols_dx, dxw, d.cols_dx);
                    T* dxn = dxp + n * In * g.h * g.w;
                    for (std::size_t c = 0; c < In; ++c)
                        for (std::size_t r = 0; r < g.h; ++r)
                            std::memcpy(dxn + (c * g.h + r) * g.w, dxw + c * d.cols_dx + r * d.wq,
                                        g.w * sizeof(T));
                }
            }
        });
        T* dwp = m_dw.data();
        for (int t = 0; t < p; ++t) {
            const T* part = m_scratch.slot(t, s_dw).data.data();
            for (std::size_t o = 0; o < Out; ++o)
                for (std::size_t k = 0; k < Kc; ++k) dwp[o * Kc + k] += part[k * Mp + o];
            if constexpr (Bias) {
                const T* bp = m_scratch.slot(t, s_db).data.data();
                for (std::size_t o = 0; o < Out; ++o) m_db(o) += bp[o];
            }
        }
    }

    // scratch purposes
    enum : std::size_t { s_col, s_tmp, s_dcol, s_dw, s_db, s_xpad_fwd, s_wide, s_xpad_bwd, s_gt, s_dypad, s_dxw, s_count };

    tensor<T> m_w, m_dw, m_b, m_db;
    tensor<T> m_y, m_dx;
    const tensor<T>* m_x = nullptr;
    detail::scratch_pool<T, s_count> m_scratch;
};

}  // namespace sqakd::nn

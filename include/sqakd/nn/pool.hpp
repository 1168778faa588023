// sqakd/nn/pool.hpp - max and average pooling, global average pooling, flatten.
//
//   nn::max_pool<K, Stride = K, Pad = 0, T>   padding acts as -inf; ties go to the first maximum
//                                             in scan order (as PyTorch's CPU kernel)
//   nn::avg_pool<K, Stride = K, Pad = 0, T>   divides by K*K (PyTorch's count_include_pad=True)
//   nn::global_avg_pool<T>                    [N, C, H, W] -> [N, C]
//   nn::flatten<T>                            [N, ...] -> [N, prod(...)]
//
// Output size is floor((H + 2 Pad - K) / Stride) + 1 (PyTorch's ceil_mode=False).
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "sqakd/core/parallel.hpp"
#include "sqakd/nn/layer.hpp"

namespace sqakd::nn {

namespace detail {
template <class Derived, int K, int Stride, int Pad, class T>
class pool_base {
    static_assert(K > 0 && Stride > 0 && Pad >= 0, "pool: kernel and stride must be positive, padding non-negative.");
    static_assert(2 * Pad <= K, "pool: padding must be at most half the kernel size (as in PyTorch).");

public:
    using scalar_type = T;
    void init(rng&) {}
    template <class F>
    void for_each_param(F&&, const std::string& = "") {}
    template <class F>
    void for_each_buffer(F&&, const std::string& = "") {}

protected:
    struct geom {
        std::size_t n, c, h, w, ho, wo;
    };
    geom geometry(const tensor<T>& x) const {
        check_shape(Derived::kind, x, {0, 0, 0, 0});
        geom g{x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3], 0, 0};
        if (g.h + 2 * Pad < static_cast<std::size_t>(K) || g.w + 2 * Pad < static_cast<std::size_t>(K))
            throw error::shape_mismatch(std::string(Derived::kind) + ": input " + shape_str(x.shape()) +
                                        " is smaller than the " + std::to_string(K) + "x" + std::to_string(K) +
                                        " window");
        g.ho = (g.h + 2 * Pad - K) / Stride + 1;
        g.wo = (g.w + 2 * Pad - K) / Stride + 1;
        return g;
    }
};
}  // namespace detail

template <int K, int Stride = K, int Pad = 0, class T = float>
class max_pool : public detail::pool_base<max_pool<K, Stride, Pad, T>, K, Stride, Pad, T> {
    using base = detail::pool_base<max_pool<K, Stride, Pad, T>, K, Stride, Pad, T>;

public:
    static constexpr const char* kind = "max_pool";

    const tensor<T>& forward(const tensor<T>& x, mode = mode::train) {
        const auto g = this->geometry(x);
        m_x = &x;
        ensure_shape(m_y, {g.n, g.c, g.ho, g.wo});
        m_arg.resize(m_y.size());
        const T* xp = x.data();
        T* yp = m_y.data();
        parallel_for(g.n * g.c, [&](std::size_t b, std::size_t e, int) {
            for (std::size_t nc = b; nc < e; ++nc) {
                const T* xc = xp + nc * g.h * g.w;
                for (std::size_t oh = 0; oh < g.ho; ++oh)
                    for (std::size_t ow = 0; ow < g.wo; ++ow) {
                        T best = -std::numeric_limits<T>::infinity();
                        std::int32_t arg = -1;
                        for (int kh = 0; kh < K; ++kh) {
                            const long ih = static_cast<long>(oh * Stride) - Pad + kh;
                            if (ih < 0 || ih >= static_cast<long>(g.h)) continue;
                            for (int kw = 0; kw < K; ++kw) {
                                const long iw = static_cast<long>(ow * Stride) - Pad + kw;
                                if (iw < 0 || iw >= static_cast<long>(g.w)) continue;
                                const T v = xc[ih * static_cast<long>(g.w) + iw];
                                if (arg < 0 || v > best || v != v) {
                                    best = v;
                                    arg = static_cast<std::int32_t>(ih * static_cast<long>(g.w) + iw);
                                }
                            }
                        }
                        const std::size_t o = (nc * g.ho + oh) * g.wo + ow;
                        yp[o] = best;
                        m_arg[o] = arg;
                    }
            }
        });
        return m_y;
    }

    const tensor<T>& backward(const tensor<T>& dy, bool need_dx = true) {
        if (!m_x) throw std::logic_error("max_pool: backward() called before forward()");
        check_same_shape(kind, m_y, dy);
        if (!need_dx) return detail::empty_tensor<T>();
        const auto g = this->geometry(*m_x);
        ensure_shape(m_dx, {g.n, g.c, g.h, g.w});
        const T* dyp = dy.data();
        T* dxp = m_dx.data();
        parallel_for(g.n * g.c, [&](std::size_t b, std::size_t e, int) {
            for (std::size_t nc = b; nc < e; ++nc) {
                T* dxc = dxp + nc * g.h * g.w;
                std::fill(dxc, dxc + g.h * g.w, T(0));
                for (std::size_t j = 0; j < g.ho * g.wo; ++j) {
                    const std::size_t o = nc * g.ho * g.wo + j;
                    dxc[m_arg[o]] += dyp[o];
                }
            }
        });
        return m_dx;
    }

private:
    tensor<T> m_y, m_dx;
    std::vector<std::int32_t> m_arg;
    const tensor<T>* m_x = nullptr;
};

template <int K, int Stride = K, int Pad = 0, class T = float>
class avg_pool : public detail::pool_base<avg_pool<K, Stride, Pad, T>, K, Stride, Pad, T> {
public:
    static constexpr const char* kind = "avg_pool";

    const tensor<T>& forward(const tensor<T>& x, mode = mode::train) {
        const auto g = this->geometry(x);
        m_x = &x;
        ensure_shape(m_y, {g.n, g.c, g.ho, g.wo});
        const T* xp = x.data();
        T* yp = m_y.data();
        const T inv = T(1) / T(K * K);
        parallel_for(g.n * g.c, [&](std::size_t b, std::size_t e, int) {
            for (std::size_t nc = b; nc < e; ++nc) {
                const T* xc = xp + nc * g.h * g.w;
                for (std::size_t oh = 0; oh < g.ho; ++oh)
                    for (std::size_t ow = 0; ow < g.wo; ++ow) {
                        T s = 0;
                        for (int kh = 0; kh < K; ++kh) {
                            const long ih = static_cast<long>(oh * Stride) - Pad + kh;
                            if (ih < 0 || ih >= static_cast<long>(g.h)) continue;
                            for (int kw = 0; kw < K; ++kw) {
                                const long iw = static_cast<long>(ow * Stride) - Pad + kw;
                                if (iw < 0 || iw >= static_cast<long>(g.w)) continue;
                                s += xc[ih * static_cast<long>(g.w) + iw];
                            }
                        }
                        yp[(nc * g.ho + oh) * g.wo + ow] = s * inv;
                    }
            }
        });
        return m_y;
    }

    const tensor<T>& backward(const tensor<T>& dy, bool need_dx = true) {
        if (!m_x) throw std::logic_error("avg_pool: backward() called before forward()");
        check_same_shape(kind, m_y, dy);
        if (!need_dx) return detail::empty_tensor<T>();
        const auto g = this->geometry(*m_x);
        ensure_shape(m_dx, {g.n, g.c, g.h, g.w});
        const T* dyp = dy.data();
        T* dxp = m_dx.data();
        const T inv = T(1) / T(K * K);
        parallel_for(g.n * g.c, [&](std::size_t b, std::size_t e, int) {
            for (std::size_t nc = b; nc < e; ++nc) {
                T* dxc = dxp + nc * g.h * g.w;
                std::fill(dxc, dxc + g.h * g.w, T(0));
                for (std::size_t oh = 0; oh < g.ho; ++oh)
                    for (std::size_t ow = 0; ow < g.wo; ++ow) {
                        const T d = dyp[(nc * g.ho + oh) * g.wo + ow] * inv;
                        for (int kh = 0; kh < K; ++kh) {
                            const long ih = static_cast<long>(oh * Stride) - Pad + kh;
                            if (ih < 0 || ih >= static_cast<long>(g.h)) continue;
                            for (int kw = 0; kw < K; ++kw) {
                                const long iw = static_cast<long>(ow * Stride) - Pad + kw;
                                if (iw < 0 || iw >= static_cast<long>(g.w)) continue;
                                dxc[ih * static_cast<long>(g.w) + iw] += d;
                            }
                        }
                    }
            }
        });
        return m_dx;
    }

private:
    tensor<T> m_y, m_dx;
    const tensor<T>* m_x = nullptr;
};

/// Mean over H and W: [N, C, H, W] -> [N, C].
template <class T = float>
class global_avg_pool {
public:
    using scalar_type = T;
    static constexpr const char* kind = "global_avg_pool";
    void init(rng&) {}
    template <class F>
    void for_each_param(F&&, const std::string& = "") {}
    template <class F>
    void for_each_buffer(F&&, const std::string& = "") {}

    const tensor<T>& forward(const tensor<T>& x, mode = mode::train) {
        check_shape(kind, x, {0, 0, 0, 0});
        m_x = &x;
        const std::size_t nc = x.shape()[0] * x.shape()[1], hw = x.shape()[2] * x.shape()[3];
        if (hw == 0) throw error::shape_mismatch("global_avg_pool: empty spatial size in input " + shape_str(x.shape()));
        ensure_shape(m_y, {x.shape()[0], x.shape()[1]});
        const T* xp = x.data();
        T* yp = m_y.data();
        for (std::size_t i = 0; i < nc; ++i) {
            T s = 0;
            for (std::size_t j = 0; j < hw; ++j) s += xp[i * hw + j];
            yp[i] = s / static_cast<T>(hw);
        }
        return m_y;
    }

    const tensor<T>& backward(const tensor<T>& dy, bool need_dx = true) {
        if (!m_x) throw std::logic_error("global_avg_pool: backward() called before forward()");
        check_same_shape(kind, m_y, dy);
        if (!need_dx) return detail::empty_tensor<T>();
        const auto& x = *m_x;
        ensure_shape(m_dx, shape_t(x.shape().begin(), x.shape().end()));
        const std::size_t nc = x.shape()[0] * x.shape()[1], hw = x.shape()[2] * x.shape()[3];
        const T* dyp = dy.data();
        T* dxp = m_dx.data();
        for (std::size_t i = 0; i < nc; ++i) {
            const T d = dyp[i] / static_cast<T>(hw);
            for (std::size_t j = 0; j < hw; ++j) dxp[i * hw + j] = d;
        }
        return m_dx;
    }

private:
    tensor<T> m_y, m_dx;
    const tensor<T>* m_x = nullptr;
};

/// [N, ...] -> [N, prod(...)].
template <class T = float>
class flatten {
public:
    using scalar_type = T;
    static constexpr const char* kind = "flatten";
    void init(rng&) {}
    template <class F>
    void for_each_param(F&&, const std::string& = "") {}
    template <class F>
    void for_each_buffer(F&&, const std::string& = "") {}

    const tensor<T>& forward(const tensor<T>& x, mode = mode::train) {
        if (x.dimension() < 1) throw error::shape_mismatch("flatten: expected an input with a batch dimension, got a scalar");
        m_x = &x;
        const std::size_t n = x.shape()[0];
        ensure_shape(m_y, {n, n ? x.size() / n : 0});
        std::copy(x.data(), x.data() + x.size(), m_y.data());
        return m_y;
    }

    const tensor<T>& backward(const tensor<T>& dy, bool need_dx = true) {
        if (!m_x) throw std::logic_error("flatten: backward() called before forward()");
        check_same_shape(kind, m_y, dy);
        if (!need_dx) return detail::empty_tensor<T>();
        ensure_shape(m_dx, shape_t(m_x->shape().begin(), m_x->shape().end()));
        std::copy(dy.data(), dy.data() + dy.size(), m_dx.data());
        return m_dx;
    }

private:
    tensor<T> m_y, m_dx;
    const tensor<T>* m_x = nullptr;
};

}  // namespace sqakd::nn

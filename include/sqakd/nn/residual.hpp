// sqakd/nn/residual.hpp - residual blocks: y = relu(branch(x) + shortcut(x)).
//
//   nn::residual<Branch, Shortcut>        Branch, Shortcut: layers (usually sequentials)
//   nn::identity<T>                       shortcut for equal shapes
//   nn::option_a<In, Out, Stride, T>      parameter-free shortcut of the CIFAR ResNets:
//                                         x[:, :, ::Stride, ::Stride], then (Out - In)/2 zero
//                                         channels before and after (SQAKD.md §6)
//   nn::basic_block<In, Out, Stride, T>   conv3x3-BN-ReLU-conv3x3-BN + option-A shortcut
//                                         (identity when In == Out and Stride == 1)
//   nn::basic_block_proj<In, Out, Stride, T>  the same with a 1x1 conv + BN shortcut
//                                         (identity when In == Out and Stride == 1)
//
// Parameter names: "branch.<i>.<name>" and "shortcut.<i>.<name>".
#pragma once

#include <algorithm>
#include <string>

#include "sqakd/core/parallel.hpp"
#include "sqakd/nn/activation.hpp"
#include "sqakd/nn/batch_norm.hpp"
#include "sqakd/nn/conv2d.hpp"
#include "sqakd/nn/sequential.hpp"

namespace sqakd::nn {

/// y = x.
template <class T = float>
class identity {
public:
    using scalar_type = T;
    static constexpr const char* kind = "identity";
    void init(rng&) {}
    const tensor<T>& forward(const tensor<T>& x, mode = mode::train) { return x; }
    const tensor<T>& backward(const tensor<T>& dy, bool need_dx = true) {
        return need_dx ? dy : detail::empty_tensor<T>();
    }
    template <class F>
    void for_each_param(F&&, const std::string& = "") {}
    template <class F>
    void for_each_buffer(F&&, const std::string& = "") {}
};

/// Option-A shortcut: spatial subsampling by Stride and symmetric zero channel padding.
template <int In, int Out, int Stride, class T = float>
class option_a {
    static_assert(Out >= In && (Out - In) % 2 == 0,
                  "option_a: the output must have as many or more channels than the input, an even number more.");
    static_assert(Stride >= 1, "option_a: the stride must be positive.");

public:
    using scalar_type = T;
    static constexpr const char* kind = "option_a";
    static constexpr int pad_c = (Out - In) / 2;
    void init(rng&) {}
    template <class F>
    void for_each_param(F&&, const std::string& = "") {}
    template <class F>
    void for_each_buffer(F&&, const std::string& = "") {}

    const tensor<T>& forward(const tensor<T>& x, mode = mode::train) {
        check_shape(kind, x, {0, static_cast<std::size_t>(In), 0, 0});
        m_x = &x;
        const std::size_t n = x.shape()[0], h = x.shape()[2], w = x.shape()[3];
        const std::size_t ho = (h + Stride - 1) / Stride, wo = (w + Stride - 1) / Stride;
        ensure_shape(m_y, {n, Out, ho, wo});
        m_y.fill(0);
        const T* xp = x.data();
        T* yp = m_y.data();
        parallel_for(n, [&](std::size_t b, std::size_t e, int) {
            for (std::size_t i = b; i < e; ++i)
                for (std::size_t c = 0; c < In; ++c) {
                    const T* src = xp + (i * In + c) * h * w;
                    T* dst = yp + (i * Out + c + pad_c) * ho * wo;
                    for (std::size_t oh = 0; oh < ho; ++oh)
                        for (std::size_t ow = 0; ow < wo; ++ow) dst[oh * wo + ow] = src[oh * Stride * w + ow * Stride];
                }
        });
        return m_y;
    }

    const tensor<T>& backward(const tensor<T>& dy, bool need_dx = true) {
        if (!m_x) throw std::logic_error("option_a: backward() called before forward()");
        check_same_shape(kind, m_y, dy);
        if (!need_dx) return detail::empty_tensor<T>();
        const auto& x = *m_x;
        const std::size_t n = x.shape()[0], h = x.shape()[2], w = x.shape()[3];
        const std::size_t ho = dy.shape()[2], wo = dy.shape()[3];
        ensure_shape(m_dx, shape_t(x.shape().begin(), x.shape().end()));
        if (Stride != 1) m_dx.fill(0);
        const T* dyp = dy.data();
        T* dxp = m_dx.data();
        parallel_for(n, [&](std::size_t b, std::size_t e, int) {
            for (std::size_t i = b; i < e; ++i)
                for (std::size_t c = 0; c < In; ++c) {
                    const T* src = dyp + (i * Out + c + pad_c) * ho * wo;
                    T* dst = dxp + (i * In + c) * h * w;
                    for (std::size_t oh = 0; oh < ho; ++oh)
                        for (std::size_t ow = 0; ow < wo; ++ow) dst[oh * Stride * w + ow * Stride] = src[oh * wo + ow];
                }
        });
        return m_dx;
    }

private:
    tensor<T> m_y, m_dx;
    const tensor<T>* m_x = nullptr;
};

/// y = relu(branch(x) + shortcut(x)).
template <class Branch, class Shortcut>
class residual {
public:
    using scalar_type = typename Branch::scalar_type;
    static_assert(std::is_same_v<scalar_type, typename Shortcut::scalar_type>,
                  "residual: branch and shortcut must use the same scalar type.");
    using T = scalar_type;
    static constexpr const char* kind = "residual";

    Branch& branch() { return m_branch; }
    Shortcut& shortcut() { return m_short; }

    void init(rng& g) {
        m_branch.init(g);
        m_short.init(g);
    }

    const tensor<T>& forward(const tensor<T>& x, mode m = mode::train) {
        const tensor<T>& a = m_branch.forward(x, m);
        const tensor<T>& b = m_short.forward(x, m);
        if (a.dimension() != b.dimension() || !std::equal(a.shape().begin(), a.shape().end(), b.shape().begin()))
            throw error::shape_mismatch(std::string("residual: branch output ") + shape_str(a.shape()) +
                                        " and shortcut output " + shape_str(b.shape()) + " differ");
        ensure_shape(m_y, shape_t(a.shape().begin(), a.shape().end()));
        const T* ap = a.data();
        const T* bp = b.data();
        T* yp = m_y.data();
        parallel_for(a.size(), [ap, bp, yp](std::size_t s, std::size_t e, int) {
            const T* __restrict a_ = ap;
            const T* __restrict b_ = bp;
            T* __restrict y_ = yp;
            for (std::size_t i = s; i < e; ++i) y_[i] = std::max(a_[i] + b_[i], T(0));
        }, 1 << 16);
        return m_y;
    }

    const tensor<T>& backward(const tensor<T>& dy, bool need_dx = true) {
        check_same_shape(kind, m_y, dy);
        ensure_shape(m_dz, shape_t(dy.shape().begin(), dy.shape().end()));
        const T* yp = m_y.data();
        const T* dyp = dy.data();
        T* dzp = m_dz.data();
        parallel_for(dy.size(), [yp, dyp, dzp](std::size_t s, std::size_t e, int) {
            const T* __restrict y_ = yp;
            const T* __restrict d_ = dyp;
            T* __restrict z_ = dzp;
            for (std::size_t i = s; i < e; ++i) z_[i] = y_[i] > T(0) ? d_[i] : T(0);
        }, 1 << 16);
        const tensor<T>& da = m_branch.backward(m_dz, need_dx);
        const tensor<T>& db = m_short.backward(m_dz, need_dx);
        if (!need_dx) return detail::empty_tensor<T>();
        ensure_shape(m_dx, shape_t(da.shape().begin(), da.shape().end()));
        const T* ap = da.data();
        const T* bp = db.data();
        T* dxp = m_dx.data();
        parallel_for(da.size(), [ap, bp, dxp](std::size_t s, std::size_t e, int) {
            const T* __restrict a_ = ap;
            const T* __restrict b_ = bp;
            T* __restrict o_ = dxp;
            for (std::size_t i = s; i < e; ++i) o_[i] = a_[i] + b_[i];
        }, 1 << 16);
        return m_dx;
    }

    template <class F>
    void for_each_param(F&& f, const std::string& prefix = "") {
        m_branch.for_each_param(f, prefix + "branch.");
        m_short.for_each_param(f, prefix + "shortcut.");
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& prefix = "") {
        m_branch.for_each_buffer(f, prefix + "branch.");
        m_short.for_each_buffer(f, prefix + "shortcut.");
    }

private:
    Branch m_branch;
    Shortcut m_short;
    tensor<T> m_y, m_dz, m_dx;
};

/// The two-conv branch of a basic block.
template <int In, int Out, int Stride, class T = float>
using basic_branch = sequential<conv2d<In, Out, 3, Stride, 1, 1, false, T>, batch_norm<Out, T>, relu<T>,
                                conv2d<Out, Out, 3, 1, 1, 1, false, T>, batch_norm<Out, T>>;

template <int In, int Out, int Stride, class T = float>
using basic_block = residual<basic_branch<In, Out, Stride, T>,
                             std::conditional_t<In == Out && Stride == 1, identity<T>, option_a<In, Out, Stride, T>>>;

template <int In, int Out, int Stride, class T = float>
using basic_block_proj =
    residual<basic_branch<In, Out, Stride, T>,
             std::conditional_t<In == Out && Stride == 1, identity<T>,
                                sequential<conv2d<In, Out, 1, Stride, 0, 1, false, T>, batch_norm<Out, T>>>>;

}  // namespace sqakd::nn

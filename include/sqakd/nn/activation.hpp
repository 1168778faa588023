// sqakd/nn/activation.hpp - element-wise activations: relu, relu6.
//
//   nn::relu<T = float>    y = max(x, 0);          dx = dy where y > 0
//   nn::relu6<T = float>   y = min(max(x, 0), 6);  dx = dy where 0 < x < 6 (PyTorch's hardtanh rule)
#pragma once

#include <algorithm>
#include <string>

#include "sqakd/core/parallel.hpp"
#include "sqakd/nn/layer.hpp"

namespace sqakd::nn {

namespace detail {
template <class T, class Derived>
class elementwise {
public:
    using scalar_type = T;
    void init(rng&) {}

    const tensor<T>& forward(const tensor<T>& x, mode = mode::train) {
        m_x = &x;
        m_passthrough = false;
        ensure_shape(m_y, shape_t(x.shape().begin(), x.shape().end()));
        const T* xp = x.data();
        T* yp = m_y.data();
        parallel_for(x.size(), [xp, yp](std::size_t b, std::size_t e, int) {
            const T* __restrict src = xp;
            T* __restrict dst = yp;
            for (std::size_t i = b; i < e; ++i) dst[i] = Derived::f(src[i]);
        }, 1 << 16);
        return m_y;
    }

    /// The activation was already applied by the previous layer (batch_norm::forward_relu),
    /// which also applies its gradient mask: forward returns x, backward returns dy.
    const tensor<T>& forward_passthrough(const tensor<T>& x) {
        m_x = &x;
        m_passthrough = true;
        return x;
    }

    const tensor<T>& backward(const tensor<T>& dy, bool need_dx = true) {
        if (!m_x) throw std::logic_error(std::string(Derived::kind) + ": backward() called before forward()");
        if (m_passthrough) {
            check_same_shape(Derived::kind, *m_x, dy);
            return need_dx ? dy : empty_tensor<T>();
        }
        check_same_shape(Derived::kind, m_y, dy);
        if (!need_dx) return empty_tensor<T>();
        ensure_shape(m_dx, shape_t(dy.shape().begin(), dy.shape().end()));
        const T* xp = m_x->data();
        const T* dyp = dy.data();
        T* dxp = m_dx.data();
        parallel_for(dy.size(), [xp, dyp, dxp](std::size_t b, std::size_t e, int) {
            const T* __restrict x = xp;
            const T* __restrict d = dyp;
            T* __restrict o = dxp;
            // Branch-free select: signs are random, a branch would mispredict half the time.
            for (std::size_t i = b; i < e; ++i) o[i] = Derived::pass(x[i]) ? d[i] : T(0);
        }, 1 << 16);
        return m_dx;
    }

    template <class F>
    void for_each_param(F&&, const std::string& = "") {}
    template <class F>
    void for_each_buffer(F&&, const std::string& = "") {}

private:
    tensor<T> m_y, m_dx;
    const tensor<T>* m_x = nullptr;
    bool m_passthrough = false;
};
}  // namespace detail

template <class T = float>
class relu : public detail::elementwise<T, relu<T>> {
public:
    static constexpr const char* kind = "relu";
    static T f(T x) { return x > T(0) ? x : T(0); }
    static bool pass(T x) { return x > T(0); }
};

template <class T = float>
class relu6 : public detail::elementwise<T, relu6<T>> {
public:
    static constexpr const char* kind = "relu6";
    static T f(T x) { return std::min(std::max(x, T(0)), T(6)); }
    static bool pass(T x) { return x > T(0) && x < T(6); }
};

}  // namespace sqakd::nn

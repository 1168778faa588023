// sqakd/nn/linear.hpp - fully connected layer, y = x W^T + b.
//
//   nn::linear<In, Out, Bias = true, T = float>    input [N, In], weight [Out, In], output [N, Out]
//
// Example:
//   nn::linear<64, 10> fc;
//   const auto& logits = fc.forward(features, nn::mode::eval);
#pragma once

#include <cmath>
#include <string>

#include "sqakd/core/gemm.hpp"
#include "sqakd/nn/layer.hpp"

namespace sqakd::nn {

template <int In, int Out, bool Bias = true, class T = float>
class linear {
    static_assert(In > 0 && Out > 0, "linear: feature counts must be positive.");
    static_assert(std::is_floating_point_v<T>, "linear: the scalar type must be float or double.");

public:
    using scalar_type = T;
    static constexpr const char* kind = "linear";
    static constexpr int in_features = In, out_features = Out;
    static constexpr int out_channels = Out;  ///< the name quantizers use for per-channel parameters
    static constexpr bool has_bias = Bias;

    linear() : m_w(shape_t{Out, In}), m_dw(shape_t{Out, In}) {
        m_w.fill(0);
        m_dw.fill(0);
        if constexpr (Bias) {
            m_b = tensor<T>(shape_t{Out});
            m_db = tensor<T>(shape_t{Out});
            m_b.fill(0);
            m_db.fill(0);
        }
    }

    /// Kaiming-normal weights (fan_in, gain sqrt 2); bias U(-1/sqrt(In), 1/sqrt(In)).
    void init(rng& g) {
        fill_normal(m_w, g, std::sqrt(2.0 / In));
        if constexpr (Bias) fill_uniform(m_b, g, 1.0 / std::sqrt(static_cast<double>(In)));
    }

    tensor<T>& weight() { return m_w; }
    tensor<T>& weight_grad() { return m_dw; }
    tensor<T>& bias() {
        static_assert(Bias, "linear: this layer was declared without a bias.");
        return m_b;
    }
    tensor<T>& bias_grad() {
        static_assert(Bias, "linear: this layer was declared without a bias.");
        return m_db;
    }

    const tensor<T>& forward(const tensor<T>& x, mode = mode::train) {
        check_shape(kind, x, {0, static_cast<std::size_t>(In)});
        m_x = &x;
        const std::size_t n = x.shape()[0];
        ensure_shape(m_y, {n, Out});
        T* yp = m_y.data();
        if constexpr (Bias) {
            for (std::size_t i = 0; i < n; ++i)
                for (std::size_t o = 0; o < Out; ++o) yp[i * Out + o] = m_b(o);
        }
        if (n) blas::gemm(false, true, static_cast<int>(n), Out, In, T(1), x.data(), In, m_w.data(), In,
                          Bias ? T(1) : T(0), yp, Out);
        return m_y;
    }

    const tensor<T>& backward(const tensor<T>& dy, bool need_dx = true) {
        if (!m_x) throw std::logic_error("linear: backward() called before forward()");
        check_same_shape(kind, m_y, dy);
        const std::size_t n = dy.shape()[0];
        if (n == 0) return need_dx ? m_dx : detail::empty_tensor<T>();
        // dW [Out x In] += dy^T [Out x N] * x [N x In]
        blas::gemm(true, false, Out, In, static_cast<int>(n), T(1), dy.data(), Out, m_x->data(), In, T(1),
                   m_dw.data(), In);
        if constexpr (Bias) {
            for (std::size_t o = 0; o < Out; ++o) {
                T s = 0;
                for (std::size_t i = 0; i < n; ++i) s += dy.data()[i * Out + o];
                m_db(o) += s;
            }
        }
        if (!need_dx) return detail::empty_tensor<T>();
        ensure_shape(m_dx, {n, In});
        blas::gemm(false, false, static_cast<int>(n), In, Out, T(1), dy.data(), Out, m_w.data(), In, T(0),
                   m_dx.data(), In);
        return m_dx;
    }

    template <class F>
    void for_each_param(F&& f, const std::string& prefix = "") {
        f(prefix + "weight", m_w, m_dw, param_kind::weight);
        if constexpr (Bias) f(prefix + "bias", m_b, m_db, param_kind::bias);
    }
    template <class F>
    void for_each_buffer(F&&, const std::string& = "") {}

private:
    tensor<T> m_w, m_dw, m_b, m_db;
    tensor<T> m_y, m_dx;
    const tensor<T>* m_x = nullptr;
};

}  // namespace sqakd::nn

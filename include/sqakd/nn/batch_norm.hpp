// sqakd/nn/batch_norm.hpp - batch normalisation over channels, 2-D ([N, C, H, W]) and 1-D ([N, C]).
//
//   nn::batch_norm<C, T = float>   eps 1e-5, momentum 0.1 (run-time members)
//
// Train mode normalises with the batch mean and biased variance and updates
//   running_mean = (1 - momentum) running_mean + momentum * mean
//   running_var  = (1 - momentum) running_var  + momentum * var * M / (M - 1)   (unbiased)
// where M = N*H*W, as PyTorch does. Eval mode normalises with the running statistics.
//
// Example:
//   nn::batch_norm<16> bn;
//   const auto& y = bn.forward(x, nn::mode::train);
//
// Statistics are accumulated in double per channel; channels are split across threads, and
// each channel is summed in a fixed order, so results do not depend on the thread count.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "sqakd/core/parallel.hpp"
#include "sqakd/core/vec.hpp"
#include "sqakd/nn/layer.hpp"

namespace sqakd::nn {

template <int C, class T = float>
class batch_norm {
    static_assert(C > 0, "batch_norm: the channel count must be positive.");
    static_assert(std::is_floating_point_v<T>, "batch_norm: the scalar type must be float or double.");

public:
    using scalar_type = T;
    static constexpr const char* kind = "batch_norm";
    static constexpr int channels = C;

    double eps = 1e-5;
    double momentum = 0.1;

    batch_norm()
        : m_gamma(shape_t{C}), m_beta(shape_t{C}), m_dgamma(shape_t{C}), m_dbeta(shape_t{C}),
          m_rmean(shape_t{C}), m_rvar(shape_t{C}), m_mean(C), m_invstd(C) {
        m_gamma.fill(1);
        m_beta.fill(0);
        m_dgamma.fill(0);
        m_dbeta.fill(0);
        m_rmean.fill(0);
        m_rvar.fill(1);
    }

    void init(rng&) {}

    tensor<T>& weight() { return m_gamma; }
    tensor<T>& bias() { return m_beta; }
    tensor<T>& weight_grad() { return m_dgamma; }
    tensor<T>& bias_grad() { return m_dbeta; }
    tensor<T>& running_mean() { return m_rmean; }
    tensor<T>& running_var() { return m_rvar; }

    const tensor<T>& forward(const tensor<T>& x, mode m = mode::train) { return forward_impl(x, m, false); }

    /// forward() followed by a ReLU in the same pass: y = max(0, bn(x)). backward() then also
    /// applies the ReLU's mask (y > 0) to dy. Used by sequential for batch_norm -> relu pairs,
    /// saving one read and one write of the activation in each direction.
    const tensor<T>& forward_relu(const tensor<T>& x, mode m = mode::train) { return forward_impl(x, m, true); }

private:
    const tensor<T>& forward_impl(const tensor<T>& x, mode m, bool fuse_relu) {
        if (!((x.dimension() == 4 || x.dimension() == 2) && x.shape()[1] == static_cast<std::size_t>(C)))
            throw error::shape_mismatch(std::string(kind) + ": expected input of shape [*, " + std::to_string(C) +
                                        ", *, *] or [*, " + std::to_string(C) + "], got " + shape_str(x.shape()));
        m_x = &x;
        m_mode = m;
        m_fused_relu = fuse_relu;
        const std::size_t n = x.shape()[0];
        const std::size_t hw = x.dimension() == 4 ? x.shape()[2] * x.shape()[3] : 1;
        const std::size_t cnt = n * hw;
        if (m == mode::train && cnt < 2)
            throw error::shape_mismatch(std::string(kind) +
                                        ": train mode needs more than one value per channel, got input " +
                                        shape_str(x.shape()));
        ensure_shape(m_y, shape_t(x.shape().begin(), x.shape().end()));
        const T* xp = x.data();
        T* yp = m_y.data();
        parallel_for(C, [&](std::size_t c0, std::size_t c1, int) {
            for (std::size_t c = c0; c < c1; ++c) {
                double mean, invstd;
                if (m == mode::train) {
                    double s = 0;
                    for (std::size_t i = 0; i < n; ++i) s += vec::sum(xp + (i * C + c) * hw, hw);
                    mean = s / static_cast<double>(cnt);
                    // Two-pass variance around the mean (no cancellation); the shift by the
                    // float-rounded mean is exact to first order and corrected below.
                    const T mf = static_cast<T>(mean);
                    double v = 0;
                    for (std::size_t i = 0; i < n; ++i) v += vec::sum_sq_diff(xp + (i * C + c) * hw, hw, mf);
                    const double s1 = s - static_cast<double>(mf) * static_cast<double>(cnt);  // sum (x - mf)
                    const double var = std::max(0.0, v / static_cast<double>(cnt) -
                                                         (s1 / static_cast<double>(cnt)) * (s1 / static_cast<double>(cnt)));
                    invstd = 1.0 / std::sqrt(var + eps);
                    m_rmean(c) = static_cast<T>((1 - momentum) * m_rmean(c) + momentum * mean);
                    m_rvar(c) = static_cast<T>((1 - momentum) * m_rvar(c) +
                                               momentum * var * static_cast<double>(cnt) / static_cast<double>(cnt - 1));
                } else {
                    mean = m_rmean(c);
                    invstd = 1.0 / std::sqrt(static_cast<double>(m_rvar(c)) + eps);
                }
                m_mean[c] = mean;
                m_invstd[c] = invstd;
                const T a = static_cast<T>(m_gamma(c) * invstd);
                const T b = static_cast<T>(m_beta(c) - m_gamma(c) * invstd * mean);
                for (std::size_t i = 0; i < n; ++i) {
                    const T* __restrict p = xp + (i * C + c) * hw;
                    T* __restrict q = yp + (i * C + c) * hw;
                    if (fuse_relu)
                        for (std::size_t j = 0; j < hw; ++j) q[j] = std::max(a * p[j] + b, T(0));
                    else
                        for (std::size_t j = 0; j < hw; ++j) q[j] = a * p[j] + b;
                }
            }
        });
        return m_y;
    }

public:
    const tensor<T>& backward(const tensor<T>& dy, bool need_dx = true) {
        if (!m_x) throw std::logic_error("batch_norm: backward() called before forward()");
        const tensor<T>& x = *m_x;
        check_same_shape(kind, x, dy);
        const std::size_t n = x.shape()[0];
        const std::size_t hw = x.dimension() == 4 ? x.shape()[2] * x.shape()[3] : 1;
        const double cnt = static_cast<double>(n * hw);
        if (need_dx) ensure_shape(m_dx, shape_t(x.shape().begin(), x.shape().end()));
        const T* xp = x.data();
        const T* yp = m_y.data();
        const T* dyp = dy.data();
        T* dxp = need_dx ? m_dx.data() : nullptr;
        parallel_for(C, [&](std::size_t c0, std::size_t c1, int) {
            for (std::size_t c = c0; c < c1; ++c) {
                const double mean = m_mean[c], invstd = m_invstd[c];
                double sdy = 0, sdyx = 0;
                const T mf = static_cast<T>(mean);
                std::vector<T> masked(m_fused_relu ? hw : 0);
                // dy through the fused ReLU: zero where the output was clipped (one row, in L1).
                auto dy_row = [&](std::size_t i) -> const T* {
                    const T* d = dyp + (i * C + c) * hw;
                    if (!m_fused_relu) return d;
                    const T* __restrict y = yp + (i * C + c) * hw;
                    T* __restrict o = masked.data();
                    for (std::size_t j = 0; j < hw; ++j) o[j] = y[j] > T(0) ? d[j] : T(0);
                    return o;
                };
                for (std::size_t i = 0; i < n; ++i) {
                    const T* p = xp + (i * C + c) * hw;
                    const T* d = dy_row(i);
                    sdy += vec::sum(d, hw);
                    sdyx += vec::sum_prod_centered(d, p, hw, mf);
                }
                // sum dy * xhat = invstd * (sum dy (x - mf) - (mean - mf) sum dy)
                sdyx = invstd * (sdyx - (mean - static_cast<double>(mf)) * sdy);
                m_dbeta(c) += static_cast<T>(sdy);
                m_dgamma(c) += static_cast<T>(sdyx);
                if (!need_dx) continue;
                const double g = m_gamma(c) * invstd;
                if (m_mode == mode::train) {
                    // dx = g * (dy - mean(dy) - xhat * mean(dy * xhat))
                    // dx = g*dy - g*mean(dy) - g*invstd*mean(dy*xhat) * (x - mean) = a*dy + b*x + k
                    const double mdy = sdy / cnt, mdyx = sdyx / cnt;
                    const T a = static_cast<T>(g), b = static_cast<T>(-g * invstd * mdyx);
                    const T k = static_cast<T>(-g * mdy + g * invstd * mdyx * mean);
                    for (std::size_t i = 0; i < n; ++i) {
                        const T* __restrict p = xp + (i * C + c) * hw;
                        const T* __restrict d = dy_row(i);
                        T* __restrict q = dxp + (i * C + c) * hw;
                        for (std::size_t j = 0; j < hw; ++j) q[j] = a * d[j] + b * p[j] + k;
                    }
                } else {
                    const T gt = static_cast<T>(g);
                    for (std::size_t i = 0; i < n; ++i) {
                        const T* __restrict d = dy_row(i);
                        T* __restrict q = dxp + (i * C + c) * hw;
                        for (std::size_t j = 0; j < hw; ++j) q[j] = gt * d[j];
                    }
                }
            }
        });
        return need_dx ? m_dx : detail::empty_tensor<T>();
    }

    template <class F>
    void for_each_param(F&& f, const std::string& prefix = "") {
        f(prefix + "weight", m_gamma, m_dgamma, param_kind::bn_weight);
        f(prefix + "bias", m_beta, m_dbeta, param_kind::bn_bias);
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& prefix = "") {
        f(prefix + "running_mean", m_rmean);
        f(prefix + "running_var", m_rvar);
    }

private:
    tensor<T> m_gamma, m_beta, m_dgamma, m_dbeta, m_rmean, m_rvar;
    std::vector<double> m_mean, m_invstd;
    tensor<T> m_y, m_dx;
    const tensor<T>* m_x = nullptr;
    mode m_mode = mode::train;
    bool m_fused_relu = false;
};

}  // namespace sqakd::nn

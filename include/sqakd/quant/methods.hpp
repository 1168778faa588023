// sqakd/quant/methods.hpp - the forward methods of SQAKD.md §3 as policies of fake_quant.
//
//   quant::interval_method<Bits, Role, T>      learnable interval [l, u] (EWGS / QIL style)
//   quant::lsq_method<Bits, Role, PerChannel, T>  learned step size s (per tensor or per output channel)
//   quant::pact_method<Bits, T>                 learnable clip alpha (activations)
//   quant::dorefa_method<Bits, T>               tanh-normalised weights, no parameters
//
// The Method contract (what fake_quant calls):
//   static constexpr int bits; static constexpr quant::tensor_role role; static constexpr const char* name;
//   static constexpr bool transforms;             dorefa: the grid applies to transform(x)
//   static constexpr rounding surrogate;          the differentiable stand-in for round() that
//                                                 the conformance checker differentiates
//   std::size_t groups(const tensor<T>& x) const  number of parameter groups (contiguous slices)
//   grid grid_of(std::size_t g) const             the constants of group g
//   void add_grads(std::size_t g, const grad_sums& s, const tensor<T>& x)   accumulate dparams
//   void calibrate(const tensor<T>& x)            SQAKD.md §3 initialisation
//   double grad_scale(x) const                    factor applied to the parameter gradients
//                                                 (LSQ's g_s; 1 for the others)
//   void prepare()                                enforce the parameter constraints (u - l >= 1e-8,
//                                                 s >= 1e-8, alpha >= 1e-8) before a forward pass
//   for_each_param(f, prefix)                     learnable tensors, kind nn::param_kind::quant
// Users write presets (quant/presets.hpp) rather than naming methods directly.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "sqakd/core/parallel.hpp"
#include "sqakd/core/tensor.hpp"
#include "sqakd/nn/layer.hpp"
#include "sqakd/quant/fake_quant.hpp"
#include "sqakd/quant/range.hpp"

namespace sqakd::quant {

namespace detail {

/// Mean and unbiased standard deviation of x (two passes, in double).
template <class T>
void mean_std(const T* x, std::size_t n, double& mean, double& std_unbiased) {
    double s = 0;
    for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(x[i]);
    mean = n ? s / static_cast<double>(n) : 0;
    double ss = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double d = static_cast<double>(x[i]) - mean;
        ss += d * d;
    }
    std_unbiased = n > 1 ? std::sqrt(ss / static_cast<double>(n - 1)) : 0;
}

template <class T>
double mean_abs(const T* x, std::size_t n) {
    double s = 0;
    for (std::size_t i = 0; i < n; ++i) s += std::fabs(static_cast<double>(x[i]));
    return n ? s / static_cast<double>(n) : 0;
}

/// The q-quantile of x with linear interpolation between order statistics (torch.quantile's
/// default): position q * (n - 1).
template <class T>
double quantile(const T* x, std::size_t n, double q) {
    if (n == 0) return 0;
    std::vector<T> v(x, x + n);
    const double pos = q * static_cast<double>(n - 1);
    const std::size_t k = static_cast<std::size_t>(std::floor(pos));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    const double lo = static_cast<double>(v[k]);
    if (k + 1 >= n) return lo;
    const double hi = static_cast<double>(*std::min_element(v.begin() + static_cast<std::ptrdiff_t>(k) + 1, v.end()));
    return lo + (pos - static_cast<double>(k)) * (hi - lo);
}

template <class T>
tensor<T> scalar_param(double v) {
    tensor<T> t(shape_t{1});
    t(0) = static_cast<T>(v);
    return t;
}

template <class T>
tensor<T> zeros(std::size_t n) {
    tensor<T> t(shape_t{n});
    t.fill(T(0));
    return t;
}

}  // namespace detail

/// interval (SQAKD.md §3): clip to [l, u], L = 2^b unsigned codes k. Weights y = 2k/(L-1) - 1,
/// activations y = k/(L-1) (not rescaled back to [l, u]; the layer's output scale s does that).
/// Parameters "l", "u". Init: weights l = -3 std(W), u = 3 std(W); activations l = min(x),
/// u = 3 std(x) / sqrt(1 - 2/pi).
template <int Bits, tensor_role Role, class T = float>
class interval_method {
public:
    static constexpr int bits = int_range<Bits, false>::bits;
    static constexpr quant::tensor_role role = Role;
    static constexpr const char* name = Role == tensor_role::weight ? "interval_weight" : "interval_act";
    static constexpr bool transforms = false;
    static constexpr rounding surrogate = rounding::identity;
    static constexpr int L = int_range<Bits, false>::levels;

    explicit interval_method(std::size_t = 1) : m_l(detail::scalar_param<T>(-1)), m_u(detail::scalar_param<T>(1)), m_dl(detail::zeros<T>(1)),
                        m_du(detail::zeros<T>(1)) {
        if (Role == tensor_role::activation) m_l(0) = 0;
    }

    std::size_t groups(const tensor<T>&) const { return 1; }

    grid grid_of(std::size_t) const {
        grid g;
        const double l = m_l(0), u = m_u(0);
        g.lo = l;
        g.hi = u;
        g.inv_d = (L - 1) / (u - l);
        g.qn = 0;
        g.qp = L - 1;
        g.a = Role == tensor_role::weight ? 2.0 / (L - 1) : 1.0 / (L - 1);
        g.b = Role == tensor_role::weight ? -1.0 : 0.0;
        return g;
    }

    /// dv/dl = (L-1)(x-u)/(u-l)^2, dv/du = -(L-1)(x-l)/(u-l)^2 for l <= x <= u, else 0.
    void add_grads(std::size_t, const grad_sums& s, const tensor<T>&) {
        const double l = m_l(0), u = m_u(0), w = u - l, f = (L - 1) / (w * w);
        m_dl(0) += static_cast<T>((s.in_dv_x - u * s.in_dv) * f);
        m_du(0) += static_cast<T>(-(s.in_dv_x - l * s.in_dv) * f);
    }

    void calibrate(const tensor<T>& x) {
        double mean, sd;
        detail::mean_std(x.data(), x.size(), mean, sd);
        if (Role == tensor_role::weight) {
            m_l(0) = static_cast<T>(-3 * sd);
            m_u(0) = static_cast<T>(3 * sd);
        } else {
            m_l(0) = x.size() ? *std::min_element(x.begin(), x.end()) : T(0);
            m_u(0) = static_cast<T>(3 * sd / std::sqrt(1 - 2 / 3.14159265358979323846));
        }
        prepare();
    }

    void prepare() {
        if (!(m_u(0) - m_l(0) >= T(1e-8))) m_u(0) = m_l(0) + T(1e-8);
    }
    double grad_scale(const tensor<T>&) const { return 1.0; }

    template <class F>
    void for_each_param(F&& f, const std::string& prefix = "") {
        f(prefix + "l", m_l, m_dl, nn::param_kind::quant);
        f(prefix + "u", m_u, m_du, nn::param_kind::quant);
    }

    tensor<T>& lower() { return m_l; }
    tensor<T>& upper() { return m_u; }

private:
    tensor<T> m_l, m_u, m_dl, m_du;
};

/// lsq (SQAKD.md §3): step s > 0, y = q s. Weights signed codes [-2^(b-1), 2^(b-1) - 1], except
/// b = 1: {-1, +1} (q = sign(x/s), sign(0) = +1, codes 2 apart); activations unsigned
/// [0, 2^b - 1]. PerChannel: one s per output channel (dim 0 of the weight), else one per tensor.
/// Parameter "s" (shape [channels] or [1]).
///   dLoss/ds = g_s * (sum dLoss/dy * q - sum_inside dLoss/dv * x / s^2), which with the
///   straight-through estimator is g_s * sum dLoss/dy * t, t = q - x/s inside, Qn below, Qp above;
///   g_s = 1 / sqrt(N * max(Qp, 1)), N = numel(W) (per tensor), numel(W)/channels (per channel),
///   and for activations the number of features per sample, C*H*W (not the batch's numel, which
///   the public reference uses: the gradient scale then does not depend on the batch size).
/// Init: s = 2 mean|x| / sqrt(max(Qp, 1)) (per channel over that channel's weights).
template <int Bits, tensor_role Role, bool PerChannel = false, class T = float>
class lsq_method {
    static_assert(!(PerChannel && Role == tensor_role::activation),
                  "lsq: per-channel step sizes are for weights; activations use one step per tensor.");

public:
    static constexpr int bits = bits_check<Bits>::value;
    static constexpr quant::tensor_role role = Role;
    static constexpr bool per_channel = PerChannel;
    static constexpr const char* name = Role == tensor_role::weight ? (PerChannel ? "lsq_weight_per_channel" : "lsq_weight")
                                                             : "lsq_act";
    static constexpr bool transforms = false;
    static constexpr rounding surrogate = rounding::frozen;  ///< round(v) -> v + (q - v), (q - v) frozen
    static constexpr bool binary = Role == tensor_role::weight && Bits == 1;
    static constexpr int qn = binary ? -1 : int_range<Bits, Role == tensor_role::weight>::qn;
    static constexpr int qp = binary ? 1 : int_range<Bits, Role == tensor_role::weight>::qp;

    explicit lsq_method(std::size_t channels = 1) : m_s(shape_t{PerChannel ? channels : 1}), m_ds(shape_t{PerChannel ? channels : 1}) {
        if (channels == 0) throw error::invalid_value(std::string(name) + ": the channel count must be positive");
        m_s.fill(T(1));
        m_ds.fill(T(0));
    }

    std::size_t groups(const tensor<T>& x) const {
        if constexpr (PerChannel) {
            if (x.dimension() < 1 || x.shape()[0] != m_s.size())
                throw error::shape_mismatch(std::string(name) + ": expected a weight with " + std::to_string(m_s.size()) +
                                            " output channels (dim 0), got " + shape_str(x.shape()));
            return m_s.size();
        } else {
            (void)x;
            return 1;
        }
    }

    grid grid_of(std::size_t gi) const {
        grid g;
        const double s = m_s(gi);
        g.lo = qn * s;
        g.hi = qp * s;
        g.inv_d = 1.0 / s;
        g.qn = qn;
        g.qp = qp;
        g.a = s;
        g.b = 0;
        g.binary = binary;
        g.spacing = binary ? 2.0 : 1.0;
        return g;
    }

    void add_grads(std::size_t gi, const grad_sums& s, const tensor<T>& x) {
        const double st = m_s(gi);
        m_ds(gi) += static_cast<T>(grad_scale(x) * (s.all_dy_q - s.in_dv_x / (st * st)));
    }

    /// g_s for an input shaped like x (see above).
    double grad_scale(const tensor<T>& x) const {
        const double n = Role == tensor_role::activation ? static_cast<double>(x.size() / (x.dimension() ? x.shape()[0] : 1))
                                                         : static_cast<double>(x.size() / groups(x));
        return 1.0 / std::sqrt(n * std::max(qp, 1));
    }

    void calibrate(const tensor<T>& x) {
        const std::size_t ng = groups(x), gs = x.size() / ng;
        for (std::size_t g = 0; g < ng; ++g)
            m_s(g) = static_cast<T>(2 * detail::mean_abs(x.data() + g * gs, gs) / std::sqrt(std::max(qp, 1)));
        prepare();
    }

    void prepare() {
        for (auto& s : m_s)
            if (!(s >= T(1e-8))) s = T(1e-8);
    }

    template <class F>
    void for_each_param(F&& f, const std::string& prefix = "") {
        f(prefix + "s", m_s, m_ds, nn::param_kind::quant);
    }

    tensor<T>& step() { return m_s; }

private:
    tensor<T> m_s, m_ds;
};

/// pact (SQAKD.md §3, activations): clip to [0, alpha], y = q alpha/(L-1). Parameter "alpha".
/// dLoss/dx = dLoss/dy for 0 <= x < alpha; dLoss/dalpha = sum over x >= alpha of dLoss/dy
/// (the PACT paper's form). Init: alpha = the 99.9th percentile of the first batch (linear
/// interpolation between order statistics, as torch.quantile), or init_alpha when set (> 0).
/// The paper's L2 decay on alpha is a parameter-group setting (weight decay of the quantizer group).
template <int Bits, class T = float>
class pact_method {
public:
    static constexpr int bits = int_range<Bits, false>::bits;
    static constexpr quant::tensor_role role = tensor_role::activation;
    static constexpr const char* name = "pact_act";
    static constexpr bool transforms = false;
    static constexpr rounding surrogate = rounding::identity;
    static constexpr int L = int_range<Bits, false>::levels;
    double init_alpha = 0;  ///< > 0: calibrate() uses this value instead of the percentile
    double percentile = 0.999;

    explicit pact_method(std::size_t = 1) : m_alpha(detail::scalar_param<T>(6)), m_da(detail::zeros<T>(1)) {}

    std::size_t groups(const tensor<T>&) const { return 1; }

    grid grid_of(std::size_t) const {
        grid g;
        const double a = m_alpha(0);
        g.lo = 0;
        g.hi = a;
        g.inv_d = (L - 1) / a;
        g.qn = 0;
        g.qp = L - 1;
        g.a = a / (L - 1);
        g.b = 0;
        g.hi_open = true;
        return g;
    }

    void add_grads(std::size_t, const grad_sums& s, const tensor<T>&) { m_da(0) += static_cast<T>(s.above_dy); }

    void calibrate(const tensor<T>& x) {
        m_alpha(0) = static_cast<T>(init_alpha > 0 ? init_alpha : detail::quantile(x.data(), x.size(), percentile));
        prepare();
    }

    void prepare() {
        if (!(m_alpha(0) >= T(1e-8))) m_alpha(0) = T(1e-8);
    }
    double grad_scale(const tensor<T>&) const { return 1.0; }

    template <class F>
    void for_each_param(F&& f, const std::string& prefix = "") {
        f(prefix + "alpha", m_alpha, m_da, nn::param_kind::quant);
    }

    tensor<T>& alpha() { return m_alpha; }

private:
    tensor<T> m_alpha, m_da;
};

/// dorefa (SQAKD.md §3, weights): t = tanh(w), m = max|t| + 1e-5, w' = t/(2m) + 0.5 in [0, 1],
/// codes [0, L-1] on w', y = 2q/(L-1) - 1. No parameters. The gradient flows through m as
/// autograd's would (to the element(s) of largest |t|, split evenly between ties). All-zero W
/// gives y = 2 round((L-1)/2)/(L-1) - 1 (round half to even), without NaN.
template <int Bits, class T = float>
class dorefa_method {
public:
    static constexpr int bits = int_range<Bits, false>::bits;
    static constexpr quant::tensor_role role = tensor_role::weight;
    static constexpr const char* name = "dorefa_weight";
    static constexpr bool transforms = true;
    static constexpr rounding surrogate = rounding::identity;
    static constexpr int L = int_range<Bits, false>::levels;

    explicit dorefa_method(std::size_t = 1) {}

    std::size_t groups(const tensor<T>&) const { return 1; }

    grid grid_of(std::size_t) const {
        grid g;
        g.lo = 0;
        g.hi = 1;
        g.inv_d = L - 1;
        g.qn = 0;
        g.qp = L - 1;
        g.a = 2.0 / (L - 1);
        g.b = -1;
        return g;
    }

    const tensor<T>& transform(const tensor<T>& w) {
        m_w = &w;
        ensure_shape(m_t, shape_t(w.shape().begin(), w.shape().end()));
        ensure_shape(m_wp, shape_t(w.shape().begin(), w.shape().end()));
        T mx = 0;
        for (std::size_t i = 0; i < w.size(); ++i) {
            m_t.data()[i] = std::tanh(w.data()[i]);
            mx = std::max(mx, std::fabs(m_t.data()[i]));
        }
        m_m = mx + T(1e-5);
        for (std::size_t i = 0; i < w.size(); ++i) m_wp.data()[i] = m_t.data()[i] / (2 * m_m) + T(0.5);
        return m_wp;
    }

    /// dLoss/dw from dLoss/dw' (the grid backward's output).
    void transform_backward(const tensor<T>& dwp, tensor<T>& dw) {
        const std::size_t n = dwp.size();
        ensure_shape(dw, shape_t(dwp.shape().begin(), dwp.shape().end()));
        const T* t = m_t.data();
        double dm = 0;  // dLoss/dm = -sum dLoss/dw'_j t_j / (2 m^2)
        for (std::size_t i = 0; i < n; ++i) dm -= static_cast<double>(dwp.data()[i]) * t[i];
        dm /= 2.0 * static_cast<double>(m_m) * static_cast<double>(m_m);
        const T mx = m_m - T(1e-5);
        std::size_t ties = 0;
        for (std::size_t i = 0; i < n; ++i) ties += std::fabs(t[i]) == mx;
        const T share = static_cast<T>(dm / static_cast<double>(std::max<std::size_t>(ties, 1)));
        for (std::size_t i = 0; i < n; ++i) {
            T dt = dwp.data()[i] / (2 * m_m);
            if (std::fabs(t[i]) == mx) dt += (t[i] > 0 ? share : (t[i] < 0 ? -share : T(0)));
            dw.data()[i] = dt * (1 - t[i] * t[i]);
        }
    }

    void calibrate(const tensor<T>&) {}
    void prepare() {}
    double grad_scale(const tensor<T>&) const { return 1.0; }
    void add_grads(std::size_t, const grad_sums&, const tensor<T>&) {}
    template <class F>
    void for_each_param(F&&, const std::string& = "") {}

private:
    const tensor<T>* m_w = nullptr;
    tensor<T> m_t, m_wp;
    T m_m = 1;
};

}  // namespace sqakd::quant

// sqakd/quant/fake_quant.hpp - the unified fake quantizer of SQAKD.md §3.
//
//   quant::fake_quant<Method, Estimator, T>
//
// Every quantizer is one instance of the same forward and backward template, in level units:
//
//   x_c = clip(x, lo, hi)          v = (x_c - lo) / D + Qn          q = round_half_even(v)
//   y   = a * q + b                (the method's rescale; a = dy/dq)
//
//   g_q = dLoss/dy * a             dLoss/dv = g_q * (1 + delta * sign(g_q) * (v - q) / spacing)
//   dLoss/dx = dLoss/dv / D        inside [lo, hi] (pact: [0, alpha)); outside 0 unless the
//                                  estimator is plain quant::ste
//
// A Method (quant::interval_method, lsq_method, pact_method, dorefa_method) owns the learnable
// parameters and supplies, per group (the whole tensor, or one output channel), the constants
// {lo, hi, 1/D, Qn, a, b} of the grid, and turns the sums the backward pass collects into its
// parameter gradients. The Estimator (quant/estimator.hpp) is a separate policy, so any
// estimator composes with any method.
//
// The quantizer follows the layer contract of nn/layer.hpp: forward(x) returns a buffer it
// owns, x must stay alive until backward(dy), parameter gradients accumulate. calibrate(x) is
// the data-dependent initialisation of §3 (weights: x = W; activations: x = the first batch).
// Rounding is std::nearbyint in the default floating-point environment: round half to even.
//
// Determinism: large tensors are split over OpenMP threads with a static partition, and the
// per-thread partial sums of the parameter gradients are reduced in thread order.
//
// Checker hooks (used by quant::check_conformance and the EWGS Hessian update, harmless
// otherwise): set_rounding(rounding::identity) replaces round(v) by v, rounding::frozen by
// v + (q - v) with (q - v) frozen by freeze_at(x); set_probe(&t) adds t to q; capture_gq(true)
// keeps dLoss/dq of the last backward in captured_gq().
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "sqakd/core/error.hpp"
#include "sqakd/core/parallel.hpp"
#include "sqakd/core/tensor.hpp"
#include "sqakd/nn/layer.hpp"
#include "sqakd/quant/estimator.hpp"
#include "sqakd/quant/range.hpp"

namespace sqakd::quant {

/// Per-group constants of the unified template (see the top of this file).
struct grid {
    double lo = 0, hi = 1;  ///< clip range, in input units
    double inv_d = 1;       ///< 1 / D, D the step in input units
    double qn = 0, qp = 1;  ///< code range
    double a = 1, b = 0;    ///< y = a * q + b
    bool hi_open = false;   ///< x == hi is outside for the gradient mask (pact: 0 <= x < alpha)
    bool binary = false;    ///< q = sign(v) with sign(0) = +1 (LSQ 1-bit weights, codes {-1, +1})
    double spacing = 1;     ///< distance between adjacent codes

    /// The input value that code k represents (k in [qn, qp]).
    double input_of_code(double k) const { return lo + (k - qn) / inv_d; }
};

/// Sums the backward pass collects per group, from which a Method computes its parameter
/// gradients (dLdv is dLoss/dv after the estimator).
struct grad_sums {
    double in_dv = 0;     ///< sum over inside elements of dLdv
    double in_dv_x = 0;   ///< sum over inside elements of dLdv * x
    double all_dy_q = 0;  ///< sum over all elements of dLoss/dy * q
    double above_dy = 0;  ///< sum over elements above the range (pact: x >= alpha) of dLoss/dy
    std::size_t count = 0;
    grad_sums& operator+=(const grad_sums& o) {
        in_dv += o.in_dv;
        in_dv_x += o.in_dv_x;
        all_dy_q += o.all_dy_q;
        above_dy += o.above_dy;
        count += o.count;
        return *this;
    }
};

/// How round(v) is evaluated: the real rounding, the identity surrogate (round(v) -> v), or
/// v + (q - v) with (q - v) frozen at a reference point (LSQ's surrogate).
enum class rounding { nearest, identity, frozen };

namespace detail {

template <class T>
inline T round_code(T v, bool binary) {
    if (binary) return v >= T(0) ? T(1) : T(-1);
    return std::nearbyint(v);
}

/// y[i] = a * R(v(x[i])) + b on [0, n).
template <class T>
void fq_forward(const T* __restrict x, T* __restrict y, std::size_t n, const grid& g, rounding r,
                const T* __restrict off, const T* __restrict probe) {
    const T lo = static_cast<T>(g.lo), hi = static_cast<T>(g.hi), id = static_cast<T>(g.inv_d),
            qn = static_cast<T>(g.qn), a = static_cast<T>(g.a), b = static_cast<T>(g.b);
    if (r == rounding::nearest && !probe && !g.binary) {
        for (std::size_t i = 0; i < n; ++i) {
            const T xc = std::min(std::max(x[i], lo), hi);
            y[i] = a * std::nearbyint((xc - lo) * id + qn) + b;
        }
        return;
    }
    for (std::size_t i = 0; i < n; ++i) {
        const T xc = std::min(std::max(x[i], lo), hi);
        const T v = (xc - lo) * id + qn;
        T q = r == rounding::nearest ? round_code(v, g.binary) : r == rounding::identity ? v : v + off[i];
        if (probe) q += probe[i];
        y[i] = a * q + b;
    }
}

// GCC 12 reports -Wmaybe-uninitialized inside its own AVX-512 intrinsic headers (the
// unused pass-through operand of _mm512_{min,max,roundscale}_ps); a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
/// The common backward case on explicit SIMD vectors (compilers do not vectorise the float
/// reductions on their own): nearest rounding, no probe, no capture, dx wanted, codes 1 apart.
/// Same formulas as fq_backward; the partial sums are taken per vector lane over chunks of
/// about 256 elements and added into double in a fixed order (deterministic).
template <bool Masked, bool Scaled, bool HiOpen, class T>
grad_sums fq_backward_fast(const T* __restrict x, const T* __restrict dy, T* __restrict dx, std::size_t n,
                           const grid& g, double delta) {
    using B = xsimd::batch<T, xsimd::default_arch>;
    constexpr std::size_t V = B::size;
    const T lo = static_cast<T>(g.lo), hi = static_cast<T>(g.hi), id = static_cast<T>(g.inv_d),
            qn = static_cast<T>(g.qn), a = static_cast<T>(g.a);
    const T dlt = static_cast<T>(delta / g.spacing);
    const B vlo(lo), vhi(hi), vid(id), vqn(qn), va(a), vdlt(dlt), zero(T(0)), one(T(1)), mone(T(-1));
    grad_sums total;
    total.count = n;
    alignas(64) T lanes[4][V];
    constexpr std::size_t chunk = (256 / V) * V;
    std::size_t i = 0;
    const std::size_t nv = n / V * V;
    while (i < nv) {
        const std::size_t c1 = std::min(nv, i + chunk);
        B s_dv(T(0)), s_dvx(T(0)), s_dyq(T(0)), s_above(T(0));
        for (; i < c1; i += V) {
            const B xi = B::load_unaligned(x + i), d = B::load_unaligned(dy + i);
            const auto above = HiOpen ? (xi >= vhi) : (xi > vhi);
            const auto in = (xi >= vlo) & !above;
            const B xc = xsimd::min(xsimd::max(xi, vlo), vhi);
            const B v = (xc - vlo) * vid + vqn;
            const B q = xsimd::nearbyint(v);
            const B gq = d * va;
            B dv = gq;
            if constexpr (Scaled) {
                const B sg = xsimd::select(gq > zero, one, xsimd::select(gq < zero, mone, zero));
                dv = gq * (one + vdlt * sg * (v - q));
            }
            const B dvin = xsimd::select(in, dv, zero);
            (Masked ? dvin * vid : dv * vid).store_unaligned(dx + i);
            s_dv += dvin;
            s_dvx += dvin * xi;
            s_dyq += d * q;
            s_above += xsimd::select(above, d, zero);
        }
        s_dv.store_aligned(lanes[0]);
        s_dvx.store_aligned(lanes[1]);
        s_dyq.store_aligned(lanes[2]);
        s_above.store_aligned(lanes[3]);
        for (std::size_t l = 0; l < V; ++l) {
            total.in_dv += lanes[0][l];
            total.in_dv_x += lanes[1][l];
            total.all_dy_q += lanes[2][l];
            total.above_dy += lanes[3][l];
        }
    }
    for (; i < n; ++i) {
        const T xi = x[i], d = dy[i];
        const bool above = HiOpen ? !(xi < hi) : xi > hi;
        const bool in = !(xi < lo) && !above;
        const T xc = std::min(std::max(xi, lo), hi);
        const T v = (xc - lo) * id + qn;
        const T q = std::nearbyint(v);
        const T gq = d * a;
        T dv = gq;
        if constexpr (Scaled) {
            const T sg = gq > T(0) ? T(1) : (gq < T(0) ? T(-1) : T(0));
            dv = gq * (T(1) + dlt * sg * (v - q));
        }
        dx[i] = (Masked && !in) ? T(0) : dv * id;
        if (in) {
            total.in_dv += dv;
            total.in_dv_x += dv * xi;
        }
        total.all_dy_q += d * q;
        if (above) total.above_dy += d;
    }
    return total;
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/// The backward pass on [0, n): writes dx (unless null), optionally g_q, returns the sums.
template <class Est, class T>
grad_sums fq_backward(const T* __restrict x, const T* __restrict dy, T* __restrict dx, std::size_t n,
                      const grid& g, rounding r, const T* __restrict off, const T* __restrict probe,
                      double delta, T* __restrict gq_out) {
    if (r == rounding::nearest && !probe && !gq_out && dx && !g.binary) {
        const bool sc = Est::scaled && delta != 0;
        if (g.hi_open)
            return sc ? fq_backward_fast<Est::masked, true, true>(x, dy, dx, n, g, delta)
                      : fq_backward_fast<Est::masked, false, true>(x, dy, dx, n, g, delta);
        return sc ? fq_backward_fast<Est::masked, true, false>(x, dy, dx, n, g, delta)
                  : fq_backward_fast<Est::masked, false, false>(x, dy, dx, n, g, delta);
    }
    const T lo = static_cast<T>(g.lo), hi = static_cast<T>(g.hi), id = static_cast<T>(g.inv_d),
            qn = static_cast<T>(g.qn), a = static_cast<T>(g.a);
    const T dlt = static_cast<T>(Est::scaled ? delta / g.spacing : 0.0);
    grad_sums total;
    total.count = n;
    // Partial sums in T over short chunks, then in double: accurate and vectorisable.
    constexpr std::size_t chunk = 256;
    for (std::size_t c0 = 0; c0 < n; c0 += chunk) {
        const std::size_t c1 = std::min(n, c0 + chunk);
        T s_dv = 0, s_dvx = 0, s_dyq = 0, s_above = 0;
        for (std::size_t i = c0; i < c1; ++i) {
            const T xi = x[i], d = dy[i];
            const bool below = xi < lo;
            const bool above = g.hi_open ? !(xi < hi) : xi > hi;
            const bool in = !below && !above;
            const T xc = std::min(std::max(xi, lo), hi);
            const T v = (xc - lo) * id + qn;
            T q = r == rounding::nearest ? round_code(v, g.binary) : r == rounding::identity ? v : v + off[i];
            if (probe) q += probe[i];
            const T gq = d * a;
            if (gq_out) gq_out[i] = gq;
            T dv = gq;
            if constexpr (Est::scaled) {
                const T sg = gq > T(0) ? T(1) : (gq < T(0) ? T(-1) : T(0));
                dv = gq * (T(1) + dlt * sg * (v - q));
            }
            if (dx) dx[i] = (Est::masked && !in) ? T(0) : dv * id;
            s_dv += in ? dv : T(0);
            s_dvx += in ? dv * xi : T(0);
            s_dyq += d * q;
            s_above += above ? d : T(0);
        }
        total.in_dv += s_dv;
        total.in_dv_x += s_dvx;
        total.all_dy_q += s_dyq;
        total.above_dy += s_above;
    }
    return total;
}

/// Runs f(begin, end) -> grad_sums over [0, n) in parallel and reduces in thread order.
template <class F>
grad_sums parallel_sums(std::size_t n, F&& f) {
    constexpr std::size_t min_per_thread = 1 << 15;
    const int p = parallel_width(n, min_per_thread);
    std::vector<grad_sums> part(static_cast<std::size_t>(std::max(p, 1)));
    parallel_for(n, [&](std::size_t b, std::size_t e, int t) { part[static_cast<std::size_t>(t)] = f(b, e); },
                 min_per_thread);
    grad_sums s;
    for (const auto& ps : part) s += ps;
    return s;
}

template <class T>
void check_finite_tensor(const char* who, const char* what, const tensor<T>& x) {
    for (std::size_t i = 0; i < x.size(); ++i)
        if (!std::isfinite(x.data()[i]))
            throw error::invalid_value(std::string(who) + ": " + what + " contains NaN or Inf (element " +
                                       std::to_string(i) + " of " + shape_str(x.shape()) + ")");
}

}  // namespace detail

template <class Method, class Estimator = clipped_ste, class T = float>
class fake_quant {
    static_assert(is_estimator<Estimator>::value,
                  "fake_quant: the estimator must be quant::ste, quant::clipped_ste or quant::ewgs.");
    static_assert(std::is_floating_point_v<T>, "fake_quant: the scalar type must be float or double.");

public:
    using scalar_type = T;
    using method_type = Method;
    using estimator_type = Estimator;
    static constexpr int bits = Method::bits;
    static constexpr quant::tensor_role role = Method::role;
    static constexpr const char* kind = "fake_quant";

    fake_quant() = default;
    /// Constructor arguments go to the method (e.g. the channel count of per-channel LSQ).
    template <class... A, class = std::enable_if_t<(sizeof...(A) > 0)>>
    explicit fake_quant(A&&... a) : m_method(std::forward<A>(a)...) {}

    Method& method() { return m_method; }
    const Method& method() const { return m_method; }
    Estimator& estimator() { return m_est; }
    const Estimator& estimator() const { return m_est; }

    /// Data-dependent initialisation of the parameters (SQAKD.md §3) from `x` (weights: W;
    /// activations: one training batch). Throws error::invalid_value for NaN/Inf in x.
    void calibrate(const tensor<T>& x) {
        detail::check_finite_tensor(Method::name, "the calibration input", x);
        m_method.calibrate(x);
        m_calibrated = true;
    }
    bool calibrated() const { return m_calibrated; }
    /// Marks the parameters as initialised (after loading them from a checkpoint).
    void set_calibrated(bool c = true) { m_calibrated = c; }

    const tensor<T>& forward(const tensor<T>& x_in, nn::mode = nn::mode::train) {
        m_method.prepare();
        const tensor<T>& x = transformed_input(x_in);
        m_x = &x;
        ensure_shape(m_y, shape_t(x.shape().begin(), x.shape().end()));
        const std::size_t ng = m_method.groups(x), gs = ng ? x.size() / ng : 0;
        const T* off = offsets_for(x);
        const T* probe = probe_for(x);
        for (std::size_t gi = 0; gi < ng; ++gi) {
            const grid g = m_method.grid_of(gi);
            const std::size_t base = gi * gs;
            parallel_for(gs, [&](std::size_t b, std::size_t e, int) {
                detail::fq_forward(x.data() + base + b, m_y.data() + base + b, e - b, g, m_rounding,
                                   off ? off + base + b : nullptr, probe ? probe + base + b : nullptr);
            }, 1 << 15);
        }
        return m_y;
    }

    const tensor<T>& backward(const tensor<T>& dy, bool need_dx = true) {
        if (!m_x) throw std::logic_error(std::string(Method::name) + ": backward() called before forward()");
        const tensor<T>& x = *m_x;
        check_same_shape(Method::name, m_y, dy);
        const bool want_dx = need_dx || Method::transforms;
        if (want_dx) ensure_shape(m_dx, shape_t(x.shape().begin(), x.shape().end()));
        if (m_capture_gq) ensure_shape(m_gq, shape_t(x.shape().begin(), x.shape().end()));
        const std::size_t ng = m_method.groups(x), gs = ng ? x.size() / ng : 0;
        const T* off = offsets_for(x);
        const T* probe = probe_for(x);
        for (std::size_t gi = 0; gi < ng; ++gi) {
            const grid g = m_method.grid_of(gi);
            const std::size_t base = gi * gs;
            const grad_sums s = detail::parallel_sums(gs, [&](std::size_t b, std::size_t e) {
                return detail::fq_backward<Estimator>(x.data() + base + b, dy.data() + base + b,
                                                      want_dx ? m_dx.data() + base + b : nullptr, e - b, g,
                                                      m_rounding, off ? off + base + b : nullptr,
                                                      probe ? probe + base + b : nullptr, m_est.delta,
                                                      m_capture_gq ? m_gq.data() + base + b : nullptr);
            });
            m_method.add_grads(gi, s, x);
        }
        if constexpr (Method::transforms) {
            m_method.transform_backward(m_dx, m_dx_in);
            return need_dx ? m_dx_in : nn::detail::empty_tensor<T>();
        } else {
            return need_dx ? m_dx : nn::detail::empty_tensor<T>();
        }
    }

    /// The integer codes q of `x` under the current parameters (row-major, one per element).
    void codes(const tensor<T>& x_in, std::vector<int>& out) {
        m_method.prepare();
        const tensor<T>& x = transformed_input(x_in);
        out.resize(x.size());
        const std::size_t ng = m_method.groups(x), gs = ng ? x.size() / ng : 0;
        for (std::size_t gi = 0; gi < ng; ++gi) {
            const grid g = m_method.grid_of(gi);
            const T lo = static_cast<T>(g.lo), hi = static_cast<T>(g.hi), id = static_cast<T>(g.inv_d),
                    qn = static_cast<T>(g.qn);
            for (std::size_t i = gi * gs; i < (gi + 1) * gs; ++i) {
                const T xc = std::min(std::max(x.data()[i], lo), hi);
                out[i] = static_cast<int>(detail::round_code((xc - lo) * id + qn, g.binary));
            }
        }
    }

    /// The grid of group `g` under the current parameters (the input of the method's transform
    /// for dorefa). groups(x) tells how many there are for an input shaped like x.
    grid grid_of(std::size_t g) {
        m_method.prepare();
        return m_method.grid_of(g);
    }
    std::size_t groups(const tensor<T>& x) const { return m_method.groups(x); }

    template <class F>
    void for_each_param(F&& f, const std::string& prefix = "") {
        m_method.for_each_param(f, prefix);
    }

    // --- checker hooks ---
    void set_rounding(rounding r) { m_rounding = r; }
    rounding get_rounding() const { return m_rounding; }
    /// Freezes (q - v) at x for rounding::frozen.
    void freeze_at(const tensor<T>& x_in) {
        m_method.prepare();
        const tensor<T>& x = transformed_input(x_in);
        ensure_shape(m_off, shape_t(x.shape().begin(), x.shape().end()));
        const std::size_t ng = m_method.groups(x), gs = ng ? x.size() / ng : 0;
        for (std::size_t gi = 0; gi < ng; ++gi) {
            const grid g = m_method.grid_of(gi);
            for (std::size_t i = gi * gs; i < (gi + 1) * gs; ++i) {
                const T xc = std::min(std::max(x.data()[i], static_cast<T>(g.lo)), static_cast<T>(g.hi));
                const T v = (xc - static_cast<T>(g.lo)) * static_cast<T>(g.inv_d) + static_cast<T>(g.qn);
                m_off.data()[i] = detail::round_code(v, g.binary) - v;
            }
        }
    }
    /// Adds *p (shaped like the quantized tensor) to q in forward and backward; nullptr removes it.
    void set_probe(const tensor<T>* p) { m_probe = p; }
    void capture_gq(bool on) { m_capture_gq = on; }
    const tensor<T>& captured_gq() const { return m_gq; }

private:
    const tensor<T>& transformed_input(const tensor<T>& x) {
        if constexpr (Method::transforms)
            return m_method.transform(x);
        else
            return x;
    }
    const T* offsets_for(const tensor<T>& x) const {
        if (m_rounding != rounding::frozen) return nullptr;
        if (m_off.size() != x.size())
            throw std::logic_error(std::string(Method::name) + ": rounding::frozen needs freeze_at() on a tensor of this shape");
        return m_off.data();
    }
    const T* probe_for(const tensor<T>& x) const {
        if (!m_probe) return nullptr;
        if (m_probe->size() != x.size())
            throw error::shape_mismatch(std::string(Method::name) + ": the probe has " + std::to_string(m_probe->size()) +
                                        " elements, the quantized tensor " + std::to_string(x.size()));
        return m_probe->data();
    }

    Method m_method;
    Estimator m_est;
    tensor<T> m_y, m_dx, m_dx_in, m_off, m_gq;
    const tensor<T>* m_x = nullptr;
    const tensor<T>* m_probe = nullptr;
    rounding m_rounding = rounding::nearest;
    bool m_capture_gq = false;
    bool m_calibrated = false;
};

}  // namespace sqakd::quant

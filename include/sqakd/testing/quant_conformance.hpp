// sqakd/testing/quant_conformance.hpp - a shipped conformance checker for quantizers.
//
// Usable on any quantizer preset (quant/presets.hpp), including user-written methods that
// follow the Method contract of quant/methods.hpp:
//
//   auto r = testing::check_quantizer<quant::lsq_weight<4, quant::ewgs>>();
//   REQUIRE_MESSAGE(r.ok, r.report());
//
// What it checks (SQAKD.md §3), in double precision, on inputs drawn across and beyond the
// clip range (every group: per-tensor or per-channel):
//   1. codes: on a dense input every code lies in [Qn, Qp] and exactly L distinct codes occur
//      (L = 2^b; 2 for LSQ's binary weights);
//   2. idempotence: the input value of each code, x' = lo + (q - Qn) D, quantizes to the same
//      code (for methods that transform their input, dorefa, this is checked on the grid their
//      transform feeds);
//   3. gradient masks: with dLoss/dy = 1, dLoss/dx is 0 below and above the clip range and
//      non-zero on its bounds (pact: 0 <= x < alpha, so x = alpha gives 0); plain quant::ste
//      passes everywhere;
//   4. finite differences of the method's surrogate forward (round(v) -> v for interval, pact
//      and dorefa; round(v) -> v + (q - v) with (q - v) frozen at the point for lsq) agree with
//      dLoss/dx and with every parameter gradient (the latter after dividing out the method's
//      gradient scale, LSQ's g_s), at points at least `margin` level units away from clip
//      bounds and rounding midpoints; plain STE is compared inside [lo, hi] only;
//   5. EWGS (estimators with `scaled`): dLoss/dx equals the closed form
//      dy a (1 + delta sign(dy a) (v - q)/spacing) / D inside, 0 outside (not for transforming
//      methods, whose dx continues through the transform).
// Error measure for 4 and 5: per tensor, max|analytic - reference| / max|reference|.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "sqakd/core/rng.hpp"
#include "sqakd/core/tensor.hpp"
#include "sqakd/nn/layer.hpp"
#include "sqakd/quant/fake_quant.hpp"

namespace sqakd::testing {

struct quant_check_options {
    shape_t shape;              ///< input shape; empty: [6, 3, 3, 3] for weights, [2, 3, 6, 6] for activations
    std::uint64_t seed = 7;
    double margin = 1e-3;       ///< level units kept from clip bounds and rounding midpoints
    double eps = 1e-6;          ///< finite-difference step, relative to the step size D
    double tolerance = 1e-6;
    double delta = 0.25;        ///< EWGS delta for check 5
};

struct quant_check_result {
    bool ok = true;
    std::vector<std::string> failures;
    std::vector<std::string> checks;  ///< what was checked, with the measured errors
    void fail(const std::string& s) {
        ok = false;
        failures.push_back(s);
    }
    std::string report() const {
        std::ostringstream os;
        for (const auto& f : failures) os << "FAIL " << f << "\n";
        for (const auto& c : checks) os << "ok   " << c << "\n";
        return os.str();
    }
};

namespace qc_detail {

inline double rel_err(const std::vector<double>& a, const std::vector<double>& b) {
    double md = 0, mb = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        md = std::max(md, std::fabs(a[i] - b[i]));
        mb = std::max(mb, std::fabs(b[i]));
    }
    if (mb == 0) return md == 0 ? 0 : HUGE_VAL;
    return md / mb;
}

/// Level-unit value v of x under grid g (before rounding).
inline double level(const quant::grid& g, double x) {
    const double xc = std::min(std::max(x, g.lo), g.hi);
    return (xc - g.lo) * g.inv_d + g.qn;
}

/// True when v is at least m away from the bounds and from every rounding midpoint.
inline bool well_inside(const quant::grid& g, double v, double m) {
    if (std::fabs(v - g.qn) < m || std::fabs(v - g.qp) < m) return false;
    if (g.binary) return std::fabs(v) >= m;
    const double frac = v - std::floor(v);
    return std::fabs(frac - 0.5) >= m;
}

template <class Q, class T>
std::vector<std::pair<tensor<T>*, tensor<T>*>> params_of(Q& q) {
    std::vector<std::pair<tensor<T>*, tensor<T>*>> ps;
    q.for_each_param([&](const std::string&, tensor<T>& v, tensor<T>& g, nn::param_kind) { ps.push_back({&v, &g}); });
    return ps;
}

template <class T>
double weighted_sum(const tensor<T>& y, const tensor<T>& dy) {
    double s = 0;
    for (std::size_t i = 0; i < y.size(); ++i) s += static_cast<double>(y.data()[i]) * static_cast<double>(dy.data()[i]);
    return s;
}

}  // namespace qc_detail

/// Runs checks 1-5 (see the top of this file) on the quantizer of preset P with scalar type T.
template <class P, class T = double>
quant_check_result check_quantizer(quant_check_options o = {}) {
    using Q = typename P::template type<T>;
    using Method = typename Q::method_type;
    using Est = typename Q::estimator_type;
    constexpr bool is_weight = P::role == quant::tensor_role::weight;
    quant_check_result res;
    const std::string who = std::string(Method::name) + "<" + std::to_string(P::bits) + " bits, " + Est::name + ">";
    if (o.shape.empty()) o.shape = is_weight ? shape_t{6, 3, 3, 3} : shape_t{2, 3, 6, 6};
    rng g(o.seed);
    Q q(o.shape[0]);

    // Calibrate on a plausible input: weights N(0, 0.5^2); activations mostly post-ReLU.
    tensor<T> x0(o.shape);
    for (auto& v : x0) v = static_cast<T>(is_weight ? 0.5 * g.normal() : (g.uniform() < 0.8 ? std::fabs(g.normal()) : -0.3 * std::fabs(g.normal())));
    q.calibrate(x0);
    const std::size_t ng = q.groups(x0), gs = x0.size() / ng;

    // Test points: level values across and beyond [Qn, Qp], away from bounds and midpoints.
    tensor<T> x(o.shape);
    for (std::size_t gi = 0; gi < ng; ++gi) {
        const quant::grid gr = q.grid_of(gi);
        for (std::size_t i = gi * gs; i < (gi + 1) * gs; ++i) {
            for (int tries = 0;; ++tries) {
                double xi;
                if constexpr (Method::transforms) {
                    xi = 0.6 * g.normal();
                } else {
                    const double v = g.uniform(gr.qn - 1.5, gr.qp + 1.5);
                    xi = gr.lo + (v - gr.qn) / gr.inv_d;
                }
                x.data()[i] = static_cast<T>(xi);
                if constexpr (Method::transforms) break;  // checked below on the transformed grid
                const double vv = (xi - gr.lo) * gr.inv_d + gr.qn;
                const bool outside = vv < gr.qn - o.margin || vv > gr.qp + o.margin;
                if (outside || qc_detail::well_inside(gr, vv, o.margin) || tries > 1000) break;
            }
        }
    }

    // 1. codes on a dense input
    {
        // 8 samples per level and group: [channels, 8 L] (per channel) or [8 L] (per tensor)
        const std::size_t per = 8u << P::bits;
        tensor<T> dense(ng > 1 ? shape_t{ng, per} : shape_t{per});
        for (std::size_t gi = 0; gi < ng; ++gi) {
            const quant::grid gr = q.grid_of(gi);
            for (std::size_t i = 0; i < per; ++i) {
                const double f = static_cast<double>(i) / static_cast<double>(per - 1);
                double xi;
                if constexpr (Method::transforms)
                    xi = -3 + 6 * f;
                else
                    xi = gr.lo - 0.1 * (gr.hi - gr.lo) + f * 1.2 * (gr.hi - gr.lo);
                dense.data()[gi * per + i] = static_cast<T>(xi);
            }
        }
        std::vector<int> codes;
        q.codes(dense, codes);
        const int levels = (Method::transforms || !q.grid_of(0).binary) ? (1 << P::bits) : 2;
        for (std::size_t gi = 0; gi < ng; ++gi) {
            const quant::grid gr = q.grid_of(gi);
            std::set<int> seen;
            bool in_range = true;
            for (std::size_t i = gi * per; i < (gi + 1) * per; ++i) {
                seen.insert(codes[i]);
                in_range &= codes[i] >= gr.qn && codes[i] <= gr.qp;
            }
            if (!in_range) res.fail(who + ": codes outside [Qn, Qp] in group " + std::to_string(gi));
            if (static_cast<int>(seen.size()) != levels)
                res.fail(who + ": " + std::to_string(seen.size()) + " distinct codes on a dense input of group " +
                         std::to_string(gi) + ", expected " + std::to_string(levels));
        }
        res.checks.push_back(who + ": codes in [Qn, Qp], " + std::to_string(levels) + " levels per group");
    }

    // 2. idempotence on codes
    {
        std::vector<int> k1;
        q.codes(x, k1);
        bool same = true;
        if constexpr (Method::transforms) {
            for (std::size_t i = 0; i < x.size(); ++i) {
                const quant::grid gr = q.grid_of(0);
                const double back = gr.input_of_code(k1[i]);
                same &= static_cast<int>(std::nearbyint(qc_detail::level(gr, back))) == k1[i];
            }
        } else {
            tensor<T> xb(o.shape);
            for (std::size_t i = 0; i < x.size(); ++i)
                xb.data()[i] = static_cast<T>(q.grid_of(i / gs).input_of_code(k1[i]));
            std::vector<int> k2;
            q.codes(xb, k2);
            same = k1 == k2;
        }
        if (!same) res.fail(who + ": quantizing the dequantized codes changed some codes");
        res.checks.push_back(who + ": idempotent on codes");
    }

    // 3. gradient masks, bounds included
    if constexpr (!Method::transforms) {
        tensor<T> xm(o.shape);
        for (std::size_t gi = 0; gi < ng; ++gi) {
            const quant::grid gr = q.grid_of(gi);
            const double step = 1 / gr.inv_d;
            const double pts[4] = {gr.lo - step, gr.lo, gr.hi, gr.hi + step};
            for (std::size_t i = gi * gs; i < (gi + 1) * gs; ++i) xm.data()[i] = static_cast<T>(pts[(i - gi * gs) % 4]);
        }
        tensor<T> ones(o.shape);
        ones.fill(T(1));
        nn::zero_grad(q);
        q.forward(xm);
        const tensor<T> dx = q.backward(ones, true);
        bool good = true;
        for (std::size_t i = 0; i < xm.size(); ++i) {
            const quant::grid gr = q.grid_of(i / gs);
            const int kind = static_cast<int>((i % gs) % 4);  // 0 below, 1 at lo, 2 at hi, 3 above
            bool pass = kind == 1 || (kind == 2 && !gr.hi_open);
            if (!Est::masked) pass = true;
            const bool nonzero = dx.data()[i] != T(0);
            if (nonzero != pass) good = false;
        }
        if (!good) res.fail(who + ": dLoss/dx mask wrong at or beyond the clip bounds");
        res.checks.push_back(who + ": gradient mask (bounds included" + std::string(q.grid_of(0).hi_open ? ", upper bound open" : "") + ")");
    }

    // 4. finite differences of the surrogate forward
    {
        const double saved_delta = q.estimator().delta;
        q.estimator().delta = 0;
        tensor<T> dy(o.shape);
        for (auto& v : dy) v = static_cast<T>(g.normal());
        if (Method::surrogate == quant::rounding::frozen) q.freeze_at(x);
        q.set_rounding(Method::surrogate);
        nn::zero_grad(q);
        q.forward(x);
        const tensor<T> dx = q.backward(dy, true);
        auto params = qc_detail::params_of<Q, T>(q);
        std::vector<tensor<T>> pgrads;
        for (auto& p : params) pgrads.push_back(*p.second);
        auto loss = [&]() { return qc_detail::weighted_sum(q.forward(x), dy); };
        const double h0 = o.eps / q.grid_of(0).inv_d;
        std::vector<double> an, num;
        for (std::size_t i = 0; i < x.size(); ++i) {
            const quant::grid gr = q.grid_of(i / gs);
            if constexpr (!Method::transforms) {
                const double v = (static_cast<double>(x.data()[i]) - gr.lo) * gr.inv_d + gr.qn;
                if (!Est::masked && (v < gr.qn || v > gr.qp)) continue;  // plain STE: inside only
            }
            const T keep = x.data()[i];
            const double h = Method::transforms ? 1e-6 : o.eps / gr.inv_d;
            x.data()[i] = static_cast<T>(keep + h);
            const double lp = loss();
            x.data()[i] = static_cast<T>(keep - h);
            const double lm = loss();
            x.data()[i] = keep;
            an.push_back(static_cast<double>(dx.data()[i]));
            num.push_back((lp - lm) / (2 * h));
        }
        const double ex = qc_detail::rel_err(an, num);
        if (!(ex <= o.tolerance)) res.fail(who + ": dLoss/dx differs from finite differences by " + std::to_string(ex));
        std::ostringstream cs;
        cs << who << ": dLoss/dx vs finite differences " << ex;
        const double gsc = q.method().grad_scale(x);
        for (std::size_t pi = 0; pi < params.size(); ++pi) {
            std::vector<double> pa, pn;
            tensor<T>& pv = *params[pi].first;
            for (std::size_t j = 0; j < pv.size(); ++j) {
                const T keep = pv.data()[j];
                const double h = std::max(std::fabs(static_cast<double>(keep)), h0) * 1e-6;
                pv.data()[j] = static_cast<T>(keep + h);
                const double lp = loss();
                pv.data()[j] = static_cast<T>(keep - h);
                const double lm = loss();
                pv.data()[j] = keep;
                pa.push_back(static_cast<double>(pgrads[pi].data()[j]));
                pn.push_back(gsc * (lp - lm) / (2 * h));
            }
            const double ep = qc_detail::rel_err(pa, pn);
            if (!(ep <= o.tolerance))
                res.fail(who + ": parameter " + std::to_string(pi) + " gradient differs from finite differences by " +
                         std::to_string(ep));
            cs << ", param " << pi << " " << ep;
        }
        res.checks.push_back(cs.str());
        q.set_rounding(quant::rounding::nearest);
        q.estimator().delta = saved_delta;
    }

    // 5. EWGS closed form
    if constexpr (Est::scaled && !Method::transforms) {
        q.estimator().delta = o.delta;
        tensor<T> dy(o.shape);
        for (auto& v : dy) v = static_cast<T>(g.normal());
        nn::zero_grad(q);
        q.forward(x);
        const tensor<T> dx = q.backward(dy, true);
        std::vector<double> an, cf;
        for (std::size_t i = 0; i < x.size(); ++i) {
            const quant::grid gr = q.grid_of(i / gs);
            const double xi = x.data()[i];
            const bool in = xi >= gr.lo && (gr.hi_open ? xi < gr.hi : xi <= gr.hi);
            const double v = qc_detail::level(gr, xi);
            const double qq = gr.binary ? (v >= 0 ? 1.0 : -1.0) : std::nearbyint(v);
            const double gq = static_cast<double>(dy.data()[i]) * gr.a;
            const double sg = gq > 0 ? 1.0 : (gq < 0 ? -1.0 : 0.0);
            an.push_back(static_cast<double>(dx.data()[i]));
            cf.push_back(in ? gq * (1 + o.delta * sg * (v - qq) / gr.spacing) * gr.inv_d : 0.0);
        }
        const double e = qc_detail::rel_err(an, cf);
        if (!(e <= 1e-12)) res.fail(who + ": EWGS dLoss/dx differs from its closed form by " + std::to_string(e));
        res.checks.push_back(who + ": EWGS closed form, error " + std::to_string(e));
    }
    return res;
}

}  // namespace sqakd::testing

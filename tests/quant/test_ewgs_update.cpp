// quant::ewgs_hessian_update (SQAKD.md §3, "EWGS delta"): the Hutchinson trace against the exact
// Hessian w.r.t. the codes (closed form and column-by-column finite differences) on a tiny
// double network, delta against the formula, state left untouched, and a ResNet-20 W2A2 EWGS
// student on real Fashion-MNIST against the committed teacher.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "sqakd/data.hpp"
#include "sqakd/distill/kd.hpp"
#include "sqakd/io.hpp"
#include "sqakd/nn.hpp"
#include "sqakd/nn/quantize.hpp"
#include "sqakd/quant/ewgs_update.hpp"
#include "sqakd/testing/gradient_check.hpp"

using namespace sqakd;

namespace {

constexpr int In = 6, Hid = 3, Out = 2, Batch = 4;
using wq_ewgs = quant::interval_weight<2, quant::ewgs>;
using aq_ewgs = quant::interval_act<2, quant::ewgs>;
template <class AQ>
using tiny_t = nn::sequential<nn::quant_linear<In, Hid, false, wq_ewgs, AQ, double>, nn::linear<Hid, Out, true, double>>;

/// L = sign * 0.5 * sum(zs^2) (ignores the teacher logits).
struct quad_loss {
    double sign = 1.0;
    template <class T>
    double operator()(const tensor<T>& zs, const tensor<T>&, tensor<T>& dzs) const {
        ensure_shape(dzs, shape_t(zs.shape().begin(), zs.shape().end()));
        double l = 0;
        for (std::size_t i = 0; i < zs.size(); ++i) {
            l += 0.5 * zs.data()[i] * zs.data()[i];
            dzs.data()[i] = static_cast<T>(sign * zs.data()[i]);
        }
        return sign * l;
    }
};

template <class Net>
void make_tiny(Net& net, tensor<double>& x) {
    rng g(21);
    net.init(g);
    x = testing::random_tensor<double>({Batch, In}, g, -0.3, 1.6);
    nn::request_quant_init(net);
    net.forward(x, nn::mode::train);  // initialise the quantizers
}

double unbiased_std(const std::vector<double>& g) {
    double m = 0;
    for (double v : g) m += v;
    m /= static_cast<double>(g.size());
    double ss = 0;
    for (double v : g) ss += (v - m) * (v - m);
    return std::sqrt(ss / static_cast<double>(g.size() - 1));
}

/// Everything about the tiny network at its current point, computed independently of the
/// code under test: the closed-form traces and g_q, and the full Hessian w.r.t. all codes
/// (weights first, then activations) by central differences with unit probes.
struct tiny_reference {
    double trace_w = 0, trace_a = 0;
    std::vector<double> gw, ga;
    std::vector<std::vector<double>> H;  // (nw + na)^2
    std::size_t nw = 0, na = 0;
};

template <class Net>
tiny_reference reference(Net& net, const tensor<double>& x, double sign) {
    auto& ql = std::get<0>(net.layers());
    auto& fc = std::get<1>(net.layers());
    tiny_reference r;
    net.forward(x, nn::mode::train);
    const tensor<double>& wq = ql.inner().weight();  // Q_w(W) after the forward
    const tensor<double>& W2 = fc.weight();          // [Out, Hid]
    const double s = std::fabs(ql.scale()(0));
    std::vector<int> codes;
    ql.act_quant().codes(x, codes);
    const quant::grid ga = ql.act_quant().grid_of(0);
    std::vector<double> xh(codes.size());
    for (std::size_t i = 0; i < codes.size(); ++i) xh[i] = ga.a * codes[i] + ga.b;
    const std::size_t ngw = ql.weight_quant().groups(ql.weight());
    auto aw = [&](int o) { return ql.weight_quant().grid_of(ngw == 1 ? 0 : static_cast<std::size_t>(o)).a; };
    // z = W2 (s Wq xh) + b2, L = sign/2 |z|^2
    std::vector<double> z(Batch * Out);
    for (int b = 0; b < Batch; ++b)
        for (int k = 0; k < Out; ++k) {
            double acc = fc.bias()(static_cast<std::size_t>(k));
            for (int o = 0; o < Hid; ++o) {
                double h = 0;
                for (int i = 0; i < In; ++i) h += wq(o, i) * xh[static_cast<std::size_t>(b * In + i)];
                acc += W2(k, o) * s * h;
            }
            z[static_cast<std::size_t>(b * Out + k)] = acc;
        }
    // u_b = W2^T z_b (dL/dh_b / (sign s))
    std::vector<double> u(Batch * Hid, 0.0);
    for (int b = 0; b < Batch; ++b)
        for (int o = 0; o < Hid; ++o)
            for (int k = 0; k < Out; ++k) u[static_cast<std::size_t>(b * Hid + o)] += W2(k, o) * z[static_cast<std::size_t>(b * Out + k)];
    r.gw.assign(Hid * In, 0.0);
    r.ga.assign(Batch * In, 0.0);
    for (int b = 0; b < Batch; ++b)
        for (int o = 0; o < Hid; ++o)
            for (int i = 0; i < In; ++i) {
                const double uo = sign * s * u[static_cast<std::size_t>(b * Hid + o)];
                r.gw[static_cast<std::size_t>(o * In + i)] += aw(o) * uo * xh[static_cast<std::size_t>(b * In + i)];
                r.ga[static_cast<std::size_t>(b * In + i)] += ga.a * uo * wq(o, i);
            }
    // traces: H_aa = sign a_a^2 s^2 (W2 Wq)^T (W2 Wq) per sample; H_ww diagonal from sum_b xh^2
    double fro = 0;
    for (int k = 0; k < Out; ++k)
        for (int i = 0; i < In; ++i) {
            double m = 0;
            for (int o = 0; o < Hid; ++o) m += W2(k, o) * wq(o, i);
            fro += m * m;
        }
    r.trace_a = sign * Batch * ga.a * ga.a * s * s * fro;
    double sx2 = 0;
    for (double v : xh) sx2 += v * v;
    for (int o = 0; o < Hid; ++o) {
        double c2 = 0;
        for (int k = 0; k < Out; ++k) c2 += W2(k, o) * W2(k, o);
        r.trace_w += sign * s * s * aw(o) * aw(o) * c2 * sx2;
    }
    // full Hessian by central differences of g_q with unit probes
    r.nw = static_cast<std::size_t>(Hid * In);
    r.na = static_cast<std::size_t>(Batch * In);
    const std::size_t n = r.nw + r.na;
    r.H.assign(n, std::vector<double>(n, 0.0));
    auto& qw = ql.weight_quant();
    auto& qa = ql.act_quant();
    qw.capture_gq(true);
    qa.capture_gq(true);
    const quad_loss loss{sign};
    tensor<double> pw(shape_t{static_cast<std::size_t>(Hid), static_cast<std::size_t>(In)}),
        pa(shape_t{static_cast<std::size_t>(Batch), static_cast<std::size_t>(In)}), dz;
    const double e = 1e-3;
    auto grads_at = [&](std::size_t j, double step) {
        pw.fill(0);
        pa.fill(0);
        if (j < r.nw)
            pw.data()[j] = step;
        else
            pa.data()[j - r.nw] = step;
        qw.set_probe(&pw);
        qa.set_probe(&pa);
        const tensor<double>& zs = net.forward(x, nn::mode::train);
        loss(zs, zs, dz);
        net.backward(dz, false);
        std::vector<double> g(n);
        for (std::size_t i = 0; i < r.nw; ++i) g[i] = qw.captured_gq().data()[i];
        for (std::size_t i = 0; i < r.na; ++i) g[r.nw + i] = qa.captured_gq().data()[i];
        return g;
    };
    for (std::size_t j = 0; j < n; ++j) {
        const auto gp = grads_at(j, e), gm = grads_at(j, -e);
        for (std::size_t i = 0; i < n; ++i) r.H[i][j] = (gp[i] - gm[i]) / (2 * e);
    }
    qw.set_probe(nullptr);
    qa.set_probe(nullptr);
    qw.capture_gq(false);
    qa.capture_gq(false);
    nn::zero_grad(net);
    return r;
}

/// sd of one Hutchinson sample v_A.(Hv)_A, v Rademacher over every coordinate of `probed`
/// (the first `probed` rows/columns of H), block A = [a0, a1): the pairs inside A add
/// 2 sum_{i != j in A} H_ij^2, the pairs (i in A, j probed outside A) add H_ij^2.
double hutchinson_sd(const std::vector<std::vector<double>>& H, std::size_t a0, std::size_t a1, std::size_t probed) {
    double within = 0, cross = 0;
    for (std::size_t i = a0; i < a1; ++i)
        for (std::size_t j = 0; j < probed; ++j) {
            if (j == i) continue;
            if (j >= a0 && j < a1)
                within += H[i][j] * H[i][j];
            else
                cross += H[i][j] * H[i][j];
        }
    return std::sqrt(2 * within + cross);
}

std::string teacher_ckpt() {
    return std::string(SQAKD_SOURCE_DIR) + "/benchmarks/results/teacher_resnet20_fmnist/seed0/last.sqakd";
}

}  // namespace

TEST_CASE("ewgs_hessian_update: Hutchinson trace matches the exact Hessian w.r.t. the codes, delta the formula") {
    tiny_t<aq_ewgs> net;
    tensor<double> x;
    make_tiny(net, x);
    auto& ql = std::get<0>(net.layers());
    const tensor<double> zt(shape_t{static_cast<std::size_t>(Batch), static_cast<std::size_t>(Out)}, 0.0);

    const tiny_reference ref = reference(net, x, 1.0);
    // the finite-difference Hessian agrees with the closed form, and is symmetric
    double tw = 0, ta = 0;
    for (std::size_t i = 0; i < ref.nw; ++i) tw += ref.H[i][i];
    for (std::size_t i = ref.nw; i < ref.nw + ref.na; ++i) ta += ref.H[i][i];
    REQUIRE(ref.trace_a > 0);
    REQUIRE(ref.trace_w > 0);
    CHECK(ta == doctest::Approx(ref.trace_a).epsilon(1e-7));
    CHECK(tw == doctest::Approx(ref.trace_w).epsilon(1e-7));
    double asym = 0, hmax = 0;
    for (std::size_t i = 0; i < ref.H.size(); ++i)
        for (std::size_t j = 0; j < ref.H.size(); ++j) {
            asym = std::max(asym, std::fabs(ref.H[i][j] - ref.H[j][i]));
            hmax = std::max(hmax, std::fabs(ref.H[i][j]));
        }
    CHECK(asym < 1e-7 * hmax);

    // state before: non-zero gradients and a previous delta, which must not matter
    {
        const tensor<double>& zs = net.forward(x, nn::mode::train);
        tensor<double> dz;
        quad_loss{}(zs, zt, dz);
        net.backward(dz, false);
    }
    ql.weight_quant().estimator().delta = 0.7;
    ql.act_quant().estimator().delta = 0.4;
    std::vector<tensor<double>> grads_before;
    net.for_each_param([&](const std::string&, tensor<double>&, tensor<double>& g, nn::param_kind) { grads_before.push_back(g); });
    const std::string sum_before = io::weights_checksum(net);

    quant::ewgs_update_options o;
    o.max_probes = 400;
    o.rel_tol = 0;  // never converges: use all probes
    o.seed = 5;
    const quant::ewgs_update_result r = quant::ewgs_hessian_update(net, quad_loss{}, x, zt, o);
    REQUIRE(r.weight_delta.size() == 1);
    REQUIRE(r.act_delta.size() == 1);
    CHECK(r.probes == 400);

    // Hutchinson within 4.5 sd of the exact trace (the sd from the full Hessian)
    const double sd_w = hutchinson_sd(ref.H, 0, ref.nw, ref.nw + ref.na) / std::sqrt(400.0);
    const double sd_a = hutchinson_sd(ref.H, ref.nw, ref.nw + ref.na, ref.nw + ref.na) / std::sqrt(400.0);
    INFO("trace_w " << r.weight_trace[0] << " exact " << ref.trace_w << " sd " << sd_w);
    INFO("trace_a " << r.act_trace[0] << " exact " << ref.trace_a << " sd " << sd_a);
    CHECK(sd_a > 0);
    CHECK(std::fabs(r.weight_trace[0] - ref.trace_w) < 4.5 * sd_w + 1e-9 * ref.trace_w);
    CHECK(std::fabs(r.act_trace[0] - ref.trace_a) < 4.5 * sd_a);
    CHECK(sd_a < 0.25 * ref.trace_a);  // the check above is not vacuous

    // std(g_q) (unbiased) and delta = max(0, (Tr/numel) / (3 std)), against the closed form
    const double sw = unbiased_std(ref.gw), sa = unbiased_std(ref.ga);
    CHECK(r.weight_gq_std[0] == doctest::Approx(sw).epsilon(1e-10));
    CHECK(r.act_gq_std[0] == doctest::Approx(sa).epsilon(1e-10));
    CHECK(r.weight_delta[0] == doctest::Approx((r.weight_trace[0] / (Hid * In)) / (3 * sw)).epsilon(1e-10));
    CHECK(r.act_delta[0] == doctest::Approx((r.act_trace[0] / (Batch * In)) / (3 * sa)).epsilon(1e-10));
    CHECK(r.act_delta[0] > 0);
    CHECK(r.weight_delta[0] > 0);
    // ... and from the exact trace, within the Hutchinson tolerance
    CHECK(std::fabs(r.act_delta[0] - (ref.trace_a / (Batch * In)) / (3 * sa)) < 4.5 * sd_a / (Batch * In) / (3 * sa));

    // the deltas are set, everything else is as before
    CHECK(ql.weight_quant().estimator().delta == r.weight_delta[0]);
    CHECK(ql.act_quant().estimator().delta == r.act_delta[0]);
    CHECK(ql.act_quant().get_rounding() == quant::rounding::nearest);
    CHECK(io::weights_checksum(net) == sum_before);
    std::size_t gi = 0;
    bool grads_same = true;
    net.for_each_param([&](const std::string&, tensor<double>&, tensor<double>& g, nn::param_kind) {
        grads_same = grads_same && g == grads_before[gi++];
    });
    CHECK(grads_same);

    // same seed, different previous deltas: the same result (deterministic; the previous delta is not an input)
    ql.weight_quant().estimator().delta = 0;
    ql.act_quant().estimator().delta = 2.5;
    const auto r2 = quant::ewgs_hessian_update(net, quad_loss{}, x, zt, o);
    CHECK(r2.act_trace[0] == r.act_trace[0]);
    CHECK(r2.weight_trace[0] == r.weight_trace[0]);
    CHECK(r2.act_delta[0] == r.act_delta[0]);
}

TEST_CASE("ewgs_hessian_update: negative curvature gives delta 0; early stop; options and preconditions") {
    tiny_t<aq_ewgs> net;
    tensor<double> x;
    make_tiny(net, x);
    auto& ql = std::get<0>(net.layers());
    const tensor<double> zt(shape_t{static_cast<std::size_t>(Batch), static_cast<std::size_t>(Out)}, 0.0);

    const tiny_reference ref = reference(net, x, -1.0);
    REQUIRE(ref.trace_a < 0);
    quant::ewgs_update_options o;
    o.max_probes = 200;
    o.rel_tol = 0;
    const auto r = quant::ewgs_hessian_update(net, quad_loss{-1.0}, x, zt, o);
    CHECK(r.act_trace[0] < 0);
    CHECK(r.weight_trace[0] < 0);
    CHECK(r.act_delta[0] == 0.0);
    CHECK(r.weight_delta[0] == 0.0);
    CHECK(ql.act_quant().estimator().delta == 0.0);

    // the default stop rule stops early on this small problem, and at least after 2 probes
    const auto rd = quant::ewgs_hessian_update(net, quad_loss{}, x, zt);
    CHECK(rd.probes >= 2);
    CHECK(rd.probes <= 50);
    o.max_probes = 1;
    CHECK(quant::ewgs_hessian_update(net, quad_loss{}, x, zt, o).probes == 1);

    // eps: the estimate does not depend on it for a polynomial loss (beyond round-off)
    o.max_probes = 20;
    o.seed = 3;
    const auto e3 = quant::ewgs_hessian_update(net, quad_loss{}, x, zt, o);
    o.eps = 1e-2;
    const auto e2 = quant::ewgs_hessian_update(net, quad_loss{}, x, zt, o);
    CHECK(e2.act_trace[0] == doctest::Approx(e3.act_trace[0]).epsilon(2e-3));  // O(e^2): z is bilinear in the codes

    // uninitialised quantizers: refused, nothing changed
    tiny_t<aq_ewgs> fresh;
    rng g(1);
    fresh.init(g);
    nn::request_quant_init(fresh);
    std::get<0>(fresh.layers()).act_quant().estimator().delta = 0.3;
    CHECK_THROWS_AS(quant::ewgs_hessian_update(fresh, quad_loss{}, x, zt), std::logic_error);
    CHECK(std::get<0>(fresh.layers()).act_quant().estimator().delta == 0.3);
    CHECK(std::get<0>(fresh.layers()).quant_init_pending());
    o.eps = 0;
    CHECK_THROWS_AS(quant::ewgs_hessian_update(net, quad_loss{}, x, zt, o), error::invalid_value);
}

TEST_CASE("ewgs_hessian_update: a clipped_ste quantizer is neither probed nor changed") {
    tiny_t<quant::interval_act<2, quant::clipped_ste>> net;
    tensor<double> x;
    make_tiny(net, x);
    auto& ql = std::get<0>(net.layers());
    ql.act_quant().estimator().delta = 0.25;  // unused by clipped_ste; must stay
    const tensor<double> zt(shape_t{static_cast<std::size_t>(Batch), static_cast<std::size_t>(Out)}, 0.0);
    const tiny_reference ref = reference(net, x, 1.0);
    quant::ewgs_update_options o;
    o.max_probes = 400;
    o.rel_tol = 0;
    const auto r = quant::ewgs_hessian_update(net, quad_loss{}, x, zt, o);
    CHECK(ql.act_quant().estimator().delta == 0.25);
    CHECK(r.act_delta[0] == 0.0);
    CHECK(r.act_trace[0] == 0.0);
    CHECK(r.weight_delta[0] > 0);
    CHECK(ql.weight_quant().estimator().delta == r.weight_delta[0]);
    // only the weight codes are probed now: the cross block does not add variance
    const double sd = hutchinson_sd(ref.H, 0, ref.nw, ref.nw) / std::sqrt(400.0);
    CHECK(std::fabs(r.weight_trace[0] - ref.trace_w) < 4.5 * sd + 1e-9 * ref.trace_w);
}

// Two quantized layers: only the first activation quantizer uses EWGS, the second (clipped_ste)
// is downstream of its probes. One input of the second sits 1e-6 level above a rounding
// boundary, so +-e perturbations of the first layer's codes flip that code under real
// rounding; the update must freeze the rounding there (the Hessian of the straight-through
// surrogate, as the paper's autograd computes it), and the estimate must match the closed form.
namespace {
constexpr int H1 = 5, H2 = 4, Out2 = 3;
using wq_ste = quant::interval_weight<2, quant::clipped_ste>;
using aq_ste = quant::interval_act<2, quant::clipped_ste>;
using two_t = nn::sequential<nn::quant_linear<In, H1, false, wq_ste, aq_ewgs, double>,
                             nn::quant_linear<H1, H2, false, wq_ste, aq_ste, double>, nn::linear<H2, Out2, true, double>>;
}  // namespace

TEST_CASE("ewgs_hessian_update: a code next to a rounding boundary downstream is frozen, not differenced") {
    two_t net;
    rng g(8);
    net.init(g);
    const tensor<double> x = testing::random_tensor<double>({Batch, In}, g, -0.3, 1.6);
    nn::request_quant_init(net);
    net.forward(x, nn::mode::train);
    auto& l1 = std::get<0>(net.layers());
    auto& l2 = std::get<1>(net.layers());
    auto& fc = std::get<2>(net.layers());
    // Move the lower clip bounds off the minimum inputs (a kink), then put one input of l2's
    // activation quantizer 1e-6 level above a rounding boundary through its upper bound.
    l1.act_quant().method().lower()(0) -= 0.1;
    l2.act_quant().method().lower()(0) -= 0.1;
    net.forward(x, nn::mode::train);
    {
        const tensor<double>& y1 = *net.output_of(0);
        const double lo = l2.act_quant().method().lower()(0), hi = l2.act_quant().method().upper()(0);
        std::size_t j0 = y1.size();
        for (std::size_t j = 0; j < y1.size(); ++j) {
            const double v = (y1.data()[j] - lo) * 3 / (hi - lo);
            if (v > 0.6 && v < 2.4 && (j0 == y1.size() || y1.data()[j] > y1.data()[j0])) j0 = j;
        }
        REQUIRE(j0 < y1.size());
        const double v0 = (y1.data()[j0] - lo) * 3 / (hi - lo);
        const double target = std::floor(v0) + 0.5 + 1e-6;
        l2.act_quant().method().upper()(0) = lo + (y1.data()[j0] - lo) * 3 / target;
    }
    l2.act_quant().estimator().delta = 0.125;  // unused by clipped_ste; must stay
    const tensor<double> zt(shape_t{static_cast<std::size_t>(Batch), static_cast<std::size_t>(Out2)}, 0.0);

    // closed form at this point: z_b = A_b q1_b + c_b inside the clip ranges, so
    // H = blockdiag(A_b^T A_b) w.r.t. l1's activation codes, and g_q = A_b^T z_b.
    const tensor<double>& z = net.forward(x, nn::mode::train);
    const tensor<double> y1 = *net.output_of(0);
    const quant::grid g1 = l1.act_quant().grid_of(0), g2 = l2.act_quant().grid_of(0);
    std::size_t near_bound = 0;
    double min_clip_dist = 1e9;
    for (std::size_t j = 0; j < y1.size(); ++j) {
        const double v = (y1.data()[j] - g2.lo) * g2.inv_d + g2.qn;
        near_bound += std::fabs(v - std::floor(v) - 0.5) < 1e-5;
        min_clip_dist = std::min(min_clip_dist, std::min(std::fabs(v - g2.qn), std::fabs(v - g2.qp)));
    }
    const tensor<double>& wq1 = l1.inner().weight();  // [H1, In], Q_w(W1)
    const tensor<double>& wq2 = l2.inner().weight();  // [H2, H1]
    const double s1 = std::fabs(l1.scale()(0)), s2 = std::fabs(l2.scale()(0));
    // no clip kink within reach of the perturbations: |dv2| <= e s1 a1 inv_d2 max_h sum_i |Wq1(h, i)|
    double reach = 0;
    for (int h = 0; h < H1; ++h) {
        double row = 0;
        for (int i = 0; i < In; ++i) row += std::fabs(wq1(h, i));
        reach = std::max(reach, 1e-3 * s1 * g1.a * g2.inv_d * row);
    }
    REQUIRE(near_bound == 1);
    REQUIRE(reach > 1e-5);  // the boundary element does flip (checked below)
    REQUIRE(min_clip_dist > reach);
    double trace = 0, var = 0;
    std::vector<double> gq;
    for (int b = 0; b < Batch; ++b) {
        // A = W3 s2 Wq2 diag(a2 inv_d2 mask) s1 Wq1 a1      [Out2, In]
        double A[Out2][In] = {};
        for (int k = 0; k < Out2; ++k)
            for (int i = 0; i < In; ++i)
                for (int m = 0; m < H2; ++m)
                    for (int h = 0; h < H1; ++h) {
                        const double yv = y1(static_cast<std::size_t>(b), static_cast<std::size_t>(h));
                        const double mask = yv >= g2.lo && yv <= g2.hi ? 1.0 : 0.0;
                        A[k][i] += fc.weight()(k, m) * s2 * wq2(m, h) * g2.a * g2.inv_d * mask * s1 * wq1(h, i) * g1.a;
                    }
        for (int i = 0; i < In; ++i) {
            double gi = 0;
            for (int k = 0; k < Out2; ++k) gi += A[k][i] * z(static_cast<std::size_t>(b), static_cast<std::size_t>(k));
            gq.push_back(gi);
            for (int j = 0; j < In; ++j) {
                double h = 0;
                for (int k = 0; k < Out2; ++k) h += A[k][i] * A[k][j];
                if (i == j)
                    trace += h;
                else
                    var += 2 * h * h;
            }
        }
    }
    REQUIRE(trace > 0);

    // the setup is sensitive: under real rounding, +-e v on l1's codes flips l2's code
    {
        tensor<double> vp(shape_t{static_cast<std::size_t>(Batch), static_cast<std::size_t>(In)}), vm = vp;
        rng gv(99);
        for (std::size_t i = 0; i < vp.size(); ++i) {
            vp.data()[i] = gv.bernoulli(0.5) ? 1e-3 : -1e-3;
            vm.data()[i] = -vp.data()[i];
        }
        std::vector<int> cp, cm;
        l1.act_quant().set_probe(&vp);
        net.forward(x, nn::mode::train);
        l2.act_quant().codes(*net.output_of(0), cp);
        l1.act_quant().set_probe(&vm);
        net.forward(x, nn::mode::train);
        l2.act_quant().codes(*net.output_of(0), cm);
        l1.act_quant().set_probe(nullptr);
        CHECK(cp != cm);
    }

    const std::string before = io::weights_checksum(net);
    quant::ewgs_update_options o;
    o.max_probes = 300;
    o.rel_tol = 0;
    o.seed = 11;
    const auto r = quant::ewgs_hessian_update(net, quad_loss{}, x, zt, o);
    const double sd = std::sqrt(var / 300.0);
    INFO("trace " << r.act_trace[0] << " exact " << trace << " sd " << sd);
    CHECK(sd < 0.2 * trace);
    CHECK(std::fabs(r.act_trace[0] - trace) < 4.5 * sd);
    const double sg = unbiased_std(gq);
    CHECK(r.act_gq_std[0] == doctest::Approx(sg).epsilon(1e-10));
    CHECK(r.act_delta[0] == doctest::Approx((r.act_trace[0] / (Batch * In)) / (3 * sg)).epsilon(1e-10));
    CHECK(r.act_delta[0] > 0);
    // only l1's activation quantizer is EWGS
    CHECK(r.weight_delta == std::vector<double>{0.0, 0.0});
    CHECK(r.act_delta[1] == 0.0);
    CHECK(r.act_trace[1] == 0.0);
    CHECK(l1.act_quant().estimator().delta == r.act_delta[0]);
    CHECK(l2.act_quant().estimator().delta == 0.125);
    CHECK(l1.weight_quant().estimator().delta == 0.0);
    CHECK(l2.act_quant().get_rounding() == quant::rounding::nearest);
    CHECK(l1.act_quant().get_rounding() == quant::rounding::nearest);
    CHECK(io::weights_checksum(net) == before);
}

TEST_CASE("ewgs_hessian_update: ResNet-20 W2A2 EWGS student, KL loss, real Fashion-MNIST batch") {
    set_num_threads(2);
    using teacher_t = nn::models::resnet20<1, 10>;
    using student_t = nn::quantize_t<teacher_t, wq_ewgs, aq_ewgs>;
    teacher_t teacher;
    io::load_checkpoint(teacher_ckpt(), teacher);
    const data::dataset ds = data::load_fashion_mnist(data::default_fashion_mnist_dir, data::split::train).subset(0, 32);
    data::loader_options lo;
    lo.batch_size = 32;
    lo.shuffle = false;
    lo.augment = false;
    lo.normalize(data::fashion_mnist_stats());
    data::loader l(ds, lo);
    tensor<float> x;
    std::vector<std::int32_t> y;
    l.batch(0, x, y);
    REQUIRE(x.shape()[0] == 32);
    const tensor<float> zt = teacher.forward(x, nn::mode::eval);

    student_t st;
    nn::copy_from_teacher(st, teacher);
    nn::request_quant_init(st);
    st.forward(x, nn::mode::train);  // initialise the quantizers
    nn::zero_grad(st);
    const std::string before = io::weights_checksum(st);

    quant::ewgs_update_options o;  // the defaults: at most 50 probes, rel_tol 1e-3, eps 1e-3
    o.seed = 1;
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = quant::ewgs_hessian_update(st, distill::sqakd_kl{4.0}, x, zt, o);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    MESSAGE("ResNet-20 W2A2 EWGS update, " << r.probes << " probes: " << secs << " s");
    REQUIRE(r.weight_delta.size() == 18);
    REQUIRE(r.act_delta.size() == 18);
    CHECK(r.probes >= 2);
    CHECK(r.probes <= 50);
    std::size_t positive = 0;
    std::size_t k = 0;
    bool all_ok = true;
    nn::for_each_quantized(st, [&](auto& ql) {
        for (double d : {r.weight_delta[k], r.act_delta[k]}) {
            all_ok = all_ok && std::isfinite(d) && d >= 0;
            positive += d > 0;
        }
        all_ok = all_ok && ql.weight_quant().estimator().delta == r.weight_delta[k] &&
                 ql.act_quant().estimator().delta == r.act_delta[k];
        all_ok = all_ok && r.weight_gq_std[k] > 0 && r.act_gq_std[k] > 0;
        all_ok = all_ok && ql.act_quant().get_rounding() == quant::rounding::nearest;
        ++k;
    });
    CHECK(all_ok);
    CHECK(positive >= 1);
    // weights, quantizer parameters and BN buffers untouched, gradients still zero
    CHECK(io::weights_checksum(st) == before);
    bool zero = true;
    st.for_each_param([&](const std::string&, tensor<float>&, tensor<float>& g, nn::param_kind) {
        for (float v : g) zero = zero && v == 0.0f;
    });
    CHECK(zero);
    MESSAGE(positive << " of 36 deltas > 0; layer 17: weight " << r.weight_delta[17] << ", activation " << r.act_delta[17]);

    // The same student with clipped_ste activation quantizers: those are left untouched.
    using mixed_t = nn::quantize_t<teacher_t, wq_ewgs, quant::interval_act<2, quant::clipped_ste>>;
    mixed_t mx;
    nn::copy_from_teacher(mx, teacher);
    nn::request_quant_init(mx);
    mx.forward(x, nn::mode::train);
    nn::zero_grad(mx);
    nn::for_each_quantized(mx, [](auto& ql) { ql.act_quant().estimator().delta = 0.5; });
    const std::string mx_before = io::weights_checksum(mx);
    o.max_probes = 2;
    const auto rm = quant::ewgs_hessian_update(mx, distill::sqakd_kl{4.0}, x, zt, o);
    CHECK(rm.probes == 2);
    k = 0;
    bool act_untouched = true, weights_set = true;
    nn::for_each_quantized(mx, [&](auto& ql) {
        act_untouched = act_untouched && ql.act_quant().estimator().delta == 0.5 && rm.act_delta[k] == 0.0 &&
                        rm.act_trace[k] == 0.0 && ql.act_quant().get_rounding() == quant::rounding::nearest;
        weights_set = weights_set && std::isfinite(rm.weight_delta[k]) && rm.weight_delta[k] >= 0 &&
                      ql.weight_quant().estimator().delta == rm.weight_delta[k] && rm.weight_trace[k] != 0.0;
        ++k;
    });
    CHECK(act_untouched);
    CHECK(weights_set);
    CHECK(io::weights_checksum(mx) == mx_before);
}

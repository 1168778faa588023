// sqakd/quant/ewgs_update.hpp - the EWGS paper's delta update from the Hessian trace
// (SQAKD.md §3, "EWGS delta"; Lee et al., CVPR 2021).
//
//   quant::ewgs_hessian_update(student, loss, x, zt, options) -> quant::ewgs_update_result
//
// For every quantizer whose estimator is quant::ewgs (Estimator::scaled), on one batch x:
//
//   H      the Hessian of the loss w.r.t. the discretizer output, the codes q of that quantizer
//   g_q    dLoss/dq, the first-order gradient w.r.t. the codes at the unperturbed point
//   delta  = max(0, (Tr(H) / numel(q)) / (3 std(g_q)))          (0 when std(g_q) == 0)
//
// per quantized layer, separately for its weight and its activation quantizer.
//
//   Tr(H)  Hutchinson: mean over probes of v.Hv, v Rademacher (+-1), drawn independently for
//          every probed quantizer from sqakd::rng(options.seed) (per probe, quantizers in
//          forward order, weight before activation, 64 signs per rng::next()); all quantizers
//          are probed at once.
//   Hv     central differences of the first-order gradient, through the quantizers' checker
//          hooks: set_probe(+e v) (the codes become q + e v in forward and backward), forward +
//          backward in train mode, captured_gq(); the same with -e v;
//          Hv = (g_q(q + e v) - g_q(q - e v)) / (2 e), e = options.eps (1e-3; taken as the value
//          the scalar type T really holds).
//   stop   after the probe where every quantizer's running estimate changed by less than
//          options.rel_tol (1e-3) relative to the previous one (|t_k - t_{k-1}| < rel_tol
//          |t_{k-1}|; so at least 2 probes), or after options.max_probes (50).
//   std    the unbiased (n - 1) standard deviation of g_q over the elements of the tensor (as
//          torch.Tensor.std() in the paper's code, and the project's default elsewhere).
//
// Choices, and where this differs from the paper:
//   - Loss: `loss` is any callable (zs, zt, dzs) -> double writing dLoss/dzs (resized), e.g.
//     distill::sqakd_kl. The paper uses the labelled cross-entropy; a label-free SQAKD run uses
//     the KL loss against the teacher's logits zt instead (zt is passed through untouched, so
//     a loss may ignore it).
//   - Grid: delta is in level units (the unified quantizer of fake_quant.hpp: the error term
//     is (v - q) / spacing). The paper measures q on the [0, 1] grid; its delta is (L - 1) times
//     the delta set here (L = 2^bits levels): taking both H and g_q on that grid scales Tr(H)/numel
//     by (L - 1)^2 and std(g_q) by (L - 1).
//   - Every EWGS delta is set to 0 while measuring, so g_q and H are those of the loss under the
//     straight-through (clipped) gradient and do not depend on the previous delta; the new
//     deltas are written at the end.
//   - Downstream rounding is frozen: after the unperturbed pass, every activation quantizer
//     (whatever its estimator) gets rounding::frozen at its input of that pass (found by
//     walking sequentials and residual blocks as nn::for_each_quantized does), so in the
//     perturbed passes a later layer's codes follow its input as q = v + (round(v0) - v0), the
//     straight-through surrogate whose gradient the backward pass computes. This is the
//     Hessian the paper's autograd takes (it differentiates downstream rounding as the
//     identity). With real rounding, a +-e perturbation that moves a later input across a
//     rounding boundary flips a whole code and adds O(1/e) to v.Hv: on the ResNet-20 W2A2
//     student the traces then grow about 10x per decade of e and are noise. A pass with the
//     frozen rounding at the unperturbed point is checked against the real network's logits
//     (std::logic_error if they differ). Weight codes are not downstream of any probe and keep
//     real rounding. Each activation quantizer's rounding mode is restored afterwards.
//   - What stays non-smooth: ReLU kinks and the clip bounds. Perturbations that cross them add
//     a noise term whose size grows like e^-1/2 (the paper's autograd Hessian has no such
//     term); on the ResNet-20 student at e = 1e-3 it is of the order of many layers' traces
//     after 50 probes (two seeds disagree in sign), at e = 1e-2 two seeds agree for most
//     layers. eps is an option; the default is SQAKD.md's 1e-3.
//   - Quantizers with another estimator (ste, clipped_ste) are not probed and not changed; their
//     entries in the result are 0.
//
// State: the student must have its quantizers initialised (no quant_init_pending(); else
// std::logic_error, nothing changed). Every train-mode forward updates BN running statistics;
// the update saves all buffers and parameter gradients before and restores them afterwards (also
// when it throws), removes the probes and the g_q capture of the EWGS quantizers
// (set_probe(nullptr), capture_gq(false)) and restores the rounding modes. The only lasting
// effect is the new deltas (the old ones are kept if it throws); the quantizers keep their
// internal buffers (the frozen offsets), and the layers' forward caches are those of the last
// perturbed pass (as after any forward: run a forward before the next backward). Throws
// error::invalid_value when a trace or std(g_q) comes out NaN/Inf, or for eps <= 0.
//
// Cost: 1 + 2 * probes forward+backward passes of the student on x, plus 2 forwards (at most
// 101 + 2 with the defaults; ResNet-20, batch 32 of 28x28, float, 2 cores: about 0.13 s per
// forward+backward, 13 s for 50 probes), and memory for 5 tensors the size of each probed
// quantizer's input.
//
// Example (every N epochs of a label-free run; x one training batch):
//   distill::sqakd_kl kl{4.0};
//   const tensor<float>& zt = teacher.forward(x, nn::mode::eval);
//   quant::ewgs_update_result r = quant::ewgs_hessian_update(student, kl, x, zt);
//   // r.weight_delta[i], r.act_delta[i]: the deltas now in quantized layer i (forward order);
//   // the paper's [0, 1]-grid value is (L - 1) * r.act_delta[i]
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "sqakd/core/error.hpp"
#include "sqakd/core/rng.hpp"
#include "sqakd/core/tensor.hpp"
#include "sqakd/nn/layer.hpp"
#include "sqakd/nn/quantize.hpp"

namespace sqakd::quant {

struct ewgs_update_options {
    std::size_t max_probes = 50;  ///< Hutchinson probes at most
    double rel_tol = 1e-3;        ///< stop when every running trace estimate moved less than this (relative)
    double eps = 1e-3;            ///< e of the central differences, in code units
    std::uint64_t seed = 0;       ///< seed of the Rademacher probes (sqakd::rng)
};

struct ewgs_update_result {
    /// Per quantized layer, forward order: the delta set (0 for a non-EWGS quantizer).
    std::vector<double> weight_delta, act_delta;
    std::size_t probes = 0;  ///< Hutchinson probes used (0 when no quantizer uses EWGS)
    /// Diagnostics, same indexing (0 for a non-EWGS quantizer): the Hutchinson estimate of
    /// Tr(H) and the unbiased std of g_q, so delta = max(0, (trace / numel) / (3 std)).
    std::vector<double> weight_trace, act_trace, weight_gq_std, act_gq_std;
};

namespace ewgs_detail {

/// Calls f(quantizer, slot, is_weight) for the weight and the activation quantizer of every
/// quantized layer, forward order, slot = 2 * layer + (is_weight ? 0 : 1).
template <class Model, class F>
void for_each_quantizer(Model& m, F&& f) {
    std::size_t k = 0;
    nn::for_each_quantized(m, [&](auto& l) {
        f(l.weight_quant(), 2 * k, true);
        f(l.act_quant(), 2 * k + 1, false);
        ++k;
    });
}

/// Calls f(quantized_layer, input) for every quantized layer reachable the way
/// nn::for_each_quantized walks (sequentials and residual blocks), with the tensor that layer
/// got as input in the last forward: child 0 of a sequential gets the sequential's input,
/// child i > 0 the output of child i - 1 (sequential::output_of), a residual's branch and
/// shortcut get the residual's input. Throws std::logic_error when an input is unknown.
template <class L, class T, class F>
void for_each_quantized_input(L& layer, const tensor<T>* in, F&& f) {
    if constexpr (nn::detail::is_sequential<L>::value) {
        layer.each([&](auto& child, std::size_t i) {
            for_each_quantized_input(child, i == 0 ? in : layer.output_of(i - 1), f);
        });
    } else if constexpr (nn::detail::is_residual<L>::value) {
        for_each_quantized_input(layer.branch(), in, f);
        for_each_quantized_input(layer.shortcut(), in, f);
    } else if constexpr (nn::detail::is_quantized<L>::value) {
        if (!in) throw std::logic_error("ewgs_hessian_update: the input of a quantized layer is unknown (no forward yet)");
        f(layer, *in);
    }
}

template <class Q>
constexpr bool is_ewgs_v = std::decay_t<Q>::estimator_type::scaled;

/// Per-quantizer working state.
template <class T>
struct slot {
    bool probed = false;
    double old_delta = 0;
    rounding old_rounding = rounding::nearest;
    std::size_t n = 0;
    tensor<T> v, plus, minus, gplus;  // v in {-1, +1}; plus = e v; minus = -e v; g_q at q + e v
    double sum_vhv = 0, prev_estimate = 0;
    double trace = 0, gstd = 0, delta = 0;
};

/// Unbiased std of a tensor, two-pass in double.
template <class T>
double unbiased_std(const tensor<T>& g) {
    const std::size_t n = g.size();
    if (n < 2) return 0;
    const T* p = g.data();
    double s = 0;
    for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(p[i]);
    const double mean = s / static_cast<double>(n);
    double ss = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double d = static_cast<double>(p[i]) - mean;
        ss += d * d;
    }
    return std::sqrt(ss / static_cast<double>(n - 1));
}

/// Restores buffers, parameter gradients, probes, capture and (unless committed) the deltas.
template <class Student, class T>
struct state_guard {
    Student& s;
    std::vector<slot<T>>& slots;
    std::vector<tensor<T>> buffers, grads;
    bool committed = false;

    state_guard(Student& st, std::vector<slot<T>>& sl) : s(st), slots(sl) {
        s.for_each_buffer([&](const std::string&, tensor<T>& b) { buffers.push_back(b); });
        s.for_each_param([&](const std::string&, tensor<T>&, tensor<T>& g, nn::param_kind) { grads.push_back(g); });
    }
    ~state_guard() {
        std::size_t i = 0;
        s.for_each_buffer([&](const std::string&, tensor<T>& b) {
            if (i < buffers.size()) b = buffers[i];
            ++i;
        });
        i = 0;
        s.for_each_param([&](const std::string&, tensor<T>&, tensor<T>& g, nn::param_kind) {
            if (i < grads.size()) g = grads[i];
            ++i;
        });
        for_each_quantizer(s, [&](auto& q, std::size_t k, bool is_weight) {
            if (!is_weight) q.set_rounding(slots[k].old_rounding);
            if constexpr (is_ewgs_v<decltype(q)>) {
                q.set_probe(nullptr);
                q.capture_gq(false);
                q.estimator().delta = committed ? slots[k].delta : slots[k].old_delta;
            }
        });
    }
    state_guard(const state_guard&) = delete;
    state_guard& operator=(const state_guard&) = delete;
};

}  // namespace ewgs_detail

/// Sets the delta of every EWGS quantizer of `student` from the Hessian trace of `loss` on the
/// batch x (teacher logits zt), see the top of this file; returns what it set.
template <class Student, class Loss, class T>
ewgs_update_result ewgs_hessian_update(Student& student, const Loss& loss, const tensor<T>& x, const tensor<T>& zt,
                                       ewgs_update_options o = {}) {
    static_assert(std::is_same_v<typename Student::scalar_type, T>,
                  "ewgs_hessian_update: the batch and the student must have the same scalar type.");
    using namespace ewgs_detail;
    const char* who = "ewgs_hessian_update";
    if (!(o.eps > 0) || !std::isfinite(o.eps)) throw error::invalid_value(std::string(who) + ": eps must be > 0");
    if (!(o.rel_tol >= 0)) throw error::invalid_value(std::string(who) + ": rel_tol must be >= 0");

    const std::size_t layers = nn::count_quantized(student);
    ewgs_update_result r;
    r.weight_delta.assign(layers, 0.0);
    r.act_delta.assign(layers, 0.0);
    r.weight_trace.assign(layers, 0.0);
    r.act_trace.assign(layers, 0.0);
    r.weight_gq_std.assign(layers, 0.0);
    r.act_gq_std.assign(layers, 0.0);

    std::size_t pending = 0;
    nn::for_each_quantized(student, [&](auto& l) { pending += l.quant_init_pending() ? 1 : 0; });
    if (pending)
        throw std::logic_error(std::string(who) + ": " + std::to_string(pending) +
                               " quantized layer(s) are not initialised yet (run one train-mode forward after "
                               "nn::request_quant_init first)");

    std::vector<slot<T>> slots(2 * layers);
    std::size_t probed = 0;
    for_each_quantizer(student, [&](auto& q, std::size_t k, bool) {
        slots[k].old_rounding = q.get_rounding();
        if constexpr (is_ewgs_v<decltype(q)>) {
            slots[k].probed = true;
            slots[k].old_delta = q.estimator().delta;
            ++probed;
        }
    });
    if (probed == 0) return r;

    state_guard<Student, T> guard(student, slots);
    tensor<T> dzs;
    auto pass = [&]() {
        const tensor<T>& zs = student.forward(x, nn::mode::train);
        const double l = loss(zs, zt, dzs);
        if (!std::isfinite(l)) throw error::invalid_value(std::string(who) + ": the loss is NaN or Inf");
        student.backward(dzs, false);
    };

    // The unperturbed point: g_q and its std; the shapes of the probes.
    for_each_quantizer(student, [&](auto& q, std::size_t, bool) {
        if constexpr (is_ewgs_v<decltype(q)>) {
            q.estimator().delta = 0;
            q.set_probe(nullptr);
            q.capture_gq(true);
        }
    });
    pass();
    for_each_quantizer(student, [&](auto& q, std::size_t k, bool) {
        if constexpr (is_ewgs_v<decltype(q)>) {
            const tensor<T>& g = q.captured_gq();
            slot<T>& s = slots[k];
            s.n = g.size();
            s.gstd = unbiased_std(g);
            const shape_t sh(g.shape().begin(), g.shape().end());
            s.v.resize(sh);
            s.plus.resize(sh);
            s.minus.resize(sh);
            s.gplus.resize(sh);
        }
    });

    // Freeze the rounding of every activation quantizer (whatever its estimator) at the codes
    // of the unperturbed point: in the perturbed passes a later layer's codes then follow its
    // input linearly (q = v + (round(v0) - v0), the straight-through surrogate whose gradient
    // the backward pass computes) instead of jumping when a perturbation crosses a rounding
    // boundary. This is the Hessian the paper's autograd computes.
    const tensor<T> z0 = student.forward(x, nn::mode::train);  // the output buffers now hold the point
    {
        std::size_t k = 0;
        for_each_quantized_input(student, &x, [&](auto& l, const tensor<T>& in) {
            l.act_quant().freeze_at(in);
            l.act_quant().set_rounding(rounding::frozen);
            ++k;
        });
        if (k != layers) throw std::logic_error(std::string(who) + ": could not find the input of every quantized layer");
    }
    {
        // The frozen network at the unperturbed point must be the real one (up to round-off).
        const tensor<T>& z1 = student.forward(x, nn::mode::train);
        double zmax = 0, dmax = 0;
        for (std::size_t i = 0; i < z0.size(); ++i) {
            zmax = std::max(zmax, std::fabs(static_cast<double>(z0.data()[i])));
            dmax = std::max(dmax, std::fabs(static_cast<double>(z1.data()[i]) - static_cast<double>(z0.data()[i])));
        }
        if (!(dmax <= 1e3 * static_cast<double>(std::numeric_limits<T>::epsilon()) * (1.0 + zmax)))
            throw std::logic_error(std::string(who) + ": the network with frozen rounding differs from the real one at "
                                   "the unperturbed point (max |dz| = " + std::to_string(dmax) + ")");
    }

    const T e = static_cast<T>(o.eps);
    const double inv_2e = 1.0 / (2.0 * static_cast<double>(e));
    rng gen(o.seed);
    std::size_t k_probe = 0;
    while (k_probe < o.max_probes) {
        for (auto& s : slots) {
            if (!s.probed) continue;
            T* v = s.v.data();
            T* pp = s.plus.data();
            T* pm = s.minus.data();
            std::uint64_t bits = 0;
            for (std::size_t i = 0; i < s.n; ++i) {
                if (i % 64 == 0) bits = gen.next();
                const T sign = (bits >> (i % 64)) & 1u ? T(1) : T(-1);
                v[i] = sign;
                pp[i] = sign * e;
                pm[i] = -(sign * e);
            }
        }
        for_each_quantizer(student, [&](auto& q, std::size_t k, bool) {
            if constexpr (is_ewgs_v<decltype(q)>) q.set_probe(&slots[k].plus);
        });
        pass();
        for_each_quantizer(student, [&](auto& q, std::size_t k, bool) {
            if constexpr (is_ewgs_v<decltype(q)>) {
                const tensor<T>& g = q.captured_gq();
                std::copy(g.data(), g.data() + g.size(), slots[k].gplus.data());
                q.set_probe(&slots[k].minus);
            }
        });
        pass();
        ++k_probe;
        bool converged = k_probe >= 2;
        for_each_quantizer(student, [&](auto& q, std::size_t k, bool) {
            if constexpr (is_ewgs_v<decltype(q)>) {
                slot<T>& s = slots[k];
                const T* gm = q.captured_gq().data();
                const T* gp = s.gplus.data();
                const T* v = s.v.data();
                double vhv = 0;
                for (std::size_t i = 0; i < s.n; ++i)
                    vhv += static_cast<double>(v[i]) * (static_cast<double>(gp[i]) - static_cast<double>(gm[i]));
                s.sum_vhv += vhv * inv_2e;
                const double est = s.sum_vhv / static_cast<double>(k_probe);
                if (k_probe >= 2) {
                    const double change = std::fabs(est - s.prev_estimate);
                    const bool small = s.prev_estimate != 0 ? change < o.rel_tol * std::fabs(s.prev_estimate) : change == 0;
                    if (!small) converged = false;
                }
                s.prev_estimate = est;
            }
        });
        if (converged) break;
    }

    for (std::size_t k = 0; k < slots.size(); ++k) {
        slot<T>& s = slots[k];
        if (!s.probed) continue;
        s.trace = k_probe ? s.sum_vhv / static_cast<double>(k_probe) : 0.0;
        const std::string what = std::string(k % 2 == 0 ? "weight" : "activation") + " quantizer of quantized layer " +
                                 std::to_string(k / 2);
        if (!std::isfinite(s.trace)) throw error::invalid_value(std::string(who) + ": the Hessian trace of the " + what + " is NaN or Inf");
        if (!std::isfinite(s.gstd)) throw error::invalid_value(std::string(who) + ": std(g_q) of the " + what + " is NaN or Inf");
        const double d = s.gstd > 0 && s.n > 0 ? (s.trace / static_cast<double>(s.n)) / (3.0 * s.gstd) : 0.0;
        if (!std::isfinite(d)) throw error::invalid_value(std::string(who) + ": delta of the " + what + " is NaN or Inf");
        s.delta = d > 0 ? d : 0.0;
        const std::size_t layer = k / 2;
        if (k % 2 == 0) {
            r.weight_delta[layer] = s.delta;
            r.weight_trace[layer] = s.trace;
            r.weight_gq_std[layer] = s.gstd;
        } else {
            r.act_delta[layer] = s.delta;
            r.act_trace[layer] = s.trace;
            r.act_gq_std[layer] = s.gstd;
        }
    }
    r.probes = k_probe;
    guard.committed = true;
    return r;  // the guard restores the state and writes the new deltas
}

}  // namespace sqakd::quant

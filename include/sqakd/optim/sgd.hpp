// sqakd/optim/sgd.hpp - stochastic gradient descent with momentum (PyTorch torch.optim.SGD).
//
//   optim::sgd<T = float>(std::vector<param_group<T>> groups, sgd_options = {})
//
// Per parameter element, with lr and weight decay wd from the element's group (PyTorch 1.13
// semantics, evaluated in T with the hyper-parameters rounded to T, as PyTorch does in float32):
//
//   d   = g + wd * p                        (only when wd != 0)
//   buf = d                                 at the first step,
//   buf = momentum * buf + (1 - dampening) * d   afterwards      (only when momentum != 0)
//   d   = d + momentum * buf   (Nesterov)   or   d = buf         (only when momentum != 0)
//   p   = p - lr * d
//
// step() reads the gradients as they are and does not zero them (call nn::zero_grad(model)
// before the next backward pass). It does not check them for NaN/Inf either; use
// optim::all_finite(opt.groups()) where that matters.
//
// State: one momentum buffer per parameter when momentum != 0, named "<param>.momentum_buffer",
// allocated at construction (zeros), visited by for_each_state for checkpoints; the step count
// (step_count()) tells whether the buffers are initialised (0 = the next step sets buf = d).
//
// Example (SQAKD.md §5, FP teacher: momentum 0.9, weight decay 1e-4, cosine schedule):
//
//   optim::sgd<> opt({{optim::collect_params(teacher), 0.1, 1e-4}}, {0.9});
//   optim::cosine_schedule sched{0.1, epochs};
//   for (std::size_t e = 0; e < epochs; ++e) {
//       opt.set_lr(0, sched(e));
//       for (auto& batch : batches) {
//           nn::zero_grad(teacher);  /* forward, loss, backward */  opt.step();
//       }
//   }
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sqakd/optim/param_group.hpp"

namespace sqakd::optim {

/// Hyper-parameters shared by all groups of an sgd optimiser (PyTorch's defaults).
struct sgd_options {
    double momentum = 0;
    double dampening = 0;
    bool nesterov = false;
};

template <class T = float>
class sgd : public detail::optimizer_base<T> {
    using base = detail::optimizer_base<T>;

public:
    /// Throws error::invalid_value for negative or non-finite hyper-parameters, Nesterov without
    /// momentum or with dampening (as PyTorch), duplicate parameters; error::shape_mismatch when
    /// a gradient's shape differs from its parameter's.
    explicit sgd(std::vector<param_group<T>> groups, sgd_options opt = {})
        : base("sgd", std::move(groups)), m_opt(opt) {
        detail::check_hyper("sgd", "momentum", opt.momentum, 0.0, true, HUGE_VAL, false);
        detail::check_hyper("sgd", "dampening", opt.dampening, 0.0, true, 1.0, true);
        if (opt.nesterov && (opt.momentum <= 0 || opt.dampening != 0))
            throw error::invalid_value(
                "sgd: Nesterov momentum requires a momentum > 0 and zero dampening");
        if (opt.momentum != 0) {
            for (auto& g : this->m_groups) {
                std::vector<tensor<T>> bufs;
                bufs.reserve(g.params.size());
                for (auto& p : g.params) {
                    bufs.emplace_back(shape_t(p.value->shape().begin(), p.value->shape().end()));
                    bufs.back().fill(T(0));
                }
                m_buf.push_back(std::move(bufs));
            }
        }
    }

    const sgd_options& options() const { return m_opt; }

    /// One update of every parameter from its current gradient.
    void step() {
        const bool first = this->m_steps == 0;
        for (std::size_t gi = 0; gi < this->m_groups.size(); ++gi) {
            auto& g = this->m_groups[gi];
            for (std::size_t pi = 0; pi < g.params.size(); ++pi) {
                const auto& p = g.params[pi];
                detail::check_step_sizes("sgd", p);
                T* buf = nullptr;
                if (m_opt.momentum != 0) {
                    detail::match_state("sgd", p, m_buf[gi][pi], this->m_steps);
                    buf = m_buf[gi][pi].data();
                }
                update(p.value->data(), p.grad->data(), buf, p.value->size(), g.lr,
                       g.weight_decay, first);
            }
        }
        ++this->m_steps;
    }

    /// Calls f(const std::string& name, tensor<T>& state) for every momentum buffer
    /// ("<param>.momentum_buffer"), in group and parameter order. Nothing when momentum == 0.
    template <class F>
    void for_each_state(F&& f) {
        if (m_opt.momentum == 0) return;
        for (std::size_t gi = 0; gi < this->m_groups.size(); ++gi)
            for (std::size_t pi = 0; pi < this->m_groups[gi].params.size(); ++pi)
                f(this->m_groups[gi].params[pi].name + ".momentum_buffer", m_buf[gi][pi]);
    }

private:
    void update(T* p, const T* g, T* buf, std::size_t n, double lr, double wd, bool first) const {
        const bool has_wd = wd != 0;
        if (!buf) {
            if (has_wd)
                kernel<true, false, false, false>(p, g, buf, n, lr, wd);
            else
                kernel<false, false, false, false>(p, g, buf, n, lr, wd);
            return;
        }
        // Four variants, so that each inner loop is branch-free and vectorises.
        if (has_wd) {
            if (first)
                m_opt.nesterov ? kernel<true, true, true, true>(p, g, buf, n, lr, wd)
                               : kernel<true, true, true, false>(p, g, buf, n, lr, wd);
            else
                m_opt.nesterov ? kernel<true, true, false, true>(p, g, buf, n, lr, wd)
                               : kernel<true, true, false, false>(p, g, buf, n, lr, wd);
        } else {
            if (first)
                m_opt.nesterov ? kernel<false, true, true, true>(p, g, buf, n, lr, wd)
                               : kernel<false, true, true, false>(p, g, buf, n, lr, wd);
            else
                m_opt.nesterov ? kernel<false, true, false, true>(p, g, buf, n, lr, wd)
                               : kernel<false, true, false, false>(p, g, buf, n, lr, wd);
        }
    }

    template <bool WeightDecay, bool Momentum, bool First, bool Nesterov>
    void kernel(T* __restrict p, const T* __restrict g, T* __restrict buf, std::size_t n, double lr,
                double wd) const {
        // PyTorch converts the Python-float hyper-parameters to the tensor's type.
        const T wdt = static_cast<T>(wd);
        const T mom = static_cast<T>(m_opt.momentum);
        const T keep = static_cast<T>(1.0 - m_opt.dampening);
        const T neg_lr = static_cast<T>(-lr);
        for (std::size_t i = 0; i < n; ++i) {
            T d = g[i];
            if constexpr (WeightDecay) d = d + wdt * p[i];
            if constexpr (Momentum) {
                T b;
                if constexpr (First)
                    b = d;
                else
                    b = buf[i] * mom + keep * d;
                buf[i] = b;
                if constexpr (Nesterov)
                    d = d + mom * b;
                else
                    d = b;
            }
            p[i] = p[i] + neg_lr * d;
        }
        (void)buf;
        (void)mom;
        (void)keep;
        (void)wdt;
    }

    sgd_options m_opt;
    std::vector<std::vector<tensor<T>>> m_buf;  // [group][param], empty when momentum == 0
};

}  // namespace sqakd::optim

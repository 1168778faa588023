// sqakd/optim/adam.hpp - Adam and AdamW (PyTorch torch.optim.Adam / torch.optim.AdamW).
//
//   optim::adam<T = float>(std::vector<param_group<T>> groups, adam_options = {})
//   optim::make_adamw<T>(groups, adam_options)   same, with decoupled weight decay
//
// Per parameter element at step t (1-based), lr and weight decay wd from the element's group,
// PyTorch 1.13 semantics (the scalar factors below are computed in double, as PyTorch does in
// Python, then rounded to T; the element-wise math is in T):
//
//   g = g + wd * p               L2 (torch.optim.Adam), when wd != 0 and !decoupled
//   p = p * (1 - lr * wd)        decoupled (torch.optim.AdamW), before the update
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g * g
//   denom = sqrt(v) / sqrt(1 - beta2^t) + eps
//   p = p - (lr / (1 - beta1^t)) * m / denom
//
// step() reads the gradients as they are and does not zero them; it does not check them for
// NaN/Inf (use optim::all_finite(opt.groups())).
//
// State: "<param>.exp_avg" (m) and "<param>.exp_avg_sq" (v) per parameter, allocated at
// construction (zeros), visited by for_each_state; plus step_count(). Saving these and the step
// count and restoring them into a fresh optimiser over the same parameters resumes bit-exactly.
//
// Example (SQAKD.md §5, student: model parameters lr 1e-3 with L2 1e-4, quantizer parameters
// lr 1e-5 without weight decay, in two optimisers stepped in this order):
//
//   optim::adam<> model_opt({{optim::collect_params(student, optim::model_params{}), 1e-3, 1e-4}});
//   optim::adam<> quant_opt({{optim::collect_params(student, optim::quant_params{}), 1e-5}});
//   ... nn::zero_grad(student); forward; backward; model_opt.step(); quant_opt.step();
//
// AdamW (decoupled weight decay 1e-2):
//   optim::adam<> opt({{params, 1e-3, 1e-2}}, {0.9, 0.999, 1e-8, /*decoupled=*/true});
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "sqakd/optim/param_group.hpp"

namespace sqakd::optim {

/// Hyper-parameters shared by all groups of an adam optimiser (PyTorch's defaults).
/// `decoupled_weight_decay` = false is torch.optim.Adam (L2 added to the gradient), true is
/// torch.optim.AdamW.
struct adam_options {
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    bool decoupled_weight_decay = false;
};

template <class T = float>
class adam : public detail::optimizer_base<T> {
    using base = detail::optimizer_base<T>;

public:
    /// Throws error::invalid_value for betas outside [0, 1), a negative eps, a negative or
    /// non-finite lr or weight decay, duplicate parameters; error::shape_mismatch when a
    /// gradient's shape differs from its parameter's.
    explicit adam(std::vector<param_group<T>> groups, adam_options opt = {})
        : base(opt.decoupled_weight_decay ? "adamw" : "adam", std::move(groups)), m_opt(opt) {
        detail::check_hyper(this->m_who, "beta1", opt.beta1, 0.0, true, 1.0, false);
        detail::check_hyper(this->m_who, "beta2", opt.beta2, 0.0, true, 1.0, false);
        detail::check_hyper(this->m_who, "eps", opt.eps, 0.0, true, HUGE_VAL, false);
        for (auto& g : this->m_groups) {
            std::vector<moments> ms;
            ms.reserve(g.params.size());
            for (auto& p : g.params) {
                const shape_t s(p.value->shape().begin(), p.value->shape().end());
                ms.push_back(moments{tensor<T>(s), tensor<T>(s)});
                ms.back().m.fill(T(0));
                ms.back().v.fill(T(0));
            }
            m_state.push_back(std::move(ms));
        }
    }

    const adam_options& options() const { return m_opt; }

    /// One update of every parameter from its current gradient.
    void step() {
        const std::uint64_t t = this->m_steps + 1;
        // PyTorch computes these in Python floats (double).
        const double bc1 = 1.0 - std::pow(m_opt.beta1, static_cast<double>(t));
        const double bc2 = 1.0 - std::pow(m_opt.beta2, static_cast<double>(t));
        const double bc2_sqrt = std::sqrt(bc2);
        for (std::size_t gi = 0; gi < this->m_groups.size(); ++gi) {
            auto& g = this->m_groups[gi];
            const double step_size = g.lr / bc1;
            for (std::size_t pi = 0; pi < g.params.size(); ++pi) {
                const auto& p = g.params[pi];
                detail::check_step_sizes(this->m_who, p);
                auto& st = m_state[gi][pi];
                detail::match_state(this->m_who, p, st.m, this->m_steps);
                detail::match_state(this->m_who, p, st.v, this->m_steps);
                T* pv = p.value->data();
                const T* gv = p.grad->data();
                const std::size_t n = p.value->size();
                if (m_opt.decoupled_weight_decay)
                    kernel<false, true>(pv, gv, st.m.data(), st.v.data(), n, g.lr, g.weight_decay,
                                        step_size, bc2_sqrt);
                else if (g.weight_decay != 0)
                    kernel<true, false>(pv, gv, st.m.data(), st.v.data(), n, g.lr, g.weight_decay,
                                        step_size, bc2_sqrt);
                else
                    kernel<false, false>(pv, gv, st.m.data(), st.v.data(), n, g.lr, 0.0, step_size,
                                         bc2_sqrt);
            }
        }
        this->m_steps = t;
    }

    /// Calls f(const std::string& name, tensor<T>& state) for every state tensor:
    /// "<param>.exp_avg" then "<param>.exp_avg_sq" per parameter, in group and parameter order.
    template <class F>
    void for_each_state(F&& f) {
        for (std::size_t gi = 0; gi < this->m_groups.size(); ++gi)
            for (std::size_t pi = 0; pi < this->m_groups[gi].params.size(); ++pi) {
                const std::string& name = this->m_groups[gi].params[pi].name;
                f(name + ".exp_avg", m_state[gi][pi].m);
                f(name + ".exp_avg_sq", m_state[gi][pi].v);
            }
    }

private:
    struct moments {
        tensor<T> m, v;
    };

    /// The scalar factors of one kernel call, rounded to T (or broadcast to a SIMD batch).
    template <class V>
    struct factors {
        V wd, decay, b1, c1, b2, c2, bc2s, eps, neg_step;
    };

    /// The update of one element (V = T) or of one SIMD batch (V = xsimd::batch<T>): the same
    /// operations in the same order, so both agree with PyTorch to the last ulp or two.
    template <bool L2, bool Decoupled, class V>
    static void update(V& p, V g, V& m, V& v, const factors<V>& f) {
        using std::sqrt;
        if constexpr (L2) g = g + f.wd * p;
        if constexpr (Decoupled) p = p * f.decay;
        m = m * f.b1 + f.c1 * g;
        v = v * f.b2 + f.c2 * g * g;
        const V denom = sqrt(v) / f.bc2s + f.eps;
        p = p + f.neg_step * m / denom;  // addcdiv: p + value * m / denom
    }

    template <bool L2, bool Decoupled>
    void kernel(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v,
                std::size_t n, double lr, double wd, double step_size, double bc2_sqrt) const {
        const factors<T> f{static_cast<T>(wd),
                           static_cast<T>(1.0 - lr * wd),
                           static_cast<T>(m_opt.beta1),
                           static_cast<T>(1.0 - m_opt.beta1),
                           static_cast<T>(m_opt.beta2),
                           static_cast<T>(1.0 - m_opt.beta2),
                           static_cast<T>(bc2_sqrt),
                           static_cast<T>(m_opt.eps),
                           static_cast<T>(-step_size)};
        std::size_t i = 0;
#if !defined(XSIMD_NO_SUPPORTED_ARCHITECTURE)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
// GCC 12 false positive inside _mm512_sqrt_ps (its _mm512_undefined_ps() operand), GCC PR 105593.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
        // Compilers do not vectorise the loop by themselves: std::sqrt may set errno. xsimd's
        // sqrt and division are the correctly rounded IEEE operations, like the scalar ones.
        // float only: double (gradient checks, tests) is not worth a second path.
        if constexpr (std::is_same_v<T, float>) {
            using batch = xsimd::batch<float>;
            constexpr std::size_t width = batch::size;
            const factors<batch> fb{batch(f.wd), batch(f.decay), batch(f.b1),   batch(f.c1),
                                    batch(f.b2), batch(f.c2),    batch(f.bc2s), batch(f.eps),
                                    batch(f.neg_step)};
            const std::size_t nv = n - n % width;
            for (; i < nv; i += width) {
                batch pb = batch::load_unaligned(p + i);
                batch mb = batch::load_unaligned(m + i);
                batch vb = batch::load_unaligned(v + i);
                update<L2, Decoupled>(pb, batch::load_unaligned(g + i), mb, vb, fb);
                pb.store_unaligned(p + i);
                mb.store_unaligned(m + i);
                vb.store_unaligned(v + i);
            }
        }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif
        for (; i < n; ++i) update<L2, Decoupled>(p[i], g[i], m[i], v[i], f);
    }

    adam_options m_opt;
    std::vector<std::vector<moments>> m_state;  // [group][param]
};

/// An adam optimiser with decoupled weight decay (torch.optim.AdamW): `opt.decoupled_weight_decay`
/// is forced to true.
///
///   auto opt = optim::make_adamw<float>({{params, 1e-3, 1e-2}});
template <class T = float>
adam<T> make_adamw(std::vector<param_group<T>> groups, adam_options opt = {}) {
    opt.decoupled_weight_decay = true;
    return adam<T>(std::move(groups), opt);
}

}  // namespace sqakd::optim

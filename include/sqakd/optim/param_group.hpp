// sqakd/optim/param_group.hpp - parameter references, parameter groups and how to collect them.
//
// An optimiser does not own parameters: it holds pointers to the value and gradient tensors
// that a model exposes through for_each_param (see sqakd/nn/layer.hpp). The model must therefore
// outlive the optimiser and must not be moved or copied into a different object after the
// optimiser was built (the pointers would then refer to the old tensors).
//
//   optim::param_ref<T>    {name, value, grad, kind}    one learnable tensor
//   optim::param_group<T>  {params, lr, weight_decay}   tensors sharing hyper-parameters
//   optim::collect_params(model [, predicate [, prefix]])  -> std::vector<param_ref<T>>
//   optim::model_params, optim::quant_params           predicates on (name, kind)
//   optim::all_finite(groups), optim::first_non_finite(groups)  gradient sanity checks
//
// Example (SQAKD.md §5: model parameters and quantizer parameters in two Adam optimisers):
//
//   auto weights = optim::collect_params(student, optim::model_params{});
//   auto qparams = optim::collect_params(student, optim::quant_params{});
//   optim::adam<> model_opt({{weights, 1e-3, 1e-4}});
//   optim::adam<> quant_opt({{qparams, 1e-5}});
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include "sqakd/core/error.hpp"
#include "sqakd/core/tensor.hpp"
#include "sqakd/nn/layer.hpp"

namespace sqakd::optim {

/// One learnable tensor of a model: its (model-unique) name, value, gradient and kind. The
/// pointers refer to tensors owned by the model.
template <class T = float>
struct param_ref {
    std::string name;
    tensor<T>* value = nullptr;
    tensor<T>* grad = nullptr;
    nn::param_kind kind = nn::param_kind::weight;
};

/// Parameters that share a learning rate and a weight decay (PyTorch's param_groups).
///
///   optim::param_group<float> g{optim::collect_params(model), 0.1, 1e-4};
template <class T = float>
struct param_group {
    std::vector<param_ref<T>> params;
    double lr = 0;
    double weight_decay = 0;
};

/// Predicate selecting everything but quantizer parameters (conv/linear weights and biases,
/// BN affine parameters).
struct model_params {
    bool operator()(const std::string&, nn::param_kind k) const { return k != nn::param_kind::quant; }
};

/// Predicate selecting quantizer parameters only (interval bounds, clip values, step sizes).
struct quant_params {
    bool operator()(const std::string&, nn::param_kind k) const { return k == nn::param_kind::quant; }
};

/// Predicate selecting every parameter.
struct all_params {
    bool operator()(const std::string&, nn::param_kind) const { return true; }
};

/// The parameters of `model` (anything with for_each_param, see sqakd/nn/layer.hpp) for which
/// `pred(name, kind)` is true, in the model's fixed order. `prefix` is prepended to every name,
/// which keeps names unique when the parameters of two models go into one optimiser.
///
///   auto w = optim::collect_params(net, [](const std::string&, nn::param_kind k) {
///       return k == nn::param_kind::weight; });
template <class Model, class Pred = all_params>
auto collect_params(Model& model, Pred&& pred = Pred{}, const std::string& prefix = "") {
    using T = typename Model::scalar_type;
    static_assert(std::is_invocable_r_v<bool, Pred&, const std::string&, nn::param_kind>,
                  "collect_params: the predicate must be callable as pred(const std::string& name, "
                  "nn::param_kind kind) and return bool.");
    std::vector<param_ref<T>> out;
    model.for_each_param(
        [&](const std::string& name, tensor<T>& value, tensor<T>& grad, nn::param_kind kind) {
            if (pred(name, kind)) out.push_back(param_ref<T>{name, &value, &grad, kind});
        },
        prefix);
    return out;
}

/// Name of the first parameter (in group order) whose gradient holds a NaN or an infinity, or
/// an empty string when all gradients are finite. For a guard before step(), e.g. to skip an
/// iteration whose loss overflowed.
template <class T>
std::string first_non_finite(const std::vector<param_group<T>>& groups) {
    for (const auto& g : groups)
        for (const auto& p : g.params) {
            const T* d = p.grad->data();
            const std::size_t n = p.grad->size();
            for (std::size_t i = 0; i < n; ++i)
                if (!std::isfinite(d[i])) return p.name;
        }
    return {};
}

/// True when every gradient of every group is finite (no NaN, no infinity).
template <class T>
bool all_finite(const std::vector<param_group<T>>& groups) {
    return first_non_finite(groups).empty();
}

namespace detail {

inline void check_hyper(const char* who, const char* what, double v, double lo, bool lo_inclusive,
                        double hi, bool hi_inclusive) {
    const bool ok = std::isfinite(v) && (lo_inclusive ? v >= lo : v > lo) &&
                    (hi_inclusive ? v <= hi : v < hi);
    if (!ok)
        throw error::invalid_value(std::string(who) + ": " + what + " must be in " +
                                   (lo_inclusive ? "[" : "(") + std::to_string(lo) + ", " +
                                   (std::isinf(hi) ? std::string("inf") : std::to_string(hi)) +
                                   (hi_inclusive ? "]" : ")") + ", got " + std::to_string(v));
}

inline void check_lr(const char* who, double lr) {
    check_hyper(who, "the learning rate", lr, 0.0, true, HUGE_VAL, false);
}
inline void check_wd(const char* who, double wd) {
    check_hyper(who, "the weight decay", wd, 0.0, true, HUGE_VAL, false);
}

/// Validates the groups of an optimiser: hyper-parameters, non-null pointers, value and grad of
/// the same shape, unique names, no tensor listed twice.
template <class T>
void check_groups(const char* who, const std::vector<param_group<T>>& groups) {
    std::unordered_set<std::string> names;
    std::unordered_set<const tensor<T>*> values;
    for (std::size_t gi = 0; gi < groups.size(); ++gi) {
        check_lr(who, groups[gi].lr);
        check_wd(who, groups[gi].weight_decay);
        for (const auto& p : groups[gi].params) {
            if (!p.value || !p.grad)
                throw error::invalid_value(std::string(who) + ": parameter '" + p.name +
                                           "' has a null value or gradient pointer");
            check_same_shape((std::string(who) + ": gradient of parameter '" + p.name + "'").c_str(),
                             *p.value, *p.grad);
            if (!names.insert(p.name).second)
                throw error::invalid_value(std::string(who) + ": parameter name '" + p.name +
                                           "' appears twice (state names must be unique; pass a "
                                           "prefix to collect_params)");
            if (!values.insert(p.value).second)
                throw error::invalid_value(std::string(who) + ": parameter '" + p.name +
                                           "' is listed twice");
        }
    }
}

/// Makes a state tensor match its parameter. Before the first step a mismatch is repaired
/// (the state is not read yet: parameters may be allocated after the optimiser was built);
/// afterwards it means the model changed under the optimiser, which is an error.
template <class T>
void match_state(const char* who, const param_ref<T>& p, tensor<T>& state, std::uint64_t steps) {
    const auto& vs = p.value->shape();
    if (state.dimension() == vs.size() && std::equal(vs.begin(), vs.end(), state.shape().begin()))
        return;
    if (steps == 0) {
        state = tensor<T>(shape_t(vs.begin(), vs.end()));
        state.fill(T(0));
        return;
    }
    throw error::shape_mismatch(std::string(who) + ": state of parameter '" + p.name +
                                "' has shape " + shape_str(state.shape()) +
                                ", the parameter has shape " + shape_str(vs));
}

/// Per-step check that value and gradient still agree (cheap: sizes only).
template <class T>
void check_step_sizes(const char* who, const param_ref<T>& p) {
    if (p.value->size() != p.grad->size())
        throw error::shape_mismatch(std::string(who) + ": gradient of parameter '" + p.name +
                                    "' has shape " + shape_str(p.grad->shape()) +
                                    ", the parameter has shape " + shape_str(p.value->shape()));
}

/// What sgd and adam share: the groups, per-group lr / weight decay, the step count.
template <class T>
class optimizer_base {
    static_assert(std::is_floating_point_v<T>,
                  "optimizers: the scalar type must be float or double.");

public:
    using scalar_type = T;

    std::size_t num_groups() const { return m_groups.size(); }
    const std::vector<param_group<T>>& groups() const { return m_groups; }

    /// Learning rate of group `g`.
    double lr(std::size_t g) const { return group(g).lr; }
    /// Sets the learning rate of group `g` (e.g. from a schedule, once per epoch).
    void set_lr(std::size_t g, double lr) {
        check_lr(m_who, lr);
        group(g).lr = lr;
    }
    double weight_decay(std::size_t g) const { return group(g).weight_decay; }
    void set_weight_decay(std::size_t g, double wd) {
        check_wd(m_who, wd);
        group(g).weight_decay = wd;
    }

    /// Number of step() calls so far (PyTorch's state["step"]; here one count for all
    /// parameters, as every parameter is updated at every step). Writable for checkpoint resume.
    std::uint64_t& step_count() { return m_steps; }
    std::uint64_t step_count() const { return m_steps; }

    /// Total number of scalars under this optimiser.
    std::size_t num_scalars() const {
        std::size_t n = 0;
        for (const auto& g : m_groups)
            for (const auto& p : g.params) n += p.value->size();
        return n;
    }

protected:
    optimizer_base(const char* who, std::vector<param_group<T>> groups)
        : m_who(who), m_groups(std::move(groups)) {
        check_groups(who, m_groups);
    }

    param_group<T>& group(std::size_t g) {
        check_index(g);
        return m_groups[g];
    }
    const param_group<T>& group(std::size_t g) const {
        check_index(g);
        return m_groups[g];
    }

    const char* m_who;
    std::vector<param_group<T>> m_groups;
    std::uint64_t m_steps = 0;

private:
    void check_index(std::size_t g) const {
        if (g >= m_groups.size())
            throw error::invalid_value(std::string(m_who) + ": parameter group " + std::to_string(g) +
                                       " does not exist (the optimiser has " +
                                       std::to_string(m_groups.size()) + ")");
    }
};

}  // namespace detail

}  // namespace sqakd::optim

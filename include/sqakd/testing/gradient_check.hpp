// sqakd/testing/gradient_check.hpp - a shipped gradient checker for any layer.
//
// Usable on user-written layers that follow the contract of sqakd/nn/layer.hpp, instantiated
// with T = double:
//
//   nn::conv2d<3, 4, 3, 2, 1, 1, true, double> conv;
//   rng g(1); conv.init(g);
//   tensor<double> x = testing::random_tensor<double>({2, 3, 7, 7}, g);
//   auto r = testing::check_gradients(conv, x);
//   REQUIRE(r.ok);   // r.max_rel_error, r.worst name the largest disagreement
//
// Method: with a fixed random projection R, the scalar L = sum(R * layer(x)) has analytic
// gradients backward(R) (input) and the accumulated parameter gradients; each is compared with
// the central difference (L(v + eps) - L(v - eps)) / (2 eps) of every element v (or of a
// deterministic sample of `max_checks` elements per tensor).
//
// Error measure, per tensor: max_i |analytic_i - numeric_i| / max(max_i |numeric_i|, tiny).
// Normalising by the tensor's largest gradient, not element-wise, keeps elements whose
// gradient is ~0 (dead ReLUs, padding) from producing meaningless ratios. In double precision
// with eps = 1e-5 the central difference is accurate to about eps^2 * |f'''| ~ 1e-10, so the
// default tolerance of 1e-6 leaves four orders of magnitude of headroom and still rejects a
// gradient that is off by 1e-4 relative or more.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "sqakd/core/rng.hpp"
#include "sqakd/core/tensor.hpp"
#include "sqakd/nn/layer.hpp"

namespace sqakd::testing {

struct grad_check_options {
    double eps = 1e-5;
    double tolerance = 1e-6;
    nn::mode mode = nn::mode::train;
    std::uint64_t seed = 12345;
    std::size_t max_checks = 0;  ///< per tensor; 0 = every element
    bool check_input = true;
};

struct grad_check_result {
    bool ok = true;
    double max_rel_error = 0;  ///< largest per-tensor error (see the header comment)
    std::string worst;         ///< the tensor with the largest error ("input" or a parameter name)
    std::vector<std::pair<std::string, double>> per_tensor;
};

/// A tensor of the given shape with entries drawn from U(lo, hi).
template <class T>
tensor<T> random_tensor(const shape_t& shape, rng& g, double lo = -1.0, double hi = 1.0) {
    tensor<T> t(shape);
    for (auto& v : t) v = static_cast<T>(g.uniform(lo, hi));
    return t;
}

namespace detail {
inline std::vector<std::size_t> sample_indices(std::size_t n, std::size_t max_checks, rng& g) {
    std::vector<std::size_t> idx(n);
    for (std::size_t i = 0; i < n; ++i) idx[i] = i;
    if (max_checks == 0 || max_checks >= n) return idx;
    for (std::size_t i = 0; i < max_checks; ++i) std::swap(idx[i], idx[i + g.below(n - i)]);
    idx.resize(max_checks);
    return idx;
}

template <class T>
double rel_error(const std::vector<double>& analytic, const std::vector<double>& numeric) {
    double diff = 0, scale = 0;
    for (std::size_t i = 0; i < analytic.size(); ++i) {
        diff = std::max(diff, std::abs(analytic[i] - numeric[i]));
        scale = std::max(scale, std::abs(numeric[i]));
    }
    return diff / std::max(scale, 1e-300);
}
}  // namespace detail

/// Compares the layer's input and parameter gradients with central finite differences.
/// The layer's parameter gradients are overwritten (zeroed, then accumulated); its buffers
/// (BN running statistics) are restored afterwards.
template <class Layer>
grad_check_result check_gradients(Layer& layer, tensor<typename Layer::scalar_type>& x,
                                  const grad_check_options& opt = {}) {
    using T = typename Layer::scalar_type;
    static_assert(std::is_same_v<T, double>,
                  "check_gradients: instantiate the layer with T = double; float finite differences are too noisy to check 1e-6.");
    grad_check_result res;
    rng g(opt.seed);

    std::vector<tensor<T>> saved_buffers;
    layer.for_each_buffer([&](const std::string&, tensor<T>& b) { saved_buffers.push_back(b); });
    auto restore_buffers = [&] {
        std::size_t i = 0;
        layer.for_each_buffer([&](const std::string&, tensor<T>& b) { b = saved_buffers[i++]; });
    };

    const tensor<T>& y0 = layer.forward(x, opt.mode);
    tensor<T> r(shape_t(y0.shape().begin(), y0.shape().end()));
    for (auto& v : r) v = static_cast<T>(g.uniform(-1.0, 1.0));
    auto loss = [&]() {
        const tensor<T>& y = layer.forward(x, opt.mode);
        double s = 0;
        for (std::size_t i = 0; i < y.size(); ++i) s += static_cast<double>(r.data()[i]) * y.data()[i];
        return s;
    };

    layer.for_each_param([](const std::string&, tensor<T>&, tensor<T>& gr, nn::param_kind) { gr.fill(0); });
    (void)layer.forward(x, opt.mode);
    const tensor<T>& dx = layer.backward(r, opt.check_input);
    tensor<T> dx_an = opt.check_input ? dx : tensor<T>();
    std::vector<std::pair<std::string, tensor<T>>> pg;
    layer.for_each_param([&](const std::string& n, tensor<T>&, tensor<T>& gr, nn::param_kind) { pg.emplace_back(n, gr); });

    auto check_tensor = [&](const std::string& name, tensor<T>& v, const tensor<T>& analytic) {
        const auto idx = detail::sample_indices(v.size(), opt.max_checks, g);
        std::vector<double> an, nu;
        for (std::size_t i : idx) {
            const T orig = v.data()[i];
            v.data()[i] = orig + static_cast<T>(opt.eps);
            const double lp = loss();
            v.data()[i] = orig - static_cast<T>(opt.eps);
            const double lm = loss();
            v.data()[i] = orig;
            nu.push_back((lp - lm) / (2 * opt.eps));
            an.push_back(analytic.data()[i]);
        }
        const double e = detail::rel_error<T>(an, nu);
        res.per_tensor.emplace_back(name, e);
        if (e > res.max_rel_error || res.worst.empty()) {
            res.max_rel_error = e;
            res.worst = name;
        }
        if (!(e <= opt.tolerance)) res.ok = false;
    };

    if (opt.check_input) check_tensor("input", x, dx_an);
    std::size_t k = 0;
    layer.for_each_param([&](const std::string& n, tensor<T>& v, tensor<T>&, nn::param_kind) {
        check_tensor(n, v, pg[k++].second);
    });
    restore_buffers();
    return res;
}

}  // namespace sqakd::testing

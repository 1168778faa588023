// sqakd/nn/layer.hpp - the layer contract and what all layers share.
//
// A layer is a class with compile-time configuration (channels, kernel, stride, ...) and a
// scalar type T (float for training, double for gradient checks). Batch and spatial sizes are
// run-time. The contract, in requires/ensures form:
//
//   using scalar_type = T;
//   static constexpr const char* kind = "conv2d";     // used in error messages
//
//   const tensor<T>& forward(const tensor<T>& x, mode m);
//     requires: x has the layer's input shape (else error::shape_mismatch naming the layer,
//               the expected and the actual shape); x stays alive and unchanged until the
//               matching backward() returns.
//     ensures:  returns the output, a buffer owned by the layer, valid until the next forward().
//
//   const tensor<T>& backward(const tensor<T>& dy, bool need_dx = true);
//     requires: forward() was called; dy has the output's shape.
//     ensures:  parameter gradients are *accumulated* (+=) into the grad tensors; returns
//               dLoss/dx (a layer-owned buffer), or an empty tensor when need_dx is false.
//
//   template <class F> void for_each_param(F&& f, const std::string& prefix = "");
//     calls f(name, value, grad, param_kind) for each learnable tensor, in a fixed order.
//   template <class F> void for_each_buffer(F&& f, const std::string& prefix = "");
//     calls f(name, value) for each non-learnable state tensor (BN running statistics).
//   void init(rng& g);   // parameter initialisation (kaiming-normal for conv/linear weights)
//
// Parallelism: layers split the batch (or channels) statically over OpenMP threads and reduce
// partial sums in thread order, so results are deterministic for a fixed thread count.
#pragma once

#include <string>
#include <type_traits>

#include "sqakd/core/rng.hpp"
#include "sqakd/core/tensor.hpp"

namespace sqakd::nn {

/// Train mode uses batch statistics in batch_norm and updates the running statistics;
/// eval mode uses the running statistics.
enum class mode { train, eval };

/// What a parameter is; optimisers build parameter groups from it (e.g. quantizer parameters
/// get their own learning rate).
enum class param_kind { weight, bias, bn_weight, bn_bias, quant };

inline const char* to_string(param_kind k) {
    switch (k) {
        case param_kind::weight: return "weight";
        case param_kind::bias: return "bias";
        case param_kind::bn_weight: return "bn_weight";
        case param_kind::bn_bias: return "bn_bias";
        case param_kind::quant: return "quant";
    }
    return "?";
}

/// Sets every parameter gradient of `layer` to zero.
template <class Layer>
void zero_grad(Layer& layer) {
    layer.for_each_param([](const std::string&, auto&, auto& g, param_kind) { g.fill(0); });
}

/// Number of learnable scalars in `layer`.
template <class Layer>
std::size_t num_params(Layer& layer) {
    std::size_t n = 0;
    layer.for_each_param([&](const std::string&, auto& v, auto&, param_kind) { n += v.size(); });
    return n;
}

/// Fills `w` with N(0, std^2) draws from g.
template <class T>
void fill_normal(tensor<T>& w, rng& g, double std) {
    for (auto& v : w) v = static_cast<T>(g.normal() * std);
}

/// Fills `w` with U(-bound, bound) draws from g.
template <class T>
void fill_uniform(tensor<T>& w, rng& g, double bound) {
    for (auto& v : w) v = static_cast<T>(g.uniform(-bound, bound));
}

namespace detail {
template <class T>
tensor<T>& empty_tensor() {
    static thread_local tensor<T> e;
    return e;
}
}  // namespace detail

}  // namespace sqakd::nn

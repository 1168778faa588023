// sqakd/nn/sequential.hpp - a network as a compile-time list of layers.
//
//   using net = nn::sequential<nn::conv2d<1, 16, 3, 1, 1>, nn::batch_norm<16>, nn::relu<>,
//                              nn::global_avg_pool<>, nn::linear<16, 10>>;
//   net model;
//   rng g(0); model.init(g);
//   const auto& logits = model.forward(x, nn::mode::train);
//   model.backward(dlogits, /*need_dx=*/false);
//
// A sequential is itself a layer (it satisfies the contract in layer.hpp), so it nests: the
// residual blocks hold sequentials. Parameter names are the layer index followed by the
// layer's own names ("0.weight", "1.running_mean", "3.branch.0.weight", ...).
#pragma once

#include <array>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "sqakd/nn/activation.hpp"
#include "sqakd/nn/batch_norm.hpp"
#include "sqakd/nn/layer.hpp"

namespace sqakd::nn {

template <class... Layers>
class sequential {
    static_assert(sizeof...(Layers) > 0, "sequential: a network needs at least one layer.");
    using first = std::tuple_element_t<0, std::tuple<Layers...>>;

public:
    using scalar_type = typename first::scalar_type;
    static_assert((std::is_same_v<typename Layers::scalar_type, scalar_type> && ...),
                  "sequential: all layers must use the same scalar type.");
    using T = scalar_type;
    static constexpr const char* kind = "sequential";
    static constexpr std::size_t size = sizeof...(Layers);

    template <std::size_t I>
    auto& layer() {
        return std::get<I>(m_layers);
    }
    template <std::size_t I>
    const auto& layer() const {
        return std::get<I>(m_layers);
    }
    std::tuple<Layers...>& layers() { return m_layers; }

    void init(rng& g) {
        std::apply([&](auto&... l) { (l.init(g), ...); }, m_layers);
    }

    const tensor<T>& forward(const tensor<T>& x, mode m = mode::train) { return forward_impl<0>(x, m); }

    const tensor<T>& backward(const tensor<T>& dy, bool need_dx = true) {
        return backward_impl<size - 1>(dy, need_dx);
    }

    template <class F>
    void for_each_param(F&& f, const std::string& prefix = "") {
        each([&](auto& l, std::size_t i) { l.for_each_param(f, prefix + std::to_string(i) + "."); });
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& prefix = "") {
        each([&](auto& l, std::size_t i) { l.for_each_buffer(f, prefix + std::to_string(i) + "."); });
    }

    /// Feature taps (for feature-level distillation losses): the output of direct child i from
    /// the last forward(), or nullptr before the first forward.
    const tensor<T>* output_of(std::size_t i) const { return i < size ? m_outs[i] : nullptr; }
    /// Adds *g to dLoss/d(output of child i) in the next backward() calls (nullptr removes it);
    /// g must have that output's shape and stay alive until it is removed.
    void set_extra_grad(std::size_t i, const tensor<T>* g) {
        if (i >= size) throw error::shape_mismatch("sequential::set_extra_grad: layer " + std::to_string(i) +
                                                   " does not exist (the network has " + std::to_string(size) + ")");
        m_extra[i] = g;
    }
    void clear_extra_grads() { m_extra.fill(nullptr); }

    /// Calls f(layer, index) for each direct child, in order.
    template <class F>
    void each(F&& f) {
        each_impl(f, std::index_sequence_for<Layers...>{});
    }

private:
    template <class L>
    struct is_bn : std::false_type {};
    template <int C>
    struct is_bn<batch_norm<C, T>> : std::true_type {};

    /// Layer I is a batch_norm directly followed by a relu: run them as one pass
    /// (batch_norm::forward_relu + relu::forward_passthrough); names and results are unchanged.
    template <std::size_t I>
    static constexpr bool fused_bn_relu() {
        if constexpr (I + 1 < size)
            return is_bn<std::tuple_element_t<I, std::tuple<Layers...>>>::value &&
                   std::is_same_v<std::tuple_element_t<I + 1, std::tuple<Layers...>>, relu<T>>;
        else
            return false;
    }

    template <std::size_t I>
    const tensor<T>& forward_impl(const tensor<T>& x, mode m) {
        if constexpr (I == size) {
            return x;
        } else if constexpr (fused_bn_relu<I>()) {
            const tensor<T>& y = std::get<I>(m_layers).forward_relu(x, m);
            m_outs[I] = &y;
            const tensor<T>& z = std::get<I + 1>(m_layers).forward_passthrough(y);
            m_outs[I + 1] = &z;
            return forward_impl<I + 2>(z, m);
        } else {
            const tensor<T>& y = std::get<I>(m_layers).forward(x, m);
            m_outs[I] = &y;
            return forward_impl<I + 1>(y, m);
        }
    }

    /// dy, plus the extra gradient of child I's output when one is set.
    template <std::size_t I>
    const tensor<T>& with_extra(const tensor<T>& dy) {
        if (!m_extra[I]) return dy;
        check_same_shape("sequential: extra gradient", dy, *m_extra[I]);
        ensure_shape(m_sum[I], shape_t(dy.shape().begin(), dy.shape().end()));
        const T* a = dy.data();
        const T* b = m_extra[I]->data();
        T* o = m_sum[I].data();
        for (std::size_t i = 0; i < dy.size(); ++i) o[i] = a[i] + b[i];
        return m_sum[I];
    }

    template <std::size_t I>
    const tensor<T>& backward_impl(const tensor<T>& dy_in, bool need_dx) {
        const tensor<T>& dy = with_extra<I>(dy_in);
        if constexpr (I == 0) {
            return std::get<0>(m_layers).backward(dy, need_dx);
        } else {
            const tensor<T>& d = std::get<I>(m_layers).backward(dy, true);
            return backward_impl<I - 1>(d, need_dx);
        }
    }
    template <class F, std::size_t... I>
    void each_impl(F& f, std::index_sequence<I...>) {
        (f(std::get<I>(m_layers), I), ...);
    }

    std::tuple<Layers...> m_layers;
    std::array<const tensor<T>*, size> m_outs{};
    std::array<const tensor<T>*, size> m_extra{};
    std::array<tensor<T>, size> m_sum;
};

}  // namespace sqakd::nn

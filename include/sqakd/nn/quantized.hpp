// sqakd/nn/quantized.hpp - quantized layers for training with fake quantization (SQAKD.md §3-§4).
//
//   nn::quantized<Inner, WeightQ, ActQ>            Inner: an FP conv2d or linear
//   nn::quant_conv2d<In, Out, K, Stride, Pad, Groups, Bias, WeightQ, ActQ, T>
//   nn::quant_linear<In, Out, Bias, WeightQ, ActQ, T>
//
// WeightQ and ActQ are quantizer presets (quant/presets.hpp). The activation quantizer sits on
// the layer's input (it sees the post-ReLU output of the previous block); the weight quantizer
// on the latent FP weight, which the optimiser updates. Forward:
//
//   y = inner(Q_a(x); Q_w(W), bias) [* |s| when WeightQ has an output scale (interval)]
//
// Example:
//   nn::quant_conv2d<16, 16, 3, 1, 1, 1, false, quant::interval_weight<2>, quant::interval_act<2>> c;
//   c.request_quant_init();              // the next forward initialises the quantizers from its input
//   const auto& y = c.forward(x, nn::mode::train);
//
// Parameter names: "weight" and "bias" (as the FP layer, so a student loads a teacher's
// weights by name), "scale" (the output scale), "wq.<name>", "aq.<name>" (quantizer
// parameters; kind param_kind::quant). The weight gradient is dLoss/dW of the latent weight.
#pragma once

#include <cmath>
#include <string>
#include <type_traits>

#include "sqakd/core/parallel.hpp"
#include "sqakd/core/vec.hpp"
#include "sqakd/nn/conv2d.hpp"
#include "sqakd/nn/layer.hpp"
#include "sqakd/nn/linear.hpp"
#include "sqakd/quant/presets.hpp"

namespace sqakd::nn {

template <class Inner, class WeightQ, class ActQ>
class quantized {
    static_assert(quant::is_preset<WeightQ>::value,
                  "quantized: the weight slot takes a quantizer preset such as quant::interval_weight<4>.");
    static_assert(quant::is_preset<ActQ>::value,
                  "quantized: the activation slot takes a quantizer preset such as quant::interval_act<4>.");
    static_assert(WeightQ::role == quant::tensor_role::weight,
                  "quantized: the weight slot got an activation quantizer; use a *_weight preset there.");
    static_assert(ActQ::role == quant::tensor_role::activation,
                  "quantized: the activation slot got a weight quantizer; use a *_act preset there.");

public:
    using inner_type = Inner;
    using scalar_type = typename Inner::scalar_type;
    using T = scalar_type;
    using weight_quantizer = typename WeightQ::template type<T>;
    using act_quantizer = typename ActQ::template type<T>;
    using weight_preset = WeightQ;
    using act_preset = ActQ;
    static constexpr bool has_output_scale = WeightQ::has_output_scale;
    static constexpr bool is_quantized_layer = true;
    static constexpr const char* kind = "quantized";

    quantized() : m_wq(out_channels()), m_aq(std::size_t{1}) {
        m_w = m_inner.weight();
        m_dw = m_inner.weight_grad();
        m_scale = tensor<T>(shape_t{1});
        m_scale(0) = T(1);
        m_dscale = tensor<T>(shape_t{1});
        m_dscale(0) = T(0);
    }

    void init(rng& g) {
        m_inner.init(g);
        m_w = m_inner.weight();
    }

    Inner& inner() { return m_inner; }
    tensor<T>& weight() { return m_w; }
    tensor<T>& weight_grad() { return m_dw; }
    tensor<T>& scale() { return m_scale; }
    weight_quantizer& weight_quant() { return m_wq; }
    act_quantizer& act_quant() { return m_aq; }

    /// The next forward() initialises both quantizers (and the output scale) from the input it
    /// gets and the current weights, SQAKD.md §3.
    void request_quant_init() { m_init_pending = true; }
    bool quant_init_pending() const { return m_init_pending; }

    const tensor<T>& forward(const tensor<T>& x, mode m = mode::train) {
        if (m_init_pending) {
            init_quantizers(x, m);
            m_init_pending = false;
        }
        const tensor<T>& ya = m_aq.forward(x, m);
        load_quantized_weight();
        const tensor<T>& out = m_inner.forward(ya, m);
        if constexpr (!has_output_scale) {
            return out;
        } else {
            m_out = &out;
            ensure_shape(m_y, shape_t(out.shape().begin(), out.shape().end()));
            const T s = std::fabs(m_scale(0));
            const T* op = out.data();
            T* yp = m_y.data();
            parallel_for(out.size(), [=](std::size_t b, std::size_t e, int) {
                for (std::size_t i = b; i < e; ++i) yp[i] = op[i] * s;
            }, 1 << 16);
            return m_y;
        }
    }

    const tensor<T>& backward(const tensor<T>& dy, bool need_dx = true) {
        const tensor<T>* d = &dy;
        if constexpr (has_output_scale) {
            if (!m_out) throw std::logic_error("quantized: backward() called before forward()");
            check_same_shape(kind, m_y, dy);
            ensure_shape(m_dout, shape_t(dy.shape().begin(), dy.shape().end()));
            const T s = std::fabs(m_scale(0));
            const T* op = m_out->data();
            const T* dp = dy.data();
            T* gp = m_dout.data();
            const int p = parallel_width(dy.size(), 1 << 16);
            std::vector<double> part(static_cast<std::size_t>(p), 0.0);
            parallel_for(dy.size(), [&](std::size_t b, std::size_t e, int t) {
                part[static_cast<std::size_t>(t)] = vec::dot(dp + b, op + b, e - b);
                for (std::size_t i = b; i < e; ++i) gp[i] = dp[i] * s;
            }, 1 << 16);
            double sum = 0;
            for (double v : part) sum += v;
            m_dscale(0) += static_cast<T>((m_scale(0) > 0 ? 1.0 : (m_scale(0) < 0 ? -1.0 : 0.0)) * sum);
            d = &m_dout;
        }
        m_inner.weight_grad().fill(T(0));
        const tensor<T>& dya = m_inner.backward(*d, true);
        const tensor<T>& dw = m_wq.backward(m_inner.weight_grad(), true);
        m_dw += dw;
        return m_aq.backward(dya, need_dx);
    }

    template <class F>
    void for_each_param(F&& f, const std::string& prefix = "") {
        f(prefix + "weight", m_w, m_dw, param_kind::weight);
        m_inner.for_each_param([&](const std::string& n, tensor<T>& v, tensor<T>& g, param_kind k) {
            if (k != param_kind::weight) f(n, v, g, k);
        }, prefix);
        if constexpr (has_output_scale) f(prefix + "scale", m_scale, m_dscale, param_kind::quant);
        m_wq.for_each_param(f, prefix + "wq.");
        m_aq.for_each_param(f, prefix + "aq.");
    }
    template <class F>
    void for_each_buffer(F&&, const std::string& = "") {}

private:
    static constexpr std::size_t out_channels() {
        return static_cast<std::size_t>(Inner::out_channels);
    }

    void load_quantized_weight() {
        const tensor<T>& yw = m_wq.forward(m_w);
        std::copy(yw.data(), yw.data() + yw.size(), m_inner.weight().data());
    }

    static double mean_abs(const tensor<T>& t) {
        double s = 0;
        for (std::size_t i = 0; i < t.size(); ++i) s += std::fabs(static_cast<double>(t.data()[i]));
        return t.size() ? s / static_cast<double>(t.size()) : 0;
    }

    void init_quantizers(const tensor<T>& x, mode m) {
        m_wq.calibrate(m_w);
        m_aq.calibrate(x);
        if constexpr (has_output_scale) {
            // s = mean|inner(x, W)| / mean|inner(Q_a(x), Q_w(W))|
            std::copy(m_w.data(), m_w.data() + m_w.size(), m_inner.weight().data());
            const double fp = mean_abs(m_inner.forward(x, m));
            const tensor<T>& ya = m_aq.forward(x, m);
            load_quantized_weight();
            const double q = mean_abs(m_inner.forward(ya, m));
            m_scale(0) = static_cast<T>(q > 0 && std::isfinite(fp / q) ? fp / q : 1.0);
        }
    }

    Inner m_inner;
    tensor<T> m_w, m_dw, m_scale, m_dscale, m_y, m_dout;
    const tensor<T>* m_out = nullptr;
    weight_quantizer m_wq;
    act_quantizer m_aq;
    bool m_init_pending = false;
};

template <int In, int Out, int K, int Stride, int Pad, int Groups, bool Bias, class WeightQ, class ActQ,
          class T = float>
using quant_conv2d = quantized<conv2d<In, Out, K, Stride, Pad, Groups, Bias, T>, WeightQ, ActQ>;

template <int In, int Out, bool Bias, class WeightQ, class ActQ, class T = float>
using quant_linear = quantized<linear<In, Out, Bias, T>, WeightQ, ActQ>;

}  // namespace sqakd::nn

// sqakd/deploy/compile.hpp - deploy::compile(student): a trained (fake-quantized) network into
// an int_network. This header bridges the training types (it includes nn/ and quant/); the
// int_network it produces needs only the deploy headers.
//
//   auto net = deploy::compile(student, {1, 28, 28});          // C, H, W of one input image
//   deploy::int_network::workspace ws;
//   net.run(x_nhwc, batch, logits, ws);
//
// What it does, per layer of the student (SQAKD.md §3-§4):
//   - a quantized conv: weight codes k = q - qn (unsigned, packed at the quantizer's bit width),
//     the weight form {mul, offset} and per-channel weight scale read from the quantizer's grid
//     (interval/dorefa: (2k - (L-1))/(L-1); lsq: (k - 2^(b-1)) s; lsq 1-bit: (2k - 1) s); the
//     activation grid of its input quantizer (zero point 0 is required: code 0 = value 0);
//     output scale |s|, conv bias and the following BatchNorm folded into z = M acc + B;
//   - when BN, ReLU and another quantized conv follow: threshold requantization into that
//     conv's codes; otherwise floats (then ReLU if it follows);
//   - FP convs (the first layer) with the following BatchNorm folded; residual blocks with
//     identity or option-A shortcuts (the float32 residual stream); global average pooling;
//     BatchNorm1d folded into the final linear layer.
// A layer type without an integer form is a compile-time error with a sentence; a quantizer
// whose grid is not uniform with zero point 0 gives status::unsupported at run time
// (deploy::compile_error, an exception, from the throwing overload).
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "sqakd/core/error.hpp"
#include "sqakd/deploy/int_network.hpp"
#include "sqakd/nn/activation.hpp"
#include "sqakd/nn/batch_norm.hpp"
#include "sqakd/nn/conv2d.hpp"
#include "sqakd/nn/linear.hpp"
#include "sqakd/nn/pool.hpp"
#include "sqakd/nn/quantized.hpp"
#include "sqakd/nn/residual.hpp"
#include "sqakd/nn/sequential.hpp"

namespace sqakd::deploy {

namespace detail {

template <class>
inline constexpr bool always_false = false;

/// One layer of the student, type-erased (pass 1 of compile).
struct layer_desc {
    enum kind_t { fp_conv, qconv, bn, relu, res_begin, res_end, global_pool, linear } kind = fp_conv;
    conv_geometry geo;
    std::vector<float> w, bias;  // fp_conv: [out][in/g][kh][kw]; linear: [out][in]
    // qconv
    int wbits = 0, abits = 0;
    std::vector<std::uint8_t> wcodes;  // [out][kh][kw][in/g]
    weight_form form;
    std::vector<double> wscale;  // per output channel
    act_grid agrid;
    double act_step = 1;  // value of activation code 1
    double out_scale = 1;
    // bn
    std::vector<double> bn_mul, bn_add;  // eval BN as y = bn_mul * x + bn_add
    // res_end
    bool option_a = false;
    std::size_t stride = 1, pad_c = 0;
    // linear
    std::size_t in = 0, out = 0;
    std::string name;
};

[[noreturn]] inline void fail(const std::string& what) { throw error::invalid_value("deploy::compile: " + what); }

template <class T>
std::vector<float> to_float(const tensor<T>& t) {
    return std::vector<float>(t.data(), t.data() + t.size());
}

// --- pass 1: the student's layers, in forward order ---------------------------------------

template <int In, int Out, int K, int S, int P, int G, bool B, class T>
void flatten(nn::conv2d<In, Out, K, S, P, G, B, T>& l, std::vector<layer_desc>& out, const std::string& name) {
    layer_desc d;
    d.kind = layer_desc::fp_conv;
    d.geo.in_channels = In, d.geo.out_channels = Out, d.geo.kernel_h = d.geo.kernel_w = K;
    d.geo.stride_h = d.geo.stride_w = S, d.geo.pad_h = d.geo.pad_w = P, d.geo.groups = G;
    d.w = to_float(l.weight());
    if constexpr (B) d.bias = to_float(l.bias());
    d.name = name;
    out.push_back(std::move(d));
}

template <int In, int Out, int K, int S, int P, int G, bool B, class T, class WQ, class AQ>
void flatten(nn::quantized<nn::conv2d<In, Out, K, S, P, G, B, T>, WQ, AQ>& l, std::vector<layer_desc>& out,
             const std::string& name) {
    layer_desc d;
    d.kind = layer_desc::qconv;
    d.name = name;
    d.geo.in_channels = In, d.geo.out_channels = Out, d.geo.kernel_h = d.geo.kernel_w = K;
    d.geo.stride_h = d.geo.stride_w = S, d.geo.pad_h = d.geo.pad_w = P, d.geo.groups = G;
    d.wbits = WQ::bits;
    d.abits = AQ::bits;
    // activation grid: uniform, zero point 0 (code 0 is the value 0, so padding is code 0)
    const quant::grid ag = l.act_quant().grid_of(0);
    if (ag.qn != 0 || ag.b != 0 || ag.binary)
        fail(name + ": the activation quantizer has a nonzero zero point (qn " + std::to_string(ag.qn) + ", b " +
             std::to_string(ag.b) + "); the integer path needs code 0 = value 0");
    d.agrid = act_grid{ag.lo, ag.hi, ag.inv_d, ag.qn, ag.qp};
    d.act_step = ag.a;
    // weights: codes and the form of each output channel's grid
    auto& wq = l.weight_quant();
    std::vector<int> q;
    wq.codes(l.weight(), q);
    const std::size_t groups = wq.groups(l.weight()), cig = In / G, kk = static_cast<std::size_t>(K) * K;
    if (groups != 1 && groups != static_cast<std::size_t>(Out))
        fail(name + ": weight quantizer groups must be one per tensor or one per output channel");
    d.wscale.assign(Out, 0);
    for (std::size_t c = 0; c < static_cast<std::size_t>(Out); ++c) {
        const quant::grid g = wq.grid_of(groups == 1 ? 0 : c);
        weight_form f;
        double scale;
        if (g.binary) {
            if (g.b != 0) fail(name + ": a binary weight grid with an offset is not supported");
            f = weight_form{2, 1};
            scale = g.a;
        } else {
            const double r = g.qn + g.b / g.a;  // y = a (k + r) with k = q - qn
            if (std::fabs(r - std::nearbyint(r)) < 1e-6) {
                f = weight_form{1, static_cast<std::int32_t>(-std::nearbyint(r))};
                scale = g.a;
            } else if (std::fabs(2 * r - std::nearbyint(2 * r)) < 1e-6) {
                f = weight_form{2, static_cast<std::int32_t>(-std::nearbyint(2 * r))};
                scale = g.a / 2;
            } else {
                fail(name + ": the weight grid is not an integer form (qn + b/a = " + std::to_string(r) + ")");
                return;
            }
        }
        if (c > 0 && (f.mul != d.form.mul || f.offset != d.form.offset))
            fail(name + ": output channels have different weight forms");
        d.form = f;
        d.wscale[c] = scale;
        if (!std::isfinite(scale)) fail(name + ": non-finite weight scale in channel " + std::to_string(c));
    }
    // codes [out][in/g][kh][kw] (q) -> [out][kh][kw][in/g] (k = q - qn, or (q + 1)/2 at binary)
    const quant::grid g0 = wq.grid_of(0);
    d.wcodes.resize(q.size());
    for (std::size_t o = 0; o < static_cast<std::size_t>(Out); ++o)
        for (std::size_t ci = 0; ci < cig; ++ci)
            for (std::size_t p = 0; p < kk; ++p) {
                const int qq = q[(o * cig + ci) * kk + p];
                const int k = g0.binary ? (qq + 1) / 2 : qq - static_cast<int>(g0.qn);
                if (k < 0 || k >= (1 << WQ::bits)) fail(name + ": a weight code is outside its bit width");
                d.wcodes[(o * kk + p) * cig + ci] = static_cast<std::uint8_t>(k);
            }
    if constexpr (nn::quantized<nn::conv2d<In, Out, K, S, P, G, B, T>, WQ, AQ>::has_output_scale)
        d.out_scale = std::fabs(static_cast<double>(l.scale()(0)));
    if constexpr (B) d.bias = to_float(l.inner().bias());
    out.push_back(std::move(d));
}

template <int C, class T>
void flatten(nn::batch_norm<C, T>& l, std::vector<layer_desc>& out, const std::string& name) {
    layer_desc d;
    d.kind = layer_desc::bn;
    d.name = name;
    d.bn_mul.resize(C);
    d.bn_add.resize(C);
    for (int c = 0; c < C; ++c) {
        const double invstd = 1.0 / std::sqrt(static_cast<double>(l.running_var()(c)) + l.eps);
        d.bn_mul[c] = static_cast<double>(l.weight()(c)) * invstd;
        d.bn_add[c] = static_cast<double>(l.bias()(c)) - d.bn_mul[c] * static_cast<double>(l.running_mean()(c));
    }
    out.push_back(std::move(d));
}

template <class T>
void flatten(nn::relu<T>&, std::vector<layer_desc>& out, const std::string& name) {
    layer_desc d;
    d.kind = layer_desc::relu;
    d.name = name;
    out.push_back(std::move(d));
}

template <class T>
void flatten(nn::global_avg_pool<T>&, std::vector<layer_desc>& out, const std::string& name) {
    layer_desc d;
    d.kind = layer_desc::global_pool;
    d.name = name;
    out.push_back(std::move(d));
}

template <int In, int Out, bool B, class T>
void flatten(nn::linear<In, Out, B, T>& l, std::vector<layer_desc>& out, const std::string& name) {
    layer_desc d;
    d.kind = layer_desc::linear;
    d.name = name;
    d.in = In, d.out = Out;
    d.w = to_float(l.weight());
    d.bias = B ? to_float(l.bias()) : std::vector<float>(Out, 0.0f);
    out.push_back(std::move(d));
}

template <class... Ls>
void flatten(nn::sequential<Ls...>& s, std::vector<layer_desc>& out, const std::string& name);

template <class S>
struct option_a_traits : std::false_type {};
template <int In, int Out, int Stride, class T>
struct option_a_traits<nn::option_a<In, Out, Stride, T>> : std::true_type {
    static constexpr std::size_t stride = Stride;
};

template <class Branch, class Shortcut>
void flatten(nn::residual<Branch, Shortcut>& r, std::vector<layer_desc>& out, const std::string& name) {
    layer_desc b;
    b.kind = layer_desc::res_begin;
    b.name = name;
    out.push_back(b);
    flatten(r.branch(), out, name + ".branch.");
    layer_desc e;
    e.kind = layer_desc::res_end;
    e.name = name;
    using S = Shortcut;
    if constexpr (std::is_same_v<S, nn::identity<typename S::scalar_type>>) {
        e.option_a = false;
    } else if constexpr (option_a_traits<S>::value) {
        e.option_a = true;
        e.pad_c = static_cast<std::size_t>(S::pad_c);
        e.stride = option_a_traits<S>::stride;
    } else {
        static_assert(always_false<S>,
                      "deploy::compile: this residual shortcut has no integer form yet (identity and option A have).");
    }
    out.push_back(e);
}

template <class L>
void flatten(L&, std::vector<layer_desc>&, const std::string&) {
    static_assert(always_false<L>,
                  "deploy::compile: this layer type has no integer form yet (conv2d, quantized conv2d, batch_norm, "
                  "relu, residual with identity/option-A shortcut, global_avg_pool and linear have).");
}

template <class... Ls>
void flatten(nn::sequential<Ls...>& s, std::vector<layer_desc>& out, const std::string& name) {
    std::size_t i = 0;
    std::apply([&](auto&... l) { ((flatten(l, out, name + std::to_string(i++) + "."), void()), ...); }, s.layers());
}

// --- pass 2: steps ------------------------------------------------------------------------

/// conv_geometry's output size for an input of h x w.
inline dims conv_out(const conv_geometry& g, dims in) {
    conv_geometry x = g;
    x.height = in.h, x.width = in.w, x.batch = 1;
    if (x.check() != status::ok) fail("a convolution does not fit its input " + std::to_string(in.h) + "x" + std::to_string(in.w));
    return dims{g.out_channels, x.out_h(), x.out_w()};
}

inline int_network lower(const std::vector<layer_desc>& L, dims input, isa tier) {
    int_network net;
    net.set_input(input);
    auto& st = net.steps();
    dims cur = input;
    bool have_codes = false;  // the current value is the codes of the next quantized conv
    std::vector<dims> saved;
    for (std::size_t i = 0; i < L.size(); ++i) {
        const layer_desc& d = L[i];
        const bool next_bn = i + 1 < L.size() && L[i + 1].kind == layer_desc::bn;
        switch (d.kind) {
            case layer_desc::fp_conv: {
                if (have_codes) fail(d.name + ": an FP conv after a quantized conv's codes");
                if (d.geo.in_channels != cur.c) fail(d.name + ": expects " + std::to_string(d.geo.in_channels) + " channels, gets " + std::to_string(cur.c));
                step s;
                s.kind = step_kind::fp_conv;
                s.name = d.name;
                s.geo = d.geo;
                s.in = cur;
                s.out = conv_out(d.geo, cur);
                const std::size_t Co = d.geo.out_channels, cig = d.geo.in_channels / d.geo.groups,
                                  kk = d.geo.kernel_h * d.geo.kernel_w;
                std::vector<double> mul(Co, 1.0), add(Co, 0.0);
                std::size_t skip = 0;
                if (next_bn) mul = L[i + 1].bn_mul, add = L[i + 1].bn_add, skip = 1;
                s.w.resize(d.w.size());
                s.b.resize(Co);
                for (std::size_t o = 0; o < Co; ++o) {
                    for (std::size_t ci = 0; ci < cig; ++ci)
                        for (std::size_t p = 0; p < kk; ++p)
                            s.w[(o * kk + p) * cig + ci] = static_cast<float>(mul[o] * d.w[(o * cig + ci) * kk + p]);
                    s.b[o] = static_cast<float>(mul[o] * (d.bias.empty() ? 0.0 : d.bias[o]) + add[o]);
                }
                if (i + 1 + skip < L.size() && L[i + 1 + skip].kind == layer_desc::relu) s.relu = true, ++skip;
                cur = s.out;
                st.push_back(std::move(s));
                i += skip;
                break;
            }
            case layer_desc::qconv: {
                if (d.geo.in_channels != cur.c) fail(d.name + ": expects " + std::to_string(d.geo.in_channels) + " channels, gets " + std::to_string(cur.c));
                if (!have_codes) {
                    step q;
                    q.kind = step_kind::quantize;
                    q.name = d.name + "aq";
                    q.grid = d.agrid;
                    q.in = q.out = cur;
                    q.abits = d.abits;
                    st.push_back(std::move(q));
                }
                step s;
                s.kind = step_kind::qconv;
                s.name = d.name;
                s.wbits = d.wbits;
                s.abits = d.abits;
                s.in = cur;
                s.out = conv_out(d.geo, cur);
                conv_geometry g = d.geo;
                g.batch = 1, g.height = cur.h, g.width = cur.w;
                if (const status e = int_conv::make(d.wbits, d.abits, g, d.wcodes.data(), d.form, tier, s.conv); e != status::ok)
                    fail(d.name + ": " + describe(e));
                const std::size_t Co = d.geo.out_channels;
                std::vector<double> M(Co), B(Co);
                for (std::size_t o = 0; o < Co; ++o) {
                    M[o] = d.out_scale * d.act_step * d.wscale[o];
                    B[o] = d.out_scale * (d.bias.empty() ? 0.0 : d.bias[o]);
                }
                std::size_t skip = 0;
                if (next_bn) {
                    for (std::size_t o = 0; o < Co; ++o) {
                        M[o] *= L[i + 1].bn_mul[o];
                        B[o] = B[o] * L[i + 1].bn_mul[o] + L[i + 1].bn_add[o];
                    }
                    skip = 1;
                }
                const bool relu = i + 1 + skip < L.size() && L[i + 1 + skip].kind == layer_desc::relu;
                if (relu) ++skip;
                const bool next_q = relu && i + 1 + skip < L.size() && L[i + 1 + skip].kind == layer_desc::qconv;
                if (next_q) {
                    s.to_codes = true;
                    if (const status e = thresholds::make(M, B, true, L[i + 1 + skip].agrid, s.th); e != status::ok)
                        fail(d.name + ": " + describe(e));
                } else {
                    s.relu = relu;
                    s.m_mul.resize(Co);
                    s.m_add.resize(Co);
                    for (std::size_t o = 0; o < Co; ++o) {
                        s.m_mul[o] = static_cast<float>(M[o]);
                        s.m_add[o] = static_cast<float>(B[o]);
                    }
                }
                have_codes = next_q;
                cur = s.out;
                st.push_back(std::move(s));
                i += skip;
                break;
            }
            case layer_desc::bn: fail(d.name + ": a BatchNorm that does not follow a conv (only conv + BN and BN1d + linear fold)");
            case layer_desc::relu: fail(d.name + ": a ReLU that does not follow a conv + BN");
            case layer_desc::res_begin: {
                if (have_codes) fail(d.name + ": a residual block starts on codes");
                step s;
                s.kind = step_kind::save;
                s.name = d.name;
                s.in = s.out = cur;
                saved.push_back(cur);
                st.push_back(std::move(s));
                break;
            }
            case layer_desc::res_end: {
                if (saved.empty() || have_codes) fail(d.name + ": unbalanced residual block");
                step s;
                s.kind = step_kind::add_relu;
                s.name = d.name;
                s.in = saved.back();
                s.out = cur;
                s.option_a = d.option_a;
                s.stride = d.stride;
                s.pad_c = d.pad_c;
                const dims expect = d.option_a ? dims{s.in.c + 2 * d.pad_c, (s.in.h + d.stride - 1) / d.stride,
                                                      (s.in.w + d.stride - 1) / d.stride}
                                               : s.in;
                if (expect.c != cur.c || expect.h != cur.h || expect.w != cur.w)
                    fail(d.name + ": the shortcut and the branch have different shapes");
                saved.pop_back();
                st.push_back(std::move(s));
                break;
            }
            case layer_desc::global_pool: {
                step s;
                s.kind = step_kind::global_pool;
                s.name = d.name;
                s.in = cur;
                s.out = dims{cur.c, 1, 1};
                cur = s.out;
                st.push_back(std::move(s));
                break;
            }
            case layer_desc::linear: {
                // a BatchNorm1d right before it is folded: W (g x + h) + b = (W g) x + (W h + b)
                step s;
                s.kind = step_kind::fc;
                s.name = d.name;
                s.in = cur;
                s.fc_in = d.in, s.fc_out = d.out;
                if (cur.size() != d.in) fail(d.name + ": expects " + std::to_string(d.in) + " inputs, gets " + std::to_string(cur.size()));
                s.out = dims{d.out, 1, 1};
                s.w = d.w;
                s.b = d.bias;
                st.push_back(std::move(s));
                cur = st.back().out;
                break;
            }
        }
    }
    if (have_codes || !saved.empty()) fail("the network ends inside a quantized layer chain or a residual block");
    return net;
}

/// Folds a BatchNorm directly followed by a linear layer into the linear layer (pass 1.5).
inline std::vector<layer_desc> fold_bn_linear(std::vector<layer_desc> L) {
    std::vector<layer_desc> out;
    for (std::size_t i = 0; i < L.size(); ++i) {
        if (L[i].kind == layer_desc::bn && i + 1 < L.size() && L[i + 1].kind == layer_desc::linear &&
            (i == 0 || (L[i - 1].kind != layer_desc::fp_conv && L[i - 1].kind != layer_desc::qconv))) {
            layer_desc fc = L[i + 1];
            const layer_desc& bn = L[i];
            if (bn.bn_mul.size() != fc.in) fail(bn.name + ": BatchNorm1d size differs from the linear layer's input");
            for (std::size_t o = 0; o < fc.out; ++o) {
                double b = fc.bias[o];
                for (std::size_t k = 0; k < fc.in; ++k) {
                    b += static_cast<double>(fc.w[o * fc.in + k]) * bn.bn_add[k];
                    fc.w[o * fc.in + k] = static_cast<float>(fc.w[o * fc.in + k] * bn.bn_mul[k]);
                }
                fc.bias[o] = static_cast<float>(b);
            }
            out.push_back(std::move(fc));
            ++i;
        } else {
            out.push_back(std::move(L[i]));
        }
    }
    return out;
}

}  // namespace detail

/// Compiles a trained network (FP or quantized layers) for inputs of `input` (C, H, W).
/// Throws sqakd::error::invalid_value naming the layer when something has no integer form.
template <class Net>
int_network compile(Net& net, dims input, isa tier = isa::best) {
    std::vector<detail::layer_desc> L;
    detail::flatten(net, L, "");
    return detail::lower(detail::fold_bn_linear(std::move(L)), input, tier);
}

}  // namespace sqakd::deploy

// sqakd/quant/presets.hpp - quantizer presets: what a quant layer's weight and activation slots take.
//
// A preset names its parts: method, bit width, estimator (default quant::clipped_ste).
//
//   quant::interval_weight<Bits, Est>        interval weights, y in [-1, 1]; the layer gets an output scale
//   quant::interval_act<Bits, Est>           interval activations, y in [0, 1]
//   quant::lsq_weight<Bits, Est>             LSQ weights, one step per tensor
//   quant::lsq_weight_per_channel<Bits, Est> LSQ weights, one step per output channel
//   quant::lsq_act<Bits, Est>                LSQ activations (unsigned, post-ReLU)
//   quant::pact_act<Bits, Est>               PACT activations
//   quant::dorefa_weight<Bits, Est>          DoReFa weights
//
// Example (SQAKD's default student, and an LSQ student with EWGS on the weights):
//   using student  = nn::quantize_t<teacher, quant::interval_weight<2>, quant::interval_act<2>>;
//   using student2 = nn::quantize_t<teacher, quant::lsq_weight<4, quant::ewgs>, quant::lsq_act<4>>;
//
// A preset is a descriptor: `typename P::template type<T>` is the quantizer (quant::fake_quant)
// for scalar type T, constructed with the layer's output-channel count; `P::template method<T>`
// its method. A new preset derives from quant::preset_base and names its method template.
#pragma once

#include <type_traits>

#include "sqakd/quant/estimator.hpp"
#include "sqakd/quant/fake_quant.hpp"
#include "sqakd/quant/methods.hpp"

namespace sqakd::quant {

/// What every preset declares, given its method template (CRTP: Derived::method<T>). `type`'s
/// defaulted D makes Derived::method a dependent name, looked up when type<T> is used (by then
/// Derived is complete).
template <class Derived, int Bits, tensor_role Role, class Est, bool OutputScale = false>
struct preset_base {
    static constexpr int bits = bits_check<Bits>::value;
    static constexpr quant::tensor_role role = Role;
    static constexpr bool has_output_scale = OutputScale;
    using estimator = Est;
    template <class T, class D = Derived>
    using type = fake_quant<typename D::template method<T>, Est, T>;
};

/// Interval weights (SQAKD.md §3): l, u learnable, y = 2k/(L-1) - 1; the layer multiplies its
/// output by a learnable |s|.   nn::quant_conv2d<..., quant::interval_weight<4>, quant::interval_act<4>>
template <int Bits, class Est = clipped_ste>
struct interval_weight : preset_base<interval_weight<Bits, Est>, Bits, tensor_role::weight, Est, true> {
    template <class T>
    using method = interval_method<Bits, tensor_role::weight, T>;
    static constexpr const char* method_name = "interval";
};

/// Interval activations: l, u learnable, y = k/(L-1) in [0, 1].
template <int Bits, class Est = clipped_ste>
struct interval_act : preset_base<interval_act<Bits, Est>, Bits, tensor_role::activation, Est> {
    template <class T>
    using method = interval_method<Bits, tensor_role::activation, T>;
    static constexpr const char* method_name = "interval";
};

/// LSQ weights with one learned step per tensor: y = q s, signed codes ({-1, +1} at 1 bit).
template <int Bits, class Est = clipped_ste>
struct lsq_weight : preset_base<lsq_weight<Bits, Est>, Bits, tensor_role::weight, Est> {
    template <class T>
    using method = lsq_method<Bits, tensor_role::weight, false, T>;
    static constexpr const char* method_name = "lsq";
};

/// LSQ weights with one learned step per output channel.
template <int Bits, class Est = clipped_ste>
struct lsq_weight_per_channel : preset_base<lsq_weight_per_channel<Bits, Est>, Bits, tensor_role::weight, Est> {
    template <class T>
    using method = lsq_method<Bits, tensor_role::weight, true, T>;
    static constexpr const char* method_name = "lsq_per_channel";
};

/// LSQ activations (unsigned codes, for post-ReLU inputs).
template <int Bits, class Est = clipped_ste>
struct lsq_act : preset_base<lsq_act<Bits, Est>, Bits, tensor_role::activation, Est> {
    template <class T>
    using method = lsq_method<Bits, tensor_role::activation, false, T>;
    static constexpr const char* method_name = "lsq";
};

/// PACT activations: learnable clip alpha, y = q alpha/(L-1).
template <int Bits, class Est = clipped_ste>
struct pact_act : preset_base<pact_act<Bits, Est>, Bits, tensor_role::activation, Est> {
    template <class T>
    using method = pact_method<Bits, T>;
    static constexpr const char* method_name = "pact";
};

/// DoReFa weights: tanh-normalised, no parameters, y = 2q/(L-1) - 1.
template <int Bits, class Est = clipped_ste>
struct dorefa_weight : preset_base<dorefa_weight<Bits, Est>, Bits, tensor_role::weight, Est> {
    template <class T>
    using method = dorefa_method<Bits, T>;
    static constexpr const char* method_name = "dorefa";
};

/// Trait: P is a quantizer preset (has a role, a bit width and a type<T>).
template <class P, class = void>
struct is_preset : std::false_type {};
template <class P>
struct is_preset<P, std::void_t<decltype(P::role), decltype(P::bits), typename P::template type<float>>>
    : std::true_type {};

}  // namespace sqakd::quant

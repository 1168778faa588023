// sqakd/quant/estimator.hpp - gradient estimators of the rounding step (SQAKD.md §3).
//
// Every quantizer rounds v (its input in level units) to a code q. The estimator says how the
// gradient passes that step and whether it is masked outside the clip range:
//
//   dLoss/dv = g_q * (1 + delta * sign(g_q) * (v - q) / spacing)     g_q = dLoss/dq
//
//   quant::ste           plain straight-through: delta = 0, no mask (dLoss/dx = dLoss/dv * dv/dx
//                        everywhere, with dv/dx as inside the range)
//   quant::clipped_ste   delta = 0, dLoss/dx = 0 outside the clip range (the default)
//   quant::ewgs          element-wise gradient scaling (Lee et al., CVPR 2021): delta >= 0 is a
//                        run-time value (fixed, or updated from the Hessian trace by
//                        quant::ewgs_hessian_update), masked like clipped_ste
//
// `spacing` is the distance between adjacent codes (1, except LSQ's 1-bit weights {-1, +1}:
// 2), so the error term is in level units for every quantizer and any estimator composes with
// any quantizer. (The EWGS paper measures the error on the [0, 1] grid: its delta is this
// delta times (L - 1).)
//
// Example:
//   using wq = quant::interval_weight<2, quant::ewgs>;   // a quantizer preset with EWGS
//   layer.weight_quantizer().estimator().delta = 0.2;
#pragma once

namespace sqakd::quant {

/// Plain straight-through estimator: the rounding and the clipping pass the gradient unchanged.
struct ste {
    static constexpr const char* name = "ste";
    static constexpr bool masked = false;
    static constexpr bool scaled = false;
    double delta = 0;  ///< unused; present so every estimator has the same members
};

/// Straight-through on the rounding, zero gradient outside the clip range (default).
struct clipped_ste {
    static constexpr const char* name = "clipped_ste";
    static constexpr bool masked = true;
    static constexpr bool scaled = false;
    double delta = 0;  ///< unused
};

/// Element-wise gradient scaling: the straight-through gradient scaled by
/// 1 + delta * sign(g_q) * (v - q), masked outside the clip range. delta = 0 is clipped_ste.
struct ewgs {
    static constexpr const char* name = "ewgs";
    static constexpr bool masked = true;
    static constexpr bool scaled = true;
    double delta = 0;
};

template <class E>
struct is_estimator {
    static constexpr bool value = false;
};
template <>
struct is_estimator<ste> {
    static constexpr bool value = true;
};
template <>
struct is_estimator<clipped_ste> {
    static constexpr bool value = true;
};
template <>
struct is_estimator<ewgs> {
    static constexpr bool value = true;
};

}  // namespace sqakd::quant

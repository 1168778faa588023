// sqakd/distill/kd.hpp - distillation losses on logits (SQAKD.md §2).
//
//   distill::sqakd_kl{T}                 L = T^2 (1/B) sum_b KL(softmax(z_t/T) || softmax(z_s/T));
//                                        no labels (needs_labels = false). T = 4 by default.
//   distill::hinton_kd{gamma, alpha, T}  L = gamma CE(z_s, y) + alpha L_KL (needs labels)
//   distill::cross_entropy               the QAT baseline (cross_entropy.hpp; needs labels,
//                                        no teacher)
//
// A loss policy declares `needs_labels` and `needs_teacher`; train::distill passes labels only
// to losses that declare they need them, and refuses at compile time to train a label-needing
// loss on an unlabeled data source. Losses take the student logits z_s [B, C], the teacher
// logits z_t [B, C] (when needs_teacher) and the labels (when needs_labels), return the loss
// (computed in double) and write dLoss/dz_s.
//
//   dL_KL/dz_s = (T / B) (softmax(z_s/T) - softmax(z_t/T))
//
// Example:
//   distill::sqakd_kl kl{4.0};
//   double loss = kl(student_logits, teacher_logits, dlogits);
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "sqakd/distill/cross_entropy.hpp"

namespace sqakd::distill {

namespace detail {
/// T^2 (1/B) sum KL(p_t || p_s) and, when d is not null, adds w * dL/dz_s into d.
template <class T>
double kl_rows(const tensor<T>& zs, const tensor<T>& zt, double temperature, double w, tensor<T>* d) {
    const char* who = "sqakd_kl";
    ce_detail::check_logits(who, zs);
    check_same_shape("sqakd_kl: teacher logits vs student logits", zs, zt);
    const double inv_t = ce_detail::inv_temperature(who, temperature);
    const std::size_t rows = zs.shape()[0], cols = zs.shape()[1];
    ce_detail::check_finite_rows("sqakd_kl (student)", zs.data(), rows, cols);
    ce_detail::check_finite_rows("sqakd_kl (teacher)", zt.data(), rows, cols);
    const double inv_b = 1.0 / static_cast<double>(rows);
    double total = 0;
    for (std::size_t b = 0; b < rows; ++b) {
        const T* s = zs.data() + b * cols;
        const T* t = zt.data() + b * cols;
        double ms, ls, mt, lt;
        ce_detail::row_lse(s, cols, inv_t, ms, ls);
        ce_detail::row_lse(t, cols, inv_t, mt, lt);
        for (std::size_t c = 0; c < cols; ++c) {
            const double log_pt = (static_cast<double>(t[c]) * inv_t - mt) - lt;
            const double log_ps = (static_cast<double>(s[c]) * inv_t - ms) - ls;
            const double pt = std::exp(log_pt);
            total += pt * (log_pt - log_ps);
            if (d) d->data()[b * cols + c] += static_cast<T>(w * temperature * inv_b * (std::exp(log_ps) - pt));
        }
    }
    return temperature * temperature * total * inv_b;
}
}  // namespace detail

/// The SQAKD loss: KL(teacher || student) at temperature T, times T^2, mean over the batch.
/// Label-free.
struct sqakd_kl {
    static constexpr bool needs_labels = false;
    static constexpr bool needs_teacher = true;
    static constexpr const char* name = "sqakd_kl";
    double temperature = 4.0;

    /// Returns the loss; writes dLoss/dz_s into dzs (resized). Throws error::shape_mismatch for
    /// differing or empty logits, error::invalid_value for NaN/Inf logits or T <= 0.
    template <class T>
    double operator()(const tensor<T>& zs, const tensor<T>& zt, tensor<T>& dzs) const {
        ensure_shape(dzs, shape_t(zs.shape().begin(), zs.shape().end()));
        dzs.fill(T(0));
        return detail::kl_rows(zs, zt, temperature, 1.0, &dzs);
    }
    template <class T>
    double value(const tensor<T>& zs, const tensor<T>& zt) const {
        return detail::kl_rows<T>(zs, zt, temperature, 1.0, nullptr);
    }
};

/// Hinton et al.'s knowledge distillation: gamma CE(z_s, y) + alpha T^2 KL(p_t || p_s).
/// gamma = 0, alpha = 1 is sqakd_kl (but this policy still declares that it needs labels).
struct hinton_kd {
    static constexpr bool needs_labels = true;
    static constexpr bool needs_teacher = true;
    static constexpr const char* name = "hinton_kd";
    double gamma = 1.0;        ///< weight of the cross-entropy with the labels
    double alpha = 1.0;        ///< weight of the KL term
    double temperature = 4.0;

    template <class T>
    double operator()(const tensor<T>& zs, const tensor<T>& zt, const std::vector<std::int32_t>& labels,
                      tensor<T>& dzs) const {
        const double ce = cross_entropy{}(zs, labels, dzs);
        if (gamma != 1.0)
            for (auto& v : dzs) v = static_cast<T>(v * gamma);
        const double kl = detail::kl_rows(zs, zt, temperature, alpha, &dzs);
        return gamma * ce + alpha * kl;
    }
};

/// Traits the trainer reads (a loss without the member is taken to need no labels / a teacher).
template <class L, class = void>
struct loss_needs_labels : std::false_type {};
template <class L>
struct loss_needs_labels<L, std::void_t<decltype(L::needs_labels)>> : std::bool_constant<bool(L::needs_labels)> {};
template <class L, class = void>
struct loss_needs_teacher : std::true_type {};
template <class L>
struct loss_needs_teacher<L, std::void_t<decltype(L::needs_teacher)>> : std::bool_constant<bool(L::needs_teacher)> {};

}  // namespace sqakd::distill

// sqakd/distill/cross_entropy.hpp - cross-entropy loss on logits with integer labels, and
// numerically stable row softmax / log-softmax helpers.
//
//   distill::cross_entropy                  loss policy, needs_labels = true
//   distill::softmax_rows(z, out, T = 1)    out[b] = softmax(z[b] / T)
//   distill::log_softmax_rows(z, out, T = 1)
//
// Loss (PyTorch F.cross_entropy, reduction "mean", no smoothing), for logits z [B, C] and
// labels y in [0, C):
//
//   L = (1/B) * sum_b ( logsumexp(z[b]) - z[b, y_b] )
//   dL/dz[b, c] = (softmax(z[b])_c - [c == y_b]) / B
//
// Stability: every row is shifted by its maximum before exponentiation and all sums are taken
// in double, so logits of any finite magnitude (1e3, 1e30) give a finite loss and gradient; the
// loss is returned as a double, the gradient rounded once to T.
//
// Example (the QAT baseline or teacher training, SQAKD.md §2: gamma = 1, alpha = 0):
//
//   distill::cross_entropy ce;
//   tensor<float> dlogits;
//   const auto& logits = model.forward(x, nn::mode::train);
//   double loss = ce(logits, labels, dlogits);   // labels: std::vector<std::int32_t>
//   model.backward(dlogits, /*need_dx=*/false);
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sqakd/core/error.hpp"
#include "sqakd/core/tensor.hpp"

namespace sqakd::distill {

namespace ce_detail {

/// Throws error::invalid_value naming `who` and the sample when row b of [rows, cols] data
/// holds a NaN or an infinity.
template <class T>
void check_finite_rows(const char* who, const T* z, std::size_t rows, std::size_t cols) {
    for (std::size_t b = 0; b < rows; ++b)
        for (std::size_t c = 0; c < cols; ++c)
            if (!std::isfinite(z[b * cols + c]))
                throw error::invalid_value(std::string(who) + ": logits of sample " +
                                           std::to_string(b) + " contain NaN or Inf (class " +
                                           std::to_string(c) + ")");
}

/// Max and log(sum(exp(x - max))) of one row of x / temperature, in double.
template <class T>
void row_lse(const T* z, std::size_t cols, double inv_t, double& mx, double& log_sum) {
    mx = static_cast<double>(z[0]) * inv_t;
    for (std::size_t c = 1; c < cols; ++c) mx = std::max(mx, static_cast<double>(z[c]) * inv_t);
    double s = 0;
    for (std::size_t c = 0; c < cols; ++c) s += std::exp(static_cast<double>(z[c]) * inv_t - mx);
    log_sum = std::log(s);  // s >= 1: the maximum contributes exp(0)
}

template <class T>
void check_logits(const char* who, const tensor<T>& z) {
    check_shape(who, z, {0, 0});
    if (z.shape()[0] == 0 || z.shape()[1] == 0)
        throw error::shape_mismatch(std::string(who) + ": expected a non-empty batch of logits, got " +
                                    shape_str(z.shape()));
}

inline double inv_temperature(const char* who, double temperature) {
    if (!std::isfinite(temperature) || temperature <= 0)
        throw error::invalid_value(std::string(who) + ": the temperature must be finite and > 0, got " +
                                   std::to_string(temperature));
    return 1.0 / temperature;
}

}  // namespace ce_detail

/// out[b, :] = softmax(z[b, :] / temperature), for logits z of shape [B, C]; `out` is resized.
/// Stable for any finite logits. Throws error::shape_mismatch unless z is a non-empty
/// [B, C], error::invalid_value for NaN/Inf logits (naming the sample).
///
///   tensor<float> p; distill::softmax_rows(teacher_logits, p, 4.0);   // soft targets, T = 4
template <class T>
void softmax_rows(const tensor<T>& z, tensor<T>& out, double temperature = 1.0) {
    const char* who = "softmax_rows";
    ce_detail::check_logits(who, z);
    const double inv_t = ce_detail::inv_temperature(who, temperature);
    const std::size_t rows = z.shape()[0], cols = z.shape()[1];
    ce_detail::check_finite_rows(who, z.data(), rows, cols);
    ensure_shape(out, shape_t{rows, cols});
    for (std::size_t b = 0; b < rows; ++b) {
        const T* zr = z.data() + b * cols;
        double mx, ls;
        ce_detail::row_lse(zr, cols, inv_t, mx, ls);
        const double shift = mx + ls;
        T* o = out.data() + b * cols;
        for (std::size_t c = 0; c < cols; ++c)
            o[c] = static_cast<T>(std::exp(static_cast<double>(zr[c]) * inv_t - shift));
    }
}

/// out[b, :] = log_softmax(z[b, :] / temperature) = z / T - logsumexp(z / T); `out` is resized.
/// Same checks as softmax_rows.
template <class T>
void log_softmax_rows(const tensor<T>& z, tensor<T>& out, double temperature = 1.0) {
    const char* who = "log_softmax_rows";
    ce_detail::check_logits(who, z);
    const double inv_t = ce_detail::inv_temperature(who, temperature);
    const std::size_t rows = z.shape()[0], cols = z.shape()[1];
    ce_detail::check_finite_rows(who, z.data(), rows, cols);
    ensure_shape(out, shape_t{rows, cols});
    for (std::size_t b = 0; b < rows; ++b) {
        const T* zr = z.data() + b * cols;
        double mx, ls;
        ce_detail::row_lse(zr, cols, inv_t, mx, ls);
        T* o = out.data() + b * cols;
        // (z - mx) - ls rather than z - (mx + ls): exact zero for the maximum when ls == 0.
        for (std::size_t c = 0; c < cols; ++c)
            o[c] = static_cast<T>((static_cast<double>(zr[c]) * inv_t - mx) - ls);
    }
}

/// Cross-entropy on logits [B, C] with labels in [0, C), mean over the batch (see the top of
/// this file). A loss policy: it reads labels, so training on an unlabeled dataset with it is
/// rejected at compile time by the trainers.
struct cross_entropy {
    static constexpr bool needs_labels = true;
    static constexpr bool needs_teacher = false;
    static constexpr const char* name = "cross_entropy";

    /// Returns the loss (mean over the batch, computed in double) and writes dLoss/dlogits into
    /// `dlogits` (resized to the logits' shape).
    ///   throws error::shape_mismatch unless logits is a non-empty [B, C] and labels.size() == B;
    ///   throws error::invalid_value, naming the sample index, for a label outside [0, C) or a
    ///   logit that is NaN or infinite (nothing is written to dlogits then).
    template <class T>
    double operator()(const tensor<T>& logits, const std::vector<std::int32_t>& labels,
                      tensor<T>& dlogits) const {
        const std::size_t rows = check(logits, labels), cols = logits.shape()[1];
        ensure_shape(dlogits, shape_t{rows, cols});
        const double inv_b = 1.0 / static_cast<double>(rows);
        double total = 0;
        for (std::size_t b = 0; b < rows; ++b) {
            const T* z = logits.data() + b * cols;
            T* d = dlogits.data() + b * cols;
            double mx, ls;
            ce_detail::row_lse(z, cols, 1.0, mx, ls);
            const std::size_t y = static_cast<std::size_t>(labels[b]);
            total += (mx + ls) - static_cast<double>(z[y]);
            for (std::size_t c = 0; c < cols; ++c) {
                const double p = std::exp(static_cast<double>(z[c]) - mx - ls);
                d[c] = static_cast<T>((p - (c == y ? 1.0 : 0.0)) * inv_b);
            }
        }
        return total * inv_b;
    }

    /// The loss alone (no gradient), with the same checks.
    template <class T>
    double value(const tensor<T>& logits, const std::vector<std::int32_t>& labels) const {
        const std::size_t rows = check(logits, labels), cols = logits.shape()[1];
        double total = 0;
        for (std::size_t b = 0; b < rows; ++b) {
            const T* z = logits.data() + b * cols;
            double mx, ls;
            ce_detail::row_lse(z, cols, 1.0, mx, ls);
            total += (mx + ls) - static_cast<double>(z[static_cast<std::size_t>(labels[b])]);
        }
        return total / static_cast<double>(rows);
    }

private:
    template <class T>
    static std::size_t check(const tensor<T>& logits, const std::vector<std::int32_t>& labels) {
        ce_detail::check_logits(name, logits);
        const std::size_t rows = logits.shape()[0], cols = logits.shape()[1];
        if (labels.size() != rows)
            throw error::shape_mismatch(std::string(name) + ": expected " + std::to_string(rows) +
                                        " labels (one per row of logits " +
                                        shape_str(logits.shape()) + "), got " +
                                        std::to_string(labels.size()));
        for (std::size_t b = 0; b < rows; ++b)
            if (labels[b] < 0 || static_cast<std::size_t>(labels[b]) >= cols)
                throw error::invalid_value(std::string(name) + ": label " + std::to_string(labels[b]) +
                                           " of sample " + std::to_string(b) + " is outside [0, " +
                                           std::to_string(cols) + ")");
        ce_detail::check_finite_rows(name, logits.data(), rows, cols);
        return rows;
    }
};

}  // namespace sqakd::distill

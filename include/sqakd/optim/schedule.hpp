// sqakd/optim/schedule.hpp - learning-rate schedules as functions of a 0-based step counter.
//
// A schedule is a small value type with `double operator()(std::size_t t) const` returning the
// learning rate for step t. The unit of t is the caller's choice: epochs (t = epoch, set once
// per epoch, as in SQAKD.md §5) or iterations (t = global iteration, set before every step);
// composite schedules (warmup) use the same unit for their own length and their inner schedule.
//
//   optim::constant_schedule{lr0}
//   optim::cosine_schedule{lr0, epochs [, eta_min]}          PyTorch CosineAnnealingLR
//   optim::step_schedule{lr0, step_size, gamma}              PyTorch StepLR
//   optim::warmup{warmup_steps, inner [, start_factor]}      PyTorch SequentialLR(LinearLR, inner)
//
// Apply one to an optimiser group with opt.set_lr(group, sched(t)). Constructors throw
// error::invalid_value for negative or non-finite rates and zero lengths.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

#include "sqakd/core/error.hpp"

namespace sqakd::optim {

namespace detail {
inline void check_schedule(const char* who, const char* what, double v) {
    if (!std::isfinite(v) || v < 0)
        throw error::invalid_value(std::string(who) + ": " + what +
                                   " must be finite and >= 0, got " + std::to_string(v));
}
inline void check_length(const char* who, const char* what, std::size_t n) {
    if (n == 0) throw error::invalid_value(std::string(who) + ": " + what + " must be > 0");
}
}  // namespace detail

/// The same learning rate at every step.
///
///   optim::constant_schedule s{1e-3};   // s(t) == 1e-3
struct constant_schedule {
    double lr0;

    explicit constant_schedule(double lr0_) : lr0(lr0_) {
        detail::check_schedule("constant_schedule", "lr0", lr0);
    }
    double operator()(std::size_t) const { return lr0; }
};

/// Cosine annealing from lr0 to eta_min over `epochs` steps, without restarts:
///
///   lr(t) = eta_min + (lr0 - eta_min) * (1 + cos(pi * t / epochs)) / 2
///
/// which is PyTorch's CosineAnnealingLR(T_max = epochs, eta_min) stepped once per epoch
/// (SQAKD.md §5). lr(0) = lr0; the last epoch of a run of `epochs` epochs, t = epochs - 1, still
/// has a positive rate; lr(epochs) = eta_min. Past `epochs` the formula (like PyTorch's) rises
/// again, with period 2 * epochs.
///
///   optim::cosine_schedule s{0.1, 200};
///   for (std::size_t e = 0; e < 200; ++e) { opt.set_lr(0, s(e)); train_one_epoch(); }
struct cosine_schedule {
    double lr0;
    std::size_t epochs;
    double eta_min = 0;

    cosine_schedule(double lr0_, std::size_t epochs_, double eta_min_ = 0)
        : lr0(lr0_), epochs(epochs_), eta_min(eta_min_) {
        detail::check_schedule("cosine_schedule", "lr0", lr0);
        detail::check_schedule("cosine_schedule", "eta_min", eta_min);
        detail::check_length("cosine_schedule", "the number of epochs", epochs);
    }
    double operator()(std::size_t t) const {
        const double pi = 3.14159265358979323846264338327950288;
        return eta_min + (lr0 - eta_min) *
                             (1.0 + std::cos(pi * static_cast<double>(t) / static_cast<double>(epochs))) /
                             2.0;
    }
};

/// Step decay: the rate is multiplied by gamma every `step_size` steps,
///
///   lr(t) = lr0 * gamma^floor(t / step_size)
///
/// which is PyTorch's StepLR(step_size, gamma).
///
///   optim::step_schedule s{0.1, 30, 0.1};   // 0.1 for t < 30, 0.01 for 30 <= t < 60, ...
struct step_schedule {
    double lr0;
    std::size_t step_size;
    double gamma;

    step_schedule(double lr0_, std::size_t step_size_, double gamma_)
        : lr0(lr0_), step_size(step_size_), gamma(gamma_) {
        detail::check_schedule("step_schedule", "lr0", lr0);
        detail::check_schedule("step_schedule", "gamma", gamma);
        detail::check_length("step_schedule", "step_size", step_size);
    }
    double operator()(std::size_t t) const {
        return lr0 * std::pow(gamma, static_cast<double>(t / step_size));
    }
};

/// Linear warm-up in front of another schedule. With lr0 = inner(0) and W = warmup_steps:
///
///   lr(t) = lr0 * (start_factor + (1 - start_factor) * t / W)   for t < W
///   lr(t) = inner(t - W)                                        for t >= W
///
/// i.e. the rate rises linearly from lr0 * start_factor to the inner schedule's first value,
/// reached at t = W, and the inner schedule then runs from its own step 0. This is PyTorch's
/// SequentialLR([LinearLR(start_factor, total_iters = W), inner], milestones = [W]) (the
/// torchvision reference recipe); a run therefore lasts W + (the inner schedule's length).
///
///   // 5 warm-up epochs from 0.01, then 195 cosine epochs from 0.1 (200 in total):
///   optim::warmup s{5, optim::cosine_schedule{0.1, 195}, 0.1};
///   // per iteration: 500 warm-up iterations, then a per-iteration cosine:
///   optim::warmup s2{500, optim::cosine_schedule{0.1, total_iters - 500}};
template <class Inner>
struct warmup {
    static_assert(std::is_invocable_r_v<double, const Inner&, std::size_t>,
                  "warmup: the inner schedule must be callable as inner(std::size_t t) and return "
                  "the learning rate as a double.");
    std::size_t warmup_steps;
    Inner inner;
    double start_factor = 1.0 / 3.0;  // PyTorch LinearLR's default

    warmup(std::size_t warmup_steps_, Inner inner_, double start_factor_ = 1.0 / 3.0)
        : warmup_steps(warmup_steps_), inner(std::move(inner_)), start_factor(start_factor_) {
        detail::check_length("warmup", "the number of warm-up steps", warmup_steps);
        if (!std::isfinite(start_factor) || start_factor <= 0 || start_factor > 1)
            throw error::invalid_value("warmup: start_factor must be in (0, 1], got " +
                                       std::to_string(start_factor));
    }
    double operator()(std::size_t t) const {
        if (t >= warmup_steps) return inner(t - warmup_steps);
        const double f = start_factor + (1.0 - start_factor) * static_cast<double>(t) /
                                            static_cast<double>(warmup_steps);
        return inner(0) * f;
    }
};

template <class Inner>
warmup(std::size_t, Inner, double) -> warmup<Inner>;
template <class Inner>
warmup(std::size_t, Inner) -> warmup<Inner>;

}  // namespace sqakd::optim

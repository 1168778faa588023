// sqakd_bench_sqakd - speed of one SQAKD distillation step of ResNet-20 (batch 256, 1x28x28),
// the step of train::distill (SQAKD.md §2, §5), and the same step with an FP student.
//
//   BM_resnet20_sqakd_step/<bits>   W<bits>A<bits> interval student (quant::interval_weight<B>,
//                                   quant::interval_act<B>; bits 4 and 2), one full step:
//                                     nn::zero_grad(student);
//                                     zt = teacher.forward(x, eval); zs = student.forward(x, train);
//                                     distill::sqakd_kl{4}(zs, zt, dlogits);
//                                     student.backward(dlogits, need_dx = false);
//                                     opt_model.step(); opt_quant.step();
//                                   opt_model: Adam lr 1e-3, L2 weight decay 1e-4 over the model
//                                   parameters; opt_quant: Adam lr 1e-5, no decay, over the
//                                   quantizer parameters (exactly as train::distill).
//   BM_resnet20_kd_fp_step          the same step with an FP ResNet-20 student (a copy of the
//                                   teacher) and only opt_model (there are no quantizer
//                                   parameters): what the fake quantization costs on top.
//   BM_sqakd_step_parts/<bits|fp>   the same steps, each phase timed separately (zero_grad,
//                                   teacher forward, student forward, loss, student backward,
//                                   optimisers); medians per phase as counters (*_ms).
//
// Teacher: nn::models::resnet20<1, 10> with random weights (rng seed 20, init), never updated.
// Student: nn::quantize_t<teacher, ...> with nn::copy_from_teacher and nn::request_quant_init;
// one untimed step initialises the quantizers (for the FP student too, for symmetry), then
// --warmup untimed and --steps timed steps on one fixed batch of N(0, 1) inputs.
//
// Timing as sqakd_bench_train: UseManualTime with a steady clock around the timed region, the
// median of the per-step times reported as counters (median_ms, p10_ms, p90_ms, min_ms).
//
// Own flags (removed before Google Benchmark sees the rest):
//   --steps=N         timed steps (default 20)
//   --warmup=N        untimed steps before them, after the initialising step (default 5)
//   --step_log=FILE   append "<benchmark name> <ms>" per timed step (merging alternated runs)
//
// Run with the thread count fixed, e.g. OMP_NUM_THREADS=2 (scripts/bench_sqakd_step.sh does).
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "sqakd/core/parallel.hpp"
#include "sqakd/distill/kd.hpp"
#include "sqakd/nn/layer.hpp"
#include "sqakd/nn/models/resnet.hpp"
#include "sqakd/nn/quantize.hpp"
#include "sqakd/optim/adam.hpp"
#include "sqakd/optim/param_group.hpp"
#include "sqakd/quant/presets.hpp"

namespace {

#include "bench_common.hpp"

using namespace sqakd;
using clock_type = std::chrono::steady_clock;
using teacher_t = nn::models::resnet20<1, 10>;
template <int Bits>
using interval_student_t = nn::quantize_t<teacher_t, quant::interval_weight<Bits>, quant::interval_act<Bits>>;

constexpr std::size_t batch = 256;
constexpr std::size_t image = 28;
constexpr double temperature = 4.0;

struct config {
    int steps = 20;
    int warmup = 5;
    std::string step_log;
};

config& cfg() {
    static config c;
    return c;
}

double seconds_since(clock_type::time_point t0) {
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}

/// Quantile q in [0, 1] by linear interpolation between order statistics (numpy's default).
double quantile(std::vector<double> v, double q) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const double pos = q * static_cast<double>(v.size() - 1);
    const std::size_t lo = static_cast<std::size_t>(pos);
    const std::size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

/// Teacher, student, the fixed batch and the optimisers of one distillation step. Lives on the
/// heap and never moves: the optimisers hold pointers into the student.
template <class Student, bool Quant>
struct kd_step {
    teacher_t teacher;
    Student student;
    tensor<float> x, dlogits;
    std::optional<optim::adam<>> opt_model, opt_quant;
    distill::sqakd_kl loss_fn{temperature};
    double loss = 0;

    kd_step() {
        rng g(20);
        teacher.init(g);
        x = tensor<float>(shape_t{batch, 1, image, image});
        nn::fill_normal(x, g, 1.0);
        nn::copy_from_teacher(student, teacher);
        opt_model.emplace(std::vector<optim::param_group<float>>{
            {optim::collect_params(student, optim::model_params{}), 1e-3, 1e-4}});
        if constexpr (Quant) {
            opt_quant.emplace(std::vector<optim::param_group<float>>{
                {optim::collect_params(student, optim::quant_params{}), 1e-5, 0.0}});
            nn::request_quant_init(student);
        }
    }

    /// One step; with `t` non-null, the end time of each of the 6 phases since `t0`.
    void step(std::array<double, 6>* t = nullptr) {
        const auto t0 = clock_type::now();
        auto mark = [&](int i) {
            if (t) (*t)[static_cast<std::size_t>(i)] = seconds_since(t0);
        };
        nn::zero_grad(student);
        mark(0);
        const auto& zt = teacher.forward(x, nn::mode::eval);
        mark(1);
        const auto& zs = student.forward(x, nn::mode::train);
        mark(2);
        loss = loss_fn(zs, zt, dlogits);
        mark(3);
        student.backward(dlogits, /*need_dx=*/false);
        mark(4);
        opt_model->step();
        if constexpr (Quant) opt_quant->step();
        mark(5);
    }

    std::size_t quant_params() const {
        std::size_t n = 0;
        if (opt_quant)
            for (const auto& g : opt_quant->groups())
                for (const auto& p : g.params) n += p.value->size();
        return n;
    }
};

void common_counters(benchmark::State& state, const std::vector<double>& ms, double loss_first, double loss_last) {
    const double med = quantile(ms, 0.5);
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(batch));
    state.counters["median_ms"] = med;
    state.counters["p10_ms"] = quantile(ms, 0.1);
    state.counters["p90_ms"] = quantile(ms, 0.9);
    state.counters["min_ms"] = quantile(ms, 0.0);
    state.counters["images_per_second_median"] = med > 0 ? 1e3 * static_cast<double>(batch) / med : 0;
    state.counters["warmup_steps"] = cfg().warmup;
    state.counters["batch"] = static_cast<double>(batch);
    state.counters["threads"] = num_threads();
    state.counters["loss_first"] = loss_first;
    state.counters["loss_last"] = loss_last;
}

void write_log(benchmark::State& state, const std::string& name, const std::vector<double>& ms) {
    if (cfg().step_log.empty()) return;
    std::ofstream log(cfg().step_log, std::ios::app);
    for (double v : ms) log << name << ' ' << v << '\n';
    if (!log) state.SkipWithError(("cannot write the step log " + cfg().step_log).c_str());
}

/// Builds the step, runs the initialising and the warm-up steps; false (and the benchmark
/// skipped) if the loss is not finite.
template <class S>
bool prepare(benchmark::State& state, S& s) {
    for (int i = 0; i < 1 + cfg().warmup; ++i) s.step();
    if (!std::isfinite(s.loss)) {
        state.SkipWithError("the loss is not finite after the warm-up steps");
        return false;
    }
    return true;
}

template <class Student, bool Quant>
void bm_step(benchmark::State& state, std::string name, std::string label) {
    auto s = std::make_unique<kd_step<Student, Quant>>();
    if (!prepare(state, *s)) {
        for (auto _ : state) state.SetIterationTime(0);
        return;
    }
    const double loss_first = s->loss;
    std::vector<double> ms;
    ms.reserve(static_cast<std::size_t>(cfg().steps));
    for (auto _ : state) {
        const auto t0 = clock_type::now();
        s->step();
        const double sec = seconds_since(t0);
        state.SetIterationTime(sec);
        ms.push_back(1e3 * sec);
    }
    benchmark::DoNotOptimize(s->loss);
    common_counters(state, ms, loss_first, s->loss);
    state.counters["quant_params"] = static_cast<double>(s->quant_params());
    state.counters["quantized_layers"] = static_cast<double>(nn::count_quantized(s->student));
    state.SetLabel(label);
    write_log(state, name, ms);
}

template <class Student, bool Quant>
void bm_parts(benchmark::State& state, std::string label) {
    auto s = std::make_unique<kd_step<Student, Quant>>();
    if (!prepare(state, *s)) {
        for (auto _ : state) state.SetIterationTime(0);
        return;
    }
    const double loss_first = s->loss;
    static constexpr const char* names[6] = {"zero_grad_ms",  "teacher_fwd_ms",  "student_fwd_ms",
                                             "loss_ms",       "student_bwd_ms",  "optim_ms"};
    std::array<std::vector<double>, 6> part;
    std::vector<double> ms;
    for (auto _ : state) {
        std::array<double, 6> t{};
        s->step(&t);
        state.SetIterationTime(t[5]);
        ms.push_back(1e3 * t[5]);
        for (std::size_t i = 0; i < 6; ++i) part[i].push_back(1e3 * (t[i] - (i ? t[i - 1] : 0.0)));
    }
    common_counters(state, ms, loss_first, s->loss);
    for (std::size_t i = 0; i < 6; ++i) state.counters[names[i]] = quantile(part[i], 0.5);
    state.SetLabel(label);
}

std::string quant_label(int bits) {
    const std::string b = std::to_string(bits);
    return "resnet20<1,10> teacher -> W" + b + "A" + b +
           " interval student, batch 256x1x28x28, sqakd_kl T=4, Adam 1e-3/L2 1e-4 + Adam 1e-5";
}
const char* fp_label = "resnet20<1,10> teacher -> FP resnet20 student, batch 256x1x28x28, sqakd_kl T=4, Adam 1e-3/L2 1e-4";

template <int Bits>
void add_quant() {
    const std::string name = "BM_resnet20_sqakd_step/" + std::to_string(Bits);
    benchmark::RegisterBenchmark(name.c_str(),
                                 [name](benchmark::State& st) {
                                     bm_step<interval_student_t<Bits>, true>(st, name, quant_label(Bits));
                                 })
        ->UseManualTime()
        ->Iterations(cfg().steps)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("BM_sqakd_step_parts/" + std::to_string(Bits)).c_str(),
                                 [](benchmark::State& st) { bm_parts<interval_student_t<Bits>, true>(st, quant_label(Bits)); })
        ->UseManualTime()
        ->Iterations(cfg().steps)
        ->Unit(benchmark::kMillisecond);
}

void register_all() {
    add_quant<4>();
    add_quant<2>();
    benchmark::RegisterBenchmark("BM_resnet20_kd_fp_step",
                                 [](benchmark::State& st) {
                                     bm_step<teacher_t, false>(st, "BM_resnet20_kd_fp_step", fp_label);
                                 })
        ->UseManualTime()
        ->Iterations(cfg().steps)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BM_sqakd_step_parts/fp",
                                 [](benchmark::State& st) { bm_parts<teacher_t, false>(st, fp_label); })
        ->UseManualTime()
        ->Iterations(cfg().steps)
        ->Unit(benchmark::kMillisecond);
}

}  // namespace

int main(int argc, char** argv) {
    config& c = cfg();
    const char* tool = "sqakd_bench_sqakd";
    auto ours = [&](const char* a) {
        return sqakd_bench::take_flag(tool, a, "--steps", c.steps) ||
               sqakd_bench::take_flag(tool, a, "--warmup", c.warmup) ||
               sqakd_bench::take_flag(tool, a, "--step_log", c.step_log);
    };
    return sqakd_bench::run(argc, argv, ours, [&] {
        c.steps = std::max(c.steps, 1);
        sqakd_bench::context("sqakd_threads", std::to_string(num_threads()));
        sqakd_bench::context("sqakd_steps", std::to_string(c.steps));
        sqakd_bench::context("sqakd_warmup", std::to_string(c.warmup));
        register_all();
    });
}

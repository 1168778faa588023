// sqakd_bench_train - training-step speed of ResNet-20 (batch 256, 1x28x28) and where the time goes.
//
//   BM_resnet20_train_step   one full step, as train::fit does it: nn::zero_grad, forward in train
//                            mode, distill::cross_entropy, backward(need_dx = false), Adam step
//                            (lr 1e-3, L2 weight decay 1e-4) over all parameters.
//   layer/<name>             forward and backward of every distinct layer shape of that step, plus
//                            the Adam step, the zero_grad and the loss; each reports how often it
//                            occurs per step, so the per-layer times add up to an estimate of the
//                            whole step.
//
// The engine is multithreaded (OpenMP), so every benchmark times itself with a steady clock
// (UseManualTime: wall time of the timed region only, no setup) and reports the *median* of its
// per-iteration times as counters (train step: median_ms, p10_ms, p90_ms, images_per_second_median;
// layers: fwd_ms, bwd_ms, per_step_ms = count x (fwd + bwd)). Google Benchmark's own
// items_per_second is the mean; prefer the median counters.
//
// Own flags (removed before Google Benchmark sees the rest):
//   --steps=N         timed training steps (default 25)
//   --warmup=N        untimed training steps before them (default 5)
//   --layer_iters=N   timed iterations per layer benchmark (default 20; 3 untimed before them)
//   --step_log=FILE   append "resnet20_train_step <ms>" per timed step (merging alternated runs)
//
// Run with the thread count fixed, e.g. OMP_NUM_THREADS=2 (scripts/bench_train_step.sh does).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "sqakd/core/parallel.hpp"
#include "sqakd/distill/cross_entropy.hpp"
#include "sqakd/nn/layer.hpp"
#include "sqakd/nn/models/resnet.hpp"
#include "sqakd/optim/adam.hpp"
#include "sqakd/optim/param_group.hpp"

namespace {

#include "bench_common.hpp"

using namespace sqakd;
using clock_type = std::chrono::steady_clock;

constexpr std::size_t batch = 256;
constexpr std::size_t image = 28;

struct config {
    int steps = 25;
    int warmup = 5;
    int layer_iters = 20;
    int layer_warmup = 3;
    std::string step_log;
};

config& cfg() {
    static config c;
    return c;
}

double seconds_since(clock_type::time_point t0) {
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}

/// Quantile q in [0, 1] by linear interpolation between order statistics (numpy's default);
/// q = 0.5 is the median.
double quantile(std::vector<double> v, double q) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const double pos = q * static_cast<double>(v.size() - 1);
    const std::size_t lo = static_cast<std::size_t>(pos);
    const std::size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

tensor<float> random_tensor(const shape_t& s, rng& g, double std = 1.0) {
    tensor<float> t(s);
    nn::fill_normal(t, g, std);
    return t;
}

std::vector<std::int32_t> random_labels(std::size_t n, rng& g) {
    std::vector<std::int32_t> y(n);
    for (auto& v : y) v = static_cast<std::int32_t>(g.next() % 10);
    return y;
}

// --------------------------------------------------------------------------------------------
// The whole step

void bm_resnet20_train_step(benchmark::State& state) {
    nn::models::resnet20<1, 10> net;
    rng g(20);
    net.init(g);
    const tensor<float> x = random_tensor({batch, 1, image, image}, g);
    const std::vector<std::int32_t> y = random_labels(batch, g);
    optim::adam<> opt({{optim::collect_params(net), 1e-3, 1e-4}});
    distill::cross_entropy ce;
    tensor<float> dlogits;
    double loss = 0;

    auto step = [&] {
        nn::zero_grad(net);
        const auto& logits = net.forward(x, nn::mode::train);
        loss = ce(logits, y, dlogits);
        net.backward(dlogits, /*need_dx=*/false);
        opt.step();
    };

    for (int i = 0; i < cfg().warmup; ++i) step();
    const double loss_after_warmup = loss;
    std::vector<double> ms;
    ms.reserve(static_cast<std::size_t>(cfg().steps));
    for (auto _ : state) {
        const auto t0 = clock_type::now();
        step();
        const double s = seconds_since(t0);
        state.SetIterationTime(s);
        ms.push_back(1e3 * s);
    }
    benchmark::DoNotOptimize(loss);

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
    state.counters["loss_first"] = loss_after_warmup;
    state.counters["loss_last"] = loss;
    state.SetLabel("resnet20<1,10>, batch 256x1x28x28, CE, Adam lr 1e-3 L2 1e-4");

    if (!cfg().step_log.empty()) {
        std::ofstream log(cfg().step_log, std::ios::app);
        for (double v : ms) log << "resnet20_train_step " << v << '\n';
        if (!log) state.SkipWithError(("cannot write the step log " + cfg().step_log).c_str());
    }
}

// --------------------------------------------------------------------------------------------
// Per-layer profile

/// Reports fwd/bwd medians and the layer's share of one training step (count occurrences).
void report_layer(benchmark::State& state, const std::vector<double>& fwd, const std::vector<double>& bwd,
                  int count) {
    const double f = quantile(fwd, 0.5), b = quantile(bwd, 0.5);
    state.counters["fwd_ms"] = f;
    state.counters["bwd_ms"] = b;
    state.counters["count"] = count;
    state.counters["per_step_ms"] = count * (f + b);
}

/// Forward (train mode) and backward of one layer on a fixed [batch, ...] input. Every
/// iteration runs a forward and then a backward (backward reads what forward saved); both are
/// timed separately. `need_dx` as in the real step (false only for the stem conv).
template <class Layer>
void bm_layer(benchmark::State& state, shape_t in_shape, bool need_dx, int count) {
    Layer layer;
    rng g(7);
    layer.init(g);
    const tensor<float> x = random_tensor(in_shape, g);
    const auto& y0 = layer.forward(x, nn::mode::train);
    const tensor<float> dy = random_tensor(shape_t(y0.shape().begin(), y0.shape().end()), g, 1e-2);

    for (int i = 0; i < cfg().layer_warmup; ++i) {
        layer.forward(x, nn::mode::train);
        layer.backward(dy, need_dx);
    }
    std::vector<double> fwd, bwd;
    for (auto _ : state) {
        const auto t0 = clock_type::now();
        const auto& y = layer.forward(x, nn::mode::train);
        benchmark::DoNotOptimize(y.data());
        const double tf = seconds_since(t0);
        const auto t1 = clock_type::now();
        const auto& dx = layer.backward(dy, need_dx);
        benchmark::DoNotOptimize(dx.data());
        const double tb = seconds_since(t1);
        state.SetIterationTime(tf + tb);
        fwd.push_back(1e3 * tf);
        bwd.push_back(1e3 * tb);
        benchmark::ClobberMemory();
    }
    report_layer(state, fwd, bwd, count);
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(in_shape[0]));
    state.SetLabel(shape_str(in_shape) + (need_dx ? "" : ", need_dx=false") + ", x" + std::to_string(count) +
                   " per step");
}

/// The parts of a step that are not layers: one of `what` = "adam", "zero_grad", "cross_entropy".
void bm_step_part(benchmark::State& state, std::string what) {
    nn::models::resnet20<1, 10> net;
    rng g(20);
    net.init(g);
    const tensor<float> x = random_tensor({batch, 1, image, image}, g);
    const std::vector<std::int32_t> y = random_labels(batch, g);
    optim::adam<> opt({{optim::collect_params(net), 1e-3, 1e-4}});
    distill::cross_entropy ce;
    tensor<float> dlogits;
    // Real gradients, so Adam sees realistic values.
    const tensor<float> logits = net.forward(x, nn::mode::train);
    ce(logits, y, dlogits);
    net.backward(dlogits, false);

    auto run = [&] {
        if (what == "adam")
            opt.step();
        else if (what == "zero_grad")
            nn::zero_grad(net);
        else
            benchmark::DoNotOptimize(ce(logits, y, dlogits));
    };
    for (int i = 0; i < cfg().layer_warmup; ++i) run();
    std::vector<double> t;
    for (auto _ : state) {
        const auto t0 = clock_type::now();
        run();
        const double s = seconds_since(t0);
        state.SetIterationTime(s);
        t.push_back(1e3 * s);
        benchmark::ClobberMemory();
    }
    // Adam and zero_grad are "backward-side" work; the loss is forward + gradient in one call.
    report_layer(state, what == "cross_entropy" ? t : std::vector<double>{0.0},
                 what == "cross_entropy" ? std::vector<double>{0.0} : t, 1);
    state.counters["params"] = static_cast<double>(nn::num_params(net));
    state.SetLabel(what == "cross_entropy" ? "logits [256, 10], loss + gradient"
                                           : std::to_string(nn::num_params(net)) + " parameters");
}

template <class Layer>
void add_layer(const std::string& name, shape_t in_shape, bool need_dx, int count) {
    benchmark::RegisterBenchmark(("layer/" + name).c_str(),
                                 [=](benchmark::State& st) { bm_layer<Layer>(st, in_shape, need_dx, count); })
        ->UseManualTime()
        ->Iterations(cfg().layer_iters)
        ->Unit(benchmark::kMillisecond);
}

void register_all() {
    benchmark::RegisterBenchmark("BM_resnet20_train_step", bm_resnet20_train_step)
        ->UseManualTime()
        ->Iterations(cfg().steps)
        ->Unit(benchmark::kMillisecond);

    using namespace nn;
    constexpr std::size_t B = batch;
    // Occurrences per ResNet-20 step (stages at 28/14/7 on 28x28 inputs):
    //   convs: stem 1; 16->16 6; 16->32 s2 1; 32->32 5; 32->64 s2 1; 64->64 5
    //   BN: 16ch@28 7 (stem + 6); 32ch@14 6; 64ch@7 6; BN1d 1
    //   ReLU: 16@28 4 (stem + 3 branch ReLUs); 32@14 3; 64@7 3
    //   residual add (+ its ReLU): 3 per stage; option-A shortcut: 1 per downsampling block.
    add_layer<conv2d<1, 16, 3, 1, 1>>("conv3x3_1_16_28x28_stem", {B, 1, 28, 28}, false, 1);
    add_layer<conv2d<16, 16, 3, 1, 1>>("conv3x3_16_16_28x28", {B, 16, 28, 28}, true, 6);
    add_layer<conv2d<16, 32, 3, 2, 1>>("conv3x3_16_32_s2_28to14", {B, 16, 28, 28}, true, 1);
    add_layer<conv2d<32, 32, 3, 1, 1>>("conv3x3_32_32_14x14", {B, 32, 14, 14}, true, 5);
    add_layer<conv2d<32, 64, 3, 2, 1>>("conv3x3_32_64_s2_14to7", {B, 32, 14, 14}, true, 1);
    add_layer<conv2d<64, 64, 3, 1, 1>>("conv3x3_64_64_7x7", {B, 64, 7, 7}, true, 5);
    add_layer<batch_norm<16>>("bn_16_28x28", {B, 16, 28, 28}, true, 7);
    add_layer<batch_norm<32>>("bn_32_14x14", {B, 32, 14, 14}, true, 6);
    add_layer<batch_norm<64>>("bn_64_7x7", {B, 64, 7, 7}, true, 6);
    add_layer<relu<>>("relu_16_28x28", {B, 16, 28, 28}, true, 4);
    add_layer<relu<>>("relu_32_14x14", {B, 32, 14, 14}, true, 3);
    add_layer<relu<>>("relu_64_7x7", {B, 64, 7, 7}, true, 3);
    add_layer<option_a<16, 32, 2>>("shortcut_a_16_32_28to14", {B, 16, 28, 28}, true, 1);
    add_layer<option_a<32, 64, 2>>("shortcut_a_32_64_14to7", {B, 32, 14, 14}, true, 1);
    // residual<identity, identity>: y = relu(x + x); its own work is exactly the block's add + ReLU
    // forward and the ReLU mask + gradient sum backward.
    add_layer<residual<identity<>, identity<>>>("residual_add_16_28x28", {B, 16, 28, 28}, true, 3);
    add_layer<residual<identity<>, identity<>>>("residual_add_32_14x14", {B, 32, 14, 14}, true, 3);
    add_layer<residual<identity<>, identity<>>>("residual_add_64_7x7", {B, 64, 7, 7}, true, 3);
    add_layer<global_avg_pool<>>("global_avg_pool_64_7x7", {B, 64, 7, 7}, true, 1);
    add_layer<batch_norm<64>>("bn1d_64", {B, 64}, true, 1);
    add_layer<linear<64, 10>>("fc_64_10", {B, 64}, true, 1);
    for (const char* part : {"cross_entropy", "adam", "zero_grad"})
        benchmark::RegisterBenchmark((std::string("layer/") + part).c_str(),
                                     [p = std::string(part)](benchmark::State& st) { bm_step_part(st, p); })
            ->UseManualTime()
            ->Iterations(cfg().layer_iters)
            ->Unit(benchmark::kMillisecond);
}

}  // namespace

int main(int argc, char** argv) {
    config& c = cfg();
    const char* tool = "sqakd_bench_train";
    auto ours = [&](const char* a) {
        return sqakd_bench::take_flag(tool, a, "--steps", c.steps) ||
               sqakd_bench::take_flag(tool, a, "--warmup", c.warmup) ||
               sqakd_bench::take_flag(tool, a, "--layer_iters", c.layer_iters) ||
               sqakd_bench::take_flag(tool, a, "--step_log", c.step_log);
    };
    return sqakd_bench::run(argc, argv, ours, [&] {
        c.steps = std::max(c.steps, 1);
        c.layer_iters = std::max(c.layer_iters, 1);
        sqakd_bench::context("sqakd_threads", std::to_string(num_threads()));
        sqakd_bench::context("sqakd_steps", std::to_string(c.steps));
        sqakd_bench::context("sqakd_warmup", std::to_string(c.warmup));
        sqakd_bench::context("sqakd_layer_iters", std::to_string(c.layer_iters));
        register_all();
    });
}

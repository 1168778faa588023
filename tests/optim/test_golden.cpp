// sgd, adam/adamw, the schedules and cross-entropy against PyTorch 1.13 (golden files written by
// scripts/golden/make_golden_optim.py into tests/data/golden_optim/).
//
// Tolerances, and why:
//   parameters (float32, magnitudes 0.5 .. 2.2, kept away from zero by the script):
//       |ours - torch| <= 1e-6 * |torch| + 1e-7
//     PyTorch evaluates the same float32 formulas; the only differences are the rounding of
//     intermediate products (FMA contraction, vectorised vs scalar tails): a few float ulps
//     (1 ulp = 6e-8 .. 1.2e-7 relative) after 5 steps. A wrong formula (missing bias correction,
//     wrong momentum rule, L2 vs decoupled decay, wrong group lr) is off by 1e-4 or much more.
//   optimiser state (momentum buffers, exp_avg, exp_avg_sq):
//       |ours - torch| <= 1e-6 * |torch| + 1e-6 * max|torch over the tensor|
//     the second term covers elements that are small by cancellation (sums of gradients of
//     both signs), whose error is a few ulps of the tensor's scale, not of themselves.
//   schedules (double): 1e-12 relative (PyTorch's recursive forms vs our closed forms agree to
//     a few double ulps).
//   cross-entropy: loss (double) 1e-12 relative; gradient as float 1e-6 relative + 1e-12; as
//     double 1e-12 relative + 1e-15; log_softmax / softmax (double) 1e-11 relative.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "golden.hpp"
#include "sqakd/distill/cross_entropy.hpp"
#include "sqakd/optim.hpp"

using namespace sqakd;

namespace {

constexpr int steps = 5;
constexpr double param_rtol = 1e-6, param_atol = 1e-7;
constexpr double state_rtol = 1e-6;

const char* const names[] = {"p0", "p1", "p2"};

/// The three parameters of inputs.txt with gradient buffers, and the groups of a case file.
struct problem {
    golden::file inputs{"inputs.txt"};
    std::vector<tensor<float>> values, grads;

    problem() {
        for (const char* n : names) {
            values.push_back(inputs.tensor<float>(std::string("param.") + n));
            grads.push_back(values.back());
            grads.back().fill(0.f);
        }
    }

    std::vector<optim::param_group<float>> groups(const golden::file& c) {
        std::vector<optim::param_group<float>> gs;
        const int ng = static_cast<int>(c.scalar("config.groups"));
        for (int g = 0; g < ng; ++g) {
            const std::string pre = "config.group" + std::to_string(g);
            optim::param_group<float> grp;
            for (double idx : c.values(pre + ".params")) {
                const auto i = static_cast<std::size_t>(idx);
                grp.params.push_back({names[i], &values[i], &grads[i], nn::param_kind::weight});
            }
            grp.lr = c.values(pre + ".lr")[0];
            grp.weight_decay = c.scalar(pre + ".weight_decay");
            gs.push_back(grp);
        }
        return gs;
    }

    /// Sets the gradients of step k (1-based) and the lr of every group, then steps.
    template <class Opt>
    void step(Opt& opt, const golden::file& c, int k) {
        for (std::size_t i = 0; i < 3; ++i)
            grads[i] = inputs.tensor<float>("grad" + std::to_string(k) + "." + names[i]);
        for (std::size_t g = 0; g < opt.num_groups(); ++g)
            opt.set_lr(g, c.values("config.group" + std::to_string(g) + ".lr")[static_cast<std::size_t>(k - 1)]);
        opt.step();
    }
};

double max_abs(const golden::entry& e) {
    double m = 0;
    for (double v : e.values) m = std::max(m, std::fabs(v));
    return m;
}

template <class Opt>
void run_and_compare(problem& pb, Opt& opt, const golden::file& c, const std::string& case_name) {
    for (int k = 1; k <= steps; ++k) {
        pb.step(opt, c, k);
        for (std::size_t i = 0; i < 3; ++i) {
            const std::string key = "step" + std::to_string(k) + "." + names[i];
            golden::check_close(case_name + " " + key, pb.values[i], c.at(key), param_rtol,
                                param_atol);
        }
    }
    CHECK(opt.step_count() == static_cast<std::uint64_t>(steps));
    // Every state tensor PyTorch has, under the same name, and nothing else.
    std::set<std::string> seen;
    opt.for_each_state([&](const std::string& name, tensor<float>& st) {
        seen.insert(name);
        const std::string key = "state." + name;
        REQUIRE_MESSAGE(c.has(key), case_name << ": unexpected state " << name);
        const auto& e = c.at(key);
        golden::check_close(case_name + " " + key, st, e, state_rtol, state_rtol * max_abs(e));
    });
    std::size_t expected_states = 0;
    for (const char* n : names)
        for (const char* s : {".momentum_buffer", ".exp_avg", ".exp_avg_sq"})
            if (c.has(std::string("state.") + n + s)) ++expected_states;
    CHECK(seen.size() == expected_states);
}

void sgd_case(const std::string& case_name) {
    CAPTURE(case_name);
    problem pb;
    golden::file c(case_name + ".txt");
    optim::sgd_options o;
    o.momentum = c.scalar("config.momentum");
    o.dampening = c.scalar("config.dampening");
    o.nesterov = c.scalar("config.nesterov") != 0;
    optim::sgd<float> opt(pb.groups(c), o);
    run_and_compare(pb, opt, c, case_name);
}

void adam_case(const std::string& case_name) {
    CAPTURE(case_name);
    problem pb;
    golden::file c(case_name + ".txt");
    optim::adam_options o;
    o.beta1 = c.scalar("config.beta1");
    o.beta2 = c.scalar("config.beta2");
    o.eps = c.scalar("config.eps");
    o.decoupled_weight_decay = c.scalar("config.decoupled") != 0;
    optim::adam<float> opt(pb.groups(c), o);
    run_and_compare(pb, opt, c, case_name);
}

}  // namespace

TEST_CASE("golden: sgd momentum 0.9, weight decay 1e-4 (SQAKD teacher recipe)") { sgd_case("sgd_momentum"); }
TEST_CASE("golden: sgd Nesterov momentum") { sgd_case("sgd_nesterov"); }
TEST_CASE("golden: sgd momentum with dampening (first step: buffer = gradient)") { sgd_case("sgd_dampening"); }
TEST_CASE("golden: sgd without momentum, weight decay 1e-2") { sgd_case("sgd_plain"); }
TEST_CASE("golden: adam with L2 weight decay 1e-4 (torch.optim.Adam)") { adam_case("adam_l2"); }
TEST_CASE("golden: adamw, decoupled weight decay 1e-2 (torch.optim.AdamW)") { adam_case("adamw"); }
TEST_CASE("golden: adam with two parameter groups, per-group lr / weight decay, lr changed between steps") {
    adam_case("adam_groups");
}

TEST_CASE("golden: make_adamw equals torch.optim.AdamW") {
    problem pb;
    golden::file c("adamw.txt");
    auto opt = optim::make_adamw<float>(pb.groups(c));
    CHECK(opt.options().decoupled_weight_decay);
    run_and_compare(pb, opt, c, "make_adamw");
}

TEST_CASE("golden: schedules equal PyTorch CosineAnnealingLR, StepLR, SequentialLR(LinearLR, cosine)") {
    golden::file s("schedules.txt");
    constexpr double rtol = 1e-12, atol = 1e-15;
    {
        optim::cosine_schedule cs{s.scalar("cosine.lr0"), static_cast<std::size_t>(s.scalar("cosine.epochs"))};
        const auto& want = s.values("cosine.lr");
        for (std::size_t e = 0; e < want.size(); ++e)
            golden::check_close("cosine epoch " + std::to_string(e), cs(e), want[e], rtol, atol);
    }
    {
        optim::cosine_schedule cs{s.scalar("cosine_eta.lr0"), static_cast<std::size_t>(s.scalar("cosine_eta.epochs")),
                                  s.scalar("cosine_eta.eta_min")};
        const auto& want = s.values("cosine_eta.lr");
        for (std::size_t e = 0; e < want.size(); ++e)
            golden::check_close("cosine eta_min epoch " + std::to_string(e), cs(e), want[e], rtol, atol);
    }
    {
        optim::step_schedule ss{s.scalar("step.lr0"), static_cast<std::size_t>(s.scalar("step.step_size")),
                                s.scalar("step.gamma")};
        const auto& want = s.values("step.lr");
        for (std::size_t e = 0; e < want.size(); ++e)
            golden::check_close("step epoch " + std::to_string(e), ss(e), want[e], rtol, atol);
    }
    {
        optim::warmup ws{static_cast<std::size_t>(s.scalar("warmup.warmup")),
                         optim::cosine_schedule{s.scalar("warmup.lr0"),
                                                static_cast<std::size_t>(s.scalar("warmup.cosine_epochs"))},
                         s.scalar("warmup.start_factor")};
        const auto& want = s.values("warmup.lr");
        for (std::size_t e = 0; e < want.size(); ++e)
            golden::check_close("warmup epoch " + std::to_string(e), ws(e), want[e], rtol, atol);
    }
}

TEST_CASE_TEMPLATE("golden: cross-entropy loss and gradient, including logits of magnitude 1000", T, float,
                   double) {
    golden::file c("cross_entropy.txt");
    const tensor<T> logits = c.tensor<T>("logits");
    std::vector<std::int32_t> labels;
    for (double v : c.values("labels")) labels.push_back(static_cast<std::int32_t>(v));
    distill::cross_entropy ce;
    tensor<T> grad;
    const double loss = ce(logits, labels, grad);
    // The logits are float32 values in both cases, and the loss is computed in double.
    golden::check_close("loss", loss, c.scalar("loss"), 1e-12, 0.0);
    golden::check_close("value()", ce.value(logits, labels), c.scalar("loss"), 1e-12, 0.0);
    if constexpr (std::is_same_v<T, float>)
        golden::check_close("grad (float)", grad, c.at("grad"), 1e-6, 1e-12);
    else
        golden::check_close("grad (double)", grad, c.at("grad"), 1e-12, 1e-15);
    CHECK(grad.shape()[0] == 5);
    CHECK(grad.shape()[1] == 4);
}

TEST_CASE("golden: log_softmax_rows and softmax_rows (temperature 4) in double") {
    golden::file c("cross_entropy.txt");
    const tensor<double> logits = c.tensor<double>("logits");
    tensor<double> out;
    distill::log_softmax_rows(logits, out);
    golden::check_close("log_softmax", out, c.at("log_softmax"), 1e-11, 1e-15);
    distill::softmax_rows(logits, out, 4.0);
    golden::check_close("softmax T=4", out, c.at("softmax_t4"), 1e-11, 0.0);
}

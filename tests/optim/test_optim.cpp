// Optimiser behaviour beyond the golden values: parameter collection, checkpoint/resume,
// validation, lazily sized parameters, schedules' edge cases, a small training run, step speed.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "sqakd/core/rng.hpp"
#include "sqakd/distill/cross_entropy.hpp"
#include "sqakd/nn.hpp"
#include "sqakd/optim.hpp"

using namespace sqakd;

namespace {

/// A model with a quantizer parameter, written against the for_each_param contract only
/// (no quantized layers are needed to test how optimisers split parameters).
struct fake_quant_model {
    using scalar_type = float;
    nn::linear<3, 2> fc;
    tensor<float> clip{shape_t{1}}, dclip{shape_t{1}};
    tensor<float> step{shape_t{2}}, dstep{shape_t{2}};

    fake_quant_model() {
        for (auto* t : {&clip, &dclip, &step, &dstep}) t->fill(0.f);
    }

    template <class F>
    void for_each_param(F&& f, const std::string& prefix = "") {
        f(prefix + "act.clip", clip, dclip, nn::param_kind::quant);
        fc.for_each_param(f, prefix + "fc.");
        f(prefix + "fc.wq.step", step, dstep, nn::param_kind::quant);
    }
};

/// Parameters and gradients owned by the test, deterministic content.
struct toy {
    std::vector<tensor<float>> v, g;
    explicit toy(std::uint64_t seed) {
        rng r(seed);
        for (std::size_t n : {5u, 3u, 8u}) {
            v.emplace_back(shape_t{n});
            g.emplace_back(shape_t{n});
            for (auto& x : v.back()) x = static_cast<float>(r.normal());
            g.back().fill(0.f);
        }
    }
    std::vector<optim::param_group<float>> groups() {
        std::vector<optim::param_group<float>> gs(2);
        gs[0] = {{{"a", &v[0], &g[0], nn::param_kind::weight}, {"b", &v[1], &g[1], nn::param_kind::bias}}, 0.01, 1e-3};
        gs[1] = {{{"q", &v[2], &g[2], nn::param_kind::quant}}, 0.001};
        return gs;
    }
    void set_grads(int k) {
        rng r(1000 + static_cast<std::uint64_t>(k));
        for (auto& t : g)
            for (auto& x : t) x = static_cast<float>(r.normal());
    }
};

/// Copies every state tensor of `opt` by name.
template <class Opt>
std::map<std::string, tensor<float>> save_state(Opt& opt) {
    std::map<std::string, tensor<float>> s;
    opt.for_each_state([&](const std::string& name, tensor<float>& t) { s[name] = t; });
    return s;
}

template <class Opt>
void load_state(Opt& opt, const std::map<std::string, tensor<float>>& s) {
    std::size_t n = 0;
    opt.for_each_state([&](const std::string& name, tensor<float>& t) {
        REQUIRE(s.count(name) == 1);
        t = s.at(name);
        ++n;
    });
    REQUIRE(n == s.size());
}

/// 5 steps straight vs 2 steps, checkpoint, a fresh optimiser over copied parameters, resume,
/// 3 steps: the parameters must agree bit for bit.
template <class Make>
void check_resume(Make make) {
    toy straight(5), resumed(5);
    auto a = make(straight.groups());
    for (int k = 0; k < 5; ++k) {
        straight.set_grads(k);
        a.step();
    }
    auto b = make(resumed.groups());
    for (int k = 0; k < 2; ++k) {
        resumed.set_grads(k);
        b.step();
    }
    const auto saved = save_state(b);
    const std::uint64_t saved_steps = b.step_count();
    toy restarted(0);
    restarted.v = resumed.v;  // the checkpoint's parameters
    auto c = make(restarted.groups());
    load_state(c, saved);
    c.step_count() = saved_steps;
    for (int k = 2; k < 5; ++k) {
        restarted.set_grads(k);
        c.step();
    }
    for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t j = 0; j < straight.v[i].size(); ++j)
            CHECK(restarted.v[i].data()[j] == straight.v[i].data()[j]);
}

}  // namespace

TEST_CASE("collect_params: names, kinds and pointers into the model; predicates split quant params") {
    fake_quant_model m;
    const auto all = optim::collect_params(m);
    REQUIRE(all.size() == 4);
    CHECK(all[0].name == "act.clip");
    CHECK(all[1].name == "fc.weight");
    CHECK(all[2].name == "fc.bias");
    CHECK(all[3].name == "fc.wq.step");
    CHECK(all[0].value == &m.clip);
    CHECK(all[0].grad == &m.dclip);
    CHECK(all[1].value == &m.fc.weight());
    CHECK(all[1].grad == &m.fc.weight_grad());
    CHECK(all[2].kind == nn::param_kind::bias);

    const auto model = optim::collect_params(m, optim::model_params{});
    const auto quant = optim::collect_params(m, optim::quant_params{});
    REQUIRE(model.size() == 2);
    REQUIRE(quant.size() == 2);
    CHECK(model[0].name == "fc.weight");
    CHECK(quant[0].name == "act.clip");
    CHECK(quant[1].name == "fc.wq.step");

    const auto weights = optim::collect_params(
        m, [](const std::string& name, nn::param_kind) { return name.find("weight") != std::string::npos; },
        "student.");
    REQUIRE(weights.size() == 1);
    CHECK(weights[0].name == "student.fc.weight");
}

TEST_CASE("collect_params on ResNet-20: every parameter once, in the model's order") {
    nn::models::resnet20<1, 10> net;
    const auto ps = optim::collect_params(net);
    std::size_t n = 0;
    for (const auto& p : ps) n += p.value->size();
    CHECK(n == nn::num_params(net));
    CHECK(ps.front().name == "0.weight");
    CHECK(ps.back().name == "14.bias");
    CHECK(optim::collect_params(net, optim::quant_params{}).empty());
}

TEST_CASE("step() uses the current gradients and leaves them untouched; zero_grad is the model's job") {
    fake_quant_model m;
    rng g(1);
    m.fc.init(g);
    m.fc.weight_grad().fill(0.5f);
    const float w0 = m.fc.weight()(0, 0);
    optim::sgd<> opt({{optim::collect_params(m, optim::model_params{}), 0.1}});
    opt.step();
    CHECK(m.fc.weight()(0, 0) == doctest::Approx(w0 - 0.05f));
    CHECK(m.fc.weight_grad()(0, 0) == 0.5f);
    nn::zero_grad(m.fc);
    opt.step();  // zero gradient, no decay, no momentum: no change
    CHECK(m.fc.weight()(0, 0) == doctest::Approx(w0 - 0.05f));
}

TEST_CASE("SQAKD recipe: two adam optimisers, model params lr 1e-3 with L2, quant params lr 1e-5") {
    fake_quant_model m;
    optim::adam<> model_opt({{optim::collect_params(m, optim::model_params{}), 1e-3, 1e-4}});
    optim::adam<> quant_opt({{optim::collect_params(m, optim::quant_params{}), 1e-5}});
    m.clip.fill(6.f);
    m.dclip.fill(1.f);
    m.fc.weight_grad().fill(1.f);
    model_opt.step();
    quant_opt.step();
    // First Adam step moves every parameter by lr * g / (|g| + eps') (bias-corrected).
    CHECK(m.clip(0) == doctest::Approx(6.f - 1e-5f).epsilon(1e-7));
    CHECK(m.fc.weight()(0, 0) == doctest::Approx(-1e-3).epsilon(1e-4));
    CHECK(model_opt.num_scalars() == 8);
    CHECK(quant_opt.num_scalars() == 3);
}

TEST_CASE("checkpoint: for_each_state + step_count resume sgd and adam bit-exactly") {
    SUBCASE("sgd momentum") { check_resume([](auto gs) { return optim::sgd<>(gs, {0.9}); }); }
    SUBCASE("sgd nesterov") {
        optim::sgd_options o;
        o.momentum = 0.9;
        o.nesterov = true;
        check_resume([o](auto gs) { return optim::sgd<>(gs, o); });
    }
    SUBCASE("adam") { check_resume([](auto gs) { return optim::adam<>(gs); }); }
    SUBCASE("adamw") { check_resume([](auto gs) { return optim::make_adamw<float>(gs); }); }
}

TEST_CASE("checkpoint: state names are stable and exist before the first step") {
    toy t(1);
    optim::adam<> a(t.groups());
    std::vector<std::string> names;
    a.for_each_state([&](const std::string& n, tensor<float>& s) {
        names.push_back(n);
        CHECK(s.size() > 0);
    });
    CHECK(names == std::vector<std::string>{"a.exp_avg", "a.exp_avg_sq", "b.exp_avg", "b.exp_avg_sq",
                                            "q.exp_avg", "q.exp_avg_sq"});
    optim::sgd<> s(t.groups(), {0.9});
    names.clear();
    s.for_each_state([&](const std::string& n, tensor<float>&) { names.push_back(n); });
    CHECK(names == std::vector<std::string>{"a.momentum_buffer", "b.momentum_buffer", "q.momentum_buffer"});
    optim::sgd<> plain(t.groups());
    std::size_t count = 0;
    plain.for_each_state([&](const std::string&, tensor<float>&) { ++count; });
    CHECK(count == 0);
}

TEST_CASE("lr and weight decay per group; invalid hyper-parameters are rejected") {
    toy t(2);
    optim::adam<> a(t.groups());
    CHECK(a.num_groups() == 2);
    CHECK(a.lr(0) == 0.01);
    CHECK(a.lr(1) == 0.001);
    CHECK(a.weight_decay(0) == 1e-3);
    a.set_lr(1, 0.5);
    CHECK(a.lr(1) == 0.5);
    CHECK(a.groups()[1].lr == 0.5);
    CHECK_THROWS_WITH_AS(a.set_lr(2, 0.1), doctest::Contains("group 2"), error::invalid_value);
    CHECK_THROWS_AS(a.set_lr(0, -1.0), error::invalid_value);
    CHECK_THROWS_AS(a.set_lr(0, std::numeric_limits<double>::quiet_NaN()), error::invalid_value);

    optim::adam_options bad;
    bad.beta1 = 1.0;
    CHECK_THROWS_AS(optim::adam<>(t.groups(), bad), error::invalid_value);
    optim::sgd_options nes;
    nes.nesterov = true;
    CHECK_THROWS_WITH_AS(optim::sgd<>(t.groups(), nes), doctest::Contains("Nesterov"), error::invalid_value);
    nes.momentum = 0.9;
    nes.dampening = 0.1;
    CHECK_THROWS_AS(optim::sgd<>(t.groups(), nes), error::invalid_value);
    CHECK_THROWS_AS(optim::sgd<>(t.groups(), {-0.5}), error::invalid_value);

    auto dup = t.groups();
    dup[1].params.push_back(dup[0].params[0]);
    CHECK_THROWS_WITH_AS(optim::sgd<>(dup, {}), doctest::Contains("'a'"), error::invalid_value);
    auto same_name = t.groups();
    same_name[1].params[0].name = "a";
    CHECK_THROWS_WITH_AS(optim::adam<>{same_name}, doctest::Contains("twice"), error::invalid_value);
    auto neg_wd = t.groups();
    neg_wd[0].weight_decay = -1;
    CHECK_THROWS_AS(optim::adam<>{neg_wd}, error::invalid_value);

    tensor<float> v(shape_t{3}), g(shape_t{4});
    v.fill(0.f);
    g.fill(0.f);
    CHECK_THROWS_AS(optim::sgd<>({{{{"w", &v, &g, nn::param_kind::weight}}, 0.1}}), error::shape_mismatch);
}

TEST_CASE("a parameter sized after the optimiser was built works; a change after a step is an error") {
    tensor<float> v, g;
    optim::adam<> a({{{{"late", &v, &g, nn::param_kind::quant}}, 0.1}});
    v = tensor<float>(shape_t{3});
    g = tensor<float>(shape_t{3});
    v.fill(1.f);
    g.fill(1.f);
    a.step();
    CHECK(v(0) == doctest::Approx(0.9f));
    v = tensor<float>(shape_t{4});
    g = tensor<float>(shape_t{4});
    v.fill(1.f);
    g.fill(1.f);
    CHECK_THROWS_WITH_AS(a.step(), doctest::Contains("late"), error::shape_mismatch);
}

TEST_CASE("all_finite / first_non_finite name the parameter with a NaN or Inf gradient") {
    toy t(3);
    const auto gs = t.groups();
    CHECK(optim::all_finite(gs));
    CHECK(optim::first_non_finite(gs).empty());
    t.g[2](5) = std::numeric_limits<float>::infinity();
    CHECK_FALSE(optim::all_finite(gs));
    CHECK(optim::first_non_finite(gs) == "q");
    t.g[2](5) = 0.f;
    t.g[1](0) = std::numeric_limits<float>::quiet_NaN();
    CHECK(optim::first_non_finite(gs) == "b");
}

TEST_CASE("schedules: endpoints, warm-up shape, validation") {
    optim::cosine_schedule c{0.1, 10};
    CHECK(c(0) == 0.1);
    CHECK(c(10) == doctest::Approx(0.0));
    CHECK(c(5) == doctest::Approx(0.05));
    CHECK(c(9) > 0.0);
    optim::step_schedule s{1.0, 2, 0.5};
    CHECK(s(0) == 1.0);
    CHECK(s(1) == 1.0);
    CHECK(s(2) == 0.5);
    CHECK(s(5) == 0.25);
    optim::warmup w{4, optim::constant_schedule{0.2}, 0.5};
    CHECK(w(0) == doctest::Approx(0.1));
    CHECK(w(2) == doctest::Approx(0.15));
    CHECK(w(4) == 0.2);
    optim::warmup<optim::step_schedule> nested{2, s};
    CHECK(nested(0) == doctest::Approx(1.0 / 3.0));
    CHECK(nested(2) == 1.0);
    CHECK(nested(4) == 0.5);
    CHECK_THROWS_AS(optim::cosine_schedule(0.1, 0), error::invalid_value);
    CHECK_THROWS_AS(optim::cosine_schedule(-0.1, 5), error::invalid_value);
    CHECK_THROWS_AS(optim::step_schedule(0.1, 0, 0.1), error::invalid_value);
    CHECK_THROWS_AS(optim::warmup(0, c), error::invalid_value);
    CHECK_THROWS_AS(optim::warmup(2, c, 0.0), error::invalid_value);
}

TEST_CASE("a linear classifier trained with cross_entropy + sgd reaches zero training error") {
    // Two Gaussian blobs in 2-D, linearly separable by construction.
    nn::linear<2, 2> fc;
    rng g(4);
    fc.init(g);
    const std::size_t n = 64;
    tensor<float> x(shape_t{n, 2});
    std::vector<std::int32_t> y(n);
    for (std::size_t i = 0; i < n; ++i) {
        y[i] = static_cast<std::int32_t>(i % 2);
        const double c = y[i] ? 2.0 : -2.0;
        x(i, 0) = static_cast<float>(c + 0.5 * g.normal());
        x(i, 1) = static_cast<float>(-c + 0.5 * g.normal());
    }
    optim::sgd<> opt({{optim::collect_params(fc), 0.1, 1e-4}}, {0.9});
    distill::cross_entropy ce;
    tensor<float> dlogits;
    double first = 0, last = 0;
    for (int it = 0; it < 50; ++it) {
        nn::zero_grad(fc);
        const auto& logits = fc.forward(x, nn::mode::train);
        last = ce(logits, y, dlogits);
        if (it == 0) first = last;
        fc.backward(dlogits, false);
        opt.step();
    }
    CHECK(last < 0.1 * first);
    const auto& logits = fc.forward(x, nn::mode::eval);
    std::size_t correct = 0;
    for (std::size_t i = 0; i < n; ++i) correct += ((logits(i, 1) > logits(i, 0)) == (y[i] == 1));
    CHECK(correct == n);
}

TEST_CASE("speed: one step over ResNet-20's parameters") {
    nn::models::resnet20<1, 10> net;
    rng g(0);
    net.init(g);
    net.for_each_param([&](const std::string&, tensor<float>&, tensor<float>& d, nn::param_kind) {
        for (auto& v : d) v = static_cast<float>(g.normal() * 1e-2);
    });
    const auto ps = optim::collect_params(net);
    optim::sgd<> sgd({{ps, 0.1, 1e-4}}, {0.9});
    optim::adam<> adam({{ps, 1e-3, 1e-4}});
    const int reps = 50;
    auto time_ms = [&](auto& opt) {
        opt.step();  // first step (buffer initialisation) out of the timing
        const auto t0 = std::chrono::steady_clock::now();
        for (int r = 0; r < reps; ++r) opt.step();
        const auto t1 = std::chrono::steady_clock::now();
        return std::chrono::duration<double, std::milli>(t1 - t0).count() / reps;
    };
    const double ms_sgd = time_ms(sgd), ms_adam = time_ms(adam);
    MESSAGE("ResNet-20 (" << sgd.num_scalars() << " parameters): sgd step " << ms_sgd << " ms, adam step "
                          << ms_adam << " ms");
    CHECK(sgd.num_scalars() == nn::num_params(net));
    bool finite = true;
    for (const auto& p : ps)
        for (float v : *p.value) finite = finite && std::isfinite(v);
    CHECK(finite);
}

// Student type, quant layers, distillation losses and train::distill: structure, gradients
// against finite differences, exact resume, and that SQAKD never reads labels.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <numeric>
#include <string>

#include "sqakd/data.hpp"
#include "sqakd/distill/feature.hpp"
#include "sqakd/distill/kd.hpp"
#include "sqakd/io.hpp"
#include "sqakd/nn.hpp"
#include "sqakd/nn/quantize.hpp"
#include "sqakd/testing/gradient_check.hpp"
#include "sqakd/train/distill.hpp"

using namespace sqakd;

namespace {
using teacher_t = nn::models::resnet20<1, 10>;
template <int B>
using interval_student = nn::quantize_t<teacher_t, quant::interval_weight<B>, quant::interval_act<B>>;

std::string temp_dir(const std::string& tag) {
    std::string tmpl = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + "/sqakd_" + tag + "_XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("cannot create a temp dir");
    return tmpl;
}
std::string teacher_ckpt(int seed) {
    return std::string(SQAKD_SOURCE_DIR) + "/benchmarks/results/teacher_resnet20_fmnist/seed" + std::to_string(seed) +
           "/last.sqakd";
}
}  // namespace

// ---- the student type ----

static_assert(std::is_same_v<std::tuple_element_t<0, std::remove_reference_t<decltype(std::declval<interval_student<2>&>().layers())>>,
                             nn::conv2d<1, 16, 3, 1, 1, 1, false, float>>,
              "the first conv stays FP");
static_assert(std::is_same_v<std::tuple_element_t<14, std::remove_reference_t<decltype(std::declval<interval_student<2>&>().layers())>>,
                             nn::linear<64, 10, true, float>>,
              "the last FC stays FP");
static_assert(std::is_same_v<nn::quantize_t<nn::sequential<nn::linear<4, 4>, nn::relu<>, nn::linear<4, 4>, nn::relu<>, nn::linear<4, 2>>,
                                            quant::lsq_weight<4>, quant::lsq_act<4>>,
                             nn::sequential<nn::linear<4, 4>, nn::relu<>, nn::quant_linear<4, 4, true, quant::lsq_weight<4>, quant::lsq_act<4>>,
                                            nn::relu<>, nn::linear<4, 2>>>,
              "in an MLP the middle linear layers are quantized, the first and last stay FP");

TEST_CASE("a ResNet-20 student has 18 quantized convs and FP shortcuts, first conv and FC") {
    interval_student<2> s;
    CHECK(nn::count_quantized(s) == 18);
    // shortcuts: option-A blocks have no parameters; every quantized layer sits in a branch
    std::size_t in_branch = 0;
    s.for_each_param([&](const std::string& n, tensor<float>&, tensor<float>&, nn::param_kind k) {
        if (k == nn::param_kind::quant) CHECK_MESSAGE(n.find(".branch.") != std::string::npos, n);
        if (n.find(".branch.") != std::string::npos && n.size() > 5 && n.substr(n.size() - 5) == ".wq.l") ++in_branch;
    });
    CHECK(in_branch == 18);
}

TEST_CASE("copy_from_teacher copies every teacher tensor and names what does not match") {
    teacher_t t;
    rng g(3);
    t.init(g);
    interval_student<4> s;
    nn::copy_from_teacher(s, t);
    CHECK(io::weights_checksum(t) != "");
    std::size_t compared = 0;
    std::map<std::string, tensor<float>*> tw;
    t.for_each_param([&](const std::string& n, tensor<float>& v, tensor<float>&, nn::param_kind) { tw[n] = &v; });
    s.for_each_param([&](const std::string& n, tensor<float>& v, tensor<float>&, nn::param_kind k) {
        if (k == nn::param_kind::quant) return;
        REQUIRE(tw.count(n));
        CHECK(v == *tw[n]);
        ++compared;
    });
    CHECK(compared == tw.size());
    nn::models::resnet20<1, 100> other;
    try {
        nn::copy_from_teacher(s, other);
        FAIL("expected an error");
    } catch (const error::shape_mismatch& e) {
        CHECK(std::string(e.what()).find("14.weight") != std::string::npos);
    }
}

// ---- gradients of quantized layers (surrogate rounding) against finite differences ----

template <class Layer>
void check_layer_surrogate(Layer& l, const shape_t& in_shape) {
    rng g(11);
    l.init(g);
    tensor<double> x = testing::random_tensor<double>(in_shape, g, -0.2, 1.5);
    l.request_quant_init();
    l.forward(x);  // initialise the quantizers from x
    // Interval activations start at l = min(x): an input element sits exactly on the clip
    // bound, where the surrogate has a kink. Move the bound off it.
    l.act_quant().for_each_param([](const std::string& n, tensor<double>& v, tensor<double>&, nn::param_kind) {
        if (n == "l") v(0) -= 0.1;
    });
    l.weight_quant().set_rounding(quant::rounding::identity);
    l.act_quant().set_rounding(quant::rounding::identity);
    testing::grad_check_options o;
    const auto r = testing::check_gradients(l, x, o);
    INFO("worst " << r.worst << " " << r.max_rel_error);
    CHECK(r.ok);
}

TEST_CASE("quant_conv2d and quant_linear backward agree with finite differences of the surrogate") {
    SUBCASE("interval conv with output scale") {
        nn::quant_conv2d<3, 4, 3, 1, 1, 1, true, quant::interval_weight<2>, quant::interval_act<2>, double> c;
        check_layer_surrogate(c, {2, 3, 5, 5});
    }
    SUBCASE("interval conv, stride 2") {
        nn::quant_conv2d<3, 4, 3, 2, 1, 1, false, quant::interval_weight<4>, quant::interval_act<4>, double> c;
        check_layer_surrogate(c, {2, 3, 6, 6});
    }
    SUBCASE("pact + dorefa conv") {
        nn::quant_conv2d<3, 4, 3, 1, 1, 1, false, quant::dorefa_weight<2>, quant::pact_act<2>, double> c;
        check_layer_surrogate(c, {2, 3, 5, 5});
    }
    SUBCASE("interval linear") {
        nn::quant_linear<6, 3, true, quant::interval_weight<2>, quant::interval_act<2>, double> c;
        check_layer_surrogate(c, {4, 6});
    }
}

// ---- losses ----

TEST_CASE("sqakd_kl: value and gradient against the formula and finite differences") {
    rng g(5);
    tensor<double> zs = testing::random_tensor<double>({4, 10}, g, -3, 3), zt = testing::random_tensor<double>({4, 10}, g, -3, 3);
    distill::sqakd_kl kl{4.0};
    tensor<double> d;
    const double l = kl(zs, zt, d);
    // direct formula
    double ref = 0;
    for (std::size_t b = 0; b < 4; ++b) {
        double ms = 0, mt = 0;
        for (std::size_t c = 0; c < 10; ++c) ms += std::exp(zs(b, c) / 4), mt += std::exp(zt(b, c) / 4);
        for (std::size_t c = 0; c < 10; ++c) {
            const double pt = std::exp(zt(b, c) / 4) / mt, ps = std::exp(zs(b, c) / 4) / ms;
            ref += pt * std::log(pt / ps);
        }
    }
    ref *= 16.0 / 4;
    CHECK(l == doctest::Approx(ref).epsilon(1e-12));
    for (std::size_t i = 0; i < zs.size(); ++i) {
        const double keep = zs.data()[i];
        zs.data()[i] = keep + 1e-6;
        const double lp = kl.value(zs, zt);
        zs.data()[i] = keep - 1e-6;
        const double lm = kl.value(zs, zt);
        zs.data()[i] = keep;
        CHECK(d.data()[i] == doctest::Approx((lp - lm) / 2e-6).epsilon(1e-6));
    }
    tensor<double> same = zs;
    CHECK(kl.value(zs, same) == doctest::Approx(0).epsilon(1e-15));
    CHECK_THROWS_AS(kl(zs, tensor<double>(shape_t{4, 9}), d), error::shape_mismatch);
    CHECK_THROWS_AS((distill::sqakd_kl{0.0}(zs, zt, d)), error::invalid_value);
}

TEST_CASE("hinton_kd = gamma CE + alpha KL, gradient by finite differences") {
    rng g(6);
    tensor<double> zs = testing::random_tensor<double>({3, 5}, g, -2, 2), zt = testing::random_tensor<double>({3, 5}, g, -2, 2);
    std::vector<std::int32_t> y = {1, 4, 0};
    distill::hinton_kd kd{0.3, 0.7, 2.0};
    tensor<double> d, tmp;
    const double l = kd(zs, zt, y, d);
    CHECK(l == doctest::Approx(0.3 * distill::cross_entropy{}.value(zs, y) + 0.7 * distill::sqakd_kl{2.0}.value(zs, zt)));
    for (std::size_t i = 0; i < zs.size(); ++i) {
        const double keep = zs.data()[i];
        zs.data()[i] = keep + 1e-6;
        const double lp = kd(zs, zt, y, tmp);
        zs.data()[i] = keep - 1e-6;
        const double lm = kd(zs, zt, y, tmp);
        zs.data()[i] = keep;
        CHECK(d.data()[i] == doctest::Approx((lp - lm) / 2e-6).epsilon(1e-6));
    }
    static_assert(distill::hinton_kd::needs_labels && !distill::sqakd_kl::needs_labels && !distill::cross_entropy::needs_teacher);
}

// ---- train::distill ----

namespace {
struct small_setup {
    data::dataset train_ds, test_ds;
    teacher_t teacher;
    small_setup() {
        train_ds = data::load_fashion_mnist(data::default_fashion_mnist_dir, data::split::train).subset(0, 384);
        test_ds = data::load_fashion_mnist(data::default_fashion_mnist_dir, data::split::test).subset(0, 500);
        io::load_checkpoint(teacher_ckpt(0), teacher);
    }
    data::loader_options opts() const {
        data::loader_options o;
        o.batch_size = 64;
        o.shuffle = true;
        o.augment = true;
        o.seed = 9;
        o.normalize(data::fashion_mnist_stats());
        return o;
    }
};

template <class Loss, class Data>
std::string run(small_setup& s, const Loss& loss, Data& d, train::distill_options o, data::loader* test = nullptr) {
    interval_student<2> st;
    nn::copy_from_teacher(st, s.teacher);
    o.progress = false;
    train::distill(s.teacher, st, loss, d, test, o);
    return io::weights_checksum(st);
}
}  // namespace

TEST_CASE("distill: SQAKD never reads labels (permuted or zeroed labels give bit-identical weights)") {
    set_num_threads(2);
    small_setup s;
    train::distill_options o;
    o.epochs = 1;
    std::vector<std::int32_t> perm = s.train_ds.labels(), zero(s.train_ds.size(), 0);
    std::reverse(perm.begin(), perm.end());
    data::dataset ds_perm(s.train_ds.images(), perm, 1, 28, 28, 10, "permuted");
    data::dataset ds_zero(s.train_ds.images(), zero, 1, 28, 28, 10, "zeroed");
    data::dataset ds_none(s.train_ds.images(), {}, 1, 28, 28, 10, "unlabeled");
    data::loader l0(s.train_ds, s.opts()), l1(ds_perm, s.opts()), l2(ds_zero, s.opts());
    data::unlabeled_loader l3(ds_none, s.opts());
    const std::string c0 = run(s, distill::sqakd_kl{4.0}, l0, o);
    CHECK(run(s, distill::sqakd_kl{4.0}, l1, o) == c0);
    CHECK(run(s, distill::sqakd_kl{4.0}, l2, o) == c0);
    CHECK(run(s, distill::sqakd_kl{4.0}, l3, o) == c0);
    // the same experiment with a loss that reads labels does see the difference
    const std::string q0 = run(s, distill::cross_entropy{}, l0, o);
    CHECK(run(s, distill::cross_entropy{}, l1, o) != q0);
}

TEST_CASE("distill: an interrupted and resumed run ends bit-identical to an uninterrupted one") {
    set_num_threads(2);
    small_setup s;
    data::loader tl(s.train_ds, s.opts());
    data::loader_options te = s.opts();
    te.shuffle = false;
    te.augment = false;
    te.batch_size = 250;
    data::loader test(s.test_ds, te);
    train::distill_options o;
    o.epochs = 3;
    const std::string da = temp_dir("distill_a"), db = temp_dir("distill_b");
    o.run_dir = da;
    const std::string full = run(s, distill::sqakd_kl{4.0}, tl, o, &test);
    o.run_dir = db;
    o.stop_after = 1;
    const std::string part = run(s, distill::sqakd_kl{4.0}, tl, o, &test);
    CHECK(part != full);
    o.stop_after = 0;
    const std::string resumed = run(s, distill::sqakd_kl{4.0}, tl, o, &test);  // a new process would do the same
    CHECK(resumed == full);
    // the per-epoch checksums and metrics agree too
    const auto ca = io::read_checkpoint(da + "/last.sqakd"), cb = io::read_checkpoint(db + "/last.sqakd");
    for (int e = 1; e <= 3; ++e)
        CHECK(ca.get("weights_checksum_epoch_" + std::to_string(e)) == cb.get("weights_checksum_epoch_" + std::to_string(e)));
    CHECK(ca.get("test_top1") == cb.get("test_top1"));
    // resuming with another teacher is refused
    teacher_t other;
    io::load_checkpoint(teacher_ckpt(1), other);
    interval_student<2> st;
    nn::copy_from_teacher(st, other);
    o.progress = false;
    CHECK_THROWS_AS(train::distill(other, st, distill::sqakd_kl{4.0}, tl, &test, o), error::invalid_value);
}

TEST_CASE("distill: quantizers are initialised by the first forward and the student learns") {
    set_num_threads(2);
    small_setup s;
    interval_student<2> st;
    nn::copy_from_teacher(st, s.teacher);
    std::size_t pending = 0;
    nn::request_quant_init(st);
    nn::for_each_quantized(st, [&](auto& l) { pending += l.quant_init_pending(); });
    CHECK(pending == 18);
    data::loader tl(s.train_ds, s.opts());
    data::loader_options te = s.opts();
    te.shuffle = false;
    te.augment = false;
    data::loader test(s.test_ds, te);
    const double before_kl = [&] {
        // the student right after initialisation, evaluated against the teacher
        interval_student<2> probe;
        nn::copy_from_teacher(probe, s.teacher);
        nn::request_quant_init(probe);
        tensor<float> x;
        std::vector<std::int32_t> y;
        tl.set_epoch(0);
        tl.batch(0, x, y);
        const tensor<float> zs = probe.forward(x, nn::mode::train);
        const tensor<float> zt = s.teacher.forward(x, nn::mode::eval);
        return distill::sqakd_kl{4.0}.value(zs, zt);
    }();
    train::distill_options o;
    o.epochs = 2;
    o.progress = false;
    const auto r = train::distill(s.teacher, st, distill::sqakd_kl{4.0}, tl, &test, o);
    pending = 0;
    nn::for_each_quantized(st, [&](auto& l) {
        pending += l.quant_init_pending();
        CHECK(l.weight_quant().method().upper()(0) > l.weight_quant().method().lower()(0));
    });
    CHECK(pending == 0);
    REQUIRE(r.epochs.size() == 2);
    CHECK(r.epochs.back().train_loss < before_kl);
    CHECK(r.epochs.back().test_top1 > 60.0);
}

// ---- feature-level loss: attention transfer through the sequential's taps ----

TEST_CASE("sqakd_kl_at: gradients through feature taps agree with finite differences") {
    using net = nn::sequential<nn::conv2d<1, 4, 3, 1, 1, 1, false, double>, nn::relu<double>,
                               nn::conv2d<4, 6, 3, 1, 1, 1, false, double>, nn::relu<double>,
                               nn::global_avg_pool<double>, nn::linear<6, 3, true, double>>;
    net s, t;
    rng g(21);
    s.init(g);
    t.init(g);
    const tensor<double> x = testing::random_tensor<double>({2, 1, 5, 5}, g);
    distill::sqakd_kl_at loss{2.0, 50.0, {1, 3}};
    auto total = [&](bool grads) {
        const tensor<double>& zt = t.forward(x, nn::mode::eval);
        const tensor<double> zt_copy = zt;
        const tensor<double>& zs = s.forward(x, nn::mode::train);
        std::vector<const tensor<double>*> fs, ft;
        for (auto tap : loss.taps) fs.push_back(s.output_of(tap)), ft.push_back(t.output_of(tap));
        tensor<double> dz;
        std::vector<tensor<double>> df;
        const double l = loss(zs, zt_copy, fs, ft, dz, df);
        if (grads) {
            for (std::size_t i = 0; i < loss.taps.size(); ++i) s.set_extra_grad(loss.taps[i], &df[i]);
            nn::zero_grad(s);
            s.backward(dz, false);
            s.clear_extra_grads();
        }
        return l;
    };
    total(true);
    std::vector<double> an, num;
    s.for_each_param([&](const std::string&, tensor<double>& v, tensor<double>& gr, nn::param_kind) {
        for (std::size_t i = 0; i < v.size(); ++i) an.push_back(gr.data()[i]);
    });
    s.for_each_param([&](const std::string&, tensor<double>& v, tensor<double>&, nn::param_kind) {
        for (std::size_t i = 0; i < v.size(); ++i) {
            const double keep = v.data()[i];
            v.data()[i] = keep + 1e-6;
            const double lp = total(false);
            v.data()[i] = keep - 1e-6;
            const double lm = total(false);
            v.data()[i] = keep;
            num.push_back((lp - lm) / 2e-6);
        }
    });
    double md = 0, mn = 0;
    for (std::size_t i = 0; i < an.size(); ++i) md = std::max(md, std::fabs(an[i] - num[i])), mn = std::max(mn, std::fabs(num[i]));
    INFO("max abs diff " << md << " scale " << mn);
    CHECK(md / mn < 1e-6);
    // the attention term is really there: without taps the gradient differs
    distill::sqakd_kl_at no_at{2.0, 0.0, {1, 3}};
    std::swap(loss, no_at);
    total(true);
    std::vector<double> an2;
    s.for_each_param([&](const std::string&, tensor<double>&, tensor<double>& gr, nn::param_kind) {
        for (std::size_t i = 0; i < gr.size(); ++i) an2.push_back(gr.data()[i]);
    });
    double diff = 0;
    for (std::size_t i = 0; i < an.size(); ++i) diff = std::max(diff, std::fabs(an[i] - an2[i]));
    CHECK(diff > 1e-3 * mn);
}

TEST_CASE("distill trains with a feature loss (KL + attention transfer at the stage outputs)") {
    set_num_threads(2);
    small_setup s;
    data::unlabeled_loader tl(s.train_ds, s.opts());
    train::distill_options o;
    o.epochs = 1;
    o.max_batches = 3;
    const std::string a = run(s, distill::sqakd_kl_at{4.0, 1000.0, {5, 8, 11}}, tl, o);
    const std::string b = run(s, distill::sqakd_kl{4.0}, tl, o);
    CHECK(a != b);
    CHECK_THROWS_AS(run(s, distill::sqakd_kl_at{4.0, 1000.0, {5, 99}}, tl, o), error::shape_mismatch);
}

TEST_CASE("distill: EWGS deltas from the Hessian trace every N epochs are set, stored and restored on resume") {
    set_num_threads(2);
    small_setup s;
    data::unlabeled_loader tl(s.train_ds, s.opts());
    using ewgs_student = nn::quantize_t<teacher_t, quant::interval_weight<2, quant::ewgs>, quant::interval_act<2, quant::ewgs>>;
    train::distill_options o;
    o.epochs = 2;
    o.max_batches = 2;
    o.progress = false;
    o.ewgs_update_every = 1;
    o.ewgs.max_probes = 3;
    auto run_ewgs = [&](const std::string& dir, std::size_t stop_after, std::vector<double>* deltas) {
        auto st = std::make_unique<ewgs_student>();
        nn::copy_from_teacher(*st, s.teacher);
        train::distill_options oo = o;
        oo.run_dir = dir;
        oo.stop_after = stop_after;
        train::distill(s.teacher, *st, distill::sqakd_kl{4.0}, tl, static_cast<data::loader*>(nullptr), oo);
        if (deltas)
            nn::for_each_quantized(*st, [&](auto& l) {
                deltas->push_back(l.weight_quant().estimator().delta);
                deltas->push_back(l.act_quant().estimator().delta);
            });
        return io::weights_checksum(*st);
    };
    const std::string da = temp_dir("ewgs_a"), db = temp_dir("ewgs_b");
    std::vector<double> d_full;
    const std::string full = run_ewgs(da, 0, &d_full);
    REQUIRE(d_full.size() == 36);
    std::size_t positive = 0;
    for (double d : d_full) {
        CHECK(std::isfinite(d));
        CHECK(d >= 0);
        positive += d > 0;
    }
    CHECK(positive > 0);
    const auto ck = io::read_checkpoint(da + "/last.sqakd");
    CHECK(std::stod(ck.get("ewgs_delta_w_0")) == d_full[0]);
    // interrupted after epoch 1 and resumed: same deltas, same weights
    run_ewgs(db, 1, nullptr);
    std::vector<double> d_res;
    CHECK(run_ewgs(db, 0, &d_res) == full);
    CHECK(d_res == d_full);
    // and the update changed the training: without it the weights differ
    o.ewgs_update_every = 0;
    CHECK(run_ewgs(temp_dir("ewgs_c"), 0, nullptr) != full);
}

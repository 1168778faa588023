// Quantizers against PyTorch golden values (scripts/golden/make_golden_quant.py, which
// implements SQAKD.md §3 in float64 on the stored float32 inputs; tests/data/golden_quant/).
// Every case compares y, dLoss/dx and every parameter gradient with the error measure of
// tests/golden/golden_check.hpp at rtol 1e-5, and insists that every stored tensor was compared.
// Coverage: every family (interval_w, interval_a, lsq_w, lsq_wpc, lsq_a, pact_a, dorefa_w,
// interval_conv) x estimator (clipped_ste, ewgs with delta 0.25, plain ste) x 1, 2, 4, 8 bits,
// plus the all-zero dorefa case (97 files).
#include <doctest/doctest.h>

#include <string>

#include "../golden/golden_check.hpp"
#include "sqakd/nn/quantized.hpp"
#include "sqakd/quant/presets.hpp"

using namespace sqakd;
using golden::golden_file;

namespace {

golden_file load_case(const std::string& name) {
    return golden_file::load(std::string(SQAKD_TEST_DATA_DIR) + "/golden_quant/" + name + ".txt");
}

/// The file-name tag and the EWGS delta stored in the files of an estimator (the file names
/// are <family><tag>_b<bits>, see scripts/golden/make_golden_quant.py).
template <class Est>
struct est_files;
template <>
struct est_files<quant::clipped_ste> {
    static constexpr const char* tag = "";
    static constexpr double delta = 0.0;
};
template <>
struct est_files<quant::ewgs> {
    static constexpr const char* tag = "_ewgs";
    static constexpr double delta = 0.25;
};
template <>
struct est_files<quant::ste> {
    static constexpr const char* tag = "_plainste";
    static constexpr double delta = 0.0;
};

template <class Q>
void set_named(Q& q, const std::string& name, const tensor<float>& v) {
    bool found = false;
    q.for_each_param([&](const std::string& n, tensor<float>& p, tensor<float>&, nn::param_kind) {
        if (n == name) {
            REQUIRE(p.size() == v.size());
            std::copy(v.begin(), v.end(), p.begin());
            found = true;
        }
    });
    REQUIRE_MESSAGE(found, "no parameter " << name);
}

template <class Q>
tensor<float> grad_of(Q& q, const std::string& name) {
    tensor<float> out;
    q.for_each_param([&](const std::string& n, tensor<float>&, tensor<float>& g, nn::param_kind) {
        if (n == name) out = g;
    });
    return out;
}

/// One elementwise quantizer case: y, dx and the gradients of `params`.
template <class Preset>
void run_case(const std::string& name, std::initializer_list<const char*> params, std::size_t channels = 1) {
    INFO("case " << name);
    golden_file f = load_case(name);
    golden::case_summary sum(name);
    const double bits = f.take("cfg.bits").data()[0];
    const double delta = f.take("cfg.delta").data()[0];
    REQUIRE(static_cast<int>(bits) == Preset::bits);
    REQUIRE(delta == doctest::Approx(est_files<typename Preset::estimator>::delta));
    typename Preset::template type<float> q(channels);
    q.estimator().delta = delta;
    for (const char* p : params) set_named(q, p, f.take(std::string("param.") + p));
    const tensor<float> x = f.take("x");
    const tensor<float> dy = f.take("dy");
    nn::zero_grad(q);
    const tensor<float> y = q.forward(x);
    const tensor<float> dx = q.backward(dy, true);
    golden::check_tensor(sum, "y", y, f.take("y"), golden::rtol_layer);
    golden::check_tensor(sum, "dx", dx, f.take("dx"), golden::rtol_layer);
    for (const char* p : params)
        golden::check_tensor(sum, std::string("grad.") + p, grad_of(q, p), f.take(std::string("grad.") + p),
                             golden::rtol_layer);
    CHECK_MESSAGE(f.unused().empty(), "tensors not compared in " << name);
}

template <int B, class Est>
void run_conv_case(const std::string& name, double delta) {
    INFO("case " << name);
    golden_file f = load_case(name);
    golden::case_summary sum(name);
    nn::quant_conv2d<3, 4, 3, 1, 1, 1, false, quant::interval_weight<B, Est>, quant::interval_act<B, Est>> c;
    REQUIRE(static_cast<int>(f.take("cfg.bits").data()[0]) == B);
    REQUIRE(f.take("cfg.delta").data()[0] == doctest::Approx(delta));
    c.weight_quant().estimator().delta = delta;
    c.act_quant().estimator().delta = delta;
    const tensor<float> W = f.take("param.W");
    std::copy(W.begin(), W.end(), c.weight().begin());
    set_named(c.act_quant(), "l", f.take("param.l_a"));
    set_named(c.act_quant(), "u", f.take("param.u_a"));
    set_named(c.weight_quant(), "l", f.take("param.l_w"));
    set_named(c.weight_quant(), "u", f.take("param.u_w"));
    c.scale()(0) = f.take("param.s").data()[0];
    nn::zero_grad(c);
    const tensor<float> x = f.take("x");
    const tensor<float> out = c.forward(x);
    const tensor<float> dx = c.backward(f.take("dy"), true);
    golden::check_tensor(sum, "out", out, f.take("out"), golden::rtol_layer);
    golden::check_tensor(sum, "dx", dx, f.take("dx"), golden::rtol_layer);
    golden::check_tensor(sum, "dW", c.weight_grad(), f.take("dW"), golden::rtol_layer);
    golden::check_tensor(sum, "grad.l_a", grad_of(c.act_quant(), "l"), f.take("grad.l_a"), golden::rtol_layer);
    golden::check_tensor(sum, "grad.u_a", grad_of(c.act_quant(), "u"), f.take("grad.u_a"), golden::rtol_layer);
    golden::check_tensor(sum, "grad.l_w", grad_of(c.weight_quant(), "l"), f.take("grad.l_w"), golden::rtol_layer);
    golden::check_tensor(sum, "grad.u_w", grad_of(c.weight_quant(), "u"), f.take("grad.u_w"), golden::rtol_layer);
    tensor<float> ds;
    c.for_each_param([&](const std::string& n, tensor<float>&, tensor<float>& g, nn::param_kind) {
        if (n == "scale") ds = g;
    });
    golden::check_tensor(sum, "grad.s", ds, f.take("grad.s"), golden::rtol_layer);
    CHECK_MESSAGE(f.unused().empty(), "tensors not compared in " << name);
}

/// Every family at B bits with estimator Est: files <family><tag>_b<B>.
template <int B, class Est>
void run_families() {
    const std::string t = std::string(est_files<Est>::tag) + "_b" + std::to_string(B);
    run_case<quant::interval_weight<B, Est>>("interval_w" + t, {"l", "u"});
    run_case<quant::interval_act<B, Est>>("interval_a" + t, {"l", "u"});
    run_case<quant::lsq_weight<B, Est>>("lsq_w" + t, {"s"});
    run_case<quant::lsq_weight_per_channel<B, Est>>("lsq_wpc" + t, {"s"}, 6);
    run_case<quant::lsq_act<B, Est>>("lsq_a" + t, {"s"});
    run_case<quant::pact_act<B, Est>>("pact_a" + t, {"alpha"});
    run_case<quant::dorefa_weight<B, Est>>("dorefa_w" + t, {});
    run_conv_case<B, Est>("interval_conv" + t, est_files<Est>::delta);
}

template <class Est>
void run_all_bits() {
    run_families<1, Est>();
    run_families<2, Est>();
    run_families<4, Est>();
    run_families<8, Est>();
}

}  // namespace

TEST_CASE("quantizers match PyTorch golden values at 1, 2, 4 and 8 bits (clipped STE)") {
    run_all_bits<quant::clipped_ste>();
}

TEST_CASE("quantizers with EWGS (delta 0.25) match PyTorch golden values at 1, 2, 4 and 8 bits") {
    run_all_bits<quant::ewgs>();
}

TEST_CASE("plain STE passes the gradient outside the clip range; parameters as clipped (1, 2, 4, 8 bits)") {
    run_all_bits<quant::ste>();
}

TEST_CASE("dorefa on all-zero weights is finite and matches the golden value") {
    run_case<quant::dorefa_weight<2>>("dorefa_w_zero_b2", {});
}

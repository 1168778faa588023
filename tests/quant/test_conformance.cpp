// The shipped conformance checker (sqakd/testing/quant_conformance.hpp) on every quantizer x
// estimator pair at 1, 2, 4 and 8 bits, and a check that it catches broken quantizers.
#include <doctest/doctest.h>

#include "sqakd/quant/presets.hpp"
#include "sqakd/testing/quant_conformance.hpp"

using namespace sqakd;

namespace {

template <class P>
void expect_conformant() {
    const auto r = testing::check_quantizer<P>();
    INFO(r.report());
    CHECK(r.ok);
    CHECK(r.checks.size() >= 3);
}

template <template <int, class> class Preset, class Est>
void all_bits() {
    expect_conformant<Preset<1, Est>>();
    expect_conformant<Preset<2, Est>>();
    expect_conformant<Preset<4, Est>>();
    expect_conformant<Preset<8, Est>>();
}

template <class Est>
void all_methods() {
    all_bits<quant::interval_weight, Est>();
    all_bits<quant::interval_act, Est>();
    all_bits<quant::lsq_weight, Est>();
    all_bits<quant::lsq_weight_per_channel, Est>();
    all_bits<quant::lsq_act, Est>();
    all_bits<quant::pact_act, Est>();
    all_bits<quant::dorefa_weight, Est>();
}

}  // namespace

TEST_CASE("every quantizer conforms with the clipped STE") { all_methods<quant::clipped_ste>(); }
TEST_CASE("every quantizer conforms with the plain STE") { all_methods<quant::ste>(); }
TEST_CASE("every quantizer conforms with EWGS") { all_methods<quant::ewgs>(); }

namespace {
// A deliberately broken method: interval activations whose parameter gradient is 1% off.
template <class T>
struct broken_interval : quant::interval_method<2, quant::tensor_role::activation, T> {
    using base = quant::interval_method<2, quant::tensor_role::activation, T>;
    using base::base;
    void add_grads(std::size_t g, const quant::grad_sums& s, const tensor<T>& x) {
        quant::grad_sums t = s;
        t.in_dv_x *= 1.01;
        base::add_grads(g, t, x);
    }
};
struct broken_preset {
    static constexpr int bits = 2;
    static constexpr quant::tensor_role role = quant::tensor_role::activation;
    using estimator = quant::clipped_ste;
    template <class T>
    using type = quant::fake_quant<broken_interval<T>, quant::clipped_ste, T>;
};
// A broken mask: the plain STE declared under a preset that claims nothing, checked as masked.
struct unmasked_as_clipped {
    static constexpr int bits = 2;
    static constexpr quant::tensor_role role = quant::tensor_role::activation;
    template <class T>
    using type = quant::fake_quant<quant::interval_method<2, quant::tensor_role::activation, T>, quant::ste, T>;
};
}  // namespace

TEST_CASE("the conformance checker rejects a 1% error in a parameter gradient") {
    const auto r = testing::check_quantizer<broken_preset>();
    CHECK_FALSE(r.ok);
    CHECK(r.report().find("parameter") != std::string::npos);
}

TEST_CASE("the plain STE really passes gradients outside the clip range") {
    // check 3 accepts non-zero gradients beyond the bounds only for estimators without a mask
    const auto r = testing::check_quantizer<unmasked_as_clipped>();
    CHECK(r.ok);
    quant::fake_quant<quant::interval_method<2, quant::tensor_role::activation, double>, quant::ste, double> q;
    tensor<double> x = {-5.0, 0.5, 5.0}, dy = {1.0, 1.0, 1.0};
    q.forward(x);
    const auto& dx = q.backward(dy, true);
    CHECK(dx(0) != 0.0);
    CHECK(dx(2) != 0.0);
}

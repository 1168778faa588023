// distill::cross_entropy beyond the golden values: finite differences in double, stability
// under large shifts, errors that name the sample, the softmax helpers.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "sqakd/core/rng.hpp"
#include "sqakd/distill/cross_entropy.hpp"

using namespace sqakd;

static_assert(distill::cross_entropy::needs_labels,
              "cross_entropy reads labels, so it must declare needs_labels = true.");

namespace {

tensor<double> random_logits(std::size_t b, std::size_t c, rng& g, double scale) {
    tensor<double> z(shape_t{b, c});
    for (auto& v : z) v = g.normal() * scale;
    return z;
}

std::string what_of(const std::exception& e) { return e.what(); }

}  // namespace

TEST_CASE("cross_entropy: gradient equals central finite differences (double)") {
    // L is smooth; with eps = 1e-6 the central difference has truncation error ~eps^2 |L'''|
    // (~1e-13) and rounding error ~1e-16 |L| / eps (~1e-10), so 1e-8 absolute separates a
    // correct gradient (entries 1e-3 .. 1e-1 here) from one off by 1e-4 relative or more.
    rng g(7);
    for (double scale : {0.5, 3.0}) {
        CAPTURE(scale);
        tensor<double> z = random_logits(4, 7, g, scale);
        const std::vector<std::int32_t> y{3, 0, 6, 3};
        distill::cross_entropy ce;
        tensor<double> grad;
        ce(z, y, grad);
        const double eps = 1e-6;
        double worst = 0;
        for (std::size_t i = 0; i < z.size(); ++i) {
            const double keep = z.data()[i];
            z.data()[i] = keep + eps;
            const double lp = ce.value(z, y);
            z.data()[i] = keep - eps;
            const double lm = ce.value(z, y);
            z.data()[i] = keep;
            worst = std::max(worst, std::fabs((lp - lm) / (2 * eps) - grad.data()[i]));
        }
        CHECK(worst < 1e-8);
    }
}

TEST_CASE("cross_entropy: gradient rows sum to zero; loss is invariant to shifting a row by 1e4") {
    rng g(3);
    const tensor<double> z = random_logits(3, 5, g, 2.0);
    const std::vector<std::int32_t> y{1, 4, 0};
    distill::cross_entropy ce;
    tensor<double> g0, g1;
    const double l0 = ce(z, y, g0);
    tensor<double> shifted = z;
    for (std::size_t c = 0; c < 5; ++c) shifted(1, c) += 1e4;  // 1e4 + small: exact in double to ~1e-12
    const double l1 = ce(shifted, y, g1);
    CHECK(std::fabs(l1 - l0) < 1e-10);
    for (std::size_t i = 0; i < g0.size(); ++i) CHECK(std::fabs(g0.data()[i] - g1.data()[i]) < 1e-11);
    for (std::size_t b = 0; b < 3; ++b) {
        double s = 0;
        for (std::size_t c = 0; c < 5; ++c) s += g0(b, c);
        CHECK(std::fabs(s) < 1e-15);
    }
}

TEST_CASE("cross_entropy: float logits of magnitude 1e30 give a finite loss and gradient") {
    tensor<float> z(shape_t{2, 3});
    z(0, 0) = 1e30f; z(0, 1) = -1e30f; z(0, 2) = 0.f;
    z(1, 0) = 3e38f; z(1, 1) = 3e38f; z(1, 2) = -3e38f;
    distill::cross_entropy ce;
    tensor<float> grad;
    const double loss = ce(z, {1, 0}, grad);
    // Sample 0 pays 2 * 1e30f; sample 1 pays log 2, lost next to 3e38 in double; the mean is 1e30f.
    CHECK(loss == doctest::Approx(static_cast<double>(1e30f)).epsilon(1e-12));
    for (float v : grad) CHECK(std::isfinite(v));
    CHECK(grad(0, 0) == doctest::Approx(0.5));   // softmax 1, minus nothing, / B
    CHECK(grad(0, 1) == doctest::Approx(-0.5));  // softmax 0, minus 1, / B
    CHECK(grad(1, 0) == doctest::Approx(-0.25));
    CHECK(grad(1, 1) == doctest::Approx(0.25));
}

TEST_CASE("cross_entropy: labels out of range and NaN/Inf logits are errors naming the sample") {
    tensor<float> z(shape_t{3, 4});
    z.fill(0.5f);
    distill::cross_entropy ce;
    tensor<float> grad(shape_t{3, 4});
    grad.fill(42.f);
    try {
        ce(z, {0, 3, 4}, grad);
        FAIL("expected error::invalid_value");
    } catch (const error::invalid_value& e) {
        CHECK(what_of(e).find("sample 2") != std::string::npos);
        CHECK(what_of(e).find("label 4") != std::string::npos);
    }
    try {
        ce(z, {-1, 0, 0}, grad);
        FAIL("expected error::invalid_value");
    } catch (const error::invalid_value& e) {
        CHECK(what_of(e).find("sample 0") != std::string::npos);
    }
    z(1, 2) = std::numeric_limits<float>::quiet_NaN();
    try {
        ce(z, {0, 0, 0}, grad);
        FAIL("expected error::invalid_value");
    } catch (const error::invalid_value& e) {
        CHECK(what_of(e).find("sample 1") != std::string::npos);
    }
    z(1, 2) = 0.f;
    z(2, 0) = -std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH_AS(ce.value(z, {0, 0, 0}), doctest::Contains("sample 2"), error::invalid_value);
    // Nothing was written to the gradient by the failed calls.
    for (float v : grad) CHECK(v == 42.f);
}

TEST_CASE("cross_entropy: shape errors") {
    distill::cross_entropy ce;
    tensor<float> grad;
    tensor<float> z(shape_t{3, 4});
    z.fill(0.f);
    CHECK_THROWS_WITH_AS(ce(z, {0, 1}, grad), doctest::Contains("expected 3 labels"), error::shape_mismatch);
    tensor<float> flat(shape_t{12});
    flat.fill(0.f);
    CHECK_THROWS_AS(ce(flat, {0}, grad), error::shape_mismatch);
    tensor<float> empty(shape_t{0, 4});
    CHECK_THROWS_AS(ce(empty, {}, grad), error::shape_mismatch);
    // The gradient tensor is resized to the logits' shape.
    tensor<float> wrong(shape_t{7});
    ce(z, {0, 1, 2}, wrong);
    CHECK(wrong.dimension() == 2);
    CHECK(wrong.shape()[0] == 3);
    CHECK(wrong.shape()[1] == 4);
}

TEST_CASE("softmax_rows / log_softmax_rows: rows sum to one, exp(log_softmax) == softmax, temperature") {
    rng g(11);
    const tensor<double> z = random_logits(4, 6, g, 5.0);
    tensor<double> p, lp, pt;
    distill::softmax_rows(z, p);
    distill::log_softmax_rows(z, lp);
    for (std::size_t b = 0; b < 4; ++b) {
        double s = 0;
        for (std::size_t c = 0; c < 6; ++c) {
            s += p(b, c);
            CHECK(std::fabs(std::exp(lp(b, c)) - p(b, c)) < 1e-15);
        }
        CHECK(std::fabs(s - 1) < 1e-14);
    }
    // Temperature T: softmax(z / T), computed by hand.
    distill::softmax_rows(z, pt, 4.0);
    for (std::size_t b = 0; b < 4; ++b) {
        double s = 0;
        for (std::size_t c = 0; c < 6; ++c) s += std::exp(z(b, c) / 4.0);
        for (std::size_t c = 0; c < 6; ++c) CHECK(std::fabs(pt(b, c) - std::exp(z(b, c) / 4.0) / s) < 1e-15);
    }
    CHECK_THROWS_AS(distill::softmax_rows(z, p, 0.0), error::invalid_value);
    CHECK_THROWS_AS(distill::log_softmax_rows(z, p, -1.0), error::invalid_value);
    tensor<float> bad(shape_t{2, 2});
    bad.fill(0.f);
    bad(1, 1) = std::numeric_limits<float>::infinity();
    tensor<float> out;
    CHECK_THROWS_WITH_AS(distill::softmax_rows(bad, out), doctest::Contains("sample 1"), error::invalid_value);
}

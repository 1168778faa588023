// Behaviour of the layers beyond gradients: shape errors, option-A layout, BN running stats,
// determinism across runs.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "sqakd/nn.hpp"
#include "sqakd/testing/gradient_check.hpp"

using namespace sqakd;

TEST_CASE("shape errors name the layer, the expected and the actual shape") {
    nn::conv2d<3, 4, 3, 1, 1> conv;
    tensor<float> x(shape_t{2, 5, 8, 8});
    x.fill(0);
    try {
        conv.forward(x);
        FAIL("expected a shape error");
    } catch (const error::shape_mismatch& e) {
        const std::string msg = e.what();
        CHECK(msg.find("conv2d") != std::string::npos);
        CHECK(msg.find("[*, 3, *, *]") != std::string::npos);
        CHECK(msg.find("[2, 5, 8, 8]") != std::string::npos);
    }
    nn::linear<8, 2> fc;
    tensor<float> z(shape_t{4, 7});
    CHECK_THROWS_AS(fc.forward(z), error::shape_mismatch);
    nn::batch_norm<3> bn;
    CHECK_THROWS_AS(bn.forward(x), error::shape_mismatch);
    tensor<float> tiny(shape_t{1, 3, 1, 1});
    nn::conv2d<3, 4, 3> conv_nopad;
    CHECK_THROWS_AS(conv_nopad.forward(tiny), error::shape_mismatch);
}

TEST_CASE("option-A shortcut: x[:, :, ::2, ::2] with (Out-In)/2 zero channels each side") {
    nn::option_a<2, 6, 2> sc;
    tensor<float> x(shape_t{1, 2, 4, 4});
    for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(i + 1);
    const auto& y = sc.forward(x);
    REQUIRE(y.shape()[1] == 6);
    REQUIRE(y.shape()[2] == 2);
    for (std::size_t c = 0; c < 6; ++c)
        for (std::size_t h = 0; h < 2; ++h)
            for (std::size_t w = 0; w < 2; ++w) {
                const float expect = (c >= 2 && c < 4) ? x(0, c - 2, 2 * h, 2 * w) : 0.0f;
                CHECK(y(0, c, h, w) == expect);
            }
}

TEST_CASE("batch_norm updates running statistics with the unbiased variance") {
    nn::batch_norm<1> bn;
    tensor<float> x(shape_t{4, 1});
    float vals[4] = {1, 2, 3, 6};
    for (int i = 0; i < 4; ++i) x(i, 0) = vals[i];
    bn.forward(x, nn::mode::train);
    // mean 3, biased var 3.5, unbiased 14/3
    CHECK(bn.running_mean()(0) == doctest::Approx(0.3).epsilon(1e-6));
    CHECK(bn.running_var()(0) == doctest::Approx(0.9 + 0.1 * 14.0 / 3.0).epsilon(1e-6));
    const auto& y = bn.forward(x, nn::mode::eval);
    CHECK(y(0, 0) == doctest::Approx((1 - 0.3) / std::sqrt(0.9 + 0.1 * 14.0 / 3.0 + 1e-5)).epsilon(1e-5));
}

TEST_CASE("ResNet-20 forward/backward: shapes, parameter count, repeatable results") {
    using net_t = nn::models::resnet20<1, 10>;
    net_t a, b;
    rng g1(42), g2(42);
    a.init(g1);
    b.init(g2);
    // stem 144 + 32 (BN); stage 1: 6 x 16*16*9 + 6 BN x 32; stage 2: 16*32*9 + 5 x 32*32*9 +
    // 6 x 64; stage 3: 32*64*9 + 5 x 64*64*9 + 6 x 128; BN1d 128; FC 64*10 + 10
    CHECK(nn::num_params(a) == 144 + 32 + 13824 + 192 + 50688 + 384 + 202752 + 768 + 128 + 650);
    rng gx(3);
    auto x = testing::random_tensor<float>({8, 1, 28, 28}, gx);
    const auto& ya = a.forward(x, nn::mode::train);
    REQUIRE(ya.shape()[0] == 8);
    REQUIRE(ya.shape()[1] == 10);
    const auto& yb = b.forward(x, nn::mode::train);
    for (std::size_t i = 0; i < ya.size(); ++i) REQUIRE(ya.data()[i] == yb.data()[i]);
    tensor<float> dy(shape_t{8, 10});
    dy.fill(0.1f);
    a.backward(dy, false);
    double gsum = 0;
    a.for_each_param([&](const std::string&, tensor<float>&, tensor<float>& gr, nn::param_kind) {
        for (auto v : gr) gsum += std::abs(v);
    });
    CHECK(gsum > 0);
}

TEST_CASE("conv2d reuses its scratch buffers safely when the input size changes between calls") {
    // The direct path keeps zero-bordered padded buffers between calls; a call with another
    // H x W must not see stale borders. Compare against a fresh layer each time.
    rng g(21);
    nn::conv2d<3, 4, 3, 1, 1> conv;
    conv.init(g);
    for (std::size_t h : {8u, 5u, 8u, 11u}) {
        auto x = testing::random_tensor<float>({3, 3, h, h + 1}, g);
        auto dy = testing::random_tensor<float>({3, 4, h, h + 1}, g);
        nn::conv2d<3, 4, 3, 1, 1> fresh;
        fresh.weight() = conv.weight();
        const auto y1 = tensor<float>(conv.forward(x));
        const auto& y2 = fresh.forward(x);
        const auto dx1 = tensor<float>(conv.backward(dy));
        const auto& dx2 = fresh.backward(dy);
        for (std::size_t i = 0; i < y1.size(); ++i) REQUIRE(y1.data()[i] == y2.data()[i]);
        for (std::size_t i = 0; i < dx1.size(); ++i) REQUIRE(dx1.data()[i] == dx2.data()[i]);
    }
}

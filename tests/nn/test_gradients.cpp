// Gradient checks of every layer against central finite differences, in double precision.
// Tolerance: 1e-6 per tensor, relative to the tensor's largest gradient (see
// sqakd/testing/gradient_check.hpp for why that measure and that margin).
#include <doctest/doctest.h>

#include "sqakd/nn.hpp"
#include "sqakd/testing/gradient_check.hpp"

using namespace sqakd;
using testing::check_gradients;
using testing::random_tensor;

namespace {
template <class Layer>
void require_grad_ok(Layer& layer, tensor<double> x, testing::grad_check_options opt = {}) {
    auto r = check_gradients(layer, x, opt);
    std::string report;
    for (const auto& kv : r.per_tensor) report += kv.first + ": " + std::to_string(kv.second) + "\n";
    INFO(report);
    INFO("worst: " << r.worst << " rel error " << r.max_rel_error);
    CHECK(r.per_tensor.size() >= 1);
    REQUIRE(r.ok);
}
}  // namespace

TEST_CASE("gradcheck conv2d: 3x3 stride 1 pad 1, no bias") {
    rng g(1);
    nn::conv2d<3, 4, 3, 1, 1, 1, false, double> conv;
    conv.init(g);
    require_grad_ok(conv, random_tensor<double>({2, 3, 6, 5}, g));
}

TEST_CASE("gradcheck conv2d: stride 2, bias, odd size") {
    rng g(2);
    nn::conv2d<3, 5, 3, 2, 1, 1, true, double> conv;
    conv.init(g);
    require_grad_ok(conv, random_tensor<double>({3, 3, 7, 7}, g));
}

TEST_CASE("gradcheck conv2d: groups 2, 5x5 pad 2") {
    rng g(3);
    nn::conv2d<4, 6, 5, 1, 2, 2, true, double> conv;
    conv.init(g);
    require_grad_ok(conv, random_tensor<double>({2, 4, 6, 6}, g));
}

TEST_CASE("gradcheck conv2d: depthwise 3x3 stride 2") {
    rng g(4);
    nn::conv2d<4, 4, 3, 2, 1, 4, false, double> conv;
    conv.init(g);
    require_grad_ok(conv, random_tensor<double>({2, 4, 8, 8}, g));
}

TEST_CASE("gradcheck conv2d: 1x1 stride 2 no padding, many images per GEMM chunk") {
    rng g(5);
    nn::conv2d<3, 4, 1, 2, 0, 1, false, double> conv;
    conv.init(g);
    // 4x4 output = 16 columns per image -> many images per chunk, exercising the gather/scatter
    require_grad_ok(conv, random_tensor<double>({40, 3, 8, 8}, g), {1e-5, 1e-6, nn::mode::train, 7, 200});
}

TEST_CASE("gradcheck linear with and without bias") {
    rng g(6);
    nn::linear<7, 5, true, double> fc;
    fc.init(g);
    require_grad_ok(fc, random_tensor<double>({4, 7}, g));
    nn::linear<7, 3, false, double> fc2;
    fc2.init(g);
    require_grad_ok(fc2, random_tensor<double>({4, 7}, g));
}

TEST_CASE("gradcheck batch_norm 2-D and 1-D, train and eval") {
    rng g(7);
    nn::batch_norm<3, double> bn;
    for (auto& v : bn.weight()) v = g.uniform(0.5, 1.5);
    for (auto& v : bn.bias()) v = g.uniform(-0.5, 0.5);
    for (auto& v : bn.running_mean()) v = g.uniform(-0.5, 0.5);
    for (auto& v : bn.running_var()) v = g.uniform(0.5, 2.0);
    require_grad_ok(bn, random_tensor<double>({4, 3, 3, 3}, g));
    require_grad_ok(bn, random_tensor<double>({4, 3, 3, 3}, g), {1e-5, 1e-6, nn::mode::eval, 8, 0});
    nn::batch_norm<5, double> bn1;
    for (auto& v : bn1.weight()) v = g.uniform(0.5, 1.5);
    require_grad_ok(bn1, random_tensor<double>({6, 5}, g));
    require_grad_ok(bn1, random_tensor<double>({6, 5}, g), {1e-5, 1e-6, nn::mode::eval, 9, 0});
}

TEST_CASE("gradcheck relu and relu6") {
    rng g(8);
    nn::relu<double> r;
    require_grad_ok(r, random_tensor<double>({2, 3, 4, 4}, g));
    nn::relu6<double> r6;
    require_grad_ok(r6, random_tensor<double>({2, 3, 4, 4}, g, -3.0, 9.0));
}

TEST_CASE("gradcheck pools and flatten") {
    rng g(9);
    nn::max_pool<2, 2, 0, double> mp;
    require_grad_ok(mp, random_tensor<double>({2, 3, 6, 7}, g));
    nn::max_pool<3, 2, 1, double> mp3;
    require_grad_ok(mp3, random_tensor<double>({2, 2, 7, 7}, g));
    nn::avg_pool<2, 2, 0, double> ap;
    require_grad_ok(ap, random_tensor<double>({2, 3, 6, 6}, g));
    nn::avg_pool<3, 2, 1, double> ap3;
    require_grad_ok(ap3, random_tensor<double>({2, 2, 7, 7}, g));
    nn::global_avg_pool<double> gap;
    require_grad_ok(gap, random_tensor<double>({3, 4, 5, 5}, g));
    nn::flatten<double> fl;
    require_grad_ok(fl, random_tensor<double>({3, 2, 2, 3}, g));
}

TEST_CASE("gradcheck residual blocks: identity, option-A, projection shortcuts") {
    rng g(10);
    nn::basic_block<4, 4, 1, double> id;
    id.init(g);
    require_grad_ok(id, random_tensor<double>({3, 4, 5, 5}, g));
    nn::basic_block<4, 8, 2, double> oa;
    oa.init(g);
    require_grad_ok(oa, random_tensor<double>({3, 4, 6, 6}, g));
    nn::basic_block_proj<4, 6, 2, double> pr;
    pr.init(g);
    require_grad_ok(pr, random_tensor<double>({3, 4, 6, 6}, g));
}

TEST_CASE("gradcheck a small ResNet-style sequential end to end") {
    rng g(11);
    nn::sequential<nn::conv2d<1, 4, 3, 1, 1, 1, false, double>, nn::batch_norm<4, double>, nn::relu<double>,
                   nn::basic_block<4, 8, 2, double>, nn::global_avg_pool<double>, nn::batch_norm<8, double>,
                   nn::linear<8, 3, true, double>>
        net;
    net.init(g);
    require_grad_ok(net, random_tensor<double>({4, 1, 6, 6}, g), {1e-5, 1e-6, nn::mode::train, 3, 40});
}

namespace {
// A conv whose input gradient is deliberately 1% too large.
struct off_by_one_percent : nn::conv2d<2, 3, 3, 1, 1, 1, false, double> {
    using base = nn::conv2d<2, 3, 3, 1, 1, 1, false, double>;
    tensor<double> m_bad;
    const tensor<double>& backward(const tensor<double>& dy, bool need_dx = true) {
        m_bad = base::backward(dy, need_dx);
        m_bad *= 1.01;
        return m_bad;
    }
};
// ... and one whose weight gradient is 1% too small.
struct weight_off : nn::conv2d<2, 3, 3, 1, 1, 1, false, double> {
    using base = nn::conv2d<2, 3, 3, 1, 1, 1, false, double>;
    const tensor<double>& backward(const tensor<double>& dy, bool need_dx = true) {
        const auto& dx = base::backward(dy, need_dx);
        weight_grad() *= 0.99;
        return dx;
    }
};
}  // namespace

TEST_CASE("the gradient checker rejects a gradient that is off by 1%") {
    rng g(12);
    off_by_one_percent bad;
    bad.init(g);
    auto x = random_tensor<double>({2, 2, 5, 5}, g);
    auto r = check_gradients(bad, x);
    CHECK_FALSE(r.ok);
    CHECK(r.worst == "input");
    CHECK(r.max_rel_error > 5e-3);

    weight_off bad2;
    bad2.init(g);
    auto r2 = check_gradients(bad2, x);
    CHECK_FALSE(r2.ok);
    CHECK(r2.worst == "weight");
}

TEST_CASE("gradcheck conv2d: polyphase strided paths (stride 3, 5x5, pad 2; stride 2 without padding)") {
    rng g(13);
    nn::conv2d<2, 3, 5, 3, 2, 1, true, double> c53;
    c53.init(g);
    require_grad_ok(c53, random_tensor<double>({2, 2, 10, 8}, g));
    nn::conv2d<2, 3, 3, 2, 0, 1, false, double> c32;
    c32.init(g);
    require_grad_ok(c32, random_tensor<double>({2, 2, 9, 8}, g));
}

// The integer networks of committed students (benchmarks/results/students_resnet20_fmnist/)
// give the students' answers: top-1 agreement >= 99.9% on the 10,000 Fashion-MNIST test images
// (issue 4's gate), for the binary W1A1 and the W2A2 SQAKD students of seed 0, with every kernel
// tier of this CPU giving the same integer network outputs. sqakd_int_eval records all students.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "sqakd/data.hpp"
#include "sqakd/deploy/compile.hpp"
#include "sqakd/io.hpp"
#include "student_recipe.hpp"

using namespace sqakd;

namespace {
const std::string results = std::string(SQAKD_SOURCE_DIR) + "/benchmarks/results/students_resnet20_fmnist";

template <class WQ, class AQ>
void check_student(const std::string& run) {
    set_num_threads(2);
    const std::string ck = results + "/" + run + "/final.sqakd";
    INFO(ck);
    REQUIRE(io::file_exists(ck));
    auto s = std::make_unique<sqakd_examples::student_net<WQ, AQ>>();
    io::load_checkpoint(ck, *s);
    const auto net = deploy::compile(*s, {1, 28, 28});
    auto test_ds = data::load_fashion_mnist(data::default_fashion_mnist_dir, data::split::test);
    REQUIRE(test_ds.size() == 10000);
    data::loader te(test_ds, data::loader_options::evaluation(500, data::fashion_mnist_stats()));
    deploy::int_network::workspace ws;
    tensor<float> images;
    std::vector<std::int32_t> labels;
    std::size_t same = 0, n = 0, correct = 0;
    double max_diff = 0;
    for (std::size_t b = 0; b < te.num_batches(); ++b) {
        te.batch(b, images, labels);
        const std::size_t N = images.shape()[0];
        const tensor<float>& y = s->forward(images, nn::mode::eval);  // one channel: NCHW is NHWC
        std::vector<float> logits(N * 10);
        REQUIRE(net.run(images.data(), N, logits.data(), ws) == deploy::status::ok);
        for (std::size_t i = 0; i < N; ++i) {
            const auto ts = std::max_element(y.data() + i * 10, y.data() + i * 10 + 10) - (y.data() + i * 10);
            const auto ti = std::max_element(logits.data() + i * 10, logits.data() + i * 10 + 10) - (logits.data() + i * 10);
            same += ts == ti;
            correct += ti == labels[i];
            for (std::size_t c = 0; c < 10; ++c)
                max_diff = std::max(max_diff, static_cast<double>(std::fabs(y.data()[i * 10 + c] - logits[i * 10 + c])));
            ++n;
        }
    }
    const double agreement = 100.0 * static_cast<double>(same) / static_cast<double>(n);
    MESSAGE(run << ": agreement " << agreement << "% (" << same << "/" << n << "), max logit diff " << max_diff
                << ", integer top-1 " << 100.0 * static_cast<double>(correct) / static_cast<double>(n) << "%");
    CHECK(agreement >= 99.9);
    // every tier: the same integer network outputs on one batch
    te.batch(0, images, labels);
    std::vector<float> ref(images.shape()[0] * 10), got(ref.size());
    const auto gen = deploy::compile(*s, {1, 28, 28}, deploy::isa::generic);
    REQUIRE(gen.run(images.data(), images.shape()[0], ref.data(), ws) == deploy::status::ok);
    for (const deploy::isa t : {deploy::isa::sse41, deploy::isa::avx2, deploy::isa::avx512, deploy::isa::amx}) {
        if (!deploy::isa_available(t, WQ::bits == 1 && AQ::bits == 1)) continue;
        const auto net_t = deploy::compile(*s, {1, 28, 28}, t);
        REQUIRE(net_t.run(images.data(), images.shape()[0], got.data(), ws) == deploy::status::ok);
        CHECK_MESSAGE(got == ref, "tier " << deploy::isa_name(t));
    }
}
}  // namespace

TEST_CASE("integer network of the W2A2 SQAKD student (seed 0) agrees with it on >= 99.9% of the test set") {
    check_student<quant::interval_weight<2, quant::ewgs>, quant::interval_act<2, quant::ewgs>>("interval_w2a2_sqakd_seed0");
}

TEST_CASE("integer network of the W1A1 SQAKD student (seed 0, AND + popcount) agrees on >= 99.9%") {
    check_student<quant::interval_weight<1, quant::ewgs>, quant::interval_act<1, quant::ewgs>>("interval_w1a1_sqakd_seed0");
}

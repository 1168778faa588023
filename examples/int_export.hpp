// The integer network of a trained student, measured against the student: shared by
// sqakd_int_eval and the student recipe (the demo's integer-export lines).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "sqakd/data.hpp"
#include "sqakd/deploy/compile.hpp"

namespace sqakd_examples {

struct int_agreement {
    std::size_t images = 0, same = 0, correct_student = 0, correct_int = 0;
    double max_logit_diff = 0, seconds_int = 0;
    double agreement() const { return images ? 100.0 * static_cast<double>(same) / static_cast<double>(images) : -1; }
    double top1_int() const { return images ? 100.0 * static_cast<double>(correct_int) / static_cast<double>(images) : -1; }
    double top1_student() const {
        return images ? 100.0 * static_cast<double>(correct_student) / static_cast<double>(images) : -1;
    }
};

/// NCHW (the training layout) to NHWC (the integer network's).
inline void to_nhwc(const sqakd::tensor<float>& x, std::vector<float>& out) {
    const std::size_t n = x.shape()[0], c = x.shape()[1], hw = x.shape()[2] * x.shape()[3];
    out.resize(x.size());
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t ch = 0; ch < c; ++ch)
            for (std::size_t p = 0; p < hw; ++p) out[(i * hw + p) * c + ch] = x.data()[(i * c + ch) * hw + p];
}

/// Runs the student (eval mode) and its integer network on every batch of `test`.
template <class Student>
int_agreement compare_int(Student& s, const sqakd::deploy::int_network& net, const sqakd::data::loader& test) {
    using namespace sqakd;
    int_agreement a;
    deploy::int_network::workspace ws;
    tensor<float> images;
    std::vector<std::int32_t> labels;
    std::vector<float> x, logits;
    auto argmax = [](const float* p, std::size_t k) { return static_cast<std::size_t>(std::max_element(p, p + k) - p); };
    for (std::size_t b = 0; b < test.num_batches(); ++b) {
        test.batch(b, images, labels);
        const std::size_t n = images.shape()[0];
        const tensor<float>& y = s.forward(images, nn::mode::eval);
        const std::size_t k = y.shape()[1];
        to_nhwc(images, x);
        logits.resize(n * k);
        const auto t0 = std::chrono::steady_clock::now();
        if (const auto st = net.run(x.data(), n, logits.data(), ws); st != deploy::status::ok)
            throw std::runtime_error(std::string("int_network::run: ") + deploy::describe(st));
        a.seconds_int += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t ts = argmax(y.data() + i * k, k), ti = argmax(logits.data() + i * k, k);
            for (std::size_t c = 0; c < k; ++c)
                a.max_logit_diff =
                    std::max(a.max_logit_diff, static_cast<double>(std::fabs(y.data()[i * k + c] - logits[i * k + c])));
            a.same += ts == ti;
            a.correct_student += static_cast<std::int32_t>(ts) == labels[i];
            a.correct_int += static_cast<std::int32_t>(ti) == labels[i];
            ++a.images;
        }
    }
    return a;
}

/// Mean milliseconds per image of the integer network at batch 1 over the first `count` test
/// images (after 5 warm-up images).
inline double int_latency_ms(const sqakd::deploy::int_network& net, const sqakd::data::loader& test, std::size_t count) {
    using namespace sqakd;
    deploy::int_network::workspace ws;
    tensor<float> images;
    std::vector<std::int32_t> labels;
    std::vector<float> x, logits(net.classes());
    test.batch(0, images, labels);
    to_nhwc(images, x);
    const std::size_t n = std::min<std::size_t>(images.shape()[0], count), per = net.input().size();
    for (std::size_t i = 0; i < std::min<std::size_t>(5, n); ++i) (void)net.run(x.data() + i * per, 1, logits.data(), ws);
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < n; ++i) (void)net.run(x.data() + i * per, 1, logits.data(), ws);
    return 1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / static_cast<double>(n);
}

}  // namespace sqakd_examples

// Shared setup of the training tests: the SQAKD.md §5 teacher recipe on Fashion-MNIST.
#pragma once

#include <cstdlib>
#include <string>

#include "sqakd/data.hpp"
#include "sqakd/io.hpp"
#include "sqakd/nn.hpp"
#include "sqakd/optim.hpp"
#include "sqakd/train/fit.hpp"

namespace train_test {

using net_t = sqakd::nn::models::resnet20<1, 10>;

inline sqakd::data::loader_options train_options(std::uint64_t seed, std::size_t batch) {
    sqakd::data::loader_options o;
    o.batch_size = batch;
    o.shuffle = true;
    o.augment = true;
    o.seed = seed;
    o.normalize(sqakd::data::fashion_mnist_stats());
    return o;
}

inline sqakd::data::loader_options test_options() {
    sqakd::data::loader_options o;
    o.batch_size = 500;
    o.shuffle = false;
    o.augment = false;
    o.normalize(sqakd::data::fashion_mnist_stats());
    return o;
}

/// A fresh, empty directory under the system temp dir.
inline std::string temp_dir(const std::string& tag) {
    std::string tmpl = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + "/sqakd_" + tag + "_XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("cannot create a temp dir");
    return tmpl;
}

inline std::string results_dir() { return std::string(SQAKD_SOURCE_DIR) + "/benchmarks/results/teacher_resnet20_fmnist"; }

}  // namespace train_test

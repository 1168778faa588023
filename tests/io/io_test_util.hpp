// Helpers shared by the io tests: a scratch directory, a small model, random state.
#pragma once

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include "sqakd/core/rng.hpp"
#include "sqakd/io.hpp"
#include "sqakd/nn.hpp"

namespace io_test {

namespace fs = std::filesystem;

/// A fresh directory under the system temp dir, removed with everything in it on scope exit.
struct temp_dir {
    fs::path path;
    explicit temp_dir(const std::string& tag) {
        static int counter = 0;
        path = fs::temp_directory_path() /
               ("sqakd_io_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ec);
        fs::remove_all(path, ec);
    }
    std::string operator/(const std::string& name) const { return (path / name).string(); }
    /// Names of the entries in the directory, sorted.
    std::vector<std::string> entries() const {
        std::vector<std::string> out;
        for (const auto& e : fs::directory_iterator(path)) out.push_back(e.path().filename().string());
        std::sort(out.begin(), out.end());
        return out;
    }
};

/// A small model with every kind of state: conv weight+bias, BN 2-D and 1-D (params and
/// running statistics), linear weight+bias.
template <class T = float, int C = 3>
using tiny_net = sqakd::nn::sequential<sqakd::nn::conv2d<1, C, 3, 1, 1, 1, true, T>, sqakd::nn::batch_norm<C, T>,
                                       sqakd::nn::relu<T>, sqakd::nn::global_avg_pool<T>,
                                       sqakd::nn::batch_norm<C, T>, sqakd::nn::linear<C, 4, true, T>>;

/// Fills every parameter and buffer of `m` with distinct random values (running_var > 0).
template <class Model>
void randomize(Model& m, std::uint64_t seed) {
    sqakd::rng g(seed);
    m.for_each_param([&](const std::string&, auto& v, auto&, auto) {
        for (auto& x : v) x = static_cast<std::decay_t<decltype(x)>>(g.uniform(-1, 1));
    });
    m.for_each_buffer([&](const std::string& name, auto& v) {
        const bool var = name.find("running_var") != std::string::npos;
        for (auto& x : v) x = static_cast<std::decay_t<decltype(x)>>(var ? g.uniform(0.5, 2) : g.uniform(-1, 1));
    });
}

inline bool bit_equal(const sqakd::tensor<float>& a, const sqakd::tensor<float>& b) {
    return a.dimension() == b.dimension() && std::equal(a.shape().begin(), a.shape().end(), b.shape().begin()) &&
           (a.size() == 0 || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

inline bool contains(const std::string& hay, const std::string& needle) {
    return hay.find(needle) != std::string::npos;
}

}  // namespace io_test

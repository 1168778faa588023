// A program written the way a user of the installed library would write it: it only sees
// sqakd through find_package(sqakd), add_subdirectory(sqakd) or pkg-config, never through
// sqakd's own build flags. Exit status 0 means the headers compiled, linked (OpenBLAS, OpenMP,
// zlib) and a small network ran forward and backward with the expected shapes.
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <exception>

#include "sqakd/nn.hpp"

namespace nn = sqakd::nn;

int main() {
    try {
        using net = nn::sequential<nn::conv2d<1, 4, 3, 1, 1>, nn::batch_norm<4>, nn::relu<>,
                                   nn::global_avg_pool<>, nn::linear<4, 3>>;
        net model;
        sqakd::rng g(42);
        model.init(g);

        sqakd::tensor<float> x = sqakd::tensor<float>::from_shape({2, 1, 8, 8});
        for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(g.uniform());

        const auto& y = model.forward(x, nn::mode::train);
        if (y.dimension() != 2 || y.shape()[0] != 2 || y.shape()[1] != 3) {
            std::fprintf(stderr, "consumer: expected output shape [2, 3], got %s\n",
                         sqakd::shape_str(y.shape()).c_str());
            return 1;
        }
        for (std::size_t i = 0; i < y.size(); ++i) {
            if (!std::isfinite(y.data()[i])) {
                std::fprintf(stderr, "consumer: output %zu is not finite\n", i);
                return 1;
            }
        }

        sqakd::tensor<float> dy = sqakd::tensor<float>::from_shape({2, 3});
        dy.fill(1.0f);
        const auto& dx = model.backward(dy, /*need_dx=*/true);
        if (dx.dimension() != 4 || dx.shape()[2] != 8 || dx.shape()[3] != 8) {
            std::fprintf(stderr, "consumer: expected input gradient of shape [2, 1, 8, 8], got %s\n",
                         sqakd::shape_str(dx.shape()).c_str());
            return 1;
        }
        std::printf("consumer: ok, output %s\n", sqakd::shape_str(y.shape()).c_str());
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "consumer: exception: %s\n", e.what());
        return 1;
    }
}

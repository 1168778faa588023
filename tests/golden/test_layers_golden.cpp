// Golden tests: every layer of sqakd/nn against PyTorch 1.13 (float32 data, float64-exact
// expected values), forward and backward, parameters, gradients and BN running statistics.
// Data: tests/data/golden/<case>.txt from scripts/golden/make_golden_layers.py; the tolerance
// and the error measure are explained in golden_check.hpp.
#include <doctest/doctest.h>

#include "golden_check.hpp"
#include "sqakd/nn.hpp"

using namespace sqakd;
using golden::run_layer_case;

TEST_SUITE("golden") {

TEST_CASE("golden conv2d 3x3 stride 1 pad 1, no bias") {
    nn::conv2d<4, 6, 3, 1, 1> l;
    run_layer_case("conv3x3_s1_p1", l, nn::mode::train);
}

TEST_CASE("golden conv2d 3x3 stride 2 pad 1 with bias (odd input)") {
    nn::conv2d<4, 6, 3, 2, 1, 1, true> l;
    run_layer_case("conv3x3_s2_p1_bias", l, nn::mode::train);
}

TEST_CASE("golden conv2d 3x3 groups 2") {
    nn::conv2d<4, 6, 3, 1, 1, 2> l;
    run_layer_case("conv3x3_groups2", l, nn::mode::train);
}

TEST_CASE("golden depthwise conv2d 3x3 stride 2") {
    nn::conv2d<6, 6, 3, 2, 1, 6> l;
    run_layer_case("conv3x3_depthwise_s2", l, nn::mode::train);
}

TEST_CASE("golden conv2d 1x1") {
    nn::conv2d<5, 7, 1> l;
    run_layer_case("conv1x1", l, nn::mode::train);
}

TEST_CASE("golden linear with bias") {
    nn::linear<10, 7, true> l;
    run_layer_case("linear", l, nn::mode::train);
}

TEST_CASE("golden batch_norm 2-D train (running stats, momentum 0.1, unbiased variance)") {
    nn::batch_norm<5> l;
    run_layer_case("bn2d_train", l, nn::mode::train);
}

TEST_CASE("golden batch_norm 2-D eval") {
    nn::batch_norm<5> l;
    run_layer_case("bn2d_eval", l, nn::mode::eval);
}

TEST_CASE("golden batch_norm 1-D train") {
    nn::batch_norm<6> l;
    run_layer_case("bn1d_train", l, nn::mode::train);
}

TEST_CASE("golden batch_norm 1-D eval") {
    nn::batch_norm<6> l;
    run_layer_case("bn1d_eval", l, nn::mode::eval);
}

TEST_CASE("golden max_pool 2x2 (odd input, floor)") {
    nn::max_pool<2> l;
    run_layer_case("max_pool2x2", l, nn::mode::train);
}

TEST_CASE("golden max_pool 3x3 stride 2 pad 1") {
    nn::max_pool<3, 2, 1> l;
    run_layer_case("max_pool3x3_s2_p1", l, nn::mode::train);
}

TEST_CASE("golden avg_pool 2x2 (odd input, floor)") {
    nn::avg_pool<2> l;
    run_layer_case("avg_pool2x2", l, nn::mode::train);
}

TEST_CASE("golden avg_pool 3x3 stride 2 pad 1 (count_include_pad)") {
    nn::avg_pool<3, 2, 1> l;
    run_layer_case("avg_pool3x3_s2_p1", l, nn::mode::train);
}

TEST_CASE("golden global_avg_pool") {
    nn::global_avg_pool<> l;
    run_layer_case("global_avg_pool", l, nn::mode::train);
}

TEST_CASE("golden flatten") {
    nn::flatten<> l;
    run_layer_case("flatten", l, nn::mode::train);
}

TEST_CASE("golden relu (exact zeros in the input)") {
    nn::relu<> l;
    run_layer_case("relu", l, nn::mode::train);
}

TEST_CASE("golden relu6 (exact 0 and 6 in the input)") {
    nn::relu6<> l;
    run_layer_case("relu6", l, nn::mode::train);
}

TEST_CASE("golden option-A shortcut, stride 2 on an odd input") {
    nn::option_a<4, 8, 2> l;
    run_layer_case("option_a", l, nn::mode::train);
}

}  // TEST_SUITE

// sqakd/nn/models/resnet.hpp - CIFAR-style ResNet-20 (SQAKD.md §6).
//
//   nn::models::resnet20<InChannels = 1, Classes = 10, T = float>
//
// conv3x3 In->16 + BN + ReLU; 3 stages x 3 basic blocks (16/32/64 channels, stride 2 at the
// first block of stages 2 and 3, option-A shortcuts); global average pool; BatchNorm1d(64);
// linear 64->Classes. On 28x28 inputs the stages run at 28/14/7.
//
// Layer indices (parameter-name prefixes): 0 conv, 1 bn, 2 relu, 3-5 stage 1, 6-8 stage 2,
// 9-11 stage 3, 12 global pool, 13 bn1d, 14 fc.
//
// Example:
//   nn::models::resnet20<1, 10> teacher;
//   rng g(seed); teacher.init(g);
#pragma once

#include "sqakd/nn/activation.hpp"
#include "sqakd/nn/batch_norm.hpp"
#include "sqakd/nn/conv2d.hpp"
#include "sqakd/nn/linear.hpp"
#include "sqakd/nn/pool.hpp"
#include "sqakd/nn/residual.hpp"
#include "sqakd/nn/sequential.hpp"

namespace sqakd::nn::models {

template <int InChannels = 1, int Classes = 10, class T = float>
using resnet20 = sequential<
    conv2d<InChannels, 16, 3, 1, 1, 1, false, T>, batch_norm<16, T>, relu<T>,
    basic_block<16, 16, 1, T>, basic_block<16, 16, 1, T>, basic_block<16, 16, 1, T>,
    basic_block<16, 32, 2, T>, basic_block<32, 32, 1, T>, basic_block<32, 32, 1, T>,
    basic_block<32, 64, 2, T>, basic_block<64, 64, 1, T>, basic_block<64, 64, 1, T>,
    global_avg_pool<T>, batch_norm<64, T>, linear<64, Classes, true, T>>;

}  // namespace sqakd::nn::models

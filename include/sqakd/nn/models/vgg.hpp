// sqakd/nn/models/vgg.hpp - VGG-small (SQAKD.md §6).
//
//   nn::models::vgg_small<InChannels = 1, Classes = 10, InSize = 28, T = float>
//
// conv3x3 32-32-M-64-64-M-128-128-M, every conv with bias, followed by BN and ReLU;
// flatten; linear (128 * (InSize/8)^2 -> Classes). InSize is the input height = width
// (28 for Fashion-MNIST, 32 for CIFAR); the FC width depends on it.
#pragma once

#include "sqakd/nn/activation.hpp"
#include "sqakd/nn/batch_norm.hpp"
#include "sqakd/nn/conv2d.hpp"
#include "sqakd/nn/linear.hpp"
#include "sqakd/nn/pool.hpp"
#include "sqakd/nn/sequential.hpp"

namespace sqakd::nn::models {

template <int InChannels = 1, int Classes = 10, int InSize = 28, class T = float>
using vgg_small = sequential<
    conv2d<InChannels, 32, 3, 1, 1, 1, true, T>, batch_norm<32, T>, relu<T>,
    conv2d<32, 32, 3, 1, 1, 1, true, T>, batch_norm<32, T>, relu<T>, max_pool<2, 2, 0, T>,
    conv2d<32, 64, 3, 1, 1, 1, true, T>, batch_norm<64, T>, relu<T>,
    conv2d<64, 64, 3, 1, 1, 1, true, T>, batch_norm<64, T>, relu<T>, max_pool<2, 2, 0, T>,
    conv2d<64, 128, 3, 1, 1, 1, true, T>, batch_norm<128, T>, relu<T>,
    conv2d<128, 128, 3, 1, 1, 1, true, T>, batch_norm<128, T>, relu<T>, max_pool<2, 2, 0, T>,
    flatten<T>, linear<128 * (InSize / 8) * (InSize / 8), Classes, true, T>>;

}  // namespace sqakd::nn::models

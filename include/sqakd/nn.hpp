// sqakd/nn.hpp - all layers and models of the training engine.
#pragma once

#include "sqakd/nn/activation.hpp"
#include "sqakd/nn/batch_norm.hpp"
#include "sqakd/nn/conv2d.hpp"
#include "sqakd/nn/layer.hpp"
#include "sqakd/nn/linear.hpp"
#include "sqakd/nn/models/resnet.hpp"
#include "sqakd/nn/models/vgg.hpp"
#include "sqakd/nn/pool.hpp"
#include "sqakd/nn/quantize.hpp"
#include "sqakd/nn/quantized.hpp"
#include "sqakd/nn/residual.hpp"
#include "sqakd/nn/sequential.hpp"

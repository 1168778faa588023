// sqakd/sqakd.hpp - umbrella header: the training engine (layers, models, data, optimisers,
// quantizers, losses, trainers) and io. Include the parts you need instead to keep compile times down.
#pragma once

#include "sqakd/core/error.hpp"
#include "sqakd/core/parallel.hpp"
#include "sqakd/core/rng.hpp"
#include "sqakd/core/tensor.hpp"
#include "sqakd/data.hpp"
#include "sqakd/distill/cross_entropy.hpp"
#include "sqakd/distill/feature.hpp"
#include "sqakd/distill/kd.hpp"
#include "sqakd/io.hpp"
#include "sqakd/nn.hpp"
#include "sqakd/optim.hpp"
#include "sqakd/quant.hpp"
#include "sqakd/testing/gradient_check.hpp"
#include "sqakd/train/distill.hpp"
#include "sqakd/train/evaluate.hpp"
#include "sqakd/train/fit.hpp"
#include "sqakd/train/metrics.hpp"
#include "sqakd/train/progress.hpp"

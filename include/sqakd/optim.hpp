// sqakd/optim.hpp - optimisers (sgd, adam/adamw), parameter groups and learning-rate schedules.
//
//   auto params = optim::collect_params(model);
//   optim::sgd<> opt({{params, 0.1, 1e-4}}, {0.9});
//   optim::cosine_schedule lr{0.1, epochs};
//   opt.set_lr(0, lr(epoch)); ... opt.step();
#pragma once

#include "sqakd/optim/adam.hpp"
#include "sqakd/optim/param_group.hpp"
#include "sqakd/optim/schedule.hpp"
#include "sqakd/optim/sgd.hpp"

// sqakd/data.hpp - datasets (IDX/Fashion-MNIST, CIFAR-10/100), augmentation, batch loaders.
//
//   #include <sqakd/data.hpp>
//   auto train = sqakd::data::load_fashion_mnist(sqakd::data::split::train);
//   sqakd::data::loader_options opt;
//   opt.augment = true;
//   opt.normalize(sqakd::data::fashion_mnist_stats());
//   sqakd::data::loader batches(train, opt);
#pragma once

#include "sqakd/data/augment.hpp"
#include "sqakd/data/cifar.hpp"
#include "sqakd/data/dataset.hpp"
#include "sqakd/data/gz_reader.hpp"
#include "sqakd/data/idx.hpp"
#include "sqakd/data/loader.hpp"

// sqakd/train/evaluate.hpp - top-1 accuracy and loss of a classifier on a labelled loader.
//
//   auto r = train::evaluate(model, test_loader);   // eval mode (BN running statistics)
//   std::printf("top-1 %.2f%%\n", r.top1);
#pragma once

#include <cstdint>
#include <vector>

#include "sqakd/core/tensor.hpp"
#include "sqakd/distill/cross_entropy.hpp"
#include "sqakd/nn/layer.hpp"

namespace sqakd::train {

struct eval_result {
    double top1 = 0;      ///< percent of correct argmax predictions
    double loss = 0;      ///< mean cross-entropy
    std::size_t count = 0;
};

/// Index of the largest logit in each row (first one on ties).
template <class T>
std::vector<std::int32_t> argmax_rows(const tensor<T>& logits) {
    const std::size_t n = logits.shape()[0], c = logits.shape()[1];
    std::vector<std::int32_t> out(n);
    for (std::size_t i = 0; i < n; ++i) {
        const T* r = logits.data() + i * c;
        std::size_t best = 0;
        for (std::size_t j = 1; j < c; ++j)
            if (r[j] > r[best]) best = j;
        out[i] = static_cast<std::int32_t>(best);
    }
    return out;
}

/// Evaluates `model` in eval mode on every batch of `loader` (a labelled loader).
template <class Model, class Loader>
eval_result evaluate(Model& model, Loader& loader, std::size_t max_batches = 0) {
    eval_result r;
    tensor<typename Model::scalar_type> x;
    std::vector<std::int32_t> y;
    std::size_t correct = 0;
    double loss_sum = 0;
    const std::size_t nb = max_batches ? std::min(max_batches, loader.num_batches()) : loader.num_batches();
    for (std::size_t b = 0; b < nb; ++b) {
        loader.batch(b, x, y);
        const auto& logits = model.forward(x, nn::mode::eval);
        const auto pred = argmax_rows(logits);
        for (std::size_t i = 0; i < pred.size(); ++i) correct += pred[i] == y[i];
        loss_sum += distill::cross_entropy{}.value(logits, y) * static_cast<double>(y.size());
        r.count += y.size();
    }
    if (r.count) {
        r.top1 = 100.0 * static_cast<double>(correct) / static_cast<double>(r.count);
        r.loss = loss_sum / static_cast<double>(r.count);
    }
    return r;
}

}  // namespace sqakd::train

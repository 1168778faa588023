// sqakd/train/fit.hpp - supervised training loop (the FP teacher of SQAKD.md §5) with
// per-epoch evaluation, JSON-lines metrics, checkpoints every epoch and exact resume.
//
//   nn::models::resnet20<1, 10> net;  rng g(seed);  net.init(g);
//   optim::sgd<> opt({{optim::collect_params(net), 0.1, 1e-4}}, {0.9});
//   train::fit_options o;  o.epochs = 8;  o.run_dir = "runs/teacher_s0";
//   o.meta = {{"seed", "0"}, {"command", "..."}};
//   auto res = train::fit(net, opt, optim::cosine_schedule{0.1, 8}, train_loader, &test_loader, o);
//
// Per epoch e (0-based): every optimiser group gets lr = schedule(e) (held for the epoch, as
// PyTorch's CosineAnnealingLR stepped once per epoch); the loader is set to epoch e (its
// shuffle and augmentation depend only on (seed, e)); for each batch: zero grads, forward in
// train mode, loss, backward, step. Then the test set is evaluated in eval mode.
//
// Files in run_dir: metrics.jsonl (one line per epoch, appended), last.sqakd (weights, BN
// buffers, optimiser state, metadata; rewritten atomically after every epoch) and, with
// keep_every_epoch, epoch_<k>.sqakd (k = epochs completed). A run that finds last.sqakd
// resumes after its epoch: weights, buffers and optimiser state are restored exactly and the
// loader's epoch fixes the data order, so the resumed run ends with the same weights as an
// uninterrupted one (fixed seed and thread count). Metadata: the caller's entries plus
// "epoch", "epochs", "optimizer_steps", "test_top1" and "weights_checksum_epoch_<k>" for every
// completed epoch.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "sqakd/data/loader.hpp"
#include "sqakd/distill/cross_entropy.hpp"
#include "sqakd/io/checkpoint.hpp"
#include "sqakd/io/model_state.hpp"
#include "sqakd/nn/layer.hpp"
#include "sqakd/train/evaluate.hpp"
#include "sqakd/train/metrics.hpp"
#include "sqakd/train/progress.hpp"

namespace sqakd::train {

struct fit_options {
    std::size_t epochs = 8;
    std::string run_dir;            ///< checkpoints + metrics.jsonl; empty: neither
    bool resume = true;             ///< continue from run_dir/last.sqakd when it exists
    bool keep_every_epoch = true;   ///< also write run_dir/epoch_<k>.sqakd
    bool progress = true;           ///< progress bar on stderr
    std::size_t max_batches = 0;    ///< per epoch; 0 = all (short smoke runs)
    std::size_t stop_after = 0;     ///< stop after this many epochs of this call (0 = run to the end)
    std::string label = "train";
    io::meta_list meta;             ///< recorded in every checkpoint (seed, commit, command, ...)
};

struct epoch_record {
    std::size_t epoch = 0;  ///< 1-based: epochs completed
    double lr = 0, train_loss = 0, train_top1 = 0, test_top1 = -1, test_loss = -1, seconds = 0,
           images_per_sec = 0;
    std::string weights_checksum;
};

struct fit_result {
    std::vector<epoch_record> epochs;  ///< the epochs this call trained
    std::size_t start_epoch = 0;       ///< epochs already done when the call started (resume)
    io::meta_list meta;                ///< the metadata of the last checkpoint written
};

namespace detail {
/// Saves the optimiser's state tensors as extras named "optim.<state name>".
template <class Optimizer>
void put_optimizer_state(Optimizer& opt, io::checkpoint_extra& extra, const std::string& prefix) {
    opt.for_each_state([&](const std::string& name, tensor<float>& t) { extra.tensors.emplace_back(prefix + name, t); });
    extra.set(prefix + "steps", std::to_string(opt.step_count()));
}

/// Restores what put_optimizer_state saved; every state tensor must be present with its shape.
template <class Optimizer>
void get_optimizer_state(Optimizer& opt, const io::checkpoint& ck, const std::string& prefix, const std::string& file) {
    opt.for_each_state([&](const std::string& name, tensor<float>& t) {
        const tensor<float>* s = ck.find_extra(prefix + name);
        if (!s) throw error::corrupt_file(file + ": optimiser state '" + prefix + name + "' is missing");
        check_same_shape((file + ": optimiser state '" + prefix + name + "'").c_str(), t, *s);
        t = *s;
    });
    const std::string steps = ck.get(prefix + "steps");
    opt.step_count() = static_cast<std::uint64_t>(std::stoull(steps));
}
}  // namespace detail

/// Trains `model` with cross-entropy on `train`, evaluating on `test` (may be null) after every
/// epoch. See the header comment for files, resume and determinism.
template <class Model, class Optimizer, class Schedule, class TestLoader = data::loader>
fit_result fit(Model& model, Optimizer& opt, const Schedule& schedule, data::loader& train, TestLoader* test,
               const fit_options& o) {
    using T = typename Model::scalar_type;
    fit_result res;
    const bool files = !o.run_dir.empty();
    const std::string last = o.run_dir + "/last.sqakd";
    io::meta_list meta = o.meta;
    if (files) io::make_dirs(o.run_dir);
    if (files && o.resume && io::file_exists(last)) {
        io::checkpoint ck = io::read_checkpoint(last);
        io::load_into(model, ck);
        detail::get_optimizer_state(opt, ck, "optim.", last);
        res.start_epoch = static_cast<std::size_t>(std::stoull(ck.get("epoch")));
        // keep the per-epoch checksums of the epochs already done
        for (const auto& kv : ck.meta)
            if (kv.first.rfind("weights_checksum_epoch_", 0) == 0) io::detail::meta_set(meta, kv.first, kv.second);
        if (o.progress)
            std::fprintf(stderr, "%s: resuming from %s after epoch %zu\n", o.label.c_str(), last.c_str(),
                         res.start_epoch);
    }
    metrics_log log;
    if (files) log = metrics_log(o.run_dir + "/metrics.jsonl");

    distill::cross_entropy ce;
    tensor<T> x, dlogits;
    std::vector<std::int32_t> y;
    std::size_t trained = 0;
    for (std::size_t e = res.start_epoch; e < o.epochs; ++e) {
        if (o.stop_after && trained >= o.stop_after) break;
        const double lr = schedule(e);
        for (std::size_t g = 0; g < opt.num_groups(); ++g) opt.set_lr(g, lr);
        train.set_epoch(e);
        const std::size_t nb = o.max_batches ? std::min(o.max_batches, train.num_batches()) : train.num_batches();
        progress bar(o.label + " epoch " + std::to_string(e + 1) + "/" + std::to_string(o.epochs), nb, "img", stderr,
                     o.progress);
        double loss_sum = 0;
        std::size_t seen = 0, correct = 0;
        for (std::size_t b = 0; b < nb; ++b) {
            train.batch(b, x, y);
            nn::zero_grad(model);
            const auto& logits = model.forward(x, nn::mode::train);
            const double loss = ce(logits, y, dlogits);
            const auto pred = argmax_rows(logits);
            for (std::size_t i = 0; i < pred.size(); ++i) correct += pred[i] == y[i];
            model.backward(dlogits, false);
            opt.step();
            loss_sum += loss * static_cast<double>(y.size());
            seen += y.size();
            bar.advance(1, y.size(), {{"loss", loss_sum / static_cast<double>(seen)}});
        }
        bar.finish();
        epoch_record r;
        r.epoch = e + 1;
        r.lr = lr;
        r.train_loss = seen ? loss_sum / static_cast<double>(seen) : 0;
        r.train_top1 = seen ? 100.0 * static_cast<double>(correct) / static_cast<double>(seen) : 0;
        r.seconds = bar.elapsed_seconds();
        r.images_per_sec = r.seconds > 0 ? static_cast<double>(seen) / r.seconds : 0;
        if (test) {
            const auto ev = evaluate(model, *test);
            r.test_top1 = ev.top1;
            r.test_loss = ev.loss;
        }
        r.weights_checksum = io::weights_checksum(model);
        ++trained;
        if (o.progress)
            std::fprintf(stderr, "%s epoch %zu/%zu: lr %.5g loss %.4f train top-1 %.2f%% test top-1 %.2f%% (%.0f img/s)\n",
                         o.label.c_str(), r.epoch, o.epochs, r.lr, r.train_loss, r.train_top1, r.test_top1,
                         r.images_per_sec);
        if (files) {
            io::detail::meta_set(meta, "epoch", std::to_string(r.epoch));
            io::detail::meta_set(meta, "epochs", std::to_string(o.epochs));
            io::detail::meta_set(meta, "optimizer_steps", std::to_string(opt.step_count() ));
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.2f", r.test_top1);
            io::detail::meta_set(meta, "test_top1", buf);
            io::detail::meta_set(meta, "weights_checksum_epoch_" + std::to_string(r.epoch), r.weights_checksum);
            io::checkpoint_extra extra;
            extra.meta = meta;
            detail::put_optimizer_state(opt, extra, "optim.");
            if (o.keep_every_epoch)
                io::save_checkpoint(o.run_dir + "/epoch_" + std::to_string(r.epoch) + ".sqakd", model, extra);
            io::save_checkpoint(last, model, extra);
            log.write({{"phase", "epoch"}, {"label", o.label}, {"epoch", static_cast<long long>(r.epoch)},
                       {"epochs", static_cast<long long>(o.epochs)}, {"lr", r.lr}, {"train_loss", r.train_loss},
                       {"train_top1", r.train_top1}, {"test_top1", r.test_top1}, {"test_loss", r.test_loss},
                       {"seconds", r.seconds}, {"images_per_sec", r.images_per_sec},
                       {"weights_checksum", r.weights_checksum}});
        }
        res.epochs.push_back(r);
    }
    res.meta = meta;
    return res;
}

}  // namespace sqakd::train

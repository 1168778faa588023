// The FP teacher recipe of SQAKD.md §5 as one function, shared by sqakd_train_teacher and
// the demo: ResNet-20 on Fashion-MNIST, SGD momentum 0.9, weight decay 1e-4, batch 256,
// cosine schedule, pad-2 random crop + flip, kaiming init; resumable through run_dir.
#pragma once

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common.hpp"
#include "sqakd/data.hpp"
#include "sqakd/io.hpp"
#include "sqakd/nn.hpp"
#include "sqakd/optim.hpp"
#include "sqakd/train/fit.hpp"

namespace sqakd_examples {

struct teacher_options {
    std::uint64_t seed = 0;
    std::size_t epochs = 8, batch = 256, train_subset = 0, test_subset = 0, max_batches = 0, stop_after = 0;
    double lr = 0.1, wd = 1e-4, momentum = 0.9;
    int threads = 2;
    std::string run_dir, data_dir = sqakd::data::default_fashion_mnist_dir;
    bool progress = true;
    std::string command, commit;
};

struct teacher_result {
    bool complete = false;
    std::size_t epochs_done = 0;
    std::vector<double> per_epoch_top1;  ///< test top-1 of every epoch (-1 where unknown)
    double top1 = -1, last3_top1 = -1, seconds = 0, images_per_sec = 0;
    std::size_t train_images = 0, test_images = 0;
    nlohmann::json record;  ///< the DESIGN.md result record (when complete)
};

using teacher_net = sqakd::nn::models::resnet20<1, 10>;

inline teacher_result run_teacher(teacher_net& net, const teacher_options& t) {
    using namespace sqakd;
    set_num_threads(t.threads);
    fmnist_loaders d(t.data_dir, t.batch, t.seed, t.train_subset, t.test_subset);
    data::loader &train_loader = d.train, &test_loader = d.test;

    rng g(t.seed);
    net.init(g);
    optim::sgd<> opt({{optim::collect_params(net), t.lr, t.wd}}, {t.momentum});

    train::fit_options o;
    o.epochs = t.epochs;
    o.run_dir = t.run_dir;
    o.progress = t.progress;
    o.max_batches = t.max_batches;
    o.stop_after = t.stop_after;
    o.label = "teacher";
    o.meta = {{"model", "resnet20"}, {"dataset", "fashion-mnist"}, {"method", "fp"},
              {"seed", std::to_string(t.seed)}, {"threads", std::to_string(t.threads)},
              {"commit", t.commit}, {"command", t.command}};
    auto res = train::fit(net, opt, optim::cosine_schedule{t.lr, t.epochs}, train_loader, &test_loader, o);

    teacher_result out;
    out.train_images = d.train_ds.size();
    out.test_images = d.test_ds.size();
    out.epochs_done = res.start_epoch + res.epochs.size();
    out.complete = out.epochs_done >= t.epochs;
    fill_epoch_results(out, t.run_dir, t.epochs, res.epochs);
    if (!out.complete) return out;
    out.record = {{"kind", "accuracy"}, {"model", "resnet20"}, {"dataset", "fashion-mnist"}, {"method", "fp"},
                  {"quantizer", "none"}, {"estimator", "none"}, {"w_bits", 32}, {"a_bits", 32},
                  {"epochs", t.epochs}, {"seed", t.seed}, {"top1", out.top1}, {"last3_top1", out.last3_top1},
                  {"per_epoch_top1", out.per_epoch_top1}, {"batch", t.batch}, {"threads", t.threads},
                  {"train_images", out.train_images}, {"test_images", out.test_images},
                  {"checkpoint", t.run_dir.empty() ? "" : t.run_dir + "/last.sqakd"},
                  {"commit", sqakd::io::detail::meta_find(res.meta, "commit") ? *sqakd::io::detail::meta_find(res.meta, "commit") : t.commit},
                  {"command", t.command}};
    return out;
}

}  // namespace sqakd_examples

// sqakd_train_teacher: trains the full-precision ResNet-20 teacher on Fashion-MNIST with the
// recipe of SQAKD.md §5 (SGD momentum 0.9, lr 0.1, weight decay 1e-4, batch 256, cosine
// schedule, pad-2 random crop + flip, kaiming init). Resumable: rerun the same command and it
// continues from <run-dir>/last.sqakd.
//
//   sqakd_train_teacher --seed 0 --epochs 8 --run-dir runs/teacher_s0 --record runs/teacher_s0/result.json
#include <algorithm>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "common.hpp"
#include "sqakd/data.hpp"
#include "sqakd/io.hpp"
#include "sqakd/nn.hpp"
#include "sqakd/optim.hpp"
#include "sqakd/train/fit.hpp"

using namespace sqakd;

int main(int argc, char** argv) {
    CLI::App app{"Train the FP ResNet-20 teacher on Fashion-MNIST (SQAKD.md §5 recipe)"};
    std::uint64_t seed = 0;
    std::size_t epochs = 8, batch = 256, train_subset = 0, test_subset = 0, max_batches = 0, stop_after = 0;
    double lr = 0.1, wd = 1e-4, momentum = 0.9;
    int threads = 2;
    std::string run_dir, record, data_dir = data::default_fashion_mnist_dir;
    bool no_progress = false;
    app.add_option("--seed", seed, "seed of the initialisation, shuffling and augmentation");
    app.add_option("--epochs", epochs, "total epochs of the schedule")->check(CLI::PositiveNumber);
    app.add_option("--batch", batch, "batch size")->check(CLI::PositiveNumber);
    app.add_option("--lr", lr, "initial learning rate (cosine schedule)");
    app.add_option("--wd", wd, "weight decay (added to the gradient)");
    app.add_option("--momentum", momentum, "SGD momentum");
    app.add_option("--threads", threads, "OpenMP threads")->check(CLI::PositiveNumber);
    app.add_option("--run-dir", run_dir, "checkpoints + metrics.jsonl; resumes from last.sqakd when present");
    app.add_option("--record", record, "write the result record (JSON) here when the run is complete");
    app.add_option("--data-dir", data_dir, "directory with the Fashion-MNIST IDX .gz files");
    app.add_option("--train-subset", train_subset, "use only the first N training images (0 = all)");
    app.add_option("--test-subset", test_subset, "use only the first N test images (0 = all)");
    app.add_option("--max-batches", max_batches, "batches per epoch (0 = all; smoke runs)");
    app.add_option("--stop-after", stop_after, "train at most this many epochs in this call, then exit (resume later)");
    app.add_flag("--no-progress", no_progress, "no progress bar");
    CLI11_PARSE(app, argc, argv);

    try {
        set_num_threads(threads);
        auto train_ds = data::load_fashion_mnist(data_dir, data::split::train);
        auto test_ds = data::load_fashion_mnist(data_dir, data::split::test);
        if (train_subset) train_ds = train_ds.subset(0, std::min(train_subset, train_ds.size()));
        if (test_subset) test_ds = test_ds.subset(0, std::min(test_subset, test_ds.size()));

        data::loader_options tr;
        tr.batch_size = batch;
        tr.shuffle = true;
        tr.augment = true;
        tr.seed = seed;
        tr.normalize(data::fashion_mnist_stats());
        data::loader_options te = tr;
        te.shuffle = false;
        te.augment = false;
        data::loader train_loader(train_ds, tr);
        data::loader test_loader(test_ds, te);

        nn::models::resnet20<1, 10> net;
        rng g(seed);
        net.init(g);
        optim::sgd<> opt({{optim::collect_params(net), lr, wd}}, {momentum});

        train::fit_options o;
        o.epochs = epochs;
        o.run_dir = run_dir;
        o.progress = !no_progress;
        o.max_batches = max_batches;
        o.stop_after = stop_after;
        o.label = "teacher";
        const std::string command = sqakd_examples::command_line(argc, argv);
        const std::string commit = sqakd_examples::git_commit();
        o.meta = {{"model", "resnet20"}, {"dataset", "fashion-mnist"}, {"method", "fp"},
                  {"seed", std::to_string(seed)}, {"threads", std::to_string(threads)},
                  {"commit", commit}, {"command", command}};
        auto res = train::fit(net, opt, optim::cosine_schedule{lr, epochs}, train_loader, &test_loader, o);

        // Complete? Gather the per-epoch test accuracies from metrics.jsonl (covers resumed runs).
        const std::size_t done = res.start_epoch + res.epochs.size();
        if (done < epochs) {
            std::printf("stopped after epoch %zu of %zu; rerun the same command to resume\n", done, epochs);
            return 0;
        }
        std::vector<double> top1(epochs, -1);
        if (!run_dir.empty()) {
            std::ifstream in(run_dir + "/metrics.jsonl");
            std::string line;
            while (std::getline(in, line)) {
                auto j = nlohmann::json::parse(line, nullptr, false);
                if (j.is_discarded() || !j.contains("epoch") || j.value("phase", "") != "epoch") continue;
                const std::size_t e = j["epoch"].get<std::size_t>();
                if (e >= 1 && e <= epochs && j["test_top1"].is_number()) top1[e - 1] = j["test_top1"].get<double>();
            }
        }
        for (const auto& r : res.epochs) top1[r.epoch - 1] = r.test_top1;
        const double final_top1 = top1.back();
        double last3 = 0;
        std::size_t n3 = 0;
        for (std::size_t e = epochs >= 3 ? epochs - 3 : 0; e < epochs; ++e)
            if (top1[e] >= 0) last3 += top1[e], ++n3;
        last3 = n3 ? last3 / static_cast<double>(n3) : -1;
        std::printf("teacher seed %llu: final-epoch test top-1 %.2f%%, mean of last 3 epochs %.2f%%\n",
                    static_cast<unsigned long long>(seed), final_top1, last3);
        if (!record.empty()) {
            nlohmann::json rec = {{"kind", "accuracy"}, {"model", "resnet20"}, {"dataset", "fashion-mnist"},
                                  {"method", "fp"}, {"quantizer", "none"}, {"estimator", "none"},
                                  {"w_bits", 32}, {"a_bits", 32}, {"epochs", epochs}, {"seed", seed},
                                  {"top1", final_top1}, {"last3_top1", last3}, {"per_epoch_top1", top1},
                                  {"batch", batch}, {"threads", threads},
                                  {"train_images", train_ds.size()}, {"test_images", test_ds.size()},
                                  {"checkpoint", run_dir.empty() ? "" : run_dir + "/last.sqakd"},
                                  {"commit", res.meta.empty() ? commit : io::detail::meta_find(res.meta, "commit") ? *io::detail::meta_find(res.meta, "commit") : commit},
                                  {"command", command}};
            sqakd_examples::write_json(record, nlohmann::json::array({rec}));
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sqakd_train_teacher: %s\n", e.what());
        return 1;
    }
    return 0;
}

// sqakd_train_teacher: trains the full-precision ResNet-20 teacher on Fashion-MNIST with the
// recipe of SQAKD.md §5 (see teacher_recipe.hpp). Resumable: rerun the same command and it
// continues from <run-dir>/last.sqakd.
//
//   sqakd_train_teacher --seed 0 --epochs 8 --run-dir runs/teacher_s0 --record runs/teacher_s0/result.json
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "teacher_recipe.hpp"

int main(int argc, char** argv) {
    CLI::App app{"Train the FP ResNet-20 teacher on Fashion-MNIST (SQAKD.md §5 recipe)"};
    sqakd_examples::teacher_options t;
    std::string record;
    bool no_progress = false;
    app.add_option("--seed", t.seed, "seed of the initialisation, shuffling and augmentation");
    app.add_option("--epochs", t.epochs, "total epochs of the schedule")->check(CLI::PositiveNumber);
    app.add_option("--batch", t.batch, "batch size")->check(CLI::PositiveNumber);
    app.add_option("--lr", t.lr, "initial learning rate (cosine schedule)");
    app.add_option("--wd", t.wd, "weight decay (added to the gradient)");
    app.add_option("--momentum", t.momentum, "SGD momentum");
    app.add_option("--threads", t.threads, "OpenMP threads")->check(CLI::PositiveNumber);
    app.add_option("--run-dir", t.run_dir, "checkpoints + metrics.jsonl; resumes from last.sqakd when present");
    app.add_option("--record", record, "write the result record (JSON) here when the run is complete");
    app.add_option("--data-dir", t.data_dir, "directory with the Fashion-MNIST IDX .gz files");
    app.add_option("--train-subset", t.train_subset, "use only the first N training images (0 = all)");
    app.add_option("--test-subset", t.test_subset, "use only the first N test images (0 = all)");
    app.add_option("--max-batches", t.max_batches, "batches per epoch (0 = all; smoke runs)");
    app.add_option("--stop-after", t.stop_after, "train at most this many epochs in this call, then exit (resume later)");
    app.add_flag("--no-progress", no_progress, "no progress bar");
    CLI11_PARSE(app, argc, argv);
    t.progress = !no_progress;
    t.command = sqakd_examples::command_line(argc, argv);
    t.commit = sqakd_examples::git_commit();
    try {
        sqakd_examples::teacher_net net;
        const auto r = sqakd_examples::run_teacher(net, t);
        if (!r.complete) {
            std::printf("stopped after epoch %zu of %zu; rerun the same command to resume\n", r.epochs_done, t.epochs);
            return 0;
        }
        std::printf("teacher seed %llu: final-epoch test top-1 %.2f%%, mean of last 3 epochs %.2f%%\n",
                    static_cast<unsigned long long>(t.seed), r.top1, r.last3_top1);
        if (!record.empty()) sqakd_examples::write_json(record, nlohmann::json::array({r.record}));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sqakd_train_teacher: %s\n", e.what());
        return 1;
    }
    return 0;
}

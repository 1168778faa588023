// sqakd_demo - the main job of README command 1.
//
// Today (foundation): trains the FP ResNet-20 teacher on Fashion-MNIST with the SQAKD.md §5
// recipe for a short default schedule (3 epochs, about 5 minutes on 2 cores), evaluates it,
// evaluates the committed full-recipe teacher checkpoints (8 epochs, seeds 0 and 1) and prints
// a table. `--full` runs the whole 8-epoch recipe instead. Later stages (label-free
// distillation into quantized students, integer deployment) extend this demo.
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "teacher_recipe.hpp"

int main(int argc, char** argv) {
    using namespace sqakd;
    CLI::App app{"sqakd demo: train and evaluate the ResNet-20 teacher on Fashion-MNIST"};
    sqakd_examples::teacher_options t;
    t.epochs = 3;
    t.run_dir = "runs/demo_teacher";
    bool full = false, no_progress = false, fresh = false;
    app.add_flag("--full", full, "run the full 8-epoch recipe (about 12 minutes on 2 cores)");
    app.add_option("--epochs", t.epochs, "epochs of the short run (cosine schedule over them)")->check(CLI::PositiveNumber);
    app.add_option("--seed", t.seed, "seed");
    app.add_option("--threads", t.threads, "OpenMP threads")->check(CLI::PositiveNumber);
    app.add_option("--run-dir", t.run_dir, "checkpoints and metrics.jsonl (resumes when present)");
    app.add_option("--train-subset", t.train_subset, "use only the first N training images (0 = all)");
    app.add_option("--data-dir", t.data_dir, "directory with the Fashion-MNIST IDX .gz files");
    app.add_flag("--fresh", fresh, "ignore an earlier run in --run-dir (start over)");
    app.add_flag("--no-progress", no_progress, "no progress bar");
    CLI11_PARSE(app, argc, argv);
    if (full) t.epochs = 8;
    t.progress = !no_progress;
    t.command = sqakd_examples::command_line(argc, argv);
    t.commit = sqakd_examples::git_commit();
    if (!t.run_dir.empty()) t.run_dir += "_e" + std::to_string(t.epochs) + "_s" + std::to_string(t.seed);
    try {
        if (fresh && !t.run_dir.empty()) std::remove((t.run_dir + "/last.sqakd").c_str());
        std::printf("sqakd demo: ResNet-20 teacher on Fashion-MNIST, %zu epochs, batch %zu, %d threads\n", t.epochs,
                    t.batch, t.threads);
        sqakd_examples::teacher_net net;
        const auto r = sqakd_examples::run_teacher(net, t);

        // The committed full-recipe teachers, evaluated here on the 10,000 test images.
        struct row {
            std::string what;
            double top1;
        };
        std::vector<row> committed;
        const std::string base = std::string(SQAKD_SOURCE_DIR) + "/benchmarks/results/teacher_resnet20_fmnist/";
        auto test_ds = data::load_fashion_mnist(t.data_dir, data::split::test);
        data::loader_options te;
        te.shuffle = false;
        te.normalize(data::fashion_mnist_stats());
        data::loader test_loader(test_ds, te);
        for (int s = 0; s < 2; ++s) {
            const std::string ck = base + "seed" + std::to_string(s) + "/last.sqakd";
            if (!io::file_exists(ck)) continue;
            sqakd_examples::teacher_net committed_net;
            io::load_checkpoint(ck, committed_net);
            committed.push_back({"committed 8-epoch teacher, seed " + std::to_string(s),
                                 train::evaluate(committed_net, test_loader).top1});
        }

        std::size_t params = nn::num_params(net);
        std::printf("\n%-44s %8s %12s %10s %11s\n", "model", "epochs", "test top-1", "params", "FP32 bytes");
        std::printf("%-44s %8zu %11.2f%% %10zu %11zu\n", "this run (ResNet-20 FP teacher)", t.epochs, r.top1, params,
                    params * 4);
        for (const auto& c : committed)
            std::printf("%-44s %8d %11.2f%% %10zu %11zu\n", c.what.c_str(), 8, c.top1, params, params * 4);
        if (r.seconds > 0)
            std::printf("\nTraining speed: %.0f images/s on %d threads.", r.images_per_sec, t.threads);
        else
            std::printf("\nThis run was already complete in %s (pass --fresh to train again).", t.run_dir.c_str());
        std::printf(" Reference (SQAKD.md §7, PyTorch, 8 epochs): 92.11%% / 92.34%%.\n");
        std::printf("Full recipe for both seeds: scripts/run_teacher_recipe.sh (resumable; results in "
                    "benchmarks/results/teacher_resnet20_fmnist/).\n");
        std::printf("Coming next in this demo: label-free SQAKD distillation into W4A4/W2A2 students, integer export.\n");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sqakd_demo: %s\n", e.what());
        return 1;
    }
    return 0;
}

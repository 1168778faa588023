// sqakd_distill - one student job: quantize a trained ResNet-20 teacher and train the student
// label-free (SQAKD), with labels (QAT baseline) or with Hinton KD, on Fashion-MNIST.
//
//   sqakd_distill --teacher benchmarks/results/teacher_resnet20_fmnist/seed0/last.sqakd
//                 --quantizer interval --bits 2 --method sqakd --seed 0 --run-dir runs/s --record r.json
//
// Resumable: rerun with the same --run-dir and it continues after the last finished epoch.
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "student_recipe.hpp"

int main(int argc, char** argv) {
    using namespace sqakd;
    sqakd_examples::student_options s;
    std::string record;
    CLI::App app{"sqakd_distill: distill a quantized ResNet-20 student from a trained teacher (Fashion-MNIST)"};
    app.add_option("--teacher", s.teacher, "teacher checkpoint (.sqakd, ResNet-20)")->required();
    app.add_option("--quantizer", s.quantizer, "preset family: interval, lsq, lsq_pc, pact_dorefa (compiled: " +
                                                   sqakd_examples::preset_list() + ")");
    app.add_option("--bits", s.bits, "weight and activation bits");
    app.add_option("--method", s.method, "sqakd (label-free KL), qat_ce (cross-entropy with labels), kd (Hinton KD)")
        ->check(CLI::IsMember({"sqakd", "qat_ce", "kd"}));
    app.add_option("--seed", s.seed, "seed of the data order and augmentation");
    app.add_option("--epochs", s.epochs, "epochs (cosine schedule over them)")->check(CLI::PositiveNumber);
    app.add_option("--batch", s.batch, "batch size")->check(CLI::PositiveNumber);
    app.add_option("--temperature", s.temperature, "KL temperature T")->check(CLI::PositiveNumber);
    app.add_option("--delta", s.delta, "EWGS delta (0 = clipped STE)")->check(CLI::NonNegativeNumber);
    app.add_option("--ewgs-update-every", s.ewgs_update_every,
                   "set the EWGS deltas from the Hessian trace every N epochs (0 = keep --delta)");
    app.add_option("--kd-gamma", s.kd_gamma, "kd: weight of the cross-entropy");
    app.add_option("--kd-alpha", s.kd_alpha, "kd: weight of the KL term");
    app.add_option("--lr-model", s.lr_model, "Adam lr of the weights");
    app.add_option("--lr-quant", s.lr_quant, "Adam lr of the quantizer parameters");
    app.add_option("--threads", s.threads, "OpenMP threads")->check(CLI::PositiveNumber);
    app.add_option("--run-dir", s.run_dir, "checkpoints and metrics.jsonl (resumes when present)");
    app.add_option("--record", record, "write the result record (JSON) here when the run is complete");
    app.add_option("--train-subset", s.train_subset, "use only the first N training images");
    app.add_option("--test-subset", s.test_subset, "use only the first N test images");
    app.add_option("--max-batches", s.max_batches, "batches per epoch (0 = all)");
    app.add_option("--stop-after", s.stop_after, "stop after this many epochs of this call");
    app.add_option("--data-dir", s.data_dir, "directory with the Fashion-MNIST IDX .gz files");
    bool no_progress = false;
    app.add_flag("--no-progress", no_progress, "no progress bar");
    CLI11_PARSE(app, argc, argv);
    s.progress = !no_progress;
    s.command = sqakd_examples::command_line(argc, argv);
    s.commit = sqakd_examples::git_commit();
    try {
        const auto r = sqakd_examples::run_student_preset(s);
        if (!r.complete) {
            std::printf("%s W%dA%d %s seed %llu: %zu/%zu epochs done (rerun to continue)\n", s.quantizer.c_str(), s.bits,
                        s.bits, s.method.c_str(), static_cast<unsigned long long>(s.seed), r.epochs_done, s.epochs);
            return 0;
        }
        std::printf("%s W%dA%d %s seed %llu: final top-1 %.2f%%, mean of the last 3 epochs %.2f%% (teacher %.2f%%)\n",
                    s.quantizer.c_str(), s.bits, s.bits, s.method.c_str(), static_cast<unsigned long long>(s.seed),
                    r.top1, r.last3_top1, r.teacher_top1);
        if (!record.empty()) sqakd_examples::write_json(record, nlohmann::json::array({r.record}));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sqakd_distill: %s\n", e.what());
        return 1;
    }
    return 0;
}

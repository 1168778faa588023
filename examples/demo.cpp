// sqakd_demo - the main job of README command 1.
//
//   1. trains the FP ResNet-20 teacher on Fashion-MNIST with the SQAKD.md §5 recipe for a
//      short schedule (3 epochs by default, about 4 minutes on 2 cores);
//   2. distills it, without labels (SQAKD: KL to the teacher's soft outputs, T = 4), into
//      quantized students - by default interval-quantized W4A4 and W2A2, one epoch each (about
//      2 minutes each);
//   3. evaluates the committed full-recipe teachers (8 epochs, seeds 0 and 1) and prints teacher
//      vs student accuracy;
//   4. exports each student to its integer network (deploy::compile: BN folded, weights packed
//      at b bits, threshold requantization) and prints its accuracy, agreement with the student,
//      model size in bytes and batch-1 latency next to the FP teacher's.
// --quantizer/--bits choose among the compiled presets (sqakd_demo --help lists them); --delta,
// --temperature, --method (sqakd, qat_ce, kd) and the KD weights are run-time values. --full
// runs the whole recipe (8-epoch teacher, 6-epoch students). Every stage resumes from its
// run directory.
#include <chrono>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "student_recipe.hpp"
#include "teacher_recipe.hpp"

int main(int argc, char** argv) {
    using namespace sqakd;
    CLI::App app{"sqakd demo: train a ResNet-20 teacher on Fashion-MNIST and distill it label-free into quantized students"};
    sqakd_examples::teacher_options t;
    t.epochs = 3;
    t.run_dir = "runs/demo_teacher";
    bool full = false, no_progress = false, fresh = false;
    sqakd_examples::student_options st;
    st.epochs = 1;
    std::vector<int> student_bits = {4, 2};
    app.add_flag("--full", full, "run the full recipe: 8-epoch teacher, 6-epoch students (about 12 + 13 minutes per student)");
    app.add_option("--epochs", t.epochs, "epochs of the short run (cosine schedule over them)")->check(CLI::PositiveNumber);
    app.add_option("--seed", t.seed, "seed");
    app.add_option("--threads", t.threads, "OpenMP threads")->check(CLI::PositiveNumber);
    app.add_option("--run-dir", t.run_dir, "checkpoints and metrics.jsonl (resumes when present)");
    app.add_option("--train-subset", t.train_subset, "use only the first N training images (0 = all)");
    app.add_option("--data-dir", t.data_dir, "directory with the Fashion-MNIST IDX .gz files");
    app.add_flag("--fresh", fresh, "ignore an earlier run in --run-dir (start over)");
    app.add_flag("--no-progress", no_progress, "no progress bar");
    app.add_option("--quantizer", st.quantizer, "student quantizer preset: interval, lsq, lsq_pc, pact_dorefa (compiled: " +
                                                    sqakd_examples::preset_list() + ")");
    app.add_option("--bits", student_bits, "student bit widths (weights = activations), one student each; empty: none")
        ->delimiter(',');
    app.add_option("--method", st.method, "sqakd (label-free), qat_ce (labels), kd (Hinton KD)")
        ->check(CLI::IsMember({"sqakd", "qat_ce", "kd"}));
    app.add_option("--student-epochs", st.epochs, "student epochs")->check(CLI::PositiveNumber);
    app.add_option("--temperature", st.temperature, "KL temperature T")->check(CLI::PositiveNumber);
    app.add_option("--delta", st.delta, "EWGS delta (0 = clipped STE)")->check(CLI::NonNegativeNumber);
    app.add_option("--kd-gamma", st.kd_gamma, "kd: weight of the cross-entropy");
    app.add_option("--kd-alpha", st.kd_alpha, "kd: weight of the KL term");
    app.add_option("--teacher", st.teacher, "distill from this teacher checkpoint instead of the one trained here");
    CLI11_PARSE(app, argc, argv);
    if (full) {
        t.epochs = 8;
        st.epochs = 6;
    }
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

        // Label-free distillation into quantized students.
        struct student_row {
            std::string what;
            std::size_t epochs;
            double top1;
            double seconds;
            std::size_t bits, params, bytes;
            double int_top1, int_agreement, int_max_logit_diff, int_ms;
            std::size_t int_bytes;
        };
        std::vector<student_row> students;
        if (st.teacher.empty()) st.teacher = t.run_dir + "/last.sqakd";
        st.seed = t.seed;
        st.threads = t.threads;
        st.batch = t.batch;
        st.data_dir = t.data_dir;
        st.progress = t.progress;
        st.int_export = true;
        st.train_subset = t.train_subset;
        st.command = t.command;
        st.commit = t.commit;
        for (int b : student_bits) {
            sqakd_examples::student_options si = st;
            si.bits = b;
            si.run_dir = "runs/demo_student_" + si.quantizer + "_w" + std::to_string(b) + "a" + std::to_string(b) + "_" +
                         si.method + "_e" + std::to_string(si.epochs) + "_s" + std::to_string(si.seed) + "_t" +
                         std::to_string(t.epochs);
            if (fresh) std::remove((si.run_dir + "/last.sqakd").c_str());
            std::printf("\nDistilling a W%dA%d %s student (%s, %zu epoch%s) from %s\n", b, b, si.quantizer.c_str(),
                        si.method == "sqakd" ? "label-free SQAKD" : si.method.c_str(), si.epochs,
                        si.epochs == 1 ? "" : "s", si.teacher.c_str());
            const auto sr = sqakd_examples::run_student_preset(si);
            students.push_back({si.quantizer + " W" + std::to_string(b) + "A" + std::to_string(b) + " " + si.method +
                                    " student",
                                si.epochs, sr.top1, sr.seconds, static_cast<std::size_t>(b),
                                sr.quantized_weights + sr.fp_values,
                                sr.fp_values * 4 + (sr.quantized_weights * static_cast<std::size_t>(b) + 7) / 8,
                                sr.int_top1, sr.int_agreement, sr.int_max_logit_diff, sr.int_ms_batch1, sr.int_bytes});
        }

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
        std::printf("\n%-44s %8s %12s %10s %11s\n", "model", "epochs", "test top-1", "params", "bytes");
        std::printf("%-44s %8zu %11.2f%% %10zu %11zu\n", "this run (ResNet-20 FP teacher)", t.epochs, r.top1, params,
                    params * 4);
        for (const auto& c : committed)
            std::printf("%-44s %8d %11.2f%% %10zu %11zu\n", c.what.c_str(), 8, c.top1, params, params * 4);
        for (const auto& sr : students)
            std::printf("%-44s %8zu %11.2f%% %10zu %11zu\n", sr.what.c_str(), sr.epochs, sr.top1, sr.params, sr.bytes);
        if (!students.empty())
            std::printf("(student bytes: the 18 quantized convs' weights at b bits, everything else - first conv, FC, BN,\n"
                        " quantizer parameters - in FP32; BN is folded at integer export)\n"
                        "Reference (SQAKD.md §7, PyTorch, 8-epoch teacher, 6-epoch students, interval SQAKD): "
                        "W2A2 90.92%%, W4A4 92.11%%.\n");
        if (!students.empty()) {
            // the FP teacher at batch 1 (eval forward, one image at a time), for the latency column
            tensor<float> images;
            std::vector<std::int32_t> labels;
            test_loader.batch(0, images, labels);
            const std::size_t n1 = std::min<std::size_t>(200, images.shape()[0]), per = images.size() / images.shape()[0];
            tensor<float> one(shape_t{1, images.shape()[1], images.shape()[2], images.shape()[3]});
            auto fp_forward = [&](std::size_t i) {
                std::copy(images.data() + i * per, images.data() + (i + 1) * per, one.data());
                (void)net.forward(one, nn::mode::eval);
            };
            for (std::size_t i = 0; i < 5; ++i) fp_forward(i);
            const auto t0 = std::chrono::steady_clock::now();
            for (std::size_t i = 0; i < n1; ++i) fp_forward(i);
            const double fp_ms = 1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
                                 static_cast<double>(n1);
            std::printf("\nInteger networks (deploy::compile; 10,000 test images; latency: batch 1, %d threads for FP, "
                        "1 thread for integer):\n", t.threads);
            std::printf("%-44s %11s %10s %10s %11s %12s\n", "model", "test top-1", "agreement", "max |dlogit|", "bytes",
                        "ms / image");
            std::printf("%-44s %10.2f%% %10s %10s %11zu %12.3f\n", "this run (ResNet-20 FP teacher, FP32)", r.top1, "-", "-",
                        params * 4, fp_ms);
            for (const auto& sr : students)
                std::printf("%-44s %10.2f%% %9.2f%% %10.3g %11zu %12.3f\n", ("integer " + sr.what).c_str(), sr.int_top1,
                            sr.int_agreement, sr.int_max_logit_diff, sr.int_bytes, sr.int_ms);
            std::printf("(agreement: test images where the integer network's top-1 equals the fake-quantized student's;\n"
                        " bytes: packed weights + FP32 first conv and FC + per-channel thresholds or scales, README formula)\n");
        }
        if (r.seconds > 0)
            std::printf("\nTraining speed: %.0f images/s on %d threads.", r.images_per_sec, t.threads);
        else
            std::printf("\nThis run was already complete in %s (pass --fresh to train again).", t.run_dir.c_str());
        std::printf(" Reference (SQAKD.md §7, PyTorch, 8 epochs): 92.11%% / 92.34%%.\n");
        std::printf("Full recipe for both seeds: scripts/run_teacher_recipe.sh (resumable; results in "
                    "benchmarks/results/teacher_resnet20_fmnist/).\n");
        std::printf("Student table for the full recipe: scripts/run_students.sh (resumable; results in "
                    "benchmarks/results/students_resnet20_fmnist/).\n");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sqakd_demo: %s\n", e.what());
        return 1;
    }
    return 0;
}

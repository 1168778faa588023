// sqakd_int_eval - the integer network of each committed student against the student itself:
// compiles every final.sqakd under a results folder (deploy::compile), runs both on the 10,000
// Fashion-MNIST test images and records top-1 agreement, the largest logit difference and both
// top-1 accuracies (issue 4's gate: agreement >= 99.9%).
//
//   sqakd_int_eval [--runs benchmarks/results/students_resnet20_fmnist] [--out FILE.json]
//                  [--test-subset N] [--threads N] [--isa best|generic|sse4.1|avx2|avx512]
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <CLI/CLI.hpp>

#include "sqakd/deploy/compile.hpp"
#include "int_export.hpp"
#include "student_recipe.hpp"

int main(int argc, char** argv) {
    using namespace sqakd;
    std::string runs = "benchmarks/results/students_resnet20_fmnist", out, isa_s = "best";
    std::size_t test_subset = 0;
    int threads = 2;
    CLI::App app{"sqakd_int_eval: integer networks of the committed students vs the students (Fashion-MNIST test set)"};
    app.add_option("--runs", runs, "folder with one sub-folder per run holding final.sqakd");
    app.add_option("--out", out, "write the records (JSON list) here, atomically");
    app.add_option("--test-subset", test_subset, "use only the first N test images");
    app.add_option("--threads", threads, "threads of the student's evaluation");
    app.add_option("--isa", isa_s, "kernel tier")->check(CLI::IsMember({"best", "generic", "sse4.1", "avx2", "avx512", "amx"}));
    CLI11_PARSE(app, argc, argv);
    const deploy::isa tier = isa_s == "generic" ? deploy::isa::generic
                             : isa_s == "sse4.1" ? deploy::isa::sse41
                             : isa_s == "avx2"   ? deploy::isa::avx2
                             : isa_s == "avx512" ? deploy::isa::avx512
                             : isa_s == "amx"    ? deploy::isa::amx
                                                 : deploy::isa::best;
    try {
        set_num_threads(threads);
        auto test_ds = data::load_fashion_mnist(data::default_fashion_mnist_dir, data::split::test);
        if (test_subset) test_ds = test_ds.subset(0, std::min(test_subset, test_ds.size()));
        data::loader te(test_ds, data::loader_options::evaluation(250, data::fashion_mnist_stats()));
        const std::vector<std::string> names = sqakd_examples::finished_runs(runs);
        if (names.empty()) throw std::runtime_error("no final.sqakd under " + runs);
        nlohmann::json records = nlohmann::json::array();
        const std::string commit = sqakd_examples::git_commit(), command = sqakd_examples::command_line(argc, argv);
        for (const auto& name : names) {
            const std::string ck = runs + "/" + name + "/final.sqakd";
            const auto meta = io::read_checkpoint(ck);
            const std::string q = meta.get("quantizer");
            const int bits = std::stoi(meta.get("w_bits"));
            const bool found = sqakd_examples::with_student_type(q, bits, [&](auto* type) {
                using student_t = std::remove_pointer_t<decltype(type)>;
                auto s = std::make_unique<student_t>();
                io::load_checkpoint(ck, *s);
                const auto net = deploy::compile(*s, {1, 28, 28}, tier);
                const auto a = sqakd_examples::compare_int(*s, net, te);
                const double pct = a.agreement();
                std::printf("%-32s agreement %.2f%% (%zu/%zu), max logit diff %.4g, top-1 student %.2f%% int %.2f%%, "
                            "int network %.2f ms/image (batch 250, 1 thread)\n",
                            name.c_str(), pct, a.same, a.images, a.max_logit_diff,
                            a.top1_student(), a.top1_int(),
                            1e3 * a.seconds_int / static_cast<double>(a.images));
                records.push_back({{"kind", "accuracy"}, {"model", "resnet20"}, {"dataset", "fashion-mnist"},
                                   {"method", "int_agreement"}, {"student_method", meta.get("method")},
                                   {"quantizer", q}, {"w_bits", bits}, {"a_bits", std::stoi(meta.get("a_bits"))},
                                   {"seed", std::stoi(meta.get("seed"))}, {"run", name},
                                   {"agreement", pct}, {"max_logit_diff", a.max_logit_diff},
                                   {"top1", a.top1_int()},
                                   {"student_top1", a.top1_student()},
                                   {"model_bytes", net.model_bytes()}, {"packed_weight_bytes", net.packed_weight_bytes()},
                                   {"images", a.images}, {"isa", deploy::isa_name(tier == deploy::isa::best ? deploy::best_isa() : tier)},
                                   {"commit", commit}, {"command", command}});
            });
            if (!found) std::printf("%-32s skipped: no compiled preset %s W%d\n", name.c_str(), q.c_str(), bits);
        }
        if (!out.empty()) sqakd_examples::write_json(out, records);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sqakd_int_eval: %s\n", e.what());
        return 1;
    }
    return 0;
}

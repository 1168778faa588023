// The committed student runs (benchmarks/results/students_resnet20_fmnist/, made by
// scripts/run_students.sh): every SQAKD checkpoint, evaluated here, gives its recorded top-1,
// and the W2A2 seed-0 run resumed from its committed epoch-5 checkpoint, last epoch trained
// here, lands within 1.0 point of its committed final top-1.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <type_traits>
#include <vector>

#include "sqakd/data.hpp"
#include "sqakd/io.hpp"
#include "sqakd/nn.hpp"
#include "sqakd/nn/quantize.hpp"
#include "sqakd/train/distill.hpp"
#include "student_recipe.hpp"

using namespace sqakd;

namespace {
using teacher_t = nn::models::resnet20<1, 10>;

const std::string results = std::string(SQAKD_SOURCE_DIR) + "/benchmarks/results/students_resnet20_fmnist";

data::loader_options test_opts() { return data::loader_options::evaluation(500, data::fashion_mnist_stats()); }

}  // namespace

TEST_CASE("committed SQAKD students: evaluated here they give their recorded top-1") {
    set_num_threads(2);
    auto test_ds = data::load_fashion_mnist(data::default_fashion_mnist_dir, data::split::test);
    REQUIRE(test_ds.size() == 10000);
    data::loader te(test_ds, test_opts());
    std::size_t checked = 0;
    for (const auto& name : sqakd_examples::finished_runs(results)) {
        const std::string ck = results + "/" + name + "/final.sqakd";
        INFO("checkpoint " << ck);
        const auto meta = io::read_checkpoint(ck);
        if (meta.get("method") != "sqakd") continue;
        CHECK(meta.get("epoch") == "6");
        CHECK(meta.get("commit").size() >= 40);
        CHECK(meta.get("command").find("--method sqakd") != std::string::npos);
        for (int k = 1; k <= 6; ++k) CHECK(meta.has("weights_checksum_epoch_" + std::to_string(k)));
        const int bits = std::stoi(meta.get("w_bits"));
        const bool known = sqakd_examples::with_student_type(meta.get("quantizer"), bits, [&](auto net) {
            using student_t = std::remove_pointer_t<decltype(net)>;
            auto s = std::make_unique<student_t>();
            io::load_checkpoint(ck, *s);
            CHECK(io::weights_checksum(*s) == meta.get("weights_checksum_epoch_6"));
            const double top1 = train::evaluate(*s, te).top1;
            const double recorded = std::stod(meta.get("test_top1"));
            std::printf("[%s] evaluated top-1 %.2f%% (recorded %.2f%%)\n", name.c_str(), top1, recorded);
            // one image is 0.01 points; 5 images of slack for kernels that sum in another order
            CHECK(std::abs(top1 - recorded) <= 0.05);
        });
        CHECK_MESSAGE(known, "no compiled preset for " << name);
        ++checked;
    }
    MESSAGE(checked << " committed SQAKD students evaluated");
    CHECK(checked >= 1);
}

TEST_CASE("resume: the W2A2 SQAKD seed-0 student from its committed epoch-5 checkpoint lands within 1.0") {
    set_num_threads(2);
    const std::string dir = results + "/interval_w2a2_sqakd_seed0";
    const std::string ck5 = dir + "/epoch_5.sqakd", fin = dir + "/final.sqakd";
    REQUIRE_MESSAGE(io::file_exists(ck5), "the committed epoch-5 checkpoint is missing: run scripts/run_students.sh");
    const auto c5 = io::read_checkpoint(ck5), c6 = io::read_checkpoint(fin);
    REQUIRE(c5.get("epoch") == "5");
    using student_t = nn::quantize_t<teacher_t, quant::interval_weight<2, quant::ewgs>, quant::interval_act<2, quant::ewgs>>;
    {
        auto s = std::make_unique<student_t>();
        io::load_into(*s, c5);
        CHECK(io::weights_checksum(*s) == c6.get("weights_checksum_epoch_5"));
    }
    std::string tmp = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + "/sqakd_resume5_XXXXXX";
    REQUIRE(::mkdtemp(tmp.data()));
    {
        std::ifstream in(ck5, std::ios::binary);
        std::ofstream out(tmp + "/last.sqakd", std::ios::binary);
        out << in.rdbuf();
    }
    teacher_t teacher;
    io::load_checkpoint(std::string(SQAKD_SOURCE_DIR) + "/" + c6.get("teacher"), teacher);
    auto train_ds = data::load_fashion_mnist(data::default_fashion_mnist_dir, data::split::train);
    auto test_ds = data::load_fashion_mnist(data::default_fashion_mnist_dir, data::split::test);
    data::loader_options tr = test_opts();
    tr.batch_size = 256;
    tr.shuffle = true;
    tr.augment = true;
    tr.seed = 0;
    data::loader train_loader(train_ds, tr), test_loader(test_ds, test_opts());
    auto s = std::make_unique<student_t>();
    nn::copy_from_teacher(*s, teacher);
    train::distill_options o;
    o.epochs = 6;
    o.run_dir = tmp;
    o.progress = false;
    const auto r = train::distill(teacher, *s, distill::sqakd_kl{4.0}, train_loader, &test_loader, o);
    REQUIRE(r.start_epoch == 5);
    REQUIRE(r.epochs.size() == 1);
    const double committed = std::stod(c6.get("test_top1"));
    std::printf("[resume W2A2 seed 0] epoch 6 trained here: %.2f%% (committed %.2f%%)\n", r.epochs[0].test_top1, committed);
    // Bit-identical (90.31) where the build machine's -march=native matched the one that trained
    // the run; on this session's VM, GCC 12's native code gives 89.67 deterministically (Clang
    // stays within 0.3): one epoch of training amplifies float rounding differences by about the
    // run's own epoch-to-epoch spread (its last three epochs average 89.73). 1.0 point still
    // catches a broken resume (a restart from epoch 0 or lost optimiser state lands far lower).
    CHECK(std::abs(r.epochs[0].test_top1 - committed) <= 1.0);
}

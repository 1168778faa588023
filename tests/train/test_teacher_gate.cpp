// The committed full-recipe teachers (SQAKD.md §5: ResNet-20, 8 epochs, seeds 0 and 1; made by
// scripts/run_teacher_recipe.sh) are sqakd's own and reach the accuracy gate.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include "train_util.hpp"

using namespace sqakd;
using namespace train_test;

namespace {
double eval_checkpoint(const std::string& path, const data::dataset& test_ds) {
    net_t net;
    io::load_checkpoint(path, net);
    data::loader te(test_ds, test_options());
    return train::evaluate(net, te).top1;
}
}  // namespace

TEST_CASE("committed teachers: evaluated here they give their recorded top-1, mean >= 91.9%") {
    set_num_threads(2);
    auto test_ds = data::load_fashion_mnist(data::default_fashion_mnist_dir, data::split::test);
    REQUIRE(test_ds.size() == 10000);
    double sum = 0;
    for (int s = 0; s < 2; ++s) {
        const std::string ck = results_dir() + "/seed" + std::to_string(s) + "/last.sqakd";
        INFO("checkpoint " << ck);
        REQUIRE_MESSAGE(io::file_exists(ck), "the committed teacher checkpoint is missing: run scripts/run_teacher_recipe.sh");
        const auto meta = io::read_checkpoint(ck);
        CHECK(meta.get("epoch") == "8");
        CHECK(meta.get("seed") == std::to_string(s));
        CHECK(meta.get("commit").size() >= 40);
        CHECK(meta.get("command").find("--epochs 8") != std::string::npos);
        for (int k = 1; k <= 8; ++k) CHECK(meta.has("weights_checksum_epoch_" + std::to_string(k)));
        const double top1 = eval_checkpoint(ck, test_ds);
        const double recorded = std::stod(meta.get("test_top1"));
        std::printf("[teacher seed %d] evaluated top-1 %.2f%% (recorded %.2f%%)\n", s, top1, recorded);
        // Recorded with 2 decimals at training time; one image is 0.01 points. A few images may
        // flip when a later kernel sums in another order, hence 5 images of slack.
        CHECK(std::abs(top1 - recorded) <= 0.05);
        sum += top1;
    }
    const double mean = sum / 2;
    MESSAGE("mean final-epoch top-1 over seeds 0 and 1: " << mean << "%");
    CHECK(mean >= 91.9);
}

TEST_CASE("resume: seed 0 from its committed epoch-7 checkpoint, last epoch trained here, lands within 0.3") {
    set_num_threads(2);
    const std::string ck7 = results_dir() + "/seed0/epoch_7.sqakd";
    const std::string ck8 = results_dir() + "/seed0/last.sqakd";
    REQUIRE_MESSAGE(io::file_exists(ck7), "the committed epoch-7 checkpoint is missing: run scripts/run_teacher_recipe.sh");
    const auto c7 = io::read_checkpoint(ck7);
    const auto c8 = io::read_checkpoint(ck8);
    REQUIRE(c7.get("epoch") == "7");
    // The final checkpoint continues exactly these epoch-7 weights.
    {
        net_t net;
        io::load_into(net, c7);
        CHECK(io::weights_checksum(net) == c8.get("weights_checksum_epoch_7"));
    }
    const std::string dir = temp_dir("resume7");
    {
        std::ifstream in(ck7, std::ios::binary);
        std::ofstream out(dir + "/last.sqakd", std::ios::binary);
        out << in.rdbuf();
    }
    auto train_ds = data::load_fashion_mnist(data::default_fashion_mnist_dir, data::split::train);
    auto test_ds = data::load_fashion_mnist(data::default_fashion_mnist_dir, data::split::test);
    data::loader tr(train_ds, train_options(0, 256));
    data::loader te(test_ds, test_options());
    net_t net;
    optim::sgd<> opt({{optim::collect_params(net), 0.1, 1e-4}}, {0.9});
    train::fit_options o;
    o.epochs = 8;
    o.run_dir = dir;
    o.progress = false;
    o.keep_every_epoch = false;
    auto r = train::fit(net, opt, optim::cosine_schedule{0.1, 8}, tr, &te, o);
    REQUIRE(r.start_epoch == 7);
    REQUIRE(r.epochs.size() == 1);
    const double committed = std::stod(c8.get("test_top1"));
    std::printf("[resume] epoch 8 trained here: top-1 %.2f%% (committed %.2f%%)\n", r.epochs[0].test_top1, committed);
    CHECK(std::abs(r.epochs[0].test_top1 - committed) <= 0.3);
}

// PyTorch -> sqakd interop: a ResNet-20 trained a few steps in PyTorch
// (scripts/torch_ref/make_interop_fixture.py) gives the same eval-mode logits in sqakd on the
// first 64 Fashion-MNIST test images, read here from the real dataset.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <zlib.h>

#include "io_test_util.hpp"
#include "sqakd/io.hpp"
#include "sqakd/nn/models/resnet.hpp"

using namespace sqakd;

namespace {

const std::string fmnist_dir = "/usr/share/datasets/fashion-mnist";
const std::string fixture_dir = std::string(SQAKD_TEST_DATA_DIR) + "/io";
constexpr std::size_t n_images = 64, n_classes = 10;
constexpr float mean = 0.2860406f, stdev = 0.3530242f;

std::uint32_t be32(const unsigned char* p) {
    return static_cast<std::uint32_t>(p[0]) << 24 | static_cast<std::uint32_t>(p[1]) << 16 |
           static_cast<std::uint32_t>(p[2]) << 8 | static_cast<std::uint32_t>(p[3]);
}

/// The first `count` images of a gzipped IDX image file, normalised, as [count, 1, rows, cols].
tensor<float> read_idx_images(const std::string& path, std::size_t count) {
    gzFile f = gzopen(path.c_str(), "rb");
    REQUIRE_MESSAGE(f != nullptr, "cannot open " << path);
    unsigned char hdr[16];
    const bool got_header = gzread(f, hdr, 16) == 16;
    const std::uint32_t magic = be32(hdr), n = be32(hdr + 4), rows = be32(hdr + 8), cols = be32(hdr + 12);
    if (!got_header || magic != 2051 || n < count || rows != 28 || cols != 28) {
        gzclose(f);
        FAIL(path << ": not a 28x28 IDX image file with at least " << count << " images");
    }
    std::vector<unsigned char> px(count * rows * cols);
    const int want = static_cast<int>(px.size());
    const int got = gzread(f, px.data(), static_cast<unsigned>(want));
    gzclose(f);
    REQUIRE_MESSAGE(got == want, path << ": short read");
    tensor<float> x(shape_t{count, 1, rows, cols});
    // Same float32 arithmetic as the PyTorch side: x/255, then (x - mean)/std.
    for (std::size_t i = 0; i < px.size(); ++i) x.data()[i] = (static_cast<float>(px[i]) / 255.0f - mean) / stdev;
    return x;
}

std::vector<float> read_logits(const std::string& path) {
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), "cannot open " << path);
    std::vector<float> v;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream ls(line);
        double d;
        while (ls >> d) v.push_back(static_cast<float>(d));
    }
    return v;
}

}  // namespace

TEST_CASE("PyTorch ResNet-20 from safetensors gives PyTorch's eval logits on real Fashion-MNIST") {
    const std::string images = fmnist_dir + "/t10k-images-idx3-ubyte.gz";
    if (!std::filesystem::exists(images))
        FAIL("Fashion-MNIST is not installed (" << images
                                                << " is missing): install the Debian package dataset-fashion-mnist "
                                                   "(scripts/setup.sh does)");

    using model_t = nn::models::resnet20<1, 10>;
    const std::string st = fixture_dir + "/resnet20_fmnist.safetensors";
    const io::safetensors_file file = io::read_safetensors(st);
    CHECK(std::find(file.metadata.begin(), file.metadata.end(),
                    std::make_pair(std::string("seed"), std::string("0"))) != file.metadata.end());

    auto model = std::make_unique<model_t>();
    const io::load_report rep = io::load_state_dict(*model, file.tensors, io::resnet20_torch_names(),
                                                    io::strictness::strict, st);
    MESSAGE(rep.summary());
    CHECK(rep.missing.empty());
    CHECK(rep.unexpected.empty());
    std::size_t n_state = 0;
    model->for_each_param([&](const std::string&, auto&, auto&, nn::param_kind) { ++n_state; });
    model->for_each_buffer([&](const std::string&, auto&) { ++n_state; });
    CHECK(rep.loaded.size() == n_state);
    // The running statistics really were trained (the fixture is not a fresh init).
    CHECK(std::abs(model->layer<13>().running_mean()(0)) > 1e-3f);
    CHECK(std::abs(model->layer<1>().running_var()(0) - 1.0f) > 1e-3f);

    const tensor<float> x = read_idx_images(images, n_images);
    const tensor<float> logits = model->forward(x, nn::mode::eval);
    REQUIRE(logits.dimension() == 2);
    REQUIRE(logits.shape()[0] == n_images);
    REQUIRE(logits.shape()[1] == n_classes);
    const std::vector<float> ref = read_logits(fixture_dir + "/resnet20_fmnist_logits.txt");
    REQUIRE(ref.size() == n_images * n_classes);

    double max_diff = 0, max_abs = 0;
    std::size_t argmax_agree = 0;
    for (std::size_t i = 0; i < n_images; ++i) {
        std::size_t am = 0, ar = 0;
        for (std::size_t c = 0; c < n_classes; ++c) {
            const float a = logits(i, c), r = ref[i * n_classes + c];
            max_diff = std::max(max_diff, static_cast<double>(std::abs(a - r)));
            max_abs = std::max(max_abs, static_cast<double>(std::abs(r)));
            if (logits(i, c) > logits(i, am)) am = c;
            if (r > ref[i * n_classes + ar]) ar = c;
        }
        argmax_agree += am == ar;
    }
    MESSAGE("max |sqakd - pytorch| logit difference: " << max_diff << " (max |logit| " << max_abs
                                                        << ", argmax agreement " << argmax_agree << "/" << n_images
                                                        << ")");
    CHECK(max_diff <= 1e-4);
    CHECK(argmax_agree == n_images);

    // sqakd's own checkpoint round-trips the imported model bit-exactly.
    io_test::temp_dir d("interop");
    io::checkpoint_extra ex;
    ex.set("source", st);
    io::save_checkpoint(d / "resnet20.ckpt", *model, ex);
    auto again = std::make_unique<model_t>();
    const io::checkpoint ck = io::load_checkpoint(d / "resnet20.ckpt", *again);
    CHECK(ck.get("source") == st);
    CHECK(io::weights_checksum(*again) == io::weights_checksum(*model));
    // (Equal state means equal logits; a second 64-image forward would only cost time.)
    const io::named_tensors s1 = io::state_tensors(*model), s2 = io::state_tensors(*again);
    REQUIRE(s1.size() == s2.size());
    for (std::size_t i = 0; i < s1.size(); ++i) CHECK(io_test::bit_equal(s1[i].second, s2[i].second));

    // And exports back under the PyTorch names: the same tensors as the fixture.
    const io::tensor_map back = io::state_dict(*model, io::resnet20_torch_names().inverse());
    std::size_t compared = 0;
    for (const auto& kv : file.tensors) {
        const std::string& name = kv.first;
        if (name.find("num_batches_tracked") != std::string::npos) continue;
        INFO(name);
        REQUIRE(back.count(name) == 1);
        CHECK(io_test::bit_equal(back.at(name), kv.second));
        ++compared;
    }
    CHECK(compared == back.size());
}

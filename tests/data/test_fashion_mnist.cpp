// The installed Fashion-MNIST (Debian's dataset-fashion-mnist), when present: sizes, class
// balance, known labels, and pixels checked against an independent minimal parse of the .gz.
#include <doctest/doctest.h>
#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "sqakd/data.hpp"

using namespace sqakd;

namespace {

bool installed() {
    std::error_code ec;
    return std::filesystem::exists(std::string(data::default_fashion_mnist_dir) + "/t10k-labels-idx1-ubyte.gz", ec);
}

// The whole decompressed file, read with nothing but zlib.
std::vector<unsigned char> gunzip(const std::string& path) {
    std::vector<unsigned char> out;
    gzFile f = gzopen(path.c_str(), "rb");
    REQUIRE(f != nullptr);
    unsigned char buf[1 << 16];
    int n;
    while ((n = gzread(f, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
    gzclose(f);
    return out;
}

}  // namespace

TEST_CASE("Fashion-MNIST test split as installed") {
    if (!installed()) {
        MESSAGE("Fashion-MNIST not installed in " << data::default_fashion_mnist_dir << "; skipped");
        return;
    }
    const auto ds = data::load_fashion_mnist(data::split::test);
    REQUIRE(ds.size() == 10000);
    CHECK(ds.channels() == 1);
    CHECK(ds.height() == 28);
    CHECK(ds.width() == 28);
    CHECK(ds.num_classes() == 10);
    CHECK(ds.label(0) == 9);  // ankle boot
    CHECK(ds.label(1) == 2);  // pullover
    std::vector<int> hist(10);
    for (auto y : ds.labels()) ++hist[static_cast<std::size_t>(y)];
    for (int c = 0; c < 10; ++c) CHECK(hist[std::size_t(c)] == 1000);

    // Independent parse: 16-byte header, then the pixels; 8-byte header, then the labels.
    const std::string dir = data::default_fashion_mnist_dir;
    const auto raw = gunzip(dir + "/t10k-images-idx3-ubyte.gz");
    REQUIRE(raw.size() == 16 + 10000 * 784);
    CHECK(raw[3] == 0x03);
    std::uint64_t want = 0, got = 0, weighted_want = 0, weighted_got = 0;
    for (std::size_t i = 16; i < raw.size(); ++i) {
        want += raw[i];
        weighted_want += raw[i] * ((i - 16) % 9973 + 1);
    }
    const auto& px = ds.images();
    for (std::size_t i = 0; i < px.size(); ++i) {
        got += px[i];
        weighted_got += px[i] * (i % 9973 + 1);
    }
    CHECK(got == want);
    CHECK(weighted_got == weighted_want);  // catches reordered bytes, not only changed ones
    const auto lab = gunzip(dir + "/t10k-labels-idx1-ubyte.gz");
    REQUIRE(lab.size() == 8 + 10000);
    bool labels_equal = true;
    for (std::size_t i = 0; i < 10000; ++i) labels_equal = labels_equal && ds.label(i) == lab[8 + i];
    CHECK(labels_equal);
}

TEST_CASE("Fashion-MNIST train split: 60000 images whose statistics are the SQAKD constants") {
    if (!installed()) {
        MESSAGE("Fashion-MNIST not installed; skipped");
        return;
    }
    const auto ds = data::load_fashion_mnist();
    REQUIRE(ds.size() == 60000);
    std::vector<int> hist(10);
    for (auto y : ds.labels()) ++hist[static_cast<std::size_t>(y)];
    for (int c = 0; c < 10; ++c) CHECK(hist[std::size_t(c)] == 6000);
    double s = 0, s2 = 0;
    for (auto v : ds.images()) {
        const double x = v / 255.0;
        s += x;
        s2 += x * x;
    }
    const double n = static_cast<double>(ds.images().size());
    const double mean = s / n, sd = std::sqrt(s2 / n - mean * mean);
    CHECK(mean == doctest::Approx(data::fashion_mnist_mean).epsilon(1e-6));
    CHECK(sd == doctest::Approx(data::fashion_mnist_std).epsilon(1e-6));
}

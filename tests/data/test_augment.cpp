// Augmentation of one image: crop offsets shift pixels, padding is zero before normalisation,
// flip mirrors, normalisation values and parameter checks.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include "sqakd/data/augment.hpp"
#include "test_util.hpp"

using namespace sqakd;
using namespace sqakd_test;

namespace {

const float m = data::fashion_mnist_mean, s = data::fashion_mnist_std;
float norm(std::uint8_t v) { return (static_cast<float>(v) / 255.0f - m) / s; }

}  // namespace

TEST_CASE("normalizer: (v / 255 - mean) / std per channel, identity when empty") {
    data::normalizer nz(1, {m}, {s});
    CHECK(nz(0, 0) == (0.0f - m) / s);
    CHECK(nz(0, 255) == (1.0f - m) / s);
    CHECK(nz(0, 51) == doctest::Approx((0.2 - 0.2860406) / 0.3530242).epsilon(1e-6));
    for (int v = 0; v < 256; ++v) CHECK(nz(0, static_cast<std::uint8_t>(v)) == norm(static_cast<std::uint8_t>(v)));

    data::normalizer id(2, {}, {});
    CHECK(id(1, 255) == 1.0f);
    CHECK(id(0, 0) == 0.0f);
    const auto c10 = data::cifar10_stats();
    data::normalizer rgb(3, c10.mean, c10.std);
    for (std::size_t c = 0; c < 3; ++c) CHECK(rgb(c, 200) == (200.0f / 255.0f - c10.mean[c]) / c10.std[c]);
    data::normalizer bcast(3, {0.5f}, {0.25f});  // one value for all channels
    CHECK(bcast(2, 255) == 2.0f);
}

TEST_CASE("normalizer rejects NaN/Inf and non-positive std, naming the parameter") {
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    std::string msg = message_of<error::invalid_value>([&] { data::normalizer(1, {nan}, {1.0f}, "opts"); });
    CHECK(contains(msg, "opts: mean[0] must be finite"));
    msg = message_of<error::invalid_value>([&] { data::normalizer(3, {0, 0, 0}, {1.0f, 0.0f, 1.0f}, "opts"); });
    CHECK(contains(msg, "opts: std[1] must be finite and > 0, got 0"));
    msg = message_of<error::invalid_value>([&] { data::normalizer(1, {}, {-0.5f}); });
    CHECK(contains(msg, "std[0] must be finite and > 0, got -0.5"));
    CHECK_THROWS_AS(data::normalizer(1, {}, {inf}), error::invalid_value);
    CHECK_THROWS_AS(data::normalizer(1, {}, {nan}), error::invalid_value);
    CHECK_THROWS_AS(data::normalizer(1, {-inf}, {}), error::invalid_value);
    msg = message_of<error::invalid_value>([&] { data::normalizer(3, {0.1f, 0.2f}, {}, "opts"); });
    CHECK(contains(msg, "opts: mean has 2 values, expected 1 or 3"));
}

TEST_CASE("augment_image: crop offset shifts pixels; padding is zero before normalisation") {
    constexpr std::size_t H = 4, W = 5, P = 2;
    bytes src(H * W);
    for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<std::uint8_t>(10 + 7 * i);
    const data::normalizer nz(1, {m}, {s});
    const float pad_value = (0.0f - m) / s;
    std::vector<float> out(H * W);

    // Every offset, no flip: out[y][x] = src[y + dy - P][x + dx - P], or the padded zero.
    for (std::size_t dy = 0; dy <= 2 * P; ++dy)
        for (std::size_t dx = 0; dx <= 2 * P; ++dx) {
            CAPTURE(dy);
            CAPTURE(dx);
            data::augment_image(src.data(), 1, H, W, P, {dy, dx, false}, nz, out.data());
            for (std::size_t y = 0; y < H; ++y)
                for (std::size_t x = 0; x < W; ++x) {
                    const long sy = long(y + dy) - long(P), sx = long(x + dx) - long(P);
                    const bool inside = sy >= 0 && sy < long(H) && sx >= 0 && sx < long(W);
                    const float want = inside ? norm(src[std::size_t(sy) * W + std::size_t(sx)]) : pad_value;
                    CHECK(out[y * W + x] == want);
                }
        }
    // The centre crop is the image itself.
    data::augment_image(src.data(), 1, H, W, P, {P, P, false}, nz, out.data());
    for (std::size_t i = 0; i < src.size(); ++i) CHECK(out[i] == norm(src[i]));
    // Offset (0, 0): shifted down-right by P, top rows and left columns are padding.
    data::augment_image(src.data(), 1, H, W, P, {0, 0, false}, nz, out.data());
    CHECK(out[0] == pad_value);
    CHECK(out[1 * W + 4] == pad_value);
    CHECK(out[2 * W + 2] == norm(src[0]));
    CHECK(out[3 * W + 4] == norm(src[1 * W + 2]));
    CHECK(pad_value == doctest::Approx(-0.2860406 / 0.3530242).epsilon(1e-6));
}

TEST_CASE("augment_image: flip mirrors the crop") {
    constexpr std::size_t C = 2, H = 3, W = 4;
    bytes src(C * H * W);
    for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<std::uint8_t>(3 * i + 1);
    const data::normalizer nz(C, {0.1f, 0.7f}, {0.5f, 2.0f});
    std::vector<float> plain(C * H * W), flipped(C * H * W);
    // No crop shift: flip is an exact mirror of each row of each channel.
    data::augment_image(src.data(), C, H, W, 0, {0, 0, true}, nz, flipped.data());
    for (std::size_t c = 0; c < C; ++c)
        for (std::size_t y = 0; y < H; ++y)
            for (std::size_t x = 0; x < W; ++x)
                CHECK(flipped[(c * H + y) * W + x] == nz(c, src[(c * H + y) * W + (W - 1 - x)]));
    // With a crop shift the flip applies after the crop: flipped[y][x] = crop[y][W-1-x].
    data::augment_image(src.data(), C, H, W, 1, {2, 0, false}, nz, plain.data());
    data::augment_image(src.data(), C, H, W, 1, {2, 0, true}, nz, flipped.data());
    for (std::size_t c = 0; c < C; ++c)
        for (std::size_t y = 0; y < H; ++y)
            for (std::size_t x = 0; x < W; ++x)
                CHECK(flipped[(c * H + y) * W + x] == plain[(c * H + y) * W + (W - 1 - x)]);
    // Padding uses each channel's own (0 - mean) / std: last row and first column are padding.
    CHECK(plain[(0 * H + 2) * W + 1] == nz(0, 0));
    CHECK(plain[(1 * H + 2) * W + 1] == nz(1, 0));
    CHECK(plain[(1 * H + 0) * W + 0] == nz(1, 0));
    CHECK(plain[(1 * H + 0) * W + 1] == nz(1, src[(1 * H + 1) * W + 0]));
}

TEST_CASE("normalize_image equals the table lookup") {
    bytes src = pixels(1, 2 * 3 * 3);
    const data::normalizer nz(2, {0.25f, 0.5f}, {0.5f, 0.125f});
    std::vector<float> out(src.size());
    data::normalize_image(src.data(), 2, 3, 3, nz, out.data());
    for (std::size_t i = 0; i < src.size(); ++i) CHECK(out[i] == nz(i / 9, src[i]));
}

TEST_CASE("draw_augment: offsets cover [0, 2P], flip follows p") {
    rng g(7);
    std::vector<int> seen_y(5), seen_x(5);
    int flips = 0;
    const int n = 4000;
    for (int i = 0; i < n; ++i) {
        const auto a = data::draw_augment(g, 2, 0.5);
        REQUIRE(a.dy <= 4);
        REQUIRE(a.dx <= 4);
        ++seen_y[a.dy];
        ++seen_x[a.dx];
        flips += a.flip;
    }
    for (int k = 0; k < 5; ++k) {
        CHECK(seen_y[std::size_t(k)] > n / 5 - 150);
        CHECK(seen_x[std::size_t(k)] > n / 5 - 150);
    }
    CHECK(std::abs(flips - n / 2) < 150);
    for (int i = 0; i < 100; ++i) {
        CHECK(data::draw_augment(g, 0, 1.0).flip);
        const auto a = data::draw_augment(g, 0, 0.0);
        CHECK(!a.flip);
        CHECK(a.dy == 0);
    }
}

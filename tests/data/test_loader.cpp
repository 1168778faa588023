// Loaders: batch geometry, seeded per-epoch order, reproducibility (across loaders, epochs,
// thread counts), augmentation inside batches, the unlabeled view and the has_labels trait.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <string>

#include "sqakd/data.hpp"
#include "test_util.hpp"

using namespace sqakd;
using namespace sqakd_test;

// The trait a trainer uses to reject a label-needing loss on unlabeled data.
static_assert(data::has_labels_v<data::loader>, "a loader yields labels");
static_assert(data::has_labels_v<const data::loader&>, "cv-ref qualified loaders too");
static_assert(!data::has_labels_v<data::unlabeled_loader>, "the unlabeled view yields no labels");
static_assert(!data::has_labels_v<data::dataset>, "a dataset is not a batch source");
static_assert(!data::has_labels_v<int>, "unrelated types have no labels");
static_assert(!std::is_constructible_v<data::loader, data::dataset&&>,
              "a loader must not bind a temporary dataset (it keeps a reference)");

namespace {

// n images of c x h x w: every pixel of image i is i (mod 256) except a per-pixel pattern
// in channel 0 row 0, so samples are identifiable after normalisation with mean 0, std 1.
data::dataset make_dataset(std::size_t n, std::size_t c = 1, std::size_t h = 6, std::size_t w = 6,
                           bool labels = true) {
    bytes img(n * c * h * w);
    std::vector<std::int32_t> lab;
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t k = 0; k < c * h * w; ++k) img[i * c * h * w + k] = pixel(i, k);
        img[i * c * h * w] = static_cast<std::uint8_t>(i);
        if (labels) lab.push_back(static_cast<std::int32_t>(i % 10));
    }
    return data::dataset(std::move(img), std::move(lab), c, h, w, 10, "synthetic");
}

// Index of the sample in a batch image normalised with mean 0, std 1 (first pixel = i / 255).
std::size_t id_of(const tensor<float>& images, std::size_t j) {
    const std::size_t per = images.size() / images.shape()[0];
    return static_cast<std::size_t>(std::lround(images.data()[j * per] * 255.0f));
}

bool same(const tensor<float>& a, const tensor<float>& b) {
    return a.shape() == b.shape() && std::equal(a.begin(), a.end(), b.begin());
}

}  // namespace

TEST_CASE("dataset: accessors, subsets, validation") {
    const auto ds = make_dataset(12, 2, 3, 4);
    CHECK(ds.size() == 12);
    CHECK(ds.sample_size() == 24);
    CHECK(ds.image_shape() == shape_t{2, 3, 4});
    const auto sub = ds.subset(3, 4);
    REQUIRE(sub.size() == 4);
    CHECK(sub.label(0) == 3);
    CHECK(std::equal(sub.image(3), sub.image(3) + 24, ds.image(6)));
    const auto pick = ds.subset(std::vector<std::size_t>{11, 0, 11});
    REQUIRE(pick.size() == 3);
    CHECK(pick.labels() == std::vector<std::int32_t>{1, 0, 1});
    CHECK(std::equal(pick.image(2), pick.image(2) + 24, ds.image(11)));
    CHECK(ds.subset(12, 0).size() == 0);
    CHECK(contains(message_of<error::invalid_value>([&] { ds.subset(10, 3); }), "synthetic: subset(10, 3)"));
    CHECK(contains(message_of<error::invalid_value>([&] { ds.subset(std::vector<std::size_t>{1, 12}); }),
                   "subset index 12 (position 1)"));
    const auto nolab = ds.without_labels();
    CHECK(!nolab.has_labels());
    CHECK(nolab.subset(0, 2).labels().empty());

    CHECK_THROWS_AS(data::dataset(bytes(10), {}, 1, 3, 3, 10), error::shape_mismatch);
    CHECK_THROWS_AS(data::dataset(bytes(18), {1}, 1, 3, 3, 10), error::shape_mismatch);
    CHECK(contains(message_of<error::invalid_value>([] { data::dataset(bytes(9), {10}, 1, 3, 3, 10, "d"); }),
                   "d: label 10 at index 0 is out of range [0, 10)"));
}

TEST_CASE("loader: number and size of batches, last partial batch kept unless drop_last") {
    const auto ds = make_dataset(23);
    data::loader_options opt;
    opt.batch_size = 5;
    data::loader ld(ds, opt);
    CHECK(ld.num_batches() == 5);
    CHECK(ld.samples_per_epoch() == 23);
    tensor<float> x;
    std::vector<std::int32_t> y;
    ld.batch(4, x, y);
    CHECK(x.shape() == std::vector<std::size_t>{3, 1, 6, 6});
    CHECK(y.size() == 3);
    ld.batch(0, x, y);
    CHECK(x.shape() == std::vector<std::size_t>{5, 1, 6, 6});
    CHECK(ld.batch_size(4) == 3);
    CHECK(contains(message_of<error::invalid_value>([&] { ld.batch(5, x, y); }),
                   "loader: batch index 5 is out of range [0, 5)"));

    opt.drop_last = true;
    data::loader dl(ds, opt);
    CHECK(dl.num_batches() == 4);
    CHECK(dl.samples_per_epoch() == 20);
    CHECK_THROWS_AS(dl.batch(4, x, y), error::invalid_value);
    opt.batch_size = 30;
    CHECK(data::loader(ds, opt).num_batches() == 0);
    opt.drop_last = false;
    CHECK(data::loader(ds, opt).num_batches() == 1);
}

TEST_CASE("loader: every sample exactly once per epoch, labels match images") {
    const auto ds = make_dataset(23);
    data::loader_options opt;
    opt.batch_size = 4;
    opt.seed = 11;
    data::loader ld(ds, opt);
    tensor<float> x;
    std::vector<std::int32_t> y;
    for (std::size_t e = 0; e < 3; ++e) {
        ld.set_epoch(e);
        std::vector<int> count(23);
        for (std::size_t b = 0; b < ld.num_batches(); ++b) {
            ld.batch(b, x, y);
            for (std::size_t j = 0; j < y.size(); ++j) {
                const std::size_t id = id_of(x, j);
                REQUIRE(id < 23);
                ++count[id];
                CHECK(y[j] == static_cast<std::int32_t>(id % 10));
                CHECK(ld.order()[b * 4 + j] == id);
            }
        }
        CHECK(std::all_of(count.begin(), count.end(), [](int c) { return c == 1; }));
    }
}

TEST_CASE("loader: order depends only on (seed, epoch)") {
    const auto ds = make_dataset(50);
    data::loader_options opt;
    opt.batch_size = 8;
    opt.seed = 3;
    data::loader a(ds, opt), b(ds, opt);
    a.set_epoch(4);
    b.set_epoch(4);
    CHECK(a.order() == b.order());
    const auto e4 = a.order();
    a.set_epoch(5);
    CHECK(a.order() != e4);
    a.set_epoch(4);  // resuming at epoch 4 reproduces it
    CHECK(a.order() == e4);
    std::vector<std::size_t> ident(50);
    for (std::size_t i = 0; i < 50; ++i) ident[i] = i;
    CHECK(e4 != ident);
    opt.seed = 4;
    data::loader c(ds, opt);
    c.set_epoch(4);
    CHECK(c.order() != e4);
    opt.shuffle = false;
    data::loader d(ds, opt);
    d.set_epoch(9);
    CHECK(d.order() == ident);
    // The documented recipe: Fisher-Yates driven by rng(stream_seed(seed, epoch, shuffle_stream, 0)).
    rng g(data::stream_seed(3, 4, data::shuffle_stream, 0));
    std::vector<std::size_t> want = ident;
    for (std::size_t i = 49; i > 0; --i) std::swap(want[i], want[g.below(i + 1)]);
    CHECK(want == e4);
}

TEST_CASE("loader: without augmentation a batch is the normalised images in epoch order") {
    const auto ds = make_dataset(10, 3, 4, 4);
    data::loader_options opt;
    opt.batch_size = 4;
    opt.normalize(data::cifar10_stats());
    opt.seed = 1;
    data::loader ld(ds, opt);
    ld.set_epoch(2);
    tensor<float> x;
    std::vector<std::int32_t> y;
    ld.batch(1, x, y);
    const data::normalizer nz(3, opt.mean, opt.std);
    std::vector<float> want(48);
    for (std::size_t j = 0; j < 4; ++j) {
        data::normalize_image(ds.image(ld.order()[4 + j]), 3, 4, 4, nz, want.data());
        CHECK(std::equal(want.begin(), want.end(), x.data() + j * 48));
    }
}

TEST_CASE("loader: augmentation inside batches is pad + crop + flip per sample, reproducible") {
    const auto ds = make_dataset(40, 1, 8, 8);
    data::loader_options opt;
    opt.batch_size = 16;
    opt.augment = true;
    opt.flip = 1.0;  // always mirror
    opt.pad = 2;
    opt.normalize(data::fashion_mnist_stats());
    opt.seed = 5;
    data::loader ld(ds, opt);
    CHECK(ld.pad() == 2);
    ld.set_epoch(1);
    tensor<float> x;
    std::vector<std::int32_t> y;
    const data::normalizer nz(1, opt.mean, opt.std);
    std::set<std::pair<std::size_t, std::size_t>> offsets;
    std::vector<float> cand(64);
    for (std::size_t b = 0; b < ld.num_batches(); ++b) {
        ld.batch(b, x, y);
        for (std::size_t j = 0; j < y.size(); ++j) {
            const std::size_t i = ld.order()[b * 16 + j];
            const float* got = x.data() + j * 64;
            // It must be a flipped crop at some offset in [0, 4]^2; find which.
            int matches = 0;
            for (std::size_t dy = 0; dy <= 4; ++dy)
                for (std::size_t dx = 0; dx <= 4; ++dx) {
                    data::augment_image(ds.image(i), 1, 8, 8, 2, {dy, dx, true}, nz, cand.data());
                    if (std::equal(cand.begin(), cand.end(), got)) {
                        ++matches;
                        offsets.insert({dy, dx});
                    }
                }
            CHECK(matches == 1);
            // And exactly the documented draw for (seed, epoch, position).
            rng g(data::stream_seed(5, 1, data::augment_stream, b * 16 + j));
            data::augment_image(ds.image(i), 1, 8, 8, 2, data::draw_augment(g, 2, 1.0), nz, cand.data());
            CHECK(std::equal(cand.begin(), cand.end(), got));
        }
    }
    CHECK(offsets.size() > 10);  // the offsets vary over samples

    // Same seed and epoch in a fresh loader: identical batches. Another epoch: different.
    data::loader again(ds, opt);
    again.set_epoch(1);
    tensor<float> x2;
    std::vector<std::int32_t> y2;
    ld.batch(0, x, y);
    again.batch(0, x2, y2);
    CHECK(same(x, x2));
    CHECK(y == y2);
    again.set_epoch(2);
    again.batch(0, x2, y2);
    CHECK(!same(x, x2));
}

TEST_CASE("loader: default pad is 2 below 32x32, 4 from 32x32") {
    data::loader_options opt;
    opt.augment = true;
    const auto small = make_dataset(2, 1, 28, 28);
    const auto big = make_dataset(2, 3, 32, 32);
    CHECK(data::loader(small, opt).pad() == 2);
    CHECK(data::loader(big, opt).pad() == 4);
    opt.pad = 0;
    CHECK(data::loader(big, opt).pad() == 0);
}

TEST_CASE("loader: batches are identical with 1 and 2 threads") {
    const auto ds = make_dataset(300, 1, 28, 28);
    data::loader_options opt;
    opt.batch_size = 128;
    opt.augment = true;
    opt.normalize(data::fashion_mnist_stats());
    opt.seed = 9;
    data::loader ld(ds, opt);
    ld.set_epoch(3);
    const int before = num_threads();
    std::vector<tensor<float>> one, two;
    for (int t : {1, 2}) {
        set_num_threads(t);
        auto& dst = t == 1 ? one : two;
        for (std::size_t b = 0; b < ld.num_batches(); ++b) {
            tensor<float> x;
            std::vector<std::int32_t> y;
            ld.batch(b, x, y);
            dst.push_back(x);
        }
    }
    set_num_threads(before);
    REQUIRE(one.size() == 3);
    for (std::size_t b = 0; b < 3; ++b) CHECK(same(one[b], two[b]));
}

TEST_CASE("unlabeled_loader gives exactly the labelled loader's images") {
    const auto ds = make_dataset(37, 3, 32, 32);
    data::loader_options opt;
    opt.batch_size = 10;
    opt.augment = true;
    opt.normalize(data::cifar10_stats());
    opt.seed = 21;
    data::loader lab(ds, opt);
    data::unlabeled_loader free(ds, opt);
    const auto nolabels = ds.without_labels();
    data::unlabeled_loader bare(nolabels, opt);  // a dataset that has no labels at all
    tensor<float> x, u, v;
    std::vector<std::int32_t> y;
    for (std::size_t e : {0u, 1u, 7u}) {
        lab.set_epoch(e);
        free.set_epoch(e);
        bare.set_epoch(e);
        data::unlabeled_loader view(lab);  // a view built from the loader follows its epoch
        CHECK(view.epoch() == e);
        REQUIRE(free.num_batches() == lab.num_batches());
        for (std::size_t b = 0; b < lab.num_batches(); ++b) {
            lab.batch(b, x, y);
            free.batch(b, u);
            CHECK(same(x, u));
            bare.batch(b, v);
            CHECK(same(x, v));
            view.batch(b, v);
            CHECK(same(x, v));
        }
    }
    CHECK(contains(message_of<error::invalid_value>([&] { data::loader(nolabels, opt); }),
                   "has no labels; use unlabeled_loader"));
}

TEST_CASE("range-for over a loader yields the same batches as batch()") {
    const auto ds = make_dataset(21);
    data::loader_options opt;
    opt.batch_size = 6;
    opt.augment = true;
    opt.seed = 2;
    data::loader ld(ds, opt);
    ld.set_epoch(1);
    std::size_t n = 0;
    tensor<float> x;
    std::vector<std::int32_t> y;
    for (const auto& b : ld) {
        CHECK(b.index == n);
        ld.batch(n, x, y);
        CHECK(same(b.images, x));
        CHECK(b.labels == y);
        ++n;
    }
    CHECK(n == 4);
    data::unlabeled_loader ul(ds, opt);
    ul.set_epoch(1);
    n = 0;
    for (auto it = ul.begin(); it != ul.end(); ++it, ++n) {
        ld.batch(n, x, y);
        CHECK(same(it->images, x));
    }
    CHECK(n == 4);
}

TEST_CASE("loader options are validated, naming the parameter") {
    const auto ds = make_dataset(4, 3, 4, 4);
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    auto msg_for = [&](auto mutate) {
        data::loader_options o;
        mutate(o);
        return message_of<error::invalid_value>([&] { data::loader(ds, o); });
    };
    CHECK(contains(msg_for([](auto& o) { o.batch_size = 0; }), "loader_options.batch_size must be > 0"));
    CHECK(contains(msg_for([](auto& o) { o.flip = 1.5; }), "loader_options.flip must be a probability"));
    CHECK(contains(msg_for([&](auto& o) { o.flip = double(nan); }), "loader_options.flip"));
    CHECK(contains(msg_for([](auto& o) { o.pad = -2; }), "loader_options.pad must be >= 0"));
    CHECK(contains(msg_for([&](auto& o) { o.mean = {0.1f, nan, 0.3f}; }), "loader_options: mean[1] must be finite"));
    CHECK(contains(msg_for([&](auto& o) { o.std = {inf}; }), "loader_options: std[0] must be finite and > 0"));
    CHECK(contains(msg_for([](auto& o) { o.std = {1.0f, 0.0f, 1.0f}; }), "std[1] must be finite and > 0, got 0"));
    CHECK(contains(msg_for([](auto& o) { o.mean = {0.1f, 0.2f}; }), "mean has 2 values, expected 1 or 3"));
    data::loader_options o;
    o.std = {nan};
    CHECK(contains(message_of<error::invalid_value>([&] { data::unlabeled_loader(ds, o); }),
                   "unlabeled_loader: loader_options: std[0]"));
}

// IDX reader: exact round trips (gzip and plain), and every corruption reported as an error
// that names the file and the problem.
#include <doctest/doctest.h>

#include <string>

#include "sqakd/data/idx.hpp"
#include "test_util.hpp"

using namespace sqakd;
using namespace sqakd_test;

namespace {

// Writes 3 images of 4x5 and their labels; returns {images path, labels path}.
std::pair<std::string, std::string> write_small(const temp_dir& dir, bool gz, const bytes& labels = {0, 9, 3}) {
    const std::string ext = gz ? ".gz" : "";
    const std::string img = dir.file("imgs-idx3-ubyte" + ext), lab = dir.file("labs-idx1-ubyte" + ext);
    write_file(img, idx_images_file(3, 4, 5, pixels(3, 20)), gz);
    write_file(lab, idx_labels_file(labels), gz);
    return {img, lab};
}

}  // namespace

TEST_CASE("load_idx reads gzip and plain IDX files exactly") {
    for (bool gz : {true, false}) {
        CAPTURE(gz);
        temp_dir dir;
        const auto files = write_small(dir, gz);
        const std::string img = files.first, lab = files.second;
        const data::dataset ds = data::load_idx(img, lab);
        REQUIRE(ds.size() == 3);
        CHECK(ds.channels() == 1);
        CHECK(ds.height() == 4);
        CHECK(ds.width() == 5);
        CHECK(ds.num_classes() == 10);
        CHECK(ds.has_labels());
        CHECK(ds.name() == img);
        CHECK(ds.labels() == std::vector<std::int32_t>{0, 9, 3});
        REQUIRE(ds.images().size() == 60);
        for (std::size_t i = 0; i < 3; ++i)
            for (std::size_t k = 0; k < 20; ++k) CHECK(ds.image(i)[k] == pixel(i, k));

        const data::idx_images raw = data::read_idx_images(img);
        CHECK(raw.count == 3);
        CHECK(raw.rows == 4);
        CHECK(raw.cols == 5);
        CHECK(raw.pixels == pixels(3, 20));
    }
}

TEST_CASE("IDX: an empty file set (0 images) is valid") {
    temp_dir dir;
    write_file(dir.file("i.gz"), idx_images_file(0, 28, 28, {}), true);
    write_file(dir.file("l.gz"), idx_labels_file({}), true);
    const auto ds = data::load_idx(dir.file("i.gz"), dir.file("l.gz"));
    CHECK(ds.size() == 0);
    CHECK(ds.height() == 28);
}

TEST_CASE("IDX: truncated files name the file and the missing bytes") {
    for (bool gz : {true, false}) {
        CAPTURE(gz);
        temp_dir dir;
        const bytes full = idx_images_file(3, 4, 5, pixels(3, 20));  // 16 + 60 bytes
        const std::string path = dir.file(gz ? "train-images-idx3-ubyte.gz" : "train-images-idx3-ubyte");
        // Cut inside the header.
        for (std::size_t len : {0u, 3u, 5u, 15u}) {
            CAPTURE(len);
            write_file(path, bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len)), gz);
            const std::string msg = message_of<error::corrupt_file>([&] { data::read_idx_images(path); });
            CHECK(contains(msg, path));
            CHECK(contains(msg, "truncated header: expected 16 bytes, got " + std::to_string(len)));
        }
        // Cut inside the pixels.
        for (std::size_t len : {16u, 17u, 46u, 75u}) {
            CAPTURE(len);
            write_file(path, bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len)), gz);
            const std::string msg = message_of<error::corrupt_file>([&] { data::read_idx_images(path); });
            CHECK(contains(msg, path + ": truncated: expected 60 bytes of pixels, got " +
                                    std::to_string(len - 16)));
        }
        // Labels cut short.
        const bytes lab = idx_labels_file({1, 2, 3, 4});
        const std::string lpath = dir.file("labels");
        for (std::size_t len : {4u, 8u, 10u}) {
            CAPTURE(len);
            write_file(lpath, bytes(lab.begin(), lab.begin() + static_cast<std::ptrdiff_t>(len)), gz);
            const std::string msg = message_of<error::corrupt_file>([&] { data::read_idx_labels(lpath); });
            CHECK(contains(msg, lpath));
            if (len < 8)
                CHECK(contains(msg, "truncated header: expected 8 bytes, got " + std::to_string(len)));
            else
                CHECK(contains(msg, "truncated: expected 4 bytes of labels, got " + std::to_string(len - 8)));
        }
    }
}

TEST_CASE("IDX: a header that claims far more data than the file holds is truncation, not a crash") {
    temp_dir dir;
    const std::string path = dir.file("huge.gz");
    write_file(path, idx_images_file(0xFFFFFFFFu, 28, 28, pixels(1, 10)), true);
    const std::string msg = message_of<error::corrupt_file>([&] { data::read_idx_images(path); });
    CHECK(contains(msg, "truncated: expected 3367254359280 bytes of pixels, got 10"));
}

TEST_CASE("IDX: trailing garbage is reported") {
    for (bool gz : {true, false}) {
        CAPTURE(gz);
        temp_dir dir;
        const std::string path = dir.file("img");
        for (std::size_t extra : {1u, 7u, 5000u}) {
            CAPTURE(extra);
            bytes b = idx_images_file(3, 4, 5, pixels(3, 20));
            b.resize(b.size() + extra, 0xAB);
            write_file(path, b, gz);
            const std::string msg = message_of<error::corrupt_file>([&] { data::read_idx_images(path); });
            CHECK(contains(msg, path + ": trailing garbage: " + std::to_string(extra) +
                                    (extra == 1 ? " byte" : " bytes") + " after the expected 60 bytes of pixels"));
        }
        const std::string lpath = dir.file("lab");
        bytes l = idx_labels_file({1, 2});
        l.push_back(0);
        write_file(lpath, l, gz);
        CHECK(contains(message_of<error::corrupt_file>([&] { data::read_idx_labels(lpath); }),
                       "trailing garbage: 1 byte after the expected 2 bytes of labels"));
    }
}

TEST_CASE("IDX: bad magic numbers, zero dimensions") {
    temp_dir dir;
    const auto files = write_small(dir, true);
    const std::string img = files.first, lab = files.second;
    // Swapped arguments: each file has the other's magic.
    std::string msg = message_of<error::corrupt_file>([&] { data::load_idx(lab, img); });
    CHECK(contains(msg, lab + ": bad magic number 0x00000801, expected 0x00000803"));
    CHECK(contains(msg, "swapped"));
    msg = message_of<error::corrupt_file>([&] { data::read_idx_labels(img); });
    CHECK(contains(msg, img + ": bad magic number 0x00000803, expected 0x00000801"));

    const std::string odd = dir.file("odd.gz");
    write_file(odd, idx_images_file(3, 4, 5, pixels(3, 20), 0x12345678), true);
    msg = message_of<error::corrupt_file>([&] { data::read_idx_images(odd); });
    CHECK(contains(msg, odd + ": bad magic number 0x12345678, expected 0x00000803"));
    // Int32 pixels (type byte 0x0C) are not supported either.
    write_file(odd, idx_images_file(3, 4, 5, pixels(3, 20), 0x00000C03), false);
    CHECK(contains(message_of<error::corrupt_file>([&] { data::read_idx_images(odd); }), "0x00000C03"));

    write_file(odd, idx_images_file(3, 0, 5, {}), true);
    msg = message_of<error::corrupt_file>([&] { data::read_idx_images(odd); });
    CHECK(contains(msg, odd + ": bad header: image size 0x5 has a zero dimension"));
}

TEST_CASE("IDX: image/label count mismatch names both files") {
    temp_dir dir;
    const auto files = write_small(dir, true, {1, 2});
    const std::string img = files.first, lab = files.second;
    const std::string msg = message_of<error::corrupt_file>([&] { data::load_idx(img, lab); });
    CHECK(contains(msg, img));
    CHECK(contains(msg, lab));
    CHECK(contains(msg, "3 images"));
    CHECK(contains(msg, "2 labels"));
    CHECK(contains(msg, "count mismatch"));
}

TEST_CASE("IDX: labels out of range") {
    temp_dir dir;
    const auto files = write_small(dir, false, {0, 4, 10});
    const std::string img = files.first, lab = files.second;
    std::string msg = message_of<error::corrupt_file>([&] { data::load_idx(img, lab); });
    CHECK(contains(msg, lab + ": label 10 at index 2 is out of range: expected < 10 classes"));
    // Fewer classes declared by the caller.
    msg = message_of<error::corrupt_file>([&] { data::read_idx_labels(lab, 4); });
    CHECK(contains(msg, "label 4 at index 1"));
    CHECK(data::read_idx_labels(lab, 11).back() == 10);
}

TEST_CASE("IDX: missing or unreadable files are file_error, not corrupt_file") {
    temp_dir dir;
    const std::string missing = dir.file("nope-idx3-ubyte.gz");
    auto is_plain_file_error = [](auto&& f) {
        try {
            f();
        } catch (const error::corrupt_file&) {
            return std::string("corrupt_file");
        } catch (const error::file_error& e) {
            return std::string(e.what());
        }
        return std::string("no exception");
    };
    std::string msg = is_plain_file_error([&] { data::read_idx_images(missing); });
    CHECK(contains(msg, missing + ": cannot open"));
    msg = is_plain_file_error([&] { data::read_idx_images(dir.path().string()); });
    CHECK(contains(msg, "is a directory"));
}

TEST_CASE("IDX: a damaged gzip stream is corrupt_file") {
    temp_dir dir;
    const std::string path = dir.file("cut.gz");
    // Incompressible payload so the compressed stream is long, then cut it in the middle.
    bytes px(20000);
    std::uint32_t x = 12345;
    for (auto& p : px) {
        x = x * 1664525u + 1013904223u;
        p = static_cast<std::uint8_t>(x >> 24);
    }
    write_file(path, idx_images_file(25, 20, 40, px), true);
    bytes gz = read_raw(path);
    REQUIRE(gz.size() > 10000);
    gz.resize(gz.size() / 2);
    write_file(path, gz, false);
    std::string msg = message_of<error::corrupt_file>([&] { data::read_idx_images(path); });
    CHECK(contains(msg, path));
    CHECK(contains(msg, "truncated"));

    // Flip bytes in the middle of the deflate data.
    write_file(path, idx_images_file(25, 20, 40, px), true);
    gz = read_raw(path);
    for (std::size_t i = 100; i < 200; ++i) gz[i] ^= 0x5A;
    write_file(path, gz, false);
    msg = message_of<error::corrupt_file>([&] { data::read_idx_images(path); });
    CHECK(contains(msg, path + ": damaged gzip stream"));
}

TEST_CASE("load_fashion_mnist reads a directory laid out like Debian's package") {
    temp_dir dir;
    write_file(dir.file("t10k-images-idx3-ubyte.gz"), idx_images_file(3, 28, 28, pixels(3, 784)), true);
    write_file(dir.file("t10k-labels-idx1-ubyte.gz"), idx_labels_file({9, 2, 1}), true);
    // Uncompressed names are accepted too.
    write_file(dir.file("train-images-idx3-ubyte"), idx_images_file(2, 28, 28, pixels(2, 784)), false);
    write_file(dir.file("train-labels-idx1-ubyte"), idx_labels_file({5, 0}), false);

    const auto test = data::load_fashion_mnist(dir.path().string(), data::split::test);
    CHECK(test.size() == 3);
    CHECK(test.name() == "fashion-mnist/test");
    CHECK(test.labels() == std::vector<std::int32_t>{9, 2, 1});
    CHECK(test.image(2)[783] == pixel(2, 783));
    const auto train = data::load_fashion_mnist(dir.path().string(), data::split::train);
    CHECK(train.size() == 2);
    CHECK(train.labels() == std::vector<std::int32_t>{5, 0});
    const auto mn = data::load_mnist(dir.path().string(), data::split::test);
    CHECK(mn.name() == "mnist/test");
}

TEST_CASE("load_fashion_mnist: missing directory or files say how to install them") {
    temp_dir dir;
    const std::string gone = (dir.path() / "not-here").string();
    std::string msg = message_of<error::file_error>([&] { data::load_fashion_mnist(gone, data::split::test); });
    CHECK(contains(msg, gone));
    CHECK(contains(msg, "dataset-fashion-mnist"));
    CHECK(contains(msg, "scripts/setup.sh"));
    // Directory present, labels missing.
    write_file(dir.file("t10k-images-idx3-ubyte.gz"), idx_images_file(1, 28, 28, pixels(1, 784)), true);
    msg = message_of<error::file_error>([&] { data::load_fashion_mnist(dir.path().string(), data::split::test); });
    CHECK(contains(msg, "t10k-labels-idx1-ubyte.gz: cannot open"));
    CHECK(contains(msg, "dataset-fashion-mnist"));
}

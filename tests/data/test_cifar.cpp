// CIFAR-10 / CIFAR-100 binary readers: exact records, file order, directory layouts, errors.
#include <doctest/doctest.h>

#include <string>

#include "sqakd/data/cifar.hpp"
#include "test_util.hpp"

using namespace sqakd;
using namespace sqakd_test;

namespace {

constexpr std::size_t px = 3072;

// Records with label bytes `labels[r]` (1 or 2 per record) and pixels pixel(tag + r, k).
bytes cifar_records(const std::vector<bytes>& labels, std::size_t tag) {
    bytes b;
    for (std::size_t r = 0; r < labels.size(); ++r) {
        b.insert(b.end(), labels[r].begin(), labels[r].end());
        for (std::size_t k = 0; k < px; ++k) b.push_back(pixel(tag + r, k));
    }
    return b;
}

// Five train batches of 2 records (labels f, f+1 mod 10) and a test batch of 3.
void write_cifar10(const fs::path& d) {
    fs::create_directories(d);
    for (std::size_t f = 1; f <= 5; ++f)
        write_file((d / ("data_batch_" + std::to_string(f) + ".bin")).string(),
                   cifar_records({{std::uint8_t(f)}, {std::uint8_t((f + 1) % 10)}}, 10 * f), false);
    write_file((d / "test_batch.bin").string(), cifar_records({{3}, {8}, {0}}, 100), false);
}

}  // namespace

TEST_CASE("load_cifar10 reads the batches in order with exact pixels") {
    temp_dir dir;
    write_cifar10(dir.path());
    const auto train = data::load_cifar10(dir.path().string(), data::split::train);
    REQUIRE(train.size() == 10);
    CHECK(train.channels() == 3);
    CHECK(train.height() == 32);
    CHECK(train.width() == 32);
    CHECK(train.num_classes() == 10);
    CHECK(train.name() == "cifar10/train");
    for (std::size_t f = 1; f <= 5; ++f)
        for (std::size_t r = 0; r < 2; ++r) {
            const std::size_t i = (f - 1) * 2 + r;
            CHECK(train.label(i) == static_cast<std::int32_t>((f + r) % 10));
            bool same = true;
            for (std::size_t k = 0; k < px; ++k) same = same && train.image(i)[k] == pixel(10 * f + r, k);
            CHECK(same);
        }
    const auto test = data::load_cifar10(dir.path().string(), data::split::test);
    CHECK(test.labels() == std::vector<std::int32_t>{3, 8, 0});
    CHECK(test.image(1)[px - 1] == pixel(101, px - 1));
    // The record is R, G, B planes of 32x32: pixel (c, y, x) is byte c*1024 + y*32 + x.
    CHECK(test.image(2)[2 * 1024 + 5 * 32 + 7] == pixel(102, 2 * 1024 + 5 * 32 + 7));
}

TEST_CASE("load_cifar10 finds the unpacked cifar-10-batches-bin folder; gzip files work") {
    temp_dir dir;
    write_cifar10(dir.path() / "cifar-10-batches-bin");
    CHECK(data::load_cifar10(dir.path().string(), data::split::test).size() == 3);
    const fs::path t = dir.path() / "cifar-10-batches-bin" / "test_batch.bin";
    write_file(t.string(), cifar_records({{7}}, 5), true);  // gzip content, .bin name
    const auto test = data::load_cifar10(dir.path().string(), data::split::test);
    CHECK(test.size() == 1);
    CHECK(test.label(0) == 7);
}

TEST_CASE("CIFAR-10 errors name the file and the problem") {
    temp_dir dir;
    write_cifar10(dir.path());
    const std::string f3 = dir.file("data_batch_3.bin");
    // Truncated at several lengths: not a multiple of 3073 bytes.
    const bytes good = cifar_records({{1}, {2}}, 0);
    for (std::size_t len : {1u, 100u, 3074u, 6145u}) {
        CAPTURE(len);
        write_file(f3, bytes(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(len)), false);
        const std::string msg = message_of<error::corrupt_file>([&] { data::load_cifar10(dir.path().string()); });
        CHECK(contains(msg, f3 + ": size " + std::to_string(len) +
                                " bytes is not a multiple of the 3073-byte record"));
        CHECK(contains(msg, std::to_string(len / 3073) + " whole records and " + std::to_string(len % 3073) +
                                " bytes left over"));
    }
    write_file(f3, {}, false);
    CHECK(contains(message_of<error::corrupt_file>([&] { data::load_cifar10(dir.path().string()); }),
                   f3 + ": empty file"));
    // Label out of range.
    write_file(f3, cifar_records({{1}, {10}}, 0), false);
    CHECK(contains(message_of<error::corrupt_file>([&] { data::load_cifar10(dir.path().string()); }),
                   f3 + ": record 1: label 10 is out of range: expected < 10"));
    // Missing batch.
    fs::remove(f3);
    std::string msg = message_of<error::file_error>([&] { data::load_cifar10(dir.path().string()); });
    CHECK(contains(msg, f3 + ": cannot open"));
    CHECK(contains(msg, "cifar-10-binary"));
    // Missing directory.
    msg = message_of<error::file_error>([&] { data::load_cifar10(dir.file("nothing"), data::split::test); });
    CHECK(contains(msg, dir.file("nothing") + ": CIFAR-10 directory not found"));
}

TEST_CASE("load_cifar100: fine or coarse labels, both range-checked") {
    temp_dir dir;
    const fs::path d = dir.path() / "cifar-100-binary";
    fs::create_directories(d);
    write_file((d / "train.bin").string(), cifar_records({{19, 99}, {0, 42}, {7, 0}}, 3), false);
    write_file((d / "test.bin").string(), cifar_records({{1, 2}}, 9), false);

    const auto fine = data::load_cifar100(dir.path().string(), data::split::train);
    CHECK(fine.num_classes() == 100);
    CHECK(fine.labels() == std::vector<std::int32_t>{99, 42, 0});
    CHECK(fine.image(1)[0] == pixel(4, 0));
    CHECK(fine.image(2)[px - 1] == pixel(5, px - 1));
    const auto coarse = data::load_cifar100(dir.path().string(), data::split::train, false);
    CHECK(coarse.num_classes() == 20);
    CHECK(coarse.labels() == std::vector<std::int32_t>{19, 0, 7});
    CHECK(data::load_cifar100(d.string(), data::split::test).label(0) == 2);

    const std::string tr = (d / "train.bin").string();
    write_file(tr, cifar_records({{1, 2}, {20, 3}}, 0), false);
    CHECK(contains(message_of<error::corrupt_file>([&] { data::load_cifar100(d.string(), data::split::train); }),
                   tr + ": record 1: coarse label 20 is out of range: expected < 20"));
    write_file(tr, cifar_records({{1, 100}}, 0), false);
    CHECK(contains(message_of<error::corrupt_file>([&] { data::load_cifar100(d.string(), data::split::train, false); }),
                   tr + ": record 0: fine label 100 is out of range: expected < 100"));
    bytes cut = cifar_records({{1, 2}}, 0);
    cut.pop_back();
    write_file(tr, cut, false);
    CHECK(contains(message_of<error::corrupt_file>([&] { data::load_cifar100(d.string()); }),
                   "size 3073 bytes is not a multiple of the 3074-byte record (2 label bytes"));
}

// sqakd/data/cifar.hpp - CIFAR-10 and CIFAR-100, the "binary version" files.
//
//   auto train = sqakd::data::load_cifar10("/data/cifar-10-batches-bin", sqakd::data::split::train);
//   auto test  = sqakd::data::load_cifar100("/data/cifar-100-binary", sqakd::data::split::test);
//
// CIFAR-10: data_batch_1.bin .. data_batch_5.bin (train), test_batch.bin (test); each record is
// 1 label byte (< 10) then 3072 pixel bytes (1024 red, 1024 green, 1024 blue, rows of 32), which
// is already the [C, H, W] layout. CIFAR-100: train.bin, test.bin; each record is a coarse label
// byte (< 20), a fine label byte (< 100), then the same 3072 pixels. The archives unpack into
// cifar-10-batches-bin/ and cifar-100-binary/; pointing `dir` at their parent works too.
// Files may also be gzip-compressed (read through zlib). A file whose size is not a whole
// number of records, an empty file or a label out of range is an error::corrupt_file naming
// the file; a missing file is an error::file_error.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "sqakd/core/error.hpp"
#include "sqakd/data/dataset.hpp"
#include "sqakd/data/gz_reader.hpp"

namespace sqakd::data {

inline constexpr std::size_t cifar_image_bytes = 3 * 32 * 32;

namespace detail {

// Appends the records of one CIFAR file. label_bytes is 1 (CIFAR-10) or 2 (CIFAR-100: coarse,
// fine); `which` picks the label byte kept and `classes` the range of each label byte.
inline void read_cifar_file(const std::string& path, std::size_t label_bytes, std::size_t which,
                            const std::size_t* classes, const char* const* label_names,
                            std::vector<std::uint8_t>& images, std::vector<std::int32_t>& labels) {
    gz_reader in(path);
    const std::vector<std::uint8_t> raw = in.read_all();
    const std::size_t rec = label_bytes + cifar_image_bytes;
    if (raw.empty()) throw error::corrupt_file(path + ": empty file, expected " + std::to_string(rec) +
                                               "-byte records");
    if (raw.size() % rec != 0)
        throw error::corrupt_file(path + ": size " + std::to_string(raw.size()) +
                                  " bytes is not a multiple of the " + std::to_string(rec) +
                                  "-byte record (" + std::to_string(label_bytes) + " label byte" +
                                  (label_bytes > 1 ? "s" : "") + " + 3x32x32 pixels): " +
                                  std::to_string(raw.size() / rec) + " whole records and " +
                                  std::to_string(raw.size() % rec) + " bytes left over (truncated?)");
    const std::size_t n = raw.size() / rec;
    const std::size_t img0 = images.size();
    images.resize(img0 + n * cifar_image_bytes);
    labels.reserve(labels.size() + n);
    for (std::size_t r = 0; r < n; ++r) {
        const std::uint8_t* p = raw.data() + r * rec;
        for (std::size_t k = 0; k < label_bytes; ++k)
            if (p[k] >= classes[k])
                throw error::corrupt_file(path + ": record " + std::to_string(r) + ": " + label_names[k] +
                                          " " + std::to_string(p[k]) + " is out of range: expected < " +
                                          std::to_string(classes[k]));
        labels.push_back(p[which]);
        std::copy(p + label_bytes, p + rec,
                  images.begin() + static_cast<std::ptrdiff_t>(img0 + r * cifar_image_bytes));
    }
}

// `dir` itself when it holds `probe`, else `dir/sub` when that does; else `dir`.
inline std::filesystem::path cifar_dir(const std::string& dir, const char* sub, const std::string& probe,
                                       const char* what, const char* hint) {
    std::error_code ec;
    const std::filesystem::path d(dir);
    if (!std::filesystem::is_directory(d, ec))
        throw error::file_error(dir + ": " + what + " directory not found; " + hint);
    if (std::filesystem::exists(d / probe, ec)) return d;
    if (std::filesystem::exists(d / sub / probe, ec)) return d / sub;
    return d;
}

}  // namespace detail

/// CIFAR-10 [N, 3, 32, 32], 10 classes: 50000 train images from data_batch_1..5.bin or 10000
/// test images from test_batch.bin, in file order.
inline dataset load_cifar10(const std::string& dir, split s = split::train) {
    const char* hint = "download and unpack the CIFAR-10 binary version "
                       "(https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz)";
    std::vector<std::string> files;
    if (s == split::train)
        for (int i = 1; i <= 5; ++i) files.push_back("data_batch_" + std::to_string(i) + ".bin");
    else
        files.push_back("test_batch.bin");
    const auto d = detail::cifar_dir(dir, "cifar-10-batches-bin", files.front(), "CIFAR-10", hint);
    const std::size_t classes[1] = {10};
    const char* names[1] = {"label"};
    std::vector<std::uint8_t> images;
    std::vector<std::int32_t> labels;
    for (const auto& f : files) {
        const std::string path = (d / f).string();
        std::error_code ec;
        if (!std::filesystem::exists(path, ec))
            throw error::file_error(path + ": cannot open: no such file; " + hint);
        detail::read_cifar_file(path, 1, 0, classes, names, images, labels);
    }
    return dataset(std::move(images), std::move(labels), 3, 32, 32, 10,
                   std::string("cifar10/") + to_string(s));
}

/// CIFAR-100 [N, 3, 32, 32] from train.bin or test.bin: the 100 fine labels (fine = true) or
/// the 20 coarse ones. Both label bytes are range-checked either way.
inline dataset load_cifar100(const std::string& dir, split s = split::train, bool fine = true) {
    const char* hint = "download and unpack the CIFAR-100 binary version "
                       "(https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz)";
    const std::string file = s == split::train ? "train.bin" : "test.bin";
    const auto d = detail::cifar_dir(dir, "cifar-100-binary", file, "CIFAR-100", hint);
    const std::string path = (d / file).string();
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
        throw error::file_error(path + ": cannot open: no such file; " + hint);
    const std::size_t classes[2] = {20, 100};
    const char* names[2] = {"coarse label", "fine label"};
    std::vector<std::uint8_t> images;
    std::vector<std::int32_t> labels;
    detail::read_cifar_file(path, 2, fine ? 1 : 0, classes, names, images, labels);
    return dataset(std::move(images), std::move(labels), 3, 32, 32, fine ? 100 : 20,
                   std::string("cifar100/") + to_string(s) + (fine ? "" : "/coarse"));
}

}  // namespace sqakd::data

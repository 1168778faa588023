// sqakd/data/idx.hpp - IDX files (MNIST, Fashion-MNIST), gzip-compressed or plain.
//
//   auto train = sqakd::data::load_fashion_mnist();                    // Debian's copy
//   auto test  = sqakd::data::load_fashion_mnist(sqakd::data::split::test);
//   auto mine  = sqakd::data::load_idx("imgs-idx3-ubyte.gz", "labels-idx1-ubyte.gz");
//
// Format (all integers big-endian): images = magic 0x00000803 (unsigned byte, 3 dims), count,
// rows, cols, then count*rows*cols pixel bytes; labels = magic 0x00000801, count, then count
// label bytes. The payload must be exactly that long: a short file is reported as truncated,
// a long one as trailing garbage, each an error::corrupt_file naming the file, e.g.
//   ".../train-images-idx3-ubyte.gz: truncated: expected 47040000 bytes of pixels, got 1000"
// Missing or unreadable files are error::file_error.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "sqakd/core/error.hpp"
#include "sqakd/data/dataset.hpp"
#include "sqakd/data/gz_reader.hpp"

namespace sqakd::data {

/// Where Debian's dataset-fashion-mnist package installs the files.
inline constexpr const char* default_fashion_mnist_dir = "/usr/share/datasets/fashion-mnist";

inline constexpr std::uint32_t idx_images_magic = 0x00000803;
inline constexpr std::uint32_t idx_labels_magic = 0x00000801;

/// The content of an IDX image file: count images of rows x cols, row-major bytes.
struct idx_images {
    std::size_t count = 0, rows = 0, cols = 0;
    std::vector<std::uint8_t> pixels;
};

namespace detail {

inline std::uint32_t be32(const unsigned char* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
           std::uint32_t{p[3]};
}

inline std::string hex32(std::uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08X", static_cast<unsigned>(v));
    return buf;
}

inline void check_magic(const std::string& path, std::uint32_t got, std::uint32_t want, const char* what) {
    if (got == want) return;
    std::string msg = path + ": bad magic number " + hex32(got) + ", expected " + hex32(want) + " (" +
                      what + ")";
    if (got == idx_images_magic) msg += "; this is an IDX image file (images and labels swapped?)";
    if (got == idx_labels_magic) msg += "; this is an IDX label file (images and labels swapped?)";
    if ((got >> 16) == 0x1F8B) msg += "; it looks like a gzip file inside a gzip file";
    throw error::corrupt_file(msg);
}

// Reads exactly `expected` payload bytes after the header into `out`, then requires the end
// of the file; `what` names the payload ("pixels", "labels").
inline void read_payload(gz_reader& in, std::vector<std::uint8_t>& out, std::size_t expected,
                         const char* what) {
    out.clear();
    out.reserve(std::min<std::size_t>(expected, std::size_t{64} << 20));
    const std::size_t got = in.read_into(out, expected);
    if (got < expected)
        throw error::corrupt_file(in.path() + ": truncated: expected " + std::to_string(expected) +
                                  " bytes of " + what + ", got " + std::to_string(got));
    const std::size_t extra = in.skip_rest();
    if (extra)
        throw error::corrupt_file(in.path() + ": trailing garbage: " + std::to_string(extra) +
                                  (extra == 1 ? " byte" : " bytes") + " after the expected " +
                                  std::to_string(expected) + " bytes of " + what);
}

// Reads an n-byte header whose first 4 bytes are the magic number; checks the magic as soon
// as it is in (so a label file passed as images says "bad magic", not "truncated").
inline void read_header(gz_reader& in, unsigned char* h, std::size_t n, std::uint32_t magic,
                        const char* what) {
    std::size_t got = in.read(h, 4);
    if (got == 4) {
        check_magic(in.path(), be32(h), magic, what);
        got += in.read(h + 4, n - 4);
    }
    if (got < n)
        throw error::corrupt_file(in.path() + ": truncated header: expected " + std::to_string(n) +
                                  " bytes, got " + std::to_string(got));
}

}  // namespace detail

/// Reads an IDX3 unsigned-byte image file (gzip or plain).
inline idx_images read_idx_images(const std::string& path) {
    gz_reader in(path);
    unsigned char h[16];
    detail::read_header(in, h, sizeof h, idx_images_magic, "IDX images: unsigned bytes, 3 dimensions");
    idx_images r;
    r.count = detail::be32(h + 4);
    r.rows = detail::be32(h + 8);
    r.cols = detail::be32(h + 12);
    if (r.rows == 0 || r.cols == 0)
        throw error::corrupt_file(path + ": bad header: image size " + std::to_string(r.rows) + "x" +
                                  std::to_string(r.cols) + " has a zero dimension");
    // rows, cols < 2^32 each; guard the product against size_t overflow before multiplying.
    const std::size_t per = r.rows * r.cols;
    if (r.rows > SIZE_MAX / r.cols || (r.count && per > SIZE_MAX / r.count))
        throw error::corrupt_file(path + ": bad header: " + std::to_string(r.count) + " images of " +
                                  std::to_string(r.rows) + "x" + std::to_string(r.cols) +
                                  " is more bytes than can be addressed");
    detail::read_payload(in, r.pixels, r.count * per, "pixels");
    return r;
}

/// Reads an IDX1 unsigned-byte label file (gzip or plain); every label must be < num_classes.
inline std::vector<std::int32_t> read_idx_labels(const std::string& path, std::size_t num_classes = 10) {
    gz_reader in(path);
    unsigned char h[8];
    detail::read_header(in, h, sizeof h, idx_labels_magic, "IDX labels: unsigned bytes, 1 dimension");
    const std::size_t count = detail::be32(h + 4);
    std::vector<std::uint8_t> raw;
    detail::read_payload(in, raw, count, "labels");
    std::vector<std::int32_t> labels(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] >= num_classes)
            throw error::corrupt_file(path + ": label " + std::to_string(raw[i]) + " at index " +
                                      std::to_string(i) + " is out of range: expected < " +
                                      std::to_string(num_classes) + " classes");
        labels[i] = raw[i];
    }
    return labels;
}

/// Reads an image file and its label file into a dataset [N, 1, rows, cols]. Throws
/// error::corrupt_file naming both files when the counts differ.
inline dataset load_idx(const std::string& images_path, const std::string& labels_path,
                        std::size_t num_classes = 10, std::string name = "") {
    idx_images img = read_idx_images(images_path);
    std::vector<std::int32_t> lab = read_idx_labels(labels_path, num_classes);
    if (img.count != lab.size())
        throw error::corrupt_file(images_path + ": holds " + std::to_string(img.count) + " images but " +
                                  labels_path + " holds " + std::to_string(lab.size()) +
                                  " labels (count mismatch)");
    if (name.empty()) name = images_path;
    return dataset(std::move(img.pixels), std::move(lab), 1, img.rows, img.cols, num_classes,
                   std::move(name));
}

namespace detail {

// "<dir>/<stem>.gz" if it exists, else "<dir>/<stem>" if that exists, else the .gz name (so
// that the error names the file that is expected).
inline std::string find_idx_file(const std::string& dir, const std::string& stem) {
    const std::filesystem::path d(dir);
    std::error_code ec;
    const auto gz = d / (stem + ".gz");
    if (std::filesystem::exists(gz, ec)) return gz.string();
    const auto plain = d / stem;
    if (std::filesystem::exists(plain, ec)) return plain.string();
    return gz.string();
}

inline dataset load_idx_dir(const std::string& dir, split s, const char* dataset_name, const char* hint) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec))
        throw error::file_error(dir + ": " + dataset_name + " directory not found; " + hint);
    const std::string prefix = s == split::train ? "train" : "t10k";
    const std::string images = find_idx_file(dir, prefix + "-images-idx3-ubyte");
    const std::string labels = find_idx_file(dir, prefix + "-labels-idx1-ubyte");
    for (const auto& f : {images, labels})
        if (!std::filesystem::exists(f, ec))
            throw error::file_error(f + ": cannot open: no such file; " + hint);
    return load_idx(images, labels, 10, std::string(dataset_name) + "/" + to_string(s));
}

}  // namespace detail

/// Fashion-MNIST from `dir` (files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
/// t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz; uncompressed names also work):
/// 60000 (train) or 10000 (test) images [N, 1, 28, 28], 10 classes.
inline dataset load_fashion_mnist(const std::string& dir = default_fashion_mnist_dir,
                                  split s = split::train) {
    return detail::load_idx_dir(dir, s, "fashion-mnist",
                                "install the Debian package dataset-fashion-mnist (scripts/setup.sh "
                                "does), or pass the directory that holds the IDX files");
}

/// Fashion-MNIST from the default directory.
inline dataset load_fashion_mnist(split s) { return load_fashion_mnist(default_fashion_mnist_dir, s); }

/// MNIST from `dir` (same file names as Fashion-MNIST).
inline dataset load_mnist(const std::string& dir, split s = split::train) {
    return detail::load_idx_dir(dir, s, "mnist",
                                "pass the directory that holds train-images-idx3-ubyte.gz and the "
                                "other IDX files of MNIST");
}

}  // namespace sqakd::data

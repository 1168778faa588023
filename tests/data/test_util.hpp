// Helpers of the data tests: a temporary directory removed at the end of the test, and
// writers of small IDX / CIFAR files (plain or gzip through zlib).
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace sqakd_test {

namespace fs = std::filesystem;
using bytes = std::vector<std::uint8_t>;

/// A fresh directory under the system temp dir, removed with its content on destruction.
class temp_dir {
public:
    temp_dir() {
        static std::atomic<int> counter{0};
        m_path = fs::temp_directory_path() /
                 ("sqakd_test_data_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        fs::remove_all(m_path);
        fs::create_directories(m_path);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(m_path, ec);
    }
    const fs::path& path() const { return m_path; }
    std::string file(const std::string& name) const { return (m_path / name).string(); }

private:
    fs::path m_path;
};

inline void write_file(const std::string& path, const bytes& data, bool gz) {
    if (gz) {
        gzFile f = gzopen(path.c_str(), "wb");
        REQUIRE(f != nullptr);
        if (!data.empty())
            REQUIRE(gzwrite(f, data.data(), static_cast<unsigned>(data.size())) ==
                    static_cast<int>(data.size()));
        REQUIRE(gzclose(f) == Z_OK);
    } else {
        std::ofstream out(path, std::ios::binary);
        out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
        REQUIRE(out.good());
    }
}

inline bytes read_raw(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline void put_be32(bytes& b, std::uint32_t v) {
    b.push_back(static_cast<std::uint8_t>(v >> 24));
    b.push_back(static_cast<std::uint8_t>(v >> 16));
    b.push_back(static_cast<std::uint8_t>(v >> 8));
    b.push_back(static_cast<std::uint8_t>(v));
}

/// An IDX3 image file: header (magic, n, rows, cols) then the pixels.
inline bytes idx_images_file(std::uint32_t n, std::uint32_t rows, std::uint32_t cols, const bytes& pixels,
                             std::uint32_t magic = 0x00000803) {
    bytes b;
    put_be32(b, magic);
    put_be32(b, n);
    put_be32(b, rows);
    put_be32(b, cols);
    b.insert(b.end(), pixels.begin(), pixels.end());
    return b;
}

/// An IDX1 label file.
inline bytes idx_labels_file(const bytes& labels, std::uint32_t magic = 0x00000801) {
    bytes b;
    put_be32(b, magic);
    put_be32(b, static_cast<std::uint32_t>(labels.size()));
    b.insert(b.end(), labels.begin(), labels.end());
    return b;
}

/// Deterministic test pixels: value of byte k of image i.
inline std::uint8_t pixel(std::size_t i, std::size_t k) {
    return static_cast<std::uint8_t>((i * 37 + k * 11 + (k >> 3)) & 0xFF);
}

inline bytes pixels(std::size_t n, std::size_t per) {
    bytes p(n * per);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t k = 0; k < per; ++k) p[i * per + k] = pixel(i, k);
    return p;
}

/// Runs f, requires it to throw E, and returns the message.
template <class E, class F>
std::string message_of(F&& f) {
    try {
        f();
    } catch (const E& e) {
        return e.what();
    } catch (const std::exception& e) {
        FAIL_CHECK("threw the wrong exception type: " << e.what());
        return e.what();
    }
    FAIL_CHECK("expected an exception");
    return "";
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace sqakd_test

// sqakd/data/gz_reader.hpp - reads a file that may be gzip-compressed (zlib's gzread passes
// plain files through unchanged), with errors that name the file.
//
//   data::gz_reader in("t10k-labels-idx1-ubyte.gz");
//   std::uint8_t header[8];
//   std::size_t got = in.read(header, 8);        // < 8 only at end of file
//   std::vector<std::uint8_t> rest = in.read_all();
//
// Missing or unreadable files throw error::file_error; a damaged gzip stream (bad data, CRC,
// cut off in the middle) throws error::corrupt_file.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <zlib.h>

#include "sqakd/core/error.hpp"

namespace sqakd::data {

class gz_reader {
public:
    explicit gz_reader(std::string path) : m_path(std::move(path)) {
        std::error_code ec;
        const auto st = std::filesystem::status(m_path, ec);
        if (!std::filesystem::exists(st))
            throw error::file_error(m_path + ": cannot open: no such file");
        if (std::filesystem::is_directory(st))
            throw error::file_error(m_path + ": cannot open: is a directory");
        errno = 0;
        m_file = gzopen(m_path.c_str(), "rb");
        if (!m_file)
            throw error::file_error(m_path + ": cannot open: " +
                                    (errno ? std::strerror(errno) : "out of memory"));
        gzbuffer(m_file, 1u << 17);
    }
    gz_reader(const gz_reader&) = delete;
    gz_reader& operator=(const gz_reader&) = delete;
    ~gz_reader() {
        if (m_file) gzclose(m_file);
    }

    const std::string& path() const { return m_path; }

    /// Reads up to n bytes into dst; returns how many were read (fewer only at end of file).
    std::size_t read(void* dst, std::size_t n) {
        auto* out = static_cast<unsigned char*>(dst);
        std::size_t done = 0;
        while (done < n) {
            // gzread takes an unsigned length and returns an int: read in pieces below INT_MAX.
            const std::size_t want = std::min<std::size_t>(n - done, std::size_t{1} << 30);
            const int got = gzread(m_file, out + done, static_cast<unsigned>(want));
            if (got < 0) fail();
            done += static_cast<std::size_t>(got);
            if (static_cast<std::size_t>(got) < want) {
                check_end();
                break;
            }
        }
        return done;
    }

    /// Appends bytes until end of file, or until `limit` bytes were appended, to `out`;
    /// returns how many were appended. Grows `out` as data arrives, so a header that claims
    /// a huge size costs nothing when the file is small.
    std::size_t read_into(std::vector<std::uint8_t>& out, std::size_t limit = SIZE_MAX) {
        constexpr std::size_t chunk = std::size_t{1} << 20;
        std::size_t total = 0;
        while (total < limit) {
            const std::size_t want = std::min(chunk, limit - total);
            const std::size_t old = out.size();
            out.resize(old + want);
            const std::size_t got = read(out.data() + old, want);
            out.resize(old + got);
            total += got;
            if (got < want) break;
        }
        return total;
    }

    /// Reads everything that is left.
    std::vector<std::uint8_t> read_all() {
        std::vector<std::uint8_t> v;
        read_into(v);
        return v;
    }

    /// Counts (and discards) the bytes that are left.
    std::size_t skip_rest() {
        unsigned char buf[1 << 14];
        std::size_t n = 0;
        for (;;) {
            const std::size_t got = read(buf, sizeof buf);
            n += got;
            if (got < sizeof buf) return n;
        }
    }

private:
    [[noreturn]] void fail() {
        int err = Z_OK;
        const char* msg = gzerror(m_file, &err);
        if (err == Z_ERRNO)
            throw error::file_error(m_path + ": read error: " + std::strerror(errno));
        throw_stream_error(err, msg);
    }
    // A short read is either the end of the file or a gzip stream that stops early.
    void check_end() {
        int err = Z_OK;
        const char* msg = gzerror(m_file, &err);
        if (err == Z_OK || err == Z_STREAM_END) return;
        if (err == Z_ERRNO) throw error::file_error(m_path + ": read error: " + std::strerror(errno));
        throw_stream_error(err, msg);
    }
    [[noreturn]] void throw_stream_error(int err, const char* msg) {
        // gzerror's message starts with the path; keep only zlib's part.
        std::string m = msg ? msg : "";
        const std::string prefix = m_path + ": ";
        if (m.compare(0, prefix.size(), prefix) == 0) m.erase(0, prefix.size());
        if (err == Z_BUF_ERROR)
            throw error::corrupt_file(m_path + ": truncated gzip stream (" + m + ")");
        throw error::corrupt_file(m_path + ": damaged gzip stream (" + m + ")");
    }

    std::string m_path;
    gzFile m_file = nullptr;
};

}  // namespace sqakd::data

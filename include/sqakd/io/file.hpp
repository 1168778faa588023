// sqakd/io/file.hpp - whole-file reading and crash-safe (atomic) file writing.
//
//   std::string bytes = io::read_file("model.ckpt");          // error::file_error if missing
//   io::write_file_atomic("model.ckpt", bytes);               // all or nothing
//
// write_file_atomic writes to a temporary file in the target's directory
// ("<path>.tmp.<pid>.<n>", created with O_EXCL), fsyncs it, renames it over the target and
// fsyncs the directory. rename() within one file system is atomic, so a reader (or a run that
// crashed mid-write and restarts) sees either the old file or the complete new one, never a
// torn one. On any failure the temporary file is removed, the old target is left untouched,
// and error::file_error names the path and the system's reason.
//
// Also here: little-endian byte helpers shared by the checkpoint and safetensors code. They
// assemble values byte by byte, so the formats are the same on any host byte order.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "sqakd/core/error.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#define SQAKD_IO_POSIX 1
#else
#define SQAKD_IO_POSIX 0
#endif

namespace sqakd::io {

namespace detail {

inline std::string errno_text(int e) { return std::strerror(e); }

/// The directory part of `path` ("." when there is none), for fsync after rename.
inline std::string parent_dir(const std::string& path) {
    const auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

inline std::string temp_name(const std::string& path) {
    // pid separates processes, the counter separates threads and successive calls.
    static std::atomic<unsigned long> counter{0};
#if SQAKD_IO_POSIX
    const long pid = static_cast<long>(::getpid());
#else
    const long pid = 0;
#endif
    return path + ".tmp." + std::to_string(pid) + "." + std::to_string(counter.fetch_add(1));
}

}  // namespace detail

/// True when `path` names an existing file or directory.
inline bool file_exists(const std::string& path) {
    std::error_code ec;
    return std::filesystem::exists(path, ec);
}

/// Creates directory `dir` and its missing parents (like mkdir -p). Throws error::file_error
/// naming the directory and the reason when that fails.
inline void make_dirs(const std::string& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw error::file_error(dir + ": cannot create directory: " + ec.message());
}

/// Reads the whole file at `path`. Throws error::file_error naming the path (and the system's
/// reason, e.g. "No such file or directory") when it cannot be opened or read.
inline std::string read_file(const std::string& path) {
#if SQAKD_IO_POSIX
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        const int e = errno;
        throw error::file_error("cannot open '" + path + "' for reading: " + detail::errno_text(e));
    }
    struct ::stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw error::file_error("cannot read '" + path + "': not a regular file");
    }
    std::string bytes(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t got = 0;
    while (got < bytes.size()) {
        const ::ssize_t n = ::read(fd, &bytes[got], bytes.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const int e = n < 0 ? errno : 0;
            ::close(fd);
            throw error::file_error("cannot read '" + path + "': read " + std::to_string(got) + " of " +
                                    std::to_string(bytes.size()) + " bytes" +
                                    (e ? ": " + detail::errno_text(e) : std::string(" (file shrank?)")));
        }
        got += static_cast<std::size_t>(n);
    }
    ::close(fd);
    return bytes;
#else
    std::ifstream in(path, std::ios::binary);
    if (!in) throw error::file_error("cannot open '" + path + "' for reading");
    in.seekg(0, std::ios::end);
    const std::streamoff end = in.tellg();
    if (end < 0) throw error::file_error("cannot determine the size of '" + path + "'");
    in.seekg(0, std::ios::beg);
    std::string bytes(static_cast<std::size_t>(end), '\0');
    if (end > 0 && !in.read(&bytes[0], end))
        throw error::file_error("cannot read '" + path + "': read " + std::to_string(in.gcount()) + " of " +
                                std::to_string(end) + " bytes");
    return bytes;
#endif
}

/// Replaces the file at `path` by `size` bytes from `data`, atomically (see the file comment).
/// Throws error::file_error naming `path` on failure; the old file is then unchanged and no
/// temporary file is left behind.
inline void write_file_atomic(const std::string& path, const void* data, std::size_t size) {
    if (path.empty()) throw error::file_error("write_file_atomic: empty path");
    const std::string tmp = detail::temp_name(path);
#if SQAKD_IO_POSIX
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
        const int e = errno;
        throw error::file_error("cannot write '" + path + "': cannot create the temporary file '" + tmp +
                                "': " + detail::errno_text(e));
    }
    auto fail = [&](const char* what, int e, bool close_fd) {
        if (close_fd) ::close(fd);
        ::unlink(tmp.c_str());
        throw error::file_error("cannot write '" + path + "': " + what + " '" + tmp + "' failed: " +
                                detail::errno_text(e));
    };
    const char* p = static_cast<const char*>(data);
    std::size_t left = size;
    while (left > 0) {
        const ::ssize_t n = ::write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("writing the temporary file", errno, true);
        }
        if (n == 0) fail("writing the temporary file", EIO, true);
        p += n;
        left -= static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) fail("fsync of the temporary file", errno, true);
    if (::close(fd) != 0) fail("closing the temporary file", errno, false);
    if (::rename(tmp.c_str(), path.c_str()) != 0) fail("renaming the temporary file", errno, false);
    // Make the rename itself durable. Best effort: some file systems refuse fsync on a
    // directory, and the data is already in place.
    const int dfd = ::open(detail::parent_dir(path).c_str(), O_RDONLY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)::fsync(dfd);
        ::close(dfd);
    }
#else
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) throw error::file_error("cannot write '" + path + "': cannot create the temporary file '" + tmp + "'");
        out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
        out.flush();
        if (!out) {
            out.close();
            std::remove(tmp.c_str());
            throw error::file_error("cannot write '" + path + "': writing the temporary file '" + tmp + "' failed");
        }
    }
    std::remove(path.c_str());  // std::rename does not replace an existing file everywhere
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        throw error::file_error("cannot write '" + path + "': renaming the temporary file '" + tmp + "' failed");
    }
#endif
}

inline void write_file_atomic(const std::string& path, std::string_view bytes) {
    write_file_atomic(path, bytes.data(), bytes.size());
}

namespace detail {

// ---- little-endian encoding -------------------------------------------------------------

inline void put_u32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
}
inline void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
}
inline void put_f32(std::string& out, float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    put_u32(out, u);
}
inline std::uint32_t get_u32(const unsigned char* p) {
    return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
           static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}
inline std::uint64_t get_u64(const unsigned char* p) {
    return static_cast<std::uint64_t>(get_u32(p)) | static_cast<std::uint64_t>(get_u32(p + 4)) << 32;
}
inline float get_f32(const unsigned char* p) {
    const std::uint32_t u = get_u32(p);
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

}  // namespace detail

}  // namespace sqakd::io

// Atomic writes and whole-file reads: failures name the path, leave the old file alone and
// leave no temporary files behind.
#include <doctest/doctest.h>

#include <csignal>
#include <string>

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io_test_util.hpp"
#include "sqakd/io/file.hpp"

using namespace sqakd;
using io_test::contains;
using io_test::temp_dir;

TEST_CASE("write_file_atomic writes, replaces and leaves no temporary file") {
    temp_dir d("file");
    const std::string p = d / "a.bin";
    io::write_file_atomic(p, std::string("first"));
    CHECK(io::read_file(p) == "first");
    io::write_file_atomic(p, std::string("second, longer"));
    CHECK(io::read_file(p) == "second, longer");
    io::write_file_atomic(p, std::string());
    CHECK(io::read_file(p).empty());
    const std::string bin("\0\x01\xff\n\r\0", 6);
    io::write_file_atomic(p, bin);
    CHECK(io::read_file(p) == bin);
    CHECK(d.entries() == std::vector<std::string>{"a.bin"});
}

TEST_CASE("read_file on a missing file throws file_error naming the path") {
    temp_dir d("file");
    const std::string p = d / "missing.bin";
    try {
        io::read_file(p);
        FAIL("expected file_error");
    } catch (const error::corrupt_file&) {
        FAIL("a missing file is not a corrupt file");
    } catch (const error::file_error& e) {
        CHECK(contains(e.what(), p));
        CHECK(contains(e.what(), "No such file"));
    }
    CHECK_THROWS_AS(io::read_file(d.path.string()), error::file_error);  // a directory
}

TEST_CASE("write_file_atomic into a missing directory fails naming the path") {
    temp_dir d("file");
    const std::string p = d / "no/such/dir/x.bin";
    try {
        io::write_file_atomic(p, std::string("data"));
        FAIL("expected file_error");
    } catch (const error::file_error& e) {
        CHECK(contains(e.what(), p));
    }
    CHECK(d.entries().empty());
}

TEST_CASE("a failed rename removes the temporary file and keeps the target") {
    // The target is a non-empty directory: the temporary file is written, the rename fails.
    temp_dir d("file");
    const std::string p = d / "target";
    io_test::fs::create_directories(p);
    io::write_file_atomic(p + "/keep", std::string("old"));
    CHECK_THROWS_AS(io::write_file_atomic(p, std::string("new")), error::file_error);
    CHECK(d.entries() == std::vector<std::string>{"target"});
    CHECK(io::read_file(p + "/keep") == "old");
}

TEST_CASE("a write that fails half-way keeps the old file and removes the temporary file") {
    // RLIMIT_FSIZE makes write() fail with EFBIG part-way (SIGXFSZ ignored), even as root.
    temp_dir d("file");
    const std::string p = d / "ckpt.bin";
    const std::string old(100, 'o');
    io::write_file_atomic(p, old);
    rlimit saved{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
    auto prev = std::signal(SIGXFSZ, SIG_IGN);
    rlimit small = saved;
    small.rlim_cur = 4096;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    std::string what;
    try {
        io::write_file_atomic(p, std::string(100000, 'n'));
    } catch (const error::file_error& e) {
        what = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, prev);
    CHECK(contains(what, p));
    CHECK(contains(what, "File too large"));
    CHECK(io::read_file(p) == old);
    CHECK(d.entries() == std::vector<std::string>{"ckpt.bin"});
}

TEST_CASE("a directory that cannot be written fails naming the path") {
    if (::geteuid() == 0) {
        // root writes through permission bits; /proc refuses new files even to root.
        CHECK_THROWS_AS(io::write_file_atomic("/proc/sqakd_io_test.bin", std::string("x")), error::file_error);
        return;
    }
    temp_dir d("file");
    const std::string sub = d / "ro";
    io_test::fs::create_directories(sub);
    io::write_file_atomic(sub + "/x.bin", std::string("old"));
    ::chmod(sub.c_str(), 0555);
    try {
        io::write_file_atomic(sub + "/x.bin", std::string("new"));
        FAIL("expected file_error");
    } catch (const error::file_error& e) {
        CHECK(contains(e.what(), sub + "/x.bin"));
    }
    ::chmod(sub.c_str(), 0755);
    CHECK(io::read_file(sub + "/x.bin") == "old");
}

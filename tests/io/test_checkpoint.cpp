// sqakd's checkpoint format: exact round trips, and every kind of damage reported as
// error::corrupt_file naming the file (never a crash or a huge allocation).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include <zlib.h>

#include "io_test_util.hpp"
#include "sqakd/io/checkpoint.hpp"

using namespace sqakd;
using io_test::bit_equal;
using io_test::contains;
using io_test::temp_dir;
using io_test::tiny_net;

namespace {

io::checkpoint_extra sample_extra() {
    io::checkpoint_extra ex;
    ex.set("commit", "91826c3");
    ex.set("command", "sqakd-train --epochs 8 --seed 0 \"quoted\" \n newline");
    ex.set("epoch", "3");
    ex.set("seed", "0");
    ex.set("weights_checksum_epoch_2", "0123456789abcdef");
    ex.set("empty", "");
    ex.set("binary", std::string("\0\xff\x01", 3));
    ex.set("epoch", "4");  // replaces in place, keeps the order
    tensor<float> m(shape_t{2, 3});
    for (std::size_t i = 0; i < m.size(); ++i) m.data()[i] = 0.25f * static_cast<float>(i) - 1.0f;
    tensor<float> scalar = tensor<float>::from_shape({});
    scalar() = 42.5f;
    tensor<float> empty(shape_t{0, 4});
    tensor<float> special(shape_t{4});
    special(0) = std::numeric_limits<float>::infinity();
    special(1) = -0.0f;
    special(2) = std::numeric_limits<float>::denorm_min();
    special(3) = std::numeric_limits<float>::quiet_NaN();  // extras are stored as they are
    ex.tensors.emplace_back("adam.m.0.weight", m);
    ex.tensors.emplace_back("adam.step", scalar);
    ex.tensors.emplace_back("empty", empty);
    ex.tensors.emplace_back("special", special);
    return ex;
}

std::string small_checkpoint_bytes() {
    tiny_net<float, 2> net;
    io_test::randomize(net, 3);
    io::checkpoint_extra ex;
    ex.set("epoch", "1");
    tensor<float> t(shape_t{3});
    t.fill(0.5f);
    ex.tensors.emplace_back("opt.v", t);
    return io::serialize_checkpoint(io::make_checkpoint(net, ex));
}

void fix_crc(std::string& b) {
    const uLong c = ::crc32(0L, reinterpret_cast<const Bytef*>(b.data()), static_cast<uInt>(b.size() - 4));
    for (int i = 0; i < 4; ++i) b[b.size() - 4 + static_cast<std::size_t>(i)] = static_cast<char>((c >> (8 * i)) & 0xFF);
}

std::string corrupt_message(const std::string& bytes, const std::string& source = "x.ckpt") {
    try {
        io::parse_checkpoint(bytes, source);
    } catch (const error::corrupt_file& e) {
        return e.what();
    }
    return "(no exception)";
}

}  // namespace

TEST_CASE("checkpoint round trip is exact: params, buffers, meta (in order), extra tensors") {
    temp_dir d("ckpt");
    tiny_net<> a;
    io_test::randomize(a, 1);
    const io::checkpoint_extra ex = sample_extra();
    const std::string path = d / "a.ckpt";
    io::save_checkpoint(path, a, ex);
    CHECK(d.entries() == std::vector<std::string>{"a.ckpt"});

    const io::checkpoint ck = io::read_checkpoint(path);
    CHECK(ck.source == path);
    CHECK(ck.meta == ex.meta);
    CHECK(ck.get("epoch") == "4");
    CHECK(ck.meta[2].first == "epoch");
    CHECK(ck.get("binary") == std::string("\0\xff\x01", 3));
    CHECK(ck.get("missing", "fallback") == "fallback");
    CHECK_FALSE(ck.has("missing"));
    try {
        (void)ck.get("missing");
        FAIL("expected out_of_range");
    } catch (const std::out_of_range& e) {
        CHECK(contains(e.what(), "missing"));
        CHECK(contains(e.what(), path));
    }

    const io::named_tensors state = io::state_tensors(a);
    REQUIRE(ck.tensors.size() == state.size());
    for (std::size_t i = 0; i < state.size(); ++i) {
        CHECK(ck.tensors[i].first == state[i].first);
        CHECK(bit_equal(ck.tensors[i].second, state[i].second));
    }
    CHECK(ck.tensors.front().first == "0.weight");
    CHECK(ck.tensors.back().first == "4.running_var");  // params first, then buffers
    REQUIRE(ck.extra.size() == ex.tensors.size());
    for (std::size_t i = 0; i < ex.tensors.size(); ++i) {
        CHECK(ck.extra[i].first == ex.tensors[i].first);
        CHECK(bit_equal(ck.extra[i].second, ex.tensors[i].second));
    }
    REQUIRE(ck.find_extra("adam.step") != nullptr);
    CHECK(ck.find_extra("adam.step")->dimension() == 0);
    CHECK((*ck.find_extra("adam.step"))() == 42.5f);

    tiny_net<> b;
    io_test::randomize(b, 2);
    CHECK(io::weights_checksum(a) != io::weights_checksum(b));
    const io::load_report rep = io::load_into(b, ck);
    CHECK(rep.loaded.size() == state.size());
    CHECK(rep.missing.empty());
    CHECK(io::weights_checksum(a) == io::weights_checksum(b));
    const io::named_tensors state_b = io::state_tensors(b);
    for (std::size_t i = 0; i < state.size(); ++i) CHECK(bit_equal(state[i].second, state_b[i].second));

    // Same weights, same outputs.
    tensor<float> x(shape_t{2, 1, 5, 5});
    rng g(9);
    for (auto& v : x) v = static_cast<float>(g.uniform(-1, 1));
    const tensor<float> ya = a.forward(x, nn::mode::eval);
    const tensor<float> yb = b.forward(x, nn::mode::eval);
    CHECK(bit_equal(ya, yb));

    // Serialising is deterministic, and writing over a checkpoint replaces it.
    CHECK(io::serialize_checkpoint(ck) == io::read_file(path));
    io::save_checkpoint(path, b);
    CHECK(io::read_checkpoint(path).meta.empty());
    CHECK(d.entries() == std::vector<std::string>{"a.ckpt"});
}

TEST_CASE("load_checkpoint and double-precision models (stored as float32)") {
    temp_dir d("ckpt");
    tiny_net<double> a;
    io_test::randomize(a, 4);
    io::save_checkpoint(d / "d.ckpt", a);
    tiny_net<float> f;
    const io::checkpoint ck = io::load_checkpoint(d / "d.ckpt", f);
    CHECK(ck.meta.empty());
    CHECK(io::weights_checksum(f) == io::weights_checksum(a));  // the checksum hashes float32
    f.for_each_param([&](const std::string& name, tensor<float>& v, tensor<float>&, nn::param_kind) {
        const tensor<float>* s = ck.find(name);
        REQUIRE(s != nullptr);
        CHECK(bit_equal(*s, v));
    });
}

TEST_CASE("weights_checksum: 16 hex digits, changes with any weight bit, equal for equal weights") {
    tiny_net<> a, b;
    io_test::randomize(a, 5);
    io_test::randomize(b, 5);
    const std::string h = io::weights_checksum(a);
    CHECK(h.size() == 16);
    CHECK(h.find_first_not_of("0123456789abcdef") == std::string::npos);
    CHECK(h == io::weights_checksum(b));
    // One ulp in one weight changes it.
    float& w = a.layer<5>().weight()(1, 1);
    w = std::nextafter(w, 2.0f);
    CHECK(io::weights_checksum(a) != h);
    // Buffers count too.
    io_test::randomize(a, 5);
    CHECK(io::weights_checksum(a) == h);
    b.layer<4>().running_mean()(0) += 1.0f;
    CHECK(io::weights_checksum(b) != h);
}

TEST_CASE("every truncation of a checkpoint is corrupt_file naming the file") {
    const std::string bytes = small_checkpoint_bytes();
    REQUIRE(bytes.size() > 100);
    for (std::size_t len = 0; len < bytes.size(); ++len) {
        const std::string msg = corrupt_message(bytes.substr(0, len), "trunc.ckpt");
        INFO("length " << len << ": " << msg);
        CHECK(contains(msg, "trunc.ckpt"));
        if (len >= 20) CHECK(contains(msg, "truncated"));
    }
    CHECK(corrupt_message(bytes + "x").find("size mismatch") != std::string::npos);

    // Through real files as well.
    temp_dir d("ckpt");
    for (std::size_t len : {std::size_t{0}, std::size_t{7}, std::size_t{19}, bytes.size() / 2, bytes.size() - 1}) {
        const std::string p = d / ("t" + std::to_string(len) + ".ckpt");
        io::write_file_atomic(p, bytes.substr(0, len));
        try {
            io::read_checkpoint(p);
            FAIL("expected corrupt_file");
        } catch (const error::corrupt_file& e) {
            CHECK(contains(e.what(), p));
        }
    }
}

TEST_CASE("every single-bit flip of a checkpoint is corrupt_file") {
    const std::string bytes = small_checkpoint_bytes();
    std::size_t checksum = 0, version = 0, magic = 0, size = 0;
    for (std::size_t bit = 0; bit < bytes.size() * 8; ++bit) {
        std::string b = bytes;
        b[bit / 8] = static_cast<char>(b[bit / 8] ^ (1 << (bit % 8)));
        const std::string msg = corrupt_message(b, "flip.ckpt");
        INFO("bit " << bit << ": " << msg);
        REQUIRE(contains(msg, "flip.ckpt"));
        checksum += contains(msg, "checksum mismatch");
        version += contains(msg, "version");
        magic += contains(msg, "SQAKDCKP");
        size += contains(msg, "the file has");
    }
    CHECK(magic == 64);
    CHECK(version == 32);
    CHECK(size == 64);
    CHECK(checksum == bytes.size() * 8 - 160);
}

TEST_CASE("another format version is rejected naming the file, the found and the supported version") {
    std::string b = small_checkpoint_bytes();
    b[8] = 7;
    fix_crc(b);  // a well-formed file of (hypothetical) version 7
    std::string msg = corrupt_message(b, "v7.ckpt");
    CHECK(contains(msg, "v7.ckpt"));
    CHECK(contains(msg, "version 7"));
    CHECK(contains(msg, "reads version 1"));
    CHECK_FALSE(contains(msg, "damaged"));
    b[8] = 2;  // not re-checksummed: damaged
    msg = corrupt_message(b, "v2.ckpt");
    CHECK(contains(msg, "version 2"));
    CHECK(contains(msg, "damaged"));
}

TEST_CASE("a missing checkpoint is file_error naming the path") {
    temp_dir d("ckpt");
    const std::string p = d / "nope.ckpt";
    try {
        io::read_checkpoint(p);
        FAIL("expected file_error");
    } catch (const error::corrupt_file&) {
        FAIL("missing is not corrupt");
    } catch (const error::file_error& e) {
        CHECK(contains(e.what(), p));
    }
    tiny_net<> net;
    CHECK_THROWS_AS(io::load_checkpoint(p, net), error::file_error);
}

TEST_CASE("hostile but well-checksummed content is corrupt_file, without huge allocations") {
    // Builds files by hand: header, then `body`, then size and CRC patched in.
    auto make = [](const std::string& body) {
        std::string b("SQAKDCKP", 8);
        io::detail::put_u32(b, 1);
        io::detail::put_u64(b, 0);
        b += body;
        const std::uint64_t total = b.size() + 4;
        for (int i = 0; i < 8; ++i) b[12 + static_cast<std::size_t>(i)] = static_cast<char>((total >> (8 * i)) & 0xFF);
        b += "CRC!";
        fix_crc(b);
        return b;
    };
    auto u32 = [](std::uint32_t v) {
        std::string s;
        io::detail::put_u32(s, v);
        return s;
    };
    auto u64 = [](std::uint64_t v) {
        std::string s;
        io::detail::put_u64(s, v);
        return s;
    };
    auto name = [&](const std::string& s) { return u32(static_cast<std::uint32_t>(s.size())) + s; };
    const std::string empty_lists = u32(0) + u32(0);

    CHECK(contains(corrupt_message(make(u32(0) + empty_lists)), "(no exception)"));  // valid, empty
    CHECK(contains(corrupt_message(make(u32(0xFFFFFFFF) + empty_lists)), "metadata count 4294967295"));
    CHECK(contains(corrupt_message(make(u32(1) + u32(0xFFFFFFF0) + empty_lists)), "truncated metadata key"));
    CHECK(contains(corrupt_message(make(u32(0) + u32(0xFFFFFFFF) + u32(0))), "tensor count"));
    const std::string meta0 = u32(0);
    CHECK(contains(corrupt_message(make(meta0 + u32(1) + name("w") + u32(100) + u32(0))), "rank 100"));
    CHECK(contains(corrupt_message(make(meta0 + u32(1) + name("w") + u32(2) + u64(1ull << 40) + u64(1ull << 40) + u32(0))),
                   "more elements than the file holds"));
    CHECK(contains(corrupt_message(make(meta0 + u32(1) + name("w") + u32(1) + u64(~0ull) + u32(0))), "absurd"));
    CHECK(contains(corrupt_message(make(meta0 + u32(1) + name("w") + u32(1) + u64(2) + u32(0))),
                   "truncated data of tensor 'w'"));
    CHECK(contains(corrupt_message(make(meta0 + u32(1) + name("") + u32(0) + u32(0))), "empty name"));
    const std::string scalar = u32(0) + std::string(4, '\0');
    CHECK(contains(corrupt_message(make(meta0 + u32(2) + name("w") + scalar + name("w") + scalar + u32(0))),
                   "two model tensors are called 'w'"));
    CHECK(contains(corrupt_message(make(u32(2) + name("k") + name("a") + name("k") + name("b") + empty_lists)),
                   "metadata key 'k' appears twice"));
    CHECK(contains(corrupt_message(make(u32(0) + empty_lists + "xx")), "unexplained bytes"));
    CHECK(contains(corrupt_message(std::string("GARBAGE!and more")), "not a sqakd checkpoint"));
    CHECK(contains(corrupt_message(std::string()), "empty"));
}

TEST_CASE("loading into the wrong model names the tensor, the expected and the actual shape") {
    tiny_net<float, 3> three;
    io_test::randomize(three, 6);
    const io::checkpoint ck = io::make_checkpoint(three);
    tiny_net<float, 2> two;
    io_test::randomize(two, 7);
    const std::string before = io::weights_checksum(two);
    try {
        io::load_into(two, ck);
        FAIL("expected shape_mismatch");
    } catch (const error::shape_mismatch& e) {
        const std::string msg = e.what();
        CHECK(contains(msg, "load_into"));
        CHECK(contains(msg, "tensor '0.weight': expected shape [2, 1, 3, 3], got [3, 1, 3, 3]"));
        CHECK(contains(msg, "tensor '5.weight': expected shape [4, 2], got [4, 3]"));
        CHECK(contains(msg, "'4.running_var'"));
    }
    CHECK(io::weights_checksum(two) == before);  // all or nothing

    // A model with more layers: the missing tensors are listed with their shapes.
    using bigger = nn::sequential<nn::conv2d<1, 3, 3, 1, 1, 1, true>, nn::batch_norm<3>, nn::relu<>,
                                  nn::global_avg_pool<>, nn::batch_norm<3>, nn::linear<3, 4>, nn::linear<4, 2>>;
    bigger big;
    try {
        io::load_into(big, ck);
        FAIL("expected shape_mismatch");
    } catch (const error::shape_mismatch& e) {
        CHECK(contains(e.what(), "missing tensor '6.weight' (the model expects shape [2, 4])"));
        CHECK(contains(e.what(), "missing tensor '6.bias'"));
    }
    // A checkpoint with a tensor the model lacks.
    io::checkpoint extra_ck = ck;
    extra_ck.tensors.emplace_back("9.weight", tensor<float>(shape_t{1}));
    tiny_net<float, 3> same;
    try {
        io::load_into(same, extra_ck);
        FAIL("expected shape_mismatch");
    } catch (const error::shape_mismatch& e) {
        CHECK(contains(e.what(), "unexpected tensor '9.weight'"));
    }
}

TEST_CASE("a NaN or Inf weight is invalid_value naming the tensor; the model is unchanged") {
    temp_dir d("ckpt");
    tiny_net<> a;
    io_test::randomize(a, 8);
    a.layer<1>().running_var()(1) = std::numeric_limits<float>::infinity();
    io::save_checkpoint(d / "inf.ckpt", a);  // saving a diverged model is allowed (for post-mortems)
    a.layer<1>().running_var()(1) = 1.0f;
    a.layer<5>().weight()(2, 1) = std::numeric_limits<float>::quiet_NaN();
    io::save_checkpoint(d / "nan.ckpt", a);
    tiny_net<> b;
    io_test::randomize(b, 9);
    const std::string before = io::weights_checksum(b);
    try {
        io::load_checkpoint(d / "nan.ckpt", b);
        FAIL("expected invalid_value");
    } catch (const error::invalid_value& e) {
        CHECK(contains(e.what(), "'5.weight'"));
        CHECK(contains(e.what(), "nan"));
        CHECK(contains(e.what(), d / "nan.ckpt"));
    }
    try {
        io::load_checkpoint(d / "inf.ckpt", b);
        FAIL("expected invalid_value");
    } catch (const error::invalid_value& e) {
        CHECK(contains(e.what(), "'1.running_var'"));
        CHECK(contains(e.what(), "inf"));
    }
    CHECK(io::weights_checksum(b) == before);
}

TEST_CASE("saving rejects empty and duplicate names and keys") {
    tiny_net<> a;
    io::checkpoint_extra ex;
    ex.meta.emplace_back("k", "1");
    ex.meta.emplace_back("k", "2");
    CHECK_THROWS_AS(io::serialize_checkpoint(io::make_checkpoint(a, ex)), error::invalid_value);
    io::checkpoint_extra ex2;
    ex2.tensors.emplace_back("t", tensor<float>(shape_t{1}));
    ex2.tensors.emplace_back("t", tensor<float>(shape_t{1}));
    CHECK_THROWS_AS(io::serialize_checkpoint(io::make_checkpoint(a, ex2)), error::invalid_value);
    io::checkpoint_extra ex3;
    ex3.meta.emplace_back("", "x");
    CHECK_THROWS_AS(io::serialize_checkpoint(io::make_checkpoint(a, ex3)), error::invalid_value);
}

TEST_CASE("atomic checkpoint write: a failing save leaves the old checkpoint intact") {
    temp_dir d("ckpt");
    tiny_net<> a;
    io_test::randomize(a, 10);
    const std::string p = d / "run.ckpt";
    io::save_checkpoint(p, a);
    const std::string old = io::read_file(p);
    CHECK_THROWS_AS(io::save_checkpoint(d / "missing_dir/run.ckpt", a), error::file_error);
    io_test::fs::create_directories(d / "dir.ckpt/x");  // target is a non-empty directory
    CHECK_THROWS_AS(io::save_checkpoint(d / "dir.ckpt", a), error::file_error);
    CHECK(io::read_file(p) == old);
    CHECK(d.entries() == std::vector<std::string>{"dir.ckpt", "run.ckpt"});
}

TEST_CASE("random damage with a recomputed checksum is parsed or rejected as corrupt_file, never a crash") {
    // Exercises the parser behind the CRC: a file whose checksum was recomputed after damage
    // (or a hostile file) must still be handled by bounds checks alone.
    const std::string bytes = small_checkpoint_bytes();
    rng g(2024);
    std::size_t rejected = 0;
    for (int trial = 0; trial < 3000; ++trial) {
        std::string b = bytes;
        const int edits = 1 + static_cast<int>(g.next() % 4);
        for (int e = 0; e < edits; ++e) {
            const std::size_t at = 20 + static_cast<std::size_t>(g.next() % (b.size() - 24));
            b[at] = static_cast<char>(g.next() & 0xFF);
        }
        fix_crc(b);
        try {
            io::parse_checkpoint(b, "fuzz.ckpt");
        } catch (const error::corrupt_file& e) {
            ++rejected;
            REQUIRE(contains(e.what(), "fuzz.ckpt"));
        }
    }
    CHECK(rejected > 0);
}

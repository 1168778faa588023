// The integer model file: an exact round trip, and every way a file can be wrong - each
// truncation length, random bit flips, a wrong version, a wrong magic, trailing bytes - gives
// the status that says so, never a crash (the test also runs under AddressSanitizer and UBSan:
// the test_model_file_sanitized target). The network is a real compiled student (random
// teacher weights, quantizers initialised by one forward) of a small ResNet (8 and 16 channels,
// an identity and an option-A block), so that every truncation length is cheap to try. The
// same fixture checks int_network::run_parallel against run().
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>
#include <random>
#include <string>
#include <vector>

#include "sqakd/deploy/compile.hpp"
#include "sqakd/deploy/model_file.hpp"
#include "sqakd/io/int_model.hpp"
#include "sqakd/nn/models/resnet.hpp"
#include "sqakd/nn/pool.hpp"
#include "sqakd/nn/quantize.hpp"

using namespace sqakd;

namespace {
using teacher_t = nn::sequential<nn::conv2d<1, 8, 3, 1, 1, 1, false>, nn::batch_norm<8>, nn::relu<>,
                                 nn::basic_block<8, 8, 1>, nn::basic_block<8, 16, 2>, nn::global_avg_pool<>,
                                 nn::batch_norm<16>, nn::linear<16, 10, true>>;
using student_t = nn::quantize_t<teacher_t, quant::interval_weight<2>, quant::interval_act<2>>;

struct fixture {
    std::unique_ptr<student_t> student = std::make_unique<student_t>();
    tensor<float> x{shape_t{4, 1, 12, 12}};
    deploy::int_network net;
    fixture() {
        rng g(1);
        teacher_t teacher;
        teacher.init(g);
        nn::copy_from_teacher(*student, teacher);
        std::mt19937 r(2);
        std::normal_distribution<float> n(0, 1);
        for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = n(r);
        nn::request_quant_init(*student);
        (void)student->forward(x, nn::mode::train);  // initialises the quantizers
        net = deploy::compile(*student, {1, 12, 12});
    }
    std::vector<float> logits(const deploy::int_network& n) {
        deploy::int_network::workspace ws;
        std::vector<float> out(4 * 10);
        REQUIRE(n.run(x.data(), 4, out.data(), ws) == deploy::status::ok);
        return out;
    }
};
}  // namespace

TEST_CASE("model file: the round trip is exact (same logits, same bytes again)") {
    fixture f;
    std::vector<std::uint8_t> bytes, again;
    REQUIRE(deploy::serialize(f.net, bytes) == deploy::status::ok);
    deploy::int_network back;
    REQUIRE(deploy::deserialize(bytes.data(), bytes.size(), back) == deploy::status::ok);
    CHECK(f.logits(back) == f.logits(f.net));
    REQUIRE(deploy::serialize(back, again) == deploy::status::ok);
    CHECK(again == bytes);
    CHECK(back.model_bytes() == f.net.model_bytes());
    // the file holds the formula's bytes plus per-step metadata (shapes, counts, header)
    CHECK(bytes.size() > f.net.model_bytes());
    CHECK(bytes.size() < f.net.model_bytes() + 4096);
    MESSAGE("model_bytes " << f.net.model_bytes() << ", file " << bytes.size() << " bytes");
}

TEST_CASE("model file: every truncation, bit flips, wrong version and magic are refused with their status") {
    fixture f;
    std::vector<std::uint8_t> bytes;
    REQUIRE(deploy::serialize(f.net, bytes) == deploy::status::ok);
    deploy::int_network out;
    std::size_t truncated = 0;
    for (std::size_t len = 0; len < bytes.size(); ++len) {
        const auto st = deploy::deserialize(bytes.data(), len, out);
        truncated += st == deploy::status::truncated;
        if (st != deploy::status::truncated) {
            INFO("length " << len << ": " << deploy::describe(st));
            CHECK(st == deploy::status::truncated);
        }
    }
    CHECK(truncated == bytes.size());
    std::mt19937 r(9);
    std::size_t flips = 0;
    for (int t = 0; t < 2000; ++t) {
        std::vector<std::uint8_t> b = bytes;
        const std::size_t at = r() % b.size();
        b[at] ^= static_cast<std::uint8_t>(1u << (r() % 8));
        const auto st = deploy::deserialize(b.data(), b.size(), out);
        // a flip in the payload breaks the CRC; in the header, the magic, version, size or CRC
        const bool ok = st == deploy::status::bad_checksum || st == deploy::status::bad_magic ||
                        st == deploy::status::bad_version || st == deploy::status::truncated ||
                        st == deploy::status::bad_shape ||
                        (at >= 12 && at < 16) || (at >= 28);  // reserved header fields are not read
        if (!ok) {
            INFO("flip at byte " << at << ": " << deploy::describe(st));
            CHECK(ok);
        }
        if (at >= 32) CHECK(st == deploy::status::bad_checksum);
        ++flips;
    }
    CHECK(flips == 2000);
    std::vector<std::uint8_t> v = bytes;
    v[8] = 2;  // version 2
    CHECK(deploy::deserialize(v.data(), v.size(), out) == deploy::status::bad_version);
    v = bytes;
    v[0] = 'X';
    CHECK(deploy::deserialize(v.data(), v.size(), out) == deploy::status::bad_magic);
    v = bytes;
    v.push_back(0);
    CHECK(deploy::deserialize(v.data(), v.size(), out) == deploy::status::bad_shape);
}

TEST_CASE("model file: a payload with a valid CRC but inconsistent content is refused by validation") {
    fixture f;
    std::vector<std::uint8_t> bytes;
    REQUIRE(deploy::serialize(f.net, bytes) == deploy::status::ok);
    std::mt19937 r(4);
    deploy::int_network out;
    std::size_t refused = 0, accepted = 0;
    for (int t = 0; t < 1500; ++t) {
        std::vector<std::uint8_t> b = bytes;
        const std::size_t at = deploy::model_header_bytes + r() % (b.size() - deploy::model_header_bytes);
        b[at] = static_cast<std::uint8_t>(r());
        // re-seal the CRC so that the parser and validate() see the damage
        const std::uint32_t crc = deploy::crc32(b.data() + 32, b.size() - 32);
        std::memcpy(b.data() + 24, &crc, 4);
        const auto st = deploy::deserialize(b.data(), b.size(), out);
        if (st == deploy::status::ok) {
            ++accepted;  // a changed weight, threshold or scale: a different but consistent model
            deploy::int_network::workspace ws;
            std::vector<float> lo(4 * out.classes());
            CHECK(out.run(f.x.data(), 4, lo.data(), ws) == deploy::status::ok);
        } else {
            ++refused;
        }
    }
    MESSAGE(refused << " refused, " << accepted << " consistent after a re-sealed byte change");
    CHECK(refused > 0);
}

TEST_CASE("io: int model files are written atomically and errors name the file") {
    fixture f;
    const std::string dir = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
    const std::string path = dir + "/sqakd_test_model_" + std::to_string(::getpid()) + ".sqint";
    io::save_int_network(path, f.net);
    const auto back = io::load_int_network(path);
    CHECK(f.logits(back) == f.logits(f.net));
    std::string bytes = io::read_file(path);
    io::write_file_atomic(path, bytes.substr(0, bytes.size() / 2));
    CHECK_THROWS_WITH_AS(io::load_int_network(path), doctest::Contains("truncated"), error::corrupt_file);
    CHECK_THROWS_WITH_AS(io::load_int_network(path), doctest::Contains(path.c_str()), error::corrupt_file);
    std::remove(path.c_str());
    CHECK_THROWS_AS(io::load_int_network(path), error::file_error);
}

TEST_CASE("int_network::run_parallel gives run()'s logits, bit for bit, on 1 to 3 threads") {
    fixture f;
    deploy::int_network::workspace w1;
    std::vector<float> ref(4 * 10), got(4 * 10);
    REQUIRE(f.net.run(f.x.data(), 4, ref.data(), w1) == deploy::status::ok);
    for (unsigned t : {1u, 2u, 3u, 8u}) {
        std::vector<deploy::int_network::workspace> ws;
        std::fill(got.begin(), got.end(), -1.0f);
        REQUIRE(f.net.run_parallel(f.x.data(), 4, got.data(), ws, t) == deploy::status::ok);
        CHECK_MESSAGE(got == ref, t << " threads");
    }
}

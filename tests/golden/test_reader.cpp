// The golden reader and the comparison must be able to fail: malformed data is rejected with
// the file and line, missing tensors are reported, and a perturbed value exceeds the tolerance.
#include <doctest/doctest.h>

#include <sstream>
#include <string>

#include "golden_check.hpp"

using namespace sqakd;
using golden::golden_file;

namespace {
golden_file parse(const std::string& text) {
    std::istringstream in(text);
    return golden_file::parse(in, "<test>");
}
}  // namespace

TEST_SUITE("golden") {

TEST_CASE("golden reader: well-formed data round-trips float32 exactly") {
    auto g = parse("# comment\n\nx 2 2 3 : 1 -2.5 3e-3 0.100000001 16777217 -0\ns 0 : 4.25\n");
    REQUIRE(g.size() == 2);
    const auto& x = g.take("x");
    REQUIRE(x.dimension() == 2);
    CHECK(x.shape()[0] == 2);
    CHECK(x.shape()[1] == 3);
    CHECK(x(0, 1) == -2.5f);
    CHECK(x(1, 0) == 0.1f);       // 9 significant digits give back the float32
    CHECK(x(1, 1) == 16777216.f);  // rounded to float32 once
    CHECK(g.take("s").size() == 1);
    CHECK(g.unused().empty());
}

TEST_CASE("golden reader: malformed data is rejected with the line") {
    CHECK_THROWS_AS(parse("x 1 3 : 1 2\n"), error::corrupt_file);          // too few values
    CHECK_THROWS_AS(parse("x 1 3 : 1 2 3 4\n"), error::corrupt_file);      // too many values
    CHECK_THROWS_AS(parse("x 2 3 : 1 2 3\n"), error::corrupt_file);        // fewer sizes than ndim
    CHECK_THROWS_AS(parse("x 1 3 4 : 1 2 3\n"), error::corrupt_file);      // more sizes than ndim
    CHECK_THROWS_AS(parse("x 1 2 1 2\n"), error::corrupt_file);            // no ':'
    CHECK_THROWS_AS(parse("x 1 2 : 1 abc\n"), error::corrupt_file);        // not a number
    CHECK_THROWS_AS(parse("x 1 2 : 1 2.0x\n"), error::corrupt_file);       // trailing junk
    CHECK_THROWS_AS(parse("x 1 1 : 1e60\n"), error::corrupt_file);         // float32 overflow
    CHECK_THROWS_AS(parse("x 1 1 : 1\nx 1 1 : 2\n"), error::corrupt_file); // duplicate
    try {
        parse("a 1 1 : 1\nb 1 2 : 1\n");
        FAIL("expected corrupt_file");
    } catch (const error::corrupt_file& e) {
        CHECK(std::string(e.what()).find("<test>:2") != std::string::npos);
    }
    CHECK_THROWS_AS(golden_file::load(golden::data_path("no_such_case")), error::file_error);
}

TEST_CASE("golden reader: missing and unused tensors are reported") {
    auto g = parse("x 1 1 : 1\ny 1 1 : 2\n");
    CHECK_THROWS_AS(g.take("dx"), error::corrupt_file);
    g.take("x");
    REQUIRE(g.unused().size() == 1);
    CHECK(g.unused()[0] == "y");
}

TEST_CASE("golden comparison: the measure is max|a-b|/max|b| and fails when it should") {
    tensor<float> b(shape_t{4});
    b(0) = 2.0f;
    b(1) = -4.0f;
    b(2) = 1e-6f;
    b(3) = 0.0f;
    tensor<float> a = b;
    CHECK(golden::compare(a, b).err == 0.0);
    a(2) = 1e-6f + 2e-5f;  // huge element-wise, 5e-6 of the tensor's scale: passes 1e-5
    CHECK(golden::compare(a, b).err == doctest::Approx(5e-6).epsilon(1e-3));
    a = b;
    a(0) = 2.0f + 1e-4f;  // 2.5e-5 of the scale: fails 1e-5
    auto r = golden::compare(a, b);
    CHECK(r.err > golden::rtol_layer);
    CHECK(r.worst == 0);
    a = b;
    a(3) = std::numeric_limits<float>::quiet_NaN();
    CHECK(golden::compare(a, b).err > 1e300);
    tensor<float> z(shape_t{3}), z2(shape_t{3});
    z.fill(0);
    z2.fill(0);
    CHECK(golden::compare(z2, z).err == 0.0);
    z2(1) = 1e-30f;
    CHECK(golden::compare(z2, z).err > 1e300);  // all-zero golden: exact match required
    tensor<float> other(shape_t{2, 2});
    other.fill(0);
    CHECK_FALSE(golden::compare(other, b).shape_ok);
}

}  // TEST_SUITE

// The safetensors reader/writer, its JSON parser, name maps and load_state_dict.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "io_test_util.hpp"
#include "sqakd/io/safetensors.hpp"
#include "sqakd/io/state_dict.hpp"

using namespace sqakd;
using io_test::bit_equal;
using io_test::contains;
using io_test::temp_dir;
using io_test::tiny_net;

namespace {

/// A safetensors file from a header and a data buffer.
std::string st_file(const std::string& header, const std::string& data = std::string()) {
    std::string b;
    io::detail::put_u64(b, header.size());
    return b + header + data;
}

std::string floats(std::initializer_list<float> v) {
    std::string s;
    for (float f : v) io::detail::put_f32(s, f);
    return s;
}

std::string st_error(const std::string& bytes, const std::string& source = "w.safetensors") {
    try {
        io::parse_safetensors(bytes, source);
    } catch (const error::corrupt_file& e) {
        return e.what();
    }
    return "(no corrupt_file)";
}

tensor<float> iota(shape_t shape, float start = 0.f) {
    tensor<float> t(shape);
    for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = start + 0.5f * static_cast<float>(i);
    return t;
}

}  // namespace

TEST_CASE("json: valid documents") {
    using io::json::parse;
    auto v = parse(" {\"a\" : [1, 2, 30], \"b\": {\"c\": \"x\\\"y\\\\z\\/\\n\\u00e9\\ud83d\\ude00\"}, "
                   "\"t\": true, \"f\": false, \"n\": null, \"num\": -1.5e3} \n");
    REQUIRE(v.is_object());
    CHECK(v.keys == std::vector<std::string>{"a", "b", "t", "f", "n", "num"});
    CHECK(v.find("a")->items.size() == 3);
    CHECK(v.find("a")->items[2].as_u64() == 30);
    CHECK(v.find("b")->find("c")->text == "x\"y\\z/\n\xc3\xa9\xf0\x9f\x98\x80");
    CHECK(v.find("t")->boolean);
    CHECK(v.find("n")->type == io::json::value::kind::null);
    CHECK(v.find("num")->text == "-1.5e3");
    CHECK_THROWS_AS((void)v.find("num")->as_u64(), io::json::parse_error);
    CHECK(parse("18446744073709551615").as_u64() == 18446744073709551615ull);
    CHECK_THROWS_AS((void)parse("18446744073709551616").as_u64(), io::json::parse_error);
    CHECK(parse("\"caf\xc3\xa9\"").text == "caf\xc3\xa9");
    CHECK(io::json::parse(io::json::quote(std::string("a\"\\\n\x01z", 6))).text == std::string("a\"\\\n\x01z", 6));
}

TEST_CASE("json: invalid documents are parse_error with the offset") {
    for (const char* bad : {"", "{", "{\"a\":1,}", "[1,]", "{\"a\" 1}", "{a:1}", "{'a':1}", "[01]", "[1.]", "[-]",
                            "[1e]", "\"abc", "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\u12g4\"", "nul", "tru",
                            "{\"a\":1}{}", "{\"a\":1,\"a\":2}", "[NaN]", "\"tab\there\"", "\"\xff\"", "\"\xc0\xaf\"",
                            "\"\xed\xa0\x80\"", "// c\n{}", "[1 2]"}) {
        INFO("input: " << bad);
        CHECK_THROWS_AS(io::json::parse(bad), io::json::parse_error);
    }
    std::string deep(100, '[');
    deep += std::string(100, ']');
    CHECK_THROWS_WITH_AS(io::json::parse(deep), doctest::Contains("nesting"), io::json::parse_error);
    std::string ok_deep(40, '[');
    ok_deep += std::string(40, ']');
    CHECK_NOTHROW(io::json::parse(ok_deep));
    CHECK_THROWS_WITH_AS(io::json::parse("[1, 2, x]"), doctest::Contains("at byte 7"), io::json::parse_error);
}

TEST_CASE("safetensors round trip with metadata; keys sorted; header aligned to 8") {
    temp_dir d("st");
    io::tensor_map ts;
    ts["b.weight"] = iota({2, 3});
    ts["a.scalar"] = tensor<float>::from_shape({});
    ts["a.scalar"]() = -3.25f;
    ts["c.empty"] = tensor<float>(shape_t{0, 2});
    ts["z"] = iota({1, 2, 1, 2}, 7.f);
    const std::string p = d / "x.safetensors";
    io::save_safetensors(p, ts, {{"format", "pt"}, {"note", "caf\xc3\xa9 \"q\""}});
    const std::string raw = io::read_file(p);
    CHECK(io::detail::get_u64(reinterpret_cast<const unsigned char*>(raw.data())) % 8 == 0);
    const io::safetensors_file f = io::read_safetensors(p);
    CHECK(f.metadata == io::meta_list{{"format", "pt"}, {"note", "caf\xc3\xa9 \"q\""}});
    REQUIRE(f.tensors.size() == ts.size());
    for (const auto& kv : ts) {
        const std::string& name = kv.first;
        INFO(name);
        REQUIRE(f.tensors.count(name) == 1);
        CHECK(bit_equal(f.tensors.at(name), kv.second));
    }
    CHECK(io::load_safetensors(p).size() == 4);
}

TEST_CASE("safetensors dtypes F64, F16, BF16 and integers are converted to float") {
    std::string data;
    io::detail::put_u64(data, 0x3FF8000000000000ull);  // F64 1.5
    io::detail::put_u64(data, 0xC000000000000000ull);  // F64 -2
    const unsigned char f16[] = {0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00, 0x00, 0x7C};  // 1, -2, 2^-24, inf
    data.append(reinterpret_cast<const char*>(f16), sizeof f16);
    const unsigned char bf16[] = {0x80, 0x3F, 0x49, 0x40};  // 1, 3.140625
    data.append(reinterpret_cast<const char*>(bf16), sizeof bf16);
    io::detail::put_u64(data, static_cast<std::uint64_t>(-5ll));  // I64
    data += std::string("\x07\xfe", 2);                          // U8 7, I8 -2 (two tensors)
    const std::string header =
        "{\"f64\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]},"
        "\"f16\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[16,24]},"
        "\"bf16\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[24,28]},"
        "\"bn.num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[28,36]},"
        "\"u8\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[36,37]},"
        "\"i8\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[37,38]}}";
    const auto f = io::parse_safetensors(st_file(header, data), "dtypes");
    CHECK(f.tensors.at("f64")(0) == 1.5f);
    CHECK(f.tensors.at("f64")(1) == -2.0f);
    CHECK(f.tensors.at("f16")(0, 0) == 1.0f);
    CHECK(f.tensors.at("f16")(0, 1) == -2.0f);
    CHECK(f.tensors.at("f16")(1, 0) == std::ldexp(1.0f, -24));
    CHECK(std::isinf(f.tensors.at("f16")(1, 1)));
    CHECK(f.tensors.at("bf16")(0) == 1.0f);
    CHECK(f.tensors.at("bf16")(1) == 3.140625f);
    CHECK(f.tensors.at("bn.num_batches_tracked")() == -5.0f);
    CHECK(f.tensors.at("u8")(0) == 7.0f);
    CHECK(f.tensors.at("i8")(0) == -2.0f);

    // An unsupported dtype is a file_error that says so (not "corrupt").
    const std::string f8 = "{\"x\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}";
    CHECK_THROWS_WITH_AS(io::parse_safetensors(st_file(f8, "x"), "f8"), doctest::Contains("unsupported dtype \"F8_E4M3\""),
                         error::file_error);
}

TEST_CASE("malformed safetensors are corrupt_file naming the file and the tensor") {
    const std::string good = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    const std::string data = floats({1.f, 2.f});
    REQUIRE(io::parse_safetensors(st_file(good, data), "ok").tensors.size() == 1);

    struct bad_case {
        std::string bytes, expect;
    };
    auto entry = [](const std::string& fields) { return "{\"w\":{" + fields + "}}"; };
    std::string huge_len;
    io::detail::put_u64(huge_len, ~0ull);
    const bad_case cases[] = {
        {std::string("\x10\x00\x00", 3), "fewer than the 8-byte header length"},
        {huge_len + "{}", "runs past the end of the file"},
        {st_file(good, data).substr(0, 20), "runs past the end of the file"},
        {st_file("{\"w\":", data), "bad JSON header"},
        {st_file("{\"w\":{}},", data), "bad JSON header"},
        {st_file("[1, 2]", data), "expected an object"},
        {st_file(entry("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]"), data), "run past the end of the 8-byte data buffer"},
        {st_file(entry("\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]"), data), "needs 12"},
        {st_file(entry("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]"), data), "reversed"},
        {st_file(entry("\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]"), data), "non-negative integer"},
        {st_file(entry("\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]"), data), "non-negative integer"},
        {st_file(entry("\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]"), data), "absurdly large"},
        {st_file(entry("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]"), data), "two integers"},
        {st_file(entry("\"dtype\":\"F32\",\"shape\":[2]"), data), "needs \"dtype\""},
        {st_file(entry("\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]"), data), "expected a string"},
        {st_file(entry("\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]"), data), "expected an array"},
        {st_file(entry("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1"), data), "unknown field"},
        {st_file("{\"w\":[]}", data), "expected an object"},
        {st_file("{\"__metadata__\":{\"a\":1}}", data), "expected a string"},
        {st_file("{\"__metadata__\":[]}", data), "expected an object"},
        {st_file(entry("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]") + "{\"w\":1}", data), "bad JSON header"},
    };
    for (const auto& c : cases) {
        const std::string msg = st_error(c.bytes, "bad.safetensors");
        INFO(msg);
        CHECK(contains(msg, "bad.safetensors"));
        CHECK(contains(msg, c.expect));
    }
    // Tensor-level problems name the tensor.
    CHECK(contains(st_error(st_file(entry("\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]"), data)),
                   "tensor 'w'"));
    // Duplicate tensor names are rejected by the strict JSON parser.
    CHECK(contains(st_error(st_file("{\"w\":{},\"w\":{}}", data)), "duplicate key"));

    // Every truncation of a valid file.
    io::tensor_map ts;
    ts["a"] = iota({3, 2});
    ts["b"] = iota({5});
    const std::string full = io::serialize_safetensors(ts, {{"k", "v"}});
    for (std::size_t len = 0; len < full.size(); ++len) {
        INFO("length " << len);
        CHECK(contains(st_error(full.substr(0, len), "cut.safetensors"), "cut.safetensors"));
    }

    // Through a real file; a missing file is file_error naming it.
    temp_dir d("st");
    const std::string p = d / "bad.safetensors";
    io::write_file_atomic(p, st_file("{\"w\":", data));
    CHECK_THROWS_WITH_AS(io::load_safetensors(p), doctest::Contains(p.c_str()), error::corrupt_file);
    CHECK_THROWS_WITH_AS(io::load_safetensors(d / "none.safetensors"), doctest::Contains("none.safetensors"),
                         error::file_error);
}

TEST_CASE("resnet20_torch_names maps the PyTorch CIFAR ResNet-20 names, and back") {
    const io::name_map m = io::resnet20_torch_names();
    CHECK(m("conv1.weight") == "0.weight");
    CHECK(m("bn1.running_mean") == "1.running_mean");
    CHECK(m("layer1.0.conv1.weight") == "3.branch.0.weight");
    CHECK(m("layer1.2.bn2.bias") == "5.branch.4.bias");
    CHECK(m("layer2.0.bn2.running_var") == "6.branch.4.running_var");
    CHECK(m("layer2.1.conv2.weight") == "7.branch.3.weight");
    CHECK(m("layer3.2.bn1.weight") == "11.branch.1.weight");
    CHECK(m("layer3.0.shortcut.0.weight") == "9.shortcut.0.weight");
    CHECK(m("bn2.running_var") == "13.running_var");
    CHECK(m("linear.weight") == "14.weight");
    CHECK(m("fc.bias") == "14.bias");
    CHECK(m("module.layer1.1.bn1.bias") == "4.branch.1.bias");
    CHECK(m("6.branch.4.bias") == "6.branch.4.bias");  // sqakd names pass through
    const io::name_map inv = m.inverse();
    CHECK(inv("14.weight") == "linear.weight");
    CHECK(inv("6.branch.4.running_var") == "layer2.0.bn2.running_var");
    CHECK(inv("13.bias") == "bn2.bias");
    CHECK(inv("0.weight") == "conv1.weight");

    // Every tensor of the sqakd model maps back and forth.
    nn::models::resnet20<1, 10> net;
    for (const auto& r : io::detail::state_refs(net)) CHECK(m(inv(r.name)) == r.name);
}

TEST_CASE("load_state_dict: sqakd names, mapped names, and clear reports of what does not fit") {
    tiny_net<> a;
    io_test::randomize(a, 11);
    const io::tensor_map own = io::state_dict(a);
    CHECK(own.count("0.weight") == 1);
    CHECK(own.count("4.running_var") == 1);

    tiny_net<> b;
    io::load_report r = io::load_state_dict(b, own);
    CHECK(r.loaded.size() == own.size());
    CHECK(io::weights_checksum(a) == io::weights_checksum(b));
    CHECK(contains(r.summary(), "loaded 12 tensors"));

    // Renamed source, with PyTorch's step counters (skipped).
    io::name_map map;
    map.rename = {{"features.conv.", "0."}, {"features.bn.", "1."}, {"head.bn.", "4."}, {"head.fc.", "5."}};
    io::tensor_map renamed = io::state_dict(a, map.inverse());
    CHECK(renamed.count("features.conv.weight") == 1);
    CHECK(renamed.count("head.fc.bias") == 1);
    renamed["features.bn.num_batches_tracked"] = tensor<float>::from_shape({});
    renamed["head.bn.num_batches_tracked"] = tensor<float>::from_shape({});
    tiny_net<> c;
    r = io::load_state_dict(c, renamed, map);
    CHECK(r.skipped.size() == 2);
    CHECK(r.loaded.size() == 12);
    CHECK(io::weights_checksum(a) == io::weights_checksum(c));

    // Missing, unexpected and mis-shaped, all in one message.
    io::tensor_map broken = renamed;
    broken.erase("head.fc.bias");
    broken["head.extra.weight"] = iota({2});
    broken["features.bn.running_var"] = iota({5});
    tiny_net<> e;
    io_test::randomize(e, 12);
    const std::string before = io::weights_checksum(e);
    try {
        io::load_state_dict(e, broken, map, io::strictness::strict, "file 'x.safetensors'");
        FAIL("expected shape_mismatch");
    } catch (const error::shape_mismatch& ex) {
        const std::string msg = ex.what();
        INFO(msg);
        CHECK(contains(msg, "file 'x.safetensors' does not fit the model (3 problems)"));
        CHECK(contains(msg, "missing tensor '5.bias' (the model expects shape [4])"));
        CHECK(contains(msg, "unexpected tensor 'head.extra.weight'"));
        CHECK(contains(msg, "tensor '1.running_var' (source 'features.bn.running_var'): expected shape [3], got [5]"));
    }
    CHECK(io::weights_checksum(e) == before);

    // Lenient: missing and unexpected are only reported; wrong shapes still throw.
    broken["features.bn.running_var"] = renamed["features.bn.running_var"];
    r = io::load_state_dict(e, broken, map, io::strictness::lenient);
    CHECK(r.missing == std::vector<std::string>{"5.bias"});
    CHECK(r.unexpected == std::vector<std::string>{"head.extra.weight"});
    CHECK(r.loaded.size() == 11);
    broken["features.bn.running_var"] = iota({5});
    CHECK_THROWS_AS(io::load_state_dict(e, broken, map, io::strictness::lenient), error::shape_mismatch);

    // Two sources for one tensor.
    io::tensor_map clash = own;
    clash["5.weight"] = own.at("5.weight");
    io::name_map alias;
    alias.rename = {{"fc.", "5."}};
    clash["fc.weight"] = own.at("5.weight");
    CHECK_THROWS_WITH_AS(io::load_state_dict(b, clash, alias), doctest::Contains("both map to '5.weight'"),
                         error::shape_mismatch);

    // NaN.
    io::tensor_map nan = own;
    nan["4.bias"](1) = std::nanf("");
    CHECK_THROWS_WITH_AS(io::load_state_dict(b, nan), doctest::Contains("'4.bias'"), error::invalid_value);
}

TEST_CASE("random damage to a safetensors file is parsed or rejected with file errors, never a crash") {
    io::tensor_map ts;
    ts["layer.weight"] = iota({3, 2});
    ts["layer.bias"] = iota({3});
    const std::string full = io::serialize_safetensors(ts, {{"k", "v"}});
    rng g(7);
    std::size_t rejected = 0;
    for (int trial = 0; trial < 3000; ++trial) {
        std::string b = full;
        const int edits = 1 + static_cast<int>(g.next() % 3);
        for (int e = 0; e < edits; ++e) {
            // Mostly in the header, where the structure is.
            const std::size_t span = g.next() % 4 == 0 ? b.size() : std::min<std::size_t>(b.size(), 200);
            b[static_cast<std::size_t>(g.next() % span)] = static_cast<char>(g.next() & 0xFF);
        }
        try {
            io::parse_safetensors(b, "fuzz.safetensors");
        } catch (const error::file_error& e) {  // corrupt_file, or an "unsupported dtype"
            ++rejected;
            REQUIRE(contains(e.what(), "fuzz.safetensors"));
        }
    }
    CHECK(rejected > 0);
}

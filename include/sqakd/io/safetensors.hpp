// sqakd/io/safetensors.hpp - read and write the safetensors format (Hugging Face).
//
//   io::tensor_map w = io::load_safetensors("resnet20.safetensors");   // name -> tensor<float>
//   io::safetensors_file f = io::read_safetensors(path);                // tensors + __metadata__
//   io::save_safetensors("out.safetensors", tensors, {{"format", "pt"}});
//
// Format: an 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [16, 1, 3, 3], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value", ...}}            (optional, string values only)
// then the data buffer; offsets are relative to the buffer, data is little-endian, row-major.
//
// Reading is strict: the JSON must be valid (io/json.hpp), every tensor entry must have exactly
// dtype, shape and data_offsets, 0 <= begin <= end <= buffer size, and end - begin must equal
// prod(shape) * sizeof(dtype). Any problem is error::corrupt_file naming the file and, where
// there is one, the tensor. Overlapping or unused buffer ranges are accepted. Every tensor is
// converted to float32: F32 as is; F64, F16, BF16 rounded to nearest; the integer and BOOL
// dtypes (PyTorch writes BatchNorm's num_batches_tracked as I64) converted by value, exact up
// to 2^24. Other dtypes (F8_*) are error::file_error ("unsupported dtype").
//
// Writing produces F32 tensors, keys sorted (tensor_map) or in the given order (named_tensors),
// the header padded with spaces to a multiple of 8 bytes, as the reference implementation does.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sqakd/core/error.hpp"
#include "sqakd/core/tensor.hpp"
#include "sqakd/io/checkpoint.hpp"
#include "sqakd/io/file.hpp"
#include "sqakd/io/json.hpp"
#include "sqakd/io/model_state.hpp"

namespace sqakd::io {

/// Headers above this size are rejected as corrupt (the reference implementation's limit).
inline constexpr std::uint64_t safetensors_max_header = 100'000'000;

/// A safetensors file's content.
struct safetensors_file {
    tensor_map tensors;
    /// The "__metadata__" entries, in file order.
    meta_list metadata;
};

namespace detail {

inline float half_to_float(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t exp = (h >> 10) & 0x1Fu;
    const std::uint32_t man = h & 0x3FFu;
    std::uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {  // subnormal: value = man * 2^-24
            const float f = std::ldexp(static_cast<float>(man), -24);
            return sign ? -f : f;
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

// Decodes one little-endian element of `dtype` at p.
inline float decode_element(std::string_view dtype, const unsigned char* p) {
    auto u16 = [&] { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); };
    if (dtype == "F32") return get_f32(p);
    if (dtype == "F64") {
        const std::uint64_t u = get_u64(p);
        double d;
        std::memcpy(&d, &u, 8);
        return static_cast<float>(d);
    }
    if (dtype == "F16") return half_to_float(u16());
    if (dtype == "BF16") {
        const std::uint32_t bits = static_cast<std::uint32_t>(u16()) << 16;
        float f;
        std::memcpy(&f, &bits, 4);
        return f;
    }
    if (dtype == "I64") return static_cast<float>(static_cast<std::int64_t>(get_u64(p)));
    if (dtype == "U64") return static_cast<float>(get_u64(p));
    if (dtype == "I32") return static_cast<float>(static_cast<std::int32_t>(get_u32(p)));
    if (dtype == "U32") return static_cast<float>(get_u32(p));
    if (dtype == "I16") return static_cast<float>(static_cast<std::int16_t>(u16()));
    if (dtype == "U16") return static_cast<float>(u16());
    if (dtype == "I8") return static_cast<float>(static_cast<std::int8_t>(p[0]));
    if (dtype == "U8") return static_cast<float>(p[0]);
    if (dtype == "BOOL") return p[0] ? 1.0f : 0.0f;
    return 0.0f;
}

inline std::size_t dtype_size(std::string_view dtype) {
    if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
    if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
    if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
    if (dtype == "I8" || dtype == "U8" || dtype == "BOOL") return 1;
    return 0;
}

}  // namespace detail

/// Parses safetensors bytes; `source` names them in messages (usually the path).
inline safetensors_file parse_safetensors(std::string_view bytes, const std::string& source) {
    auto corrupt = [&](const std::string& what) -> void {
        throw error::corrupt_file("corrupt safetensors file '" + source + "': " + what);
    };
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const std::size_t n = bytes.size();
    if (n < 8) corrupt("the file has " + std::to_string(n) + " bytes, fewer than the 8-byte header length");
    const std::uint64_t hlen = detail::get_u64(p);
    if (hlen > n - 8)
        corrupt("the header length " + std::to_string(hlen) + " runs past the end of the file (" +
                std::to_string(n - 8) + " bytes follow the length field)");
    if (hlen > safetensors_max_header)
        corrupt("the header length " + std::to_string(hlen) + " is above the limit of " +
                std::to_string(safetensors_max_header) + " bytes");
    const std::string_view header = bytes.substr(8, static_cast<std::size_t>(hlen));
    const unsigned char* buf = p + 8 + hlen;
    const std::size_t buf_size = n - 8 - static_cast<std::size_t>(hlen);

    json::value root;
    try {
        root = json::parse(header);
    } catch (const json::parse_error& e) {
        corrupt(std::string("bad JSON header: ") + e.what());
    }
    if (!root.is_object()) corrupt("the JSON header is " + root.type_name() + ", expected an object");

    safetensors_file out;
    for (std::size_t i = 0; i < root.keys.size(); ++i) {
        const std::string& name = root.keys[i];
        const json::value& e = root.items[i];
        if (name == "__metadata__") {
            if (!e.is_object()) corrupt("\"__metadata__\" is " + e.type_name() + ", expected an object");
            for (std::size_t k = 0; k < e.keys.size(); ++k) {
                if (!e.items[k].is_string())
                    corrupt("\"__metadata__\" entry \"" + e.keys[k] + "\" is " + e.items[k].type_name() +
                            ", expected a string");
                out.metadata.emplace_back(e.keys[k], e.items[k].text);
            }
            continue;
        }
        const std::string where = "tensor '" + name + "': ";
        if (!e.is_object()) corrupt(where + "the entry is " + e.type_name() + ", expected an object");
        for (const auto& k : e.keys)
            if (k != "dtype" && k != "shape" && k != "data_offsets") corrupt(where + "unknown field \"" + k + "\"");
        const json::value* dt = e.find("dtype");
        const json::value* sh = e.find("shape");
        const json::value* off = e.find("data_offsets");
        if (!dt || !sh || !off) corrupt(where + "the entry needs \"dtype\", \"shape\" and \"data_offsets\"");
        if (!dt->is_string()) corrupt(where + "\"dtype\" is " + dt->type_name() + ", expected a string");
        if (!sh->is_array()) corrupt(where + "\"shape\" is " + sh->type_name() + ", expected an array");
        if (!off->is_array() || off->items.size() != 2)
            corrupt(where + "\"data_offsets\" must be an array of two integers");
        const std::size_t esize = detail::dtype_size(dt->text);
        if (esize == 0)
            throw error::file_error("safetensors file '" + source + "': " + where + "unsupported dtype \"" + dt->text +
                                    "\" (supported: F32, F64, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL)");
        shape_t shape;
        std::uint64_t begin = 0, end = 0, count = 1;
        bool overflow = false;
        try {
            for (const auto& d : sh->items) {
                const std::uint64_t v = d.as_u64();
                if (v != 0 && count > UINT64_MAX / v) overflow = true;
                if (!overflow) count *= v;
                shape.push_back(static_cast<std::size_t>(v));
            }
            begin = off->items[0].as_u64();
            end = off->items[1].as_u64();
        } catch (const json::parse_error& err) {
            corrupt(where + err.what());
        }
        if (overflow || count > UINT64_MAX / esize) corrupt(where + "the shape " + shape_str(shape) + " is absurdly large");
        if (begin > end)
            corrupt(where + "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] are reversed");
        if (end > buf_size)
            corrupt(where + "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                    "] run past the end of the " + std::to_string(buf_size) + "-byte data buffer");
        if (end - begin != count * esize)
            corrupt(where + "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] hold " +
                    std::to_string(end - begin) + " bytes, but shape " + shape_str(shape) + " of " + dt->text +
                    " needs " + std::to_string(count * esize));
        tensor<float> t(shape);
        float* q = t.data();
        const unsigned char* src = buf + begin;
        if (dt->text == "F32") {
            for (std::size_t k = 0; k < count; ++k) q[k] = detail::get_f32(src + 4 * k);
        } else {
            for (std::size_t k = 0; k < count; ++k) q[k] = detail::decode_element(dt->text, src + esize * k);
        }
        out.tensors.emplace(name, std::move(t));
    }
    return out;
}

/// Reads a safetensors file: error::file_error if it cannot be read, error::corrupt_file
/// naming the file (and the tensor) if its content is wrong.
inline safetensors_file read_safetensors(const std::string& path) { return parse_safetensors(read_file(path), path); }

/// The tensors of a safetensors file, by name (see read_safetensors).
inline tensor_map load_safetensors(const std::string& path) { return read_safetensors(path).tensors; }

/// `tensors` (pairs of name and tensor<float>: a tensor_map or named_tensors) as safetensors
/// bytes, all F32. Throws error::invalid_value on an empty or duplicate name.
template <class Tensors>
std::string serialize_safetensors(const Tensors& tensors, const meta_list& metadata = {}) {
    std::string header = "{";
    bool first = true;
    if (!metadata.empty()) {
        header += "\"__metadata__\":{";
        for (std::size_t i = 0; i < metadata.size(); ++i) {
            if (i) header += ',';
            header += json::quote(metadata[i].first) + ":" + json::quote(metadata[i].second);
        }
        header += '}';
        first = false;
    }
    std::vector<std::string> seen;
    std::uint64_t offset = 0;
    for (const auto& [name, t] : tensors) {
        if (name.empty() || name == "__metadata__")
            throw error::invalid_value("save_safetensors: invalid tensor name '" + name + "'");
        for (const auto& s : seen)
            if (s == name) throw error::invalid_value("save_safetensors: two tensors are called '" + name + "'");
        seen.push_back(name);
        if (!first) header += ',';
        first = false;
        header += json::quote(name) + ":{\"dtype\":\"F32\",\"shape\":[";
        for (std::size_t d = 0; d < t.dimension(); ++d) {
            if (d) header += ',';
            header += std::to_string(t.shape()[d]);
        }
        const std::uint64_t bytes = 4 * static_cast<std::uint64_t>(t.size());
        header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + bytes) + "]}";
        offset += bytes;
    }
    header += '}';
    while (header.size() % 8 != 0) header += ' ';
    std::string out;
    out.reserve(8 + header.size() + static_cast<std::size_t>(offset));
    detail::put_u64(out, header.size());
    out += header;
    for (const auto& [name, t] : tensors) {
        (void)name;
        const float* q = t.data();
        for (std::size_t k = 0; k < t.size(); ++k) detail::put_f32(out, q[k]);
    }
    return out;
}

/// Writes `tensors` to `path` as safetensors, atomically (io/file.hpp).
template <class Tensors>
void save_safetensors(const std::string& path, const Tensors& tensors, const meta_list& metadata = {}) {
    write_file_atomic(path, serialize_safetensors(tensors, metadata));
}

}  // namespace sqakd::io

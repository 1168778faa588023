// sqakd/io/checkpoint.hpp - sqakd's own checkpoint file: weights, buffers, metadata, extras.
//
//   io::checkpoint_extra extra;
//   extra.set("epoch", "7");
//   extra.set("command", "sqakd-train --epochs 8 ...");
//   extra.tensors.emplace_back("adam.m.0.weight", m0);       // optimizer state, anything
//   io::save_checkpoint("run/last.ckpt", model, extra);      // atomic: old file or new file
//
//   io::checkpoint ck = io::read_checkpoint("run/last.ckpt");
//   io::load_into(model, ck);                                // checks names, shapes, NaN/Inf
//   int epoch = std::stoi(ck.get("epoch"));
//   const tensor<float>* m0 = ck.find_extra("adam.m.0.weight");
//
// File layout, version 1 (all integers little-endian, floats IEEE-754 binary32 little-endian):
//
//   offset 0   8 bytes   magic "SQAKDCKP"
//          8   u32       format version (1)
//         12   u64       total file size in bytes, the trailing CRC included
//         20   u32       M, number of metadata entries, then M times:
//                          u32 key length, key bytes, u32 value length, value bytes
//              u32       P, number of model tensors (parameters, then buffers), then P tensors
//              u32       E, number of extra tensors, then E tensors
//        end-4 u32       CRC-32 (zlib crc32) of every byte before it
//   tensor:    u32 name length, name bytes, u32 rank (<= 8), rank x u64 dims,
//              prod(dims) x f32 values, row-major
//
// The size field lets a truncated file be reported as truncated rather than as a checksum
// mismatch. Reading checks, in order: magic, version, size, CRC, then parses with every
// length checked against the bytes that remain, so a damaged or hostile file gives
// error::corrupt_file (naming the file and the problem) and never a crash or a huge
// allocation. Metadata keys and tensor names are unique and non-empty; metadata keeps its order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <zlib.h>

#include "sqakd/core/error.hpp"
#include "sqakd/core/tensor.hpp"
#include "sqakd/io/file.hpp"
#include "sqakd/io/model_state.hpp"

namespace sqakd::io {

inline constexpr char checkpoint_magic[8] = {'S', 'Q', 'A', 'K', 'D', 'C', 'K', 'P'};
inline constexpr std::uint32_t checkpoint_version = 1;
/// Tensors of higher rank are rejected on read and write.
inline constexpr std::uint32_t checkpoint_max_rank = 8;

/// Ordered string key/value pairs.
using meta_list = std::vector<std::pair<std::string, std::string>>;

namespace detail {

inline const std::string* meta_find(const meta_list& m, const std::string& key) {
    for (const auto& kv : m)
        if (kv.first == key) return &kv.second;
    return nullptr;
}
inline void meta_set(meta_list& m, const std::string& key, const std::string& value) {
    for (auto& kv : m)
        if (kv.first == key) {
            kv.second = value;
            return;
        }
    m.emplace_back(key, value);
}
inline const tensor<float>* tensors_find(const named_tensors& ts, const std::string& name) {
    for (const auto& nt : ts)
        if (nt.first == name) return &nt.second;
    return nullptr;
}

}  // namespace detail

/// What a checkpoint carries besides the model: metadata and extra named tensors (optimizer
/// state, EMA weights, ...). Values are strings; store numbers with std::to_string.
struct checkpoint_extra {
    meta_list meta;
    named_tensors tensors;

    /// Sets `key` to `value`, replacing an existing entry in place (order is kept).
    void set(const std::string& key, const std::string& value) { detail::meta_set(meta, key, value); }
};

/// A checkpoint in memory.
struct checkpoint {
    /// The file it was read from ("" when built in memory); used in error messages.
    std::string source;
    meta_list meta;
    /// The model's state: parameters, then buffers, in the model's visiting order.
    named_tensors tensors;
    /// Extra named tensors (checkpoint_extra::tensors).
    named_tensors extra;

    bool has(const std::string& key) const { return detail::meta_find(meta, key) != nullptr; }
    /// The value of metadata `key`; throws std::out_of_range naming the key and the file if absent.
    std::string get(const std::string& key) const {
        if (const std::string* v = detail::meta_find(meta, key)) return *v;
        throw std::out_of_range("checkpoint" + (source.empty() ? std::string() : " '" + source + "'") +
                                ": no metadata key '" + key + "'");
    }
    /// The value of metadata `key`, or `fallback` if absent.
    std::string get(const std::string& key, const std::string& fallback) const {
        const std::string* v = detail::meta_find(meta, key);
        return v ? *v : fallback;
    }
    void set(const std::string& key, const std::string& value) { detail::meta_set(meta, key, value); }
    /// The model tensor called `name`, or nullptr.
    const tensor<float>* find(const std::string& name) const { return detail::tensors_find(tensors, name); }
    /// The extra tensor called `name`, or nullptr.
    const tensor<float>* find_extra(const std::string& name) const { return detail::tensors_find(extra, name); }
};

namespace detail {

inline void put_bytes(std::string& out, const std::string& s, const char* what) {
    if (s.size() > std::numeric_limits<std::uint32_t>::max())
        throw error::invalid_value(std::string("save_checkpoint: ") + what + " longer than 4 GiB");
    put_u32(out, static_cast<std::uint32_t>(s.size()));
    out += s;
}

inline void put_tensors(std::string& out, const named_tensors& ts, const char* section) {
    if (ts.size() > std::numeric_limits<std::uint32_t>::max())
        throw error::invalid_value(std::string("save_checkpoint: too many ") + section + " tensors");
    put_u32(out, static_cast<std::uint32_t>(ts.size()));
    for (std::size_t i = 0; i < ts.size(); ++i) {
        const auto& [name, t] = ts[i];
        if (name.empty())
            throw error::invalid_value(std::string("save_checkpoint: ") + section + " tensor #" + std::to_string(i) +
                                       " has an empty name");
        for (std::size_t j = 0; j < i; ++j)
            if (ts[j].first == name)
                throw error::invalid_value(std::string("save_checkpoint: two ") + section + " tensors are called '" +
                                           name + "'");
        if (t.dimension() > checkpoint_max_rank)
            throw error::invalid_value("save_checkpoint: tensor '" + name + "' has rank " +
                                       std::to_string(t.dimension()) + ", at most " +
                                       std::to_string(checkpoint_max_rank) + " is supported");
        put_bytes(out, name, "a tensor name");
        put_u32(out, static_cast<std::uint32_t>(t.dimension()));
        for (auto d : t.shape()) put_u64(out, static_cast<std::uint64_t>(d));
        const float* p = t.data();
        const std::size_t n = t.size();
        const std::size_t at = out.size();
        out.resize(at + 4 * n);
        unsigned char* q = reinterpret_cast<unsigned char*>(&out[at]);
        for (std::size_t k = 0; k < n; ++k) {
            std::uint32_t u;
            std::memcpy(&u, &p[k], 4);
            q[4 * k] = static_cast<unsigned char>(u & 0xFF);
            q[4 * k + 1] = static_cast<unsigned char>((u >> 8) & 0xFF);
            q[4 * k + 2] = static_cast<unsigned char>((u >> 16) & 0xFF);
            q[4 * k + 3] = static_cast<unsigned char>(u >> 24);
        }
    }
}

inline std::uint32_t crc32_of(const unsigned char* p, std::size_t n) {
    uLong c = ::crc32(0L, Z_NULL, 0);
    // zlib takes uInt lengths: feed large buffers in chunks.
    while (n > 0) {
        const uInt chunk = static_cast<uInt>(std::min<std::size_t>(n, 1u << 30));
        c = ::crc32(c, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return static_cast<std::uint32_t>(c);
}

/// Bounds-checked little-endian reader over a byte buffer; every failure is corrupt_file
/// naming the file, the offset and what was being read.
class byte_reader {
public:
    byte_reader(const unsigned char* p, std::size_t n, const std::string& source)
        : m_p(p), m_n(n), m_source(source) {}

    std::size_t pos() const { return m_pos; }
    std::size_t left() const { return m_n - m_pos; }

    [[noreturn]] void fail(const std::string& what) const {
        throw error::corrupt_file("corrupt checkpoint '" + m_source + "': " + what + " (at byte " +
                                  std::to_string(m_pos) + ")");
    }
    void need(std::size_t k, const char* what) const {
        if (k > left())
            fail(std::string("truncated ") + what + ": needs " + std::to_string(k) + " bytes, " +
                 std::to_string(left()) + " left");
    }
    std::uint32_t u32(const char* what) {
        need(4, what);
        const std::uint32_t v = get_u32(m_p + m_pos);
        m_pos += 4;
        return v;
    }
    std::uint64_t u64(const char* what) {
        need(8, what);
        const std::uint64_t v = get_u64(m_p + m_pos);
        m_pos += 8;
        return v;
    }
    std::string str(const char* what) {
        const std::uint32_t len = u32(what);
        need(len, what);
        std::string s(reinterpret_cast<const char*>(m_p + m_pos), len);
        m_pos += len;
        return s;
    }
    void floats(float* out, std::size_t n) {
        const unsigned char* q = m_p + m_pos;
        for (std::size_t k = 0; k < n; ++k) out[k] = get_f32(q + 4 * k);
        m_pos += 4 * n;
    }

private:
    const unsigned char* m_p;
    std::size_t m_n;
    std::size_t m_pos = 0;
    const std::string& m_source;
};

inline named_tensors read_tensors(byte_reader& r, const char* section) {
    named_tensors ts;
    const std::uint32_t count = r.u32("tensor count");
    // Each tensor takes at least 8 bytes (name length + rank): a count beyond that is a lie,
    // and checking it first keeps reserve() honest.
    if (count > r.left() / 8)
        r.fail(std::string("the ") + section + " tensor count " + std::to_string(count) +
               " cannot fit in the remaining " + std::to_string(r.left()) + " bytes");
    ts.reserve(count);
    for (std::uint32_t i = 0; i < count; ++i) {
        std::string name = r.str("tensor name");
        if (name.empty()) r.fail(std::string(section) + " tensor #" + std::to_string(i) + " has an empty name");
        const std::uint32_t rank = r.u32("tensor rank");
        if (rank > checkpoint_max_rank)
            r.fail("tensor '" + name + "' has rank " + std::to_string(rank) + ", at most " +
                   std::to_string(checkpoint_max_rank) + " is supported");
        shape_t shape(rank);
        std::uint64_t count_elems = 1;
        const std::uint64_t max_elems = r.left() / 4;
        for (auto& d : shape) {
            const std::uint64_t v = r.u64("tensor dimension");
            if (v > (std::uint64_t{1} << 48)) r.fail("tensor '" + name + "' has an absurd dimension " + std::to_string(v));
            if (v != 0 && count_elems > max_elems / v)
                r.fail("tensor '" + name + "' has shape with more elements than the file holds");
            count_elems *= v;
            d = static_cast<std::size_t>(v);
        }
        r.need(static_cast<std::size_t>(count_elems) * 4, ("data of tensor '" + name + "'").c_str());
        tensor<float> t(shape);
        r.floats(t.data(), static_cast<std::size_t>(count_elems));
        if (tensors_find(ts, name)) r.fail(std::string("two ") + section + " tensors are called '" + name + "'");
        ts.emplace_back(std::move(name), std::move(t));
    }
    return ts;
}

}  // namespace detail

/// The checkpoint as bytes (the file format above). Throws error::invalid_value on empty or
/// duplicate names and keys.
inline std::string serialize_checkpoint(const checkpoint& ck) {
    std::string out;
    std::size_t reserve = 64;
    for (const auto& s : {&ck.tensors, &ck.extra})
        for (const auto& nt : *s) reserve += 64 + nt.first.size() + 4 * nt.second.size();
    for (const auto& kv : ck.meta) reserve += 8 + kv.first.size() + kv.second.size();
    out.reserve(reserve);
    out.append(checkpoint_magic, 8);
    detail::put_u32(out, checkpoint_version);
    detail::put_u64(out, 0);  // total size, patched below
    if (ck.meta.size() > std::numeric_limits<std::uint32_t>::max())
        throw error::invalid_value("save_checkpoint: too many metadata entries");
    detail::put_u32(out, static_cast<std::uint32_t>(ck.meta.size()));
    for (std::size_t i = 0; i < ck.meta.size(); ++i) {
        const auto& [k, v] = ck.meta[i];
        if (k.empty()) throw error::invalid_value("save_checkpoint: metadata entry #" + std::to_string(i) + " has an empty key");
        for (std::size_t j = 0; j < i; ++j)
            if (ck.meta[j].first == k) throw error::invalid_value("save_checkpoint: metadata key '" + k + "' appears twice");
        detail::put_bytes(out, k, "a metadata key");
        detail::put_bytes(out, v, "a metadata value");
    }
    detail::put_tensors(out, ck.tensors, "model");
    detail::put_tensors(out, ck.extra, "extra");
    const std::uint64_t total = out.size() + 4;
    for (int i = 0; i < 8; ++i) out[12 + static_cast<std::size_t>(i)] = static_cast<char>((total >> (8 * i)) & 0xFF);
    detail::put_u32(out, detail::crc32_of(reinterpret_cast<const unsigned char*>(out.data()), out.size()));
    return out;
}

/// Parses checkpoint bytes; `source` names them in messages (usually the path). Throws
/// error::corrupt_file naming `source` and the problem.
inline checkpoint parse_checkpoint(std::string_view bytes, const std::string& source) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const std::size_t n = bytes.size();
    auto corrupt = [&](const std::string& what) {
        throw error::corrupt_file("corrupt checkpoint '" + source + "': " + what);
    };
    if (n == 0) corrupt("the file is empty");
    if (n < 8 || std::memcmp(p, checkpoint_magic, 8) != 0) {
        if (n < 8 && std::memcmp(p, checkpoint_magic, n) == 0)
            corrupt("truncated: " + std::to_string(n) + " bytes, shorter than the 8-byte magic");
        corrupt("not a sqakd checkpoint (the file does not start with \"SQAKDCKP\")");
    }
    constexpr std::size_t header = 20, min_size = header + 4 + 4 + 4 + 4;
    if (n < 12) corrupt("truncated: " + std::to_string(n) + " bytes, the format version is missing");
    const std::uint32_t version = detail::get_u32(p + 8);
    if (version != checkpoint_version) {
        // A file from another version has its own valid checksum; a damaged version field
        // does not. Say which, so "upgrade sqakd" and "the file is damaged" are not confused.
        const bool crc_ok = n >= 16 && detail::crc32_of(p, n - 4) == detail::get_u32(p + n - 4);
        corrupt("format version " + std::to_string(version) + " is not supported (this build reads version " +
                std::to_string(checkpoint_version) + ")" +
                (crc_ok ? std::string() : "; the file's checksum does not match either, so it is probably damaged"));
    }
    if (n < header) corrupt("truncated: " + std::to_string(n) + " bytes, the header is 20");
    const std::uint64_t total = detail::get_u64(p + 12);
    if (total != n) {
        if (total > n)
            corrupt("truncated: the file has " + std::to_string(n) + " bytes, its header says " + std::to_string(total));
        corrupt("size mismatch: the file has " + std::to_string(n) + " bytes, its header says " + std::to_string(total) +
                " (trailing garbage or a damaged header)");
    }
    if (n < min_size) corrupt("too short for a checkpoint: " + std::to_string(n) + " bytes");
    const std::uint32_t stored = detail::get_u32(p + n - 4);
    const std::uint32_t actual = detail::crc32_of(p, n - 4);
    if (stored != actual) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "stored %08x, computed %08x", static_cast<unsigned>(stored),
                      static_cast<unsigned>(actual));
        corrupt(std::string("checksum mismatch (") + buf + "): the file is damaged");
    }

    checkpoint ck;
    ck.source = source;
    detail::byte_reader r(p, n - 4, source);
    r.u64("magic");  // already checked
    r.u32("version");
    r.u64("size");
    const std::uint32_t m = r.u32("metadata count");
    if (m > r.left() / 8)
        r.fail("metadata count " + std::to_string(m) + " cannot fit in the remaining " + std::to_string(r.left()) +
               " bytes");
    ck.meta.reserve(m);
    for (std::uint32_t i = 0; i < m; ++i) {
        std::string k = r.str("metadata key");
        std::string v = r.str("metadata value");
        if (k.empty()) r.fail("metadata entry #" + std::to_string(i) + " has an empty key");
        if (detail::meta_find(ck.meta, k)) r.fail("metadata key '" + k + "' appears twice");
        ck.meta.emplace_back(std::move(k), std::move(v));
    }
    ck.tensors = detail::read_tensors(r, "model");
    ck.extra = detail::read_tensors(r, "extra");
    if (r.left() != 0) r.fail(std::to_string(r.left()) + " unexplained bytes before the checksum");
    return ck;
}

/// Writes `ck` to `path` atomically (io/file.hpp).
inline void write_checkpoint(const std::string& path, const checkpoint& ck) {
    write_file_atomic(path, serialize_checkpoint(ck));
}

/// Reads the checkpoint at `path`: error::file_error naming the path if it cannot be read,
/// error::corrupt_file naming the path and the problem if its content is wrong.
inline checkpoint read_checkpoint(const std::string& path) { return parse_checkpoint(read_file(path), path); }

/// A checkpoint of `model` (parameters then buffers) plus `extra`'s metadata and tensors.
template <class Model>
checkpoint make_checkpoint(Model& model, const checkpoint_extra& extra = {}) {
    checkpoint ck;
    ck.meta = extra.meta;
    ck.tensors = state_tensors(model);
    ck.extra = extra.tensors;
    return ck;
}

/// Saves `model` and `extra` to `path`, atomically: after a crash the file is the old one or
/// the new one. Throws error::file_error naming `path` on failure.
template <class Model>
void save_checkpoint(const std::string& path, Model& model, const checkpoint_extra& extra = {}) {
    write_checkpoint(path, make_checkpoint(model, extra));
}

/// Copies the checkpoint's tensors into `model`'s parameters and buffers. All-or-nothing:
/// every model tensor must be present with the model's shape, the checkpoint must have no
/// model tensor the model lacks (error::shape_mismatch listing each name with the expected
/// and the actual shape), and no value may be NaN or Inf (error::invalid_value naming the
/// tensor). On error the model is unchanged.
template <class Model>
load_report load_into(Model& model, const checkpoint& ck) {
    std::vector<std::pair<std::string, std::string>> names;
    names.reserve(ck.tensors.size());
    for (const auto& nt : ck.tensors) names.emplace_back(nt.first, nt.first);
    assign_options opt;
    opt.who = "load_into";
    opt.source = "checkpoint" + (ck.source.empty() ? std::string() : " '" + ck.source + "'");
    return assign_state(model, [&](const std::string& name) { return ck.find(name); }, names, opt);
}

/// read_checkpoint(path) then load_into(model, ...); returns the checkpoint (metadata, extras).
template <class Model>
checkpoint load_checkpoint(const std::string& path, Model& model) {
    checkpoint ck = read_checkpoint(path);
    load_into(model, ck);
    return ck;
}

}  // namespace sqakd::io

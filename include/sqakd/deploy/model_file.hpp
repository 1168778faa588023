// sqakd/deploy/model_file.hpp - the integer model file: versioned, checksummed, and every field
// checked on the way in (a corrupt, truncated or wrong-version file is a status, never a crash
// or a silently different model). Standard library only; io/int_model.hpp writes and reads
// files atomically and turns statuses into sqakd::error exceptions.
//
// Layout (little-endian):
//   header, 32 bytes: magic "SQAKDINT", u32 version (1), u32 reserved (0), u64 payload size,
//                     u32 CRC-32 (IEEE) of the payload, u32 reserved (0)
//   payload:          u32 input C, H, W; u32 step count; the steps, each:
//     u8 kind, u8 relu, u32 in C H W, u32 out C H W, then by kind:
//     fp_conv   geometry (9 x u32: in, out, kh, kw, sh, sw, ph, pw, groups), f32 weights
//               [out][kh][kw][in/g] (u32 count + data), f32 bias (count + data)
//     quantize  u8 bits, f32 lo, hi, inv_d, u16 qp
//     qconv     u8 wbits, u8 abits, geometry, i32 mul, i32 offset, packed weight codes
//               (u32 bytes + data), u8 to_codes; to_codes: u16 levels, i32 thresholds
//               [C][levels - 1], u8 descending [C]; else f32 scale [C], f32 bias [C]
//     save, global_pool: nothing
//     add_relu  u8 option_a, u32 stride, u32 pad_c
//     fc        u32 in, u32 out, f32 weights [out][in] (count + data), f32 bias (count + data)
// After parsing, the network is validated as a whole (validate(): every step's shapes follow
// from the previous step's, buffer sizes agree, values are finite), so that run() on a loaded
// network cannot read or write out of bounds.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "sqakd/deploy/int_network.hpp"
#include "sqakd/deploy/status.hpp"

namespace sqakd::deploy {

inline constexpr std::uint32_t model_file_version = 1;
inline constexpr char model_file_magic[8] = {'S', 'Q', 'A', 'K', 'D', 'I', 'N', 'T'};
inline constexpr std::size_t model_header_bytes = 32;

/// CRC-32 (IEEE 802.3, reflected, as zlib's crc32).
inline std::uint32_t crc32(const std::uint8_t* p, std::size_t n) noexcept {
    struct table_t {
        std::uint32_t t[256];
        constexpr table_t() : t() {
            for (std::uint32_t i = 0; i < 256; ++i) {
                std::uint32_t c = i;
                for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
                t[i] = c;
            }
        }
    };
    static constexpr table_t table{};
    std::uint32_t c = 0xFFFFFFFFu;
    for (std::size_t i = 0; i < n; ++i) c = table.t[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

namespace detail {

struct writer {
    std::vector<std::uint8_t>& out;
    template <class T>
    void raw(T v) {
        std::uint8_t b[sizeof(T)];
        std::memcpy(b, &v, sizeof(T));  // little-endian hosts (x86, ARM LE): the file's order
        out.insert(out.end(), b, b + sizeof(T));
    }
    void u8(unsigned v) { raw(static_cast<std::uint8_t>(v)); }
    void u16(std::size_t v) { raw(static_cast<std::uint16_t>(v)); }
    void u32(std::size_t v) { raw(static_cast<std::uint32_t>(v)); }
    void i32(std::int32_t v) { raw(v); }
    void f32(float v) { raw(v); }
    void dims3(const dims& d) { u32(d.c), u32(d.h), u32(d.w); }
    void floats(const std::vector<float>& v) {
        u32(v.size());
        for (float x : v) f32(x);
    }
    void geometry(const conv_geometry& g) {
        u32(g.in_channels), u32(g.out_channels), u32(g.kernel_h), u32(g.kernel_w), u32(g.stride_h), u32(g.stride_w);
        u32(g.pad_h), u32(g.pad_w), u32(g.groups);
    }
};

struct reader {
    const std::uint8_t* p;
    std::size_t n, at = 0;
    bool ok = true;
    template <class T>
    T raw() {
        T v{};
        if (!ok || n - at < sizeof(T)) {
            ok = false;
            return v;
        }
        std::memcpy(&v, p + at, sizeof(T));
        at += sizeof(T);
        return v;
    }
    unsigned u8() { return raw<std::uint8_t>(); }
    std::size_t u16() { return raw<std::uint16_t>(); }
    std::size_t u32() { return raw<std::uint32_t>(); }
    std::int32_t i32() { return raw<std::int32_t>(); }
    float f32() { return raw<float>(); }
    dims dims3() {
        dims d;
        d.c = u32(), d.h = u32(), d.w = u32();
        return d;
    }
    /// A count of elements of `bytes` each that must fit in what is left.
    bool count(std::size_t& c, std::size_t bytes) {
        c = u32();
        if (ok && c > (n - at) / bytes) ok = false;
        return ok;
    }
    bool floats(std::vector<float>& v) {
        std::size_t c = 0;
        if (!count(c, 4)) return false;
        v.resize(c);
        for (auto& x : v) x = f32();
        return ok;
    }
    conv_geometry geometry() {
        conv_geometry g;
        g.in_channels = u32(), g.out_channels = u32(), g.kernel_h = u32(), g.kernel_w = u32();
        g.stride_h = u32(), g.stride_w = u32(), g.pad_h = u32(), g.pad_w = u32(), g.groups = u32();
        return g;
    }
};

inline bool finite(const std::vector<float>& v) noexcept {
    for (float x : v)
        if (!std::isfinite(x)) return false;
    return true;
}
inline bool same(const dims& a, const dims& b) noexcept { return a.c == b.c && a.h == b.h && a.w == b.w; }

/// The output of geometry g on input d (bad_shape when it does not fit).
inline status conv_dims(conv_geometry g, const dims& in, dims& out) noexcept {
    g.batch = 1, g.height = in.h, g.width = in.w;
    if (g.in_channels != in.c) return status::bad_shape;
    if (const status st = g.check(); st != status::ok) return st;
    out = dims{g.out_channels, g.out_h(), g.out_w()};
    return status::ok;
}

}  // namespace detail

/// Checks that the steps fit together (shapes, sizes, value finiteness): what run() relies on.
inline status validate(const int_network& net) noexcept {
    using detail::same;
    const dims in = net.input();
    constexpr std::size_t limit = 1u << 24;  // any single dimension or tensor beyond this is corrupt
    if (!in.c || !in.h || !in.w || in.size() > limit) return status::bad_shape;
    if (net.steps().empty()) return status::bad_shape;
    dims cur = in;
    bool codes = false;
    int pending_levels = 0;  // levels of the codes the current value holds
    std::vector<dims> saved;
    for (const step& s : net.steps()) {
        if (s.out.size() > limit || s.in.size() > limit) return status::bad_shape;
        // every step reads the current value, except add_relu, whose `in` is the saved one
        if (s.kind != step_kind::add_relu && !same(s.in, cur)) return status::bad_shape;
        dims o;
        switch (s.kind) {
            case step_kind::fp_conv: {
                if (codes) return status::bad_shape;
                if (const status st = detail::conv_dims(s.geo, s.in, o); st != status::ok) return st;
                if (!same(o, s.out) || s.w.size() != s.geo.weight_size() || s.b.size() != s.out.c) return status::bad_shape;
                if (!detail::finite(s.w) || !detail::finite(s.b)) return status::non_finite;
                break;
            }
            case step_kind::quantize:
                if (codes || !same(s.in, s.out)) return status::bad_shape;
                if (!std::isfinite(s.grid.lo) || !std::isfinite(s.grid.hi) || !std::isfinite(s.grid.inv_d) ||
                    !(s.grid.hi >= s.grid.lo) || !(s.grid.inv_d > 0))
                    return status::non_finite;
                if (s.grid.qn != 0 || s.grid.qp < 1 || s.grid.qp > 255) return status::bad_bit_width;
                codes = true;
                pending_levels = s.grid.levels();
                break;
            case step_kind::qconv: {
                if (!codes) return status::bad_shape;
                if (pending_levels != (1 << s.conv.act_bits())) return status::bad_bit_width;
                if (const status st = detail::conv_dims(s.conv.geometry(), s.in, o); st != status::ok) return st;
                if (!same(o, s.out)) return status::bad_shape;
                if (s.to_codes) {
                    if (s.th.channels() != s.out.c) return status::bad_shape;
                    pending_levels = s.th.levels();
                } else {
                    if (s.m_mul.size() != s.out.c || s.m_add.size() != s.out.c) return status::bad_shape;
                    if (!detail::finite(s.m_mul) || !detail::finite(s.m_add)) return status::non_finite;
                    codes = false;
                }
                break;
            }
            case step_kind::save:
                if (codes || !same(s.in, s.out)) return status::bad_shape;
                saved.push_back(s.in);
                break;
            case step_kind::add_relu: {
                if (codes || saved.empty()) return status::bad_shape;
                const dims b = saved.back();
                saved.pop_back();
                if (!same(s.in, b)) return status::bad_shape;
                if (!s.option_a) {
                    if (!same(b, s.out) || !same(s.out, cur)) return status::bad_shape;
                } else {
                    if (s.stride == 0 || s.stride > 64) return status::bad_shape;
                    const dims e{b.c + 2 * s.pad_c, (b.h + s.stride - 1) / s.stride, (b.w + s.stride - 1) / s.stride};
                    if (!same(e, cur) || !same(s.out, cur)) return status::bad_shape;
                }
                break;
            }
            case step_kind::global_pool:
                if (codes || s.out.c != s.in.c || s.out.h != 1 || s.out.w != 1) return status::bad_shape;
                break;
            case step_kind::fc:
                if (codes || s.fc_in != s.in.size() || s.fc_out == 0 || s.w.size() != s.fc_in * s.fc_out ||
                    s.b.size() != s.fc_out || s.out.c != s.fc_out || s.out.h != 1 || s.out.w != 1)
                    return status::bad_shape;
                if (!detail::finite(s.w) || !detail::finite(s.b)) return status::non_finite;
                break;
        }
        cur = s.kind == step_kind::add_relu ? cur : s.out;
    }
    if (codes || !saved.empty() || cur.h != 1 || cur.w != 1) return status::bad_shape;
    return status::ok;
}

/// The model file bytes of `net`.
inline status serialize(const int_network& net, std::vector<std::uint8_t>& out) {
    if (const status st = validate(net); st != status::ok) return st;
    std::vector<std::uint8_t> payload;
    detail::writer w{payload};
    w.dims3(net.input());
    w.u32(net.steps().size());
    for (const step& s : net.steps()) {
        w.u8(static_cast<unsigned>(s.kind));
        w.u8(s.relu);
        w.dims3(s.in);
        w.dims3(s.out);
        switch (s.kind) {
            case step_kind::fp_conv:
                w.geometry(s.geo);
                w.floats(s.w);
                w.floats(s.b);
                break;
            case step_kind::quantize:
                w.u8(static_cast<unsigned>(s.abits));
                w.f32(static_cast<float>(s.grid.lo)), w.f32(static_cast<float>(s.grid.hi));
                w.f32(static_cast<float>(s.grid.inv_d)), w.u16(static_cast<std::size_t>(s.grid.qp));
                break;
            case step_kind::qconv: {
                const int_conv& c = s.conv;
                w.u8(static_cast<unsigned>(c.weight_bits())), w.u8(static_cast<unsigned>(c.act_bits()));
                w.geometry(c.geometry());
                w.i32(c.form().mul), w.i32(c.form().offset);
                w.u32(c.packed_codes().size());
                payload.insert(payload.end(), c.packed_codes().begin(), c.packed_codes().end());
                w.u8(s.to_codes);
                if (s.to_codes) {
                    w.u16(static_cast<std::size_t>(s.th.levels()));
                    for (std::int32_t t : s.th.values()) w.i32(t);
                    for (unsigned char d : s.th.descending()) w.u8(d);
                } else {
                    for (float x : s.m_mul) w.f32(x);
                    for (float x : s.m_add) w.f32(x);
                }
                break;
            }
            case step_kind::save:
            case step_kind::global_pool: break;
            case step_kind::add_relu:
                w.u8(s.option_a), w.u32(s.stride), w.u32(s.pad_c);
                break;
            case step_kind::fc:
                w.u32(s.fc_in), w.u32(s.fc_out);
                w.floats(s.w);
                w.floats(s.b);
                break;
        }
    }
    // the header at fixed offsets (memcpy into a sized buffer: no growth path for GCC 12's
    // -Warray-bounds false positive on vector range inserts)
    out.assign(model_header_bytes + payload.size(), 0);
    const std::uint32_t version = model_file_version, crc = crc32(payload.data(), payload.size());
    const std::uint64_t size = payload.size();
    std::memcpy(out.data(), model_file_magic, 8);
    std::memcpy(out.data() + 8, &version, 4);
    std::memcpy(out.data() + 16, &size, 8);
    std::memcpy(out.data() + 24, &crc, 4);
    if (!payload.empty()) std::memcpy(out.data() + model_header_bytes, payload.data(), payload.size());
    return status::ok;
}

/// Parses model file bytes into `out`, packing the weights for kernel tier `tier`.
inline status deserialize(const std::uint8_t* data, std::size_t size, int_network& out, isa tier = isa::best) {
    if (size < model_header_bytes) return size >= 8 && std::memcmp(data, model_file_magic, 8) != 0 ? status::bad_magic : status::truncated;
    if (std::memcmp(data, model_file_magic, 8) != 0) return status::bad_magic;
    detail::reader h{data, size, 8};
    const std::size_t version = h.u32();
    (void)h.u32();
    const auto payload_size = h.raw<std::uint64_t>();
    const std::uint32_t crc = static_cast<std::uint32_t>(h.u32());
    if (version != model_file_version) return status::bad_version;
    if (payload_size > size - model_header_bytes) return status::truncated;
    if (payload_size < size - model_header_bytes) return status::bad_shape;  // trailing bytes
    const std::uint8_t* p = data + model_header_bytes;
    if (crc32(p, static_cast<std::size_t>(payload_size)) != crc) return status::bad_checksum;
    detail::reader r{p, static_cast<std::size_t>(payload_size)};
    int_network net;
    net.set_input(r.dims3());
    std::size_t count = 0;
    if (!r.count(count, 26)) return status::truncated;  // a step is at least 26 bytes
    for (std::size_t i = 0; i < count; ++i) {
        step s;
        const unsigned kind = r.u8();
        if (kind > static_cast<unsigned>(step_kind::fc)) return r.ok ? status::bad_shape : status::truncated;
        s.kind = static_cast<step_kind>(kind);
        s.relu = r.u8() != 0;
        s.in = r.dims3();
        s.out = r.dims3();
        switch (s.kind) {
            case step_kind::fp_conv:
                s.geo = r.geometry();
                r.floats(s.w);
                r.floats(s.b);
                break;
            case step_kind::quantize: {
                s.abits = static_cast<int>(r.u8());
                s.grid.lo = r.f32(), s.grid.hi = r.f32(), s.grid.inv_d = r.f32();
                s.grid.qn = 0;
                s.grid.qp = static_cast<double>(r.u16());
                if (r.ok && (!valid_bits(s.abits) || s.grid.qp != (1 << s.abits) - 1)) return status::bad_bit_width;
                break;
            }
            case step_kind::qconv: {
                const int wb = static_cast<int>(r.u8()), ab = static_cast<int>(r.u8());
                conv_geometry g = r.geometry();
                weight_form f;
                f.mul = r.i32(), f.offset = r.i32();
                std::size_t nb = 0;
                if (!r.count(nb, 1)) return status::truncated;
                if (!valid_bits(wb) || !valid_bits(ab)) return status::bad_bit_width;
                if (f.mul < 1 || f.mul > 2 || f.offset < 0 || f.offset > 255) return status::bad_shape;
                g.batch = 1, g.height = s.in.h, g.width = s.in.w;
                if (const status st = g.check(); st != status::ok) return st;
                if (g.weight_size() > (std::size_t{1} << 26) || nb != packed_bytes(wb, g.weight_size()))
                    return status::bad_shape;
                std::vector<std::uint8_t> codes(g.weight_size());
                unpack_codes(wb, p + r.at, g.weight_size(), codes.data());
                r.at += nb;
                if (const status st = int_conv::make(wb, ab, g, codes.data(), f, tier, s.conv); st != status::ok) return st;
                s.wbits = wb, s.abits = ab;
                s.to_codes = r.u8() != 0;
                const std::size_t C = s.out.c;
                if (!r.ok) return status::truncated;
                if (C != g.out_channels) return status::bad_shape;
                if (s.to_codes) {
                    const int levels = static_cast<int>(r.u16());
                    if (levels < 2 || levels > 256) return r.ok ? status::bad_bit_width : status::truncated;
                    if (r.n - r.at < C * (static_cast<std::size_t>(levels - 1) * 4 + 1)) return status::truncated;
                    std::vector<std::int32_t> t(C * static_cast<std::size_t>(levels - 1));
                    for (auto& v : t) v = r.i32();
                    std::vector<unsigned char> d(C);
                    for (auto& v : d) v = static_cast<unsigned char>(r.u8());
                    if (!r.ok) return status::truncated;
                    if (const status st = thresholds::from_values(C, levels, std::move(t), std::move(d), s.th);
                        st != status::ok)
                        return st;
                } else {
                    if (r.n - r.at < 8 * C) return status::truncated;
                    s.m_mul.resize(C), s.m_add.resize(C);
                    for (auto& v : s.m_mul) v = r.f32();
                    for (auto& v : s.m_add) v = r.f32();
                }
                break;
            }
            case step_kind::save:
            case step_kind::global_pool: break;
            case step_kind::add_relu:
                s.option_a = r.u8() != 0;
                s.stride = r.u32();
                s.pad_c = r.u32();
                break;
            case step_kind::fc:
                s.fc_in = r.u32(), s.fc_out = r.u32();
                r.floats(s.w);
                r.floats(s.b);
                break;
        }
        if (!r.ok) return status::truncated;
        net.steps().push_back(std::move(s));
    }
    if (r.at != r.n) return status::bad_shape;
    if (const status st = validate(net); st != status::ok) return st;
    out = std::move(net);
    return status::ok;
}

}  // namespace sqakd::deploy

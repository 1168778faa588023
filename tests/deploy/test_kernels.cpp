// Every packed integer GEMM kernel tier this CPU runs (generic, SSE4.1, AVX2, AVX-512 VNNI) is
// bit-exact with the scalar reference on the int32 outputs: random shapes with edge sizes (K and N
// not multiples of the k group or panel, single rows and columns), every required bit-width
// pair in both weight forms, and adversarial inputs (all codes at their extremes, K at the int32
// bound), and the W1A1 AND + popcount kernels likewise. Tiers the CPU lacks are skipped with a
// message.
#include <doctest/doctest.h>

#include "deploy_test_util.hpp"

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "sqakd/deploy/kernels/binary_layout.hpp"
#include "sqakd/deploy/kernels/generic/gemm_packed.hpp"
#include "sqakd/deploy/kernels/reference/gemm.hpp"
#include "sqakd/deploy/kernels/x86/amx/gemm.hpp"
#include "sqakd/deploy/kernels/x86/avx2/binary_gemm.hpp"
#include "sqakd/deploy/kernels/x86/avx2/gemm.hpp"
#include "sqakd/deploy/kernels/x86/avx512vnni/gemm.hpp"
#include "sqakd/deploy/kernels/x86/avx512vpopcntdq/binary_gemm.hpp"
#include "sqakd/deploy/kernels/x86/sse41/gemm.hpp"

using namespace sqakd::deploy;
using namespace sqakd::deploy::kernels;

namespace {
struct tier {
    std::string name;
    bool available;
    std::function<void(const gemm_args&)> run;
    bool int32_quads = false;  ///< packs as kind_for(.., true) (8-bit weights as biased bytes)
    std::size_t k_align = 0;   ///< packed_shape::k_align of the tier
};

std::vector<tier> tiers() {
    std::vector<tier> t{{"generic", true, [](const gemm_args& g) { generic::gemm(g); }},
                        {"generic (int32-quad packing)", true, [](const gemm_args& g) { generic::gemm(g); }, true}};
#ifdef SQAKD_DEPLOY_X86
    const auto& f = x86::cpu();
    t.push_back({"sse4.1", f.sse41, [](const gemm_args& g) { sse41::gemm(g); }});
    t.push_back({"avx2", f.avx2, [](const gemm_args& g) { avx2::gemm(g); }});
    t.push_back({"avx512vnni", f.avx512vnni, [](const gemm_args& g) { avx512vnni::gemm(g); }, true});
    t.push_back({"amx", f.amx_int8, [](const gemm_args& g) { amx::gemm(g); }, true, amx::k_align});
#endif
    return t;
}

/// Runs `tier` on A (m x k codes) and W (n x k codes) and returns C (m x n).
std::vector<std::int32_t> run_packed(const tier& t, int wbits, int abits, std::size_t m, std::size_t n, std::size_t k,
                                     const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& w,
                                     weight_form form) {
    packed_shape s;
    s.kind = kind_for(wbits, abits, t.int32_quads);
    s.bias = weight_bias(s.kind, wbits);
    s.k_align = t.k_align;
    s.n = n;
    s.k = k;
    const std::size_t lda = s.k_padded() + 3;  // rows padded with zeros, plus slack the kernel must not read as K
    std::vector<std::uint8_t> ap(m * lda, 0);
    for (std::size_t r = 0; r < m; ++r)
        for (std::size_t i = 0; i < k; ++i) ap[r * lda + i] = a[r * k + i];
    for (std::size_t r = 0; r < m; ++r)
        for (std::size_t i = s.k_padded(); i < lda; ++i) ap[r * lda + i] = 0xFF;  // poison beyond k_padded
    std::vector<std::int16_t> wp((s.bytes() + 1) / 2);
    REQUIRE(pack_weights(wbits, s, w.data(), k, wp.data()) == status::ok);
    std::vector<std::int32_t> sums(m), c(m * (n + 2), -7);
    row_sums(ap.data(), m, k, lda, sums.data());
    gemm_args g;
    g.m = m;
    g.a = ap.data();
    g.lda = lda;
    g.w = wp.data();
    g.shape = s;
    g.a_sum = sums.data();
    g.form = form;
    g.c = c.data();
    g.ldc = n + 2;
    t.run(g);
    for (std::size_t r = 0; r < m; ++r) {  // nothing written past n in a row
        CHECK(c[r * (n + 2) + n] == -7);
        CHECK(c[r * (n + 2) + n + 1] == -7);
    }
    std::vector<std::int32_t> out(m * n);
    for (std::size_t r = 0; r < m; ++r)
        for (std::size_t j = 0; j < n; ++j) out[r * n + j] = c[r * (n + 2) + j];
    return out;
}

std::vector<std::int32_t> run_reference(int wbits, int abits, std::size_t m, std::size_t n, std::size_t k,
                                        const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& w,
                                        weight_form form) {
    std::vector<std::int32_t> c(m * n);
    REQUIRE(reference::gemm(wbits, abits, m, n, k, a.data(), k, w.data(), k, form, c.data(), n) == status::ok);
    return c;
}


const int pairs[][2] = {{1, 1}, {2, 2}, {4, 4}, {8, 8}, {4, 8}, {2, 4}, {8, 4}, {6, 8}, {7, 8}, {3, 3}};
}  // namespace

TEST_CASE("kernel choice: vpmaddubsw only where the pair bound proves no int16 saturation") {
    CHECK(kind_for(8, 8) == operand_kind::words);  // 8-bit weights do not fit the signed operand
    CHECK(kind_for(8, 4) == operand_kind::words);
    CHECK(kind_for(7, 8) == operand_kind::words);  // 2 * 255 * 127 = 64770 > 32767
    CHECK(kind_for(6, 8) == operand_kind::bytes);  // 2 * 255 * 63 = 32130
    CHECK(kind_for(4, 8) == operand_kind::bytes);  // 2 * 255 * 15 = 7650
    CHECK(kind_for(4, 4) == operand_kind::bytes);
    CHECK(kind_for(1, 1) == operand_kind::bytes);
    // vpdpbusd / tdpbusd sum byte quads in int32: bytes for every pair, 8-bit codes biased by 128
    CHECK(kind_for(8, 8, true) == operand_kind::bytes);
    CHECK(kind_for(7, 8, true) == operand_kind::bytes);
    CHECK(weight_bias(operand_kind::bytes, 8) == 128);
    CHECK(weight_bias(operand_kind::bytes, 7) == 0);
    CHECK(weight_bias(operand_kind::words, 8) == 0);
    packed_shape s{operand_kind::bytes, 3, 5};
    std::vector<std::uint8_t> w(15, 255), out(s.bytes());
    CHECK(pack_weights(8, s, w.data(), 5, out.data()) == status::bad_bit_width);  // 8-bit bytes need bias 128
    packed_shape sb{operand_kind::bytes, 3, 5, 128};
    REQUIRE(pack_weights(8, sb, w.data(), 5, out.data()) == status::ok);
    CHECK(static_cast<std::int8_t>(out[0]) == 127);  // 255 - 128
    CHECK(static_cast<std::int8_t>(out[65]) == -128);  // k = 5 is padding: code 0 - 128, times a zero activation
    CHECK(pack_weights(7, sb, w.data(), 5, out.data()) == status::bad_bit_width);
    CHECK(pack_weights(4, s, w.data(), 5, out.data()) == status::code_out_of_range);
    CHECK(pack_weights(4, s, w.data(), 4, out.data()) == status::bad_shape);  // ldw < k
    CHECK(s.k_padded() == 8);
    CHECK(s.panels() == 1);
    CHECK(s.bytes() == 16 * 8);
}

TEST_CASE("code_sum (SWAR, 16-bit lanes folded every 1024 codes) equals the plain sum") {
    std::mt19937 g(5);
    std::vector<std::uint8_t> a(5003);
    for (const bool extreme : {false, true}) {
        for (auto& v : a) v = extreme ? 255 : static_cast<std::uint8_t>(g());
        for (std::size_t n = 0; n + 3 <= a.size(); n += n < 40 ? 1 : 97) {
            const std::uint8_t* p = a.data() + n % 3;  // unaligned starts too
            std::int64_t expect = 0;
            for (std::size_t i = 0; i < n; ++i) expect += p[i];
            INFO("n " << n << (extreme ? " all 255" : " random"));
            CHECK(code_sum(p, n) == expect);
        }
    }
}

TEST_CASE("packed GEMM kernels are bit-exact with the reference: random shapes, every pair, both forms") {
    std::mt19937 g(2024);
    // m up to 50: whole 16-row tiles (1 and 2 at a time) plus a tail for the AMX tier
    const std::size_t ms[] = {1, 3, 4, 5, 9, 17, 32, 50}, ns[] = {1, 15, 16, 17, 33, 64}, ks[] = {1, 3, 4, 5, 9, 64, 145, 577};
    for (const auto& t : tiers()) {
        if (!t.available) {
            MESSAGE("skipped: this CPU has no " << t.name);
            continue;
        }
        std::size_t cases = 0;
        for (const auto& p : pairs)
            for (const bool lsq : {false, true}) {
                const int wb = p[0], ab = p[1];
                const weight_form form = lsq ? weight_form::signed_biased(wb) : weight_form::odd_symmetric(wb);
                for (std::size_t trial = 0; trial < 6; ++trial) {
                    const std::size_t m = ms[g() % 8], n = ns[g() % 6], k = ks[(trial + g()) % 8];
                    INFO(t.name << " W" << wb << "A" << ab << std::string(lsq ? " lsq" : " interval") << " m " << m
                                << " n " << n << " k " << k);
                    const auto a = deploy_test::random_codes(g, ab, m * k), w = deploy_test::random_codes(g, wb, n * k);
                    CHECK(run_packed(t, wb, ab, m, n, k, a, w, form) == run_reference(wb, ab, m, n, k, a, w, form));
                    ++cases;
                }
            }
        MESSAGE(t.name << ": " << cases << " random cases");
    }
}

TEST_CASE("packed GEMM kernels: extreme codes, K at the int32 bound") {
    for (const auto& t : tiers()) {
        if (!t.available) continue;
        for (const auto& p : {std::pair<int, int>{8, 8}, {4, 8}, {6, 8}, {8, 4}, {4, 4}, {2, 2}}) {
            const int wb = p.first, ab = p.second;
            const weight_form form = weight_form::odd_symmetric(wb);
            std::size_t k = max_reduction(wb, ab, form);
            if (k > 300000) k = 300000;  // lower bit widths: far beyond any layer, memory stays small
            const std::size_t m = 37, n = 17;  // two whole 16-row tiles and a tail
            INFO(t.name << " W" << wb << "A" << ab << " k " << k);
            const std::vector<std::uint8_t> a(m * k, static_cast<std::uint8_t>((1 << ab) - 1));
            for (const int wcode : {(1 << wb) - 1, 0}) {
                const std::vector<std::uint8_t> w(n * k, static_cast<std::uint8_t>(wcode));
                const auto c = run_packed(t, wb, ab, m, n, k, a, w, form);
                const std::int64_t expect = static_cast<std::int64_t>(k) * form.value(static_cast<std::uint32_t>(wcode)) *
                                            ((1 << ab) - 1);
                bool all = true;
                for (const auto v : c) all = all && v == expect;
                CHECK(all);
            }
        }
    }
}

namespace {
struct binary_tier {
    std::string name;
    bool available;
    std::function<void(const binary_gemm_args&)> run;
};

std::vector<binary_tier> binary_tiers() {
    std::vector<binary_tier> t{{"generic", true, [](const binary_gemm_args& g) { generic::binary_gemm(g); }}};
#ifdef SQAKD_DEPLOY_X86
    const auto& f = x86::cpu();
    t.push_back({"avx2", f.avx2, [](const binary_gemm_args& g) { avx2::binary_gemm(g); }});
    t.push_back({"avx512vpopcntdq", f.avx512vpopcntdq,
                 [](const binary_gemm_args& g) { avx512vpopcntdq::binary_gemm(g); }});
#endif
    return t;
}

std::vector<std::int32_t> run_binary(const binary_tier& t, std::size_t m, std::size_t n, std::size_t k,
                                     const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& w) {
    binary_shape s{n, k};
    const std::size_t lda = s.words() + 1;  // one spare word per row, never read as K
    std::vector<std::uint64_t> ap(m * lda, ~std::uint64_t{0}), wp(s.weight_words());
    for (std::size_t r = 0; r < m; ++r) REQUIRE(pack_bit_rows(a.data() + r * k, 1, k, k, ap.data() + r * lda, s.words()) == status::ok);
    REQUIRE(pack_binary_weights(s, w.data(), k, wp.data()) == status::ok);
    std::vector<std::int32_t> c(m * n, -7);
    binary_gemm_args g;
    g.m = m;
    g.a = ap.data();
    g.lda = lda;
    g.w = wp.data();
    g.shape = s;
    g.c = c.data();
    g.ldc = n;
    t.run(g);
    return c;
}
}  // namespace

TEST_CASE("W1A1 AND + popcount kernels are bit-exact with the reference (2 popcount(k & a) - popcount(a))") {
    std::mt19937 g(99);
    const std::size_t ms[] = {1, 3, 4, 5, 9}, ns[] = {1, 7, 8, 9, 17, 33}, ks[] = {1, 63, 64, 65, 144, 577, 1000};
    for (const auto& t : binary_tiers()) {
        if (!t.available) {
            MESSAGE("skipped: this CPU has no " << t.name);
            continue;
        }
        for (std::size_t trial = 0; trial < 40; ++trial) {
            const std::size_t m = ms[g() % 5], n = ns[g() % 6], k = ks[trial % 7];
            INFO(t.name << " m " << m << " n " << n << " k " << k);
            const auto a = deploy_test::random_codes(g, 1, m * k), w = deploy_test::random_codes(g, 1, n * k);
            CHECK(run_binary(t, m, n, k, a, w) == run_reference(1, 1, m, n, k, a, w, weight_form::odd_symmetric(1)));
        }
        // extremes: all activations 1, all weights 1 (value +1) or 0 (value -1), long K
        const std::size_t m = 5, n = 9, k = 100000;
        const std::vector<std::uint8_t> a(m * k, 1);
        for (const std::uint8_t wc : {std::uint8_t(1), std::uint8_t(0)}) {
            const auto c = run_binary(t, m, n, k, a, std::vector<std::uint8_t>(n * k, wc));
            bool all = true;
            for (const auto v : c) all = all && v == (wc ? 1 : -1) * static_cast<std::int32_t>(k);
            CHECK(all);
        }
    }
    std::vector<std::uint8_t> bad{0, 2};
    std::uint64_t out[2];
    CHECK(pack_bit_rows(bad.data(), 1, 2, 2, out, 1) == status::code_out_of_range);
    CHECK(pack_bit_rows(bad.data(), 1, 2, 2, out, 0) == status::bad_shape);
}

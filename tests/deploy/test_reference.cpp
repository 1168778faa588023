// The deploy core's definitions: bit packing, weight forms, and the scalar reference integer
// GEMM and convolution, checked against double-precision dot products of the dequantized values
// and against each other (direct convolution vs im2col + GEMM).
#include <doctest/doctest.h>

#include "deploy_test_util.hpp"

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "sqakd/deploy/kernels/reference/conv2d.hpp"
#include "sqakd/deploy/kernels/reference/gemm.hpp"
#include "sqakd/deploy/packing.hpp"

using namespace sqakd::deploy;

namespace {

/// The dequantized value of a weight code, from the quantizers' definitions (SQAKD.md §3), not
/// from weight_form: interval/dorefa (2k - (L-1))/(L-1); lsq q * step with q = k - 2^(b-1), and
/// q = 2k - 1 in {-1, +1} at 1 bit.
double weight_value(bool lsq, int bits, std::uint8_t k, double step) {
    if (!lsq) return (2.0 * k - ((1 << bits) - 1)) / ((1 << bits) - 1);
    const double q = bits == 1 ? 2.0 * k - 1 : static_cast<double>(k) - (1 << (bits - 1));
    return q * step;
}
}  // namespace

TEST_CASE("packing: round trip, size ceil(n*b/8), zero tail bits, every bit width 1..8") {
    std::mt19937 g(7);
    for (int bits = 1; bits <= 8; ++bits)
        for (std::size_t n : {0u, 1u, 2u, 3u, 7u, 8u, 9u, 31u, 64u, 67u}) {
            INFO("bits " << bits << " n " << n);
            const auto codes = deploy_test::random_codes(g, bits, n);
            std::vector<std::uint8_t> packed(packed_bytes(bits, n) + 1, 0xAB);  // + a guard byte
            REQUIRE(packed_bytes(bits, n) == (n * static_cast<std::size_t>(bits) + 7) / 8);
            REQUIRE(pack_codes(bits, codes.data(), n, packed.data()) == status::ok);
            CHECK(packed.back() == 0xAB);  // nothing written past ceil(n*b/8)
            if (n * bits % 8) CHECK((packed[packed_bytes(bits, n) - 1] >> (n * bits % 8)) == 0);
            std::vector<std::uint8_t> back(n + 1, 0xCD);
            REQUIRE(unpack_codes(bits, packed.data(), n, back.data()) == status::ok);
            CHECK(back.back() == 0xCD);
            back.pop_back();
            CHECK(back == codes);
        }
}

TEST_CASE("packing: the documented little-endian bit-stream layout") {
    const std::uint8_t c2[] = {1, 2, 3, 0, 1};
    std::uint8_t p2[2];
    REQUIRE(pack_codes(2, c2, 5, p2) == status::ok);
    CHECK(p2[0] == (1 | 2 << 2 | 3 << 4 | 0 << 6));
    CHECK(p2[1] == 1);
    const std::uint8_t c3[] = {5, 6, 7};  // 3 bits: the third code straddles bytes 0 and 1
    std::uint8_t p3[2];
    REQUIRE(pack_codes(3, c3, 3, p3) == status::ok);
    CHECK(p3[0] == ((5 | 6 << 3 | 7 << 6) & 0xff));
    CHECK(p3[1] == (7 >> 2));
    const std::uint8_t c1[] = {1, 0, 0, 1, 1, 0, 1, 0, 1};
    std::uint8_t p1[2];
    REQUIRE(pack_codes(1, c1, 9, p1) == status::ok);
    CHECK(p1[0] == 0x59);
    CHECK(p1[1] == 0x01);
}

TEST_CASE("packing: out-of-range codes and bit widths are refused") {
    std::uint8_t out[4];
    for (int bits = 1; bits <= 7; ++bits) {
        const std::uint8_t bad[] = {0, static_cast<std::uint8_t>(1 << bits)};
        CHECK(pack_codes(bits, bad, 2, out) == status::code_out_of_range);
        CHECK(reference::check_codes(bits, bad, 2) == status::code_out_of_range);
        CHECK(reference::check_codes(bits, bad, 1) == status::ok);
    }
    const std::uint8_t c[] = {0};
    CHECK(pack_codes(0, c, 1, out) == status::bad_bit_width);
    CHECK(pack_codes(9, c, 1, out) == status::bad_bit_width);
    CHECK(unpack_codes(9, out, 1, out) == status::bad_bit_width);
    CHECK(std::string(describe(status::code_out_of_range)).find("bit width") != std::string::npos);
}

TEST_CASE("weight forms: interval/dorefa odd levels, lsq biased two's complement, lsq 1-bit {-1, +1}") {
    const auto i2 = weight_form::odd_symmetric(2);
    CHECK(i2.value(0) == -3);
    CHECK(i2.value(1) == -1);
    CHECK(i2.value(2) == 1);
    CHECK(i2.value(3) == 3);
    CHECK(weight_form::odd_symmetric(8).value(255) == 255);  // outside int8: why codes stay unsigned
    const auto l4 = weight_form::signed_biased(4);
    CHECK(l4.value(0) == -8);
    CHECK(l4.value(8) == 0);
    CHECK(l4.value(15) == 7);
    const auto l1 = weight_form::signed_biased(1);
    CHECK(l1.value(0) == -1);
    CHECK(l1.value(1) == 1);
    CHECK(max_reduction(8, 8, weight_form::odd_symmetric(8)) == 16512);
    CHECK(max_reduction(1, 1, weight_form::odd_symmetric(1)) == 1073741823);
}

TEST_CASE("reference GEMM equals the double-precision dot product of the dequantized values") {
    std::mt19937 g(11);
    const int pairs[][2] = {{1, 1}, {2, 2}, {4, 4}, {8, 8}, {4, 8}, {2, 4}, {8, 4}, {3, 5}};
    for (const auto& p : pairs)
        for (const bool lsq : {false, true}) {
            const int wb = p[0], ab = p[1];
            const weight_form f = lsq ? weight_form::signed_biased(wb) : weight_form::odd_symmetric(wb);
            std::uniform_int_distribution<std::size_t> dim(1, 40);
            const std::size_t M = dim(g), N = dim(g), K = dim(g) * 7;
            INFO("W" << wb << "A" << ab << std::string(lsq ? " lsq" : " interval") << " M " << M << " N " << N << " K " << K);
            const auto A = deploy_test::random_codes(g, ab, M * K), W = deploy_test::random_codes(g, wb, N * K);
            std::vector<std::int32_t> C(M * N);
            REQUIRE(reference::gemm(wb, ab, M, N, K, A.data(), K, W.data(), K, f, C.data(), N) == status::ok);
            const double sa = 1.0 / ((1 << ab) - 1), sw_lsq = 0.037;
            // what an integer output is worth: interval 1/((Lw-1)(La-1)), lsq step_w * step_a
            const double unit = lsq ? sw_lsq * sa : sa / ((1 << wb) - 1);
            for (std::size_t m = 0; m < M; ++m)
                for (std::size_t n = 0; n < N; ++n) {
                    double ref = 0;
                    for (std::size_t k = 0; k < K; ++k)
                        ref += weight_value(lsq, wb, W[n * K + k], sw_lsq) * (A[m * K + k] * sa);
                    CHECK(C[m * N + n] * unit == doctest::Approx(ref).epsilon(1e-12));
                }
        }
}

TEST_CASE("reference GEMM: extreme codes at the int32 bound are exact; one element more is refused") {
    for (const auto& p : {std::pair<int, int>{8, 8}, {4, 8}, {8, 4}, {4, 4}}) {
        const int wb = p.first, ab = p.second;
        const weight_form f = weight_form::odd_symmetric(wb);
        const std::size_t K = max_reduction(wb, ab, f);
        INFO("W" << wb << "A" << ab << " K " << K);
        if (K > 20000000) continue;
        const std::vector<std::uint8_t> a(K, static_cast<std::uint8_t>((1 << ab) - 1));
        for (const std::uint8_t kw : {std::uint8_t((1 << wb) - 1), std::uint8_t(0)}) {
            const std::vector<std::uint8_t> w(K, kw);
            std::int32_t c = 0;
            REQUIRE(reference::gemm(wb, ab, 1, 1, K, a.data(), K, w.data(), K, f, &c, 1) == status::ok);
            const std::int64_t expect = static_cast<std::int64_t>(K) * f.value(kw) * ((1 << ab) - 1);
            CHECK(c == expect);
        }
        std::vector<std::uint8_t> a1(K + 1, 1), w1(K + 1, 1);
        std::int32_t c = 0;
        CHECK(reference::gemm(wb, ab, 1, 1, K + 1, a1.data(), K + 1, w1.data(), K + 1, f, &c, 1) == status::bad_shape);
    }
    std::uint8_t z = 0;
    std::int32_t c = 0;
    CHECK(reference::gemm(9, 8, 1, 1, 1, &z, 1, &z, 1, {}, &c, 1) == status::bad_bit_width);
    CHECK(reference::gemm(8, 8, 0, 1, 1, &z, 1, &z, 1, {}, &c, 1) == status::bad_shape);
    CHECK(reference::gemm(8, 8, 1, 1, 2, &z, 1, &z, 2, {}, &c, 1) == status::bad_shape);  // lda < K
}

TEST_CASE("reference conv2d equals im2col + reference GEMM (1x1, 3x3, stride 2, padding, groups, batch)") {
    std::mt19937 g(5);
    struct cfg {
        std::size_t batch, h, w, cin, cout, k, stride, pad, groups;
    };
    const cfg cases[] = {{1, 7, 7, 16, 16, 3, 1, 1, 1}, {2, 14, 14, 16, 32, 3, 2, 1, 1}, {1, 8, 8, 16, 32, 1, 2, 0, 1},
                         {1, 5, 6, 8, 8, 3, 1, 1, 8},   {2, 9, 7, 12, 6, 3, 2, 1, 3},   {1, 4, 4, 3, 5, 3, 1, 0, 1},
                         {1, 1, 1, 64, 10, 1, 1, 0, 1}};
    for (const auto& c : cases)
        for (const int bits : {1, 2, 4, 8}) {
            conv_geometry geo;
            geo.batch = c.batch, geo.height = c.h, geo.width = c.w, geo.in_channels = c.cin, geo.out_channels = c.cout;
            geo.kernel_h = geo.kernel_w = c.k, geo.stride_h = geo.stride_w = c.stride, geo.pad_h = geo.pad_w = c.pad;
            geo.groups = c.groups;
            INFO("h " << c.h << " w " << c.w << " cin " << c.cin << " cout " << c.cout << " k " << c.k << " stride "
                      << c.stride << " groups " << c.groups << " bits " << bits);
            REQUIRE(geo.check() == status::ok);
            const auto x = deploy_test::random_codes(g, bits, geo.input_size()), w = deploy_test::random_codes(g, bits, geo.weight_size());
            const weight_form f = weight_form::odd_symmetric(bits);
            std::vector<std::int32_t> y(geo.output_size());
            REQUIRE(reference::conv2d(bits, bits, geo, x.data(), w.data(), f, y.data()) == status::ok);
            // im2col per group: rows = output pixels, columns = (ky, kx, ci) like the weights
            const std::size_t oh = geo.out_h(), ow = geo.out_w(), K = geo.reduction(), cig = geo.in_per_group(),
                              cog = geo.out_per_group();
            for (std::size_t gi = 0; gi < geo.groups; ++gi) {
                const std::size_t M = geo.batch * oh * ow;
                std::vector<std::uint8_t> cols(M * K, 0);
                for (std::size_t n = 0; n < geo.batch; ++n)
                    for (std::size_t oy = 0; oy < oh; ++oy)
                        for (std::size_t ox = 0; ox < ow; ++ox)
                            for (std::size_t ky = 0; ky < c.k; ++ky)
                                for (std::size_t kx = 0; kx < c.k; ++kx)
                                    for (std::size_t ci = 0; ci < cig; ++ci) {
                                        const long iy = long(oy * c.stride + ky) - long(c.pad);
                                        const long ix = long(ox * c.stride + kx) - long(c.pad);
                                        if (iy < 0 || ix < 0 || iy >= long(c.h) || ix >= long(c.w)) continue;
                                        cols[((n * oh + oy) * ow + ox) * K + (ky * c.k + kx) * cig + ci] =
                                            x[((n * c.h + std::size_t(iy)) * c.w + std::size_t(ix)) * c.cin + gi * cig + ci];
                                    }
                std::vector<std::int32_t> yg(M * cog);
                REQUIRE(reference::gemm(bits, bits, M, cog, K, cols.data(), K, w.data() + gi * cog * K, K, f, yg.data(),
                                        cog) == status::ok);
                bool same = true;
                for (std::size_t m = 0; m < M; ++m)
                    for (std::size_t o = 0; o < cog; ++o) same = same && yg[m * cog + o] == y[m * c.cout + gi * cog + o];
                CHECK(same);
            }
        }
}

TEST_CASE("conv geometry: zero sizes, channels not divisible by groups and oversized kernels are refused") {
    conv_geometry g;
    g.height = g.width = 4, g.in_channels = 6, g.out_channels = 4;
    CHECK(g.check() == status::ok);
    CHECK(g.out_h() == 4);
    g.groups = 4;
    CHECK(g.check() == status::bad_shape);
    g.groups = 2;
    CHECK(g.check() == status::ok);
    g.pad_h = g.pad_w = 0, g.kernel_h = 5;
    CHECK(g.check() == status::bad_shape);
    g.kernel_h = 3, g.batch = 0;
    CHECK(g.check() == status::bad_shape);
    std::uint8_t z = 0;
    std::int32_t y = 0;
    CHECK(reference::conv2d(8, 8, g, &z, &z, {}, &y) == status::bad_shape);
}

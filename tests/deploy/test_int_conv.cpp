// deploy::int_conv (im2col blocks + packed GEMM of each tier) against the reference direct
// convolution, bit-exact on the int32 outputs, for the required bit-width pairs over edge
// geometries; an int_conv shared by two threads; refused inputs.
#include <doctest/doctest.h>

#include "deploy_test_util.hpp"

#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "sqakd/deploy/int_conv.hpp"
#include "sqakd/deploy/kernels/reference/conv2d.hpp"

using namespace sqakd::deploy;

namespace {

conv_geometry geometry(std::size_t batch, std::size_t h, std::size_t w, std::size_t cin, std::size_t cout,
                       std::size_t k, std::size_t stride, std::size_t pad, std::size_t groups) {
    conv_geometry g;
    g.batch = batch, g.height = h, g.width = w, g.in_channels = cin, g.out_channels = cout;
    g.kernel_h = g.kernel_w = k, g.stride_h = g.stride_w = stride, g.pad_h = g.pad_w = pad, g.groups = groups;
    return g;
}
}  // namespace

TEST_CASE("int_conv equals the reference convolution for every tier, pair and edge geometry") {
    std::mt19937 rng(31);
    const conv_geometry geos[] = {
        geometry(1, 28, 28, 16, 16, 3, 1, 1, 1),  // ResNet-20 stage 1 (784 rows: many row blocks)
        geometry(2, 14, 14, 16, 32, 3, 2, 1, 1),  // stride 2, batch 2
        geometry(1, 7, 7, 64, 64, 3, 1, 1, 1),    // K = 576
        geometry(1, 28, 28, 16, 16, 3, 1, 1, 1),  // ResNet-20's first stage: 13 row blocks
        geometry(3, 10, 9, 128, 20, 3, 1, 1, 1),  // AMX direct path: batch 3, two 64-channel chunks
        geometry(2, 6, 7, 12, 33, 3, 1, 0, 1),    // AMX direct path: no padding, 12 channels, 3 panels
        geometry(2, 28, 28, 16, 32, 3, 2, 1, 1),  // stride 2 (AMX: two row phases), even padded width
        geometry(1, 9, 11, 32, 17, 3, 2, 1, 1),   // stride 2, odd sizes (padded width rounded up)
        geometry(1, 13, 10, 8, 5, 5, 3, 2, 1),    // stride 3, 5x5 kernel
        geometry(1, 9, 9, 32, 24, 1, 1, 0, 1),    // 1x1 direct path (no im2col)
        geometry(1, 8, 8, 16, 16, 1, 2, 0, 1),    // 1x1 stride 2
        geometry(1, 5, 6, 8, 8, 3, 1, 1, 8),      // depthwise-like groups
        geometry(2, 9, 7, 12, 6, 3, 2, 1, 3),     // groups 3, odd sizes
        geometry(1, 6, 5, 3, 17, 3, 1, 0, 1),     // K = 27, N = 17: neither a whole k group nor panel
        geometry(1, 1, 1, 64, 10, 1, 1, 0, 1),    // one pixel
    };
    const int pairs[][2] = {{1, 1}, {2, 2}, {4, 4}, {8, 8}, {4, 8}, {2, 8}, {8, 2}};
    for (const isa t : {isa::generic, isa::sse41, isa::avx2, isa::avx512, isa::amx}) {
        for (const auto& p : pairs) {
            const int wb = p[0], ab = p[1];
            if (!isa_available(t, wb == 1 && ab == 1)) {
                MESSAGE("skipped W" << wb << "A" << ab << " on " << std::string(isa_name(t)) << ": not available on this CPU");
                continue;
            }
            for (const auto& geo : geos)
                for (const bool lsq : {false, true}) {
                    const weight_form f = lsq ? weight_form::signed_biased(wb) : weight_form::odd_symmetric(wb);
                    INFO(isa_name(t) << " W" << wb << "A" << ab << std::string(lsq ? " lsq" : " interval") << " hw "
                                     << geo.height << "x" << geo.width << " cin " << geo.in_channels << " cout "
                                     << geo.out_channels << " k " << geo.kernel_h << " s " << geo.stride_h << " groups "
                                     << geo.groups << " batch " << geo.batch);
                    const auto x = deploy_test::random_codes(rng, ab, geo.input_size()), w = deploy_test::random_codes(rng, wb, geo.weight_size());
                    std::vector<std::int32_t> ref(geo.output_size()), y(geo.output_size(), -1);
                    REQUIRE(reference::conv2d(wb, ab, geo, x.data(), w.data(), f, ref.data()) == status::ok);
                    int_conv conv;
                    REQUIRE(int_conv::make(wb, ab, geo, w.data(), f, t, conv) == status::ok);
                    CHECK(conv.tier() == t);
                    std::vector<unsigned char> ws(conv.workspace_bytes());
                    REQUIRE(conv.run(geo.batch, geo.height, geo.width, x.data(), y.data(), ws.data()) == status::ok);
                    CHECK(y == ref);
                }
        }
    }
}

TEST_CASE("int_conv: one made convolution, two threads with their own workspaces, same answers") {
    std::mt19937 rng(8);
    const conv_geometry geo = geometry(4, 14, 14, 32, 32, 3, 1, 1, 1);
    const auto x = deploy_test::random_codes(rng, 4, geo.input_size()), w = deploy_test::random_codes(rng, 4, geo.weight_size());
    int_conv conv;
    REQUIRE(int_conv::make(4, 4, geo, w.data(), weight_form::odd_symmetric(4), isa::best, conv) == status::ok);
    std::vector<std::int32_t> ref(geo.output_size());
    REQUIRE(reference::conv2d(4, 4, geo, x.data(), w.data(), weight_form::odd_symmetric(4), ref.data()) == status::ok);
    std::vector<std::int32_t> y1(geo.output_size()), y2(geo.output_size());
    auto work = [&](std::vector<std::int32_t>& y) {
        std::vector<unsigned char> ws(conv.workspace_bytes());
        for (int rep = 0; rep < 5; ++rep) (void)conv.run(geo.batch, geo.height, geo.width, x.data(), y.data(), ws.data());
    };
    std::thread a(work, std::ref(y1)), b(work, std::ref(y2));
    a.join();
    b.join();
    CHECK(y1 == ref);
    CHECK(y2 == ref);
}

TEST_CASE("int_conv refuses bad bit widths, codes, shapes and reductions beyond the int32 bound") {
    const conv_geometry geo = geometry(1, 4, 4, 4, 4, 3, 1, 1, 1);
    std::vector<std::uint8_t> w(geo.weight_size(), 1);
    int_conv c;
    CHECK(int_conv::make(0, 4, geo, w.data(), {}, isa::generic, c) == status::bad_bit_width);
    CHECK(int_conv::make(4, 9, geo, w.data(), {}, isa::generic, c) == status::bad_bit_width);
    w[5] = 16;
    CHECK(int_conv::make(4, 4, geo, w.data(), {}, isa::generic, c) == status::code_out_of_range);
    w[5] = 2;
    CHECK(int_conv::make(1, 1, geo, w.data(), weight_form::odd_symmetric(1), isa::generic, c) == status::code_out_of_range);
    conv_geometry bad = geo;
    bad.groups = 3;
    CHECK(int_conv::make(4, 4, bad, w.data(), {}, isa::generic, c) == status::bad_shape);
    conv_geometry wide = geometry(1, 3, 3, 2048, 1, 3, 1, 1, 1);  // K = 18432 > 16512 at W8A8
    std::vector<std::uint8_t> ww(wide.weight_size(), 0);
    CHECK(int_conv::make(8, 8, wide, ww.data(), weight_form::odd_symmetric(8), isa::generic, c) == status::bad_shape);
    REQUIRE(int_conv::make(2, 2, geo, w.data(), weight_form::odd_symmetric(2), isa::generic, c) == status::ok);
    std::vector<std::uint8_t> x(16 * 4);
    std::vector<std::int32_t> y(16 * 4);
    std::vector<unsigned char> ws(c.workspace_bytes());
    CHECK(c.run(1, 0, 4, x.data(), y.data(), ws.data()) == status::bad_shape);
    CHECK(c.run(1, 4, 4, x.data(), y.data(), ws.data()) == status::ok);
}

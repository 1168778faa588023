// Threshold requantization equals the real-arithmetic composition it replaces (affine, ReLU,
// clamp, round half to even) for every integer output in a range, per channel, for positive,
// negative and zero multipliers and grids of 1 to 8 bits; act_grid::code matches the trainer.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "sqakd/deploy/requant.hpp"
#include "sqakd/quant/fake_quant.hpp"
#include "sqakd/quant/presets.hpp"

using namespace sqakd;
using deploy::act_grid;
using deploy::status;
using deploy::thresholds;

TEST_CASE("thresholds reproduce relu + clamp + round-half-even of M*acc + B for every acc") {
    std::mt19937 g(3);
    std::uniform_real_distribution<double> u(-1, 1);
    std::size_t compared = 0, ties = 0;
    for (int bits = 1; bits <= 8; ++bits)
        for (const bool relu : {true, false})
            for (int trial = 0; trial < 4; ++trial) {
                act_grid grid;
                grid.lo = trial == 0 ? 0.0 : 0.3 * u(g);
                grid.hi = grid.lo + 0.5 + std::fabs(u(g)) * 3;
                grid.qn = 0;
                grid.qp = (1 << bits) - 1;
                grid.inv_d = grid.qp / (grid.hi - grid.lo);
                const std::size_t C = 5;
                std::vector<double> M(C), B(C);
                for (std::size_t c = 0; c < C; ++c) {
                    M[c] = c == 3 ? 0.0 : u(g) * 1e-3;  // one channel with a zero multiplier
                    if (c == 4) M[c] = -std::fabs(M[c]) - 1e-4;  // and one negative (BN gamma < 0)
                    B[c] = u(g) * 2;
                }
                thresholds t;
                REQUIRE(thresholds::make(M, B, relu, grid, t) == status::ok);
                for (std::size_t c = 0; c < C; ++c)
                    for (std::int32_t acc = -6000; acc <= 6000; acc += 1) {
                        const double z = M[c] * acc + B[c];
                        const double r = relu ? std::max(z, 0.0) : z;
                        const double v = (std::min(std::max(r, grid.lo), grid.hi) - grid.lo) * grid.inv_d + grid.qn;
                        if (std::fabs(v - std::floor(v) - 0.5) < 1e-9) {  // an exact midpoint: the documented tie
                            ++ties;
                            continue;
                        }
                        const int expect = static_cast<int>(std::nearbyint(v) - grid.qn);
                        const int got = t.code(c, acc);
                        std::int32_t pix[5] = {acc, acc, acc, acc, acc};
                        std::uint8_t all[5];
                        t.codes(pix, all);  // the per-pixel path (linear count up to 16 levels)
                        if (all[c] != got) CHECK(int(all[c]) == got);
                        if (got != expect) {
                            INFO("bits " << bits << " relu " << relu << " c " << c << " acc " << acc << " v " << v);
                            CHECK(got == expect);
                        }
                        ++compared;
                    }
            }
    MESSAGE(compared << " outputs compared, " << ties << " exact ties skipped");
    CHECK(compared > 1000000);
    std::vector<double> M{std::nan("")}, B{0};
    thresholds t;
    CHECK(thresholds::make(M, B, true, act_grid{}, t) == status::non_finite);
}

TEST_CASE("act_grid::code gives the trainer's activation codes (interval, lsq, pact)") {
    std::mt19937 g(4);
    std::normal_distribution<float> n(0.5f, 1.0f);
    tensor<float> x(shape_t{2, 3, 5, 5});
    for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = std::max(0.0f, n(g));
    auto check = [&](auto q) {
        q.calibrate(x);
        std::vector<int> codes;
        q.codes(x, codes);
        const quant::grid gr = q.grid_of(0);
        act_grid a{gr.lo, gr.hi, gr.inv_d, gr.qn, gr.qp};
        bool same = true;
        std::vector<std::uint8_t> fast(x.size());
        a.codes(x.data(), x.size(), fast.data());  // the vectorised form
        for (std::size_t i = 0; i < x.size(); ++i)
            same = same && int(a.code(x.data()[i])) == codes[i] - int(gr.qn) && fast[i] == a.code(x.data()[i]);
        CHECK(same);
    };
    check(quant::interval_act<4>::type<float>(std::size_t{1}));
    check(quant::interval_act<2>::type<float>(std::size_t{1}));
    check(quant::lsq_act<4>::type<float>(std::size_t{1}));
    check(quant::pact_act<3>::type<float>(std::size_t{1}));
}

TEST_CASE("thresholds::code counts the thresholds passed exactly, however uneven they are") {
    // code() walks from a float estimate fitted to the thresholds' spacing: uneven spacing, runs
    // of equal thresholds, "always" / "never" entries and descending channels must not change the
    // count, only the walk's length
    std::mt19937 g(11);
    constexpr std::int32_t big = 2147483647;
    for (const int levels : {17, 64, 256}) {
        const std::size_t C = 6, n = static_cast<std::size_t>(levels - 1);
        std::vector<std::int32_t> t(C * n);
        std::vector<unsigned char> desc(C);
        for (std::size_t c = 0; c < C; ++c) {
            desc[c] = c % 2;
            std::int32_t v = -5000 + static_cast<std::int32_t>(g() % 1000);
            for (std::size_t j = 0; j < n; ++j) {
                v += static_cast<std::int32_t>(c == 2 ? (j % 7 ? 0 : g() % 4000) : g() % (c == 4 ? 3 : 400));
                t[c * n + j] = v;
            }
            if (c == 3) t[c * n] = -big, t[c * n + n - 1] = big;  // always / never at the ends
            if (desc[c]) std::reverse(t.begin() + static_cast<long>(c * n), t.begin() + static_cast<long>(c * n + n));
        }
        thresholds th;
        REQUIRE(thresholds::from_values(C, levels, t, desc, th) == status::ok);
        for (std::size_t c = 0; c < C; ++c)
            for (int i = 0; i < 4000; ++i) {
                const std::int32_t acc = i < 4 ? (i % 2 ? big : -big) : static_cast<std::int32_t>(g() % 400000) - 200000;
                unsigned expect = 0;
                for (std::size_t j = 0; j < n; ++j) expect += desc[c] ? acc <= t[c * n + j] : acc >= t[c * n + j];
                INFO("levels " << levels << " channel " << c << " acc " << acc);
                REQUIRE(th.code(c, acc) == expect);
            }
        // and codes() over many pixels at once (its window + walk path beyond 16 levels)
        const std::size_t P = 500;
        std::vector<std::int32_t> accs(P * C);
        for (auto& a : accs) a = static_cast<std::int32_t>(g() % 400000) - 200000;
        std::vector<std::uint8_t> got(P * C);
        th.codes(accs.data(), got.data(), P);
        std::size_t wrong = 0;
        for (std::size_t p = 0; p < P; ++p)
            for (std::size_t c = 0; c < C; ++c) {
                unsigned expect = 0;
                const std::int32_t acc = accs[p * C + c];
                for (std::size_t j = 0; j < n; ++j) expect += desc[c] ? acc <= t[c * n + j] : acc >= t[c * n + j];
                wrong += got[p * C + c] != expect;
            }
        CHECK_MESSAGE(wrong == 0, "levels " << levels);
    }
}

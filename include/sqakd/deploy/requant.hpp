// sqakd/deploy/requant.hpp - from a quantized layer's int32 outputs to what follows it.
//
// A quantized conv's real output (conv bias, output scale and the following BatchNorm folded)
// is per channel an affine function of its integer output:  z = M[c] * acc + B[c].
//
// Into the next layer's codes (when ReLU and another quantized conv follow): per-channel integer
// thresholds. The next activation quantizer computes code = round_half_even(v) - qn with
// v = (clamp(relu(z), lo, hi) - lo) * inv_d + qn; code >= j exactly when v >= j - 1/2, i.e. when
// z >= t_j = lo + (j - 1/2 - qn) / inv_d (t_j <= lo: always; t_j > hi: never; t_j <= 0 after
// ReLU: always). With M > 0 that is acc >= T_j = ceil((t_j - B) / M); with M < 0 (a negative
// BatchNorm gamma) acc <= floor((t_j - B) / M). The thresholds are computed once in double.
// Error bound: none with respect to real arithmetic on the exported parameters: the codes are
// those of the exact z, except exactly at a midpoint (v = j - 1/2, where the threshold rounds
// up and round-half-even might round down) and where double cannot separate (t_j - B)/M from an
// integer (relative 1e-16). The fake-quantized student computes z in float32 (its own rounding
// order, relative error ~1e-6 of |z|), so a code can differ from the student's only for a z
// within that float error of a midpoint; the logit difference this causes is measured by the
// agreement test of the committed students.
//
// Into floats (when the residual add follows): z = M[c] * acc + B[c] in float32.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "sqakd/deploy/status.hpp"

namespace sqakd::deploy {

/// The activation grid of a quantizer (quant::grid restricted to what inference needs):
/// code = nearbyint((clamp(x, lo, hi) - lo) * inv_d + qn) - qn, in float as the trainer does.
struct act_grid {
    double lo = 0, hi = 1, inv_d = 1, qn = 0, qp = 1;
    int levels() const noexcept { return static_cast<int>(qp - qn) + 1; }

    /// The code of x, computed with the same float operations as quant::fake_quant's forward
    /// (so that a float input gives the student's code exactly).
    std::uint8_t code(float x) const noexcept {
        const float l = static_cast<float>(lo), h = static_cast<float>(hi), id = static_cast<float>(inv_d),
                    n = static_cast<float>(qn);
        const float xc = std::fmin(std::fmax(x, l), h);
        return static_cast<std::uint8_t>(std::nearbyint((xc - l) * id + n) - n);
    }

    /// code() over n values, in a form the compiler vectorises: round half to even by adding and
    /// subtracting 1.5 * 2^23 (exact in float32 round-to-nearest-even for |v| < 2^22, here
    /// v <= 255), the same result as std::nearbyint in the default rounding mode. NaN inputs are
    /// clamped like the trainer's std::min/std::max would not be: callers feed finite floats.
    void codes(const float* x, std::size_t n, std::uint8_t* out) const noexcept {
        const float l = static_cast<float>(lo), h = static_cast<float>(hi), id = static_cast<float>(inv_d),
                    q0 = static_cast<float>(qn);
        constexpr float magic = 12582912.0f;  // 1.5 * 2^23
        for (std::size_t i = 0; i < n; ++i) {
            const float xc = std::min(std::max(x[i], l), h);
            const float v = (xc - l) * id + q0;
            out[i] = static_cast<std::uint8_t>(static_cast<int>((v + magic) - magic) - static_cast<int>(q0));
        }
    }
};

/// Per-channel thresholds from the int32 output of a layer to the next layer's codes.
class thresholds {
public:
    /// M, B: per-channel affine (z = M * acc + B); relu: whether ReLU comes before the next
    /// quantizer; next: that quantizer's grid. non_finite when M or B is NaN/Inf.
    static status make(const std::vector<double>& M, const std::vector<double>& B, bool relu, const act_grid& next,
                       thresholds& out) {
        if (M.size() != B.size() || M.empty()) return status::bad_shape;
        const int L = next.levels();
        if (L < 2 || L > 256) return status::bad_bit_width;
        thresholds t;
        t.m_channels = M.size();
        t.m_levels = L;
        t.m_t.assign(M.size() * static_cast<std::size_t>(L - 1), 0);
        t.m_descending.assign(M.size(), 0);
        // INT32_MIN / INT32_MAX: no integer output reaches them (max_reduction keeps |acc| below
        // 2^31 - 1), so "acc >= big" is never and "acc >= -big" always true (and conversely).
        constexpr std::int64_t big = 2147483647;
        for (std::size_t c = 0; c < M.size(); ++c) {
            if (!std::isfinite(M[c]) || !std::isfinite(B[c])) return status::non_finite;
            t.m_descending[c] = M[c] < 0;
            for (int j = 1; j < L; ++j) {
                const double tj = next.lo + (j - 0.5) / next.inv_d;  // in z units (qn cancels: v - qn = j - 1/2)
                std::int64_t T;  // in [-big - 1, big] after the clamps below
                bool always = tj <= next.lo || (relu && tj <= 0);
                const bool never = tj > next.hi;
                if (always && !never) {
                    T = M[c] < 0 ? big : -big;
                } else if (never) {
                    T = M[c] < 0 ? -big : big;
                } else if (M[c] == 0) {
                    T = B[c] >= tj ? (M[c] < 0 ? big : -big) : big;
                    t.m_descending[c] = 0;
                } else {
                    const double r = (tj - B[c]) / M[c];
                    const double rr = M[c] > 0 ? std::ceil(r) : std::floor(r);
                    T = rr > double(big) ? big : rr < -double(big) ? -big : static_cast<std::int64_t>(rr);
                }
                t.m_t[c * static_cast<std::size_t>(L - 1) + static_cast<std::size_t>(j - 1)] = static_cast<std::int32_t>(T);
            }
        }
        t.fit_estimates();
        out = std::move(t);
        return status::ok;
    }

    std::size_t channels() const noexcept { return m_channels; }
    const std::vector<std::int32_t>& values() const noexcept { return m_t; }
    const std::vector<unsigned char>& descending() const noexcept { return m_descending; }

    /// From stored values (a model file): C x (L - 1) thresholds, monotone per channel in the
    /// direction of its flag. bad_shape / bad_bit_width when they do not fit together.
    static status from_values(std::size_t channels, int levels, std::vector<std::int32_t> t,
                              std::vector<unsigned char> descending, thresholds& out) {
        if (levels < 2 || levels > 256) return status::bad_bit_width;
        if (channels == 0 || t.size() != channels * static_cast<std::size_t>(levels - 1) ||
            descending.size() != channels)
            return status::bad_shape;
        for (std::size_t c = 0; c < channels; ++c) {
            if (descending[c] > 1) return status::bad_shape;
            for (int j = 1; j + 1 < levels; ++j) {
                const std::int32_t a = t[c * static_cast<std::size_t>(levels - 1) + static_cast<std::size_t>(j - 1)],
                                   b = t[c * static_cast<std::size_t>(levels - 1) + static_cast<std::size_t>(j)];
                if (descending[c] ? b > a : b < a) return status::bad_shape;  // code() needs order
            }
        }
        out.m_channels = channels;
        out.m_levels = levels;
        out.m_t = std::move(t);
        out.m_descending = std::move(descending);
        out.fit_estimates();
        return status::ok;
    }
    int levels() const noexcept { return m_levels; }

    /// The codes of `pixels` pixels' outputs (acc: pixels x channels() values, out: as many
    /// codes). Up to 16 levels a branch-free count of the thresholds passed, vectorised across
    /// channels (the thresholds transposed to [level][channel], descending channels negated so
    /// that every test is sign * acc >= threshold); beyond that code()'s window of three
    /// thresholds around its estimate, in loops the compiler vectorises (gathers on AVX-512),
    /// with code()'s walk for the rare channel whose count the window does not hold.
    void codes(const std::int32_t* acc, std::uint8_t* out, std::size_t pixels = 1) const noexcept {
        constexpr std::size_t chunk = 64;
        const std::size_t n = static_cast<std::size_t>(m_levels - 1);
        const int last = m_levels - 1;
        std::int32_t sa[chunk] = {}, k[chunk] = {}, lo[chunk] = {}, ok[chunk] = {};
        std::uint8_t o[chunk] = {};
        for (std::size_t p = 0; p < pixels; ++p, acc += m_channels, out += m_channels)
            for (std::size_t c0 = 0; c0 < m_channels; c0 += chunk) {
                const std::size_t cn = m_channels - c0 < chunk ? m_channels - c0 : chunk;
                for (std::size_t c = 0; c < cn; ++c) sa[c] = m_sign[c0 + c] * acc[c0 + c];
                if (m_levels <= 16) {
                    for (std::size_t c = 0; c < cn; ++c) k[c] = 0;
                    for (std::size_t j = 0; j < n; ++j) {
                        const std::int32_t* t = m_tt.data() + j * m_channels + c0;
                        for (std::size_t c = 0; c < cn; ++c) k[c] += sa[c] >= t[c];
                    }
                    for (std::size_t c = 0; c < cn; ++c) ok[c] = 1;
                } else {
                    // branch-free: std::min / std::max clamp, and the sentinels around each
                    // channel's thresholds make st[-1] and st[3] always readable
                    for (std::size_t c = 0; c < cn; ++c) {
                        const float f = m_est_a[c0 + c] * static_cast<float>(acc[c0 + c]) + m_est_b[c0 + c] - 1.0f;
                        lo[c] = static_cast<std::int32_t>(std::min(std::max(f, 0.0f), static_cast<float>(last - 3)));
                    }
                    for (std::size_t c = 0; c < cn; ++c) {
                        const std::int32_t* st = m_ts.data() + (c0 + c) * (n + 2) + 1 + lo[c];
                        k[c] = lo[c] + (sa[c] >= st[0]) + (sa[c] >= st[1]) + (sa[c] >= st[2]);
                        ok[c] = (sa[c] >= st[-1]) & (sa[c] < st[3]);
                    }
                }
                // through a full-size buffer: GCC 12 warns about vectorised stores into a short out
                for (std::size_t c = 0; c < cn; ++c)
                    o[c] = ok[c] ? static_cast<std::uint8_t>(k[c]) : code(c0 + c, acc[c0 + c]);
                std::memcpy(out + c0, o, cn);
            }
    }

    /// The next layer's code for channel c's integer output acc: the number of thresholds
    /// passed. The thresholds are monotone, so that number e is the one with threshold e passed
    /// and threshold e + 1 not (1-based). A float estimate from the channel's threshold spacing
    /// (fit_estimates) starts the walk, which then steps to that e exactly: the result is the
    /// exact count whatever the estimate; the estimate only makes the walk short (0 or 1 steps
    /// when the thresholds are evenly spaced, as an activation grid's are, rather than the 8
    /// unpredictable branches of a binary search over 255).
    std::uint8_t code(std::size_t c, std::int32_t acc) const noexcept {
        const int last = m_levels - 1;
        const std::int32_t* t = m_t.data() + c * static_cast<std::size_t>(last);
        const float f = m_est_a[c] * static_cast<float>(acc) + m_est_b[c];
        int e = f >= static_cast<float>(last) ? last : f > 0 ? static_cast<int>(f) : 0;  // NaN-free: finite inputs
        if (!m_descending[c]) {
            while (e < last && acc >= t[e]) ++e;
            while (e > 0 && acc < t[e - 1]) --e;
        } else {
            while (e < last && acc <= t[e]) ++e;
            while (e > 0 && acc > t[e - 1]) --e;
        }
        return static_cast<std::uint8_t>(e);
    }

private:
    /// Per channel, count ~ est_a * acc + est_b through the first and last thresholds that are
    /// not "always" / "never" (+-(2^31 - 1)); 0 (walk from code 0) with fewer than two.
    void fit_estimates() {
        const std::size_t n = static_cast<std::size_t>(m_levels - 1);
        constexpr std::int32_t big = 2147483647;
        // codes()' layout, descending channels negated (+-big stay in range): up to 16 levels
        // transposed to [level][channel] (m_tt), beyond that per channel between sentinels (m_ts);
        // only the one codes() reads is kept
        const bool counted = m_levels <= 16;
        m_sign.assign(m_channels, 1);
        m_tt.assign(counted ? m_t.size() : 0, 0);
        m_ts.assign(counted ? 0 : m_channels * (n + 2), 0);
        for (std::size_t c = 0; c < m_channels; ++c) {
            m_sign[c] = m_descending[c] ? -1 : 1;
            for (std::size_t j = 0; j < n; ++j)
                (counted ? m_tt[j * m_channels + c] : m_ts[c * (n + 2) + 1 + j]) = m_sign[c] * m_t[c * n + j];
            if (!counted) {  // sentinels: every sign * acc is >= the first and < the last (|acc| < 2^31 - 1)
                m_ts[c * (n + 2)] = std::numeric_limits<std::int32_t>::min();
                m_ts[c * (n + 2) + n + 1] = std::numeric_limits<std::int32_t>::max();
            }
        }
        m_est_a.assign(m_channels, 0.0f);
        m_est_b.assign(m_channels, 0.0f);
        for (std::size_t c = 0; c < m_channels; ++c) {
            const std::int32_t* t = m_t.data() + c * n;
            std::size_t j1 = n, j2 = n;
            for (std::size_t j = 0; j < n; ++j)
                if (t[j] != big && t[j] != -big) {
                    if (j1 == n) j1 = j;
                    j2 = j;
                }
            if (j1 == n || j2 == j1 || t[j2] == t[j1]) continue;
            // passing threshold j (0-based) gives count j + 1
            const double slope = static_cast<double>(j2 - j1) / (static_cast<double>(t[j2]) - static_cast<double>(t[j1]));
            m_est_a[c] = static_cast<float>(slope);
            m_est_b[c] = static_cast<float>(static_cast<double>(j1 + 1) - slope * static_cast<double>(t[j1]));
        }
    }

    std::size_t m_channels = 0;
    int m_levels = 2;
    std::vector<std::int32_t> m_t;             // [channel][level - 1]
    std::vector<unsigned char> m_descending;   // per channel: M < 0
    std::vector<float> m_est_a, m_est_b;       // per channel: the walk's starting estimate
    std::vector<std::int32_t> m_tt, m_sign;    // codes(): sign * t transposed to [level][channel]
    std::vector<std::int32_t> m_ts;            // codes(): per channel INT32_MIN, sign * t, INT32_MAX

};

}  // namespace sqakd::deploy

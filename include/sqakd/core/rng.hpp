// sqakd/core/rng.hpp - a portable, seedable random generator.
//
// The standard distributions are implementation-defined, so the same seed would give different
// weights under libstdc++ and libc++. sqakd uses its own: xoshiro256** seeded by splitmix64,
// uniform doubles from the top 53 bits, normals by Box-Muller. Same seed, same numbers,
// everywhere.
#pragma once

#include <cmath>
#include <cstdint>

namespace sqakd {

class rng {
public:
    explicit rng(std::uint64_t seed = 0) { reseed(seed); }

    void reseed(std::uint64_t seed) {
        std::uint64_t x = seed;
        for (auto& s : m_s) s = splitmix(x);
        m_has_spare = false;
    }

    /// Uniform 64-bit integer.
    std::uint64_t next() {
        const std::uint64_t result = rotl(m_s[1] * 5, 7) * 9;
        const std::uint64_t t = m_s[1] << 17;
        m_s[2] ^= m_s[0];
        m_s[3] ^= m_s[1];
        m_s[1] ^= m_s[2];
        m_s[0] ^= m_s[3];
        m_s[2] ^= t;
        m_s[3] = rotl(m_s[3], 45);
        return result;
    }

    /// Uniform double in [0, 1).
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

    /// Uniform double in [a, b).
    double uniform(double a, double b) { return a + (b - a) * uniform(); }

    /// Uniform integer in [0, n) (n > 0), without modulo bias.
    std::uint64_t below(std::uint64_t n) {
        const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
        std::uint64_t r;
        do r = next();
        while (r >= limit);
        return r % n;
    }

    /// Standard normal (Box-Muller, both values used).
    double normal() {
        if (m_has_spare) {
            m_has_spare = false;
            return m_spare;
        }
        double u1;
        do u1 = uniform();
        while (u1 <= 0.0);
        const double u2 = uniform();
        const double r = std::sqrt(-2.0 * std::log(u1));
        const double th = 6.283185307179586476925286766559 * u2;
        m_spare = r * std::sin(th);
        m_has_spare = true;
        return r * std::cos(th);
    }

    bool bernoulli(double p) { return uniform() < p; }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    static std::uint64_t splitmix(std::uint64_t& x) {
        std::uint64_t z = (x += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    std::uint64_t m_s[4]{};
    double m_spare = 0.0;
    bool m_has_spare = false;
};

}  // namespace sqakd

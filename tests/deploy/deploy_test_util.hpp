// Helpers of the deploy tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace deploy_test {

/// n uniformly random codes of `bits` bits.
inline std::vector<std::uint8_t> random_codes(std::mt19937& g, int bits, std::size_t n) {
    std::uniform_int_distribution<int> d(0, (1 << bits) - 1);
    std::vector<std::uint8_t> v(n);
    for (auto& c : v) c = static_cast<std::uint8_t>(d(g));
    return v;
}

}  // namespace deploy_test

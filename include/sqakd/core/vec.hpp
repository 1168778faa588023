// sqakd/core/vec.hpp - vectorised reductions over contiguous rows.
//
// Compilers do not vectorise floating-point reductions without -ffast-math (reassociation
// changes the result), and a scalar dependency chain runs at one add per 4 cycles. These
// helpers fix the association explicitly: four xsimd accumulators over the row, then the lanes
// are added in order into a double. The result is deterministic (it depends only on the data
// and the vector width of the build) and, for rows of up to a few thousand values, as accurate
// as a double loop for our purposes (BN statistics, bias gradients).
#pragma once

#include <cstddef>

#include <xsimd/xsimd.hpp>

namespace sqakd::vec {

namespace detail {
template <class T, class Load>
double reduce(std::size_t n, Load load) {
    using B = xsimd::batch<T, xsimd::default_arch>;
    constexpr std::size_t V = B::size;
    B a0(T(0)), a1(T(0)), a2(T(0)), a3(T(0));
    std::size_t i = 0;
    for (; i + 4 * V <= n; i += 4 * V) {
        a0 += load(i);
        a1 += load(i + V);
        a2 += load(i + 2 * V);
        a3 += load(i + 3 * V);
    }
    for (; i + V <= n; i += V) a0 += load(i);
    alignas(64) T lanes[V];
    ((a0 + a1) + (a2 + a3)).store_aligned(lanes);
    double s = 0;
    for (std::size_t l = 0; l < V; ++l) s += lanes[l];
    return s;  // the tail (n % V values) is added by the caller
}
}  // namespace detail

/// sum_i p[i]
template <class T>
double sum(const T* p, std::size_t n) {
    using B = xsimd::batch<T, xsimd::default_arch>;
    constexpr std::size_t V = B::size;
    double s = detail::reduce<T>(n, [&](std::size_t i) { return B::load_unaligned(p + i); });
    for (std::size_t i = n / V * V; i < n; ++i) s += p[i];
    return s;
}

/// sum_i (p[i] - mean)^2
template <class T>
double sum_sq_diff(const T* p, std::size_t n, T mean) {
    using B = xsimd::batch<T, xsimd::default_arch>;
    constexpr std::size_t V = B::size;
    const B m(mean);
    double s = detail::reduce<T>(n, [&](std::size_t i) {
        const B d = B::load_unaligned(p + i) - m;
        return d * d;
    });
    for (std::size_t i = n / V * V; i < n; ++i) {
        const double d = static_cast<double>(p[i]) - static_cast<double>(mean);
        s += d * d;
    }
    return s;
}

/// sum_i a[i] * (b[i] - mean)
template <class T>
double sum_prod_centered(const T* a, const T* b, std::size_t n, T mean) {
    using B = xsimd::batch<T, xsimd::default_arch>;
    constexpr std::size_t V = B::size;
    const B m(mean);
    double s = detail::reduce<T>(n, [&](std::size_t i) {
        return B::load_unaligned(a + i) * (B::load_unaligned(b + i) - m);
    });
    for (std::size_t i = n / V * V; i < n; ++i)
        s += static_cast<double>(a[i]) * (static_cast<double>(b[i]) - static_cast<double>(mean));
    return s;
}

/// sum_i a[i] * b[i]
template <class T>
double dot(const T* a, const T* b, std::size_t n) {
    using B = xsimd::batch<T, xsimd::default_arch>;
    constexpr std::size_t V = B::size;
    double s = detail::reduce<T>(n, [&](std::size_t i) { return B::load_unaligned(a + i) * B::load_unaligned(b + i); });
    for (std::size_t i = n / V * V; i < n; ++i) s += static_cast<double>(a[i]) * static_cast<double>(b[i]);
    return s;
}

}  // namespace sqakd::vec

// sqakd/core/parallel.hpp - OpenMP glue.
//
// The engine parallelises with OpenMP over the batch (or channels) using a static partition
// that depends only on the problem size and the thread count, and reduces per-thread partial
// sums in thread order. Results are therefore bit-identical for a fixed seed and thread count.
// BLAS calls made inside a parallel region run single-threaded: we link OpenBLAS's OpenMP
// build, which checks omp_in_parallel(), so there is no oversubscription.
#pragma once

#include <algorithm>
#include <cstddef>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace sqakd {

/// Number of threads the engine uses (OpenMP's setting; 1 without OpenMP).
inline int num_threads() {
#if defined(_OPENMP)
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/// Set the number of threads the engine uses (no-op without OpenMP).
inline void set_num_threads(int n) {
#if defined(_OPENMP)
    omp_set_num_threads(std::max(1, n));
#else
    (void)n;
#endif
}

inline int thread_id() {
#if defined(_OPENMP)
    return omp_get_thread_num();
#else
    return 0;
#endif
}

inline int threads_in_region() {
#if defined(_OPENMP)
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/// The static range [begin, end) of `n` items that thread `t` of `p` owns.
struct range {
    std::size_t begin, end;
};
inline range static_part(std::size_t n, int t, int p) {
    const std::size_t b = n * static_cast<std::size_t>(t) / static_cast<std::size_t>(p);
    const std::size_t e = n * static_cast<std::size_t>(t + 1) / static_cast<std::size_t>(p);
    return {b, e};
}

/// Runs f(begin, end, thread) on a static partition of [0, n) across the engine's threads.
/// Falls back to a single call when n is small or OpenMP is absent.
template <class F>
void parallel_for(std::size_t n, F&& f, std::size_t min_per_thread = 1) {
#if defined(_OPENMP)
    const int want = num_threads();
    const int p = static_cast<int>(std::min<std::size_t>(
        static_cast<std::size_t>(want), std::max<std::size_t>(1, n / std::max<std::size_t>(1, min_per_thread))));
    if (p > 1 && !omp_in_parallel()) {
#pragma omp parallel num_threads(p)
        {
            const int t = omp_get_thread_num();
            const range r = static_part(n, t, p);
            if (r.begin < r.end) f(r.begin, r.end, t);
        }
        return;
    }
#endif
    (void)min_per_thread;
    if (n) f(std::size_t{0}, n, 0);
}

/// Threads parallel_for(n, ...) will use; per-thread scratch is sized with this.
inline int parallel_width(std::size_t n, std::size_t min_per_thread = 1) {
#if defined(_OPENMP)
    if (omp_in_parallel()) return 1;
    return static_cast<int>(std::min<std::size_t>(
        static_cast<std::size_t>(num_threads()),
        std::max<std::size_t>(1, n / std::max<std::size_t>(1, min_per_thread))));
#else
    (void)n;
    (void)min_per_thread;
    return 1;
#endif
}

}  // namespace sqakd

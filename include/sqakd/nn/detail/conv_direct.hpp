// sqakd/nn/detail/conv_direct.hpp - implicit-GEMM micro-kernels for stride-1 convolutions.
//
// A stride-1 KxK convolution of one image is a GEMM whose B operand is never materialised:
// with the input zero-padded once into Xpad[C][Hp][Wp] (Wp = W + 2P), row (c, kh, kw) of the
// im2col matrix, taken over the "wide" output grid (Ho rows of Wp columns, the last Wp - Wo of
// each row are junk and discarded), is simply Xpad[c] shifted by kh*Wp + kw. The kernels read
// those rows through a table of offsets, so im2col's copy, OpenBLAS's packing of it, and
// col2im's scatter all disappear.
//
//   gemm_shifted:  C[m][p] = sum_k A[k][m] * B[off[k] + p]        forward, and backward-data
//                  (A packed k-major in blocks of MR rows)        as a convolution of dY with
//                                                                 the flipped weights
//   wgrad_shifted: D[k][m] += sum_p B[off[k] + p] * GT[p][m]      backward-weights (transposed),
//                                                                 over the valid pixels only,
//                                                                 vectorised over output channels
//
// Both are written once with xsimd batches, templated on the scalar and the arch, so the same
// code is the AVX-512, AVX2, SSE and NEON kernel. Register tiles: MR x NV accumulators
// (8 x 3 with 32 vector registers, 4 x 3 with 16), each step loads NV vectors of B and
// broadcasts MR values of A, so the FMA units, not the loads, set the pace.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <type_traits>
#include <vector>

#include <xsimd/xsimd.hpp>

namespace sqakd::nn::detail {

template <class T>
struct simd_traits {
    using batch = xsimd::batch<T, xsimd::default_arch>;
    static constexpr std::size_t width = batch::size;
    // 512-bit registers imply AVX-512's 32 registers; NEON also has 32 (aarch64).
#if defined(__aarch64__)
    static constexpr std::size_t registers = 32;
#else
    static constexpr std::size_t registers = sizeof(batch) >= 64 ? 32 : 16;
#endif
    static constexpr std::size_t mr = registers >= 32 ? 8 : 4;  // rows of A per tile
    static constexpr std::size_t nv = 3;                        // vectors of B per tile
};

/// Rounds n up to a multiple of the vector width.
template <class T>
constexpr std::size_t round_up_simd(std::size_t n) {
    constexpr std::size_t V = simd_traits<T>::width;
    return (n + V - 1) / V * V;
}

/// Packs rows [m0, m0+MR) of the M x K matrix `a` (row-major, ld = K, rows >= M are zero) into
/// k-major order: out[k*MR + i] = a[(m0+i)*K + k].
template <class T, std::size_t MR>
void pack_a(const T* a, std::size_t M, std::size_t K, std::size_t m0, T* out) {
    for (std::size_t k = 0; k < K; ++k)
        for (std::size_t i = 0; i < MR; ++i) out[k * MR + i] = (m0 + i < M) ? a[(m0 + i) * K + k] : T(0);
}

template <class T, std::size_t MR, std::size_t NV>
inline void gemm_shifted_tile(const T* ap, std::size_t K, const T* b, const std::size_t* off, std::size_t p,
                              T* c, std::size_t ldc, std::size_t rows) {
    using B = typename simd_traits<T>::batch;
    constexpr std::size_t V = B::size;
    B acc[MR][NV];
    for (std::size_t i = 0; i < MR; ++i)
        for (std::size_t j = 0; j < NV; ++j) acc[i][j] = B(T(0));
    for (std::size_t k = 0; k < K; ++k) {
        const T* bk = b + off[k] + p;
        B bv[NV];
        for (std::size_t j = 0; j < NV; ++j) bv[j] = B::load_unaligned(bk + j * V);
        const T* ak = ap + k * MR;
        for (std::size_t i = 0; i < MR; ++i) {
            const B a(ak[i]);
            for (std::size_t j = 0; j < NV; ++j) acc[i][j] = xsimd::fma(a, bv[j], acc[i][j]);
        }
    }
    for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < NV; ++j) acc[i][j].store_unaligned(c + i * ldc + p + j * V);
}

/// Packs the whole M x K row-major matrix `a` into ceil(M/MR) k-major blocks of MR rows
/// (see pack_a); the result is the `apacked` operand of gemm_shifted.
template <class T>
std::vector<T> pack_a_all(const T* a, std::size_t M, std::size_t K) {
    constexpr std::size_t MR = simd_traits<T>::mr;
    const std::size_t blocks = (M + MR - 1) / MR;
    std::vector<T> out(blocks * MR * K);
    for (std::size_t bl = 0; bl < blocks; ++bl) pack_a<T, MR>(a, M, K, bl * MR, out.data() + bl * MR * K);
    return out;
}

/// C[m][p] = sum_k A[m][k] * b[off[k] + p] for m < M, p < P (P a multiple of the vector width;
/// C has ldc >= P). `b` must be readable up to max(off) + P. `apacked` is A packed by
/// pack_a_all.
template <class T>
void gemm_shifted(const T* apacked, std::size_t M, std::size_t K, const T* b, const std::size_t* off,
                  std::size_t P, T* c, std::size_t ldc) {
    using tr = simd_traits<T>;
    constexpr std::size_t MR = tr::mr, NV = tr::nv, V = tr::width;
    for (std::size_t m0 = 0; m0 < M; m0 += MR) {
        const T* ap = apacked + (m0 / MR) * MR * K;
        const std::size_t rows = std::min(MR, M - m0);
        T* cm = c + m0 * ldc;
        std::size_t p = 0;
        for (; p + NV * V <= P; p += NV * V) gemm_shifted_tile<T, MR, NV>(ap, K, b, off, p, cm, ldc, rows);
        for (; p + V <= P; p += V) gemm_shifted_tile<T, MR, 1>(ap, K, b, off, p, cm, ldc, rows);
    }
}

template <class T, std::size_t MR, std::size_t NV>
inline void wgrad_tile(const T* b, const std::size_t* off, std::size_t rows, std::size_t ho, std::size_t wo,
                       std::size_t wp, const T* gt, std::size_t ldg, T* d, std::size_t ldd) {
    using B = typename simd_traits<T>::batch;
    constexpr std::size_t V = B::size;
    B acc[MR][NV];
    const T* bk[MR];
    for (std::size_t i = 0; i < MR; ++i) {
        bk[i] = b + off[i < rows ? i : 0];
        for (std::size_t j = 0; j < NV; ++j) acc[i][j] = B::load_unaligned(d + i * ldd + j * V);
    }
    for (std::size_t r = 0; r < ho; ++r) {
        const std::size_t row = r * wp;
        const T* g = gt + r * wo * ldg;
        for (std::size_t c = 0; c < wo; ++c, g += ldg) {
            B gv[NV];
            for (std::size_t j = 0; j < NV; ++j) gv[j] = B::load_unaligned(g + j * V);
            for (std::size_t i = 0; i < MR; ++i) {
                const B bv(bk[i][row + c]);
                for (std::size_t j = 0; j < NV; ++j) acc[i][j] = xsimd::fma(bv, gv[j], acc[i][j]);
            }
        }
    }
    for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < NV; ++j) acc[i][j].store_unaligned(d + i * ldd + j * V);
}

template <class T, std::size_t NV>
struct wgrad_shape {
    static constexpr std::size_t regs = simd_traits<T>::registers;
    static constexpr std::size_t mr0 = (regs - NV - 2) / NV;
    static constexpr std::size_t mr = mr0 > 12 ? 12 : mr0;
};

/// Weight gradient of one image, transposed: D[k][m] += sum_{pixels p} b[off[k] + p] * GT[p][m],
/// where the valid pixels are p = r*wp + c (r < ho, c < wo) and GT is dY transposed to
/// [ho*wo][ldg] (ldg = M rounded up to the vector width, zero padded). D is [K][ldd = ldg].
/// Vectorised over m, so there are no horizontal sums, and only valid pixels are visited.
template <class T>
void wgrad_shifted(const T* b, const std::size_t* off, std::size_t K, std::size_t ho, std::size_t wo, std::size_t wp,
                   const T* gt, std::size_t ldg, T* d) {
    constexpr std::size_t V = simd_traits<T>::width;
    constexpr std::size_t NVmax = simd_traits<T>::registers >= 32 ? 4 : 2;
    const std::size_t nvec = ldg / V;
    std::size_t m0 = 0;
    auto run = [&](auto nv_tag) {
        constexpr std::size_t NV = decltype(nv_tag)::value;
        constexpr std::size_t MR = wgrad_shape<T, NV>::mr;
        for (std::size_t k0 = 0; k0 < K; k0 += MR)
            wgrad_tile<T, MR, NV>(b, off + k0, std::min(MR, K - k0), ho, wo, wp, gt + m0, ldg, d + k0 * ldg + m0, ldg);
        m0 += NV * V;
    };
    std::size_t left = nvec;
    while (left >= NVmax) {
        run(std::integral_constant<std::size_t, NVmax>{});
        left -= NVmax;
    }
    if constexpr (NVmax > 2) {
        if (left >= 2) {
            run(std::integral_constant<std::size_t, 2>{});
            left -= 2;
        }
    }
    while (left >= 1) {
        run(std::integral_constant<std::size_t, 1>{});
        left -= 1;
    }
}

}  // namespace sqakd::nn::detail

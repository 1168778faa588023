// sqakd/core/gemm.hpp - row-major GEMM on raw pointers, float through OpenBLAS, double too.
//
// C[M x N] = alpha * op(A) * op(B) + beta * C, all row-major with leading dimensions.
// Called from inside the engine's OpenMP regions, where OpenBLAS's OpenMP build runs
// single-threaded (no oversubscription); called outside, it may use its own threads.
#pragma once

#include <cstddef>

#include <cblas.h>

namespace sqakd::blas {

inline void gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda,
                 const float* b, int ldb, float beta, float* c, int ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
                k, alpha, a, lda, b, ldb, beta, c, ldc);
}

inline void gemm(bool ta, bool tb, int m, int n, int k, double alpha, const double* a, int lda,
                 const double* b, int ldb, double beta, double* c, int ldc) {
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
                k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace sqakd::blas

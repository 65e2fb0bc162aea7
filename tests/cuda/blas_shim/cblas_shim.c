/* tests/cuda/blas_shim/cblas_shim.c — a plain cblas_sgemm (see cblas.h beside it): float32
 * sums, rows of C shared by OpenMP threads when called outside a parallel region (inside
 * one, as cpu_attention.c calls it, it runs on the calling thread, as OpenBLAS does).
 * beta == 0 never reads C, as BLAS promises (the checks poison outputs with NaN). */
#include "cblas.h"

#include <omp.h>
#include <stdlib.h>

/* C (M, N) = alpha A B + beta C, row-major; A is (M, K) or its transpose, B (K, N) or its. */
void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int M,
                 int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc) {
  if (order == CblasColMajor) { /* C^T = B^T A^T, row-major */
    cblas_sgemm(CblasRowMajor, tb, ta, N, M, K, alpha, B, ldb, A, lda, beta, C, ldc);
    return;
  }
  int par = !omp_in_parallel() && (double)M * N * K > 1e6;
#pragma omp parallel for schedule(dynamic, 4) if (par)
  for (int i = 0; i < M; i++) {
    float *c = C + (size_t)i * ldc;
    float *acc = malloc((size_t)(N ? N : 1) * sizeof(float));
    for (int j = 0; j < N; j++)
      acc[j] = 0.0f;
    if (tb == CblasNoTrans) { /* rows of B run along j: a saxpy per k */
      for (int k = 0; k < K; k++) {
        float a = ta == CblasNoTrans ? A[(size_t)i * lda + k] : A[(size_t)k * lda + i];
        const float *b = B + (size_t)k * ldb;
        for (int j = 0; j < N; j++)
          acc[j] += a * b[j];
      }
    } else { /* B is (N, K): a dot product per j */
      for (int j = 0; j < N; j++) {
        const float *b = B + (size_t)j * ldb;
        float s = 0.0f;
        for (int k = 0; k < K; k++)
          s += (ta == CblasNoTrans ? A[(size_t)i * lda + k] : A[(size_t)k * lda + i]) * b[k];
        acc[j] = s;
      }
    }
    for (int j = 0; j < N; j++)
      c[j] = beta == 0.0f ? alpha * acc[j] : alpha * acc[j] + beta * c[j];
    free(acc);
  }
}

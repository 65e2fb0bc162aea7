/* kernels/cpu/cpu_linear.c — linear (torch.nn.functional.linear) and bmm (torch.bmm).
 *
 * linear runs on our own kernel (cpu_gemm.c: AVX-512 or AVX2) where it can, else
 * OpenBLAS's sgemm; bmm on OpenBLAS.
 *
 * float16/bfloat16 weights stay so in memory: they are widened into the workspace
 * a block of output features at a time (at most CPU_WBLOCK_BYTES), and each block
 * is one sgemm writing its columns of out. Blocking over output features rather
 * than over K means out is written once, and only `in` (small next to the
 * weights in every SD linear) is read again per block.
 */
#include <cblas.h>

#include "kernels/cpu/cpu_internal.h"
#include "kernels/error.h" // sdr_fail

enum { CPU_WBLOCK_BYTES = 16 << 20 };

/* out (M, N) += bias (N), row by row. */
static void add_bias_rows(float *out, const float *bias, int64_t M, int64_t N) {
#pragma omp parallel for schedule(static) if (M * N > CPU_GRAIN)
  for (int64_t m = 0; m < M; m++) {
    float *o = out + m * N;
    for (int64_t n = 0; n < N; n++)
      o[n] += bias[n];
  }
}

/* Rows [0, rows) of a (rows, K) matrix of dtype widened into dst. */
static void widen_rows(float *dst, const void *src, sdr_dtype dtype, int64_t rows, int64_t K) {
  size_t es = sdr_dtype_size(dtype);
#pragma omp parallel for schedule(static) if (rows * K > CPU_GRAIN)
  for (int64_t r = 0; r < rows; r++)
    cpu_widen(dst + r * K, (const char *)src + (size_t)(r * K) * es, dtype, K);
}

int cpu_linear(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *w,
               const sdr_tensor *bias) {
  int64_t N = w->shape[0], K = w->shape[1], M = sdr_tensor_numel(out) / N;
  float *o = out->data, *ws = cpu_state_of(be)->ws;
  size_t ws_n = cpu_ws_floats(be);
  /* Bias first in the workspace, widened once; weight blocks after it. */
  const float *b = NULL;
  if (bias) {
    if (bias->dtype == SDR_F32) {
      b = bias->data;
    } else {
      if ((size_t)N > ws_n)
        return sdr_fail("sdr_linear: workspace too small for a bias of %lld", (long long)N);
      cpu_widen(ws, bias->data, bias->dtype, N);
      b = ws;
      ws += N;
      ws_n -= (size_t)N;
    }
  }
  if (K == 0) { /* an empty sum: out is the bias */
    for (int64_t m = 0; m < M; m++)
      for (int64_t n = 0; n < N; n++)
        o[m * N + n] = b ? b[n] : 0.0f;
    return 0;
  }
  if (cpu_gemm_nt(be, o, in->data, w->data, w->dtype, M, N, K, ws, ws_n)) {
    /* our kernel: weights packed (and widened) panel by panel */
  } else if (w->dtype == SDR_F32) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, in->data,
                (int)K, w->data, (int)K, 0.0f, o, (int)N);
  } else {
    size_t cap = ws_n < CPU_WBLOCK_BYTES / 4 ? ws_n : CPU_WBLOCK_BYTES / 4;
    int64_t nb = (int64_t)(cap / (size_t)K);
    if (nb < 1)
      return sdr_fail("sdr_linear: workspace of %zu bytes cannot hold one row of w (K = %lld)",
                      cpu_state_of(be)->ws_bytes, (long long)K);
    if (nb > N)
      nb = N;
    size_t es = sdr_dtype_size(w->dtype);
    for (int64_t n0 = 0; n0 < N; n0 += nb) {
      int64_t rows = N - n0 < nb ? N - n0 : nb;
      widen_rows(ws, (const char *)w->data + (size_t)(n0 * K) * es, w->dtype, rows, K);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)rows, (int)K, 1.0f,
                  in->data, (int)K, ws, (int)K, 0.0f, o + n0, (int)N);
    }
  }
  if (b)
    add_bias_rows(o, b, M, N);
  return 0;
}

/* Many small products (attention scores of tiny models, per-head matrices) go one
 * per thread; large ones one after another, each using every thread inside BLAS. */
int cpu_bmm(sdr_backend *be, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b, int trans_b,
            float alpha) {
  (void)be;
  int64_t B = a->shape[0], M = a->shape[1], K = a->shape[2], N = out->shape[2];
  const float *A = a->data, *Bm = b->data;
  float *C = out->data;
  if (K == 0) {
    for (int64_t i = 0; i < B * M * N; i++)
      C[i] = 0.0f;
    return 0;
  }
  int ldb = trans_b ? (int)K : (int)N;
  enum CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
  int small = 2.0 * (double)M * (double)N * (double)K < 4e6 && B >= 2;
#pragma omp parallel for schedule(dynamic, 1) if (small)
  for (int64_t i = 0; i < B; i++)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, tb, (int)M, (int)N, (int)K, alpha, A + i * M * K,
                (int)K, Bm + i * K * N, ldb, 0.0f, C + i * M * N, (int)N);
  return 0;
}

/* kernels/cuda/cuda_linear.cu — linear (torch.nn.functional.linear) and bmm (torch.bmm)
 * through cuBLAS; mirrors kernels/cpu/cpu_linear.c.
 *
 * cuBLAS is column-major; a row-major (R, C) matrix is a column-major (C, R) one,
 * so every product below is computed transposed:
 *   linear: out^T (N, M) = w (N, K) . in^T (K, M)    -> gemm(T, N, N, M, K)
 *   bmm:    out^T (N, M) = b^T (N, K) . a^T (K, M)   -> gemm(N or T, N, N, M, K) per batch
 * Products run in the activations' dtype with float32 accumulation
 * (CUBLAS_COMPUTE_32F): float16 and bfloat16 on the tensor cores; float32 is
 * true float32 (the default math mode allows no TF32), as the CPU computes.
 *
 * The bias is written into out first and the product added to it (beta = 1):
 * cuBLAS then rounds bias + product once, in float32, as torch's fused bias does.
 * Weights in another dtype than the activations are converted into the
 * workspace first (the slow path; upload weights in the activations' dtype).
 */
#include "kernels/cuda/cuda_internal.h"

static cudaDataType_t blas_type(sdr_dtype dt) {
  return dt == SDR_F16 ? CUDA_R_16F : dt == SDR_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

int cuda_gemm(cuda_state *st, const char *op, sdr_dtype dt, cublasOperation_t ta,
              cublasOperation_t tb, int m, int n, int k, float alpha, const void *A, int lda,
              long long sa, const void *B, int ldb, long long sb, float beta, void *C, int ldc,
              long long sc, int batch) {
  cudaDataType_t t = blas_type(dt);
  cublasStatus_t s;
  if (batch == 1)
    s = cublasGemmEx(st->blas, ta, tb, m, n, k, &alpha, A, t, lda, B, t, ldb, &beta, C, t, ldc,
                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  else
    s = cublasGemmStridedBatchedEx(st->blas, ta, tb, m, n, k, &alpha, A, t, lda, sa, B, t, ldb, sb,
                                   &beta, C, t, ldc, sc, batch, CUBLAS_COMPUTE_32F,
                                   CUBLAS_GEMM_DEFAULT);
  if (s != CUBLAS_STATUS_SUCCESS)
    return cublas_fail(op, batch == 1 ? "cublasGemmEx" : "cublasGemmStridedBatchedEx", s);
  CUDA_LAUNCHED(op);
  return 0;
}

int cuda_weight_as(cuda_state *st, const char *op, const sdr_tensor *w, sdr_dtype dt,
                   size_t *ws_off, const void **out) {
  if (w->dtype == dt) {
    *out = w->data;
    return 0;
  }
  int64_t n = sdr_tensor_numel(w);
  size_t off = (*ws_off + 255) / 256 * 256, bytes = (size_t)n * sdr_dtype_size(dt);
  if (off + bytes > st->ws_bytes)
    return sdr_fail("%s: weights in %s are converted to the activations' %s in the workspace: "
                    "%zu bytes needed, %zu reserved (sdr_reserve_workspace, or keep weights in %s)",
                    op, sdr_dtype_name(w->dtype), sdr_dtype_name(dt), off + bytes, st->ws_bytes,
                    sdr_dtype_name(dt));
  void *dst = (char *)st->ws + off;
  if (cuda_convert(st, op, dst, dt, w->data, w->dtype, n) < 0)
    return -1;
  *ws_off = off + bytes;
  *out = dst;
  return 0;
}

/* x (outer, C, inner) = bias[c] for every element of channel c. */
template <typename T>
__global__ void fill_bias_kernel(T *x, const void *bias, int bdt, int64_t C, int64_t inner,
                                 int64_t n) {
  GRID_STRIDE(i, n) { x[i] = from_f<T>(ld_param(bias, bdt, (i / inner) % C)); }
}

int cuda_fill_bias(cuda_state *st, const char *op, void *x, sdr_dtype dt, const sdr_tensor *bias,
                   int64_t outer, int64_t C, int64_t inner) {
  int64_t n = outer * C * inner;
  unsigned g = cuda_blocks(st, n, CUDA_THREADS);
  switch (dt) {
  case SDR_F32:
    SDR_LAUNCH(fill_bias_kernel, g, CUDA_THREADS, 0, st->stream, (float *)x, bias->data,
               bias->dtype, C, inner, n);
    break;
  case SDR_F16:
    SDR_LAUNCH(fill_bias_kernel, g, CUDA_THREADS, 0, st->stream, (__half *)x, bias->data,
               bias->dtype, C, inner, n);
    break;
  default:
    SDR_LAUNCH(fill_bias_kernel, g, CUDA_THREADS, 0, st->stream, (__nv_bfloat16 *)x, bias->data,
               bias->dtype, C, inner, n);
    break;
  }
  CUDA_LAUNCHED(op);
  return 0;
}

int cuda_linear(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *w,
                const sdr_tensor *bias) {
  const char *op = "sdr_linear";
  cuda_state *st = cuda_use(be);
  sdr_dtype dt;
  const sdr_tensor *acts[2] = {out, in};
  if (cuda_act_dtype(op, acts, 2, &dt) < 0)
    return -1;
  int64_t N = w->shape[0], K = w->shape[1], M = sdr_tensor_numel(out) / N;
  if (bias && cuda_fill_bias(st, op, out->data, dt, bias, M, N, 1) < 0)
    return -1;
  if (K == 0) { /* an empty sum: out is the bias */
    if (!bias)
      CUDA_TRY(op, cudaMemsetAsync(out->data, 0, sdr_tensor_nbytes(out), st->stream));
    return 0;
  }
  size_t off = 0;
  const void *W;
  if (cuda_weight_as(st, op, w, dt, &off, &W) < 0)
    return -1;
  return cuda_gemm(st, op, dt, CUBLAS_OP_T, CUBLAS_OP_N, (int)N, (int)M, (int)K, 1.0f, W, (int)K, 0,
                   in->data, (int)K, 0, bias ? 1.0f : 0.0f, out->data, (int)N, 0, 1);
}

int cuda_bmm(sdr_backend *be, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b,
             int trans_b, float alpha) {
  const char *op = "sdr_bmm";
  cuda_state *st = cuda_use(be);
  sdr_dtype dt;
  const sdr_tensor *acts[3] = {out, a, b};
  if (cuda_act_dtype(op, acts, 3, &dt) < 0)
    return -1;
  int64_t B = a->shape[0], M = a->shape[1], K = a->shape[2], N = out->shape[2];
  if (K == 0) {
    CUDA_TRY(op, cudaMemsetAsync(out->data, 0, sdr_tensor_nbytes(out), st->stream));
    return 0;
  }
  if (B > 0x7fffffff)
    return sdr_fail("%s: %lld batches is more than cuBLAS takes", op, (long long)B);
  return cuda_gemm(st, op, dt, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, (int)N, (int)M,
                   (int)K, alpha, b->data, trans_b ? (int)K : (int)N, K * N, a->data, (int)K, M * K,
                   0.0f, out->data, (int)N, M * N, (int)B);
}

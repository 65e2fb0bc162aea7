/* kernels/cuda/cuda_conv2d.cu — torch.nn.functional.conv2d (groups 1, square stride and
 * padding) as im2col into the workspace plus cuBLAS products; mirrors kernels/cpu/cpu_conv2d.c.
 *
 * Per image, out (Cout, P) = w (Cout, K) . col (K, P), K = Cin*kh*kw, P = Ho*Wo;
 * column-major that is out^T (P, Cout) = col^T (P, K) . w^T (K, Cout):
 *  - 1x1, stride 1, no padding: col is the input itself, one strided-batched
 *    product over the whole batch;
 *  - otherwise col is unfolded (im2col) into the workspace: the whole batch at
 *    once when it fits (one batched product), else a chunk of output pixels of
 *    one image at a time (the VAE's 512x512 layers: 1.2 GB of columns at 256
 *    channels in float16, so chunks).
 * The bias is written into out first and the products add onto it (beta = 1).
 *
 * A first step, as issue 6 allows: the columns cost 9x the input's traffic for a
 * 3x3 kernel. An implicit GEMM (the unfolding done while tiles are loaded into
 * shared memory) is the next one.
 */
#include "kernels/cuda/cuda_internal.h"

typedef struct conv_geom {
  int C, H, W, Ho, Wo, kh, kw, stride, pad;
} conv_geom;

/* col (nimg, K, np): rows k = (channel, ky, kx) as torch orders the weight, columns
 * the output pixels p0 .. p0+np of each image. Zeros outside the input. */
template <typename T>
__global__ void im2col_kernel(T *col, const T *in, conv_geom g, int64_t K, int64_t p0, int64_t np,
                              int nimg) {
  const int64_t img = (int64_t)g.C * g.H * g.W, khw = (int64_t)g.kh * g.kw;
  GRID_STRIDE(i, (int64_t)nimg * K * np) {
    int64_t j = i % np, r = i / np, k = r % K, b = r / K;
    int64_t p = p0 + j, oh = p / g.Wo, ow = p % g.Wo;
    int64_t ci = k / khw, ky = (k % khw) / g.kw, kx = k % g.kw;
    int64_t ih = oh * g.stride - g.pad + ky, iw = ow * g.stride - g.pad + kx;
    T v = from_f<T>(0.0f);
    if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W)
      v = in[b * img + (ci * g.H + ih) * g.W + iw];
    col[i] = v;
  }
}

template <typename T>
static void launch_im2col(cuda_state *st, void *col, const void *in, const conv_geom *g, int64_t K,
                          int64_t p0, int64_t np, int nimg) {
  int64_t n = (int64_t)nimg * K * np;
  im2col_kernel<T><<<cuda_blocks(st, n, CUDA_THREADS), CUDA_THREADS, 0, st->stream>>>(
      (T *)col, (const T *)in, *g, K, p0, np, nimg);
}

static int im2col(cuda_state *st, const char *op, sdr_dtype dt, void *col, const void *in,
                  const conv_geom *g, int64_t K, int64_t p0, int64_t np, int nimg) {
  if (dt == SDR_F32)
    launch_im2col<float>(st, col, in, g, K, p0, np, nimg);
  else if (dt == SDR_F16)
    launch_im2col<__half>(st, col, in, g, K, p0, np, nimg);
  else
    launch_im2col<__nv_bfloat16>(st, col, in, g, K, p0, np, nimg);
  CUDA_LAUNCHED(op);
  return 0;
}

int cuda_conv2d(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *w,
                const sdr_tensor *bias, int stride, int padding) {
  const char *op = "sdr_conv2d";
  cuda_state *st = cuda_use(be);
  sdr_dtype dt;
  const sdr_tensor *acts[2] = {out, in};
  if (cuda_act_dtype(op, acts, 2, &dt) < 0)
    return -1;
  conv_geom g = {(int)in->shape[1],
                 (int)in->shape[2],
                 (int)in->shape[3],
                 (int)out->shape[2],
                 (int)out->shape[3],
                 (int)w->shape[2],
                 (int)w->shape[3],
                 stride,
                 padding};
  int64_t B = in->shape[0], Cout = out->shape[1], K = (int64_t)g.C * g.kh * g.kw;
  int64_t P = (int64_t)g.Ho * g.Wo;
  size_t es = sdr_dtype_size(dt);
  float beta = 0.0f;
  if (bias) {
    if (cuda_fill_bias(st, op, out->data, dt, bias, B, Cout, P) < 0)
      return -1;
    beta = 1.0f;
  }
  if (K == 0) {
    if (!bias)
      CUDA_TRY(op, cudaMemsetAsync(out->data, 0, sdr_tensor_nbytes(out), st->stream));
    return 0;
  }
  size_t off = 0;
  const void *W;
  if (cuda_weight_as(st, op, w, dt, &off, &W) < 0)
    return -1;
  if (B > 0x7fffffff)
    return sdr_fail("%s: batch of %lld is more than cuBLAS takes", op, (long long)B);

  if (g.kh == 1 && g.kw == 1 && stride == 1 && padding == 0) /* col = in */
    return cuda_gemm(st, op, dt, CUBLAS_OP_N, CUBLAS_OP_N, (int)P, (int)Cout, (int)K, 1.0f,
                     in->data, (int)P, K * P, W, (int)K, 0, beta, out->data, (int)P, Cout * P,
                     (int)B);

  off = (off + 255) / 256 * 256;
  size_t avail = st->ws_bytes > off ? st->ws_bytes - off : 0, per_pixel = (size_t)K * es;
  if (avail < per_pixel)
    return sdr_fail("%s: workspace of %zu bytes cannot hold one im2col column (%zu bytes) after "
                    "%zu bytes of converted weights; reserve more",
                    op, st->ws_bytes, per_pixel, off);
  void *col = (char *)st->ws + off;
  if ((size_t)(B * P) <= avail / per_pixel) { /* the whole batch: one batched product */
    if (im2col(st, op, dt, col, in->data, &g, K, 0, P, (int)B) < 0)
      return -1;
    return cuda_gemm(st, op, dt, CUBLAS_OP_N, CUBLAS_OP_N, (int)P, (int)Cout, (int)K, 1.0f, col,
                     (int)P, K * P, W, (int)K, 0, beta, out->data, (int)P, Cout * P, (int)B);
  }
  int64_t np = (int64_t)(avail / per_pixel);
  if (np > 256)
    np = np / 128 * 128; /* whole tiles for the product */
  np = np > P ? P : np;
  size_t img_bytes = (size_t)g.C * g.H * g.W * es, out_img = (size_t)(Cout * P) * es;
  for (int64_t b = 0; b < B; b++) {
    const char *x = (const char *)in->data + (size_t)b * img_bytes;
    char *o = (char *)out->data + (size_t)b * out_img;
    for (int64_t p0 = 0; p0 < P; p0 += np) {
      int64_t n = P - p0 < np ? P - p0 : np;
      if (im2col(st, op, dt, col, x, &g, K, p0, n, 1) < 0)
        return -1;
      if (cuda_gemm(st, op, dt, CUBLAS_OP_N, CUBLAS_OP_N, (int)n, (int)Cout, (int)K, 1.0f, col,
                    (int)n, 0, W, (int)K, 0, beta, o + (size_t)p0 * es, (int)P, 0, 1) < 0)
        return -1;
    }
  }
  return 0;
}

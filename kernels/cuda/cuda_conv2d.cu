/* kernels/cuda/cuda_conv2d.cu — torch.nn.functional.conv2d (groups 1, square stride and
 * padding) as im2col into the workspace plus cuBLAS products; mirrors kernels/cpu/cpu_conv2d.c.
 *
 * Per image, out (Cout, P) = w (Cout, K) . col (K, P), K = Cin*kh*kw, P = Ho*Wo;
 * column-major that is out^T (P, Cout) = col^T (P, K) . w^T (K, Cout):
 *  - 1x1, stride 1, no padding: col is the input itself, one strided-batched
 *    product over the whole batch;
 *  - otherwise col is unfolded (im2col) into the workspace: as many whole images
 *    at once as it holds (one batched product each), else a chunk of output
 *    pixels of one image at a time (the VAE's 512x512 layers: 1.2 GB of columns
 *    at 256 channels in float16, so chunks).
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
 * the output pixels p0 .. p0+np of each image. Zeros outside the input.
 * Block rows (y) walk the (image, k) rows, threads (x) a row's pixels, so each
 * element costs one 32-bit division (its pixel's output row) and the writes of a
 * warp are contiguous. */
template <typename T>
__global__ void im2col_kernel(T *col, const T *in, conv_geom g, int K, int p0, int np, int nimg) {
  const int khw = g.kh * g.kw;
  const int64_t rows = (int64_t)nimg * K, plane = (int64_t)g.H * g.W;
  const T zero = from_f<T>(0.0f);
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const int b = (int)(r / K), k = (int)(r - (int64_t)b * K);
    const int ci = k / khw, kk = k - ci * khw, ky = kk / g.kw, kx = kk - ky * g.kw;
    const T *src = in + ((int64_t)b * g.C + ci) * plane;
    T *dst = col + r * np;
    for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < np; j += gridDim.x * blockDim.x) {
      const int p = p0 + j, oh = p / g.Wo, ow = p - oh * g.Wo;
      const int ih = oh * g.stride - g.pad + ky, iw = ow * g.stride - g.pad + kx;
      dst[j] = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W ? src[(int64_t)ih * g.W + iw] : zero;
    }
  }
}

template <typename T>
static void launch_im2col(cuda_state *st, void *col, const void *in, const conv_geom *g, int K,
                          int p0, int np, int nimg) {
  int64_t rows = (int64_t)nimg * K, bx = (np + CUDA_THREADS - 1) / CUDA_THREADS;
  dim3 grid((unsigned)(bx < 1 ? 1 : bx), (unsigned)(rows < 65535 ? (rows < 1 ? 1 : rows) : 65535));
  SDR_LAUNCH(im2col_kernel<T>, grid, CUDA_THREADS, 0, st->stream, (T *)col, (const T *)in, *g, K,
             p0, np, nimg);
}

static int im2col(cuda_state *st, const char *op, sdr_dtype dt, void *col, const void *in,
                  const conv_geom *g, int64_t K, int64_t p0, int64_t np, int nimg) {
  if (K > 0x7fffffff || p0 + np > 0x7fffffff)
    return sdr_fail("%s: %lld rows of %lld pixels is more than the im2col kernel takes", op,
                    (long long)K, (long long)(p0 + np));
  if (dt == SDR_F32)
    launch_im2col<float>(st, col, in, g, (int)K, (int)p0, (int)np, nimg);
  else if (dt == SDR_F16)
    launch_im2col<__half>(st, col, in, g, (int)K, (int)p0, (int)np, nimg);
  else
    launch_im2col<__nv_bfloat16>(st, col, in, g, (int)K, (int)p0, (int)np, nimg);
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
  size_t img_bytes = (size_t)g.C * g.H * g.W * es, out_img = (size_t)(Cout * P) * es;
  int64_t fit = (int64_t)(avail / per_pixel / (size_t)P); /* whole images the columns hold */
  if (fit >= 1) { /* as many images at a time as fit: one batched product each */
    for (int64_t b0 = 0; b0 < B; b0 += fit) {
      int64_t nb = B - b0 < fit ? B - b0 : fit;
      const char *x = (const char *)in->data + (size_t)b0 * img_bytes;
      char *o = (char *)out->data + (size_t)b0 * out_img;
      if (im2col(st, op, dt, col, x, &g, K, 0, P, (int)nb) < 0)
        return -1;
      if (cuda_gemm(st, op, dt, CUBLAS_OP_N, CUBLAS_OP_N, (int)P, (int)Cout, (int)K, 1.0f, col,
                    (int)P, K * P, W, (int)K, 0, beta, o, (int)P, Cout * P, (int)nb) < 0)
        return -1;
    }
    return 0;
  }
  /* not one image: chunks of its output pixels (the VAE's 512x512 layers) */
  int64_t np = (int64_t)(avail / per_pixel);
  if (np > 256)
    np = np / 128 * 128; /* whole tiles for the product */
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

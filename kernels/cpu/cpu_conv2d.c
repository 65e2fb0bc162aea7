/* kernels/cpu/cpu_conv2d.c — torch.nn.functional.conv2d (groups 1, square stride and padding)
 * as matrix products.
 *
 * Per image, out (Cout, Ho*Wo) = w (Cout, K) @ col (K, Ho*Wo), K = Cin*kh*kw:
 *  - 1x1, stride 1, no padding: col is the input itself, one sgemm on NCHW;
 *  - otherwise col is built (im2col) for a chunk of output pixels at a time into
 *    the workspace: the whole image when that takes at most 16 MB (the weights,
 *    up to 59 MB at 1280 channels, are then read once), else chunks of at most
 *    8 MB whatever the image: the VAE's 512x512 layers with 128 channels
 *    (K = 1152) take ~1800 pixels (3.5 rows) per chunk, a UNet 64x64 layer with
 *    320 channels ~700 (11 rows). Each chunk is built by all threads, then
 *    multiplied by one sgemm that uses all threads.
 * float16/bfloat16 weights are widened a block of K (whole input channels) at a
 * time, at most CPU_WBLOCK_BYTES (16 MB); blocks after the first accumulate into
 * out (sgemm with beta 1), so the input is unfolded only once.
 *
 * Padding is zeros, given per side as top/left; bottom/right follow from out's
 * size, which is how the asymmetric F.pad(x, (0, 1, 0, 1)) of diffusers'
 * Downsample2D (padding=0) could be expressed without a copy.
 *
 * 3x3 stride-1 convolutions, nearly all of SD's work, go to Winograd F(4x4, 3x3)
 * (cpu_winograd.c: 4x fewer multiplications) unless the images are tiny
 * (cpu_winograd_pays); im2col takes the rest. The products run on our own kernel
 * (cpu_gemm_nn: AVX-512 or AVX2) when the pixels come in multiples of 16, else on OpenBLAS.
 */
#include <cblas.h>
#include <string.h>

#include "kernels/cpu/cpu_internal.h"
#include "kernels/error.h" // sdr_fail

enum { CPU_COL_BYTES = 8 << 20, CPU_COL_WHOLE_BYTES = 16 << 20, CPU_WBLOCK_BYTES = 16 << 20 };

typedef struct conv_geom {
  int64_t C, H, W;      /* input channels and size */
  int64_t Cout, Ho, Wo; /* output */
  int64_t kh, kw, stride, pad_h, pad_w;
} conv_geom;

/* floor(a / b), b > 0, a of any sign. */
static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* col (kb, np): rows k0..k0+kb of the unfolded input, pixels p0..p0+np (row-major over
 * Ho x Wo), for one image `in` (C, H, W). Row k is (channel, ky, kx) = k as torch orders
 * the weight's (Cin, kh, kw). */
static void im2col(float *col, const float *in, const conv_geom *g, int64_t k0, int64_t kb,
                   int64_t p0, int64_t np) {
  int64_t khw = g->kh * g->kw, s = g->stride;
#pragma omp parallel for schedule(static) if (kb * np > CPU_GRAIN)
  for (int64_t kk = 0; kk < kb; kk++) {
    int64_t k = k0 + kk, ci = k / khw, ky = (k % khw) / g->kw, kx = k % g->kw;
    /* output columns whose input column lies inside the image */
    int64_t lo = floor_div(g->pad_w - kx + s - 1, s), hi = floor_div(g->W - 1 + g->pad_w - kx, s);
    lo = lo < 0 ? 0 : lo;
    hi = hi >= g->Wo ? g->Wo - 1 : hi;
    float *dst = col + kk * np;
    const float *plane = in + ci * g->H * g->W;
    int64_t p = p0, end = p0 + np;
    while (p < end) {
      int64_t oh = p / g->Wo, ow0 = p % g->Wo;
      int64_t ow1 = g->Wo < ow0 + (end - p) ? g->Wo : ow0 + (end - p); /* this output row */
      int64_t ih = oh * s - g->pad_h + ky;
      float *d = dst + (p - p0); /* d[ow - ow0] is output column ow */
      if (ih < 0 || ih >= g->H || lo > hi) {
        memset(d, 0, (size_t)(ow1 - ow0) * sizeof(float));
      } else {
        const float *row = plane + ih * g->W; /* input column of ow: ow * s - pad_w + kx */
        int64_t a = ow0 > lo ? ow0 : lo, b = ow1 - 1 < hi ? ow1 - 1 : hi;
        for (int64_t ow = ow0; ow < a && ow < ow1; ow++)
          d[ow - ow0] = 0.0f;
        if (a <= b) {
          int64_t iw = a * s - g->pad_w + kx;
          if (s == 1)
            memcpy(d + (a - ow0), row + iw, (size_t)(b - a + 1) * sizeof(float));
          else
            for (int64_t ow = a; ow <= b; ow++, iw += s)
              d[ow - ow0] = row[iw];
        }
        for (int64_t ow = (b + 1 > ow0 ? b + 1 : ow0); ow < ow1; ow++)
          d[ow - ow0] = 0.0f;
      }
      p += ow1 - ow0;
    }
  }
}

/* w[:, k0:k0+kb] widened into dst (Cout, kb). */
static void widen_cols(float *dst, const void *w, sdr_dtype dtype, int64_t Cout, int64_t K,
                       int64_t k0, int64_t kb) {
  size_t es = sdr_dtype_size(dtype);
#pragma omp parallel for schedule(static) if (Cout * kb > CPU_GRAIN)
  for (int64_t co = 0; co < Cout; co++)
    cpu_widen(dst + co * kb, (const char *)w + (size_t)(co * K + k0) * es, dtype, kb);
}

/* out (Cout, P) columns p0..p0+np += bias. */
static void add_bias(float *out, const float *bias, int64_t Cout, int64_t P, int64_t p0,
                     int64_t np) {
#pragma omp parallel for schedule(static) if (Cout * np > CPU_GRAIN)
  for (int64_t co = 0; co < Cout; co++) {
    float *o = out + co * P + p0, bv = bias[co];
    for (int64_t i = 0; i < np; i++)
      o[i] += bv;
  }
}

int cpu_conv2d(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *w,
               const sdr_tensor *bias, int stride, int padding) {
  conv_geom g = {in->shape[1],  in->shape[2],  in->shape[3], out->shape[1],
                 out->shape[2], out->shape[3], w->shape[2],  w->shape[3],
                 stride,        padding,       padding};
  int64_t B = in->shape[0], K = g.C * g.kh * g.kw, P = g.Ho * g.Wo, khw = g.kh * g.kw;
  int direct = g.kh == 1 && g.kw == 1 && stride == 1 && padding == 0; /* col = in */
  float *ws = cpu_state_of(be)->ws;
  size_t ws_n = cpu_ws_floats(be);
  const char *op = "sdr_conv2d";
  if (g.kh == 3 && g.kw == 3 && stride == 1 && cpu_winograd_pays(B, g.Ho, g.Wo)) {
    int rc = cpu_conv2d_winograd(be, out, in, w, bias, padding);
    if (rc <= 0)
      return rc;
  }

  /* Workspace: [bias (Cout)] [weight block (Cout, kb)] [col (kb, np)]. */
  const float *b = NULL;
  if (bias) {
    if (bias->dtype == SDR_F32) {
      b = bias->data;
    } else {
      if ((size_t)g.Cout > ws_n)
        return sdr_fail("%s: workspace too small for the bias", op);
      cpu_widen(ws, bias->data, bias->dtype, g.Cout);
      b = ws;
      ws += g.Cout;
      ws_n -= (size_t)g.Cout;
    }
  }
  int64_t kb = K; /* K rows per weight block: whole input channels */
  if (w->dtype != SDR_F32) {
    size_t cap = CPU_WBLOCK_BYTES / 4;
    if (!direct && ws_n / 2 < cap)
      cap = ws_n / 2; /* leave room for columns */
    else if (ws_n < cap)
      cap = ws_n;
    kb = (int64_t)(cap / (size_t)g.Cout) / khw * khw;
    if (kb < khw)
      return sdr_fail("%s: workspace of %zu bytes cannot hold one input channel of w", op,
                      cpu_state_of(be)->ws_bytes);
    kb = kb > K ? K : kb;
  }
  float *wblk = w->dtype == SDR_F32 ? NULL : ws;
  float *col = wblk ? ws + g.Cout * kb : ws;
  size_t col_n = ws_n - (size_t)(wblk ? g.Cout * kb : 0);
  int64_t np = P;
  if (!direct) {
    /* a whole image of up to 16 MB in one product (weights read once: the 1280-channel
     * layers), else 8 MB chunks (cache-friendlier for the VAE's big images) */
    size_t cap =
        (size_t)(kb * P) <= CPU_COL_WHOLE_BYTES / 4 ? CPU_COL_WHOLE_BYTES / 4 : CPU_COL_BYTES / 4;
    cap = col_n < cap ? col_n : cap;
    np = (int64_t)(cap / (size_t)kb);
    if (np < 1)
      return sdr_fail("%s: workspace of %zu bytes cannot hold one im2col column (K = %lld)", op,
                      cpu_state_of(be)->ws_bytes, (long long)kb);
    if (np < P && np > 64)
      np = np / 16 * 16;
    np = np > P ? P : np;
  }

  /* Weight blocks outermost: each widened block serves every image of the batch. */
  const float *wf = w->data;
  for (int64_t k0 = 0; k0 < K; k0 += kb) {
    int64_t kn = K - k0 < kb ? K - k0 : kb;
    const float *A = wf + k0; /* (Cout, kn), row stride lda */
    int lda = (int)K;
    if (wblk) {
      widen_cols(wblk, w->data, w->dtype, g.Cout, K, k0, kn);
      A = wblk;
      lda = (int)kn;
    }
    float beta = k0 == 0 ? 0.0f : 1.0f;
    for (int64_t bi = 0; bi < B; bi++) {
      const float *x = (const float *)in->data + bi * g.C * g.H * g.W;
      float *o = (float *)out->data + bi * g.Cout * P;
      for (int64_t p0 = 0; p0 < P; p0 += np) {
        int64_t n = P - p0 < np ? P - p0 : np;
        const float *X;
        int ldx;
        if (direct) {
          X = x + k0 * P + p0;
          ldx = (int)P;
        } else {
          im2col(col, x, &g, k0, kn, p0, n);
          X = col;
          ldx = (int)n;
        }
        if (!cpu_gemm_nn(o + p0, P, A, lda, X, ldx, g.Cout, n, kn, k0 > 0))
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g.Cout, (int)n, (int)kn, 1.0f,
                      A, lda, X, ldx, beta, o + p0, (int)P);
        if (b && k0 + kn == K)
          add_bias(o, b, g.Cout, P, p0, n);
      }
    }
  }
  return 0;
}

/* kernels/dev/bench_kernels.c — times the CPU backend's heavy ops at SD 1.x shapes.
 *
 * Built and run by scripts/bench_kernels.sh against the real library (no copies of
 * kernels here). Prints one line per op: best time of a few runs, GFLOP/s for
 * products, GB/s (one read and one write of the tensor) for normalisation.
 *
 *   bench_kernels [filter]   runs the cases whose name contains filter
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"         // sdr_* ops
#include "kernels/cpu/cpu_backend.h" // sdr_cpu_backend_create
#include "kernels/error.h"           // sdr_last_error
#include "kernels/half.h"            // sdr_f32_to_f16

char *openblas_get_corename(void);

static float *rnd(int64_t n) {
  float *p = malloc((size_t)n * sizeof(float));
  uint64_t s = 88172645463325252ull;
  for (int64_t i = 0; i < n; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    p[i] = (float)((s >> 40) * (1.0 / 16777216.0)) - 0.5f;
  }
  return p;
}

static uint16_t *to_f16(const float *x, int64_t n) {
  uint16_t *h = malloc((size_t)n * 2);
  for (int64_t i = 0; i < n; i++)
    h[i] = sdr_f32_to_f16(x[i]);
  return h;
}

static sdr_tensor T(void *p, sdr_dtype dt, int nd, int64_t a, int64_t b, int64_t c, int64_t d) {
  int64_t s[4] = {a, b, c, d};
  return sdr_tensor_view(p, dt, SDR_DEVICE_CPU, nd, s);
}

typedef int (*bench_fn)(sdr_backend *be, void *ctx);

/* Best of reps runs after one warm-up, in seconds; negative on error. */
static double best_time(sdr_backend *be, bench_fn fn, void *ctx, int reps) {
  if (fn(be, ctx) < 0) {
    fprintf(stderr, "error: %s\n", sdr_last_error());
    return -1;
  }
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    double t0 = omp_get_wtime();
    fn(be, ctx);
    double t = omp_get_wtime() - t0;
    best = t < best ? t : best;
  }
  return best;
}

static void report(const char *name, double t, double flops, double bytes) {
  if (t < 0)
    return;
  printf("%-44s %9.2f ms", name, t * 1e3);
  if (flops > 0)
    printf("  %7.1f GFLOP/s", flops / t * 1e-9);
  if (bytes > 0)
    printf("  %7.1f GB/s", bytes / t * 1e-9);
  printf("\n");
  fflush(stdout);
}

/* ---- cases ---- */

typedef struct lin_ctx {
  sdr_tensor out, in, w, b;
} lin_ctx;
static int run_linear(sdr_backend *be, void *c) {
  lin_ctx *x = c;
  return sdr_linear(be, &x->out, &x->in, &x->w, &x->b);
}

static void bench_linear(sdr_backend *be, int64_t M, int64_t K, int64_t N, sdr_dtype wt) {
  float *in = rnd(M * K), *w = rnd(N * K), *b = rnd(N), *out = malloc((size_t)(M * N) * 4);
  void *wd = wt == SDR_F32 ? (void *)w : (void *)to_f16(w, N * K);
  lin_ctx c = {T(out, SDR_F32, 2, M, N, 0, 0), T(in, SDR_F32, 2, M, K, 0, 0),
               T(wd, wt, 2, N, K, 0, 0), T(b, SDR_F32, 1, N, 0, 0, 0)};
  char name[96];
  snprintf(name, sizeof name, "linear M%lld K%lld N%lld w %s", (long long)M, (long long)K,
           (long long)N, sdr_dtype_name(wt));
  report(name, best_time(be, run_linear, &c, 10), 2.0 * M * N * K, 0);
  if (wd != w)
    free(wd);
  free(in), free(w), free(b), free(out);
}

typedef struct conv_ctx {
  sdr_tensor out, in, w, b;
  int stride, pad;
} conv_ctx;
static int run_conv(sdr_backend *be, void *c) {
  conv_ctx *x = c;
  return sdr_conv2d(be, &x->out, &x->in, &x->w, &x->b, x->stride, x->pad);
}

static int want(const char *filter, const char *name) { return !filter || strstr(name, filter); }

/* filter: "conv" (or part of it) for every shape, else part of the shape's name */
static void bench_conv(const char *filter, sdr_backend *be, int64_t B, int64_t C, int64_t H,
                       int64_t W, int64_t Co, int k, int stride, int pad, sdr_dtype wt, int reps) {
  char name[96];
  snprintf(name, sizeof name, "conv2d (%lld,%lld,%lld,%lld) %dx%d s%d ->%lld w %s", (long long)B,
           (long long)C, (long long)H, (long long)W, k, k, stride, (long long)Co,
           sdr_dtype_name(wt));
  if (filter && !strstr("conv", filter) && !want(filter, name))
    return;
  int64_t Ho = (H + 2 * pad - k) / stride + 1, Wo = (W + 2 * pad - k) / stride + 1;
  float *in = rnd(B * C * H * W), *w = rnd(Co * C * k * k), *b = rnd(Co);
  float *out = malloc((size_t)(B * Co * Ho * Wo) * 4);
  void *wd = wt == SDR_F32 ? (void *)w : (void *)to_f16(w, Co * C * k * k);
  conv_ctx c = {T(out, SDR_F32, 4, B, Co, Ho, Wo),
                T(in, SDR_F32, 4, B, C, H, W),
                T(wd, wt, 4, Co, C, k, k),
                T(b, SDR_F32, 1, Co, 0, 0, 0),
                stride,
                pad};
  report(name, best_time(be, run_conv, &c, reps), 2.0 * B * Co * C * k * k * Ho * Wo, 0);
  if (wd != w)
    free(wd);
  free(in), free(w), free(b), free(out);
}

typedef struct attn_ctx {
  sdr_tensor out, q, k, v;
  int heads;
} attn_ctx;
static int run_attn(sdr_backend *be, void *c) {
  attn_ctx *x = c;
  return sdr_attention(be, &x->out, &x->q, &x->k, &x->v, x->heads, 0.158113883f, 0);
}

static void bench_attention(sdr_backend *be, int64_t B, int heads, int64_t Tq, int64_t Tk,
                            int64_t Dh, int reps) {
  int64_t HD = heads * Dh;
  float *q = rnd(B * Tq * HD), *k = rnd(B * Tk * HD), *v = rnd(B * Tk * HD);
  float *out = malloc((size_t)(B * Tq * HD) * 4);
  attn_ctx c = {T(out, SDR_F32, 3, B, Tq, HD, 0), T(q, SDR_F32, 3, B, Tq, HD, 0),
                T(k, SDR_F32, 3, B, Tk, HD, 0), T(v, SDR_F32, 3, B, Tk, HD, 0), heads};
  char name[96];
  snprintf(name, sizeof name, "attention B%lld heads%d Tq%lld Tk%lld Dh%lld", (long long)B, heads,
           (long long)Tq, (long long)Tk, (long long)Dh);
  report(name, best_time(be, run_attn, &c, reps), 4.0 * B * heads * Tq * Tk * Dh, 0);
  free(q), free(k), free(v), free(out);
}

typedef struct gn_ctx {
  sdr_tensor out, in, g, b;
} gn_ctx;
static int run_gn(sdr_backend *be, void *c) {
  gn_ctx *x = c;
  return sdr_group_norm(be, &x->out, &x->in, &x->g, &x->b, 32, 1e-5f, 1);
}

static void bench_group_norm(sdr_backend *be, int64_t B, int64_t C, int64_t H, int64_t W) {
  int64_t n = B * C * H * W;
  float *in = rnd(n), *g = rnd(C), *b = rnd(C), *out = malloc((size_t)n * 4);
  gn_ctx c = {T(out, SDR_F32, 4, B, C, H, W), T(in, SDR_F32, 4, B, C, H, W),
              T(g, SDR_F32, 1, C, 0, 0, 0), T(b, SDR_F32, 1, C, 0, 0, 0)};
  char name[96];
  snprintf(name, sizeof name, "group_norm+silu (%lld,%lld,%lld,%lld) /32", (long long)B,
           (long long)C, (long long)H, (long long)W);
  report(name, best_time(be, run_gn, &c, 10), 0, 8.0 * n);
  free(in), free(g), free(b), free(out);
}

typedef struct un_ctx {
  sdr_tensor out, in;
} un_ctx;
static int run_geglu(sdr_backend *be, void *c) {
  un_ctx *x = c;
  return sdr_geglu(be, &x->out, &x->in);
}

static void bench_geglu(sdr_backend *be, int64_t M, int64_t D) {
  float *in = rnd(M * 2 * D), *out = malloc((size_t)(M * D) * 4);
  un_ctx c = {T(out, SDR_F32, 2, M, D, 0, 0), T(in, SDR_F32, 2, M, 2 * D, 0, 0)};
  char name[96];
  snprintf(name, sizeof name, "geglu (%lld,%lld)", (long long)M, (long long)(2 * D));
  report(name, best_time(be, run_geglu, &c, 10), 0, 12.0 * M * D);
  free(in), free(out);
}

/* The convolutions of SD 1.x: the UNet as a guided step runs it (batch 2, 64x64 latents),
 * the VAE decoder to 512x512; float16 rows where the weights are loaded so. The same
 * list is in scripts/bench_kernels.sh for PyTorch. */
typedef struct conv_shape {
  int64_t B, C, H, Co;
  int k, stride, pad, f16, reps;
} conv_shape;
static const conv_shape conv_shapes[] = {
    {2, 4, 64, 320, 3, 1, 1, 0, 5},     /* UNet conv_in (im2col: 4 channels) */
    {2, 320, 64, 320, 3, 1, 1, 0, 5},   /* UNet 64x64 */
    {2, 320, 64, 320, 3, 1, 1, 1, 5},   /*   with float16 weights */
    {2, 640, 32, 640, 3, 1, 1, 0, 5},   /* UNet 32x32 */
    {2, 1280, 16, 1280, 3, 1, 1, 0, 5}, /* UNet 16x16 */
    {2, 1280, 16, 1280, 3, 1, 1, 1, 5}, /*   with float16 weights */
    {2, 1280, 8, 1280, 3, 1, 1, 0, 5},  /* UNet 8x8 */
    {2, 2560, 8, 1280, 3, 1, 1, 1, 5},  /* UNet 8x8 up block, skip concatenated */
    {2, 320, 64, 320, 1, 1, 0, 0, 5},   /* UNet 1x1 (proj_in/out) */
    {1, 512, 64, 512, 3, 1, 1, 0, 3},   /* VAE 64x64 */
    {1, 512, 128, 512, 3, 1, 1, 0, 2},  /* VAE 128x128 */
    {1, 512, 256, 512, 3, 1, 1, 0, 1},  /* VAE upsampler conv to 256x256 */
    {1, 256, 256, 256, 3, 1, 1, 0, 2},  /* VAE 256x256 */
    {1, 256, 512, 128, 3, 1, 1, 0, 1},  /* VAE 512x512, first of the last block */
    {1, 128, 512, 128, 3, 1, 1, 0, 2},  /* VAE 512x512 */
    {1, 128, 512, 3, 3, 1, 1, 0, 3},    /* VAE conv_out (im2col: 3 channels out) */
    {1, 128, 513, 128, 3, 2, 0, 0, 3},  /* VAE encoder downsampler, stride 2 */
};

int main(int argc, char **argv) {
  const char *filter = argc > 1 ? argv[1] : NULL;
  sdr_backend *be = sdr_cpu_backend_create();
  if (!be) {
    fprintf(stderr, "%s\n", sdr_last_error());
    return 1;
  }
  printf("threads %d, OpenBLAS core %s\n", omp_get_max_threads(), openblas_get_corename());
  if (want(filter, "linear")) {
    bench_linear(be, 4096, 320, 320, SDR_F32);
    bench_linear(be, 154, 768, 3072, SDR_F32);
    bench_linear(be, 154, 768, 3072, SDR_F16);
    bench_linear(be, 4096, 320, 2560, SDR_F32);
  }
  for (size_t i = 0; i < sizeof conv_shapes / sizeof conv_shapes[0]; i++) {
    const conv_shape *c = &conv_shapes[i];
    bench_conv(filter, be, c->B, c->C, c->H, c->H, c->Co, c->k, c->stride, c->pad,
               c->f16 ? SDR_F16 : SDR_F32, c->reps);
  }
  if (want(filter, "attention")) {
    bench_attention(be, 2, 8, 4096, 4096, 40, 3);
    bench_attention(be, 2, 8, 4096, 77, 40, 5);
    bench_attention(be, 2, 12, 77, 77, 64, 10);
  }
  if (want(filter, "norm"))
    bench_group_norm(be, 2, 320, 64, 64);
  if (want(filter, "geglu"))
    bench_geglu(be, 8192, 1280);
  sdr_cpu_backend_destroy(be);
  return 0;
}

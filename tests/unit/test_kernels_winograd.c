/* tests/unit/test_kernels_winograd.c — the CPU backend's Winograd F(4x4, 3x3) convolution
 * (kernels/cpu/cpu_winograd.c) against a direct double-precision sum, on every code path
 * (AVX-512 where the CPU has it, AVX2's with SDREPL_CPU_ISA=avx2, on AVX-512 CPUs too, and
 * plain C with SDREPL_CPU_ISA=generic).
 *
 * Calls cpu_conv2d_winograd directly, so shapes that sdr_conv2d would send to im2col
 * (1x1 images, 3 channels) are checked too: images narrower and wider than 16 tiles
 * (groups of lanes spanning rows of tiles), sizes not multiples of 4, padding 0 to 2,
 * channel counts off the vector width and the kernel's 6 rows, several images, every
 * weight dtype, several chunks of tiles and several blocks of output channels.
 * Tolerance as test_kernels_conv2d's: |error| <= 1e-5 * sum of |terms| (+ |bias|); the
 * largest error seen is printed.
 */
#include "test_kernels_util.h"

#include "kernels/cpu/cpu_internal.h" // cpu_conv2d_winograd, cpu_winograd_pays

typedef struct wcase {
  int64_t B, C, H, W, Cout;
  int pad;
} wcase;

static double worst[3]; /* largest error / sum of |terms|, per path */

/* direct: through sdr_conv2d (which may choose im2col) rather than the Winograd entry.
 * sub > 1: only every sub-th output is summed for reference (large cases); the others
 * need only be finite, which an unwritten (NaN-poisoned) one is not. */
static void test_case_sub(sdr_backend *be, int path, wcase c, sdr_dtype dt, int with_bias,
                          int direct, int64_t sub) {
  int64_t Ho = c.H + 2 * c.pad - 2, Wo = c.W + 2 * c.pad - 2;
  int64_t nin = c.B * c.C * c.H * c.W, nout = c.B * c.Cout * Ho * Wo;
  float *x = rand_floats(nin, -1, 1), *out = poisoned(nout);
  weights w = make_weights(dt, c.Cout * c.C * 9, -0.5f, 0.5f), b = make_weights(dt, c.Cout, -1, 1);
  double *ref = malloc(sizeof(double) * (size_t)nout), *mag = malloc(sizeof(double) * (size_t)nout);
  sdr_tensor to = T4(out, SDR_F32, c.B, c.Cout, Ho, Wo), ti = T4(x, SDR_F32, c.B, c.C, c.H, c.W);
  sdr_tensor tw = T4(w.data, dt, c.Cout, c.C, 3, 3), tb = T1(b.data, dt, c.Cout);
  if (direct)
    OK(sdr_conv2d(be, &to, &ti, &tw, with_bias ? &tb : NULL, 1, c.pad));
  else
    CHECK(cpu_conv2d_winograd(be, &to, &ti, &tw, with_bias ? &tb : NULL, c.pad) == 0);
  for (int64_t n = 0; n < c.B; n++)
    for (int64_t co = 0; co < c.Cout; co++)
      for (int64_t oh = 0; oh < Ho; oh++)
        for (int64_t ow = 0; ow < Wo; ow++) {
          int64_t i = ((n * c.Cout + co) * Ho + oh) * Wo + ow;
          if (i % sub) { /* finite: passes the comparison below; inf and NaN do not */
            ref[i] = 0;
            mag[i] = 1e30;
            continue;
          }
          double s = with_bias ? b.vals[co] : 0, a = fabs(s);
          for (int64_t ci = 0; ci < c.C; ci++)
            for (int64_t ky = 0; ky < 3; ky++) {
              int64_t ih = oh - c.pad + ky;
              if (ih < 0 || ih >= c.H)
                continue;
              const float *xr = x + ((n * c.C + ci) * c.H + ih) * c.W;
              const float *wr = w.vals + ((co * c.C + ci) * 3 + ky) * 3;
              for (int64_t kx = 0; kx < 3; kx++) {
                int64_t iw = ow - c.pad + kx;
                if (iw < 0 || iw >= c.W)
                  continue;
                double t = (double)xr[iw] * wr[kx];
                s += t;
                a += fabs(t);
              }
            }
          ref[i] = s;
          mag[i] = a;
          double e = fabs((double)out[i] - s) / (a > 1e-30 ? a : 1e-30);
          if (e > worst[path] || isnan(e))
            worst[path] = isnan(e) ? INFINITY : e;
        }
  char what[160];
  snprintf(what, sizeof what, "winograd %s (%lld,%lld,%lld,%lld) p%d ->%lld %s%s%s",
           isa_names[path], (long long)c.B, (long long)c.C, (long long)c.H, (long long)c.W, c.pad,
           (long long)c.Cout, sdr_dtype_name(dt), with_bias ? " +bias" : "",
           direct ? " (sdr_conv2d)" : "");
  compare(what, out, ref, mag, nout, 1e-5, 1e-30);
  free(x);
  free(out);
  free(ref);
  free(mag);
  free_weights(&w);
  free_weights(&b);
}

static void test_case(sdr_backend *be, int path, wcase c, sdr_dtype dt, int with_bias, int direct) {
  test_case_sub(be, path, c, dt, with_bias, direct, 1);
}

int main(void) {
  static const wcase cases[] = {
      /* B, C, H, W, Cout, pad */
      {1, 16, 1, 1, 16, 1},  {1, 3, 5, 7, 4, 1},     {1, 17, 4, 4, 19, 0},   {2, 16, 8, 8, 16, 1},
      {1, 20, 13, 17, 7, 1}, {3, 16, 9, 6, 13, 2},   {1, 16, 77, 3, 16, 1},  {1, 33, 33, 65, 23, 1},
      {2, 16, 70, 70, 6, 1}, {1, 16, 37, 130, 5, 0}, {1, 18, 2, 300, 16, 1},
  };
  for (int path = 0; path < 3; path++) { /* best, generic, AVX2 where the CPU has it */
    sdr_backend *be = cpu_backend(path);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
      for (int d = 0; d < 3; d++)
        for (int bias = 0; bias < 2; bias++)
          test_case(be, path, cases[i], weight_dtypes[d], bias, 0);
    /* several chunks of tiles, the weights transformed once (1024 tiles: 448 + 448 + 128) */
    test_case(be, path, (wcase){1, 64, 128, 128, 64, 1}, SDR_F32, 1, 0);
    /* several blocks of output channels (132 + 124, 54 + 46), and several chunks each
     * transforming the weights again (960 tiles: 512 + 448) */
    test_case(be, path, (wcase){1, 256, 8, 8, 256, 1}, SDR_BF16, 1, 0);
    test_case(be, path, (wcase){2, 600, 5, 9, 100, 1}, SDR_F16, 0, 0);
    test_case_sub(be, path, (wcase){2, 256, 80, 96, 256, 1}, SDR_BF16, 1, 0, 32);
    /* SD's shapes, reduced: the dispatch must pick Winograd and get them right */
    CHECK(cpu_winograd_pays(2, 64, 64) && cpu_winograd_pays(1, 16, 16) &&
          cpu_winograd_pays(4, 8, 8));
    CHECK(!cpu_winograd_pays(2, 8, 8) && !cpu_winograd_pays(1, 4, 4) &&
          !cpu_winograd_pays(64, 1, 1) && !cpu_winograd_pays(8, 2, 2));
    test_case(be, path, (wcase){2, 320, 16, 16, 32, 1}, SDR_F16, 1, 1);
    test_case(be, path, (wcase){1, 32, 40, 40, 128, 1}, SDR_F32, 1, 1);
    test_case(be, path, (wcase){1, 3, 40, 24, 16, 1}, SDR_F32, 1, 1);  /* VAE encoder's conv_in */
    test_case(be, path, (wcase){1, 24, 40, 24, 3, 1}, SDR_BF16, 1, 1); /* VAE decoder's conv_out */
    sdr_cpu_backend_destroy(be);
  }
  fprintf(stderr,
          "winograd: largest error / sum of |terms|: %.3g (best path), %.3g (generic), %.3g "
          "(avx2)\n",
          worst[0], worst[1], worst[2]);
  return check_exit();
}

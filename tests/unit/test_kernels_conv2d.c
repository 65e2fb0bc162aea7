/* tests/unit/test_kernels_conv2d.c — conv2d on the CPU against a direct double-precision sum.
 *
 * Covers 1x1 (direct GEMM), 3x3 with padding 1 and stride 1 or 2, padding 0 with
 * stride 2 (the VAE's downsampler after its asymmetric pad), non-square kernels,
 * odd sizes, every weight dtype, and shapes large enough to need several im2col
 * chunks and several widened weight blocks. 3x3 stride-1 cases of more than 128 outputs
 * (over the batch) go to Winograd (cpu_winograd_pays), the rest to im2col.
 * Tolerance: |error| <= 1e-5 * sum of |terms| (+ |bias|) per output element.
 */
#include "test_kernels_util.h"

static const char *isa = "best"; /* the CPU path under test, named in failures */

typedef struct conv_case {
  int64_t B, C, H, W, Cout, kh, kw;
  int stride, pad;
} conv_case;

static void test_conv(sdr_backend *be, conv_case c, sdr_dtype dt, int with_bias) {
  int64_t Ho = (c.H + 2 * c.pad - c.kh) / c.stride + 1,
          Wo = (c.W + 2 * c.pad - c.kw) / c.stride + 1;
  int64_t nin = c.B * c.C * c.H * c.W, nout = c.B * c.Cout * Ho * Wo, K = c.C * c.kh * c.kw;
  float *x = rand_floats(nin, -1, 1), *out = poisoned(nout);
  weights w = make_weights(dt, c.Cout * K, -0.5f, 0.5f), b = make_weights(dt, c.Cout, -1, 1);
  double *ref = malloc(sizeof(double) * (size_t)nout), *mag = malloc(sizeof(double) * (size_t)nout);
  sdr_tensor to = T4(out, SDR_F32, c.B, c.Cout, Ho, Wo), ti = T4(x, SDR_F32, c.B, c.C, c.H, c.W);
  sdr_tensor tw = T4(w.data, dt, c.Cout, c.C, c.kh, c.kw), tb = T1(b.data, dt, c.Cout);
  OK(sdr_conv2d(be, &to, &ti, &tw, with_bias ? &tb : NULL, c.stride, c.pad));
  for (int64_t n = 0; n < c.B; n++)
    for (int64_t co = 0; co < c.Cout; co++)
      for (int64_t oh = 0; oh < Ho; oh++)
        for (int64_t ow = 0; ow < Wo; ow++) {
          double s = with_bias ? b.vals[co] : 0, a = fabs(s);
          for (int64_t ci = 0; ci < c.C; ci++)
            for (int64_t ky = 0; ky < c.kh; ky++)
              for (int64_t kx = 0; kx < c.kw; kx++) {
                int64_t ih = oh * c.stride - c.pad + ky, iw = ow * c.stride - c.pad + kx;
                if (ih < 0 || ih >= c.H || iw < 0 || iw >= c.W)
                  continue;
                double t = (double)x[((n * c.C + ci) * c.H + ih) * c.W + iw] *
                           w.vals[((co * c.C + ci) * c.kh + ky) * c.kw + kx];
                s += t;
                a += fabs(t);
              }
          int64_t i = ((n * c.Cout + co) * Ho + oh) * Wo + ow;
          ref[i] = s;
          mag[i] = a;
        }
  char what[128];
  snprintf(what, sizeof what, "%s conv2d (%lld,%lld,%lld,%lld) k%lldx%lld s%d p%d ->%lld %s%s", isa,
           (long long)c.B, (long long)c.C, (long long)c.H, (long long)c.W, (long long)c.kh,
           (long long)c.kw, c.stride, c.pad, (long long)c.Cout, sdr_dtype_name(dt),
           with_bias ? " +bias" : "");
  compare(what, out, ref, mag, nout, 1e-5, 1e-30);
  free(x);
  free(out);
  free(ref);
  free(mag);
  free_weights(&w);
  free_weights(&b);
}

static void test_errors(sdr_backend *be) {
  float buf[8] = {0};
  sdr_tensor in = T4(buf, SDR_F32, 1, 4, 8, 8), w = T4(buf, SDR_F32, 320, 3, 3, 3);
  sdr_tensor out = T4(buf, SDR_F32, 1, 320, 8, 8);
  FAILS_WITH(sdr_conv2d(be, &out, &in, &w, NULL, 1, 1),
             "sdr_conv2d: in (1, 4, 8, 8) has 4 channels, w (320, 3, 3, 3) expects 3");
  sdr_tensor w2 = T4(buf, SDR_F32, 320, 4, 3, 3);
  FAILS_WITH(sdr_conv2d(be, &out, &in, &w2, NULL, 2, 1),
             "sdr_conv2d: out (1, 320, 8, 8), expected (1, 320, 4, 4)");
  FAILS_WITH(sdr_conv2d(be, &out, &in, &w2, NULL, 0, 1),
             "sdr_conv2d: stride 0 and padding 1 (stride >= 1, padding >= 0)");
  sdr_tensor in3 = T3(buf, SDR_F32, 4, 8, 8);
  FAILS_WITH(sdr_conv2d(be, &out, &in3, &w2, NULL, 1, 1),
             "sdr_conv2d: in (4, 8, 8) is not (B, C, H, W)");
}

int main(void) {
  sdr_backend *be = cpu_backend(0);
  static const conv_case cases[] = {
      /* B, C, H, W, Cout, kh, kw, stride, pad */
      {1, 1, 1, 1, 1, 1, 1, 1, 0}, {1, 3, 5, 7, 4, 3, 3, 1, 1}, {2, 4, 9, 8, 5, 3, 3, 2, 1},
      {1, 5, 9, 9, 3, 3, 3, 2, 0}, {1, 4, 8, 8, 6, 3, 3, 2, 0}, {2, 6, 6, 5, 7, 1, 1, 1, 0},
      {1, 3, 7, 7, 2, 1, 1, 2, 0}, {1, 2, 6, 9, 3, 1, 3, 1, 1}, {1, 16, 17, 13, 8, 3, 3, 1, 1},
      {1, 3, 1, 1, 4, 3, 3, 1, 1}, {1, 2, 3, 3, 2, 3, 3, 1, 2}, {1, 7, 77, 3, 5, 3, 3, 1, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    for (int d = 0; d < 3; d++)
      for (int bias = 0; bias < 2; bias++)
        test_conv(be, cases[i], weight_dtypes[d], bias);
  /* im2col of 960 x 9024 columns (35 MB): chunks of at most 8 MB (3x3 stride 1 would go
   * to Winograd, whose own test is test_kernels_winograd) */
  test_conv(be, (conv_case){1, 64, 96, 96, 4, 3, 5, 1, 1}, SDR_F32, 1);
  test_conv(be, (conv_case){1, 64, 96, 96, 4, 3, 3, 1, 1}, SDR_F32, 1);
  test_conv(be, (conv_case){1, 64, 193, 191, 3, 3, 3, 2, 1}, SDR_F16, 0);
  /* half weights larger than one 16 MB widening block: K split into several blocks */
  test_conv(be, (conv_case){1, 1024, 4, 4, 512, 3, 3, 1, 1}, SDR_F16, 1);
  test_conv(be, (conv_case){2, 2048, 2, 2, 2100, 1, 1, 1, 0}, SDR_BF16, 1);
  test_errors(be);
  sdr_cpu_backend_destroy(be);
  /* our products (pixels in multiples of 16): a 1x1 over 64x64 with K across its
   * 256-blocks and ragged row strips, a 1x1 over 8x8, a stride-2 downsampler; on every
   * path: the best (AVX-512 or AVX2), plain C (OpenBLAS), AVX2's (on an AVX-512 CPU too) */
  for (int path = 0; path < 3; path++) { /* last: a path is process-wide */
    sdr_backend *pb = cpu_backend(path);
    isa = isa_names[path];
    test_conv(pb, (conv_case){2, 320, 64, 64, 50, 1, 1, 1, 0}, SDR_F32, 1);
    test_conv(pb, (conv_case){1, 40, 8, 8, 100, 1, 1, 1, 0}, SDR_F16, 0);
    test_conv(pb, (conv_case){2, 20, 64, 64, 20, 3, 3, 2, 1}, SDR_BF16, 1);
    sdr_cpu_backend_destroy(pb);
  }
  return check_exit();
}

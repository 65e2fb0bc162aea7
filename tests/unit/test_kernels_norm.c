/* tests/unit/test_kernels_norm.c — group_norm (with and without SiLU), layer_norm and softmax
 * on both CPU code paths (AVX-512 when present, plain C) against double precision.
 *
 * Tolerances: norms |error| <= 1e-6 * (1 + |ref|), also for data whose mean is
 * 10^4 times its spread; softmax |error| <= 2e-6 * |ref| (+1e-12 for underflow).
 */
#include "test_kernels_util.h"

static double silu_d(double v) { return v / (1 + exp(-v)); }

/* x = offset + spread * uniform(-1, 1) */
static float *norm_data(int64_t n, float offset, float spread) {
  float *x = rand_floats(n, -1, 1);
  for (int64_t i = 0; i < n; i++)
    x[i] = offset + spread * x[i];
  return x;
}

static void test_group_norm(sdr_backend *be, const char *isa, int64_t B, int64_t C, int64_t H,
                            int64_t W, int groups, int silu, sdr_dtype dt, int affine, float offset,
                            float spread, int in_place) {
  int64_t S = H * W, n = B * C * S;
  float eps = 1e-5f;
  float *x = norm_data(n, offset, spread), *out = in_place ? x : poisoned(n);
  weights g = make_weights(dt, C, 0.5f, 1.5f), b = make_weights(dt, C, -1, 1);
  double *ref = malloc(sizeof(double) * (size_t)n);
  int64_t cpg = C / groups;
  for (int64_t bi = 0; bi < B; bi++)
    for (int64_t gi = 0; gi < groups; gi++) {
      const float *xs = x + (bi * C + gi * cpg) * S;
      double mean = 0, var = 0;
      for (int64_t i = 0; i < cpg * S; i++)
        mean += xs[i];
      mean /= (double)(cpg * S);
      for (int64_t i = 0; i < cpg * S; i++)
        var += (xs[i] - mean) * (xs[i] - mean);
      var /= (double)(cpg * S);
      for (int64_t i = 0; i < cpg * S; i++) {
        int64_t c = gi * cpg + i / S;
        double v = (xs[i] - mean) / sqrt(var + eps);
        if (affine)
          v = v * g.vals[c] + b.vals[c];
        ref[(bi * C + gi * cpg) * S + i] = silu ? silu_d(v) : v;
      }
    }
  sdr_tensor to = T4(out, SDR_F32, B, C, H, W), ti = T4(x, SDR_F32, B, C, H, W);
  sdr_tensor tg = T1(g.data, dt, C), tb = T1(b.data, dt, C);
  OK(sdr_group_norm(be, &to, &ti, affine ? &tg : NULL, affine ? &tb : NULL, groups, eps, silu));
  char what[128];
  snprintf(what, sizeof what, "group_norm (%lld,%lld,%lld,%lld)/%d%s %s%s off %g %s", (long long)B,
           (long long)C, (long long)H, (long long)W, groups, silu ? " silu" : "",
           affine ? sdr_dtype_name(dt) : "no-affine", in_place ? " in-place" : "", (double)offset,
           isa);
  compare(what, out, ref, NULL, n, 1e-6, 1e-6);
  free(x);
  if (!in_place)
    free(out);
  free(ref);
  free_weights(&g);
  free_weights(&b);
}

static void test_layer_norm(sdr_backend *be, const char *isa, int64_t rows, int64_t D, sdr_dtype dt,
                            int affine, float offset, float spread) {
  int64_t n = rows * D;
  float eps = 1e-5f;
  float *x = norm_data(n, offset, spread), *out = poisoned(n);
  weights g = make_weights(dt, D, 0.5f, 1.5f), b = make_weights(dt, D, -1, 1);
  double *ref = malloc(sizeof(double) * (size_t)n);
  for (int64_t r = 0; r < rows; r++) {
    double mean = 0, var = 0;
    for (int64_t j = 0; j < D; j++)
      mean += x[r * D + j];
    mean /= (double)D;
    for (int64_t j = 0; j < D; j++)
      var += (x[r * D + j] - mean) * (x[r * D + j] - mean);
    var /= (double)D;
    for (int64_t j = 0; j < D; j++) {
      double v = (x[r * D + j] - mean) / sqrt(var + eps);
      ref[r * D + j] = affine ? v * g.vals[j] + b.vals[j] : v;
    }
  }
  sdr_tensor to = T2(out, SDR_F32, rows, D), ti = T2(x, SDR_F32, rows, D);
  sdr_tensor tg = T1(g.data, dt, D), tb = T1(b.data, dt, D);
  OK(sdr_layer_norm(be, &to, &ti, affine ? &tg : NULL, affine ? &tb : NULL, eps));
  char what[128];
  snprintf(what, sizeof what, "layer_norm (%lld,%lld) %s off %g %s", (long long)rows, (long long)D,
           affine ? sdr_dtype_name(dt) : "no-affine", (double)offset, isa);
  compare(what, out, ref, NULL, n, 1e-6, 1e-6);
  free(x);
  free(out);
  free(ref);
  free_weights(&g);
  free_weights(&b);
}

static void test_softmax(sdr_backend *be, const char *isa, int64_t rows, int64_t D, float range,
                         int in_place) {
  int64_t n = rows * D;
  float *x = rand_floats(n, -range, range), *out = in_place ? x : poisoned(n);
  if (D > 2)
    x[1] = -INFINITY; /* a masked score */
  double *ref = malloc(sizeof(double) * (size_t)n);
  for (int64_t r = 0; r < rows; r++) {
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < D; j++)
      m = fmax(m, x[r * D + j]);
    for (int64_t j = 0; j < D; j++)
      s += exp(x[r * D + j] - m);
    for (int64_t j = 0; j < D; j++)
      ref[r * D + j] = exp(x[r * D + j] - m) / s;
  }
  sdr_tensor to = T2(out, SDR_F32, rows, D), ti = T2(x, SDR_F32, rows, D);
  OK(sdr_softmax(be, &to, &ti));
  char what[96];
  snprintf(what, sizeof what, "softmax (%lld,%lld) range %g%s %s", (long long)rows, (long long)D,
           (double)range, in_place ? " in-place" : "", isa);
  compare(what, out, ref, NULL, n, 2e-6, 1e-12);
  free(x);
  if (!in_place)
    free(out);
  free(ref);
}

static void test_errors(sdr_backend *be) {
  float buf[8] = {0};
  sdr_tensor x = T4(buf, SDR_F32, 2, 320, 8, 8), y = T4(buf, SDR_F32, 2, 320, 8, 8);
  FAILS_WITH(sdr_group_norm(be, &y, &x, NULL, NULL, 30, 1e-5f, 0),
             "sdr_group_norm: 320 channels do not split into 30 groups");
  sdr_tensor g = T1(buf, SDR_F32, 32);
  FAILS_WITH(sdr_group_norm(be, &y, &x, &g, NULL, 32, 1e-5f, 0),
             "sdr_group_norm: gamma (32), expected (320)");
  sdr_tensor y2 = T2(buf, SDR_F32, 2, 768), x2 = T2(buf, SDR_F32, 2, 768),
             g2 = T1(buf, SDR_F16, 76);
  FAILS_WITH(sdr_layer_norm(be, &y2, &x2, &g2, NULL, 1e-5f),
             "sdr_layer_norm: gamma (76), expected (768)");
  /* in place is allowed, a shifted overlap is not */
  sdr_tensor y3 = T1(buf + 1, SDR_F32, 4), x3 = T1(buf, SDR_F32, 4);
  FAILS_WITH(sdr_softmax(be, &y3, &x3),
             "sdr_softmax: out overlaps in (only exact in-place use is allowed)");
}

int main(void) {
  for (int generic = 0; generic < 3; generic++) {
    sdr_backend *be = cpu_backend(generic);
    const char *isa = isa_names[generic];
    for (int d = 0; d < 3; d++) {
      sdr_dtype dt = weight_dtypes[d];
      test_group_norm(be, isa, 1, 4, 1, 1, 2, 0, dt, 1, 0, 1, 0);
      test_group_norm(be, isa, 2, 6, 3, 5, 3, 1, dt, 1, 0, 1, 0);
      test_group_norm(be, isa, 2, 32, 17, 9, 8, 0, dt, 1, 0, 1, 0);
      test_group_norm(be, isa, 1, 64, 33, 31, 32, 1, dt, 1, 0.5f, 2, 0);
      test_layer_norm(be, isa, 1, 1, dt, 1, 0, 1);
      test_layer_norm(be, isa, 3, 17, dt, 1, 0, 1);
      test_layer_norm(be, isa, 77, 768, dt, 1, 0, 1);
    }
    test_group_norm(be, isa, 2, 12, 7, 5, 4, 1, SDR_F32, 0, 0, 1, 0);
    test_group_norm(be, isa, 2, 12, 7, 5, 4, 1, SDR_F32, 1, 0, 1, 1);
    test_group_norm(be, isa, 1, 8, 16, 16, 2, 0, SDR_F32, 0, 100, 0.01f, 0); /* |mean| >> std */
    test_layer_norm(be, isa, 5, 130, SDR_F32, 0, 0, 1);
    test_layer_norm(be, isa, 4, 320, SDR_F32, 1, -300, 0.03f);
    test_softmax(be, isa, 1, 1, 1, 0);
    test_softmax(be, isa, 3, 17, 5, 0);
    test_softmax(be, isa, 154, 77, 30, 0);
    test_softmax(be, isa, 4, 4096, 100, 0);
    test_softmax(be, isa, 5, 130, 10, 1);
    if (!generic)
      test_errors(be);
    sdr_cpu_backend_destroy(be);
  }
  return check_exit();
}

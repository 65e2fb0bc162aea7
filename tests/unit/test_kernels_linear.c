/* tests/unit/test_kernels_linear.c — linear and bmm on the CPU against double-precision sums.
 *
 * Tolerance: |error| <= 1e-5 * sum of |terms| (+ |bias|) per output element, for every
 * weight dtype (the reference uses the weights exactly as widened).
 */
#include "test_kernels_util.h"

static const char *isa = "best"; /* the CPU path under test, named in failures */

/* out (M, N) = x (M, K) w (N, K)^T + b */
static void ref_linear(double *ref, double *mag, const float *x, const float *w, const float *b,
                       int64_t M, int64_t K, int64_t N) {
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) {
      double s = b ? b[n] : 0, a = b ? fabs(b[n]) : 0;
      for (int64_t k = 0; k < K; k++) {
        double t = (double)x[m * K + k] * w[n * K + k];
        s += t;
        a += fabs(t);
      }
      ref[m * N + n] = s;
      mag[m * N + n] = a;
    }
}

static void test_linear(sdr_backend *be, int64_t B, int64_t T, int64_t K, int64_t N, sdr_dtype dt,
                        int with_bias) {
  int64_t M = B * T;
  float *x = rand_floats(M * K, -1, 1), *out = poisoned(M * N);
  weights w = make_weights(dt, N * K, -0.5f, 0.5f), b = make_weights(dt, N, -1, 1);
  double *ref = malloc(sizeof(double) * (size_t)(M * N + 1));
  double *mag = malloc(sizeof(double) * (size_t)(M * N + 1));
  sdr_tensor to = T3(out, SDR_F32, B, T, N), ti = T3(x, SDR_F32, B, T, K);
  sdr_tensor tw = T2(w.data, dt, N, K), tb = T1(b.data, dt, N);
  OK(sdr_linear(be, &to, &ti, &tw, with_bias ? &tb : NULL));
  ref_linear(ref, mag, x, w.vals, with_bias ? b.vals : NULL, M, K, N);
  char what[96];
  snprintf(what, sizeof what, "%s linear (%lld,%lld,%lld)x(%lld,%lld) %s%s", isa, (long long)B,
           (long long)T, (long long)K, (long long)N, (long long)K, sdr_dtype_name(dt),
           with_bias ? " +bias" : "");
  compare(what, out, ref, mag, M * N, 1e-5, 1e-30);
  free(x);
  free(out);
  free(ref);
  free(mag);
  free_weights(&w);
  free_weights(&b);
}

static void test_bmm(sdr_backend *be, int64_t B, int64_t M, int64_t K, int64_t N, int trans_b,
                     float alpha) {
  float *a = rand_floats(B * M * K, -1, 1), *b = rand_floats(B * K * N, -1, 1);
  float *out = poisoned(B * M * N);
  double *ref = malloc(sizeof(double) * (size_t)(B * M * N));
  double *mag = malloc(sizeof(double) * (size_t)(B * M * N));
  sdr_tensor to = T3(out, SDR_F32, B, M, N), ta = T3(a, SDR_F32, B, M, K);
  sdr_tensor tb = trans_b ? T3(b, SDR_F32, B, N, K) : T3(b, SDR_F32, B, K, N);
  OK(sdr_bmm(be, &to, &ta, &tb, trans_b, alpha));
  for (int64_t i = 0; i < B; i++)
    for (int64_t m = 0; m < M; m++)
      for (int64_t n = 0; n < N; n++) {
        double s = 0, g = 0;
        for (int64_t k = 0; k < K; k++) {
          double bv = trans_b ? b[(i * N + n) * K + k] : b[(i * K + k) * N + n];
          double t = (double)a[(i * M + m) * K + k] * bv * alpha;
          s += t;
          g += fabs(t);
        }
        ref[(i * M + m) * N + n] = s;
        mag[(i * M + m) * N + n] = g;
      }
  char what[96];
  snprintf(what, sizeof what, "bmm B%lld M%lld K%lld N%lld%s", (long long)B, (long long)M,
           (long long)K, (long long)N, trans_b ? " b^T" : "");
  compare(what, out, ref, mag, B * M * N, 1e-5, 1e-30);
  free(a);
  free(b);
  free(out);
  free(ref);
  free(mag);
}

static void test_errors(sdr_backend *be) {
  float buf[16] = {0};
  sdr_tensor out = T3(buf, SDR_F32, 2, 77, 320), in = T3(buf, SDR_F32, 2, 77, 768);
  sdr_tensor w = T2(buf, SDR_F32, 320, 512);
  FAILS_WITH(sdr_linear(be, &out, &in, &w, NULL),
             "sdr_linear: in (2, 77, 768) and w (320, 512): inner dimensions differ");
  sdr_tensor w2 = T2(buf, SDR_F32, 300, 768);
  FAILS_WITH(sdr_linear(be, &out, &in, &w2, NULL),
             "sdr_linear: out (2, 77, 320), expected (2, 77, 300)");
  sdr_tensor w3 = T2(buf, SDR_I64, 320, 768);
  FAILS_WITH(sdr_linear(be, &out, &in, &w3, NULL),
             "sdr_linear: w has dtype int64, expected float32, float16 or bfloat16");
  sdr_tensor w4 = T2(buf, SDR_F32, 320, 768), b4 = T1(buf, SDR_F32, 321);
  FAILS_WITH(sdr_linear(be, &out, &in, &w4, &b4), "sdr_linear: bias (321), expected (320)");
  sdr_tensor cu = in;
  cu.device = SDR_DEVICE_CUDA;
  FAILS_WITH(sdr_linear(be, &out, &cu, &w4, NULL),
             "sdr_linear: in is on cuda, the cpu backend on cpu");
  FAILS_WITH(sdr_linear(be, &out, NULL, &w4, NULL), "sdr_linear: in is NULL");
  /* out and in share memory */
  float small[6] = {0};
  sdr_tensor so = T2(small, SDR_F32, 2, 2), si = T2(small + 2, SDR_F32, 2, 2),
             sw = T2(small, SDR_F32, 2, 2);
  FAILS_WITH(sdr_linear(be, &so, &si, &sw, NULL), "sdr_linear: out overlaps in");
  sdr_tensor a = T3(buf, SDR_F32, 2, 3, 4), b = T3(buf, SDR_F32, 3, 4, 5);
  sdr_tensor o = T3(buf, SDR_F32, 2, 3, 5);
  FAILS_WITH(sdr_bmm(be, &o, &a, &b, 0, 1.0f),
             "sdr_bmm: a (2, 3, 4) and b (3, 4, 5): batch sizes differ");
  sdr_tensor b2 = T3(buf, SDR_F32, 2, 5, 5);
  FAILS_WITH(sdr_bmm(be, &o, &a, &b2, 1, 1.0f),
             "sdr_bmm: a (2, 3, 4) and b (2, 5, 5) (transposed): inner dimensions differ");
}

int main(void) {
  sdr_backend *be = cpu_backend(0);
  static const int64_t shapes[][4] = {/* B, T, K, N */
                                      {1, 1, 1, 1},    {1, 3, 17, 5},   {2, 77, 130, 33},
                                      {1, 130, 77, 3}, {2, 5, 320, 17}, {1, 17, 1, 130}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int d = 0; d < 3; d++)
      for (int bias = 0; bias < 2; bias++)
        test_linear(be, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], weight_dtypes[d],
                    bias);
  /* half weights larger than one 16 MB widening block: several blocks of output features */
  test_linear(be, 1, 3, 2048, 2100, SDR_F16, 1);
  test_linear(be, 1, 2, 4100, 1030, SDR_BF16, 0);
  /* K = 0: an empty sum, out is the bias */
  test_linear(be, 1, 3, 0, 5, SDR_F32, 1);

  test_bmm(be, 1, 1, 1, 1, 0, 1.0f);
  test_bmm(be, 3, 17, 5, 13, 0, 0.5f);
  test_bmm(be, 3, 17, 5, 13, 1, 0.125f);
  test_bmm(be, 16, 77, 64, 77, 1, 0.125f); /* many small: one product per thread */
  test_bmm(be, 2, 130, 200, 170, 0, 1.0f); /* large: threads inside BLAS */
  test_errors(be);
  sdr_cpu_backend_destroy(be);
  /* Our kernel (cpu_gemm.c; N a multiple of 16): strips of 6 rows and blocks of
   * 96 with ragged ends, a last panel narrower than 64, K across its 256-blocks, panels
   * packed a group at a time when they do not all fit the workspace (K = 5000), K not a
   * multiple of AVX2's 8 or AVX-512's 16 dims packed at once. On every path: the best
   * (AVX-512 or AVX2), plain C (OpenBLAS), AVX2's (on an AVX-512 CPU too). */
  static const int64_t gemm_shapes[][4] = {
      {1, 1, 1, 16},     {1, 7, 17, 48},     {2, 97, 257, 80}, {1, 200, 600, 320},
      {2, 4, 256, 2560}, {1, 8, 5000, 2560}, {1, 13, 100, 32}};
  for (int path = 0; path < 3; path++) { /* last: a path is process-wide */
    sdr_backend *pb = cpu_backend(path);
    isa = isa_names[path];
    for (size_t s = 0; s < sizeof gemm_shapes / sizeof gemm_shapes[0]; s++)
      for (int d = 0; d < 3; d++)
        test_linear(pb, gemm_shapes[s][0], gemm_shapes[s][1], gemm_shapes[s][2], gemm_shapes[s][3],
                    weight_dtypes[d], d == 1);
    sdr_cpu_backend_destroy(pb);
  }
  return check_exit();
}

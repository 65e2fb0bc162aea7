/* tests/unit/test_kernels_elementwise.c — unary activations, GEGLU, broadcasting binary ops,
 * affine and fill, on both CPU code paths, against double precision.
 *
 * Tolerances: activations |error| <= 2e-6 * |ref| + 1e-9 (the 1e-9 covers GELU's far
 * negative tail, below 1e-9 in value); binary ops exact (a float op is correctly
 * rounded, and so is the double result rounded to float); affine 1e-6 relative.
 */
#include "test_kernels_util.h"

static double unary_ref(sdr_unary_op op, double x) {
  switch (op) {
  case SDR_UNARY_SILU:
    return x / (1 + exp(-x));
  case SDR_UNARY_GELU:
    return 0.5 * x * erfc(-x / sqrt(2.0));
  case SDR_UNARY_GELU_TANH:
    return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
  case SDR_UNARY_QUICK_GELU:
    return x / (1 + exp(-1.702 * x));
  case SDR_UNARY_EXP:
    return exp(x);
  case SDR_UNARY_SQRT:
    return sqrt(x);
  case SDR_UNARY_RELU:
    return x < 0 ? 0 : x;
  case SDR_UNARY_TANH:
    return tanh(x);
  default:
    return NAN;
  }
}

static void test_unary(sdr_backend *be, const char *isa, sdr_unary_op op, int64_t n, float lo,
                       float hi, int in_place) {
  float *x = rand_floats(n, lo, hi), *out = in_place ? x : poisoned(n);
  static const float special[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 1.0f, -1.0f, 3.0f, -3.0f};
  for (int64_t i = 0; i < n && i < 8; i++)
    if (op != SDR_UNARY_SQRT || special[i] >= 0)
      x[i] = special[i];
  double *ref = malloc(sizeof(double) * (size_t)n);
  for (int64_t i = 0; i < n; i++)
    ref[i] = unary_ref(op, x[i]);
  sdr_tensor to = T2(out, SDR_F32, 1, n), ti = T2(x, SDR_F32, 1, n);
  OK(sdr_unary(be, &to, &ti, op));
  char what[96];
  snprintf(what, sizeof what, "%s n%lld [%g, %g]%s %s", sdr_unary_name((sdr_unary_op)op),
           (long long)n, (double)lo, (double)hi, in_place ? " in-place" : "", isa);
  compare(what, out, ref, NULL, n, 2e-6, 1e-9);
  free(x);
  if (!in_place)
    free(out);
  free(ref);
}

/* Edges every path must get right: overflow, underflow, NaN and infinities pass through. */
static void test_unary_edges(sdr_backend *be, const char *isa) {
  float x[20] = {100.0f, -200.0f, NAN, INFINITY, -INFINITY, 88.0f, -87.0f, -100.0f};
  for (int i = 8; i < 20; i++)
    x[i] = NAN; /* the vector tail too */
  float y[20];
  sdr_tensor tx = T1(x, SDR_F32, 20), ty = T1(y, SDR_F32, 20);
  OK(sdr_unary(be, &ty, &tx, SDR_UNARY_EXP));
  CHECK(isinf(y[0]) && y[0] > 0);
  CHECK(y[1] == 0.0f);
  CHECK(isnan(y[2]));
  CHECK(isinf(y[3]) && y[4] == 0.0f);
  CHECK(fabs(y[5] / exp(88.0) - 1) < 1e-6 && fabs(y[6] / exp(-87.0) - 1) < 1e-6);
  CHECK(y[7] >= 0 && y[7] < 1e-43f);
  for (int i = 8; i < 20; i++)
    CHECK(isnan(y[i]));
  for (int op = 0; op < SDR_UNARY_COUNT; op++) {
    OK(sdr_unary(be, &ty, &tx, (sdr_unary_op)op));
    if (isnan(y[2]) == 0)
      fprintf(stderr, "%s %s: NaN in, %g out\n", sdr_unary_name((sdr_unary_op)op), isa,
              (double)y[2]);
    CHECK(isnan(y[2]));
  }
  /* as torch: silu(-inf) = -inf / inf and gelu(-inf) = -inf * 0 are NaN */
  OK(sdr_unary(be, &ty, &tx, SDR_UNARY_SILU));
  CHECK(y[0] == 100.0f && y[1] == 0.0f && isinf(y[3]) && isnan(y[4]));
  OK(sdr_unary(be, &ty, &tx, SDR_UNARY_GELU));
  CHECK(y[0] == 100.0f && y[1] == 0.0f && isinf(y[3]) && isnan(y[4]));
  OK(sdr_unary(be, &ty, &tx, SDR_UNARY_TANH));
  CHECK(y[0] == 1.0f && y[1] == -1.0f && y[3] == 1.0f && y[4] == -1.0f);
  OK(sdr_unary(be, &ty, &tx, SDR_UNARY_RELU));
  CHECK(y[0] == 100.0f && y[1] == 0.0f && isinf(y[3]) && y[4] == 0.0f);
}

static void test_geglu(sdr_backend *be, const char *isa, int64_t rows, int64_t D) {
  float *x = rand_floats(rows * 2 * D, -5, 5), *out = poisoned(rows * D);
  double *ref = malloc(sizeof(double) * (size_t)(rows * D));
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < D; j++)
      ref[r * D + j] = x[r * 2 * D + j] * unary_ref(SDR_UNARY_GELU, x[r * 2 * D + D + j]);
  sdr_tensor to = T2(out, SDR_F32, rows, D), ti = T2(x, SDR_F32, rows, 2 * D);
  OK(sdr_geglu(be, &to, &ti));
  char what[64];
  snprintf(what, sizeof what, "geglu (%lld,%lld) %s", (long long)rows, (long long)(2 * D), isa);
  compare(what, out, ref, NULL, rows * D, 2e-6, 1e-9);
  free(x);
  free(out);
  free(ref);
}

/* a and b of any shapes that broadcast; reference by explicit index arithmetic. */
static void test_binary(sdr_backend *be, sdr_binary_op op, sdr_tensor ta, sdr_tensor tb,
                        int in_place_a) {
  int nd;
  int64_t shape[SDR_MAX_DIMS], na = sdr_tensor_numel(&ta), nb = sdr_tensor_numel(&tb);
  CHECK(sdr_broadcast_shape(&ta, &tb, &nd, shape) == 0);
  sdr_tensor to = sdr_tensor_view(NULL, SDR_F32, SDR_DEVICE_CPU, nd, shape);
  int64_t n = sdr_tensor_numel(&to);
  float *a = rand_floats(na, -2, 2), *b = rand_floats(nb, 0.5f, 2);
  ta.data = a;
  tb.data = b;
  float *out = in_place_a ? a : poisoned(n);
  to.data = out;
  double *ref = malloc(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) {
    int64_t rem = i, ia = 0, ib = 0, sa = 1, sb = 1;
    for (int d = nd - 1; d >= 0; d--) {
      int64_t c = rem % shape[d];
      rem /= shape[d];
      int da = ta.ndim - nd + d, db = tb.ndim - nd + d;
      if (da >= 0) {
        ia += (ta.shape[da] == 1 ? 0 : c) * sa;
        sa *= ta.shape[da];
      }
      if (db >= 0) {
        ib += (tb.shape[db] == 1 ? 0 : c) * sb;
        sb *= tb.shape[db];
      }
    }
    double x = a[ia], y = b[ib];
    double r = op == SDR_BINARY_ADD   ? x + y
               : op == SDR_BINARY_SUB ? x - y
               : op == SDR_BINARY_MUL ? x * y
                                      : x / y;
    ref[i] = (float)r; /* correctly rounded float result */
  }
  OK(sdr_binary(be, &to, &ta, &tb, op));
  char sa_[64], sb_[64], what[160];
  snprintf(what, sizeof what, "binary %d %s %s%s", (int)op, sdr_shape_str(&ta, sa_, sizeof sa_),
           sdr_shape_str(&tb, sb_, sizeof sb_), in_place_a ? " in-place" : "");
  compare(what, out, ref, NULL, n, 0, 0);
  free(a);
  free(b);
  if (!in_place_a)
    free(out);
  free(ref);
}

static void test_affine_fill(sdr_backend *be) {
  int64_t n = 100003;
  float *x = rand_floats(n, -3, 3), *out = poisoned(n);
  double *ref = malloc(sizeof(double) * (size_t)n);
  for (int64_t i = 0; i < n; i++)
    ref[i] = x[i] * 0.18215 - 1.0;
  sdr_tensor to = T1(out, SDR_F32, n), ti = T1(x, SDR_F32, n);
  OK(sdr_affine(be, &to, &ti, 0.18215f, -1.0f));
  compare("affine", out, ref, NULL, n, 1e-6, 1e-7);
  OK(sdr_fill(be, &to, 0.25f));
  for (int64_t i = 0; i < n; i++)
    ref[i] = 0.25;
  compare("fill float32", out, ref, NULL, n, 0, 0);
  uint16_t h[77];
  sdr_tensor th = T1(h, SDR_F16, 77);
  OK(sdr_fill(be, &th, 1.0f / 3.0f));
  int same = 1;
  for (int i = 0; i < 77; i++)
    same &= h[i] == sdr_f32_to_f16(1.0f / 3.0f);
  th.dtype = SDR_BF16;
  OK(sdr_fill(be, &th, -2.5f));
  for (int i = 0; i < 77; i++)
    same &= h[i] == sdr_f32_to_bf16(-2.5f);
  CHECK(same);
  free(x);
  free(out);
  free(ref);
}

static void test_errors(sdr_backend *be) {
  float buf[8] = {0};
  sdr_tensor a = T2(buf, SDR_F32, 3, 4), b = T2(buf, SDR_F32, 2, 4), o = T2(buf, SDR_F32, 3, 4);
  FAILS_WITH(sdr_binary(be, &o, &a, &b, SDR_BINARY_ADD),
             "sdr_binary: a (3, 4) and b (2, 4) do not broadcast");
  sdr_tensor b2 = T1(buf, SDR_F32, 4), o2 = T2(buf, SDR_F32, 4, 4);
  FAILS_WITH(sdr_binary(be, &o2, &a, &b2, SDR_BINARY_ADD),
             "sdr_binary: out (4, 4), expected (3, 4)");
  FAILS_WITH(sdr_unary(be, &o, &a, (sdr_unary_op)99), "sdr_unary: unknown operation 99");
  sdr_tensor g = T2(buf, SDR_F32, 3, 5);
  FAILS_WITH(sdr_geglu(be, &o, &g), "sdr_geglu: in (3, 5) must end in an even dimension");
  FAILS_WITH(sdr_unary(NULL, &o, &a, SDR_UNARY_EXP), "sdr_unary: no backend");
}

int main(void) {
  for (int generic = 0; generic < 3; generic++) {
    sdr_backend *be = cpu_backend(generic);
    const char *isa = isa_names[generic];
    static const int64_t sizes[] = {1, 3, 17, 77, 130, 70001};
    for (int op = 0; op < SDR_UNARY_COUNT; op++)
      for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        float lo = op == SDR_UNARY_SQRT ? 0 : op == SDR_UNARY_EXP ? -87 : -12;
        float hi = op == SDR_UNARY_SQRT ? 1e4f : op == SDR_UNARY_EXP ? 88 : 12;
        test_unary(be, isa, (sdr_unary_op)op, sizes[s], lo, hi, 0);
      }
    test_unary(be, isa, SDR_UNARY_GELU, 1000, -3, 3, 1);
    test_unary(be, isa, SDR_UNARY_SILU, 1000, -3, 3, 1);
    test_unary_edges(be, isa);
    test_geglu(be, isa, 1, 1);
    test_geglu(be, isa, 3, 17);
    test_geglu(be, isa, 77, 130);
    sdr_cpu_backend_destroy(be);
  }
  sdr_backend *be = cpu_backend(0);
  for (int op = 0; op < SDR_BINARY_COUNT; op++) {
    sdr_binary_op bop = (sdr_binary_op)op;
    test_binary(be, bop, T4(NULL, SDR_F32, 2, 3, 4, 5), T4(NULL, SDR_F32, 2, 3, 4, 5), 0);
    test_binary(be, bop, T4(NULL, SDR_F32, 2, 320, 9, 7), T4(NULL, SDR_F32, 1, 320, 1, 1), 0);
    test_binary(be, bop, T4(NULL, SDR_F32, 2, 320, 9, 7), T3(NULL, SDR_F32, 320, 1, 1), 1);
    test_binary(be, bop, T3(NULL, SDR_F32, 2, 77, 768), T1(NULL, SDR_F32, 768), 0);
    test_binary(be, bop, T2(NULL, SDR_F32, 3, 1), T2(NULL, SDR_F32, 1, 4), 0);
    test_binary(be, bop, sdr_tensor_view(NULL, SDR_F32, SDR_DEVICE_CPU, 0, NULL),
                T1(NULL, SDR_F32, 7), 0);
    test_binary(be, bop, T3(NULL, SDR_F32, 2, 1, 4), T2(NULL, SDR_F32, 3, 1), 0);
    test_binary(be, bop, T1(NULL, SDR_F32, 1), T1(NULL, SDR_F32, 1), 0);
    test_binary(be, bop, T2(NULL, SDR_F32, 2, 1280), T4(NULL, SDR_F32, 2, 1, 1, 1280), 0);
    test_binary(be, bop, T3(NULL, SDR_F32, 2, 70000, 1), T3(NULL, SDR_F32, 2, 1, 1), 1);
    test_binary(be, bop, T1(NULL, SDR_F32, 200001), T1(NULL, SDR_F32, 200001), 1);
    test_binary(be, bop, T4(NULL, SDR_F32, 1, 4, 1, 9), T4(NULL, SDR_F32, 5, 1, 3, 1), 0);
  }
  test_affine_fill(be);
  test_errors(be);
  sdr_cpu_backend_destroy(be);
  return check_exit();
}

/* tests/unit/test_kernels_layout.c — permute, concat, upsample_nearest2x, cast, embedding and
 * timestep_embedding on the CPU.
 *
 * Moves and conversions are exact: permute, concat, upsample and embedding compare
 * bytes; casts compare with kernels/half.h's scalar conversions bit for bit (every
 * float16 and bfloat16 value, and random float32 bit patterns of every exponent);
 * NaN must stay NaN. timestep_embedding is checked against values printed by
 * torch 1.13 running diffusers' get_timestep_embedding (|error| <= 2e-7), and
 * against a double-precision formula for small t (|error| <= 1e-6).
 */
#include "test_kernels_util.h"

/* ---- permute ---- */

static void fill_bytes(void *p, size_t n) {
  unsigned char *c = p;
  for (size_t i = 0; i < n; i++)
    c[i] = (unsigned char)(rng_next() >> 56);
}

static void test_permute(sdr_backend *be, sdr_dtype dt, int nd, const int64_t *shape,
                         const int *perm) {
  size_t es = sdr_dtype_size(dt);
  sdr_tensor in = sdr_tensor_view(NULL, dt, SDR_DEVICE_CPU, nd, shape);
  int64_t n = sdr_tensor_numel(&in), oshape[SDR_MAX_DIMS], istride[SDR_MAX_DIMS], s = 1;
  for (int i = nd - 1; i >= 0; i--) {
    istride[i] = s;
    s *= shape[i];
  }
  for (int i = 0; i < nd; i++)
    oshape[i] = shape[perm[i]];
  char *x = malloc((size_t)n * es + 1), *y = malloc((size_t)n * es + 1);
  fill_bytes(x, (size_t)n * es);
  memset(y, 0xff, (size_t)n * es);
  in.data = x;
  sdr_tensor out = sdr_tensor_view(y, dt, SDR_DEVICE_CPU, nd, oshape);
  OK(sdr_permute(be, &out, &in, perm));
  int bad = 0;
  for (int64_t o = 0; o < n; o++) {
    int64_t rem = o, off = 0;
    for (int i = nd - 1; i >= 0; i--) {
      off += rem % oshape[i] * istride[perm[i]];
      rem /= oshape[i];
    }
    bad += memcmp(y + (size_t)o * es, x + (size_t)off * es, es) != 0;
  }
  if (bad) {
    char a[64];
    fprintf(stderr, "permute %s of %s, perm %d %d %d %d %d: %d wrong\n", sdr_dtype_name(dt),
            sdr_shape_str(&in, a, sizeof a), perm[0], nd > 1 ? perm[1] : -1, nd > 2 ? perm[2] : -1,
            nd > 3 ? perm[3] : -1, nd > 4 ? perm[4] : -1, bad);
    check_failures++;
  }
  free(x);
  free(y);
}

static void test_permutes(sdr_backend *be) {
  static const int64_t sizes[] = {1, 2, 3, 5, 7, 17};
  static const sdr_dtype dts[] = {SDR_F32, SDR_F16, SDR_I64, SDR_U8};
  for (int iter = 0; iter < 300; iter++) {
    int nd = 1 + (int)(rng_next() % 5), perm[SDR_MAX_DIMS];
    int64_t shape[SDR_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
      shape[i] = sizes[rng_next() % 6];
      perm[i] = i;
    }
    for (int i = nd - 1; i > 0; i--) { /* Fisher-Yates */
      int j = (int)(rng_next() % (uint64_t)(i + 1)), t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
    test_permute(be, dts[iter % 4], nd, shape, perm);
  }
  static const int nchw_nhwc[] = {0, 2, 3, 1}, nhwc_nchw[] = {0, 3, 1, 2}, t2[] = {1, 0},
                   bt[] = {0, 2, 1}, heads[] = {0, 2, 1, 3};
  test_permute(be, SDR_F32, 4, (int64_t[]){2, 320, 9, 7}, nchw_nhwc);
  test_permute(be, SDR_F32, 4, (int64_t[]){2, 9, 7, 320}, nhwc_nchw);
  test_permute(be, SDR_F32, 2, (int64_t[]){130, 77}, t2);
  test_permute(be, SDR_F16, 2, (int64_t[]){33, 65}, t2);
  test_permute(be, SDR_F32, 3, (int64_t[]){2, 4096, 40}, bt);
  test_permute(be, SDR_F32, 4, (int64_t[]){2, 77, 12, 64}, heads);
  test_permute(be, SDR_F32, 4, (int64_t[]){1, 1, 1, 1}, nchw_nhwc);
}

/* ---- concat, upsample ---- */

static void test_concat(sdr_backend *be, sdr_dtype dt, int nd, const int64_t *shape, int dim,
                        int64_t na, int64_t nb) {
  size_t es = sdr_dtype_size(dt);
  int d = dim < 0 ? dim + nd : dim;
  int64_t sa[SDR_MAX_DIMS], sb[SDR_MAX_DIMS], so[SDR_MAX_DIMS];
  memcpy(sa, shape, sizeof(int64_t) * (size_t)nd);
  memcpy(sb, shape, sizeof(int64_t) * (size_t)nd);
  memcpy(so, shape, sizeof(int64_t) * (size_t)nd);
  sa[d] = na;
  sb[d] = nb;
  so[d] = na + nb;
  sdr_tensor a = sdr_tensor_view(NULL, dt, SDR_DEVICE_CPU, nd, sa);
  sdr_tensor b = sdr_tensor_view(NULL, dt, SDR_DEVICE_CPU, nd, sb);
  sdr_tensor o = sdr_tensor_view(NULL, dt, SDR_DEVICE_CPU, nd, so);
  size_t ba = sdr_tensor_nbytes(&a), bb = sdr_tensor_nbytes(&b), bo = sdr_tensor_nbytes(&o);
  a.data = malloc(ba + 1);
  b.data = malloc(bb + 1);
  o.data = malloc(bo + 1);
  fill_bytes(a.data, ba);
  fill_bytes(b.data, bb);
  memset(o.data, 0xff, bo);
  OK(sdr_concat(be, &o, &a, &b, dim));
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < d; i++)
    outer *= shape[i];
  for (int i = d + 1; i < nd; i++)
    inner *= shape[i];
  int bad = 0;
  for (int64_t i = 0; i < outer; i++) {
    const char *row = (const char *)o.data + (size_t)(i * (na + nb) * inner) * es;
    bad += memcmp(row, (const char *)a.data + (size_t)(i * na * inner) * es,
                  (size_t)(na * inner) * es) != 0;
    bad += memcmp(row + (size_t)(na * inner) * es,
                  (const char *)b.data + (size_t)(i * nb * inner) * es,
                  (size_t)(nb * inner) * es) != 0;
  }
  if (bad) {
    fprintf(stderr, "concat dim %d (%lld + %lld): %d rows wrong\n", dim, (long long)na,
            (long long)nb, bad);
    check_failures++;
  }
  free(a.data);
  free(b.data);
  free(o.data);
}

static void test_upsample(sdr_backend *be, int64_t B, int64_t C, int64_t H, int64_t W) {
  int64_t n = B * C * H * W;
  float *x = rand_floats(n, -1, 1), *y = poisoned(4 * n);
  sdr_tensor ti = T4(x, SDR_F32, B, C, H, W), to = T4(y, SDR_F32, B, C, 2 * H, 2 * W);
  OK(sdr_upsample_nearest2x(be, &to, &ti));
  double *ref = malloc(sizeof(double) * (size_t)(4 * n));
  for (int64_t p = 0; p < B * C; p++)
    for (int64_t i = 0; i < 2 * H; i++)
      for (int64_t j = 0; j < 2 * W; j++)
        ref[(p * 2 * H + i) * 2 * W + j] = x[(p * H + i / 2) * W + j / 2];
  compare("upsample_nearest2x", y, ref, NULL, 4 * n, 0, 0);
  free(x);
  free(y);
  free(ref);
}

/* ---- cast ---- */

static int same_or_both_nan(float a, float b) {
  return (isnan(a) && isnan(b)) || memcmp(&a, &b, 4) == 0;
}

static void test_casts(sdr_backend *be) {
  /* every float16 and bfloat16 value to float32 */
  int64_t n = 65536;
  uint16_t *h = malloc(2 * (size_t)n), *back = malloc(2 * (size_t)n);
  float *f = poisoned(n);
  for (int64_t i = 0; i < n; i++)
    h[i] = (uint16_t)i;
  for (int bf = 0; bf < 2; bf++) {
    sdr_dtype dt = bf ? SDR_BF16 : SDR_F16;
    sdr_tensor th = T1(h, dt, n), tf = T1(f, SDR_F32, n);
    OK(sdr_cast(be, &tf, &th));
    int bad = 0;
    for (int64_t i = 0; i < n; i++)
      bad += !same_or_both_nan(f[i], bf ? sdr_bf16_to_f32(h[i]) : sdr_f16_to_f32(h[i]));
    CHECK(bad == 0);
    /* and back: every value survives the round trip, NaN stays NaN */
    sdr_tensor tb = T1(back, dt, n);
    OK(sdr_cast(be, &tb, &tf));
    bad = 0;
    for (int64_t i = 0; i < n; i++) {
      float a = bf ? sdr_bf16_to_f32(back[i]) : sdr_f16_to_f32(back[i]);
      bad += isnan(f[i]) ? !isnan(a) : back[i] != h[i];
    }
    CHECK(bad == 0);
    poison(f, n);
  }
  /* random float32 bit patterns (all exponents, NaNs, subnormals) to both halves */
  int64_t m = 200003;
  uint32_t *bits = malloc(4 * (size_t)m);
  for (int64_t i = 0; i < m; i++)
    bits[i] = (uint32_t)(rng_next() >> 32);
  float special[] = {65504.0f,      65519.99f,     65520.0f,      1e-8f,
                     5.9604645e-8f, 2.9802322e-8f, 2.9802326e-8f, 1.0009766f,
                     1.0004883f,    1.0014648f,    INFINITY,      -INFINITY};
  memcpy(bits, special, sizeof special);
  uint16_t *o16 = malloc(2 * (size_t)m);
  for (int bf = 0; bf < 2; bf++) {
    sdr_dtype dt = bf ? SDR_BF16 : SDR_F16;
    sdr_tensor tin = T1(bits, SDR_F32, m), tout = T1(o16, dt, m);
    OK(sdr_cast(be, &tout, &tin));
    int bad = 0;
    for (int64_t i = 0; i < m; i++) {
      float x;
      memcpy(&x, &bits[i], 4);
      uint16_t want = bf ? sdr_f32_to_bf16(x) : sdr_f32_to_f16(x);
      if (o16[i] != want && bad++ < 5)
        fprintf(stderr, "cast %08x to %s: %04x, want %04x\n", bits[i], sdr_dtype_name(dt), o16[i],
                want);
    }
    CHECK(bad == 0);
  }
  /* float16 <-> bfloat16 goes through float */
  sdr_tensor t16 = T1(h, SDR_F16, n), tbf = T1(back, SDR_BF16, n);
  OK(sdr_cast(be, &tbf, &t16));
  int bad = 0;
  for (int64_t i = 0; i < n; i++) {
    float x = sdr_f16_to_f32(h[i]);
    bad += isnan(x) ? !isnan(sdr_bf16_to_f32(back[i])) : back[i] != sdr_f32_to_bf16(x);
  }
  CHECK(bad == 0);
  /* int64 to float32 */
  int64_t ids[5] = {0, 1, -7, 49407, (int64_t)1 << 40};
  float fi[5];
  sdr_tensor ti = T1(ids, SDR_I64, 5), tfi = T1(fi, SDR_F32, 5);
  OK(sdr_cast(be, &tfi, &ti));
  CHECK(fi[0] == 0 && fi[1] == 1 && fi[2] == -7 && fi[3] == 49407 && fi[4] == 1099511627776.0f);
  sdr_tensor t16i = T1(o16, SDR_F16, 5);
  FAILS_WITH(sdr_cast(be, &t16i, &ti), "sdr_cast: int64 casts only to float32, not float16");
  free(h);
  free(back);
  free(f);
  free(bits);
  free(o16);
}

/* ---- embedding ---- */

static void test_embedding(sdr_backend *be, sdr_dtype dt, int64_t V, int64_t D, int64_t B,
                           int64_t T) {
  weights tab = make_weights(dt, V * D, -1, 1);
  int64_t *ids = malloc(sizeof(int64_t) * (size_t)(B * T));
  for (int64_t i = 0; i < B * T; i++)
    ids[i] = (int64_t)(rng_next() % (uint64_t)V);
  ids[0] = V - 1;
  float *out = poisoned(B * T * D);
  double *ref = malloc(sizeof(double) * (size_t)(B * T * D));
  for (int64_t i = 0; i < B * T; i++)
    for (int64_t j = 0; j < D; j++)
      ref[i * D + j] = tab.vals[ids[i] * D + j];
  sdr_tensor to = T3(out, SDR_F32, B, T, D), tt = T2(tab.data, dt, V, D);
  sdr_tensor ti = T2(ids, SDR_I64, B, T);
  OK(sdr_embedding(be, &to, &tt, &ti));
  char what[64];
  snprintf(what, sizeof what, "embedding %s V%lld D%lld", sdr_dtype_name(dt), (long long)V,
           (long long)D);
  compare(what, out, ref, NULL, B * T * D, 0, 0);
  ids[B * T - 1] = V;
  FAILS_LIKE(sdr_embedding(be, &to, &tt, &ti), "is outside [0, ");
  ids[B * T - 1] = -1;
  FAILS_LIKE(sdr_embedding(be, &to, &tt, &ti), "sdr_embedding: id -1 at position");
  free_weights(&tab);
  free(ids);
  free(out);
  free(ref);
}

/* ---- timestep embedding ---- */

/* torch 1.13: get_timestep_embedding(t, 320, flip_sin_to_cos=True, downscale_freq_shift=0)
 * for t = 500.5, 999, 981, columns below. */
static const int golden_cols[12] = {0, 1, 7, 50, 100, 159, 160, 161, 170, 200, 260, 319};
static const float golden_t[3] = {500.5f, 999.0f, 981.0f};
static const float golden320[3][12] = {
    {-0.551388979f, 0.302412301f, 0.0734174624f, -0.991671205f, -0.0119228363f, 0.998594999f,
     -0.834248304f, 0.953177214f, -0.961248457f, -0.213823229f, 0.999928892f, 0.0529908165f},
    {0.999649823f, 0.802677512f, -0.0869881436f, 0.932046115f, -0.999846518f, 0.994406343f,
     -0.0264607519f, 0.596413314f, 0.536338866f, -0.589929104f, -0.0175208114f, 0.105622061f},
    {0.679957211f, -0.798429191f, -0.583731949f, 0.186702624f, -0.999223948f, 0.994605899f,
     0.73325181f, 0.60208869f, -0.953138769f, -0.652302742f, 0.0393891074f, 0.10372588f},
};
/* get_timestep_embedding(t, 7) (no flip, shift 1) for t = 0, 1, 500.5, 999, 981 */
static const float golden7[5][7] = {
    {0, 0, 0, 1, 1, 1, 0},
    {0.841470957f, 0.00999983307f, 9.99999902e-05f, 0.540302336f, 0.999949992f, 1, 0},
    {-0.834248304f, -0.957493961f, 0.0500291027f, -0.551388979f, 0.288453341f, 0.998747766f, 0},
    {-0.0264607519f, -0.535603166f, 0.0997339115f, 0.999649823f, -0.844469845f, 0.995014131f, 0},
    {0.73325181f, -0.37576443f, 0.0979427248f, 0.679957211f, -0.926715255f, 0.995192051f, 0},
};

static void test_timestep_golden(sdr_backend *be) {
  float out[3 * 320], got[36];
  sdr_tensor tt = T1((float *)golden_t, SDR_F32, 3), to = T2(out, SDR_F32, 3, 320);
  poison(out, 3 * 320);
  OK(sdr_timestep_embedding(be, &to, &tt, 320, 1, 0.0f, 1.0f, 10000));
  double ref[36];
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 12; c++) {
      got[r * 12 + c] = out[r * 320 + golden_cols[c]];
      ref[r * 12 + c] = golden320[r][c];
    }
  compare("timestep 320 vs torch", got, ref, NULL, 36, 0, 2e-7);
  float t5[5] = {0, 1, 500.5f, 999, 981}, o7[35];
  double r7[35];
  poison(o7, 35);
  sdr_tensor t5t = T1(t5, SDR_F32, 5), o7t = T2(o7, SDR_F32, 5, 7);
  OK(sdr_timestep_embedding(be, &o7t, &t5t, 7, 0, 1.0f, 1.0f, 10000));
  for (int i = 0; i < 35; i++)
    r7[i] = golden7[i / 7][i % 7];
  compare("timestep 7 vs torch", o7, r7, NULL, 35, 0, 2e-7);
  float zero = 0, o1;
  sdr_tensor tz = T1(&zero, SDR_F32, 1), t1 = T2(&o1, SDR_F32, 1, 1);
  OK(sdr_timestep_embedding(be, &t1, &tz, 1, 0, 1.0f, 1.0f, 10000));
  CHECK(o1 == 0.0f); /* dim 1: only the padding column */
}

/* The formula in double for small t, where float rounding of t * freq stays below 1e-6. */
static void test_timestep_formula(sdr_backend *be, int dim, int flip, float shift, float scale,
                                  int max_period) {
  int64_t B = 4;
  float t[4] = {0.0f, 0.5f, 3.0f, 7.25f};
  float *out = poisoned(B * dim);
  double *ref = malloc(sizeof(double) * (size_t)(B * dim));
  int half = dim / 2;
  for (int64_t b = 0; b < B; b++) {
    for (int i = 0; i < half; i++) {
      double f = exp(-log((double)max_period) * i / (half - (double)shift));
      double a = scale * (t[b] * f);
      ref[b * dim + (flip ? half + i : i)] = sin(a);
      ref[b * dim + (flip ? i : half + i)] = cos(a);
    }
    if (dim % 2)
      ref[b * dim + dim - 1] = 0;
  }
  sdr_tensor tt = T1(t, SDR_F32, B), to = T2(out, SDR_F32, B, dim);
  OK(sdr_timestep_embedding(be, &to, &tt, dim, flip, shift, scale, max_period));
  char what[96];
  snprintf(what, sizeof what, "timestep dim %d flip %d shift %g scale %g", dim, flip, (double)shift,
           (double)scale);
  compare(what, out, ref, NULL, B * dim, 0, 1e-6);
  free(out);
  free(ref);
}

static void test_errors(sdr_backend *be) {
  float buf[8] = {0};
  sdr_tensor a = T3(buf, SDR_F32, 2, 3, 4), b = T3(buf, SDR_F32, 2, 5, 4);
  sdr_tensor o = T3(buf, SDR_F32, 2, 8, 4);
  FAILS_WITH(sdr_concat(be, &o, &a, &b, 1), "sdr_concat: out overlaps a");
  float other[8];
  sdr_tensor o7 = T3(other, SDR_F32, 2, 7, 4);
  FAILS_WITH(sdr_concat(be, &o7, &a, &b, -2), "sdr_concat: out (2, 7, 4), expected (2, 8, 4)");
  sdr_tensor b2 = T3(buf, SDR_F16, 2, 5, 4);
  FAILS_WITH(sdr_concat(be, &o, &a, &b2, 1), "sdr_concat: b has dtype float16, expected float32");
  FAILS_WITH(sdr_concat(be, &o, &a, &b, 3), "sdr_concat: dimension 3 outside (2, 3, 4)");
  int bad_perm[3] = {0, 0, 1};
  FAILS_WITH(sdr_permute(be, &o, &a, bad_perm),
             "sdr_permute: perm is not a permutation of 3 dimensions");
  sdr_tensor t = T2(buf, SDR_F32, 2, 1);
  FAILS_WITH(sdr_timestep_embedding(be, &o, &t, 320, 1, 0, 1, 10000),
             "sdr_timestep_embedding: t (2, 1) must be one-dimensional");
  sdr_tensor t1 = T1(buf, SDR_F32, 2), o2 = T2(buf + 2, SDR_F32, 2, 2);
  FAILS_WITH(sdr_timestep_embedding(be, &o2, &t1, 2, 0, 1.0f, 1, 10000),
             "sdr_timestep_embedding: dim 2 with downscale_freq_shift 1 divides by zero");
  sdr_tensor u = T3(buf, SDR_F32, 1, 2, 2), uo = T4(buf, SDR_F32, 1, 2, 4, 4);
  FAILS_WITH(sdr_upsample_nearest2x(be, &uo, &u),
             "sdr_upsample_nearest2x: in (1, 2, 2) is not (B, C, H, W)");
}

int main(void) {
  sdr_backend *be = cpu_backend(0);
  test_permutes(be);
  static const int64_t shape[5] = {2, 3, 5, 7, 4};
  for (int nd = 1; nd <= 5; nd++)
    for (int d = -nd; d < nd; d++)
      test_concat(be, d % 2 ? SDR_F32 : SDR_I64, nd, shape, d, 1 + (d & 3), 2 + (d & 1));
  test_concat(be, SDR_F32, 4, (int64_t[]){2, 640, 16, 16}, 1, 640, 320); /* UNet skip */
  test_concat(be, SDR_F32, 3, (int64_t[]){1, 77, 768}, 0, 1, 0);
  test_upsample(be, 1, 1, 1, 1);
  test_upsample(be, 2, 3, 5, 7);
  test_upsample(be, 1, 320, 17, 9);
  for (int s = 0; s < 2; s++) { /* both conversion paths */
    sdr_backend *cb = cpu_backend(s);
    test_casts(cb);
    for (int d = 0; d < 3; d++)
      test_embedding(cb, weight_dtypes[d], 17, 7, 2, 5);
    test_embedding(cb, SDR_F16, 49408, 77, 2, 77);
    sdr_cpu_backend_destroy(cb);
  }
  test_timestep_golden(be);
  test_timestep_formula(be, 320, 1, 0, 1, 10000);
  test_timestep_formula(be, 320, 0, 1, 1, 10000);
  test_timestep_formula(be, 33, 1, 0, 2.5f, 10000);
  test_timestep_formula(be, 130, 0, 1, 1, 1000);
  test_errors(be);
  sdr_cpu_backend_destroy(be);
  return check_exit();
}

/* tests/cuda/test_cuda_ops.c — every op of the CUDA backend against the CPU backend
 * (issue 6), on random inputs of several shapes, in float32, float16 and bfloat16.
 *
 * Each case computes the CPU's float32 result once, then runs the GPU in every
 * dtype the op takes (activations, and separately weights, biases and norm
 * parameters), each time into an output poisoned with NaN, and compares
 * (cuda_check.h: tolerances by dtype, NaN never passes). Layout ops, casts and
 * fill must give identical bytes. Then the error paths a user can reach (out
 * of memory, an embedding id out of range found on the GPU) and a CUDA graph
 * recorded once and replayed on new inputs.
 *
 * Every dtype goes through the checked sdr_* calls, as the engine calls them
 * (kernels/backend.c takes the backend's act_dtypes).
 *
 * Exit status: 0 all passed, 1 a failure, 77 (ctest's SKIP_RETURN_CODE) no GPU.
 * SDR_TEST_VERBOSE=1 prints every case. SDR_CUDA_CHECK_DRY=1 runs the cases with
 * CPU backends in place of the GPU, float32 only: no GPU check at all, but every
 * case's shapes pass the CPU's checks (ctest: cuda.test_cuda_ops_cases_on_cpu).
 * SDR_CUDA_CHECK_EMU=1 runs them on the emulated device of emu_backend.h, every
 * dtype and the graph replay: float32 arithmetic rounded per op, so it checks the
 * cases' float16/bfloat16 tolerances and the emulator, not the GPU
 * (ctest: cuda.test_cuda_ops_emulated).
 */
#include <time.h>

#include "cuda_check.h"
#include "emu_backend.h" // sdr_emu_backend_create

static sdr_backend *gpu_simple; /* always the plain attention kernel */
static sdr_backend *gpu_small;  /* a 1 MiB workspace: conv2d in chunks */
/* On a GPU: switches gpu's float16/bfloat16 attention to the register-resident
 * kernel (cuda_attention_mma.cu) and back; NULL elsewhere. */
static int (*set_mma_attention)(sdr_backend *be, int mma);

static const sdr_dtype fdt[3] = {SDR_F32, SDR_F16, SDR_BF16};

/* SDR_CUDA_CHECK_DRY=1: CPU backends stand in for the GPU and only float32
 * activations run, so the cases, shapes and comparisons can be checked without
 * a GPU (every comparison is then CPU against CPU). */
static int dry;
static int emu; /* SDR_CUDA_CHECK_EMU=1: the emulated device (emu_backend.h) as the GPU */
/* SDR_CUDA_CHECK_SIMT=1: the CUDA backend runs on the host simulation (simt/), built as
 * test_cuda_ops_simt: cases over ~30 M multiply-adds would take minutes there and are
 * left to the GPU (the same shapes at a smaller size run). */
static int simt_run;
static int too_big(double macs) { return simt_run && macs > 3e7; }
static int nact = 3; /* activation dtypes that run: fdt[0 .. nact) */

/* The op on the GPU with activations in dt. */
#define GPU_OP(be, dt, fn, ...) ((void)(dt), sdr_##fn((be), __VA_ARGS__))

#define REF(call)                                                                                  \
  do {                                                                                             \
    if ((call) < 0) {                                                                              \
      fprintf(stderr, "%s:%d: CPU reference failed: %s\n", __FILE__, __LINE__, sdr_last_error());  \
      exit(2);                                                                                     \
    }                                                                                              \
  } while (0)

static const char *shp(int nd, const int64_t *shape, char *buf, size_t n) {
  sdr_tensor t = sdr_tensor_view(NULL, SDR_F32, SDR_DEVICE_CPU, nd, shape);
  return sdr_shape_str(&t, buf, n);
}

/* Runs a GPU op that was enqueued (rc), reads its output and compares. */
static void finish(const char *op, const char *what, sdr_dtype dt, int rc, sdr_backend *be,
                   const sdr_tensor *out, const float *ref, double slack) {
  if (rc < 0) {
    record_error(op, what, dt);
    return;
  }
  float *got = get(be, out);
  compare(op, what, dt, got, ref, sdr_tensor_numel(out), slack);
  free(got);
}

/* ---- products ---- */

static void test_linear(int nd, const int64_t *ishape, int64_t N, int with_bias) {
  const char *op = "linear";
  int64_t K = ishape[nd - 1], oshape[SDR_MAX_DIMS], rows = 1;
  for (int i = 0; i < nd - 1; i++)
    rows *= ishape[i];
  if (too_big((double)rows * K * N))
    return;
  memcpy(oshape, ishape, sizeof(int64_t) * (size_t)nd);
  oshape[nd - 1] = N;
  vals x = vals_rand(nd, ishape, -1, 1), w = vals_rand(SHAPE(N, K), -0.5f, 0.5f);
  vals b = vals_rand(SHAPE(N), -1, 1);
  sdr_tensor cx = put(cpu, &x, SDR_F32), cw = put(cpu, &w, SDR_F32), cb = put(cpu, &b, SDR_F32);
  sdr_tensor co = poisoned(cpu, SDR_F32, nd, oshape);
  REF(sdr_linear(cpu, &co, &cx, &cw, with_bias ? &cb : NULL));
  float *ref = get(cpu, &co);
  char s[64], what[160];
  for (int a = 0; a < nact; a++)
    for (int wd = 0; wd < 3; wd++) {
      snprintf(what, sizeof what, "in %s N %lld%s, w %s", shp(nd, ishape, s, sizeof s),
               (long long)N, with_bias ? " bias" : "", sdr_dtype_name(fdt[wd]));
      sdr_tensor gx = put(gpu, &x, fdt[a]), gw = put(gpu, &w, fdt[wd]), gb = put(gpu, &b, fdt[wd]);
      sdr_tensor go = poisoned(gpu, fdt[a], nd, oshape);
      int rc = GPU_OP(gpu, fdt[a], linear, &go, &gx, &gw, with_bias ? &gb : NULL);
      finish(op, what, fdt[a], rc, gpu, &go, ref, 1);
      drop(gpu, &gx), drop(gpu, &gw), drop(gpu, &gb), drop(gpu, &go);
    }
  free(ref);
  drop(cpu, &cx), drop(cpu, &cw), drop(cpu, &cb), drop(cpu, &co);
  vals_free(&x), vals_free(&w), vals_free(&b);
}

static void test_bmm(int64_t B, int64_t M, int64_t K, int64_t N, int trans_b, float alpha) {
  const char *op = "bmm";
  if (too_big((double)B * M * K * N))
    return;
  vals a = vals_rand(SHAPE(B, M, K), -1, 1);
  vals b = trans_b ? vals_rand(SHAPE(B, N, K), -1, 1) : vals_rand(SHAPE(B, K, N), -1, 1);
  sdr_tensor ca = put(cpu, &a, SDR_F32), cb = put(cpu, &b, SDR_F32);
  sdr_tensor co = poisoned(cpu, SDR_F32, SHAPE(B, M, N));
  REF(sdr_bmm(cpu, &co, &ca, &cb, trans_b, alpha));
  float *ref = get(cpu, &co);
  char what[128];
  snprintf(what, sizeof what, "(%lld, %lld, %lld) x %lld%s alpha %g", (long long)B, (long long)M,
           (long long)K, (long long)N, trans_b ? " trans_b" : "", (double)alpha);
  for (int d = 0; d < nact; d++) {
    sdr_tensor ga = put(gpu, &a, fdt[d]), gb = put(gpu, &b, fdt[d]);
    sdr_tensor go = poisoned(gpu, fdt[d], SHAPE(B, M, N));
    int rc = GPU_OP(gpu, fdt[d], bmm, &go, &ga, &gb, trans_b, alpha);
    finish(op, what, fdt[d], rc, gpu, &go, ref, 1);
    drop(gpu, &ga), drop(gpu, &gb), drop(gpu, &go);
  }
  free(ref);
  drop(cpu, &ca), drop(cpu, &cb), drop(cpu, &co);
  vals_free(&a), vals_free(&b);
}

static void test_conv2d(int64_t B, int64_t C, int64_t H, int64_t W, int64_t Cout, int64_t k,
                        int stride, int pad, int with_bias) {
  const char *op = "conv2d";
  int64_t Ho = (H + 2 * pad - k) / stride + 1, Wo = (W + 2 * pad - k) / stride + 1;
  if (too_big((double)B * Cout * Ho * Wo * C * k * k))
    return;
  vals x = vals_rand(SHAPE(B, C, H, W), -1, 1), w = vals_rand(SHAPE(Cout, C, k, k), -0.3f, 0.3f);
  vals b = vals_rand(SHAPE(Cout), -1, 1);
  sdr_tensor cx = put(cpu, &x, SDR_F32), cw = put(cpu, &w, SDR_F32), cb = put(cpu, &b, SDR_F32);
  sdr_tensor co = poisoned(cpu, SDR_F32, SHAPE(B, Cout, Ho, Wo));
  REF(sdr_conv2d(cpu, &co, &cx, &cw, with_bias ? &cb : NULL, stride, pad));
  float *ref = get(cpu, &co);
  char what[160];
  /* every activation x weight dtype on the default backend; matching dtypes on the
   * 1 MiB-workspace backend, which unfolds a few pixels at a time */
  for (int run = 0; run < 11; run++) {
    int a = run < 9 ? run / 3 : run - 9, wd = run < 9 ? run % 3 : a;
    if (a >= nact)
      continue;
    sdr_backend *be = run < 9 ? gpu : gpu_small;
    snprintf(what, sizeof what, "(%lld, %lld, %lld, %lld) -> %lld k%lld s%d p%d%s, w %s%s",
             (long long)B, (long long)C, (long long)H, (long long)W, (long long)Cout, (long long)k,
             stride, pad, with_bias ? " bias" : "", sdr_dtype_name(fdt[wd]),
             run < 9 ? "" : ", 1 MiB workspace");
    sdr_tensor gx = put(be, &x, fdt[a]), gw = put(be, &w, fdt[wd]), gb = put(be, &b, fdt[wd]);
    sdr_tensor go = poisoned(be, fdt[a], SHAPE(B, Cout, Ho, Wo));
    int rc = GPU_OP(be, fdt[a], conv2d, &go, &gx, &gw, with_bias ? &gb : NULL, stride, pad);
    finish(op, what, fdt[a], rc, be, &go, ref, 1);
    drop(be, &gx), drop(be, &gw), drop(be, &gb), drop(be, &go);
  }
  free(ref);
  drop(cpu, &cx), drop(cpu, &cw), drop(cpu, &cb), drop(cpu, &co);
  vals_free(&x), vals_free(&w), vals_free(&b);
}

/* ---- normalisation ---- */

/* params: 0 none, 1 gamma and beta (then in each dtype) */
static void test_group_norm(int64_t B, int64_t C, int64_t H, int64_t W, int groups, int silu,
                            float center, int params, int in_place) {
  const char *op = "group_norm";
  vals x = vals_rand(SHAPE(B, C, H, W), center - 1, center + 1);
  vals g = vals_rand(SHAPE(C), 0.5f, 1.5f), bt = vals_rand(SHAPE(C), -0.5f, 0.5f);
  sdr_tensor cx = put(cpu, &x, SDR_F32), cg = put(cpu, &g, SDR_F32), cb = put(cpu, &bt, SDR_F32);
  sdr_tensor co = in_place ? cx : poisoned(cpu, SDR_F32, SHAPE(B, C, H, W));
  REF(sdr_group_norm(cpu, &co, &cx, params ? &cg : NULL, params ? &cb : NULL, groups, 1e-5f, silu));
  float *ref = get(cpu, &co);
  char what[160];
  for (int a = 0; a < nact; a++)
    for (int p = 0; p < (params ? 3 : 1); p++) {
      snprintf(what, sizeof what, "(%lld, %lld, %lld, %lld) groups %d%s around %g%s%s%s",
               (long long)B, (long long)C, (long long)H, (long long)W, groups, silu ? " silu" : "",
               (double)center, params ? ", params " : ", no params",
               params ? sdr_dtype_name(fdt[p]) : "", in_place ? ", in place" : "");
      sdr_tensor gx = put(gpu, &x, fdt[a]), gg = put(gpu, &g, fdt[p]), gb = put(gpu, &bt, fdt[p]);
      sdr_tensor go = in_place ? gx : poisoned(gpu, fdt[a], SHAPE(B, C, H, W));
      int rc = GPU_OP(gpu, fdt[a], group_norm, &go, &gx, params ? &gg : NULL, params ? &gb : NULL,
                      groups, 1e-5f, silu);
      finish(op, what, fdt[a], rc, gpu, &go, ref, 1);
      if (!in_place)
        drop(gpu, &go);
      drop(gpu, &gx), drop(gpu, &gg), drop(gpu, &gb);
    }
  free(ref);
  if (!in_place)
    drop(cpu, &co);
  drop(cpu, &cx), drop(cpu, &cg), drop(cpu, &cb);
  vals_free(&x), vals_free(&g), vals_free(&bt);
}

static void test_layer_norm(int nd, const int64_t *shape, int params, int in_place) {
  const char *op = "layer_norm";
  int64_t D = shape[nd - 1];
  vals x = vals_rand(nd, shape, -2, 2);
  vals g = vals_rand(SHAPE(D), 0.5f, 1.5f), bt = vals_rand(SHAPE(D), -0.5f, 0.5f);
  sdr_tensor cx = put(cpu, &x, SDR_F32), cg = put(cpu, &g, SDR_F32), cb = put(cpu, &bt, SDR_F32);
  sdr_tensor co = in_place ? cx : poisoned(cpu, SDR_F32, nd, shape);
  REF(sdr_layer_norm(cpu, &co, &cx, params ? &cg : NULL, params ? &cb : NULL, 1e-5f));
  float *ref = get(cpu, &co);
  char s[64], what[160];
  for (int a = 0; a < nact; a++)
    for (int p = 0; p < (params ? 3 : 1); p++) {
      snprintf(what, sizeof what, "%s%s%s%s", shp(nd, shape, s, sizeof s),
               params ? ", params " : ", no params", params ? sdr_dtype_name(fdt[p]) : "",
               in_place ? ", in place" : "");
      sdr_tensor gx = put(gpu, &x, fdt[a]), gg = put(gpu, &g, fdt[p]), gb = put(gpu, &bt, fdt[p]);
      sdr_tensor go = in_place ? gx : poisoned(gpu, fdt[a], nd, shape);
      int rc = GPU_OP(gpu, fdt[a], layer_norm, &go, &gx, params ? &gg : NULL, params ? &gb : NULL,
                      1e-5f);
      finish(op, what, fdt[a], rc, gpu, &go, ref, 1);
      if (!in_place)
        drop(gpu, &go);
      drop(gpu, &gx), drop(gpu, &gg), drop(gpu, &gb);
    }
  free(ref);
  if (!in_place)
    drop(cpu, &co);
  drop(cpu, &cx), drop(cpu, &cg), drop(cpu, &cb);
  vals_free(&x), vals_free(&g), vals_free(&bt);
}

static void test_softmax(int nd, const int64_t *shape, float range, int in_place) {
  const char *op = "softmax";
  vals x = vals_rand(nd, shape, -range, range);
  sdr_tensor cx = put(cpu, &x, SDR_F32);
  sdr_tensor co = in_place ? cx : poisoned(cpu, SDR_F32, nd, shape);
  REF(sdr_softmax(cpu, &co, &cx));
  float *ref = get(cpu, &co);
  char s[64], what[128];
  snprintf(what, sizeof what, "%s range %g%s", shp(nd, shape, s, sizeof s), (double)range,
           in_place ? ", in place" : "");
  for (int a = 0; a < nact; a++) {
    sdr_tensor gx = put(gpu, &x, fdt[a]);
    sdr_tensor go = in_place ? gx : poisoned(gpu, fdt[a], nd, shape);
    int rc = GPU_OP(gpu, fdt[a], softmax, &go, &gx);
    finish(op, what, fdt[a], rc, gpu, &go, ref, 1);
    if (!in_place)
      drop(gpu, &go);
    drop(gpu, &gx);
  }
  free(ref);
  if (!in_place)
    drop(cpu, &co);
  drop(cpu, &cx);
  vals_free(&x);
}

/* ---- attention ---- */

static void test_attention(int64_t B, int64_t Tq, int64_t Tk, int heads, int64_t Dh, int causal) {
  int64_t HD = heads * Dh;
  if (too_big(2.0 * B * Tq * Tk * HD))
    return;
  float scale = 1.0f / sqrtf((float)Dh);
  vals q = vals_rand(SHAPE(B, Tq, HD), -1, 1), k = vals_rand(SHAPE(B, Tk, HD), -1, 1);
  vals v = vals_rand(SHAPE(B, Tk, HD), -1, 1);
  sdr_tensor cq = put(cpu, &q, SDR_F32), ck = put(cpu, &k, SDR_F32), cv = put(cpu, &v, SDR_F32);
  sdr_tensor co = poisoned(cpu, SDR_F32, SHAPE(B, Tq, HD));
  REF(sdr_attention(cpu, &co, &cq, &ck, &cv, heads, scale, causal));
  float *ref = get(cpu, &co);
  char what[128];
  snprintf(what, sizeof what, "B %lld Tq %lld Tk %lld heads %d Dh %lld%s", (long long)B,
           (long long)Tq, (long long)Tk, heads, (long long)Dh, causal ? " causal" : "");
  /* gpu: float32 -> the plain kernel, float16/bfloat16 -> the tensor-core one;
   * gpu_simple: float16/bfloat16 through the plain kernel too */
  for (int run = 0; run < (dry ? 1 : 5); run++) {
    sdr_dtype dt = run < 3 ? fdt[run] : fdt[run - 2];
    sdr_backend *be = run < 3 ? gpu : gpu_simple;
    const char *op = run == 0 ? "attention plain" : run < 3 ? "attention flash" : "attention plain";
    sdr_tensor gq = put(be, &q, dt), gk = put(be, &k, dt), gv = put(be, &v, dt);
    sdr_tensor go = poisoned(be, dt, SHAPE(B, Tq, HD));
    int rc = GPU_OP(be, dt, attention, &go, &gq, &gk, &gv, heads, scale, causal);
    finish(op, what, dt, rc, be, &go, ref, 1);
    drop(be, &gq), drop(be, &gk), drop(be, &gv), drop(be, &go);
  }
  /* the register-resident kernel, float16 and bfloat16 (heads wider than 160 or of
   * odd width fall back to the flash kernel inside it) */
  for (int run = 0; set_mma_attention && run < 2; run++) {
    sdr_dtype dt = fdt[1 + run];
    int was = set_mma_attention(gpu, 1);
    sdr_tensor gq = put(gpu, &q, dt), gk = put(gpu, &k, dt), gv = put(gpu, &v, dt);
    sdr_tensor go = poisoned(gpu, dt, SHAPE(B, Tq, HD));
    int rc = GPU_OP(gpu, dt, attention, &go, &gq, &gk, &gv, heads, scale, causal);
    finish("attention mma", what, dt, rc, gpu, &go, ref, 1);
    drop(gpu, &gq), drop(gpu, &gk), drop(gpu, &gv), drop(gpu, &go);
    set_mma_attention(gpu, was);
  }
  free(ref);
  drop(cpu, &cq), drop(cpu, &ck), drop(cpu, &cv), drop(cpu, &co);
  vals_free(&q), vals_free(&k), vals_free(&v);
}

/* ---- elementwise ---- */

static void test_unary(sdr_unary_op u, int nd, const int64_t *shape, float lo, float hi,
                       int in_place) {
  const char *op = "unary";
  vals x = vals_rand(nd, shape, lo, hi);
  sdr_tensor cx = put(cpu, &x, SDR_F32);
  sdr_tensor co = in_place ? cx : poisoned(cpu, SDR_F32, nd, shape);
  REF(sdr_unary(cpu, &co, &cx, u));
  float *ref = get(cpu, &co);
  char s[64], what[128];
  snprintf(what, sizeof what, "%s %s in [%g, %g]%s", sdr_unary_name(u), shp(nd, shape, s, sizeof s),
           (double)lo, (double)hi, in_place ? ", in place" : "");
  for (int a = 0; a < nact; a++) {
    sdr_tensor gx = put(gpu, &x, fdt[a]);
    sdr_tensor go = in_place ? gx : poisoned(gpu, fdt[a], nd, shape);
    int rc = GPU_OP(gpu, fdt[a], unary, &go, &gx, u);
    finish(op, what, fdt[a], rc, gpu, &go, ref, 1);
    if (!in_place)
      drop(gpu, &go);
    drop(gpu, &gx);
  }
  free(ref);
  if (!in_place)
    drop(cpu, &co);
  drop(cpu, &cx);
  vals_free(&x);
}

static void test_geglu(int nd, const int64_t *ishape) {
  const char *op = "geglu";
  int64_t oshape[SDR_MAX_DIMS];
  memcpy(oshape, ishape, sizeof(int64_t) * (size_t)nd);
  oshape[nd - 1] /= 2;
  vals x = vals_rand(nd, ishape, -4, 4);
  sdr_tensor cx = put(cpu, &x, SDR_F32), co = poisoned(cpu, SDR_F32, nd, oshape);
  REF(sdr_geglu(cpu, &co, &cx));
  float *ref = get(cpu, &co);
  char s[64];
  shp(nd, ishape, s, sizeof s);
  for (int a = 0; a < nact; a++) {
    sdr_tensor gx = put(gpu, &x, fdt[a]), go = poisoned(gpu, fdt[a], nd, oshape);
    int rc = GPU_OP(gpu, fdt[a], geglu, &go, &gx);
    finish(op, s, fdt[a], rc, gpu, &go, ref, 1);
    drop(gpu, &gx), drop(gpu, &go);
  }
  free(ref);
  drop(cpu, &cx), drop(cpu, &co);
  vals_free(&x);
}

static void test_binary(int na, const int64_t *sa, int nb, const int64_t *sb, int in_place) {
  const char *op = "binary";
  static const char *names[] = {"add", "sub", "mul", "div"};
  vals a = vals_rand(na, sa, -2, 2), b = vals_rand(nb, sb, 0.5f, 2);
  for (int64_t i = 0; i < b.n; i++) /* both signs, never near zero: div stays tame */
    if (rng_next() & 1)
      b.v[i] = -b.v[i];
  sdr_tensor ta = sdr_tensor_view(NULL, SDR_F32, SDR_DEVICE_CPU, na, sa);
  sdr_tensor tb = sdr_tensor_view(NULL, SDR_F32, SDR_DEVICE_CPU, nb, sb);
  int nd;
  int64_t os[SDR_MAX_DIMS];
  if (sdr_broadcast_shape(&ta, &tb, &nd, os) < 0) {
    fprintf(stderr, "bad binary case\n");
    exit(2);
  }
  char s1[64], s2[64], what[160];
  for (int bop = 0; bop < SDR_BINARY_COUNT; bop++) {
    sdr_tensor ca = put(cpu, &a, SDR_F32), cb = put(cpu, &b, SDR_F32);
    sdr_tensor co = in_place ? ca : poisoned(cpu, SDR_F32, nd, os);
    REF(sdr_binary(cpu, &co, &ca, &cb, (sdr_binary_op)bop));
    float *ref = get(cpu, &co);
    snprintf(what, sizeof what, "%s %s %s%s", names[bop], shp(na, sa, s1, sizeof s1),
             shp(nb, sb, s2, sizeof s2), in_place ? ", in place" : "");
    for (int d = 0; d < nact; d++) {
      sdr_tensor ga = put(gpu, &a, fdt[d]), gb = put(gpu, &b, fdt[d]);
      sdr_tensor go = in_place ? ga : poisoned(gpu, fdt[d], nd, os);
      int rc = GPU_OP(gpu, fdt[d], binary, &go, &ga, &gb, (sdr_binary_op)bop);
      finish(op, what, fdt[d], rc, gpu, &go, ref, 1);
      if (!in_place)
        drop(gpu, &go);
      drop(gpu, &ga), drop(gpu, &gb);
    }
    free(ref);
    if (!in_place)
      drop(cpu, &co);
    drop(cpu, &ca), drop(cpu, &cb);
  }
  vals_free(&a), vals_free(&b);
}

static void test_affine(int nd, const int64_t *shape, float alpha, float beta, int in_place) {
  const char *op = "affine";
  vals x = vals_rand(nd, shape, -3, 3);
  sdr_tensor cx = put(cpu, &x, SDR_F32);
  sdr_tensor co = in_place ? cx : poisoned(cpu, SDR_F32, nd, shape);
  REF(sdr_affine(cpu, &co, &cx, alpha, beta));
  float *ref = get(cpu, &co);
  char s[64], what[128];
  snprintf(what, sizeof what, "%s * %g + %g%s", shp(nd, shape, s, sizeof s), (double)alpha,
           (double)beta, in_place ? ", in place" : "");
  for (int a = 0; a < nact; a++) {
    sdr_tensor gx = put(gpu, &x, fdt[a]);
    sdr_tensor go = in_place ? gx : poisoned(gpu, fdt[a], nd, shape);
    int rc = GPU_OP(gpu, fdt[a], affine, &go, &gx, alpha, beta);
    finish(op, what, fdt[a], rc, gpu, &go, ref, 1);
    if (!in_place)
      drop(gpu, &go);
    drop(gpu, &gx);
  }
  free(ref);
  if (!in_place)
    drop(cpu, &co);
  drop(cpu, &cx);
  vals_free(&x);
}

static void test_fill(float value) {
  const char *op = "fill";
  char what[64];
  snprintf(what, sizeof what, "(3, 1000) with %g", (double)value);
  for (int d = 0; d < 3; d++) {
    sdr_tensor co = poisoned(cpu, fdt[d], SHAPE(3, 1000)),
               go = poisoned(gpu, fdt[d], SHAPE(3, 1000));
    REF(sdr_fill(cpu, &co, value));
    if (sdr_fill(gpu, &go, value) < 0) {
      record_error(op, what, fdt[d]);
    } else {
      void *r = get_raw(cpu, &co), *g = get_raw(gpu, &go);
      compare_bytes(op, what, fdt[d], g, r, sdr_tensor_nbytes(&co));
      free(r), free(g);
    }
    drop(cpu, &co), drop(gpu, &go);
  }
}

/* ---- layout ---- */

/* upsample and pad2d take float tensors: the CPU's float32 result, exact in every
 * dtype, must come back bit for bit. */
static void layout_float_check(const char *op, const char *what, sdr_dtype dt, int rc,
                               const sdr_tensor *go, const float *ref) {
  if (rc < 0) {
    record_error(op, what, dt);
    return;
  }
  int64_t n = sdr_tensor_numel(go);
  void *want = to_bits(ref, n, dt), *got = get_raw(gpu, go);
  compare_bytes(op, what, dt, got, want, sdr_tensor_nbytes(go));
  free(want), free(got);
}

static void test_upsample(int64_t B, int64_t C, int64_t H, int64_t W) {
  const char *op = "upsample_nearest2x";
  vals x = vals_rand(SHAPE(B, C, H, W), -4, 4);
  sdr_tensor cx = put(cpu, &x, SDR_F32), co = poisoned(cpu, SDR_F32, SHAPE(B, C, 2 * H, 2 * W));
  REF(sdr_upsample_nearest2x(cpu, &co, &cx));
  float *ref = get(cpu, &co);
  char what[64];
  snprintf(what, sizeof what, "(%lld, %lld, %lld, %lld)", (long long)B, (long long)C, (long long)H,
           (long long)W);
  for (int a = 0; a < nact; a++) {
    sdr_tensor gx = put(gpu, &x, fdt[a]), go = poisoned(gpu, fdt[a], SHAPE(B, C, 2 * H, 2 * W));
    int rc = GPU_OP(gpu, fdt[a], upsample_nearest2x, &go, &gx);
    layout_float_check(op, what, fdt[a], rc, &go, ref);
    drop(gpu, &gx), drop(gpu, &go);
  }
  free(ref);
  drop(cpu, &cx), drop(cpu, &co);
  vals_free(&x);
}

static void test_pad2d(int64_t B, int64_t C, int64_t H, int64_t W, int l, int r, int t, int b) {
  const char *op = "pad2d";
  int64_t OH = H + t + b, OW = W + l + r;
  vals x = vals_rand(SHAPE(B, C, H, W), -4, 4);
  sdr_tensor cx = put(cpu, &x, SDR_F32), co = poisoned(cpu, SDR_F32, SHAPE(B, C, OH, OW));
  REF(sdr_pad2d(cpu, &co, &cx, l, r, t, b));
  float *ref = get(cpu, &co);
  char what[96];
  snprintf(what, sizeof what, "(%lld, %lld, %lld, %lld) by (%d, %d, %d, %d)", (long long)B,
           (long long)C, (long long)H, (long long)W, l, r, t, b);
  for (int a = 0; a < nact; a++) {
    sdr_tensor gx = put(gpu, &x, fdt[a]), go = poisoned(gpu, fdt[a], SHAPE(B, C, OH, OW));
    int rc = GPU_OP(gpu, fdt[a], pad2d, &go, &gx, l, r, t, b);
    layout_float_check(op, what, fdt[a], rc, &go, ref);
    drop(gpu, &gx), drop(gpu, &go);
  }
  free(ref);
  drop(cpu, &cx), drop(cpu, &co);
  vals_free(&x);
}

/* Random bytes of n elements of dt, never all-ones (the poison). */
static void *raw_rand(sdr_dtype dt, int64_t n) {
  size_t es = sdr_dtype_size(dt);
  unsigned char *p = (unsigned char *)malloc((size_t)(n ? n : 1) * es);
  for (int64_t i = 0; i < n; i++) {
    if (dt == SDR_U8)
      p[i] = (unsigned char)(rng_next() % 200);
    else if (dt == SDR_I64)
      ((int64_t *)p)[i] = (int64_t)(rng_next() % (1ull << 40)) - (1ll << 39);
    else if (dt == SDR_F32)
      ((float *)p)[i] = rng_uniform(-4, 4);
    else
      ((uint16_t *)p)[i] = sdr_f32_to_f16(rng_uniform(-4, 4));
  }
  return p;
}

static const sdr_dtype raw_dtypes[4] = {SDR_U8, SDR_F16, SDR_F32, SDR_I64};

static void test_concat(int nd, const int64_t *sa, const int64_t *sb, int dim) {
  const char *op = "concat";
  int d = dim < 0 ? dim + nd : dim;
  int64_t so[SDR_MAX_DIMS];
  memcpy(so, sa, sizeof(int64_t) * (size_t)nd);
  so[d] += sb[d];
  char s1[64], s2[64], what[160];
  snprintf(what, sizeof what, "%s and %s along %d", shp(nd, sa, s1, sizeof s1),
           shp(nd, sb, s2, sizeof s2), dim);
  for (int t = 0; t < 4; t++) {
    sdr_dtype dt = raw_dtypes[t];
    int64_t na = 1, nb = 1;
    for (int i = 0; i < nd; i++)
      na *= sa[i], nb *= sb[i];
    void *ra = raw_rand(dt, na), *rb = raw_rand(dt, nb);
    sdr_tensor ca = put_raw(cpu, dt, nd, sa, ra), cb = put_raw(cpu, dt, nd, sb, rb);
    sdr_tensor co = poisoned(cpu, dt, nd, so);
    REF(sdr_concat(cpu, &co, &ca, &cb, dim));
    sdr_tensor ga = put_raw(gpu, dt, nd, sa, ra), gb = put_raw(gpu, dt, nd, sb, rb);
    sdr_tensor go = poisoned(gpu, dt, nd, so);
    if (sdr_concat(gpu, &go, &ga, &gb, dim) < 0) {
      record_error(op, what, dt);
    } else {
      void *r = get_raw(cpu, &co), *g = get_raw(gpu, &go);
      compare_bytes(op, what, dt, g, r, sdr_tensor_nbytes(&co));
      free(r), free(g);
    }
    drop(cpu, &ca), drop(cpu, &cb), drop(cpu, &co), drop(gpu, &ga), drop(gpu, &gb), drop(gpu, &go);
    free(ra), free(rb);
  }
}

static void test_permute(int nd, const int64_t *shape, const int *perm) {
  const char *op = "permute";
  int64_t so[SDR_MAX_DIMS], n = 1;
  for (int i = 0; i < nd; i++) {
    so[i] = shape[perm[i]];
    n *= shape[i];
  }
  char s[64], what[128];
  int len = snprintf(what, sizeof what, "%s by (", shp(nd, shape, s, sizeof s));
  for (int i = 0; i < nd && len < (int)sizeof what - 8; i++)
    len += snprintf(what + len, sizeof what - (size_t)len, i ? ", %d" : "%d", perm[i]);
  snprintf(what + len, sizeof what - (size_t)len, ")");
  for (int t = 0; t < 4; t++) {
    sdr_dtype dt = raw_dtypes[t];
    void *rx = raw_rand(dt, n);
    sdr_tensor cx = put_raw(cpu, dt, nd, shape, rx), co = poisoned(cpu, dt, nd, so);
    REF(sdr_permute(cpu, &co, &cx, perm));
    sdr_tensor gx = put_raw(gpu, dt, nd, shape, rx), go = poisoned(gpu, dt, nd, so);
    if (sdr_permute(gpu, &go, &gx, perm) < 0) {
      record_error(op, what, dt);
    } else {
      void *r = get_raw(cpu, &co), *g = get_raw(gpu, &go);
      compare_bytes(op, what, dt, g, r, sdr_tensor_nbytes(&co));
      free(r), free(g);
    }
    drop(cpu, &cx), drop(cpu, &co), drop(gpu, &gx), drop(gpu, &go);
    free(rx);
  }
}

/* Values that round: random floats, some past float16's range, some in its subnormals. */
static float cast_value(void) {
  uint64_t r = rng_next() % 10;
  float x = rng_uniform(-4, 4);
  return r == 0 ? x * 3e4f : r == 1 ? x * 1e-6f : x;
}

static void test_cast(sdr_dtype from, sdr_dtype to, int in_place) {
  const char *op = "cast";
  const int64_t n = 4099;
  size_t fs = sdr_dtype_size(from);
  unsigned char *src = (unsigned char *)malloc((size_t)n * fs);
  for (int64_t i = 0; i < n; i++) {
    if (from == SDR_I64)
      ((int64_t *)src)[i] = (int64_t)(rng_next() % (1ull << 40)) - (1ll << 39);
    else {
      float v = cast_value();
      void *b = to_bits(&v, 1, from);
      memcpy(src + (size_t)i * fs, b, fs);
      free(b);
    }
  }
  char what[96];
  snprintf(what, sizeof what, "%s -> %s (%lld)%s", sdr_dtype_name(from), sdr_dtype_name(to),
           (long long)n, in_place ? ", in place" : "");
  sdr_tensor cx = put_raw(cpu, from, SHAPE(n), src), co;
  sdr_tensor gx = put_raw(gpu, from, SHAPE(n), src), go;
  if (in_place) {
    co = cx, go = gx;
    co.dtype = go.dtype = to;
  } else {
    co = poisoned(cpu, to, SHAPE(n));
    go = poisoned(gpu, to, SHAPE(n));
  }
  REF(sdr_cast(cpu, &co, &cx));
  if (sdr_cast(gpu, &go, &gx) < 0) {
    record_error(op, what, to);
  } else {
    void *r = get_raw(cpu, &co), *g = get_raw(gpu, &go);
    compare_bytes(op, what, to, g, r, sdr_tensor_nbytes(&co));
    free(r), free(g);
  }
  if (!in_place)
    drop(cpu, &co), drop(gpu, &go);
  drop(cpu, &cx), drop(gpu, &gx);
  free(src);
}

static void test_embedding(int64_t V, int64_t D, int64_t B, int64_t T) {
  const char *op = "embedding";
  vals table = vals_rand(SHAPE(V, D), -2, 2);
  int64_t *ids = (int64_t *)malloc((size_t)(B * T) * sizeof(int64_t));
  for (int64_t i = 0; i < B * T; i++)
    ids[i] = (int64_t)(rng_next() % (uint64_t)V);
  ids[0] = 0, ids[B * T - 1] = V - 1;
  sdr_tensor ct = put(cpu, &table, SDR_F32), ci = put_raw(cpu, SDR_I64, SHAPE(B, T), ids);
  sdr_tensor co = poisoned(cpu, SDR_F32, SHAPE(B, T, D));
  REF(sdr_embedding(cpu, &co, &ct, &ci));
  float *ref = get(cpu, &co);
  char what[96];
  for (int a = 0; a < nact; a++)
    for (int td = 0; td < 3; td++) {
      snprintf(what, sizeof what, "(%lld, %lld) ids (%lld, %lld), table %s", (long long)V,
               (long long)D, (long long)B, (long long)T, sdr_dtype_name(fdt[td]));
      sdr_tensor gt = put(gpu, &table, fdt[td]), gi = put_raw(gpu, SDR_I64, SHAPE(B, T), ids);
      sdr_tensor go = poisoned(gpu, fdt[a], SHAPE(B, T, D));
      int rc = GPU_OP(gpu, fdt[a], embedding, &go, &gt, &gi);
      finish(op, what, fdt[a], rc, gpu, &go, ref, 1);
      drop(gpu, &gt), drop(gpu, &gi), drop(gpu, &go);
    }
  free(ref);
  drop(cpu, &ct), drop(cpu, &ci), drop(cpu, &co);
  vals_free(&table);
  free(ids);
}

static void test_timestep(int dim, int flip, float shift, float scale, int max_period) {
  const char *op = "timestep_embedding";
  float tv[4] = {0.0f, 1.0f, 500.5f, 981.0f};
  sdr_tensor ct = put_raw(cpu, SDR_F32, SHAPE(4), tv), co = poisoned(cpu, SDR_F32, SHAPE(4, dim));
  REF(sdr_timestep_embedding(cpu, &co, &ct, dim, flip, shift, scale, max_period));
  float *ref = get(cpu, &co);
  char what[96];
  snprintf(what, sizeof what, "dim %d flip %d shift %g scale %g period %d", dim, flip,
           (double)shift, (double)scale, max_period);
  for (int a = 0; a < nact; a++) {
    sdr_tensor gt = put_raw(gpu, SDR_F32, SHAPE(4), tv), go = poisoned(gpu, fdt[a], SHAPE(4, dim));
    int rc = GPU_OP(gpu, fdt[a], timestep_embedding, &go, &gt, dim, flip, shift, scale, max_period);
    finish(op, what, fdt[a], rc, gpu, &go, ref, 1);
    drop(gpu, &gt), drop(gpu, &go);
  }
  free(ref);
  drop(cpu, &ct), drop(cpu, &co);
}

/* ---- what a user can run into ---- */

static void test_errors(void) {
  const char *op = "errors";
  /* out of memory: NULL, and a message with the size */
  void *p = sdr_alloc(gpu, (size_t)1 << 50);
  int ok = p == NULL && strstr(sdr_last_error(), "out of GPU memory") &&
           strstr(sdr_last_error(), "1048576.00 GiB needed");
  if (!ok)
    fprintf(stderr, "FAIL errors: allocating 2^50 bytes: %s\n", p ? "succeeded" : sdr_last_error());
  else if (verbose)
    printf("ok   errors: %s\n", sdr_last_error());
  sdr_free(gpu, p);
  record(op, SDR_F32, ok, 0);

  /* an embedding id out of range: found on the GPU, reported by the next sync; then all is well */
  vals table = vals_rand(SHAPE(10, 4), -1, 1);
  int64_t ids[3] = {1, 13, 2};
  sdr_tensor gt = put(gpu, &table, SDR_F32), gi = put_raw(gpu, SDR_I64, SHAPE(3), ids);
  sdr_tensor go = poisoned(gpu, SDR_F32, SHAPE(3, 4));
  int rc = sdr_embedding(gpu, &go, &gt, &gi);
  int s1 = sdr_sync(gpu);
  const char *msg = sdr_last_error();
  ok = rc == 0 && s1 < 0 && strstr(msg, "id 13 is outside [0, 10)") != NULL;
  int s2 = sdr_sync(gpu);
  ok = ok && s2 == 0;
  if (!ok)
    fprintf(stderr, "FAIL errors: embedding id 13 of 10: rc %d, sync %d then %d: %s\n", rc, s1, s2,
            msg);
  else if (verbose)
    printf("ok   errors: %s\n", msg);
  record(op, SDR_F32, ok, 0);
  drop(gpu, &gt), drop(gpu, &gi), drop(gpu, &go);
  vals_free(&table);
}

/* linear -> layer_norm -> self-attention recorded once, replayed on new inputs. */
static void test_graph(void) {
  const char *op = "graph replay";
  const int64_t B = 2, T = 64, D = 96;
  const int heads = 4;
  const float scale = 1.0f / sqrtf((float)(D / heads));
  vals w = vals_rand(SHAPE(D, D), -0.3f, 0.3f), b = vals_rand(SHAPE(D), -1, 1);
  vals g = vals_rand(SHAPE(D), 0.5f, 1.5f), bt = vals_rand(SHAPE(D), -0.5f, 0.5f);
  sdr_tensor gx = poisoned(gpu, SDR_F32, SHAPE(B, T, D)), gw = put(gpu, &w, SDR_F32);
  sdr_tensor gb = put(gpu, &b, SDR_F32), gg = put(gpu, &g, SDR_F32), gbt = put(gpu, &bt, SDR_F32);
  sdr_tensor gy = poisoned(gpu, SDR_F32, SHAPE(B, T, D)),
             gz = poisoned(gpu, SDR_F32, SHAPE(B, T, D));
  sdr_tensor go = poisoned(gpu, SDR_F32, SHAPE(B, T, D));
  int ok = sdr_graph_begin(gpu) == 0;
  ok = ok && sdr_linear(gpu, &gy, &gx, &gw, &gb) == 0;
  ok = ok && sdr_layer_norm(gpu, &gz, &gy, &gg, &gbt, 1e-5f) == 0;
  ok = ok && sdr_attention(gpu, &go, &gz, &gz, &gz, heads, scale, 0) == 0;
  /* what cannot be recorded is refused, and the recording goes on */
  float one = 1.0f;
  int refused = sdr_upload(gpu, gx.data, &one, sizeof one) < 0 && sdr_sync(gpu) < 0 &&
                sdr_alloc(gpu, 64) == NULL && strstr(sdr_last_error(), "captured");
  sdr_graph *graph = sdr_graph_end(gpu);
  if (!ok || !refused || !graph) {
    fprintf(stderr, "FAIL graph: recording (ok %d, refused %d): %s\n", ok, refused,
            sdr_last_error());
    record(op, SDR_F32, 0, NAN);
  }
  for (int round = 0; graph && round < 2; round++) {
    vals x = vals_rand(SHAPE(B, T, D), -1, 1);
    sdr_upload(gpu, gx.data, x.v, (size_t)x.n * sizeof(float));
    repoison(gpu, &go);
    if (sdr_graph_replay(gpu, graph) < 0) {
      record_error(op, "replay", SDR_F32);
    } else {
      sdr_tensor cx = put(cpu, &x, SDR_F32), cw = put(cpu, &w, SDR_F32), cb = put(cpu, &b, SDR_F32);
      sdr_tensor cg = put(cpu, &g, SDR_F32), cbt = put(cpu, &bt, SDR_F32);
      sdr_tensor cy = poisoned(cpu, SDR_F32, SHAPE(B, T, D)),
                 cz = poisoned(cpu, SDR_F32, SHAPE(B, T, D));
      sdr_tensor co = poisoned(cpu, SDR_F32, SHAPE(B, T, D));
      REF(sdr_linear(cpu, &cy, &cx, &cw, &cb));
      REF(sdr_layer_norm(cpu, &cz, &cy, &cg, &cbt, 1e-5f));
      REF(sdr_attention(cpu, &co, &cz, &cz, &cz, heads, scale, 0));
      float *ref = get(cpu, &co);
      finish(op, round ? "second replay, new input" : "first replay", SDR_F32, 0, gpu, &go, ref, 1);
      free(ref);
      drop(cpu, &cx), drop(cpu, &cw), drop(cpu, &cb), drop(cpu, &cg), drop(cpu, &cbt);
      drop(cpu, &cy), drop(cpu, &cz), drop(cpu, &co);
    }
    vals_free(&x);
  }
  sdr_graph_destroy(gpu, graph);
  drop(gpu, &gx), drop(gpu, &gw), drop(gpu, &gb), drop(gpu, &gg), drop(gpu, &gbt);
  drop(gpu, &gy), drop(gpu, &gz), drop(gpu, &go);
  vals_free(&w), vals_free(&b), vals_free(&g), vals_free(&bt);
}

/* ---- all of it ---- */

static void run_all(void) {
  /* products: CLIP's, SD's transformer and feed-forward widths, odd sizes, an empty sum */
  test_linear(SHAPE(1, 1), 1, 1);
  test_linear(SHAPE(7, 33), 17, 1);
  test_linear(SHAPE(2, 77, 768), 768, 1);
  test_linear(SHAPE(2, 256, 320), 1280, 0);
  test_linear(SHAPE(4, 0), 3, 1);
  test_bmm(1, 1, 1, 1, 0, 1.0f);
  test_bmm(3, 7, 5, 9, 0, 0.5f);
  test_bmm(3, 7, 5, 9, 1, 1.0f);
  test_bmm(16, 77, 40, 77, 1, 0.158f);
  test_bmm(2, 64, 128, 96, 0, 1.0f);
  test_bmm(2, 3, 0, 4, 0, 1.0f);
  test_conv2d(1, 3, 9, 11, 5, 3, 1, 1, 1);
  test_conv2d(2, 4, 16, 16, 8, 3, 2, 0, 1); /* the VAE's downsampler, after pad2d */
  test_conv2d(2, 32, 16, 16, 64, 1, 1, 0, 1);
  test_conv2d(1, 64, 32, 32, 32, 3, 1, 1, 0);
  test_conv2d(2, 320, 16, 16, 320, 3, 1, 1, 1);
  test_conv2d(1, 4, 64, 64, 4, 3, 1, 1, 1);
  test_conv2d(1, 8, 7, 5, 6, 3, 1, 2, 1);
  /* normalisation */
  test_group_norm(1, 4, 3, 5, 2, 0, 0, 1, 0);
  test_group_norm(2, 32, 8, 8, 32, 1, 0, 1, 0);
  test_group_norm(2, 320, 16, 16, 32, 1, 0, 1, 0);
  test_group_norm(1, 128, 128, 128, 32, 0, 0, 1, 0); /* many pieces per group */
  test_group_norm(2, 64, 9, 7, 32, 1, 100, 1, 0);    /* a mean far from zero */
  test_group_norm(1, 32, 8, 8, 8, 1, 0, 0, 1);
  test_layer_norm(SHAPE(1, 1), 1, 0);
  test_layer_norm(SHAPE(5, 33), 1, 0);
  test_layer_norm(SHAPE(2, 77, 768), 1, 0);
  test_layer_norm(SHAPE(2, 1024, 320), 1, 0);
  test_layer_norm(SHAPE(3, 1280), 0, 1);
  test_softmax(SHAPE(3, 1), 4, 0);
  test_softmax(SHAPE(7, 77), 8, 0);
  test_softmax(SHAPE(4, 3, 4096), 20, 0);
  test_softmax(SHAPE(5, 100), 4, 1);
  /* attention: SD 1.x heads (40, 80, 160), CLIP (64, causal), the VAE (one head of 512),
   * tiny models, odd sizes */
  test_attention(1, 5, 7, 1, 4, 0);
  test_attention(2, 77, 77, 12, 64, 1);
  test_attention(2, 1024, 77, 8, 40, 0);
  test_attention(2, 1024, 1024, 8, 40, 0);
  test_attention(1, 256, 256, 8, 80, 0);
  test_attention(1, 256, 77, 8, 160, 0);
  test_attention(1, 256, 256, 1, 512, 0);
  test_attention(1, 33, 33, 2, 12, 1);
  test_attention(2, 64, 64, 2, 8, 0);
  test_attention(1, 100, 50, 3, 24, 1);
  test_attention(2, 4096, 4096, 8, 40, 0); /* SD 1.x's 64x64 self-attention */
  test_attention(2, 4096, 77, 8, 40, 0);   /* and its cross-attention */
  test_attention(1, 130, 130, 2, 64, 1);   /* causal across three key tiles, a ragged end */
  test_attention(1, 70, 70, 2, 96, 0);
  test_attention(1, 1, 77, 8, 40, 0);     /* a single query row */
  test_attention(1, 64, 4096, 8, 160, 0); /* the widest heads over 64 key tiles */
  /* elementwise */
  for (int u = 0; u < SDR_UNARY_COUNT; u++) {
    float lo = u == SDR_UNARY_SQRT ? 0 : u == SDR_UNARY_EXP ? -10 : -8;
    float hi = u == SDR_UNARY_SQRT ? 100 : u == SDR_UNARY_EXP ? 10 : 8;
    test_unary((sdr_unary_op)u, SHAPE(1), lo, hi, 0);
    test_unary((sdr_unary_op)u, SHAPE(3, 77, 129), lo, hi, 0);
    test_unary((sdr_unary_op)u, SHAPE(1000), lo, hi, 1);
  }
  test_geglu(SHAPE(3, 10));
  test_geglu(SHAPE(2, 256, 2560));
  test_binary(SHAPE(3, 4, 5), SHAPE(3, 4, 5), 0);
  test_binary(SHAPE(2, 3, 4, 5), SHAPE(1, 3, 1, 1), 0);
  test_binary(SHAPE(2, 3, 4, 5), SHAPE(5), 0);
  test_binary(SHAPE(4, 1), SHAPE(1, 6), 0);
  test_binary(SHAPE(7), 0, NULL, 0);
  test_binary(SHAPE(2, 320, 16, 16), SHAPE(2, 320, 1, 1), 0); /* a resnet's time embedding */
  test_binary(SHAPE(6, 50), SHAPE(6, 50), 1);
  test_affine(SHAPE(1000), 0.5f, -1.0f, 0);
  test_affine(SHAPE(2, 4, 64, 64), 0.18215f, 0.0f, 1);
  test_fill(0.0f);
  test_fill(1.5f);
  test_fill(-0.0f);
  test_fill(7e4f); /* past float16's largest */
  /* layout */
  test_upsample(2, 3, 5, 7);
  test_upsample(1, 320, 16, 16);
  test_pad2d(2, 3, 5, 7, 0, 1, 0, 1);
  test_pad2d(1, 4, 6, 6, 2, 3, 1, 0);
  test_concat(3, (const int64_t[]){2, 3, 4}, (const int64_t[]){2, 5, 4}, 1);
  test_concat(3, (const int64_t[]){2, 3, 4}, (const int64_t[]){1, 3, 4}, 0);
  test_concat(3, (const int64_t[]){2, 3, 4}, (const int64_t[]){2, 3, 6}, -1);
  test_concat(4, (const int64_t[]){2, 640, 8, 8}, (const int64_t[]){2, 320, 8, 8}, 1);
  test_permute(SHAPE(2, 3, 4), (const int[]){0, 2, 1});
  test_permute(SHAPE(2, 320, 1024), (const int[]){0, 2, 1}); /* NCHW -> NHWC tiles */
  test_permute(SHAPE(2, 1000, 33), (const int[]){0, 2, 1});
  test_permute(SHAPE(2, 3, 4, 5), (const int[]){0, 2, 3, 1});
  test_permute(SHAPE(2, 3, 4, 5), (const int[]){0, 3, 1, 2});
  test_permute(SHAPE(5, 7), (const int[]){1, 0});
  test_permute(SHAPE(2, 3, 1, 4, 5), (const int[]){4, 3, 2, 1, 0});
  test_permute(SHAPE(2, 77, 8, 40), (const int[]){0, 2, 1, 3}); /* split heads */
  test_permute(SHAPE(2, 3, 4), (const int[]){0, 1, 2});
  for (int f = 0; f < 3; f++)
    for (int t = 0; t < 3; t++)
      test_cast(fdt[f], fdt[t], 0);
  test_cast(SDR_I64, SDR_F32, 0);
  test_cast(SDR_F16, SDR_BF16, 1);
  test_embedding(100, 16, 2, 7);
  test_embedding(49408, 64, 2, 77);
  test_timestep(320, 1, 0.0f, 1.0f, 10000);
  test_timestep(33, 0, 1.0f, 1.0f, 10000);
  test_timestep(256, 1, 1.0f, 2.0f, 100);
  if (!dry && !emu)
    test_errors(); /* the CUDA backend's own messages */
  if (!dry)
    test_graph();
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  verbose = getenv("SDR_TEST_VERBOSE") && atoi(getenv("SDR_TEST_VERBOSE")) > 0;
  dry = getenv("SDR_CUDA_CHECK_DRY") && atoi(getenv("SDR_CUDA_CHECK_DRY")) > 0;
  if (dry) {
    nact = 1;
    cpu = sdr_cpu_backend_create();
    gpu = sdr_cpu_backend_create();
    gpu_simple = sdr_cpu_backend_create();
    gpu_small = sdr_cpu_backend_create();
    run_all();
    int failed = print_results("dry run: CPU backend against itself, float32 activations");
    return failed ? 1 : 0;
  }
  emu = getenv("SDR_CUDA_CHECK_EMU") && atoi(getenv("SDR_CUDA_CHECK_EMU")) > 0;
  if (emu) {
    cpu = sdr_cpu_backend_create();
    gpu = sdr_emu_backend_create();
    gpu_simple = sdr_emu_backend_create();
    gpu_small = sdr_emu_backend_create();
    if (!cpu || !gpu || !gpu_simple || !gpu_small) {
      fprintf(stderr, "FAIL: making the backends: %s\n", sdr_last_error());
      return 1;
    }
    run_all();
    int failed = print_results("emulated device against the CPU backend, every dtype");
    sdr_emu_backend_destroy(gpu_small);
    sdr_emu_backend_destroy(gpu_simple);
    sdr_emu_backend_destroy(gpu);
    sdr_cpu_backend_destroy(cpu);
    return failed ? 1 : 0;
  }
  simt_run = getenv("SDR_CUDA_CHECK_SIMT") && atoi(getenv("SDR_CUDA_CHECK_SIMT")) > 0;
#ifndef SDREPL_HAVE_CUDA
  printf("SKIPPED: this build has no CUDA\n");
  return 77;
#else
  if (sdr_cuda_device_count() == 0) {
    printf("SKIPPED: no CUDA GPU (%s)\n", sdr_cuda_unavailable_reason());
    return 77;
  }
  sdr_cuda_device_info info;
  if (sdr_cuda_device_info_get(0, &info) == 0)
    printf("%s: compute capability %d.%d, %d SMs, %.1f GiB (%.1f free)\n", info.name, info.major,
           info.minor, info.sm_count, (double)info.total_bytes / (1u << 30),
           (double)info.free_bytes / (1u << 30));
  sdr_cuda_options simple = {0, 0, 1}, small = {0, 1 << 20, 0};
  cpu = sdr_cpu_backend_create();
  gpu = sdr_cuda_backend_create(NULL);
  if (gpu) {
    gpu_simple = sdr_cuda_backend_create(&simple);
    gpu_small = sdr_cuda_backend_create(&small);
  }
  if (!cpu || !gpu || !gpu_simple || !gpu_small) {
    fprintf(stderr, "FAIL: making the backends: %s\n", sdr_last_error());
    return 1;
  }
  set_mma_attention = sdr_cuda_set_attention;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  run_all();
  clock_gettime(CLOCK_MONOTONIC, &t1);
  int failed = print_results("CUDA backend against the CPU backend");
  printf("%d case(s) failed; %.1f s\n", failed,
         (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
  sdr_cuda_backend_destroy(gpu_small);
  sdr_cuda_backend_destroy(gpu_simple);
  sdr_cuda_backend_destroy(gpu);
  sdr_cpu_backend_destroy(cpu);
  return failed ? 1 : 0;
#endif
}

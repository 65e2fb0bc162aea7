/* tests/cuda/test_emu_backend.c — the emulated CUDA device (emu_backend.h) that CI runs
 * the engine's device path on: its addresses cannot be dereferenced, every op
 * checks its tensors lie in live allocations, float16/bfloat16 ops agree with the
 * CPU's float32 within a GPU's tolerance, layout ops are exact, and graphs record
 * and replay as kernels/cuda's do.
 *
 * Exit status: 0 all passed, 1 a failure.
 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cuda_check.h"
#include "emu_backend.h"

static int failures;

#define EXPECT(cond)                                                                               \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: EXPECT failed: %s (last error: %s)\n", __FILE__, __LINE__, #cond,    \
              sdr_last_error());                                                                   \
      failures++;                                                                                  \
    }                                                                                              \
  } while (0)

static int error_has(const char *s) { return strstr(sdr_last_error(), s) != NULL; }

/* 1 when reading p in a child process kills it (or ASan stops it). */
static int read_crashes(const void *p) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    /* quiet: ASan prints a report of the SEGV it catches */
    if (!freopen("/dev/null", "w", stderr))
      _exit(3);
    volatile const float *f = (volatile const float *)p;
    float x = *f;
    _exit(x == x ? 0 : 0);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid)
    return 0;
  return WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0);
}

static void test_addresses(void) {
  sdr_emu_stats s0, s1;
  sdr_emu_backend_stats(gpu, &s0);
  float *p = sdr_alloc(gpu, 16 * sizeof(float));
  EXPECT(p != NULL);
  float *h = sdr_emu_host_address(gpu, p);
  EXPECT(h != NULL && (void *)h != (void *)p);
  EXPECT(sdr_emu_host_address(gpu, p + 16) != NULL); /* one past the end: an empty range */
  EXPECT(sdr_emu_host_address(gpu, p + 17) == NULL);
  EXPECT(sdr_emu_host_address(gpu, h) == NULL); /* a host address is not device memory */
  EXPECT(read_crashes(p));
  EXPECT(!read_crashes(h));
  /* new memory reads as NaN until written */
  float back[16];
  EXPECT(sdr_download(gpu, back, p, sizeof back) == 0);
  EXPECT(isnan(back[0]) && isnan(back[15]));
  float v[16];
  for (int i = 0; i < 16; i++)
    v[i] = (float)i;
  EXPECT(sdr_upload(gpu, p, v, sizeof v) == 0);
  EXPECT(sdr_download(gpu, back, p, sizeof back) == 0);
  EXPECT(memcmp(v, back, sizeof v) == 0);
  /* ranges past the allocation, host memory given as device memory */
  EXPECT(sdr_upload(gpu, p + 8, v, sizeof v) < 0 && error_has("not inside one live"));
  EXPECT(sdr_download(gpu, back, v, sizeof back) < 0 && error_has("host address"));
  sdr_tensor out = sdr_tensor_view(p, SDR_F32, SDR_DEVICE_CUDA, 1, (int64_t[]){8});
  sdr_tensor in_host = sdr_tensor_view(v, SDR_F32, SDR_DEVICE_CUDA, 1, (int64_t[]){8});
  sdr_tensor in9 = sdr_tensor_view(p, SDR_F32, SDR_DEVICE_CUDA, 1, (int64_t[]){9});
  sdr_tensor past = sdr_tensor_view(p + 9, SDR_F32, SDR_DEVICE_CUDA, 1, (int64_t[]){9});
  EXPECT(sdr_affine(gpu, &out, &in_host, 2, 0) < 0 && error_has("host address"));
  EXPECT(sdr_affine(gpu, &past, &in9, 2, 0) < 0 && error_has("not inside one live"));
  sdr_free(gpu, p);
  EXPECT(sdr_emu_host_address(gpu, p) == NULL);
  sdr_tensor freed = sdr_tensor_view(p, SDR_F32, SDR_DEVICE_CUDA, 1, (int64_t[]){8});
  float *q = sdr_alloc(gpu, 8 * sizeof(float));
  sdr_tensor live = sdr_tensor_view(q, SDR_F32, SDR_DEVICE_CUDA, 1, (int64_t[]){8});
  if (q != p) /* the allocator may hand the same block back */
    EXPECT(sdr_affine(gpu, &live, &freed, 2, 0) < 0 && error_has("not inside one live"));
  sdr_free(gpu, q);
  sdr_emu_backend_stats(gpu, &s1);
  EXPECT(s1.allocs - s0.allocs == 2 && s1.frees - s0.frees == 2);
  EXPECT(s1.live_allocs == s0.live_allocs);
}

/* A few ops with float16 and bfloat16 activations against the CPU in float32. */
static void test_ops(void) {
  for (int d = 1; d < 3; d++) {
    sdr_dtype dt = d == 1 ? SDR_F16 : SDR_BF16;
    sdr_emu_stats s0, s1;
    sdr_emu_backend_stats(gpu, &s0);
    /* linear with weights in float16, bias in float32 */
    vals x = vals_rand(SHAPE(2, 7, 24), -1, 1), w = vals_rand(SHAPE(10, 24), -0.5f, 0.5f);
    vals b = vals_rand(SHAPE(10), -1, 1);
    sdr_tensor cx = put(cpu, &x, SDR_F32), cw = put(cpu, &w, SDR_F32), cb = put(cpu, &b, SDR_F32);
    sdr_tensor co = poisoned(cpu, SDR_F32, SHAPE(2, 7, 10));
    EXPECT(sdr_linear(cpu, &co, &cx, &cw, &cb) == 0);
    float *ref = get(cpu, &co);
    sdr_tensor gx = put(gpu, &x, dt), gw = put(gpu, &w, SDR_F16), gb = put(gpu, &b, SDR_F32);
    sdr_tensor go = poisoned(gpu, dt, SHAPE(2, 7, 10));
    EXPECT(sdr_linear(gpu, &go, &gx, &gw, &gb) == 0);
    float *got = get(gpu, &go);
    EXPECT(compare("linear", "(2, 7, 24) -> 10, w float16", dt, got, ref, 70, 1));
    free(got), free(ref);
    /* SiLU in place on the linear's output */
    vals y = vals_new(SHAPE(2, 7, 10));
    float *lin = get(cpu, &co);
    memcpy(y.v, lin, sizeof(float) * 140);
    free(lin);
    EXPECT(sdr_unary(cpu, &co, &co, SDR_UNARY_SILU) == 0);
    ref = get(cpu, &co);
    EXPECT(sdr_unary(gpu, &go, &go, SDR_UNARY_SILU) == 0);
    got = get(gpu, &go);
    EXPECT(compare("unary", "silu in place", dt, got, ref, 140, 2));
    free(got), free(ref), vals_free(&y);
    drop(cpu, &cx), drop(cpu, &cw), drop(cpu, &cb), drop(cpu, &co);
    drop(gpu, &gx), drop(gpu, &gw), drop(gpu, &gb), drop(gpu, &go);
    vals_free(&x), vals_free(&w), vals_free(&b);

    /* conv2d, group norm with SiLU in place (gamma, beta in bfloat16) */
    vals im = vals_rand(SHAPE(2, 4, 9, 7), -1, 1), k = vals_rand(SHAPE(8, 4, 3, 3), -0.3f, 0.3f);
    vals g = vals_rand(SHAPE(8), 0.5f, 1.5f), bt = vals_rand(SHAPE(8), -0.5f, 0.5f);
    sdr_tensor ci = put(cpu, &im, SDR_F32), ck = put(cpu, &k, SDR_F32);
    sdr_tensor cg = put(cpu, &g, SDR_F32), cbt = put(cpu, &bt, SDR_F32);
    sdr_tensor cc = poisoned(cpu, SDR_F32, SHAPE(2, 8, 9, 7));
    EXPECT(sdr_conv2d(cpu, &cc, &ci, &ck, NULL, 1, 1) == 0);
    EXPECT(sdr_group_norm(cpu, &cc, &cc, &cg, &cbt, 4, 1e-5f, 1) == 0);
    ref = get(cpu, &cc);
    sdr_tensor gi = put(gpu, &im, dt), gk = put(gpu, &k, dt);
    sdr_tensor gg = put(gpu, &g, SDR_BF16), gbt = put(gpu, &bt, SDR_BF16);
    sdr_tensor gc = poisoned(gpu, dt, SHAPE(2, 8, 9, 7));
    EXPECT(sdr_conv2d(gpu, &gc, &gi, &gk, NULL, 1, 1) == 0);
    EXPECT(sdr_group_norm(gpu, &gc, &gc, &gg, &gbt, 4, 1e-5f, 1) == 0);
    got = get(gpu, &gc);
    EXPECT(compare("conv2d+group_norm", "(2, 4, 9, 7) -> 8, silu in place", dt, got, ref,
                   2 * 8 * 9 * 7, 2));
    free(got), free(ref);
    /* layout: pad, upsample, permute, concat give the same values (inputs exact in dt) */
    float *gv = get(gpu, &gc);
    vals gcv = vals_new(SHAPE(2, 8, 9, 7));
    memcpy(gcv.v, gv, sizeof(float) * (size_t)gcv.n);
    free(gv);
    sdr_tensor cgc = put(cpu, &gcv, SDR_F32); /* the GPU's values on the CPU, exact in dt */
    sdr_tensor cp = poisoned(cpu, SDR_F32, SHAPE(2, 8, 10, 10)),
               gp = poisoned(gpu, dt, SHAPE(2, 8, 10, 10));
    EXPECT(sdr_pad2d(cpu, &cp, &cgc, 1, 2, 0, 1) == 0 && sdr_pad2d(gpu, &gp, &gc, 1, 2, 0, 1) == 0);
    sdr_tensor cu = poisoned(cpu, SDR_F32, SHAPE(2, 8, 20, 20)),
               gu = poisoned(gpu, dt, SHAPE(2, 8, 20, 20));
    EXPECT(sdr_upsample_nearest2x(cpu, &cu, &cp) == 0 &&
           sdr_upsample_nearest2x(gpu, &gu, &gp) == 0);
    sdr_tensor cq = poisoned(cpu, SDR_F32, SHAPE(2, 20, 20, 8)),
               gq = poisoned(gpu, dt, SHAPE(2, 20, 20, 8));
    EXPECT(sdr_permute(cpu, &cq, &cu, (const int[]){0, 2, 3, 1}) == 0 &&
           sdr_permute(gpu, &gq, &gu, (const int[]){0, 2, 3, 1}) == 0);
    sdr_tensor ccat = poisoned(cpu, SDR_F32, SHAPE(4, 20, 20, 8)),
               gcat = poisoned(gpu, dt, SHAPE(4, 20, 20, 8));
    EXPECT(sdr_concat(cpu, &ccat, &cq, &cq, 0) == 0 && sdr_concat(gpu, &gcat, &gq, &gq, 0) == 0);
    float *cr = get(cpu, &ccat);
    void *want = to_bits(cr, 4 * 20 * 20 * 8, dt), *have = get_raw(gpu, &gcat);
    EXPECT(compare_bytes("layout", "pad2d, upsample, permute, concat", dt, have, want,
                         (size_t)4 * 20 * 20 * 8 * 2));
    free(cr), free(want), free(have);
    drop(cpu, &cgc), drop(cpu, &cp), drop(cpu, &cu), drop(cpu, &cq), drop(cpu, &ccat);
    drop(gpu, &gp), drop(gpu, &gu), drop(gpu, &gq), drop(gpu, &gcat);
    vals_free(&gcv);
    drop(cpu, &ci), drop(cpu, &ck), drop(cpu, &cg), drop(cpu, &cbt), drop(cpu, &cc);
    drop(gpu, &gi), drop(gpu, &gk), drop(gpu, &gg), drop(gpu, &gbt), drop(gpu, &gc);
    vals_free(&im), vals_free(&k), vals_free(&g), vals_free(&bt);

    /* causal attention (CLIP's) */
    vals q = vals_rand(SHAPE(2, 9, 16), -1, 1);
    sdr_tensor cq2 = put(cpu, &q, SDR_F32), ca = poisoned(cpu, SDR_F32, SHAPE(2, 9, 16));
    EXPECT(sdr_attention(cpu, &ca, &cq2, &cq2, &cq2, 2, 0.35f, 1) == 0);
    ref = get(cpu, &ca);
    sdr_tensor gq2 = put(gpu, &q, dt), ga = poisoned(gpu, dt, SHAPE(2, 9, 16));
    EXPECT(sdr_attention(gpu, &ga, &gq2, &gq2, &gq2, 2, 0.35f, 1) == 0);
    got = get(gpu, &ga);
    EXPECT(compare("attention", "(2, 9, 16) 2 heads causal", dt, got, ref, 2 * 9 * 16, 1));
    free(got), free(ref);
    drop(cpu, &cq2), drop(cpu, &ca), drop(gpu, &gq2), drop(gpu, &ga), vals_free(&q);

    /* embedding from a float16 table; timestep embedding; casts both ways */
    vals tab = vals_rand(SHAPE(11, 6), -1, 1);
    int64_t ids[4] = {3, 0, 10, 3};
    sdr_tensor ct = put(cpu, &tab, SDR_F32), cid = put_raw(cpu, SDR_I64, SHAPE(4), ids);
    sdr_tensor ce = poisoned(cpu, SDR_F32, SHAPE(4, 6));
    EXPECT(sdr_embedding(cpu, &ce, &ct, &cid) == 0);
    ref = get(cpu, &ce);
    sdr_tensor gt = put(gpu, &tab, SDR_F16), gid = put_raw(gpu, SDR_I64, SHAPE(4), ids);
    sdr_tensor ge = poisoned(gpu, dt, SHAPE(4, 6));
    EXPECT(sdr_embedding(gpu, &ge, &gt, &gid) == 0);
    got = get(gpu, &ge);
    EXPECT(compare("embedding", "11 x 6, table float16", dt, got, ref, 24, 1));
    free(got), free(ref);
    float tv[3] = {1, 500, 981};
    sdr_tensor cts = put_raw(cpu, SDR_F32, SHAPE(3), tv), gts = put_raw(gpu, SDR_F32, SHAPE(3), tv);
    sdr_tensor cte = poisoned(cpu, SDR_F32, SHAPE(3, 32)), gte = poisoned(gpu, dt, SHAPE(3, 32));
    EXPECT(sdr_timestep_embedding(cpu, &cte, &cts, 32, 1, 0, 1, 10000) == 0);
    EXPECT(sdr_timestep_embedding(gpu, &gte, &gts, 32, 1, 0, 1, 10000) == 0);
    ref = get(cpu, &cte);
    got = get(gpu, &gte);
    EXPECT(compare("timestep_embedding", "3 x 32", dt, got, ref, 96, 1));
    free(got), free(ref);
    float odd[5] = {0.1f, -3.3333f, 65504.0f, 1e-6f, 70000.0f};
    sdr_tensor gf = put_raw(gpu, SDR_F32, SHAPE(5), odd), gh = poisoned(gpu, dt, SHAPE(5));
    sdr_tensor gback = poisoned(gpu, SDR_F32, SHAPE(5));
    EXPECT(sdr_cast(gpu, &gh, &gf) == 0 && sdr_cast(gpu, &gback, &gh) == 0);
    uint16_t *hb = get_raw(gpu, &gh);
    for (int i = 0; i < 5; i++)
      EXPECT(hb[i] == (dt == SDR_F16 ? sdr_f32_to_f16(odd[i]) : sdr_f32_to_bf16(odd[i])));
    free(hb);
    drop(cpu, &ct), drop(cpu, &cid), drop(cpu, &ce), drop(cpu, &cts), drop(cpu, &cte);
    drop(gpu, &gt), drop(gpu, &gid), drop(gpu, &ge), drop(gpu, &gts), drop(gpu, &gte);
    drop(gpu, &gf), drop(gpu, &gh), drop(gpu, &gback);
    vals_free(&tab);

    sdr_emu_backend_stats(gpu, &s1);
    long long half = dt == SDR_F16 ? s1.ops_f16 - s0.ops_f16 : s1.ops_bf16 - s0.ops_bf16;
    EXPECT(half == 9); /* the ops above with dt activations; byte movers are not counted */
  }
}

/* linear -> layer_norm -> attention, float16, recorded once and replayed on new inputs. */
static void test_graph(void) {
  const int64_t B = 2, T = 8, D = 16;
  const sdr_dtype dt = SDR_F16;
  EXPECT(sdr_graph_supported(gpu));
  vals w = vals_rand(SHAPE(D, D), -0.3f, 0.3f), b = vals_rand(SHAPE(D), -1, 1);
  sdr_tensor gx = poisoned(gpu, dt, SHAPE(B, T, D)), gw = put(gpu, &w, dt), gb = put(gpu, &b, dt);
  sdr_tensor gy = poisoned(gpu, dt, SHAPE(B, T, D)), gz = poisoned(gpu, dt, SHAPE(B, T, D));
  sdr_tensor go = poisoned(gpu, dt, SHAPE(B, T, D));
  void *spare = sdr_alloc(gpu, 64);
  sdr_emu_stats s0, s1;
  sdr_emu_backend_stats(gpu, &s0);
  EXPECT(sdr_graph_begin(gpu) == 0);
  EXPECT(sdr_graph_begin(gpu) < 0); /* one at a time */
  EXPECT(sdr_linear(gpu, &gy, &gx, &gw, &gb) == 0);
  EXPECT(sdr_layer_norm(gpu, &gz, &gy, NULL, NULL, 1e-5f) == 0);
  EXPECT(sdr_attention(gpu, &go, &gz, &gz, &gz, 2, 0.35f, 0) == 0);
  float one = 1.0f, back;
  EXPECT(sdr_upload(gpu, gx.data, &one, sizeof one) < 0 && error_has("captured"));
  EXPECT(sdr_download(gpu, &back, gx.data, sizeof back) < 0 && error_has("captured"));
  EXPECT(sdr_sync(gpu) < 0 && error_has("captured"));
  EXPECT(sdr_alloc(gpu, 64) == NULL && error_has("captured"));
  EXPECT(sdr_reserve_workspace(gpu, (size_t)1 << 30) < 0 && error_has("captured"));
  sdr_free(gpu, spare); /* deferred to graph_end */
  EXPECT(sdr_emu_host_address(gpu, spare) != NULL);
  sdr_emu_backend_stats(gpu, &s1);
  EXPECT(s1.ops_run == s0.ops_run && s1.ops_recorded - s0.ops_recorded == 3);
  sdr_graph *g = sdr_graph_end(gpu);
  EXPECT(g != NULL);
  EXPECT(sdr_emu_host_address(gpu, spare) == NULL);
  EXPECT(sdr_graph_end(gpu) == NULL);
  /* nothing ran: the output is still poisoned */
  float *o = get(gpu, &go);
  EXPECT(isnan(o[0]) && isnan(o[B * T * D - 1]));
  free(o);
  for (int round = 0; g && round < 2; round++) {
    vals x = vals_rand(SHAPE(B, T, D), -1, 1);
    void *xb = to_bits(x.v, x.n, dt);
    EXPECT(sdr_upload(gpu, gx.data, xb, (size_t)x.n * 2) == 0);
    free(xb);
    repoison(gpu, &go);
    EXPECT(sdr_graph_replay(gpu, g) == 0);
    sdr_tensor cx = put(cpu, &x, SDR_F32), cw = put(cpu, &w, SDR_F32), cb = put(cpu, &b, SDR_F32);
    sdr_tensor cy = poisoned(cpu, SDR_F32, SHAPE(B, T, D)),
               cz = poisoned(cpu, SDR_F32, SHAPE(B, T, D));
    sdr_tensor co = poisoned(cpu, SDR_F32, SHAPE(B, T, D));
    EXPECT(sdr_linear(cpu, &cy, &cx, &cw, &cb) == 0);
    EXPECT(sdr_layer_norm(cpu, &cz, &cy, NULL, NULL, 1e-5f) == 0);
    EXPECT(sdr_attention(cpu, &co, &cz, &cz, &cz, 2, 0.35f, 0) == 0);
    float *ref = get(cpu, &co), *got = get(gpu, &go);
    EXPECT(compare("graph", round ? "second replay" : "first replay", dt, got, ref, B * T * D, 2));
    free(ref), free(got);
    drop(cpu, &cx), drop(cpu, &cw), drop(cpu, &cb), drop(cpu, &cy), drop(cpu, &cz), drop(cpu, &co);
    vals_free(&x);
  }
  sdr_emu_stats s2;
  sdr_emu_backend_stats(gpu, &s2);
  EXPECT(s2.graph_replays - s0.graph_replays == 2 && s2.ops_run - s1.ops_run == 6);
  EXPECT(s2.graphs - s0.graphs == 1);
  /* a replay over a freed buffer is refused, not run */
  drop(gpu, &gz);
  EXPECT(sdr_graph_replay(gpu, g) < 0 && error_has("not inside one live"));
  sdr_graph_destroy(gpu, g);
  drop(gpu, &gx), drop(gpu, &gw), drop(gpu, &gb), drop(gpu, &gy), drop(gpu, &go);
  vals_free(&w), vals_free(&b);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  verbose = getenv("SDR_TEST_VERBOSE") && atoi(getenv("SDR_TEST_VERBOSE")) > 0;
  cpu = sdr_cpu_backend_create();
  gpu = sdr_emu_backend_create();
  if (!cpu || !gpu) {
    fprintf(stderr, "FAIL: making the backends: %s\n", sdr_last_error());
    return 1;
  }
  EXPECT(gpu->device == SDR_DEVICE_CUDA);
  EXPECT(sdr_backend_act_dtype(gpu, SDR_F16) == SDR_F16);
  EXPECT(sdr_backend_act_dtype(gpu, SDR_BF16) == SDR_BF16);
  test_addresses();
  test_ops();
  test_graph();
  sdr_emu_stats s;
  sdr_emu_backend_stats(gpu, &s);
  EXPECT(s.live_allocs == 0);
  int failed = print_results("emulated CUDA backend against the CPU backend") + failures;
  sdr_emu_backend_destroy(gpu);
  sdr_cpu_backend_destroy(cpu);
  printf("%s\n", failed ? "FAILED" : "all passed");
  return failed ? 1 : 0;
}

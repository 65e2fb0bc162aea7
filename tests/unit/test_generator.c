/* engine/generator: torch's random numbers, bit for bit.
 *
 * CPU: tests/fixtures/rng/ holds draws from Debian's python3-torch 1.13.1+dfsg-4
 * (torch.__version__ "1.13.0a0", GCC 12.2 build) on an AMD EPYC with AVX2, FMA
 * and AVX-512, made by scripts/reference/make_rng_cases.py. Cases marked "avx2"
 * come from torch's AVX2 kernels (its default on that CPU), cases marked
 * "default" from its plain kernels (ATEN_CPU_CAPABILITY=default). Every stored
 * value is compared bit for bit, and the CRC-32 of each whole draw too.
 *
 * CUDA: no GPU made these files, so Philox4x32-10 is checked against the
 * Random123 known-answer vectors, curand_init/curand4 against a plain reading
 * of the counter layout, and torch's grid-stride layout against an
 * element-by-element reconstruction. Then the whole of it against values people
 * printed from torch.randn(device="cuda") on real GPUs and posted in PyTorch's
 * issues (4 decimals), on GPUs whose grids differ: H100 (H200's geometry), A100,
 * RTX 3060 and RTX A4000, each where the GPUs' outputs part ways.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "check.h"
#include "engine/avx_mathfun.h"    // sdr_cpu_has_avx2_fma
#include "engine/error.h"          // sdr_last_error
#include "engine/generator.h"      // sdr_generator, sdr_generator_randn_f32, ...
#include "engine/generator_cuda.h" // sdr_cuda_launch_for
#include "engine/half.h"           // sdr_f16_to_f32, sdr_bf16_to_f32
#include "engine/mt19937.h"        // sdr_mt19937_seed, sdr_mt19937_next
#include "engine/npy.h"            // sdr_npy_read
#include "kernels/philox.h"        // sdr_philox4x32_10, sdr_philox_init, ...

#define FIXTURES "tests/fixtures/rng/"

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = len >= 0 ? malloc((size_t)len + 1) : NULL;
  if (text && fread(text, 1, (size_t)len, f) != (size_t)len) {
    free(text);
    text = NULL;
  }
  if (text)
    text[len] = 0;
  fclose(f);
  return text;
}

/* ---- CPU: the fixtures ----------------------------------------------------- */

static double value_of(const void *data, int elsize, int is_bf16, size_t i) {
  if (elsize == 4)
    return ((const float *)data)[i];
  uint16_t b = ((const uint16_t *)data)[i];
  return is_bf16 ? sdr_bf16_to_f32(b) : sdr_f16_to_f32(b);
}

static uint32_t bits_of(const void *data, int elsize, size_t i) {
  if (elsize == 4) {
    uint32_t u;
    memcpy(&u, (const char *)data + 4 * i, 4);
    return u;
  }
  return ((const uint16_t *)data)[i];
}

/* The stored positions: all of them, or head, tail and a stride (see the script). */
static size_t sample_index(const cJSON *sample, size_t n, size_t k) {
  if (cJSON_IsString(sample))
    return k;
  size_t head = (size_t)cJSON_GetObjectItem(sample, "head")->valuedouble;
  size_t tail = (size_t)cJSON_GetObjectItem(sample, "tail")->valuedouble;
  size_t stride = (size_t)cJSON_GetObjectItem(sample, "stride")->valuedouble;
  if (k < head)
    return k;
  if (k < head + tail)
    return n - tail + (k - head);
  return (k - head - tail) * stride;
}

static int check_step(const char *name, int step, const cJSON *s, sdr_generator *g) {
  const char *op = cJSON_GetObjectItem(s, "op")->valuestring;
  const char *dtype = cJSON_GetObjectItem(s, "dtype")->valuestring;
  size_t n = (size_t)cJSON_GetObjectItem(s, "n")->valuedouble;
  const char *file = cJSON_GetObjectItem(s, "file")->valuestring;
  const cJSON *sample = cJSON_GetObjectItem(s, "sample");
  uint32_t crc_expected = (uint32_t)cJSON_GetObjectItem(s, "crc32")->valuedouble;
  double sum_expected = cJSON_GetObjectItem(s, "sum")->valuedouble;
  int is_bf16 = strcmp(dtype, "bfloat16") == 0;
  int elsize = strcmp(dtype, "float32") == 0 ? 4 : 2;

  void *got = malloc(n * (size_t)elsize + 1);
  if (strcmp(op, "rand") == 0)
    sdr_generator_rand_f32(g, got, n);
  else if (elsize == 4)
    sdr_generator_randn_f32(g, got, n);
  else if (is_bf16)
    sdr_generator_randn_bf16(g, got, n);
  else
    sdr_generator_randn_f16(g, got, n);

  char path[512];
  snprintf(path, sizeof path, FIXTURES "%s", file);
  sdr_npy want;
  int bad = 0;
  if (sdr_npy_read(path, &want) < 0) {
    fprintf(stderr, "%s: %s\n", name, sdr_last_error());
    free(got);
    return 1;
  }
  if ((int)sdr_dtype_size(want.dtype) != elsize) {
    fprintf(stderr, "%s: %s holds elements of the wrong size\n", name, file);
    bad++;
  } else {
    for (size_t k = 0; k < want.count; k++) {
      size_t i = sample_index(sample, n, k);
      uint32_t a = bits_of(got, elsize, i), b = bits_of(want.data, elsize, k);
      if (a != b && bad++ < 5)
        fprintf(stderr, "%s step %d (%s %s n=%zu) [%zu]: got %.9g (0x%08x), torch %.9g (0x%08x)\n",
                name, step, op, dtype, n, i, value_of(got, elsize, is_bf16, i), a,
                value_of(want.data, elsize, is_bf16, k), b);
    }
  }
  uint32_t crc = (uint32_t)crc32(0L, got, (uInt)(n * (size_t)elsize));
  if (crc != crc_expected) {
    double sum = 0;
    for (size_t i = 0; i < n; i++)
      sum += value_of(got, elsize, is_bf16, i);
    fprintf(stderr, "%s step %d (%s %s n=%zu): CRC-32 %08x, torch %08x (sums %.9g, %.9g)\n", name,
            step, op, dtype, n, crc, crc_expected, sum, sum_expected);
    bad++;
  }
  sdr_npy_free(&want);
  free(got);
  return bad;
}

static void check_fixtures(void) {
  char *text = read_text(FIXTURES "manifest.json");
  CHECK(text != NULL);
  cJSON *root = text ? cJSON_Parse(text) : NULL;
  CHECK(root != NULL);
  if (!root) {
    free(text);
    return;
  }
  int has_avx2 = sdr_cpu_has_avx2_fma(), cases = 0, skipped = 0, failed = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
    const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
    const char *cap = cJSON_GetObjectItem(c, "capability")->valuestring;
    const char *kind = cJSON_GetObjectItem(c, "generator")->valuestring;
    const cJSON *seed = cJSON_GetObjectItem(c, "seed");
    if (strcmp(cap, "avx2") == 0 && !has_avx2) {
      skipped++;
      continue;
    }
    CHECK(sdr_generator_force_cpu_capability(strcmp(cap, "avx2") == 0
                                                 ? SDR_CPU_CAPABILITY_AVX2
                                                 : SDR_CPU_CAPABILITY_DEFAULT) == 0);
    sdr_generator g;
    sdr_generator_init(&g, SDR_GENERATOR_CPU);
    if (strcmp(kind, "fresh") != 0)
      sdr_generator_manual_seed(&g, (uint64_t)seed->valuedouble);
    int bad = 0, step = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(c, "steps")) {
      if (strcmp(cJSON_GetObjectItem(s, "op")->valuestring, "seed") == 0)
        sdr_generator_manual_seed(&g, (uint64_t)cJSON_GetObjectItem(s, "seed")->valuedouble);
      else
        bad += check_step(name, step, s, &g);
      step++;
    }
    cases++;
    failed += bad > 0;
  }
  printf("torch fixtures: %d cases checked, %d failed, %d skipped (AVX2 cases, no AVX2 here)\n",
         cases, failed, skipped);
  CHECK(cases > 100 || (skipped > 0 && cases > 10));
  CHECK(failed == 0);
  cJSON_Delete(root);
  free(text);
  sdr_generator_force_cpu_capability(SDR_CPU_CAPABILITY_DEFAULT);
}

/* ---- CPU: properties that hold whatever the fixtures say ------------------- */

static void check_mt19937(void) {
  /* std::mt19937 is torch's engine with the default seed 5489: the C++
   * standard fixes its 10000th output at 4123659995. */
  uint32_t st[SDR_MT19937_N];
  int idx;
  sdr_mt19937_seed(st, &idx, 5489);
  uint32_t first = sdr_mt19937_next(st, &idx), v = first;
  for (int i = 1; i < 10000; i++)
    v = sdr_mt19937_next(st, &idx);
  CHECK(first == 3499211612u);
  CHECK(v == 4123659995u);
}

static void check_seeding(void) {
  /* A fresh generator is torch.Generator(): seed 67280421310721. */
  sdr_generator a, b;
  sdr_generator_init(&a, SDR_GENERATOR_CPU);
  sdr_generator_init(&b, SDR_GENERATOR_CPU);
  sdr_generator_manual_seed(&b, UINT64_C(67280421310721));
  float x[20], y[20];
  sdr_generator_randn_f32(&a, x, 20);
  sdr_generator_randn_f32(&b, y, 20);
  CHECK(memcmp(x, y, sizeof x) == 0);
  /* mt19937 keeps the low 32 bits of the seed, and the seed itself whole. */
  sdr_generator_manual_seed(&a, (UINT64_C(1) << 32) + 5);
  sdr_generator_manual_seed(&b, 5);
  CHECK(a.seed == (UINT64_C(1) << 32) + 5);
  sdr_generator_randn_f32(&a, x, 3);
  sdr_generator_randn_f32(&b, y, 3);
  CHECK(memcmp(x, y, 3 * sizeof x[0]) == 0);
  /* A re-seed drops the cached normal: randn(1) twice from one seed agree. */
  sdr_generator_manual_seed(&a, 9);
  sdr_generator_randn_f32(&a, x, 1);
  CHECK(a.has_next_double_normal);
  sdr_generator_manual_seed(&a, 9);
  CHECK(!a.has_next_double_normal);
  sdr_generator_randn_f32(&a, y, 1);
  CHECK(x[0] == y[0]);
  /* Empty draws take nothing. */
  sdr_generator_manual_seed(&a, 9);
  sdr_generator_randn_f32(&a, x, 0);
  sdr_generator_randn_f32(&a, y, 1);
  CHECK(x[0] == y[0]);
}

/* ---- CUDA: Philox and curand ---------------------------------------------- */

static void check_philox_kat(void) {
  /* Random123 kat_vectors, philox4x32 10: counter, key, expected output. */
  static const uint32_t kat[3][10] = {
      {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
      {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
       0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
      {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
       0x94fdcceb, 0x5001e420, 0x24126ea1},
  };
  for (int i = 0; i < 3; i++) {
    uint32_t out[4];
    sdr_philox4x32_10(kat[i], kat[i] + 4, out);
    for (int k = 0; k < 4; k++) {
      if (out[k] != kat[i][6 + k])
        fprintf(stderr, "philox KAT %d word %d: %08x, expected %08x\n", i, k, out[k],
                kat[i][6 + k]);
      CHECK(out[k] == kat[i][6 + k]);
    }
  }
}

/* Word j of the stream of (seed, subsequence): word j % 4 of Philox of the
 * counter (j / 4 in the low 64 bits, subsequence in the high 64 bits). */
static uint32_t naive_word(uint64_t seed, uint64_t subsequence, uint64_t j) {
  uint64_t block = j / 4;
  uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)subsequence,
                     (uint32_t)(subsequence >> 32)};
  uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)}, out[4];
  sdr_philox4x32_10(ctr, key, out);
  return out[j % 4];
}

static void check_curand_stream(void) {
  static const uint64_t seeds[] = {0, 42, UINT64_C(67280421310721), UINT64_MAX};
  static const uint64_t subs[] = {0, 1, 255, 33791, UINT64_C(1) << 40};
  static const uint64_t offsets[] = {0, 1, 2, 3, 4, 8, 12, 4099, (UINT64_C(1) << 34) - 4};
  int bad = 0;
  for (size_t a = 0; a < 4; a++)
    for (size_t b = 0; b < 5; b++)
      for (size_t c = 0; c < 9; c++) {
        sdr_philox_state st;
        sdr_philox_init(&st, seeds[a], subs[b], offsets[c]);
        uint64_t j = offsets[c];
        for (int t = 0; t < 3; t++) { /* curand4 three times, then curand twice */
          uint32_t r[4];
          sdr_philox_next4(&st, r);
          for (int k = 0; k < 4; k++)
            bad += r[k] != naive_word(seeds[a], subs[b], j++);
        }
        for (int t = 0; t < 2; t++)
          bad += sdr_philox_next(&st) != naive_word(seeds[a], subs[b], j++);
      }
  CHECK(bad == 0);
  /* The counter's low word carries into the next. */
  sdr_philox_state st;
  sdr_philox_init(&st, 7, 0, UINT64_C(0xffffffff) * 4);
  CHECK(st.ctr[0] == 0xffffffffu && st.ctr[1] == 0);
  uint32_t r[4];
  sdr_philox_next4(&st, r);
  CHECK(st.ctr[0] == 0 && st.ctr[1] == 1);
}

static void check_curand_conversions(void) {
  /* _curand_uniform: x * 2^-32 + 2^-33, one rounding (fmaf): in (0, 1]. */
  CHECK(sdr_curand_uniform(0) == ldexpf(1.0f, -33) * (2.3283064e-10f / ldexpf(1.0f, -32)));
  CHECK(sdr_curand_uniform(0) > 0.0f);
  CHECK(sdr_curand_uniform(0xffffffffu) == 1.0f); /* why torch maps 1.0 to 0.0 */
  CHECK(sdr_curand_uniform(1u << 31) == fmaf(2147483648.0f, 2.3283064e-10f, 2.3283064e-10f / 2));
  /* _curand_box_muller: sqrt(-2 log u) times (sin v, cos v), against double math. */
  double max_err = 0;
  for (uint32_t i = 0; i < 4096; i++) {
    uint32_t x = i * 1048573u + 12345u, y = i * 2654435761u;
    float s1, s2;
    sdr_curand_box_muller(x, y, &s1, &s2);
    double u = ((double)x + 0.5) * ldexp(1, -32), v = ((double)y + 0.5) * ldexp(2 * M_PI, -32);
    double rad = sqrt(-2 * log(u));
    double e1 = fabs(s1 - rad * sin(v)), e2 = fabs(s2 - rad * cos(v));
    max_err = fmax(max_err, fmax(e1, e2) / fmax(1.0, rad));
  }
  CHECK(max_err < 1e-5);
}

/* torch's layout (calc_execution_policy, distribution_elementwise_grid_stride_kernel)
 * rebuilt for one element: thread li % S, loop step li / (4S), component (li / S) % 4. */
static float naive_cuda_normal(uint64_t seed, uint64_t offset, uint64_t grid, uint64_t li) {
  uint64_t S = 256 * grid, idx = li % S, t = li / (4 * S), k = (li / S) % 4;
  uint64_t j = offset + 4 * t; /* the thread's words, from its own subsequence */
  uint32_t w[4];
  for (int i = 0; i < 4; i++)
    w[i] = naive_word(seed, idx, j + (uint64_t)i);
  float n[4];
  sdr_curand_box_muller(w[0], w[1], &n[0], &n[1]);
  sdr_curand_box_muller(w[2], w[3], &n[2], &n[3]);
  return n[k];
}

static void check_cuda_layout(void) {
  sdr_cuda_geometry h200 = {132, 2048}, tiny = {1, 512};
  sdr_cuda_launch l = sdr_cuda_launch_for(&h200, 3 * 4 * 64 * 64);
  CHECK(l.grid == 192 && l.stride == 49152 && l.advance == 4);
  l = sdr_cuda_launch_for(&h200, 1056 * 256 * 4 + 1); /* one element past a full sweep */
  CHECK(l.grid == 1056 && l.advance == 8);
  l = sdr_cuda_launch_for(&h200, 1);
  CHECK(l.grid == 1 && l.advance == 4);
  l = sdr_cuda_launch_for(&tiny, 5000);
  CHECK(l.grid == 2 && l.stride == 512 && l.advance == 12);

  sdr_generator g;
  sdr_generator_init(&g, SDR_GENERATOR_CUDA);
  CHECK(g.geometry.sm_count == 132 && g.geometry.max_threads_per_sm == 2048);
  static const struct {
    sdr_cuda_geometry geo;
    size_t n[3];
  } runs[] = {{{132, 2048}, {3, 49152, 1000}}, {{1, 512}, {5000, 17, 1}}};
  int bad = 0;
  for (int r = 0; r < 2; r++) {
    g.geometry = runs[r].geo;
    sdr_generator_manual_seed(&g, 1234567 + (uint64_t)r);
    for (int c = 0; c < 3; c++) {
      size_t n = runs[r].n[c];
      uint64_t offset = g.philox_offset;
      sdr_cuda_launch lc = sdr_cuda_launch_for(&g.geometry, n);
      float *x = malloc(n * sizeof *x);
      sdr_generator_randn_f32(&g, x, n);
      CHECK(g.philox_offset == offset + lc.advance);
      for (size_t i = 0; i < n; i += (n > 2000 ? 7 : 1)) {
        float want = naive_cuda_normal(g.seed, offset, lc.grid, i);
        if (memcmp(&x[i], &want, 4) != 0 && bad++ < 5)
          fprintf(stderr, "cuda randn n=%zu [%zu]: %.9g, layout says %.9g\n", n, i, x[i], want);
      }
      free(x);
    }
  }
  CHECK(bad == 0);

  /* Half is the float32 normal rounded; rand is in [0, 1) and never 1. */
  sdr_generator_manual_seed(&g, 5);
  float f[300];
  uint16_t h[300];
  sdr_generator_randn_f32(&g, f, 300);
  sdr_generator_manual_seed(&g, 5);
  sdr_generator_randn_f16(&g, h, 300);
  for (int i = 0; i < 300; i++)
    bad += h[i] != sdr_f32_to_f16(f[i]);
  sdr_generator_rand_f32(&g, f, 300);
  for (int i = 0; i < 300; i++)
    bad += !(f[i] >= 0.0f && f[i] < 1.0f);
  CHECK(bad == 0);
  /* The whole 64-bit seed is the key, unlike mt19937. */
  sdr_generator_manual_seed(&g, (UINT64_C(1) << 32) + 5);
  sdr_generator_randn_f32(&g, f, 4);
  sdr_generator_manual_seed(&g, 5);
  sdr_generator_randn_f32(&g, f + 4, 4);
  CHECK(memcmp(f, f + 4, 4 * sizeof f[0]) != 0);
}

/* torch.randn(device="cuda") as printed on real GPUs (pytorch/pytorch issues
 * 143086, 158398, 97097, 79496: each prints the first and last values of a draw
 * whose tail depends on the GPU's grid, and each GPU's own tail is checked here
 * with that GPU's multiprocessors and threads per multiprocessor). */
static void check_cuda_published(void) {
  /* one case a row */
  // clang-format off
  static const struct {
    const char *gpu;
    sdr_cuda_geometry geo;
    uint64_t seed;
    size_t n;
    double scale, shift; /* normal_(mean, std) is randn * std + mean */
    size_t at[6];
    double want[6];
  } cases[] = {
      /* Generator("cuda").manual_seed(1); randn(1, 49 * 12 * 112 * 144) */
      {"H100", {132, 2048}, 1, 9483264, 1, 0, {0, 1, 2, 9483261, 9483262, 9483263},
       {-0.2963, 2.6764, -0.1408, -0.6970, -0.7780, 0.3267}},
      {"A100", {108, 2048}, 1, 9483264, 1, 0, {0, 1, 2, 9483261, 9483262, 9483263},
       {-0.2963, 2.6764, -0.1408, 0.1549, -0.6797, -0.1656}},
      /* Generator("cuda").manual_seed(42); randn([1, 64, 2048]): row 61 starts, row 63 ends */
      {"RTX 3060", {28, 1536}, 42, 131072, 1, 0, {0, 1, 2, 124928, 124929, 131071},
       {0.1940, 2.1614, -0.1721, -0.4861, 0.3358, -0.0282}},
      /* manual_seed(14); FloatTensor(1000, 100).normal_(5, 5 ** .5): the last row */
      {"RTX A4000", {48, 1536}, 14, 100000, 2.2360679774997896, 5, {0, 1, 2, 99900, 99998, 99999},
       {2.8731, 5.2727, 2.9889, 2.7337, 6.5395, 4.2604}},
      /* manual_seed(0); randn(5) and manual_seed(10); randn(3): one block on any GPU */
      {"any", {132, 2048}, 0, 5, 1, 0, {0, 1, 2, 3, 4, 4},
       {-0.9247, -0.4253, -2.6438, 0.1452, -0.1209, -0.1209}},
      {"any", {132, 2048}, 10, 3, 1, 0, {0, 1, 2, 2, 2, 2},
       {-0.1029, 1.6810, -0.2708, -0.2708, -0.2708, -0.2708}},
  };
  // clang-format on
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    sdr_generator g;
    sdr_generator_init(&g, SDR_GENERATOR_CUDA);
    g.geometry = cases[c].geo;
    sdr_generator_manual_seed(&g, cases[c].seed);
    float *x = malloc(cases[c].n * sizeof *x);
    CHECK(x != NULL);
    if (!x)
      return;
    sdr_generator_randn_f32(&g, x, cases[c].n);
    for (int i = 0; i < 6; i++) {
      /* normal_ computes randn * std + mean in float32 before printing */
      double got = (double)(x[cases[c].at[i]] * (float)cases[c].scale + (float)cases[c].shift);
      if (fabs(got - cases[c].want[i]) > 5.01e-5) {
        fprintf(stderr, "%s seed %llu [%zu]: %.6f, printed %.4f\n", cases[c].gpu,
                (unsigned long long)cases[c].seed, cases[c].at[i], got, cases[c].want[i]);
        CHECK(0);
      }
    }
    free(x);
  }
}

int main(void) {
  check_mt19937();
  check_seeding();
  check_fixtures();
  check_philox_kat();
  check_curand_stream();
  check_curand_conversions();
  check_cuda_layout();
  check_cuda_published();
  return check_exit();
}

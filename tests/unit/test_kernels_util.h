/* tests/unit/test_kernels_util.h — shared by the test_kernels_*.c programs: random data,
 * weights in each dtype, NaN-poisoned outputs, and comparison with a double reference.
 *
 * Every comparison fails on NaN (an unwritten, NaN-poisoned element included) and
 * prints the first few mismatches and the largest error seen.
 */
#ifndef SDR_TESTS_KERNELS_UTIL_H
#define SDR_TESTS_KERNELS_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels/backend.h"         // sdr_* ops
#include "kernels/cpu/cpu_backend.h" // sdr_cpu_backend_create
#include "kernels/error.h"           // sdr_last_error
#include "kernels/half.h"            // sdr_f32_to_f16, ...

/* ---- random numbers (splitmix64: reproducible everywhere) ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static inline uint64_t rng_next(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* uniform in [lo, hi) */
static inline float rng_uniform(float lo, float hi) {
  return lo + (hi - lo) * (float)((rng_next() >> 40) * (1.0 / 16777216.0));
}

static inline float *rand_floats(int64_t n, float lo, float hi) {
  float *p = malloc((size_t)(n ? n : 1) * sizeof(float));
  for (int64_t i = 0; i < n; i++)
    p[i] = rng_uniform(lo, hi);
  return p;
}

/* n NaNs: an element the kernel forgets to write fails the comparison. */
static inline float *poisoned(int64_t n) {
  float *p = malloc((size_t)(n ? n : 1) * sizeof(float));
  for (int64_t i = 0; i < n; i++)
    p[i] = NAN;
  return p;
}

static inline void poison(float *p, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    p[i] = NAN;
}

/* ---- weights in a dtype, and the float values the kernel will actually see ---- */

typedef struct weights {
  void *data;  /* dtype elements */
  float *vals; /* the same values widened: what the reference uses */
} weights;

static inline weights make_weights(sdr_dtype dt, int64_t n, float lo, float hi) {
  weights w;
  w.vals = rand_floats(n, lo, hi);
  if (dt == SDR_F32) {
    w.data = malloc((size_t)(n ? n : 1) * 4);
    memcpy(w.data, w.vals, (size_t)n * 4);
    return w;
  }
  uint16_t *h = malloc((size_t)(n ? n : 1) * 2);
  for (int64_t i = 0; i < n; i++) {
    h[i] = dt == SDR_F16 ? sdr_f32_to_f16(w.vals[i]) : sdr_f32_to_bf16(w.vals[i]);
    w.vals[i] = dt == SDR_F16 ? sdr_f16_to_f32(h[i]) : sdr_bf16_to_f32(h[i]);
  }
  w.data = h;
  return w;
}

static inline void free_weights(weights *w) {
  free(w->data);
  free(w->vals);
  w->data = w->vals = NULL;
}

static const sdr_dtype weight_dtypes[3] = {SDR_F32, SDR_F16, SDR_BF16};

/* ---- tensors ---- */

static inline sdr_tensor tens(void *data, sdr_dtype dt, int nd, int64_t d0, int64_t d1, int64_t d2,
                              int64_t d3, int64_t d4) {
  int64_t shape[5] = {d0, d1, d2, d3, d4};
  return sdr_tensor_view(data, dt, SDR_DEVICE_CPU, nd, shape);
}
#define T1(p, dt, a) tens((p), (dt), 1, (a), 0, 0, 0, 0)
#define T2(p, dt, a, b) tens((p), (dt), 2, (a), (b), 0, 0, 0)
#define T3(p, dt, a, b, c) tens((p), (dt), 3, (a), (b), (c), 0, 0)
#define T4(p, dt, a, b, c, d) tens((p), (dt), 4, (a), (b), (c), (d), 0)

/* ---- comparison ---- */

/* |got - ref| <= atol + rtol * scale, scale = mag[i] when given (the sum of |terms| of a
 * dot product, which bounds float rounding), else |ref|. Returns the number of failures.
 * With SDR_TEST_VERBOSE set, prints the largest error relative to max(scale, atol/rtol). */
static inline int compare(const char *what, const float *got, const double *ref, const double *mag,
                          int64_t n, double rtol, double atol) {
  int bad = 0;
  double worst = 0;
  for (int64_t i = 0; i < n; i++) {
    double scale = mag ? mag[i] : fabs(ref[i]);
    double err = fabs((double)got[i] - ref[i]);
    double floor = rtol > 0 ? atol / rtol : 1; /* below this scale the error is absolute */
    double rel = err / (scale > floor ? scale : floor);
    int ok = err <= atol + rtol * scale; /* false for NaN */
    if (isnan(ref[i]) && isnan(got[i]))
      ok = 1, rel = 0;
    if (!ok) {
      if (bad < 5)
        fprintf(stderr, "  %s[%lld]: got %.9g, want %.9g (err %.3g)\n", what, (long long)i,
                (double)got[i], ref[i], err);
      bad++;
    }
    if (isnan(rel))
      rel = INFINITY;
    if (rel > worst)
      worst = rel;
  }
  if (bad) {
    fprintf(stderr, "%s: %d of %lld elements outside tolerance (rtol %g, atol %g)\n", what, bad,
            (long long)n, rtol, atol);
    check_failures++;
  }
  if (getenv("SDR_TEST_VERBOSE"))
    fprintf(stderr, "%-48s max rel err %.3g\n", what, worst);
  return bad;
}

/* The call must succeed. */
#define OK(call)                                                                                   \
  do {                                                                                             \
    if ((call) != 0) {                                                                             \
      fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, sdr_last_error());      \
      check_failures++;                                                                            \
    }                                                                                              \
  } while (0)

/* The call must fail with exactly this message. */
#define FAILS_WITH(call, msg)                                                                      \
  do {                                                                                             \
    sdr_clear_error();                                                                             \
    int rc_ = (call);                                                                              \
    CHECK(rc_ == -1);                                                                              \
    CHECK_STR(sdr_last_error(), msg);                                                              \
  } while (0)

/* The call must fail, its message containing this text. */
#define FAILS_LIKE(call, part)                                                                     \
  do {                                                                                             \
    sdr_clear_error();                                                                             \
    int rc_ = (call);                                                                              \
    CHECK(rc_ == -1);                                                                              \
    if (!strstr(sdr_last_error(), part)) {                                                         \
      fprintf(stderr, "%s:%d: \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, sdr_last_error(), part); \
      check_failures++;                                                                            \
    }                                                                                              \
  } while (0)

/* A CPU backend on the best path (0: AVX-512 when present, else AVX2), the plain-C one (1),
 * or AVX2's where the CPU has it (2: elementwise math, on an AVX-512 CPU too). */
static inline sdr_backend *cpu_backend(int path) {
  if (path == 1)
    setenv("SDREPL_CPU_ISA", "generic", 1);
  else if (path == 2)
    setenv("SDREPL_CPU_ISA", "avx2", 1);
  else
    unsetenv("SDREPL_CPU_ISA");
  sdr_backend *be = sdr_cpu_backend_create();
  if (!be) {
    fprintf(stderr, "cannot create the CPU backend: %s\n", sdr_last_error());
    exit(1);
  }
  return be;
}

static const char *const isa_names[3] = {"best", "generic", "avx2"};

#endif

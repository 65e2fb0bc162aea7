/* tests/cuda/cuda_check.h — what the CUDA checks share: backends on both sides, random
 * values that every dtype holds exactly, poisoned outputs, comparisons with
 * per-dtype tolerances, and the table printed at the end.
 *
 * Values: activations and weights are drawn so that float32, float16 and bfloat16
 * all hold them exactly (8 significant bits, nothing below 1e-4 but zero). One CPU
 * run in float32 is then the reference for every dtype the GPU runs in; only the
 * GPU's own rounding separates the results. (Rounding itself is checked by the
 * cast cases, on values that are not exact.)
 *
 * Tolerances, for element i with ref r and rms the root mean square of ref:
 * |got - r| <= el * (|r| + rms), and ||got - ref|| / ||ref|| <= norm. float32: el 1e-4,
 * norm 1e-5 (different summation orders only); float16: 5e-3 and 2.5e-3 (about 10
 * and 5 times its rounding, 2^-11); bfloat16: 4e-2 and 2e-2 (2^-8). NaN or
 * infinity anywhere fails, so does an element the GPU did not write (poisoned
 * with NaN before every run).
 */
#ifndef SDR_TESTS_CUDA_CHECK_H
#define SDR_TESTS_CUDA_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"           // sdr_* ops
#include "kernels/cpu/cpu_backend.h"   // sdr_cpu_backend_create
#include "kernels/cuda/cuda_backend.h" // sdr_cuda_backend_create
#include "kernels/error.h"             // sdr_last_error
#include "kernels/half.h"              // sdr_f32_to_f16, ...

/* ---- backends ---- */

static sdr_backend *cpu, *gpu;

/* ---- random numbers (splitmix64: the same on every machine) ---- */

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static inline uint64_t rng_next(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static inline float rng_uniform(float lo, float hi) {
  return lo + (hi - lo) * (float)((rng_next() >> 40) * (1.0 / 16777216.0));
}

/* A value every float dtype holds exactly: bfloat16's 8 bits, no float16 subnormal. */
static inline float exact_value(float lo, float hi) {
  float x = sdr_bf16_to_f32(sdr_f32_to_bf16(rng_uniform(lo, hi)));
  return fabsf(x) < 1e-4f ? 0.0f : x;
}

/* ---- host values with a shape ---- */

typedef struct vals {
  int nd;
  int64_t shape[SDR_MAX_DIMS];
  int64_t n;
  float *v;
} vals;

static inline vals vals_new(int nd, const int64_t *shape) {
  vals h;
  memset(&h, 0, sizeof h);
  h.nd = nd;
  h.n = 1;
  for (int i = 0; i < nd; i++) {
    h.shape[i] = shape[i];
    h.n *= shape[i];
  }
  h.v = (float *)calloc((size_t)(h.n ? h.n : 1), sizeof(float));
  return h;
}

static inline vals vals_rand(int nd, const int64_t *shape, float lo, float hi) {
  vals h = vals_new(nd, shape);
  for (int64_t i = 0; i < h.n; i++)
    h.v[i] = exact_value(lo, hi);
  return h;
}

static inline void vals_free(vals *h) {
  free(h->v);
  h->v = NULL;
}

#define SHAPE(...)                                                                                 \
  (sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), ((const int64_t[]){__VA_ARGS__})

/* ---- tensors ---- */

/* bytes of n values in dtype dt (float dtypes), rounded to nearest even */
static inline void *to_bits(const float *v, int64_t n, sdr_dtype dt) {
  size_t es = sdr_dtype_size(dt);
  void *p = malloc((size_t)(n ? n : 1) * es);
  for (int64_t i = 0; i < n; i++) {
    if (dt == SDR_F32)
      ((float *)p)[i] = v[i];
    else if (dt == SDR_F16)
      ((uint16_t *)p)[i] = sdr_f32_to_f16(v[i]);
    else
      ((uint16_t *)p)[i] = sdr_f32_to_bf16(v[i]);
  }
  return p;
}

static inline float bits_value(const void *p, sdr_dtype dt, int64_t i) {
  if (dt == SDR_F32)
    return ((const float *)p)[i];
  if (dt == SDR_F16)
    return sdr_f16_to_f32(((const uint16_t *)p)[i]);
  return sdr_bf16_to_f32(((const uint16_t *)p)[i]);
}

/* A tensor of dtype dt on backend be holding h's values (raw bytes when bytes != NULL). */
static inline sdr_tensor put_raw(sdr_backend *be, sdr_dtype dt, int nd, const int64_t *shape,
                                 const void *bytes) {
  int64_t n = 1;
  for (int i = 0; i < nd; i++)
    n *= shape[i];
  size_t nb = (size_t)n * sdr_dtype_size(dt);
  void *p = sdr_alloc(be, nb ? nb : 1);
  if (!p) {
    fprintf(stderr, "allocation failed: %s\n", sdr_last_error());
    exit(2);
  }
  if (nb && sdr_upload(be, p, bytes, nb) < 0) {
    fprintf(stderr, "upload failed: %s\n", sdr_last_error());
    exit(2);
  }
  return sdr_tensor_view(p, dt, be->device, nd, shape);
}

static inline sdr_tensor put(sdr_backend *be, const vals *h, sdr_dtype dt) {
  void *b = to_bits(h->v, h->n, dt);
  sdr_tensor t = put_raw(be, dt, h->nd, h->shape, b);
  free(b);
  return t;
}

/* An output of dtype dt, every byte 0xff: NaN in each float dtype. */
static inline sdr_tensor poisoned(sdr_backend *be, sdr_dtype dt, int nd, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < nd; i++)
    n *= shape[i];
  size_t nb = (size_t)n * sdr_dtype_size(dt);
  void *b = malloc(nb ? nb : 1);
  memset(b, 0xff, nb);
  sdr_tensor t = put_raw(be, dt, nd, shape, b);
  free(b);
  return t;
}

/* Poisons t again (before an in-place run writes its input, say). */
static inline void repoison(sdr_backend *be, sdr_tensor *t) {
  size_t nb = sdr_tensor_nbytes(t);
  void *b = malloc(nb ? nb : 1);
  memset(b, 0xff, nb);
  if (nb)
    sdr_upload(be, t->data, b, nb);
  free(b);
}

/* The raw bytes of t (downloaded from the GPU or copied on the CPU); malloc'd. */
static inline void *get_raw(sdr_backend *be, const sdr_tensor *t) {
  size_t nb = sdr_tensor_nbytes(t);
  void *b = malloc(nb ? nb : 1);
  if (nb && sdr_download(be, b, t->data, nb) < 0) {
    fprintf(stderr, "download failed: %s\n", sdr_last_error());
    memset(b, 0xff, nb);
  }
  return b;
}

/* t's values as floats; malloc'd. */
static inline float *get(sdr_backend *be, const sdr_tensor *t) {
  int64_t n = sdr_tensor_numel(t);
  void *b = get_raw(be, t);
  float *v = (float *)malloc((size_t)(n ? n : 1) * sizeof(float));
  for (int64_t i = 0; i < n; i++)
    v[i] = bits_value(b, t->dtype, i);
  free(b);
  return v;
}

static inline void drop(sdr_backend *be, sdr_tensor *t) {
  sdr_free(be, t->data);
  t->data = NULL;
}

/* ---- results ---- */

typedef struct result_row {
  const char *op;
  int cases, failures;
  double worst[3]; /* normwise error by dtype: float32, float16, bfloat16 */
} result_row;

static result_row results[64];
static int nresults;
static int verbose;

static inline result_row *result_of(const char *op) {
  for (int i = 0; i < nresults; i++)
    if (strcmp(results[i].op, op) == 0)
      return &results[i];
  result_row *r = &results[nresults++];
  memset(r, 0, sizeof *r);
  r->op = op;
  return r;
}

static inline int dtype_slot(sdr_dtype dt) { return dt == SDR_F16 ? 1 : dt == SDR_BF16 ? 2 : 0; }

static inline void record(const char *op, sdr_dtype dt, int ok, double err) {
  result_row *r = result_of(op);
  r->cases++;
  r->failures += !ok;
  int s = dtype_slot(dt);
  if (!isnan(r->worst[s]) && !(err <= r->worst[s])) /* a NaN, once seen, stays */
    r->worst[s] = err;
}

/* A failed call: counted, with its message. */
static inline void record_error(const char *op, const char *what, sdr_dtype dt) {
  fprintf(stderr, "FAIL %s %s [%s]: %s\n", op, what, sdr_dtype_name(dt), sdr_last_error());
  record(op, dt, 0, NAN);
}

/* Compares got (the GPU's output, computed in dtype dt) with ref (the CPU's, float32). */
static inline int compare(const char *op, const char *what, sdr_dtype dt, const float *got,
                          const float *ref, int64_t n, double slack) {
  double el = dt == SDR_F32 ? 1e-4 : dt == SDR_F16 ? 5e-3 : 4e-2;
  double norm = dt == SDR_F32 ? 1e-5 : dt == SDR_F16 ? 2.5e-3 : 2e-2;
  el *= slack;
  norm *= slack;
  double ss_ref = 0, ss_err = 0;
  int64_t nonfinite = 0;
  for (int64_t i = 0; i < n; i++) {
    if (!isfinite(ref[i]) || !isfinite(got[i]))
      nonfinite++;
    else
      ss_ref += (double)ref[i] * ref[i];
  }
  double rms = n ? sqrt(ss_ref / (double)n) : 0;
  int bad = 0;
  for (int64_t i = 0; i < n; i++) {
    double e = fabs((double)got[i] - (double)ref[i]);
    int ok = isfinite(got[i]) && isfinite(ref[i]) && e <= el * (fabs((double)ref[i]) + rms);
    if (isfinite(e))
      ss_err += e * e;
    if (!ok && bad++ < 5)
      fprintf(stderr, "  %s %s [%s]: element %lld: got %.9g, expected %.9g\n", op, what,
              sdr_dtype_name(dt), (long long)i, (double)got[i], (double)ref[i]);
  }
  double nerr = ss_ref > 0 ? sqrt(ss_err) / sqrt(ss_ref) : (ss_err > 0 ? INFINITY : 0.0);
  if (nonfinite)
    nerr = NAN;
  int ok = bad == 0 && nerr <= norm;
  if (!ok)
    fprintf(stderr,
            "FAIL %s %s [%s]: %d of %lld elements off, %lld not finite, normwise %.3g "
            "(limit %.3g)\n",
            op, what, sdr_dtype_name(dt), bad, (long long)n, (long long)nonfinite, nerr, norm);
  else if (verbose)
    printf("ok   %s %s [%s]: normwise %.3g\n", op, what, sdr_dtype_name(dt), nerr);
  record(op, dt, ok, nerr);
  return ok;
}

/* Bytes must be equal (layout ops, casts, fill). */
static inline int compare_bytes(const char *op, const char *what, sdr_dtype dt, const void *got,
                                const void *ref, size_t nbytes) {
  const unsigned char *g = (const unsigned char *)got, *r = (const unsigned char *)ref;
  size_t es = sdr_dtype_size(dt), bad = 0, first = 0;
  for (size_t i = 0; i < nbytes; i += es)
    if (memcmp(g + i, r + i, es) != 0 && bad++ == 0)
      first = i / es;
  if (bad)
    fprintf(stderr, "FAIL %s %s [%s]: %zu of %zu elements differ, first at %zu\n", op, what,
            sdr_dtype_name(dt), bad, nbytes / es, first);
  else if (verbose)
    printf("ok   %s %s [%s]: identical\n", op, what, sdr_dtype_name(dt));
  record(op, dt, bad == 0, bad ? 1.0 : 0.0);
  return bad == 0;
}

/* The table; returns the number of failed cases. */
static inline int print_results(const char *title) {
  int failed = 0;
  printf("\n%s\n%-22s %6s %5s %11s %11s %11s\n", title, "op", "cases", "fail", "f32 err", "f16 err",
         "bf16 err");
  for (int i = 0; i < nresults; i++) {
    result_row *r = &results[i];
    printf("%-22s %6d %5d", r->op, r->cases, r->failures);
    for (int s = 0; s < 3; s++)
      printf(" %11.2e", r->worst[s]);
    printf("%s\n", r->failures ? "  FAIL" : "");
    failed += r->failures;
  }
  return failed;
}

#endif

/* engine/scheduler_threshold.c — _threshold_sample of DDIM, DDPM, DPM-Solver and UniPC
 * (diffusers 0.27.2 schedulers/scheduling_ddpm.py): "dynamic thresholding" of the
 * predicted original sample, for pixel-space models; SD's latent configs leave it off.
 *
 * torch.quantile sorts each row and interpolates linearly between the two values around
 * rank q * (n - 1), all in the tensor's float32 (q too), with torch.lerp's two formulas;
 * a row holding a NaN has quantile NaN, which then spreads through the clamps.
 */
#include <math.h>
#include <stdlib.h>

#include "engine/error.h" // sdr_fail
#include "engine/scheduler_internal.h"

typedef struct threshold_args {
  float ratio, max_value;
  float *sorted; /* one row's |x| */
} threshold_args;

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

/* torch.quantile(row, q, interpolation="linear") of non-negative values; q in [0, 1]
 * (the config's check). */
static float quantile(float *v, size_t n, float q) {
  for (size_t i = 0; i < n; i++)
    if (isnan(v[i]))
      return NAN;
  qsort(v, n, sizeof *v, cmp_float);
  float rank = q * (float)(n - 1);
  size_t below = (size_t)rank, above = (size_t)ceilf(rank);
  float w = rank - (float)below, a = v[below], b = v[above < n ? above : n - 1];
  return w < 0.5f ? a + w * (b - a) : b - (b - a) * (1.0f - w); /* torch.lerp */
}

static void threshold_rows(float *f, const sdr_tensor *x, void *ctx) {
  threshold_args *t = ctx;
  size_t rows = x->ndim > 0 ? (size_t)x->shape[0] : 1;
  size_t n = (size_t)sdr_tensor_numel(x) / (rows ? rows : 1);
  for (size_t r = 0; r < rows && n > 0; r++) {
    float *row = f + r * n;
    for (size_t i = 0; i < n; i++)
      t->sorted[i] = fabsf(row[i]);
    float s = quantile(t->sorted, n, t->ratio);
    /* torch.clamp(s, min=1, max=sample_max_value): max wins when they cross; NaN stays */
    s = s < 1.0f ? 1.0f : s;
    s = s > t->max_value ? t->max_value : s;
    for (size_t i = 0; i < n; i++) {
      float v = row[i];
      v = v < -s ? -s : v;
      v = v > s ? s : v;
      row[i] = v / s; /* a NaN s makes every value NaN, as in torch */
    }
  }
}

int sched_threshold(sched_ctx *cx, sdr_tensor *x) {
  const sdr_scheduler *s = cx->s;
  size_t rows = x->ndim > 0 && x->shape[0] > 0 ? (size_t)x->shape[0] : 1;
  threshold_args t = {(float)s->c.dynamic_thresholding_ratio, (float)s->c.sample_max_value,
                      malloc((size_t)sdr_tensor_numel(x) / rows * sizeof(float) + 1)};
  if (!t.sorted)
    return sdr_fail("%s.step: out of memory", s->cls->name);
  int rc = sched_on_host(cx, x, threshold_rows, &t);
  free(t.sorted);
  return rc;
}

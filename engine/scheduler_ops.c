/* engine/scheduler_ops.c — tensor arithmetic of the scheduler steps, rounded as torch
 * rounds it, the noise they draw, and the device buffers that hold their history.
 *
 * A torch expression such as `sample_coeff * sample - (a - b) * model_output / denom`
 * is a chain of float32 ops, each rounded: a multiplication by a 0-d float32 tensor, a
 * subtraction, a true division. The steps spell out the same chain with these calls
 * (and the backend's elementwise ops), so the results agree with diffusers to the last
 * bit rather than to a few units in the last place.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"            // sdr_fail
#include "engine/generator_device.h" // sdr_generator_fill_batch
#include "engine/scheduler_internal.h"

/* ---- arithmetic ---- */

/* x * c + 0 is x * c rounded once, with or without an FMA in the backend. */
int sched_mul(sched_ctx *cx, sdr_tensor *out, const sdr_tensor *x, float c) {
  return sdr_affine(cx->be, out, x, c, 0.0f);
}

/* torch divides by a scalar (it does not multiply by its reciprocal), so the divisor
 * goes to the device as a 0-d tensor: from the arena inside a step, else the
 * scheduler's own. */
int sched_div(sched_ctx *cx, sdr_tensor *out, const sdr_tensor *x, float c) {
  sdr_tensor d;
  if (cx->arena) {
    if (sdr_arena_tensor(cx->arena, &d, SDR_F32, 0, NULL) != 0)
      return -1;
  } else {
    if (sched_use_backend(cx->s, cx->be) != 0)
      return -1;
    d = cx->s->buf.scalar;
  }
  if (sdr_fill(cx->be, &d, c) != 0)
    return -1;
  return sdr_binary(cx->be, out, x, &d, SDR_BINARY_DIV);
}

int sched_add(sched_ctx *cx, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b) {
  return sdr_binary(cx->be, out, a, b, SDR_BINARY_ADD);
}

int sched_sub(sched_ctx *cx, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b) {
  return sdr_binary(cx->be, out, a, b, SDR_BINARY_SUB);
}

int sched_emit_x0(sched_ctx *cx, const sdr_tensor *x0) {
  return cx->x0_out ? sched_copy(cx, cx->x0_out, x0) : 0;
}

int sched_copy(sched_ctx *cx, sdr_tensor *out, const sdr_tensor *x) {
  if (out->data == x->data)
    return 0;
  return sdr_affine(cx->be, out, x, 1.0f, 0.0f);
}

int sched_temp(sched_ctx *cx, sdr_tensor *out, const sdr_tensor *like) {
  if (!cx->arena)
    return sdr_fail("%s: internal: no arena for a temporary", cx->s->cls->name);
  return sdr_arena_tensor(cx->arena, out, SDR_F32, like->ndim, like->shape);
}

/* randn_tensor(shape, generator=g, dtype=...): one torch.randn call for all elements,
 * or one per batch entry with the step's list of generators (engine/generator_device.h
 * says where the numbers are drawn). */
int sched_randn(sched_ctx *cx, sdr_tensor *out, const sdr_tensor *like, sdr_generator *g,
                sdr_dtype dtype) {
  if (!g)
    return sdr_fail("%s.step: this step draws noise and needs a generator", cx->s->cls->name);
  if (sched_temp(cx, out, like) != 0)
    return -1;
  sdr_generator *const *gens = cx->gens ? cx->gens : &g;
  if (sdr_generator_fill_batch(gens, cx->gens ? cx->ngens : 1, cx->be, cx->arena, out, dtype) != 0)
    return sdr_fail_prefix("%s.step: ", cx->s->cls->name);
  return 0;
}

int sched_plus_noise(sched_ctx *cx, sdr_tensor *out, const sdr_tensor *x, const sdr_tensor *like,
                     sdr_generator *g, float scale) {
  sdr_tensor noise;
  if (sched_randn(cx, &noise, like, g, cx->s->noise_dtype) != 0 ||
      sched_mul(cx, &noise, &noise, scale) != 0)
    return -1;
  return sched_add(cx, out, x, &noise);
}

/* Steps that no backend op computes (clamping, thresholding) are rare in SD's configs,
 * so they pay a round trip through the host when the tensor is on a device. */
int sched_on_host(sched_ctx *cx, sdr_tensor *x, void (*fn)(float *, const sdr_tensor *, void *),
                  void *ctx) {
  size_t n = (size_t)sdr_tensor_numel(x);
  int on_host = cx->be->device == SDR_DEVICE_CPU;
  float *f = on_host ? x->data : malloc(n * sizeof(float) + 1);
  if (!f)
    return sdr_fail("%s.step: out of memory", cx->s->cls->name);
  if (!on_host && sdr_download(cx->be, f, x->data, n * sizeof(float)) != 0) {
    free(f);
    return -1;
  }
  fn(f, x, ctx);
  int rc = 0;
  if (!on_host) {
    rc = sdr_upload(cx->be, x->data, f, n * sizeof(float));
    free(f);
  }
  return rc;
}

static void clamp_values(float *f, const sdr_tensor *x, void *ctx) {
  const float *lim = ctx;
  size_t n = (size_t)sdr_tensor_numel(x);
  for (size_t i = 0; i < n; i++) /* torch.clamp: min first, then max; NaN stays */
    f[i] = f[i] < lim[0] ? lim[0] : f[i] > lim[1] ? lim[1] : f[i];
}

int sched_clip_x0(sched_ctx *cx, sdr_tensor *x0) {
  const sched_config *c = &cx->s->c;
  if (c->thresholding)
    return sched_threshold(cx, x0);
  if (!c->clip_sample)
    return 0;
  float lim[2] = {-(float)c->clip_sample_range, (float)c->clip_sample_range};
  return sched_on_host(cx, x0, clamp_values, lim);
}

int sched_combine(sched_ctx *cx, sdr_tensor *out, int n, const float *c, const int *sign,
                  const sdr_tensor *const *x) {
  sdr_tensor acc, term;
  if (sched_temp(cx, &acc, x[0]) != 0 || sched_temp(cx, &term, x[0]) != 0 ||
      sched_mul(cx, &acc, x[0], c[0]) != 0)
    return -1;
  for (int k = 1; k < n; k++) {
    if (sched_mul(cx, &term, x[k], c[k]) != 0)
      return -1;
    sdr_tensor *dst = k == n - 1 ? out : &acc;
    if ((sign[k] > 0 ? sched_add(cx, dst, &acc, &term) : sched_sub(cx, dst, &acc, &term)) != 0)
      return -1;
  }
  return 0;
}

int sched_multistep_begin(sdr_scheduler *s, double t) {
  if (s->step_index < 0)
    sched_init_step_index(s, t, 1); /* not found: the last index */
  if (s->step_index + 1 >= s->n_sigmas)
    return sdr_fail("%s.step: no step after the last timestep", s->cls->name);
  if (s->n_hist < s->lower_order_nums) /* sdr_scheduler_release in the middle of a run */
    return sdr_fail("%s.step: this run's history was released; call set_timesteps to start "
                    "again",
                    s->cls->name);
  return 0;
}

void sched_multistep_end(sdr_scheduler *s) {
  if (s->lower_order_nums < s->c.solver_order) /* the warm-up, and a released history's tell */
    s->lower_order_nums++;
  s->step_index++;
}

/* ---- device buffers ---- */

static int history_in_use(const sdr_scheduler *s) {
  return s->n_hist > 0 || s->has_cur_sample || s->has_cur_model_output;
}

void sched_free_buffers(sdr_scheduler *s) {
  sched_buffers *b = &s->buf;
  if (!b->be)
    return;
  for (int i = 0; i < SCHED_SLOTS; i++)
    if (b->slot[i].data)
      sdr_free(b->be, b->slot[i].data);
  if (b->scalar.data)
    sdr_free(b->be, b->scalar.data);
  memset(b, 0, sizeof *b);
}

int sched_use_backend(sdr_scheduler *s, sdr_backend *be) {
  sched_buffers *b = &s->buf;
  if (b->be && b->be != be) {
    if (history_in_use(s))
      return sdr_fail("%s: a run in progress keeps its history on the %s backend; call "
                      "set_timesteps before stepping on %s",
                      s->cls->name, b->be->name, be->name);
    sched_free_buffers(s);
  }
  b->be = be;
  if (!b->scalar.data) {
    void *p = sdr_alloc(be, sizeof(float));
    if (!p)
      return -1;
    b->scalar = sdr_tensor_view(p, SDR_F32, be->device, 0, NULL);
  }
  return 0;
}

int sched_slot(sched_ctx *cx, int i, const sdr_tensor *like, sdr_tensor *out) {
  sdr_scheduler *s = cx->s;
  if (sched_use_backend(s, cx->be) != 0)
    return -1;
  sdr_tensor *t = &s->buf.slot[i];
  if (t->data && !sdr_tensor_same_shape(t, like)) {
    sdr_free(cx->be, t->data);
    t->data = NULL;
  }
  if (!t->data) {
    sdr_tensor v = sdr_tensor_view(NULL, SDR_F32, cx->be->device, like->ndim, like->shape);
    void *p = sdr_alloc(cx->be, sdr_tensor_nbytes(&v) ? sdr_tensor_nbytes(&v) : sizeof(float));
    if (!p)
      return -1;
    v.data = p;
    *t = v;
  }
  *out = *t;
  return 0;
}

int sched_hist_push(sched_ctx *cx, int max, const sdr_tensor *like, sdr_tensor *out) {
  sdr_scheduler *s = cx->s;
  int slot;
  if (s->n_hist >= max) { /* the oldest makes room: list.pop(0) */
    slot = s->hist[0];
    memmove(s->hist, s->hist + 1, sizeof(int) * (size_t)(s->n_hist - 1));
    s->n_hist--;
  } else {
    for (slot = 0; slot < SCHED_HISTORY; slot++) {
      int used = 0;
      for (int k = 0; k < s->n_hist; k++)
        used |= s->hist[k] == slot;
      if (!used)
        break;
    }
  }
  s->hist[s->n_hist++] = slot;
  return sched_slot(cx, slot, like, out);
}

const sdr_tensor *sched_hist(const sdr_scheduler *s, int k) {
  return &s->buf.slot[s->hist[s->n_hist - 1 - k]];
}

/* ---- add_noise shared by several classes ---- */

/* PNDM and DDIM: alphas_cumprod[t] ** 0.5 * original + (1 - alphas_cumprod[t]) ** 0.5 * noise.
 * The second product goes to the scratch slot first, so out may be either input. */
int sched_add_noise_alphas(sdr_scheduler *s, sdr_backend *be, sdr_tensor *out,
                           const sdr_tensor *original, const sdr_tensor *noise, double t) {
  float a;
  if (sched_alpha_at(s, t, &a) != 0)
    return -1;
  sched_ctx cx = {s, be, NULL};
  sdr_tensor tmp;
  if (sched_slot(&cx, SCHED_SCRATCH, original, &tmp) != 0 ||
      sched_mul(&cx, &tmp, noise, sqrtf(1.0f - a)) != 0 ||
      sched_mul(&cx, out, original, sqrtf(a)) != 0)
    return -1;
  return sched_add(&cx, out, out, &tmp);
}

/* Which sigma add_noise takes: the timestep's own index, unless img2img has set a
 * begin index (then the current step index, or the begin index before any step). */
int sched_add_noise_index(const sdr_scheduler *s, double t) {
  if (s->begin_index < 0) {
    int i = sched_index_for_timestep(s, t);
    if (i < 0)
      return sdr_fail("%s.add_noise: timestep %g is not one of the scheduler's timesteps",
                      s->cls->name, t);
    return i;
  }
  return s->step_index >= 0 ? s->step_index : s->begin_index;
}

/* LMS, Euler, Euler ancestral, EDM Euler: original + noise * sigma. */
int sched_add_noise_sigmas(sdr_scheduler *s, sdr_backend *be, sdr_tensor *out,
                           const sdr_tensor *original, const sdr_tensor *noise, double t) {
  int i = sched_add_noise_index(s, t);
  return i < 0 ? -1 : sched_add_noise_at(s, be, out, original, noise, i);
}

int sched_add_noise_at(sdr_scheduler *s, sdr_backend *be, sdr_tensor *out,
                       const sdr_tensor *original, const sdr_tensor *noise, int i) {
  sched_ctx cx = {s, be, NULL};
  sdr_tensor tmp;
  if (sched_slot(&cx, SCHED_SCRATCH, original, &tmp) != 0 ||
      sched_mul(&cx, &tmp, noise, s->sigmas[i]) != 0)
    return -1;
  return sched_add(&cx, out, original, &tmp);
}

/* DPM and UniPC: _sigma_to_alpha_sigma_t of the timestep's sigma (alpha_t = 1 / (sigma^2 +
 * 1) ** 0.5, a reciprocal as torch's 1 / tensor is; sigma_t = sigma * alpha_t), then
 * alpha_t * original + sigma_t * noise. Their index_for_timestep falls back to the last
 * index for a timestep the schedule lacks. */
int sched_add_noise_alpha_sigma(sdr_scheduler *s, sdr_backend *be, sdr_tensor *out,
                                const sdr_tensor *original, const sdr_tensor *noise, double t) {
  int i;
  if (s->begin_index < 0) {
    i = sched_index_for_timestep(s, t);
    if (i < 0)
      i = s->n_timesteps - 1;
  } else {
    i = s->step_index >= 0 ? s->step_index : s->begin_index;
  }
  if (i < 0 || i >= s->n_sigmas)
    return sdr_fail("%s.add_noise: no sigma for timestep %g", s->cls->name, t);
  float sigma = s->sigmas[i];
  float alpha_t = 1.0f / sqrtf(sigma * sigma + 1.0f), sigma_t = sigma * alpha_t;
  sched_ctx cx = {s, be, NULL};
  sdr_tensor tmp;
  if (sched_slot(&cx, SCHED_SCRATCH, original, &tmp) != 0 ||
      sched_mul(&cx, &tmp, noise, sigma_t) != 0 || sched_mul(&cx, out, original, alpha_t) != 0)
    return -1;
  return sched_add(&cx, out, out, &tmp);
}

sched_point sched_sigma_point(float sigma) {
  sched_point p;
  p.alpha = 1.0f / sqrtf(sigma * sigma + 1.0f);
  p.sigma = sigma * p.alpha;
  p.lambda = sched_torch_logf(p.alpha) - sched_torch_logf(p.sigma);
  return p;
}

static int convert(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *out, const sdr_tensor *mo,
                   const sdr_tensor *sample, int data_prediction, sched_point p, sdr_tensor *t1,
                   sdr_tensor *t2) {
  sched_prediction pred = s->c.prediction;
  if (data_prediction) {
    if (pred == SCHED_SAMPLE)
      return sched_copy(cx, out, mo);
    if (pred == SCHED_EPSILON) /* (sample - sigma_t * mo) / alpha_t */
      return sched_mul(cx, t1, mo, p.sigma) || sched_sub(cx, t1, sample, t1) ||
             sched_div(cx, out, t1, p.alpha);
    /* v: alpha_t * sample - sigma_t * mo */
    return sched_mul(cx, t1, sample, p.alpha) || sched_mul(cx, t2, mo, p.sigma) ||
           sched_sub(cx, out, t1, t2);
  }
  if (pred == SCHED_EPSILON)
    return sched_copy(cx, out, mo);
  if (pred == SCHED_SAMPLE) /* (sample - alpha_t * mo) / sigma_t */
    return sched_mul(cx, t1, mo, p.alpha) || sched_sub(cx, t1, sample, t1) ||
           sched_div(cx, out, t1, p.sigma);
  /* v: alpha_t * mo + sigma_t * sample */
  return sched_mul(cx, t1, mo, p.alpha) || sched_mul(cx, t2, sample, p.sigma) ||
         sched_add(cx, out, t1, t2);
}

int sched_convert_model_output(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *out,
                               const sdr_tensor *mo, const sdr_tensor *sample,
                               int data_prediction) {
  sched_point p = sched_sigma_point(s->sigmas[s->step_index]);
  sdr_tensor t1, t2;
  if (sched_temp(cx, &t1, sample) != 0 || sched_temp(cx, &t2, sample) != 0 ||
      convert(s, cx, out, mo, sample, data_prediction, p, &t1, &t2) != 0)
    return -1;
  if (!s->c.thresholding)
    return 0;
  if (data_prediction)
    return sched_threshold(cx, out);
  if (s->kind != SDR_SCHED_DPMSOLVER_MULTISTEP) /* UniPC thresholds data predictions only */
    return 0;
  /* x0 = (sample - sigma_t * eps) / alpha_t, thresholded; eps = (sample - alpha_t * x0) / sigma_t
   */
  return sched_mul(cx, &t1, out, p.sigma) || sched_sub(cx, &t1, sample, &t1) ||
         sched_div(cx, &t1, &t1, p.alpha) || sched_threshold(cx, &t1) ||
         sched_mul(cx, &t2, &t1, p.alpha) || sched_sub(cx, &t2, sample, &t2) ||
         sched_div(cx, out, &t2, p.sigma);
}

int sched_x0_alpha(sched_ctx *cx, sdr_tensor *x0, const sdr_tensor *model_output,
                   const sdr_tensor *sample, float a_t, sdr_tensor *t1, sdr_tensor *t2) {
  const float b_t = 1.0f - a_t;
  switch (cx->s->c.prediction) {
  case SCHED_EPSILON:
    if (sched_mul(cx, t1, model_output, sqrtf(b_t)) != 0 || sched_sub(cx, x0, sample, t1) != 0)
      return -1;
    return sched_div(cx, x0, x0, sqrtf(a_t));
  case SCHED_SAMPLE:
    return sched_copy(cx, x0, model_output);
  case SCHED_V_PREDICTION:
    if (sched_mul(cx, t1, sample, sqrtf(a_t)) != 0 ||
        sched_mul(cx, t2, model_output, sqrtf(b_t)) != 0)
      return -1;
    return sched_sub(cx, x0, t1, t2);
  }
  return sdr_fail("%s: unknown prediction type", cx->s->cls->name);
}

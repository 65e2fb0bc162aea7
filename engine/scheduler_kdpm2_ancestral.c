/* engine/scheduler_kdpm2_ancestral.c — KDPM2AncestralDiscreteScheduler (diffusers 0.27.2
 * schedulers/scheduling_k_dpm_2_ancestral_discrete.py): DPM-Solver-2 with ancestral
 * noise (k-diffusion's sample_dpm_2_ancestral).
 *
 * Each step splits sigma -> sigma_next into a deterministic move down to sigma_down and
 * fresh noise of sigma_up (sigma_up^2 + sigma_down^2 = sigma_next^2). As KDPM2's, a step
 * is two calls of step(): an Euler step to the midpoint between sigma and sigma_down
 * (keeping the sample), then the whole move to sigma_down from the kept sample with the
 * midpoint's derivative, plus noise * sigma_up. Every call draws noise shaped like the
 * model output from the generator, the first half's unused, as diffusers' step draws
 * before it knows which half it is. The midpoints' timesteps come before each step's
 * own: t0, ti0, t1, ti1, ...; the last two midpoints are 0. Order 2.
 */
#include <math.h>
#include <stdlib.h>

#include "engine/error.h" // sdr_fail
#include "engine/scheduler_internal.h"

/* x (m + 1 values) expanded as torch.cat([x[:1], x[1:].repeat_interleave(2), x[-1:]]). */
static int expand(const float *x, int m, float *out) {
  int k = 0;
  out[k++] = x[0];
  for (int i = 1; i <= m; i++)
    out[k++] = x[i], out[k++] = x[i];
  out[k++] = x[m];
  return k;
}

static int kdpm2a_set_timesteps(sdr_scheduler *s, int n) {
  int cap = n + 1; /* trailing spacing can give n + 1 */
  double *t = malloc(sizeof(double) * (size_t)cap * 4);
  float *f = malloc(sizeof(float) * (size_t)(cap + 1) * 12);
  if (!t || !f) {
    free(t), free(f);
    return sdr_fail("%s: out of memory", s->cls->name);
  }
  double *sd = t + cap, *ts = t + 2 * cap;
  float *sg = f, *up = f + (cap + 1), *down = f + 2 * (cap + 1), *si = f + 3 * (cap + 1);
  float *big = f + 4 * (cap + 1); /* sigmas, interpol, up, down: 2 * (cap + 1) each */
  sdr_dtype dtype;
  int m = sched_discrete_sigmas(s, n, 1, t, sd, &dtype);
  if (m < 0) {
    free(t), free(f);
    return -1;
  }
  for (int i = 0; i < m; i++)
    sg[i] = (float)sd[i];
  sg[m] = 0;
  /* float32 tensor arithmetic, each op rounded; the last up is 0/0 (NaN, never read) */
  for (int k = 0; k <= m; k++) {
    float s2 = sg[k] * sg[k], next = k < m ? sg[k + 1] : 0.0f, n2 = next * next;
    up[k] = sqrtf(n2 * (s2 - n2) / s2);
    down[k] = k < m ? sqrtf(n2 - up[k] * up[k]) : 0.0f;
  }
  for (int k = 0; k <= m; k++) {
    float start = sched_torch_logf(sg[k]), end = sched_torch_logf(down[k]);
    si[k] = k >= m - 1 ? 0.0f : sched_torch_expf(sched_torch_lerp_half(start, end, k, m + 1));
  }
  int nt = 0;
  ts[nt++] = t[0];
  for (int k = 1; k < m; k++) {
    ts[nt++] = sched_sigma_to_t_f32(s, si[k - 1]);
    ts[nt++] = t[k];
  }
  int ns = expand(sg, m, big);
  expand(si, m, big + ns), expand(up, m, big + 2 * ns), expand(down, m, big + 3 * ns);
  int rc = sched_set_schedule(s, ts, nt, dtype, big, ns);
  if (rc == 0) {
    free(s->sigmas_interpol);
    s->sigmas_interpol = malloc(sizeof(float) * 3 * (size_t)ns);
    if (!s->sigmas_interpol)
      rc = sdr_fail("%s: out of memory", s->cls->name);
    for (int i = 0; rc == 0 && i < 3 * ns; i++)
      s->sigmas_interpol[i] = big[ns + i];
  }
  free(t), free(f);
  s->num_inference_steps = n;
  return rc;
}

static int kdpm2a_init(sdr_scheduler *s) {
  /* "sample" predictions raise NotImplementedError in diffusers' step */
  if (sched_parse_common(s, 1u << SCHED_EPSILON | 1u << SCHED_V_PREDICTION) != 0)
    return -1;
  return kdpm2a_set_timesteps(s, s->n_train); /* as __init__ does */
}

/* The expanded midpoint, up and down sigmas at index i. */
static float interpol(const sdr_scheduler *s, int i) { return s->sigmas_interpol[i]; }
static float up_at(const sdr_scheduler *s, int i) { return s->sigmas_interpol[s->n_sigmas + i]; }
static float down_at(const sdr_scheduler *s, int i) {
  return s->sigmas_interpol[2 * s->n_sigmas + i];
}

/* sample / (sigma^2 + 1) ** 0.5, sigma the previous midpoint's in a pair's second half. */
static int kdpm2a_scale(sdr_scheduler *s, sdr_backend *be, sdr_tensor *out,
                        const sdr_tensor *sample, double t) {
  if (s->step_index < 0 && sched_init_step_index(s, t, 0) != 0)
    return -1;
  int i = s->step_index;
  float sigma = s->heun_second ? interpol(s, i - 1) : s->sigmas[i];
  sched_ctx cx = {s, be, NULL};
  return sched_div(&cx, out, sample, sqrtf(sigma * sigma + 1.0f));
}

static int kdpm2a_step(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *prev_sample,
                       const sdr_tensor *model_output, double t, const sdr_tensor *sample,
                       sdr_generator *g, double eta) {
  (void)eta;
  int first = sched_pair_half(s, t, 0);
  if (first < 0)
    return -1;
  int j = first ? s->step_index : s->step_index - 1;
  float sigma_hat = s->sigmas[j], sigma_mid = interpol(s, j); /* gamma = 0 */
  /* first: an Euler step to the midpoint; second: the move to sigma_down with the
   * midpoint's derivative from the kept sample, plus noise * sigma_up */
  sdr_tensor noise, d;
  if (sched_randn(cx, &noise, model_output, g, s->noise_dtype) != 0 ||
      sched_temp(cx, &d, sample) != 0 ||
      sched_pair_move(s, cx, &d, model_output, sample, first ? sigma_hat : sigma_mid,
                      first ? sigma_hat : sigma_mid,
                      first ? sigma_mid - sigma_hat : down_at(s, j) - sigma_hat) != 0 ||
      sched_pair_finish(s, cx, prev_sample, sample, &d, first) != 0)
    return -1;
  if (first)
    return 0;
  return sched_mul(cx, &noise, &noise, up_at(s, j)) ||
         sched_add(cx, prev_sample, prev_sample, &noise);
}

const sched_class sched_kdpm2_ancestral_class = {
    .name = "KDPM2AncestralDiscreteScheduler",
    .params = sched_kdpm2_params,
    .n_params = SCHED_KDPM2_N_PARAMS,
    .has_begin_index = 1,
    .order = 2,
    .sigma_noise = 1,
    .init = kdpm2a_init,
    .set_timesteps = kdpm2a_set_timesteps,
    .scale_model_input = kdpm2a_scale,
    .step = kdpm2a_step,
    .add_noise = sched_add_noise_sigmas,
};

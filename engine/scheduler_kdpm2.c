/* engine/scheduler_kdpm2.c — KDPM2DiscreteScheduler (diffusers 0.27.2
 * schedulers/scheduling_k_dpm_2_discrete.py): DPM-Solver-2 (Karras et al. 2022,
 * Algorithm 2's midpoint form, k-diffusion's sample_dpm_2), deterministic.
 *
 * As Heun's, each step is spread over two calls of step(): the first takes an Euler step
 * to the midpoint sigma (the geometric mean of a step's two sigmas, sigmas_interpol) and
 * keeps the sample; the second evaluates the model there and takes the whole step from
 * the kept sample with that derivative. The timesteps interleave the midpoints' (taken
 * back from their sigmas, fractional) with the steps' own: t0, ti1, t1, ti2, t2, ...
 * sigmas_interpol is exp(lerp(log sigma, log sigma_prev, 0.5)) over a float32 tensor,
 * where torch's vectorized lerp (eight at a time on AVX2) rounds once (an FMA) and its
 * scalar tail twice; its first entry is NaN (log 0 rolled in) and never read. The
 * midpoints' timesteps are _sigma_to_t on float32 tensors: float32 arithmetic
 * throughout. The class's order is 2.
 */
#include <math.h>
#include <stdlib.h>

#include "engine/error.h" // sdr_fail
#include "engine/scheduler_internal.h"

const sched_param sched_kdpm2_params[SCHED_KDPM2_N_PARAMS] = {
    {"num_train_timesteps", SCHED_P_INT, 1000, NULL},
    {"beta_start", SCHED_P_NUMBER, 0.00085, NULL},
    {"beta_end", SCHED_P_NUMBER, 0.012, NULL},
    {"beta_schedule", SCHED_P_STRING, 0, "linear"},
    {"trained_betas", SCHED_P_LIST_OR_NULL, 0, NULL},
    {"use_karras_sigmas", SCHED_P_BOOL, 0, NULL},
    {"prediction_type", SCHED_P_STRING, 0, "epsilon"},
    {"timestep_spacing", SCHED_P_STRING, 0, "linspace"},
    {"steps_offset", SCHED_P_INT, 0, NULL},
};

/* _sigma_to_t of a float32 tensor element against the float32 log_sigmas tensor:
 * np.maximum with 1e-10 makes the element a float64 scalar, whose log torch then takes
 * as a float32 in float32 arithmetic (as do the products with the integer indices). */
float sched_sigma_to_t_f32(const sdr_scheduler *s, float sigma) {
  const float *ls = s->log_sigmas;
  int n = s->n_train;
  float log_sigma = (float)log(sigma > 1e-10 || isnan(sigma) ? (double)sigma : 1e-10);
  int low = 0;
  for (int i = 0; i < n; i++)
    if (log_sigma - ls[i] >= 0)
      low = i;
  low = low > n - 2 ? n - 2 : low;
  float w = (ls[low] - log_sigma) / (ls[low] - ls[low + 1]);
  w = w < 0 ? 0 : w > 1 ? 1 : w; /* np.clip keeps NaN */
  return (1.0f - w) * (float)low + w * (float)(low + 1);
}

/* torch.lerp(start, end, 0.5) at index k of a tensor of n: an FMA in the vectorized
 * part, two roundings in the scalar tail. */
float sched_torch_lerp_half(float start, float end, int k, int n) {
  if (k < n / 8 * 8)
    return fmaf(-0.5f, end - start, end);
  return end - (end - start) * 0.5f;
}

static int kdpm2_set_timesteps(sdr_scheduler *s, int n) {
  int cap = n + 1; /* trailing spacing can give n + 1 */
  double *t = malloc(sizeof(double) * (size_t)cap * 4);
  float *sg = malloc(sizeof(float) * (size_t)(cap + 1) * 6);
  if (!t || !sg) {
    free(t), free(sg);
    return sdr_fail("%s: out of memory", s->cls->name);
  }
  double *sd = t + cap, *ts = t + 2 * cap;
  float *si = sg + (cap + 1), *big = sg + 2 * (cap + 1), *big_i = sg + 4 * (cap + 1);
  sdr_dtype dtype;
  int m = sched_discrete_sigmas(s, n, 1, t, sd, &dtype);
  if (m < 0) {
    free(t), free(sg);
    return -1;
  }
  /* sigmas (float32, a final 0) and their midpoints; both expanded as
   * [x0, x1, x1, ..., xm, xm, xm] (cat of x[:1], x[1:] twice each, x[-1:]) */
  for (int i = 0; i < m; i++)
    sg[i] = (float)sd[i];
  sg[m] = 0;
  for (int k = 0; k <= m; k++) {
    float start = sched_torch_logf(sg[k]), end = sched_torch_logf(sg[k ? k - 1 : m]);
    si[k] = sched_torch_expf(sched_torch_lerp_half(start, end, k, m + 1));
  }
  int ns = 0;
  big[ns] = sg[0], big_i[ns++] = si[0];
  for (int k = 1; k <= m; k++)
    for (int r = 0; r < 2; r++)
      big[ns] = sg[k], big_i[ns++] = si[k];
  big[ns] = sg[m], big_i[ns++] = si[m];
  /* timesteps: t0, then each midpoint's and its step's */
  int nt = 0;
  ts[nt++] = t[0];
  for (int k = 1; k < m; k++) {
    ts[nt++] = sched_sigma_to_t_f32(s, si[k]);
    ts[nt++] = t[k];
  }
  int rc = sched_set_schedule(s, ts, nt, dtype, big, ns);
  if (rc == 0) {
    free(s->sigmas_interpol);
    s->sigmas_interpol = malloc(sizeof(float) * (size_t)ns);
    if (!s->sigmas_interpol)
      rc = sdr_fail("%s: out of memory", s->cls->name);
    for (int i = 0; rc == 0 && i < ns; i++)
      s->sigmas_interpol[i] = big_i[i];
  }
  free(t), free(sg);
  s->num_inference_steps = n;
  return rc;
}

static int kdpm2_init(sdr_scheduler *s) {
  /* "sample" predictions raise NotImplementedError in diffusers' step */
  if (sched_parse_common(s, 1u << SCHED_EPSILON | 1u << SCHED_V_PREDICTION) != 0)
    return -1;
  return kdpm2_set_timesteps(s, s->n_train); /* as __init__ does */
}

/* sample / (sigma^2 + 1) ** 0.5, sigma the midpoint's in a pair's second half. */
static int kdpm2_scale(sdr_scheduler *s, sdr_backend *be, sdr_tensor *out, const sdr_tensor *sample,
                       double t) {
  if (s->step_index < 0 && sched_init_step_index(s, t, 0) != 0)
    return -1;
  float sigma = s->heun_second ? s->sigmas_interpol[s->step_index] : s->sigmas[s->step_index];
  sched_ctx cx = {s, be, NULL};
  return sched_div(&cx, out, sample, sqrtf(sigma * sigma + 1.0f));
}

static int kdpm2_step(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *prev_sample,
                      const sdr_tensor *model_output, double t, const sdr_tensor *sample,
                      sdr_generator *g, double eta) {
  (void)g, (void)eta;
  int first = sched_pair_half(s, t, 1), i = s->step_index;
  if (first < 0)
    return -1;
  float sigma_hat = first ? s->sigmas[i] : s->sigmas[i - 1]; /* gamma = 0 */
  float sigma_mid = first ? s->sigmas_interpol[i + 1] : s->sigmas_interpol[i];
  float sigma_next = first ? s->sigmas[i + 1] : s->sigmas[i];
  /* first: an Euler step to the midpoint; second: the whole step with the midpoint's
   * derivative, from the kept sample */
  sdr_tensor d;
  if (sched_temp(cx, &d, sample) != 0 ||
      sched_pair_move(s, cx, &d, model_output, sample, first ? sigma_hat : sigma_mid,
                      first ? sigma_hat : sigma_mid,
                      first ? sigma_mid - sigma_hat : sigma_next - sigma_hat) != 0)
    return -1;
  return sched_pair_finish(s, cx, prev_sample, sample, &d, first);
}

const sched_class sched_kdpm2_class = {
    .name = "KDPM2DiscreteScheduler",
    .params = sched_kdpm2_params,
    .n_params = SCHED_KDPM2_N_PARAMS,
    .has_begin_index = 1,
    .order = 2,
    .sigma_noise = 1,
    .init = kdpm2_init,
    .set_timesteps = kdpm2_set_timesteps,
    .scale_model_input = kdpm2_scale,
    .step = kdpm2_step,
    .add_noise = sched_add_noise_sigmas,
};

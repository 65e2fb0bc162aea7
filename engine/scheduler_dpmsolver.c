/* engine/scheduler_dpmsolver.c — DPMSolverMultistepScheduler (diffusers 0.27.2
 * schedulers/scheduling_dpmsolver_multistep.py): DPM-Solver (Lu et al. 2022) and
 * DPM-Solver++ of order 1 to 3, midpoint or Heun, SDE variants, Karras sigmas or
 * uniform log-SNR ("lu") steps.
 *
 * The model output is first turned into a data prediction (the "++" variants) or a
 * noise prediction, kept for the next steps; each update is a sum of
 * coefficient * tensor terms whose coefficients come from log-SNRs of 0-d float32
 * tensors. The last step is first order when final_sigmas_type is "zero" (its log-SNR
 * is infinite), and short schedules end with lower orders.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h" // sdr_fail
#include "engine/scheduler_internal.h"

static const sched_param params[] = {
    {"num_train_timesteps", SCHED_P_INT, 1000, NULL},
    {"beta_start", SCHED_P_NUMBER, 0.0001, NULL},
    {"beta_end", SCHED_P_NUMBER, 0.02, NULL},
    {"beta_schedule", SCHED_P_STRING, 0, "linear"},
    {"trained_betas", SCHED_P_LIST_OR_NULL, 0, NULL},
    {"solver_order", SCHED_P_INT, 2, NULL},
    {"prediction_type", SCHED_P_STRING, 0, "epsilon"},
    {"thresholding", SCHED_P_BOOL, 0, NULL},
    {"dynamic_thresholding_ratio", SCHED_P_NUMBER, 0.995, NULL},
    {"sample_max_value", SCHED_P_NUMBER, 1.0, NULL},
    {"algorithm_type", SCHED_P_STRING, 0, "dpmsolver++"},
    {"solver_type", SCHED_P_STRING, 0, "midpoint"},
    {"lower_order_final", SCHED_P_BOOL, 1, NULL},
    {"euler_at_final", SCHED_P_BOOL, 0, NULL},
    {"use_karras_sigmas", SCHED_P_BOOL, 0, NULL},
    {"use_lu_lambdas", SCHED_P_BOOL, 0, NULL},
    {"final_sigmas_type", SCHED_P_STRING, 0, "zero"},
    {"lambda_min_clipped", SCHED_P_NUMBER, -INFINITY, NULL},
    {"variance_type", SCHED_P_STRING_OR_NULL, 0, NULL},
    {"timestep_spacing", SCHED_P_STRING, 0, "linspace"},
    {"steps_offset", SCHED_P_INT, 0, NULL},
    {"rescale_betas_zero_snr", SCHED_P_BOOL, 0, NULL},
};

static int is_sde(const sdr_scheduler *s) {
  return s->c.algorithm == SCHED_SDE_DPMSOLVER_PP || s->c.algorithm == SCHED_SDE_DPMSOLVER;
}
static int is_data_prediction(const sdr_scheduler *s) { /* the "++" variants */
  return s->c.algorithm == SCHED_DPMSOLVER_PP || s->c.algorithm == SCHED_SDE_DPMSOLVER_PP;
}
static int heun(const sdr_scheduler *s) { return strcmp(s->c.solver_type, "heun") == 0; }
static int edm(const sdr_scheduler *s) { return s->kind == SDR_SCHED_EDM_DPMSOLVER_MULTISTEP; }

/* _sigma_to_alpha_sigma_t and the log-SNR: EDM's inputs come scaled, its alpha is 1 */
static sched_point point(const sdr_scheduler *s, int i) {
  return edm(s) ? sched_edm_point(s->sigmas[i]) : sched_sigma_point(s->sigmas[i]);
}

/* ---- __init__ and set_timesteps ---- */

int sched_dpm_check_solver(sdr_scheduler *s, const char *const *algorithms) {
  const sched_config *c = &s->c;
  static const char *const deis[] = {"deis", NULL};
  static const char *const solvers[] = {"midpoint", "heun", NULL};
  static const char *const others[] = {"logrho", "bh1", "bh2", NULL};
  /* __init__ checks final_sigmas_type against the name it was given, "deis" included
   * (the alias frees the config's string: keep a copy) */
  char given[32];
  snprintf(given, sizeof given, "%s", c->algorithm_type);
  if (sched_config_alias(s, "algorithm_type", c->algorithm_type, algorithms, deis, "dpmsolver++") !=
          0 ||
      sched_config_alias(s, "solver_type", c->solver_type, solvers, others, "midpoint") != 0)
    return -1;
  const char *f = c->final_sigmas_type;
  if (strcmp(f, "zero") != 0 && strcmp(f, "sigma_min") != 0)
    return sdr_fail("%s: final_sigmas_type \"%s\" is not supported (zero, sigma_min)", s->cls->name,
                    f);
  size_t len = strlen(given);
  int given_data = len >= 11 && strcmp(given + len - 11, "dpmsolver++") == 0;
  if (!given_data && strcmp(f, "zero") == 0)
    return sdr_fail("%s: final_sigmas_type \"zero\" is not supported for algorithm_type %s; "
                    "choose sigma_min",
                    s->cls->name, given);
  return sched_check_solver_order(s);
}

static int dpm_init(sdr_scheduler *s) {
  sched_config *c = &s->c;
  const char *name = s->cls->name;
  if (sched_parse_common(s, 1u << SCHED_EPSILON | 1u << SCHED_V_PREDICTION | 1u << SCHED_SAMPLE) !=
      0)
    return -1;
  static const char *const algorithms[] = {"dpmsolver++", "dpmsolver", "sde-dpmsolver++",
                                           "sde-dpmsolver", NULL};
  if (sched_dpm_check_solver(s, algorithms) != 0)
    return -1;
  const char *a = c->algorithm_type;
  c->algorithm = strcmp(a, "dpmsolver++") == 0       ? SCHED_DPMSOLVER_PP
                 : strcmp(a, "dpmsolver") == 0       ? SCHED_DPMSOLVER
                 : strcmp(a, "sde-dpmsolver++") == 0 ? SCHED_SDE_DPMSOLVER_PP
                                                     : SCHED_SDE_DPMSOLVER;
  /* diffusers reads variance_type only for epsilon predictions, where it keeps the first
   * 3 channels of a model that predicts its variance too (SD's does not, and the step
   * then fails on mismatched shapes); others ignore it */
  if (c->variance_type && c->prediction == SCHED_EPSILON &&
      (strcmp(c->variance_type, "learned") == 0 || strcmp(c->variance_type, "learned_range") == 0))
    return sdr_fail("%s: variance_type \"%s\" is not supported with epsilon predictions (it "
                    "needs a model that predicts its variance)",
                    name, c->variance_type);
  return sched_init_sigma_schedule(s);
}

/* lambda_t = log(alpha_t) - log(sigma_t) in float32; how many of the smallest
 * (flipped) values lie below lambda_min_clipped: torch.searchsorted's left side. */
int sched_clipped_index(const sdr_scheduler *s) {
  int n = s->n_train, k = 0;
  for (int i = n - 1; i >= 0; i--) {
    float a = s->alphas_cumprod[i];
    float lambda = sched_torch_logf(sqrtf(a)) - sched_torch_logf(sqrtf(1.0f - a));
    if (lambda < s->c.lambda_min_clipped)
      k++;
    else
      break;
  }
  return k;
}

static int dpm_set_timesteps(sdr_scheduler *s, int n) {
  const sched_config *c = &s->c;
  long long last = c->num_train_timesteps - sched_clipped_index(s);
  return sched_solver_set_timesteps(
      s, n, last, c->use_lu_lambdas,
      strcmp(c->final_sigmas_type, "sigma_min") == 0 ? SCHED_FINAL_TRAIN_MIN : SCHED_FINAL_ZERO);
}

/* ---- the step ---- */

static int first_order(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *out, const sdr_tensor *m0,
                       const sdr_tensor *sample, const sdr_tensor *noise) {
  int i = s->step_index;
  sched_point t = point(s, i + 1), p0 = point(s, i);
  float h = t.lambda - p0.lambda;
  const sdr_tensor *x[3] = {sample, m0, noise};
  float c[3];
  int sign[3] = {1, -1, 1};
  switch (s->c.algorithm) {
  case SCHED_DPMSOLVER_PP:
    c[0] = t.sigma / p0.sigma, c[1] = t.alpha * (sched_torch_expf(-h) - 1.0f);
    return sched_combine(cx, out, 2, c, sign, x);
  case SCHED_DPMSOLVER:
    c[0] = t.alpha / p0.alpha, c[1] = t.sigma * (sched_torch_expf(h) - 1.0f);
    return sched_combine(cx, out, 2, c, sign, x);
  case SCHED_SDE_DPMSOLVER_PP:
    c[0] = t.sigma / p0.sigma * sched_torch_expf(-h),
    c[1] = t.alpha * (1.0f - sched_torch_expf(-2.0f * h));
    c[2] = t.sigma * sqrtf(1.0f - sched_torch_expf(-2.0f * h));
    sign[1] = 1;
    return sched_combine(cx, out, 3, c, sign, x);
  case SCHED_SDE_DPMSOLVER:
    c[0] = t.alpha / p0.alpha, c[1] = 2.0f * (t.sigma * (sched_torch_expf(h) - 1.0f));
    c[2] = t.sigma * sqrtf(sched_torch_expf(2.0f * h) - 1.0f);
    return sched_combine(cx, out, 3, c, sign, x);
  }
  return -1;
}

static int second_order(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *out, const sdr_tensor *sample,
                        const sdr_tensor *noise) {
  int i = s->step_index;
  sched_point t = point(s, i + 1), p0 = point(s, i), p1 = point(s, i - 1);
  const sdr_tensor *m0 = sched_hist(s, 0), *m1 = sched_hist(s, 1);
  float h = t.lambda - p0.lambda, h0 = p0.lambda - p1.lambda, r0 = h0 / h;
  sdr_tensor d1; /* D1 = (1 / r0) * (m0 - m1) */
  if (sched_temp(cx, &d1, sample) != 0 || sched_sub(cx, &d1, m0, m1) != 0 ||
      sched_mul(cx, &d1, &d1, 1.0f / r0) != 0)
    return -1;
  const sdr_tensor *x[4] = {sample, m0, &d1, noise};
  float c[4], em = sched_torch_expf(-h) - 1.0f, ep = sched_torch_expf(h) - 1.0f,
              e2 = 1.0f - sched_torch_expf(-2.0f * h);
  int sign[4] = {1, -1, -1, 1}, mid = !heun(s);
  switch (s->c.algorithm) {
  case SCHED_DPMSOLVER_PP:
    c[0] = t.sigma / p0.sigma, c[1] = t.alpha * em;
    c[2] = mid ? 0.5f * (t.alpha * em) : t.alpha * (em / h + 1.0f);
    sign[2] = mid ? -1 : 1;
    return sched_combine(cx, out, 3, c, sign, x);
  case SCHED_DPMSOLVER:
    c[0] = t.alpha / p0.alpha, c[1] = t.sigma * ep;
    c[2] = mid ? 0.5f * (t.sigma * ep) : t.sigma * (ep / h - 1.0f);
    return sched_combine(cx, out, 3, c, sign, x);
  case SCHED_SDE_DPMSOLVER_PP:
    c[0] = t.sigma / p0.sigma * sched_torch_expf(-h), c[1] = t.alpha * e2;
    c[2] = mid ? 0.5f * (t.alpha * e2) : t.alpha * (e2 / (-2.0f * h) + 1.0f);
    c[3] = t.sigma * sqrtf(1.0f - sched_torch_expf(-2.0f * h));
    sign[1] = sign[2] = 1;
    return sched_combine(cx, out, 4, c, sign, x);
  case SCHED_SDE_DPMSOLVER:
    c[0] = t.alpha / p0.alpha, c[1] = 2.0f * (t.sigma * ep);
    c[2] = mid ? t.sigma * ep : 2.0f * (t.sigma * (ep / h - 1.0f));
    c[3] = t.sigma * sqrtf(sched_torch_expf(2.0f * h) - 1.0f);
    return sched_combine(cx, out, 4, c, sign, x);
  }
  return -1;
}

static int third_order(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *out, const sdr_tensor *sample) {
  int i = s->step_index;
  sched_point t = point(s, i + 1), p0 = point(s, i), p1 = point(s, i - 1), p2 = point(s, i - 2);
  const sdr_tensor *m0 = sched_hist(s, 0), *m1 = sched_hist(s, 1), *m2 = sched_hist(s, 2);
  float h = t.lambda - p0.lambda, h0 = p0.lambda - p1.lambda, h1 = p1.lambda - p2.lambda;
  float r0 = h0 / h, r1 = h1 / h;
  sdr_tensor d10, d11, diff, d1, d2;
  if (sched_temp(cx, &d10, sample) || sched_temp(cx, &d11, sample) ||
      sched_temp(cx, &diff, sample) || sched_temp(cx, &d1, sample) || sched_temp(cx, &d2, sample))
    return -1;
  /* D1_0 = (1/r0)(m0 - m1); D1_1 = (1/r1)(m1 - m2); D1 = D1_0 + (r0/(r0+r1))(D1_0 - D1_1);
   * D2 = (1/(r0+r1))(D1_0 - D1_1) */
  if (sched_sub(cx, &d10, m0, m1) || sched_mul(cx, &d10, &d10, 1.0f / r0) ||
      sched_sub(cx, &d11, m1, m2) || sched_mul(cx, &d11, &d11, 1.0f / r1) ||
      sched_sub(cx, &diff, &d10, &d11) || sched_mul(cx, &d1, &diff, r0 / (r0 + r1)) ||
      sched_add(cx, &d1, &d10, &d1) || sched_mul(cx, &d2, &diff, 1.0f / (r0 + r1)))
    return -1;
  const sdr_tensor *x[4] = {sample, m0, &d1, &d2};
  float c[4];
  int sign[4];
  if (s->c.algorithm == SCHED_DPMSOLVER_PP) {
    float em = sched_torch_expf(-h) - 1.0f;
    c[0] = t.sigma / p0.sigma, c[1] = t.alpha * em, c[2] = t.alpha * (em / h + 1.0f);
    c[3] = t.alpha * ((sched_torch_expf(-h) - 1.0f + h) / (h * h) - 0.5f);
    sign[1] = -1, sign[2] = 1, sign[3] = -1;
  } else {
    float ep = sched_torch_expf(h) - 1.0f;
    c[0] = t.alpha / p0.alpha, c[1] = t.sigma * ep, c[2] = t.sigma * (ep / h - 1.0f);
    c[3] = t.sigma * ((sched_torch_expf(h) - 1.0f - h) / (h * h) - 0.5f);
    sign[1] = sign[2] = sign[3] = -1;
  }
  return sched_combine(cx, out, 4, c, sign, x);
}

int sched_dpm_step(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *prev_sample,
                   const sdr_tensor *model_output, double t, const sdr_tensor *sample,
                   sdr_generator *g, double eta) {
  (void)eta;
  const sched_config *c = &s->c;
  if (sched_multistep_begin(s, t) != 0)
    return -1;
  int i = s->step_index, n = s->n_timesteps;
  int short_run = c->lower_order_final && n < 15;
  int final_first =
      i == n - 1 && (c->euler_at_final || short_run || strcmp(c->final_sigmas_type, "zero") == 0);
  int final_second = i == n - 2 && short_run;
  int order = c->solver_order == 1 || s->lower_order_nums < 1 || final_first    ? 1
              : c->solver_order == 2 || s->lower_order_nums < 2 || final_second ? 2
                                                                                : 3;
  /* diffusers' third-order update has no SDE form: its step fails there (and only there;
   * short runs never reach it), so this one does too, before changing anything */
  if (order == 3 && is_sde(s))
    return sdr_fail("%s.step: solver_order 3 has no %s update in diffusers (step %d of %d needs "
                    "it); use solver_order 2",
                    s->cls->name, c->algorithm_type, i + 1, n);
  sdr_tensor converted, slot, noise;
  if (sched_temp(cx, &converted, sample) != 0)
    return -1;
  if (edm(s) ? sched_edm_denoise(cx, &converted, sample, model_output, s->sigmas[i]) != 0 ||
                   (c->thresholding && sched_threshold(cx, &converted) != 0)
             : sched_convert_model_output(s, cx, &converted, model_output, sample,
                                          is_data_prediction(s)) != 0)
    return -1;
  /* DPM-Solver draws float32 noise, EDM's in the model output's dtype */
  if (is_sde(s) && sched_randn(cx, &noise, model_output, g, edm(s) ? s->noise_dtype : SDR_F32) != 0)
    return -1;
  /* model_outputs shift by one; the newest is the converted output */
  if (sched_hist_push(cx, (int)c->solver_order, sample, &slot) != 0 ||
      sched_copy(cx, &slot, &converted) != 0)
    return -1;
  const sdr_tensor *nz = is_sde(s) ? &noise : NULL;
  int rc;
  if (order == 1)
    rc = first_order(s, cx, prev_sample, &converted, sample, nz);
  else if (order == 2)
    rc = second_order(s, cx, prev_sample, sample, nz);
  else
    rc = third_order(s, cx, prev_sample, sample);
  if (rc != 0)
    return -1;
  sched_multistep_end(s);
  return 0;
}

const sched_class sched_dpmsolver_class = {
    .name = "DPMSolverMultistepScheduler",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .has_begin_index = 1,
    .init = dpm_init,
    .set_timesteps = dpm_set_timesteps,
    .scale_model_input = NULL,
    .step = sched_dpm_step,
    .add_noise = sched_add_noise_alpha_sigma,
};

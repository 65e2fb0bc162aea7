/* engine/scheduler_deis.c — DEISMultistepScheduler (diffusers 0.27.2
 * schedulers/scheduling_deis_multistep.py): DEIS (Zhang & Chen 2022), its log-rho
 * multistep form of order 1 to 3 on noise predictions.
 *
 * The schedule is UniPC's (and DPM-Solver's with sigma_min last). Each step turns the
 * model output into a noise prediction through x0 (thresholded when asked), keeps it,
 * and takes a first-order step (DPM-Solver's) or a multistep one whose coefficients are
 * integrals in rho = sigma / alpha. diffusers computes those with np.log of 0-d float32
 * tensors, so in numpy's float32 log and float32 arithmetic, each operation rounded in
 * the order Python evaluates it. Short runs end with lower orders, as DPM-Solver's.
 */
#include <math.h>
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
    {"algorithm_type", SCHED_P_STRING, 0, "deis"},
    {"solver_type", SCHED_P_STRING, 0, "logrho"},
    {"lower_order_final", SCHED_P_BOOL, 1, NULL},
    {"use_karras_sigmas", SCHED_P_BOOL, 0, NULL},
    {"timestep_spacing", SCHED_P_STRING, 0, "linspace"},
    {"steps_offset", SCHED_P_INT, 0, NULL},
};

static int deis_init(sdr_scheduler *s) {
  sched_config *c = &s->c;
  if (sched_parse_common(s, 1u << SCHED_EPSILON | 1u << SCHED_V_PREDICTION | 1u << SCHED_SAMPLE) !=
      0)
    return -1;
  /* __init__ registers "deis" and "logrho" in place of the other solvers' names */
  static const char *const algorithms[] = {"deis", NULL}, *const dpm[] = {"dpmsolver",
                                                                          "dpmsolver++", NULL};
  static const char *const solvers[] = {"logrho", NULL}, *const others[] = {"midpoint", "heun",
                                                                            "bh1", "bh2", NULL};
  if (sched_config_alias(s, "algorithm_type", c->algorithm_type, algorithms, dpm, "deis") != 0 ||
      sched_config_alias(s, "solver_type", c->solver_type, solvers, others, "logrho") != 0)
    return -1;
  if (sched_check_solver_order(s) != 0)
    return -1;
  return sched_init_sigma_schedule(s);
}

/* As UniPC's: sigmas[-1:] again with Karras sigmas, else the smallest training sigma. */
static int deis_set_timesteps(sdr_scheduler *s, int n) {
  return sched_solver_set_timesteps(s, n, s->c.num_train_timesteps, 0,
                                    s->c.use_karras_sigmas ? SCHED_FINAL_REPEAT
                                                           : SCHED_FINAL_TRAIN_MIN);
}

/* ind_fn of the second-order update: t * (-log(c) + log(t) - 1) / (log(b) - log(c)). */
static float ind2(float t, float b, float c) {
  float lt = sched_numpy_logf(t), lb = sched_numpy_logf(b), lc = sched_numpy_logf(c);
  float num = -lc + lt - 1.0f;
  return t * num / (lb - lc);
}

/* ind_fn of the third-order update, its terms summed left to right as Python does. */
static float ind3(float t, float b, float c, float d) {
  float lt = sched_numpy_logf(t), lb = sched_numpy_logf(b), lc = sched_numpy_logf(c),
        ld = sched_numpy_logf(d);
  float num = lc * (ld - lt + 1.0f) - ld * lt;
  num = num + ld;
  num = num + lt * lt;
  num = num - 2.0f * lt;
  num = num + 2.0f;
  float den = (lb - lc) * (lb - ld);
  return t * num / den;
}

/* x_t = alpha_t * (sample / alpha_s0 + coef1 * m0 + coef2 * m1 [+ coef3 * m2]). */
static int multistep(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *out, const sdr_tensor *sample,
                     int order) {
  int i = s->step_index;
  sched_point t = sched_sigma_point(s->sigmas[i + 1]), p0 = sched_sigma_point(s->sigmas[i]),
              p1 = sched_sigma_point(s->sigmas[i - 1]),
              p2 = order == 3 ? sched_sigma_point(s->sigmas[i - 2]) : p1;
  float rt = t.sigma / t.alpha, r0 = p0.sigma / p0.alpha, r1 = p1.sigma / p1.alpha,
        r2 = p2.sigma / p2.alpha, coef[3];
  if (order == 2) {
    coef[0] = ind2(rt, r0, r1) - ind2(r0, r0, r1);
    coef[1] = ind2(rt, r1, r0) - ind2(r0, r1, r0);
  } else {
    coef[0] = ind3(rt, r0, r1, r2) - ind3(r0, r0, r1, r2);
    coef[1] = ind3(rt, r1, r2, r0) - ind3(r0, r1, r2, r0);
    coef[2] = ind3(rt, r2, r0, r1) - ind3(r0, r2, r0, r1);
  }
  sdr_tensor acc, term;
  if (sched_temp(cx, &acc, sample) != 0 || sched_temp(cx, &term, sample) != 0 ||
      sched_div(cx, &acc, sample, p0.alpha) != 0)
    return -1;
  for (int k = 0; k < order; k++)
    if (sched_mul(cx, &term, sched_hist(s, k), coef[k]) != 0 || sched_add(cx, &acc, &acc, &term))
      return -1;
  return sched_mul(cx, out, &acc, t.alpha);
}

static int deis_step(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *prev_sample,
                     const sdr_tensor *model_output, double t, const sdr_tensor *sample,
                     sdr_generator *g, double eta) {
  (void)g, (void)eta;
  const sched_config *c = &s->c;
  if (sched_multistep_begin(s, t) != 0)
    return -1;
  int i = s->step_index, n = s->n_timesteps;
  int short_run = c->lower_order_final && n < 15;
  int order = c->solver_order == 1 || s->lower_order_nums < 1 || (i == n - 1 && short_run)   ? 1
              : c->solver_order == 2 || s->lower_order_nums < 2 || (i == n - 2 && short_run) ? 2
                                                                                             : 3;
  /* convert_model_output: x0 (thresholded), then eps = (sample - alpha_t * x0) / sigma_t */
  sched_point p = sched_sigma_point(s->sigmas[i]);
  sdr_tensor x0, slot, tmp;
  if (sched_temp(cx, &x0, sample) != 0 || sched_temp(cx, &tmp, sample) != 0 ||
      sched_convert_model_output(s, cx, &x0, model_output, sample, 1) != 0 ||
      sched_hist_push(cx, (int)c->solver_order, sample, &slot) != 0 ||
      sched_mul(cx, &tmp, &x0, p.alpha) != 0 || sched_sub(cx, &tmp, sample, &tmp) != 0 ||
      sched_div(cx, &slot, &tmp, p.sigma) != 0)
    return -1;
  int rc;
  if (order == 1) { /* (alpha_t / alpha_s) * sample - (sigma_t * (exp(h) - 1)) * m0 */
    sched_point pt = sched_sigma_point(s->sigmas[i + 1]);
    float h = pt.lambda - p.lambda,
          cf[2] = {pt.alpha / p.alpha, pt.sigma * (sched_torch_expf(h) - 1.0f)};
    int sign[2] = {1, -1};
    const sdr_tensor *x[2] = {sample, &slot};
    rc = sched_combine(cx, prev_sample, 2, cf, sign, x);
  } else {
    rc = multistep(s, cx, prev_sample, sample, order);
  }
  if (rc != 0)
    return -1;
  sched_multistep_end(s);
  return 0;
}

const sched_class sched_deis_class = {
    .name = "DEISMultistepScheduler",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .has_begin_index = 1,
    .init = deis_init,
    .set_timesteps = deis_set_timesteps,
    .scale_model_input = NULL,
    .step = deis_step,
    .add_noise = sched_add_noise_alpha_sigma,
};

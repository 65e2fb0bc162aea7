/* engine/scheduler_dpmsolver_singlestep.c — DPMSolverSinglestepScheduler (diffusers
 * 0.27.2 schedulers/scheduling_dpmsolver_singlestep.py): DPM-Solver and DPM-Solver++
 * in their singlestep form (DPM++ 2S), orders 1 to 3.
 *
 * The steps come in groups given by an order list ([1, 2, 1, 2, ...] for order 2):
 * the group's first step keeps the sample it starts from, and each later step of the
 * group goes from that kept sample with all the model outputs since, as one update of
 * its order from the group's start. The schedule is DPM-Solver multistep's with
 * linspace spacing. set_timesteps turns lower_order_final on in the config, as diffusers
 * does (with a warning there), when the steps do not divide into whole groups or the
 * last sigma is zero, which is the default.
 */
#include <math.h>
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
    {"lower_order_final", SCHED_P_BOOL, 0, NULL},
    {"use_karras_sigmas", SCHED_P_BOOL, 0, NULL},
    {"final_sigmas_type", SCHED_P_STRING, 0, "zero"},
    {"lambda_min_clipped", SCHED_P_NUMBER, -INFINITY, NULL},
    {"variance_type", SCHED_P_STRING_OR_NULL, 0, NULL},
};

static int data_prediction(const sdr_scheduler *s) {
  return strcmp(s->c.algorithm_type, "dpmsolver++") == 0;
}
static int heun(const sdr_scheduler *s) { return strcmp(s->c.solver_type, "heun") == 0; }

static int single_init(sdr_scheduler *s) {
  sched_config *c = &s->c;
  const char *name = s->cls->name;
  if (sched_parse_common(s, 1u << SCHED_EPSILON | 1u << SCHED_V_PREDICTION | 1u << SCHED_SAMPLE) !=
      0)
    return -1;
  c->spacing = SCHED_LINSPACE; /* the class has no timestep_spacing: always linspace */
  static const char *const algorithms[] = {"dpmsolver++", "dpmsolver", NULL};
  if (sched_dpm_check_solver(s, algorithms) != 0)
    return -1;
  if (c->variance_type && c->prediction == SCHED_EPSILON &&
      strcmp(c->variance_type, "learned_range") == 0)
    return sdr_fail("%s: variance_type \"learned_range\" is not supported with epsilon "
                    "predictions (it needs a model that predicts its variance)",
                    name);
  return sched_init_sigma_schedule(s);
}

static int single_set_timesteps(sdr_scheduler *s, int n) {
  sched_config *c = &s->c;
  int zero = strcmp(c->final_sigmas_type, "zero") == 0;
  int rc = sched_solver_set_timesteps(s, n, c->num_train_timesteps - sched_clipped_index(s), 0,
                                      zero ? SCHED_FINAL_ZERO : SCHED_FINAL_TRAIN_MIN);
  s->num_inference_steps = n; /* num_inference_steps, not len(timesteps) */
  if (rc == 0 && !c->lower_order_final && (n % c->solver_order != 0 || zero))
    rc = sched_config_set_bool(s, "lower_order_final", 1);
  return rc;
}

/* get_order_list(n): the order of step i's update. */
static int order_at(const sdr_scheduler *s, int i, int n) {
  int order = (int)s->c.solver_order;
  if (order == 1)
    return 1;
  int group = i / order, pos = i % order + 1, whole = n / order;
  if (!s->c.lower_order_final) /* whole groups only (set_timesteps saw to it) */
    return pos;
  if (order == 2) /* [1, 2] * (n // 2 - 1) + [1, 1], or [1, 2] * (n // 2) + [1] */
    return n % 2 == 0 && group == whole - 1 ? 1 : pos;
  /* [1, 2, 3] * (n // 3 - 1) + [1, 2] + [1]; [1, 2, 3] * (n // 3) + [1]; ... + [1, 2] */
  if (n % 3 == 0 && group == whole - 1)
    return pos == 3 ? 1 : pos;
  return pos;
}

/* The update from the group's start (sample) over `order` steps ending at step i. */
static int update(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *out, const sdr_tensor *sample,
                  int order) {
  int i = s->step_index, pp = data_prediction(s), hn = heun(s);
  sched_point t = sched_sigma_point(s->sigmas[i + 1]),
              b = sched_sigma_point(s->sigmas[i + 1 - order]); /* the group's start */
  float h = t.lambda - b.lambda, em = sched_torch_expf(-h) - 1.0f, ep = sched_torch_expf(h) - 1.0f;
  /* x_t = c0 * sample - c1 * D0 ...: the ratio of the start, and the first term's */
  float c[4] = {pp ? t.sigma / b.sigma : t.alpha / b.alpha, pp ? t.alpha * em : t.sigma * ep};
  int sign[4] = {1, -1, 1, 1};
  const sdr_tensor *x[4] = {sample, sched_hist(s, order - 1)};
  if (order == 1)
    return sched_combine(cx, out, 2, c, sign, x);
  sdr_tensor d1, d10, d2;
  if (sched_temp(cx, &d1, sample) != 0 || sched_temp(cx, &d10, sample) != 0 ||
      sched_temp(cx, &d2, sample) != 0)
    return -1;
  if (order == 2) {
    sched_point p0 = sched_sigma_point(s->sigmas[i]);
    float r0 = (p0.lambda - b.lambda) / h; /* D1 = (1 / r0) * (m0 - m1) */
    if (sched_sub(cx, &d1, sched_hist(s, 0), sched_hist(s, 1)) != 0 ||
        sched_mul(cx, &d1, &d1, 1.0f / r0) != 0)
      return -1;
    x[2] = &d1;
    if (pp)
      c[2] = hn ? t.alpha * (em / h + 1.0f) : 0.5f * (t.alpha * em), sign[2] = hn ? 1 : -1;
    else
      c[2] = hn ? t.sigma * (ep / h - 1.0f) : 0.5f * (t.sigma * ep), sign[2] = -1;
    return sched_combine(cx, out, 3, c, sign, x);
  }
  sched_point p0 = sched_sigma_point(s->sigmas[i]), p1 = sched_sigma_point(s->sigmas[i - 1]);
  float r0 = (p0.lambda - b.lambda) / h, r1 = (p1.lambda - b.lambda) / h;
  const sdr_tensor *m0 = sched_hist(s, 0), *m1 = sched_hist(s, 1), *m2 = sched_hist(s, 2);
  /* D1_0 = (1 / r1) * (m1 - m2); D1_1 = (1 / r0) * (m0 - m2) (in d1) */
  if (sched_sub(cx, &d10, m1, m2) || sched_mul(cx, &d10, &d10, 1.0f / r1) ||
      sched_sub(cx, &d1, m0, m2) || sched_mul(cx, &d1, &d1, 1.0f / r0))
    return -1;
  if (!hn) { /* midpoint: the D1_1 term alone */
    x[2] = &d1;
    c[2] = pp ? t.alpha * (em / h + 1.0f) : t.sigma * (ep / h - 1.0f);
    sign[2] = pp ? 1 : -1;
    return sched_combine(cx, out, 3, c, sign, x);
  }
  /* D1 = (r0 * D1_0 - r1 * D1_1) / (r0 - r1) (in d10); D2 = 2 * (D1_1 - D1_0) / (r0 - r1) */
  sdr_tensor tmp;
  if (sched_temp(cx, &tmp, sample) || sched_sub(cx, &d2, &d1, &d10) ||
      sched_mul(cx, &d2, &d2, 2.0f) || sched_div(cx, &d2, &d2, r0 - r1) ||
      sched_mul(cx, &tmp, &d10, r0) || sched_mul(cx, &d10, &d1, r1) ||
      sched_sub(cx, &tmp, &tmp, &d10) || sched_div(cx, &d10, &tmp, r0 - r1))
    return -1;
  x[2] = &d10, x[3] = &d2;
  if (pp) {
    c[2] = t.alpha * (em / h + 1.0f), sign[2] = 1;
    c[3] = t.alpha * ((sched_torch_expf(-h) - 1.0f + h) / (h * h) - 0.5f), sign[3] = -1;
  } else {
    c[2] = t.sigma * (ep / h - 1.0f), sign[2] = -1;
    c[3] = t.sigma * ((sched_torch_expf(h) - 1.0f - h) / (h * h) - 0.5f), sign[3] = -1;
  }
  return sched_combine(cx, out, 4, c, sign, x);
}

static int single_step(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *prev_sample,
                       const sdr_tensor *model_output, double t, const sdr_tensor *sample,
                       sdr_generator *g, double eta) {
  (void)g, (void)eta;
  const sched_config *c = &s->c;
  if (sched_multistep_begin(s, t) != 0)
    return -1;
  int i = s->step_index;
  sdr_tensor converted, slot, kept;
  if (sched_temp(cx, &converted, sample) != 0 ||
      sched_convert_model_output(s, cx, &converted, model_output, sample, data_prediction(s)) !=
          0 ||
      sched_hist_push(cx, (int)c->solver_order, sample, &slot) != 0 ||
      sched_copy(cx, &slot, &converted) != 0 ||
      sched_slot(cx, SCHED_SLOT_CUR_SAMPLE, sample, &kept) != 0)
    return -1;
  /* model_outputs[-order] is None: a lower order (a run begun mid-group) */
  int order = order_at(s, i, s->num_inference_steps);
  while (order > s->n_hist)
    order--;
  if (order == 1 && sched_copy(cx, &kept, sample) != 0) /* self.sample = sample */
    return -1;
  if (update(s, cx, prev_sample, &kept, order) != 0)
    return -1;
  sched_multistep_end(s);
  return 0;
}

const sched_class sched_dpmsolver_singlestep_class = {
    .name = "DPMSolverSinglestepScheduler",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .has_begin_index = 1,
    .init = single_init,
    .set_timesteps = single_set_timesteps,
    .scale_model_input = NULL,
    .step = single_step,
    .add_noise = sched_add_noise_alpha_sigma,
};

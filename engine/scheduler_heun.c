/* engine/scheduler_heun.c — HeunDiscreteScheduler (diffusers 0.27.2
 * schedulers/scheduling_heun_discrete.py): Heun's method over the sigmas (Karras et al.
 * 2022, Algorithm 1, with gamma = 0).
 *
 * diffusers spreads each Heun step over two calls of step() so that a pipeline's loop
 * still makes one model call per timestep: the timesteps after the first come twice
 * (t0, t1, t1, t2, t2, ...) and so do the inner sigmas. The first call of a pair takes
 * an Euler step and keeps its derivative, dt and sample; the second evaluates the model
 * at the Euler step's end and replaces that step by one with the mean derivative. Which
 * half comes next is state (diffusers' `dt is None`), not the index's parity, so a run
 * begun at any index behaves as diffusers'. The class's order is 2, which img2img
 * multiplies its start index by. The step draws no noise.
 */
#include <math.h>
#include <stdlib.h>

#include "engine/error.h" // sdr_fail
#include "engine/scheduler_internal.h"

/* Its own defaults differ from the other classes' (beta 0.00085 to 0.012). */
static const sched_param params[] = {
    {"num_train_timesteps", SCHED_P_INT, 1000, NULL},
    {"beta_start", SCHED_P_NUMBER, 0.00085, NULL},
    {"beta_end", SCHED_P_NUMBER, 0.012, NULL},
    {"beta_schedule", SCHED_P_STRING, 0, "linear"},
    {"trained_betas", SCHED_P_LIST_OR_NULL, 0, NULL},
    {"prediction_type", SCHED_P_STRING, 0, "epsilon"},
    {"use_karras_sigmas", SCHED_P_BOOL, 0, NULL},
    {"clip_sample", SCHED_P_BOOL, 0, NULL},
    {"clip_sample_range", SCHED_P_NUMBER, 1.0, NULL},
    {"timestep_spacing", SCHED_P_STRING, 0, "linspace"},
    {"steps_offset", SCHED_P_INT, 0, NULL},
};

static int heun_set_timesteps(sdr_scheduler *s, int n) {
  int cap = n + 1;                                      /* trailing spacing can give n + 1 */
  double *t = malloc(sizeof(double) * (size_t)cap * 4); /* t, sd, then 2 * cap pairs */
  float *sg = malloc(sizeof(float) * (size_t)cap * 2);
  if (!t || !sg) {
    free(t), free(sg);
    return sdr_fail("%s: out of memory", s->cls->name);
  }
  double *sd = t + cap, *pairs = t + 2 * cap;
  sdr_dtype dtype;
  int m = sched_discrete_sigmas(s, n, 0, t, sd, &dtype);
  if (m < 0) {
    free(t), free(sg);
    return -1;
  }
  /* sigmas: [s0, s1, s1, ..., s(m-1), s(m-1), 0]; timesteps: [t0, t1, t1, ..., t(m-1), t(m-1)] */
  int ns = 0, nt = 0;
  for (int i = 0; i < m; i++) {
    sg[ns++] = (float)sd[i];
    pairs[nt++] = t[i];
    if (i > 0) {
      sg[ns++] = (float)sd[i];
      pairs[nt++] = t[i];
    }
  }
  sg[ns++] = 0;
  int rc = sched_set_schedule(s, pairs, nt, dtype, sg, ns);
  free(t), free(sg);
  s->num_inference_steps = n;
  return rc;
}

static int heun_init(sdr_scheduler *s) {
  if (sched_parse_common(s, 1u << SCHED_EPSILON | 1u << SCHED_V_PREDICTION | 1u << SCHED_SAMPLE) !=
      0)
    return -1;
  /* __init__ calls set_timesteps(num_train_timesteps), so num_inference_steps is set
   * before any call of the user's, and a step may come first */
  return heun_set_timesteps(s, s->n_train);
}

static int heun_step(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *prev_sample,
                     const sdr_tensor *model_output, double t, const sdr_tensor *sample,
                     sdr_generator *g, double eta) {
  (void)g, (void)eta;
  int first = sched_pair_half(s, t, 1), i = s->step_index;
  if (first < 0)
    return -1;
  float sigma = first ? s->sigmas[i] : s->sigmas[i - 1];
  float sigma_next = first ? s->sigmas[i + 1] : s->sigmas[i];
  float sigma_hat = sigma * 1.0f; /* gamma = 0 */
  float sigma_input = first ? sigma_hat : sigma_next;
  sdr_tensor x0, d, sample_slot, deriv;
  if (sched_temp(cx, &x0, sample) != 0 || sched_temp(cx, &d, sample) != 0)
    return -1;
  switch (s->c.prediction) {
  case SCHED_SAMPLE:
    if (sched_copy(cx, &x0, model_output) != 0)
      return -1;
    break;
  case SCHED_EPSILON:
    if (sched_mul(cx, &d, model_output, sigma_input) != 0 || sched_sub(cx, &x0, sample, &d) != 0)
      return -1;
    break;
  case SCHED_V_PREDICTION:
    if (sched_x0_from_v(cx, &x0, model_output, sample, sigma_input) != 0)
      return -1;
    break;
  }
  if (sched_clip_x0(cx, &x0) != 0)
    return -1;
  if (sched_slot(cx, SCHED_SLOT_CUR_SAMPLE, sample, &sample_slot) != 0 ||
      sched_slot(cx, SCHED_SLOT_CUR_MODEL_OUTPUT, sample, &deriv) != 0)
    return -1;
  if (first) {
    /* derivative = (sample - x0) / sigma_hat, kept with dt and the sample for the second
     * half; prev = sample + derivative * dt */
    float dt = sigma_next - sigma_hat;
    if (sched_sub(cx, &deriv, sample, &x0) != 0 || sched_div(cx, &deriv, &deriv, sigma_hat) != 0 ||
        sched_copy(cx, &sample_slot, sample) != 0 || sched_mul(cx, &d, &deriv, dt) != 0)
      return -1;
    s->heun_dt = dt;
    s->heun_second = 1;
    s->has_cur_sample = s->has_cur_model_output = 1;
    s->step_index++;
    return sched_add(cx, prev_sample, sample, &d);
  }
  /* derivative = ((sample - x0) / sigma_next + prev_derivative) / 2, from the kept sample */
  if (sched_sub(cx, &d, sample, &x0) != 0 || sched_div(cx, &d, &d, sigma_next) != 0 ||
      sched_add(cx, &d, &deriv, &d) != 0 || sched_div(cx, &d, &d, 2.0f) != 0 ||
      sched_mul(cx, &d, &d, s->heun_dt) != 0)
    return -1;
  s->heun_second = 0;
  s->has_cur_sample = s->has_cur_model_output = 0;
  s->step_index++;
  return sched_add(cx, prev_sample, &sample_slot, &d);
}

const sched_class sched_heun_class = {
    .name = "HeunDiscreteScheduler",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .has_begin_index = 1,
    .order = 2,
    .sigma_noise = 1,
    .init = heun_init,
    .set_timesteps = heun_set_timesteps,
    .scale_model_input = sched_scale_by_sigma,
    .step = heun_step,
    .add_noise = sched_add_noise_sigmas,
};

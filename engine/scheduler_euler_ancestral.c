/* engine/scheduler_euler_ancestral.c — EulerAncestralDiscreteScheduler (diffusers 0.27.2
 * schedulers/scheduling_euler_ancestral_discrete.py): an Euler step down to sigma_down,
 * then fresh noise of size sigma_up (k-diffusion's sample_euler_ancestral, eta 1).
 *
 * Every step draws noise shaped like the model output from the generator it is given.
 */
#include <math.h>
#include <stdlib.h>

#include "engine/error.h" // sdr_fail
#include "engine/scheduler_internal.h"

static const sched_param params[] = {
    {"num_train_timesteps", SCHED_P_INT, 1000, NULL},
    {"beta_start", SCHED_P_NUMBER, 0.0001, NULL},
    {"beta_end", SCHED_P_NUMBER, 0.02, NULL},
    {"beta_schedule", SCHED_P_STRING, 0, "linear"},
    {"trained_betas", SCHED_P_LIST_OR_NULL, 0, NULL},
    {"prediction_type", SCHED_P_STRING, 0, "epsilon"},
    {"timestep_spacing", SCHED_P_STRING, 0, "linspace"},
    {"steps_offset", SCHED_P_INT, 0, NULL},
    {"rescale_betas_zero_snr", SCHED_P_BOOL, 0, NULL},
};

static int ea_set_timesteps(sdr_scheduler *s, int n) {
  double *t = malloc(sizeof(double) * (size_t)(n + 1));
  float *sg = malloc(sizeof(float) * (size_t)(n + 2));
  float *train = malloc(sizeof(float) * (size_t)s->n_train);
  if (!t || !sg || !train) {
    free(t), free(sg), free(train);
    return sdr_fail("%s: out of memory", s->cls->name);
  }
  int m = sched_common_timesteps(s, n, t);
  for (int i = 0; i < s->n_train; i++)
    train[i] = sched_train_sigma(s, i);
  for (int i = 0; i < m; i++) {
    t[i] = (float)t[i];
    sg[i] = (float)sched_np_interp(t[i], train, s->n_train);
  }
  sg[m] = 0;
  int rc = sched_set_schedule(s, t, m, SDR_F32, sg, m + 1);
  free(t), free(sg), free(train);
  s->num_inference_steps = n;
  return rc;
}

static int ea_init(sdr_scheduler *s) {
  if (sched_parse_common(s, 1u << SCHED_EPSILON | 1u << SCHED_V_PREDICTION) != 0)
    return -1;
  /* __init__: the training sigmas largest first, then 0; timesteps T-1 .. 0 in float64 */
  int n = s->n_train;
  double *t = malloc(sizeof(double) * (size_t)n);
  float *sg = malloc(sizeof(float) * (size_t)(n + 1));
  if (!t || !sg) {
    free(t), free(sg);
    return sdr_fail("%s: out of memory", s->cls->name);
  }
  for (int i = 0; i < n; i++) {
    sg[i] = sched_train_sigma(s, n - 1 - i);
    t[i] = n - 1 - i;
  }
  sg[n] = 0;
  int rc = sched_set_schedule(s, t, n, SDR_F64, sg, n + 1);
  free(t), free(sg);
  s->num_inference_steps = 0;
  return rc;
}

static int ea_step(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *prev_sample,
                   const sdr_tensor *model_output, double t, const sdr_tensor *sample,
                   sdr_generator *g, double eta) {
  (void)eta;
  if (s->step_index < 0 && sched_init_step_index(s, t, 0) != 0)
    return -1;
  int i = s->step_index;
  if (i + 1 >= s->n_sigmas)
    return sdr_fail("%s.step: no step after the last timestep", s->cls->name);
  float sigma = s->sigmas[i];
  sdr_tensor x0, d;
  if (sched_temp(cx, &x0, sample) != 0 || sched_temp(cx, &d, sample) != 0)
    return -1;
  if (s->c.prediction == SCHED_EPSILON) {
    if (sched_mul(cx, &d, model_output, sigma) != 0 || sched_sub(cx, &x0, sample, &d) != 0)
      return -1;
  } else if (sched_x0_from_v(cx, &x0, model_output, sample, sigma) != 0) {
    return -1;
  }
  float from = sigma, to = s->sigmas[i + 1];
  float sigma_up = sqrtf(to * to * (from * from - to * to) / (from * from));
  float sigma_down = sqrtf(to * to - sigma_up * sigma_up);
  float dt = sigma_down - sigma;
  /* prev = sample + (sample - x0) / sigma * dt + noise * sigma_up */
  if (sched_emit_x0(cx, &x0) != 0 || sched_sub(cx, &d, sample, &x0) != 0 ||
      sched_div(cx, &d, &d, sigma) != 0 || sched_mul(cx, &d, &d, dt) != 0 ||
      sched_add(cx, &d, sample, &d) != 0 ||
      sched_plus_noise(cx, prev_sample, &d, model_output, g, sigma_up) != 0)
    return -1;
  s->step_index++;
  return 0;
}

const sched_class sched_euler_ancestral_class = {
    .name = "EulerAncestralDiscreteScheduler",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .has_begin_index = 1,
    .pred_original = 1,
    .sigma_noise = 1,
    .init = ea_init,
    .set_timesteps = ea_set_timesteps,
    .scale_model_input = sched_scale_by_sigma,
    .step = ea_step,
    .add_noise = sched_add_noise_sigmas,
};

/* engine/scheduler_edm_euler.c — EDMEulerScheduler (diffusers 0.27.2
 * schedulers/scheduling_edm_euler.py): Euler's method over EDM's rho schedule (Karras et
 * al. 2022, Algorithm 2 with s_churn = 0, as pipelines call it).
 *
 * As EulerDiscreteScheduler's, its step draws noise shaped like the model output every
 * step and leaves it unused; given a generator, this one draws and drops the same numbers.
 */
#include "engine/scheduler_internal.h"

static const sched_param params[] = {
    {"sigma_min", SCHED_P_NUMBER, 0.002, NULL},
    {"sigma_max", SCHED_P_NUMBER, 80.0, NULL},
    {"sigma_data", SCHED_P_NUMBER, 0.5, NULL},
    {"num_train_timesteps", SCHED_P_INT, 1000, NULL},
    {"prediction_type", SCHED_P_STRING, 0, "epsilon"},
    {"rho", SCHED_P_NUMBER, 7.0, NULL},
};

static int edm_euler_set_timesteps(sdr_scheduler *s, int n) {
  return sched_edm_set_timesteps(s, n, 0.0f);
}

static int edm_euler_scale(sdr_scheduler *s, sdr_backend *be, sdr_tensor *out,
                           const sdr_tensor *sample, double t) {
  return sched_edm_scale(s, be, out, sample, t, 0);
}

static int edm_euler_step(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *prev_sample,
                          const sdr_tensor *model_output, double t, const sdr_tensor *sample,
                          sdr_generator *g, double eta) {
  (void)eta;
  float sigma_hat;
  sdr_tensor x0, d;
  if (sched_euler_begin(s, cx, t, model_output, g, &sigma_hat) != 0 ||
      sched_temp(cx, &x0, sample) != 0 || sched_temp(cx, &d, sample) != 0 ||
      sched_edm_denoise(cx, &x0, sample, model_output, sigma_hat) != 0)
    return -1;
  return sched_euler_update(cx, prev_sample, sample, &x0, &d, sigma_hat);
}

const sched_class sched_edm_euler_class = {
    .name = "EDMEulerScheduler",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .has_begin_index = 1,
    .pred_original = 1,
    .init = sched_edm_init,
    .set_timesteps = edm_euler_set_timesteps,
    .scale_model_input = edm_euler_scale,
    .step = edm_euler_step,
    .add_noise = sched_add_noise_sigmas,
    .init_noise_sigma = sched_edm_init_noise_sigma,
};

/* engine/scheduler_edm_dpmsolver.c — EDMDPMSolverMultistepScheduler (diffusers 0.27.2
 * schedulers/scheduling_edm_dpmsolver_multistep.py): DPM-Solver++ of order 1 to 3
 * (midpoint or Heun, or its SDE variant) over EDM's rho schedule, Playground v2.5's
 * scheduler.
 *
 * Its step is DPMSolverMultistepScheduler's (scheduler_dpmsolver.c) with EDM's pieces:
 * the data prediction is EDM's denoised sample, and since the model's input was already
 * scaled, alpha is 1 at every sigma.
 */
#include <string.h>

#include "engine/error.h" // sdr_fail
#include "engine/scheduler_internal.h"

static const sched_param params[] = {
    {"sigma_min", SCHED_P_NUMBER, 0.002, NULL},
    {"sigma_max", SCHED_P_NUMBER, 80.0, NULL},
    {"sigma_data", SCHED_P_NUMBER, 0.5, NULL},
    {"num_train_timesteps", SCHED_P_INT, 1000, NULL},
    {"prediction_type", SCHED_P_STRING, 0, "epsilon"},
    {"rho", SCHED_P_NUMBER, 7.0, NULL},
    {"solver_order", SCHED_P_INT, 2, NULL},
    {"thresholding", SCHED_P_BOOL, 0, NULL},
    {"dynamic_thresholding_ratio", SCHED_P_NUMBER, 0.995, NULL},
    {"sample_max_value", SCHED_P_NUMBER, 1.0, NULL},
    {"algorithm_type", SCHED_P_STRING, 0, "dpmsolver++"},
    {"solver_type", SCHED_P_STRING, 0, "midpoint"},
    {"lower_order_final", SCHED_P_BOOL, 1, NULL},
    {"euler_at_final", SCHED_P_BOOL, 0, NULL},
    {"final_sigmas_type", SCHED_P_STRING, 0, "zero"},
};

static int edm_dpm_init(sdr_scheduler *s) {
  static const char *const algorithms[] = {"dpmsolver++", "sde-dpmsolver++", NULL};
  if (sched_dpm_check_solver(s, algorithms) != 0)
    return -1;
  s->c.algorithm = strcmp(s->c.algorithm_type, "sde-dpmsolver++") == 0 ? SCHED_SDE_DPMSOLVER_PP
                                                                       : SCHED_DPMSOLVER_PP;
  return sched_edm_init(s);
}

static int edm_dpm_set_timesteps(sdr_scheduler *s, int n) {
  int sigma_min = strcmp(s->c.final_sigmas_type, "sigma_min") == 0;
  return sched_edm_set_timesteps(s, n, sigma_min ? (float)s->c.sigma_min : 0.0f);
}

static int edm_dpm_scale(sdr_scheduler *s, sdr_backend *be, sdr_tensor *out,
                         const sdr_tensor *sample, double t) {
  return sched_edm_scale(s, be, out, sample, t, 1);
}

/* original + noise * sigma; a timestep the schedule lacks takes the last sigma, as its
 * index_for_timestep does */
static int edm_dpm_add_noise(sdr_scheduler *s, sdr_backend *be, sdr_tensor *out,
                             const sdr_tensor *original, const sdr_tensor *noise, double t) {
  int i = s->begin_index < 0   ? sched_index_for_timestep(s, t)
          : s->step_index >= 0 ? s->step_index
                               : s->begin_index;
  return sched_add_noise_at(s, be, out, original, noise, i < 0 ? s->n_timesteps - 1 : i);
}

const sched_class sched_edm_dpmsolver_class = {
    .name = "EDMDPMSolverMultistepScheduler",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .has_begin_index = 1,
    .init = edm_dpm_init,
    .set_timesteps = edm_dpm_set_timesteps,
    .scale_model_input = edm_dpm_scale,
    .step = sched_dpm_step,
    .add_noise = edm_dpm_add_noise,
    .init_noise_sigma = sched_edm_init_noise_sigma,
};

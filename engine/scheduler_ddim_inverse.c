/* engine/scheduler_ddim_inverse.c — DDIMInverseScheduler (diffusers 0.27.2
 * schedulers/scheduling_ddim_inverse.py): DDIM run backwards, from a picture's latents
 * toward the noise that DDIM would turn into them (DDIM inversion, for editing a real
 * picture). Its timesteps rise; each step goes from the previous step's timestep
 * (t - T / n, or the initial alpha before the first) to t, deterministically. It has no
 * add_noise and no set_begin_index, as in diffusers.
 */
#include <math.h>

#include "engine/error.h" // sdr_fail
#include "engine/scheduler_internal.h"

static const sched_param params[] = {
    {"num_train_timesteps", SCHED_P_INT, 1000, NULL},
    {"beta_start", SCHED_P_NUMBER, 0.0001, NULL},
    {"beta_end", SCHED_P_NUMBER, 0.02, NULL},
    {"beta_schedule", SCHED_P_STRING, 0, "linear"},
    {"trained_betas", SCHED_P_LIST_OR_NULL, 0, NULL},
    {"clip_sample", SCHED_P_BOOL, 1, NULL},
    {"set_alpha_to_one", SCHED_P_BOOL, 1, NULL},
    {"steps_offset", SCHED_P_INT, 0, NULL},
    {"prediction_type", SCHED_P_STRING, 0, "epsilon"},
    {"clip_sample_range", SCHED_P_NUMBER, 1.0, NULL},
    {"timestep_spacing", SCHED_P_STRING, 0, "leading"},
    {"rescale_betas_zero_snr", SCHED_P_BOOL, 0, NULL},
};

/* __init__: every training timestep, rising; no inference steps yet */
static int inverse_init(sdr_scheduler *s) {
  if (sched_parse_common(s, 1u << SCHED_EPSILON | 1u << SCHED_V_PREDICTION | 1u << SCHED_SAMPLE) !=
      0)
    return -1;
  return sched_init_train_timesteps(s, 1);
}

/* DDIM's leading or trailing timesteps, rising */
static int inverse_set_timesteps(sdr_scheduler *s, int n) {
  if (s->c.spacing == SCHED_LINSPACE)
    return sdr_fail("%s.set_timesteps: linspace is not supported. Please make sure to choose one "
                    "of 'leading' or 'trailing'.",
                    s->cls->name);
  return sched_set_rising_timesteps(s, n);
}

static int inverse_step(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *prev_sample,
                        const sdr_tensor *model_output, double t, const sdr_tensor *sample,
                        sdr_generator *g, double eta) {
  (void)g, (void)eta;
  /* from min(t - T // n, T - 1) (the initial alpha below 0) to t */
  const long long T = s->c.num_train_timesteps;
  double from = t - (double)(T / s->num_inference_steps);
  from = from < (double)(T - 1) ? from : (double)(T - 1);
  float a_t = s->final_alpha_cumprod, a_prev;
  if ((from >= 0 && sched_alpha_at(s, from, &a_t) != 0) || sched_alpha_at(s, t, &a_prev) != 0)
    return -1;
  sdr_tensor x0, eps, t1, t2;
  if (sched_temp(cx, &x0, sample) != 0 || sched_temp(cx, &eps, sample) != 0 ||
      sched_temp(cx, &t1, sample) != 0 || sched_temp(cx, &t2, sample) != 0)
    return -1;
  const sdr_tensor *pred_eps;
  if (sched_ddim_predict(cx, &x0, &eps, &pred_eps, model_output, sample, a_t, &t1, &t2) != 0)
    return -1;
  if (sched_clip_x0(cx, &x0) != 0 || sched_emit_x0(cx, &x0) != 0)
    return -1;
  /* prev = a_prev ** 0.5 * x0 + (1 - a_prev) ** 0.5 * eps */
  if (sched_mul(cx, &t1, pred_eps, sqrtf(1.0f - a_prev)) != 0 ||
      sched_mul(cx, &t2, &x0, sqrtf(a_prev)) != 0)
    return -1;
  return sched_add(cx, prev_sample, &t2, &t1);
}

const sched_class sched_ddim_inverse_class = {
    .name = "DDIMInverseScheduler",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .has_begin_index = 0,
    .pred_original = 1,
    .init = inverse_init,
    .set_timesteps = inverse_set_timesteps,
    .scale_model_input = NULL,
    .step = inverse_step,
    .add_noise = NULL,
};

/* engine/scheduler_ddim.c — DDIMScheduler (diffusers 0.27.2 schedulers/scheduling_ddim.py):
 * denoising diffusion implicit models (Song et al. 2021), formula (12), with eta for
 * the stochastic part (eta 0: deterministic; eta 1: DDPM's variance).
 *
 * With eta > 0 each step draws noise shaped like the model output from the generator,
 * as randn_tensor does. clip_sample (DDIM's default, which SD configs turn off) clamps
 * the predicted original sample, unless thresholding (dynamic thresholding) rescales it.
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
    {"thresholding", SCHED_P_BOOL, 0, NULL},
    {"dynamic_thresholding_ratio", SCHED_P_NUMBER, 0.995, NULL},
    {"clip_sample_range", SCHED_P_NUMBER, 1.0, NULL},
    {"sample_max_value", SCHED_P_NUMBER, 1.0, NULL},
    {"timestep_spacing", SCHED_P_STRING, 0, "leading"},
    {"rescale_betas_zero_snr", SCHED_P_BOOL, 0, NULL},
};

static int ddim_init(sdr_scheduler *s) {
  if (sched_parse_common(s, 1u << SCHED_EPSILON | 1u << SCHED_V_PREDICTION | 1u << SCHED_SAMPLE) !=
      0)
    return -1;
  return sched_init_train_timesteps(s, 0);
}

/* DDIM's (and its inverse's) x0 and epsilon from the model output at alpha a_t, by the
 * prediction type; *pred_eps is eps, or the model output itself for an epsilon
 * prediction. t1, t2: scratch shaped like the sample. */
int sched_ddim_predict(sched_ctx *cx, sdr_tensor *x0, sdr_tensor *eps, const sdr_tensor **pred_eps,
                       const sdr_tensor *model_output, const sdr_tensor *sample, float a_t,
                       sdr_tensor *t1, sdr_tensor *t2) {
  const float b_t = 1.0f - a_t;
  *pred_eps = eps;
  switch (cx->s->c.prediction) {
  case SCHED_EPSILON: /* x0 = (sample - b_t ** 0.5 * eps) / a_t ** 0.5 */
    *pred_eps = model_output;
    return sched_mul(cx, t1, model_output, sqrtf(b_t)) || sched_sub(cx, x0, sample, t1) ||
           sched_div(cx, x0, x0, sqrtf(a_t));
  case SCHED_SAMPLE: /* eps = (sample - a_t ** 0.5 * x0) / b_t ** 0.5 */
    return sched_copy(cx, x0, model_output) || sched_mul(cx, t1, model_output, sqrtf(a_t)) ||
           sched_sub(cx, eps, sample, t1) || sched_div(cx, eps, eps, sqrtf(b_t));
  case SCHED_V_PREDICTION: /* x0 = a^.5 x - b^.5 v;  eps = a^.5 v + b^.5 x */
    return sched_mul(cx, t1, sample, sqrtf(a_t)) || sched_mul(cx, t2, model_output, sqrtf(b_t)) ||
           sched_sub(cx, x0, t1, t2) || sched_mul(cx, t1, model_output, sqrtf(a_t)) ||
           sched_mul(cx, t2, sample, sqrtf(b_t)) || sched_add(cx, eps, t1, t2);
  }
  return 0;
}

static int ddim_step(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *prev_sample,
                     const sdr_tensor *model_output, double t, const sdr_tensor *sample,
                     sdr_generator *g, double eta) {
  double prev_t = t - (double)(s->c.num_train_timesteps / s->num_inference_steps);
  float a_t, a_prev = s->final_alpha_cumprod;
  if (sched_alpha_at(s, t, &a_t) != 0 || (prev_t >= 0 && sched_alpha_at(s, prev_t, &a_prev) != 0))
    return -1;
  float b_t = 1.0f - a_t;
  sdr_tensor x0, eps, t1, t2;
  if (sched_temp(cx, &x0, sample) != 0 || sched_temp(cx, &eps, sample) != 0 ||
      sched_temp(cx, &t1, sample) != 0 || sched_temp(cx, &t2, sample) != 0)
    return -1;
  const sdr_tensor *pred_eps;
  if (sched_ddim_predict(cx, &x0, &eps, &pred_eps, model_output, sample, a_t, &t1, &t2) != 0)
    return -1;
  if (sched_clip_x0(cx, &x0) != 0 || sched_emit_x0(cx, &x0) != 0)
    return -1;
  /* _get_variance, then std_dev_t = eta * variance ** 0.5 (eta a Python float) */
  float b_prev = 1.0f - a_prev;
  float variance = (b_prev / b_t) * (1.0f - a_t / a_prev);
  float std_dev_t = (float)eta * sqrtf(variance);
  /* pred_sample_direction = (1 - a_prev - std**2) ** 0.5 * eps */
  float dir = sqrtf(1.0f - a_prev - std_dev_t * std_dev_t);
  if (sched_mul(cx, &t1, pred_eps, dir) != 0 || sched_mul(cx, &t2, &x0, sqrtf(a_prev)) != 0)
    return -1;
  if (!(eta > 0))
    return sched_add(cx, prev_sample, &t2, &t1);
  if (sched_add(cx, &t2, &t2, &t1) != 0)
    return -1;
  return sched_plus_noise(cx, prev_sample, &t2, model_output, g, std_dev_t);
}

const sched_class sched_ddim_class = {
    .name = "DDIMScheduler",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .has_begin_index = 0,
    .pred_original = 1,
    .init = ddim_init,
    .set_timesteps = sched_set_rounded_timesteps,
    .scale_model_input = NULL,
    .step = ddim_step,
    .add_noise = sched_add_noise_alphas,
};

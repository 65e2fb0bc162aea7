/* engine/scheduler_ddpm.c — DDPMScheduler (diffusers 0.27.2 schedulers/scheduling_ddpm.py):
 * denoising diffusion probabilistic models (Ho et al. 2020), the posterior mean of
 * formula (7) plus noise of the chosen variance.
 *
 * Every step with t > 0 draws noise shaped like the model output from the generator,
 * as randn_tensor does (the same helper as DDIM's eta noise). variance_type is one of
 * the four fixed ones; the learned ones need a model that predicts its variance, which
 * SD's UNet does not, so they are refused. So is fixed_large_log:
 * diffusers' step takes the square root of its log variance, which is NaN, and every
 * picture would come out NaN. Custom timesteps (set_timesteps(timesteps=[...])) are
 * taken as given, each step going to the next of them.
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
    {"variance_type", SCHED_P_STRING, 0, "fixed_small"},
    {"clip_sample", SCHED_P_BOOL, 1, NULL},
    {"prediction_type", SCHED_P_STRING, 0, "epsilon"},
    {"thresholding", SCHED_P_BOOL, 0, NULL},
    {"dynamic_thresholding_ratio", SCHED_P_NUMBER, 0.995, NULL},
    {"clip_sample_range", SCHED_P_NUMBER, 1.0, NULL},
    {"sample_max_value", SCHED_P_NUMBER, 1.0, NULL},
    {"timestep_spacing", SCHED_P_STRING, 0, "leading"},
    {"steps_offset", SCHED_P_INT, 0, NULL},
    {"rescale_betas_zero_snr", SCHED_P_BOOL, 0, NULL},
};

typedef enum { FIXED_SMALL, FIXED_SMALL_LOG, FIXED_LARGE, FIXED_LARGE_LOG } variance_kind;
static const char *const variance_names[] = {"fixed_small", "fixed_small_log", "fixed_large",
                                             "fixed_large_log"};

static int variance_of(const sdr_scheduler *s) {
  for (int k = 0; k < 4; k++)
    if (s->c.variance_type && strcmp(s->c.variance_type, variance_names[k]) == 0)
      return k;
  return -1;
}

static int ddpm_init(sdr_scheduler *s) {
  if (variance_of(s) < 0)
    return sdr_fail("%s: variance_type %s%s%s is not supported (fixed_small, fixed_small_log, "
                    "fixed_large; the learned ones need a model that predicts its variance)",
                    s->cls->name, s->c.variance_type ? "\"" : "",
                    s->c.variance_type ? s->c.variance_type : "None",
                    s->c.variance_type ? "\"" : "");
  if (variance_of(s) == FIXED_LARGE_LOG)
    return sdr_fail("%s: variance_type \"fixed_large_log\" gives NaN on every step in diffusers "
                    "0.27.2 (the square root of a log variance); choose fixed_small, "
                    "fixed_small_log or fixed_large",
                    s->cls->name);
  if (sched_parse_common(s, 1u << SCHED_EPSILON | 1u << SCHED_V_PREDICTION | 1u << SCHED_SAMPLE) !=
      0)
    return -1;
  return sched_init_train_timesteps(s, 0);
}

/* What multiplies the noise: _get_variance, then the step's ** 0.5 (not for
 * fixed_small_log, whose variance is already a standard deviation). 0-d float32 tensors
 * in diffusers, so float here, with torch's log and exp. */
static float noise_scale(const sdr_scheduler *s, float a_t, float a_prev) {
  float beta = 1.0f - a_t / a_prev;
  float variance = (1.0f - a_prev) / (1.0f - a_t) * beta;
  variance = variance < 1e-20f ? 1e-20f : variance; /* torch.clamp(min=1e-20); NaN stays */
  switch ((variance_kind)variance_of(s)) {
  case FIXED_SMALL:
    return sqrtf(variance);
  case FIXED_SMALL_LOG:
    return sched_torch_expf(0.5f * sched_torch_logf(variance));
  case FIXED_LARGE:
    return sqrtf(beta);
  case FIXED_LARGE_LOG: /* refused by ddpm_init */
    break;
  }
  return NAN;
}

/* set_timesteps(timesteps=[...]): taken as they are (checked by the caller); its
 * num_inference_steps stays what it was, as in diffusers. */
static int ddpm_set_custom(sdr_scheduler *s, const int64_t *timesteps, int n) {
  double *t = malloc(sizeof(double) * (size_t)n);
  if (!t)
    return sdr_fail("%s: out of memory", s->cls->name);
  for (int i = 0; i < n; i++)
    t[i] = (double)timesteps[i];
  int rc = sched_set_schedule(s, t, n, SDR_I64, NULL, 0);
  free(t);
  return rc;
}

/* previous_timestep: the next of the custom timesteps (-1 after the last), else t minus
 * the stride of num_inference_steps. */
static double previous_timestep(const sdr_scheduler *s, double t) {
  if (!s->custom_timesteps)
    return t - (double)(s->c.num_train_timesteps /
                        (s->num_inference_steps ? s->num_inference_steps : s->n_train));
  for (int i = 0; i < s->n_timesteps; i++)
    if (s->timesteps[i] == t)
      return i + 1 < s->n_timesteps ? s->timesteps[i + 1] : -1;
  return -1;
}

static int ddpm_step(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *prev_sample,
                     const sdr_tensor *model_output, double t, const sdr_tensor *sample,
                     sdr_generator *g, double eta) {
  (void)eta;
  double prev_t = previous_timestep(s, t);
  float a_t, a_prev = 1.0f; /* self.one */
  if (sched_alpha_at(s, t, &a_t) != 0 || (prev_t >= 0 && sched_alpha_at(s, prev_t, &a_prev) != 0))
    return -1;
  float b_t = 1.0f - a_t, b_prev = 1.0f - a_prev;
  float cur_alpha = a_t / a_prev, cur_beta = 1.0f - cur_alpha;
  sdr_tensor x0, t1, t2;
  if (sched_temp(cx, &x0, sample) != 0 || sched_temp(cx, &t1, sample) != 0 ||
      sched_temp(cx, &t2, sample) != 0)
    return -1;
  if (sched_x0_alpha(cx, &x0, model_output, sample, a_t, &t1, &t2) != 0)
    return -1;
  if (sched_clip_x0(cx, &x0) != 0 || sched_emit_x0(cx, &x0) != 0)
    return -1;
  /* formula (7): x0 * (a_prev ** 0.5 * beta_t) / b_t + sample * alpha_t ** 0.5 * b_prev / b_t */
  float x0_coeff = (sqrtf(a_prev) * cur_beta) / b_t;
  float sample_coeff = sqrtf(cur_alpha) * b_prev / b_t;
  if (sched_mul(cx, &t1, &x0, x0_coeff) != 0 || sched_mul(cx, &t2, sample, sample_coeff) != 0)
    return -1;
  if (!(t > 0))
    return sched_add(cx, prev_sample, &t1, &t2);
  if (sched_add(cx, &t1, &t1, &t2) != 0)
    return -1;
  return sched_plus_noise(cx, prev_sample, &t1, model_output, g, noise_scale(s, a_t, a_prev));
}

const sched_class sched_ddpm_class = {
    .name = "DDPMScheduler",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .has_begin_index = 0,
    .pred_original = 1,
    .init = ddpm_init,
    .set_timesteps = sched_set_rounded_timesteps,
    .set_custom_timesteps = ddpm_set_custom,
    .scale_model_input = NULL,
    .step = ddpm_step,
    .add_noise = sched_add_noise_alphas,
};

/* engine/scheduler_lcm.c — LCMScheduler (diffusers 0.27.2 schedulers/scheduling_lcm.py):
 * latent consistency models' multistep sampling, what LCM-LoRA and LCM checkpoints run in
 * 2 to 8 steps.
 *
 * The timesteps are num_inference_steps evenly spaced indices into the distillation
 * schedule (original_inference_steps of them, every num_train_timesteps /
 * original_inference_steps, ending at k - 1). Each step predicts x0 as DDIM does, applies
 * the consistency boundary condition (denoised = c_out * x0 + c_skip * sample, with
 * sigma_data 0.5 and the timestep scaled by timestep_scaling), and, except at the last
 * step, noises denoised afresh to the next timestep with noise from the generator, as
 * randn_tensor draws it. The step's second output is `denoised`.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h" // sdr_fail
#include "engine/scheduler_internal.h"

const sched_param sched_lcm_params[SCHED_LCM_N_PARAMS] = {
    {"num_train_timesteps", SCHED_P_INT, 1000, NULL},
    {"beta_start", SCHED_P_NUMBER, 0.00085, NULL},
    {"beta_end", SCHED_P_NUMBER, 0.012, NULL},
    {"beta_schedule", SCHED_P_STRING, 0, "scaled_linear"},
    {"trained_betas", SCHED_P_LIST_OR_NULL, 0, NULL},
    {"original_inference_steps", SCHED_P_INT, 50, NULL},
    {"clip_sample", SCHED_P_BOOL, 0, NULL},
    {"clip_sample_range", SCHED_P_NUMBER, 1.0, NULL},
    {"set_alpha_to_one", SCHED_P_BOOL, 1, NULL},
    {"steps_offset", SCHED_P_INT, 0, NULL},
    {"prediction_type", SCHED_P_STRING, 0, "epsilon"},
    {"thresholding", SCHED_P_BOOL, 0, NULL},
    {"dynamic_thresholding_ratio", SCHED_P_NUMBER, 0.995, NULL},
    {"sample_max_value", SCHED_P_NUMBER, 1.0, NULL},
    {"timestep_spacing", SCHED_P_STRING, 0, "leading"},
    {"timestep_scaling", SCHED_P_NUMBER, 10.0, NULL},
    {"rescale_betas_zero_snr", SCHED_P_BOOL, 0, NULL},
};

static int lcm_init(sdr_scheduler *s) {
  if (sched_parse_common(s, 1u << SCHED_EPSILON | 1u << SCHED_V_PREDICTION | 1u << SCHED_SAMPLE) !=
      0)
    return -1;
  if (s->c.original_inference_steps < 1)
    return sdr_fail("%s: original_inference_steps %lld, expected a positive count", s->cls->name,
                    s->c.original_inference_steps);
  return sched_init_train_timesteps(s, 0);
}

/* The distillation schedule: (1 .. original_steps) * k - 1, k = num_train // original_steps. */
static int origin_steps(const sdr_scheduler *s, long long original, long long *k) {
  if (original > s->c.num_train_timesteps)
    return sdr_fail("`original_steps`: %lld cannot be larger than `self.config.train_timesteps`: "
                    "%lld as the unet model trained with this scheduler can only handle maximal "
                    "%lld timesteps.",
                    original, s->c.num_train_timesteps, s->c.num_train_timesteps);
  *k = s->c.num_train_timesteps / original;
  return 0;
}

void sched_py_repr(char *buf, size_t n, double v) {
  snprintf(buf, n, "%.15g", v);
  if (strtod(buf, NULL) != v)
    snprintf(buf, n, "%.17g", v);
  if (!strpbrk(buf, ".en"))
    strncat(buf, ".0", n - strlen(buf) - 1);
}

int sched_lcm_check_steps(const sdr_scheduler *s, int n, long long candidates, long long original,
                          double strength) {
  if (n > s->c.num_train_timesteps)
    return sdr_fail(
        "`num_inference_steps`: %d cannot be larger than `self.config.train_timesteps`: "
        "%lld as the unet model trained with this scheduler can only handle maximal "
        "%lld timesteps.",
        n, s->c.num_train_timesteps, s->c.num_train_timesteps);
  if (candidates / n < 1) { /* skipping_step (also what refuses more steps than original ones) */
    char st[32], ratio[32];
    sched_py_repr(st, sizeof st, strength);
    sched_py_repr(ratio, sizeof ratio, (double)n / (double)original);
    return sdr_fail("The combination of `original_steps x strength`: %lld x %s is smaller than "
                    "`num_inference_steps`: %d. Make sure to either reduce `num_inference_steps` "
                    "to a value smaller than %lld or increase `strength` to a value higher than "
                    "%s.",
                    original, st, n, (long long)((double)original * strength), ratio);
  }
  return 0;
}

static int schedule(sdr_scheduler *s, int n, long long original, double strength) {
  long long k = 1;
  if (origin_steps(s, original, &k) != 0)
    return -1;
  /* the distillation schedule, cut by strength (img2img): int(original_steps * strength) */
  const long long len = (long long)((double)original * strength);
  if (sched_lcm_check_steps(s, n, len, original, strength) != 0)
    return -1;
  double *t = malloc(sizeof(double) * (size_t)n);
  if (!t)
    return sdr_fail("%s: out of memory", s->cls->name);
  /* the schedule reversed, at floor(np.linspace(0, len, n, endpoint=False)) */
  const double step = (double)len / (double)n;
  for (int i = 0; i < n; i++) {
    long long idx = (long long)floor((double)i * step);
    t[i] = (double)((len - idx) * k - 1);
  }
  int rc = sched_set_schedule(s, t, n, SDR_I64, NULL, 0);
  free(t);
  s->num_inference_steps = n;
  return rc;
}

/* set_timesteps(timesteps=[...]) (checked by the caller): taken as given, with diffusers'
 * warnings for a schedule off the distillation one, then cut by strength as img2img's
 * get_timesteps would (num_inference_steps stays the whole count, as diffusers leaves it). */
static int custom(sdr_scheduler *s, const int64_t *timesteps, int n, long long original,
                  double strength) {
  long long k = 1;
  if (origin_steps(s, original, &k) != 0)
    return -1;
  const long long len = (long long)((double)original * strength);
  if (strength == 1.0 && timesteps[0] != s->c.num_train_timesteps - 1)
    fprintf(stderr,
            "The first timestep on the custom timestep schedule is %lld, not "
            "`self.config.num_train_timesteps - 1`: %lld. You may get unexpected results when "
            "using this timestep schedule.\n",
            (long long)timesteps[0], s->c.num_train_timesteps - 1);
  int off = 0;
  for (int i = 1; i < n; i++)
    off +=
        (timesteps[i] + 1) % k != 0 || (timesteps[i] + 1) / k < 1 || (timesteps[i] + 1) / k > len;
  if (off)
    fprintf(stderr,
            "The custom timestep schedule contains %d timesteps which are not on the original "
            "training/distillation timestep schedule. You may get unexpected results when using "
            "this timestep schedule.\n",
            off);
  if (n > original)
    fprintf(stderr,
            "The number of timesteps in the custom timestep schedule is %d, which exceeds the "
            "the length of the timestep schedule used for training: %lld. You may get some "
            "unexpected results when using this timestep schedule.\n",
            n, original);
  int init = (int)((double)n * strength);
  init = init < n ? init : n;
  const int t_start = n - init > 0 ? n - init : 0;
  double *t = malloc(sizeof(double) * (size_t)n);
  if (!t)
    return sdr_fail("%s: out of memory", s->cls->name);
  for (int i = t_start; i < n; i++)
    t[i - t_start] = (double)timesteps[i];
  int rc = sched_set_schedule(s, t, n - t_start, SDR_I64, NULL, 0);
  free(t);
  s->num_inference_steps = n;
  return rc;
}

int sched_lcm_timesteps(sdr_scheduler *s, int n, const int64_t *timesteps, int nt,
                        long long original, double strength) {
  return timesteps ? custom(s, timesteps, nt, original, strength)
                   : schedule(s, n, original, strength);
}

static int lcm_set_timesteps(sdr_scheduler *s, int n) {
  return schedule(s, n, s->c.original_inference_steps, 1.0);
}

static int lcm_set_custom(sdr_scheduler *s, const int64_t *timesteps, int n) {
  return custom(s, timesteps, n, s->c.original_inference_steps, 1.0);
}

static int lcm_step(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *prev_sample,
                    const sdr_tensor *model_output, double t, const sdr_tensor *sample,
                    sdr_generator *g, double eta) {
  (void)eta;
  if (s->num_inference_steps == 0)
    return sdr_fail("Number of inference steps is 'None', you need to run 'set_timesteps' after "
                    "creating the scheduler");
  if (s->step_index < 0 && sched_init_step_index(s, t, 0) != 0)
    return -1;
  const int i = s->step_index;
  const double prev_t = i + 1 < s->n_timesteps ? s->timesteps[i + 1] : t;
  float a_t, a_prev = s->final_alpha_cumprod;
  if (sched_alpha_at(s, t, &a_t) != 0 || (prev_t >= 0 && sched_alpha_at(s, prev_t, &a_prev) != 0))
    return -1;
  /* get_scalings_for_boundary_condition_discrete, on the 0-d float32 timestep tensor */
  const float scaled = (float)t * (float)s->c.timestep_scaling;
  const float c_skip = 0.25f / (scaled * scaled + 0.25f);
  const float c_out = scaled / sqrtf(scaled * scaled + 0.25f);
  sdr_tensor x0, t1, t2;
  if (sched_temp(cx, &x0, sample) != 0 || sched_temp(cx, &t1, sample) != 0 ||
      sched_temp(cx, &t2, sample) != 0)
    return -1;
  if (sched_x0_alpha(cx, &x0, model_output, sample, a_t, &t1, &t2) != 0)
    return -1;
  if (sched_clip_x0(cx, &x0) != 0)
    return -1;
  /* denoised = c_out * x0 + c_skip * sample: the step's second output */
  sdr_tensor *denoised = &x0;
  if (sched_mul(cx, &t1, &x0, c_out) != 0 || sched_mul(cx, &t2, sample, c_skip) != 0 ||
      sched_add(cx, denoised, &t1, &t2) != 0 || sched_emit_x0(cx, denoised) != 0)
    return -1;
  /* no noise after the last step */
  return sched_consistency_end(s, cx, prev_sample, denoised, &t1, model_output, g,
                               i != s->num_inference_steps - 1, a_prev);
}

int sched_consistency_end(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *prev_sample,
                          const sdr_tensor *x, sdr_tensor *tmp, const sdr_tensor *like,
                          sdr_generator *g, int noise, float a) {
  int rc;
  if (noise) {
    rc = sched_mul(cx, tmp, x, sqrtf(a));
    if (rc == 0)
      rc = sched_plus_noise(cx, prev_sample, tmp, like, g, sqrtf(1.0f - a));
  } else {
    rc = sched_copy(cx, prev_sample, x);
  }
  if (rc != 0)
    return -1;
  s->step_index++;
  return 0;
}

const sched_class sched_lcm_class = {
    .name = "LCMScheduler",
    .params = sched_lcm_params,
    .n_params = SCHED_LCM_N_PARAMS,
    .has_begin_index = 1,
    .pred_original = 1,
    .x0_name = "denoised",
    .init = lcm_init,
    .set_timesteps = lcm_set_timesteps,
    .set_custom_timesteps = lcm_set_custom,
    .scale_model_input = NULL,
    .step = lcm_step,
    .add_noise = sched_add_noise_alphas,
};

/* engine/scheduler_tcd.c — TCDScheduler (diffusers 0.27.2 schedulers/scheduling_tcd.py):
 * trajectory consistency distillation's strategic stochastic sampling, what TCD-LoRA runs
 * in 2 to 8 steps.
 *
 * The timesteps are LCM's (the distillation schedule, evenly indexed), unless
 * set_timesteps is given original_inference_steps: then every training timestep is a
 * candidate. Each step predicts x0 and the noise as DDIM does, noises x0 again to an
 * earlier timestep s = floor((1 - eta) * prev_t), and, when eta > 0 and a step follows,
 * moves from s to prev_t with fresh noise from the generator. eta (the paper's gamma) is
 * the pipeline's eta, 0 by default there, 0.3 when step is called alone. No clipping or
 * thresholding, whatever the config says. The step's second output is pred_noised_sample.
 */
#include <math.h>
#include <stdlib.h>

#include "engine/error.h" // sdr_fail
#include "engine/scheduler_internal.h"

static int tcd_init(sdr_scheduler *s) {
  if (sched_parse_common(s, 1u << SCHED_EPSILON | 1u << SCHED_V_PREDICTION | 1u << SCHED_SAMPLE) !=
      0)
    return -1;
  return sched_init_train_timesteps(s, 0);
}

/* set_timesteps(n, original_inference_steps=original): every training timestep up to
 * int(T * strength) a candidate, n of them evenly indexed, largest first. */
static int every_timestep(sdr_scheduler *s, int n, long long original, double strength) {
  const long long len = (long long)((double)s->c.num_train_timesteps * strength);
  if (sched_lcm_check_steps(s, n, len, original, strength) != 0)
    return -1;
  if (n > original)
    return sdr_fail("`num_inference_steps`: %d cannot be larger than `original_inference_steps`: "
                    "%lld because the final timestep schedule will be a subset of the "
                    "`original_inference_steps`-sized initial timestep schedule.",
                    n, original);
  double *t = malloc(sizeof(double) * (size_t)n);
  if (!t)
    return sdr_fail("%s: out of memory", s->cls->name);
  const double step = (double)len / (double)n; /* np.linspace(0, len, n, endpoint=False) */
  for (int i = 0; i < n; i++)
    t[i] = (double)(len - 1 - (long long)floor((double)i * step));
  int rc = sched_set_schedule(s, t, n, SDR_I64, NULL, 0);
  free(t);
  s->num_inference_steps = n;
  return rc;
}

int sched_tcd_timesteps(sdr_scheduler *s, int n, const int64_t *timesteps, int nt,
                        long long original, double strength) {
  if (original > 0 && !timesteps)
    return every_timestep(s, n, original, strength);
  /* the distillation schedule, and custom timesteps, as LCM takes them */
  return sched_lcm_timesteps(s, n, timesteps, nt,
                             original > 0 ? original : s->c.original_inference_steps, strength);
}

static int tcd_set_timesteps(sdr_scheduler *s, int n) {
  return sched_tcd_timesteps(s, n, NULL, 0, 0, 1.0);
}

static int tcd_set_custom(sdr_scheduler *s, const int64_t *timesteps, int n) {
  return sched_tcd_timesteps(s, 0, timesteps, n, 0, 1.0);
}

/* The noise the model output implies, as step 3 computes pred_epsilon for each prediction
 * type, from x0 and alphas_cumprod a_t. */
static int epsilon_of(sched_ctx *cx, sdr_tensor *eps, const sdr_tensor *model_output,
                      const sdr_tensor *sample, const sdr_tensor *x0, float a_t, sdr_tensor *t1) {
  const float b_t = 1.0f - a_t;
  switch (cx->s->c.prediction) {
  case SCHED_EPSILON:
    return sched_copy(cx, eps, model_output);
  case SCHED_SAMPLE: /* (sample - a_t^.5 x0) / b_t^.5 */
    if (sched_mul(cx, t1, x0, sqrtf(a_t)) != 0 || sched_sub(cx, eps, sample, t1) != 0)
      return -1;
    return sched_div(cx, eps, eps, sqrtf(b_t));
  case SCHED_V_PREDICTION: /* a_t^.5 v + b_t^.5 sample */
    if (sched_mul(cx, eps, model_output, sqrtf(a_t)) != 0 ||
        sched_mul(cx, t1, sample, sqrtf(b_t)) != 0)
      return -1;
    return sched_add(cx, eps, eps, t1);
  }
  return sdr_fail("%s: unknown prediction type", cx->s->cls->name);
}

static int tcd_step(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *prev_sample,
                    const sdr_tensor *model_output, double t, const sdr_tensor *sample,
                    sdr_generator *g, double eta) {
  if (s->num_inference_steps == 0)
    return sdr_fail("Number of inference steps is 'None', you need to run 'set_timesteps' after "
                    "creating the scheduler");
  if (s->step_index < 0 && sched_init_step_index(s, t, 0) != 0)
    return -1;
  if (!(eta >= 0 && eta <= 1.0))
    return sdr_fail("%s.step: gamma must be less than or equal to 1.0 (eta %g; expected 0 to 1)",
                    s->cls->name, eta);
  const int i = s->step_index;
  /* the next timestep, 0 after the last; s from a float32 product, as torch makes
   * (1 - eta) * prev_timestep of a Python float and an int64 tensor */
  const double prev_t = i + 1 < s->n_timesteps ? s->timesteps[i + 1] : 0;
  const double ts = floorf((float)(1.0 - eta) * (float)prev_t);
  float a_t, a_prev = s->final_alpha_cumprod, a_s;
  if (sched_alpha_at(s, t, &a_t) != 0 || (prev_t >= 0 && sched_alpha_at(s, prev_t, &a_prev) != 0) ||
      sched_alpha_at(s, ts, &a_s) != 0)
    return -1;
  sdr_tensor x0, eps, t1, t2;
  if (sched_temp(cx, &x0, sample) != 0 || sched_temp(cx, &eps, sample) != 0 ||
      sched_temp(cx, &t1, sample) != 0 || sched_temp(cx, &t2, sample) != 0)
    return -1;
  if (sched_x0_alpha(cx, &x0, model_output, sample, a_t, &t1, &t2) != 0 ||
      epsilon_of(cx, &eps, model_output, sample, &x0, a_t, &t1) != 0)
    return -1;
  /* pred_noised_sample = a_s^.5 x0 + (1 - a_s)^.5 eps: the step's second output */
  sdr_tensor *noised = &x0;
  if (sched_mul(cx, &t1, &x0, sqrtf(a_s)) != 0 ||
      sched_mul(cx, &t2, &eps, sqrtf(1.0f - a_s)) != 0 || sched_add(cx, noised, &t1, &t2) != 0 ||
      sched_emit_x0(cx, noised) != 0)
    return -1;
  /* with eta > 0, on from s to prev_t with fresh noise, but after the last step */
  return sched_consistency_end(s, cx, prev_sample, noised, &t1, model_output, g,
                               eta > 0 && i != s->num_inference_steps - 1, a_prev / a_s);
}

const sched_class sched_tcd_class = {
    .name = "TCDScheduler",
    .params = sched_lcm_params, /* TCDScheduler's __init__ takes LCMScheduler's arguments */
    .n_params = SCHED_LCM_N_PARAMS,
    .has_begin_index = 1,
    .pred_original = 1,
    .x0_name = "pred_noised_sample",
    .default_eta = 0.3,
    .init = tcd_init,
    .set_timesteps = tcd_set_timesteps,
    .set_custom_timesteps = tcd_set_custom,
    .scale_model_input = NULL,
    .step = tcd_step,
    .add_noise = sched_add_noise_alphas,
};

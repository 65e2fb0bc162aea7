/* engine/scheduler_euler.c — EulerDiscreteScheduler (diffusers 0.27.2
 * schedulers/scheduling_euler_discrete.py): Euler's method over the sigmas (Karras et
 * al. 2022, Algorithm 2, with s_churn = 0 as pipelines call it).
 *
 * The step draws noise shaped like the model output even though s_churn = 0 leaves
 * it unused: diffusers calls randn_tensor every step, which moves the generator on.
 * Given a generator, this step draws and drops the same numbers, so whatever draws
 * from that generator next sees the numbers torch would give.
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
    {"prediction_type", SCHED_P_STRING, 0, "epsilon"},
    {"interpolation_type", SCHED_P_STRING, 0, "linear"},
    {"use_karras_sigmas", SCHED_P_BOOL, 0, NULL},
    {"sigma_min", SCHED_P_NUMBER_OR_NULL, 0, NULL},
    {"sigma_max", SCHED_P_NUMBER_OR_NULL, 0, NULL},
    {"timestep_spacing", SCHED_P_STRING, 0, "linspace"},
    {"timestep_type", SCHED_P_STRING, 0, "discrete"},
    {"steps_offset", SCHED_P_INT, 0, NULL},
    {"rescale_betas_zero_snr", SCHED_P_BOOL, 0, NULL},
};

/* timestep_type "continuous" with v_prediction: timesteps are 0.25 * log(sigma). */
static int continuous(const sdr_scheduler *s) {
  return strcmp(s->c.timestep_type, "continuous") == 0 && s->c.prediction == SCHED_V_PREDICTION;
}

static int euler_set_timesteps(sdr_scheduler *s, int n) {
  int cap = n + 2;
  double *t = malloc(sizeof(double) * (size_t)cap * 2);
  float *sg = malloc(sizeof(float) * (size_t)(cap + 1));
  float *train = malloc(sizeof(float) * (size_t)s->n_train);
  if (!t || !sg || !train) {
    free(t), free(sg), free(train);
    return sdr_fail("%s: out of memory", s->cls->name);
  }
  double *sd = t + cap;
  int m = sched_common_timesteps(s, n, t), ms = m;
  for (int i = 0; i < m; i++)
    t[i] = (float)t[i];
  for (int i = 0; i < s->n_train; i++)
    train[i] = sched_train_sigma(s, i);
  if (strcmp(s->c.interpolation_type, "log_linear") == 0) {
    /* torch.linspace(log(sigmas[-1]), log(sigmas[0]), n + 1).exp(), in float32 */
    float first = sched_numpy_logf(train[s->n_train - 1]), last = sched_numpy_logf(train[0]);
    sched_torch_linspace_f32(sg, first, last, n + 1);
    ms = n + 1;
    for (int i = 0; i < ms; i++)
      sd[i] = sched_torch_expf(sg[i]);
  } else {
    for (int i = 0; i < m; i++)
      sd[i] = sched_np_interp(t[i], train, s->n_train);
  }
  if (s->c.use_karras_sigmas) {
    double lo = isnan(s->c.sigma_min) ? sd[ms - 1] : s->c.sigma_min;
    double hi = isnan(s->c.sigma_max) ? sd[0] : s->c.sigma_max;
    ms = m = n;
    sched_karras(sd, lo, hi, n);
    for (int i = 0; i < m; i++)
      t[i] = (float)sched_sigma_to_t(s, sd[i]);
  }
  for (int i = 0; i < ms; i++)
    sg[i] = (float)sd[i];
  if (continuous(s)) {
    m = ms;
    for (int i = 0; i < ms; i++)
      t[i] = 0.25f * sched_torch_logf(sg[i]);
  }
  sg[ms] = 0;
  int rc = sched_set_schedule(s, t, m, SDR_F32, sg, ms + 1);
  free(t), free(sg), free(train);
  s->num_inference_steps = n;
  return rc;
}

static int euler_init(sdr_scheduler *s) {
  if (sched_parse_common(s, 1u << SCHED_EPSILON | 1u << SCHED_V_PREDICTION | 1u << SCHED_SAMPLE) !=
      0)
    return -1;
  const char *it = s->c.interpolation_type, *tt = s->c.timestep_type;
  if (strcmp(it, "linear") != 0 && strcmp(it, "log_linear") != 0)
    return sdr_fail("%s: interpolation_type \"%s\" is not supported (linear, log_linear)",
                    s->cls->name, it);
  if (strcmp(tt, "discrete") != 0 && strcmp(tt, "continuous") != 0)
    return sdr_fail("%s: timestep_type \"%s\" is not supported (discrete, continuous)",
                    s->cls->name, tt);
  /* __init__: all training sigmas, largest first, then 0; timesteps T-1 .. 0 */
  int n = s->n_train;
  double *t = malloc(sizeof(double) * (size_t)n);
  float *sg = malloc(sizeof(float) * (size_t)(n + 1));
  if (!t || !sg) {
    free(t), free(sg);
    return sdr_fail("%s: out of memory", s->cls->name);
  }
  for (int i = 0; i < n; i++) {
    sg[i] = sched_train_sigma(s, n - 1 - i);
    t[i] = continuous(s) ? 0.25f * sched_torch_logf(sg[i]) : (float)(n - 1 - i);
  }
  sg[n] = 0;
  int rc = sched_set_schedule(s, t, n, SDR_F32, sg, n + 1);
  free(t), free(sg);
  s->num_inference_steps = 0;
  return rc;
}

/* sample / (sigma^2 + 1) ** 0.5 */
int sched_scale_by_sigma(sdr_scheduler *s, sdr_backend *be, sdr_tensor *out,
                         const sdr_tensor *sample, double t) {
  if (s->step_index < 0 && sched_init_step_index(s, t, 0) != 0)
    return -1;
  float sigma = s->sigmas[s->step_index];
  sched_ctx cx = {s, be, NULL};
  return sched_div(&cx, out, sample, sqrtf(sigma * sigma + 1.0f));
}

/* pred_original_sample for v_prediction, shared with Euler ancestral and LMS:
 * model_output * (-sigma / (sigma^2 + 1) ** 0.5) + sample / (sigma^2 + 1). */
int sched_x0_from_v(sched_ctx *cx, sdr_tensor *x0, const sdr_tensor *model_output,
                    const sdr_tensor *sample, float sigma) {
  sdr_tensor t1, t2;
  if (sched_temp(cx, &t1, sample) != 0 || sched_temp(cx, &t2, sample) != 0 ||
      sched_mul(cx, &t1, model_output, -sigma / sqrtf(sigma * sigma + 1.0f)) != 0 ||
      sched_div(cx, &t2, sample, sigma * sigma + 1.0f) != 0)
    return -1;
  return sched_add(cx, x0, &t1, &t2);
}

int sched_euler_begin(sdr_scheduler *s, sched_ctx *cx, double t, const sdr_tensor *model_output,
                      sdr_generator *g, float *sigma_hat) {
  if (s->step_index < 0 && sched_init_step_index(s, t, 0) != 0)
    return -1;
  int i = s->step_index;
  if (i + 1 >= s->n_sigmas)
    return sdr_fail("%s.step: no step after the last timestep", s->cls->name);
  sdr_tensor noise;
  if (g && sched_randn(cx, &noise, model_output, g, s->noise_dtype) != 0)
    return -1; /* drawn and unused: gamma is 0 */
  *sigma_hat = s->sigmas[i] * (0.0f + 1.0f);
  return 0;
}

static int euler_step(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *prev_sample,
                      const sdr_tensor *model_output, double t, const sdr_tensor *sample,
                      sdr_generator *g, double eta) {
  (void)eta;
  float sigma_hat;
  sdr_tensor x0, d;
  if (sched_euler_begin(s, cx, t, model_output, g, &sigma_hat) != 0)
    return -1;
  int i = s->step_index;
  if (sched_temp(cx, &x0, sample) != 0 || sched_temp(cx, &d, sample) != 0)
    return -1;
  switch (s->c.prediction) {
  case SCHED_SAMPLE:
    x0 = *model_output;
    break;
  case SCHED_EPSILON:
    if (sched_mul(cx, &d, model_output, sigma_hat) != 0 || sched_sub(cx, &x0, sample, &d) != 0)
      return -1;
    break;
  case SCHED_V_PREDICTION:
    if (sched_x0_from_v(cx, &x0, model_output, sample, s->sigmas[i]) != 0)
      return -1;
    break;
  }
  return sched_euler_update(cx, prev_sample, sample, &x0, &d, sigma_hat);
}

int sched_euler_update(sched_ctx *cx, sdr_tensor *prev_sample, const sdr_tensor *sample,
                       const sdr_tensor *x0, sdr_tensor *d, float sigma_hat) {
  sdr_scheduler *s = cx->s;
  /* derivative = (sample - x0) / sigma_hat; prev = sample + derivative * dt */
  float dt = s->sigmas[s->step_index + 1] - sigma_hat;
  if (sched_emit_x0(cx, x0) != 0 || sched_sub(cx, d, sample, x0) != 0 ||
      sched_div(cx, d, d, sigma_hat) != 0 || sched_mul(cx, d, d, dt) != 0)
    return -1;
  s->step_index++;
  return sched_add(cx, prev_sample, sample, d);
}

const sched_class sched_euler_class = {
    .name = "EulerDiscreteScheduler",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .has_begin_index = 1,
    .pred_original = 1,
    .sigma_noise = 1,
    .init = euler_init,
    .set_timesteps = euler_set_timesteps,
    .scale_model_input = sched_scale_by_sigma,
    .step = euler_step,
    .add_noise = sched_add_noise_sigmas,
};

/* engine/scheduler_edm.c — what diffusers 0.27.2's two EDM schedulers share
 * (scheduling_edm_euler.py, scheduling_edm_dpmsolver_multistep.py): Karras et al.'s
 * (2022) preconditioning and their rho schedule of sigmas.
 *
 * These classes have no betas: the noise levels are sigma_max ... sigma_min spaced
 * evenly in sigma ** (1 / rho), the model sees the sample scaled by c_in and a
 * "timestep" that is 0.25 * log(sigma), and its output becomes the denoised sample
 * c_skip * sample + c_out * output. Each coefficient is computed as torch computes it on
 * a 0-d float32 tensor and a Python float: `x / tensor` is torch's reciprocal times x,
 * `tensor ** 0.5` its square root.
 */
#include <math.h>
#include <stdlib.h>

#include "engine/error.h" // sdr_fail
#include "engine/scheduler_internal.h"

static int check_sigmas(const sdr_scheduler *s) {
  const sched_config *c = &s->c;
  if (!(c->sigma_min > 0) || !(c->sigma_max > c->sigma_min) || !isfinite(c->sigma_max))
    return sdr_fail("%s: sigma_min (%g) and sigma_max (%g) must satisfy 0 < sigma_min < "
                    "sigma_max",
                    s->cls->name, c->sigma_min, c->sigma_max);
  if (!(c->sigma_data > 0) || !isfinite(c->sigma_data))
    return sdr_fail("%s: sigma_data is %g, expected a positive number", s->cls->name,
                    c->sigma_data);
  if (!(c->rho > 0) || !isfinite(c->rho))
    return sdr_fail("%s: rho is %g, expected a positive number", s->cls->name, c->rho);
  return 0;
}

int sched_edm_init(sdr_scheduler *s) {
  if (sched_parse_prediction(s, 1u << SCHED_EPSILON | 1u << SCHED_V_PREDICTION) != 0 ||
      check_sigmas(s) != 0)
    return -1;
  const sched_config *c = &s->c;
  int n = (int)c->num_train_timesteps;
  s->n_train = n;
  double *t = malloc(sizeof(double) * (size_t)n);
  float *sg = malloc(sizeof(float) * (size_t)(n + 1));
  if (!t || !sg) {
    free(t), free(sg);
    return sdr_fail("%s: out of memory", s->cls->name);
  }
  /* torch.linspace(0, 1, T) in float32, and the schedule on that tensor: each Python
   * float operand rounded to float32 */
  sched_torch_linspace_f32(sg, 0, 1, n);
  double lo = pow(c->sigma_min, 1 / c->rho), hi = pow(c->sigma_max, 1 / c->rho);
  float span = (float)(lo - hi), start = (float)hi;
  for (int i = 0; i < n; i++) {
    sg[i] = powf(start + sg[i] * span, (float)c->rho);
    t[i] = 0.25f * sched_torch_logf(sg[i]);
  }
  sg[n] = 0;
  int rc = sched_set_schedule(s, t, n, SDR_F32, sg, n + 1);
  free(t), free(sg);
  s->num_inference_steps = 0;
  return rc;
}

int sched_edm_set_timesteps(sdr_scheduler *s, int n, float last) {
  const sched_config *c = &s->c;
  double *ramp = malloc(sizeof(double) * (size_t)n), *t = malloc(sizeof(double) * (size_t)n);
  float *sg = malloc(sizeof(float) * (size_t)(n + 1));
  if (!ramp || !t || !sg) {
    free(ramp), free(t), free(sg);
    return sdr_fail("%s: out of memory", s->cls->name);
  }
  /* np.linspace(0, 1, n) and the schedule in float64 (numpy's power is the C library's),
   * then float32 */
  sched_np_linspace(ramp, 0, 1, n);
  double lo = pow(c->sigma_min, 1 / c->rho), hi = pow(c->sigma_max, 1 / c->rho);
  for (int i = 0; i < n; i++) {
    sg[i] = (float)pow(hi + ramp[i] * (lo - hi), c->rho);
    t[i] = 0.25f * sched_torch_logf(sg[i]);
  }
  sg[n] = last;
  int rc = sched_set_schedule(s, t, n, SDR_F32, sg, n + 1);
  free(ramp), free(t), free(sg);
  s->num_inference_steps = n;
  return rc;
}

/* sigma^2 + sigma_data^2 on the 0-d tensor */
static float denominator(const sdr_scheduler *s, float sigma) {
  return sigma * sigma + (float)(s->c.sigma_data * s->c.sigma_data);
}

int sched_edm_scale(sdr_scheduler *s, sdr_backend *be, sdr_tensor *out, const sdr_tensor *sample,
                    double t, int last_if_absent) {
  if (s->step_index < 0 && sched_init_step_index(s, t, last_if_absent) != 0)
    return -1;
  float c_in = 1.0f / sqrtf(denominator(s, s->sigmas[s->step_index]));
  sched_ctx cx = {s, be, NULL};
  return sched_mul(&cx, out, sample, c_in);
}

int sched_edm_denoise(sched_ctx *cx, sdr_tensor *out, const sdr_tensor *sample,
                      const sdr_tensor *model_output, float sigma) {
  const sdr_scheduler *s = cx->s;
  float d = denominator(s, sigma);
  float c_skip = (1.0f / d) * (float)(s->c.sigma_data * s->c.sigma_data);
  float signed_sigma = s->c.prediction == SCHED_V_PREDICTION ? -sigma : sigma;
  float c_out = signed_sigma * (float)s->c.sigma_data / sqrtf(d);
  const float c[2] = {c_skip, c_out};
  const int sign[2] = {1, 1};
  const sdr_tensor *x[2] = {sample, model_output};
  return sched_combine(cx, out, 2, c, sign, x);
}

sched_point sched_edm_point(float sigma) {
  return (sched_point){1.0f, sigma, 0.0f - sched_torch_logf(sigma)};
}

double sched_edm_init_noise_sigma(const sdr_scheduler *s) {
  return pow(s->c.sigma_max * s->c.sigma_max + 1, 0.5);
}

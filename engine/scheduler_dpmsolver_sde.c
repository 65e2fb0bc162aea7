/* engine/scheduler_dpmsolver_sde.c — DPMSolverSDEScheduler (diffusers 0.27.2
 * schedulers/scheduling_dpmsolver_sde.py): the stochastic DPM-Solver++ sampler ("DPM++
 * SDE") of k-diffusion, a second-order step in log-sigma with ancestral noise.
 *
 * As with Heun's and KDPM2's, each step is two calls of step(), one model call each: the
 * first moves half-way in t = -log(sigma) to a midpoint, whose fractional timestep sits
 * between the steps' own; the second steps from the kept sample to the next sigma with
 * the midpoint's prediction. Both add noise of sigma_up from a Brownian tree over
 * [min sigma, max sigma] (engine/brownian_tree.c), made at a run's first step with a seed
 * from the config's noise_sampler_seed or else torch.randint(0, 2**63 - 1) on torch's
 * default CPU generator: a run after torch.manual_seed(s) draws what diffusers draws.
 * The last step (to sigma 0) is one Euler call without noise.
 */
#include <math.h>
#include <stdlib.h>

#include "engine/error.h" // sdr_fail
#include "engine/scheduler_internal.h"

static const sched_param params[] = {
    {"num_train_timesteps", SCHED_P_INT, 1000, NULL},
    {"beta_start", SCHED_P_NUMBER, 0.00085, NULL},
    {"beta_end", SCHED_P_NUMBER, 0.012, NULL},
    {"beta_schedule", SCHED_P_STRING, 0, "linear"},
    {"trained_betas", SCHED_P_LIST_OR_NULL, 0, NULL},
    {"prediction_type", SCHED_P_STRING, 0, "epsilon"},
    {"use_karras_sigmas", SCHED_P_BOOL, 0, NULL},
    {"noise_sampler_seed", SCHED_P_NUMBER_OR_NULL, 0, NULL},
    {"timestep_spacing", SCHED_P_STRING, 0, "linspace"},
    {"steps_offset", SCHED_P_INT, 0, NULL},
};

/* set_timesteps: the spacing's timesteps in float64, the training sigmas interpolated at
 * them (or Karras's with their timesteps taken back), each pair's midpoint in -log(sigma)
 * with its timestep; sigmas [s0, s1, s1, ..., 0] and timesteps [t0, m0, t1, m1, ...]. */
static int sde_set_timesteps(sdr_scheduler *s, int n) {
  int cap = n + 1; /* trailing spacing can give n + 1 */
  double *t = malloc(sizeof(double) * (size_t)cap * 5);
  float *train = malloc(sizeof(float) * (size_t)s->n_train);
  float *sg = malloc(sizeof(float) * (size_t)cap * 2);
  if (!t || !train || !sg) {
    free(t), free(train), free(sg);
    return sdr_fail("%s: out of memory", s->cls->name);
  }
  double *sd = t + cap, *all = t + 2 * cap; /* all: 2 * cap timesteps */
  int m = sched_common_timesteps(s, n, t);
  for (int i = 0; i < s->n_train; i++)
    train[i] = sched_train_sigma(s, i);
  for (int i = 0; i < m; i++)
    sd[i] = sched_np_interp(t[i], train, s->n_train);
  if (s->c.use_karras_sigmas) { /* sigma_min and sigma_max from the sigmas, not the config */
    sched_karras(sd, sd[m - 1], sd[0], n);
    m = n;
    for (int i = 0; i < m; i++)
      t[i] = sched_sigma_to_t(s, sd[i]);
  }
  int nt = 0, ns = 0;
  for (int i = 0; i < m; i++) {
    if (i > 0) {
      /* _second_order_timesteps: t = -log(sigma), halfway, back to sigma, to a timestep */
      double a = -log(sd[i - 1]), b = -log(sd[i]);
      all[nt++] = sched_sigma_to_t(s, exp(-(a + (b - a) * 0.5)));
      sg[ns++] = (float)sd[i];
    }
    all[nt++] = t[i];
    sg[ns++] = (float)sd[i];
  }
  sg[ns++] = 0;
  int rc = sched_set_schedule(s, all, nt, SDR_F64, sg, ns);
  free(t), free(train), free(sg);
  s->num_inference_steps = n;
  return rc;
}

static int sde_init(sdr_scheduler *s) {
  if (sched_parse_common(s, 1u << SCHED_EPSILON | 1u << SCHED_V_PREDICTION) != 0)
    return -1;
  double seed = s->c.noise_sampler_seed;
  if (!isnan(seed) && !(seed >= 0 && seed <= 9007199254740992.0 && seed == floor(seed)))
    return sdr_fail("%s: noise_sampler_seed must be null or a whole number from 0 to 2^53, "
                    "not %g",
                    s->cls->name, seed);
  return sde_set_timesteps(s, s->n_train);
}

/* sample / (sigma^2 + 1) ** 0.5, sigma the midpoint's in a pair's second half. */
static int sde_scale(sdr_scheduler *s, sdr_backend *be, sdr_tensor *out, const sdr_tensor *sample,
                     double t) {
  if (s->step_index < 0 && sched_init_step_index(s, t, 0) != 0)
    return -1;
  float sigma = s->heun_second ? s->mid_point_sigma : s->sigmas[s->step_index];
  sched_ctx cx = {s, be, NULL};
  return sched_div(&cx, out, sample, sqrtf(sigma * sigma + 1.0f));
}

static float sigma_fn(float t) { return sched_torch_expf(-t); }
static float t_fn(float sigma) { return -sched_torch_logf(sigma); }

/* BrownianTreeNoiseSampler(sample, min sigma > 0, max sigma, seed), made at a run's first
 * step: the tree's generators are the sample's device's, drawing in its dtype. */
static int make_noise_sampler(sdr_scheduler *s, sched_ctx *cx, sdr_generator *g) {
  float lo = INFINITY, hi = -INFINITY;
  for (int i = 0; i < s->n_sigmas; i++) {
    if (s->sigmas[i] > 0 && s->sigmas[i] < lo)
      lo = s->sigmas[i];
    if (s->sigmas[i] > hi)
      hi = s->sigmas[i];
  }
  uint64_t seed;
  if (!isnan(s->c.noise_sampler_seed)) {
    seed = (uint64_t)s->c.noise_sampler_seed;
  } else if (s->default_generator) {
    seed = sdr_generator_randint63(s->default_generator);
  } else {
    return sdr_fail("%s.step: no default generator to draw the noise sampler's seed from",
                    s->cls->name);
  }
  const int on_gpu = cx->be->device != SDR_DEVICE_CPU;
  const sdr_cuda_geometry *geometry = g && g->device == SDR_GENERATOR_CUDA ? &g->geometry : NULL;
  /* equal ends (a one-step run, whose only step is Euler's) make a tree never asked */
  if (sdr_brownian_tree_init(&s->noise_sampler, lo, hi, seed,
                             on_gpu ? SDR_GENERATOR_CUDA : SDR_GENERATOR_CPU, geometry,
                             s->noise_dtype) != 0)
    return -1;
  s->has_noise_sampler = 1;
  return 0;
}

/* noise_sampler(sigma_from, sigma_to) * sigma_up added to out: the tree's increment over
 * [sigma_to, sigma_from], negated (the times came in falling order), over
 * |sigma_to - sigma_from| ** 0.5. */
static int add_noise_up(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *out, float from, float to,
                        float sigma_up) {
  sdr_tensor w;
  if (sched_temp(cx, &w, out) != 0)
    return -1;
  int rising = from < to;
  if (sdr_brownian_tree_increment(&s->noise_sampler, cx->be, cx->arena, &w, rising ? from : to,
                                  rising ? to : from) != 0)
    return sdr_fail_prefix("%s.step: ", s->cls->name);
  return (!rising && sched_mul(cx, &w, &w, -1.0f)) ||
         sched_div(cx, &w, &w, sqrtf(fabsf(to - from))) || sched_mul(cx, &w, &w, sigma_up) ||
         sched_add(cx, out, out, &w);
}

static int sde_step(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *prev_sample,
                    const sdr_tensor *model_output, double t, const sdr_tensor *sample,
                    sdr_generator *g, double eta) {
  (void)eta;
  int first = sched_pair_half(s, t, 1), i = s->step_index;
  if (first < 0)
    return -1;
  if (!s->has_noise_sampler && make_noise_sampler(s, cx, g) != 0)
    return -1;
  float sigma = first ? s->sigmas[i] : s->sigmas[i - 1];
  float sigma_next = first ? s->sigmas[i + 1] : s->sigmas[i];
  float tt = t_fn(sigma), t_next = t_fn(sigma_next);
  float t_proposed = tt + (t_next - tt) * 0.5f;
  float sigma_input = first ? sigma : sigma_fn(t_proposed);
  sdr_tensor x0, d, kept;
  if (sched_temp(cx, &x0, sample) != 0 || sched_temp(cx, &d, sample) != 0)
    return -1;
  if (s->c.prediction == SCHED_EPSILON) { /* sample - sigma_input * model_output */
    if (sched_mul(cx, &d, model_output, sigma_input) != 0 || sched_sub(cx, &x0, sample, &d) != 0)
      return -1;
  } else if (sched_x0_from_v(cx, &x0, model_output, sample, sigma_input) != 0) {
    return -1;
  }
  s->step_index++;
  if (sigma_next == 0) { /* Euler: sample + (sample - x0) / sigma * (0 - sigma) */
    return sched_sub(cx, &d, sample, &x0) || sched_div(cx, &d, &d, sigma) ||
           sched_mul(cx, &d, &d, sigma_next - sigma) || sched_add(cx, prev_sample, sample, &d);
  }
  if (sched_slot(cx, SCHED_SLOT_CUR_SAMPLE, sample, &kept) != 0)
    return -1;
  if (first) {
    t_next = t_proposed;
    if (sched_copy(cx, &kept, sample) != 0)
      return -1;
  }
  float sigma_from = sigma_fn(tt), sigma_to = sigma_fn(t_next);
  float up2 = sigma_to * sigma_to * (sigma_from * sigma_from - sigma_to * sigma_to) /
              (sigma_from * sigma_from);
  float sigma_up = sqrtf(up2) < sigma_to ? sqrtf(up2) : sigma_to; /* Python's min */
  float sigma_down = sqrtf(sigma_to * sigma_to - sigma_up * sigma_up);
  float ancestral_t = t_fn(sigma_down);
  /* (sigma_fn(ancestral_t) / sigma_fn(t)) * sample - expm1(t - ancestral_t) * x0 */
  if (sched_mul(cx, &d, &kept, sigma_fn(ancestral_t) / sigma_fn(tt)) != 0 ||
      sched_mul(cx, &x0, &x0, sched_torch_expm1f(tt - ancestral_t)) != 0 ||
      sched_sub(cx, prev_sample, &d, &x0) != 0 ||
      add_noise_up(s, cx, prev_sample, sigma_from, sigma_to, sigma_up) != 0)
    return -1;
  s->heun_second = first;
  s->has_cur_sample = first;
  s->mid_point_sigma = first ? sigma_to : 0;
  return 0;
}

const sched_class sched_dpmsolver_sde_class = {
    .name = "DPMSolverSDEScheduler",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .has_begin_index = 1,
    .order = 2,
    .sigma_noise = 1,
    .init = sde_init,
    .set_timesteps = sde_set_timesteps,
    .scale_model_input = sde_scale,
    .step = sde_step,
    .add_noise = sched_add_noise_sigmas,
};

/* engine/scheduler_schedule.c — the numbers a scheduler fixes before any tensor: betas,
 * alphas_cumprod, training sigmas, and the pieces of set_timesteps the classes share
 * (numpy's linspace, arange, interp and rounding; Karras sigmas; _sigma_to_t).
 *
 * Each function imitates the library call diffusers makes at that point, with its
 * arithmetic type: torch float32 for betas and alphas, numpy float64 for timesteps
 * and interpolated sigmas.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"        // sdr_fail
#include "engine/model_config.h" // sdr_json, sdr_json_number_opt
#include "engine/scheduler_internal.h"

#include <cjson/cJSON.h>

/* ---- torch and numpy ranges ---- */

/* torch 1.13's linspace_kernel (aten/src/ATen/native/cpu/RangeFactoriesKernel.cpp):
 * step = (end - start) / (steps - 1) in float; an element before the middle is
 * start + step*idx, after it end - step*(steps-idx-1), both contracted into an FMA in
 * the AVX2 build; cpu_serial_kernel_vec runs pairs of 8-wide vectors whose first lane
 * is that formula and whose lane i adds i*step (rounded, then added), and the last
 * n % 16 elements one by one. Checked bit for bit against torch on many ranges. */
void sched_torch_linspace_f32(float *out, double start, double end, int n) {
  if (n <= 0)
    return;
  float s = (float)start, e = (float)end;
  if (n == 1) { /* torch fills with start */
    out[0] = s;
    return;
  }
  float step = (e - s) / (float)(n - 1);
  int halfway = n / 2, vec_end = n / 16 * 16;
  for (int idx = 0; idx < n;) {
    float base = idx < halfway ? fmaf(step, (float)idx, s) : fmaf(-step, (float)(n - idx - 1), e);
    if (idx < vec_end) {
      for (int i = 0; i < 8; i++) {
        volatile float lane = (float)i * step; /* rounded before the add, as the vector code */
        out[idx + i] = base + lane;
      }
      idx += 8;
    } else {
      out[idx++] = base;
    }
  }
}

/* numpy.linspace: i * ((stop - start) / (n - 1)) + start, the last one set to stop. */
void sched_np_linspace(double *out, double start, double stop, int n) {
  if (n <= 0)
    return;
  double delta = stop - start;
  int div = n - 1;
  if (div == 0) {
    out[0] = 0.0 * delta + start;
    return;
  }
  double step = delta / div;
  for (int i = 0; i < n; i++)
    out[i] = step == 0 ? (double)i / div * delta + start : (double)i * step + start;
  out[n - 1] = stop;
}

int sched_np_arange(double *out, int max, double start, double stop, double step) {
  double len = ceil((stop - start) / step);
  int n = len > 0 ? (int)(len < max ? len : max) : 0;
  double delta = (start + step) - start;
  for (int i = 0; i < n; i++)
    out[i] = i == 0 ? start : i == 1 ? start + step : start + i * delta;
  return n;
}

/* numpy.round(x) (decimals 0): half to even, as rint does in the default rounding mode. */
double sched_round(double x) { return nearbyint(x); }

/* numpy's arr_interp (numpy/core/src/multiarray/compiled_base.c) with xp = arange(n). */
double sched_np_interp(double x, const float *fp, int n) {
  if (isnan(x))
    return x;
  if (x < 0)
    return fp[0];
  if (x >= n - 1)
    return fp[n - 1];
  int j = (int)floor(x);
  if ((double)j == x)
    return fp[j];
  double slope = ((double)fp[j + 1] - (double)fp[j]) / (double)((j + 1) - j);
  double r = slope * (x - j) + fp[j];
  if (isnan(r)) {
    r = slope * (x - (j + 1)) + fp[j + 1];
    if (isnan(r) && fp[j] == fp[j + 1])
      r = fp[j];
  }
  return r;
}

/* ---- the training schedule (every class's __init__) ---- */

/* betas_for_alpha_bar with the cosine alpha_bar, in Python floats. */
static double alpha_bar_cosine(double t) {
  double c = cos((t + 0.008) / 1.008 * M_PI / 2);
  return c * c;
}

static int make_betas(const sdr_scheduler *s, float *betas, int n) {
  const sched_config *c = &s->c;
  if (c->trained_betas) {
    int i = 0;
    for (const cJSON *v = c->trained_betas->child; v; v = v->next, i++) {
      if (!cJSON_IsNumber(v))
        return sdr_fail("%s: trained_betas[%d] is not a number", s->cls->name, i);
      betas[i] = (float)v->valuedouble;
    }
    return 0;
  }
  if (strcmp(c->beta_schedule, "linear") == 0) {
    sched_torch_linspace_f32(betas, c->beta_start, c->beta_end, n);
  } else if (strcmp(c->beta_schedule, "scaled_linear") == 0) {
    sched_torch_linspace_f32(betas, pow(c->beta_start, 0.5), pow(c->beta_end, 0.5), n);
    for (int i = 0; i < n; i++)
      betas[i] = betas[i] * betas[i]; /* ** 2 is a square in torch */
  } else if (strcmp(c->beta_schedule, "squaredcos_cap_v2") == 0) {
    for (int i = 0; i < n; i++) {
      double t1 = (double)i / n, t2 = (double)(i + 1) / n;
      double b = 1 - alpha_bar_cosine(t2) / alpha_bar_cosine(t1);
      betas[i] = (float)(b < 0.999 ? b : 0.999);
    }
  } else {
    return sdr_fail("%s: beta_schedule \"%s\" is not supported (linear, scaled_linear, "
                    "squaredcos_cap_v2)",
                    s->cls->name, c->beta_schedule);
  }
  return 0;
}

/* torch.cumprod on the CPU accumulates in double and stores each product as float. */
static void cumprod_f32(float *out, const float *x, int n) {
  double acc = 1.0;
  for (int i = 0; i < n; i++) {
    acc *= x[i];
    out[i] = (float)acc;
  }
}

/* rescale_zero_terminal_snr (arXiv 2305.08891, Algorithm 1), in float32 like torch. */
static int rescale_zero_terminal_snr(float *betas, int n) {
  float *a = n >= 2 ? malloc(sizeof(float) * (size_t)n * 2) : NULL;
  if (!a)
    return -1;
  float *sq = a + n;
  for (int i = 0; i < n; i++)
    a[i] = 1.0f - betas[i];
  cumprod_f32(sq, a, n);
  for (int i = 0; i < n; i++)
    sq[i] = sqrtf(sq[i]);
  float s0 = sq[0], sT = sq[n - 1];
  float scale = s0 / (s0 - sT);
  for (int i = 0; i < n; i++) {
    sq[i] = sq[i] - sT;
    sq[i] = sq[i] * scale;
    sq[i] = sq[i] * sq[i]; /* alphas_bar */
  }
  for (int i = n - 1; i >= 1; i--)
    betas[i] = 1.0f - sq[i] / sq[i - 1];
  betas[0] = 1.0f - sq[0];
  free(a);
  return 0;
}

int sched_make_alphas_cumprod(sdr_scheduler *s) {
  const sched_config *c = &s->c;
  int n = (int)c->num_train_timesteps;
  if (c->trained_betas) {
    int len = cJSON_GetArraySize(c->trained_betas);
    if (len != n)
      return sdr_fail("%s: trained_betas has %d values but num_train_timesteps is %d", s->cls->name,
                      len, n);
  }
  float *betas = malloc(sizeof(float) * (size_t)n);
  float *ac = malloc(sizeof(float) * (size_t)n);
  float *ls = malloc(sizeof(float) * (size_t)n);
  if (!betas || !ac || !ls) {
    free(betas), free(ac), free(ls);
    return sdr_fail("%s: out of memory", s->cls->name);
  }
  if (make_betas(s, betas, n) != 0) {
    free(betas), free(ac), free(ls);
    return -1;
  }
  /* DDIM (and its inverse), Euler, Euler ancestral, DPM and DDPM know rescale_betas_zero_snr; the
   * others never read it (their config has no such key). */
  if (c->rescale_betas_zero_snr && rescale_zero_terminal_snr(betas, n) != 0) {
    free(betas), free(ac), free(ls);
    return sdr_fail("%s: out of memory", s->cls->name);
  }
  for (int i = 0; i < n; i++)
    betas[i] = 1.0f - betas[i]; /* alphas */
  cumprod_f32(ac, betas, n);
  /* Euler, Euler ancestral and DPM keep the last alpha off zero (infinite sigma) this way;
   * DDIM (and its inverse), DDPM, LCM and TCD, which never divide by it in a sigma, keep
   * the zero. */
  if (c->rescale_betas_zero_snr && s->kind != SDR_SCHED_DDIM && s->kind != SDR_SCHED_DDPM &&
      s->kind != SDR_SCHED_LCM && s->kind != SDR_SCHED_TCD && s->kind != SDR_SCHED_DDIM_INVERSE)
    ac[n - 1] = 0x1p-24f;
  free(betas);
  free(s->alphas_cumprod);
  free(s->log_sigmas);
  s->alphas_cumprod = ac;
  s->n_train = n;
  s->final_alpha_cumprod = c->set_alpha_to_one ? 1.0f : ac[0];
  /* np.log of the float32 sigmas, with numpy's own float32 log */
  for (int i = 0; i < n; i++)
    ls[i] = sched_numpy_logf(sched_train_sigma(s, i));
  s->log_sigmas = ls;
  return 0;
}

float sched_train_sigma(const sdr_scheduler *s, int i) {
  float a = s->alphas_cumprod[i];
  return sqrtf((1.0f - a) / a);
}

/* ---- set_timesteps' shared pieces ---- */

/* The schedule PNDM, DDIM, LMS, Euler and Euler ancestral compute, largest first:
 * linspace values unrounded (each class rounds or casts as it does), leading and
 * trailing ones integral. numpy's arange can give one value more than asked for with
 * trailing spacing (1000 / 61 steps): out has room for n + 1. */
int sched_common_timesteps(const sdr_scheduler *s, int n, double *out) {
  long long T = s->c.num_train_timesteps;
  switch (s->c.spacing) {
  case SCHED_LINSPACE: {
    sched_np_linspace(out, 0, (double)(T - 1), n);
    for (int i = 0; i < n / 2; i++) { /* [::-1] */
      double x = out[i];
      out[i] = out[n - 1 - i];
      out[n - 1 - i] = x;
    }
    return n;
  }
  case SCHED_LEADING: {
    long long ratio = T / n;
    for (int i = 0; i < n; i++)
      out[i] = (double)((long long)(n - 1 - i) * ratio + s->c.steps_offset);
    return n;
  }
  case SCHED_TRAILING: {
    double ratio = (double)T / n;
    int m = sched_np_arange(out, n + 1, (double)T, 0, -ratio);
    for (int i = 0; i < m; i++)
      out[i] = sched_round(out[i]) - 1;
    return m;
  }
  }
  return -1;
}

/* _convert_to_karras (Karras et al. 2022, eq. 5) with rho = 7, in numpy float64. */
void sched_karras(double *out, double sigma_min, double sigma_max, int n) {
  const double rho = 7.0;
  double min_inv_rho = pow(sigma_min, 1 / rho), max_inv_rho = pow(sigma_max, 1 / rho);
  sched_np_linspace(out, 0, 1, n); /* ramp */
  for (int i = 0; i < n; i++)
    out[i] = pow(max_inv_rho + out[i] * (min_inv_rho - max_inv_rho), rho);
}

/* _sigma_to_t. numpy's legacy casting keeps the arithmetic with the float32 log_sigmas
 * in float32 (the float64 scalar is cast down): the comparisons, low - log_sigma,
 * low - high and their quotient w; only t = (1 - w) * low_idx + w * high_idx is in
 * float64 (float32 times int64). */
double sched_sigma_to_t(const sdr_scheduler *s, double sigma) {
  const float *ls = s->log_sigmas;
  int n = s->n_train;
  float log_sigma = (float)log(sigma > 1e-10 ? sigma : 1e-10);
  /* argmax of cumsum(dists >= 0): the last index where log_sigma >= log_sigmas[i], 0 if none */
  int low_idx = 0;
  for (int i = 0; i < n; i++)
    if (log_sigma - ls[i] >= 0)
      low_idx = i;
  if (low_idx > n - 2)
    low_idx = n - 2;
  int high_idx = low_idx + 1;
  float low = ls[low_idx], high = ls[high_idx];
  float num = low - log_sigma, den = low - high;
  float w = num / den;
  w = w < 0 ? 0 : w > 1 ? 1 : w;
  float one_minus_w = 1 - w;
  return (double)one_minus_w * low_idx + (double)w * high_idx;
}

int sched_set_schedule(sdr_scheduler *s, const double *timesteps, int n_timesteps,
                       sdr_dtype timesteps_dtype, const float *sigmas, int n_sigmas) {
  double *t = NULL;
  float *sg = NULL;
  if (timesteps && n_timesteps > 0) {
    t = malloc(sizeof(double) * (size_t)n_timesteps);
    if (!t)
      return sdr_fail("%s: out of memory", s->cls->name);
    memcpy(t, timesteps, sizeof(double) * (size_t)n_timesteps);
  }
  if (sigmas && n_sigmas > 0) {
    sg = malloc(sizeof(float) * (size_t)n_sigmas);
    if (!sg) {
      free(t);
      return sdr_fail("%s: out of memory", s->cls->name);
    }
    memcpy(sg, sigmas, sizeof(float) * (size_t)n_sigmas);
  }
  free(s->timesteps);
  free(s->sigmas);
  s->timesteps = t;
  s->n_timesteps = t ? n_timesteps : 0;
  s->timesteps_dtype = timesteps_dtype;
  s->sigmas = sg;
  s->n_sigmas = sg ? n_sigmas : 0;
  return 0;
}

/* ---- counting steps ---- */

/* index_for_timestep: (schedule_timesteps == timestep).nonzero(), the second hit when
 * there are several, so that a run started in the middle (img2img) with a repeated
 * first timestep does not skip a sigma. */
int sched_index_for_timestep(const sdr_scheduler *s, double t) {
  int first = -1;
  for (int i = 0; i < s->n_timesteps; i++) {
    if (s->timesteps[i] == t) {
      if (first >= 0)
        return i;
      first = i;
    }
  }
  return first;
}

int sched_init_step_index(sdr_scheduler *s, double t, int last_if_absent) {
  if (s->begin_index >= 0) {
    s->step_index = s->begin_index;
    return 0;
  }
  int i = sched_index_for_timestep(s, t);
  if (i < 0) {
    if (!last_if_absent)
      return sdr_fail("%s: timestep %g is not one of the scheduler's timesteps", s->cls->name, t);
    i = s->n_timesteps - 1;
  }
  s->step_index = i;
  return 0;
}

/* alphas_cumprod[t] with Python's indexing: an integer, negative ones from the end. */
int sched_alpha_at(const sdr_scheduler *s, double t, float *out) {
  if (t != floor(t) || t >= s->n_train || t < -s->n_train)
    return sdr_fail("%s: timestep %g is not an integer in [0, %d)", s->cls->name, t, s->n_train);
  long long i = (long long)t;
  *out = s->alphas_cumprod[i < 0 ? i + s->n_train : i];
  return 0;
}

void sched_reset_run(sdr_scheduler *s) {
  s->step_index = -1;
  s->begin_index = -1;
  s->heun_second = 0;
  s->counter = 0;
  s->lower_order_nums = 0;
  s->n_hist = 0;
  s->has_cur_sample = 0;
  s->has_cur_model_output = 0;
  s->has_noise_sampler = 0;
}

int sched_init_sigma_schedule(sdr_scheduler *s) {
  sched_config *c = &s->c;
  const char *name = s->cls->name;
  /* _convert_to_karras looks for sigma_min / sigma_max anywhere in the config, also
   * among the keys it keeps for other classes (an Euler config's). */
  char path[96];
  snprintf(path, sizeof path, "%s config", name);
  sdr_json j = {path, s->config};
  if (sdr_json_number_opt(&j, "sigma_min", NAN, &c->sigma_min) != 0 ||
      sdr_json_number_opt(&j, "sigma_max", NAN, &c->sigma_max) != 0)
    return -1;
  /* sigmas of all training steps (ascending, no final zero); timesteps
   * linspace(0, T-1, T) in float32, largest first */
  int n = s->n_train;
  double *t = malloc(sizeof(double) * (size_t)n);
  float *sg = malloc(sizeof(float) * (size_t)n);
  if (!t || !sg) {
    free(t), free(sg);
    return sdr_fail("%s: out of memory", name);
  }
  sched_np_linspace(t, 0, n - 1, n);
  for (int i = 0; i < n / 2; i++) { /* [::-1] */
    double x = t[i];
    t[i] = t[n - 1 - i];
    t[n - 1 - i] = x;
  }
  for (int i = 0; i < n; i++) {
    t[i] = (float)t[i]; /* dtype=np.float32 */
    sg[i] = sched_train_sigma(s, i);
  }
  int rc = sched_set_schedule(s, t, n, SDR_F32, sg, n);
  free(t), free(sg);
  s->num_inference_steps = 0;
  return rc;
}

int sched_spaced_timesteps(const sdr_scheduler *s, int n, long long last, double *t,
                           double *scratch) {
  const sched_config *c = &s->c;
  const long long T = c->num_train_timesteps;
  int m = 0;
  switch (c->spacing) {
  case SCHED_LINSPACE: /* linspace(0, last - 1, n + 1).round()[::-1][:-1] */
    sched_np_linspace(scratch, 0, (double)(last - 1), n + 1);
    for (m = 0; m < n; m++)
      t[m] = sched_round(scratch[n - m]);
    break;
  case SCHED_LEADING: { /* (arange(0, n + 1) * (last // (n + 1))).round()[::-1][:-1] + offset */
    long long ratio = last / (n + 1);
    for (m = 0; m < n; m++)
      t[m] = (double)((long long)(n - m) * ratio + c->steps_offset);
    break;
  }
  case SCHED_TRAILING: /* arange(last, 0, -T / n).round() - 1: n + 1 values for some n */
    m = sched_np_arange(t, n + 1, (double)last, 0, -((double)T / n));
    for (int i = 0; i < m; i++)
      t[i] = sched_round(t[i]) - 1;
    break;
  }
  return m;
}

int sched_solver_set_timesteps(sdr_scheduler *s, int n, long long last, int lu_lambdas,
                               sched_final_sigma final) {
  const sched_config *c = &s->c;
  double *t = malloc(sizeof(double) * (size_t)(n + 2) * 2);
  float *sg = malloc(sizeof(float) * (size_t)(n + 3));
  float *train = malloc(sizeof(float) * (size_t)s->n_train);
  if (!t || !sg || !train) {
    free(t), free(sg), free(train);
    return sdr_fail("%s: out of memory", s->cls->name);
  }
  double *sd = t + n + 2;
  int m = sched_spaced_timesteps(s, n, last, t, sd);
  for (int i = 0; i < s->n_train; i++)
    train[i] = sched_train_sigma(s, i);
  if (c->use_karras_sigmas) {
    double lo = isnan(c->sigma_min) ? train[0] : c->sigma_min;
    double hi = isnan(c->sigma_max) ? train[s->n_train - 1] : c->sigma_max;
    m = n;
    sched_karras(sd, lo, hi, n);
    for (int i = 0; i < m; i++)
      t[i] = sched_round(sched_sigma_to_t(s, sd[i]));
  } else if (lu_lambdas) {
    /* _convert_to_lu: uniform in log-sigma between the ends, rho 1 */
    double lmin = s->log_sigmas[0], lmax = s->log_sigmas[s->n_train - 1];
    m = n;
    sched_np_linspace(sd, 0, 1, n);
    for (int i = 0; i < m; i++) {
      sd[i] = exp(lmax + sd[i] * (lmin - lmax));
      t[i] = sched_round(sched_sigma_to_t(s, sd[i]));
    }
  } else {
    for (int i = 0; i < m; i++)
      sd[i] = sched_np_interp(t[i], train, s->n_train);
  }
  for (int i = 0; i < m; i++)
    sg[i] = (float)sd[i];
  sg[m] = final == SCHED_FINAL_ZERO ? 0.0f : final == SCHED_FINAL_REPEAT ? sg[m - 1] : train[0];
  int rc = sched_set_schedule(s, t, m, SDR_I64, sg, m + 1);
  free(t), free(sg), free(train);
  s->num_inference_steps = m; /* len(timesteps) */
  return rc;
}

static int rounded_timesteps(sdr_scheduler *s, int n, int rising) {
  double *t = malloc(sizeof(double) * (size_t)(n + 1));
  if (!t)
    return sdr_fail("%s: out of memory", s->cls->name);
  int m = sched_common_timesteps(s, n, t);
  for (int i = 0; i < m; i++)
    t[i] = sched_round(t[i]);
  for (int i = 0; rising && i < m / 2; i++) {
    double x = t[i];
    t[i] = t[m - 1 - i];
    t[m - 1 - i] = x;
  }
  int rc = sched_set_schedule(s, t, m, SDR_I64, NULL, 0);
  free(t);
  s->num_inference_steps = n;
  return rc;
}

int sched_set_rounded_timesteps(sdr_scheduler *s, int n) { return rounded_timesteps(s, n, 0); }

int sched_set_rising_timesteps(sdr_scheduler *s, int n) { return rounded_timesteps(s, n, 1); }

int sched_init_train_timesteps(sdr_scheduler *s, int rising) {
  int n = s->n_train;
  double *t = malloc(sizeof(double) * (size_t)n);
  if (!t)
    return sdr_fail("%s: out of memory", s->cls->name);
  for (int i = 0; i < n; i++)
    t[i] = rising ? i : n - 1 - i;
  int rc = sched_set_schedule(s, t, n, SDR_I64, NULL, 0);
  free(t);
  s->num_inference_steps = 0;
  return rc;
}

int sched_discrete_sigmas(sdr_scheduler *s, int n, int round_karras, double *t, double *sd,
                          sdr_dtype *dtype) {
  float *train = malloc(sizeof(float) * (size_t)s->n_train);
  if (!train)
    return sdr_fail("%s: out of memory", s->cls->name);
  int m = sched_common_timesteps(s, n, t);
  *dtype = SDR_F32;
  for (int i = 0; i < m; i++)
    t[i] = (float)t[i]; /* np.float32 */
  for (int i = 0; i < s->n_train; i++)
    train[i] = sched_train_sigma(s, i);
  for (int i = 0; i < m; i++)
    sd[i] = sched_np_interp(t[i], train, s->n_train);
  free(train);
  if (!s->c.use_karras_sigmas)
    return m;
  /* _convert_to_karras reads sigma_min / sigma_max from the config when any class's
   * config put them there (hasattr on the config, hidden keys included). */
  char path[96];
  snprintf(path, sizeof path, "%s config", s->cls->name);
  sdr_json j = {path, s->config};
  double lo, hi;
  if (sdr_json_number_opt(&j, "sigma_min", NAN, &lo) != 0 ||
      sdr_json_number_opt(&j, "sigma_max", NAN, &hi) != 0)
    return -1;
  lo = isnan(lo) ? sd[m - 1] : lo;
  hi = isnan(hi) ? sd[0] : hi;
  sched_karras(sd, lo, hi, n);
  for (int i = 0; i < n; i++)
    t[i] = round_karras ? sched_round(sched_sigma_to_t(s, sd[i])) : sched_sigma_to_t(s, sd[i]);
  *dtype = SDR_F64; /* np.array of _sigma_to_t's float64 values, never cast down */
  return n;
}

/* engine/scheduler_pndm.c — PNDMScheduler (diffusers 0.27.2 schedulers/scheduling_pndm.py),
 * SD 1.4's own: pseudo numerical methods (Liu et al. 2022), with skip_prk_steps the
 * linear multistep PLMS that SD configs ask for, else four Runge-Kutta steps first.
 *
 * PLMS keeps the model outputs of earlier steps (ets, at most 4) and a counter:
 * call 0 stores the sample; call 1 goes back to it with the mean of both model
 * outputs (the timestep list repeats its second entry for this); from then on
 * Adams–Bashforth of order 2, 3, 4. The counter restarts with set_timesteps, also when
 * img2img starts the list in the middle, as diffusers does.
 */
#include <math.h>
#include <stdlib.h>

#include "engine/error.h" // sdr_fail
#include "engine/scheduler_internal.h"

static const sched_param params[] = {
    {"num_train_timesteps", SCHED_P_INT, 1000, NULL},
    {"beta_start", SCHED_P_NUMBER, 0.0001, NULL},
    {"beta_end", SCHED_P_NUMBER, 0.02, NULL},
    {"beta_schedule", SCHED_P_STRING, 0, "linear"},
    {"trained_betas", SCHED_P_LIST_OR_NULL, 0, NULL},
    {"skip_prk_steps", SCHED_P_BOOL, 0, NULL},
    {"set_alpha_to_one", SCHED_P_BOOL, 0, NULL},
    {"prediction_type", SCHED_P_STRING, 0, "epsilon"},
    {"timestep_spacing", SCHED_P_STRING, 0, "leading"},
    {"steps_offset", SCHED_P_INT, 0, NULL},
};

static int pndm_init(sdr_scheduler *s) {
  if (sched_parse_common(s, 1u << SCHED_EPSILON | 1u << SCHED_V_PREDICTION) != 0)
    return -1;
  s->num_inference_steps = 0; /* timesteps None until set_timesteps */
  return sched_set_schedule(s, NULL, 0, SDR_I64, NULL, 0);
}

static int pndm_set_timesteps(sdr_scheduler *s, int n) {
  double *desc = malloc(sizeof(double) * (size_t)(n + 1) * 2 + 16 * sizeof(double));
  if (!desc)
    return sdr_fail("%s: out of memory", s->cls->name);
  double *ts = desc + n + 1; /* room for n + 13 */
  int m = sched_common_timesteps(s, n, desc), k = 0;
  double *t = m > 0 ? malloc(sizeof(double) * (size_t)m) : NULL; /* _timesteps, ascending */
  if (!t) {
    free(desc);
    return sdr_fail("%s: out of memory", s->cls->name);
  }
  for (int i = 0; i < m; i++)
    t[i] = sched_round(desc[m - 1 - i]);
  if (s->c.skip_prk_steps) {
    /* concat(t[:-1], t[-2:-1], t[-1:])[::-1]: the second timestep twice */
    ts[k++] = t[m - 1];
    if (m >= 2)
      ts[k++] = t[m - 2];
    for (int i = m - 2; i >= 0; i--)
      ts[k++] = t[i];
    s->n_prk = 0;
  } else {
    if (m < 4) {
      free(desc), free(t);
      return sdr_fail("%s: skip_prk_steps=False needs at least 4 inference steps, got %d",
                      s->cls->name, n);
    }
    /* t[-4:].repeat(2) + tile([0, T // n // 2], 4), then [:-1].repeat(2)[1:-1] reversed */
    double half = (double)(s->c.num_train_timesteps / n / 2), p[8];
    for (int i = 0; i < 4; i++) {
      p[2 * i] = t[m - 4 + i];
      p[2 * i + 1] = t[m - 4 + i] + half;
    }
    for (int j = 12; j >= 1; j--)
      ts[k++] = p[j / 2];
    s->n_prk = 12;
    for (int i = m - 4; i >= 0; i--) /* t[:-3][::-1] */
      ts[k++] = t[i];
  }
  int rc = sched_set_schedule(s, ts, k, SDR_I64, NULL, 0);
  free(desc), free(t);
  s->num_inference_steps = n;
  return rc;
}

/* _get_prev_sample: formula (9) of the PNDM paper, every coefficient a float32 0-d tensor. */
static int prev_sample_from(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *out,
                            const sdr_tensor *sample, double t, double prev_t,
                            const sdr_tensor *model_output) {
  float a_t, a_prev = s->final_alpha_cumprod;
  if (sched_alpha_at(s, t, &a_t) != 0 || (prev_t >= 0 && sched_alpha_at(s, prev_t, &a_prev) != 0))
    return -1;
  float b_t = 1.0f - a_t, b_prev = 1.0f - a_prev;
  sdr_tensor mo = *model_output, t1, t2;
  if (sched_temp(cx, &t1, sample) != 0 || sched_temp(cx, &t2, sample) != 0)
    return -1;
  if (s->c.prediction == SCHED_V_PREDICTION) {
    sdr_tensor v;
    if (sched_temp(cx, &v, sample) != 0 || sched_mul(cx, &t1, model_output, sqrtf(a_t)) != 0 ||
        sched_mul(cx, &t2, sample, sqrtf(b_t)) != 0 || sched_add(cx, &v, &t1, &t2) != 0)
      return -1;
    mo = v;
  }
  float sample_coeff = sqrtf(a_prev / a_t);
  float denom = a_t * sqrtf(b_prev) + sqrtf(a_t * b_t * a_prev);
  if (sched_mul(cx, &t1, sample, sample_coeff) != 0 || sched_mul(cx, &t2, &mo, a_prev - a_t) != 0 ||
      sched_div(cx, &t2, &t2, denom) != 0)
    return -1;
  return sched_sub(cx, out, &t1, &t2);
}

/* out = (c0 * h0 - c1 * h1 + c2 * h2 - c3 * h3) / d as diffusers writes each order;
 * `recip` multiplies by 1/24 instead of dividing (order 4). */
static int ets_combination(sched_ctx *cx, sdr_tensor *out, int order, const sdr_tensor *like) {
  static const float coef[5][4] = {{0}, {1}, {3, 1}, {23, 16, 5}, {55, 59, 37, 9}};
  sdr_tensor acc, term;
  if (sched_temp(cx, &acc, like) != 0 || sched_temp(cx, &term, like) != 0)
    return -1;
  if (sched_mul(cx, &acc, sched_hist(cx->s, 0), coef[order][0]) != 0)
    return -1;
  for (int k = 1; k < order; k++) {
    if (sched_mul(cx, &term, sched_hist(cx->s, k), coef[order][k]) != 0)
      return -1;
    /* signs: 3a - b; 23a - 16b + 5c; 55a - 59b + 37c - 9d */
    int minus = k % 2 == 1;
    if ((minus ? sched_sub(cx, &acc, &acc, &term) : sched_add(cx, &acc, &acc, &term)) != 0)
      return -1;
  }
  if (order == 2)
    return sched_div(cx, out, &acc, 2.0f);
  if (order == 3)
    return sched_div(cx, out, &acc, 12.0f);
  return sched_mul(cx, out, &acc, (float)(1.0 / 24)); /* (1 / 24) * (...) */
}

/* step_plms */
static int step_plms(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *prev_sample,
                     const sdr_tensor *model_output, double t, const sdr_tensor *sample) {
  if (!s->c.skip_prk_steps && s->n_hist < 3)
    return sdr_fail("%s.step: the PLMS steps can only run after the Runge-Kutta steps",
                    s->cls->name);
  double ratio = (double)(s->c.num_train_timesteps / s->num_inference_steps);
  double prev_t = t - ratio;
  sdr_tensor slot, m;
  if (s->counter != 1) { /* ets = ets[-3:] + [model_output] */
    if (sched_hist_push(cx, SCHED_HISTORY, model_output, &slot) != 0 ||
        sched_copy(cx, &slot, model_output) != 0)
      return -1;
  } else {
    prev_t = t;
    t = t + ratio;
  }
  if (sched_temp(cx, &m, sample) != 0)
    return -1;
  if (s->n_hist == 1 && s->counter == 0) {
    if (sched_slot(cx, SCHED_SLOT_CUR_SAMPLE, sample, &slot) != 0 ||
        sched_copy(cx, &slot, sample) != 0)
      return -1;
    s->has_cur_sample = 1;
    m = *model_output;
  } else if (s->n_hist == 1 && s->counter == 1) {
    if (!s->has_cur_sample)
      return sdr_fail("%s.step: internal: no stored sample", s->cls->name);
    if (sched_add(cx, &m, model_output, sched_hist(s, 0)) != 0 || sched_div(cx, &m, &m, 2.0f))
      return -1;
    sdr_tensor cur = s->buf.slot[SCHED_SLOT_CUR_SAMPLE];
    s->has_cur_sample = 0; /* the slot keeps its data until the next run overwrites it */
    s->counter++;
    return prev_sample_from(s, cx, prev_sample, &cur, t, prev_t, &m);
  } else if (ets_combination(cx, &m, s->n_hist, sample) != 0) {
    return -1;
  }
  s->counter++;
  return prev_sample_from(s, cx, prev_sample, sample, t, prev_t, &m);
}

/* step_prk: four calls per Runge-Kutta step, weights 1/6, 1/3, 1/3, 1/6. */
static int step_prk(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *prev_sample,
                    const sdr_tensor *model_output, double t, const sdr_tensor *sample) {
  double half = (double)(s->c.num_train_timesteps / s->num_inference_steps / 2);
  double prev_t = t - (s->counter % 2 ? 0 : half);
  t = s->timesteps[s->counter / 4 * 4];
  sdr_tensor cmo, slot, term, m = *model_output;
  if (sched_slot(cx, SCHED_SLOT_CUR_MODEL_OUTPUT, sample, &cmo) != 0 ||
      sched_temp(cx, &term, sample) != 0)
    return -1;
  switch (s->counter % 4) {
  case 0: /* cur_model_output is 0 here: 0 + x is x */
    if (sched_mul(cx, &cmo, model_output, (float)(1.0 / 6)) != 0 ||
        sched_hist_push(cx, SCHED_HISTORY, model_output, &slot) != 0 ||
        sched_copy(cx, &slot, model_output) != 0 ||
        sched_slot(cx, SCHED_SLOT_CUR_SAMPLE, sample, &slot) != 0 ||
        sched_copy(cx, &slot, sample) != 0)
      return -1;
    s->has_cur_model_output = s->has_cur_sample = 1;
    break;
  case 1:
  case 2:
    if (sched_mul(cx, &term, model_output, (float)(1.0 / 3)) != 0 ||
        sched_add(cx, &cmo, &cmo, &term) != 0)
      return -1;
    break;
  case 3:
    if (sched_temp(cx, &m, sample) != 0 ||
        sched_mul(cx, &term, model_output, (float)(1.0 / 6)) != 0 ||
        sched_add(cx, &m, &cmo, &term) != 0)
      return -1;
    s->has_cur_model_output = 0;
    break;
  }
  sdr_tensor cur = s->has_cur_sample ? s->buf.slot[SCHED_SLOT_CUR_SAMPLE] : *sample;
  s->counter++;
  return prev_sample_from(s, cx, prev_sample, &cur, t, prev_t, &m);
}

static int pndm_step(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *prev_sample,
                     const sdr_tensor *model_output, double t, const sdr_tensor *sample,
                     sdr_generator *g, double eta) {
  (void)g, (void)eta;
  if (!s->c.skip_prk_steps && s->counter < s->n_prk)
    return step_prk(s, cx, prev_sample, model_output, t, sample);
  return step_plms(s, cx, prev_sample, model_output, t, sample);
}

const sched_class sched_pndm_class = {
    .name = "PNDMScheduler",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .has_begin_index = 0,
    .init = pndm_init,
    .set_timesteps = pndm_set_timesteps,
    .scale_model_input = NULL,
    .step = pndm_step,
    .add_noise = sched_add_noise_alphas,
};

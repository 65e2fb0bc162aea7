/* engine/scheduler_unipc.c — UniPCMultistepScheduler (diffusers 0.27.2
 * schedulers/scheduling_unipc_multistep.py): UniPC (Zhao et al. 2023), a multistep
 * predictor (UniP) of order 1 to 3 followed, from the second step on, by a corrector
 * (UniC) that refines the previous step's result with the new model output, in its
 * B(h) forms bh1 and bh2, on data (predict_x0) or noise predictions.
 *
 * Like DPM-Solver it keeps converted model outputs and works in log-SNR; unlike it, the
 * weights of the older outputs come from a small linear system R rho = b, which diffusers
 * solves with torch.linalg.solve, and the weighted sum of differences from torch.einsum.
 * Both are written out below as torch computes them on the CPU, so that the run agrees
 * with diffusers' to the bit (see solve() and weighted_sum2()).
 *
 * The schedule is DPM's without its extras: the final sigma is sigma_min (the first
 * training sigma), or with Karras sigmas the last Karras sigma once more, which makes
 * the last step of such a run leave the sample as it is.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h" // sdr_fail
#include "engine/scheduler_internal.h"

#include <cjson/cJSON.h>

static const sched_param params[] = {
    {"num_train_timesteps", SCHED_P_INT, 1000, NULL},
    {"beta_start", SCHED_P_NUMBER, 0.0001, NULL},
    {"beta_end", SCHED_P_NUMBER, 0.02, NULL},
    {"beta_schedule", SCHED_P_STRING, 0, "linear"},
    {"trained_betas", SCHED_P_LIST_OR_NULL, 0, NULL},
    {"solver_order", SCHED_P_INT, 2, NULL},
    {"prediction_type", SCHED_P_STRING, 0, "epsilon"},
    {"thresholding", SCHED_P_BOOL, 0, NULL},
    {"dynamic_thresholding_ratio", SCHED_P_NUMBER, 0.995, NULL},
    {"sample_max_value", SCHED_P_NUMBER, 1.0, NULL},
    {"predict_x0", SCHED_P_BOOL, 1, NULL},
    {"solver_type", SCHED_P_STRING, 0, "bh2"},
    {"lower_order_final", SCHED_P_BOOL, 1, NULL},
    {"disable_corrector", SCHED_P_LIST, 0, NULL},
    {"solver_p", SCHED_P_ANY_OR_NULL, 0, NULL},
    {"use_karras_sigmas", SCHED_P_BOOL, 0, NULL},
    {"timestep_spacing", SCHED_P_STRING, 0, "linspace"},
    {"steps_offset", SCHED_P_INT, 0, NULL},
};

static int bh1(const sdr_scheduler *s) { return strcmp(s->c.solver_type, "bh1") == 0; }

/* ---- __init__ and set_timesteps ---- */

static int unipc_init(sdr_scheduler *s) {
  sched_config *c = &s->c;
  const char *name = s->cls->name;
  if (sched_parse_common(s, 1u << SCHED_EPSILON | 1u << SCHED_V_PREDICTION | 1u << SCHED_SAMPLE) !=
      0)
    return -1;
  /* DPM-Solver's solver types: diffusers registers bh2 in their place */
  static const char *const solvers[] = {"bh1", "bh2", NULL}, *const others[] = {"midpoint", "heun",
                                                                                "logrho", NULL};
  if (sched_config_alias(s, "solver_type", c->solver_type, solvers, others, "bh2") != 0 ||
      sched_check_solver_order(s) != 0)
    return -1;
  if (c->solver_p)
    return sdr_fail("%s: solver_p is not supported (it must be None: UniPC's own predictor)", name);
  /* step_index - 1 in disable_corrector compares numbers (Python's True is 1); anything
   * else in the list would never match, which is more likely a mistake than a wish */
  for (const cJSON *v = c->disable_corrector->child; v; v = v->next)
    if (!cJSON_IsNumber(v) && !cJSON_IsBool(v))
      return sdr_fail("%s: disable_corrector must list step numbers", name);
  return sched_init_sigma_schedule(s);
}

/* set_timesteps: sigmas[-1:] again with Karras sigmas, else sigma_last =
 * ((1 - ac[0]) / ac[0]) ** 0.5, the smallest training sigma. */
static int unipc_set_timesteps(sdr_scheduler *s, int n) {
  return sched_solver_set_timesteps(s, n, s->c.num_train_timesteps, 0,
                                    s->c.use_karras_sigmas ? SCHED_FINAL_REPEAT
                                                           : SCHED_FINAL_TRAIN_MIN);
}

/* ---- small dense algebra as torch does it ---- */

/* A float32 dot product as OpenBLAS's sdot kernel sums a short one: each product rounded
 * to float, the sum kept in double. */
static float sdot(int n, const float *x, int incx, const float *y) {
  double acc = 0.0;
  for (int i = 0; i < n; i++) {
    float p = y[i] * x[i * incx];
    acc += p;
  }
  return (float)acc;
}

/* LAPACK's sgetrf on an n x n column-major matrix (n <= 3), as OpenBLAS computes one this
 * small (getf2_k.c): left-looking, column j first takes the earlier row swaps and the
 * updates from the columns before it, then the largest entry (the first of equals) is the
 * pivot and the entries below it are multiplied by the pivot's reciprocal. piv is
 * 0-based. */
static void lu_factor(float *a, int n, int *piv) {
  for (int j = 0; j < n; j++) {
    float *col = a + j * n;
    for (int i = 0; i < j; i++) {
      float x = col[i];
      col[i] = col[piv[i]];
      col[piv[i]] = x;
    }
    for (int i = 1; i < j; i++) /* the unit-lower solve for the part above the diagonal */
      col[i] -= sdot(i, a + i, n, col);
    for (int r = j; r < n && j > 0; r++) { /* sgemv: the products summed, then subtracted */
      float acc = 0.0f;
      for (int k = 0; k < j; k++)
        acc = acc + a[r + k * n] * col[k];
      col[r] = col[r] - acc;
    }
    int p = j;
    for (int r = j + 1; r < n; r++)
      if (fabsf(col[r]) > fabsf(col[p]))
        p = r;
    piv[j] = p;
    if (col[p] != 0) {
      float inv = 1.0f / col[p];
      for (int k = 0; k <= j && p != j; k++) {
        float x = a[j + k * n];
        a[j + k * n] = a[p + k * n];
        a[p + k * n] = x;
      }
      for (int r = j + 1; r < n; r++)
        col[r] = inv * col[r];
    }
  }
}

/* torch.linalg.solve(A, b) for one right-hand side, A row-major n x n (n <= 3), as torch
 * 1.13 does it on the CPU: a contiguous A (the corrector's R) has A^T factored, which is
 * A's memory read column-major, and is solved with sgetrs("T"); a strided one (the
 * predictor's R[:-1, :-1]) is copied, factored and solved with sgetrs("N"). OpenBLAS's
 * sgetrs runs strsv for one column: dot products for "T", axpy updates for "N", both
 * dividing by the diagonal. Checked bit for bit against torch on 20,000 systems of 2
 * and 3 unknowns, both kinds. */
static void solve(int n, const float *A, int contiguous, const float *b, float *x) {
  float a[9];
  int piv[3];
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      a[i + j * n] = contiguous ? A[j * n + i] : A[i * n + j];
  lu_factor(a, n, piv);
  memcpy(x, b, sizeof(float) * (size_t)n);
  if (contiguous) { /* U^T y = b forward, L^T z = y backward, then the swaps undone */
    for (int i = 0; i < n; i++) {
      if (i > 0)
        x[i] -= sdot(i, a + i * n, 1, x);
      x[i] /= a[i + i * n];
    }
    for (int r = n - 2; r >= 0; r--)
      x[r] -= sdot(n - 1 - r, a + (r + 1) + r * n, 1, x + r + 1);
    for (int i = n - 1; i >= 0; i--) {
      float v = x[i];
      x[i] = x[piv[i]];
      x[piv[i]] = v;
    }
  } else { /* the swaps, L z = P b forward, U x = z backward */
    for (int i = 0; i < n; i++) {
      float v = x[i];
      x[i] = x[piv[i]];
      x[piv[i]] = v;
    }
    for (int i = 0; i < n; i++)
      for (int k = i + 1; k < n; k++)
        x[k] = x[k] + -x[i] * a[k + i * n];
    for (int r = n - 1; r >= 0; r--) {
      x[r] /= a[r + r * n];
      for (int k = 0; k < r; k++)
        x[k] = x[k] + -x[r] * a[k + r * n];
    }
  }
}

/* ---- tensors ---- */

/* out = r0 * d0 + r1 * d1: torch.einsum("k,bkc...->bc...", rhos, D1s) with two terms.
 * einsum contracts with bmm, whose CPU kernel below 400 multiply-adds sums rounded
 * products and above hands the work to BLAS sgemm, which accumulates with FMA:
 * fma(r1, d1, r0 * d0). No backend op fuses a multiply and a tensor add, so that case is
 * computed on the host (order 3 only; a round trip of three latents per step). */
static int weighted_sum2(sched_ctx *cx, sdr_tensor *out, float r0, const sdr_tensor *d0, float r1,
                         const sdr_tensor *d1) {
  size_t n = (size_t)sdr_tensor_numel(out);
  if (2 * n < 400) {
    sdr_tensor t;
    return sched_temp(cx, &t, out) || sched_mul(cx, out, d0, r0) || sched_mul(cx, &t, d1, r1) ||
           sched_add(cx, out, out, &t);
  }
  int on_host = cx->be->device == SDR_DEVICE_CPU;
  float *h = on_host ? NULL : malloc(3 * n * sizeof(float));
  if (!on_host && !h)
    return sdr_fail("%s.step: out of memory", cx->s->cls->name);
  const float *x0 = on_host ? d0->data : h, *x1 = on_host ? d1->data : h + n;
  float *y = on_host ? out->data : h + 2 * n;
  int rc = on_host ? 0
                   : sdr_download(cx->be, h, d0->data, n * sizeof(float)) ||
                         sdr_download(cx->be, h + n, d1->data, n * sizeof(float));
  if (rc == 0) {
    for (size_t i = 0; i < n; i++) {
      float p = r0 * x0[i];
      y[i] = fmaf(r1, x1[i], p);
    }
    if (!on_host)
      rc = sdr_upload(cx->be, out->data, y, n * sizeof(float));
  }
  free(h);
  return rc ? -1 : 0;
}

/* What multistep_uni_p_bh_update and multistep_uni_c_bh_update share: for a step from
 * point s0 to point t with model outputs at s0 (m0) and `order - 1` earlier points,
 *   rks[k] = (lambda_k - lambda_s0) / h, then 1;  D1s[k] = (m_k - m0) / rks[k];
 *   hh = -h (predict_x0) or h;  h_phi_1 = expm1(hh);  B_h = hh (bh1) or expm1(hh);
 *   b[i] = h_phi_k * i! / B_h with h_phi_k = h_phi_{k-1} / hh - 1 / i!;
 *   R = (rks ** 0, rks ** 1, ...) and x_t_ = a * x - c * m0 with the first-order
 * coefficients a and c. Every number rounded as the 0-d float32 tensors round it. */
typedef struct bh_step {
  float hh, h_phi_1, B_h;
  float R[9], b[3]; /* R row-major order x order */
  float a, c;       /* x_t_ = a * x - c * m0 */
  float scale;      /* alpha_t * B_h (predict_x0) or sigma_t * B_h: the weight of the sum */
} bh_step;

static int bh_prepare(sdr_scheduler *s, sched_ctx *cx, bh_step *st, int order, sched_point t,
                      sched_point s0, const int *earlier, sdr_tensor *d1s, const sdr_tensor *like) {
  float h = t.lambda - s0.lambda, rks[3];
  const sdr_tensor *m0 = sched_hist(s, 0);
  for (int k = 1; k < order; k++) {
    sched_point sk = sched_sigma_point(s->sigmas[earlier[k - 1]]);
    rks[k - 1] = (sk.lambda - s0.lambda) / h;
    if (sched_temp(cx, &d1s[k - 1], like) != 0 ||
        sched_sub(cx, &d1s[k - 1], sched_hist(s, k), m0) != 0 ||
        sched_div(cx, &d1s[k - 1], &d1s[k - 1], rks[k - 1]) != 0)
      return -1;
  }
  rks[order - 1] = 1.0f;
  st->hh = s->c.predict_x0 ? -h : h;
  st->h_phi_1 = sched_torch_expm1f(st->hh);
  st->B_h = bh1(s) ? st->hh : sched_torch_expm1f(st->hh);
  float h_phi_k = st->h_phi_1 / st->hh - 1.0f;
  long factorial = 1;
  for (int i = 1; i <= order; i++) {
    for (int k = 0; k < order; k++) /* torch.pow(rks, i - 1): ones, a copy, a square */
      st->R[(i - 1) * order + k] = i == 1 ? 1.0f : i == 2 ? rks[k] : rks[k] * rks[k];
    st->b[i - 1] = h_phi_k * (float)factorial / st->B_h;
    factorial *= i + 1;
    h_phi_k = h_phi_k / st->hh - (float)(1.0 / (double)factorial);
  }
  if (s->c.predict_x0) {
    st->a = t.sigma / s0.sigma, st->c = t.alpha * st->h_phi_1, st->scale = t.alpha * st->B_h;
  } else {
    st->a = t.alpha / s0.alpha, st->c = t.sigma * st->h_phi_1, st->scale = t.sigma * st->B_h;
  }
  return 0;
}

/* x_t_ = a * x - c * m0 into out. */
static int first_order_part(sched_ctx *cx, sdr_tensor *out, const bh_step *st, const sdr_tensor *x,
                            const sdr_tensor *m0) {
  sdr_tensor t;
  return sched_temp(cx, &t, x) || sched_mul(cx, out, x, st->a) || sched_mul(cx, &t, m0, st->c) ||
         sched_sub(cx, out, out, &t);
}

/* multistep_uni_p_bh_update: from the sample at step i (x) to step i + 1, with the
 * converted outputs of this step and order - 1 earlier ones. */
static int uni_p(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *out, const sdr_tensor *x, int order) {
  int i = s->step_index, earlier[2] = {i - 1, i - 2};
  bh_step st;
  sdr_tensor d1s[2], xt, sum;
  if (bh_prepare(s, cx, &st, order, sched_sigma_point(s->sigmas[i + 1]),
                 sched_sigma_point(s->sigmas[i]), earlier, d1s, x) != 0)
    return -1;
  if (order == 1) /* x_t = x_t_; out is not x (the last sample's slot) nor m0 */
    return first_order_part(cx, out, &st, x, sched_hist(s, 0));
  if (sched_temp(cx, &xt, x) != 0 || first_order_part(cx, &xt, &st, x, sched_hist(s, 0)) != 0)
    return -1;
  float rhos[2];
  if (order == 2) {
    rhos[0] = 0.5f; /* the simplified second order */
  } else {
    float R2[4] = {st.R[0], st.R[1], st.R[3], st.R[4]}; /* R[:-1, :-1], a strided view */
    solve(2, R2, 0, st.b, rhos);
  }
  if (sched_temp(cx, &sum, x) != 0)
    return -1;
  if ((order == 2 ? sched_mul(cx, &sum, &d1s[0], rhos[0])
                  : weighted_sum2(cx, &sum, rhos[0], &d1s[0], rhos[1], &d1s[1])) != 0)
    return -1;
  /* x_t = x_t_ - alpha_t * B_h * pred_res */
  return sched_mul(cx, &sum, &sum, st.scale) || sched_sub(cx, out, &xt, &sum);
}

/* multistep_uni_c_bh_update: corrects the sample at step i (this predictor's result from
 * last_sample at step i - 1) with the converted output at step i, model_t; m0 and the
 * earlier outputs are still the history's newest. */
static int uni_c(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *out, const sdr_tensor *model_t,
                 const sdr_tensor *last_sample, int order) {
  int i = s->step_index, earlier[2] = {i - 2, i - 3};
  const sdr_tensor *m0 = sched_hist(s, 0);
  bh_step st;
  sdr_tensor d1s[2], xt, sum, d1t;
  if (bh_prepare(s, cx, &st, order, sched_sigma_point(s->sigmas[i]),
                 sched_sigma_point(s->sigmas[i - 1]), earlier, d1s, model_t) != 0 ||
      sched_temp(cx, &xt, model_t) != 0 || first_order_part(cx, &xt, &st, last_sample, m0) != 0)
    return -1;
  float rhos[3] = {0.5f}; /* order 1: the simplified version */
  if (order > 1)
    solve(order, st.R, 1, st.b, rhos); /* R is contiguous */
  /* corr_res + rhos_c[-1] * D1_t, D1_t = model_t - m0 */
  if (sched_temp(cx, &d1t, model_t) != 0 || sched_sub(cx, &d1t, model_t, m0) != 0 ||
      sched_mul(cx, &d1t, &d1t, rhos[order - 1]) != 0)
    return -1;
  if (order > 1 && (sched_temp(cx, &sum, model_t) ||
                    (order == 2 ? sched_mul(cx, &sum, &d1s[0], rhos[0])
                                : weighted_sum2(cx, &sum, rhos[0], &d1s[0], rhos[1], &d1s[1])) ||
                    sched_add(cx, &d1t, &sum, &d1t)))
    return -1;
  /* x_t = x_t_ - alpha_t * B_h * (...) */
  return sched_mul(cx, &d1t, &d1t, st.scale) || sched_sub(cx, out, &xt, &d1t);
}

static int corrector_disabled(const sdr_scheduler *s, int step) {
  for (const cJSON *v = s->c.disable_corrector->child; v; v = v->next)
    if ((cJSON_IsNumber(v) && v->valuedouble == step) || (cJSON_IsTrue(v) && step == 1) ||
        (cJSON_IsFalse(v) && step == 0))
      return 1;
  return 0;
}

/* step */
static int unipc_step(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *prev_sample,
                      const sdr_tensor *model_output, double t, const sdr_tensor *sample,
                      sdr_generator *g, double eta) {
  (void)g, (void)eta;
  const sched_config *c = &s->c;
  if (sched_multistep_begin(s, t) != 0)
    return -1;
  int i = s->step_index, n = s->n_timesteps;
  int use_corrector = i > 0 && !corrector_disabled(s, i - 1) && s->has_cur_sample;
  sdr_tensor converted, last, slot;
  if (sched_temp(cx, &converted, sample) != 0 ||
      sched_convert_model_output(s, cx, &converted, model_output, sample, s->c.predict_x0) != 0 ||
      sched_slot(cx, SCHED_SLOT_CUR_SAMPLE, sample, &last) != 0)
    return -1;
  /* last_sample becomes the corrected sample (or this one); the corrector reads the old
   * last_sample only before its final subtraction writes the slot */
  if (use_corrector ? uni_c(s, cx, &last, &converted, &last, s->this_order)
                    : sched_copy(cx, &last, sample))
    return -1;
  s->has_cur_sample = 1;
  /* model_outputs shift by one; the newest is the converted output */
  if (sched_hist_push(cx, (int)c->solver_order, sample, &slot) != 0 ||
      sched_copy(cx, &slot, &converted) != 0)
    return -1;
  int order = (int)c->solver_order;
  if (c->lower_order_final && n - i < order)
    order = n - i;
  if (order > s->lower_order_nums + 1) /* warmup */
    order = s->lower_order_nums + 1;
  s->this_order = order;
  if (uni_p(s, cx, prev_sample, &last, order) != 0)
    return -1;
  sched_multistep_end(s);
  return 0;
}

const sched_class sched_unipc_class = {
    .name = "UniPCMultistepScheduler",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .has_begin_index = 1,
    .init = unipc_init,
    .set_timesteps = unipc_set_timesteps,
    .scale_model_input = NULL,
    .step = unipc_step,
    .add_noise = sched_add_noise_alpha_sigma,
};

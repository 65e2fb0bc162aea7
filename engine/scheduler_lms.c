/* engine/scheduler_lms.c — LMSDiscreteScheduler (diffusers 0.27.2
 * schedulers/scheduling_lms_discrete.py): linear multistep over the sigmas (Karras et
 * al. 2022, k-diffusion's sample_lms), up to order 4.
 *
 * Each step integrates the Lagrange basis polynomials of the last sigmas over
 * [sigma_i, sigma_{i+1}]. diffusers does it with scipy.integrate.quad, and evaluates
 * the polynomial on float32 tensors; quad (QUADPACK's dqagse) returns its first
 * 21-point Gauss–Kronrod rule whenever that meets the tolerance, which it does for
 * polynomials of degree 3. So this is dqk21, the integrand in float32 as torch rounds
 * it, and a bisecting fallback for the case the first rule does not converge.
 */
#include <float.h>
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
    {"use_karras_sigmas", SCHED_P_BOOL, 0, NULL},
    {"prediction_type", SCHED_P_STRING, 0, "epsilon"},
    {"timestep_spacing", SCHED_P_STRING, 0, "linspace"},
    {"steps_offset", SCHED_P_INT, 0, NULL},
};

enum { LMS_ORDER = 4 }; /* step's default `order` */

/* ---- set_timesteps ---- */

static int lms_set_timesteps(sdr_scheduler *s, int n) {
  double *t = malloc(sizeof(double) * (size_t)(n + 1) * 2);
  float *sg = malloc(sizeof(float) * (size_t)(n + 2));
  float *train = malloc(sizeof(float) * (size_t)s->n_train);
  if (!t || !sg || !train) {
    free(t), free(sg), free(train);
    return sdr_fail("%s: out of memory", s->cls->name);
  }
  double *sd = t + n + 1;
  int m = sched_common_timesteps(s, n, t);
  for (int i = 0; i < m; i++)
    t[i] = (float)t[i]; /* float32 timesteps (linspace with dtype float32, .astype) */
  for (int i = 0; i < s->n_train; i++)
    train[i] = sched_train_sigma(s, i);
  for (int i = 0; i < m; i++)
    sd[i] = sched_np_interp(t[i], train, s->n_train);
  sdr_dtype tdtype = SDR_F32;
  if (s->c.use_karras_sigmas) {
    /* num_inference_steps sigmas between the interpolated ends; timesteps back from
     * them, left in float64 (LMS does not cast these) */
    double lo = sd[m - 1], hi = sd[0];
    m = n;
    sched_karras(sd, lo, hi, m);
    for (int i = 0; i < m; i++)
      t[i] = sched_sigma_to_t(s, sd[i]);
    tdtype = SDR_F64;
  }
  for (int i = 0; i < m; i++)
    sg[i] = (float)sd[i];
  sg[m] = 0;
  int rc = sched_set_schedule(s, t, m, tdtype, sg, m + 1);
  free(t), free(sg), free(train);
  s->num_inference_steps = n;
  return rc;
}

static int lms_init(sdr_scheduler *s) {
  if (sched_parse_common(s, 1u << SCHED_EPSILON | 1u << SCHED_V_PREDICTION | 1u << SCHED_SAMPLE) !=
      0)
    return -1;
  /* __init__ calls set_timesteps(num_train_timesteps) */
  return lms_set_timesteps(s, s->n_train);
}

/* ---- the integrated coefficients ---- */

typedef struct lms_poly {
  const float *sigmas;
  int order, t, current;
} lms_poly;

/* lms_derivative(tau): prod over k != current of (tau - sigma[t-k]) / (sigma[t-current] -
 * sigma[t-k]), each operation on float32 0-d tensors (tau is cast to float32 first). */
static double lms_derivative(const lms_poly *p, double tau) {
  float prod = 1.0f, x = (float)tau;
  for (int k = 0; k < p->order; k++) {
    if (k == p->current)
      continue;
    float num = x - p->sigmas[p->t - k];
    float den = p->sigmas[p->t - p->current] - p->sigmas[p->t - k];
    float q = num / den;
    prod = prod * q;
  }
  return prod;
}

/* QUADPACK's dqk21: the 21-point Kronrod rule, the 10-point Gauss rule inside it, and
 * the error estimate dqagse judges by. Same nodes, weights and order of sums. */
static const double xgk[11] = {
    0.995657163025808080735527280689003, 0.973906528517171720077964012084452,
    0.930157491355708226001207180059508, 0.865063366688984510732096688423493,
    0.780817726586416897063717578345042, 0.679409568299024406234327365114874,
    0.562757134668604683339000099272694, 0.433395394129247190799265943165784,
    0.294392862701460198131126603103866, 0.148874338981631210884826001129720,
    0.000000000000000000000000000000000};
static const double wgk[11] = {
    0.011694638867371874278064396062192, 0.032558162307964727478818972459390,
    0.054755896574351996031381300244580, 0.075039674810919952767043140916190,
    0.093125454583697605535065465083366, 0.109387158802297641899210590325805,
    0.123491976262065851077208814994838, 0.134709217311473325928054001771707,
    0.142775938577060080797094273138717, 0.147739104901338491374841515972068,
    0.149445554002916905664936468389821};
static const double wg[5] = {
    0.066671344308688137593568809893332, 0.149451349150580593145776339657697,
    0.219086362515982043995534934228163, 0.269266719309996355091226921569469,
    0.295524224714752870173892994651338};

static double dqk21(const lms_poly *p, double a, double b, double *abserr, double *resabs_out,
                    double *resasc_out) {
  double centr = 0.5 * (a + b), hlgth = 0.5 * (b - a), dhlgth = fabs(hlgth);
  double fv1[10], fv2[10];
  double resg = 0.0, fc = lms_derivative(p, centr);
  double resk = wgk[10] * fc, resabs = fabs(resk);
  for (int j = 1; j <= 5; j++) {
    int jtw = 2 * j - 1; /* Fortran's 2*j, 0-based */
    double absc = hlgth * xgk[jtw];
    double f1 = lms_derivative(p, centr - absc), f2 = lms_derivative(p, centr + absc);
    fv1[jtw] = f1, fv2[jtw] = f2;
    double fsum = f1 + f2;
    resg = resg + wg[j - 1] * fsum;
    resk = resk + wgk[jtw] * fsum;
    resabs = resabs + wgk[jtw] * (fabs(f1) + fabs(f2));
  }
  for (int j = 1; j <= 5; j++) {
    int jtwm1 = 2 * j - 2; /* Fortran's 2*j-1, 0-based */
    double absc = hlgth * xgk[jtwm1];
    double f1 = lms_derivative(p, centr - absc), f2 = lms_derivative(p, centr + absc);
    fv1[jtwm1] = f1, fv2[jtwm1] = f2;
    double fsum = f1 + f2;
    resk = resk + wgk[jtwm1] * fsum;
    resabs = resabs + wgk[jtwm1] * (fabs(f1) + fabs(f2));
  }
  double reskh = resk * 0.5;
  double resasc = wgk[10] * fabs(fc - reskh);
  for (int j = 0; j < 10; j++)
    resasc = resasc + wgk[j] * (fabs(fv1[j] - reskh) + fabs(fv2[j] - reskh));
  double result = resk * hlgth;
  resabs = resabs * dhlgth;
  resasc = resasc * dhlgth;
  double err = fabs((resk - resg) * hlgth);
  if (resasc != 0 && err != 0) {
    double r = pow(200 * err / resasc, 1.5);
    err = resasc * (r < 1 ? r : 1);
  }
  if (resabs > DBL_MIN / (50 * DBL_EPSILON)) {
    double floor_err = 50 * DBL_EPSILON * resabs;
    err = err > floor_err ? err : floor_err;
  }
  *abserr = err;
  *resabs_out = resabs;
  *resasc_out = resasc;
  return result;
}

/* Halves the interval until each half meets the tolerance (never needed for the cubic
 * polynomials LMS integrates; it keeps a degenerate case from returning nonsense). */
static double bisect(const lms_poly *p, double a, double b, double epsabs, double epsrel,
                     int depth) {
  double err, resabs, resasc, r = dqk21(p, a, b, &err, &resabs, &resasc);
  double bound = fmax(epsabs, epsrel * fabs(r));
  if (err <= bound || depth >= 30)
    return r;
  double mid = 0.5 * (a + b);
  return bisect(p, a, mid, epsabs / 2, epsrel, depth + 1) +
         bisect(p, mid, b, epsabs / 2, epsrel, depth + 1);
}

/* integrate.quad(lms_derivative, sigmas[t], sigmas[t + 1], epsrel=1e-4): dqagse's
 * first test (it calls dqk21's resabs defabs and its resasc resabs), then the fallback. */
static double lms_coefficient(const sdr_scheduler *s, int order, int t, int current) {
  lms_poly p = {s->sigmas, order, t, current};
  const double epsabs = 1.49e-8, epsrel = 1e-4;
  double a = s->sigmas[t], b = s->sigmas[t + 1];
  double err, defabs, resabs, r = dqk21(&p, a, b, &err, &defabs, &resabs);
  double bound = fmax(epsabs, epsrel * fabs(r));
  int roundoff = err <= 100 * DBL_EPSILON * defabs && err > bound; /* ier = 2: returns */
  if (roundoff || (err <= bound && err != resabs) || err == 0)
    return r;
  return bisect(&p, a, b, epsabs, epsrel, 0);
}

/* ---- scale_model_input and step ---- */

static int lms_step(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *prev_sample,
                    const sdr_tensor *model_output, double t, const sdr_tensor *sample,
                    sdr_generator *g, double eta) {
  (void)g, (void)eta;
  if (s->step_index < 0 && sched_init_step_index(s, t, 0) != 0)
    return -1;
  int i = s->step_index;
  if (i + 1 >= s->n_sigmas)
    return sdr_fail("%s.step: no step after the last timestep", s->cls->name);
  float sigma = s->sigmas[i];
  sdr_tensor x0, t1, t2, d;
  if (sched_temp(cx, &x0, sample) != 0 || sched_temp(cx, &t1, sample) != 0 ||
      sched_temp(cx, &t2, sample) != 0)
    return -1;
  switch (s->c.prediction) {
  case SCHED_EPSILON: /* sample - sigma * model_output */
    if (sched_mul(cx, &t1, model_output, sigma) != 0 || sched_sub(cx, &x0, sample, &t1) != 0)
      return -1;
    break;
  case SCHED_V_PREDICTION:
    if (sched_x0_from_v(cx, &x0, model_output, sample, sigma) != 0)
      return -1;
    break;
  case SCHED_SAMPLE:
    x0 = *model_output;
    break;
  }
  /* derivative = (sample - x0) / sigma, appended to the last LMS_ORDER */
  if (sched_emit_x0(cx, &x0) != 0 || sched_hist_push(cx, LMS_ORDER, sample, &d) != 0 ||
      sched_sub(cx, &d, sample, &x0) != 0 || sched_div(cx, &d, &d, sigma) != 0)
    return -1;
  int order = i + 1 < LMS_ORDER ? i + 1 : LMS_ORDER;
  int terms = order < s->n_hist ? order : s->n_hist; /* zip stops at the shorter */
  /* prev = sample + sum(coeff * derivative for newest first); sum starts at 0 */
  for (int k = 0; k < terms; k++) {
    float c = (float)lms_coefficient(s, order, i, k);
    if (sched_mul(cx, k == 0 ? &t1 : &t2, sched_hist(s, k), c) != 0 ||
        (k > 0 && sched_add(cx, &t1, &t1, &t2) != 0))
      return -1;
  }
  s->step_index++;
  return sched_add(cx, prev_sample, sample, &t1);
}

const sched_class sched_lms_class = {
    .name = "LMSDiscreteScheduler",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .has_begin_index = 1,
    .pred_original = 1,
    .sigma_noise = 1,
    .init = lms_init,
    .set_timesteps = lms_set_timesteps,
    .scale_model_input = sched_scale_by_sigma,
    .step = lms_step,
    .add_noise = sched_add_noise_sigmas,
};

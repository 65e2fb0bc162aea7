/* kernels/cpu/cpu_norm.c — normalisations over rows or groups: group_norm
 * (torch.nn.GroupNorm, optionally followed by diffusers' SiLU), layer_norm
 * (torch.nn.LayerNorm over the last dimension) and softmax (over the last dimension).
 *
 * Statistics are two-pass in double (mean, then the sum of squared deviations),
 * so a large mean next to a small spread costs no accuracy; the biased variance,
 * as torch uses. Outputs are (x - m) * a + b with m the mean rounded to float
 * (x - m is then exact or nearly), a = gamma * rstd, and b = beta - (mean - m) * a
 * folding in what the rounding of m lost. torch's fused x * a + (beta - mean * a)
 * loses relative accuracy when |mean| >> std; this form keeps ~1e-7.
 */
#include <math.h>

#include "kernels/cpu/cpu_internal.h"

int cpu_group_norm(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *gamma,
                   const sdr_tensor *beta, int groups, float eps, int silu) {
  (void)be;
  int64_t B = in->shape[0], C = in->shape[1], S = sdr_tensor_numel(in) / (B * C);
  int64_t cpg = C / groups, tasks = B * groups;
  const float *x = in->data;
  float *y = out->data;
  /* One task per (image, group): 32 or 64 in SD, even work, no shared scratch. */
#pragma omp parallel for schedule(dynamic, 1) if (tasks > 1 && B * C * S > CPU_GRAIN)
  for (int64_t t = 0; t < tasks; t++) {
    int64_t bi = t / groups, g = t % groups, off = (bi * C + g * cpg) * S, n = cpg * S;
    double mean = cpu_sum_f64(x + off, n) / (double)n;
    double var = cpu_sqdev_f64(x + off, n, mean) / (double)n;
    double rstd = 1.0 / sqrt(var + (double)eps);
    float m = (float)mean;
    for (int64_t c = 0; c < cpg; c++) {
      int64_t ch = g * cpg + c;
      double gm = gamma ? cpu_load_float(gamma->data, gamma->dtype, ch) : 1.0;
      double bt = beta ? cpu_load_float(beta->data, beta->dtype, ch) : 0.0;
      double a = gm * rstd;
      cpu_axpb(y + off + c * S, x + off + c * S, S, m, (float)a, (float)(bt - (mean - m) * a),
               silu);
    }
  }
  return 0;
}

int cpu_layer_norm(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *gamma,
                   const sdr_tensor *beta, float eps) {
  int64_t D = in->shape[in->ndim - 1], rows = sdr_tensor_numel(in) / D;
  const float *x = in->data;
  float *y = out->data;
  const float *gf = gamma && gamma->dtype == SDR_F32 ? gamma->data : NULL;
  const float *bf = beta && beta->dtype == SDR_F32 ? beta->data : NULL;
  /* half parameters are widened once into the workspace, not per row */
  float *ws = cpu_state_of(be)->ws;
  if (((gamma && !gf) || (beta && !bf)) && (size_t)(2 * D) <= cpu_ws_floats(be)) {
    if (gamma && !gf)
      cpu_widen(ws, gamma->data, gamma->dtype, D), gf = ws;
    if (beta && !bf)
      cpu_widen(ws + D, beta->data, beta->dtype, D), bf = ws + D;
  }
#pragma omp parallel for schedule(static) if (rows > 1 && rows * D > CPU_GRAIN)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * D;
    float *yr = y + r * D;
    double mean = cpu_sum_f64(xr, D) / (double)D;
    double var = cpu_sqdev_f64(xr, D, mean) / (double)D;
    float rstd = (float)(1.0 / sqrt(var + (double)eps)), m = (float)mean;
    float lost = (float)(mean - m); /* (x - m) - lost: x - mean without m's rounding */
    if ((!gamma || gf) && (!beta || bf)) {
      for (int64_t j = 0; j < D; j++) {
        float v = ((xr[j] - m) - lost) * rstd;
        yr[j] = (gf ? v * gf[j] : v) + (bf ? bf[j] : 0.0f);
      }
    } else { /* half parameters and no room to widen them: element by element */
      for (int64_t j = 0; j < D; j++) {
        float v = ((xr[j] - m) - lost) * rstd;
        float gj = gamma ? cpu_load_float(gamma->data, gamma->dtype, j) : 1.0f;
        float bj = beta ? cpu_load_float(beta->data, beta->dtype, j) : 0.0f;
        yr[j] = v * gj + bj;
      }
    }
  }
  return 0;
}

/* exp(x - max) / sum, torch's stable softmax. */
int cpu_softmax(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in) {
  (void)be;
  int64_t D = in->shape[in->ndim - 1], rows = sdr_tensor_numel(in) / D;
  const float *x = in->data;
  float *y = out->data;
#pragma omp parallel for schedule(static) if (rows > 1 && rows * D > CPU_GRAIN)
  for (int64_t r = 0; r < rows; r++) {
    float m = cpu_max(x + r * D, D);
    float s = cpu_exp_sum(y + r * D, x + r * D, D, 1.0f, m);
    cpu_scale(y + r * D, y + r * D, D, 1.0f / s);
  }
  return 0;
}

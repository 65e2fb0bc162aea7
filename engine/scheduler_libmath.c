/* engine/scheduler_libmath.c — the float32 exp, expm1 and log of torch and numpy, as the
 * scheduler's numbers meet them.
 *
 * torch 1.13 computes torch.exp, torch.expm1 and torch.log of float32 tensors, 0-d ones
 * included, with SLEEF's vector functions (Sleef_expf8_u10, Sleef_expm1f8_u10,
 * Sleef_logf8_u10 in its AVX2 build: vml::vexp, vml::vexpm1 and vml::vlog map them over
 * the data, a partial vector for the tail).
 * They are accurate to 1 ulp but not correctly rounded, and differ from the C
 * library's expf and logf in about one value in ten (exp) and one in two hundred (log);
 * DPM-Solver's and UniPC's log-SNRs and step factors go through them every step. These are
 * SLEEF's algorithms (xexpf, xlogf_u1 with double-float arithmetic) written out with
 * fmaf where the AVX2 code fuses; checked bit for bit against torch on 40,000 values.
 *
 * numpy 1.24 has its own float32 log (a rational approximation in its AVX2 and AVX-512
 * loops), not correctly rounded either: one value in nine differs. _sigma_to_t's
 * log_sigmas go through it, and with them the timesteps of Karras sigmas.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine/scheduler_internal.h"

static float pow2i(int q) {
  uint32_t u = (uint32_t)(q + 0x7f) << 23;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* SLEEF's vldexp2: d * 2^q in two halves, so that q near the limits stays exact. */
static float ldexp2k(float d, int q) { return d * pow2i(q >> 1) * pow2i(q - (q >> 1)); }

float sched_torch_expf(float d) {
  if (isnan(d))
    return d;
  int q =
      (int)nearbyintf(d * 1.442695040888963407359924681001892137426645954152985934135449406931f);
  float s = fmaf((float)q, -0.693145751953125f, d); /* d - q * ln 2, in two parts */
  s = fmaf((float)q, -1.428606765330187045e-06f, s);
  float u = 0.000198527617612853646278381f;
  u = fmaf(u, s, 0.00139304355252534151077271f);
  u = fmaf(u, s, 0.00833336077630519866943359f);
  u = fmaf(u, s, 0.0416664853692054748535156f);
  u = fmaf(u, s, 0.166666671633720397949219f);
  u = fmaf(u, s, 0.5f);
  u = 1.0f + fmaf(s * s, u, s);
  if (d < -104)
    return 0;
  if (d > 100)
    return INFINITY;
  return ldexp2k(u, q);
}

/* ---- double-float arithmetic (SLEEF's df.h, FMA variants) ---- */

typedef struct df {
  float x, y; /* value x + y, |y| <= ulp(x) / 2 */
} df;

static df df_add2_ff(float x, float y) {
  float s = x + y, v = s - x;
  return (df){s, (x - (s - v)) + (y - v)};
}
static df df_add_dd(df x, df y) { /* |x| >= |y| */
  float s = x.x + y.x;
  return (df){s, (((x.x - s) + y.x) + x.y) + y.y};
}
static df df_add_df(df x, float y) { /* |x| >= |y| */
  float s = x.x + y;
  return (df){s, ((x.x - s) + y) + x.y};
}
static df df_mul_df(df x, float y) {
  float s = x.x * y;
  return (df){s, fmaf(x.y, y, fmaf(x.x, y, -s))};
}
static df df_add2_df(df x, float y) {
  float s = x.x + y, v = s - x.x;
  return (df){s, ((x.x - (s - v)) + (y - v)) + x.y};
}
static df df_add2_dd(df x, df y) {
  float s = x.x + y.x, v = s - x.x;
  return (df){s, ((x.x - (s - v)) + (y.x - v)) + (x.y + y.y)};
}
static df df_add_fd(float x, df y) { /* |x| >= |y| */
  float s = x + y.x;
  return (df){s, ((x - s) + y.x) + y.y};
}
static df df_mul_dd(df x, df y) {
  float s = x.x * y.x;
  return (df){s, fmaf(x.x, y.y, fmaf(x.y, y.x, fmaf(x.x, y.x, -s)))};
}
static df df_squ(df x) {
  float s = x.x * x.x;
  return (df){s, fmaf(x.x + x.x, x.y, fmaf(x.x, x.x, -s))};
}
static df df_div(df n, df d) {
  float t = 1.0f / d.x, s = n.x * t;
  float u = fmaf(t, n.x, -s);
  float v = fmaf(-d.y, t, fmaf(-d.x, t, 1.0f));
  return (df){s, fmaf(s, v, fmaf(n.y, t, u))};
}

float sched_torch_logf(float d) {
  float in = d;
  int tiny = d < FLT_MIN;
  if (tiny)
    d = d * ((float)(INT64_C(1) << 32) * (float)(INT64_C(1) << 32));
  uint32_t bits;
  float scaled = d * (1.0f / 0.75f);
  memcpy(&bits, &scaled, sizeof bits);
  int e = (int)((bits >> 23) & 0xff) - 0x7f; /* ilogb of d / 0.75 */
  memcpy(&bits, &d, sizeof bits);
  bits += (uint32_t)(-e) << 23; /* m = d * 2^-e, in [0.75, 1.5) */
  float m;
  memcpy(&m, &bits, sizeof m);
  if (tiny)
    e -= 64;
  df s = df_mul_df((df){0.69314718246459960938f, -1.904654323148236017e-09f}, (float)e);
  df x = df_div(df_add2_ff(-1, m), df_add2_ff(1, m)); /* (m - 1) / (m + 1) */
  float x2 = x.x * x.x;
  float t = 0.3027294874e+0f;
  t = fmaf(t, x2, 0.3996108174e+0f);
  t = fmaf(t, x2, 0.6666694880e+0f);
  s = df_add_dd(s, (df){x.x * 2, x.y * 2});
  s = df_add_df(s, x2 * x.x * t);
  float r = s.x + s.y;
  if (isinf(in) && in > 0)
    r = INFINITY;
  if (in < 0 || isnan(in))
    r = NAN;
  if (in == 0)
    r = -INFINITY;
  return r;
}

/* SLEEF's xexpm1f: expk2f's e^a as a double-float (a degree-7 polynomial of the reduced
 * argument, its low-order terms in double-float), minus 1 before the two halves are
 * added, so that small arguments keep their digits. Checked bit for bit against torch.expm1 on
 * 600,000 values. */
float sched_torch_expm1f(float a) {
  if (isnan(a))
    return a;
  if (a > 88.72283172607421875f)
    return INFINITY;
  if (a < -16.635532333438687426013570f)
    return -1.0f;
  if (a == 0)
    return a; /* -0 stays -0 */
  int q =
      (int)nearbyintf(a * 1.442695040888963407359924681001892137426645954152985934135449406931f);
  df s = df_add2_df((df){a, 0}, (float)q * -0.693145751953125f);
  s = df_add2_df(s, (float)q * -1.428606765330187045e-06f);
  float u = 0.1980960224e-3f;
  u = fmaf(u, s.x, 0.1394256484e-2f);
  u = fmaf(u, s.x, 0.8333456703e-2f);
  u = fmaf(u, s.x, 0.4166637361e-1f);
  df t = df_add2_df(df_mul_df(s, u), 0.166666659414234244790680580464e+0f);
  t = df_add2_df(df_mul_dd(s, t), 0.5f);
  t = df_add2_dd(s, df_mul_dd(df_squ(s), t));
  t = df_add_fd(1.0f, t);
  t.x = ldexp2k(t.x, q);
  t.y = ldexp2k(t.y, q);
  t = df_add2_df(t, -1.0f);
  return t.x + t.y;
}

/* numpy's float32 log (numpy/core/src/umath/loops_exponent_log.dispatch.c.src): the
 * mantissa in [sqrt(1/2), sqrt(2)), log(1 + y) as P(y) / Q(y) of degree 5 by Horner
 * with FMA, plus e * ln 2. Checked bit for bit against numpy on 40,000 values. */
float sched_numpy_logf(float x) {
  if (isnan(x) || x < 0)
    return NAN;
  if (x == 0)
    return -INFINITY;
  if (isinf(x))
    return x;
  int tiny = x < FLT_MIN; /* numpy scales denormals up first */
  if (tiny)
    x = x * 0x1p100f;
  uint32_t b;
  memcpy(&b, &x, sizeof b);
  float e = (float)((int)(b >> 23) - 126) - (tiny ? 100.0f : 0.0f);
  uint32_t mb = (b & 0x007FFFFF) | 0x3F000000; /* mantissa in [0.5, 1) */
  float m;
  memcpy(&m, &mb, sizeof m);
  if (m <= 0.707106781186547524400844362104849039f) {
    m = m + m;
    e = e - 1.0f;
  }
  float y = m - 1.0f;
  float num = fmaf(2.589979117907922693523e-02f, y, 3.808837741388407920751e-01f);
  num = fmaf(num, y, 1.480000633576506585156e+00f);
  num = fmaf(num, y, 2.112677543073053063722e+00f);
  num = fmaf(num, y, 9.999999999999998702752e-01f);
  num = fmaf(num, y, 0.0f);
  float den = fmaf(5.875095403124574342950e-03f, y, 1.546476374983906719538e-01f);
  den = fmaf(den, y, 9.864942958519418960339e-01f);
  den = fmaf(den, y, 2.453006071784736363091e+00f);
  den = fmaf(den, y, 2.612677543073109236779e+00f);
  den = fmaf(den, y, 1.0f);
  return fmaf(e, 0.693147180559945309417232121458176568f, num / den);
}

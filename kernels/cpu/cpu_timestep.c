/* kernels/cpu/cpu_timestep.c — diffusers' get_timestep_embedding (models/embeddings.py),
 * step by step in float32 as torch evaluates it:
 *
 *   half_dim = dim // 2
 *   exponent = -math.log(max_period) * arange(half_dim, float32) / (half_dim - shift)
 *   emb = t[:, None] * exp(exponent)[None, :] * scale
 *   emb = cat([sin(emb), cos(emb)], -1)     (cos first when flip_sin_to_cos)
 *   odd dim: one zero column appended
 *
 * Python numbers meeting a float32 tensor are rounded to float32 first, so each
 * product and quotient below is a float32 operation, as in torch.
 *
 * exp is torch's own: on CPU, torch.exp of a float32 tensor is SLEEF's expf_u10
 * (vectorised, with FMA), which differs from libm's expf by one ulp for about one
 * frequency in ten; multiplied by t near 1000 that becomes 6e-5 in the argument of
 * sin and cos. With the same steps the embedding matches torch 1.13 to 1e-7
 * (sin and cos may still differ in the last bit).
 */
#include <math.h>

#include "kernels/cpu/cpu_internal.h"

/* SLEEF's xexpf (sleefsimdsp.c), one lane. */
static float sleef_expf(float d) {
  float q = rintf(d * 1.442695040888963407359924681001892137f);
  float s = fmaf(q, -0.693145751953125f, d);
  s = fmaf(q, -1.428606765330187045e-06f, s);
  float u = 0.000198527617612853646278381f;
  u = fmaf(u, s, 0.00139304355252534151077271f);
  u = fmaf(u, s, 0.00833336077630519866943359f);
  u = fmaf(u, s, 0.0416664853692054748535156f);
  u = fmaf(u, s, 0.166666671633720397949219f);
  u = fmaf(u, s, 0.5f);
  u = 1.0f + fmaf(s * s, u, s);
  u = ldexpf(u, (int)q);
  if (d < -104.0f)
    u = 0.0f;
  if (d > 100.0f)
    u = INFINITY;
  return isnan(d) ? d : u;
}

int cpu_timestep_embedding(sdr_backend *be, sdr_tensor *out, const sdr_tensor *t, int dim,
                           int flip_sin_to_cos, float downscale_freq_shift, float scale,
                           int max_period) {
  (void)be;
  int64_t B = t->shape[0], half = dim / 2;
  const float *ts = t->data;
  float *y = out->data;
  float neg_log = (float)-log((double)max_period);
  float denom = (float)((double)half - (double)downscale_freq_shift);
  for (int64_t b = 0; b < B; b++) {
    float *row = y + b * dim;
    for (int64_t i = 0; i < half; i++) {
      float exponent = neg_log * (float)i;
      exponent = exponent / denom;
      float arg = ts[b] * sleef_expf(exponent);
      arg = scale * arg;
      float s = sinf(arg), c = cosf(arg);
      row[flip_sin_to_cos ? half + i : i] = s;
      row[flip_sin_to_cos ? i : half + i] = c;
    }
    if (dim % 2)
      row[dim - 1] = 0.0f;
  }
  return 0;
}

/* kernels/cuda/cuda_timestep.cu — diffusers' get_timestep_embedding (models/embeddings.py);
 * mirrors kernels/cpu/cpu_timestep.c step by step, in float32 as torch evaluates it:
 *
 *   exponent = -log(max_period) * arange(hd) / (hd - shift)
 *   emb = t[:, None] * exp(exponent)[None, :] * scale
 *   emb = cat([sin(emb), cos(emb)], -1)     (cos first when flip_sin_to_cos)
 *   odd dim: one zero column appended
 *
 * exp is the CPU backend's copy of SLEEF's expf_u10 (torch's CPU exp), with the
 * same fused multiply-adds, so the arguments of sin and cos are the CPU's bit
 * for bit; CUDA's sinf and cosf (accurate versions: no fast math here) are
 * within 2 ulp of the C library's.
 */
#include "kernels/cuda/cuda_internal.h"

/* SLEEF's xexpf (sleefsimdsp.c), one lane: cpu_timestep.c's sleef_expf. */
__device__ static float sleef_expf(float d) {
  float q = rintf(d * 1.442695040888963407359924681001892137f);
  float s = fmaf(q, -0.693145751953125f, d);
  s = fmaf(q, -1.428606765330187045e-06f, s);
  float u = 0.000198527617612853646278381f;
  u = fmaf(u, s, 0.00139304355252534151077271f);
  u = fmaf(u, s, 0.00833336077630519866943359f);
  u = fmaf(u, s, 0.0416664853692054748535156f);
  u = fmaf(u, s, 0.166666671633720397949219f);
  u = fmaf(u, s, 0.5f);
  u = 1.0f + fmaf(__fmul_rn(s, s), u, s);
  u = ldexpf(u, (int)q);
  if (d < -104.0f)
    u = 0.0f;
  if (d > 100.0f)
    u = INFINITY;
  return isnan(d) ? d : u;
}

/* __fmul_rn keeps nvcc from fusing a product into the next addition, which
 * the CPU (plain x86-64, no FMA) never does. */
template <typename T>
__global__ void timestep_kernel(T *y, const float *t, int64_t B, int dim, int flip, float neg_log,
                                float denom, float scale) {
  const int64_t hd = dim / 2;
  GRID_STRIDE(i, B * hd) {
    int64_t b, j;
    idx_divmod(i, hd, &b, &j);
    float exponent = __fmul_rn(neg_log, (float)j);
    exponent = exponent / denom;
    float arg = __fmul_rn(t[b], sleef_expf(exponent));
    arg = __fmul_rn(scale, arg);
    T *row = y + b * dim;
    row[flip ? hd + j : j] = from_f<T>(sinf(arg));
    row[flip ? j : hd + j] = from_f<T>(cosf(arg));
  }
  if (dim % 2) {
    GRID_STRIDE(b, B) { y[b * dim + dim - 1] = from_f<T>(0.0f); }
  }
}

int cuda_timestep_embedding(sdr_backend *be, sdr_tensor *out, const sdr_tensor *t, int dim,
                            int flip_sin_to_cos, float downscale_freq_shift, float scale,
                            int max_period) {
  const char *op = "sdr_timestep_embedding";
  cuda_state *st = cuda_use(be);
  sdr_dtype dt;
  const sdr_tensor *acts[1] = {out};
  if (cuda_act_dtype(op, acts, 1, &dt) < 0)
    return -1;
  int64_t B = t->shape[0], hd = dim / 2;
  float neg_log = (float)-log((double)max_period);
  float denom = (float)((double)hd - (double)downscale_freq_shift);
  int64_t n = B * (hd > 0 ? hd : 1);
  unsigned g = cuda_blocks(st, n, CUDA_THREADS);
  const float *tp = (const float *)t->data;
  if (dt == SDR_F32)
    SDR_LAUNCH(timestep_kernel, g, CUDA_THREADS, 0, st->stream, (float *)out->data, tp, B, dim,
               flip_sin_to_cos, neg_log, denom, scale);
  else if (dt == SDR_F16)
    SDR_LAUNCH(timestep_kernel, g, CUDA_THREADS, 0, st->stream, (__half *)out->data, tp, B, dim,
               flip_sin_to_cos, neg_log, denom, scale);
  else
    SDR_LAUNCH(timestep_kernel, g, CUDA_THREADS, 0, st->stream, (__nv_bfloat16 *)out->data, tp, B,
               dim, flip_sin_to_cos, neg_log, denom, scale);
  CUDA_LAUNCHED(op);
  return 0;
}

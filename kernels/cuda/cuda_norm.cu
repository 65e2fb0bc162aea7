/* kernels/cuda/cuda_norm.cu — group_norm (torch.nn.GroupNorm, with diffusers' SiLU fused
 * after it), layer_norm (torch.nn.LayerNorm over the last dimension) and softmax (over
 * the last dimension); mirrors kernels/cpu/cpu_norm.c.
 *
 * Statistics in double, so that float16 activations and large means cost no
 * accuracy, and the output formed as the CPU forms it: (x - m) * a + b with m
 * the mean rounded to float, a = gamma * rstd and b = beta - (mean - m) * a.
 * The biased variance, as torch.
 *
 * group_norm: a group can hold a million elements (the VAE at 512x512), so
 * each group is cut into pieces, one block each: gn_partial sums (x - s) and
 * (x - s)^2 over a piece (s, the group's first element, keeps the sums small
 * whatever the mean), gn_apply merges the pieces of its group and normalises
 * its own piece. Two reads and one write, in place or not.
 * layer_norm, softmax: one warp per row (rows are 320 to 1280 wide in SD).
 */
#include "kernels/cuda/cuda_internal.h"

__device__ __forceinline__ double warp_sum_d(double v) {
  for (int o = 16; o > 0; o >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_sum_f(float v) {
  for (int o = 16; o > 0; o >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max_f(float v) {
  for (int o = 16; o > 0; o >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/* ---- group_norm ---- */

/* part[g * (splits + 1) + piece] = (sum (x - s), sum (x - s)^2) over the piece;
 * part[g * (splits + 1) + splits].x = s. Block (group, piece). */
template <typename T>
__global__ void gn_partial(double2 *part, const T *x, int64_t n, int splits, int64_t chunk) {
  __shared__ double sh[2][32];
  const int64_t g = blockIdx.x;
  const T *xg = x + g * n;
  const float shift = to_f(xg[0]);
  int64_t lo = blockIdx.y * chunk, hi = lo + chunk < n ? lo + chunk : n;
  double s = 0, ss = 0;
  for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    double d = (double)to_f(xg[i]) - (double)shift;
    s += d;
    ss += d * d;
  }
  s = warp_sum_d(s);
  ss = warp_sum_d(ss);
  int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) {
    sh[0][w] = s;
    sh[1][w] = ss;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    s = ss = 0;
    for (int i = 0; i < (int)(blockDim.x >> 5); i++) {
      s += sh[0][i];
      ss += sh[1][i];
    }
    part[g * (splits + 1) + blockIdx.y] = make_double2(s, ss);
    if (blockIdx.y == 0)
      part[g * (splits + 1) + splits] = make_double2((double)shift, 0.0);
  }
}

/* Block (group, piece): merge the group's sums, then y = (x - m) a_c + b_c, SiLU after
 * when silu. Dynamic shared memory: a_c and b_c for the group's cpg channels. */
template <typename T>
__global__ void gn_apply(T *y, const T *x, const void *gamma, int gdt, const void *beta, int bdt,
                         const double2 *part, int splits, int64_t n, int64_t S, int cpg, int groups,
                         float eps, int silu, int64_t chunk) {
  SDR_DYNAMIC_SHARED(float, ab); /* a[cpg], b[cpg] */
  __shared__ double stat[2];     /* mean, rstd */
  const int64_t g = blockIdx.x;
  if (threadIdx.x == 0) {
    const double2 *pg = part + g * (splits + 1);
    double s = 0, ss = 0;
    for (int i = 0; i < splits; i++) {
      s += pg[i].x;
      ss += pg[i].y;
    }
    double ms = s / (double)n, var = ss / (double)n - ms * ms;
    stat[0] = pg[splits].x + ms;
    stat[1] = 1.0 / sqrt((var > 0 ? var : 0.0) + (double)eps);
  }
  __syncthreads();
  const double mean = stat[0], rstd = stat[1];
  const float m = (float)mean;
  const int64_t c0 = (g % groups) * cpg;
  for (int c = threadIdx.x; c < cpg; c += blockDim.x) {
    double gm = gamma ? (double)ld_param(gamma, gdt, c0 + c) : 1.0;
    double bt = beta ? (double)ld_param(beta, bdt, c0 + c) : 0.0;
    double a = gm * rstd;
    ab[c] = (float)a;
    ab[cpg + c] = (float)(bt - (mean - (double)m) * a);
  }
  __syncthreads();
  const T *xg = x + g * n;
  T *yg = y + g * n;
  int64_t lo = blockIdx.y * chunk, hi = lo + chunk < n ? lo + chunk : n;
  for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    int64_t c, r;
    idx_divmod(i, S, &c, &r);
    float v = (to_f(xg[i]) - m) * ab[c] + ab[cpg + c];
    if (silu)
      v = v / (1.0f + expf(-v));
    yg[i] = from_f<T>(v);
  }
}

template <typename T>
static void launch_gn(cuda_state *st, sdr_tensor *out, const sdr_tensor *in,
                      const sdr_tensor *gamma, const sdr_tensor *beta, int groups, float eps,
                      int silu, int64_t G, int64_t n, int64_t S, int cpg, int splits,
                      int64_t chunk) {
  dim3 grid((unsigned)G, (unsigned)splits);
  SDR_LAUNCH(gn_partial<T>, grid, CUDA_THREADS, 0, st->stream, st->norm_partials,
             (const T *)in->data, n, splits, chunk);
  SDR_LAUNCH(gn_apply<T>, grid, CUDA_THREADS, 2 * cpg * sizeof(float), st->stream, (T *)out->data,
             (const T *)in->data, gamma ? gamma->data : NULL, gamma ? gamma->dtype : 0,
             beta ? beta->data : NULL, beta ? beta->dtype : 0, st->norm_partials, splits, n, S, cpg,
             groups, eps, silu, chunk);
}

int cuda_group_norm(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *gamma,
                    const sdr_tensor *beta, int groups, float eps, int silu) {
  const char *op = "sdr_group_norm";
  cuda_state *st = cuda_use(be);
  sdr_dtype dt;
  const sdr_tensor *acts[2] = {out, in};
  if (cuda_act_dtype(op, acts, 2, &dt) < 0)
    return -1;
  int64_t B = in->shape[0], C = in->shape[1], S = sdr_tensor_numel(in) / (B * C);
  int64_t cpg = C / groups, G = B * groups, n = cpg * S;
  if (cpg * 2 * sizeof(float) > 48 * 1024)
    return sdr_fail("%s: %lld channels per group is more than the CUDA kernel takes (6144)", op,
                    (long long)cpg);
  if (G > 0x7fffffff)
    return sdr_fail("%s: %lld groups in all is more than one launch takes", op, (long long)G);
  /* pieces: enough blocks to fill the GPU twice, none under 4096 elements */
  int64_t splits = (2 * (int64_t)st->sm_count + G - 1) / G, most = (n + 4095) / 4096;
  splits = splits > most ? most : splits;
  splits = splits > 256 ? 256 : splits < 1 ? 1 : splits;
  if (G * (splits + 1) > CUDA_NORM_PARTIALS) {
    splits = CUDA_NORM_PARTIALS / G - 1;
    if (splits < 1)
      return sdr_fail("%s: %lld groups in all is more than the CUDA kernel takes (%d)", op,
                      (long long)G, CUDA_NORM_PARTIALS / 2);
  }
  int64_t chunk = (n + splits - 1) / splits;
  if (dt == SDR_F32)
    launch_gn<float>(st, out, in, gamma, beta, groups, eps, silu, G, n, S, (int)cpg, (int)splits,
                     chunk);
  else if (dt == SDR_F16)
    launch_gn<__half>(st, out, in, gamma, beta, groups, eps, silu, G, n, S, (int)cpg, (int)splits,
                      chunk);
  else
    launch_gn<__nv_bfloat16>(st, out, in, gamma, beta, groups, eps, silu, G, n, S, (int)cpg,
                             (int)splits, chunk);
  CUDA_LAUNCHED(op);
  return 0;
}

/* ---- layer_norm: one warp per row ---- */

template <typename T>
__global__ void ln_kernel(T *y, const T *x, const void *gamma, int gdt, const void *beta, int bdt,
                          int64_t rows, int64_t D, float eps) {
  int64_t row = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  int lane = threadIdx.x & 31;
  if (row >= rows)
    return;
  const T *xr = x + row * D;
  T *yr = y + row * D;
  double s = 0;
  for (int64_t d = lane; d < D; d += 32)
    s += (double)to_f(xr[d]);
  double mean = warp_sum_d(s) / (double)D, q = 0;
  for (int64_t d = lane; d < D; d += 32) {
    double t = (double)to_f(xr[d]) - mean;
    q += t * t;
  }
  double var = warp_sum_d(q) / (double)D;
  float rstd = (float)(1.0 / sqrt(var + (double)eps)), m = (float)mean;
  float lost = (float)(mean - (double)m); /* (x - m) - lost: x - mean without m's rounding */
  for (int64_t d = lane; d < D; d += 32) {
    float v = ((to_f(xr[d]) - m) - lost) * rstd;
    float gj = gamma ? ld_param(gamma, gdt, d) : 1.0f, bj = beta ? ld_param(beta, bdt, d) : 0.0f;
    yr[d] = from_f<T>(v * gj + bj);
  }
}

int cuda_layer_norm(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *gamma,
                    const sdr_tensor *beta, float eps) {
  const char *op = "sdr_layer_norm";
  cuda_state *st = cuda_use(be);
  sdr_dtype dt;
  const sdr_tensor *acts[2] = {out, in};
  if (cuda_act_dtype(op, acts, 2, &dt) < 0)
    return -1;
  int64_t D = in->shape[in->ndim - 1], rows = sdr_tensor_numel(in) / D;
  const int per_block = CUDA_THREADS / 32;
  int64_t blocks = (rows + per_block - 1) / per_block;
  if (blocks > 0x7fffffff)
    return sdr_fail("%s: %lld rows is more than one launch takes", op, (long long)rows);
  const void *gp = gamma ? gamma->data : NULL, *bp = beta ? beta->data : NULL;
  int gdt = gamma ? gamma->dtype : 0, bdt = beta ? beta->dtype : 0;
  if (dt == SDR_F32)
    SDR_LAUNCH(ln_kernel, (unsigned)blocks, CUDA_THREADS, 0, st->stream, (float *)out->data,
               (const float *)in->data, gp, gdt, bp, bdt, rows, D, eps);
  else if (dt == SDR_F16)
    SDR_LAUNCH(ln_kernel, (unsigned)blocks, CUDA_THREADS, 0, st->stream, (__half *)out->data,
               (const __half *)in->data, gp, gdt, bp, bdt, rows, D, eps);
  else
    SDR_LAUNCH(ln_kernel, (unsigned)blocks, CUDA_THREADS, 0, st->stream, (__nv_bfloat16 *)out->data,
               (const __nv_bfloat16 *)in->data, gp, gdt, bp, bdt, rows, D, eps);
  CUDA_LAUNCHED(op);
  return 0;
}

/* ---- softmax: exp(x - max) / sum, one warp per row ---- */

template <typename T> __global__ void softmax_kernel(T *y, const T *x, int64_t rows, int64_t D) {
  int64_t row = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  int lane = threadIdx.x & 31;
  if (row >= rows)
    return;
  const T *xr = x + row * D;
  T *yr = y + row * D;
  float m = -INFINITY;
  for (int64_t d = lane; d < D; d += 32)
    m = fmaxf(m, to_f(xr[d]));
  m = warp_max_f(m);
  float s = 0;
  for (int64_t d = lane; d < D; d += 32)
    s += expf(to_f(xr[d]) - m);
  float inv = 1.0f / warp_sum_f(s);
  for (int64_t d = lane; d < D; d += 32)
    yr[d] = from_f<T>(expf(to_f(xr[d]) - m) * inv);
}

int cuda_softmax(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in) {
  const char *op = "sdr_softmax";
  cuda_state *st = cuda_use(be);
  sdr_dtype dt;
  const sdr_tensor *acts[2] = {out, in};
  if (cuda_act_dtype(op, acts, 2, &dt) < 0)
    return -1;
  int64_t D = in->shape[in->ndim - 1], rows = sdr_tensor_numel(in) / D;
  const int per_block = CUDA_THREADS / 32;
  int64_t blocks = (rows + per_block - 1) / per_block;
  if (blocks > 0x7fffffff)
    return sdr_fail("%s: %lld rows is more than one launch takes", op, (long long)rows);
  if (dt == SDR_F32)
    SDR_LAUNCH(softmax_kernel, (unsigned)blocks, CUDA_THREADS, 0, st->stream, (float *)out->data,
               (const float *)in->data, rows, D);
  else if (dt == SDR_F16)
    SDR_LAUNCH(softmax_kernel, (unsigned)blocks, CUDA_THREADS, 0, st->stream, (__half *)out->data,
               (const __half *)in->data, rows, D);
  else
    SDR_LAUNCH(softmax_kernel, (unsigned)blocks, CUDA_THREADS, 0, st->stream,
               (__nv_bfloat16 *)out->data, (const __nv_bfloat16 *)in->data, rows, D);
  CUDA_LAUNCHED(op);
  return 0;
}

/* kernels/philox.h — Philox4x32-10 and curand's conversions, as torch's CUDA
 * random numbers use them (curand_kernel.h, curand_philox4x32_x.h,
 * curand_uniform.h, curand_normal.h of the CUDA toolkit).
 *
 * Header-only so that the host emulation (kernels/philox_fill.c) and the CUDA
 * kernel share one copy of the arithmetic: under nvcc every function is
 * __host__ __device__. The integer part (counters, keys, rounds) and the
 * uniform floats are exact on both sides. The normals differ slightly: the
 * device's Box–Muller uses __sincosf (a fast approximation) and its own logf,
 * the host uses libm, so a CPU copy agrees with a GPU to about 1e-6.
 */
#ifndef SDR_KERNELS_PHILOX_H
#define SDR_KERNELS_PHILOX_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define SDR_PHILOX_FN __host__ __device__ static inline
#else
#define SDR_PHILOX_FN static inline
#endif

#define SDR_PHILOX_W32_0 0x9E3779B9u
#define SDR_PHILOX_W32_1 0xBB67AE85u
#define SDR_PHILOX_M4x32_0 0xD2511F53u
#define SDR_PHILOX_M4x32_1 0xCD9E8D57u

/* curandStatePhilox4_32_10 without the Box–Muller cache, which torch's
 * curand_normal4 path never uses. */
typedef struct sdr_philox_state {
  uint32_t ctr[4];    /* the 128-bit counter, x (low) .. w (high) */
  uint32_t output[4]; /* Philox of ctr; output[state] is the next word curand() gives */
  uint32_t key[2];    /* the seed */
  uint32_t state;     /* curand's STATE: words of output already used */
} sdr_philox_state;

/* _philox4x32round: one round, 32x32->64 multiplies. */
SDR_PHILOX_FN void sdr_philox_round(uint32_t c[4], const uint32_t k[2]) {
  uint64_t p0 = (uint64_t)SDR_PHILOX_M4x32_0 * c[0];
  uint64_t p1 = (uint64_t)SDR_PHILOX_M4x32_1 * c[2];
  uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
  uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
  uint32_t r0 = hi1 ^ c[1] ^ k[0], r2 = hi0 ^ c[3] ^ k[1];
  c[0] = r0;
  c[1] = lo1;
  c[2] = r2;
  c[3] = lo0;
}

/* curand_Philox4x32_10: ten rounds, the key bumped between them. */
SDR_PHILOX_FN void sdr_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2],
                                     uint32_t out[4]) {
  uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
  uint32_t k[2] = {key[0], key[1]};
  for (int round = 0; round < 10; round++) {
    if (round > 0) {
      k[0] += SDR_PHILOX_W32_0;
      k[1] += SDR_PHILOX_W32_1;
    }
    sdr_philox_round(c, k);
  }
  for (int i = 0; i < 4; i++)
    out[i] = c[i];
}

/* Philox_State_Incr(s, n): the counter plus n, carried as curand carries it
 * (a carry out of y reaches z and w only through curand's own test). */
SDR_PHILOX_FN void sdr_philox_incr_n(sdr_philox_state *s, uint64_t n) {
  uint32_t nlo = (uint32_t)n, nhi = (uint32_t)(n >> 32);
  s->ctr[0] += nlo;
  if (s->ctr[0] < nlo)
    nhi++;
  s->ctr[1] += nhi;
  if (nhi <= s->ctr[1])
    return;
  if (++s->ctr[2])
    return;
  ++s->ctr[3];
}

/* Philox_State_Incr_hi(s, n): the upper 64 bits of the counter plus n. */
SDR_PHILOX_FN void sdr_philox_incr_hi(sdr_philox_state *s, uint64_t n) {
  uint32_t nlo = (uint32_t)n, nhi = (uint32_t)(n >> 32);
  s->ctr[2] += nlo;
  if (s->ctr[2] < nlo)
    nhi++;
  s->ctr[3] += nhi;
}

/* Philox_State_Incr(s): the counter plus one. */
SDR_PHILOX_FN void sdr_philox_incr(sdr_philox_state *s) {
  if (++s->ctr[0])
    return;
  if (++s->ctr[1])
    return;
  if (++s->ctr[2])
    return;
  ++s->ctr[3];
}

/* curand_init(seed, subsequence, offset, &state) for Philox4_32_10: key = seed,
 * counter = subsequence in the high half, then skipahead(offset) words. */
SDR_PHILOX_FN void sdr_philox_init(sdr_philox_state *s, uint64_t seed, uint64_t subsequence,
                                   uint64_t offset) {
  for (int i = 0; i < 4; i++)
    s->ctr[i] = 0;
  s->key[0] = (uint32_t)seed;
  s->key[1] = (uint32_t)(seed >> 32);
  s->state = 0;
  /* skipahead_sequence */
  sdr_philox_incr_hi(s, subsequence);
  sdr_philox4x32_10(s->ctr, s->key, s->output);
  /* skipahead */
  s->state += (uint32_t)(offset & 3);
  offset /= 4;
  if (s->state > 3) {
    offset += 1;
    s->state -= 4;
  }
  sdr_philox_incr_n(s, offset);
  sdr_philox4x32_10(s->ctr, s->key, s->output);
}

/* curand4: the next four words. */
SDR_PHILOX_FN void sdr_philox_next4(sdr_philox_state *s, uint32_t r[4]) {
  uint32_t tmp[4] = {s->output[0], s->output[1], s->output[2], s->output[3]};
  sdr_philox_incr(s);
  sdr_philox4x32_10(s->ctr, s->key, s->output);
  uint32_t k = s->state & 3; /* curand's switch; STATE is always 0..3 */
  for (uint32_t i = 0; i < 4; i++)
    r[i] = i + k < 4 ? tmp[i + k] : s->output[i + k - 4];
}

/* curand(): the next word. */
SDR_PHILOX_FN uint32_t sdr_philox_next(sdr_philox_state *s) {
  uint32_t ret = s->output[s->state & 3];
  if (++s->state == 4) {
    sdr_philox_incr(s);
    sdr_philox4x32_10(s->ctr, s->key, s->output);
    s->state = 0;
  }
  return ret;
}

/* CURAND_2POW32_INV and CURAND_2POW32_INV_2PI (a float product, as curand_globals.h). */
#define SDR_CURAND_2POW32_INV 2.3283064e-10f
#define SDR_CURAND_2POW32_INV_2PI (2.3283064e-10f * 6.2831855f)

/* _curand_uniform: x * 2^-32 + 2^-33 in (0, 1]. nvcc contracts the expression
 * into one fused multiply-add (its default --fmad=true), so both sides use fmaf. */
SDR_PHILOX_FN float sdr_curand_uniform(uint32_t x) {
  return fmaf((float)x, SDR_CURAND_2POW32_INV, SDR_CURAND_2POW32_INV / 2.0f);
}

/* _curand_box_muller: two normals from two words; sine first, then cosine. */
SDR_PHILOX_FN void sdr_curand_box_muller(uint32_t x, uint32_t y, float *first, float *second) {
  float u = fmaf((float)x, SDR_CURAND_2POW32_INV, SDR_CURAND_2POW32_INV / 2);
  float v = fmaf((float)y, SDR_CURAND_2POW32_INV_2PI, SDR_CURAND_2POW32_INV_2PI / 2);
  float s = sqrtf(-2.0f * logf(u)), sn, cs;
#ifdef __CUDA_ARCH__
  __sincosf(v, &sn, &cs);
#else
  sn = sinf(v);
  cs = cosf(v);
#endif
  *first = sn * s;
  *second = cs * s;
}

/* curand_normal4 (curand_box_muller4): four normals from one curand4. */
SDR_PHILOX_FN void sdr_curand_normal4(sdr_philox_state *s, float out[4]) {
  uint32_t r[4];
  sdr_philox_next4(s, r);
  sdr_curand_box_muller(r[0], r[1], &out[0], &out[1]);
  sdr_curand_box_muller(r[2], r[3], &out[2], &out[3]);
}

/* curand_uniform4: four uniforms in (0, 1] from one curand4. */
SDR_PHILOX_FN void sdr_curand_uniform4(sdr_philox_state *s, float out[4]) {
  uint32_t r[4];
  sdr_philox_next4(s, r);
  for (int i = 0; i < 4; i++)
    out[i] = sdr_curand_uniform(r[i]);
}

/* One step of torch's distribution_elementwise_grid_stride_kernel for one
 * thread: four values as torch stores them. normal: transformation::normal
 * (x * std + mean with std 1, mean 0, each rounded on its own as the kernel
 * does); uniform: curand's (0, 1] turned into [0, 1), then * range + from.
 * Component k goes to element li0 + k * stride (the caller's loop). */
SDR_PHILOX_FN void sdr_philox_draw4(sdr_philox_state *s, int normal, float out[4]) {
  float r[4];
  if (normal)
    sdr_curand_normal4(s, r);
  else
    sdr_curand_uniform4(s, r);
  for (int k = 0; k < 4; k++) {
    float x = r[k];
    if (!normal)
      x = x == 1.0f ? 0.0f : x;
#ifdef __CUDA_ARCH__
    out[k] = __fadd_rn(__fmul_rn(x, 1.0f), 0.0f);
#else
    out[k] = x * 1.0f + 0.0f;
#endif
  }
}

#endif

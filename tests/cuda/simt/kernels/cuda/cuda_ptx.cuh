/* tests/cuda/simt/kernels/cuda/cuda_ptx.cuh — the host simulation's version of
 * kernels/cuda/cuda_ptx.cuh (found first on the include path of tests/cuda/simt/):
 * the same functions, each doing what its PTX instruction does, written from the
 * PTX ISA's description (warp-level matrix fragments of mma.m16n8k16 and
 * ldmatrix), not from the kernels that use them.
 *
 * Each collective instruction deposits what its lane holds in the warp's slots,
 * waits for the warp, computes this lane's part of the result from every lane's
 * deposit, and waits again before the slots are reused. Alignment the hardware
 * requires is checked (a misaligned address stops the simulation, as it would
 * fault on the GPU).
 */
#ifndef SDR_KERNELS_CUDA_PTX_CUH
#define SDR_KERNELS_CUDA_PTX_CUH

#include <stdint.h>
#include <string.h>

#include "simt.h"

namespace simt {

template <typename T> inline float bits_to_f(uint32_t bits);
template <> inline float bits_to_f<__half>(uint32_t bits) {
  uint16_t h = (uint16_t)bits;
  __half v;
  memcpy(&v, &h, 2);
  return __half2float(v);
}
template <> inline float bits_to_f<__nv_bfloat16>(uint32_t bits) {
  uint16_t h = (uint16_t)bits;
  __nv_bfloat16 v;
  memcpy(&v, &h, 2);
  return __bfloat162float(v);
}

/* mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}: with g = lane / 4 and t = lane % 4,
 *   A (16x16): register i = a[i] holds rows g + 8 (i & 1), cols 2t + 8 (i >> 1) and +1;
 *   B (16x8):  register j holds rows (k) 2t + 8 j and +1, col g;
 *   C, D (16x8 float32): element e holds row g + 8 (e >> 1), col 2t + (e & 1);
 * in each 32-bit register the lower-numbered column (A) or row (B) is the low half. */
template <typename T> void mma_m16n8k16(float *d, const uint32_t *a, uint32_t b0, uint32_t b1) {
  struct deposit {
    uint32_t a[4], b[2];
  } me = {{a[0], a[1], a[2], a[3]}, {b0, b1}};
  unsigned char(*x)[64] = warp_slots();
  memcpy(x[lane()], &me, sizeof me);
  warp_sync();
  deposit all[32];
  for (int l = 0; l < 32; l++)
    memcpy(&all[l], x[l], sizeof(deposit));
  auto A = [&](int r, int k) {
    uint32_t reg = all[(r % 8) * 4 + (k % 8) / 2].a[(r / 8) + 2 * (k / 8)];
    return bits_to_f<T>(k % 2 ? reg >> 16 : reg & 0xffffu);
  };
  auto B = [&](int k, int n) {
    uint32_t reg = all[n * 4 + (k % 8) / 2].b[k / 8];
    return bits_to_f<T>(k % 2 ? reg >> 16 : reg & 0xffffu);
  };
  const int g = lane() >> 2, t = lane() & 3;
  float out[4];
  for (int e = 0; e < 4; e++) {
    const int r = g + 8 * (e >> 1), c = 2 * t + (e & 1);
    double s = d[e];
    for (int k = 0; k < 16; k++)
      s += (double)A(r, k) * (double)B(k, c);
    out[e] = (float)s;
  }
  warp_sync();
  for (int e = 0; e < 4; e++)
    d[e] = out[e];
}

} // namespace simt

/* pack: two floats rounded to T (nearest even), lo in the low half; mma: the simulated
 * instruction above */
template <typename T> struct mma_traits {
  static uint32_t pack(float lo, float hi) {
    T l = (T)lo, h = (T)hi; /* __float2half_rn / __float2bfloat16_rn */
    uint16_t lb, hb;
    memcpy(&lb, &l, 2);
    memcpy(&hb, &h, 2);
    return (uint32_t)lb | (uint32_t)hb << 16;
  }
  static void mma(float *d, const uint32_t *a, uint32_t b0, uint32_t b1) {
    simt::mma_m16n8k16<T>(d, a, b0, b1);
  }
};

/* cp.async.cg.shared.global, 16 bytes (src-size 0: zeros): done at once here, which
 * every wait then finds complete. */
inline void cp_async16(void *dst, const void *src, bool valid) {
  if ((uintptr_t)dst & 15)
    simt::fail("cp.async to shared address %p, not 16-byte aligned", dst);
  if (valid && ((uintptr_t)src & 15))
    simt::fail("cp.async from global address %p, not 16-byte aligned", src);
  if (valid)
    memcpy(dst, src, 16);
  else
    memset(dst, 0, 16);
}
inline void cp_async_commit() {}
template <int N> inline void cp_async_wait() {}

/* ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16: lanes 8i .. 8i + 7 give the addresses
 * of rows 0 .. 7 of matrix i (16 bytes each). Without .trans lane l would receive,
 * of each matrix, row l / 4, elements 2 (l % 4) and +1; with .trans the matrix is
 * transposed first: element l / 4 of rows 2 (l % 4) and 2 (l % 4) + 1. */
inline void ldsm_x4_t(uint32_t *r, const void *row) {
  if ((uintptr_t)row & 15)
    simt::fail("ldmatrix row address %p, not 16-byte aligned", row);
  unsigned char(*x)[64] = simt::warp_slots();
  memcpy(x[simt::lane()], &row, sizeof row);
  simt::warp_sync();
  const int g = simt::lane() >> 2, t = simt::lane() & 3;
  uint32_t out[4];
  for (int i = 0; i < 4; i++) {
    const uint16_t *r0, *r1;
    memcpy(&r0, x[8 * i + 2 * t], sizeof r0);
    memcpy(&r1, x[8 * i + 2 * t + 1], sizeof r1);
    out[i] = (uint32_t)r0[g] | (uint32_t)r1[g] << 16;
  }
  simt::warp_sync();
  for (int i = 0; i < 4; i++)
    r[i] = out[i];
}

#endif

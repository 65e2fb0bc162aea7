/* kernels/cpu/cpu_attention_mk.c — cpu_attention.c's blocked attention with both products
 * on our own kernel (cpu_microkernel.h, AVX-512 or AVX2) instead of OpenBLAS, for heads
 * up to 256 wide (SD 1.x's 40, 80 and 160, SD 2.x's and CLIP's 64; O = P V is made 64
 * columns at a time, the kernel's widest).
 *
 * Each (image, head)'s keys and values are packed once into the workspace, before the
 * query blocks run: K^T as panels of 64 keys (rows of 64 consecutive key columns, one
 * per dim: the B operand of S = Q K^T), V as rows of Dh padded with zeros to a
 * multiple of 16 (the B operand of O = P V). A task is then as in cpu_attention.c:
 * S for a block of query rows, exp(s * scale - max) with its sum (the scale applied
 * there, not in a pass of its own), O = P V into a per-thread block, written out divided by the
 * sums. Keys past the end of the last panel are zeros and never reach the softmax. When the packed
 * heads and the per-thread blocks do not fit the workspace (images much larger than 768x768),
 * cpu_attention.c's OpenBLAS path runs instead.
 */
#include <omp.h>
#include <string.h>

#include "kernels/cpu/cpu_internal.h"
#include "kernels/cpu/cpu_microkernel.h" // cpu_mk_pick

enum {
  MK_MAX_ROWS = 256,
  MK_BLOCK_FLOATS = 1024 << 10,
  MK_PANEL = 64,
  MK_MAX_DP = 256,
  MK_KC = 256
};

#if CPU_MK_X86

int cpu_attention_mk(sdr_backend *be, sdr_tensor *out, const sdr_tensor *q, const sdr_tensor *k,
                     const sdr_tensor *v, int heads, float scale, int causal) {
  const int64_t B = q->shape[0], Tq = q->shape[1], Tk = k->shape[1], HD = q->shape[2];
  const int64_t Dh = HD / heads, Dp = (Dh + 15) / 16 * 16;
  const cpu_mk_row *mk = cpu_mk_pick();
  if (!mk || Dp > MK_MAX_DP || Dh < 1 || Tk < 1)
    return 0;
  const int64_t npan = (Tk + MK_PANEL - 1) / MK_PANEL, ldS = npan * MK_PANEL;
  const int64_t kt_floats = npan * MK_PANEL * Dh, v_floats = Tk * Dp;
  const int64_t packed = B * heads * (kt_floats + v_floats);
  const int nt = cpu_threads();
  int64_t rows = MK_BLOCK_FLOATS / Tk;
  rows = rows < 16 ? 16 : rows > MK_MAX_ROWS ? MK_MAX_ROWS : rows;
  rows = rows > Tq ? Tq : rows;
  const int64_t per_thread = rows * (ldS + 1 + Dp); /* scores, row sums, output block */
  if ((size_t)(packed + nt * per_thread) > cpu_ws_floats(be))
    return 0;
  float *ws = cpu_state_of(be)->ws, *scratch = ws + packed;
  const float *Q = q->data, *K = k->data, *V = v->data;
  float *O = out->data;

  /* K^T panels and padded V rows of every (image, head) */
#pragma omp parallel for schedule(static) num_threads(nt) if (B * heads * Tk * Dh > CPU_GRAIN)
  for (int64_t bh = 0; bh < B * heads; bh++) {
    const int64_t bi = bh / heads, h = bh % heads;
    float *kt = ws + bh * (kt_floats + v_floats), *vp = kt + kt_floats;
    const float *kb = K + bi * Tk * HD + h * Dh, *vb = V + bi * Tk * HD + h * Dh;
    for (int64_t p = 0; p < npan; p++)
      for (int64_t j = 0; j < MK_PANEL; j++) {
        const int64_t key = p * MK_PANEL + j;
        float *col = kt + p * Dh * MK_PANEL + j;
        for (int64_t d = 0; d < Dh; d++)
          col[d * MK_PANEL] = key < Tk ? kb[key * HD + d] : 0.0f;
      }
    for (int64_t key = 0; key < Tk; key++) {
      memcpy(vp + key * Dp, vb + key * HD, (size_t)Dh * sizeof(float));
      for (int64_t d = Dh; d < Dp; d++)
        vp[key * Dp + d] = 0.0f;
    }
  }

  const int64_t blocks = (Tq + rows - 1) / rows, tasks = B * heads * blocks;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (tasks > 1)
  for (int64_t t = 0; t < tasks; t++) {
    const int64_t bh = t / blocks, bi = bh / heads, h = bh % heads, q0 = (t % blocks) * rows;
    const int64_t nq = Tq - q0 < rows ? Tq - q0 : rows;
    const int64_t nk = causal ? (q0 + nq < Tk ? q0 + nq : Tk) : Tk; /* keys the block sees */
    const int64_t npk = (nk + MK_PANEL - 1) / MK_PANEL;
    const float *kt = ws + bh * (kt_floats + v_floats), *vp = kt + kt_floats;
    float *S = scratch + (int64_t)omp_get_thread_num() * per_thread, *inv = S + rows * ldS;
    float *Ob = inv + rows;
    const float *qb = Q + (bi * Tq + q0) * HD + h * Dh;
    float *ob = O + (bi * Tq + q0) * HD + h * Dh;
    /* S = Q K^T, 6 rows by 64 keys at a time; a panel of keys (Dh x 64) stays in L1
     * while every row of the block passes over it */
    for (int64_t p = 0; p < npk; p++) {
      const int64_t left = nk - p * MK_PANEL, sw = left >= MK_PANEL ? 4 : (left + 15) / 16;
      for (int64_t r = 0; r < nq; r += 6) {
        const int64_t R = nq - r < 6 ? nq - r : 6;
        mk[R - 1][sw - 1](0, Dh, qb + r * HD, HD, kt + p * Dh * MK_PANEL, MK_PANEL,
                          S + r * ldS + p * MK_PANEL, ldS);
      }
    }
    for (int64_t r = 0; r < nq; r++) {
      float *s = S + r * ldS;
      const int64_t valid = causal ? (q0 + r + 1 < nk ? q0 + r + 1 : nk) : nk;
      /* softmax(s * scale) in two passes: for a positive scale the largest scaled score
       * is the largest score scaled (rounding keeps order) */
      float a = scale;
      if (!(scale > 0.0f)) {
        cpu_scale(s, s, valid, scale);
        a = 1.0f;
      }
      const float m = cpu_max(s, valid) * a;
      inv[r] = 1.0f / cpu_exp_sum(s, s, valid, a, m);
      for (int64_t j = valid; j < nk; j++)
        s[j] = 0.0f;
    }
    /* O = P V over the keys the block sees, MK_KC keys at a time: their rows of V
     * (MK_KC x Dp, 48 KB at Dh 40) stay in L2 for all rows of the block; each later
     * block adds onto O as the sum would have gone on, so the result is the same */
    for (int64_t k0 = 0; k0 < nk; k0 += MK_KC) {
      const int64_t kc = nk - k0 < MK_KC ? nk - k0 : MK_KC;
      for (int64_t r = 0; r < nq; r += 6) {
        const int64_t R = nq - r < 6 ? nq - r : 6;
        for (int64_t c0 = 0; c0 < Dp; c0 += 64) { /* the kernel's 64 columns at a time */
          const int64_t w = Dp - c0 < 64 ? Dp - c0 : 64;
          mk[R - 1][w / 16 - 1](k0 > 0, kc, S + r * ldS + k0, ldS, vp + k0 * Dp + c0, Dp,
                                Ob + r * Dp + c0, Dp);
        }
      }
    }
    for (int64_t r = 0; r < nq; r++)
      cpu_scale(ob + r * HD, Ob + r * Dp, Dh, inv[r]);
  }
  return 1;
}

#else

int cpu_attention_mk(sdr_backend *be, sdr_tensor *out, const sdr_tensor *q, const sdr_tensor *k,
                     const sdr_tensor *v, int heads, float scale, int causal) {
  (void)be, (void)out, (void)q, (void)k, (void)v, (void)heads, (void)scale, (void)causal;
  return 0;
}

#endif

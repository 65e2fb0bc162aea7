/* kernels/cpu/cpu_winograd.c — stride-1 3x3 convolution by Winograd's minimal filtering
 * F(4x4, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
 *
 * Each 4x4 block ("tile") of output comes from a 6x6 window of input. With
 *   V = B^T d B  (input window d, 6x6),  U = G g G^T  (kernel g, 3x3 -> 6x6),
 * the tile is A^T [ sum over input channels of U (.) V ] A, (.) elementwise. So the
 * 36 products per tile and channel pair replace 144 of a direct convolution: per
 * transform position xi = 6k + l (36 of them) the channel sums are one matrix product
 *   M_xi (Cout, tiles) = U_xi (Cout, Cin) @ V_xi (Cin, tiles),
 * 4x fewer multiplications than im2col's, and the transforms cost little next to it.
 * Matrices (points 0, +-1, +-2, as in the paper):
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
 *   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
 * Accuracy: the transforms scale values up (B^T's 4s and 5s, A^T's 8s) before the sums
 * and back after, so rounding errors grow. Measured against double precision, as a
 * fraction of the sum of |terms| (tests/unit/test_kernels_winograd.c): 5e-7 at 256
 * channels, 2e-6 at 16, 4e-6 at worst (padding 2, where a corner output has few terms
 * but its tile's rounding); the tiny SD models' UNet and VAE outputs move from 1e-6 to
 * 3e-6 relative error, and whole diffusers runs from 2.3e-4 to 5.3e-4 max abs.
 * An Inf or NaN in the input spreads to the whole 4x4 tiles whose windows hold it (a
 * direct sum keeps it to its 3x3 neighbourhood).
 *
 * Work is done a chunk of tiles (all images of the batch in one row-major tile order)
 * and a block of output channels at a time, so that V, M and U fit the workspace and
 * mostly the caches (chunk_plan):
 *   input transform (chunk) -> [ weight transform (block) -> 36 products -> output
 *   transform (block) ] for each block.
 * The weights are transformed on every call (ops keep no state); per channel pair that
 * costs a few dozen operations against 72 * tiles multiply-adds of the products, and
 * when there is one block of output channels, once per call.
 *
 * Three code paths, chosen like cpu_vmath.c's: AVX-512 transforms, 16 tiles per vector,
 * with our own 6x64 product kernel (OpenBLAS is left to OPENBLAS_CORETYPE, which the
 * environment sets to Haswell: AVX2 at half the peak of this kernel); on CPUs with AVX2 but
 * not AVX-512, the same on 8 lanes (cpu_winograd_avx2.c; OpenBLAS's packing of both
 * operands for each of the 36 products cost more than the products gained there); plain C
 * transforms and one cblas_sgemm per transform position otherwise.
 */
#include <cblas.h>
#include <stdint.h>
#include <string.h>

#include "kernels/cpu/cpu_internal.h"
#include "kernels/error.h" // sdr_fail

#include "kernels/cpu/cpu_microkernel.h" // cpu_mk_pick, cpu_transpose16, CPU_MK_AVX512
#include "kernels/cpu/cpu_winograd.h"    // wino, v_off, the AVX2 stages

#define WINO_X86 CPU_MK_X86
#if WINO_X86
#define AVX512 CPU_MK_AVX512
#endif

/* Chunk sizes: transformed weights of one block up to 8 MB (read back by the products
 * while still in the L3 cache), V and M of one chunk up to 8 MB together. */
enum { WINO_U_FLOATS = 2 << 20, WINO_VM_FLOATS = 2 << 20, WINO_NB = 64, WINO_PREFETCH = 2 };

static int64_t round_up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }

/* ---- plain C ---- */

/* o = B^T d: six values in, six out. */
static void bt_c(float *o, const float *d) {
  o[0] = 4 * d[0] - 5 * d[2] + d[4];
  o[1] = (d[3] + d[4]) - 4 * (d[1] + d[2]);
  o[2] = (d[4] - d[3]) + 4 * (d[1] - d[2]);
  o[3] = (d[4] - d[2]) + 2 * (d[3] - d[1]);
  o[4] = (d[4] - d[2]) - 2 * (d[3] - d[1]);
  o[5] = 4 * d[1] - 5 * d[3] + d[5];
}

/* o = G g: three values in, six out. */
static void g_c(float *o, const float *g) {
  float s = g[0] + g[2], p = g[0] * (1.0f / 24) + g[2] * (1.0f / 6), q = g[1] * (1.0f / 12);
  o[0] = g[0] * 0.25f;
  o[1] = -(s + g[1]) * (1.0f / 6);
  o[2] = -(s - g[1]) * (1.0f / 6);
  o[3] = p + q;
  o[4] = p - q;
  o[5] = g[2];
}

/* o = A^T m: six values in, four out. */
static void at_c(float *o, const float *m) {
  float s12 = m[1] + m[2], d12 = m[1] - m[2], s34 = m[3] + m[4], d34 = m[3] - m[4];
  o[0] = m[0] + s12 + s34;
  o[1] = d12 + 2 * d34;
  o[2] = s12 + 4 * s34;
  o[3] = d12 + 8 * d34 + m[5];
}

static void input_c(const wino *g, int64_t t0, int64_t n, int64_t tcp) {
  int64_t C = g->C, HW = g->H * g->W;
#pragma omp parallel for schedule(static) if (C * tcp * 36 > CPU_GRAIN)
  for (int64_t ci = 0; ci < C; ci++)
    for (int64_t tl = 0; tl < tcp; tl++) {
      float d[6][6] = {{0}}, t[6][6], col[6], v[6][6];
      if (tl < n) {
        int64_t tt = t0 + tl, b = tt / (g->th * g->tw), r = tt / g->tw % g->th, c = tt % g->tw;
        const float *plane = g->x + (b * C + ci) * HW;
        for (int i = 0; i < 6; i++) {
          int64_t yy = 4 * r - g->pad + i;
          if (yy < 0 || yy >= g->H)
            continue;
          for (int j = 0; j < 6; j++) {
            int64_t xx = 4 * c - g->pad + j;
            if (xx >= 0 && xx < g->W)
              d[i][j] = plane[yy * g->W + xx];
          }
        }
      }
      for (int j = 0; j < 6; j++) { /* t = B^T d, a column at a time */
        for (int i = 0; i < 6; i++)
          col[i] = d[i][j];
        float o[6];
        bt_c(o, col);
        for (int k = 0; k < 6; k++)
          t[k][j] = o[k];
      }
      for (int k = 0; k < 6; k++) /* v = t B: B^T applied to each row */
        bt_c(v[k], t[k]);
      int64_t off = v_off(g, tcp, ci, tl);
      for (int xi = 0; xi < 36; xi++)
        g->V[xi * C * tcp + off] = v[xi / 6][xi % 6];
    }
}

/* Kernel (co0 + co, ci) of the weights into U. */
void cpu_wino_weights_pair_c(const wino *g, int64_t co0, int64_t m, int64_t co, int64_t ci) {
  int64_t C = g->C;
  size_t es = sdr_dtype_size(g->wt);
  float k9[9], t[6][3], col[3], u[6][6];
  cpu_widen(k9, (const char *)g->w + (size_t)(((co0 + co) * C + ci) * 9) * es, g->wt, 9);
  for (int j = 0; j < 3; j++) { /* t = G g, a column at a time */
    for (int i = 0; i < 3; i++)
      col[i] = k9[3 * i + j];
    float o[6];
    g_c(o, col);
    for (int k = 0; k < 6; k++)
      t[k][j] = o[k];
  }
  for (int k = 0; k < 6; k++) /* u = t G^T */
    g_c(u[k], t[k]);
  for (int xi = 0; xi < 36; xi++)
    g->U[(xi * m + co) * C + ci] = u[xi / 6][xi % 6];
}

/* Rows co0..co0+m of the weights into U. */
static void weights_c(const wino *g, int64_t co0, int64_t m) {
#pragma omp parallel for schedule(static) if (m * g->C * 36 > CPU_GRAIN)
  for (int64_t co = 0; co < m; co++)
    for (int64_t ci = 0; ci < g->C; ci++)
      cpu_wino_weights_pair_c(g, co0, m, co, ci);
}

/* M_xi = U_xi @ V_xi for the 36 positions, each one sgemm over all threads. */
static void products_blas(const wino *g, int64_t m, int64_t tcp) {
  int64_t C = g->C;
  for (int64_t xi = 0; xi < 36; xi++)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)tcp, (int)C, 1.0f,
                g->U + xi * m * C, (int)C, g->V + xi * C * tcp, (int)tcp, 0.0f, g->M + xi * m * tcp,
                (int)tcp);
}

/* The 36 products on our kernel (AVX-512's or AVX2's), split over threads by (position,
 * column block): consecutive items share U_xi, which then stays in the L2 cache; each column
 * block of V_xi (C x 64) is read from L2 once per 6 output channels. */
static void products_mk(const wino *g, const cpu_mk_row *mk, int64_t m, int64_t tcp) {
  int64_t C = g->C, nblk = (tcp + g->nb - 1) / g->nb;
#pragma omp parallel for schedule(static) if (36 * m * C * tcp > CPU_GRAIN)
  for (int64_t it = 0; it < 36 * nblk; it++) {
    int64_t xi = it / nblk, b0 = it % nblk * g->nb, bw = min64(tcp - b0, g->nb);
    const float *A = g->U + xi * m * C, *Bv = g->V + xi * C * tcp + b0 * C;
    float *Cm = g->M + xi * m * tcp + b0;
    const cpu_microkernel *row = mk[5];
    for (int64_t co = 0; co < m; co += 6) {
      int64_t R = min64(6, m - co);
      if (R < 6)
        row = mk[R - 1];
      row[bw / 16 - 1](0, C, A + co * C, C, Bv, bw, Cm + co * tcp, tcp);
    }
  }
}

static void output_c(const wino *g, int64_t co0, int64_t m, int64_t t0, int64_t n, int64_t tcp) {
#pragma omp parallel for schedule(static) if (m * n * 36 > CPU_GRAIN)
  for (int64_t co = 0; co < m; co++)
    for (int64_t tl = 0; tl < n; tl++) {
      float mm[6][6], t[4][6], col[6], o[4][4];
      for (int xi = 0; xi < 36; xi++)
        mm[xi / 6][xi % 6] = g->M[(xi * m + co) * tcp + tl];
      for (int j = 0; j < 6; j++) { /* t = A^T m, a column at a time */
        for (int i = 0; i < 6; i++)
          col[i] = mm[i][j];
        float a[4];
        at_c(a, col);
        for (int k = 0; k < 4; k++)
          t[k][j] = a[k];
      }
      for (int k = 0; k < 4; k++)
        at_c(o[k], t[k]);
      int64_t tt = t0 + tl, b = tt / (g->th * g->tw), r = tt / g->tw % g->th, c = tt % g->tw;
      float bv = g->bias ? g->bias[co0 + co] : 0.0f;
      float *plane = g->y + (b * g->Cout + co0 + co) * g->Ho * g->Wo;
      for (int k = 0; k < 4 && 4 * r + k < g->Ho; k++)
        for (int l = 0; l < 4 && 4 * c + l < g->Wo; l++)
          plane[(4 * r + k) * g->Wo + 4 * c + l] = o[k][l] + bv;
    }
}

/* ---- AVX-512 ---- */

#if WINO_X86
#define V1(c) _mm512_set1_ps(c)
/* Loops over the 6, 16 or 36 vectors of a transform are unrolled whatever the build's -O
 * level, so their arrays live in registers and their indices are constants. */
#define UNROLL _Pragma("GCC unroll 36")

/* A float pointer `off` elements from p, which may lie outside the array: only ever
 * used by masked loads and stores whose unmasked lanes are inside it. Integer
 * arithmetic, because forming an out-of-bounds pointer directly is undefined. */
static const float *shifted(const float *p, int64_t off) {
  return (const float *)((uintptr_t)p + (uintptr_t)(off * (int64_t)sizeof(float)));
}

/* Bits [lo, hi) of a 16-bit mask, the range clamped to [0, 16]. */
static __mmask16 range_mask(int64_t lo, int64_t hi) {
  lo = lo < 0 ? 0 : lo > 16 ? 16 : lo;
  hi = hi < 0 ? 0 : hi > 16 ? 16 : hi;
  return hi <= lo ? 0 : (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
}

AVX512 static inline void bt_avx512(__m512 *o, const __m512 *d) {
  __m512 s12 = _mm512_add_ps(d[1], d[2]), d12 = _mm512_sub_ps(d[1], d[2]);
  __m512 s34 = _mm512_add_ps(d[3], d[4]), d43 = _mm512_sub_ps(d[4], d[3]);
  __m512 d42 = _mm512_sub_ps(d[4], d[2]), d31 = _mm512_sub_ps(d[3], d[1]);
  o[0] = _mm512_fmadd_ps(V1(4), d[0], _mm512_fmadd_ps(V1(-5), d[2], d[4]));
  o[1] = _mm512_fnmadd_ps(V1(4), s12, s34);
  o[2] = _mm512_fmadd_ps(V1(4), d12, d43);
  o[3] = _mm512_fmadd_ps(V1(2), d31, d42);
  o[4] = _mm512_fnmadd_ps(V1(2), d31, d42);
  o[5] = _mm512_fmadd_ps(V1(4), d[1], _mm512_fmadd_ps(V1(-5), d[3], d[5]));
}

AVX512 static inline void g_avx512(__m512 *o, const __m512 *g) {
  __m512 s = _mm512_add_ps(g[0], g[2]);
  __m512 p = _mm512_fmadd_ps(g[0], V1(1.0f / 24), _mm512_mul_ps(g[2], V1(1.0f / 6)));
  __m512 q = _mm512_mul_ps(g[1], V1(1.0f / 12));
  o[0] = _mm512_mul_ps(g[0], V1(0.25f));
  o[1] = _mm512_mul_ps(_mm512_add_ps(s, g[1]), V1(-1.0f / 6));
  o[2] = _mm512_mul_ps(_mm512_sub_ps(s, g[1]), V1(-1.0f / 6));
  o[3] = _mm512_add_ps(p, q);
  o[4] = _mm512_sub_ps(p, q);
  o[5] = g[2];
}

AVX512 static inline void at_avx512(__m512 *o, const __m512 *m) {
  __m512 s12 = _mm512_add_ps(m[1], m[2]), d12 = _mm512_sub_ps(m[1], m[2]);
  __m512 s34 = _mm512_add_ps(m[3], m[4]), d34 = _mm512_sub_ps(m[3], m[4]);
  o[0] = _mm512_add_ps(_mm512_add_ps(m[0], s12), s34);
  o[1] = _mm512_fmadd_ps(V1(2), d34, d12);
  o[2] = _mm512_fmadd_ps(V1(4), s34, s12);
  o[3] = _mm512_add_ps(_mm512_fmadd_ps(V1(8), d34, d12), m[5]);
}

/* The 16 lanes of a group are consecutive tiles; those of one row of tiles ("run") read
 * one stretch of each input row: lane l's window starts 4l columns after lane 0's. So
 * the 6 windows of a run's rows are 66 consecutive floats each, loaded whole (masked
 * at the image's edges: the zero padding) and split into columns j = 0..5 (element
 * 4l + j to lane l). A group spanning rows of tiles takes one pass per run, each
 * blended into its lanes. */
AVX512 static void input_group_avx512(const wino *g, __m512 d[6][6], int64_t ci, int64_t t,
                                      int64_t nl) {
  const __m512i idx = _mm512_set_epi32(28, 24, 20, 16, 12, 8, 4, 0, 28, 24, 20, 16, 12, 8, 4, 0);
  UNROLL for (int i = 0; i < 6; i++) UNROLL for (int j = 0; j < 6; j++) d[i][j] =
      _mm512_setzero_ps();
  for (int64_t l0 = 0; l0 < nl;) {
    int64_t tt = t + l0, b = tt / (g->th * g->tw), r = tt / g->tw % g->th, c = tt % g->tw;
    int64_t len = min64(nl - l0, g->tw - c);
    int64_t xs = 4 * (c - l0) - g->pad; /* input column of window element 0 (lane 0) */
    int64_t lo = 4 * l0 > -xs ? 4 * l0 : -xs, hi = min64(4 * (l0 + len) + 2, g->W - xs);
    __mmask16 mk[5], lanes = range_mask(l0, l0 + len);
    UNROLL for (int q = 0; q < 5; q++) mk[q] = range_mask(lo - 16 * q, hi - 16 * q);
    const float *plane = g->x + (b * g->C + ci) * g->H * g->W;
    UNROLL for (int i = 0; i < 6; i++) {
      int64_t yy = 4 * r - g->pad + i;
      if (yy < 0 || yy >= g->H)
        continue;
      const float *row = shifted(plane, yy * g->W + xs);
      __m512 z[5];
      UNROLL for (int q = 0; q < 5; q++) z[q] = _mm512_maskz_loadu_ps(mk[q], shifted(row, 16 * q));
      /* the next channel's rows, which the hardware prefetcher cannot guess */
      UNROLL for (int q = 0; q < 5; q++)
          _mm_prefetch((const char *)shifted(row, g->H * g->W + 16 * q), _MM_HINT_T0);
      __m512 col[6];
      UNROLL for (int j = 0; j < 4; j++) {
        __m512i ij = _mm512_add_epi32(idx, _mm512_set1_epi32(j));
        __m512 a = _mm512_permutex2var_ps(z[0], ij, z[1]),
               bb = _mm512_permutex2var_ps(z[2], ij, z[3]);
        col[j] = _mm512_shuffle_f32x4(a, bb, 0x44);
      }
      /* columns 4 and 5 are 0 and 1 one lane on, the last lane from z[4] */
      __m512i z4 = _mm512_castps_si512(z[4]);
      col[4] = _mm512_castsi512_ps(_mm512_alignr_epi32(z4, _mm512_castps_si512(col[0]), 1));
      col[5] = _mm512_castsi512_ps(
          _mm512_alignr_epi32(_mm512_alignr_epi32(z4, z4, 1), _mm512_castps_si512(col[1]), 1));
      UNROLL for (int j = 0; j < 6; j++) d[i][j] = _mm512_mask_mov_ps(d[i][j], lanes, col[j]);
    }
    l0 += len;
  }
}

/* One item of input_avx512's loop. The loop bodies of the AVX-512 stages live in
 * functions of their own: clang outlines an OpenMP region into a function without
 * the target attribute, where __m512 values cannot be passed. */
AVX512 static void input_item_avx512(const wino *g, int64_t t0, int64_t n, int64_t tcp,
                                     int64_t it) {
  int64_t C = g->C, vs = C * tcp; /* vs: from one V_xi to the next */
  int64_t full = C * (g->nb / 16), last = (tcp - 1) / g->nb;
  {
    int64_t blk = it / full < last ? it / full : last, rem = it - blk * full;
    int64_t bg = (min64(tcp - blk * g->nb, g->nb)) / 16; /* groups in this block */
    int64_t ci = rem / bg, tl = blk * g->nb + rem % bg * 16;
    __m512 d[6][6], t[6][6], col[6], o[6];
    input_group_avx512(g, d, ci, t0 + tl, min64(16, n - tl));
    UNROLL for (int j = 0; j < 6; j++) { /* t = B^T d, a column at a time */
      UNROLL for (int i = 0; i < 6; i++) col[i] = d[i][j];
      bt_avx512(o, col);
      UNROLL for (int k = 0; k < 6; k++) t[k][j] = o[k];
    }
    float *dst = g->V + v_off(g, tcp, ci, tl);
    UNROLL for (int k = 0; k < 6; k++) { /* row k of t B, stored as it comes */
      bt_avx512(o, t[k]);
      UNROLL for (int l = 0; l < 6; l++) _mm512_storeu_ps(dst + (6 * k + l) * vs, o[l]);
    }
  }
}

static void input_avx512(const wino *g, int64_t t0, int64_t n, int64_t tcp) {
  int64_t C = g->C, ng = tcp / 16;
  /* in V's order (column block, channel, 16 tiles), so each V_xi is written as one
   * stream: 36 scattered ones cost a read for ownership of each line */
#pragma omp parallel for schedule(static) if (C * tcp * 36 > CPU_GRAIN)
  for (int64_t it = 0; it < C * ng; it++)
    input_item_avx512(g, t0, n, tcp, it);
}

/* k9[k] lane l = element k of the 3x3 kernel of input channel l: the 16 kernels at src,
 * 9 floats apart (nl of them; zeros after), transposed in registers (gathers of stride 9
 * cost several times more). */
AVX512 static inline void load_kernels16(__m512 *k9, const float *src, int64_t nl) {
  __m512 r[16];
  UNROLL for (int l = 0; l < 16; l++) r[l] =
      _mm512_maskz_loadu_ps(l < nl ? 0x1FF : 0, src + 9 * (l < nl ? l : 0));
  cpu_transpose16(r); /* only the first 9 columns are used */
  UNROLL for (int k = 0; k < 9; k++) k9[k] = r[k];
}

AVX512 static void weights_item_avx512(const wino *g, int64_t co0, int64_t m, int64_t co) {
  int64_t C = g->C, us = m * C; /* us: from one U_xi to the next */
  size_t es = sdr_dtype_size(g->wt), step = 9 * 16 * es;
  for (int64_t ci = 0; ci < C; ci += 16) {
    int64_t nl = min64(16, C - ci), first = ((co0 + co) * C + ci) * 9;
    const char *ahead = (const char *)g->w + (size_t)first * es + WINO_PREFETCH * step;
    for (size_t q = 0; q < step; q += 64)
      _mm_prefetch(ahead + q, _MM_HINT_T0);
    float *dst = g->U + co * C + ci;
    float buf[144];
    const float *src = (const float *)g->w + first;
    if (g->wt != SDR_F32) { /* widened as used: 16 input channels at a time */
      cpu_widen(buf, (const char *)g->w + (size_t)first * es, g->wt, 9 * nl);
      src = buf;
    }
    __m512 k9[9], col[3], t[6][3], o[6];
    load_kernels16(k9, src, nl);
    UNROLL for (int j = 0; j < 3; j++) { /* t = G g, a column at a time */
      UNROLL for (int i = 0; i < 3; i++) col[i] = k9[3 * i + j];
      g_avx512(o, col);
      UNROLL for (int k = 0; k < 6; k++) t[k][j] = o[k];
    }
    __mmask16 lanes = range_mask(0, nl);
    UNROLL for (int k = 0; k < 6; k++) { /* row k of t G^T */
      g_avx512(o, t[k]);
      UNROLL for (int l = 0; l < 6; l++) _mm512_mask_storeu_ps(dst + (6 * k + l) * us, lanes, o[l]);
    }
  }
}

static void weights_avx512(const wino *g, int64_t co0, int64_t m) {
#pragma omp parallel for schedule(static) if (m * g->C * 36 > CPU_GRAIN)
  for (int64_t co = 0; co < m; co++)
    weights_item_avx512(g, co0, m, co);
}

/* out[4l + j] = y[j][l]: four vectors of 16 tile columns into 64 consecutive floats. */
AVX512 static inline void interleave4(__m512 *o, const __m512 *y) {
  __m512 a = _mm512_unpacklo_ps(y[0], y[1]), b = _mm512_unpackhi_ps(y[0], y[1]);
  __m512 c = _mm512_unpacklo_ps(y[2], y[3]), d = _mm512_unpackhi_ps(y[2], y[3]);
  /* e, f, h, k: per 128-bit chunk q, tile 4q, 4q+1, 4q+2, 4q+3's four values */
  __m512 e = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a), _mm512_castps_pd(c)));
  __m512 f = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a), _mm512_castps_pd(c)));
  __m512 h = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(b), _mm512_castps_pd(d)));
  __m512 k = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(b), _mm512_castps_pd(d)));
  __m512 p0 = _mm512_shuffle_f32x4(e, f, 0x44), p1 = _mm512_shuffle_f32x4(h, k, 0x44);
  __m512 p2 = _mm512_shuffle_f32x4(e, f, 0xEE), p3 = _mm512_shuffle_f32x4(h, k, 0xEE);
  o[0] = _mm512_shuffle_f32x4(p0, p1, 0x88);
  o[1] = _mm512_shuffle_f32x4(p0, p1, 0xDD);
  o[2] = _mm512_shuffle_f32x4(p2, p3, 0x88);
  o[3] = _mm512_shuffle_f32x4(p2, p3, 0xDD);
}

AVX512 static void output_item_avx512(const wino *g, int64_t co0, int64_t m, int64_t t0, int64_t n,
                                      int64_t tcp, int64_t it) {
  int64_t ng = (n + 15) / 16, ms = m * tcp; /* ms: from one M_xi to the next */
  {
    int64_t co = it / ng, tl = it % ng * 16, nl = min64(16, n - tl);
    const float *src = g->M + co * tcp + tl;
    __m512 t[4][6], col[6], a[4], o[4][4];
    UNROLL for (int j = 0; j < 6; j++) { /* t = A^T m, a column at a time */
      UNROLL for (int i = 0; i < 6; i++) col[i] = _mm512_loadu_ps(src + (6 * i + j) * ms);
      at_avx512(a, col);
      UNROLL for (int k = 0; k < 4; k++) t[k][j] = a[k];
    }
    __m512 bv = V1(g->bias ? g->bias[co0 + co] : 0.0f);
    UNROLL for (int k = 0; k < 4; k++) { /* row k of t A, plus the bias */
      at_avx512(a, t[k]);
      UNROLL for (int l = 0; l < 4; l++) a[l] = _mm512_add_ps(a[l], bv);
      interleave4(o[k], a);
    }
    /* runs of lanes in one row of tiles, as in input_group_avx512 */
    for (int64_t l0 = 0; l0 < nl;) {
      int64_t tt = t0 + tl + l0, b = tt / (g->th * g->tw), r = tt / g->tw % g->th, c = tt % g->tw;
      int64_t len = min64(nl - l0, g->tw - c), xs = 4 * (c - l0); /* column of element 0 */
      int64_t hi = min64(4 * (l0 + len), g->Wo - xs);
      __mmask16 mk[4];
      UNROLL for (int q = 0; q < 4; q++) mk[q] = range_mask(4 * l0 - 16 * q, hi - 16 * q);
      float *plane = g->y + (b * g->Cout + co0 + co) * g->Ho * g->Wo;
      UNROLL for (int k = 0; k < 4; k++) {
        if (4 * r + k >= g->Ho)
          break;
        float *row = (float *)shifted(plane, (4 * r + k) * g->Wo + xs);
        UNROLL for (int q = 0; q < 4; q++)
            _mm512_mask_storeu_ps((float *)shifted(row, 16 * q), mk[q], o[k][q]);
      }
      l0 += len;
    }
  }
}

static void output_avx512(const wino *g, int64_t co0, int64_t m, int64_t t0, int64_t n,
                          int64_t tcp) {
  int64_t ng = (n + 15) / 16;
#pragma omp parallel for schedule(static) if (m * tcp * 36 > CPU_GRAIN)
  for (int64_t it = 0; it < m * ng; it++)
    output_item_avx512(g, co0, m, t0, n, tcp, it);
}
#endif /* WINO_X86 */

/* ---- planning and driving ---- */

int cpu_winograd_pays(int64_t B, int64_t Ho, int64_t Wo) {
  /* Winograd wins at any channel count (3 channels in or out included: OpenBLAS does
   * poorly with so few rows), but loses on small images, where transforming the weights
   * (~5 ns a channel pair, more than reading them) costs more than the whole im2col
   * product, and where the 4x4 tiles would be mostly padding. Measured inside SD 1.5's
   * UNet call (2 cores, weights cold), for the 8x8 layers (1280 and 2560 channels in):
   * batch 1 im2col 92 ms against 282, batch 2 168 against 284, batch 4 377 against 210;
   * its 16x16 layers: batch 1 281 against 217, so Winograd there. */
  int64_t tiles = ((Ho + 3) / 4) * ((Wo + 3) / 4);
  return B * Ho * Wo > 128 && 36 * tiles * 2 <= 9 * Ho * Wo;
}

int cpu_conv2d_winograd(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *w,
                        const sdr_tensor *bias, int padding) {
  wino g = {.B = in->shape[0],
            .C = in->shape[1],
            .H = in->shape[2],
            .W = in->shape[3],
            .Cout = out->shape[1],
            .Ho = out->shape[2],
            .Wo = out->shape[3],
            .pad = padding,
            .x = in->data,
            .y = out->data,
            .w = w->data,
            .wt = w->dtype};
  int avx = WINO_X86 && cpu_vmath_avx512(), avx2 = WINO_X86 && cpu_vmath_avx2();
  const cpu_mk_row *mk = cpu_mk_pick();
  g.th = (g.Ho + 3) / 4;
  g.tw = (g.Wo + 3) / 4;
  g.nt = g.B * g.th * g.tw;
  float *ws = cpu_state_of(be)->ws;
  size_t ws_n = cpu_ws_floats(be);

  /* Workspace: [bias (Cout), when widened] [U (36, mc, C)] [V (36, C, tc)] [M (36, mc, tc)],
   * each part a multiple of 16 floats so that all stay 64-byte aligned. */
  size_t used = 0;
  if (bias) {
    if (bias->dtype == SDR_F32) {
      g.bias = bias->data;
    } else {
      cpu_widen(ws, bias->data, bias->dtype, g.Cout);
      g.bias = ws;
      used = (size_t)round_up(g.Cout, 16);
    }
  }
  if (used > ws_n)
    return 1;
  size_t room = ws_n - used;
  int64_t C = g.C, ntp = round_up(g.nt, 16), fl = (int64_t)(room / 36); /* per position */
  /* Output channels per block: all when their U fits its budget (the weights are then
   * transformed once per call), else a multiple of 6, the kernel's rows. */
  int64_t mc = g.Cout, tc;
  if (36 * mc * C > WINO_U_FLOATS)
    mc = WINO_U_FLOATS / (36 * C) / 6 * 6 < 6 ? 6 : WINO_U_FLOATS / (36 * C) / 6 * 6;
  if (mc >= g.Cout) {
    /* tiles per chunk: V and M within their budget, which the caches hold best */
    tc = WINO_VM_FLOATS / (36 * (C + mc));
    tc = tc >= 2 * WINO_NB ? tc / WINO_NB * WINO_NB : tc / 16 * 16;
  } else {
    /* the weights are transformed again for every chunk (~5 ns a channel pair, some 7%
     * of a chunk of 128 tiles): chunks as large as the workspace allows while blocks
     * keep 48 output channels, each block reading V once */
    for (tc = ntp; tc > WINO_NB; tc = round_up(tc / 2, WINO_NB))
      if (fl - C * tc >= 48 * (C + tc))
        break;
    int64_t fit = (fl - C * tc) / (C + tc) / 6 * 6;
    mc = fit >= 6 && fit < mc ? fit : mc;
  }
  tc = tc < 16 ? 16 : tc > ntp ? ntp : tc;
  int64_t nblocks = (g.Cout + mc - 1) / mc; /* as even as multiples of 6 allow */
  mc = nblocks > 1 ? min64(mc, round_up((g.Cout + nblocks - 1) / nblocks, 6)) : mc;
  /* a smaller workspace than planned for: fewer tiles, then fewer channels */
  while ((size_t)(36 * (mc * C + (C + mc) * tc)) > room && (tc > 16 || mc > 6)) {
    if (tc > 16)
      tc = round_up(tc / 2, 16);
    else
      mc = mc / 2 < 6 ? 6 : mc / 2;
  }
  if ((size_t)(36 * (mc * C + (C + mc) * tc)) > room)
    return 1; /* the caller's im2col needs less */
  g.U = ws + used;
  g.V = g.U + 36 * mc * C;
  g.M = g.V + 36 * g.C * tc;
  g.tc = tc;
  g.mc = mc;

  int once = mc >= g.Cout; /* one block: weights transformed once for all chunks */
  for (int64_t t0 = 0; t0 < g.nt; t0 += tc) {
    int64_t n = min64(tc, g.nt - t0), tcp = round_up(n, 16);
    g.nb = mk ? WINO_NB : tcp;
#if WINO_X86
    if (avx)
      input_avx512(&g, t0, n, tcp);
    else if (avx2)
      cpu_wino_input_avx2(&g, t0, n, tcp);
    else
#endif
      input_c(&g, t0, n, tcp);
    for (int64_t co0 = 0; co0 < g.Cout; co0 += mc) {
      int64_t m = min64(mc, g.Cout - co0);
      if (!once || t0 == 0) {
#if WINO_X86
        if (avx)
          weights_avx512(&g, co0, m);
        else if (avx2)
          cpu_wino_weights_avx2(&g, co0, m);
        else
#endif
          weights_c(&g, co0, m);
      }
      if (mk)
        products_mk(&g, mk, m, tcp);
      else
        products_blas(&g, m, tcp);
#if WINO_X86
      if (avx)
        output_avx512(&g, co0, m, t0, n, tcp);
      else if (avx2)
        cpu_wino_output_avx2(&g, co0, m, t0, n, tcp);
      else
#endif
        output_c(&g, co0, m, t0, n, tcp);
    }
  }
  return 0;
}

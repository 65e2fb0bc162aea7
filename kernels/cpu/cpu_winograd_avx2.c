/* kernels/cpu/cpu_winograd_avx2.c — cpu_winograd.c's transforms on AVX2, for CPUs without
 * AVX-512 (AMD's Zen 1 to 3 among them), 8 tiles or 8 input channels per vector; their
 * products run on the AVX2 kernel (cpu_microkernel_avx2.c). In plain C the input and
 * output transforms took as long as the products at SD 1.5's 320 channels.
 *
 * As in the AVX-512 transforms, the lanes of a vector are consecutive tiles, and those of
 * one row of tiles (a "run") read one stretch of each input row: lane l's 6x6 window starts
 * 4l columns after lane 0's. The stretch is loaded whole (masked at the image's edges: the
 * zero padding) and split into the window's columns with in-register shuffles; a group of 8
 * tiles spanning rows of tiles takes one pass per run, blended into its lanes.
 */
#include <string.h>

#include "kernels/cpu/cpu_internal.h" // cpu_widen, CPU_GRAIN
#include "kernels/cpu/cpu_winograd.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))
/* Loops over the vectors of a transform are unrolled whatever the build's -O level, so
 * their arrays live in registers (or fixed stack slots) and their indices are constants. */
#define UNROLL _Pragma("GCC unroll 36")

/* A float pointer `off` elements from p, which may lie outside the array: only ever used
 * by masked loads and stores whose unmasked lanes are inside it. Integer arithmetic,
 * because forming an out-of-bounds pointer directly is undefined. */
static const float *shifted(const float *p, int64_t off) {
  return (const float *)((uintptr_t)p + (uintptr_t)(off * (int64_t)sizeof(float)));
}

/* Lanes whose index base + l lies in [lo, hi): all bits set, the others zero. */
AVX2 static inline __m256i lanes_in(int64_t base, int64_t lo, int64_t hi) {
  lo -= base;
  hi -= base;
  lo = lo < 0 ? 0 : lo > 8 ? 8 : lo;
  hi = hi < 0 ? 0 : hi > 8 ? 8 : hi;
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_and_si256(_mm256_cmpgt_epi32(iota, _mm256_set1_epi32((int)lo - 1)),
                          _mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi), iota));
}

#define V1(c) _mm256_set1_ps(c)

/* o = B^T d on 8 lanes (cpu_winograd.c's bt_c) */
AVX2 static inline void bt_avx2(__m256 *o, const __m256 *d) {
  __m256 s12 = _mm256_add_ps(d[1], d[2]), d12 = _mm256_sub_ps(d[1], d[2]);
  __m256 s34 = _mm256_add_ps(d[3], d[4]), d43 = _mm256_sub_ps(d[4], d[3]);
  __m256 d42 = _mm256_sub_ps(d[4], d[2]), d31 = _mm256_sub_ps(d[3], d[1]);
  o[0] = _mm256_fmadd_ps(V1(4), d[0], _mm256_fmadd_ps(V1(-5), d[2], d[4]));
  o[1] = _mm256_fnmadd_ps(V1(4), s12, s34);
  o[2] = _mm256_fmadd_ps(V1(4), d12, d43);
  o[3] = _mm256_fmadd_ps(V1(2), d31, d42);
  o[4] = _mm256_fnmadd_ps(V1(2), d31, d42);
  o[5] = _mm256_fmadd_ps(V1(4), d[1], _mm256_fmadd_ps(V1(-5), d[3], d[5]));
}

/* o = A^T m on 8 lanes (cpu_winograd.c's at_c) */
AVX2 static inline void at_avx2(__m256 *o, const __m256 *m) {
  __m256 s12 = _mm256_add_ps(m[1], m[2]), d12 = _mm256_sub_ps(m[1], m[2]);
  __m256 s34 = _mm256_add_ps(m[3], m[4]), d34 = _mm256_sub_ps(m[3], m[4]);
  o[0] = _mm256_add_ps(_mm256_add_ps(m[0], s12), s34);
  o[1] = _mm256_fmadd_ps(V1(2), d34, d12);
  o[2] = _mm256_fmadd_ps(V1(4), s34, s12);
  o[3] = _mm256_add_ps(_mm256_fmadd_ps(V1(8), d34, d12), m[5]);
}

/* col[j] lane l = z element 4l + j (j = 0..5) of the 40 floats z[0..4]: a 4x8 transpose of
 * the first 32 (lane l's four values are 128-bit half l % 2 of z[l / 2]), then columns 4
 * and 5 are columns 0 and 1 one lane on, their last lane z's elements 32 and 33. */
AVX2 static inline void split_columns(__m256 *col, const __m256 *z) {
  __m256 b0 = _mm256_permute2f128_ps(z[0], z[2], 0x20),
         b1 = _mm256_permute2f128_ps(z[0], z[2], 0x31);
  __m256 b2 = _mm256_permute2f128_ps(z[1], z[3], 0x20),
         b3 = _mm256_permute2f128_ps(z[1], z[3], 0x31);
  /* b0..b3: per 128-bit half h, the four values of lanes h * 4 + 0, 1, 2, 3 */
  __m256 t0 = _mm256_unpacklo_ps(b0, b1), t1 = _mm256_unpackhi_ps(b0, b1);
  __m256 t2 = _mm256_unpacklo_ps(b2, b3), t3 = _mm256_unpackhi_ps(b2, b3);
  col[0] = _mm256_shuffle_ps(t0, t2, 0x44);
  col[1] = _mm256_shuffle_ps(t0, t2, 0xEE);
  col[2] = _mm256_shuffle_ps(t1, t3, 0x44);
  col[3] = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256i next = _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 0);
  col[4] = _mm256_blend_ps(_mm256_permutevar8x32_ps(col[0], next),
                           _mm256_permutevar8x32_ps(z[4], _mm256_set1_epi32(0)), 0x80);
  col[5] = _mm256_blend_ps(_mm256_permutevar8x32_ps(col[1], next),
                           _mm256_permutevar8x32_ps(z[4], _mm256_set1_epi32(1)), 0x80);
}

/* d[i][j] lane l: element (i, j) of tile t + l's input window, for the nl tiles there
 * (zeros in the other lanes). */
AVX2 static void input_group(const wino *g, __m256 d[6][6], int64_t ci, int64_t t, int64_t nl) {
  UNROLL for (int i = 0; i < 6; i++) UNROLL for (int j = 0; j < 6; j++) d[i][j] =
      _mm256_setzero_ps();
  for (int64_t l0 = 0; l0 < nl;) {
    int64_t tt = t + l0, b = tt / (g->th * g->tw), r = tt / g->tw % g->th, c = tt % g->tw;
    int64_t len = min64(nl - l0, g->tw - c);
    int64_t xs = 4 * (c - l0) - g->pad; /* input column of window element 0 (lane 0) */
    int64_t lo = 4 * l0 > -xs ? 4 * l0 : -xs, hi = min64(4 * (l0 + len) + 2, g->W - xs);
    __m256i mk[5], lanes = lanes_in(0, l0, l0 + len);
    UNROLL for (int q = 0; q < 5; q++) mk[q] = lanes_in(8 * q, lo, hi);
    const float *plane = g->x + (b * g->C + ci) * g->H * g->W;
    UNROLL for (int i = 0; i < 6; i++) {
      int64_t yy = 4 * r - g->pad + i;
      if (yy < 0 || yy >= g->H)
        continue;
      const float *row = shifted(plane, yy * g->W + xs);
      __m256 z[5], col[6];
      UNROLL for (int q = 0; q < 5; q++) z[q] = _mm256_maskload_ps(shifted(row, 8 * q), mk[q]);
      /* the next channel's rows, which the hardware prefetcher cannot guess */
      UNROLL for (int q = 0; q < 5; q += 2)
          _mm_prefetch((const char *)shifted(row, g->H * g->W + 8 * q), _MM_HINT_T0);
      split_columns(col, z);
      UNROLL for (int j = 0; j < 6; j++) d[i][j] =
          _mm256_blendv_ps(d[i][j], col[j], _mm256_castsi256_ps(lanes));
    }
    l0 += len;
  }
}

/* One item of cpu_wino_input_avx2's loop: 8 tiles of one channel. */
AVX2 static void input_item(const wino *g, int64_t t0, int64_t n, int64_t tcp, int64_t it) {
  int64_t C = g->C, vs = C * tcp; /* vs: from one V_xi to the next */
  int64_t full = C * (g->nb / 8), last = (tcp - 1) / g->nb;
  int64_t blk = it / full < last ? it / full : last, rem = it - blk * full;
  int64_t bg = (min64(tcp - blk * g->nb, g->nb)) / 8; /* groups in this block */
  int64_t ci = rem / bg, tl = blk * g->nb + rem % bg * 8;
  __m256 d[6][6], t[6][6], col[6], o[6];
  input_group(g, d, ci, t0 + tl, min64(8, n - tl));
  UNROLL for (int j = 0; j < 6; j++) { /* t = B^T d, a column at a time */
    UNROLL for (int i = 0; i < 6; i++) col[i] = d[i][j];
    bt_avx2(o, col);
    UNROLL for (int k = 0; k < 6; k++) t[k][j] = o[k];
  }
  float *dst = g->V + v_off(g, tcp, ci, tl);
  UNROLL for (int k = 0; k < 6; k++) { /* row k of t B, stored as it comes */
    bt_avx2(o, t[k]);
    UNROLL for (int l = 0; l < 6; l++) _mm256_storeu_ps(dst + (6 * k + l) * vs, o[l]);
  }
}

void cpu_wino_input_avx2(const wino *g, int64_t t0, int64_t n, int64_t tcp) {
  int64_t C = g->C, ng = tcp / 8;
  /* in V's order (column block, channel, 8 tiles), so each V_xi is written as one stream */
#pragma omp parallel for schedule(static) if (C * tcp * 36 > CPU_GRAIN)
  for (int64_t it = 0; it < C * ng; it++)
    input_item(g, t0, n, tcp, it);
}

/* o: 32 consecutive floats, out[4l + j] = y[j][l] (split_columns undone). */
AVX2 static inline void interleave4(__m256 *o, const __m256 *y) {
  __m256 a = _mm256_unpacklo_ps(y[0], y[1]), b = _mm256_unpackhi_ps(y[0], y[1]);
  __m256 c = _mm256_unpacklo_ps(y[2], y[3]), d = _mm256_unpackhi_ps(y[2], y[3]);
  /* per 128-bit half h: e lane 4h's four values, f lane 4h + 1's, p 4h + 2's, q 4h + 3's */
  __m256 e = _mm256_shuffle_ps(a, c, 0x44), f = _mm256_shuffle_ps(a, c, 0xEE);
  __m256 p = _mm256_shuffle_ps(b, d, 0x44), q = _mm256_shuffle_ps(b, d, 0xEE);
  o[0] = _mm256_permute2f128_ps(e, f, 0x20);
  o[1] = _mm256_permute2f128_ps(p, q, 0x20);
  o[2] = _mm256_permute2f128_ps(e, f, 0x31);
  o[3] = _mm256_permute2f128_ps(p, q, 0x31);
}

/* One item of cpu_wino_output_avx2's loop: 8 tiles of one output channel. */
AVX2 static void output_item(const wino *g, int64_t co0, int64_t m, int64_t t0, int64_t n,
                             int64_t tcp, int64_t it) {
  int64_t ng = (n + 7) / 8, ms = m * tcp; /* ms: from one M_xi to the next */
  int64_t co = it / ng, tl = it % ng * 8, nl = min64(8, n - tl);
  const float *src = g->M + co * tcp + tl;
  __m256 t[4][6], col[6], a[4], o[4][4];
  UNROLL for (int j = 0; j < 6; j++) { /* t = A^T m, a column at a time */
    UNROLL for (int i = 0; i < 6; i++) col[i] = _mm256_loadu_ps(src + (6 * i + j) * ms);
    at_avx2(a, col);
    UNROLL for (int k = 0; k < 4; k++) t[k][j] = a[k];
  }
  __m256 bv = V1(g->bias ? g->bias[co0 + co] : 0.0f);
  UNROLL for (int k = 0; k < 4; k++) { /* row k of t A, plus the bias */
    at_avx2(a, t[k]);
    UNROLL for (int l = 0; l < 4; l++) a[l] = _mm256_add_ps(a[l], bv);
    interleave4(o[k], a);
  }
  /* runs of lanes in one row of tiles, as in input_group */
  for (int64_t l0 = 0; l0 < nl;) {
    int64_t tt = t0 + tl + l0, b = tt / (g->th * g->tw), r = tt / g->tw % g->th, c = tt % g->tw;
    int64_t len = min64(nl - l0, g->tw - c), xs = 4 * (c - l0); /* column of element 0 */
    int64_t hi = min64(4 * (l0 + len), g->Wo - xs);
    __m256i mk[4];
    UNROLL for (int q = 0; q < 4; q++) mk[q] = lanes_in(8 * q, 4 * l0, hi);
    float *plane = g->y + (b * g->Cout + co0 + co) * g->Ho * g->Wo;
    UNROLL for (int k = 0; k < 4; k++) {
      if (4 * r + k >= g->Ho)
        break;
      float *row = (float *)shifted(plane, (4 * r + k) * g->Wo + xs);
      UNROLL for (int q = 0; q < 4; q++)
          _mm256_maskstore_ps((float *)shifted(row, 8 * q), mk[q], o[k][q]);
    }
    l0 += len;
  }
}

void cpu_wino_output_avx2(const wino *g, int64_t co0, int64_t m, int64_t t0, int64_t n,
                          int64_t tcp) {
  int64_t ng = (n + 7) / 8;
#pragma omp parallel for schedule(static) if (m * tcp * 36 > CPU_GRAIN)
  for (int64_t it = 0; it < m * ng; it++)
    output_item(g, co0, m, t0, n, tcp, it);
}

/* The weights' transform on 8 input channels at a time: their 72 weights are contiguous, gathered
 * into 9 vectors (element k of each kernel), G applied on vectors, and each of the 36 rows of U
 * gets 8 consecutive values, where the scalar loop writes 36 rows one value at a time. */
AVX2 static inline void g_avx2(__m256 *o, const __m256 *g) {
  const __m256 s = _mm256_add_ps(g[0], g[2]);
  const __m256 p = _mm256_add_ps(_mm256_mul_ps(g[0], _mm256_set1_ps(1.0f / 24)),
                                 _mm256_mul_ps(g[2], _mm256_set1_ps(1.0f / 6)));
  const __m256 q = _mm256_mul_ps(g[1], _mm256_set1_ps(1.0f / 12));
  const __m256 sixth = _mm256_set1_ps(-1.0f / 6);
  o[0] = _mm256_mul_ps(g[0], _mm256_set1_ps(0.25f));
  o[1] = _mm256_mul_ps(_mm256_add_ps(s, g[1]), sixth);
  o[2] = _mm256_mul_ps(_mm256_sub_ps(s, g[1]), sixth);
  o[3] = _mm256_add_ps(p, q);
  o[4] = _mm256_sub_ps(p, q);
  o[5] = g[2];
}

AVX2 static void weights_item_avx2(const wino *g, int64_t co0, int64_t m, int64_t co) {
  const int64_t C = g->C, us = m * C;
  const size_t es = sdr_dtype_size(g->wt);
  const __m256i idx = _mm256_setr_epi32(0, 9, 18, 27, 36, 45, 54, 63);
  int64_t ci = 0;
  float buf[72];
  for (; ci + 8 <= C; ci += 8) {
    const int64_t first = ((co0 + co) * C + ci) * 9;
    const float *src = (const float *)g->w + first;
    if (g->wt != SDR_F32) {
      cpu_widen(buf, (const char *)g->w + (size_t)first * es, g->wt, 72);
      src = buf;
    }
    __m256 k9[9], col[3], t[6][3], o[6];
    for (int k = 0; k < 9; k++)
      k9[k] = _mm256_i32gather_ps(src + k, idx, 4);
    for (int j = 0; j < 3; j++) { /* t = G g, a column at a time */
      for (int i = 0; i < 3; i++)
        col[i] = k9[3 * i + j];
      g_avx2(o, col);
      for (int k = 0; k < 6; k++)
        t[k][j] = o[k];
    }
    float *dst = g->U + co * C + ci;
    for (int k = 0; k < 6; k++) { /* row k of t G^T */
      g_avx2(o, t[k]);
      for (int l = 0; l < 6; l++)
        _mm256_storeu_ps(dst + (6 * k + l) * us, o[l]);
    }
  }
  for (; ci < C; ci++) /* the last C % 8 as weights_c does */
    cpu_wino_weights_pair_c(g, co0, m, co, ci);
}

void cpu_wino_weights_avx2(const wino *g, int64_t co0, int64_t m) {
#pragma omp parallel for schedule(static) if (m * g->C * 36 > CPU_GRAIN)
  for (int64_t co = 0; co < m; co++)
    weights_item_avx2(g, co0, m, co);
}

#endif

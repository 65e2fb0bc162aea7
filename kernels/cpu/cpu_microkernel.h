/* kernels/cpu/cpu_microkernel.h — our own AVX-512 matrix-product kernel, for the CPU
 * backend's products that OpenBLAS would run at half speed here (OpenBLAS takes its
 * kernels from OPENBLAS_CORETYPE, which the environment sets to Haswell: AVX2).
 *
 *   C (R, 16 S) (=|+=) A (R, K; row stride lda) @ B (K, 16 S; row stride ldb)
 *
 * R*S accumulators (24 at most) stay in registers, with S loads of B and R broadcasts
 * of A per k: about 250 GFLOP/s on one core of the development machine, its FMA peak.
 * cpu_microkernels[R - 1][S - 1] for R in 1..6, S in 1..4; `accumulate` adds onto C.
 * cpu_microkernel_avx2.c has the same kernels for CPUs with AVX2 but no AVX-512;
 * cpu_mk_pick() gives the table for this CPU.
 * Used by cpu_winograd.c (its 36 products), cpu_gemm.c (linear layers, convolutions' products)
 * and cpu_attention_mk.c.
 */
#ifndef SDR_KERNELS_CPU_MICROKERNEL_H
#define SDR_KERNELS_CPU_MICROKERNEL_H

#include <stdint.h>

#include "kernels/cpu/cpu_internal.h" // cpu_vmath_avx512, cpu_vmath_avx2

typedef void (*cpu_microkernel)(int accumulate, int64_t K, const float *A, int64_t lda,
                                const float *B, int64_t ldb, float *Cm, int64_t ldc);
typedef cpu_microkernel cpu_mk_row[4];

#if defined(__x86_64__) && defined(__GNUC__)
#define CPU_MK_X86 1
#include <immintrin.h>
#define CPU_MK_AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))

CPU_MK_AVX512 static inline __attribute__((always_inline)) void
cpu_mk_body(int R, int S, int accumulate, int64_t K, const float *A, int64_t lda, const float *B,
            int64_t ldb, float *Cm, int64_t ldc) {
  __m512 acc[6][4], b[4];
#pragma GCC unroll 6
  for (int r = 0; r < R; r++)
#pragma GCC unroll 4
    for (int s = 0; s < S; s++)
      acc[r][s] = accumulate ? _mm512_loadu_ps(Cm + r * ldc + 16 * s) : _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k++) {
#pragma GCC unroll 4
    for (int s = 0; s < S; s++)
      b[s] = _mm512_loadu_ps(B + k * ldb + 16 * s);
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
      __m512 a = _mm512_set1_ps(A[r * lda + k]);
#pragma GCC unroll 4
      for (int s = 0; s < S; s++)
        acc[r][s] = _mm512_fmadd_ps(a, b[s], acc[r][s]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < R; r++)
#pragma GCC unroll 4
    for (int s = 0; s < S; s++)
      _mm512_storeu_ps(Cm + r * ldc + 16 * s, acc[r][s]);
}

/* r[c] = column c of the 16 rows r[0..15]: a 16x16 transpose in registers (unpacks within
 * 128-bit chunks, then chunk shuffles). Inlined, the columns a caller never reads cost
 * nothing. */
CPU_MK_AVX512 static inline __attribute__((always_inline)) void cpu_transpose16(__m512 *r) {
  __m512 t[16], u[16];
#pragma GCC unroll 8
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 16; i += 4) { /* u[i + j], 128-bit chunk c: column 4c + j, rows i..i+3 */
    __m512d t0 = _mm512_castps_pd(t[i]), t1 = _mm512_castps_pd(t[i + 1]);
    __m512d t2 = _mm512_castps_pd(t[i + 2]), t3 = _mm512_castps_pd(t[i + 3]);
    u[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
    u[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
    u[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
    u[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
  }
#pragma GCC unroll 4
  for (int j = 0; j < 4; j++) {
    __m512 a = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x44),
           b = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x44);
    __m512 c = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xEE),
           d = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xEE);
    r[j] = _mm512_shuffle_f32x4(a, b, 0x88);
    r[4 + j] = _mm512_shuffle_f32x4(a, b, 0xDD);
    r[8 + j] = _mm512_shuffle_f32x4(c, d, 0x88);
    r[12 + j] = _mm512_shuffle_f32x4(c, d, 0xDD);
  }
}

#define CPU_MK(R, S)                                                                               \
  CPU_MK_AVX512 static void cpu_mk_##R##x##S(int accumulate, int64_t K, const float *A,            \
                                             int64_t lda, const float *B, int64_t ldb, float *Cm,  \
                                             int64_t ldc) {                                        \
    if (accumulate)                                                                                \
      cpu_mk_body(R, S, 1, K, A, lda, B, ldb, Cm, ldc);                                            \
    else                                                                                           \
      cpu_mk_body(R, S, 0, K, A, lda, B, ldb, Cm, ldc);                                            \
  }
#define CPU_MK_ROW(R) CPU_MK(R, 1) CPU_MK(R, 2) CPU_MK(R, 3) CPU_MK(R, 4)
CPU_MK_ROW(1)
CPU_MK_ROW(2)
CPU_MK_ROW(3)
CPU_MK_ROW(4)
CPU_MK_ROW(5)
CPU_MK_ROW(6)
#define CPU_MK_TABLE(R)                                                                            \
  { cpu_mk_##R##x1, cpu_mk_##R##x2, cpu_mk_##R##x3, cpu_mk_##R##x4 }
static const cpu_microkernel cpu_microkernels[6][4] = {CPU_MK_TABLE(1), CPU_MK_TABLE(2),
                                                       CPU_MK_TABLE(3), CPU_MK_TABLE(4),
                                                       CPU_MK_TABLE(5), CPU_MK_TABLE(6)};

extern const cpu_microkernel cpu_microkernels_avx2[6][4]; /* cpu_microkernel_avx2.c */

/* This CPU's kernels, [R - 1][S - 1]: AVX-512's, AVX2's, or NULL where neither runs
 * (SDREPL_CPU_ISA=generic, another CPU): the caller's OpenBLAS path then. */
static inline const cpu_mk_row *cpu_mk_pick(void) {
  if (cpu_vmath_avx512())
    return cpu_microkernels;
  if (cpu_vmath_avx2())
    return cpu_microkernels_avx2;
  return 0;
}
#else
#define CPU_MK_X86 0
static inline const cpu_mk_row *cpu_mk_pick(void) { return 0; }
#endif

#endif

/* kernels/cpu/cpu_microkernel_avx2.c — cpu_microkernel.h's matrix-product kernel for CPUs
 * with AVX2 and FMA but no AVX-512 (AMD's Zen 1 to 3, Intel's desktop parts), where OpenBLAS
 * would otherwise run every product: its own kernel is as fast, but each call packs both
 * operands and wakes its threads, which on SD 1.5's UNet call cost a fifth of the time
 * (the Winograd products' operands and attention's keys are already laid out for us).
 *
 *   C (R, 16 S) (=|+=) A (R, K; row stride lda) @ B (K, 16 S; row stride ldb)
 *
 * Sixteen 256-bit registers hold 6 rows by 16 columns of C (12), two of B's row and one
 * broadcast of A: 12 multiply-adds per 8 loads, at the FMA peak from the L1 cache (92
 * GFLOP/s on one core of a Zen 3 EPYC). Wider blocks are done 16 columns at a time, A's
 * rows read again from L1.
 */
#include "kernels/cpu/cpu_microkernel.h"

#if CPU_MK_X86

#define CPU_MK_AVX2 __attribute__((target("avx2,fma")))

CPU_MK_AVX2 static inline __attribute__((always_inline)) void
mk_body(int R, int accumulate, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb,
        float *Cm, int64_t ldc) {
  __m256 acc[6][2];
#pragma GCC unroll 6
  for (int r = 0; r < R; r++) {
    acc[r][0] = accumulate ? _mm256_loadu_ps(Cm + r * ldc) : _mm256_setzero_ps();
    acc[r][1] = accumulate ? _mm256_loadu_ps(Cm + r * ldc + 8) : _mm256_setzero_ps();
  }
  for (int64_t k = 0; k < K; k++) {
    __m256 b0 = _mm256_loadu_ps(B + k * ldb), b1 = _mm256_loadu_ps(B + k * ldb + 8);
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
      __m256 a = _mm256_broadcast_ss(A + r * lda + k);
      acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < R; r++) {
    _mm256_storeu_ps(Cm + r * ldc, acc[r][0]);
    _mm256_storeu_ps(Cm + r * ldc + 8, acc[r][1]);
  }
}

#define MK(R, S)                                                                                   \
  CPU_MK_AVX2 static void mk_##R##x##S(int accumulate, int64_t K, const float *A, int64_t lda,     \
                                       const float *B, int64_t ldb, float *Cm, int64_t ldc) {      \
    for (int s = 0; s < S; s++) {                                                                  \
      if (accumulate)                                                                              \
        mk_body(R, 1, K, A, lda, B + 16 * s, ldb, Cm + 16 * s, ldc);                               \
      else                                                                                         \
        mk_body(R, 0, K, A, lda, B + 16 * s, ldb, Cm + 16 * s, ldc);                               \
    }                                                                                              \
  }
#define MK_ROW(R) MK(R, 1) MK(R, 2) MK(R, 3) MK(R, 4)
MK_ROW(1)
MK_ROW(2)
MK_ROW(3)
MK_ROW(4)
MK_ROW(5)
MK_ROW(6)
#define MK_TABLE(R)                                                                                \
  { mk_##R##x1, mk_##R##x2, mk_##R##x3, mk_##R##x4 }
const cpu_microkernel cpu_microkernels_avx2[6][4] = {MK_TABLE(1), MK_TABLE(2), MK_TABLE(3),
                                                     MK_TABLE(4), MK_TABLE(5), MK_TABLE(6)};

#endif

/* kernels/cpu/cpu_gemm.c — matrix products on our own kernel (cpu_microkernel.h: AVX-512,
 * or AVX2 where the CPU has no AVX-512) instead of OpenBLAS, which on AVX-512 CPUs runs its
 * AVX2 kernels at half the speed (OPENBLAS_CORETYPE=Haswell) and on AVX2 CPUs packs both
 * operands and wakes its threads on every call.
 *
 * cpu_gemm_nn: C (M, N) (+)= A (M, K) @ B (K, N), B's rows already what the kernel
 * reads (a convolution's weights times its input or im2col columns).
 * Work items are (96 rows, 64 columns) blocks, K walked in blocks of CPU_GEMM_KC. The
 * AVX-512 kernel reads B in place; AVX2's first copies each (CPU_GEMM_KC, 64) block of B
 * into a contiguous one on the thread's stack unless its rows already follow one another:
 * B's rows are a whole image row of pixels apart (16 KB at 64x64), so in place its 256 rows
 * fall into a few cache sets and are read from L3 for every 6 rows of C (a 1x1 convolution
 * at 64x64 ran at half OpenBLAS's speed).
 *
 * cpu_gemm_nt, for linear layers:
 *   C (M, N) = A (M, K) @ W (N, K)^T,  W float32, float16 or bfloat16
 *
 * W is packed (and widened) into the workspace as panels of 64 output features,
 * each panel K rows of 64 consecutive floats: the B operand the kernel reads a row
 * at a time; with AVX-512, 16 features by 16 dims are read, widened and transposed in
 * registers (with AVX2, 8 by 8). Panels that do not fit at once are done a group at a time.
 * Work items are (a block of rows, a panel); within one, K is walked in blocks of
 * CPU_GEMM_KC so that the panel's block (64 KB) stays in L2 while every 6-row strip of the
 * row block passes over it, the first K block storing into C and the others adding.
 * Summation order: K ascending within each block of CPU_GEMM_KC, blocks in order, as a
 * blocked BLAS sums; results differ from OpenBLAS's in the last bits only.
 */
#include <string.h>

#include "kernels/cpu/cpu_internal.h"
#include "kernels/cpu/cpu_microkernel.h" // cpu_mk_pick, cpu_transpose16
#include "kernels/half.h"                // sdr_f16_to_f32, sdr_bf16_to_f32

enum { CPU_GEMM_NB = 64, CPU_GEMM_KC = 256, CPU_GEMM_MB = 96 };

#if CPU_MK_X86

static float load_w(const void *w, sdr_dtype wt, int64_t i) {
  if (wt == SDR_F16)
    return sdr_f16_to_f32(((const uint16_t *)w)[i]);
  if (wt == SDR_BF16)
    return sdr_bf16_to_f32(((const uint16_t *)w)[i]);
  return ((const float *)w)[i];
}

/* 16 consecutive elements of W from element i, widened to float32. */
CPU_MK_AVX512 static inline __m512 load16_w(const void *w, sdr_dtype wt, int64_t i) {
  if (wt == SDR_F16)
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)w + i)));
  if (wt == SDR_BF16) /* bfloat16 is float32's top half */
    return _mm512_castsi512_ps(_mm512_slli_epi32(
        _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)((const uint16_t *)w + i))), 16));
  return _mm512_loadu_ps((const float *)w + i);
}

/* One panel's 16 features j0.. (whole blocks of 16 dims): W's rows read 16 at a time,
 * widened, turned in registers, written as 16 panel rows of 64 bytes. */
CPU_MK_AVX512 static void pack16_avx512(float *panel, const void *w, sdr_dtype wt, int64_t K,
                                        int64_t n0, int64_t j0, int64_t kfull) {
  __m512 r[16];
  for (int64_t k0 = 0; k0 < kfull; k0 += 16) {
    for (int j = 0; j < 16; j++)
      r[j] = load16_w(w, wt, (n0 + j0 + j) * K + k0);
    cpu_transpose16(r);
    for (int c = 0; c < 16; c++)
      _mm512_storeu_ps(panel + (k0 + c) * CPU_GEMM_NB + j0, r[c]);
  }
}

#define CPU_GEMM_AVX2 __attribute__((target("avx2,fma,f16c")))

/* 8 consecutive elements of W from element i, widened to float32. */
CPU_GEMM_AVX2 static inline __m256 load8_w(const void *w, sdr_dtype wt, int64_t i) {
  if (wt == SDR_F16)
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)));
  if (wt == SDR_BF16)
    return _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i))), 16));
  return _mm256_loadu_ps((const float *)w + i);
}

/* pack16_avx512's work on AVX2: 8 features by 8 dims at a time, turned in registers. */
CPU_GEMM_AVX2 static void pack16_avx2(float *panel, const void *w, sdr_dtype wt, int64_t K,
                                      int64_t n0, int64_t j0, int64_t kfull) {
  for (int64_t k0 = 0; k0 < kfull; k0 += 8)
    for (int64_t jh = j0; jh < j0 + 16; jh += 8) {
      __m256 r[8], t[8], u[8];
      for (int j = 0; j < 8; j++)
        r[j] = load8_w(w, wt, (n0 + jh + j) * K + k0);
      for (int j = 0; j < 8; j += 2) {
        t[j] = _mm256_unpacklo_ps(r[j], r[j + 1]);
        t[j + 1] = _mm256_unpackhi_ps(r[j], r[j + 1]);
      }
      for (int j = 0; j < 8; j += 4) { /* u[j + i]: column i, then column i + 4, of rows j.. j+3 */
        u[j] = _mm256_shuffle_ps(t[j], t[j + 2], 0x44);
        u[j + 1] = _mm256_shuffle_ps(t[j], t[j + 2], 0xEE);
        u[j + 2] = _mm256_shuffle_ps(t[j + 1], t[j + 3], 0x44);
        u[j + 3] = _mm256_shuffle_ps(t[j + 1], t[j + 3], 0xEE);
      }
      for (int c = 0; c < 4; c++) {
        _mm256_storeu_ps(panel + (k0 + c) * CPU_GEMM_NB + jh,
                         _mm256_permute2f128_ps(u[c], u[4 + c], 0x20));
        _mm256_storeu_ps(panel + (k0 + 4 + c) * CPU_GEMM_NB + jh,
                         _mm256_permute2f128_ps(u[c], u[4 + c], 0x31));
      }
    }
}

/* Panels [p0, p0 + np) of W^T into dst: panel q at dst + q * K * 64, row k holding
 * features 64 (p0 + q) .. + 63 (fewer in the last panel). N is a multiple of 16. */
static void pack(float *dst, const void *w, sdr_dtype wt, int64_t N, int64_t K, int64_t p0,
                 int64_t np) {
  const int avx512 = cpu_vmath_avx512();
  const int64_t kfull = avx512 ? K / 16 * 16 : K / 8 * 8;
#pragma omp parallel for schedule(static) if (np * K * CPU_GEMM_NB > CPU_GRAIN)
  for (int64_t q = 0; q < np; q++) {
    const int64_t n0 = (p0 + q) * CPU_GEMM_NB;
    const int64_t nw = N - n0 < CPU_GEMM_NB ? N - n0 : CPU_GEMM_NB;
    float *panel = dst + q * K * CPU_GEMM_NB;
    for (int64_t j0 = 0; j0 < nw; j0 += 16) {
      if (avx512)
        pack16_avx512(panel, w, wt, K, n0, j0, kfull);
      else
        pack16_avx2(panel, w, wt, K, n0, j0, kfull);
      for (int64_t j = j0; j < j0 + 16; j++) /* the last dims, fewer than 16 (8) */
        for (int64_t k = kfull; k < K; k++)
          panel[k * CPU_GEMM_NB + j] = load_w(w, wt, (n0 + j) * K + k);
    }
  }
}

/* C's columns of panels [p0, p0 + np) from the packed panels. */
static void compute(const cpu_mk_row *mk, float *C, const float *A, const float *packed, int64_t M,
                    int64_t N, int64_t K, int64_t p0, int64_t np) {
  const int64_t nmb = (M + CPU_GEMM_MB - 1) / CPU_GEMM_MB;
#pragma omp parallel for schedule(dynamic, 1) if (M * np * CPU_GEMM_NB * K > CPU_GRAIN)
  for (int64_t it = 0; it < nmb * np; it++) {
    const int64_t q = it % np, m0 = it / np * CPU_GEMM_MB;
    const int64_t mn = M - m0 < CPU_GEMM_MB ? M - m0 : CPU_GEMM_MB;
    const int64_t n0 = (p0 + q) * CPU_GEMM_NB;
    const int64_t nw = N - n0 < CPU_GEMM_NB ? N - n0 : CPU_GEMM_NB;
    const float *panel = packed + q * K * CPU_GEMM_NB;
    for (int64_t k0 = 0; k0 < K; k0 += CPU_GEMM_KC) {
      const int64_t kc = K - k0 < CPU_GEMM_KC ? K - k0 : CPU_GEMM_KC;
      for (int64_t r = 0; r < mn; r += 6) {
        const int64_t R = mn - r < 6 ? mn - r : 6;
        mk[R - 1][nw / 16 - 1](k0 > 0, kc, A + (m0 + r) * K + k0, K, panel + k0 * CPU_GEMM_NB,
                               CPU_GEMM_NB, C + (m0 + r) * N + n0, N);
      }
    }
  }
}

int cpu_gemm_nn(float *C, int64_t ldc, const float *A, int64_t lda, const float *B, int64_t ldb,
                int64_t M, int64_t N, int64_t K, int accumulate) {
  const cpu_mk_row *mk = cpu_mk_pick();
  if (!mk || N % 16 != 0 || K < 1 || M < 1 || N < 1)
    return 0;
  const int copy = mk != cpu_microkernels;
  const int64_t nmb = (M + CPU_GEMM_MB - 1) / CPU_GEMM_MB,
                nnb = (N + CPU_GEMM_NB - 1) / CPU_GEMM_NB;
#pragma omp parallel for schedule(dynamic, 1) if (M * N * K > CPU_GRAIN)
  for (int64_t it = 0; it < nmb * nnb; it++) {
    const int64_t m0 = it / nnb * CPU_GEMM_MB, n0 = it % nnb * CPU_GEMM_NB;
    const int64_t mn = M - m0 < CPU_GEMM_MB ? M - m0 : CPU_GEMM_MB;
    const int64_t nw = N - n0 < CPU_GEMM_NB ? N - n0 : CPU_GEMM_NB;
    float block[CPU_GEMM_KC * CPU_GEMM_NB] __attribute__((aligned(64)));
    for (int64_t k0 = 0; k0 < K; k0 += CPU_GEMM_KC) {
      const int64_t kc = K - k0 < CPU_GEMM_KC ? K - k0 : CPU_GEMM_KC;
      const float *Bk = B + k0 * ldb + n0;
      int64_t ldk = ldb;
      if (copy && ldb != nw) { /* rows already one after another: read in place */
        for (int64_t k = 0; k < kc; k++)
          memcpy(block + k * nw, Bk + k * ldb, (size_t)nw * sizeof(float));
        Bk = block;
        ldk = nw;
      }
      for (int64_t r = 0; r < mn; r += 6) {
        const int64_t R = mn - r < 6 ? mn - r : 6;
        mk[R - 1][nw / 16 - 1](accumulate || k0 > 0, kc, A + (m0 + r) * lda + k0, lda, Bk, ldk,
                               C + (m0 + r) * ldc + n0, ldc);
      }
    }
  }
  return 1;
}

int cpu_gemm_nt(sdr_backend *be, float *C, const float *A, const void *w, sdr_dtype wt, int64_t M,
                int64_t N, int64_t K, float *ws, size_t ws_floats) {
  (void)be;
  const cpu_mk_row *mk = cpu_mk_pick();
  if (!mk || N % 16 != 0 || K < 1 || M < 1)
    return 0;
  const int64_t npanels = (N + CPU_GEMM_NB - 1) / CPU_GEMM_NB;
  const size_t per_panel = (size_t)K * CPU_GEMM_NB;
  int64_t group = (int64_t)(ws_floats / per_panel);
  if (group < 1)
    return 0; /* a panel does not fit: OpenBLAS does it */
  if (group > npanels)
    group = npanels;
  for (int64_t p0 = 0; p0 < npanels; p0 += group) {
    const int64_t np = npanels - p0 < group ? npanels - p0 : group;
    pack(ws, w, wt, N, K, p0, np);
    compute(mk, C, A, ws, M, N, K, p0, np);
  }
  return 1;
}

#else

int cpu_gemm_nn(float *C, int64_t ldc, const float *A, int64_t lda, const float *B, int64_t ldb,
                int64_t M, int64_t N, int64_t K, int accumulate) {
  (void)C, (void)ldc, (void)A, (void)lda, (void)B, (void)ldb, (void)M, (void)N, (void)K;
  (void)accumulate;
  return 0;
}

int cpu_gemm_nt(sdr_backend *be, float *C, const float *A, const void *w, sdr_dtype wt, int64_t M,
                int64_t N, int64_t K, float *ws, size_t ws_floats) {
  (void)be, (void)C, (void)A, (void)w, (void)wt, (void)M, (void)N, (void)K, (void)ws;
  (void)ws_floats;
  return 0;
}

#endif

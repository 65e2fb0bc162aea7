/* kernels/cpu/cpu_vmath.c — elementwise math on arrays: exp, SiLU, GELU, statistics,
 * half/bfloat16 conversion. The one place with CPU-specific code.
 *
 * Three paths computing the same functions: AVX-512 (16 lanes, polynomial exp and
 * erfc), AVX2 with FMA (the same polynomials on 8 lanes, for the many CPUs without
 * AVX-512: AMD's before Zen 4, Intel's desktops), each chosen at run time when the CPU
 * has it, since the project is compiled for plain x86-64; and plain C with libm.
 * Attention and GELU spend most of their non-GEMM time here: libm's expf and erff one
 * element at a time would cost more than the matrix products around them (on an AVX2-only
 * EPYC, scalar expf was 19% of SD 1.5's UNet call).
 *
 * Accuracy of the AVX-512 path, measured against double precision:
 *  - exp: Cephes' expf polynomial after range reduction, ~1 ulp (relative 1.2e-7);
 *  - GELU (erf form, torch's default): erfc from Numerical Recipes' erfcc
 *    (fractional error < 1.2e-7) times exp; evaluated as x*(1 - erfc/2) for x >= 0
 *    and x*erfc/2 below, so the negative tail keeps its relative accuracy where
 *    torch's 0.5*x*(1+erf) loses it;
 *  - SiLU, quick GELU, tanh GELU as x / (1 + exp(-k x)).
 * NaN goes in, NaN comes out: every clamp below keeps a NaN operand.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_internal.h"
#include "kernels/half.h" // sdr_f16_to_f32, sdr_f32_to_f16, sdr_bf16_to_f32, sdr_f32_to_bf16

#if defined(__x86_64__) && defined(__GNUC__)
#define CPU_X86 1
#include <immintrin.h>
#define AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))
#define AVX2 __attribute__((target("avx2,fma")))
#else
#define CPU_X86 0
#endif

static int use_avx512, use_avx2;

void cpu_vmath_init(void) {
#if CPU_X86
  __builtin_cpu_init();
  const char *isa = getenv("SDREPL_CPU_ISA");
  const int generic = isa && strcmp(isa, "generic") == 0;
  /* SDREPL_CPU_ISA=avx2 tries the AVX2 path on an AVX-512 CPU (its tests) */
  use_avx512 = __builtin_cpu_supports("avx512f") && !generic && !(isa && strcmp(isa, "avx2") == 0);
  use_avx2 =
      !use_avx512 && !generic && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
}

int cpu_vmath_avx512(void) { return use_avx512; }
int cpu_vmath_avx2(void) { return use_avx2; }

float cpu_load_float(const void *x, sdr_dtype dtype, int64_t i) {
  switch (dtype) {
  case SDR_F16:
    return sdr_f16_to_f32(((const uint16_t *)x)[i]);
  case SDR_BF16:
    return sdr_bf16_to_f32(((const uint16_t *)x)[i]);
  default:
    return ((const float *)x)[i];
  }
}

/* ---- plain C ---- */

static const float SQRT1_2 = 0.70710678118654752f, SQRT_2_PI = 0.79788456080286536f;

static float gelu_c(float x) { return 0.5f * x * erfcf(-x * SQRT1_2); }
static float sigmoid_mul_c(float x, float k) { return x / (1.0f + expf(-k * x)); }
static float gelu_tanh_c(float x) {
  return sigmoid_mul_c(x, 2.0f * SQRT_2_PI * (1.0f + 0.044715f * x * x));
}

static void unary_c(sdr_unary_op op, float *y, const float *x, int64_t n) {
  switch (op) {
  case SDR_UNARY_SILU:
    for (int64_t i = 0; i < n; i++)
      y[i] = sigmoid_mul_c(x[i], 1.0f);
    break;
  case SDR_UNARY_GELU:
    for (int64_t i = 0; i < n; i++)
      y[i] = gelu_c(x[i]);
    break;
  case SDR_UNARY_GELU_TANH:
    for (int64_t i = 0; i < n; i++)
      y[i] = gelu_tanh_c(x[i]);
    break;
  case SDR_UNARY_QUICK_GELU:
    for (int64_t i = 0; i < n; i++)
      y[i] = sigmoid_mul_c(x[i], 1.702f);
    break;
  case SDR_UNARY_EXP:
    for (int64_t i = 0; i < n; i++)
      y[i] = expf(x[i]);
    break;
  case SDR_UNARY_SQRT:
    for (int64_t i = 0; i < n; i++)
      y[i] = sqrtf(x[i]);
    break;
  case SDR_UNARY_RELU:
    for (int64_t i = 0; i < n; i++)
      y[i] = x[i] < 0 ? 0.0f : x[i];
    break;
  case SDR_UNARY_TANH:
    for (int64_t i = 0; i < n; i++)
      y[i] = tanhf(x[i]);
    break;
  default:
    break;
  }
}

/* ---- AVX-512 ---- */

#if CPU_X86
#define V1(c) _mm512_set1_ps(c)

/* exp(x): n = round(x log2 e), r = x - n ln 2 (Cephes' two-part ln 2), e^r by
 * Cephes' expf polynomial, times 2^n by scalef (which also overflows to inf and
 * underflows to 0 correctly). The clamps keep NaN: max/min return their second
 * operand when either is NaN. */
AVX512 static inline __m512 v_exp(__m512 x) {
  x = _mm512_max_ps(V1(-104.0f), x);
  x = _mm512_min_ps(V1(89.0f), x);
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, V1(1.44269504088896341f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, V1(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, V1(-2.12194440e-4f), r);
  __m512 p = V1(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, V1(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, V1(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, V1(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, V1(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, V1(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, V1(1.0f)));
  return _mm512_scalef_ps(p, n);
}

/* x / (1 + exp(-k x)): SiLU (k = 1), quick GELU (k = 1.702). */
AVX512 static inline __m512 v_sigmoid_mul(__m512 x, __m512 k) {
  __m512 e = v_exp(_mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), k), x));
  return _mm512_div_ps(x, _mm512_add_ps(V1(1.0f), e));
}

/* 0.5 x (1 + erf(x / sqrt 2)) = x (1 - erfc(z)/2) for x >= 0, x erfc(z)/2 below, z = |x|/sqrt 2.
 * erfc(z) = t exp(-z^2 + P(t)), t = 1/(1 + z/2): Numerical Recipes' erfcc. */
AVX512 static inline __m512 v_gelu(__m512 x) {
  __m512 z = _mm512_mul_ps(_mm512_abs_ps(x), V1(SQRT1_2));
  __m512 t = _mm512_div_ps(V1(1.0f), _mm512_fmadd_ps(z, V1(0.5f), V1(1.0f)));
  __m512 p = V1(0.17087277f);
  p = _mm512_fmadd_ps(p, t, V1(-0.82215223f));
  p = _mm512_fmadd_ps(p, t, V1(1.48851587f));
  p = _mm512_fmadd_ps(p, t, V1(-1.13520398f));
  p = _mm512_fmadd_ps(p, t, V1(0.27886807f));
  p = _mm512_fmadd_ps(p, t, V1(-0.18628806f));
  p = _mm512_fmadd_ps(p, t, V1(0.09678418f));
  p = _mm512_fmadd_ps(p, t, V1(0.37409196f));
  p = _mm512_fmadd_ps(p, t, V1(1.00002368f));
  p = _mm512_fmadd_ps(p, t, V1(-1.26551223f));
  __m512 half_erfc = _mm512_mul_ps(_mm512_mul_ps(t, V1(0.5f)), v_exp(_mm512_fnmadd_ps(z, z, p)));
  __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
  __m512 w = _mm512_mask_sub_ps(half_erfc, pos, V1(1.0f), half_erfc);
  return _mm512_mul_ps(x, w);
}

/* x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3): equals 0.5 x (1 + tanh u). */
AVX512 static inline __m512 v_gelu_tanh(__m512 x) {
  __m512 k = _mm512_mul_ps(V1(2.0f * SQRT_2_PI),
                           _mm512_fmadd_ps(_mm512_mul_ps(x, x), V1(0.044715f), V1(1.0f)));
  return v_sigmoid_mul(x, k);
}

/* tanh: Cephes' tanhf, an odd polynomial below 0.625 (where 1 - 2/(e^2x + 1) would cancel),
 * that form above; NaN passes through both. */
AVX512 static inline __m512 v_tanh(__m512 x) {
  __m512 a = _mm512_abs_ps(x), z = _mm512_mul_ps(x, x);
  __m512 p = V1(-5.70498872745e-3f);
  p = _mm512_fmadd_ps(p, z, V1(2.06390887954e-2f));
  p = _mm512_fmadd_ps(p, z, V1(-5.37397155531e-2f));
  p = _mm512_fmadd_ps(p, z, V1(1.33314422036e-1f));
  p = _mm512_fmadd_ps(p, z, V1(-3.33332819422e-1f));
  __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, z), x, x);
  __m512 e = v_exp(_mm512_add_ps(a, a));
  __m512 big = _mm512_sub_ps(V1(1.0f), _mm512_div_ps(V1(2.0f), _mm512_add_ps(e, V1(1.0f))));
  __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
  big = _mm512_mask_sub_ps(big, neg, _mm512_setzero_ps(), big); /* tanh(-a) = -tanh(a) */
  __mmask16 lo = _mm512_cmp_ps_mask(a, V1(0.625f), _CMP_LT_OQ);
  __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  return _mm512_mask_blend_ps(lo | nan, big, small);
}

AVX512 static inline __m512 v_unary(sdr_unary_op op, __m512 x) {
  switch (op) {
  case SDR_UNARY_SILU:
    return v_sigmoid_mul(x, V1(1.0f));
  case SDR_UNARY_GELU:
    return v_gelu(x);
  case SDR_UNARY_GELU_TANH:
    return v_gelu_tanh(x);
  case SDR_UNARY_QUICK_GELU:
    return v_sigmoid_mul(x, V1(1.702f));
  case SDR_UNARY_EXP:
    return v_exp(x);
  case SDR_UNARY_SQRT:
    return _mm512_sqrt_ps(x);
  case SDR_UNARY_RELU: /* max returns its second operand where either is NaN */
    return _mm512_max_ps(_mm512_setzero_ps(), x);
  case SDR_UNARY_TANH:
    return v_tanh(x);
  default:
    return x;
  }
}

static inline __mmask16 tail_mask(int64_t r) { return (__mmask16)((1u << r) - 1); }

/* The switch sits outside the loop: one copy of the loop per operation. */
#define MAP_AVX512(OP)                                                                             \
  do {                                                                                             \
    int64_t i = 0;                                                                                 \
    for (; i + 16 <= n; i += 16)                                                                   \
      _mm512_storeu_ps(y + i, v_unary(OP, _mm512_loadu_ps(x + i)));                                \
    if (i < n) {                                                                                   \
      __mmask16 k = tail_mask(n - i);                                                              \
      _mm512_mask_storeu_ps(y + i, k, v_unary(OP, _mm512_maskz_loadu_ps(k, x + i)));               \
    }                                                                                              \
  } while (0)

AVX512 static void unary_avx512(sdr_unary_op op, float *y, const float *x, int64_t n) {
  switch (op) {
  case SDR_UNARY_SILU:
    MAP_AVX512(SDR_UNARY_SILU);
    break;
  case SDR_UNARY_GELU:
    MAP_AVX512(SDR_UNARY_GELU);
    break;
  case SDR_UNARY_GELU_TANH:
    MAP_AVX512(SDR_UNARY_GELU_TANH);
    break;
  case SDR_UNARY_QUICK_GELU:
    MAP_AVX512(SDR_UNARY_QUICK_GELU);
    break;
  case SDR_UNARY_EXP:
    MAP_AVX512(SDR_UNARY_EXP);
    break;
  case SDR_UNARY_SQRT:
    MAP_AVX512(SDR_UNARY_SQRT);
    break;
  case SDR_UNARY_RELU:
    MAP_AVX512(SDR_UNARY_RELU);
    break;
  case SDR_UNARY_TANH:
    MAP_AVX512(SDR_UNARY_TANH);
    break;
  default:
    break;
  }
}

AVX512 static float max_avx512(const float *x, int64_t n) {
  __m512 m = V1(-INFINITY);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
  if (i < n)
    m = _mm512_max_ps(m, _mm512_mask_loadu_ps(m, tail_mask(n - i), x + i));
  return _mm512_reduce_max_ps(m);
}

AVX512 static float exp_sum_avx512(float *y, const float *x, int64_t n, float a, float m) {
  __m512 va = V1(a), vm = V1(m), s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m512 e0 = v_exp(_mm512_fmsub_ps(_mm512_loadu_ps(x + i), va, vm));
    __m512 e1 = v_exp(_mm512_fmsub_ps(_mm512_loadu_ps(x + i + 16), va, vm));
    _mm512_storeu_ps(y + i, e0);
    _mm512_storeu_ps(y + i + 16, e1);
    s0 = _mm512_add_ps(s0, e0);
    s1 = _mm512_add_ps(s1, e1);
  }
  for (; i + 16 <= n; i += 16) {
    __m512 e = v_exp(_mm512_fmsub_ps(_mm512_loadu_ps(x + i), va, vm));
    _mm512_storeu_ps(y + i, e);
    s0 = _mm512_add_ps(s0, e);
  }
  if (i < n) {
    __mmask16 k = tail_mask(n - i);
    __m512 e = v_exp(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(k, x + i), va, vm));
    _mm512_mask_storeu_ps(y + i, k, e);
    s1 = _mm512_mask_add_ps(s1, k, s1, e);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

AVX512 static void scale_avx512(float *y, const float *x, int64_t n, float s) {
  __m512 vs = V1(s);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), vs));
  if (i < n) {
    __mmask16 k = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), vs));
  }
}

AVX512 static void axpb_avx512(float *y, const float *x, int64_t n, float c, float a, float b,
                               int silu) {
  __m512 vc = V1(c), va = V1(a), vb = V1(b), one = V1(1.0f);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 v = _mm512_fmadd_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vc), va, vb);
    _mm512_storeu_ps(y + i, silu ? v_sigmoid_mul(v, one) : v);
  }
  if (i < n) {
    __mmask16 k = tail_mask(n - i);
    __m512 v = _mm512_fmadd_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vc), va, vb);
    _mm512_mask_storeu_ps(y + i, k, silu ? v_sigmoid_mul(v, one) : v);
  }
}

AVX512 static double sum_f64_avx512(const float *x, int64_t n) {
  __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm256_loadu_ps(x + i)));
    s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8)));
  }
  double s = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
  for (; i < n; i++)
    s += x[i];
  return s;
}

AVX512 static double sqdev_f64_avx512(const float *x, int64_t n, double mean) {
  __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd(), m = _mm512_set1_pd(mean);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512d d0 = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i)), m);
    __m512d d1 = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8)), m);
    s0 = _mm512_fmadd_pd(d0, d0, s0);
    s1 = _mm512_fmadd_pd(d1, d1, s1);
  }
  double s = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
  for (; i < n; i++)
    s += ((double)x[i] - mean) * ((double)x[i] - mean);
  return s;
}

AVX512 static int64_t widen_avx512(float *y, const uint16_t *x, int bf16, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256i h = _mm256_loadu_si256((const __m256i *)(x + i));
    __m512 f = bf16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))
                    : _mm512_cvtph_ps(h);
    _mm512_storeu_ps(y + i, f);
  }
  return i;
}

/* Round to nearest even as half.h does; bfloat16 NaNs stay quiet NaNs. */
AVX512 static int64_t narrow_avx512(uint16_t *y, const float *x, int bf16, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 v = _mm512_loadu_ps(x + i);
    __m256i h;
    if (bf16) {
      __m512i b = _mm512_castps_si512(v);
      __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
      __m512i r = _mm512_srli_epi32(
          _mm512_add_epi32(b, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb)), 16);
      __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
      r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(b, 16), _mm512_set1_epi32(0x40));
      h = _mm512_cvtepi32_epi16(r);
    } else {
      h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    }
    _mm256_storeu_si256((__m256i *)(y + i), h);
  }
  return i;
}

/* ---- AVX2 with FMA: the AVX-512 path's polynomials on 8 lanes; the last n % 8 elements
 * go through the plain C path ---- */

#define W1(c) _mm256_set1_ps(c)

/* 2^k for integer-valued k in [-126, 127], from the exponent bits */
AVX2 static inline __m256 v8_pow2(__m256 k) {
  __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127));
  return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
}

/* v_exp's steps; 2^n (n in [-150, 128] after the clamps) as two factors, each a normal
 * float, so results overflow to inf and underflow through the denormals as scalef does */
AVX2 static inline __m256 v8_exp(__m256 x) {
  x = _mm256_max_ps(W1(-104.0f), x);
  x = _mm256_min_ps(W1(89.0f), x);
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, W1(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, W1(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, W1(-2.12194440e-4f), r);
  __m256 p = W1(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, W1(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, W1(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, W1(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, W1(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, W1(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, W1(1.0f)));
  __m256 n1 = _mm256_floor_ps(_mm256_mul_ps(n, W1(0.5f)));
  return _mm256_mul_ps(_mm256_mul_ps(p, v8_pow2(n1)), v8_pow2(_mm256_sub_ps(n, n1)));
}

AVX2 static inline __m256 v8_sigmoid_mul(__m256 x, __m256 k) {
  __m256 e = v8_exp(_mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), k), x));
  return _mm256_div_ps(x, _mm256_add_ps(W1(1.0f), e));
}

AVX2 static inline __m256 v8_abs(__m256 x) { return _mm256_andnot_ps(W1(-0.0f), x); }

AVX2 static inline __m256 v8_gelu(__m256 x) {
  __m256 z = _mm256_mul_ps(v8_abs(x), W1(SQRT1_2));
  __m256 t = _mm256_div_ps(W1(1.0f), _mm256_fmadd_ps(z, W1(0.5f), W1(1.0f)));
  __m256 p = W1(0.17087277f);
  p = _mm256_fmadd_ps(p, t, W1(-0.82215223f));
  p = _mm256_fmadd_ps(p, t, W1(1.48851587f));
  p = _mm256_fmadd_ps(p, t, W1(-1.13520398f));
  p = _mm256_fmadd_ps(p, t, W1(0.27886807f));
  p = _mm256_fmadd_ps(p, t, W1(-0.18628806f));
  p = _mm256_fmadd_ps(p, t, W1(0.09678418f));
  p = _mm256_fmadd_ps(p, t, W1(0.37409196f));
  p = _mm256_fmadd_ps(p, t, W1(1.00002368f));
  p = _mm256_fmadd_ps(p, t, W1(-1.26551223f));
  __m256 half_erfc = _mm256_mul_ps(_mm256_mul_ps(t, W1(0.5f)), v8_exp(_mm256_fnmadd_ps(z, z, p)));
  __m256 pos = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ);
  __m256 w = _mm256_blendv_ps(half_erfc, _mm256_sub_ps(W1(1.0f), half_erfc), pos);
  return _mm256_mul_ps(x, w);
}

AVX2 static inline __m256 v8_gelu_tanh(__m256 x) {
  __m256 k = _mm256_mul_ps(W1(2.0f * SQRT_2_PI),
                           _mm256_fmadd_ps(_mm256_mul_ps(x, x), W1(0.044715f), W1(1.0f)));
  return v8_sigmoid_mul(x, k);
}

AVX2 static inline __m256 v8_tanh(__m256 x) {
  __m256 a = v8_abs(x), z = _mm256_mul_ps(x, x);
  __m256 p = W1(-5.70498872745e-3f);
  p = _mm256_fmadd_ps(p, z, W1(2.06390887954e-2f));
  p = _mm256_fmadd_ps(p, z, W1(-5.37397155531e-2f));
  p = _mm256_fmadd_ps(p, z, W1(1.33314422036e-1f));
  p = _mm256_fmadd_ps(p, z, W1(-3.33332819422e-1f));
  __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
  __m256 e = v8_exp(_mm256_add_ps(a, a));
  __m256 big = _mm256_sub_ps(W1(1.0f), _mm256_div_ps(W1(2.0f), _mm256_add_ps(e, W1(1.0f))));
  __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
  big = _mm256_blendv_ps(big, _mm256_sub_ps(_mm256_setzero_ps(), big), neg);
  __m256 lo =
      _mm256_or_ps(_mm256_cmp_ps(a, W1(0.625f), _CMP_LT_OQ), _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
  return _mm256_blendv_ps(big, small, lo);
}

AVX2 static inline __m256 v8_unary(sdr_unary_op op, __m256 x) {
  switch (op) {
  case SDR_UNARY_SILU:
    return v8_sigmoid_mul(x, W1(1.0f));
  case SDR_UNARY_GELU:
    return v8_gelu(x);
  case SDR_UNARY_GELU_TANH:
    return v8_gelu_tanh(x);
  case SDR_UNARY_QUICK_GELU:
    return v8_sigmoid_mul(x, W1(1.702f));
  case SDR_UNARY_EXP:
    return v8_exp(x);
  case SDR_UNARY_SQRT:
    return _mm256_sqrt_ps(x);
  case SDR_UNARY_RELU: /* max returns its second operand where either is NaN */
    return _mm256_max_ps(_mm256_setzero_ps(), x);
  case SDR_UNARY_TANH:
    return v8_tanh(x);
  default:
    return x;
  }
}

#define MAP_AVX2(OP)                                                                               \
  do {                                                                                             \
    for (; i + 8 <= n; i += 8)                                                                     \
      _mm256_storeu_ps(y + i, v8_unary(OP, _mm256_loadu_ps(x + i)));                               \
  } while (0)

/* Returns how many it did (a multiple of 8); the caller finishes the rest. */
AVX2 static int64_t unary_avx2(sdr_unary_op op, float *y, const float *x, int64_t n) {
  int64_t i = 0;
  switch (op) {
  case SDR_UNARY_SILU:
    MAP_AVX2(SDR_UNARY_SILU);
    break;
  case SDR_UNARY_GELU:
    MAP_AVX2(SDR_UNARY_GELU);
    break;
  case SDR_UNARY_GELU_TANH:
    MAP_AVX2(SDR_UNARY_GELU_TANH);
    break;
  case SDR_UNARY_QUICK_GELU:
    MAP_AVX2(SDR_UNARY_QUICK_GELU);
    break;
  case SDR_UNARY_EXP:
    MAP_AVX2(SDR_UNARY_EXP);
    break;
  case SDR_UNARY_SQRT:
    MAP_AVX2(SDR_UNARY_SQRT);
    break;
  case SDR_UNARY_RELU:
    MAP_AVX2(SDR_UNARY_RELU);
    break;
  case SDR_UNARY_TANH:
    MAP_AVX2(SDR_UNARY_TANH);
    break;
  default:
    break;
  }
  return i;
}

AVX2 static float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

AVX2 static float max_avx2(const float *x, int64_t n) {
  __m256 m = W1(-INFINITY);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  float r = _mm_cvtss_f32(h);
  for (; i < n; i++)
    r = x[i] > r ? x[i] : r;
  return r;
}

AVX2 static float exp_sum_avx2(float *y, const float *x, int64_t n, float a, float m) {
  __m256 va = W1(a), vm = W1(m), s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 e0 = v8_exp(_mm256_fmsub_ps(_mm256_loadu_ps(x + i), va, vm));
    __m256 e1 = v8_exp(_mm256_fmsub_ps(_mm256_loadu_ps(x + i + 8), va, vm));
    _mm256_storeu_ps(y + i, e0);
    _mm256_storeu_ps(y + i + 8, e1);
    s0 = _mm256_add_ps(s0, e0);
    s1 = _mm256_add_ps(s1, e1);
  }
  for (; i + 8 <= n; i += 8) {
    __m256 e = v8_exp(_mm256_fmsub_ps(_mm256_loadu_ps(x + i), va, vm));
    _mm256_storeu_ps(y + i, e);
    s0 = _mm256_add_ps(s0, e);
  }
  float s = hsum8(_mm256_add_ps(s0, s1));
  for (; i < n; i++) {
    y[i] = expf(fmaf(x[i], a, -m));
    s += y[i];
  }
  return s;
}

AVX2 static int64_t scale_avx2(float *y, const float *x, int64_t n, float s) {
  __m256 vs = W1(s);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vs));
  return i;
}

AVX2 static int64_t axpb_avx2(float *y, const float *x, int64_t n, float c, float a, float b,
                              int silu) {
  __m256 vc = W1(c), va = W1(a), vb = W1(b), one = W1(1.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_fmadd_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vc), va, vb);
    _mm256_storeu_ps(y + i, silu ? v8_sigmoid_mul(v, one) : v);
  }
  return i;
}
#endif /* CPU_X86 */

/* ---- dispatch ---- */

#if CPU_X86
#define DISPATCH(avx_call)                                                                         \
  if (use_avx512) {                                                                                \
    avx_call;                                                                                      \
  }
/* the AVX2 calls return how many elements they did (the C loop finishes), or the result */
#define DISPATCH2(avx2_call)                                                                       \
  if (use_avx2) {                                                                                  \
    avx2_call;                                                                                     \
  }
#else
#define DISPATCH(avx_call)
#define DISPATCH2(avx2_call)
#endif

void cpu_widen(float *y, const void *x, sdr_dtype dtype, int64_t n) {
  if (dtype == SDR_F32) {
    memcpy(y, x, (size_t)n * sizeof(float));
    return;
  }
  const uint16_t *h = x;
  int bf16 = dtype == SDR_BF16;
  int64_t i = 0;
  DISPATCH(i = widen_avx512(y, h, bf16, n));
  for (; i < n; i++)
    y[i] = bf16 ? sdr_bf16_to_f32(h[i]) : sdr_f16_to_f32(h[i]);
}

void cpu_narrow(void *y, sdr_dtype dtype, const float *x, int64_t n) {
  if (dtype == SDR_F32) {
    memmove(y, x, (size_t)n * sizeof(float));
    return;
  }
  uint16_t *h = y;
  int bf16 = dtype == SDR_BF16;
  int64_t i = 0;
  DISPATCH(i = narrow_avx512(h, x, bf16, n));
  for (; i < n; i++)
    h[i] = bf16 ? sdr_f32_to_bf16(x[i]) : sdr_f32_to_f16(x[i]);
}

float cpu_max(const float *x, int64_t n) {
  DISPATCH(return max_avx512(x, n));
  DISPATCH2(return max_avx2(x, n));
  float m = -INFINITY;
  for (int64_t i = 0; i < n; i++)
    m = x[i] > m ? x[i] : m;
  return m;
}

float cpu_exp_sum(float *y, const float *x, int64_t n, float a, float m) {
  DISPATCH(return exp_sum_avx512(y, x, n, a, m));
  DISPATCH2(return exp_sum_avx2(y, x, n, a, m));
  float s = 0;
  for (int64_t i = 0; i < n; i++) {
    y[i] = expf(fmaf(x[i], a, -m));
    s += y[i];
  }
  return s;
}

void cpu_scale(float *y, const float *x, int64_t n, float s) {
  DISPATCH(scale_avx512(y, x, n, s); return );
  int64_t i = 0;
  DISPATCH2(i = scale_avx2(y, x, n, s));
  for (; i < n; i++)
    y[i] = x[i] * s;
}

void cpu_unary_row(sdr_unary_op op, float *y, const float *x, int64_t n) {
  DISPATCH(unary_avx512(op, y, x, n); return );
  int64_t i = 0;
  DISPATCH2(i = unary_avx2(op, y, x, n));
  unary_c(op, y + i, x + i, n - i);
}

void cpu_axpb(float *y, const float *x, int64_t n, float c, float a, float b, int silu) {
  DISPATCH(axpb_avx512(y, x, n, c, a, b, silu); return );
  int64_t i = 0;
  DISPATCH2(i = axpb_avx2(y, x, n, c, a, b, silu));
  for (; i < n; i++) {
    float v = (x[i] - c) * a + b;
    y[i] = silu ? sigmoid_mul_c(v, 1.0f) : v;
  }
}

double cpu_sum_f64(const float *x, int64_t n) {
  DISPATCH(return sum_f64_avx512(x, n));
  double s = 0;
  for (int64_t i = 0; i < n; i++)
    s += x[i];
  return s;
}

double cpu_sqdev_f64(const float *x, int64_t n, double mean) {
  DISPATCH(return sqdev_f64_avx512(x, n, mean));
  double s = 0;
  for (int64_t i = 0; i < n; i++)
    s += ((double)x[i] - mean) * ((double)x[i] - mean);
  return s;
}

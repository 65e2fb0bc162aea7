/* engine/avx_mathfun.c — log256_ps and sincos256_ps from torch's
 * aten/src/ATen/native/cpu/avx_mathfun.h, and normal_fill_16_AVX2 from
 * aten/src/ATen/native/cpu/DistributionTemplates.h, as torch 1.13.1 runs them.
 *
 * Bits, not just values: GCC compiled torch's AVX2 kernels with -mavx2 -mfma and
 * contracted some multiply-then-add pairs of avx_mathfun into one FMA (one
 * rounding instead of two). Which ones was read off Debian's libtorch_cpu.so
 * 1.13.1 (objdump of normal_fill_AVX2): every polynomial step `y = y*x + c`,
 * the range reduction `x += y*DP1` (and DP2, DP3), `y*z + e*q1` and `y - z*0.5`
 * with the second product rounded alone, and `x + e*q2`. This file writes those
 * FMAs out and turns contraction off, so no compiler fuses anything else.
 */
#include "engine/avx_mathfun.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>

int sdr_cpu_has_avx2_fma(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

#define AVX2 __attribute__((target("avx2,fma")))

/* avx_mathfun.h's constants (_ps256_*, _pi32_256_*), as floats and ints. */
/* Constants are written as in avx_mathfun.h: a double literal stored in a float. */
#define PS(v) _mm256_set1_ps((float)(v))
#define PI32(v) _mm256_set1_epi32(v)
#define PS_BITS(v) _mm256_castsi256_ps(_mm256_set1_epi32((int)(v)))

/* log256_ps: natural log of 8 floats (NaN for x <= 0). */
AVX2 static __m256 log256_ps(__m256 x) {
  const __m256 one = PS(1.0f);
  __m256 invalid_mask = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LE_OS);
  x = _mm256_max_ps(x, PS_BITS(0x00800000)); /* cut off denormalised values */
  __m256i imm0 = _mm256_srli_epi32(_mm256_castps_si256(x), 23);
  x = _mm256_and_ps(x, PS_BITS(~0x7f800000)); /* keep the mantissa, */
  x = _mm256_or_ps(x, PS(0.5f));              /* in [0.5, 1) */
  imm0 = _mm256_sub_epi32(imm0, PI32(0x7f));
  __m256 e = _mm256_cvtepi32_ps(imm0);
  e = _mm256_add_ps(e, one);
  /* if (x < SQRTHF) { e -= 1; x = x + x - 1; } else { x = x - 1; } */
  __m256 mask = _mm256_cmp_ps(x, PS(0.707106781186547524), _CMP_LT_OS);
  __m256 tmp = _mm256_and_ps(x, mask);
  x = _mm256_sub_ps(x, one);
  e = _mm256_sub_ps(e, _mm256_and_ps(one, mask));
  x = _mm256_add_ps(x, tmp);
  __m256 z = _mm256_mul_ps(x, x);
  __m256 y = _mm256_fmadd_ps(PS(7.0376836292E-2), x, PS(-1.1514610310E-1));
  y = _mm256_fmadd_ps(y, x, PS(1.1676998740E-1));
  y = _mm256_fmadd_ps(y, x, PS(-1.2420140846E-1));
  y = _mm256_fmadd_ps(y, x, PS(1.4249322787E-1));
  y = _mm256_fmadd_ps(y, x, PS(-1.6668057665E-1));
  y = _mm256_fmadd_ps(y, x, PS(2.0000714765E-1));
  y = _mm256_fmadd_ps(y, x, PS(-2.4999993993E-1));
  y = _mm256_fmadd_ps(y, x, PS(3.3333331174E-1));
  y = _mm256_mul_ps(y, x);
  tmp = _mm256_mul_ps(e, PS(-2.12194440e-4)); /* rounded alone, then fused below */
  y = _mm256_fmadd_ps(y, z, tmp);
  y = _mm256_fnmadd_ps(z, PS(0.5f), y);
  x = _mm256_add_ps(x, y);
  x = _mm256_fmadd_ps(e, PS(0.693359375), x);
  return _mm256_or_ps(x, invalid_mask); /* negative argument gives NaN */
}

/* sincos256_ps: sine and cosine of 8 floats (cephes sinf/cosf, exact rewriting). */
AVX2 static void sincos256_ps(__m256 x, __m256 *s, __m256 *c) {
  __m256 sign_bit_sin = _mm256_and_ps(x, PS_BITS(0x80000000u));
  x = _mm256_and_ps(x, PS_BITS(~0x80000000u));       /* |x| */
  __m256 y = _mm256_mul_ps(x, PS(1.27323954473516)); /* scale by 4/pi */
  __m256i imm2 = _mm256_cvttps_epi32(y);
  imm2 = _mm256_add_epi32(imm2, PI32(1)); /* j = (j + 1) & ~1, as cephes */
  imm2 = _mm256_and_si256(imm2, PI32(~1));
  y = _mm256_cvtepi32_ps(imm2);
  __m256i imm4 = imm2;
  __m256i imm0 = _mm256_slli_epi32(_mm256_and_si256(imm2, PI32(4)), 29); /* sine's sign swap */
  imm2 = _mm256_cmpeq_epi32(_mm256_and_si256(imm2, PI32(2)), PI32(0));   /* which polynomial */
  __m256 swap_sign_bit_sin = _mm256_castsi256_ps(imm0);
  __m256 poly_mask = _mm256_castsi256_ps(imm2);
  /* Extended precision modular arithmetic: x = ((x - y*DP1) - y*DP2) - y*DP3, fused. */
  x = _mm256_fmadd_ps(y, PS(-0.78515625), x);
  x = _mm256_fmadd_ps(y, PS(-2.4187564849853515625e-4), x);
  x = _mm256_fmadd_ps(y, PS(-3.77489497744594108e-8), x);
  imm4 = _mm256_sub_epi32(imm4, PI32(2));
  imm4 = _mm256_andnot_si256(imm4, PI32(4));
  imm4 = _mm256_slli_epi32(imm4, 29);
  __m256 sign_bit_cos = _mm256_castsi256_ps(imm4);
  sign_bit_sin = _mm256_xor_ps(sign_bit_sin, swap_sign_bit_sin);
  /* The cosine polynomial, for 0 <= x <= pi/4. */
  __m256 z = _mm256_mul_ps(x, x);
  y = _mm256_fmadd_ps(PS(2.443315711809948E-005), z, PS(-1.388731625493765E-003));
  y = _mm256_fmadd_ps(y, z, PS(4.166664568298827E-002));
  __m256 tmp = _mm256_mul_ps(z, PS(0.5f)); /* rounded alone, then fused below */
  y = _mm256_mul_ps(y, z);
  y = _mm256_fmsub_ps(y, z, tmp);
  y = _mm256_add_ps(y, PS(1.0f));
  /* The sine polynomial, for pi/4 <= x <= 0 (sic). */
  __m256 y2 = _mm256_fmadd_ps(PS(-1.9515295891E-4), z, PS(8.3321608736E-3));
  y2 = _mm256_fmadd_ps(y2, z, PS(-1.6666654611E-1));
  y2 = _mm256_mul_ps(y2, z);
  y2 = _mm256_fmadd_ps(y2, x, x);
  /* Pick each result from the two polynomials. */
  __m256 ysin2 = _mm256_and_ps(poly_mask, y2);
  __m256 ysin1 = _mm256_andnot_ps(poly_mask, y);
  y2 = _mm256_sub_ps(y2, ysin2);
  y = _mm256_sub_ps(y, ysin1);
  __m256 xmm1 = _mm256_add_ps(ysin1, ysin2);
  __m256 xmm2 = _mm256_add_ps(y, y2);
  *s = _mm256_xor_ps(xmm1, sign_bit_sin);
  *c = _mm256_xor_ps(xmm2, sign_bit_cos);
}

AVX2 void sdr_normal_fill_16_avx2(float *data, float mean, float std) {
  /* two_pi is _mm256_set1_ps(2.0f * c10::pi<double>): the double product, rounded once. */
  const __m256 two_pi = _mm256_set1_ps((float)(2.0f * 3.14159265358979323846));
  const __m256 u1 = _mm256_sub_ps(PS(1.0f), _mm256_loadu_ps(data));
  const __m256 u2 = _mm256_loadu_ps(data + 8);
  const __m256 radius = _mm256_sqrt_ps(_mm256_mul_ps(PS(-2.0f), log256_ps(u1)));
  const __m256 theta = _mm256_mul_ps(two_pi, u2);
  __m256 sintheta, costheta;
  sincos256_ps(theta, &sintheta, &costheta);
  const __m256 n1 = _mm256_mul_ps(radius, costheta);
  const __m256 n2 = _mm256_mul_ps(radius, sintheta);
  _mm256_storeu_ps(data, _mm256_fmadd_ps(n1, PS(std), PS(mean)));
  _mm256_storeu_ps(data + 8, _mm256_fmadd_ps(n2, PS(std), PS(mean)));
}

#else /* not x86: torch has no AVX2 build there either */

int sdr_cpu_has_avx2_fma(void) { return 0; }
void sdr_normal_fill_16_avx2(float *data, float mean, float std) {
  (void)data, (void)mean, (void)std;
}

#endif

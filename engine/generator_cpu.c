/* engine/generator_cpu.c — torch.randn and torch.rand on the CPU, bit for bit.
 *
 * Mirrors torch 1.13's aten/src/ATen/core/DistributionsHelper.h and
 * TransformationHelper.h (uniform_real_distribution, normal_distribution) and
 * aten/src/ATen/native/cpu/DistributionTemplates.h (normal_kernel,
 * normal_fill, normal_fill_16, normal_fill_AVX2, uniform_kernel), with the
 * element arithmetic of c10::Half and c10::BFloat16 spelled out.
 *
 * torch.randn(n) is normal_(0, 1) on a fresh tensor, and normal_kernel picks:
 *   - n < 16: one normal_distribution<double> draw per element; each pair of
 *     uniforms gives two normals and the second waits in the generator
 *     (next_double_normal_sample), across calls, until the next seed;
 *   - n >= 16, float32, AVX2 build: normal_fill_AVX2 (engine/avx_mathfun.c);
 *   - n >= 16 otherwise: normal_fill<scalar_t>, scalar Box–Muller per block of 16.
 * The block paths fill all n slots with uniforms first, transform each full
 * block of 16, and when n % 16 != 0 draw 16 fresh uniforms into the last 16
 * slots and transform that block again.
 *
 * Rounding: torch's scalar code is written so that no multiply feeds an add
 * except `x * std + mean` with std 1 and mean 0, which is exact fused or not,
 * so contraction cannot change a bit here; it is turned off all the same.
 */
#include "engine/generator_cpu.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine/avx_mathfun.h" // sdr_cpu_has_avx2_fma, sdr_normal_fill_16_avx2
#include "engine/error.h"       // sdr_fail
#include "engine/half.h"        // sdr_f32_to_f16, sdr_f16_to_f32, sdr_f32_to_bf16, sdr_bf16_to_f32
#include "engine/mt19937.h"     // sdr_mt19937_next

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* c10::pi<double>; torch writes 2.0f * c10::pi<double>, a double product. */
#define TORCH_PI 3.14159265358979323846
#define TORCH_TWO_PI (2.0 * TORCH_PI)

/* ---- which build of torch's kernels this CPU would run ------------------ */

static atomic_int cpu_capability = -1;

/* ATen picks its CPU kernels at run time (compute_cpu_capability): ATEN_CPU_CAPABILITY=default
 * forces the plain build; otherwise AVX2 when the CPU has AVX2 and FMA. (Its
 * AVX-512 build, opt-in through the same variable, runs the same AVX2 normal
 * path in Debian's 1.13.1: checked by drawing with both.) */
static int detect_cpu_capability(void) {
  const char *env = getenv("ATEN_CPU_CAPABILITY");
  if (env && strcmp(env, "default") == 0)
    return SDR_CPU_CAPABILITY_DEFAULT;
  return sdr_cpu_has_avx2_fma() ? SDR_CPU_CAPABILITY_AVX2 : SDR_CPU_CAPABILITY_DEFAULT;
}

sdr_cpu_capability sdr_generator_cpu_capability(void) {
  int c = atomic_load(&cpu_capability);
  if (c < 0) {
    c = detect_cpu_capability();
    atomic_store(&cpu_capability, c);
  }
  return (sdr_cpu_capability)c;
}

int sdr_generator_force_cpu_capability(sdr_cpu_capability c) {
  if (c == SDR_CPU_CAPABILITY_AVX2 && !sdr_cpu_has_avx2_fma())
    return sdr_fail("this CPU has no AVX2 and FMA, so torch would not take its AVX2 path");
  if (c != SDR_CPU_CAPABILITY_AVX2 && c != SDR_CPU_CAPABILITY_DEFAULT)
    return sdr_fail("unknown CPU capability %d", (int)c);
  atomic_store(&cpu_capability, (int)c);
  return 0;
}

/* ---- uniform and normal distributions (DistributionsHelper.h) ----------- */

static uint32_t random32(sdr_generator *g) { return sdr_mt19937_next(g->mt, &g->mt_index); }

/* CPUGeneratorImpl::random64: the first word is the high half. */
static uint64_t random64(sdr_generator *g) {
  uint64_t hi = random32(g);
  uint64_t lo = random32(g);
  return (hi << 32) | lo;
}

/* uniform_real_distribution<T>(0, 1) for a type with `digits` significand bits:
 * the low `digits` bits of one word, times 2^-digits (exact in float). */
static float uniform_bits(sdr_generator *g, int digits) {
  uint32_t v = random32(g) & ((1u << digits) - 1u);
  return (float)v * ldexpf(1.0f, -digits) * (1.0f - 0.0f) + 0.0f;
}

/* uniform_real_distribution<double>(0, 1): the low 53 bits of random64. */
static double uniform_double(sdr_generator *g) {
  uint64_t v = random64(g) & ((UINT64_C(1) << 53) - 1u);
  return (double)v * ldexp(1.0, -53) * (1.0 - 0.0) + 0.0;
}

/* normal_distribution<double>(0, 1)::operator(): Box–Muller in double with
 * the second value cached in the generator. */
static double normal_double(sdr_generator *g) {
  const double mean = 0.0, stdv = 1.0;
  if (g->has_next_double_normal) {
    g->has_next_double_normal = 0;
    return g->next_double_normal * stdv + mean;
  }
  const double u1 = uniform_double(g);
  const double u2 = uniform_double(g);
  const double r = sqrt(-2.0 * log(1.0 - u2));
  const double theta = TORCH_TWO_PI * u1;
  g->next_double_normal = r * sin(theta);
  g->has_next_double_normal = 1;
  return r * cos(theta) * stdv + mean;
}

/* ---- normal_fill_16<scalar_t> for float, Half and BFloat16 -------------- */

static void normal_fill_16_f32(float *data, float mean, float std) {
  for (int j = 0; j < 8; j++) {
    const float u1 = 1 - data[j]; /* [0, 1) -> (0, 1] for log */
    const float u2 = data[j + 8];
    const float radius = sqrtf(-2 * logf(u1));
    const float theta = (float)(TORCH_TWO_PI * u2);
    data[j] = radius * cosf(theta) * std + mean;
    data[j + 8] = radius * sinf(theta) * std + mean;
  }
}

/* c10::Half arithmetic: Half op Half rounds to Half; Half op float stays float;
 * std::log, std::cos and std::sin take the float overloads (logf, cosf, sinf). */
static void normal_fill_16_f16(uint16_t *data, uint16_t mean_h, uint16_t std_h) {
  const float mean = sdr_f16_to_f32(mean_h), std = sdr_f16_to_f32(std_h);
  for (int j = 0; j < 8; j++) {
    const float u1 = sdr_f16_to_f32(sdr_f32_to_f16(1.0f - sdr_f16_to_f32(data[j])));
    const float u2 = sdr_f16_to_f32(data[j + 8]);
    const float radius = sdr_f16_to_f32(sdr_f32_to_f16(sqrtf(-2 * logf(u1))));
    /* double * Half is double; Half(double) goes through float */
    const float theta = sdr_f16_to_f32(sdr_f32_to_f16((float)(TORCH_TWO_PI * (double)u2)));
    data[j] = sdr_f32_to_f16(radius * cosf(theta) * std + mean);
    data[j + 8] = sdr_f32_to_f16(radius * sinf(theta) * std + mean);
  }
}

static float bf16_round(float x) { return sdr_bf16_to_f32(sdr_f32_to_bf16(x)); }

/* c10::BFloat16 arithmetic: every operator between BFloat16s (and int with
 * BFloat16) rounds to BFloat16, and c10/util/BFloat16-math.h gives std::log,
 * std::sqrt, std::cos and std::sin BFloat16 overloads that round too. */
static void normal_fill_16_bf16(uint16_t *data, uint16_t mean_b, uint16_t std_b) {
  const float mean = sdr_bf16_to_f32(mean_b), std = sdr_bf16_to_f32(std_b);
  for (int j = 0; j < 8; j++) {
    const float u1 = bf16_round(1.0f - sdr_bf16_to_f32(data[j]));
    const float u2 = sdr_bf16_to_f32(data[j + 8]);
    const float radius = bf16_round(sqrtf(bf16_round(-2.0f * bf16_round(logf(u1)))));
    const float theta = bf16_round((float)(TORCH_TWO_PI * (double)u2));
    const float c = bf16_round(cosf(theta)), s = bf16_round(sinf(theta));
    data[j] = sdr_f32_to_bf16(bf16_round(bf16_round(radius * c) * std) + mean);
    data[j + 8] = sdr_f32_to_bf16(bf16_round(bf16_round(radius * s) * std) + mean);
  }
}

/* ---- normal_kernel ------------------------------------------------------- */

void sdr_cpu_randn_f32(sdr_generator *g, float *out, size_t n) {
  if (n < 16) {
    for (size_t i = 0; i < n; i++)
      out[i] = (float)normal_double(g);
    return;
  }
  /* normal_fill_AVX2 and normal_fill<float> differ only in the block transform. */
  const int avx2 = sdr_generator_cpu_capability() == SDR_CPU_CAPABILITY_AVX2;
  for (size_t i = 0; i < n; i++)
    out[i] = uniform_bits(g, 24);
  for (size_t i = 0; i + 16 <= n; i += 16) {
    if (avx2)
      sdr_normal_fill_16_avx2(out + i, 0.0f, 1.0f);
    else
      normal_fill_16_f32(out + i, 0.0f, 1.0f);
  }
  if (n % 16 != 0) { /* recompute the last 16 values */
    float *tail = out + n - 16;
    for (int i = 0; i < 16; i++)
      tail[i] = uniform_bits(g, 24);
    if (avx2)
      sdr_normal_fill_16_avx2(tail, 0.0f, 1.0f);
    else
      normal_fill_16_f32(tail, 0.0f, 1.0f);
  }
}

/* normal_fill<Half> and normal_fill<BFloat16>: uniforms of 11 and 8 bits. */
static void randn_16bit(sdr_generator *g, uint16_t *out, size_t n, int is_bf16) {
  if (n < 16) {
    for (size_t i = 0; i < n; i++) {
      float x = (float)normal_double(g); /* static_cast<Half>(double) goes through float */
      out[i] = is_bf16 ? sdr_f32_to_bf16(x) : sdr_f32_to_f16(x);
    }
    return;
  }
  const int digits = is_bf16 ? 8 : 11;
  const uint16_t zero = is_bf16 ? sdr_f32_to_bf16(0.0f) : sdr_f32_to_f16(0.0f);
  const uint16_t one = is_bf16 ? sdr_f32_to_bf16(1.0f) : sdr_f32_to_f16(1.0f);
  for (size_t i = 0; i < n; i++) {
    float u = uniform_bits(g, digits); /* exact in the 16-bit type */
    out[i] = is_bf16 ? sdr_f32_to_bf16(u) : sdr_f32_to_f16(u);
  }
  for (size_t i = 0; i + 16 <= n; i += 16) {
    if (is_bf16)
      normal_fill_16_bf16(out + i, zero, one);
    else
      normal_fill_16_f16(out + i, zero, one);
  }
  if (n % 16 != 0) {
    uint16_t *tail = out + n - 16;
    for (int i = 0; i < 16; i++) {
      float u = uniform_bits(g, digits);
      tail[i] = is_bf16 ? sdr_f32_to_bf16(u) : sdr_f32_to_f16(u);
    }
    if (is_bf16)
      normal_fill_16_bf16(tail, zero, one);
    else
      normal_fill_16_f16(tail, zero, one);
  }
}

void sdr_cpu_randn_f16(sdr_generator *g, uint16_t *out, size_t n) { randn_16bit(g, out, n, 0); }
void sdr_cpu_randn_bf16(sdr_generator *g, uint16_t *out, size_t n) { randn_16bit(g, out, n, 1); }

/* uniform_kernel: one word per element, in order. */
void sdr_cpu_rand_f32(sdr_generator *g, float *out, size_t n) {
  for (size_t i = 0; i < n; i++)
    out[i] = uniform_bits(g, 24);
}

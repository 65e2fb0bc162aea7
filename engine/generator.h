/* engine/generator.h — torch's random number generators, reproduced bit for bit.
 *
 * A CPU generator is torch's mt19937 with torch's conversions to uniform and
 * normal numbers (the per-element path below 16 values, the blocks-of-16
 * Box–Muller path at 16 and more, float16 as its own stream). A CUDA
 * generator is Philox4x32-10 as curand runs it for torch.randn(device="cuda");
 * on the CPU it agrees with the GPU to about 1e-6 (the GPU's sine and cosine
 * are approximate), so a CPU run can follow a GPU seed.
 */
#ifndef SDR_ENGINE_GENERATOR_H
#define SDR_ENGINE_GENERATOR_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/dtype.h" // sdr_dtype

typedef enum { SDR_GENERATOR_CPU = 0, SDR_GENERATOR_CUDA = 1 } sdr_generator_device;

/* Which GPU a CUDA generator's numbers are laid out for (torch's grid depends on it). */
typedef struct sdr_cuda_geometry {
  int sm_count;           /* H100/H200 SXM: 132 */
  int max_threads_per_sm; /* Hopper: 2048 */
} sdr_cuda_geometry;

typedef struct sdr_generator {
  sdr_generator_device device;
  uint64_t seed;
  /* CPU: mt19937 state and torch's cached second normal of the scalar path. */
  uint32_t mt[624];
  int mt_index;
  int has_next_double_normal;
  double next_double_normal;
  int has_next_float_normal;
  float next_float_normal;
  /* CUDA: Philox offset, advanced by each call as torch advances it. */
  uint64_t philox_offset;
  sdr_cuda_geometry geometry;
} sdr_generator;

/* Seeded with torch's default seed (67280421310721), as a fresh torch.Generator. */
void sdr_generator_init(sdr_generator *g, sdr_generator_device device);
void sdr_generator_manual_seed(sdr_generator *g, uint64_t seed);

/* torch.randn(n, generator=g) in float32, float16 (IEEE half bits) and bfloat16. */
void sdr_generator_randn_f32(sdr_generator *g, float *out, size_t n);
void sdr_generator_randn_f16(sdr_generator *g, uint16_t *out, size_t n);
void sdr_generator_randn_bf16(sdr_generator *g, uint16_t *out, size_t n);
/* One normal_ of n values held in dtype (float32, float16 or bfloat16), as torch fills a
 * new tensor (nn.Embedding's initial weights): the generator moves on as torch's does;
 * values from index `from` on go to tail (as floats; NULL: not kept). -1 when the
 * memory for the draw is lacking. */
int sdr_generator_normal_tail(sdr_generator *g, size_t n, sdr_dtype dtype, size_t from,
                              float *tail);
/* torch.rand(n, generator=g) in float32. */
void sdr_generator_rand_f32(sdr_generator *g, float *out, size_t n);
/* torch.randint(0, 2**63 - 1, [], generator=g).item() on a CPU generator (how diffusers'
 * DPMSolverSDEScheduler picks its noise seed): a 64-bit draw, two words with the first
 * as the high half, modulo the range. */
uint64_t sdr_generator_randint63(sdr_generator *g);

/* torch's CPU kernels exist in a plain build and an AVX2 build, and ATen picks
 * one at run time: AVX2 when the CPU has AVX2 and FMA, unless the environment
 * says ATEN_CPU_CAPABILITY=default. float32 randn of 16 or more values differs
 * between the two in the last bits; this follows the choice torch makes here. */
typedef enum { SDR_CPU_CAPABILITY_DEFAULT = 0, SDR_CPU_CAPABILITY_AVX2 = 1 } sdr_cpu_capability;
sdr_cpu_capability sdr_generator_cpu_capability(void);
/* Makes every CPU generator take that path (tests; or to follow a torch run on
 * another machine). -1 if this CPU cannot run the AVX2 path. */
int sdr_generator_force_cpu_capability(sdr_cpu_capability c);

#endif

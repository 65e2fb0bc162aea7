/* engine/generator.c — torch.Generator: seeding, and each draw sent to the
 * device's own algorithm (engine/generator_cpu.c, engine/generator_cuda.c).
 *
 * Mirrors aten/src/ATen/CPUGeneratorImpl.cpp (set_current_seed resets the
 * cached normals and reseeds mt19937 with the low 32 bits) and
 * CUDAGeneratorImpl (the whole 64-bit seed is the Philox key; the offset
 * starts at 0).
 */
#include "engine/generator.h"

#include <string.h>

#include "engine/generator_cpu.h"  // sdr_cpu_randn_f32, ...
#include "engine/generator_cuda.h" // sdr_cuda_randn_f32, ...
#include "engine/mt19937.h"        // sdr_mt19937_seed

/* c10::detail::default_rng_seed_val */
#define TORCH_DEFAULT_SEED UINT64_C(67280421310721)

void sdr_generator_init(sdr_generator *g, sdr_generator_device device) {
  memset(g, 0, sizeof *g);
  g->device = device;
  g->geometry.sm_count = 132; /* H100/H200 SXM */
  g->geometry.max_threads_per_sm = 2048;
  sdr_generator_manual_seed(g, TORCH_DEFAULT_SEED);
}

void sdr_generator_manual_seed(sdr_generator *g, uint64_t seed) {
  g->seed = seed;
  g->has_next_double_normal = 0;
  g->next_double_normal = 0.0;
  g->has_next_float_normal = 0;
  g->next_float_normal = 0.0f;
  g->philox_offset = 0;
  sdr_mt19937_seed(g->mt, &g->mt_index, seed);
}

void sdr_generator_randn_f32(sdr_generator *g, float *out, size_t n) {
  if (g->device == SDR_GENERATOR_CUDA)
    sdr_cuda_randn_f32(g, out, n);
  else
    sdr_cpu_randn_f32(g, out, n);
}

void sdr_generator_randn_f16(sdr_generator *g, uint16_t *out, size_t n) {
  if (g->device == SDR_GENERATOR_CUDA)
    sdr_cuda_randn_f16(g, out, n);
  else
    sdr_cpu_randn_f16(g, out, n);
}

void sdr_generator_randn_bf16(sdr_generator *g, uint16_t *out, size_t n) {
  if (g->device == SDR_GENERATOR_CUDA)
    sdr_cuda_randn_bf16(g, out, n);
  else
    sdr_cpu_randn_bf16(g, out, n);
}

void sdr_generator_rand_f32(sdr_generator *g, float *out, size_t n) {
  if (g->device == SDR_GENERATOR_CUDA)
    sdr_cuda_rand_f32(g, out, n);
  else
    sdr_cpu_rand_f32(g, out, n);
}

/* engine/generator.c — torch.Generator: seeding, and each draw sent to the
 * device's own algorithm (engine/generator_cpu.c, engine/generator_cuda.c).
 *
 * Mirrors aten/src/ATen/CPUGeneratorImpl.cpp (set_current_seed resets the
 * cached normals and reseeds mt19937 with the low 32 bits) and
 * CUDAGeneratorImpl (the whole 64-bit seed is the Philox key; the offset
 * starts at 0).
 */
#include "engine/generator.h"

#include <stdlib.h>
#include <string.h>

#include "engine/generator_cpu.h"  // sdr_cpu_randn_f32, ...
#include "engine/generator_cuda.h" // sdr_cuda_randn_f32, sdr_cuda_launch_for
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

/* A draw of n values in dtype, as floats (h: room for the half-width ones). */
static void draw(sdr_generator *g, sdr_dtype dtype, size_t n, float *f, uint16_t *h) {
  if (dtype == SDR_F32) {
    sdr_generator_randn_f32(g, f, n);
    return;
  }
  if (dtype == SDR_F16)
    sdr_generator_randn_f16(g, h, n);
  else
    sdr_generator_randn_bf16(g, h, n);
  sdr_floats_convert(f, SDR_F32, h, dtype, n);
}

int sdr_generator_normal_tail(sdr_generator *g, size_t n, sdr_dtype dtype, size_t from,
                              float *tail) {
  if (n == 0)
    return 0;
  if (g->device == SDR_GENERATOR_CUDA && !tail) { /* one launch: the offset moves, no more */
    g->philox_offset += sdr_cuda_launch_for(&g->geometry, n).advance;
    return 0;
  }
  /* The CPU's fills take their uniforms in order, blocks of 16 at a time, and only the
   * last block's leftover redraws: chunks that are multiples of 16 (the last one of 16
   * or more) draw what one call does. A CUDA draw depends on its size: one chunk. */
  enum { CHUNK = 1 << 20 };
  size_t chunk = g->device == SDR_GENERATOR_CUDA ? n : CHUNK;
  float *f = malloc((chunk < n ? chunk + 16 : n) * sizeof *f);
  uint16_t *h = dtype != SDR_F32 ? malloc((chunk < n ? chunk + 16 : n) * sizeof *h) : NULL;
  if (!f || (dtype != SDR_F32 && !h)) {
    free(f), free(h);
    return -1;
  }
  for (size_t at = 0; at < n;) {
    size_t m = n - at;
    if (m > chunk)
      m = n - at - chunk >= 16 ? chunk : chunk - 16; /* leave the last chunk 16 or more */
    draw(g, dtype, m, f, h);
    for (size_t k = 0; tail && k < m; k++)
      if (at + k >= from)
        tail[at + k - from] = f[k];
    at += m;
  }
  free(f), free(h);
  return 0;
}

void sdr_generator_rand_f32(sdr_generator *g, float *out, size_t n) {
  if (g->device == SDR_GENERATOR_CUDA)
    sdr_cuda_rand_f32(g, out, n);
  else
    sdr_cpu_rand_f32(g, out, n);
}

uint64_t sdr_generator_randint63(sdr_generator *g) {
  uint64_t hi = sdr_mt19937_next(g->mt, &g->mt_index);
  uint64_t lo = sdr_mt19937_next(g->mt, &g->mt_index);
  return (hi << 32 | lo) % ((UINT64_C(1) << 63) - 1);
}

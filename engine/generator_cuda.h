/* engine/generator_cuda.h — torch's CUDA randn and rand, computed on the CPU
 * (internal to engine/generator*.c; the public calls are in engine/generator.h). */
#ifndef SDR_ENGINE_GENERATOR_CUDA_H
#define SDR_ENGINE_GENERATOR_CUDA_H

#include "engine/generator.h" // sdr_generator

void sdr_cuda_randn_f32(sdr_generator *g, float *out, size_t n);
void sdr_cuda_randn_f16(sdr_generator *g, uint16_t *out, size_t n);
void sdr_cuda_randn_bf16(sdr_generator *g, uint16_t *out, size_t n);
void sdr_cuda_rand_f32(sdr_generator *g, float *out, size_t n);

/* calc_execution_policy: the grid torch launches for n values on this GPU, and
 * how far the generator's Philox offset moves (a multiple of 4). */
typedef struct sdr_cuda_launch {
  uint64_t grid;    /* blocks of 256 threads */
  uint64_t stride;  /* 256 * grid: element idx + k*stride takes component k */
  uint64_t advance; /* ((n - 1) / (stride * 4) + 1) * 4 */
} sdr_cuda_launch;
sdr_cuda_launch sdr_cuda_launch_for(const sdr_cuda_geometry *geometry, size_t n);

#endif

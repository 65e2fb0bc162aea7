/* engine/generator_cuda.c — torch.randn(device="cuda") and torch.rand on the CPU.
 *
 * Mirrors torch 1.13's aten/src/ATen/native/cuda/DistributionTemplates.h:
 * calc_execution_policy picks 256-thread blocks and a grid of
 * min(SMs * maxThreadsPerSM / 256, ceil(n / 256)); every thread idx runs
 * curand_init(seed, idx, offset) and a grid-stride loop
 * (distribution_elementwise_grid_stride_kernel) that takes one curand_normal4
 * (or curand_uniform4) per step and writes component k to element
 * linear_index + k * 256 * grid, linear_index stepping by 4 * 256 * grid.
 * CUDAGeneratorImpl::philox_cuda_state hands out the current offset and
 * moves it by `advance`. The uniforms are exact; the normals agree with a GPU
 * to about 1e-6 (engine/philox.h says why). Beyond SMs * maxThreadsPerSM
 * elements the layout depends on the GPU, hence the geometry in the generator.
 * Not reproduced: tensors of 2^31 elements or more, which torch cuts into
 * 32-bit-indexable pieces with an offset step each.
 */
#include "engine/generator_cuda.h"

#include "engine/half.h"   // sdr_f32_to_f16, sdr_f32_to_bf16
#include "kernels/philox.h" // sdr_philox_init, sdr_curand_normal4, sdr_curand_uniform4

#define BLOCK_SIZE 256u
#define UNROLL 4u /* curand4_engine_calls */

sdr_cuda_launch sdr_cuda_launch_for(const sdr_cuda_geometry *geometry, size_t n) {
  sdr_cuda_launch l = {0, 0, 0};
  if (n == 0)
    return l;
  uint64_t blocks_per_sm =
      (uint64_t)(geometry->max_threads_per_sm > 0 ? geometry->max_threads_per_sm : 2048) /
      BLOCK_SIZE;
  uint64_t sms = (uint64_t)(geometry->sm_count > 0 ? geometry->sm_count : 132);
  uint64_t grid = (n + BLOCK_SIZE - 1) / BLOCK_SIZE;
  if (sms * blocks_per_sm < grid)
    grid = sms * blocks_per_sm;
  if (grid == 0)
    grid = 1;
  l.grid = grid;
  l.stride = BLOCK_SIZE * grid;
  l.advance = ((n - 1) / (l.stride * UNROLL) + 1) * UNROLL;
  return l;
}

typedef enum { OUT_F32, OUT_F16, OUT_BF16 } out_type;

/* distribution_nullary_kernel + the grid-stride kernel, one thread after another.
 * `normal` picks curand_normal4 (normal_and_transform) or curand_uniform4
 * (uniform_and_transform). */
static void run_kernel(sdr_generator *g, void *out, size_t n, out_type type, int normal) {
  if (n == 0)
    return;
  sdr_cuda_launch l = sdr_cuda_launch_for(&g->geometry, n);
  uint64_t offset = g->philox_offset;
  g->philox_offset += l.advance; /* already a multiple of 4, as philox_cuda_state wants */
  uint64_t step = l.stride * UNROLL;
  uint64_t rounded = ((n - 1) / step + 1) * step;
  uint64_t threads = l.stride < n ? l.stride : n; /* threads past n write nothing */
  for (uint64_t idx = 0; idx < threads; idx++) {
    sdr_philox_state st;
    sdr_philox_init(&st, g->seed, idx, offset);
    for (uint64_t li0 = idx; li0 < rounded; li0 += step) {
      float r[4];
      if (normal)
        sdr_curand_normal4(&st, r);
      else
        sdr_curand_uniform4(&st, r);
      for (uint64_t k = 0; k < UNROLL; k++) {
        uint64_t li = li0 + k * l.stride;
        if (li >= n)
          continue;
        float v;
        if (normal) {
          v = r[k] * 1.0f + 0.0f; /* transformation::normal(rand, mean, std) */
        } else {
          /* uniform_kernel: curand's (0, 1] turned into [0, 1), then * range + from */
          float rev = r[k] == 1.0f ? 0.0f : r[k];
          v = rev * 1.0f + 0.0f;
        }
        if (type == OUT_F32)
          ((float *)out)[li] = v;
        else if (type == OUT_F16)
          ((uint16_t *)out)[li] = sdr_f32_to_f16(v);
        else
          ((uint16_t *)out)[li] = sdr_f32_to_bf16(v);
      }
    }
  }
}

void sdr_cuda_randn_f32(sdr_generator *g, float *out, size_t n) {
  run_kernel(g, out, n, OUT_F32, 1);
}
void sdr_cuda_randn_f16(sdr_generator *g, uint16_t *out, size_t n) {
  run_kernel(g, out, n, OUT_F16, 1);
}
void sdr_cuda_randn_bf16(sdr_generator *g, uint16_t *out, size_t n) {
  run_kernel(g, out, n, OUT_BF16, 1);
}
void sdr_cuda_rand_f32(sdr_generator *g, float *out, size_t n) {
  run_kernel(g, out, n, OUT_F32, 0);
}

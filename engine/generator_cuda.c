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
 * to about 1e-6 (kernels/philox.h says why). Beyond SMs * maxThreadsPerSM
 * elements the layout depends on the GPU, hence the geometry in the generator.
 * Not reproduced: tensors of 2^31 elements or more, which torch cuts into
 * 32-bit-indexable pieces with an offset step each.
 */
#include "engine/generator_cuda.h"

#include "kernels/philox_fill.h" // sdr_philox_fill

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

/* One call of torch's kernel with this generator's grid; the offset moves as
 * philox_cuda_state moves it (already a multiple of 4). */
static void run_kernel(sdr_generator *g, void *out, size_t n, sdr_dtype dtype, int normal) {
  if (n == 0)
    return;
  sdr_cuda_launch l = sdr_cuda_launch_for(&g->geometry, n);
  uint64_t offset = g->philox_offset;
  g->philox_offset += l.advance;
  sdr_philox_fill(g->seed, offset, l.grid, normal, dtype, out, n);
}

void sdr_cuda_randn_f32(sdr_generator *g, float *out, size_t n) {
  run_kernel(g, out, n, SDR_F32, 1);
}
void sdr_cuda_randn_f16(sdr_generator *g, uint16_t *out, size_t n) {
  run_kernel(g, out, n, SDR_F16, 1);
}
void sdr_cuda_randn_bf16(sdr_generator *g, uint16_t *out, size_t n) {
  run_kernel(g, out, n, SDR_BF16, 1);
}
void sdr_cuda_rand_f32(sdr_generator *g, float *out, size_t n) {
  run_kernel(g, out, n, SDR_F32, 0);
}

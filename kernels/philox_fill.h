/* kernels/philox_fill.h — torch's CUDA random kernel run on the host.
 *
 * One call of torch's distribution_elementwise_grid_stride_kernel: `grid`
 * blocks of 256 threads; thread idx runs curand_init(seed, idx, offset) and
 * takes one curand_normal4 (normal) or curand_uniform4 per step, writing
 * component k to element i + k * 256 * grid. What the CUDA backend's philox op
 * computes on the GPU, here on the CPU (the normals to ~1e-6, kernels/philox.h
 * says why): the CPU backend's philox op, the engine's CUDA generator and the
 * tests' emulated device all use it.
 */
#ifndef SDR_KERNELS_PHILOX_FILL_H
#define SDR_KERNELS_PHILOX_FILL_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/dtype.h" // sdr_dtype

/* out: n values of dtype (float32, float16 or bfloat16: the float rounded to
 * nearest even, as torch rounds); uniform ones in [0, 1), as torch.rand. */
void sdr_philox_fill(uint64_t seed, uint64_t offset, uint64_t grid, int normal, sdr_dtype dtype,
                     void *out, size_t n);

#endif

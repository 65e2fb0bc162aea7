/* kernels/cuda/cuda_random.cu — torch.randn and torch.rand on the GPU, as torch's CUDA
 * generator draws them (aten/src/ATen/native/cuda/DistributionTemplates.h:
 * distribution_elementwise_grid_stride_kernel with curand_normal4 / curand_uniform4).
 *
 * The arithmetic is kernels/philox.h, shared with the host emulation
 * (kernels/philox_fill.c) so both run the same lines; the integer part and the
 * uniforms agree bit for bit, the normals to ~1e-6 (the GPU's __sincosf).
 */
#include "kernels/philox.h" // sdr_philox_init, sdr_philox_draw4
#include "kernels/cuda/cuda_internal.h"

/* Thread idx runs curand_init(seed, idx, offset); element idx + k*stride takes
 * component k of each draw of four, stepping by 4*stride (torch's unroll of 4). */
template <typename T>
__global__ void __launch_bounds__(256) philox_kernel(T *out, int64_t n, unsigned long long seed,
                                                     unsigned long long offset, int normal) {
  const uint64_t idx = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
  const uint64_t stride = (uint64_t)blockDim.x * gridDim.x, step = stride * 4;
  const uint64_t rounded = ((uint64_t)(n - 1) / step + 1) * step;
  sdr_philox_state s;
  sdr_philox_init(&s, seed, idx, offset);
  for (uint64_t li0 = idx; li0 < rounded; li0 += step) {
    float r[4];
    sdr_philox_draw4(&s, normal, r);
#pragma unroll
    for (int k = 0; k < 4; k++) {
      uint64_t li = li0 + (uint64_t)k * stride;
      if (li < (uint64_t)n)
        out[li] = from_f<T>(r[k]);
    }
  }
}

int sdr_cuda_random(sdr_backend *be, sdr_tensor *out, uint64_t seed, uint64_t offset, uint64_t grid,
                    int normal) {
  const char *op = "sdr_cuda_random";
  if (!be || !be->impl || be->device != SDR_DEVICE_CUDA)
    return sdr_fail("%s: not a CUDA backend", op);
  if (!out || out->device != SDR_DEVICE_CUDA)
    return sdr_fail("%s: out is not on the GPU", op);
  cuda_state *st = cuda_use(be);
  sdr_dtype dt;
  const sdr_tensor *acts[1] = {out};
  if (cuda_act_dtype(op, acts, 1, &dt) < 0)
    return -1;
  int64_t n = sdr_tensor_numel(out);
  if (n == 0)
    return 0;
  if (!out->data)
    return sdr_fail("%s: out has no data", op);
  if (n > 0x7fffffff) /* torch cuts such tensors into pieces, each with its own offset */
    return sdr_fail("%s: %lld values in one call; torch's layout beyond 2^31 is not reproduced", op,
                    (long long)n);
  if (grid < 1 || grid > 0x7fffffff)
    return sdr_fail("%s: grid of %llu blocks", op, (unsigned long long)grid);
  unsigned g = (unsigned)grid;
  if (dt == SDR_F32)
    SDR_LAUNCH(philox_kernel, g, 256, 0, st->stream, (float *)out->data, n, seed, offset, normal);
  else if (dt == SDR_F16)
    SDR_LAUNCH(philox_kernel, g, 256, 0, st->stream, (__half *)out->data, n, seed, offset, normal);
  else
    SDR_LAUNCH(philox_kernel, g, 256, 0, st->stream, (__nv_bfloat16 *)out->data, n, seed, offset,
               normal);
  CUDA_LAUNCHED(op);
  return 0;
}

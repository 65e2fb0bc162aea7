/* kernels/cuda/cuda_device.cuh — what the CUDA kernels share: conversions between the
 * storage dtypes and float, parameters of a run-time dtype, index arithmetic.
 *
 * Device code only, no runtime calls: the kernels' headers that include it compile
 * for the GPU (nvcc) and, for the host simulation of tests/cuda/simt/, as plain C++.
 */
#ifndef SDR_KERNELS_CUDA_DEVICE_CUH
#define SDR_KERNELS_CUDA_DEVICE_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "kernels/dtype.h" // SDR_F32, SDR_F16

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T from_f(float x);
template <> __device__ __forceinline__ float from_f<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_f<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

/* Element i of a float32/float16/bfloat16 vector whose dtype is known at run
 * time (gamma, beta, biases, embedding tables: small or read once). */
__device__ __forceinline__ float ld_param(const void *p, int dtype, int64_t i) {
  if (dtype == SDR_F32)
    return ((const float *)p)[i];
  if (dtype == SDR_F16)
    return __half2float(((const __half *)p)[i]);
  return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
}

/* q = i / d, r = i % d for indices: in 32 bits when both fit, since a 64-bit
 * division is a long subroutine on the GPU and would bound the element-wise
 * kernels instead of memory. */
__device__ __forceinline__ void idx_divmod(int64_t i, int64_t d, int64_t *q, int64_t *r) {
  if (((uint64_t)i | (uint64_t)d) <= 0xffffffffull) {
    uint32_t a = (uint32_t)i, b = (uint32_t)d, t = a / b;
    *q = t;
    *r = a - t * b;
  } else {
    *q = i / d;
    *r = i - *q * d;
  }
}

/* The block's dynamic shared memory as an array of type (the launch's third
 * argument says how much); the host simulation (tests/cuda/simt) gives its own. */
#ifndef SDR_DYNAMIC_SHARED
#define SDR_DYNAMIC_SHARED(type, name) extern __shared__ __align__(128) type name[]
#endif

#define GRID_STRIDE(i, n)                                                                          \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                        \
       i += (int64_t)gridDim.x * blockDim.x)

#endif

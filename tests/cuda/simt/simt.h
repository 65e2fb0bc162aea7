/* tests/cuda/simt/simt.h — CUDA's execution model on the host, for running the
 * backend's kernels (the device headers of kernels/cuda) where there is no GPU.
 *
 * Compiled as plain C++ with this header first (-include simt.h): __global__ and
 * __device__ functions become ordinary ones; a launch runs the blocks one after
 * another, each block's threads as fibers (simt.cpp) switched only at barriers,
 * so every thread runs its own copy of the kernel's code with its own registers.
 * __syncthreads waits for the block, __syncwarp and the warp-collective operations
 * (shuffles; mma.sync, ldmatrix and WMMA in the headers beside this one) for the
 * warp; a barrier that can never be passed (threads of one warp waiting at
 * different barriers, or some at the block's while others finished) stops the
 * program with the threads' states. Shared memory is fresh for each block and
 * filled with 0xff bytes (NaN in every float dtype), so a read of shared memory
 * nobody wrote shows in the output.
 *
 * What it cannot find: timing, races between threads (they never run at the same
 * time), memory-model questions. What it finds: wrong indices, fragment layouts,
 * barriers, masks, everything a kernel computes.
 *
 * Dynamic shared memory is what SDR_DYNAMIC_SHARED (kernels/cuda/cuda_device.cuh)
 * names; static __shared__ variables are function statics, one per kernel, which
 * is right as long as blocks run one at a time.
 */
#ifndef SDR_TESTS_CUDA_SIMT_H
#define SDR_TESTS_CUDA_SIMT_H

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h> /* before the built-in variables below become macros */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <functional>

/* CUDA's qualifiers, as the host compiler should read them here */
#undef __global__
#undef __device__
#undef __host__
#undef __forceinline__
#undef __shared__
#undef __align__
#undef __launch_bounds__
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static /* one per kernel: blocks run one after another */
#define __align__(n)
#define SDR_DYNAMIC_SHARED(type, name) type *const name = (type *)simt::dynamic_shared_base()
#define __launch_bounds__(...)

namespace simt {

struct thread_state; /* simt.cpp */

/* the running fiber's indices */
const uint3 &thread_idx();
const uint3 &block_idx();
const dim3 &block_dim();
const dim3 &grid_dim();
int lane();

void block_sync();
void warp_sync();
/* 32 slots of 64 bytes, one per lane of the running warp, for collectives */
unsigned char (*warp_slots())[64];


/* Runs body for every thread of every block of grid, with `smem` bytes of dynamic
 * shared memory (NaN-filled before each block; more than an H200 gives stops it). */
void run(dim3 grid, dim3 block, size_t smem, const std::function<void()> &body);
/* the running block's dynamic shared memory (256-byte aligned, NaN-filled) */
unsigned char *dynamic_shared_base();
/* Warps run one after another up to each __syncthreads: 0 in ascending order, 1 in
 * descending (a test runs both, so a missing barrier shows whichever warp it hurts). */
void set_warp_order(int descending);

template <typename... P, typename... A>
void launch(dim3 grid, dim3 block, size_t smem, void (*kernel)(P...), A... args) {
  run(grid, block, smem, [=] { kernel(args...); });
}

/* A launch on a stream (simt_runtime.cpp): run at once, or recorded while the stream
 * is being captured; a configuration the GPU refuses becomes cudaGetLastError's. */
void launch_on(cudaStream_t stream, dim3 grid, dim3 block, size_t smem,
               std::function<void()> body, const char *kernel = "kernel");

/* the kernel's arguments evaluated now, as a launch does, for a call later */
template <typename F, typename... A> std::function<void()> bind_args(F f, A... args) {
  return [=] { f(args...); };
}

/* Stops the program with a message (a kernel broke a rule the GPU would enforce). */
[[noreturn]] void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

template <typename T> T shfl(T v, int src) {
  unsigned char(*x)[64] = warp_slots();
  memcpy(x[lane()], &v, sizeof v);
  warp_sync();
  T r;
  memcpy(&r, x[src & 31], sizeof r);
  warp_sync();
  return r;
}

} // namespace simt

/* cuda_runtime.h gives nvcc this overload for kernels; the host compiler needs it too */
template <class T> cudaError_t cudaFuncSetAttribute(T *entry, cudaFuncAttribute attr, int value) {
  return ::cudaFuncSetAttribute((const void *)entry, attr, value);
}

/* kernels/cuda/cuda_internal.h's launch macro, run by the simulation */
#define SDR_LAUNCH(kernel, grid, block, smem, stream, ...)                                         \
  simt::launch_on((stream), (grid), (block), (smem),                                               \
                  simt::bind_args([](auto... a_) { kernel(a_...); }, __VA_ARGS__), #kernel)

/* device intrinsics the kernels use, with the GPU's results */
inline float __fmul_rn(float a, float b) { return a * b; } /* not fused: ISO C++ */
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __ll2float_rn(long long x) { return (float)x; }
inline float __int_as_float(int x) {
  float f;
  memcpy(&f, &x, 4);
  return f;
}
inline unsigned long long atomicCAS(unsigned long long *p, unsigned long long cmp,
                                    unsigned long long val) {
  unsigned long long old = *p; /* threads never run at once here */
  if (old == cmp)
    *p = val;
  return old;
}

#define threadIdx (simt::thread_idx())
#define blockIdx (simt::block_idx())
#define blockDim (simt::block_dim())
#define gridDim (simt::grid_dim())

inline void __syncthreads() { simt::block_sync(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  if (mask != 0xffffffffu)
    simt::fail("__syncwarp with a partial mask (%#x) is not simulated", mask);
  simt::warp_sync();
}
template <typename T> T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  if (mask != 0xffffffffu || width != 32)
    simt::fail("a shuffle over part of a warp is not simulated");
  return simt::shfl(v, simt::lane() ^ lane_mask);
}
template <typename T> T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  if (mask != 0xffffffffu || width != 32)
    simt::fail("a shuffle over part of a warp is not simulated");
  return simt::shfl(v, src);
}

/* CUDA's integer min and max (any mix of int and enum, as the device overloads take) */
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline int64_t min(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max(int64_t a, int64_t b) { return a > b ? a : b; }

#endif

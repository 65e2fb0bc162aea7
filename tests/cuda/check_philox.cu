/* tests/cuda/check_philox.cu — on a GPU: does the CPU copy of torch's CUDA
 * randn (engine/generator_cuda.c) follow what the GPU computes?
 *
 * Three versions of torch.randn(n, device="cuda") run here for a few seeds,
 * sizes and offsets:
 *   1. torch's kernel as written in aten/src/ATen/native/cuda/DistributionTemplates.h
 *      (distribution_elementwise_grid_stride_kernel with curand_init and
 *      curand_normal4 / curand_uniform4 from the toolkit's curand_kernel.h);
 *   2. the same loop over kernels/philox.h's device functions (what our CUDA
 *      backend will use);
 *   3. sdr_generator_randn_f32 on a CUDA generator, computed on the CPU, with
 *      this GPU's SM count and threads per SM.
 * 1 and 2 must agree bit for bit, and so must the uniforms of 3; the normals
 * of 3 differ by the GPU's fast __sincosf and logf, expected below 1e-5.
 *
 * Not part of ctest (no GPU is needed to build or test sdrepl). Build and run:
 *   nvcc -O2 -I. tests/cuda/check_philox.cu engine/generator.c engine/generator_cpu.c \
 *     engine/generator_cuda.c engine/mt19937.c engine/avx_mathfun.c kernels/error.c \
 *     -o /tmp/check_philox && /tmp/check_philox
 * Exit status 0 when everything agrees, 77 without a GPU.
 */
#include <cuda_runtime.h>
#include <curand_kernel.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/philox.h" // sdr_philox_init, sdr_curand_normal4, sdr_curand_uniform4
extern "C" {
#include "engine/generator.h" // sdr_generator, sdr_generator_randn_f32, sdr_generator_rand_f32
}

#define CUDA_OK(call)                                                                              \
  do {                                                                                             \
    cudaError_t e_ = (call);                                                                       \
    if (e_ != cudaSuccess) {                                                                       \
      fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, cudaGetErrorString(e_));                  \
      return 2;                                                                                    \
    }                                                                                              \
  } while (0)

/* torch's grid-stride kernel, unroll 4, with curand (ours == 0) or kernels/philox.h (ours == 1). */
__global__ void randn_kernel(int numel, unsigned long long seed, unsigned long long offset,
                             int normal, int ours, float *out) {
  int idx = blockIdx.x * blockDim.x + threadIdx.x;
  curandStatePhilox4_32_10_t state;
  sdr_philox_state mine;
  if (ours)
    sdr_philox_init(&mine, seed, idx, offset);
  else
    curand_init(seed, idx, offset, &state);
  int rounded_size = ((numel - 1) / (blockDim.x * gridDim.x * 4) + 1) * blockDim.x * gridDim.x * 4;
  for (int linear_index = idx; linear_index < rounded_size;
       linear_index += blockDim.x * gridDim.x * 4) {
    float r[4];
    if (ours) {
      if (normal)
        sdr_curand_normal4(&mine, r);
      else
        sdr_curand_uniform4(&mine, r);
    } else {
      float4 v = normal ? curand_normal4(&state) : curand_uniform4(&state);
      r[0] = v.x, r[1] = v.y, r[2] = v.z, r[3] = v.w;
    }
    for (int ii = 0; ii < 4; ii++) {
      int li = linear_index + blockDim.x * gridDim.x * ii;
      if (li < numel) {
        float x = r[ii];
        if (!normal) /* uniform_kernel's (0, 1] -> [0, 1) */
          x = x == 1.0f ? 0.0f : x;
        out[li] = x * 1.0f + 0.0f;
      }
    }
    __syncthreads();
  }
}

int main(void) {
  int ndev = 0;
  cudaError_t e = cudaGetDeviceCount(&ndev);
  if (e != cudaSuccess || ndev == 0) { /* as the other checks: 77, skipped */
    printf("SKIPPED: no CUDA GPU (%s)\n", e != cudaSuccess ? cudaGetErrorString(e) : "none found");
    return 77;
  }
  cudaDeviceProp prop;
  CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  printf("%s: %d SMs, %d threads per SM\n", prop.name, prop.multiProcessorCount,
         prop.maxThreadsPerMultiProcessor);
  static const size_t sizes[] = {1, 3, 17, 1000, 16384, 49152, 3 * 4 * 128 * 128, 2000003};
  static const unsigned long long seeds[] = {0, 42, 100, 67280421310721ull};
  int failures = 0;
  double worst = 0;
  for (int normal = 1; normal >= 0; normal--) {
    for (size_t si = 0; si < sizeof seeds / sizeof seeds[0]; si++) {
      sdr_generator g;
      sdr_generator_init(&g, SDR_GENERATOR_CUDA);
      g.geometry.sm_count = prop.multiProcessorCount;
      g.geometry.max_threads_per_sm = prop.maxThreadsPerMultiProcessor;
      sdr_generator_manual_seed(&g, seeds[si]);
      /* one generator through all sizes, so the offset moves as torch moves it */
      for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        unsigned long long offset = g.philox_offset;
        float *cpu = (float *)malloc(n * sizeof(float));
        float *gpu[2] = {(float *)malloc(n * sizeof(float)), (float *)malloc(n * sizeof(float))};
        if (normal)
          sdr_generator_randn_f32(&g, cpu, n);
        else
          sdr_generator_rand_f32(&g, cpu, n);
        unsigned blocks_per_sm = prop.maxThreadsPerMultiProcessor / 256;
        unsigned grid = (unsigned)((n + 255) / 256);
        if (grid > prop.multiProcessorCount * blocks_per_sm)
          grid = prop.multiProcessorCount * blocks_per_sm;
        float *d;
        CUDA_OK(cudaMalloc(&d, n * sizeof(float)));
        for (int ours = 0; ours < 2; ours++) {
          randn_kernel<<<grid, 256>>>((int)n, seeds[si], offset, normal, ours, d);
          CUDA_OK(cudaGetLastError());
          CUDA_OK(cudaMemcpy(gpu[ours], d, n * sizeof(float), cudaMemcpyDeviceToHost));
        }
        CUDA_OK(cudaFree(d));
        size_t diff_ours = 0, diff_cpu = 0;
        double max_err = 0;
        for (size_t i = 0; i < n; i++) {
          diff_ours += memcmp(&gpu[0][i], &gpu[1][i], 4) != 0;
          double e = fabs((double)gpu[0][i] - cpu[i]);
          diff_cpu += memcmp(&gpu[0][i], &cpu[i], 4) != 0;
          max_err = e > max_err ? e : max_err;
        }
        int bad = diff_ours > 0 || (!normal && diff_cpu > 0) || (normal && max_err > 1e-5);
        failures += bad;
        worst = normal && max_err > worst ? max_err : worst;
        printf("%s seed %llu n %zu offset %llu: philox.h differs at %zu, CPU differs at %zu (max "
               "%.3g)%s\n",
               normal ? "randn" : "rand", seeds[si], n, offset, diff_ours, diff_cpu, max_err,
               bad ? "  FAIL" : "");
        free(cpu);
        free(gpu[0]);
        free(gpu[1]);
      }
    }
  }
  printf("%d failures; largest CPU-GPU difference of a normal: %.3g\n", failures, worst);
  return failures ? 1 : 0;
}

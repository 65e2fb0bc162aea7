/* tests/cuda/test_cuda_random.cu — torch.randn / torch.rand on the GPU (sdr_cuda_random)
 * against curand itself and against the CPU emulation (engine/generator_cuda.c).
 *
 * For a few seeds and sizes, one generator carried through all sizes (so the
 * Philox offset moves as torch moves it), three versions of the same call:
 *   1. torch's grid-stride kernel written with the toolkit's curand_init and
 *      curand_normal4 / curand_uniform4 (aten/src/ATen/native/cuda/DistributionTemplates.h);
 *   2. sdr_cuda_random, the backend's kernel over kernels/philox.h;
 *   3. sdr_generator_randn_* on the CPU with this GPU's geometry.
 * 1 and 2 must agree bit for bit (so the backend gives torch's numbers); 2 and 3
 * bit for bit for uniforms, and within 1e-5 for normals (the GPU's __sincosf and
 * logf against the C library's; the largest difference is printed, expected
 * about 1e-6). float16 and bfloat16 normals are the float ones rounded: the CPU's
 * may differ from the GPU's by one unit in the last place where the floats
 * differ, never more.
 *
 * Exit status: 0 all agree, 1 a difference, 77 (ctest's SKIP_RETURN_CODE) no GPU.
 */
#include <curand_kernel.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "engine/generator.h"      // sdr_generator, sdr_generator_randn_f32, ...
#include "engine/generator_cuda.h" // sdr_cuda_launch_for
#include "kernels/error.h"         // sdr_last_error
#include "kernels/half.h"          // sdr_f16_to_f32, sdr_bf16_to_f32
}
#include "kernels/cuda/cuda_backend.h" // sdr_cuda_backend_create, sdr_cuda_random

/* torch's kernel, unroll 4, with curand: the reference (check_philox.cu's "torch" path). */
__global__ void torch_kernel(int numel, unsigned long long seed, unsigned long long offset,
                             int normal, float *out) {
  int idx = blockIdx.x * blockDim.x + threadIdx.x;
  curandStatePhilox4_32_10_t state;
  curand_init(seed, idx, offset, &state);
  int rounded_size = ((numel - 1) / (blockDim.x * gridDim.x * 4) + 1) * blockDim.x * gridDim.x * 4;
  for (int linear_index = idx; linear_index < rounded_size;
       linear_index += blockDim.x * gridDim.x * 4) {
    float4 v = normal ? curand_normal4(&state) : curand_uniform4(&state);
    float r[4] = {v.x, v.y, v.z, v.w};
    for (int ii = 0; ii < 4; ii++) {
      int li = linear_index + blockDim.x * gridDim.x * ii;
      if (li < numel) {
        float x = r[ii];
        if (!normal)
          x = x == 1.0f ? 0.0f : x;
        out[li] = x * 1.0f + 0.0f;
      }
    }
    __syncthreads();
  }
}

static int failures, cases;

static void report(int bad, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(int bad, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (bad)
    fprintf(stderr, "FAIL ");
  vfprintf(bad ? stderr : stdout, fmt, ap);
  va_end(ap);
  fputc('\n', bad ? stderr : stdout);
  cases++;
  failures += bad != 0;
}

/* One call of n values in dtype dt through all three versions; the generator moves on. */
static void one_call(sdr_backend *gpu, sdr_generator *g, size_t n, sdr_dtype dt, int normal,
                     double *worst, int verbose) {
  uint64_t offset = g->philox_offset;
  sdr_cuda_launch l = sdr_cuda_launch_for(&g->geometry, n);
  size_t es = dt == SDR_F32 ? 4 : 2;
  void *cpu = malloc(n * es), *ours = malloc(n * es);
  float *ref = (float *)malloc(n * sizeof(float));
  if (dt == SDR_F32)
    normal ? sdr_generator_randn_f32(g, (float *)cpu, n)
           : sdr_generator_rand_f32(g, (float *)cpu, n);
  else if (dt == SDR_F16)
    sdr_generator_randn_f16(g, (uint16_t *)cpu, n);
  else
    sdr_generator_randn_bf16(g, (uint16_t *)cpu, n);
  const char *kind = normal ? "randn" : "rand";
  const char *dname = dt == SDR_F32 ? "float32" : dt == SDR_F16 ? "float16" : "bfloat16";
  if (g->philox_offset != offset + l.advance)
    report(1, "%s %s n %zu: the CPU generator moved its offset by %llu, torch's rule says %llu",
           kind, dname, n, (unsigned long long)(g->philox_offset - offset),
           (unsigned long long)l.advance);

  /* 2: the backend's kernel, into a poisoned buffer */
  void *d = sdr_alloc(gpu, n * es);
  int64_t shape[1] = {(int64_t)n};
  sdr_tensor t = sdr_tensor_view(d, dt, SDR_DEVICE_CUDA, 1, shape);
  memset(ours, 0xff, n * es);
  int rc = d ? sdr_upload(gpu, d, ours, n * es) : -1;
  rc = rc < 0 ? rc : sdr_cuda_random(gpu, &t, g->seed, offset, l.grid, normal);
  rc = rc < 0 ? rc : sdr_download(gpu, ours, d, n * es);
  sdr_free(gpu, d);
  if (rc < 0) {
    report(1, "%s %s n %zu: %s", kind, dname, n, sdr_last_error());
    free(cpu), free(ours), free(ref);
    return;
  }

  /* 1: curand, float32 only (float16 and bfloat16 are those values rounded) */
  size_t diff_curand = 0;
  if (dt == SDR_F32) {
    float *dr = NULL;
    if (cudaMalloc(&dr, n * sizeof(float)) != cudaSuccess) {
      report(1, "cudaMalloc failed");
      free(cpu), free(ours), free(ref);
      return;
    }
    torch_kernel<<<(unsigned)l.grid, 256>>>((int)n, g->seed, offset, normal, dr);
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess)
      e = cudaMemcpy(ref, dr, n * sizeof(float), cudaMemcpyDeviceToHost);
    cudaFree(dr);
    if (e != cudaSuccess) {
      report(1, "curand kernel: %s", cudaGetErrorString(e));
      free(cpu), free(ours), free(ref);
      return;
    }
    for (size_t i = 0; i < n; i++)
      diff_curand += memcmp((float *)ours + i, ref + i, 4) != 0;
  }

  /* 3: the CPU emulation */
  size_t diff_cpu = 0, beyond = 0;
  double max_err = 0;
  for (size_t i = 0; i < n; i++) {
    float a, b;
    if (dt == SDR_F32) {
      a = ((float *)ours)[i], b = ((float *)cpu)[i];
    } else {
      uint16_t ha = ((uint16_t *)ours)[i], hb = ((uint16_t *)cpu)[i];
      a = dt == SDR_F16 ? sdr_f16_to_f32(ha) : sdr_bf16_to_f32(ha);
      b = dt == SDR_F16 ? sdr_f16_to_f32(hb) : sdr_bf16_to_f32(hb);
      int ulps = abs((int)ha - (int)hb);
      beyond += ulps > 1 || ((ha ^ hb) & 0x8000); /* one step, same sign */
    }
    diff_cpu += memcmp(&a, &b, 4) != 0;
    double e = fabs((double)a - (double)b);
    if (!(e <= max_err)) /* NaN included */
      max_err = e;
  }
  int bad = diff_curand > 0;
  if (dt == SDR_F32)
    bad |= normal ? !(max_err <= 1e-5) : diff_cpu > 0;
  else
    bad |= beyond > 0;
  if (dt == SDR_F32 && normal && max_err > *worst)
    *worst = max_err;
  if (bad || verbose)
    report(bad,
           "%s %s seed %llu n %zu offset %llu grid %llu: differs from curand at %zu, from the CPU "
           "at %zu (largest %.3g%s)",
           kind, dname, (unsigned long long)g->seed, n, (unsigned long long)offset,
           (unsigned long long)l.grid, diff_curand, diff_cpu, max_err,
           dt == SDR_F32 ? ""
           : beyond      ? ", more than one step somewhere"
                         : ", at most one step");
  else
    cases++;
  free(cpu), free(ours), free(ref);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int verbose = getenv("SDR_TEST_VERBOSE") && atoi(getenv("SDR_TEST_VERBOSE")) > 0;
  if (sdr_cuda_device_count() == 0) {
    printf("SKIPPED: no CUDA GPU (%s)\n", sdr_cuda_unavailable_reason());
    return 77;
  }
  sdr_cuda_device_info info;
  sdr_backend *gpu = sdr_cuda_backend_create(NULL);
  if (!gpu || sdr_cuda_device_info_get(0, &info) < 0) {
    fprintf(stderr, "FAIL: %s\n", sdr_last_error());
    return 1;
  }
  printf("%s: %d SMs, %d threads per SM\n", info.name, info.sm_count, info.max_threads_per_sm);
  static const size_t sizes[] = {1, 3, 17, 1000, 16384, 49152, 3 * 4 * 128 * 128, 2000003};
  static const unsigned long long seeds[] = {0, 1, 42, 100, 67280421310721ull};
  static const struct {
    sdr_dtype dt;
    int normal;
  } kinds[] = {{SDR_F32, 1}, {SDR_F32, 0}, {SDR_F16, 1}, {SDR_BF16, 1}};
  double worst = 0;
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
    for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
      sdr_generator g;
      sdr_generator_init(&g, SDR_GENERATOR_CUDA);
      g.geometry.sm_count = info.sm_count;
      g.geometry.max_threads_per_sm = info.max_threads_per_sm;
      sdr_generator_manual_seed(&g, seeds[s]);
      for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        one_call(gpu, &g, sizes[i], kinds[k].dt, kinds[k].normal, &worst, verbose);
    }
  printf("\nPhilox on the GPU: %d calls, %d failed; largest CPU-GPU difference of a float32 "
         "normal %.3g\n",
         cases, failures, worst);
  sdr_cuda_backend_destroy(gpu);
  return failures ? 1 : 0;
}

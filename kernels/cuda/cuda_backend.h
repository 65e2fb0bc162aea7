/* kernels/cuda/cuda_backend.h — the CUDA backend: CUDA C kernels and cuBLAS on one stream.
 *
 * What engine code calls beyond the sdr_* ops of kernels/backend.h: making a
 * backend, asking what GPUs there are (torch.cuda.is_available/device_count),
 * torch's CUDA random numbers drawn on the GPU, and CUDA graphs.
 * kernels/cuda/README.md states the design (dtypes, memory, streams, graphs).
 *
 * Only in builds with SDREPL_HAVE_CUDA defined (CMake defines it for every
 * target that links sdrepl_kernels when nvcc was found); guard calls with
 * #ifdef SDREPL_HAVE_CUDA and say "this build has no CUDA" otherwise.
 */
#ifndef SDR_KERNELS_CUDA_BACKEND_H
#define SDR_KERNELS_CUDA_BACKEND_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "kernels/backend.h" // sdr_backend, sdr_tensor

/* Scratch reserved when a backend is made (im2col columns of conv2d, weights
 * converted to the activations' dtype); sdr_reserve_workspace grows it. */
enum { SDR_CUDA_DEFAULT_WORKSPACE = 128 << 20 };

typedef struct sdr_cuda_options {
  int device;             /* CUDA device index, as in torch's "cuda:N" */
  size_t workspace_bytes; /* 0: SDR_CUDA_DEFAULT_WORKSPACE */
  int simple_attention; /* 1: always the plain float32-math attention kernel (checks, debugging) */
  int mma_attention;    /* 1: float16/bfloat16 heads up to 160 wide in the register-resident
                         * mma.sync kernel (cuda_attention_mma.cu); 0: attn_flash (WMMA).
                         * Without options, SDREPL_CUDA_ATTENTION=mma asks for it. */
} sdr_cuda_options;

/* A backend on one GPU with its own stream, cuBLAS handle and workspace; NULL
 * options mean device 0 and defaults. NULL and sdr_fail when there is no GPU
 * ("no CUDA GPU: ...") or the device cannot be set up. */
sdr_backend *sdr_cuda_backend_create(const sdr_cuda_options *options);
/* Picks the float16/bfloat16 attention kernel from now on (mma: 1, the
 * register-resident one; 0, attn_flash); returns the previous choice. Ops
 * recorded in a graph keep the kernel they were recorded with. */
int sdr_cuda_set_attention(sdr_backend *be, int mma);
/* Waits for the stream, then frees everything the backend made (not the
 * tensors allocated through it: their owners free them first). */
void sdr_cuda_backend_destroy(sdr_backend *be);

/* ---- devices (torch.cuda.is_available, device_count, get_device_properties) ---- */

/* Number of usable GPUs; 0 without a driver or a GPU (never an error). When 0,
 * sdr_cuda_unavailable_reason() says why ("no CUDA-capable device is detected"). */
int sdr_cuda_device_count(void);
const char *sdr_cuda_unavailable_reason(void);

typedef struct sdr_cuda_device_info {
  char name[256];         /* "NVIDIA H200" */
  int major, minor;       /* compute capability: 9.0 on Hopper */
  int sm_count;           /* multiprocessors: 132 on H100/H200 SXM */
  int max_threads_per_sm; /* 2048 on Hopper */
  size_t total_bytes;     /* device memory */
  size_t free_bytes;      /* free now (makes a context on first use) */
} sdr_cuda_device_info;
int sdr_cuda_device_info_get(int device, sdr_cuda_device_info *info);

/* ---- torch.randn / torch.rand on the GPU (kernels/philox.h: Philox, curand's conversions) ----
 *
 * Fills out (float32, float16 or bfloat16, contiguous, on this backend) as
 * torch's distribution_elementwise_grid_stride_kernel does for one call:
 * thread idx of `grid` blocks of 256 runs curand_init(seed, idx, offset) and
 * element idx + k*256*grid takes component k of its curand_normal4 (normal)
 * or curand_uniform4 turned into [0, 1) (uniform). The caller owns torch's
 * policy: grid and the offset's advance come from sdr_cuda_launch_for
 * (engine/generator_cuda.h) with this GPU's sm_count and max_threads_per_sm,
 * and the caller moves its generator's offset by that advance. Float16 and
 * bfloat16 are the float values rounded to nearest even, as torch does. */
int sdr_cuda_random(sdr_backend *be, sdr_tensor *out, uint64_t seed, uint64_t offset, uint64_t grid,
                    int normal);

/* ---- CUDA graphs: record a sequence of ops once, replay it many times ----
 *
 * Between begin and end, ops are recorded, not run. Only ops may be called
 * then: alloc, upload, download, sync and reserve_workspace fail with a
 * message; memory freed then is freed with the graph (its kernels may use it).
 * While graphs live the workspace cannot grow (they hold its address); they
 * are destroyed before their backend. A replay runs the recorded kernels on
 * the same addresses with the same scalar arguments: inputs that change
 * between replays (latents, the timestep) must be uploaded into the same
 * buffers before sdr_cuda_graph_replay, and outputs read after a sync. */
typedef struct sdr_cuda_graph sdr_cuda_graph;
int sdr_cuda_graph_begin(sdr_backend *be);
/* NULL and sdr_fail if the recording broke (a call that cannot be captured). */
sdr_cuda_graph *sdr_cuda_graph_end(sdr_backend *be);
int sdr_cuda_graph_replay(sdr_backend *be, sdr_cuda_graph *g);
void sdr_cuda_graph_destroy(sdr_cuda_graph *g);

/* ---- memory (torch.cuda.memory_allocated, max_memory_allocated) ----
 *
 * Bytes this backend holds through cudaMalloc now, and the most it held at
 * once since it was made: tensors, arenas, uploaded weights, its workspace and
 * cuBLAS's. Not CUDA's own context, nor what cuBLAS keeps for its handle. */
int sdr_cuda_memory_stats(sdr_backend *be, size_t *in_use, size_t *peak);

/* ---- where the GPU time goes ----
 *
 * From sdr_cuda_profile_start on, every op is timed on the GPU (CUDA events
 * around it; ops recorded into a graph are not), grouped by op, dtype and
 * shapes. sdr_cuda_profile_report waits for the GPU, prints the time per op and
 * the `top` heaviest groups to f, and stops profiling. Diagnostics: run eagerly
 * (SDREPL_GRAPHS=0) to see every op. */
int sdr_cuda_profile_start(sdr_backend *be);
int sdr_cuda_profile_report(sdr_backend *be, FILE *f, int top);

#ifdef __cplusplus
}
#endif

#endif

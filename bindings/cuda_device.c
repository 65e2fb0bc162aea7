/* bindings/cuda_device.c — the GPU behind "cuda" (see the header). */
#include "bindings/cuda_device.h"

#include <stddef.h>

#ifdef SDREPL_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h" // sdr_cuda_*

static sdr_backend *gpu_create(void) { return sdr_cuda_backend_create(NULL); }

static int gpu_geometry(sdr_cuda_geometry *g) {
  sdr_cuda_device_info info;
  if (sdr_cuda_device_count() <= 0 || sdr_cuda_device_info_get(0, &info) != 0)
    return -1;
  g->sm_count = info.sm_count;
  g->max_threads_per_sm = info.max_threads_per_sm;
  return 0;
}

static const lsdr_cuda_device gpu = {sdr_cuda_device_count, sdr_cuda_unavailable_reason, gpu_create,
                                     sdr_cuda_backend_destroy, gpu_geometry};
static const lsdr_cuda_device *current = &gpu;
#else
static const lsdr_cuda_device *current = NULL;
#endif

const lsdr_cuda_device *lsdr_cuda_device_get(void) { return current; }

void lsdr_cuda_device_set(const lsdr_cuda_device *d) { current = d; }

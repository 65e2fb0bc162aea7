/* bindings/cuda_device.h — the GPU a session's "cuda" means: kernels/cuda's first
 * device in a build with CUDA, none without; a test program may put another
 * device in its place (tests/cuda/sdrepl_device.c runs notebooks on an emulated
 * one), so that the bindings' device paths run where no GPU is.
 */
#ifndef SDR_BINDINGS_CUDA_DEVICE_H
#define SDR_BINDINGS_CUDA_DEVICE_H

#include "engine/generator.h" // sdr_cuda_geometry
#include "kernels/backend.h"  // sdr_backend

typedef struct lsdr_cuda_device {
  /* GPUs usable: 0 without a driver or a device (reason() then says which), never an error */
  int (*count)(void);
  const char *(*reason)(void);
  /* a backend on the first GPU; NULL with sdr_fail's message */
  sdr_backend *(*create)(void);
  void (*destroy)(sdr_backend *be);
  /* the multiprocessors torch's CUDA random kernel is launched for; -1 if unknown */
  int (*geometry)(sdr_cuda_geometry *g);
} lsdr_cuda_device;

/* The device "cuda" means in this process; NULL in a build without CUDA. */
const lsdr_cuda_device *lsdr_cuda_device_get(void);
/* Puts d in place of the default; call before any Lua state uses "cuda". */
void lsdr_cuda_device_set(const lsdr_cuda_device *d);

#endif

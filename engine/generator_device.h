/* engine/generator_device.h — torch.randn / torch.rand into a tensor on any backend.
 *
 * randn_tensor(shape, generator=g, device=..., dtype=...) as diffusers calls it: the
 * numbers are drawn in `dtype` (float16 noise is its own stream in torch) and then
 * held in the tensor's own dtype. A CUDA generator on a backend that runs Philox
 * draws on the device itself, bit for bit torch's CUDA kernel; every other case
 * draws on the host (torch's CPU generator, or the CUDA one emulated) and uploads.
 */
#ifndef SDR_ENGINE_GENERATOR_DEVICE_H
#define SDR_ENGINE_GENERATOR_DEVICE_H

#include "engine/arena.h"     // sdr_arena
#include "engine/generator.h" // sdr_generator

/* out (on be, float32/float16/bfloat16) = one torch.randn (normal) or torch.rand
 * (!normal: float32 only) call of out's shape in dtype. scratch holds the draw
 * when dtype is not out's (may be NULL otherwise). */
int sdr_generator_fill(sdr_generator *g, sdr_backend *be, sdr_arena *scratch, sdr_tensor *out,
                       sdr_dtype dtype, int normal);

/* randn_tensor with generator=gens[0], or a list of ngens generators when ngens > 1
 * and equal to out's first dimension: one normal draw of out's shape, or one draw
 * of each batch entry from its own generator. */
int sdr_generator_fill_batch(sdr_generator *const *gens, int ngens, sdr_backend *be,
                             sdr_arena *scratch, sdr_tensor *out, sdr_dtype dtype);

#endif

/* kernels/broadcast.h — NumPy broadcasting of two tensors as a walk over the output.
 *
 * The plan both backends' binary ops follow (kernels/cpu/cpu_elementwise.c, and
 * kernels/cuda/cuda_elementwise.cu, which passes it to its kernel by value): the
 * output's dimensions of size 1 dropped, neighbours that both inputs walk on
 * contiguously merged, and per kept dimension each input's element stride (0
 * where it repeats).
 */
#ifndef SDR_KERNELS_BROADCAST_H
#define SDR_KERNELS_BROADCAST_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "kernels/tensor.h" // sdr_tensor, SDR_MAX_DIMS

typedef struct sdr_bcast {
  int nd;
  int64_t dim[SDR_MAX_DIMS], sa[SDR_MAX_DIMS], sb[SDR_MAX_DIMS]; /* element strides, 0 = repeat */
} sdr_bcast;

/* out has the broadcast shape of a and b (kernels/backend.c checked it). */
void sdr_bcast_plan(sdr_bcast *p, const sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b);

#ifdef __cplusplus
}
#endif

#endif

/* kernels/tensor.h — what every op works on: a typed, shaped block of memory on a device.
 *
 * A tensor here is a plain value (like llm.c's activations): it does not own
 * its memory. Whoever allocates (an arena for a forward pass, a model for its
 * weights, a Lua tensor for itself) frees. Data is contiguous, row-major;
 * views that stay contiguous (reshape, a range of the first dimension) are
 * cheap, anything else is a copy by an op (permute, slice).
 *
 * Dimension names used across the project: B batch, C channels, H and W
 * height and width (images and latents, NCHW), T tokens and D width (text,
 * and image tokens inside transformer blocks).
 */
#ifndef SDR_KERNELS_TENSOR_H
#define SDR_KERNELS_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/dtype.h" // sdr_dtype

enum { SDR_MAX_DIMS = 5 };

typedef enum sdr_device { SDR_DEVICE_CPU = 0, SDR_DEVICE_CUDA = 1 } sdr_device;

typedef struct sdr_tensor {
  sdr_dtype dtype;
  sdr_device device;
  int ndim;
  int64_t shape[SDR_MAX_DIMS];
  void *data; /* first element, host or device address */
} sdr_tensor;

const char *sdr_device_name(sdr_device d); /* "cpu", "cuda" */

/* A tensor value over existing memory; ndim 0 is a scalar. */
sdr_tensor sdr_tensor_view(void *data, sdr_dtype dtype, sdr_device device, int ndim,
                           const int64_t *shape);
int64_t sdr_tensor_numel(const sdr_tensor *t);
size_t sdr_tensor_nbytes(const sdr_tensor *t);
int sdr_tensor_same_shape(const sdr_tensor *a, const sdr_tensor *b);
/* "(2, 77, 768)" into buf, for messages. */
const char *sdr_shape_str(const sdr_tensor *t, char *buf, size_t n);

/* Contiguous views: a new shape with the same element count (one dimension
 * may be -1); rows [start, start+len) of the first dimension. Fail with a
 * message (sdr_fail) when impossible. */
int sdr_tensor_reshape(sdr_tensor *out, const sdr_tensor *t, int ndim, const int64_t *shape);
int sdr_tensor_narrow0(sdr_tensor *out, const sdr_tensor *t, int64_t start, int64_t len);

#endif

/* kernels/tensor.c — tensor values: shapes, sizes, contiguous views (see tensor.h). */
#include "kernels/tensor.h"

#include <stdio.h>
#include <string.h>

#include "kernels/error.h" // sdr_fail

const char *sdr_device_name(sdr_device d) {
  switch (d) {
  case SDR_DEVICE_CPU:
    return "cpu";
  case SDR_DEVICE_CUDA:
    return "cuda";
  }
  return "unknown";
}

/* An ndim outside 0..SDR_MAX_DIMS gives ndim -1, which every op rejects: a
 * value constructor has no error to return. */
sdr_tensor sdr_tensor_view(void *data, sdr_dtype dtype, sdr_device device, int ndim,
                           const int64_t *shape) {
  sdr_tensor t;
  memset(&t, 0, sizeof t);
  t.dtype = dtype;
  t.device = device;
  t.data = data;
  if (ndim < 0 || ndim > SDR_MAX_DIMS || (ndim > 0 && !shape)) {
    t.ndim = -1;
    return t;
  }
  t.ndim = ndim;
  for (int i = 0; i < ndim; i++)
    t.shape[i] = shape[i];
  return t;
}

int64_t sdr_tensor_numel(const sdr_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++)
    n *= t->shape[i];
  return n;
}

size_t sdr_tensor_nbytes(const sdr_tensor *t) {
  return (size_t)sdr_tensor_numel(t) * sdr_dtype_size(t->dtype);
}

int sdr_tensor_same_shape(const sdr_tensor *a, const sdr_tensor *b) {
  if (a->ndim != b->ndim)
    return 0;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i])
      return 0;
  return 1;
}

/* torch prints torch.Size([2, 77, 768]); messages use the tuple form (2, 77, 768). */
const char *sdr_shape_str(const sdr_tensor *t, char *buf, size_t n) {
  if (!buf || n == 0)
    return "";
  size_t used = 0;
  int k = snprintf(buf, n, "(");
  for (int i = 0; k >= 0 && i < t->ndim; i++) {
    used += (size_t)k;
    if (used >= n)
      break;
    k = snprintf(buf + used, n - used, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
  }
  if (k >= 0) {
    used += (size_t)k;
    if (used < n)
      snprintf(buf + used, n - used, ")");
  }
  return buf;
}

int sdr_tensor_reshape(sdr_tensor *out, const sdr_tensor *t, int ndim, const int64_t *shape) {
  char a[96];
  if (ndim < 0 || ndim > SDR_MAX_DIMS)
    return sdr_fail("reshape: %d dimensions (at most %d)", ndim, SDR_MAX_DIMS);
  int64_t known = 1, n = sdr_tensor_numel(t);
  int infer = -1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] == -1) {
      if (infer >= 0)
        return sdr_fail("reshape: only one dimension can be -1");
      infer = i;
    } else if (shape[i] < 0) {
      return sdr_fail("reshape: invalid dimension %lld", (long long)shape[i]);
    } else {
      known *= shape[i];
    }
  }
  sdr_tensor r = *t;
  r.ndim = ndim;
  for (int i = 0; i < ndim; i++)
    r.shape[i] = shape[i];
  if (infer >= 0) {
    if (known == 0 || n % known != 0)
      return sdr_fail("reshape: %s cannot become a shape with %lld elements per -1",
                      sdr_shape_str(t, a, sizeof a), (long long)known);
    r.shape[infer] = n / known;
  } else if (known != n) {
    char b[96];
    return sdr_fail("reshape: %s has %lld elements, %s has %lld", sdr_shape_str(t, a, sizeof a),
                    (long long)n, sdr_shape_str(&r, b, sizeof b), (long long)known);
  }
  *out = r;
  return 0;
}

int sdr_tensor_narrow0(sdr_tensor *out, const sdr_tensor *t, int64_t start, int64_t len) {
  char a[96];
  if (t->ndim < 1)
    return sdr_fail("narrow: a scalar has no first dimension");
  if (start < 0 || len < 0 || start > t->shape[0] || len > t->shape[0] - start)
    return sdr_fail("narrow: rows [%lld, %lld) outside %s", (long long)start,
                    (long long)(start + len), sdr_shape_str(t, a, sizeof a));
  sdr_tensor r = *t;
  int64_t row = 1;
  for (int i = 1; i < t->ndim; i++)
    row *= t->shape[i];
  r.shape[0] = len;
  if (t->data)
    r.data = (char *)t->data + (size_t)(start * row) * sdr_dtype_size(t->dtype);
  *out = r;
  return 0;
}

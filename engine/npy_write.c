/* engine/npy_write.c — writing .npy files as numpy.save does, atomically.
 *
 * The header is the dict numpy writes ({'descr': '<f4', 'fortran_order': False,
 * 'shape': (2, 3), }), padded with spaces so the data starts at a multiple of
 * 64 bytes (numpy's ARRAY_ALIGN), format 1.0 unless the header needs 2.0.
 * The bytes go to "<path>.tmp<pid>.<n>" beside the target, are flushed to
 * disk, and the file is renamed over the target.
 */
#include "engine/npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/atomic_file.h" // sdr_atomic_begin, sdr_atomic_write, sdr_atomic_commit
#include "engine/error.h" // sdr_fail

#define NPY_ALIGN 64

/* Builds magic, version, length and padded header; returns its length or 0. */
static size_t build_header(char *buf, size_t cap, const char *descr, int ndim,
                           const int64_t *shape) {
  char dict[512];
  int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
  for (int i = 0; i < ndim; i++)
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%s%lld", i ? ", " : "", (long long)shape[i]);
  n += snprintf(dict + n, sizeof dict - (size_t)n, "%s), }", ndim == 1 ? "," : "");
  size_t dict_len = (size_t)n;
  /* Version 1.0 keeps the length in 2 bytes; the prefix is 10 bytes, or 12 in 2.0. */
  size_t prefix = 10;
  size_t total = (prefix + dict_len + 1 + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
  if (total - prefix > 65535) {
    prefix = 12;
    total = (prefix + dict_len + 1 + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
  }
  if (total > cap)
    return 0;
  size_t hlen = total - prefix;
  memcpy(buf, "\x93NUMPY", 6);
  buf[6] = prefix == 10 ? 1 : 2;
  buf[7] = 0;
  for (size_t i = 0; i < prefix - 8; i++)
    buf[8 + i] = (char)((hlen >> (8 * i)) & 0xff);
  memcpy(buf + prefix, dict, dict_len);
  memset(buf + prefix + dict_len, ' ', hlen - dict_len - 1);
  buf[total - 1] = '\n';
  return total;
}


int sdr_npy_write(const char *path, sdr_dtype dtype, int ndim, const int64_t *shape,
                  const void *data) {
  const char *descr = (unsigned)dtype < SDR_DTYPE_COUNT ? sdr_npy_descr(dtype) : NULL;
  if (!descr)
    return sdr_fail("%s: element type %s has no .npy name", path,
                    (unsigned)dtype < SDR_DTYPE_COUNT ? sdr_dtype_name(dtype) : "(invalid)");
  if (ndim < 0 || ndim > SDR_NPY_MAX_DIMS || (ndim > 0 && !shape))
    return sdr_fail("%s: %d dimensions (0 to %d are possible)", path, ndim, SDR_NPY_MAX_DIMS);
  size_t count = 1, nbytes;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0)
      return sdr_fail("%s: negative dimension %lld", path, (long long)shape[i]);
    if (__builtin_mul_overflow(count, shape[i], &count))
      return sdr_fail("%s: the shape's element count overflows", path);
  }
  if (__builtin_mul_overflow(count, sdr_dtype_size(dtype), &nbytes))
    return sdr_fail("%s: the array's size overflows", path);
  if (nbytes > 0 && !data)
    return sdr_fail("%s: no data to write", path);
  char header[1024];
  size_t hlen = build_header(header, sizeof header, descr, ndim, shape);
  if (hlen == 0)
    return sdr_fail("%s: the header does not fit", path);

  sdr_atomic_file f;
  if (sdr_atomic_begin(&f, path) != 0)
    return -1;
  if (sdr_atomic_write(&f, header, hlen) != 0 || sdr_atomic_write(&f, data, nbytes) != 0) {
    sdr_atomic_abort(&f);
    return -1;
  }
  return sdr_atomic_commit(&f);
}

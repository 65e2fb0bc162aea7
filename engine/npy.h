/* engine/npy.h — NumPy .npy files: the format reference outputs are saved in.
 *
 * Reads and writes format versions 1.0 and 2.0 (3.0 is read too: it differs only
 * in allowing UTF-8 in the header), little-endian, C order, with the element
 * types numpy names <f4 <f2 <f8 <i8 <i4 <i2 |i1 |u1 |b1. bfloat16 has no numpy
 * name, so it is neither read nor written (store its bits as int16).
 *
 * Reading is strict: the magic, the version, the header's Python dict (exactly
 * the keys descr, fortran_order and shape), the sizes and the file length must
 * all agree, else the call fails with a message; no input makes it crash or
 * allocate more than the file holds. Writing goes to a temporary file in the
 * same folder that is renamed over the target, so a reader never sees half a
 * file, and an error leaves the old file in place.
 *
 *   sdr_npy a;
 *   if (sdr_npy_read("x.npy", &a) < 0) puts(sdr_last_error());
 *   ... a.dtype, a.ndim, a.shape, a.count, a.data ...
 *   sdr_npy_free(&a);
 */
#ifndef SDR_ENGINE_NPY_H
#define SDR_ENGINE_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "engine/dtype.h" // sdr_dtype

#define SDR_NPY_MAX_DIMS 8

typedef struct sdr_npy {
  sdr_dtype dtype;
  int ndim;                        /* 0 for a scalar */
  int64_t shape[SDR_NPY_MAX_DIMS]; /* shape[0..ndim-1] */
  size_t count;                    /* elements: the product of the shape (1 for a scalar) */
  void *data;                      /* count * sdr_dtype_size(dtype) bytes, C order; malloc'd */
} sdr_npy;

/* 0 and a filled *out, or -1 (sdr_last_error says why) and *out emptied. */
int sdr_npy_read(const char *path, sdr_npy *out);
/* The same from bytes already in memory (a whole .npy file). */
int sdr_npy_read_memory(const void *bytes, size_t len, sdr_npy *out);
/* Writes data (count * element size bytes, C order) as path, atomically. */
int sdr_npy_write(const char *path, sdr_dtype dtype, int ndim, const int64_t *shape,
                  const void *data);
/* Frees the data and empties *a; safe on an emptied or zeroed struct. */
void sdr_npy_free(sdr_npy *a);

/* numpy's name for an element type ("<f4", "|u1", ...), or NULL when it has none. */
const char *sdr_npy_descr(sdr_dtype dtype);

#endif

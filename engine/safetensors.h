/* engine/safetensors.h — .safetensors files, mapped and checked strictly.
 *
 * The file is mapped, never copied. Before anything is used the header is
 * checked: its size bounded and inside the file, JSON well-formed, every entry
 * with a known dtype, a shape whose element count times the dtype size equals
 * its byte range, ranges inside the data section, in order and not
 * overlapping. A truncated or hostile file is an error naming the file and
 * the problem, never a crash or a read out of bounds.
 */
#ifndef SDR_ENGINE_SAFETENSORS_H
#define SDR_ENGINE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "engine/dtype.h" // sdr_dtype

enum { SDR_ST_MAX_DIMS = 8 };

typedef struct sdr_st_tensor {
  const char *name;
  sdr_dtype dtype;
  int ndim;
  int64_t shape[SDR_ST_MAX_DIMS];
  const void *data; /* inside the mapping; valid until close */
  size_t nbytes;
} sdr_st_tensor;

typedef struct sdr_safetensors sdr_safetensors;

sdr_safetensors *sdr_safetensors_open(const char *path);
/* The same checks on a buffer in memory (not copied; must outlive the result). */
sdr_safetensors *sdr_safetensors_from_memory(const void *data, size_t len, const char *name);
void sdr_safetensors_close(sdr_safetensors *st);

size_t sdr_safetensors_count(const sdr_safetensors *st);
const sdr_st_tensor *sdr_safetensors_at(const sdr_safetensors *st, size_t i);
const sdr_st_tensor *sdr_safetensors_find(const sdr_safetensors *st, const char *name);
/* A "__metadata__" value, or NULL. */
const char *sdr_safetensors_metadata(const sdr_safetensors *st, const char *key);

/* Writes tensors to path (temporary file, then rename). */
int sdr_safetensors_write(const char *path, const sdr_st_tensor *tensors, size_t n);

#endif

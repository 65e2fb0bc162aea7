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

/* Additions below: details of the rules, and what the first declarations leave out.
 *
 * Rules, matching what the Python library (safetensors/src/tensor.rs) validates:
 * the header length is at most 100,000,000 bytes and inside the file; the
 * header is UTF-8 JSON without NUL bytes, \u0000 escapes or control characters, nested at most 127
 * deep (serde_json's limit), starting with '{' (0.4.x let a space come first; newer versions do
 * not, nor do we), with only whitespace after the object; each entry has a known dtype, a shape of
 * at most SDR_ST_MAX_DIMS integers in [0, 2^53], data_offsets of two such integers with end - begin
 * == elements * dtype size; sorted by offsets, the ranges tile the data section exactly: no
 * overlap, no gap, no byte after the last. Names are unique, and "__metadata__" (may be null) maps
 * strings to strings. Tensors with 0 elements are valid. Unknown keys in an entry are ignored, as
 * serde does. Where we are stricter or looser than the Python library: duplicate keys are errors
 * (serde keeps the last), and a number written 4.0 or 4e0 passes as an integer (cJSON cannot tell
 * them apart).
 *
 * Tensors are numbered in the order of their data in the file, so reading
 * them in order reads the file front to back. Lookup by name is hashed.
 * `data` is aligned to the element size when the header length is a multiple
 * of 8 (the Python library and our writer pad it so); files from other
 * writers may not be, so read elements with memcpy, not through a cast.
 * A mapped file that another process truncates afterwards can still raise
 * SIGBUS on access: mapping, like Python's, cannot guard against that. */

/* The path given to open (or the name given to from_memory). */
const char *sdr_safetensors_name(const sdr_safetensors *st);
/* "__metadata__" entries, in the file's order; key i or NULL past the end. */
size_t sdr_safetensors_metadata_count(const sdr_safetensors *st);
const char *sdr_safetensors_metadata_key(const sdr_safetensors *st, size_t i);

/* As sdr_safetensors_write, with a "__metadata__" object of n_meta string
 * pairs (diffusers' save_pretrained writes {"format": "pt"}). The file is laid
 * out as the Python library lays it out: tensors ordered by dtype (widest
 * first) then name, header padded with spaces to a multiple of 8 bytes, so
 * every tensor's data is aligned. Names must be unique UTF-8, not "__metadata__". */
int sdr_safetensors_write_metadata(const char *path, const sdr_st_tensor *tensors, size_t n,
                                   const char *const *keys, const char *const *values,
                                   size_t n_meta);

#endif

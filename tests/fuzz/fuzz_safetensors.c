/* tests/fuzz/fuzz_safetensors.c — sdr_safetensors_from_memory on any bytes.
 *
 * No crash and no read outside the buffer (every byte of every accepted
 * tensor is read, so a range past the end shows under ASan); an accepted
 * file is consistent (ranges inside the data, sizes matching shapes, each
 * name found again); and what the writer's header makes of it parses back
 * to the same tensors and metadata.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The reader and writer, compiled into this target: the library is built
 * without -fsanitize=fuzzer, and libFuzzer needs the coverage of the code it
 * explores. (The linker then takes no copies of them from the archive.) */
#include "engine/safetensors.c"
#include "engine/safetensors_write.c"
#include "engine/utf8_check.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned sink;

static void check_consistent(const sdr_safetensors *st, const unsigned char *buf, size_t len) {
  size_t n = sdr_safetensors_count(st);
  const unsigned char *prev_end = NULL;
  for (size_t i = 0; i < n; i++) {
    const sdr_st_tensor *t = sdr_safetensors_at(st, i);
    const unsigned char *p = t->data;
    if (!t->name || p < buf + 8 || p + t->nbytes > buf + len)
      __builtin_trap();
    if (prev_end && p != prev_end) /* contiguous, in data order */
      __builtin_trap();
    prev_end = p + t->nbytes;
    size_t count = 1;
    for (int d = 0; d < t->ndim; d++)
      count *= (size_t)t->shape[d];
    if (t->ndim < 0 || t->ndim > SDR_ST_MAX_DIMS || count * sdr_dtype_size(t->dtype) != t->nbytes)
      __builtin_trap();
    unsigned acc = 0;
    for (size_t k = 0; k < t->nbytes; k++)
      acc += p[k];
    sink += acc;
    if (sdr_safetensors_find(st, t->name) != t)
      __builtin_trap();
  }
  if (n && prev_end != buf + len)
    __builtin_trap();
  for (size_t i = 0; i < sdr_safetensors_metadata_count(st); i++)
    if (!sdr_safetensors_metadata(st, sdr_safetensors_metadata_key(st, i)))
      __builtin_trap();
}

/* Rebuilds the file with the writer's header and checks it reads back the same. */
static void check_round_trip(const sdr_safetensors *st) {
  size_t n = sdr_safetensors_count(st), nm = sdr_safetensors_metadata_count(st);
  sdr_st_tensor *t = calloc(n + 1, sizeof *t);
  size_t *order = calloc(n + 1, sizeof *order);
  const char **keys = calloc(nm + 1, sizeof *keys), **values = calloc(nm + 1, sizeof *values);
  if (!t || !order || !keys || !values)
    goto done;
  for (size_t i = 0; i < n; i++)
    t[i] = *sdr_safetensors_at(st, i);
  for (size_t i = 0; i < nm; i++) {
    keys[i] = sdr_safetensors_metadata_key(st, i);
    values[i] = sdr_safetensors_metadata(st, keys[i]);
  }
  if (stw_check("fuzz", t, n, keys, values, nm) != 0)
    __builtin_trap(); /* whatever the reader accepts, the writer takes */
  size_t hlen = 0, total = 0;
  char *header = stw_header("fuzz", t, order, n, keys, values, nm, &hlen);
  if (!header)
    goto done; /* only out of memory or over 100 MB */
  for (size_t i = 0; i < n; i++)
    total += t[i].nbytes;
  unsigned char *file = malloc(8 + hlen + total);
  if (file) {
    for (int i = 0; i < 8; i++)
      file[i] = (unsigned char)((unsigned long long)hlen >> (8 * i));
    memcpy(file + 8, header, hlen);
    size_t at = 8 + hlen;
    for (size_t k = 0; k < n; k++) {
      if (t[order[k]].nbytes)
        memcpy(file + at, t[order[k]].data, t[order[k]].nbytes);
      at += t[order[k]].nbytes;
    }
    sdr_safetensors *again = sdr_safetensors_from_memory(file, at, "round trip");
    if (!again || sdr_safetensors_count(again) != n || sdr_safetensors_metadata_count(again) != nm)
      __builtin_trap();
    for (size_t i = 0; i < n; i++) {
      const sdr_st_tensor *x = sdr_safetensors_find(again, t[i].name);
      if (!x || x->dtype != t[i].dtype || x->ndim != t[i].ndim || x->nbytes != t[i].nbytes ||
          memcmp(x->shape, t[i].shape, sizeof x->shape) != 0 ||
          (x->nbytes && memcmp(x->data, t[i].data, x->nbytes) != 0))
        __builtin_trap();
    }
    for (size_t i = 0; i < nm; i++) {
      const char *v = sdr_safetensors_metadata(again, keys[i]);
      if (!v || strcmp(v, values[i]) != 0)
        __builtin_trap();
    }
    sdr_safetensors_close(again);
    free(file);
  }
  free(header);
done:
  free(t);
  free(order);
  free(keys);
  free(values);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* A copy of exactly size bytes, so ASan sees any read past the end. */
  unsigned char *buf = malloc(size ? size : 1);
  if (!buf)
    return 0;
  if (size)
    memcpy(buf, data, size);
  sdr_safetensors *st = sdr_safetensors_from_memory(buf, size, "fuzz");
  if (st) {
    check_consistent(st, buf, size);
    check_round_trip(st);
    sdr_safetensors_close(st);
  } else if (!strstr(sdr_last_error(), "fuzz: ")) {
    __builtin_trap(); /* every refusal names the file */
  }
  free(buf);
  return 0;
}

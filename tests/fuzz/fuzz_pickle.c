/* tests/fuzz/fuzz_pickle.c — the restricted unpickler and the torch.save reader on any bytes.
 *
 * Input that begins like a zip ("PK") or the legacy magic is read as a whole
 * torch.save file. Anything else is taken as a pickle: run alone, then put in
 * a torch zip as data.pkl beside a few storage records, so that persistent
 * ids, tensor rebuilding, unwrapping and the state dict's checks are explored
 * too. No crash, no read outside the buffer (every byte of every accepted
 * tensor is read, so a range past the end shows under ASan), every refusal
 * names the file, and an accepted file is consistent (each name found again).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* The reader, compiled into this target: the library is built without
 * -fsanitize=fuzzer, and libFuzzer needs the coverage of the code it explores.
 * (The linker then takes no copies of them from the archive.) */
#include "engine/pickle.c"
#include "engine/torch_file.c"
#include "engine/torch_zip.c"
#include "engine/utf8_check.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned sink;

static void check_file(const sdr_torch_file *f, const unsigned char *buf, size_t len) {
  for (size_t i = 0; i < sdr_torch_file_count(f); i++) {
    const sdr_st_tensor *t = sdr_torch_file_at(f, i);
    const unsigned char *p = t->data;
    if (!t->name || (t->nbytes && (p < buf || p + t->nbytes > buf + len)))
      __builtin_trap();
    size_t count = 1;
    for (int d = 0; d < t->ndim; d++)
      count *= (size_t)t->shape[d];
    if (count * sdr_dtype_size(t->dtype) != t->nbytes)
      __builtin_trap();
    unsigned acc = 0;
    for (size_t k = 0; k < t->nbytes; k++)
      acc += p[k];
    sink += acc;
    if (sdr_torch_file_find(f, t->name) != t)
      __builtin_trap();
  }
}

static void append(unsigned char **out, size_t *n, const void *p, size_t len) {
  memcpy(*out + *n, p, len);
  *n += len;
}

static void zle(unsigned char **out, size_t *n, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++)
    (*out)[(*n)++] = (unsigned char)(i < 8 ? v >> (8 * i) : 0); /* wider fields: zeros above */
}

/* archive/data.pkl = pickle, archive/data/0..7 = 64 bytes each: a torch zip. */
static unsigned char *wrap(const uint8_t *pickle, size_t size, size_t *len) {
  static const char *names[] = {"archive/data.pkl", "archive/data/0", "archive/data/1",
                                "archive/data/2",   "archive/data/3", "archive/data/4",
                                "archive/data/5",   "archive/data/6", "archive/data/7"};
  enum { N = 9, STORE = 64 };
  unsigned char filler[STORE];
  for (int i = 0; i < STORE; i++)
    filler[i] = (unsigned char)(i * 37 + 11);
  unsigned char *out = malloc(size + N * (STORE + 2 * 46 + 2 * 20) + 64);
  if (!out)
    return NULL;
  size_t n = 0, offs[N];
  for (int i = 0; i < N; i++) {
    const void *d = i ? filler : (const void *)pickle;
    size_t dl = i ? STORE : size;
    offs[i] = n;
    zle(&out, &n, 0x04034b50, 4);
    zle(&out, &n, 20, 2);
    zle(&out, &n, 0, 6);
    zle(&out, &n, 0, 4);
    zle(&out, &n, crc32(0, d, (uInt)dl), 4);
    zle(&out, &n, dl, 4);
    zle(&out, &n, dl, 4);
    zle(&out, &n, strlen(names[i]), 2);
    zle(&out, &n, 0, 2);
    append(&out, &n, names[i], strlen(names[i]));
    if (dl)
      append(&out, &n, d, dl);
  }
  size_t cd = n;
  for (int i = 0; i < N; i++) {
    const void *d = i ? filler : (const void *)pickle;
    size_t dl = i ? STORE : size;
    zle(&out, &n, 0x02014b50, 4);
    zle(&out, &n, 20, 2);
    zle(&out, &n, 20, 2);
    zle(&out, &n, 0, 8);
    zle(&out, &n, crc32(0, d, (uInt)dl), 4);
    zle(&out, &n, dl, 4);
    zle(&out, &n, dl, 4);
    zle(&out, &n, strlen(names[i]), 2);
    zle(&out, &n, 0, 12);
    zle(&out, &n, offs[i], 4);
    append(&out, &n, names[i], strlen(names[i]));
  }
  size_t cdlen = n - cd;
  zle(&out, &n, 0x06054b50, 4);
  zle(&out, &n, 0, 4);
  zle(&out, &n, N, 2);
  zle(&out, &n, N, 2);
  zle(&out, &n, cdlen, 4);
  zle(&out, &n, cd, 4);
  zle(&out, &n, 0, 2);
  *len = n;
  return out;
}

static void read_file(const unsigned char *buf, size_t len) {
  sdr_torch_file *f = sdr_torch_file_from_memory(buf, len, "fuzz");
  if (f) {
    check_file(f, buf, len);
    sdr_torch_file_close(f);
  } else if (strncmp(sdr_last_error(), "fuzz: ", 6) != 0 &&
             strcmp(sdr_last_error(), "out of memory") != 0) {
    __builtin_trap(); /* every refusal names the file */
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > (1 << 20))
    return 0;
  /* A copy of exactly size bytes, so ASan sees any read past the end. */
  unsigned char *buf = malloc(size ? size : 1);
  if (!buf)
    return 0;
  if (size)
    memcpy(buf, data, size);
  if (sdr_torch_file_sniff(buf, size)) {
    read_file(buf, size);
  } else {
    sdr_pickle *pk = sdr_pickle_new("fuzz");
    size_t used = 0;
    if (pk && sdr_pickle_load(pk, buf, size, &used) && used > size)
      __builtin_trap();
    sdr_pickle_free(pk);
    size_t zlen = 0;
    unsigned char *z = wrap(buf, size, &zlen);
    if (z) {
      unsigned char *exact = malloc(zlen);
      if (exact) {
        memcpy(exact, z, zlen);
        read_file(exact, zlen);
        free(exact);
      }
      free(z);
    }
  }
  free(buf);
  return 0;
}

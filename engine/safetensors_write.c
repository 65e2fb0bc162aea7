/* engine/safetensors_write.c — write tensors as a .safetensors file, laid out as the Python library
 * does.
 *
 * safetensors/src/tensor.rs (prepare): tensors sorted by dtype, widest
 * first, then by name; data packed in that order; the header is the JSON
 * serde_json writes, padded with spaces to a multiple of 8 so each tensor's
 * data stays aligned. The file appears under its name only when whole: it is
 * written to a temporary file beside it, synced, then renamed.
 */
#include "engine/safetensors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/atomic_file.h" // sdr_atomic_begin, sdr_atomic_write, sdr_atomic_commit
#include "engine/error.h"      // sdr_fail
#include "engine/utf8_check.h" // sdr_utf8_check

/* What the reader accepts: an exact JSON integer and the Python library's header limit. */
#define STW_MAX_EXACT (1ull << 53)
enum { STW_MAX_HEADER = 100000000 };

static const char *const stw_names[SDR_DTYPE_COUNT] = {
    [SDR_F32] = "F32", [SDR_F16] = "F16",  [SDR_BF16] = "BF16", [SDR_F64] = "F64",
    [SDR_I64] = "I64", [SDR_I32] = "I32",  [SDR_I16] = "I16",   [SDR_I8] = "I8",
    [SDR_U8] = "U8",   [SDR_BOOL] = "BOOL"};

/* Position in the Rust Dtype enum, whose order the library sorts by (descending). */
static const int stw_rank[SDR_DTYPE_COUNT] = {
    [SDR_BOOL] = 0, [SDR_U8] = 1,  [SDR_I8] = 2,   [SDR_I16] = 5,  [SDR_F16] = 7,
    [SDR_BF16] = 8, [SDR_I32] = 9, [SDR_F32] = 11, [SDR_F64] = 12, [SDR_I64] = 13};

/* ---- a growing text buffer -------------------------------------------------- */

typedef struct stw_buf {
  char *p;
  size_t len, cap;
  int oom;
} stw_buf;

static void stw_add(stw_buf *b, const char *s, size_t n) {
  if (b->oom)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

static void stw_puts(stw_buf *b, const char *s) { stw_add(b, s, strlen(s)); }

static void stw_u64(stw_buf *b, unsigned long long v) {
  char num[24];
  stw_add(b, num, (size_t)snprintf(num, sizeof num, "%llu", v));
}

/* A JSON string escaped as serde_json escapes it (short forms where JSON has
 * them, \u00xx for other control characters, everything else as is). */
static void stw_str(stw_buf *b, const char *s) {
  stw_add(b, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char esc[8];
    const char *rep = c == '"'    ? "\\\""
                      : c == '\\' ? "\\\\"
                      : c == '\b' ? "\\b"
                      : c == '\f' ? "\\f"
                      : c == '\n' ? "\\n"
                      : c == '\r' ? "\\r"
                      : c == '\t' ? "\\t"
                                  : NULL;
    if (!rep && c < 0x20) {
      snprintf(esc, sizeof esc, "\\u%04x", c);
      rep = esc;
    }
    if (rep)
      stw_puts(b, rep);
    else
      stw_add(b, s, 1);
  }
  stw_add(b, "\"", 1);
}

/* ---- checks ----------------------------------------------------------------- */

static int stw_fail(const char *path, const char *tensor, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int stw_fail(const char *path, const char *tensor, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (tensor)
    return sdr_fail("writing %s: tensor \"%.200s\": %s", path, tensor, msg);
  return sdr_fail("writing %s: %s", path, msg);
}

static int stw_valid_string(const char *s) {
  return s && sdr_utf8_check(s, strlen(s)) == strlen(s);
}

static int stw_name_cmp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Everything the reader will check, checked before a byte is written. */
static int stw_check(const char *path, const sdr_st_tensor *t, size_t n, const char *const *keys,
                     const char *const *values, size_t n_meta) {
  unsigned long long total = 0;
  for (size_t i = 0; i < n; i++) {
    const char *name = t[i].name;
    if (!stw_valid_string(name) || strcmp(name, "__metadata__") == 0)
      return stw_fail(path, NULL, "tensor %zu: the name is missing, not UTF-8, or \"__metadata__\"",
                      i);
    if ((unsigned)t[i].dtype >= SDR_DTYPE_COUNT)
      return stw_fail(path, name, "unknown dtype %d", (int)t[i].dtype);
    if (t[i].ndim < 0 || t[i].ndim > SDR_ST_MAX_DIMS)
      return stw_fail(path, name, "%d dimensions (at most %d)", t[i].ndim, SDR_ST_MAX_DIMS);
    unsigned long long count = 1, bytes;
    for (int d = 0; d < t[i].ndim; d++) {
      if (t[i].shape[d] < 0 || (unsigned long long)t[i].shape[d] > STW_MAX_EXACT ||
          __builtin_mul_overflow(count, (unsigned long long)t[i].shape[d], &count))
        return stw_fail(path, name, "shape[%d] = %lld is out of range", d,
                        (long long)t[i].shape[d]);
    }
    if (__builtin_mul_overflow(count, (unsigned long long)sdr_dtype_size(t[i].dtype), &bytes) ||
        bytes != t[i].nbytes)
      return stw_fail(path, name, "nbytes is %zu, but the shape and dtype make %llu", t[i].nbytes,
                      bytes);
    if (t[i].nbytes && !t[i].data)
      return stw_fail(path, name, "no data");
    if (__builtin_add_overflow(total, bytes, &total) || total > STW_MAX_EXACT)
      return stw_fail(path, name, "the data section grows past 2^53 bytes");
  }
  /* Unique names: sorted, equal names are neighbours. */
  const char **names = malloc((n ? n : 1) * sizeof *names);
  if (!names)
    return stw_fail(path, NULL, "out of memory");
  for (size_t i = 0; i < n; i++)
    names[i] = t[i].name;
  qsort(names, n, sizeof *names, stw_name_cmp);
  for (size_t i = 1; i < n; i++)
    if (strcmp(names[i - 1], names[i]) == 0) {
      stw_fail(path, names[i], "the name appears twice");
      free(names);
      return -1;
    }
  free(names);
  for (size_t i = 0; i < n_meta; i++) {
    if (!stw_valid_string(keys[i]) || !stw_valid_string(values[i]))
      return stw_fail(path, NULL, "__metadata__ entry %zu: missing or not UTF-8", i);
    for (size_t j = 0; j < i; j++)
      if (strcmp(keys[i], keys[j]) == 0)
        return stw_fail(path, NULL, "__metadata__ \"%.200s\" appears twice", keys[i]);
  }
  return 0;
}

/* ---- layout ------------------------------------------------------------------- */

/* qsort has no context argument: the tensors being ordered, for the comparisons. */
static _Thread_local const sdr_st_tensor *stw_sorting;

static int stw_order_cmp(const void *a, const void *b) {
  const sdr_st_tensor *x = &stw_sorting[*(const size_t *)a], *y = &stw_sorting[*(const size_t *)b];
  if (stw_rank[x->dtype] != stw_rank[y->dtype])
    return stw_rank[y->dtype] - stw_rank[x->dtype];
  return strcmp(x->name, y->name);
}

/* The padded header for tensors written in `order`. NULL (sdr_fail) on no
 * memory; *len is its length, a multiple of 8. */
static char *stw_header(const char *path, const sdr_st_tensor *t, size_t *order, size_t n,
                        const char *const *keys, const char *const *values, size_t n_meta,
                        size_t *len) {
  for (size_t i = 0; i < n; i++)
    order[i] = i;
  stw_sorting = t;
  qsort(order, n, sizeof *order, stw_order_cmp);
  stw_sorting = NULL;

  stw_buf b = {0};
  stw_puts(&b, "{");
  if (n_meta) {
    stw_puts(&b, "\"__metadata__\":{");
    for (size_t i = 0; i < n_meta; i++) {
      if (i)
        stw_puts(&b, ",");
      stw_str(&b, keys[i]);
      stw_puts(&b, ":");
      stw_str(&b, values[i]);
    }
    stw_puts(&b, "}");
  }
  unsigned long long offset = 0;
  for (size_t k = 0; k < n; k++) {
    const sdr_st_tensor *x = &t[order[k]];
    if (k || n_meta)
      stw_puts(&b, ",");
    stw_str(&b, x->name);
    stw_puts(&b, ":{\"dtype\":\"");
    stw_puts(&b, stw_names[x->dtype]);
    stw_puts(&b, "\",\"shape\":[");
    for (int d = 0; d < x->ndim; d++) {
      if (d)
        stw_puts(&b, ",");
      stw_u64(&b, (unsigned long long)x->shape[d]);
    }
    stw_puts(&b, "],\"data_offsets\":[");
    stw_u64(&b, offset);
    stw_puts(&b, ",");
    offset += x->nbytes;
    stw_u64(&b, offset);
    stw_puts(&b, "]}");
  }
  stw_puts(&b, "}");
  while (b.len % 8)
    stw_puts(&b, " ");
  if (b.oom) {
    free(b.p);
    stw_fail(path, NULL, "out of memory for the header");
    return NULL;
  }
  if (b.len > STW_MAX_HEADER) {
    free(b.p);
    stw_fail(path, NULL, "the header would be %zu bytes, over the 100 MB limit", b.len);
    return NULL;
  }
  *len = b.len;
  return b.p;
}

/* ---- the file ----------------------------------------------------------------- */


int sdr_safetensors_write_metadata(const char *path, const sdr_st_tensor *tensors, size_t n,
                                   const char *const *keys, const char *const *values,
                                   size_t n_meta) {
  if (!path || (n && !tensors) || (n_meta && (!keys || !values)))
    return sdr_fail("sdr_safetensors_write: missing argument");
  if (stw_check(path, tensors, n, keys, values, n_meta) != 0)
    return -1;
  size_t *order = malloc((n ? n : 1) * sizeof *order);
  if (!order)
    return stw_fail(path, NULL, "out of memory");
  size_t hlen = 0;
  char *header = stw_header(path, tensors, order, n, keys, values, n_meta, &hlen);
  if (!header) {
    free(order);
    return -1;
  }

  int rc = -1;
  sdr_atomic_file f;
  if (sdr_atomic_begin(&f, path) != 0)
    goto done;
  unsigned char len8[8];
  for (int i = 0; i < 8; i++)
    len8[i] = (unsigned char)((unsigned long long)hlen >> (8 * i));
  int ok = sdr_atomic_write(&f, len8, 8) == 0 && sdr_atomic_write(&f, header, hlen) == 0;
  for (size_t k = 0; ok && k < n; k++)
    ok = sdr_atomic_write(&f, tensors[order[k]].data, tensors[order[k]].nbytes) == 0;
  if (!ok) {
    sdr_atomic_abort(&f);
    goto done;
  }
  rc = sdr_atomic_commit(&f);
done:
  free(header);
  free(order);
  return rc;
}

int sdr_safetensors_write(const char *path, const sdr_st_tensor *tensors, size_t n) {
  return sdr_safetensors_write_metadata(path, tensors, n, NULL, NULL, 0);
}

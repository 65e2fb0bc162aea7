/* engine/npy.c — reading .npy files (numpy/lib/format.py, format versions 1.0-3.0).
 *
 * A file is: "\x93NUMPY", major and minor version bytes, the header length
 * (2 bytes little-endian in 1.0, 4 in 2.0 and 3.0), the header — a Python dict
 * literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * padded with spaces and ended by a newline — then the raw elements.
 * numpy itself parses the header with ast.literal_eval; this reads just the
 * literal forms numpy writes, and rejects everything else.
 */
#include "engine/npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/error.h" // sdr_fail, sdr_fail_prefix

/* Longest header accepted; numpy's own reader stops at 10000 bytes by default. */
#define NPY_MAX_HEADER (1u << 20)

static const struct {
  sdr_dtype dtype;
  const char *descr;
} descrs[] = {
    {SDR_F32, "<f4"}, {SDR_F16, "<f2"}, {SDR_F64, "<f8"}, {SDR_I64, "<i8"},  {SDR_I32, "<i4"},
    {SDR_I16, "<i2"}, {SDR_I8, "|i1"},  {SDR_U8, "|u1"},  {SDR_BOOL, "|b1"},
};

const char *sdr_npy_descr(sdr_dtype dtype) {
  for (size_t i = 0; i < sizeof descrs / sizeof descrs[0]; i++)
    if (descrs[i].dtype == dtype)
      return descrs[i].descr;
  return NULL;
}

void sdr_npy_free(sdr_npy *a) {
  if (!a)
    return;
  free(a->data);
  memset(a, 0, sizeof *a);
}

/* ---- the header dict ------------------------------------------------------ */

typedef struct {
  const char *p, *end;
} cursor;

static void skip_spaces(cursor *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
    c->p++;
}

static int eat(cursor *c, char ch) {
  skip_spaces(c);
  if (c->p < c->end && *c->p == ch) {
    c->p++;
    return 1;
  }
  return 0;
}

/* A quoted string without escapes, into buf. */
static int parse_string(cursor *c, char *buf, size_t cap) {
  skip_spaces(c);
  if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
    return sdr_fail("expected a quoted string in the header");
  char quote = *c->p++;
  size_t n = 0;
  while (c->p < c->end && *c->p != quote) {
    if (*c->p == '\\' || *c->p == '\n' || n + 1 >= cap)
      return sdr_fail("unexpected string in the header");
    buf[n++] = *c->p++;
  }
  if (c->p >= c->end)
    return sdr_fail("unterminated string in the header");
  c->p++;
  buf[n] = 0;
  return 0;
}

static int parse_bool(cursor *c, int *out) {
  skip_spaces(c);
  size_t left = (size_t)(c->end - c->p);
  if (left >= 4 && memcmp(c->p, "True", 4) == 0) {
    c->p += 4;
    *out = 1;
    return 0;
  }
  if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
    c->p += 5;
    *out = 0;
    return 0;
  }
  return sdr_fail("fortran_order is neither True nor False");
}

/* A non-negative decimal integer (Python 2's numpy wrote a trailing L). */
static int parse_dim(cursor *c, int64_t *out) {
  skip_spaces(c);
  if (c->p >= c->end || *c->p < '0' || *c->p > '9')
    return sdr_fail("a dimension of the shape is not a non-negative integer");
  int64_t v = 0;
  while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
    int d = *c->p++ - '0';
    if (v > (INT64_MAX - d) / 10)
      return sdr_fail("a dimension of the shape is too large");
    v = v * 10 + d;
  }
  if (c->p < c->end && *c->p == 'L')
    c->p++;
  *out = v;
  return 0;
}

/* (), (5,), (2, 3), (2, 3,) */
static int parse_shape(cursor *c, sdr_npy *a) {
  if (!eat(c, '('))
    return sdr_fail("the shape is not a tuple");
  a->ndim = 0;
  if (eat(c, ')'))
    return 0;
  for (;;) {
    if (a->ndim == SDR_NPY_MAX_DIMS)
      return sdr_fail("more than %d dimensions", SDR_NPY_MAX_DIMS);
    if (parse_dim(c, &a->shape[a->ndim]) < 0)
      return -1;
    a->ndim++;
    int comma = eat(c, ',');
    if (eat(c, ')')) {
      if (a->ndim == 1 && !comma)
        return sdr_fail("the shape (n) is not a tuple; numpy writes (n,)");
      return 0;
    }
    if (!comma)
      return sdr_fail("the shape tuple is malformed");
  }
}

static int parse_dict(cursor *c, sdr_npy *a) {
  int have_descr = 0, have_order = 0, have_shape = 0, fortran = 0;
  char descr[32];
  if (!eat(c, '{'))
    return sdr_fail("the header is not a dict");
  for (;;) {
    if (eat(c, '}'))
      break;
    char key[32];
    if (parse_string(c, key, sizeof key) < 0)
      return -1;
    if (!eat(c, ':'))
      return sdr_fail("expected ':' after '%s' in the header", key);
    if (strcmp(key, "descr") == 0 && !have_descr) {
      if (parse_string(c, descr, sizeof descr) < 0)
        return -1;
      have_descr = 1;
    } else if (strcmp(key, "fortran_order") == 0 && !have_order) {
      if (parse_bool(c, &fortran) < 0)
        return -1;
      have_order = 1;
    } else if (strcmp(key, "shape") == 0 && !have_shape) {
      if (parse_shape(c, a) < 0)
        return -1;
      have_shape = 1;
    } else {
      return sdr_fail("unexpected or repeated key '%s' in the header", key);
    }
    if (!eat(c, ',')) {
      if (!eat(c, '}'))
        return sdr_fail("expected ',' or '}' in the header");
      break;
    }
  }
  if (!have_descr || !have_order || !have_shape)
    return sdr_fail("the header lacks %s", !have_descr   ? "descr"
                                           : !have_order ? "fortran_order"
                                                         : "shape");
  int found = 0;
  for (size_t i = 0; i < sizeof descrs / sizeof descrs[0]; i++) {
    if (strcmp(descr, descrs[i].descr) == 0) {
      a->dtype = descrs[i].dtype;
      found = 1;
    }
  }
  if (!found) {
    if (descr[0] == '>')
      return sdr_fail("big-endian data ('%s') is not supported", descr);
    return sdr_fail("element type '%s' is not supported", descr);
  }
  if (fortran && a->ndim > 1)
    return sdr_fail("Fortran-order arrays are not supported");
  /* Anything after the dict is padding: spaces, then one newline at the very end. */
  skip_spaces(c);
  if (c->p != c->end - 1 || *c->p != '\n')
    return sdr_fail("the header does not end with padding and a newline");
  return 0;
}

/* Reads the fixed prefix: returns the header's offset and length. */
static int parse_prefix(const unsigned char *b, size_t len, size_t *start, size_t *hlen) {
  if (len < 10 || memcmp(b, "\x93NUMPY", 6) != 0)
    return sdr_fail("not an .npy file (no \\x93NUMPY magic)");
  if (b[6] < 1 || b[6] > 3 || b[7] != 0)
    return sdr_fail("unsupported .npy format version %u.%u", b[6], b[7]);
  if (b[6] == 1) {
    *hlen = (size_t)b[8] | (size_t)b[9] << 8;
    *start = 10;
  } else {
    if (len < 12)
      return sdr_fail("truncated .npy header");
    *hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
    *start = 12;
  }
  if (*hlen > NPY_MAX_HEADER)
    return sdr_fail("the .npy header is implausibly long (%zu bytes)", *hlen);
  return 0;
}

/* Parses the header text and works out the payload's size. */
static int parse_header(const char *text, size_t hlen, sdr_npy *a, size_t *nbytes) {
  for (size_t i = 0; i < hlen; i++) {
    unsigned char ch = (unsigned char)text[i];
    if (ch == 0 || ch > 126 || (ch < 32 && ch != '\n' && ch != '\t'))
      return sdr_fail("the .npy header holds a byte that is not printable ASCII");
  }
  cursor c = {text, text + hlen};
  if (parse_dict(&c, a) < 0)
    return -1;
  size_t count = 1;
  for (int i = 0; i < a->ndim; i++) {
    if (__builtin_mul_overflow(count, a->shape[i], &count))
      return sdr_fail("the shape's element count overflows");
  }
  if (__builtin_mul_overflow(count, sdr_dtype_size(a->dtype), nbytes))
    return sdr_fail("the array's size overflows");
  a->count = count;
  return 0;
}

/* Bool bytes other than 0 and 1 would be undefined as C bools. */
static int check_payload(const sdr_npy *a) {
  if (a->dtype != SDR_BOOL)
    return 0;
  const unsigned char *b = a->data;
  for (size_t i = 0; i < a->count; i++)
    if (b[i] > 1)
      return sdr_fail("a bool element is neither 0 nor 1");
  return 0;
}

int sdr_npy_read_memory(const void *bytes, size_t len, sdr_npy *out) {
  memset(out, 0, sizeof *out);
  const unsigned char *b = bytes;
  size_t start, hlen, nbytes;
  if (!b)
    return sdr_fail("no bytes to read an .npy array from");
  if (parse_prefix(b, len, &start, &hlen) < 0)
    return -1;
  if (hlen > len - start)
    return sdr_fail("truncated .npy header");
  if (parse_header((const char *)b + start, hlen, out, &nbytes) < 0) {
    memset(out, 0, sizeof *out);
    return -1;
  }
  size_t data_at = start + hlen;
  if (len - data_at != nbytes) {
    memset(out, 0, sizeof *out);
    return sdr_fail("the .npy data holds %zu bytes, the header says %zu", len - data_at, nbytes);
  }
  out->data = malloc(nbytes ? nbytes : 1);
  if (!out->data) {
    memset(out, 0, sizeof *out);
    return sdr_fail("out of memory for %zu bytes", nbytes);
  }
  memcpy(out->data, b + data_at, nbytes);
  if (check_payload(out) < 0) {
    sdr_npy_free(out);
    return -1;
  }
  return 0;
}

/* Reads the file in two steps, so a hostile header never makes it allocate
 * more than the file's real length. */
static int read_file(FILE *f, sdr_npy *out) {
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
    return sdr_fail("not a regular file");
  size_t len = (size_t)st.st_size;
  unsigned char prefix[12];
  size_t got = fread(prefix, 1, len < 12 ? len : 12, f);
  size_t start, hlen, nbytes;
  if (parse_prefix(prefix, got, &start, &hlen) < 0)
    return -1;
  if (hlen > len - start)
    return sdr_fail("truncated .npy header");
  char *text = malloc(hlen + 1);
  if (!text)
    return sdr_fail("out of memory");
  int rc = -1;
  if (fseek(f, (long)start, SEEK_SET) != 0 || fread(text, 1, hlen, f) != hlen) {
    sdr_fail("cannot read the .npy header");
  } else if (parse_header(text, hlen, out, &nbytes) == 0) {
    if (len - start - hlen != nbytes)
      sdr_fail("the .npy data holds %zu bytes, the header says %zu", len - start - hlen, nbytes);
    else if (!(out->data = malloc(nbytes ? nbytes : 1)))
      sdr_fail("out of memory for %zu bytes", nbytes);
    else if (fread(out->data, 1, nbytes, f) != nbytes)
      sdr_fail("the file shrank while being read");
    else
      rc = check_payload(out);
  }
  free(text);
  return rc;
}

int sdr_npy_read(const char *path, sdr_npy *out) {
  memset(out, 0, sizeof *out);
  FILE *f = fopen(path, "rb");
  if (!f)
    return sdr_fail("%s: %s", path, strerror(errno));
  int rc = read_file(f, out);
  fclose(f);
  if (rc < 0) {
    sdr_npy_free(out);
    return sdr_fail_prefix("%s: ", path);
  }
  return 0;
}

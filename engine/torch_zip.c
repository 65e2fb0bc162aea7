/* engine/torch_zip.c — the central directory of a torch.save zip, checked (see torch_zip.h).
 *
 * The layout is PKWARE's APPNOTE (4.3): end of central directory record, the
 * ZIP64 locator and record before it when present (miniz, which torch uses,
 * always writes them), central directory headers, local headers. torch's
 * writer sets flag bit 3 (sizes in a data descriptor), so sizes come from the
 * central directory, as PyTorchStreamReader reads them.
 */
#include "engine/torch_zip.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h" // sdr_fail

enum {
  EOCD_SIG = 0x06054b50,
  EOCD_LEN = 22,
  LOC64_SIG = 0x07064b50,
  LOC64_LEN = 20,
  EOCD64_SIG = 0x06064b50,
  EOCD64_LEN = 56,
  CEN_SIG = 0x02014b50,
  CEN_LEN = 46,
  LOC_SIG = 0x04034b50,
  LOC_LEN = 30,
};

static uint64_t le(const unsigned char *p, int n) {
  uint64_t x = 0;
  for (int i = 0; i < n; i++)
    x |= (uint64_t)p[i] << (8 * i);
  return x;
}

static int zfail(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int zfail(const char *name, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return sdr_fail("%s: %s", name, msg);
}

int sdr_torch_zip_sniff(const void *data, size_t len) {
  return len >= 4 && memcmp(data, "PK\3\4", 4) == 0;
}

/* The end of central directory record: the last signature whose comment ends the file. */
static int find_eocd(const unsigned char *b, size_t len, size_t *at) {
  if (len < EOCD_LEN)
    return -1;
  size_t lo = len - EOCD_LEN > 65535 ? len - EOCD_LEN - 65535 : 0;
  for (size_t i = len - EOCD_LEN + 1; i-- > lo;)
    if (le(b + i, 4) == EOCD_SIG && i + EOCD_LEN + le(b + i + 20, 2) == len) {
      *at = i;
      return 0;
    }
  return -1;
}

/* Where the central directory is and how many entries it has, ZIP64 included. */
static int directory(const unsigned char *b, size_t len, const char *name, uint64_t *off,
                     uint64_t *size, uint64_t *count) {
  size_t e;
  if (find_eocd(b, len, &e) != 0)
    return zfail(name, "not a zip archive, or a truncated one (no end of central directory)");
  if (le(b + e + 4, 2) != 0 || le(b + e + 6, 2) != 0)
    return zfail(name, "a zip archive split over several disks");
  *count = le(b + e + 10, 2);
  *size = le(b + e + 12, 4);
  *off = le(b + e + 16, 4);
  if (e >= LOC64_LEN && le(b + e - LOC64_LEN, 4) == LOC64_SIG) {
    uint64_t r = le(b + e - LOC64_LEN + 8, 8);
    if (r > len || len - r < EOCD64_LEN || le(b + r, 4) != EOCD64_SIG)
      return zfail(name, "the ZIP64 end of central directory is missing or out of the file");
    *count = le(b + r + 32, 8);
    *size = le(b + r + 40, 8);
    *off = le(b + r + 48, 8);
  }
  if (*off > len || *size > len - *off)
    return zfail(name, "the central directory lies outside the file (truncated?)");
  if (*count > *size / CEN_LEN)
    return zfail(name, "the central directory claims %llu entries in %llu bytes",
                 (unsigned long long)*count, (unsigned long long)*size);
  return 0;
}

/* ZIP64 extended information (header 0x0001): the 64-bit values of the fields
 * that hold 0xFFFFFFFF, in the order usize, csize, offset. */
static int zip64_extra(const unsigned char *x, size_t n, uint64_t *usize, uint64_t *csize,
                       uint64_t *offset) {
  while (n >= 4) {
    size_t id = (size_t)le(x, 2), sz = (size_t)le(x + 2, 2);
    if (sz > n - 4)
      return -1;
    if (id == 1) {
      const unsigned char *p = x + 4, *end = p + sz;
      uint64_t *f[3] = {usize, csize, offset};
      for (int i = 0; i < 3; i++)
        if (*f[i] == 0xffffffffu) {
          if (end - p < 8)
            return -1;
          *f[i] = le(p, 8);
          p += 8;
        }
      return 0;
    }
    x += 4 + sz;
    n -= 4 + sz;
  }
  return 0;
}

static int rec_cmp(const void *a, const void *b) {
  return strcmp(((const sdr_zip_record *)a)->name, ((const sdr_zip_record *)b)->name);
}

/* One central directory entry at c: fills r (name relative to the folder). */
static int read_entry(sdr_torch_zip *z, const unsigned char *b, size_t len, const char *name,
                      const unsigned char *c, const unsigned char *cend, sdr_zip_record *r,
                      const unsigned char **next) {
  if (cend - c < CEN_LEN || le(c, 4) != CEN_SIG)
    return zfail(name, "a broken central directory entry");
  unsigned flags = (unsigned)le(c + 8, 2), method = (unsigned)le(c + 10, 2);
  uint64_t csize = le(c + 20, 4), usize = le(c + 24, 4), off = le(c + 42, 4);
  size_t nlen = (size_t)le(c + 28, 2), xlen = (size_t)le(c + 30, 2), clen = (size_t)le(c + 32, 2);
  if ((size_t)(cend - c) - CEN_LEN < nlen + xlen + clen)
    return zfail(name, "a central directory entry runs past the directory");
  const char *ename = (const char *)c + CEN_LEN;
  if (zip64_extra(c + CEN_LEN + nlen, xlen, &usize, &csize, &off) != 0)
    return zfail(name, "a broken ZIP64 extra field in the central directory");
  *next = c + CEN_LEN + nlen + xlen + clen;
  if (nlen == 0 || memchr(ename, 0, nlen))
    return zfail(name, "a record with an empty name or a NUL in its name");
  /* The folder is the first record's, as PyTorchStreamReader takes it. */
  const char *slash = memchr(ename, '/', nlen);
  if (!slash)
    return zfail(name, "record \"%.*s\" is not inside the archive's folder", (int)nlen, ename);
  size_t flen = (size_t)(slash - ename);
  if (!z->folder) {
    if (!(z->folder = strndup(ename, flen)))
      return sdr_fail("out of memory");
  } else if (strlen(z->folder) != flen || memcmp(z->folder, ename, flen) != 0)
    return zfail(name, "record \"%.*s\" is outside the folder \"%s\" of the others",
                 (int)(nlen > 200 ? 200 : nlen), ename, z->folder);
  if (flags & 1)
    return zfail(name, "record \"%.*s\" is encrypted", (int)nlen, ename);
  if (method != 0 || csize != usize)
    return zfail(name,
                 "record \"%.*s\" is compressed (method %u); torch.save stores records "
                 "uncompressed, so this file was repacked by another tool",
                 (int)nlen, ename, method);
  /* The local header: its own name and extra lengths place the data. */
  if (off > len || len - off < LOC_LEN || le(b + off, 4) != LOC_SIG)
    return zfail(name, "record \"%.*s\": its local header is missing or out of the file", (int)nlen,
                 ename);
  uint64_t lnlen = le(b + off + 26, 2), data = off + LOC_LEN + lnlen + le(b + off + 28, 2);
  if (data <= len && (lnlen != nlen || memcmp(b + off + LOC_LEN, ename, nlen) != 0))
    return zfail(name, "record \"%.*s\": the local header names another record", (int)nlen, ename);
  if (data > len || usize > len - data)
    return zfail(name, "record \"%.*s\" (%llu bytes) runs past the end of the file (truncated?)",
                 (int)nlen, ename, (unsigned long long)usize);
  if (!(r->name = strndup(slash + 1, nlen - flen - 1)))
    return sdr_fail("out of memory");
  r->data = b + data;
  r->size = usize;
  r->crc32 = (uint32_t)le(c + 16, 4);
  return 0;
}

int sdr_torch_zip_open(sdr_torch_zip *z, const void *buf, size_t len, const char *name) {
  memset(z, 0, sizeof *z);
  const unsigned char *b = buf;
  uint64_t off = 0, size = 0, count = 0;
  if (!b || directory(b, len, name, &off, &size, &count) != 0)
    return b ? -1 : zfail(name, "empty file");
  if (count == 0)
    return zfail(name, "an empty zip archive");
  z->records = calloc((size_t)count, sizeof *z->records);
  if (!z->records)
    return sdr_fail("out of memory");
  const unsigned char *c = b + off, *cend = c + size;
  for (uint64_t i = 0; i < count; i++) {
    if (read_entry(z, b, len, name, c, cend, &z->records[i], &c) != 0) {
      sdr_torch_zip_close(z);
      return -1;
    }
    z->count++;
  }
  qsort(z->records, z->count, sizeof *z->records, rec_cmp);
  for (size_t i = 1; i < z->count; i++)
    if (strcmp(z->records[i].name, z->records[i - 1].name) == 0) {
      zfail(name, "record \"%.200s\" appears twice", z->records[i].name);
      sdr_torch_zip_close(z);
      return -1;
    }
  return 0;
}

void sdr_torch_zip_close(sdr_torch_zip *z) {
  for (size_t i = 0; i < z->count; i++)
    free((char *)z->records[i].name);
  free(z->records);
  free(z->folder);
  memset(z, 0, sizeof *z);
}

const sdr_zip_record *sdr_torch_zip_find(const sdr_torch_zip *z, const char *name) {
  sdr_zip_record key = {.name = name};
  return z->count ? bsearch(&key, z->records, z->count, sizeof key, rec_cmp) : NULL;
}

/* engine/utf8.c — UTF-8 decoding and encoding with Python's rules, growable strings. */
#include "engine/utf8.h"

#include <stdlib.h>
#include <string.h>

#include "engine/error.h" // sdr_fail

static int grow(void **v, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap)
    return 0;
  size_t cap2 = *cap ? *cap : 16;
  while (cap2 < need)
    cap2 *= 2;
  void *p = realloc(*v, cap2 * elem);
  if (!p)
    return sdr_fail("out of memory");
  *v = p;
  *cap = cap2;
  return 0;
}

int sdr_u32_reserve(sdr_u32str *s, size_t extra) {
  return grow((void **)&s->v, &s->cap, s->n + extra, sizeof *s->v);
}

int sdr_u32_push(sdr_u32str *s, uint32_t cp) {
  if (s->n == s->cap && sdr_u32_reserve(s, 1))
    return -1;
  s->v[s->n++] = cp;
  return 0;
}

int sdr_u32_append(sdr_u32str *s, const uint32_t *cps, size_t n) {
  if (n == 0)
    return 0;
  if (sdr_u32_reserve(s, n))
    return -1;
  memcpy(s->v + s->n, cps, n * sizeof *cps);
  s->n += n;
  return 0;
}

int sdr_u32_append_utf8(sdr_u32str *s, const char *utf8) {
  return sdr_utf8_decode_replace((const uint8_t *)utf8, strlen(utf8), s);
}

void sdr_u32_free(sdr_u32str *s) {
  free(s->v);
  s->v = NULL;
  s->n = s->cap = 0;
}

int sdr_bytes_push(sdr_bytes *b, uint8_t byte) {
  if (b->n == b->cap && grow((void **)&b->v, &b->cap, b->n + 1, 1))
    return -1;
  b->v[b->n++] = byte;
  return 0;
}

int sdr_bytes_append(sdr_bytes *b, const void *p, size_t n) {
  if (n == 0)
    return 0;
  if (grow((void **)&b->v, &b->cap, b->n + n, 1))
    return -1;
  memcpy(b->v + b->n, p, n);
  b->n += n;
  return 0;
}

void sdr_bytes_free(sdr_bytes *b) {
  free(b->v);
  b->v = NULL;
  b->n = b->cap = 0;
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 when invalid; *bad is
 * then how many bytes the maximal invalid subpart spans (at least 1). The
 * second byte's range depends on the lead byte (no overlongs, no surrogates,
 * nothing past U+10FFFF), as in CPython's decoder. */
static size_t sequence(const uint8_t *p, size_t n, uint32_t *cp, size_t *bad) {
  uint8_t b0 = p[0];
  *bad = 1;
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  size_t len;
  uint8_t lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    *cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    *cp = b0 & 0x0F;
    if (b0 == 0xE0)
      lo = 0xA0;
    else if (b0 == 0xED)
      hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    *cp = b0 & 0x07;
    if (b0 == 0xF0)
      lo = 0x90;
    else if (b0 == 0xF4)
      hi = 0x8F;
  } else {
    return 0;
  }
  for (size_t i = 1; i < len; i++) {
    if (i >= n)
      return 0;
    uint8_t b = p[i];
    if (b < lo || b > hi)
      return 0;
    lo = 0x80, hi = 0xBF;
    *cp = (*cp << 6) | (b & 0x3F);
    *bad = i + 1;
  }
  return len;
}

int sdr_utf8_decode_replace(const uint8_t *p, size_t n, sdr_u32str *out) {
  if (sdr_u32_reserve(out, n))
    return -1;
  size_t i = 0;
  while (i < n) {
    uint32_t cp;
    size_t bad, len = sequence(p + i, n - i, &cp, &bad);
    if (len) {
      out->v[out->n++] = cp;
      i += len;
    } else {
      out->v[out->n++] = 0xFFFD;
      i += bad;
    }
  }
  return 0;
}

int sdr_utf8_decode_strict(const uint8_t *p, size_t n, sdr_u32str *out) {
  if (sdr_u32_reserve(out, n))
    return -1;
  size_t i = 0;
  while (i < n) {
    uint32_t cp;
    size_t bad, len = sequence(p + i, n - i, &cp, &bad);
    if (!len)
      return 1;
    out->v[out->n++] = cp;
    i += len;
  }
  return 0;
}

size_t sdr_utf8_encode(uint32_t cp, uint8_t out[4]) {
  if (cp < 0x80) {
    out[0] = (uint8_t)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (uint8_t)(0xC0 | (cp >> 6));
    out[1] = (uint8_t)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (uint8_t)(0xE0 | (cp >> 12));
    out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (uint8_t)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (uint8_t)(0xF0 | (cp >> 18));
  out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (uint8_t)(0x80 | (cp & 0x3F));
  return 4;
}

int sdr_utf8_append(sdr_bytes *b, const uint32_t *cps, size_t n) {
  if (grow((void **)&b->v, &b->cap, b->n + 4 * n + 1, 1))
    return -1;
  for (size_t i = 0; i < n; i++)
    b->n += sdr_utf8_encode(cps[i], b->v + b->n);
  return 0;
}

char *sdr_utf8_from_u32(const uint32_t *cps, size_t n) {
  sdr_bytes b = {0};
  if (sdr_utf8_append(&b, cps, n) || sdr_bytes_push(&b, 0)) {
    sdr_bytes_free(&b);
    return NULL;
  }
  return (char *)b.v;
}

/* engine/image_png.c — PNG encoding with a "parameters" text chunk, and reading it back.
 *
 * Encoding: stb_image_write makes the PNG (IHDR, IDAT, IEND); when the image
 * has parameters, one text chunk goes in right after IHDR, where PIL puts
 * the chunks of its PngInfo. Like PIL's PngInfo.add_text, text that fits
 * Latin-1 is written as tEXt and anything else as uncompressed iTXt (UTF-8).
 *
 * Reading: a walk over the chunks with every length checked against the
 * data, a CRC check per text chunk, and zlib inflation capped at
 * SDR_PNG_MAX_TEXT so a small file cannot unpack into gigabytes.
 */
#include "engine/image_png.h"

#include <stdlib.h>
#include <string.h>

#include <stb_image_write.h>
#include <zlib.h>

#include "engine/error.h" // sdr_fail
#include "engine/image.h" // sdr_image, sdr_image_encode_png

static const uint8_t PNG_SIGNATURE[8] = {137, 80, 78, 71, 13, 10, 26, 10};
static const char KEYWORD[] = "parameters";

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* ---- reading ------------------------------------------------------------ */

static char *latin1_to_utf8(const uint8_t *s, size_t n) {
  char *out = malloc(2 * n + 1), *o = out;
  if (!out)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < 0x80) {
      *o++ = (char)s[i];
    } else {
      *o++ = (char)(0xC0 | s[i] >> 6);
      *o++ = (char)(0x80 | (s[i] & 0x3F));
    }
  }
  *o = 0;
  return out;
}

static char *copy_text(const uint8_t *s, size_t n) {
  char *out = malloc(n + 1);
  if (out) {
    memcpy(out, s, n);
    out[n] = 0;
  }
  return out;
}

/* zlib-inflates src; NULL when it is damaged, cut short, or unpacks past SDR_PNG_MAX_TEXT. */
static uint8_t *inflate_text(const uint8_t *src, size_t n, size_t *out_len) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (n > 0xFFFFFFFFu || inflateInit(&z) != Z_OK)
    return NULL;
  z.next_in = (Bytef *)src;
  z.avail_in = (uInt)n;
  size_t cap = 4096, len = 0;
  uint8_t *out = malloc(cap);
  while (out) {
    if (len == cap) {
      uint8_t *bigger = cap <= SDR_PNG_MAX_TEXT ? realloc(out, cap * 2) : NULL;
      if (!bigger)
        break;
      out = bigger;
      cap *= 2;
    }
    z.next_out = out + len;
    z.avail_out = (uInt)(cap - len);
    int rc = inflate(&z, Z_NO_FLUSH);
    len = cap - z.avail_out;
    if (rc == Z_STREAM_END && len <= SDR_PNG_MAX_TEXT) {
      inflateEnd(&z);
      *out_len = len;
      return out;
    }
    /* Z_BUF_ERROR with room left means the input ended first. */
    if ((rc != Z_OK && rc != Z_BUF_ERROR) || (z.avail_out > 0 && z.avail_in == 0))
      break;
  }
  inflateEnd(&z);
  free(out);
  return NULL;
}

/* The text of one tEXt, zTXt or iTXt chunk body when its keyword is "parameters". */
static char *chunk_parameters(const char *type, const uint8_t *body, size_t n) {
  const uint8_t *nul = memchr(body, 0, n);
  if (!nul || (size_t)(nul - body) != sizeof KEYWORD - 1 ||
      memcmp(body, KEYWORD, sizeof KEYWORD - 1))
    return NULL;
  const uint8_t *p = nul + 1, *end = body + n;
  if (memcmp(type, "tEXt", 4) == 0)
    return latin1_to_utf8(p, (size_t)(end - p));
  int compressed;
  if (memcmp(type, "zTXt", 4) == 0) {
    if (p >= end || *p != 0) /* compression method 0 (zlib) is the only one */
      return NULL;
    p++;
    compressed = 1;
  } else {
    /* iTXt: flag, method, language tag, translated keyword, then UTF-8 text. */
    if (end - p < 2 || p[1] != 0)
      return NULL;
    compressed = p[0] != 0;
    p += 2;
    for (int field = 0; field < 2; field++) {
      const uint8_t *z = memchr(p, 0, (size_t)(end - p));
      if (!z)
        return NULL;
      p = z + 1;
    }
  }
  if (!compressed)
    return copy_text(p, (size_t)(end - p));
  size_t len;
  uint8_t *raw = inflate_text(p, (size_t)(end - p), &len);
  if (!raw)
    return NULL;
  char *text = type[0] == 'z' ? latin1_to_utf8(raw, len) : copy_text(raw, len);
  free(raw);
  return text;
}

char *sdr_png_read_parameters(const uint8_t *data, size_t len) {
  if (len < sizeof PNG_SIGNATURE || memcmp(data, PNG_SIGNATURE, sizeof PNG_SIGNATURE) != 0)
    return NULL;
  char *found = NULL;
  size_t pos = sizeof PNG_SIGNATURE;
  /* Each chunk: length (4), type (4), body (length), CRC of type and body (4). */
  while (len - pos >= 12) {
    size_t n = be32(data + pos);
    const char *type = (const char *)data + pos + 4;
    if (n > len - pos - 12 || memcmp(type, "IEND", 4) == 0)
      break;
    const uint8_t *body = data + pos + 8;
    int is_text = memcmp(type, "tEXt", 4) == 0 || memcmp(type, "zTXt", 4) == 0 ||
                  memcmp(type, "iTXt", 4) == 0;
    if (is_text && crc32(0, (const Bytef *)type, (uInt)(n + 4)) == be32(body + n)) {
      char *text = chunk_parameters(type, body, n);
      if (text) { /* a later chunk wins, as in PIL's info dict */
        free(found);
        found = text;
      }
    }
    pos += 12 + n;
  }
  return found;
}

const uint8_t *sdr_png_find_chunk(const uint8_t *data, size_t len, const char *type, size_t *n) {
  if (len < sizeof PNG_SIGNATURE || memcmp(data, PNG_SIGNATURE, sizeof PNG_SIGNATURE) != 0)
    return NULL;
  for (size_t pos = sizeof PNG_SIGNATURE; len - pos >= 12;) {
    const size_t size = be32(data + pos);
    if (size > len - pos - 12 || memcmp(data + pos + 4, "IEND", 4) == 0)
      return NULL;
    if (memcmp(data + pos + 4, type, 4) == 0) {
      *n = size;
      return data + pos + 8;
    }
    pos += 12 + size;
  }
  return NULL;
}

uint8_t *sdr_png_without_empty_idat(const uint8_t *data, size_t len, size_t *out_len) {
  if (len < sizeof PNG_SIGNATURE || memcmp(data, PNG_SIGNATURE, sizeof PNG_SIGNATURE) != 0)
    return NULL;
  uint8_t *out = NULL;
  size_t o = 0, pos = sizeof PNG_SIGNATURE, from = 0;
  while (len - pos >= 12) {
    const size_t size = be32(data + pos);
    if (size > len - pos - 12)
      break;
    if (size == 0 && memcmp(data + pos + 4, "IDAT", 4) == 0) {
      if (!out && !(out = malloc(len)))
        return NULL; /* then stb reads it as it is */
      memcpy(out + o, data + from, pos - from);
      o += pos - from;
      from = pos + 12;
    }
    if (memcmp(data + pos + 4, "IEND", 4) == 0)
      break;
    pos += 12 + size;
  }
  if (!out)
    return NULL;
  memcpy(out + o, data + from, len - from);
  *out_len = o + len - from;
  return out;
}

/* ---- writing ------------------------------------------------------------ */

typedef struct {
  uint8_t *data;
  size_t len, cap;
  int failed;
} byte_buf;

static void buf_append(void *ctx, void *data, int size) {
  byte_buf *b = ctx;
  if (b->failed || size <= 0)
    return;
  if (b->len + (size_t)size > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + (size_t)size)
      cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
      b->failed = 1;
      return;
    }
    b->data = p;
    b->cap = cap;
  }
  memcpy(b->data + b->len, data, (size_t)size);
  b->len += (size_t)size;
}

/* Decodes one UTF-8 sequence at s (n bytes left); -1 when malformed. */
static long utf8_next(const uint8_t *s, size_t n, size_t *used) {
  if (s[0] < 0x80) {
    *used = 1;
    return s[0];
  }
  int extra = (s[0] & 0xE0) == 0xC0   ? 1
              : (s[0] & 0xF0) == 0xE0 ? 2
              : (s[0] & 0xF8) == 0xF0 ? 3
                                      : -1;
  if (extra < 0 || (size_t)extra >= n)
    return -1;
  long cp = s[0] & (0x3F >> extra);
  for (int i = 1; i <= extra; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return -1;
    cp = cp << 6 | (s[i] & 0x3F);
  }
  static const long min_cp[] = {0, 0x80, 0x800, 0x10000};
  if (cp < min_cp[extra] || cp > 0x10FFFF)
    return -1;
  *used = (size_t)extra + 1;
  return cp;
}

/* The chunk body and type for text, as PIL's add_text chooses: tEXt holding
 * Latin-1 when every character fits, else iTXt holding the UTF-8 bytes. */
static uint8_t *text_chunk_body(const char *text, size_t *n, const char **type) {
  size_t tlen = strlen(text), klen = sizeof KEYWORD - 1;
  uint8_t *body = malloc(klen + 5 + tlen), *o = body + klen + 1;
  if (!body)
    return NULL;
  memcpy(body, KEYWORD, klen + 1);
  const uint8_t *s = (const uint8_t *)text;
  int latin1 = 1;
  for (size_t i = 0, used; i < tlen && latin1; i += used) {
    long cp = utf8_next(s + i, tlen - i, &used);
    if (cp < 0 || cp > 0xFF)
      latin1 = 0;
    else
      *o++ = (uint8_t)cp;
  }
  if (latin1) {
    *type = "tEXt";
  } else {
    *type = "iTXt";
    o = body + klen + 1;
    memcpy(o, "\0\0\0\0", 4); /* not compressed, method 0, no language, no translation */
    memcpy(o + 4, text, tlen);
    o += 4 + tlen;
  }
  *n = (size_t)(o - body);
  return body;
}

int sdr_image_encode_png(const sdr_image *img, uint8_t **out, size_t *out_len) {
  *out = NULL;
  *out_len = 0;
  if (img->width < 1 || img->height < 1)
    return sdr_fail("cannot encode an empty %dx%d image", img->width, img->height);
  /* stb_image_write sizes its buffers with int arithmetic: stay well inside it. */
  if (((size_t)img->width * (size_t)img->channels + 1) * (size_t)img->height > 0x3fffffff)
    return sdr_fail("image %dx%d is too large to encode as PNG", img->width, img->height);
  if (img->parameters && strlen(img->parameters) > SDR_PNG_MAX_TEXT)
    return sdr_fail("parameters text is longer than %d bytes", SDR_PNG_MAX_TEXT);
  byte_buf b = {0};
  int ok = stbi_write_png_to_func(buf_append, &b, img->width, img->height, img->channels,
                                  img->pixels, img->width * img->channels);
  if (!ok || b.failed || b.len < 33 || memcmp(b.data + 12, "IHDR", 4) != 0) {
    free(b.data);
    return sdr_fail(b.failed ? "out of memory encoding PNG" : "PNG encoder failed");
  }
  if (!img->parameters) {
    *out = b.data;
    *out_len = b.len;
    return 0;
  }
  size_t n;
  const char *type;
  uint8_t *body = text_chunk_body(img->parameters, &n, &type);
  uint8_t *png = body ? malloc(b.len + n + 12) : NULL;
  if (!png) {
    free(body);
    free(b.data);
    return sdr_fail("out of memory encoding PNG");
  }
  /* signature + IHDR (8 + 25 bytes), the text chunk, then the rest as stb wrote it. */
  const size_t after_ihdr = 33;
  memcpy(png, b.data, after_ihdr);
  uint8_t *c = png + after_ihdr;
  put_be32(c, (uint32_t)n);
  memcpy(c + 4, type, 4);
  memcpy(c + 8, body, n);
  put_be32(c + 8 + n, (uint32_t)crc32(crc32(0, (const Bytef *)type, 4), body, (uInt)n));
  memcpy(c + 12 + n, b.data + after_ihdr, b.len - after_ihdr);
  *out = png;
  *out_len = b.len + n + 12;
  free(body);
  free(b.data);
  return 0;
}

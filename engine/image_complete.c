/* engine/image_complete.c — whether an image file holds all the data its header
 * promises, as PIL finds out when it loads one ("image file is truncated").
 *
 * stb_image pads a short file with zeros and decodes it anyway (libjpeg, for JPEG, an end
 * marker), so a download cut short opens as a picture with a grey or black band; PIL
 * refuses it. Checked here
 * before decoding: JPEG (an end-of-image marker after the scans), uncompressed BMP,
 * binary PNM and TGA (the pixel bytes the header implies, or the run-length packets
 * that cover every pixel), PNG (every IDAT chunk's data inside the file: stb would first
 * grow its buffer to the length a chunk claims, up to 2 GB for a hostile 100-byte file;
 * a stream cut inside the last chunks fails in stb's zlib by itself). GIF and PSD are left
 * to stb.
 */
#include "engine/image_complete.h"

#include <string.h>

#include "engine/error.h" // sdr_fail

static unsigned at(const uint8_t *d, size_t len, size_t i) { return i < len ? d[i] : 0; }
static uint32_t le16(const uint8_t *d, size_t len, size_t i) {
  return at(d, len, i) | at(d, len, i + 1) << 8;
}
static uint32_t le32(const uint8_t *d, size_t len, size_t i) {
  return le16(d, len, i) | le16(d, len, i + 2) << 16;
}

static int truncated(const char *name, unsigned long long need, size_t len) {
  return sdr_fail("%s: image file is truncated (%llu bytes expected, %zu present)", name, need,
                  len);
}

/* JPEG: the segments walked by their lengths, the entropy-coded data up to the next marker;
 * the file must reach EOI. libjpeg, like stb, would make up an end marker where the data
 * stops and decode the rest as grey. */
static int check_jpeg(const uint8_t *d, size_t len, const char *name) {
  size_t pos = 0;
  while (pos < len && d[pos] == 0xFF)
    pos++;
  pos++; /* SOI */
  while (pos + 1 < len) {
    if (d[pos] != 0xFF) {
      pos++;
      continue;
    }
    uint8_t m = d[pos + 1];
    if (m == 0xFF) {
      pos++;
      continue;
    }
    if (m == 0xD9)
      return 0; /* end of image: complete */
    if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) {
      pos += 2;
      continue;
    }
    size_t seg = (at(d, len, pos + 2) << 8) | at(d, len, pos + 3);
    if (seg < 2)
      return 0; /* broken structure: stb says what is wrong */
    pos += 2 + seg;
    if (m == 0xDA)
      while (pos + 1 < len &&
             !(d[pos] == 0xFF && d[pos + 1] != 0x00 && !(d[pos + 1] >= 0xD0 && d[pos + 1] <= 0xD7)))
        pos++;
  }
  return sdr_fail("%s: image file is truncated (the JPEG data ends before its end marker)", name);
}

/* BMP with BI_RGB or BI_BITFIELDS pixels: rows padded to 4 bytes, from bfOffBits. */
static int check_bmp(const uint8_t *d, size_t len, const char *name) {
  uint32_t off = le32(d, len, 10), dib = le32(d, len, 14);
  long long w, h;
  uint32_t bpp, compression = 0;
  if (dib == 12) { /* OS/2 BITMAPCOREHEADER */
    w = le16(d, len, 18);
    h = le16(d, len, 20);
    bpp = le16(d, len, 24);
  } else if (dib >= 40) {
    w = (int32_t)le32(d, len, 18);
    h = (int32_t)le32(d, len, 22);
    bpp = le16(d, len, 28);
    compression = le32(d, len, 30);
  } else {
    return 0;
  }
  if (h < 0)
    h = -h; /* top-down rows */
  if ((compression != 0 && compression != 3) || w <= 0 || bpp == 0 || bpp > 32)
    return 0;
  unsigned long long row = ((unsigned long long)bpp * (unsigned long long)w + 31) / 32 * 4;
  unsigned long long need = off + row * (unsigned long long)h;
  return need > len ? truncated(name, need, len) : 0;
}

/* Binary PNM (P5 grey, P6 RGB): width, height and maxval as text, one whitespace,
 * then the samples, two bytes each above 255. */
static int check_pnm(const uint8_t *d, size_t len, const char *name) {
  size_t pos = 2;
  unsigned long long v[3];
  for (int i = 0; i < 3; i++) {
    for (;;) { /* whitespace and # comments */
      while (pos < len && (d[pos] == ' ' || (d[pos] >= 9 && d[pos] <= 13)))
        pos++;
      if (pos < len && d[pos] == '#') {
        while (pos < len && d[pos] != '\n' && d[pos] != '\r')
          pos++;
        continue;
      }
      break;
    }
    if (pos >= len || d[pos] < '0' || d[pos] > '9')
      return 0; /* not a header we read: stb says what is wrong */
    v[i] = 0;
    while (pos < len && d[pos] >= '0' && d[pos] <= '9' && v[i] < (1ull << 32))
      v[i] = v[i] * 10 + (d[pos++] - '0');
  }
  pos++; /* the single whitespace before the samples */
  unsigned long long ch = d[1] == '6' ? 3 : 1, bytes = v[2] > 255 ? 2 : 1;
  unsigned long long need = pos + v[0] * v[1] * ch * bytes;
  return need > len ? truncated(name, need, len) : 0;
}

/* TGA of types 1-3 (colour-mapped, true colour, grey) and their run-length forms 9-11,
 * whose packets are walked: a header byte, then one pixel repeated (high bit set) or
 * up to 128 literal ones. A few bytes declaring a large picture are refused at once,
 * as PIL refuses them, where stb would decode millions of zero pixels. */
static int check_tga(const uint8_t *d, size_t len, const char *name) {
  unsigned idlen = at(d, len, 0), cmap = at(d, len, 1), type = at(d, len, 2);
  int rle = type >= 9 && type <= 11;
  if ((!rle && (type < 1 || type > 3)) || cmap > 1)
    return 0;
  unsigned long long cmap_bytes =
      cmap ? (unsigned long long)le16(d, len, 5) * ((at(d, len, 7) + 7) / 8) : 0;
  unsigned long long w = le16(d, len, 12), h = le16(d, len, 14), bpp = at(d, len, 16);
  unsigned long long px = (bpp + 7) / 8, start = 18 + idlen + cmap_bytes;
  if (!rle) {
    unsigned long long need = start + w * h * px;
    return need > len ? truncated(name, need, len) : 0;
  }
  unsigned long long done = 0, pos = start;
  while (done < w * h) {
    if (pos >= len)
      return sdr_fail("%s: image file is truncated (run-length data for %llu of %llu pixels)", name,
                      done, w * h);
    unsigned head = d[pos++], n = (head & 0x7F) + 1;
    pos += head & 0x80 ? px : n * px;
    done += n;
  }
  return pos > len ? truncated(name, pos, len) : 0;
}

/* PNG: the chunks walked up to IEND; an IDAT whose data runs past the end is refused. */
static int check_png(const uint8_t *d, size_t len, const char *name) {
  for (size_t pos = 8; len - pos >= 12;) {
    const uint32_t size = (uint32_t)d[pos] << 24 | (uint32_t)d[pos + 1] << 16 |
                          (uint32_t)d[pos + 2] << 8 | d[pos + 3];
    const uint8_t *type = d + pos + 4;
    if (memcmp(type, "IEND", 4) == 0)
      return 0;
    if (size > len - pos - 8)
      return memcmp(type, "IDAT", 4) == 0 ? truncated(name, (unsigned long long)pos + 8 + size, len)
                                          : 0; /* stb's own error, or PIL's tolerance */
    pos += 12 + (size_t)size;
    if (pos > len)
      return 0;
  }
  return 0;
}

int sdr_image_check_complete(const uint8_t *d, size_t len, const char *name) {
  if (len >= 2 && d[0] == 0xFF && d[1] == 0xD8)
    return check_jpeg(d, len, name);
  if (len >= 8 && memcmp(d, "\x89PNG", 4) == 0)
    return check_png(d, len, name);
  if (len >= 2 && d[0] == 'B' && d[1] == 'M')
    return check_bmp(d, len, name);
  if (len >= 2 && d[0] == 'P' && (d[1] == '5' || d[1] == '6'))
    return check_pnm(d, len, name);
  if (len >= 4 && (memcmp(d, "GIF8", 4) == 0 || memcmp(d, "8BPS", 4) == 0))
    return 0;
  return check_tga(d, len, name); /* stb's last guess, with no magic of its own */
}

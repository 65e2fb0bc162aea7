/* engine/image_exif.c — the EXIF orientation of a JPEG, PNG or WebP file, and PIL's
 * Image.transpose, which ImageOps.exif_transpose uses to turn a photo upright.
 *
 * The orientation is tag 0x0112 of IFD0 in the file's EXIF block: a JPEG's APP1 segment
 * ("Exif\0\0" then TIFF data), a PNG's eXIf chunk or a WebP's EXIF chunk (TIFF data, with
 * or without that header). Only the tag is read; a malformed block is taken as having none, as a
 * photo with no orientation opens as it is stored.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"     // sdr_fail
#include "engine/image.h"     // sdr_image, sdr_image_transpose
#include "engine/image_png.h" // sdr_png_find_chunk

static unsigned rd16(const uint8_t *p, int le) { return le ? p[0] | p[1] << 8 : p[0] << 8 | p[1]; }

static uint32_t rd32(const uint8_t *p, int le) {
  return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
            : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* TIFF data (the EXIF block after "Exif\0\0"): IFD0's orientation, or 0. */
static int tiff_orientation(const uint8_t *t, size_t n) {
  if (n >= 6 && memcmp(t, "Exif\0\0", 6) == 0)
    t += 6, n -= 6;
  if (n < 8 || !(memcmp(t, "II*\0", 4) == 0 || memcmp(t, "MM\0*", 4) == 0))
    return 0;
  const int le = t[0] == 'I';
  const uint32_t ifd = rd32(t + 4, le);
  if (ifd > n || n - ifd < 2)
    return 0;
  const unsigned count = rd16(t + ifd, le);
  for (unsigned i = 0; i < count; i++) {
    const size_t e = ifd + 2 + (size_t)i * 12;
    if (e + 12 > n)
      return 0;
    if (rd16(t + e, le) != 0x0112)
      continue;
    const unsigned type = rd16(t + e + 2, le);
    const unsigned v = type == 3 ? rd16(t + e + 8, le) : type == 4 ? rd32(t + e + 8, le) : 0;
    return v >= 1 && v <= 8 ? (int)v : 0;
  }
  return 0;
}

static int jpeg_orientation(const uint8_t *d, size_t n) {
  size_t i = 2;
  while (i + 4 <= n && d[i] == 0xFF) {
    const unsigned marker = d[i + 1];
    if (marker == 0xD9 || marker == 0xDA) /* end of image, start of scan: no more headers */
      return 0;
    if (marker == 0xFF || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) {
      i += marker == 0xFF ? 1 : 2;
      continue;
    }
    const size_t len = rd16(d + i + 2, 0);
    if (len < 2 || i + 2 + len > n)
      return 0;
    if (marker == 0xE1 && len >= 8 && memcmp(d + i + 4, "Exif\0\0", 6) == 0)
      return tiff_orientation(d + i + 4, len - 2);
    i += 2 + len;
  }
  return 0;
}

static int png_orientation(const uint8_t *d, size_t n) {
  size_t size;
  const uint8_t *body = sdr_png_find_chunk(d, n, "eXIf", &size);
  return body ? tiff_orientation(body, size) : 0;
}

/* A WebP's EXIF chunk: RIFF chunks after "WEBP", each a tag, a little-endian size and its
 * data, padded to an even length. */
static int webp_orientation(const uint8_t *d, size_t n) {
  size_t i = 12;
  while (i + 8 <= n) {
    const size_t size = rd32(d + i + 4, 1);
    if (size > n - i - 8)
      return 0;
    if (memcmp(d + i, "EXIF", 4) == 0)
      return tiff_orientation(d + i + 8, size);
    i += 8 + size + (size & 1);
  }
  return 0;
}

int sdr_image_exif_orientation(const uint8_t *data, size_t len) {
  if (len >= 4 && data[0] == 0xFF && data[1] == 0xD8)
    return jpeg_orientation(data, len);
  if (len >= 12 && memcmp(data, "RIFF", 4) == 0 && memcmp(data + 8, "WEBP", 4) == 0)
    return webp_orientation(data, len);
  return png_orientation(data, len);
}

sdr_image *sdr_image_transpose(const sdr_image *img, int method) {
  if (method < SDR_FLIP_LEFT_RIGHT || method > SDR_TRANSVERSE) {
    sdr_fail("transpose: method %d is not one of Image.Transpose's (0 to 6)", method);
    return NULL;
  }
  const int W = img->width, H = img->height, C = img->channels;
  const int swap = method == SDR_ROTATE_90 || method == SDR_ROTATE_270 || method == SDR_TRANSPOSE ||
                   method == SDR_TRANSVERSE;
  sdr_image *out = sdr_image_new(swap ? H : W, swap ? W : H, C);
  if (!out)
    return NULL;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      int ox, oy; /* where input pixel (x, y) lands */
      switch (method) {
      case SDR_FLIP_LEFT_RIGHT:
        ox = W - 1 - x, oy = y;
        break;
      case SDR_FLIP_TOP_BOTTOM:
        ox = x, oy = H - 1 - y;
        break;
      case SDR_ROTATE_90:
        ox = y, oy = W - 1 - x;
        break; /* counter-clockwise */
      case SDR_ROTATE_180:
        ox = W - 1 - x, oy = H - 1 - y;
        break;
      case SDR_ROTATE_270:
        ox = H - 1 - y, oy = x;
        break;
      case SDR_TRANSPOSE:
        ox = y, oy = x;
        break;
      default:
        ox = H - 1 - y, oy = W - 1 - x;
        break; /* transverse */
      }
      memcpy(out->pixels + ((size_t)oy * out->width + ox) * C,
             img->pixels + ((size_t)y * W + x) * C, (size_t)C);
    }
  if (sdr_image_copy_parameters(out, img) != 0) {
    sdr_image_free(out);
    return NULL;
  }
  return out;
}

sdr_image *sdr_image_exif_transpose(const sdr_image *img) {
  /* ImageOps.exif_transpose's table: orientation -> the transpose that undoes it */
  static const int method[9] = {-1,
                                -1,
                                SDR_FLIP_LEFT_RIGHT,
                                SDR_ROTATE_180,
                                SDR_FLIP_TOP_BOTTOM,
                                SDR_TRANSPOSE,
                                SDR_ROTATE_270,
                                SDR_TRANSVERSE,
                                SDR_ROTATE_90};
  const int o = img->orientation >= 1 && img->orientation <= 8 ? img->orientation : 1;
  sdr_image *out = method[o] < 0 ? sdr_image_copy(img) : sdr_image_transpose(img, method[o]);
  if (out)
    out->orientation = 0; /* the tag is removed from the result's EXIF */
  return out;
}

/* engine/image_decode.c — Image.open: bytes to pixels.
 *
 * libjpeg-turbo reads JPEG and libwebp WebP (its first frame), as in PIL
 * (engine/image_jpeg.h, engine/image_webp.h); stb_image reads PNG, BMP, GIF (first frame),
 * TGA, PSD and PNM. The header is read first so sizes are checked
 * before any pixel memory is taken: a few hundred bytes may claim a picture of gigapixels.
 * Modes follow PIL where the decoders let us: grey opens as L; grey with alpha as
 * RGBA (we have no LA); palette files as RGB or RGBA. A damaged file is an
 * error naming the file and the decoder's reason, never a crash; one cut short is
 * "image file is truncated", as PIL says (engine/image_complete.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image.h>

#include "engine/error.h"          // sdr_fail
#include "engine/image.h"          // sdr_image, sdr_image_decode, sdr_image_load
#include "engine/image_complete.h" // sdr_image_check_complete
#include "engine/image_jpeg.h"     // sdr_jpeg_is, sdr_jpeg_info, sdr_jpeg_read
#include "engine/image_webp.h"     // sdr_webp_is, sdr_webp_info, sdr_webp_read
#include "engine/image_png.h"      // sdr_png_read_parameters, sdr_png_without_empty_idat

/* PIL refuses to open more than 2 * Image.MAX_IMAGE_PIXELS pixels
 * (DecompressionBombError); so do we, before allocating anything. */
static const long long MAX_PIXELS = 2LL * 89478485;

static int all_opaque(const uint8_t *rgba, int w, int h) {
  size_t n = (size_t)w * (size_t)h;
  for (size_t i = 0; i < n; i++)
    if (rgba[4 * i + 3] != 255)
      return 0;
  return 1;
}

static sdr_image *decode(const uint8_t *data, size_t len, const char *name);

/* A PNG of 16-bit grey (IHDR's bit depth 16, color type 0), which PIL opens as "I;16". */
static int png_grey16(const uint8_t *d, size_t len) {
  return len > 26 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0 && memcmp(d + 12, "IHDR", 4) == 0 &&
         d[24] == 16 && d[25] == 0;
}

/* PIL's "I;16" converts to L and RGB by clipping at 255 (libImaging's I16_L and I16_RGB), so
 * load_image and convert give 255 for any value above it; that is the L picture here (stb would
 * keep the high byte). */
static sdr_image *decode_grey16(const uint8_t *data, size_t len, const char *name, int w, int h) {
  int lw, lh, comp;
  stbi_us *v = stbi_load_16_from_memory(data, (int)len, &lw, &lh, &comp, 1);
  if (!v) {
    sdr_fail("%s: cannot decode image (%s)", name, stbi_failure_reason());
    return NULL;
  }
  sdr_image *img = lw == w && lh == h ? sdr_image_new(w, h, 1) : NULL;
  if (!img && (lw != w || lh != h))
    sdr_fail("%s: cannot decode image (size changed while decoding)", name);
  for (size_t i = 0; img && i < (size_t)w * (size_t)h; i++)
    img->pixels[i] = (uint8_t)(v[i] > 255 ? 255 : v[i]);
  stbi_image_free(v);
  if (img) {
    img->parameters = sdr_png_read_parameters(data, len);
    img->orientation = sdr_image_exif_orientation(data, len);
  }
  return img;
}

/* A picture from a decoder that writes into one sized from its header (JPEG, WebP). */
static sdr_image *decode_by(int (*read)(const uint8_t *, size_t, const char *, sdr_image *),
                            const uint8_t *data, size_t len, const char *name, int w, int h,
                            int channels) {
  sdr_image *img = sdr_image_new(w, h, channels);
  if (!img)
    return NULL;
  if (read(data, len, name, img) != 0) {
    sdr_image_free(img);
    return NULL;
  }
  img->orientation = sdr_image_exif_orientation(data, len);
  return img;
}

sdr_image *sdr_image_decode(const uint8_t *data, size_t len, const char *name) {
  if (!name)
    name = "image";
  size_t clean_len;
  uint8_t *clean = sdr_png_without_empty_idat(data, len, &clean_len);
  sdr_image *img = clean ? decode(clean, clean_len, name) : decode(data, len, name);
  free(clean);
  return img;
}

static sdr_image *decode(const uint8_t *data, size_t len, const char *name) {
  if (len > INT_MAX) { /* stb takes an int length */
    sdr_fail("%s: file too large to decode (%zu bytes)", name, len);
    return NULL;
  }
  if (len == 0) {
    sdr_fail("%s: cannot identify image file (empty file)", name);
    return NULL;
  }
  /* JPEG goes to libjpeg alone (engine/image_jpeg.h), WebP to libwebp: stb sees neither. */
  int jpeg = sdr_jpeg_is(data, len), webp = sdr_webp_is(data, len), w, h, comp;
  if (jpeg && sdr_jpeg_info(data, len, name, &w, &h, &comp) != 0)
    return NULL;
  if (webp && sdr_webp_info(data, len, name, &w, &h, &comp) != 0)
    return NULL;
  if (!jpeg && !webp && !stbi_info_from_memory(data, (int)len, &w, &h, &comp)) {
    sdr_fail("%s: cannot identify image file (%s)", name, stbi_failure_reason());
    return NULL;
  }
  if (w < 1 || h < 1 || w > SDR_IMAGE_MAX_SIDE || h > SDR_IMAGE_MAX_SIDE) {
    sdr_fail("%s: image size %dx%d out of range (each side 1 to %d)", name, w, h,
             SDR_IMAGE_MAX_SIDE);
    return NULL;
  }
  if ((long long)w * h > MAX_PIXELS) {
    sdr_fail("%s: image size %dx%d (%lld pixels) exceeds the limit of %lld pixels, "
             "could be a decompression bomb",
             name, w, h, (long long)w * h, MAX_PIXELS);
    return NULL;
  }
  /* stb would pad a file cut short with zeros; PIL refuses it, and so do we. */
  if (sdr_image_check_complete(data, len, name) != 0)
    return NULL;
  if (jpeg || webp)
    return decode_by(jpeg ? sdr_jpeg_read : sdr_webp_read, data, len, name, w, h, comp);
  if (png_grey16(data, len))
    return decode_grey16(data, len, name, w, h);
  int channels = comp == 1 ? 1 : comp == 3 ? 3 : 4;
  int lw, lh, file_comp;
  uint8_t *pixels = stbi_load_from_memory(data, (int)len, &lw, &lh, &file_comp, channels);
  if (!pixels) {
    sdr_fail("%s: cannot decode image (%s)", name, stbi_failure_reason());
    return NULL;
  }
  /* The full decode must agree with the header we checked. */
  if (lw != w || lh != h) {
    stbi_image_free(pixels);
    sdr_fail("%s: cannot decode image (size changed while decoding)", name);
    return NULL;
  }
  /* stb gives every GIF an alpha band; PIL opens one as a palette image that
   * converts to RGB, so an opaque GIF comes out RGB here. */
  int loaded = channels;
  if (channels == 4 && len >= 4 && memcmp(data, "GIF8", 4) == 0 && all_opaque(pixels, w, h))
    channels = 3;
  sdr_image *img = sdr_image_new(w, h, channels);
  if (img) {
    uint8_t *o = img->pixels;
    if (loaded != channels) { /* drop the opaque alpha */
      size_t n = (size_t)w * (size_t)h;
      for (size_t i = 0; i < n; i++, o += 3)
        memcpy(o, pixels + 4 * i, 3);
    } else {
      memcpy(o, pixels, sdr_image_bytes(img));
    }
    img->parameters = sdr_png_read_parameters(data, len);
    img->orientation = sdr_image_exif_orientation(data, len);
  }
  stbi_image_free(pixels);
  return img;
}

sdr_image *sdr_image_load(const char *path) { return sdr_image_load_source(path, NULL, NULL); }

sdr_image *sdr_image_jpeg_draft(const uint8_t *data, size_t len, const char *name, int scale) {
  int w, h, comp;
  if (sdr_jpeg_info(data, len, name, &w, &h, &comp) != 0)
    return NULL;
  sdr_image *img = sdr_image_new((w + scale - 1) / scale, (h + scale - 1) / scale, comp);
  if (img && sdr_jpeg_read_scaled(data, len, name, scale, img) != 0) {
    sdr_image_free(img);
    return NULL;
  }
  if (img)
    img->orientation = sdr_image_exif_orientation(data, len);
  return img;
}

sdr_image *sdr_image_load_source(const char *path, uint8_t **jpeg, size_t *jpeg_len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    sdr_fail("cannot open %s: %s", path, strerror(errno));
    return NULL;
  }
  uint8_t *data = NULL;
  size_t len = 0, cap = 0;
  int err = 0;
  for (;;) {
    if (len == cap) {
      if (cap >= INT_MAX) {
        err = EFBIG;
        break;
      }
      size_t grown = cap ? cap * 2 : 1 << 16;
      uint8_t *p = realloc(data, grown);
      if (!p) {
        err = ENOMEM;
        break;
      }
      data = p;
      cap = grown;
    }
    size_t got = fread(data + len, 1, cap - len, f);
    len += got;
    if (got == 0) {
      if (ferror(f))
        err = errno ? errno : EIO;
      break;
    }
  }
  fclose(f);
  if (err) {
    free(data);
    sdr_fail("cannot read %s: %s", path, strerror(err));
    return NULL;
  }
  sdr_image *img = sdr_image_decode(data ? data : (const uint8_t *)"", len, path);
  if (img && jpeg && data && sdr_jpeg_is(data, len)) {
    *jpeg = data;
    *jpeg_len = len;
    return img;
  }
  free(data);
  return img;
}

/* engine/image.c — the image object and the PIL operations that move bytes:
 * new, copy, fill, crop and paste.
 *
 * Decoding lives in image_decode.c, PNG text chunks in image_png.c, saving in
 * image_save.c, convert in image_convert.c and resize in image_resize.c.
 * Paste and crop follow PIL's Paste.c and Crop.c: the same clipping, the
 * same zero fill, the same integer blend.
 */
#include "engine/image.h"

#include <stdlib.h>
#include <string.h>

#include "engine/error.h" // sdr_fail

static int valid_channels(int channels) { return channels == 1 || channels == 3 || channels == 4; }

sdr_image *sdr_image_new(int width, int height, int channels) {
  if (!valid_channels(channels)) {
    sdr_fail("image mode with %d channels (expected 1, 3 or 4)", channels);
    return NULL;
  }
  /* PIL allows empty images (a crop of width 0); they have no pixels. */
  if (width < 0 || height < 0 || width > SDR_IMAGE_MAX_SIDE || height > SDR_IMAGE_MAX_SIDE) {
    sdr_fail("image size %dx%d out of range (each side 0 to %d)", width, height,
             SDR_IMAGE_MAX_SIDE);
    return NULL;
  }
  sdr_image *img = calloc(1, sizeof *img);
  /* SDR_IMAGE_MAX_SIDE keeps this product under 2^32, so size_t never wraps. */
  size_t n = (size_t)width * (size_t)height * (size_t)channels;
  uint8_t *pixels = calloc(n ? n : 1, 1);
  if (!img || !pixels) {
    free(img);
    free(pixels);
    sdr_fail("out of memory for a %dx%d %s image", width, height, sdr_image_mode_name(channels));
    return NULL;
  }
  img->width = width;
  img->height = height;
  img->channels = channels;
  img->pixels = pixels;
  return img;
}

void sdr_image_free(sdr_image *img) {
  if (!img)
    return;
  free(img->pixels);
  free(img->parameters);
  free(img);
}

int sdr_image_set_parameters(sdr_image *img, const char *text) {
  char *copy = NULL;
  if (text && !(copy = strdup(text)))
    return sdr_fail("out of memory");
  free(img->parameters);
  img->parameters = copy;
  return 0;
}

/* PIL copies info into every derived image (Image._new), so parameters follow. */
int sdr_image_copy_parameters(sdr_image *dst, const sdr_image *src) {
  if (dst == src)
    return 0;
  dst->orientation = src->orientation;
  return sdr_image_set_parameters(dst, src->parameters);
}

sdr_image *sdr_image_copy(const sdr_image *img) {
  sdr_image *out = sdr_image_new(img->width, img->height, img->channels);
  if (!out)
    return NULL;
  memcpy(out->pixels, img->pixels, sdr_image_bytes(img));
  if (sdr_image_copy_parameters(out, img) != 0) {
    sdr_image_free(out);
    return NULL;
  }
  return out;
}

size_t sdr_image_bytes(const sdr_image *img) {
  return (size_t)img->width * (size_t)img->height * (size_t)img->channels;
}

const char *sdr_image_mode_name(int channels) {
  switch (channels) {
  case 1:
    return "L";
  case 3:
    return "RGB";
  case 4:
    return "RGBA";
  default:
    return "?";
  }
}

int sdr_image_mode_channels(const char *mode) {
  if (!mode)
    return 0;
  if (strcmp(mode, "L") == 0)
    return 1;
  if (strcmp(mode, "RGB") == 0)
    return 3;
  if (strcmp(mode, "RGBA") == 0)
    return 4;
  return 0;
}

void sdr_image_fill(sdr_image *img, const uint8_t *color, int ncolor) {
  uint8_t px[4];
  for (int c = 0; c < img->channels; c++)
    px[c] = c < ncolor ? color[c] : c == 3 ? 255 : 0;
  size_t n = (size_t)img->width * (size_t)img->height;
  uint8_t *p = img->pixels;
  if (img->channels == 1) {
    memset(p, px[0], n);
    return;
  }
  for (size_t i = 0; i < n; i++, p += img->channels)
    memcpy(p, px, (size_t)img->channels);
}

sdr_image *sdr_image_crop(const sdr_image *img, int left, int upper, int right, int lower) {
  if (right < left || lower < upper) {
    sdr_fail("crop box (%d, %d, %d, %d): %s is less than %s", left, upper, right, lower,
             right < left ? "right" : "lower", right < left ? "left" : "upper");
    return NULL;
  }
  /* 64-bit differences: right - left of two ints can exceed INT_MAX. */
  long long w = (long long)right - left, h = (long long)lower - upper;
  if (w > SDR_IMAGE_MAX_SIDE || h > SDR_IMAGE_MAX_SIDE) {
    sdr_fail("crop box (%d, %d, %d, %d) is larger than %d on a side", left, upper, right, lower,
             SDR_IMAGE_MAX_SIDE);
    return NULL;
  }
  sdr_image *out = sdr_image_new((int)w, (int)h, img->channels);
  if (!out)
    return NULL;
  /* The part of the box inside the image; the rest stays zero, as PIL's ImagingCrop. */
  long long x0 = left > 0 ? left : 0, y0 = upper > 0 ? upper : 0;
  long long x1 = right < img->width ? right : img->width;
  long long y1 = lower < img->height ? lower : img->height;
  size_t ch = (size_t)img->channels;
  for (long long y = y0; y < y1 && x0 < x1; y++) {
    const uint8_t *src = img->pixels + ((size_t)y * (size_t)img->width + (size_t)x0) * ch;
    uint8_t *dst = out->pixels + ((size_t)(y - upper) * (size_t)w + (size_t)(x0 - left)) * ch;
    memcpy(dst, src, (size_t)(x1 - x0) * ch);
  }
  if (sdr_image_copy_parameters(out, img) != 0) {
    sdr_image_free(out);
    return NULL;
  }
  return out;
}

/* PIL's BLEND: (in1 * (255 - m) + in2 * m) / 255, rounded with its shift trick. */
static uint8_t blend(unsigned mask, unsigned in1, unsigned in2) {
  unsigned tmp = in1 * (255 - mask) + in2 * mask + 128;
  return (uint8_t)(((tmp >> 8) + tmp) >> 8);
}

int sdr_image_paste(sdr_image *dst, const sdr_image *src, int x, int y, const sdr_image *mask) {
  if (mask && (mask->width != src->width || mask->height != src->height))
    return sdr_fail("mask size %dx%d does not match the pasted image's %dx%d", mask->width,
                    mask->height, src->width, src->height);
  if (mask && mask->channels != 1 && mask->channels != 4)
    return sdr_fail("bad transparency mask: mode %s (expected L or RGBA)",
                    sdr_image_mode_name(mask->channels));
  /* PIL converts the pasted image to the destination's mode first. An image
   * pasted into itself (or masking itself) reads as it was before, so it is
   * copied first, as the converted one is. */
  sdr_image *converted = NULL, *mask_copy = NULL;
  if (src->channels != dst->channels || src == dst) {
    converted = sdr_image_convert(src, dst->channels);
    if (!converted)
      return -1;
    src = converted;
  }
  if (mask == dst) {
    if (!(mask_copy = sdr_image_copy(mask))) {
      sdr_image_free(converted);
      return -1;
    }
    mask = mask_copy;
  }
  /* Clip the destination rectangle as ImagingPaste does, in 64 bits. */
  long long dx = x, dy = y, sx = 0, sy = 0, w = src->width, h = src->height;
  if (dx < 0) {
    w += dx;
    sx = -dx;
    dx = 0;
  }
  if (dx + w > dst->width)
    w = dst->width - dx;
  if (dy < 0) {
    h += dy;
    sy = -dy;
    dy = 0;
  }
  if (dy + h > dst->height)
    h = dst->height - dy;
  size_t ch = (size_t)dst->channels;
  for (long long row = 0; row < h && w > 0; row++) {
    uint8_t *out = dst->pixels + ((size_t)(dy + row) * (size_t)dst->width + (size_t)dx) * ch;
    const uint8_t *in = src->pixels + ((size_t)(sy + row) * (size_t)src->width + (size_t)sx) * ch;
    if (!mask) {
      memcpy(out, in, (size_t)w * ch);
      continue;
    }
    /* An RGBA mask masks with its alpha band, as PIL's paste_mask(..., 4, 3). */
    size_t mch = (size_t)mask->channels;
    const uint8_t *m =
        mask->pixels + ((size_t)(sy + row) * (size_t)mask->width + (size_t)sx) * mch + (mch - 1);
    for (long long col = 0; col < w; col++, m += mch)
      for (size_t c = 0; c < ch; c++, out++, in++)
        *out = blend(*m, *out, *in);
  }
  sdr_image_free(converted);
  sdr_image_free(mask_copy);
  return 0;
}

int sdr_image_paste_color(sdr_image *img, const uint8_t *color, int left, int upper, int right,
                          int lower, const sdr_image *mask) {
  long long w = (long long)right - left, h = (long long)lower - upper;
  /* An inverted box fills nothing, as in PIL; with a mask it cannot match. */
  if (mask && (mask->width != w || mask->height != h))
    return sdr_fail("mask size %dx%d does not match the box's %lldx%lld", mask->width, mask->height,
                    w, h);
  if (mask && mask->channels != 1 && mask->channels != 4)
    return sdr_fail("bad transparency mask: mode %s (expected L or RGBA)",
                    sdr_image_mode_name(mask->channels));
  sdr_image *mask_copy = NULL; /* a picture masking its own fill reads as it was */
  if (mask == img && !(mask = mask_copy = sdr_image_copy(img)))
    return -1;
  long long dx = left, dy = upper, sx = 0, sy = 0;
  if (dx < 0) {
    w += dx;
    sx = -dx;
    dx = 0;
  }
  if (dx + w > img->width)
    w = img->width - dx;
  if (dy < 0) {
    h += dy;
    sy = -dy;
    dy = 0;
  }
  if (dy + h > img->height)
    h = img->height - dy;
  size_t ch = (size_t)img->channels;
  for (long long row = 0; row < h && w > 0; row++) {
    uint8_t *out = img->pixels + ((size_t)(dy + row) * (size_t)img->width + (size_t)dx) * ch;
    if (!mask) {
      for (long long col = 0; col < w; col++, out += ch)
        memcpy(out, color, ch);
      continue;
    }
    size_t mch = (size_t)mask->channels;
    const uint8_t *m =
        mask->pixels + ((size_t)(sy + row) * (size_t)mask->width + (size_t)sx) * mch + (mch - 1);
    for (long long col = 0; col < w; col++, m += mch, out += ch) {
      for (size_t c = 0; c < ch; c++) {
        unsigned mv = *m;
        /* fill_mask_L over RGBA: where the picture is fully transparent, the
         * color bands take the ink whole (its integer (255 - a) / 255 term);
         * the alpha band is read before it is blended. */
        if (mch == 1 && ch == 4 && c != 3 && mv != 0 && out[3] == 0)
          mv = 255;
        out[c] = blend(mv, out[c], color[c]);
      }
    }
  }
  sdr_image_free(mask_copy);
  return 0;
}

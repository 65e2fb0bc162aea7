/* engine/image_bands.c — a picture's bands one by one, as PIL's split, getchannel, merge,
 * putalpha, point, getbbox and getextrema see them: an inpainting mask from a PNG's alpha,
 * a mask thresholded by a table, the box a mask's strokes cover. */
#include <stdlib.h>
#include <string.h>

#include "engine/error.h" // sdr_fail
#include "engine/image.h" // sdr_image_band, ...

sdr_image *sdr_image_band(const sdr_image *img, int band) {
  if (band < 0 || band >= img->channels) {
    sdr_fail("band index %d out of range (the picture has %d)", band, img->channels);
    return NULL;
  }
  sdr_image *out = sdr_image_new(img->width, img->height, 1);
  const size_t n = (size_t)img->width * (size_t)img->height;
  for (size_t i = 0; out && i < n; i++)
    out->pixels[i] = img->pixels[i * (size_t)img->channels + (size_t)band];
  return out;
}

sdr_image *sdr_image_merge(const sdr_image *const *bands, int n) {
  if (n != 1 && n != 3 && n != 4) {
    sdr_fail("wrong number of bands (%d; L takes 1, RGB 3, RGBA 4)", n);
    return NULL;
  }
  for (int k = 0; k < n; k++) {
    if (bands[k]->channels != 1) {
      sdr_fail("mode mismatch (band %d is %s, bands are L)", k + 1,
               sdr_image_mode_name(bands[k]->channels));
      return NULL;
    }
    if (bands[k]->width != bands[0]->width || bands[k]->height != bands[0]->height) {
      sdr_fail("size mismatch (band %d is %dx%d, band 1 %dx%d)", k + 1, bands[k]->width,
               bands[k]->height, bands[0]->width, bands[0]->height);
      return NULL;
    }
  }
  sdr_image *out = sdr_image_new(bands[0]->width, bands[0]->height, n);
  const size_t count = (size_t)bands[0]->width * (size_t)bands[0]->height;
  for (size_t i = 0; out && i < count; i++)
    for (int k = 0; k < n; k++)
      out->pixels[i * (size_t)n + (size_t)k] = bands[k]->pixels[i];
  return out;
}

int sdr_image_putalpha(sdr_image *img, const sdr_image *alpha, uint8_t value) {
  if (img->channels == 1)
    return sdr_fail("putalpha: an L picture would become LA, which sdrepl has not; convert it to "
                    "RGB first");
  if (alpha && alpha->channels != 1)
    return sdr_fail("illegal image mode (the alpha is %s; L expected)",
                    sdr_image_mode_name(alpha->channels));
  if (alpha && (alpha->width != img->width || alpha->height != img->height))
    return sdr_fail("images do not match (%dx%d alpha for a %dx%d picture)", alpha->width,
                    alpha->height, img->width, img->height);
  const size_t n = (size_t)img->width * (size_t)img->height;
  if (img->channels == 3) { /* RGB becomes RGBA */
    uint8_t *p = malloc(n * 4 + 1);
    if (!p)
      return sdr_fail("out of memory for a %dx%d RGBA picture", img->width, img->height);
    for (size_t i = 0; i < n; i++)
      memcpy(p + 4 * i, img->pixels + 3 * i, 3);
    free(img->pixels);
    img->pixels = p;
    img->channels = 4;
  }
  for (size_t i = 0; i < n; i++)
    img->pixels[4 * i + 3] = alpha ? alpha->pixels[i] : value;
  return 0;
}

sdr_image *sdr_image_point(const sdr_image *img, const uint8_t *lut) {
  sdr_image *out = sdr_image_new(img->width, img->height, img->channels);
  const size_t n = (size_t)img->width * (size_t)img->height, c = (size_t)img->channels;
  for (size_t i = 0; out && i < n; i++)
    for (size_t k = 0; k < c; k++)
      out->pixels[i * c + k] = lut[k * 256 + img->pixels[i * c + k]];
  if (out && sdr_image_copy_parameters(out, img) != 0) {
    sdr_image_free(out);
    return NULL;
  }
  return out;
}

int sdr_image_getbbox(const sdr_image *img, int alpha_only, int box[4]) {
  /* Pillow's ImagingGetBBox: a pixel counts when any band is not zero, or with alpha_only
   * (and an alpha band) when its alpha is not */
  const int c = img->channels, first = alpha_only && c == 4 ? 3 : 0;
  int x0 = img->width, y0 = img->height, x1 = 0, y1 = 0;
  for (int y = 0; y < img->height; y++) {
    const uint8_t *row = img->pixels + (size_t)y * (size_t)img->width * (size_t)c;
    for (int x = 0; x < img->width; x++) {
      int on = 0;
      for (int k = first; k < c && !on; k++)
        on = row[(size_t)x * (size_t)c + (size_t)k] != 0;
      if (!on)
        continue;
      x0 = x < x0 ? x : x0;
      x1 = x + 1 > x1 ? x + 1 : x1;
      y0 = y < y0 ? y : y0;
      y1 = y + 1;
    }
  }
  if (x1 == 0)
    return 0;
  box[0] = x0, box[1] = y0, box[2] = x1, box[3] = y1;
  return 1;
}

int sdr_image_extrema(const sdr_image *img, uint8_t lo[4], uint8_t hi[4]) {
  const size_t n = (size_t)img->width * (size_t)img->height, c = (size_t)img->channels;
  for (size_t k = 0; k < c; k++)
    lo[k] = 255, hi[k] = 0;
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < c; k++) {
      const uint8_t v = img->pixels[i * c + k];
      lo[k] = v < lo[k] ? v : lo[k];
      hi[k] = v > hi[k] ? v : hi[k];
    }
  return n > 0;
}

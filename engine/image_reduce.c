/* engine/image_reduce.c — Image.reduce: each block of xscale x yscale pixels averaged into
 * one, as Pillow's libImaging/Reduce.c computes it.
 *
 * Pillow divides a block's sum by its pixel count n with a fixed-point multiplier,
 * (sum + n / 2) * m >> 24 with m = 2^32 / (256 n) worked out in float, which is not always
 * the rounded quotient (n = 3: m is 5592405, a little under 2^24 / 3); its special cases
 * (2x2, 3x3, ..., shifts for powers of two) compute the same numbers. The blocks at the
 * right and bottom edges hold what is left of the box and are averaged over their own
 * count. RGBA is reduced premultiplied by alpha, as Pillow reduces it through "RGBa".
 */
#include <stdlib.h>

#include "engine/error.h" // sdr_fail
#include "engine/image.h" // sdr_image, sdr_image_reduce

/* Reduce.c's division_UINT32(n, 8), its float arithmetic kept. */
static uint32_t multiplier(int n) {
  const float max_int = 4294967296.0f;
  const uint32_t max_dividend = 256u * (uint32_t)n;
  return (uint32_t)(max_int / (float)max_dividend);
}

sdr_image *sdr_image_reduce_plain(const sdr_image *img, int xscale, int yscale, const int box[4]) {
  const int x0 = box[0], y0 = box[1], w = box[2] - box[0], h = box[3] - box[1];
  const int ow = (w - 1) / xscale + 1, oh = (h - 1) / yscale + 1, c = img->channels;
  sdr_image *out = sdr_image_new(ow, oh, c);
  if (!out)
    return NULL;
  for (int y = 0; y < oh; y++) {
    const int ya = y0 + y * yscale, yb = ya + yscale < y0 + h ? ya + yscale : y0 + h;
    for (int x = 0; x < ow; x++) {
      const int xa = x0 + x * xscale, xb = xa + xscale < x0 + w ? xa + xscale : x0 + w;
      const int n = (xb - xa) * (yb - ya);
      const uint32_t m = multiplier(n), amend = (uint32_t)n / 2;
      for (int k = 0; k < c; k++) {
        uint32_t ss = amend;
        for (int yy = ya; yy < yb; yy++) {
          const uint8_t *row = img->pixels + ((size_t)yy * img->width) * c + k;
          for (int xx = xa; xx < xb; xx++)
            ss += row[(size_t)xx * c];
        }
        out->pixels[((size_t)y * ow + x) * c + k] = (uint8_t)((ss * m) >> 24);
      }
    }
  }
  return out;
}

sdr_image *sdr_image_reduce(const sdr_image *img, int xscale, int yscale, const int *box_in) {
  const int whole[4] = {0, 0, img->width, img->height};
  const int *box = box_in ? box_in : whole;
  if (xscale < 1 || yscale < 1) {
    sdr_fail("scale must be > 0 (got %d, %d)", xscale, yscale);
    return NULL;
  }
  if (box[0] < 0 || box[1] < 0) {
    sdr_fail("box offset can't be negative");
    return NULL;
  }
  if (box[2] > img->width || box[3] > img->height) {
    sdr_fail("box can't exceed original image size (%dx%d)", img->width, img->height);
    return NULL;
  }
  if (box[2] <= box[0] || box[3] <= box[1]) {
    sdr_fail("box can't be empty");
    return NULL;
  }
  sdr_image *out;
  if (xscale == 1 && yscale == 1) { /* Pillow crops: no trip through premultiplied alpha */
    out = sdr_image_reduce_plain(img, 1, 1, box);
  } else if (img->channels == 4) {
    sdr_image *pre = sdr_image_copy(img);
    if (!pre)
      return NULL;
    sdr_image_premultiply(pre);
    out = sdr_image_reduce_plain(pre, xscale, yscale, box);
    sdr_image_free(pre);
    if (out)
      sdr_image_unpremultiply(out);
  } else {
    out = sdr_image_reduce_plain(img, xscale, yscale, box);
  }
  if (out && sdr_image_copy_parameters(out, img) != 0) {
    sdr_image_free(out);
    return NULL;
  }
  return out;
}

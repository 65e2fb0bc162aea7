/* engine/image_convert.c — Image.convert between L, RGB and RGBA, with PIL's formulas.
 *
 * These mirror the row converters of PIL's libImaging/Convert.c:
 *   RGB, RGBA -> L   rgb2l: ITU-R 601-2 luma in 16.16 fixed point,
 *                    (R*19595 + G*38470 + B*7471 + 0x8000) >> 16; alpha ignored
 *   L -> RGB, RGBA   l2rgb: grey replicated, alpha 255
 *   RGB -> RGBA      rgb2rgba: alpha 255
 *   RGBA -> RGB      rgba2rgb: alpha dropped, not composited over anything
 * and the premultiplication PIL's resize applies to RGBA ("RGBa"):
 *   rgbA2rgba: c * a / 255 with PIL's MULDIV255 rounding
 *   rgba2rgbA: 255 * c / a truncated and clipped; a of 0 or 255 leaves c alone
 */
#include <stddef.h>

#include "engine/error.h" // sdr_fail
#include "engine/image.h" // sdr_image, sdr_image_convert

static uint8_t luma(const uint8_t *rgb) {
  return (uint8_t)(((uint32_t)rgb[0] * 19595 + (uint32_t)rgb[1] * 38470 + (uint32_t)rgb[2] * 7471 +
                    0x8000) >>
                   16);
}

/* PIL's MULDIV255: a * b / 255 rounded, without a division. */
static uint8_t muldiv255(unsigned a, unsigned b) {
  unsigned tmp = a * b + 128;
  return (uint8_t)(((tmp >> 8) + tmp) >> 8);
}

sdr_image *sdr_image_convert(const sdr_image *img, int channels) {
  if (channels != 1 && channels != 3 && channels != 4) {
    sdr_fail("cannot convert to a mode with %d channels (expected L, RGB or RGBA)", channels);
    return NULL;
  }
  if (channels == img->channels)
    return sdr_image_copy(img); /* PIL's convert to the same mode is a copy */
  sdr_image *out = sdr_image_new(img->width, img->height, channels);
  if (!out)
    return NULL;
  size_t n = (size_t)img->width * (size_t)img->height;
  const uint8_t *in = img->pixels;
  uint8_t *o = out->pixels;
  int ci = img->channels, co = channels;
  for (size_t i = 0; i < n; i++, in += ci, o += co) {
    if (co == 1) {
      o[0] = luma(in);
    } else if (ci == 1) {
      o[0] = o[1] = o[2] = in[0];
      if (co == 4)
        o[3] = 255;
    } else {
      o[0] = in[0];
      o[1] = in[1];
      o[2] = in[2];
      if (co == 4)
        o[3] = 255;
    }
  }
  if (sdr_image_copy_parameters(out, img) != 0) {
    sdr_image_free(out);
    return NULL;
  }
  return out;
}

void sdr_image_premultiply(sdr_image *img) {
  if (img->channels != 4)
    return;
  size_t n = (size_t)img->width * (size_t)img->height;
  uint8_t *p = img->pixels;
  for (size_t i = 0; i < n; i++, p += 4) {
    p[0] = muldiv255(p[0], p[3]);
    p[1] = muldiv255(p[1], p[3]);
    p[2] = muldiv255(p[2], p[3]);
  }
}

void sdr_image_unpremultiply(sdr_image *img) {
  if (img->channels != 4)
    return;
  size_t n = (size_t)img->width * (size_t)img->height;
  uint8_t *p = img->pixels;
  for (size_t i = 0; i < n; i++, p += 4) {
    unsigned a = p[3];
    if (a == 0 || a == 255)
      continue;
    for (int c = 0; c < 3; c++) {
      unsigned v = 255u * p[c] / a;
      p[c] = (uint8_t)(v > 255 ? 255 : v);
    }
  }
}

/* Pillow's AlphaComposite.c: source over destination with 7 bits of extra precision and its
 * rounded divisions by 255 (SHIFTFORDIV255). */
static unsigned shift_div255(unsigned a) { return ((a >> 8) + a) >> 8; }

int sdr_image_alpha_composite(sdr_image *dst, const sdr_image *src) {
  if (dst->channels != 4 || src->channels != 4)
    return sdr_fail("alpha_composite: both images must be RGBA");
  if (dst->width != src->width || dst->height != src->height)
    return sdr_fail("alpha_composite: images do not match (%dx%d and %dx%d)", dst->width,
                    dst->height, src->width, src->height);
  const size_t n = (size_t)dst->width * (size_t)dst->height;
  for (size_t i = 0; i < n; i++) {
    uint8_t *d = dst->pixels + 4 * i;
    const uint8_t *s = src->pixels + 4 * i;
    if (s[3] == 0)
      continue;
    const unsigned blend = d[3] * (255u - s[3]), outa255 = s[3] * 255u + blend;
    const unsigned coef1 = s[3] * 255u * 255u * 128u / outa255, coef2 = 255u * 128u - coef1;
    for (int c = 0; c < 3; c++)
      d[c] = (uint8_t)(shift_div255(s[c] * coef1 + d[c] * coef2 + (0x80u << 7)) >> 7);
    d[3] = (uint8_t)shift_div255(outa255 + 0x80);
  }
  return 0;
}

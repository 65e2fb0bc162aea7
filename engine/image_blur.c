/* engine/image_blur.c — Pillow's box and gaussian blurs (libImaging/BoxBlur.c), pixel for
 * pixel, so a mask blurred here (diffusers' mask_processor.blur) is the one diffusers blurs.
 *
 * A box of radius r + f (f the fraction) gives each output pixel the mean of the 2r + 1
 * pixels around it plus f times each of the next two, in 8.24 fixed point: the weights are
 * ww = 2^24 / (2 (r + f) + 1) (computed in float, as Pillow does) for the inner pixels and
 * fw = (2^24 - (2r + 1) ww) / 2 for the far two, and the sum is rounded by adding 2^23
 * before the shift. Pixels past the edges repeat the edge pixel. Rows are blurred `passes`
 * times, then columns `passes` times. The gaussian blur is three such passes with the box
 * radius of Gwosdek et al. (SSVM 2011) whose variance is the gaussian's.
 */
#include "engine/image.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h" // sdr_fail

/* One line of one channel (n pixels `step` bytes apart in src) blurred into out[0..n). */
static void blur_line(uint8_t *out, const uint8_t *src, size_t step, int n, int r, uint32_t ww,
                      uint32_t fw) {
#define AT(i) src[(size_t)((i) < 0 ? 0 : (i) > n - 1 ? n - 1 : (i)) * step]
  uint32_t acc = 0;
  for (int i = -r - 1; i <= r - 1; i++) /* the window of pixel -1 */
    acc += AT(i);
  for (int x = 0; x < n; x++) {
    acc += AT(x + r) - AT(x - r - 1);
    uint32_t bulk = acc * ww + (AT(x - r - 1) + AT(x + r + 1)) * fw;
    out[x] = (uint8_t)((bulk + (1u << 23)) >> 24);
  }
#undef AT
}

/* `passes` box blurs of radius `radius` along lines of n pixels: nlines of them, `line`
 * bytes apart, pixels `step` bytes apart, each of `channels` interleaved channels. */
static int blur_lines(uint8_t *px, int nlines, size_t line, int n, size_t step, int channels,
                      float radius, int passes) {
  if (radius == 0)
    return 0;
  const int r = (int)radius;
  const uint32_t ww = (uint32_t)((float)(1 << 24) / (radius * 2 + 1));
  const uint32_t fw = ((1u << 24) - (uint32_t)(r * 2 + 1) * ww) / 2;
  uint8_t *tmp = malloc((size_t)n);
  if (!tmp)
    return sdr_fail("blur: out of memory");
  for (int y = 0; y < nlines; y++)
    for (int c = 0; c < channels; c++)
      for (int p = 0; p < passes; p++) {
        uint8_t *start = px + (size_t)y * line + (size_t)c;
        blur_line(tmp, start, step, n, r, ww, fw);
        for (int x = 0; x < n; x++) /* the next pass reads this one's result */
          start[(size_t)x * step] = tmp[x];
      }
  free(tmp);
  return 0;
}

/* _gaussian_blur_radius: the box radius whose `passes` boxes have the gaussian's variance,
 * in Pillow's float and double steps. */
static float gaussian_box_radius(float radius, int passes) {
  float sigma2 = radius * radius / (float)passes;
  float L = (float)sqrt(12.0 * sigma2 + 1.0);
  float l = (float)floor((L - 1.0) / 2.0);
  float a = (2 * l + 1) * (l * (l + 1) - 3 * sigma2);
  a /= 6 * (sigma2 - (l + 1) * (l + 1));
  return l + a;
}

sdr_image *sdr_image_box_blur(const sdr_image *img, float xradius, float yradius, int passes) {
  if (passes < 1) {
    sdr_fail("blur: number of passes must be greater than zero");
    return NULL;
  }
  if (!(xradius >= 0) || !(yradius >= 0)) {
    sdr_fail("blur: radius must be >= 0");
    return NULL;
  }
  sdr_image *out = sdr_image_copy(img);
  if (!out)
    return NULL;
  const int w = img->width, h = img->height, c = img->channels;
  const size_t row = (size_t)w * c;
  if (w > 0 && h > 0 &&
      (blur_lines(out->pixels, h, row, w, (size_t)c, c, xradius, passes) != 0 ||
       blur_lines(out->pixels, w, (size_t)c, h, row, c, yradius, passes) != 0)) {
    sdr_image_free(out);
    return NULL;
  }
  return out;
}

sdr_image *sdr_image_gaussian_blur(const sdr_image *img, float xradius, float yradius) {
  if (!(xradius >= 0) || !(yradius >= 0)) {
    sdr_fail("blur: radius must be >= 0");
    return NULL;
  }
  return sdr_image_box_blur(img, gaussian_box_radius(xradius, 3), gaussian_box_radius(yradius, 3),
                            3);
}

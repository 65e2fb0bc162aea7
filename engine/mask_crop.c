/* engine/mask_crop.c — padding_mask_crop's picture work (VaeImageProcessor, diffusers 0.27.2). */
#include "engine/mask_crop.h"

#include <stdlib.h>
#include <string.h>

#include "engine/error.h" // sdr_fail

static int floordiv(int a, int b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

/* Whether row y (or column x when col) of the L picture m is all zeros. */
static int blank(const sdr_image *m, int i, int col) {
  const int n = col ? m->height : m->width;
  for (int k = 0; k < n; k++)
    if (m->pixels[col ? (size_t)k * m->width + i : (size_t)i * m->width + k])
      return 0;
  return 1;
}

/* The aspect-ratio widening of one axis (y1, y2 when the box is too wide, x1, x2 when too
 * tall), kept within side. */
static void widen(int *a1, int *a2, double desired, int side) {
  const int diff = (int)(desired - (*a2 - *a1)); /* Python's int(): toward zero */
  *a1 -= floordiv(diff, 2);
  *a2 += diff - floordiv(diff, 2);
  if (*a2 >= side) {
    const int over = *a2 - side;
    *a2 -= over;
    *a1 -= over;
  }
  if (*a1 < 0) {
    *a2 -= *a1;
    *a1 = 0;
  }
  if (*a2 >= side)
    *a2 = side;
}

int sdr_mask_crop_region(const sdr_image *mask, int width, int height, int pad, int box[4]) {
  if (width < 1 || height < 1)
    return sdr_fail("padding_mask_crop: height and width must be positive");
  sdr_image *m = sdr_image_convert(mask, 1);
  if (!m)
    return -1;
  const int w = m->width, h = m->height;
  int left = 0, right = 0, top = 0, bottom = 0;
  while (left < w && blank(m, left, 1))
    left++;
  while (right < w && blank(m, w - 1 - right, 1))
    right++;
  while (top < h && blank(m, top, 0))
    top++;
  while (bottom < h && blank(m, h - 1 - bottom, 0))
    bottom++;
  sdr_image_free(m);
  if (left == w) /* diffusers would divide by zero or crop backwards */
    return sdr_fail("padding_mask_crop: the mask is black everywhere (nothing to inpaint)");
  int x1 = left - pad > 0 ? left - pad : 0, y1 = top - pad > 0 ? top - pad : 0;
  int x2 = w - right + pad < w ? w - right + pad : w,
      y2 = h - bottom + pad < h ? h - bottom + pad : h;
  const double ratio_crop = (double)(x2 - x1) / (double)(y2 - y1);
  const double ratio = (double)width / (double)height;
  if (ratio_crop > ratio)
    widen(&y1, &y2, (double)(x2 - x1) / ratio, h);
  else
    widen(&x1, &x2, (double)(y2 - y1) * ratio, w);
  box[0] = x1, box[1] = y1, box[2] = x2, box[3] = y2;
  return 0;
}

/* resized.resize(size, box=box) pasted into res at (x, y): Pillow's default filter, BICUBIC
 * (diffusers names none here, unlike its other resizes). */
static int paste_stretched(sdr_image *res, const sdr_image *resized, int w, int h,
                           const double box[4], int x, int y) {
  sdr_image *band = sdr_image_resize_box(resized, w, h, SDR_RESAMPLE_BICUBIC, box);
  if (!band)
    return -1;
  const int rc = sdr_image_paste(res, band, x, y, NULL);
  sdr_image_free(band);
  return rc;
}

sdr_image *sdr_image_resize_fill(const sdr_image *img, int width, int height) {
  const double ratio = (double)width / height, src_ratio = (double)img->width / img->height;
  const int src_w = ratio < src_ratio ? width : img->width * height / img->height;
  const int src_h = ratio >= src_ratio ? height : img->height * width / img->width;
  sdr_image *resized = sdr_image_resize(img, src_w, src_h, SDR_RESAMPLE_LANCZOS);
  sdr_image *res = resized ? sdr_image_new(width, height, 3) : NULL;
  if (!res ||
      sdr_image_paste(res, resized, width / 2 - src_w / 2, height / 2 - src_h / 2, NULL) != 0)
    goto fail;
  if (ratio < src_ratio) { /* bands above and below: the first and last rows stretched */
    const int fill = height / 2 - src_h / 2;
    const double top[4] = {0, 0, width, 0}, end[4] = {0, resized->height, width, resized->height};
    if (fill > 0 && (paste_stretched(res, resized, width, fill, top, 0, 0) != 0 ||
                     paste_stretched(res, resized, width, fill, end, 0, fill + src_h) != 0))
      goto fail;
  } else if (ratio > src_ratio) { /* bands left and right: the first and last columns */
    const int fill = width / 2 - src_w / 2;
    const double first[4] = {0, 0, 0, height},
                 last[4] = {resized->width, 0, resized->width, height};
    if (fill > 0 && (paste_stretched(res, resized, fill, height, first, 0, 0) != 0 ||
                     paste_stretched(res, resized, fill, height, last, fill + src_w, 0) != 0))
      goto fail;
  }
  sdr_image_free(resized);
  return res;
fail:
  sdr_image_free(resized);
  sdr_image_free(res);
  return NULL;
}

sdr_image *sdr_image_resize_cover(const sdr_image *img, int width, int height) {
  const double ratio = (double)width / height, src_ratio = (double)img->width / img->height;
  const int src_w = ratio > src_ratio ? width : img->width * height / img->height;
  const int src_h = ratio <= src_ratio ? height : img->height * width / img->width;
  sdr_image *resized = sdr_image_resize(img, src_w, src_h, SDR_RESAMPLE_LANCZOS);
  sdr_image *res = resized ? sdr_image_new(width, height, 3) : NULL;
  if (res &&
      sdr_image_paste(res, resized, width / 2 - src_w / 2, height / 2 - src_h / 2, NULL) != 0) {
    sdr_image_free(res);
    res = NULL;
  }
  sdr_image_free(resized);
  return res;
}

sdr_image *sdr_mask_crop_overlay(const sdr_image *mask, const sdr_image *init_image,
                                 const sdr_image *image, const int box[4]) {
  const int width = image->width, height = image->height;
  sdr_image *init = NULL, *m = NULL, *ml = NULL, *init4 = NULL, *masked = NULL;
  sdr_image *piece = NULL, *base = NULL, *rgb = NULL, *out = NULL, *result = NULL;
  /* init_image.convert("RGBA").convert("RGBa") pasted on transparent black through the
   * inverted mask, back to RGBA: the original picture where the mask is black */
  if (!(init = sdr_image_resize(init_image, width, height, SDR_RESAMPLE_LANCZOS)) ||
      !(m = sdr_image_resize(mask, width, height, SDR_RESAMPLE_LANCZOS)) ||
      !(ml = sdr_image_convert(m, 1)) || !(init4 = sdr_image_convert(init, 4)) ||
      !(masked = sdr_image_new(width, height, 4)))
    goto done;
  for (size_t i = 0; i < (size_t)width * height; i++)
    ml->pixels[i] = (uint8_t)(255 - ml->pixels[i]); /* ImageOps.invert */
  sdr_image_premultiply(init4);
  if (sdr_image_paste(masked, init4, 0, 0, ml) != 0)
    goto done;
  sdr_image_unpremultiply(masked);
  /* the painted box resized over its place, black elsewhere */
  const int w = box[2] - box[0], h = box[3] - box[1];
  if (!(piece = sdr_image_resize_cover(image, w, h)) || !(base = sdr_image_new(width, height, 4)) ||
      sdr_image_paste(base, piece, box[0], box[1], NULL) != 0 ||
      !(rgb = sdr_image_convert(base, 3)) || !(out = sdr_image_convert(rgb, 4)) ||
      sdr_image_alpha_composite(out, masked) != 0)
    goto done;
  if ((result = sdr_image_convert(out, 3)) && sdr_image_copy_parameters(result, image) != 0) {
    sdr_image_free(result);
    result = NULL;
  }
done:
  sdr_image_free(init);
  sdr_image_free(m);
  sdr_image_free(ml);
  sdr_image_free(init4);
  sdr_image_free(masked);
  sdr_image_free(piece);
  sdr_image_free(base);
  sdr_image_free(rgb);
  sdr_image_free(out);
  return result;
}

/* engine/image_fit.c — PIL's ImageOps.fit, contain, cover, pad and expand: a picture brought
 * to a size by resizing, cropping (a resize over a box) or padding, with ImageOps' own
 * arithmetic (Python's float64 and round-half-to-even), so the sizes and boxes are Pillow's
 * and the pixels follow from the resize. */
#include <math.h>

#include "engine/error.h" // sdr_fail
#include "engine/image.h" // sdr_image_fit, ...

/* The size contain (or, covering, cover) gives: one side kept, the other from the aspect. */
static void aspect_size(const sdr_image *img, int *w, int *h, int covering) {
  const double im_ratio = (double)img->width / img->height, dest_ratio = (double)*w / *h;
  if (im_ratio == dest_ratio)
    return;
  if ((im_ratio > dest_ratio) != covering)
    *h = (int)nearbyint((double)img->height / img->width * *w);
  else
    *w = (int)nearbyint((double)img->width / img->height * *h);
}

static sdr_image *blank(const sdr_image *img, int w, int h) {
  return sdr_image_new(w, h, img->channels);
}

/* 1 for a size a picture can have; 0 with a message otherwise. */
static int size_ok(int w, int h) {
  if (w >= 0 && h >= 0 && w <= SDR_IMAGE_MAX_SIDE && h <= SDR_IMAGE_MAX_SIDE)
    return 1;
  sdr_fail("size %dx%d out of range (each side 0 to %d)", w, h, SDR_IMAGE_MAX_SIDE);
  return 0;
}

/* contain (covering 0) and cover (1): empty pictures as Pillow makes them, else the resize. */
static sdr_image *aspect_resize(const sdr_image *img, int w, int h, int method, int covering) {
  if (!size_ok(w, h))
    return NULL;
  if (img->height == 0)
    return blank(img, w, 0);
  if (h == 0)
    return blank(img, 0, 0);
  aspect_size(img, &w, &h, covering);
  if (!covering && (w == 0 || h == 0))
    return blank(img, w, h);
  return sdr_image_resize(img, w, h, method);
}

sdr_image *sdr_image_contain(const sdr_image *img, int w, int h, int method) {
  return aspect_resize(img, w, h, method, 0);
}

sdr_image *sdr_image_cover(const sdr_image *img, int w, int h, int method) {
  return aspect_resize(img, w, h, method, 1);
}

/* max(0, min(c, 1)) */
static double clamp01(double c) { return c < 0 ? 0 : c > 1 ? 1 : c; }

sdr_image *sdr_image_pad(const sdr_image *img, int w, int h, int method, const uint8_t *color,
                         double cx, double cy) {
  sdr_image *resized = sdr_image_contain(img, w, h, method);
  if (!resized || (resized->width == w && resized->height == h))
    return resized;
  sdr_image *out = blank(img, w, h);
  if (out) {
    sdr_image_fill(out, color, img->channels);
    const int x = resized->width != w ? (int)nearbyint((w - resized->width) * clamp01(cx)) : 0;
    const int y = resized->width != w ? 0 : (int)nearbyint((h - resized->height) * clamp01(cy));
    if (sdr_image_paste(out, resized, x, y, NULL) != 0 ||
        sdr_image_copy_parameters(out, img) != 0) {
      sdr_image_free(out);
      out = NULL;
    }
  }
  sdr_image_free(resized);
  return out;
}

sdr_image *sdr_image_expand(const sdr_image *img, const int border[4], const uint8_t *color) {
  const long long w = (long long)border[0] + img->width + border[2];
  const long long h = (long long)border[1] + img->height + border[3];
  if (w < 0 || h < 0 || w > SDR_IMAGE_MAX_SIDE || h > SDR_IMAGE_MAX_SIDE) {
    sdr_fail("the expanded size %lldx%lld is out of range (each side 0 to %d)", w, h,
             SDR_IMAGE_MAX_SIDE);
    return NULL;
  }
  sdr_image *out = blank(img, (int)w, (int)h);
  if (out) {
    sdr_image_fill(out, color, img->channels);
    if (sdr_image_paste(out, img, border[0], border[1], NULL) != 0 ||
        sdr_image_copy_parameters(out, img) != 0) {
      sdr_image_free(out);
      out = NULL;
    }
  }
  return out;
}

sdr_image *sdr_image_fit(const sdr_image *img, int w, int h, int method, double bleed, double cx,
                         double cy) {
  if (!size_ok(w, h))
    return NULL;
  if (w == 0 || h == 0)
    return blank(img, w, h);
  if (!(cx >= 0.0 && cx <= 1.0))
    cx = 0.5;
  if (!(cy >= 0.0 && cy <= 1.0))
    cy = 0.5;
  if (!(bleed >= 0.0 && bleed < 0.5))
    bleed = 0.0;
  const double bx = bleed * img->width, by = bleed * img->height;
  const double live_w = img->width - bx * 2, live_h = img->height - by * 2;
  if (live_h == 0)
    return blank(img, w, h);
  const double live_ratio = live_w / live_h, out_ratio = (double)w / h;
  /* the sides cropped off when the live area is wider than asked, else top and bottom */
  double crop_w = live_w, crop_h = live_h;
  if (live_ratio > out_ratio)
    crop_w = out_ratio * live_h;
  else if (live_ratio < out_ratio)
    crop_h = live_w / out_ratio;
  const double left = bx + (live_w - crop_w) * cx, top = by + (live_h - crop_h) * cy;
  const double box[4] = {left, top, left + crop_w, top + crop_h};
  return sdr_image_resize_box(img, w, h, method, box);
}

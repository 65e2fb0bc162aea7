/* engine/image: the object and its byte-moving operations, edge cases and errors.
 * (Pixel parity with Pillow is test_image_parity.c; files are test_image_codec.c.) */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/error.h" // sdr_last_error
#include "engine/image.h" // sdr_image_*

static int contains(const char *s, const char *part) { return s && strstr(s, part) != NULL; }

static uint8_t *px(sdr_image *img, int x, int y) {
  return img->pixels + ((size_t)y * (size_t)img->width + (size_t)x) * (size_t)img->channels;
}

static void test_new(void) {
  sdr_image *img = sdr_image_new(3, 2, 4);
  CHECK(img && img->width == 3 && img->height == 2 && img->channels == 4);
  CHECK(img && sdr_image_bytes(img) == 24 && img->parameters == NULL);
  for (size_t i = 0; img && i < sdr_image_bytes(img); i++)
    CHECK(img->pixels[i] == 0);
  sdr_image_free(img);
  sdr_image_free(NULL);

  img = sdr_image_new(0, 5, 3); /* PIL allows empty images */
  CHECK(img && img->width == 0 && sdr_image_bytes(img) == 0);
  sdr_image_free(img);

  CHECK(sdr_image_new(-1, 5, 3) == NULL && contains(sdr_last_error(), "out of range"));
  CHECK(sdr_image_new(SDR_IMAGE_MAX_SIDE + 1, 1, 1) == NULL);
  CHECK(sdr_image_new(4, 4, 2) == NULL && contains(sdr_last_error(), "2 channels"));

  CHECK_STR(sdr_image_mode_name(1), "L");
  CHECK_STR(sdr_image_mode_name(3), "RGB");
  CHECK_STR(sdr_image_mode_name(4), "RGBA");
  CHECK(sdr_image_mode_channels("RGBA") == 4 && sdr_image_mode_channels("L") == 1);
  CHECK(sdr_image_mode_channels("CMYK") == 0 && sdr_image_mode_channels("rgb") == 0);
  CHECK(sdr_image_mode_channels(NULL) == 0);
}

static void test_fill_copy_parameters(void) {
  sdr_image *img = sdr_image_new(2, 2, 4);
  const uint8_t rgb[3] = {10, 20, 30};
  sdr_image_fill(img, rgb, 3); /* missing alpha is opaque */
  CHECK(memcmp(px(img, 1, 1), "\x0a\x14\x1e\xff", 4) == 0);
  sdr_image *l = sdr_image_new(2, 1, 1);
  sdr_image_fill(l, rgb, 3); /* L takes the first value */
  CHECK(l->pixels[0] == 10 && l->pixels[1] == 10);
  sdr_image_fill(l, NULL, 0);
  CHECK(l->pixels[0] == 0);

  CHECK(sdr_image_set_parameters(img, "a cat, 20 steps") == 0);
  sdr_image *c = sdr_image_copy(img);
  CHECK(c && c != img && c->pixels != img->pixels);
  CHECK(memcmp(c->pixels, img->pixels, sdr_image_bytes(img)) == 0);
  CHECK_STR(c->parameters, "a cat, 20 steps");
  CHECK(c->parameters != img->parameters);
  CHECK(sdr_image_set_parameters(c, NULL) == 0 && c->parameters == NULL);
  sdr_image_free(c);
  sdr_image_free(l);
  sdr_image_free(img);
}

static void test_crop(void) {
  sdr_image *img = sdr_image_new(4, 3, 3);
  for (size_t i = 0; i < sdr_image_bytes(img); i++)
    img->pixels[i] = (uint8_t)(i + 1);
  sdr_image_set_parameters(img, "p");
  sdr_image *c = sdr_image_crop(img, -1, 1, 2, 5); /* sticks out left and below */
  CHECK(c && c->width == 3 && c->height == 4 && c->channels == 3);
  CHECK(px(c, 0, 0)[0] == 0 && px(c, 0, 2)[2] == 0); /* outside: zero */
  CHECK(memcmp(px(c, 1, 0), px(img, 0, 1), 6) == 0); /* inside: copied */
  CHECK(px(c, 1, 2)[0] == 0 && px(c, 2, 3)[0] == 0); /* below the image */
  CHECK_STR(c->parameters, "p");                     /* info follows, as PIL */
  sdr_image_free(c);

  c = sdr_image_crop(img, 10, 10, 12, 11); /* entirely outside: all zero */
  CHECK(c && c->width == 2 && c->height == 1 && c->pixels[0] == 0);
  sdr_image_free(c);
  c = sdr_image_crop(img, 2, 2, 2, 3); /* empty, as PIL allows */
  CHECK(c && c->width == 0 && c->height == 1);
  sdr_image_free(c);

  CHECK(sdr_image_crop(img, 3, 0, 1, 1) == NULL &&
        contains(sdr_last_error(), "right is less than left"));
  CHECK(sdr_image_crop(img, 0, 2, 1, 1) == NULL && contains(sdr_last_error(), "lower"));
  CHECK(sdr_image_crop(img, -2000000000, 0, 2000000000, 1) == NULL);
  sdr_image_free(img);
}

static void test_paste(void) {
  sdr_image *dst = sdr_image_new(4, 4, 3), *src = sdr_image_new(2, 2, 1);
  const uint8_t white = 200;
  sdr_image_fill(src, &white, 1);
  CHECK(sdr_image_paste(dst, src, 3, -1, NULL) == 0);   /* clipped to one pixel */
  CHECK(memcmp(px(dst, 3, 0), "\xc8\xc8\xc8", 3) == 0); /* L converted to RGB */
  CHECK(px(dst, 2, 0)[0] == 0 && px(dst, 3, 1)[0] == 0);
  CHECK(sdr_image_paste(dst, src, 10, 10, NULL) == 0); /* outside: nothing */
  CHECK(sdr_image_paste(dst, src, -5, 0, NULL) == 0);

  /* An L mask of 128 blends halfway with PIL's rounding: (0*127 + 200*128) / 255. */
  sdr_image *mask = sdr_image_new(2, 2, 1);
  const uint8_t half = 128;
  sdr_image_fill(mask, &half, 1);
  CHECK(sdr_image_paste(dst, src, 0, 0, mask) == 0);
  CHECK(px(dst, 0, 0)[0] == 100 && px(dst, 1, 1)[2] == 100);

  /* An RGBA mask masks with its alpha. */
  sdr_image *amask = sdr_image_new(2, 2, 4);
  const uint8_t transparent[4] = {255, 255, 255, 0};
  sdr_image_fill(amask, transparent, 4);
  CHECK(sdr_image_paste(dst, src, 2, 2, amask) == 0);
  CHECK(px(dst, 2, 2)[0] == 0);

  /* Pasted into itself, a picture reads as it was before (PIL does the same). */
  sdr_image *self = sdr_image_new(4, 4, 1);
  for (int i = 0; i < 16; i++)
    self->pixels[i] = (uint8_t)i;
  CHECK(sdr_image_paste(self, self, 1, 1, NULL) == 0);
  CHECK(memcmp(self->pixels, "\0\1\2\3\4\0\1\2\x08\4\5\6\x0c\x08\x09\x0a", 16) == 0);
  CHECK(sdr_image_paste(self, self, 0, 0, self) == 0); /* blending a picture with itself */
  CHECK(memcmp(self->pixels, "\0\1\2\3\4\0\1\2\x08\4\5\6\x0c\x08\x09\x0a", 16) == 0);
  const uint8_t ink = 255;
  CHECK(sdr_image_paste_color(self, &ink, 0, 0, 4, 4, self) == 0);
  /* Each pixel v masks its own fill: (v * (255 - v) + 255 * v) / 255, as PIL gives. */
  CHECK(memcmp(self->pixels, "\0\2\4\6\x08\0\2\4\x10\x08\x0a\x0c\x17\x10\x12\x14", 16) == 0);
  sdr_image_free(self);

  sdr_image *bad = sdr_image_new(3, 2, 1);
  CHECK(sdr_image_paste(dst, src, 0, 0, bad) != 0 && contains(sdr_last_error(), "does not match"));
  sdr_image *rgb_mask = sdr_image_new(2, 2, 3);
  CHECK(sdr_image_paste(dst, src, 0, 0, rgb_mask) != 0 &&
        contains(sdr_last_error(), "bad transparency mask"));
  sdr_image_free(rgb_mask);
  sdr_image_free(bad);
  sdr_image_free(amask);
  sdr_image_free(mask);
  sdr_image_free(src);
  sdr_image_free(dst);
}

static void test_convert_resize_errors(void) {
  sdr_image *img = sdr_image_new(5, 3, 3);
  img->pixels[0] = 7;
  sdr_image_set_parameters(img, "steps 20");
  sdr_image *same = sdr_image_convert(img, 3); /* PIL: a copy */
  CHECK(same && same != img && same->pixels[0] == 7);
  CHECK_STR(same ? same->parameters : NULL, "steps 20");
  sdr_image_free(same);
  CHECK(sdr_image_convert(img, 2) == NULL && contains(sdr_last_error(), "2 channels"));

  sdr_image *r = sdr_image_resize(img, 10, 6, SDR_RESAMPLE_BICUBIC);
  CHECK(r && r->width == 10 && r->height == 6);
  CHECK_STR(r ? r->parameters : NULL, "steps 20");
  sdr_image_free(r);
  r = sdr_image_resize(img, 5, 3, SDR_RESAMPLE_LANCZOS); /* same size: a copy */
  CHECK(r && r->pixels[0] == 7);
  sdr_image_free(r);
  CHECK(sdr_image_resize(img, 0, 3, SDR_RESAMPLE_BICUBIC) == NULL &&
        contains(sdr_last_error(), "must be > 0"));
  CHECK(sdr_image_resize(img, 4, 4, 6) == NULL &&
        contains(sdr_last_error(), "unknown resampling filter (6)"));
  CHECK(sdr_image_resize(img, 4, 4, -1) == NULL);
  CHECK(sdr_image_resize(img, SDR_IMAGE_MAX_SIDE + 1, 4, 0) == NULL &&
        contains(sdr_last_error(), "too large"));

  /* Shrinking a flat picture keeps it flat with every filter (weights sum to one). */
  const uint8_t grey[3] = {77, 77, 77};
  sdr_image_fill(img, grey, 3);
  for (int f = 0; f <= 5; f++) {
    sdr_image *s = sdr_image_resize(img, 2, 1, f), *u = sdr_image_resize(img, 13, 8, f);
    for (size_t i = 0; s && i < sdr_image_bytes(s); i++)
      CHECK(s->pixels[i] == 77);
    for (size_t i = 0; u && i < sdr_image_bytes(u); i++)
      CHECK(u->pixels[i] == 77);
    CHECK(s && u);
    sdr_image_free(s);
    sdr_image_free(u);
  }

  /* Nothing to sample: black, as Pillow. */
  sdr_image *empty = sdr_image_new(0, 3, 4);
  r = sdr_image_resize(empty, 2, 2, SDR_RESAMPLE_BILINEAR);
  CHECK(r && r->width == 2 && r->pixels[3] == 0);
  sdr_image_free(r);
  sdr_image_free(empty);
  sdr_image_free(img);
}

/* RGBA resizes premultiplied: a fully transparent pixel's color does not bleed. */
static void test_premultiplied_resize(void) {
  sdr_image *img = sdr_image_new(2, 1, 4);
  memcpy(img->pixels, "\xff\x00\x00\x00\x00\x00\xff\xff", 8); /* invisible red, opaque blue */
  sdr_image *r = sdr_image_resize(img, 1, 1, SDR_RESAMPLE_BILINEAR);
  CHECK(r && r->pixels[0] == 0 && r->pixels[2] == 255 && r->pixels[3] == 128);
  sdr_image_free(r);
  sdr_image_premultiply(img);
  CHECK(img->pixels[0] == 0 && img->pixels[6] == 255);
  memcpy(img->pixels, "\x40\x20\x10\x80", 4);
  sdr_image_unpremultiply(img);
  CHECK(img->pixels[0] == 127 && img->pixels[1] == 63 && img->pixels[2] == 31); /* 255*c/a */
  sdr_image_free(img);
}

int main(void) {
  test_new();
  test_fill_copy_parameters();
  test_crop();
  test_paste();
  test_convert_resize_errors();
  test_premultiplied_resize();
  return check_exit();
}

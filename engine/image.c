/* PLACEHOLDER: replaced by the image work. */
#include "engine/image.h"
#include <stdlib.h>
#include <string.h>
#include "engine/error.h"
sdr_image *sdr_image_new(int w, int h, int c) { sdr_image *i = calloc(1, sizeof *i); i->width=w; i->height=h; i->channels=c; i->pixels=calloc((size_t)w*h*c,1); return i; }
void sdr_image_free(sdr_image *i) { if (!i) return; free(i->pixels); free(i->parameters); free(i); }
sdr_image *sdr_image_copy(const sdr_image *s) { sdr_image *i = sdr_image_new(s->width, s->height, s->channels); memcpy(i->pixels, s->pixels, (size_t)s->width*s->height*s->channels); return i; }
const char *sdr_image_mode_name(int c) { return c==1?"L":c==3?"RGB":"RGBA"; }
int sdr_image_encode_png(const sdr_image *img, uint8_t **out, size_t *n) { return sdr_fail("pending"); }
sdr_image *sdr_image_load(const char *path) { sdr_fail("pending"); return NULL; }
sdr_image *sdr_image_decode(const uint8_t *d, size_t n, const char *name) { sdr_fail("pending"); return NULL; }
int sdr_image_save(const sdr_image *img, const char *path) { return sdr_fail("pending"); }
int sdr_image_mode_channels(const char *mode) { return 0; }
sdr_image *sdr_image_convert(const sdr_image *img, int c) { sdr_fail("pending"); return NULL; }
sdr_image *sdr_image_resize(const sdr_image *img, int w, int h, int r) { sdr_fail("pending"); return NULL; }
sdr_image *sdr_image_crop(const sdr_image *img, int l, int u, int r, int b) { sdr_fail("pending"); return NULL; }
int sdr_image_paste(sdr_image *d, const sdr_image *s, int x, int y, const sdr_image *m) { return sdr_fail("pending"); }
void sdr_image_fill(sdr_image *img, const uint8_t *c, int n) {}

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

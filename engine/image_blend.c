/* engine/image_blend.c — Image.blend: a picture between two others (libImaging/Blend.c's
 * arithmetic: a float weight, the result truncated, clipped only outside [0, 1]). */
#include "engine/image.h"

#include <stddef.h>

#include "engine/error.h" // sdr_fail

sdr_image *sdr_image_blend(const sdr_image *a, const sdr_image *b, float alpha) {
  if (a->channels != b->channels || a->width != b->width || a->height != b->height) {
    sdr_fail("images do not match");
    return NULL;
  }
  if (alpha == 0.0f)
    return sdr_image_copy(a);
  if (alpha == 1.0f)
    return sdr_image_copy(b);
  sdr_image *out = sdr_image_new(a->width, a->height, a->channels);
  if (!out)
    return NULL;
  const size_t n = (size_t)a->width * a->height * a->channels;
  const int inside = alpha >= 0.0f && alpha <= 1.0f;
  for (size_t i = 0; i < n; i++) {
    float v = (float)a->pixels[i] + alpha * (float)((int)b->pixels[i] - (int)a->pixels[i]);
    if (!inside) /* extrapolating: clipped */
      v = v <= 0.0f ? 0.0f : v >= 255.0f ? 255.0f : v;
    out->pixels[i] = (uint8_t)v;
  }
  return out;
}

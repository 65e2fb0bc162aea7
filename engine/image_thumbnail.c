/* engine/image_thumbnail.c — Image.thumbnail's size: the largest that fits the one asked
 * for with the picture's aspect, rounded as Pillow rounds it. */
#include <math.h>

#include "engine/error.h" // sdr_fail
#include "engine/image.h" // sdr_image_thumbnail_size

/* round_aspect: floor or ceil of v, whichever the key scores lower (floor on a tie), at least
 * 1. by_height: the key is |aspect - n / y| (a width from a height), else |aspect - x / n|. */
static int round_aspect(double v, double aspect, int other, int by_height) {
  const double lo = floor(v), hi = ceil(v);
  double k_lo, k_hi;
  if (by_height) {
    k_lo = fabs(aspect - lo / other);
    k_hi = fabs(aspect - hi / other);
  } else {
    k_lo = lo == 0 ? 0 : fabs(aspect - other / lo);
    k_hi = hi == 0 ? 0 : fabs(aspect - other / hi);
  }
  const double n = k_hi < k_lo ? hi : lo;
  return n > 1 ? (int)n : 1;
}

int sdr_image_thumbnail_size(const sdr_image *img, double width, double height, int *out_w,
                             int *out_h) {
  if (!(width >= 1) || !(height >= 1) || width > 1e9 || height > 1e9)
    return sdr_fail("size must be at least 1 on each side (got %g x %g)", width, height);
  int x = (int)floor(width), y = (int)floor(height);
  if (x >= img->width && y >= img->height)
    return 0;
  const double aspect = (double)img->width / img->height;
  if ((double)x / y >= aspect)
    x = round_aspect(y * aspect, aspect, y, 1);
  else
    y = round_aspect(x / aspect, aspect, x, 0);
  *out_w = x;
  *out_h = y;
  return 1;
}

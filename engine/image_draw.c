/* engine/image_draw.c — ImageDraw's rectangle and ellipse as Pillow's libImaging/Draw.c
 * rasterises them (an inpainting mask drawn by hand): the same rows, the same ends, the
 * same ellipse points, so the mask is Pillow's pixel for pixel.
 *
 * Coordinates are inclusive, as in Pillow: rectangle((0, 0, 3, 3)) covers 4 x 4 pixels.
 * Drawing writes ink (the picture's bytes per pixel) without blending, as ImageDraw.Draw(im)
 * does by default.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/image.h" // sdr_image_draw_rectangle, sdr_image_draw_ellipse

/* Draw.c's hline: x0 .. x1 inclusive on row y, clipped; nothing when x0 > x1. */
static void hline(sdr_image *im, int x0, int y, int x1, const uint8_t *ink) {
  if (y < 0 || y >= im->height)
    return;
  if (x0 < 0)
    x0 = 0;
  else if (x0 >= im->width)
    return;
  if (x1 < 0)
    return;
  else if (x1 >= im->width)
    x1 = im->width - 1;
  const size_t c = (size_t)im->channels;
  for (int x = x0; x <= x1; x++)
    memcpy(im->pixels + ((size_t)y * (size_t)im->width + (size_t)x) * c, ink, c);
}

static void point(sdr_image *im, int x, int y, const uint8_t *ink) {
  if (x >= 0 && x < im->width && y >= 0 && y < im->height)
    memcpy(im->pixels + ((size_t)y * (size_t)im->width + (size_t)x) * (size_t)im->channels, ink,
           (size_t)im->channels);
}

/* Draw.c's line for the one case rectangle's outline uses, x0 == x1: dy points from y0 towards
 * y1, the end left out (upwards when y1 < y0); nothing when y0 == y1. */
static void vline(sdr_image *im, int x, int y0, int y1, const uint8_t *ink) {
  const int ys = y1 < y0 ? -1 : 1, dy = y1 < y0 ? y0 - y1 : y1 - y0;
  for (int i = 0; i < dy; i++, y0 += ys)
    point(im, x, y0, ink);
}

void sdr_image_draw_rectangle(sdr_image *im, int x0, int y0, int x1, int y1, const uint8_t *ink,
                              int fill, int width) {
  if (y0 > y1) {
    const int t = y0;
    y0 = y1, y1 = t;
  }
  if (fill) {
    if (y0 < 0)
      y0 = 0;
    else if (y0 >= im->height)
      return;
    if (y1 < 0)
      return;
    else if (y1 > im->height)
      y1 = im->height;
    for (int y = y0; y <= y1; y++)
      hline(im, x0, y, x1, ink);
    return;
  }
  if (width == 0)
    width = 1;
  for (int i = 0; i < width; i++) {
    hline(im, x0, y0 + i, x1, ink);
    hline(im, x0, y1 - i, x1, ink);
    vline(im, x1 - i, y0 + width, y1 - width + 1, ink);
    vline(im, x0 + i, y0 + width, y1 - width + 1, ink);
  }
}

/* Draw.c's quarter_*: the top right quarter of an ellipse of semi-axes a/2, b/2 on the grid of
 * points (2x + x0, 2y + y0), walked by Bresenham's rule from (a, b % 2) to (a % 2, b). */
typedef struct {
  int32_t cx, cy, ex, ey;
  int64_t a2, b2, a2b2;
  int finished;
} quarter;

static void quarter_init(quarter *s, int32_t a, int32_t b) {
  s->finished = a < 0 || b < 0;
  if (s->finished)
    return;
  s->cx = a, s->cy = b % 2, s->ex = a % 2, s->ey = b;
  s->a2 = (int64_t)a * a, s->b2 = (int64_t)b * b, s->a2b2 = s->a2 * s->b2;
}

static int64_t quarter_delta(const quarter *s, int64_t x, int64_t y) {
  return llabs(s->a2 * y * y + s->b2 * x * x - s->a2b2);
}

static int quarter_next(quarter *s, int32_t *x, int32_t *y) {
  if (s->finished)
    return -1;
  *x = s->cx, *y = s->cy;
  if (s->cx == s->ex && s->cy == s->ey) {
    s->finished = 1;
    return 0;
  }
  int32_t nx = s->cx, ny = s->cy + 2;
  int64_t nd = quarter_delta(s, nx, ny);
  if (nx > 1) {
    int64_t d = quarter_delta(s, s->cx - 2, s->cy + 2);
    if (nd > d)
      nx = s->cx - 2, ny = s->cy + 2, nd = d;
    d = quarter_delta(s, s->cx - 2, s->cy);
    if (nd > d)
      nx = s->cx - 2, ny = s->cy;
  }
  s->cx = nx, s->cy = ny;
  return 0;
}

/* Draw.c's ellipse_*: the outer and inner quarters (w apart) joined into horizontal segments
 * of the whole ellipse, up to four per row of the quarter. */
typedef struct {
  quarter o, i;
  int32_t py, pl, pr, cy[4], cl[4], cr[4];
  int n, finished, leftmost;
} ellipse;

static void ellipse_init(ellipse *s, int32_t a, int32_t b, int32_t w) {
  s->n = 0;
  s->leftmost = a % 2;
  quarter_init(&s->o, a, b);
  if (w < 1 || quarter_next(&s->o, &s->pr, &s->py) == -1) {
    s->finished = 1;
  } else {
    s->finished = 0;
    quarter_init(&s->i, a - 2 * (w - 1), b - 2 * (w - 1));
    s->pl = s->leftmost;
  }
}

static void push_segment(ellipse *s, int32_t l, int32_t y, int32_t r) {
  s->cl[s->n] = l, s->cy[s->n] = y, s->cr[s->n] = r;
  s->n++;
}

static int ellipse_next(ellipse *s, int32_t *x0, int32_t *y, int32_t *x1) {
  if (s->n == 0) {
    if (s->finished)
      return -1;
    const int32_t row = s->py, r = s->pr;
    int32_t l = s->pl, cx = 0, cy = 0;
    int next;
    while ((next = quarter_next(&s->o, &cx, &cy)) != -1 && cy <= row) {
    }
    if (next == -1)
      s->finished = 1;
    else
      s->pr = cx, s->py = cy;
    while ((next = quarter_next(&s->i, &cx, &cy)) != -1 && cy <= row)
      l = cx;
    s->pl = next == -1 ? s->leftmost : cx;
    if ((l > 0 || l < r) && row > 0)
      push_segment(s, l == 0 ? 2 : l, row, r);
    if (row > 0)
      push_segment(s, -r, row, -l);
    if (l > 0 || l < r)
      push_segment(s, l == 0 ? 2 : l, -row, r);
    push_segment(s, -r, -row, -l);
  }
  s->n--;
  *x0 = s->cl[s->n], *y = s->cy[s->n], *x1 = s->cr[s->n];
  return 0;
}

void sdr_image_draw_ellipse(sdr_image *im, int x0, int y0, int x1, int y1, const uint8_t *ink,
                            int fill, int width) {
  const int a = x1 - x0, b = y1 - y0;
  if (a < 0 || b < 0)
    return;
  if (fill)
    width = a + b;
  ellipse st;
  ellipse_init(&st, a, b, width);
  int32_t X0, Y, X1;
  while (ellipse_next(&st, &X0, &Y, &X1) != -1)
    hline(im, x0 + (X0 + a) / 2, y0 + (Y + b) / 2, x0 + (X1 + a) / 2, ink);
}

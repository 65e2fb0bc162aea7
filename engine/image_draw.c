/* engine/image_draw.c — ImageDraw's rectangle and ellipse as Pillow's libImaging/Draw.c
 * rasterises them (an inpainting mask drawn by hand): the same rows, the same ends, the
 * same ellipse points, so the mask is Pillow's pixel for pixel.
 *
 * Coordinates are inclusive, as in Pillow: rectangle((0, 0, 3, 3)) covers 4 x 4 pixels.
 * Drawing writes ink (the picture's bytes per pixel) without blending, as ImageDraw.Draw(im)
 * does by default.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h" // sdr_fail

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

/* Draw.c's line: Bresenham from (x0, y0) towards (x1, y1), the end point left out; a
 * horizontal one through hline. */
static void line(sdr_image *im, int x0, int y0, int x1, int y1, const uint8_t *ink) {
  int dy = y1 - y0, ys = 1;
  if (dy < 0) {
    dy = -dy, ys = -1;
  } else if (dy == 0) {
    if (x1 > x0)
      hline(im, x0, y0, x1 - 1, ink);
    else if (x0 > x1)
      hline(im, x1 + 1, y0, x0, ink);
    return;
  }
  int dx = x1 - x0, xs = 1;
  if (dx < 0)
    dx = -dx, xs = -1;
  if (dx == 0) {
    for (int i = 0; i < dy; i++, y0 += ys)
      point(im, x0, y0, ink);
  } else if (dx > dy) {
    const int n = dx;
    dy += dy;
    int e = dy - dx;
    dx += dx;
    for (int i = 0; i < n; i++, x0 += xs) {
      point(im, x0, y0, ink);
      if (e >= 0)
        y0 += ys, e -= dx;
      e += dy;
    }
  } else {
    const int n = dy;
    dx += dx;
    int e = dx - dy;
    dy += dy;
    for (int i = 0; i < n; i++, y0 += ys) {
      point(im, x0, y0, ink);
      if (e >= 0)
        x0 += xs, e -= dy;
      e += dx;
    }
  }
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
    line(im, x1 - i, y0 + width, x1 - i, y1 - width + 1, ink);
    line(im, x0 + i, y0 + width, x0 + i, y1 - width + 1, ink);
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

/* ---- polygon: Draw.c's edge list and scan lines (the path without blending) ---- */

typedef struct {
  int x0, y0, xmin, ymin, xmax, ymax;
  float dx;
} edge;

static void add_edge(edge *e, int x0, int y0, int x1, int y1) {
  e->xmin = x0 <= x1 ? x0 : x1, e->xmax = x0 <= x1 ? x1 : x0;
  e->ymin = y0 <= y1 ? y0 : y1, e->ymax = y0 <= y1 ? y1 : y0;
  e->dx = y0 == y1 ? 0.0f : (float)(x1 - x0) / (y1 - y0);
  e->x0 = x0, e->y0 = y0;
}

static int x_cmp(const void *a, const void *b) {
  const float d = *(const float *)a - *(const float *)b;
  return d < 0 ? -1 : d > 0 ? 1 : 0;
}

/* Draw.c's ROUND_UP and ROUND_DOWN of a scan line's crossing */
static int round_up(float f) { return (int)(f >= 0.0 ? floor(f + 0.5F) : -floor(fabs(f) + 0.5F)); }
static int round_down(float f) { return (int)(f >= 0.0 ? ceil(f - 0.5F) : -ceil(fabs(f) - 0.5F)); }

/* The x where edge c crosses row y, in float as Draw.c has it. */
static float crossing(const edge *c, int y) { return (y - c->y0) * c->dx + c->x0; }

static int polygon_fill(sdr_image *im, edge *e, int n, const uint8_t *ink) {
  int ymin = im->height - 1, ymax = 0, count = 0;
  edge **table = calloc((size_t)n + 1, sizeof *table);
  float *xx = calloc((size_t)n * 2 + 1, sizeof *xx);
  if (!table || !xx) {
    free(table);
    free(xx);
    return sdr_fail("out of memory drawing a polygon of %d edges", n);
  }
  for (int i = 0; i < n; i++) {
    ymin = e[i].ymin < ymin ? e[i].ymin : ymin;
    ymax = e[i].ymax > ymax ? e[i].ymax : ymax;
    if (e[i].ymin == e[i].ymax) /* horizontal: drawn as it is */
      hline(im, e[i].xmin, e[i].ymin, e[i].xmax, ink);
    else
      table[count++] = e + i;
  }
  ymin = ymin < 0 ? 0 : ymin;
  ymax = ymax > im->height ? im->height : ymax;
  for (; ymin <= ymax; ymin++) {
    int j = 0;
    for (int i = 0; i < count; i++) {
      const edge *c = table[i];
      if (ymin < c->ymin || ymin > c->ymax)
        continue;
      xx[j++] = crossing(c, ymin);
      if (ymin == c->ymax && ymin < ymax) { /* "needed to draw consistent polygons" */
        xx[j] = xx[j - 1];
        j++;
      } else if ((ymin == c->ymin || ymin == c->ymax) && c->dx != 0) {
        /* connect discontiguous corners */
        for (int k = 0; k < i; k++) {
          const edge *o = table[k];
          if ((ymin != o->ymin && ymin != o->ymax) || o->dx == 0)
            continue;
          if (roundf(xx[j - 1]) != roundf(crossing(o, ymin)))
            continue;
          const int offset = ymin == c->ymax ? -1 : 1;
          const float adj = (ymin + offset - c->y0) * c->dx + c->x0;
          if (ymin + offset >= o->ymin && ymin + offset <= o->ymax) {
            const float adj_o = (ymin + offset - o->y0) * o->dx + o->x0;
            if (xx[j - 1] > adj + 1 && xx[j - 1] > adj_o + 1)
              xx[j - 1] = roundf(fmax(adj, adj_o)) + 1;
            else if (xx[j - 1] < adj - 1 && xx[j - 1] < adj_o - 1)
              xx[j - 1] = roundf(fmin(adj, adj_o)) - 1;
            break;
          }
        }
      }
    }
    qsort(xx, (size_t)j, sizeof *xx, x_cmp);
    for (int i = 1; i < j; i += 2)
      hline(im, round_up(xx[i - 1]), ymin, round_down(xx[i]), ink);
  }
  free(xx);
  free(table);
  return 0;
}

int sdr_image_draw_polygon(sdr_image *im, const int *xy, int count, const uint8_t *ink, int fill) {
  if (count <= 0)
    return 0;
  if (!fill) { /* an outline one pixel wide: lines from point to point, and back to the first */
    int i = 0;
    for (; i < count - 1; i++)
      line(im, xy[i * 2], xy[i * 2 + 1], xy[i * 2 + 2], xy[i * 2 + 3], ink);
    line(im, xy[i * 2], xy[i * 2 + 1], xy[0], xy[1], ink);
    return 0;
  }
  edge *e = calloc((size_t)count + 1, sizeof *e);
  if (!e)
    return sdr_fail("out of memory drawing a polygon of %d points", count);
  int i = 0, n = 0;
  for (; i < count - 1; i++) {
    const int x0 = xy[i * 2], y0 = xy[i * 2 + 1], x1 = xy[i * 2 + 2], y1 = xy[i * 2 + 3];
    if (y0 == y1 && i != 0 && y0 == xy[i * 2 - 1]) {
      /* a horizontal edge right after another: one edge, when both run the same way */
      edge *last = &e[n - 1];
      if (x1 > x0 && x0 > xy[i * 2 - 2]) {
        last->xmax = x1;
        continue;
      } else if (x1 < x0 && x0 < xy[i * 2 - 2]) {
        last->xmin = x1;
        continue;
      }
    }
    add_edge(&e[n++], x0, y0, x1, y1);
  }
  if (xy[i * 2] != xy[0] || xy[i * 2 + 1] != xy[1])
    add_edge(&e[n++], xy[i * 2], xy[i * 2 + 1], xy[0], xy[1]);
  const int rc = polygon_fill(im, e, n, ink);
  free(e);
  return rc;
}

/* ---- line: Draw.c's ImagingDrawLine (Bresenham) and ImagingDrawWideLine (a four-sided polygon
 * around the segment, its offsets rounded as Draw.c's ROUND_UP and ROUND_DOWN of doubles) ---- */

static int round_up_d(double f) {
  return (int)(f >= 0.0 ? floor(f + 0.5F) : -floor(fabs(f) + 0.5F));
}
static int round_down_d(double f) {
  return (int)(f >= 0.0 ? ceil(f - 0.5F) : -ceil(fabs(f) - 0.5F));
}

static int wide_line(sdr_image *im, int x0, int y0, int x1, int y1, const uint8_t *ink, int width) {
  const int dx = x1 - x0, dy = y1 - y0;
  if (dx == 0 && dy == 0) {
    point(im, x0, y0, ink);
    return 0;
  }
  const double big = hypot(dx, dy), small = (width - 1) / 2.0;
  const double ratio_max = round_up_d(small) / big, ratio_min = round_down_d(small) / big;
  const int dxmin = round_down_d(ratio_min * dy), dxmax = round_down_d(ratio_max * dy);
  const int dymin = round_down_d(ratio_min * dx), dymax = round_down_d(ratio_max * dx);
  const int v[4][2] = {{x0 - dxmin, y0 + dymax},
                       {x1 - dxmin, y1 + dymax},
                       {x1 + dxmax, y1 - dymin},
                       {x0 + dxmax, y0 - dymin}};
  edge e[4];
  for (int k = 0; k < 4; k++)
    add_edge(&e[k], v[k][0], v[k][1], v[(k + 1) % 4][0], v[(k + 1) % 4][1]);
  return polygon_fill(im, e, 4, ink);
}

int sdr_image_draw_line(sdr_image *im, const int *xy, int count, const uint8_t *ink, int width) {
  if (width == 1) {
    for (int i = 0; i + 1 < count; i++)
      line(im, xy[i * 2], xy[i * 2 + 1], xy[i * 2 + 2], xy[i * 2 + 3], ink);
    if (count >= 2) /* the last point, which line leaves out */
      point(im, xy[count * 2 - 2], xy[count * 2 - 1], ink);
    return 0;
  }
  for (int i = 0; i + 1 < count; i++)
    if (wide_line(im, xy[i * 2], xy[i * 2 + 1], xy[i * 2 + 2], xy[i * 2 + 3], ink, width) != 0)
      return -1;
  return 0;
}

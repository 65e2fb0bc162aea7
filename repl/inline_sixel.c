/* repl/inline_sixel.c — pictures as sixel, for terminals without a PNG protocol.
 *
 * Sixel (DEC VT340, see the "VT330/VT340 Programmer Reference Manual" and
 * https://vt100.net/docs/vt3xx-gp/chapter14.html) paints six pixel rows at a
 * time: a band is sent once per color, each column a character 63 + a 6-bit
 * mask of the rows that have that color. The picture is first scaled down by
 * box averaging to at most INLINE_SIXEL_MAX_SIDE a side (a terminal holds no
 * more, and every pixel costs bytes), then mapped onto a fixed palette — the
 * 6x6x6 color cube plus 24 greys, as xterm's 256 colors — with a 4x4 ordered
 * dither, which needs no per-picture palette search and never streaks.
 *
 *   ESC P q  "1;1;W;H  #i;2;r;g;b ...  (#i <sixels> $)... -  ...  ESC \
 */
#include "repl/inline_image.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { CUBE = 6, CUBE_COLORS = CUBE * CUBE * CUBE, GREYS = 24, PALETTE = CUBE_COLORS + GREYS };

/* ---- palette ----------------------------------------------------------- */

static int cube_level(int i) { return i * 51; }     /* 0, 51, ..., 255 */
static int grey_level(int i) { return 8 + i * 10; } /* 8, 18, ..., 238, as xterm */

static void palette_rgb(int index, int rgb[3]) {
  if (index < CUBE_COLORS) {
    rgb[0] = cube_level(index / 36);
    rgb[1] = cube_level(index / 6 % 6);
    rgb[2] = cube_level(index % 6);
  } else {
    rgb[0] = rgb[1] = rgb[2] = grey_level(index - CUBE_COLORS);
  }
}

static int clamp255(int v) { return v < 0 ? 0 : v > 255 ? 255 : v; }

static int sq(int v) { return v * v; }

/* The nearer of the nearest cube color and the nearest grey. */
static int palette_nearest(int r, int g, int b) {
  int ri = (r + 25) / 51, gi = (g + 25) / 51, bi = (b + 25) / 51;
  int cube = ri * 36 + gi * 6 + bi;
  int d_cube = sq(r - cube_level(ri)) + sq(g - cube_level(gi)) + sq(b - cube_level(bi));
  int mean = (r + g + b) / 3;
  int gi2 = (mean - 8 + 5) / 10;
  gi2 = gi2 < 0 ? 0 : gi2 >= GREYS ? GREYS - 1 : gi2;
  int gl = grey_level(gi2);
  int d_grey = sq(r - gl) + sq(g - gl) + sq(b - gl);
  return d_grey < d_cube ? CUBE_COLORS + gi2 : cube;
}

/* ---- scaling and quantizing -------------------------------------------- */

/* Box average of img into w x h RGB, alpha composited over black. */
static uint8_t *scale_rgb(const sdr_image *img, int w, int h) {
  uint8_t *out = malloc((size_t)w * h * 3);
  if (!out)
    return NULL;
  int c = img->channels, sw = img->width, sh = img->height;
  for (int y = 0; y < h; y++) {
    int y0 = (int)((long long)y * sh / h), y1 = (int)((long long)(y + 1) * sh / h);
    y1 = y1 > y0 ? y1 : y0 + 1;
    for (int x = 0; x < w; x++) {
      int x0 = (int)((long long)x * sw / w), x1 = (int)((long long)(x + 1) * sw / w);
      x1 = x1 > x0 ? x1 : x0 + 1;
      uint64_t sum[3] = {0, 0, 0};
      for (int yy = y0; yy < y1; yy++) {
        const uint8_t *p = img->pixels + ((size_t)yy * sw + x0) * c;
        for (int xx = x0; xx < x1; xx++, p += c) {
          int a = c == 4 ? p[3] : 255;
          for (int k = 0; k < 3; k++)
            sum[k] += (uint64_t)p[c == 1 ? 0 : k] * a / 255;
        }
      }
      uint64_t n = (uint64_t)(y1 - y0) * (x1 - x0);
      for (int k = 0; k < 3; k++)
        out[((size_t)y * w + x) * 3 + k] = (uint8_t)((sum[k] + n / 2) / n);
    }
  }
  return out;
}

/* Palette indices, dithered with a 4x4 Bayer matrix spread over about one
 * cube step (51), so flat areas between two cube colors become a fine mix. */
static uint8_t *quantize(const uint8_t *rgb, int w, int h) {
  static const int bayer[4][4] = {{0, 8, 2, 10}, {12, 4, 14, 6}, {3, 11, 1, 9}, {15, 7, 13, 5}};
  uint8_t *idx = malloc((size_t)w * h);
  if (!idx)
    return NULL;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      const uint8_t *p = rgb + ((size_t)y * w + x) * 3;
      int d = (bayer[y & 3][x & 3] * 2 - 15) * 51 / 32; /* about -24 .. +24 */
      idx[(size_t)y * w + x] =
          (uint8_t)palette_nearest(clamp255(p[0] + d), clamp255(p[1] + d), clamp255(p[2] + d));
    }
  return idx;
}

/* ---- encoding ---------------------------------------------------------- */

/* Emits a run of one sixel character; runs of 4 or more as "!count char". */
static void put_run(FILE *out, int ch, int n) {
  if (n >= 4) {
    fprintf(out, "!%d%c", n, ch);
    return;
  }
  while (n-- > 0)
    fputc(ch, out);
}

static void put_row(FILE *out, const uint8_t *bits, int w) {
  while (w > 0 && bits[w - 1] == 0) /* the rest of the band stays as it is */
    w--;
  for (int x = 0; x < w;) {
    int run = 1;
    while (x + run < w && bits[x + run] == bits[x])
      run++;
    put_run(out, 63 + bits[x], run);
    x += run;
  }
}

static void put_palette(FILE *out, const uint8_t *used) {
  for (int i = 0; i < PALETTE; i++) {
    if (!used[i])
      continue;
    int rgb[3];
    palette_rgb(i, rgb);
    /* Sixel colors are percentages. */
    fprintf(out, "#%d;2;%d;%d;%d", i, (rgb[0] * 100 + 127) / 255, (rgb[1] * 100 + 127) / 255,
            (rgb[2] * 100 + 127) / 255);
  }
}

static int encode(FILE *out, const uint8_t *idx, int w, int h) {
  /* bits[slot][x]: the six-row mask of column x for the band's slot-th color. */
  uint8_t *bits = malloc((size_t)PALETTE * w);
  if (!bits)
    return -1;
  uint8_t used[PALETTE] = {0};
  for (size_t i = 0; i < (size_t)w * h; i++)
    used[idx[i]] = 1;

  fprintf(out, "\033Pq\"1;1;%d;%d", w, h);
  put_palette(out, used);
  for (int y0 = 0; y0 < h; y0 += 6) {
    int rows = h - y0 < 6 ? h - y0 : 6;
    int slot[PALETTE], color[PALETTE], ncolors = 0;
    memset(slot, -1, sizeof slot);
    for (int r = 0; r < rows; r++) {
      const uint8_t *line = idx + (size_t)(y0 + r) * w;
      for (int x = 0; x < w; x++) {
        int c = line[x];
        if (slot[c] < 0) {
          slot[c] = ncolors;
          color[ncolors++] = c;
          memset(bits + (size_t)slot[c] * w, 0, (size_t)w);
        }
        bits[(size_t)slot[c] * w + x] |= (uint8_t)(1 << r);
      }
    }
    for (int s = 0; s < ncolors; s++) {
      fprintf(out, "#%d", color[s]);
      put_row(out, bits + (size_t)s * w, w);
      if (s + 1 < ncolors)
        fputc('$', out); /* back to the band's start for the next color */
    }
    if (y0 + 6 < h)
      fputc('-', out); /* next band */
  }
  fputs("\033\\\n", out);
  free(bits);
  return 0;
}

int inline_sixel_write(FILE *out, const sdr_image *img) {
  if (!img || img->width <= 0 || img->height <= 0 || !img->pixels)
    return -1;
  int w = img->width, h = img->height;
  if (w > INLINE_SIXEL_MAX_SIDE || h > INLINE_SIXEL_MAX_SIDE) {
    double s = w > h ? (double)INLINE_SIXEL_MAX_SIDE / w : (double)INLINE_SIXEL_MAX_SIDE / h;
    w = (int)(w * s + 0.5);
    h = (int)(h * s + 0.5);
    w = w < 1 ? 1 : w;
    h = h < 1 ? 1 : h;
  }
  uint8_t *rgb = scale_rgb(img, w, h);
  uint8_t *idx = rgb ? quantize(rgb, w, h) : NULL;
  int rc = idx ? encode(out, idx, w, h) : -1;
  free(rgb);
  free(idx);
  return rc == 0 && !ferror(out) ? 0 : -1;
}

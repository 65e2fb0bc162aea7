/* tests/unit/test_inline_image.c — terminal images: which protocol the
 * environment picks, and the exact bytes each protocol writes.
 *
 * kitty and iTerm2 output is unframed, its base64 decoded and the PNG decoded
 * back to the same pixels; sixel output is parsed by a small sixel reader here
 * and painted into a picture that must match the original.
 */
#define _POSIX_C_SOURCE 200809L /* open_memstream, setenv under -std=c11 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/image.h"      // sdr_image_new, sdr_image_decode
#include "repl/inline_image.h" // inline_image_detect, inline_image_write

/* ---- helpers ----------------------------------------------------------- */

static const char *const TERM_VARS[] = {"SDREPL_INLINE", "TERM", "TERM_PROGRAM", "KITTY_WINDOW_ID",
                                        "LC_TERMINAL",   "TMUX", "MLTERM",       NULL};

static void env_clear(void) {
  for (int i = 0; TERM_VARS[i]; i++)
    unsetenv(TERM_VARS[i]);
}

/* Detection with exactly the given NAME=VALUE pairs set (NULL-terminated). */
static inline_protocol detect_with(const char *a, const char *b) {
  env_clear();
  const char *pairs[] = {a, b};
  for (int i = 0; i < 2; i++) {
    if (!pairs[i])
      continue;
    char name[64];
    const char *eq = strchr(pairs[i], '=');
    snprintf(name, sizeof name, "%.*s", (int)(eq - pairs[i]), pairs[i]);
    setenv(name, eq + 1, 1);
  }
  return inline_image_detect();
}

static char *write_image(const sdr_image *img, inline_protocol proto, size_t *len, int *rc) {
  char *buf = NULL;
  FILE *f = open_memstream(&buf, len);
  *rc = inline_image_write(f, img, proto);
  fclose(f);
  return buf;
}

static int starts(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int b64_value(int c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Strict decoder: length a multiple of 4, padding only at the end. Returns
 * the byte count, or -1. */
static long b64_decode(const char *s, size_t n, uint8_t *out) {
  if (n % 4)
    return -1;
  long o = 0;
  for (size_t i = 0; i < n; i += 4) {
    int v[4], pad = 0;
    for (int k = 0; k < 4; k++) {
      if (s[i + k] == '=' && i + 4 == n && k >= 2) {
        v[k] = 0;
        pad++;
      } else if (pad || (v[k] = b64_value((unsigned char)s[i + k])) < 0) {
        return -1;
      }
    }
    uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
    out[o++] = (uint8_t)(w >> 16);
    if (pad < 2)
      out[o++] = (uint8_t)(w >> 8);
    if (pad < 1)
      out[o++] = (uint8_t)w;
  }
  return o;
}

static const uint8_t PNG_SIGNATURE[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* The PNG must decode to img's own pixels. */
static void check_png(const uint8_t *png, long len, const sdr_image *img) {
  CHECK(len > 8 && memcmp(png, PNG_SIGNATURE, 8) == 0);
  if (len <= 8)
    return;
  sdr_image *back = sdr_image_decode(png, (size_t)len, "inline.png");
  CHECK(back != NULL);
  if (!back)
    return;
  CHECK(back->width == img->width && back->height == img->height);
  CHECK(back->channels == img->channels);
  if (back->width == img->width && back->height == img->height && back->channels == img->channels)
    CHECK(memcmp(back->pixels, img->pixels, (size_t)img->width * img->height * img->channels) == 0);
  sdr_image_free(back);
}

static sdr_image *noise_image(int w, int h, int channels) {
  sdr_image *img = sdr_image_new(w, h, channels);
  uint32_t s = 12345;
  for (size_t i = 0; i < (size_t)w * h * channels; i++) {
    s = s * 1664525u + 1013904223u;
    img->pixels[i] = (uint8_t)(s >> 24);
  }
  return img;
}

/* ---- detection --------------------------------------------------------- */

static void test_detect(void) {
  CHECK(detect_with(NULL, NULL) == INLINE_OFF);
  CHECK(detect_with("TERM=xterm-256color", NULL) == INLINE_OFF);
  CHECK(detect_with("TERM=xterm-kitty", NULL) == INLINE_KITTY);
  CHECK(detect_with("TERM=xterm-256color", "KITTY_WINDOW_ID=3") == INLINE_KITTY);
  CHECK(detect_with("TERM_PROGRAM=ghostty", NULL) == INLINE_KITTY);
  CHECK(detect_with("TERM_PROGRAM=iTerm.app", NULL) == INLINE_ITERM);
  CHECK(detect_with("LC_TERMINAL=iTerm2", NULL) == INLINE_ITERM);
  CHECK(detect_with("TERM_PROGRAM=WezTerm", NULL) == INLINE_ITERM);
  CHECK(detect_with("TERM=xterm-sixel", NULL) == INLINE_SIXEL);
  CHECK(detect_with("TERM=foot", NULL) == INLINE_SIXEL);
  CHECK(detect_with("TERM=mlterm", NULL) == INLINE_SIXEL);
  /* Multiplexers swallow the sequences, whatever terminal is outside. */
  CHECK(detect_with("TERM=tmux-256color", "KITTY_WINDOW_ID=3") == INLINE_OFF);
  CHECK(detect_with("TERM=xterm-kitty", "TMUX=/tmp/tmux-0/default,1,0") == INLINE_OFF);
  CHECK(detect_with("TERM=screen", "TERM_PROGRAM=iTerm.app") == INLINE_OFF);
  /* SDREPL_INLINE wins over everything. */
  CHECK(detect_with("SDREPL_INLINE=kitty", "TMUX=x") == INLINE_KITTY);
  CHECK(detect_with("SDREPL_INLINE=iterm", NULL) == INLINE_ITERM);
  CHECK(detect_with("SDREPL_INLINE=sixel", NULL) == INLINE_SIXEL);
  CHECK(detect_with("SDREPL_INLINE=off", "TERM=xterm-kitty") == INLINE_OFF);
  CHECK(detect_with("SDREPL_INLINE=auto", "TERM=xterm-kitty") == INLINE_KITTY);
  env_clear();
}

/* ---- kitty ------------------------------------------------------------- */

/* Unframes kitty's chunks into their base64, checking each frame. */
static char *kitty_payload(const char *out, size_t len, int *chunks) {
  char *b64 = malloc(len + 1);
  size_t n = 0;
  const char *p = out, *end = out + len;
  *chunks = 0;
  for (int more = 1; more;) {
    const char *prefix = *chunks == 0 ? "\033_Gf=100,a=T,q=2,m=" : "\033_Gm=";
    if (!starts(p, prefix)) {
      fprintf(stderr, "chunk %d does not start with the expected keys\n", *chunks);
      CHECK(0);
      break;
    }
    p += strlen(prefix);
    more = *p == '1';
    CHECK(*p == '0' || *p == '1');
    CHECK(p[1] == ';');
    p += 2;
    const char *st = strstr(p, "\033\\");
    CHECK(st != NULL);
    if (!st)
      break;
    size_t k = (size_t)(st - p);
    CHECK(k <= 4096);
    if (more)
      CHECK(k % 4 == 0 && k > 0);
    memcpy(b64 + n, p, k);
    n += k;
    p = st + 2;
    (*chunks)++;
  }
  CHECK(p + 1 == end && *p == '\n');
  b64[n] = 0;
  return b64;
}

static void test_kitty(void) {
  /* A tiny picture: one chunk, m=0. */
  sdr_image *tiny = sdr_image_new(2, 2, 3);
  memcpy(tiny->pixels, "\xff\x00\x00\x00\xff\x00\x00\x00\xff\xff\xff\xff", 12);
  size_t len;
  int rc, chunks;
  char *out = write_image(tiny, INLINE_KITTY, &len, &rc);
  CHECK(rc == 0);
  CHECK(starts(out, "\033_Gf=100,a=T,q=2,m=0;"));
  char *b64 = kitty_payload(out, len, &chunks);
  CHECK(chunks == 1);
  uint8_t *png = malloc(strlen(b64) + 3);
  long n = b64_decode(b64, strlen(b64), png);
  check_png(png, n, tiny);
  free(png);
  free(b64);
  free(out);
  sdr_image_free(tiny);

  /* Noise does not compress: a PNG of several chunks, m=1 on all but the last. */
  sdr_image *noise = noise_image(64, 64, 4);
  out = write_image(noise, INLINE_KITTY, &len, &rc);
  CHECK(rc == 0);
  b64 = kitty_payload(out, len, &chunks);
  CHECK(chunks >= 4);
  CHECK(strstr(out, "\033_Gm=1;") != NULL && strstr(out, "\033_Gm=0;") != NULL);
  png = malloc(strlen(b64) + 3);
  n = b64_decode(b64, strlen(b64), png);
  CHECK(n > 4096);
  check_png(png, n, noise);
  free(png);
  free(b64);
  free(out);
  sdr_image_free(noise);
}

/* ---- iTerm2 ------------------------------------------------------------ */

static void test_iterm(void) {
  for (int side = 3; side <= 50; side += 47) {
    sdr_image *img = noise_image(side, side + 1, 3);
    size_t len;
    int rc;
    char *out = write_image(img, INLINE_ITERM, &len, &rc);
    CHECK(rc == 0);
    static const char prefix[] = "\033]1337;File=inline=1;size=";
    CHECK(starts(out, prefix));
    /* the base64 runs from after the ':' to the closing BEL; as offsets, which GCC's
     * -Wdangling-pointer does not mistake for the memstream's pointer */
    size_t colon = strcspn(out, ":");
    CHECK(out[colon] == ':');
    CHECK(len >= 2 && out[len - 2] == '\a' && out[len - 1] == '\n');
    if (out[colon] == ':' && starts(out, prefix) && len >= colon + 3) {
      long size = strtol(out + sizeof prefix - 1, NULL, 10);
      size_t n64 = len - 2 - (colon + 1);
      uint8_t *png = malloc(n64 + 3);
      long n = b64_decode(out + colon + 1, n64, png);
      CHECK(n == size);
      check_png(png, n, img);
      free(png);
    }
    free(out);
    sdr_image_free(img);
  }
}

/* ---- sixel ------------------------------------------------------------- */

typedef struct {
  int w, h;            /* from the raster attributes */
  uint8_t *rgb;        /* (h, w, 3) painted colors */
  uint8_t *paints;     /* (h, w) how often each pixel was painted */
  int palette_entries; /* "#i;2;r;g;b" definitions seen */
} sixel_picture;

static int read_number(const char **p) {
  int v = 0;
  while (**p >= '0' && **p <= '9')
    v = v * 10 + *(*p)++ - '0';
  return v;
}

/* Parses the body between "ESC P q" and "ESC \"; returns 0 when every byte
 * was valid sixel. */
static int sixel_parse(const char *p, const char *end, sixel_picture *pic) {
  int pal[256][3] = {{0}}, color = 0, x = 0, band = 0;
  memset(pic, 0, sizeof *pic);
  if (*p != '"')
    return -1;
  p++;
  read_number(&p);
  p++;
  read_number(&p);
  p++;
  pic->w = read_number(&p);
  p++;
  pic->h = read_number(&p);
  pic->rgb = calloc((size_t)pic->w * pic->h, 3);
  pic->paints = calloc((size_t)pic->w * pic->h, 1);
  while (p < end) {
    int c = (unsigned char)*p, repeat = 1;
    if (c == '#') {
      p++;
      color = read_number(&p);
      if (color > 255)
        return -1;
      if (*p == ';') {
        p++;
        if (read_number(&p) != 2)
          return -1;
        for (int k = 0; k < 3; k++) {
          if (*p++ != ';')
            return -1;
          pal[color][k] = read_number(&p) * 255 / 100;
        }
        pic->palette_entries++;
      }
      continue;
    }
    if (c == '$') {
      x = 0;
      p++;
      continue;
    }
    if (c == '-') {
      x = 0;
      band++;
      p++;
      continue;
    }
    if (c == '!') {
      p++;
      repeat = read_number(&p);
      c = (unsigned char)*p;
    }
    if (c < 63 || c > 126)
      return -1;
    p++;
    for (int r = 0; r < repeat; r++, x++)
      for (int bit = 0; bit < 6; bit++) {
        int y = band * 6 + bit;
        if (!((c - 63) >> bit & 1))
          continue;
        if (x >= pic->w || y >= pic->h)
          return -1;
        size_t i = (size_t)y * pic->w + x;
        for (int k = 0; k < 3; k++)
          pic->rgb[i * 3 + k] = (uint8_t)pal[color][k];
        pic->paints[i]++;
      }
  }
  return 0;
}

/* Writes img as sixel and reads it back into pic (which the caller frees). */
static int sixel_roundtrip(const sdr_image *img, sixel_picture *pic) {
  memset(pic, 0, sizeof *pic);
  size_t len;
  int rc;
  char *out = write_image(img, INLINE_SIXEL, &len, &rc);
  CHECK(rc == 0);
  int ok = len > 6 && starts(out, "\033Pq") && memcmp(out + len - 3, "\033\\\n", 3) == 0;
  CHECK(ok);
  if (ok) {
    /* No other escape or control byte inside. */
    const char *end = out + len - 3;
    for (const char *p = out + 3; p < end; p++)
      if (*p < 0x20 || *p > 0x7e) {
        ok = 0;
        break;
      }
    CHECK(ok);
    if (ok) {
      ok = sixel_parse(out + 3, end, pic) == 0;
      CHECK(ok);
    }
  }
  free(out);
  return ok ? 0 : -1;
}

static void sixel_free(sixel_picture *pic) {
  free(pic->rgb);
  free(pic->paints);
}

static int all_painted_once(const sixel_picture *pic) {
  for (size_t i = 0; i < (size_t)pic->w * pic->h; i++)
    if (pic->paints[i] != 1)
      return 0;
  return 1;
}

static void test_sixel(void) {
  /* Solid red: one palette entry, every pixel exactly (255, 0, 0). */
  sdr_image *red = sdr_image_new(10, 7, 3);
  for (int i = 0; i < 70; i++)
    red->pixels[i * 3] = 255;
  sixel_picture pic;
  if (sixel_roundtrip(red, &pic) == 0) {
    CHECK(pic.w == 10 && pic.h == 7);
    CHECK(pic.palette_entries == 1);
    CHECK(all_painted_once(&pic));
    int exact = 1;
    for (int i = 0; i < 70; i++)
      exact &= pic.rgb[i * 3] == 255 && pic.rgb[i * 3 + 1] == 0 && pic.rgb[i * 3 + 2] == 0;
    CHECK(exact);
  }
  sixel_free(&pic);
  sdr_image_free(red);

  /* A grey L gradient, wider than the limit: scaled to 800 wide, and the
   * dithered colors average out close to the original. */
  sdr_image *grad = sdr_image_new(1000, 250, 1);
  for (int y = 0; y < 250; y++)
    for (int x = 0; x < 1000; x++)
      grad->pixels[y * 1000 + x] = (uint8_t)(x * 255 / 999);
  if (sixel_roundtrip(grad, &pic) == 0) {
    CHECK(pic.w == INLINE_SIXEL_MAX_SIDE && pic.h == 200);
    CHECK(pic.palette_entries > 10);
    CHECK(all_painted_once(&pic));
    /* Mean over 40-pixel-wide stripes: within 6 levels of the gradient. */
    int worst = 0;
    for (int x0 = 0; x0 + 40 <= pic.w; x0 += 40) {
      long sum = 0;
      for (int y = 0; y < pic.h; y++)
        for (int x = x0; x < x0 + 40; x++)
          sum += pic.rgb[((size_t)y * pic.w + x) * 3 + 1];
      double mean = (double)sum / (40.0 * pic.h);
      double want = (x0 + 19.5) * 255.0 / 799;
      int err = (int)(mean > want ? mean - want : want - mean);
      worst = err > worst ? err : worst;
    }
    if (worst > 6)
      fprintf(stderr, "sixel gradient off by %d levels\n", worst);
    CHECK(worst <= 6);
  }
  sixel_free(&pic);
  sdr_image_free(grad);

  /* RGBA with odd sizes (a partial last band) parses and paints every pixel. */
  sdr_image *noise = noise_image(33, 13, 4);
  if (sixel_roundtrip(noise, &pic) == 0) {
    CHECK(pic.w == 33 && pic.h == 13);
    CHECK(all_painted_once(&pic));
  }
  sixel_free(&pic);
  sdr_image_free(noise);
}

int main(void) {
  test_detect();
  test_kitty();
  test_iterm();
  test_sixel();
  return check_exit();
}

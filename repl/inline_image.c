/* repl/inline_image.c — pictures drawn in the terminal: which protocol, and
 * the two that carry a PNG (kitty's graphics protocol, iTerm2's OSC 1337).
 * Sixel, which carries pixels of its own kind, is in repl/inline_sixel.c.
 *
 * Detection reads only the environment (no query to the terminal, whose
 * answer would arrive as typed input): SDREPL_INLINE=kitty|iterm|sixel|off
 * forces a protocol; otherwise the terminal is recognized by the variables it
 * sets. Inside tmux or screen nothing is drawn unless forced: they drop these
 * sequences, and the REPL then prints a text stand-in instead.
 */
#include "repl/inline_image.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- detection --------------------------------------------------------- */

static int env_is(const char *name, const char *value) {
  const char *v = getenv(name);
  return v && strcmp(v, value) == 0;
}

static int env_set(const char *name) {
  const char *v = getenv(name);
  return v && *v;
}

static int env_starts(const char *name, const char *prefix) {
  const char *v = getenv(name);
  return v && strncmp(v, prefix, strlen(prefix)) == 0;
}

inline_protocol inline_image_detect(void) {
  const char *force = getenv("SDREPL_INLINE");
  if (force && *force && strcmp(force, "auto") != 0) {
    if (strcmp(force, "kitty") == 0)
      return INLINE_KITTY;
    if (strcmp(force, "iterm") == 0 || strcmp(force, "iterm2") == 0)
      return INLINE_ITERM;
    if (strcmp(force, "sixel") == 0)
      return INLINE_SIXEL;
    return INLINE_OFF; /* "off", or a name we do not know */
  }
  const char *term = getenv("TERM");
  if (env_set("TMUX") || env_starts("TERM", "screen") || env_starts("TERM", "tmux") ||
      env_is("TERM", "dumb"))
    return INLINE_OFF;
  /* kitty, and Ghostty, which implements kitty's protocol. */
  if (env_is("TERM", "xterm-kitty") || env_set("KITTY_WINDOW_ID") ||
      env_is("TERM_PROGRAM", "ghostty") || env_is("TERM", "xterm-ghostty"))
    return INLINE_KITTY;
  /* iTerm2 (LC_TERMINAL survives ssh), and WezTerm and mintty, which document
   * iTerm2's inline images (WezTerm's kitty support is off by default). */
  if (env_is("TERM_PROGRAM", "iTerm.app") || env_is("LC_TERMINAL", "iTerm2") ||
      env_is("TERM_PROGRAM", "WezTerm") || env_is("TERM_PROGRAM", "mintty"))
    return INLINE_ITERM;
  /* Terminals that draw sixel out of the box. xterm does only when started
   * with a VT340 terminal id, which the environment does not show. */
  if ((term && strstr(term, "sixel")) || env_starts("TERM", "foot") ||
      env_starts("TERM", "mlterm") || env_is("TERM_PROGRAM", "mlterm") || env_set("MLTERM") ||
      env_starts("TERM", "yaft") || env_starts("TERM", "contour"))
    return INLINE_SIXEL;
  return INLINE_OFF;
}

/* ---- base64 ------------------------------------------------------------ */

/* Writes 4*ceil(n/3) characters of standard padded base64 to out. */
static void base64_encode(char *out, const uint8_t *in, size_t n) {
  static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    *out++ = digits[v >> 18 & 63];
    *out++ = digits[v >> 12 & 63];
    *out++ = digits[v >> 6 & 63];
    *out++ = digits[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
    *out++ = digits[v >> 18 & 63];
    *out++ = digits[v >> 12 & 63];
    *out++ = i + 1 < n ? digits[v >> 6 & 63] : '=';
    *out++ = '=';
  }
}

/* ---- kitty and iTerm2 -------------------------------------------------- */

/* kitty wants base64 in chunks of at most 4096 bytes, each a multiple of 4
 * but the last: 3072 input bytes make exactly 4096. */
enum { KITTY_CHUNK_IN = 3072, KITTY_CHUNK_OUT = 4096 };

/* https://sw.kovidgoyal.net/kitty/graphics-protocol/ — a=T transmits and
 * shows, f=100 says PNG, q=2 asks for no reply (a reply would arrive on
 * stdin as if typed). Only the first chunk carries the keys; m=1 means more
 * follows. */
static void write_kitty(FILE *out, const uint8_t *png, size_t len) {
  char b64[KITTY_CHUNK_OUT];
  size_t off = 0;
  do {
    size_t n = len - off < KITTY_CHUNK_IN ? len - off : KITTY_CHUNK_IN;
    int more = off + n < len;
    if (off == 0)
      fprintf(out, "\033_Gf=100,a=T,q=2,m=%d;", more);
    else
      fprintf(out, "\033_Gm=%d;", more);
    base64_encode(b64, png + off, n);
    fwrite(b64, 1, (n + 2) / 3 * 4, out);
    fputs("\033\\", out);
    off += n;
  } while (off < len);
  fputc('\n', out);
}

/* https://iterm2.com/documentation-images.html — OSC 1337 ; File=... : base64 BEL. */
static void write_iterm(FILE *out, const uint8_t *png, size_t len) {
  char b64[KITTY_CHUNK_OUT];
  fprintf(out, "\033]1337;File=inline=1;size=%zu:", len);
  for (size_t off = 0; off < len; off += KITTY_CHUNK_IN) {
    size_t n = len - off < KITTY_CHUNK_IN ? len - off : KITTY_CHUNK_IN;
    base64_encode(b64, png + off, n);
    fwrite(b64, 1, (n + 2) / 3 * 4, out);
  }
  fputs("\a\n", out);
}

int inline_image_write(FILE *out, const sdr_image *img, inline_protocol proto) {
  if (!img || img->width <= 0 || img->height <= 0)
    return -1;
  if (proto == INLINE_SIXEL)
    return inline_sixel_write(out, img);
  if (proto != INLINE_KITTY && proto != INLINE_ITERM)
    return -1;
  uint8_t *png = NULL;
  size_t len = 0;
  if (sdr_image_encode_png(img, &png, &len) != 0)
    return -1;
  if (proto == INLINE_KITTY)
    write_kitty(out, png, len);
  else
    write_iterm(out, png, len);
  free(png);
  return ferror(out) ? -1 : 0;
}

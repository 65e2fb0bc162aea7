/* repl/notebook_text.c — text helpers the exporters share: a growing buffer,
 * HTML escaping, base64, UTF-8 repair, and cleaning captured terminal output. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl/notebook_internal.h" // nb_buf

/* ---- buffer ------------------------------------------------------------ */

static int reserve(nb_buf *b, size_t more) {
  if (b->oom)
    return 0;
  if (b->len + more + 1 <= b->cap)
    return 1;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + more + 1) {
    if (cap > SIZE_MAX / 2) {
      b->oom = 1;
      return 0;
    }
    cap *= 2;
  }
  char *grown = realloc(b->p, cap);
  if (!grown) {
    b->oom = 1;
    return 0;
  }
  b->p = grown;
  b->cap = cap;
  return 1;
}

void nb_put(nb_buf *b, const char *s, size_t n) {
  if (!reserve(b, n))
    return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

void nb_puts(nb_buf *b, const char *s) { nb_put(b, s, strlen(s)); }

void nb_printf(nb_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || !reserve(b, (size_t)n))
    return;
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void nb_put_html(nb_buf *b, const char *s, size_t n) {
  size_t run = 0; /* bytes since the last escape, copied in one go */
  for (size_t i = 0; i < n; i++) {
    const char *esc = NULL;
    switch (s[i]) {
    case '&':
      esc = "&amp;";
      break;
    case '<':
      esc = "&lt;";
      break;
    case '>':
      esc = "&gt;";
      break;
    case '"':
      esc = "&quot;";
      break;
    case '\'':
      esc = "&#39;";
      break;
    default:
      run++;
      continue;
    }
    nb_put(b, s + i - run, run);
    run = 0;
    nb_puts(b, esc);
  }
  nb_put(b, s + n - run, run);
}

void nb_put_base64(nb_buf *b, const uint8_t *d, size_t n) {
  static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (!reserve(b, (n + 2) / 3 * 4))
    return;
  char *o = b->p + b->len;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
    *o++ = digits[v >> 18];
    *o++ = digits[(v >> 12) & 63];
    *o++ = digits[(v >> 6) & 63];
    *o++ = digits[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0);
    *o++ = digits[v >> 18];
    *o++ = digits[(v >> 12) & 63];
    *o++ = i + 1 < n ? digits[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
  b->len = (size_t)(o - b->p);
  b->p[b->len] = '\0';
}

void nb_buf_free(nb_buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

/* ---- UTF-8 ------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c < 0x80)
    return 1;
  size_t len;
  unsigned min;
  if ((c & 0xE0) == 0xC0)
    len = 2, min = 0x80;
  else if ((c & 0xF0) == 0xE0)
    len = 3, min = 0x800;
  else if ((c & 0xF8) == 0xF0)
    len = 4, min = 0x10000;
  else
    return 0;
  if (len > n)
    return 0;
  unsigned cp = c & (0x7F >> len);
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    cp = cp << 6 | (s[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

char *nb_utf8_dup(const char *s, size_t n, size_t *out_len) {
  char *out = malloc(n * 3 + 1); /* each bad byte may become 3 */
  if (!out)
    return NULL;
  const unsigned char *u = (const unsigned char *)s;
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    if (u[i] == 0) {
      i++;
      continue;
    }
    size_t k = utf8_seq(u + i, n - i);
    if (k) {
      memcpy(out + o, s + i, k);
      o += k;
      i += k;
    } else {
      memcpy(out + o, "\xEF\xBF\xBD", 3);
      o += 3;
      i++;
    }
  }
  out[o] = '\0';
  if (out_len)
    *out_len = o;
  return out;
}

/* ---- terminal output --------------------------------------------------- */

/* Skips the escape sequence starting at s[i] == ESC; returns the index after it. */
static size_t skip_escape(const char *s, size_t n, size_t i) {
  i++;
  if (i >= n)
    return i;
  char kind = s[i++];
  if (kind == '[') { /* CSI: parameters, intermediates, one final byte */
    while (i < n && (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] <= 0x3F)
      i++;
    while (i < n && (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] <= 0x2F)
      i++;
    return i < n ? i + 1 : i;
  }
  if (kind == ']' || kind == 'P' || kind == '_' || kind == '^' || kind == 'X') {
    /* A string (OSC titles, kitty's inline images) up to BEL or ESC '\'. */
    while (i < n) {
      if (s[i] == '\a')
        return i + 1;
      if (s[i] == '\x1b' && i + 1 < n && s[i + 1] == '\\')
        return i + 2;
      i++;
    }
    return i;
  }
  return i; /* a two-byte sequence */
}

size_t nb_clean_stream(char *s, size_t n) {
  size_t o = 0, line_start = 0;
  int cr = 0;
  for (size_t i = 0; i < n;) {
    char c = s[i];
    if (c == '\x1b') {
      i = skip_escape(s, n, i);
      continue;
    }
    i++;
    if (c == '\r') {
      cr = 1;
      continue;
    }
    if (cr) {
      cr = 0;
      if (c != '\n')
        o = line_start; /* the line is redrawn: forget what was on it */
    }
    if (c == '\b') {
      if (o > line_start)
        o--;
      continue;
    }
    s[o++] = c;
    if (c == '\n')
      line_start = o;
  }
  if (cr)
    s[o++] = '\r';
  return o;
}

/* engine/clip_ftfy.c — ftfy.fix_text and the fixers it applies after fix_encoding.
 *
 * Mirrors ftfy/__init__.py (fix_text, fix_and_explain) and ftfy/fixes.py;
 * fix_encoding lives in clip_ftfy_encoding.c, is_bad in clip_ftfy_badness.c.
 */
#include "engine/clip_ftfy.h"

#include <stdlib.h>
#include <string.h>

#include "engine/clip_ftfy_tables.h" // sdr_ftfy_entities, sdr_ftfy_width, ...
#include "engine/unicode.h"          // sdr_uni_nfc, sdr_uni_py_isdecimal

/* TextFixerConfig.max_decode_length: longer lines are fixed in pieces. */
enum { MAX_DECODE_LENGTH = 1000000 };

/* ---- unescape_html ------------------------------------------------------- */

static const char *find_entity(const char *name) {
  size_t lo = 0, hi = sdr_ftfy_entities_count;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(name, sdr_ftfy_entities[mid].name);
    if (c < 0)
      hi = mid;
    else if (c > 0)
      lo = mid + 1;
    else
      return sdr_ftfy_entities[mid].text;
  }
  return NULL;
}

static int is_ascii_alnum(uint32_t c) {
  return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

static int hex_value(uint32_t c) {
  if (c >= '0' && c <= '9')
    return (int)(c - '0');
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
    return (int)((c | 0x20) - 'a' + 10);
  return -1;
}

/* html.unescape of "&#<body>;" when body is all decimal digits, or x/X and
 * all hex digits (otherwise html.unescape leaves a ';' behind and ftfy keeps
 * the text): _replace_charref's rules. Returns the code point, 0 for "nothing"
 * (an invalid code point is dropped), or -1 when ftfy keeps the text. */
static long numeric_reference(const uint32_t *body, size_t n) {
  int hex = body[0] == 'x' || body[0] == 'X';
  size_t i = hex ? 1 : 0;
  if (i == n)
    return -1;
  unsigned long long num = 0;
  for (; i < n; i++) {
    int d =
        hex ? hex_value(body[i]) : (body[i] >= '0' && body[i] <= '9' ? (int)(body[i] - '0') : -1);
    if (d < 0)
      return -1;
    if (num <= 0x10FFFF)
      num = num * (hex ? 16 : 10) + (unsigned)d; /* saturates: any larger is U+FFFD anyway */
  }
  for (size_t k = 0; k < sdr_ftfy_invalid_charrefs_count; k++)
    if (sdr_ftfy_invalid_charrefs[k].cp == num)
      return (long)sdr_ftfy_invalid_charrefs[k].value;
  if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF)
    return 0xFFFD;
  for (size_t k = 0; k < sdr_ftfy_invalid_codepoints_count; k++)
    if (num >= sdr_ftfy_invalid_codepoints[k].lo && num <= sdr_ftfy_invalid_codepoints[k].hi)
      return 0;
  if (num == ';') /* the result holds a ';': ftfy takes it for a partial decode */
    return -1;
  return (long)num;
}

/* HTML_ENTITY_RE = &#?[0-9A-Za-z]{1,24}; then _unescape_fixup. */
int sdr_ftfy_unescape_html(const uint32_t *s, size_t n, sdr_u32str *out) {
  size_t i = 0;
  while (i < n) {
    if (s[i] != '&') {
      if (sdr_u32_push(out, s[i]))
        return -1;
      i++;
      continue;
    }
    size_t j = i + 1;
    int numeric = j < n && s[j] == '#';
    if (numeric)
      j++;
    size_t body = j;
    while (j < n && j - body < 24 && is_ascii_alnum(s[j]))
      j++;
    if (j == body || j >= n || s[j] != ';') {
      if (sdr_u32_push(out, s[i]))
        return -1;
      i++;
      continue;
    }
    /* Matched s[i..j]: "&" "#"? body ";" */
    char name[32];
    size_t len = 0;
    if (numeric)
      name[len++] = '#';
    for (size_t k = body; k < j; k++)
      name[len++] = (char)s[k];
    name[len] = 0;
    const char *ent = numeric ? NULL : find_entity(name);
    int done = 0;
    if (ent) {
      done = sdr_u32_append_utf8(out, ent) ? -1 : 1;
    } else if (numeric) {
      long cp = numeric_reference(s + body, j - body);
      if (cp > 0)
        done = sdr_u32_push(out, (uint32_t)cp) ? -1 : 1;
      else if (cp == 0)
        done = 1;
    }
    if (done < 0)
      return -1;
    if (!done && sdr_u32_append(out, s + i, j + 1 - i))
      return -1;
    i = j + 1;
  }
  return 0;
}

/* ---- the fixers after fix_encoding ---------------------------------------- */

/* fix_c1_controls: U+0080..U+009F as sloppy-windows-1252 reads the byte. */
static uint32_t c1_to_1252(uint32_t c) {
  return (c >= 0x80 && c <= 0x9F) ? sdr_ftfy_charmaps[1].high[c - 0x80] /* sloppy-windows-1252 */
                                  : c;
}

static const char *translation(const sdr_ftfy_translation *t, size_t n, uint32_t cp) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (cp < t[mid].cp)
      hi = mid;
    else if (cp > t[mid].cp)
      lo = mid + 1;
    else
      return t[mid].text;
  }
  return NULL;
}

/* str.translate with a table of code point -> text (LIGATURES, WIDTH_MAP). */
static int translate(const uint32_t *s, size_t n, const sdr_ftfy_translation *t, size_t tn,
                     uint32_t lo, uint32_t hi, sdr_u32str *out) {
  for (size_t i = 0; i < n; i++) {
    const char *to = s[i] >= lo && s[i] <= hi ? translation(t, tn, s[i]) : NULL;
    if (to ? sdr_u32_append_utf8(out, to) : sdr_u32_push(out, s[i]))
      return -1;
  }
  return 0;
}

/* uncurl_quotes: [\u02bc\u2018-\u201b] -> ', [\u201c-\u201f] -> " */
static uint32_t uncurl(uint32_t c) {
  if (c == 0x2BC || (c >= 0x2018 && c <= 0x201B))
    return '\'';
  if (c >= 0x201C && c <= 0x201F)
    return '"';
  return c;
}

/* fix_line_breaks: \r\n, \r, U+2028, U+2029, U+0085 -> \n */
static int fix_line_breaks(const uint32_t *s, size_t n, sdr_u32str *out) {
  for (size_t i = 0; i < n; i++) {
    uint32_t c = s[i];
    if (c == '\r' && i + 1 < n && s[i + 1] == '\n')
      continue; /* the \n follows */
    if (c == '\r' || c == 0x2028 || c == 0x2029 || c == 0x85)
      c = '\n';
    if (sdr_u32_push(out, c))
      return -1;
  }
  return 0;
}

/* fix_surrogates: a high and a low surrogate make one code point; a lone one
 * becomes U+FFFD. (Decoded UTF-8 holds none; kept for completeness.) */
static int fix_surrogates(const uint32_t *s, size_t n, sdr_u32str *out) {
  for (size_t i = 0; i < n; i++) {
    uint32_t c = s[i];
    if (c >= 0xD800 && c <= 0xDBFF && i + 1 < n && s[i + 1] >= 0xDC00 && s[i + 1] <= 0xDFFF) {
      c = 0x10000 + ((c - 0xD800) << 10) + (s[i + 1] - 0xDC00);
      i++;
    } else if (c >= 0xD800 && c <= 0xDFFF) {
      c = 0xFFFD;
    }
    if (sdr_u32_push(out, c))
      return -1;
  }
  return 0;
}

/* remove_terminal_escapes: ANSI_RE = \033\[((?:\d|;)*)([a-zA-Z]), \d being Unicode digits. */
static int remove_terminal_escapes(const uint32_t *s, size_t n, sdr_u32str *out) {
  for (size_t i = 0; i < n; i++) {
    if (s[i] == 0x1B && i + 1 < n && s[i + 1] == '[') {
      size_t j = i + 2;
      while (j < n && (s[j] == ';' || sdr_uni_py_isdecimal(s[j])))
        j++;
      if (j < n && s[j] < 0x80 && (s[j] | 0x20) >= 'a' && (s[j] | 0x20) <= 'z') {
        i = j;
        continue;
      }
    }
    if (sdr_u32_push(out, s[i]))
      return -1;
  }
  return 0;
}

/* remove_control_chars: chardata.CONTROL_CHARS (the table script checks the list). */
static int is_removed_control(uint32_t c) {
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
         (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

/* ---- fix_and_explain, fix_text -------------------------------------------- */

typedef int (*fixer)(const uint32_t *s, size_t n, sdr_u32str *out);

static int fix_c1_controls(const uint32_t *s, size_t n, sdr_u32str *out) {
  if (sdr_u32_reserve(out, n))
    return -1;
  for (size_t i = 0; i < n; i++)
    out->v[out->n++] = c1_to_1252(s[i]);
  return 0;
}

static int fix_latin_ligatures(const uint32_t *s, size_t n, sdr_u32str *out) {
  return translate(s, n, sdr_ftfy_ligatures, sdr_ftfy_ligatures_count, 0x132, 0xFB06, out);
}

static int fix_character_width(const uint32_t *s, size_t n, sdr_u32str *out) {
  return translate(s, n, sdr_ftfy_width, sdr_ftfy_width_count, 0x3000, 0xFFEF, out);
}

static int uncurl_quotes(const uint32_t *s, size_t n, sdr_u32str *out) {
  if (sdr_u32_reserve(out, n))
    return -1;
  for (size_t i = 0; i < n; i++)
    out->v[out->n++] = uncurl(s[i]);
  return 0;
}

static int remove_control_chars(const uint32_t *s, size_t n, sdr_u32str *out) {
  for (size_t i = 0; i < n; i++)
    if (!is_removed_control(s[i]) && sdr_u32_push(out, s[i]))
      return -1;
  return 0;
}

/* Runs one fixer from *cur into *tmp, then swaps them. */
static int apply(fixer f, sdr_u32str *cur, sdr_u32str *tmp) {
  tmp->n = 0;
  if (f(cur->v, cur->n, tmp))
    return -1;
  sdr_u32str t = *cur;
  *cur = *tmp;
  *tmp = t;
  return 0;
}

static int same(const sdr_u32str *a, const sdr_u32str *b) {
  return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof *a->v) == 0);
}

/* fix_and_explain(segment) with the default config: repeat until unchanged. */
static int fix_segment(const uint32_t *s, size_t n, int unescape, sdr_u32str *out) {
  static const fixer after_encoding[] = {
      fix_c1_controls,         fix_latin_ligatures,  fix_character_width,
      uncurl_quotes,           fix_line_breaks,      fix_surrogates,
      remove_terminal_escapes, remove_control_chars, sdr_uni_nfc,
  };
  sdr_u32str cur = {0}, tmp = {0}, orig = {0};
  int rc = -1;
  if (sdr_u32_append(&cur, s, n))
    goto done;
  for (;;) {
    orig.n = 0;
    if (sdr_u32_append(&orig, cur.v, cur.n))
      goto done;
    if (unescape && apply(sdr_ftfy_unescape_html, &cur, &tmp))
      goto done;
    if (apply(sdr_ftfy_fix_encoding, &cur, &tmp))
      goto done;
    for (size_t k = 0; k < sizeof after_encoding / sizeof *after_encoding; k++)
      if (apply(after_encoding[k], &cur, &tmp))
        goto done;
    if (same(&cur, &orig))
      break;
  }
  rc = sdr_u32_append(out, cur.v, cur.n);
done:
  sdr_u32_free(&cur);
  sdr_u32_free(&tmp);
  sdr_u32_free(&orig);
  return rc;
}

int sdr_ftfy_fix_text(const uint32_t *s, size_t n, sdr_u32str *out) {
  int unescape = 1; /* "auto": on until a segment holds '<', then off for good */
  size_t pos = 0;
  while (pos < n) {
    size_t end = pos;
    while (end < n && s[end] != '\n')
      end++;
    end = end < n ? end + 1 : n;
    if (end - pos > MAX_DECODE_LENGTH)
      end = pos + MAX_DECODE_LENGTH;
    for (size_t i = pos; i < end && unescape; i++)
      if (s[i] == '<')
        unescape = 0;
    if (fix_segment(s + pos, end - pos, unescape, out))
      return -1;
    pos = end;
  }
  return 0;
}

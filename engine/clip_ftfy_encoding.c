/* engine/clip_ftfy_encoding.c — ftfy.fix_encoding: undo mojibake.
 *
 * Mirrors ftfy/__init__.py's _fix_encoding_one_step_and_explain, repeated
 * until the text stops changing, with its helpers: chardata.possible_encoding,
 * the sloppy codecs (bad_codecs/sloppy.py), utf-8-variants
 * (bad_codecs/utf8_variants.py), fixes.restore_byte_a0,
 * fixes.replace_lossy_sequences and fixes.decode_inconsistent_utf8.
 */
#include "engine/clip_ftfy.h"

#include <string.h>

#include "engine/clip_ftfy_tables.h" // sdr_ftfy_charmaps, SDR_FTFY_UTF8_*

/* Indices in CHARMAP_ENCODINGS (the table script checks them). */
enum { SLOPPY_1252 = 1, MACROMAN = 7 };

/* ---- the single-byte codecs --------------------------------------------- */

/* The byte cp encodes to in codec m, or -1. Below 0x80 everything is ASCII,
 * except that the sloppy codecs trade 0x1A for U+FFFD. */
static int encode_char(const sdr_ftfy_charmap *m, uint32_t cp) {
  if (m->sloppy && cp == 0xFFFD)
    return 0x1A;
  if (cp < 0x80)
    return m->sloppy && cp == 0x1A ? -1 : (int)cp;
  for (int b = 0; b < 128; b++)
    if (m->high[b] == cp)
      return 0x80 + b;
  return -1;
}

/* chardata.possible_encoding: could the text have come from this codec? */
static int possible(const sdr_ftfy_charmap *m, const uint32_t *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (encode_char(m, s[i]) < 0)
      return 0;
  return 1;
}

static int encode(const sdr_ftfy_charmap *m, const uint32_t *s, size_t n, sdr_bytes *out) {
  for (size_t i = 0; i < n; i++)
    if (sdr_bytes_push(out, (uint8_t)encode_char(m, s[i])))
      return -1;
  return 0;
}

/* ---- byte transcoders ------------------------------------------------------ */

static int in(uint8_t b, uint8_t lo, uint8_t hi) { return b >= lo && b <= hi; }

/* [\x80-\x84\x86-\x9f\xa1-\xbf]: a continuation byte other than 0x85 and 0xA0. */
static int cont_not_space(uint8_t b) { return in(b, 0x80, 0xBF) && b != 0x85 && b != 0xA0; }

/* Length of the ALTERED_UTF8_RE match at p (alternatives in order), or 0. */
static size_t altered_utf8_at(const uint8_t *p, size_t n) {
  uint8_t b0 = p[0];
  if (n >= 2 &&
      (b0 == 0xC2 || b0 == 0xC3 || b0 == 0xC5 || b0 == 0xCE || b0 == 0xD0 || b0 == 0xD9) &&
      p[1] == ' ')
    return 2;
  if (n >= 3 && (b0 == 0xE2 || b0 == 0xE3) && p[1] == ' ' && cont_not_space(p[2]))
    return 3;
  if (n >= 3 && in(b0, 0xE0, 0xE3) && cont_not_space(p[1]) && p[2] == ' ')
    return 3;
  if (n >= 4 && b0 == 0xF0) {
    int spaces = 0, conts = 0;
    for (int k = 1; k < 4; k++) {
      spaces += p[k] == ' ';
      conts += in(p[k], 0x80, 0xBF);
    }
    if (spaces == 1 && conts == 2)
      return 4;
  }
  return 0;
}

static int altered_utf8_search(const sdr_bytes *b) {
  for (size_t i = 0; i < b->n; i++)
    if (altered_utf8_at(b->v + i, b->n - i))
      return 1;
  return 0;
}

static int starts_with(const uint8_t *p, size_t n, const char *lit) {
  size_t k = strlen(lit);
  return n >= k && memcmp(p, lit, k) == 0;
}

/* fixes.restore_byte_a0: first A_GRAVE_WORD_RE (\xc3 followed by a space,
 * then none of " ", "quele", "quela", "quilo", "s ") gains an \xa0 before
 * the space; then the spaces inside ALTERED_UTF8_RE matches become \xa0. */
static int restore_byte_a0(const sdr_bytes *in_, sdr_bytes *out) {
  sdr_bytes mid = {0};
  const uint8_t *p = in_->v;
  size_t n = in_->n;
  for (size_t i = 0; i < n; i++) {
    if (p[i] == 0xC3 && i + 1 < n && p[i + 1] == ' ') {
      const uint8_t *r = p + i + 2;
      size_t rn = n - i - 2;
      if (!(starts_with(r, rn, " ") || starts_with(r, rn, "quele") || starts_with(r, rn, "quela") ||
            starts_with(r, rn, "quilo") || starts_with(r, rn, "s "))) {
        if (sdr_bytes_append(&mid, "\xc3\xa0 ", 3))
          goto oom;
        i++;
        continue;
      }
    }
    if (sdr_bytes_push(&mid, p[i]))
      goto oom;
  }
  for (size_t i = 0; i < mid.n;) {
    size_t len = altered_utf8_at(mid.v + i, mid.n - i);
    if (len == 0)
      len = 1;
    else
      for (size_t k = i; k < i + len; k++)
        if (mid.v[k] == ' ')
          mid.v[k] = 0xA0;
    if (sdr_bytes_append(out, mid.v + i, len))
      goto oom;
    i += len;
  }
  sdr_bytes_free(&mid);
  return 0;
oom:
  sdr_bytes_free(&mid);
  return -1;
}

/* Length of the LOSSY_UTF8_RE match at p (alternatives in order), or 0.
 * 0x1A stands for a byte the sloppy codec lost (it was U+FFFD). */
static size_t lossy_at(const uint8_t *p, size_t n) {
#define B(k) (k < n ? p[k] : 0)
#define SUB(k) (k < n && p[k] == 0x1A)
#define SUBQ(k) (k < n && (p[k] == 0x1A || p[k] == '?'))
#define SUBC(k) (k < n && (p[k] == 0x1A || in(p[k], 0x80, 0xBF)))
#define SUBQC(k) (k < n && (p[k] == 0x1A || p[k] == '?' || in(p[k], 0x80, 0xBF)))
  uint8_t b0 = p[0];
  if (in(b0, 0xC2, 0xDF) && SUB(1))
    return 2;
  if (in(b0, 0xC2, 0xC3) && B(1) == '?' && n > 1)
    return 2;
  if (b0 == 0xED && n >= 6 && in(p[1], 0xA0, 0xAF) && SUBQ(2) && p[3] == 0xED &&
      in(p[4], 0xB0, 0xBF) && SUBQC(5))
    return 6;
  if (b0 == 0xED && n >= 6 && in(p[1], 0xA0, 0xAF) && SUBQC(2) && p[3] == 0xED &&
      in(p[4], 0xB0, 0xBF) && SUBQ(5))
    return 6;
  if (in(b0, 0xE0, 0xEF) && SUBQ(1) && SUBC(2))
    return 3;
  if (in(b0, 0xE0, 0xEF) && SUBC(1) && SUBQ(2))
    return 3;
  if (in(b0, 0xF0, 0xF4) && SUBQ(1) && SUBC(2) && SUBC(3))
    return 4;
  if (in(b0, 0xF0, 0xF4) && SUBC(1) && SUBQ(2) && SUBC(3))
    return 4;
  if (in(b0, 0xF0, 0xF4) && SUBC(1) && SUBC(2) && SUBQ(3))
    return 4;
  if (b0 == 0x1A)
    return 1;
  return 0;
#undef B
#undef SUB
#undef SUBQ
#undef SUBC
#undef SUBQC
}

/* fixes.replace_lossy_sequences: each such sequence becomes U+FFFD's UTF-8. */
static int replace_lossy_sequences(const sdr_bytes *in_, sdr_bytes *out) {
  for (size_t i = 0; i < in_->n;) {
    size_t len = lossy_at(in_->v + i, in_->n - i);
    if (len ? sdr_bytes_append(out, "\xef\xbf\xbd", 3) : sdr_bytes_push(out, in_->v[i]))
      return -1;
    i += len ? len : 1;
  }
  return 0;
}

/* ---- decoding as UTF-8 or utf-8-variants ---------------------------------- */

/* Does p start with what SPECIAL_BYTES_RE matches (in Python's bytes regex,
 * '$' also matches just before a final '\n')? */
static int at_end(size_t k, const uint8_t *p, size_t n) {
  return k == n || (k + 1 == n && p[k] == '\n');
}

static int cesu8_at(const uint8_t *p, size_t n) {
  static const uint8_t lo[6] = {0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80};
  static const uint8_t hi[6] = {0xED, 0xAF, 0xBF, 0xED, 0xBF, 0xBF};
  for (size_t k = 0; k < 6; k++)
    if (!(k < n && in(p[k], lo[k], hi[k])) && !(k > 0 && at_end(k, p, n)))
      return 0;
  return 1;
}

static int special_at(const uint8_t *p, size_t n) {
  if (p[0] == 0xC0)
    return (n > 1 && p[1] == 0x80) || at_end(1, p, n);
  if (p[0] != 0xED)
    return 0;
  if (cesu8_at(p, n))
    return 1;
  /* SURROGATE_EXPR: \xed([\xa0-\xbf]|$)([\x80-\xbf]|$) */
  size_t k = 1;
  if (n > 1 && in(p[1], 0xA0, 0xBF))
    k = 2;
  else if (!at_end(1, p, n))
    return 0;
  return (k < n && in(p[k], 0x80, 0xBF)) || at_end(k, p, n);
}

/* ftfy's utf-8-variants codec (strict): UTF-8, plus CESU-8 surrogate pairs
 * and Java's C0 80 for NUL. Returns 1 when it would raise. */
static int decode_utf8_variants(const uint8_t *p, size_t n, sdr_u32str *out) {
  size_t pos = 0;
  while (pos < n) {
    size_t cut = pos;
    while (cut < n && !special_at(p + cut, n - cut))
      cut++;
    if (cut > pos) {
      int rc = sdr_utf8_decode_strict(p + pos, cut - pos, out);
      if (rc)
        return rc;
      pos = cut;
      continue;
    }
    const uint8_t *q = p + pos;
    size_t left = n - pos;
    if (q[0] == 0xC0) {
      if (left == 1)
        return 1;
      if (sdr_u32_push(out, 0))
        return -1;
      pos += 2;
    } else if (left >= 6 && cesu8_at(q, left)) {
      uint32_t cp = (((uint32_t)q[1] & 0x0F) << 16) + (((uint32_t)q[2] & 0x3F) << 10) +
                    (((uint32_t)q[4] & 0x0F) << 6) + ((uint32_t)q[5] & 0x3F) + 0x10000;
      if (sdr_u32_push(out, cp))
        return -1;
      pos += 6;
    } else {
      return 1; /* an encoded surrogate on its own: the real decoder raises */
    }
  }
  return 0;
}

/* ---- decode_inconsistent_utf8 ------------------------------------------------ */

#define CLUE(c, bit) (sdr_ftfy_class(c) & SDR_FTFY_##bit)

/* UTF8_DETECTOR_RE at s[i]: ( [first_of_2][cont] | [first_of_3][cont]{2} |
 * [first_of_4][cont]{3} )+ , greedy; the alternatives are tried in order. */
static size_t utf8_detector_at(const uint32_t *s, size_t n, size_t i) {
  static const uint32_t firsts[3] = {SDR_FTFY_UTF8_FIRST_OF_2, SDR_FTFY_UTF8_FIRST_OF_3,
                                     SDR_FTFY_UTF8_FIRST_OF_4};
  size_t pos = i;
  for (;;) {
    size_t step = 0;
    for (size_t a = 0; a < 3 && !step; a++) {
      size_t len = a + 2;
      if (pos + len > n || !(sdr_ftfy_class(s[pos]) & firsts[a]))
        continue;
      size_t k = 1;
      while (k < len && CLUE(s[pos + k], UTF8_CONTINUATION))
        k++;
      if (k == len)
        step = len;
    }
    if (!step)
      break;
    pos += step;
  }
  return pos - i;
}

static int utf8_detector_search(const uint32_t *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!(i > 0 && CLUE(s[i - 1], UTF8_CONTINUATION_STRICT)) && utf8_detector_at(s, n, i))
      return 1;
  return 0;
}

/* fixes.decode_inconsistent_utf8: fix each UTF-8-looking run on its own,
 * when it is shorter than the whole and looks bad by itself. */
static int decode_inconsistent_utf8(const uint32_t *s, size_t n, sdr_u32str *out) {
  for (size_t i = 0; i < n;) {
    size_t len = 0;
    if (!(i > 0 && CLUE(s[i - 1], UTF8_CONTINUATION_STRICT)))
      len = utf8_detector_at(s, n, i);
    if (!len) {
      if (sdr_u32_push(out, s[i]))
        return -1;
      i++;
      continue;
    }
    int rc = (len < n && sdr_ftfy_is_bad(s + i, len)) ? sdr_ftfy_fix_encoding(s + i, len, out)
                                                      : sdr_u32_append(out, s + i, len);
    if (rc)
      return -1;
    i += len;
  }
  return 0;
}

/* ---- one step, and the loop ------------------------------------------------ */

static int is_ascii(const uint32_t *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] >= 0x80)
      return 0;
  return 1;
}

static int contains_byte(const sdr_bytes *b, uint8_t x) {
  return b->n && memchr(b->v, x, b->n) != NULL;
}

/* Tries codec m: encode, transcode, decode. 1: *out holds the fixed text;
 * 0: the decode raised; -1: out of memory. */
static int try_codec(size_t idx, const uint32_t *s, size_t n, sdr_u32str *out) {
  const sdr_ftfy_charmap *m = &sdr_ftfy_charmaps[idx];
  sdr_bytes b = {0}, t = {0};
  int rc = -1;
  if (encode(m, s, n, &b))
    goto done;
  if (idx != MACROMAN && altered_utf8_search(&b)) {
    if (restore_byte_a0(&b, &t))
      goto done;
    sdr_bytes x = b;
    b = t;
    t = x;
    t.n = 0;
  }
  if (m->sloppy) {
    if (replace_lossy_sequences(&b, &t))
      goto done;
    sdr_bytes x = b;
    b = t;
    t = x;
  }
  size_t mark = out->n;
  int bad = (contains_byte(&b, 0xED) || contains_byte(&b, 0xC0))
                ? decode_utf8_variants(b.v, b.n, out)
                : sdr_utf8_decode_strict(b.v, b.n, out);
  if (bad < 0)
    goto done;
  if (bad)
    out->n = mark;
  rc = bad ? 0 : 1;
done:
  sdr_bytes_free(&b);
  sdr_bytes_free(&t);
  return rc;
}

/* _fix_encoding_one_step_and_explain: appends the result to out. */
static int one_step(const uint32_t *s, size_t n, sdr_u32str *out) {
  if (n == 0 || is_ascii(s, n) || !sdr_ftfy_is_bad(s, n))
    return sdr_u32_append(out, s, n);
  for (size_t e = 0; e < sdr_ftfy_charmaps_count; e++) {
    if (!possible(&sdr_ftfy_charmaps[e], s, n))
      continue;
    int rc = try_codec(e, s, n, out);
    if (rc)
      return rc < 0 ? -1 : 0;
  }
  if (utf8_detector_search(s, n)) {
    size_t mark = out->n;
    if (decode_inconsistent_utf8(s, n, out))
      return -1;
    if (out->n - mark != n || memcmp(out->v + mark, s, n * sizeof *s) != 0)
      return 0;
    out->n = mark;
  }
  /* Then ftfy tries latin-1 -> windows-1252 when latin-1 was possible
   * ("windows-1252" itself is never in the list), and else fix_c1_controls.
   * Either way each C1 character becomes what windows-1252 makes of its byte
   * (the strict decode raises on the five undefined ones, and the sloppy
   * fallback keeps them), so both come to the one mapping below. */
  int has_c1 = 0;
  for (size_t i = 0; i < n && !has_c1; i++)
    has_c1 = s[i] >= 0x80 && s[i] <= 0x9F;
  if (!has_c1)
    return sdr_u32_append(out, s, n);
  if (sdr_u32_reserve(out, n))
    return -1;
  for (size_t i = 0; i < n; i++) {
    uint32_t c = s[i];
    out->v[out->n++] = (c >= 0x80 && c <= 0x9F) ? sdr_ftfy_charmaps[SLOPPY_1252].high[c - 0x80] : c;
  }
  return 0;
}

int sdr_ftfy_fix_encoding(const uint32_t *s, size_t n, sdr_u32str *out) {
  sdr_u32str cur = {0}, next = {0};
  if (sdr_u32_append(&cur, s, n))
    return -1;
  for (;;) {
    next.n = 0;
    if (one_step(cur.v, cur.n, &next))
      goto oom;
    int changed = next.n != cur.n || (cur.n && memcmp(next.v, cur.v, cur.n * sizeof *cur.v) != 0);
    sdr_u32str x = cur;
    cur = next;
    next = x;
    if (!changed)
      break;
  }
  int rc = sdr_u32_append(out, cur.v, cur.n);
  sdr_u32_free(&cur);
  sdr_u32_free(&next);
  return rc;
oom:
  sdr_u32_free(&cur);
  sdr_u32_free(&next);
  return -1;
}

/* engine/unicode.c — NFC, str.lower and character classes over generated tables. */
#include "engine/unicode.h"

#include "engine/unicode_tables.h" // the data, generated from the reference Python

static int in_ranges(const sdr_uni_range *r, size_t n, uint32_t cp) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (cp < r[mid].lo)
      hi = mid;
    else if (cp > r[mid].hi)
      lo = mid + 1;
    else
      return 1;
  }
  return 0;
}

static int range_value(const sdr_uni_range_value *r, size_t n, uint32_t cp) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (cp < r[mid].lo)
      hi = mid;
    else if (cp > r[mid].hi)
      lo = mid + 1;
    else
      return r[mid].value;
  }
  return 0;
}

static const sdr_uni_expansion *find_expansion(const sdr_uni_expansion *e, size_t n, uint32_t cp) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (cp < e[mid].cp)
      hi = mid;
    else if (cp > e[mid].cp)
      lo = mid + 1;
    else
      return &e[mid];
  }
  return NULL;
}

static const sdr_uni_map *find_map(const sdr_uni_map *m, size_t n, uint32_t cp) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (cp < m[mid].cp)
      hi = mid;
    else if (cp > m[mid].cp)
      lo = mid + 1;
    else
      return &m[mid];
  }
  return NULL;
}

int sdr_uni_py_isspace(uint32_t cp) {
  if (cp < 0x80)
    return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
  return in_ranges(sdr_unitab_py_space, sdr_unitab_py_space_count, cp);
}

int sdr_uni_py_isalnum(uint32_t cp) {
  if (cp < 0x80)
    return (cp >= '0' && cp <= '9') || ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z');
  return in_ranges(sdr_unitab_py_alnum, sdr_unitab_py_alnum_count, cp);
}

int sdr_uni_py_isdecimal(uint32_t cp) {
  return in_ranges(sdr_unitab_py_decimal, sdr_unitab_py_decimal_count, cp);
}

int sdr_uni_re_isspace(uint32_t cp) {
  return in_ranges(sdr_unitab_re_space, sdr_unitab_re_space_count, cp);
}

int sdr_uni_ccc(uint32_t cp) {
  return cp < 0x300 ? 0 : range_value(sdr_unitab_ccc, sdr_unitab_ccc_count, cp);
}

int sdr_uni_clip_class(uint32_t cp) {
  return range_value(sdr_unitab_clip_class, sdr_unitab_clip_class_count, cp);
}

int sdr_uni_clip_literal(uint32_t cp, char c) {
  uint32_t lc = (uint32_t)(unsigned char)c;
  if (cp == lc)
    return 1;
  if (lc >= 'a' && lc <= 'z' && cp == lc - 0x20)
    return 1;
  for (size_t i = 0; i < sdr_unitab_clip_literal_alias_count; i++)
    if (sdr_unitab_clip_literal_alias[i].cp == lc && sdr_unitab_clip_literal_alias[i].other == cp)
      return 1;
  return 0;
}

/* ---- NFC (UAX #15: decompose, reorder, compose) ---------------------------- */

/* Hangul syllables decompose and compose by arithmetic, not by table. */
enum {
  HANGUL_S = 0xAC00,
  HANGUL_L = 0x1100,
  HANGUL_V = 0x1161,
  HANGUL_T = 0x11A7,
  HANGUL_LCOUNT = 19,
  HANGUL_VCOUNT = 21,
  HANGUL_TCOUNT = 28,
  HANGUL_NCOUNT = HANGUL_VCOUNT * HANGUL_TCOUNT,
  HANGUL_SCOUNT = HANGUL_LCOUNT * HANGUL_NCOUNT,
};

static int decompose(uint32_t cp, sdr_u32str *out) {
  if (cp >= HANGUL_S && cp < HANGUL_S + HANGUL_SCOUNT) {
    uint32_t s = cp - HANGUL_S;
    if (sdr_u32_push(out, HANGUL_L + s / HANGUL_NCOUNT) ||
        sdr_u32_push(out, HANGUL_V + (s % HANGUL_NCOUNT) / HANGUL_TCOUNT))
      return -1;
    return s % HANGUL_TCOUNT ? sdr_u32_push(out, HANGUL_T + s % HANGUL_TCOUNT) : 0;
  }
  const sdr_uni_expansion *e =
      cp < 0xC0 ? NULL : find_expansion(sdr_unitab_nfd, sdr_unitab_nfd_count, cp);
  if (e)
    return sdr_u32_append(out, sdr_unitab_nfd_pool + e->off, e->len);
  return sdr_u32_push(out, cp);
}

/* The primary composite of a and b, or 0. */
static uint32_t compose(uint32_t a, uint32_t b) {
  if (a >= HANGUL_L && a < HANGUL_L + HANGUL_LCOUNT && b >= HANGUL_V &&
      b < HANGUL_V + HANGUL_VCOUNT)
    return HANGUL_S + ((a - HANGUL_L) * HANGUL_VCOUNT + (b - HANGUL_V)) * HANGUL_TCOUNT;
  if (a >= HANGUL_S && a < HANGUL_S + HANGUL_SCOUNT && (a - HANGUL_S) % HANGUL_TCOUNT == 0 &&
      b > HANGUL_T && b < HANGUL_T + HANGUL_TCOUNT)
    return a + (b - HANGUL_T);
  size_t lo = 0, hi = sdr_unitab_compose_count;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    const sdr_uni_pair *p = &sdr_unitab_compose[mid];
    if (a < p->first || (a == p->first && b < p->second))
      hi = mid;
    else if (a > p->first || b > p->second)
      lo = mid + 1;
    else
      return p->composed;
  }
  return 0;
}

int sdr_uni_nfc(const uint32_t *s, size_t n, sdr_u32str *out) {
  /* Nothing below U+0300 decomposes or combines (the table script checks). */
  size_t i = 0;
  while (i < n && s[i] < 0x300)
    i++;
  if (i == n)
    return sdr_u32_append(out, s, n);

  sdr_u32str d = {0};
  for (i = 0; i < n; i++)
    if (decompose(s[i], &d)) {
      sdr_u32_free(&d);
      return -1;
    }
  /* Canonical order: a stable sort by combining class of each run of non-starters. */
  for (i = 1; i < d.n; i++) {
    int c = sdr_uni_ccc(d.v[i]);
    if (c == 0)
      continue;
    uint32_t x = d.v[i];
    size_t j = i;
    while (j > 0 && sdr_uni_ccc(d.v[j - 1]) > c) {
      d.v[j] = d.v[j - 1];
      j--;
    }
    d.v[j] = x;
  }
  /* Compose: a mark joins the last starter unless a mark of the same or a
   * higher class, or a starter, stands between them. */
  size_t base = out->n;
  if (d.n && sdr_u32_reserve(out, d.n)) {
    sdr_u32_free(&d);
    return -1;
  }
  size_t starter = base;
  int have_starter = 0, last_class = 0;
  for (i = 0; i < d.n; i++) {
    uint32_t c = d.v[i];
    int cls = sdr_uni_ccc(c);
    /* last_class is 0 only right after the starter itself. */
    if (have_starter && (last_class < cls || last_class == 0)) {
      uint32_t comp = compose(out->v[starter], c);
      if (comp) {
        out->v[starter] = comp;
        continue;
      }
    }
    if (cls == 0) {
      starter = out->n;
      have_starter = 1;
    }
    last_class = cls;
    out->v[out->n++] = c;
  }
  sdr_u32_free(&d);
  return 0;
}

/* ---- str.lower ---------------------------------------------------------- */

/* CPython's handle_capital_sigma: final form when a cased letter precedes
 * (case-ignorable ones skipped) and no cased letter follows. */
static uint32_t lower_sigma(const uint32_t *s, size_t n, size_t i) {
  size_t j = i;
  int kind = 0;
  while (j > 0) {
    kind = range_value(sdr_unitab_sigma_case, sdr_unitab_sigma_case_count, s[--j]);
    if (kind != 1)
      break;
  }
  int final = j < i && kind == 2;
  if (final) {
    for (j = i + 1; j < n; j++) {
      kind = range_value(sdr_unitab_sigma_case, sdr_unitab_sigma_case_count, s[j]);
      if (kind != 1)
        break;
    }
    final = j == n || kind != 2;
  }
  return final ? 0x3C2 : 0x3C3;
}

int sdr_uni_lower(const uint32_t *s, size_t n, sdr_u32str *out) {
  if (sdr_u32_reserve(out, n))
    return -1;
  for (size_t i = 0; i < n; i++) {
    uint32_t c = s[i];
    if (c < 0x80) {
      if (c >= 'A' && c <= 'Z')
        c += 0x20;
    } else if (c == 0x3A3) {
      c = lower_sigma(s, n, i);
    } else {
      const sdr_uni_map *m = find_map(sdr_unitab_lower, sdr_unitab_lower_count, c);
      if (m) {
        c = m->other;
      } else {
        const sdr_uni_expansion *e =
            find_expansion(sdr_unitab_lower_multi, sdr_unitab_lower_multi_count, c);
        if (e) {
          if (sdr_u32_append(out, sdr_unitab_lower_multi_pool + e->off, e->len))
            return -1;
          continue;
        }
      }
    }
    if (sdr_u32_push(out, c))
      return -1;
  }
  return 0;
}

/* engine/clip_ftfy_badness.c — ftfy.badness.is_bad: does the text look like mojibake?
 *
 * BADNESS_RE is an alternation of short, fixed sequences of character
 * classes; each alternative below is one line of it, in the same order, so
 * the two read side by side. is_bad only asks whether any alternative
 * matches anywhere, so each start position is tried against each one.
 */
#include "engine/clip_ftfy.h"

#include "engine/clip_ftfy_tables.h" // sdr_ftfy_classes, SDR_FTFY_*
#include "engine/unicode.h"          // sdr_uni_py_isspace, sdr_uni_py_isalnum

uint32_t sdr_ftfy_class(uint32_t cp) {
  if (cp < 0x80 && cp != ' ') /* a space may stand for U+00A0 in utf8_continuation */
    return 0;
  size_t lo = 0, hi = sdr_ftfy_classes_count;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (cp < sdr_ftfy_classes[mid].cp)
      hi = mid;
    else if (cp > sdr_ftfy_classes[mid].cp)
      lo = mid + 1;
    else
      return sdr_ftfy_classes[mid].value;
  }
  return 0;
}

/* Class names as in MOJIBAKE_CATEGORIES. */
enum {
  COMMON = SDR_FTFY_COMMON,
  C1 = SDR_FTFY_C1,
  BAD = SDR_FTFY_BAD,
  CURRENCY = SDR_FTFY_CURRENCY,
  START = SDR_FTFY_START_PUNCT,
  END = SDR_FTFY_END_PUNCT,
  NUMERIC = SDR_FTFY_NUMERIC,
  KAOMOJI = SDR_FTFY_KAOMOJI,
  UPPER_ACC = SDR_FTFY_UPPER_ACCENTED,
  LOWER_ACC = SDR_FTFY_LOWER_ACCENTED,
  UPPER_COMMON = SDR_FTFY_UPPER_COMMON,
  LOWER_COMMON = SDR_FTFY_LOWER_COMMON,
  BOX = SDR_FTFY_BOX,
};

typedef struct {
  const uint32_t *s;
  size_t n;
} text;

static uint32_t at(text t, size_t i) { return i < t.n ? t.s[i] : 0xFFFFFFFFu; }
static int cls(text t, size_t i, uint32_t mask) {
  return i < t.n && (sdr_ftfy_class(t.s[i]) & mask);
}

/* Is t.s[i] one of the code points in set (0-terminated)? */
static int one_of(text t, size_t i, const uint32_t *set) {
  if (i >= t.n)
    return 0;
  for (; *set; set++)
    if (t.s[i] == *set)
      return 1;
  return 0;
}

static int ascii_lower(text t, size_t i) { return i < t.n && t.s[i] >= 'a' && t.s[i] <= 'z'; }
static int ascii_letter(text t, size_t i) {
  return i < t.n && (t.s[i] | 0x20) >= 'a' && (t.s[i] | 0x20) <= 'z';
}
static int space(text t, size_t i) { return i < t.n && sdr_uni_py_isspace(t.s[i]); }
static int word(text t, size_t i) {
  return i < t.n && (t.s[i] == '_' || sdr_uni_py_isalnum(t.s[i]));
}

/* The literal sets of BADNESS_RE, by the alternative that uses them. */
static const uint32_t A_CIRC_ETC[] = {0xC2, 0xC3, 0xCE, 0xD0, 0}; /* [ÂÃÎÐ] */
static const uint32_t W1252_SECOND[] = {0x20AC, 0x160, 0x161,  0xA2,   0xA3, 0x178,
                                        0x17E,  0xA0,  0xAD,   0xAE,   0xA9, 0xB0,
                                        0xB7,   0xBB,  0x2013, 0x2014, 0xB4, 0};
static const uint32_t SUPER_2_3[] = {0xB2, 0xB3, 0};
static const uint32_t O_U_STROKE[] = {0xD8, 0xD9, 0};                              /* [ØÙ] */
static const uint32_t ARABIC_SECOND[] = {0x178, 0x160, 0xAE, 0xB0, 0xB5, 0xBB, 0}; /* ŸŠ®°µ» */
static const uint32_t A_GRAVE_SECOND[] = {0xB2, 0xB5, 0xB9, 0xBC, 0xBD, 0xBE, 0}; /* [²µ¹¼½¾] */
static const uint32_t SQRT_SECOND[] = {0xB1,   0x2202, 0x2020, 0x2260, 0xAE, 0x2122, 0xB4,
                                       0x2264, 0x2265, 0xA5,   0xB5,   0xF8, 0};
static const uint32_t APPROX_SECOND[] = {0xB0, 0xA2, 0};
static const uint32_t MAC_A_THIRD[] = {0xEC, 0xEE,   0xEF, 0xF2, 0xF4,  0xFA, 0xF9,
                                       0xFB, 0x2020, 0xB0, 0xA2, 0x3C0, 0};
static const uint32_t MAC_SECOND[] = {0xE2, 0xF3, 0};                    /* [âó] */
static const uint32_t MAC_THIRD[] = {0xE0, 0xE4, 0xB0, 0xEA, 0};         /* [àä°ê] */
static const uint32_t CYRILLIC_VGRS[] = {0x412, 0x413, 0x420, 0x421, 0}; /* [ВГРС] */
static const uint32_t DEGREE_MICRO[] = {0xB0, 0xB5, 0};
static const uint32_t NBSP_INVERTED_EXCL[] = {0xA0, 0xA1, 0};
static const uint32_t A_TILDE_A_CIRC[] = {0xC3, 0xC2, 0}; /* [ÃÂ] */
static const uint32_t BETA_EURO_THIRD[] = {0x2122, 0xA0, 0x386, 0xAD, 0xAE, 0xB0, 0};
static const uint32_t GREEK_BGXO[] = {0x392, 0x393, 0x39E, 0x39F, 0}; /* [ΒΓΞΟ] */
static const uint32_t DEGREE[] = {0xB0, 0};
static const uint32_t GRAVE_WORD_LEAD[] = {'.', ',', '?', '!', 0};

static int matches_at(text t, size_t i) {
  const uint32_t MOSTLY = LOWER_ACC | UPPER_ACC | BOX | START | END | CURRENCY | NUMERIC;
  uint32_t c = sdr_ftfy_class(t.s[i]);
  uint32_t c2 = i + 1 < t.n ? sdr_ftfy_class(t.s[i + 1]) : 0;

  if (c & C1) /* [{c1}] */
    return 1;
  if ((c & (BAD | MOSTLY)) && (c2 & BAD)) /* [{bad}...{numeric}] [{bad}] */
    return 1;
  if (ascii_letter(t, i) && cls(t, i + 1, LOWER_COMMON | UPPER_COMMON) && cls(t, i + 2, BAD))
    return 1;
  if ((c & BAD) && (c2 & MOSTLY)) /* [{bad}] [{lower_accented}...{numeric}] */
    return 1;
  if ((c & (LOWER_ACC | LOWER_COMMON | BOX | END | CURRENCY | NUMERIC)) && (c2 & UPPER_ACC))
    return 1;
  if ((c & (BOX | END | CURRENCY | NUMERIC)) && (c2 & LOWER_ACC))
    return 1;
  if ((c & (LOWER_ACC | BOX | END)) && (c2 & CURRENCY))
    return 1;
  if (space(t, i) && (c2 & UPPER_ACC) &&
      cls(t, i + 2, CURRENCY)) /* \s [{upper_accented}] [{currency}] */
    return 1;
  if ((c & (UPPER_ACC | BOX)) && (c2 & NUMERIC))
    return 1;
  if ((c & (LOWER_ACC | UPPER_ACC | BOX | CURRENCY | END)) && (c2 & START) &&
      cls(t, i + 2, NUMERIC))
    return 1;
  if ((c & (LOWER_ACC | UPPER_ACC | CURRENCY | NUMERIC | BOX)) && (c2 & END) &&
      cls(t, i + 2, START))
    return 1;
  if ((c & (CURRENCY | NUMERIC | BOX)) && (c2 & START))
    return 1;
  if (ascii_lower(t, i) && (c2 & UPPER_ACC) && cls(t, i + 2, START | CURRENCY))
    return 1;
  if ((c & BOX) && (c2 & KAOMOJI))
    return 1;
  if ((c & (LOWER_ACC | UPPER_ACC | CURRENCY | NUMERIC | START | END)) && (c2 & BOX))
    return 1;
  if ((c & BOX) && (c2 & END))
    return 1;
  if ((c & (LOWER_ACC | UPPER_ACC)) && (c2 & END) && word(t, i + 2)) /* ... \w */
    return 1;
  /* The ligature œ when not followed by an unaccented Latin letter: [Œœ][^A-Za-z] */
  if ((t.s[i] == 0x152 || t.s[i] == 0x153) && i + 1 < t.n && !ascii_letter(t, i + 1))
    return 1;
  /* Common Windows-1252 2-character mojibake */
  if (one_of(t, i, A_CIRC_ETC) && (one_of(t, i + 1, W1252_SECOND) || (c2 & (START | END))))
    return 1;
  if (t.s[i] == 0xD7 && one_of(t, i + 1, SUPER_2_3)) /* × [²³] */
    return 1;
  /* Windows-1252 mojibake of Arabic words: four characters */
  {
    const uint32_t ARABIC = COMMON | CURRENCY | BAD | NUMERIC | START;
    if (one_of(t, i, O_U_STROKE) && ((c2 & ARABIC) || one_of(t, i + 1, ARABIC_SECOND)) &&
        one_of(t, i + 2, O_U_STROKE) && (cls(t, i + 3, ARABIC) || one_of(t, i + 3, ARABIC_SECOND)))
      return 1;
  }
  if (t.s[i] == 0xE0 && one_of(t, i + 1, A_GRAVE_SECOND)) /* à[²µ¹¼½¾] */
    return 1;
  /* MacRoman mojibake */
  if (t.s[i] == 0x221A && one_of(t, i + 1, SQRT_SECOND)) /* √[...] */
    return 1;
  if (t.s[i] == 0x2248 && one_of(t, i + 1, APPROX_SECOND)) /* ≈[°¢] */
    return 1;
  if (t.s[i] == 0x201A && at(t, i + 1) == 0xC4 && one_of(t, i + 2, MAC_A_THIRD)) /* ‚Ä[...] */
    return 1;
  if (t.s[i] == 0x201A && one_of(t, i + 1, MAC_SECOND) && one_of(t, i + 2, MAC_THIRD))
    return 1;
  /* Windows-1251 */
  if (t.s[i] == 0x432 && at(t, i + 1) == 0x402) /* вЂ */
    return 1;
  if (one_of(t, i, CYRILLIC_VGRS) &&
      ((c2 & (C1 | BAD | START | END | CURRENCY)) || one_of(t, i + 1, DEGREE_MICRO)) &&
      one_of(t, i + 2, CYRILLIC_VGRS))
    return 1;
  /* ГўВЂВ.[A-Za-z ] */
  if (t.s[i] == 0x413 && at(t, i + 1) == 0x45E && at(t, i + 2) == 0x412 && at(t, i + 3) == 0x402 &&
      at(t, i + 4) == 0x412 && i + 5 < t.n && t.s[i + 5] != '\n' &&
      (ascii_letter(t, i + 6) || at(t, i + 6) == ' '))
    return 1;
  /* Windows-1252 encodings of 'à' and 'á', and of \xa0 itself */
  if (t.s[i] == 0xC3 && one_of(t, i + 1, NBSP_INVERTED_EXCL)) /* Ã[\xa0¡] */
    return 1;
  if (ascii_lower(t, i)) { /* [a-z]\s?[ÃÂ][ ] */
    if (space(t, i + 1) && one_of(t, i + 2, A_TILDE_A_CIRC) && at(t, i + 3) == ' ')
      return 1;
    if (one_of(t, i + 1, A_TILDE_A_CIRC) && at(t, i + 2) == ' ')
      return 1;
  }
  if (i == 0 && one_of(t, 0, A_TILDE_A_CIRC) && at(t, 1) == ' ') /* ^[ÃÂ][ ] */
    return 1;
  /* [a-z.,?!{end_punctuation}] Â [ {start_punctuation}{end_punctuation}] */
  if ((ascii_lower(t, i) || one_of(t, i, GRAVE_WORD_LEAD) || (c & END)) && at(t, i + 1) == 0xC2 &&
      (at(t, i + 2) == ' ' || cls(t, i + 2, START | END)))
    return 1;
  /* Windows-1253 */
  if (t.s[i] == 0x3B2 && at(t, i + 1) == 0x20AC && one_of(t, i + 2, BETA_EURO_THIRD)) /* β€[...] */
    return 1;
  if (one_of(t, i, GREEK_BGXO) &&
      ((c2 & (C1 | BAD | START | END | CURRENCY)) || one_of(t, i + 1, DEGREE)) &&
      one_of(t, i + 2, GREEK_BGXO))
    return 1;
  return 0;
}

int sdr_ftfy_is_bad(const uint32_t *s, size_t n) {
  text t = {s, n};
  for (size_t i = 0; i < n; i++)
    if (matches_at(t, i))
      return 1;
  return 0;
}

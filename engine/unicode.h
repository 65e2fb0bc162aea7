/* engine/unicode.h — the Unicode operations the CLIP tokenizer's text path uses.
 *
 * Each function is named for the Python it reproduces, with the data of the
 * reference environment (engine/unicode_tables.c, generated from it): "py_"
 * for Python's str and unicodedata, "re_" for the `regex` module that
 * transformers' tokenization_clip.py imports as re.
 */
#ifndef SDR_ENGINE_UNICODE_H
#define SDR_ENGINE_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/utf8.h" // sdr_u32str

int sdr_uni_py_isspace(uint32_t cp);   /* str.isspace(), also stdlib re's \s */
int sdr_uni_py_isalnum(uint32_t cp);   /* str.isalnum() */
int sdr_uni_py_isdecimal(uint32_t cp); /* str.isdecimal(), also stdlib re's \d */
int sdr_uni_re_isspace(uint32_t cp);   /* the regex module's \s */
int sdr_uni_ccc(uint32_t cp);          /* unicodedata.combining() */

/* Which classes of CLIP's pre-tokenizer pattern (compiled with IGNORECASE)
 * the code point belongs to: bits of the enum below. None: whitespace. */
enum { SDR_UNI_CLIP_LETTER = 1, SDR_UNI_CLIP_NUMBER = 2, SDR_UNI_CLIP_OTHER = 4 };
int sdr_uni_clip_class(uint32_t cp);
/* Does cp match the pattern's literal character c (ASCII) under IGNORECASE? */
int sdr_uni_clip_literal(uint32_t cp, char c);

/* unicodedata.normalize("NFC", s), appended to out. */
int sdr_uni_nfc(const uint32_t *s, size_t n, sdr_u32str *out);
/* str.lower(), Final_Sigma included, appended to out. */
int sdr_uni_lower(const uint32_t *s, size_t n, sdr_u32str *out);

#endif

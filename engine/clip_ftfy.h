/* engine/clip_ftfy.h — ftfy.fix_text, as transformers' CLIPTokenizer calls it.
 *
 * With ftfy installed, CLIPTokenizer._tokenize starts with ftfy.fix_text(text)
 * under ftfy's default TextFixerConfig. This is ftfy 6.2.0's algorithm in C,
 * all of it, on code points:
 *
 *   fix_text          splits at '\n' into segments; a '<' in a segment turns
 *                     HTML unescaping off for it and every later one ("auto")
 *   fix_and_explain   repeats until nothing changes: unescape_html,
 *                     fix_encoding, fix_c1_controls, fix_latin_ligatures,
 *                     fix_character_width, uncurl_quotes, fix_line_breaks,
 *                     fix_surrogates, remove_terminal_escapes,
 *                     remove_control_chars, NFC
 *   fix_encoding      mojibake: when badness.is_bad says so, re-encodes in
 *                     the single-byte codecs ftfy tries (latin-1, sloppy
 *                     windows-1252/1251/1250/1253/1254, iso-8859-2, macroman,
 *                     cp437) and decodes as UTF-8 (or ftfy's utf-8-variants),
 *                     with restore_byte_a0, replace_lossy_sequences,
 *                     decode_inconsistent_utf8 and the C1 fallbacks
 *
 * Its data (entities, codecs, character classes) comes from ftfy itself via
 * engine/clip_ftfy_tables.c. Functions return 0, or -1 when out of memory.
 */
#ifndef SDR_ENGINE_CLIP_FTFY_H
#define SDR_ENGINE_CLIP_FTFY_H

#include <stddef.h>
#include <stdint.h>

#include "engine/utf8.h" // sdr_u32str, sdr_bytes

/* ftfy.fix_text(s), appended to out. */
int sdr_ftfy_fix_text(const uint32_t *s, size_t n, sdr_u32str *out);

/* ftfy.fix_encoding(s) (the loop of _fix_encoding_one_step_and_explain). */
int sdr_ftfy_fix_encoding(const uint32_t *s, size_t n, sdr_u32str *out);

/* ftfy.badness.is_bad(s): does some BADNESS_RE alternative match? */
int sdr_ftfy_is_bad(const uint32_t *s, size_t n);

/* The SDR_FTFY_* class bits of a code point (engine/clip_ftfy_tables.h). */
uint32_t sdr_ftfy_class(uint32_t cp);

/* ftfy.fixes.unescape_html(s), appended to out. */
int sdr_ftfy_unescape_html(const uint32_t *s, size_t n, sdr_u32str *out);

#endif

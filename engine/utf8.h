/* engine/utf8.h — UTF-8 in and out, as Python's codecs do it, and growable strings.
 *
 * The tokenizer's text path works on code points (as Python's str does) and
 * on bytes (ftfy re-encodes mojibake), so both kinds of string live here:
 * sdr_u32str holds code points, sdr_bytes holds bytes. Appending fails only
 * when memory runs out; it then sets sdr_fail's message and returns -1.
 */
#ifndef SDR_ENGINE_UTF8_H
#define SDR_ENGINE_UTF8_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint32_t *v;
  size_t n, cap;
} sdr_u32str;

typedef struct {
  uint8_t *v;
  size_t n, cap;
} sdr_bytes;

int sdr_u32_reserve(sdr_u32str *s, size_t extra);
int sdr_u32_push(sdr_u32str *s, uint32_t cp);
int sdr_u32_append(sdr_u32str *s, const uint32_t *cps, size_t n);
/* Appends the code points of a UTF-8 string known to be valid (a table entry). */
int sdr_u32_append_utf8(sdr_u32str *s, const char *utf8);
void sdr_u32_free(sdr_u32str *s);

int sdr_bytes_push(sdr_bytes *b, uint8_t byte);
int sdr_bytes_append(sdr_bytes *b, const void *p, size_t n);
void sdr_bytes_free(sdr_bytes *b);

/* Python's bytes.decode("utf-8", errors="replace"): each maximal invalid
 * subpart (Unicode's recommended practice, which CPython follows) becomes one
 * U+FFFD. Appends to out. */
int sdr_utf8_decode_replace(const uint8_t *p, size_t n, sdr_u32str *out);
/* Python's strict bytes.decode("utf-8"): 1 and nothing appended past the good
 * prefix when the bytes are not valid UTF-8 (Python raises
 * UnicodeDecodeError), 0 when decoded, -1 out of memory. */
int sdr_utf8_decode_strict(const uint8_t *p, size_t n, sdr_u32str *out);
/* Writes the UTF-8 of cp (1 to 4 bytes, surrogates encoded as 3 bytes like
 * Python's "surrogatepass") and returns its length. */
size_t sdr_utf8_encode(uint32_t cp, uint8_t out[4]);
int sdr_utf8_append(sdr_bytes *b, const uint32_t *cps, size_t n);
/* A malloc'd NUL-terminated UTF-8 copy of code points, or NULL (out of memory). */
char *sdr_utf8_from_u32(const uint32_t *cps, size_t n);

#endif

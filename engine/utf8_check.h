/* engine/utf8_check.h — is a byte string well-formed UTF-8?
 *
 * JSON readers in other languages (Rust's serde_json behind safetensors,
 * Python's json with encoding="utf-8") refuse malformed UTF-8; cJSON does
 * not look. We check first, so a file we accept is one they accept too.
 */
#ifndef SDR_ENGINE_UTF8_CHECK_H
#define SDR_ENGINE_UTF8_CHECK_H

#include <stddef.h>

/* Offset of the first byte that starts a malformed sequence (overlong forms,
 * surrogates, code points past U+10FFFF and truncated sequences included), or
 * n when all n bytes are well-formed. */
size_t sdr_utf8_check(const char *s, size_t n);

#endif

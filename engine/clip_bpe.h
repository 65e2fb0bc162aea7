/* engine/clip_bpe.h — CLIP's vocabulary, merge ranks and byte-level BPE.
 *
 * Mirrors CLIPTokenizer.bpe and bytes_to_unicode in transformers'
 * tokenization_clip.py. Every string the merges can produce is interned once
 * as a symbol, so a merge step compares integers: (left, right) -> (rank,
 * merged symbol) in one hash table, string -> symbol in another. Loading
 * CLIP's 49408 tokens and 48894 merges takes a few milliseconds.
 */
#ifndef SDR_ENGINE_CLIP_BPE_H
#define SDR_ENGINE_CLIP_BPE_H

#include <stddef.h>
#include <stdint.h>

typedef struct sdr_clip_bpe sdr_clip_bpe;

typedef struct {
  int32_t *v;
  size_t n, cap;
} sdr_i32vec;

int sdr_i32_push(sdr_i32vec *v, int32_t x);
void sdr_i32_free(sdr_i32vec *v);

sdr_clip_bpe *sdr_clip_bpe_new(void);
void sdr_clip_bpe_free(sdr_clip_bpe *b);

/* vocab.json's entries: token (UTF-8) -> id. A later entry for the same token wins. */
int sdr_clip_bpe_add_token(sdr_clip_bpe *b, const char *tok, size_t len, int32_t id);
/* One line of merges.txt, "left right", with its rank (the line's index). A
 * pair already present takes the later rank, as dict(zip(merges, ranks)) does. */
int sdr_clip_bpe_add_merge(sdr_clip_bpe *b, const char *left, size_t llen, const char *right,
                           size_t rlen, int32_t rank);

/* The vocab id of a token, or -1. */
int32_t sdr_clip_bpe_token_id(const sdr_clip_bpe *b, const char *tok, size_t len);
/* The token of a vocab id (NUL-terminated), or NULL. */
const char *sdr_clip_bpe_id_token(const sdr_clip_bpe *b, int32_t id);
size_t sdr_clip_bpe_vocab_size(const sdr_clip_bpe *b); /* len(encoder) */

/* bpe(): the symbols of one pre-token given as its UTF-8 bytes: byte-level
 * encoded, "</w>" on the last one, merged by rank. Appends to syms. */
int sdr_clip_bpe_word(const sdr_clip_bpe *b, const uint8_t *word, size_t n, sdr_i32vec *syms);
/* The symbol of a string, or -1 when it is none of the vocab's or merges' strings. */
int32_t sdr_clip_bpe_find_symbol(const sdr_clip_bpe *b, const char *s, size_t n);
/* A symbol's vocab id (-1 when the vocab lacks it) and its text. */
int32_t sdr_clip_bpe_symbol_id(const sdr_clip_bpe *b, int32_t sym);
const char *sdr_clip_bpe_symbol_text(const sdr_clip_bpe *b, int32_t sym);

/* bytes_to_unicode(): the code point standing for byte b. */
uint32_t sdr_clip_byte_to_unicode(uint8_t b);
/* Its inverse: the byte, or -1 for a code point that stands for none. */
int sdr_clip_unicode_to_byte(uint32_t cp);

#endif

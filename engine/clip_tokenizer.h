/* engine/clip_tokenizer.h — transformers' CLIPTokenizer, the same ids from the same files.
 *
 * Reads a tokenizer folder (vocab.json, merges.txt, tokenizer_config.json,
 * special_tokens_map.json). Text is cleaned as transformers does when ftfy is
 * installed (ftfy's fix_text, HTML unescaping, whitespace collapsed, lower
 * case), split with CLIP's pattern (contractions, letters, single digits,
 * other symbols), byte-level BPE with "</w>" ending each word.
 */
#ifndef SDR_ENGINE_CLIP_TOKENIZER_H
#define SDR_ENGINE_CLIP_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct sdr_clip_tokenizer sdr_clip_tokenizer;

sdr_clip_tokenizer *sdr_clip_tokenizer_load(const char *dir);
void sdr_clip_tokenizer_free(sdr_clip_tokenizer *tok);

/* Ids of text with BOS first and EOS last (transformers' add_special_tokens=True).
 * max_length > 0 truncates to it, keeping EOS last, as truncation=True does.
 * *ids is malloc'd. */
int sdr_clip_tokenizer_encode(const sdr_clip_tokenizer *tok, const char *text, int max_length,
                              int32_t **ids, size_t *n);
/* The text of ids, special tokens dropped when skip_special (malloc'd). */
char *sdr_clip_tokenizer_decode(const sdr_clip_tokenizer *tok, const int32_t *ids, size_t n,
                                int skip_special);

int sdr_clip_tokenizer_model_max_length(const sdr_clip_tokenizer *tok); /* 77 for SD */
int32_t sdr_clip_tokenizer_bos_id(const sdr_clip_tokenizer *tok);
int32_t sdr_clip_tokenizer_eos_id(const sdr_clip_tokenizer *tok);
/* The pad token of the model's files: "<|endoftext|>" for SD 1.x, "!" for SD 2.x. */
int32_t sdr_clip_tokenizer_pad_id(const sdr_clip_tokenizer *tok);
size_t sdr_clip_tokenizer_vocab_size(const sdr_clip_tokenizer *tok);

#endif

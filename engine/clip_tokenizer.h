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
/* n texts as tokenizer(texts, padding="max_length", max_length=max_len, truncation=True)
 * makes them: ids (n, max_len), padded with the pad token. */
int sdr_clip_tokenizer_encode_padded(const sdr_clip_tokenizer *tok, const char *const *texts, int n,
                                     int max_len, int64_t *ids);
/* The text of ids, special tokens dropped when skip_special (malloc'd). */
char *sdr_clip_tokenizer_decode(const sdr_clip_tokenizer *tok, const int32_t *ids, size_t n,
                                int skip_special);

int sdr_clip_tokenizer_model_max_length(const sdr_clip_tokenizer *tok); /* 77 for SD */
int32_t sdr_clip_tokenizer_bos_id(const sdr_clip_tokenizer *tok);
int32_t sdr_clip_tokenizer_eos_id(const sdr_clip_tokenizer *tok);
/* The pad token of the model's files: "<|endoftext|>" for SD 1.x, "!" for SD 2.x. */
int32_t sdr_clip_tokenizer_pad_id(const sdr_clip_tokenizer *tok);
size_t sdr_clip_tokenizer_vocab_size(const sdr_clip_tokenizer *tok);

/* Additions below.
 *
 * sdr_clip_tokenizer_load reads tokenizer_config.json and
 * special_tokens_map.json when present (the latter wins, as in transformers'
 * from_pretrained); tokens missing from both take CLIPTokenizer's defaults.
 * Text that is not valid UTF-8 is read as Python's bytes.decode("utf-8",
 * "replace") would. model_max_length is INT_MAX when the config gives none
 * (transformers' VERY_LARGE_INTEGER). Special ids are -1 for a token set to
 * null. */

/* Ids without BOS and EOS and without truncation (add_special_tokens=False). */
int sdr_clip_tokenizer_encode_plain(const sdr_clip_tokenizer *tok, const char *text, int32_t **ids,
                                    size_t *n);
/* tokenize(): the tokens before ids, byte-level text with "</w>" ending
 * words. A malloc'd array of malloc'd strings; free with sdr_clip_tokens_free. */
int sdr_clip_tokenizer_tokenize(const sdr_clip_tokenizer *tok, const char *text, char ***tokens,
                                size_t *n);
void sdr_clip_tokens_free(char **tokens, size_t n);
/* convert_ids_to_tokens for one id (NULL when unknown; belongs to tok), and
 * convert_tokens_to_ids for one token (the unk id when unknown). */
const char *sdr_clip_tokenizer_id_to_token(const sdr_clip_tokenizer *tok, int32_t id);
int32_t sdr_clip_tokenizer_token_to_id(const sdr_clip_tokenizer *tok, const char *token);
int32_t sdr_clip_tokenizer_unk_id(const sdr_clip_tokenizer *tok);
/* The text of a special token, which = "bos", "eos", "unk" or "pad"; NULL when unset. */
const char *sdr_clip_tokenizer_special_token(const sdr_clip_tokenizer *tok, const char *which);
/* len(tokenizer): the vocabulary and the added tokens it lacks. */
size_t sdr_clip_tokenizer_len(const sdr_clip_tokenizer *tok);
/* `text in tokenizer.get_vocab()`: a token of the vocabulary or an added one. */
int sdr_clip_tokenizer_has_token(const sdr_clip_tokenizer *tok, const char *text);
/* `text in tokenizer.added_tokens_encoder`: the special tokens and those add_token added. */
int sdr_clip_tokenizer_is_added(const sdr_clip_tokenizer *tok, const char *text);
/* tokenizer.add_tokens(text, special_tokens=special): a token the vocabulary lacks gets
 * the id len(tokenizer); from then on it is cut out of texts whole, as the special tokens
 * are, and so is a token of the vocabulary added (with its own id). *id is its id. A token
 * added before stays as it was. */
int sdr_clip_tokenizer_add_token(sdr_clip_tokenizer *tok, const char *text, int special,
                                 int32_t *id);
/* unload_textual_inversion's half in the tokenizer: the added tokens that are not special,
 * those named (n of them) or all (n == 0), leave it; those left past the last special
 * token are renumbered as diffusers renumbers them. removed (room for every added token)
 * gets the ids that left, in id order; last_special the last special token's id (-1:
 * none). Fails with diffusers' "No tokens to remove found". */
int sdr_clip_tokenizer_remove_added(sdr_clip_tokenizer *tok, const char *const *names, int n,
                                    int32_t *removed, int *nremoved, int32_t *last_special);
/* How many added tokens it holds (the special ones too). */
size_t sdr_clip_tokenizer_added_count(const sdr_clip_tokenizer *tok);
/* The decode of ids, with transformers' options: skip_special_tokens and
 * clean_up_tokenization_spaces (-1: the tokenizer's own setting, true unless
 * its config says otherwise). NULL with a message for an id not in the vocab. */
char *sdr_clip_tokenizer_decode_ex(const sdr_clip_tokenizer *tok, const int32_t *ids, size_t n,
                                   int skip_special, int clean_up_spaces);
/* What truncation to max_length cuts from a batch of texts, as diffusers' warning shows
 * it: the untruncated ids padded to the longest row, and each row's ids[max_length - 1 :
 * -1] decoded (pads included, as batch_decode shows them). *cut is NULL when nothing is
 * cut, else n malloc'd strings (free with sdr_clip_cut_texts_free). lengths, when not
 * NULL, gets each text's untruncated id count (BOS and EOS included). */
int sdr_clip_tokenizer_cut_texts(const sdr_clip_tokenizer *tok, const char *const *texts, int n,
                                 int max_length, char ***cut, size_t *lengths);
void sdr_clip_cut_texts_free(char **cut, int n);
/* Whether to warn that a sequence of n ids is longer than model_max_length: true the
 * first time only, per tokenizer, as transformers logs it once (its
 * "sequence-length-is-longer-than-the-specified-maximum" warning). */
int sdr_clip_tokenizer_first_overlong(sdr_clip_tokenizer *tok, size_t n);
/* The text BPE sees: ftfy.fix_text, whitespace_clean, then lower() (malloc'd). */
char *sdr_clip_clean_text(const char *text);

#endif

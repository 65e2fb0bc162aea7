/* engine/clip_tokenizer_internal.h — the tokenizer's fields, shared by its two files:
 * clip_tokenizer.c (loading a folder) and clip_tokenizer_encode.c (text to ids and back). */
#ifndef SDR_ENGINE_CLIP_TOKENIZER_INTERNAL_H
#define SDR_ENGINE_CLIP_TOKENIZER_INTERNAL_H

#include "engine/clip_bpe.h"       // sdr_clip_bpe
#include "engine/clip_tokenizer.h" // sdr_clip_tokenizer

enum { CLIP_BOS, CLIP_EOS, CLIP_UNK, CLIP_PAD, CLIP_NSPECIAL };

/* transformers' _added_tokens_encoder: the special tokens (and any
 * added_tokens_decoder entries), which split the text before anything else. */
typedef struct {
  char *text;
  int32_t id;
  int special; /* AddedToken.special: the tokenizer's own, not one add_tokens added */
} clip_added_token;

struct sdr_clip_tokenizer {
  sdr_clip_bpe *bpe;
  char *special[CLIP_NSPECIAL]; /* bos, eos, unk, pad token text, or NULL */
  int32_t special_id[CLIP_NSPECIAL];
  clip_added_token *added;
  size_t nadded;
  size_t len; /* len(tokenizer) */
  int model_max_length;
  int clean_up_tokenization_spaces;
  int warned_overlong; /* transformers' deprecation_warnings flag for it */
};

/* The added token's id of this text, or -1. */
int32_t clip_added_id(const sdr_clip_tokenizer *tok, const char *text, size_t len);

#endif

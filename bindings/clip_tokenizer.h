/* bindings/clip_tokenizer.h — the global CLIPTokenizer (transformers' CLIPTokenizer). */
#ifndef SDR_BINDINGS_CLIP_TOKENIZER_H
#define SDR_BINDINGS_CLIP_TOKENIZER_H

#include <lua.h>

#include "engine/clip_tokenizer.h" // sdr_clip_tokenizer

#define LSDR_CLIP_TOKENIZER "CLIPTokenizer"

/* Sets the global CLIPTokenizer (CLIPTokenizer.from_pretrained). */
void lsdr_open_clip_tokenizer(lua_State *L);
/* Pushes a new CLIPTokenizer that owns tok (freed by __gc/__close);
 * name_or_path is what tok.name_or_path shows. */
void lsdr_push_clip_tokenizer(lua_State *L, sdr_clip_tokenizer *tok, const char *name_or_path);
/* The tokenizer at idx, or NULL when it is not an open CLIPTokenizer. */
sdr_clip_tokenizer *lsdr_to_clip_tokenizer(lua_State *L, int idx);
/* transformers' "Token indices sequence length is longer than the specified maximum
 * sequence length for this model" for a sequence of n ids, on stderr, the first time
 * one is too long for tok (once per tokenizer, as transformers). */
void lsdr_clip_tokenizer_warn_overlong(sdr_clip_tokenizer *tok, size_t n);

#endif

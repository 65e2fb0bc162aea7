/* engine/textual_inversion.h — diffusers' TextualInversionLoaderMixin
 * (loaders/textual_inversion.py): an embedding learned for a new token, added to the
 * tokenizer and the text encoder, and prompts that spell out multi-vector tokens. */
#ifndef SDR_ENGINE_TEXTUAL_INVERSION_H
#define SDR_ENGINE_TEXTUAL_INVERSION_H

#include "engine/clip_text_model.h" // sdr_clip_text_model
#include "engine/clip_tokenizer.h"  // sdr_clip_tokenizer
#include "engine/generator.h"       // sdr_generator

typedef struct sdr_ti_embedding {
  char *token;    /* the token it is loaded as */
  int rows, dim;  /* one vector, or rows of them (a multi-vector embedding) */
  float *vectors; /* rows x dim */
} sdr_ti_embedding;

/* An embedding file (safetensors or torch.save) as load_textual_inversion reads one:
 * a single tensor, (dim) or (rows, dim), whose name is the token unless token is given
 * (diffusers' own files, and A1111's safetensors whose one key is "emb_params"). */
int sdr_ti_read_file(const char *path, const char *token, sdr_ti_embedding *e);
/* The same from values in memory (a tensor given instead of a file). */
int sdr_ti_from_values(const char *token, const float *values, int rows, int dim,
                       sdr_ti_embedding *e);
void sdr_ti_embedding_free(sdr_ti_embedding *e);

/* Steps 4 to 7 of load_textual_inversion for n embeddings: a token the vocabulary has is
 * refused, a multi-vector embedding becomes tokens "tok", "tok_1", ..., the widths must
 * be the text encoder's; then the text encoder's table grows to len(tokenizer) + the
 * new tokens (its new rows drawn from g, the default generator of its device, as
 * transformers' resize_token_embeddings draws them), the tokens are added and their
 * rows set. Nothing changes when a check fails. */
int sdr_ti_load(sdr_clip_tokenizer *tok, sdr_clip_text_model *te, sdr_generator *g,
                const sdr_ti_embedding *es, int n);

/* unload_textual_inversion: the added tokens that are not special, those named (n) or all
 * (n == 0), leave the tokenizer (the rest renumbered as diffusers does) and their rows the
 * text encoder's table; the new table is made as an nn.Embedding on the CPU, so cpu_g
 * (torch's global CPU generator) moves as it would. */
int sdr_ti_unload(sdr_clip_tokenizer *tok, sdr_clip_text_model *te, sdr_generator *cpu_g,
                  const char *const *names, int n);

/* maybe_convert_prompt: each added token of the prompt that has "_1", "_2", ... siblings
 * is replaced (everywhere, as str.replace) by itself and them. A malloc'd string. */
char *sdr_ti_convert_prompt(const sdr_clip_tokenizer *tok, const char *prompt);

#endif

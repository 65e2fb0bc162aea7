/* engine/clip_text_model.h — transformers' CLIPTextModel (the SD text encoder).
 *
 * Mirrors transformers/models/clip/modeling_clip.py: token plus position
 * embeddings, a causal pre-norm transformer (CLIPEncoderLayer: layer_norm1,
 * self_attn, residual, layer_norm2, mlp fc1 -> act -> fc2, residual), and the
 * final layer norm. Sizes come from text_encoder/config.json only.
 */
#ifndef SDR_ENGINE_CLIP_TEXT_MODEL_H
#define SDR_ENGINE_CLIP_TEXT_MODEL_H

#include "engine/arena.h"        // sdr_arena
#include "engine/clip_encoder.h" // sdr_clip_layer
#include "engine/generator.h"    // sdr_generator
#include "engine/weights.h"      // sdr_weights
#include "kernels/backend.h"

typedef struct sdr_clip_text_config {
  int vocab_size;        /* V */
  int hidden_size;       /* D */
  int intermediate_size; /* I */
  int num_attention_heads;
  int num_hidden_layers;       /* L */
  int max_position_embeddings; /* P, 77 for SD */
  int quick_gelu;              /* hidden_act "quick_gelu" (CLIP ViT-L) or "gelu" (OpenCLIP) */
  float layer_norm_eps;
  /* Token ids; eos_token_id says where pooler_output is taken: 2 (the configs of
   * openai's CLIP, from before transformers knew the real one) means at the largest
   * id, as transformers keeps for them. */
  long long pad_token_id, bos_token_id, eos_token_id;
  /* CLIPTextModelWithProjection (architectures says so: SDXL's text_encoder_2): text_projection
   * (projection_dim, D), no bias, maps pooler_output to text_embeds */
  int with_projection;
  int projection_dim;
  /* text_projection held as (D, projection_dim), OpenCLIP's own layout, as a single-file
   * checkpoint has it (config key "text_projection_transposed", which only the single-file
   * loader's configs carry) */
  int projection_transposed;
} sdr_clip_text_config;

/* A row of the token embedding set by hand (a textual inversion's vector). */
typedef struct sdr_clip_token_row {
  int id;
  float *vec; /* hidden_size floats */
} sdr_clip_token_row;

typedef struct sdr_clip_text_model {
  sdr_clip_text_config cfg; /* cfg.vocab_size: the rows of tok_emb now */
  sdr_backend *be;
  sdr_dtype act; /* what activations are computed in: torch_dtype where the backend can */
  sdr_weights weights;
  sdr_tensor tok_emb; /* (V, D): tok_emb_file, or a table of its own */
  /* resize_token_embeddings and rows set by hand (clip_token_embeddings.c): the weight
   * file's table, its rows, the rows set (kept on the host, so a copy_to has them), and
   * the table made from them on the backend (NULL until one is needed). */
  sdr_tensor tok_emb_file;
  int file_vocab;
  sdr_clip_token_row *rows_set;
  int nrows_set;
  void *own_table;
  sdr_tensor pos_emb;                /* (P, D) */
  sdr_clip_layer *layers;            /* L of them */
  sdr_tensor final_ln_w, final_ln_b; /* (D) */
  sdr_tensor text_proj;              /* (projection_dim, D), with_projection only */
} sdr_clip_text_model;

int sdr_clip_text_config_load(sdr_clip_text_config *cfg, const char *config_json);

/* dir is the text_encoder folder; weights found as transformers names them
 * (model[.variant].safetensors). keep_dtype as in sdr_weights_open. */
int sdr_clip_text_model_load(sdr_clip_text_model *m, sdr_backend *be, const char *dir,
                             const char *variant, int keep_dtype);
void sdr_clip_text_model_free(sdr_clip_text_model *m);
/* dst: src's weights bound again on be in keep_dtype (a pipeline moving to a device). */
int sdr_clip_text_model_copy_to(sdr_clip_text_model *dst, const sdr_clip_text_model *src,
                                sdr_backend *be, int keep_dtype);

/* ids (B, T) int64 with T <= P, on the backend. last_hidden (B, T, D) float32
 * gets the output after the final layer norm. hidden_states, when not NULL, is
 * (L + 1, B, T, D) float32 and gets transformers' output_hidden_states: [0] the
 * embeddings, [i] the output of layer i (no final layer norm). Temporaries come
 * from the arena (released before returning). */
int sdr_clip_text_forward(sdr_clip_text_model *m, sdr_arena *a, sdr_tensor *last_hidden,
                          sdr_tensor *hidden_states, const sdr_tensor *ids);

/* The pieces of that forward pass, as transformers' CLIPTextTransformer names them (what the
 * deep dive's get_output_embeds calls): embeddings(ids) -> out (B, T, D), token plus
 * position embeddings; the encoder's layers from inputs_embeds (B, T, D) -> last (B, T, D),
 * the last layer's output before final_layer_norm, hidden_states as above (NULL: not
 * wanted), with the causal mask or none (causal 0); final_layer_norm(x) -> out, of x's
 * shape. Any float dtype in and out; temporaries from the arena. */
int sdr_clip_text_embeddings(sdr_clip_text_model *m, sdr_arena *a, sdr_tensor *out,
                             const sdr_tensor *ids);
int sdr_clip_text_encoder(sdr_clip_text_model *m, sdr_arena *a, sdr_tensor *last,
                          sdr_tensor *hidden_states, const sdr_tensor *embeds, int causal);
int sdr_clip_text_final_norm(sdr_clip_text_model *m, sdr_arena *a, sdr_tensor *out,
                             const sdr_tensor *x);

/* The dtype torch holds the weights in: torch_dtype, else float32 (a float16 file is
 * widened on loading), whatever they are kept in here. */
sdr_dtype sdr_clip_text_torch_dtype(const sdr_clip_text_model *m);
/* transformers' resize_token_embeddings(vocab): the table gets vocab rows, the weight
 * file's first ones and zeros past them (transformers draws random ones there, which a
 * textual inversion then sets); cfg.vocab_size follows. Rows set before stay set. */
int sdr_clip_text_resize_token_embeddings(sdr_clip_text_model *m, int vocab);
/* resize_token_embeddings(vocab) as transformers runs it: a new nn.Embedding of vocab rows
 * drawn normal from g (the default generator of the model's device) in torch's dtype for
 * the model, the old rows copied over its first ones. The drawn rows from the old end up
 * to keep_until are set; those past it are zeros for the caller to set (with none to keep,
 * a CUDA generator only moves on, as its draw is not emulated). The same size: nothing
 * happens, nothing is drawn (transformers keeps the table). */
int sdr_clip_text_resize_drawn(sdr_clip_text_model *m, int vocab, sdr_generator *g, int keep_until);
/* get_input_embeddings().weight[id] = vec (hidden_size floats), id < cfg.vocab_size. */
int sdr_clip_text_set_token_embedding(sdr_clip_text_model *m, int id, const float *vec);
/* Rows [first, first + n) of the token table (get_input_embeddings().weight; position 0) or
 * of the position table (position 1), as float32 into out (n * hidden_size). */
int sdr_clip_text_table_rows(const sdr_clip_text_model *m, int position, int first, int n,
                             float *out);
/* The table made of the rows at old_ids (n of them, in that order): what
 * unload_textual_inversion leaves; cfg.vocab_size becomes n. */
int sdr_clip_text_keep_rows(sdr_clip_text_model *m, const int *old_ids, int n);
/* For clip_text_model.c: src's resized table and rows again on dst (after its weights are
 * bound), and freeing them. */
int sdr_clip_token_rows_copy(sdr_clip_text_model *dst, const sdr_clip_text_model *src);
void sdr_clip_token_rows_free(sdr_clip_text_model *m);

/* transformers' pooler_output: pooled (B, D) float32 = last_hidden's row at each
 * sequence's end token (the first eos_token_id, position 0 without one; with
 * eos_token_id 2, the first largest id). ids (B, T) int64 on the backend, read back. */
int sdr_clip_text_pool(sdr_clip_text_model *m, sdr_arena *a, sdr_tensor *pooled,
                       const sdr_tensor *last_hidden, const sdr_tensor *ids);

/* CLIPTextModelWithProjection's text_embeds (B, projection_dim) float32 = text_projection of
 * pooled (B, D) float32. */
int sdr_clip_text_project(sdr_clip_text_model *m, sdr_arena *a, sdr_tensor *text_embeds,
                          const sdr_tensor *pooled);

#endif

/* engine/clip_vision_model.h — transformers' CLIPVisionModel (the safety checker's
 * image tower).
 *
 * Mirrors CLIPVisionTransformer in transformers/models/clip/modeling_clip.py: the
 * picture cut into patch x patch squares, each projected to D (the patch_embedding
 * convolution, here a product with the patches laid out as rows), a class token in
 * front, position embeddings, pre_layrnorm (transformers' spelling), the encoder
 * layers without a mask, and post_layernorm of the class token's output: the pooled
 * output. Its weights belong to a model that holds it (the safety checker binds
 * them under its own prefix).
 */
#ifndef SDR_ENGINE_CLIP_VISION_MODEL_H
#define SDR_ENGINE_CLIP_VISION_MODEL_H

#include "engine/arena.h"        // sdr_arena
#include "engine/clip_encoder.h" // sdr_clip_layer
#include "engine/weights.h"      // sdr_weights
#include "kernels/backend.h"

typedef struct sdr_clip_vision_config {
  int hidden_size;       /* D */
  int intermediate_size; /* I */
  int num_attention_heads;
  int num_hidden_layers; /* L */
  int num_channels;      /* C */
  int image_size;        /* S: the pictures are S x S */
  int patch_size;        /* p: (S / p)^2 patches, plus the class token */
  int quick_gelu;        /* hidden_act "quick_gelu", else "gelu" */
  float layer_norm_eps;
} sdr_clip_vision_config;

/* The vision config of a CLIPConfig's config.json (model_type "clip": "vision_config", or
 * "vision_config_dict" where there is one, which then wins whole, with CLIPVisionConfig's
 * defaults for what it leaves out, as transformers' CLIPConfig takes it), or of a
 * CLIPVisionConfig's. projection_dim gets the CLIPConfig's (512 when absent). */
int sdr_clip_vision_config_load(sdr_clip_vision_config *cfg, int *projection_dim,
                                const char *config_json);

/* A folder holding a model built on the tower (config.json, model[.variant].safetensors or
 * pytorch_model.bin): its config read and its weights opened as component, for binding. */
int sdr_clip_vision_open(sdr_clip_vision_config *cfg, int *projection_dim, sdr_weights *w,
                         sdr_backend *be, const char *dir, const char *variant,
                         const char *component, int keep_dtype);

typedef struct sdr_clip_vision_model {
  sdr_clip_vision_config cfg;
  sdr_backend *be;
  sdr_dtype act;
  sdr_tensor patch_w;              /* (D, C, p, p) */
  sdr_tensor class_emb;            /* (D) */
  sdr_tensor pos_emb;              /* (T, D), T = (S / p)^2 + 1 */
  sdr_tensor pre_ln_w, pre_ln_b;   /* (D) */
  sdr_clip_layer *layers;          /* L of them */
  sdr_tensor post_ln_w, post_ln_b; /* (D) */
  const char *who;                 /* the model holding it, for messages (static text) */
} sdr_clip_vision_model;

/* Binds the weights named "<prefix>embeddings.patch_embedding.weight" and so on (prefix
 * ends in "."), activations in act; who (static text) names the model in messages. */
int sdr_clip_vision_bind(sdr_clip_vision_model *m, sdr_weights *w, const char *prefix,
                         sdr_dtype act, const char *who);
void sdr_clip_vision_free(sdr_clip_vision_model *m);

/* pixels (B, C, S, S) host float32 (what CLIPImageProcessor makes) -> pooled (B, D) in
 * m->act on the backend: transformers' pooler_output. */
int sdr_clip_vision_forward(sdr_clip_vision_model *m, sdr_arena *a, sdr_tensor *pooled,
                            const float *pixels, int64_t B, int64_t S);
/* The same pixels -> out (B, T, D), any floating dtype: transformers' hidden_states[-back]
 * (back 1: the last layer's output; 2: the one before, what IP-Adapter Plus takes), without
 * post_layernorm. */
int sdr_clip_vision_hidden(sdr_clip_vision_model *m, sdr_arena *a, sdr_tensor *out,
                           const float *pixels, int64_t B, int64_t S, int back);

#endif

/* engine/clip_encoder.h — transformers' CLIPEncoderLayer, which CLIP's text and vision
 * towers share (modeling_clip.py): layer_norm1, self_attn, residual, layer_norm2, mlp
 * fc1 -> act -> fc2, residual. The text tower's attention is causal, the vision
 * tower's is not. */
#ifndef SDR_ENGINE_CLIP_ENCODER_H
#define SDR_ENGINE_CLIP_ENCODER_H

#include "engine/arena.h"   // sdr_arena
#include "engine/weights.h" // sdr_weights
#include "kernels/backend.h"

typedef struct sdr_clip_layer {
  sdr_tensor ln1_w, ln1_b;       /* (D) */
  sdr_tensor q_w, k_w, v_w, o_w; /* (D, D) */
  sdr_tensor q_b, k_b, v_b, o_b; /* (D) */
  sdr_tensor ln2_w, ln2_b;       /* (D) */
  sdr_tensor fc1_w;              /* (I, D) */
  sdr_tensor fc1_b;              /* (I) */
  sdr_tensor fc2_w;              /* (D, I) */
  sdr_tensor fc2_b;              /* (D) */
} sdr_clip_layer;

/* What a layer's run needs of its tower's config. */
typedef struct sdr_clip_encoder_params {
  int64_t hidden_size;       /* D */
  int64_t intermediate_size; /* I */
  int heads;
  float layer_norm_eps;
  int quick_gelu; /* hidden_act "quick_gelu", else "gelu" */
  int causal;     /* the text tower's mask */
} sdr_clip_encoder_params;

/* Binds layer i's weights, named "<prefix>.<i>.layer_norm1.weight" and so on. */
int sdr_clip_layer_bind(sdr_weights *w, sdr_clip_layer *l, const char *prefix, int i,
                        const sdr_clip_encoder_params *p);

/* CLIPEncoderLayer: x (B, T, D) -> out (B, T, D), both in the activations' dtype;
 * temporaries from the arena, released before returning. */
int sdr_clip_encoder_layer(sdr_backend *be, sdr_arena *a, sdr_tensor *out, const sdr_tensor *x,
                           const sdr_clip_layer *l, const sdr_clip_encoder_params *p);

/* ids (n) int64 in the arena on the backend: first, first + step, ... (the position ids the
 * towers look their embeddings up with, or the rows of tokens to pool). */
int sdr_clip_ids(sdr_backend *be, sdr_arena *a, sdr_tensor *ids, int64_t n, int64_t step,
                 int64_t first);

#endif

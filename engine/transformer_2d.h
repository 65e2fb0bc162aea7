/* engine/transformer_2d.h — diffusers' Transformer2DModel with BasicTransformerBlocks
 * (models/transformers/transformer_2d.py, models/attention.py), continuous inputs:
 * group norm, proj_in (1x1 conv, or linear when use_linear_projection), blocks of
 * self-attention, cross-attention on the text and a GEGLU feed-forward, proj_out,
 * residual. */
#ifndef SDR_ENGINE_TRANSFORMER_2D_H
#define SDR_ENGINE_TRANSFORMER_2D_H

#include "engine/attention.h"
#include "engine/arena.h"
#include "engine/weights.h"
#include "kernels/backend.h"

typedef struct sdr_transformer_block {
  sdr_tensor norm1_w, norm1_b, norm2_w, norm2_b, norm3_w, norm3_b; /* (D) */
  sdr_attn_layer attn1; /* self, or on the text too (only_cross_attention) */
  sdr_attn_layer attn2; /* on the text */
  sdr_tensor ff_in_w;   /* (2F, D): GEGLU's proj, value half then gate half */
  sdr_tensor ff_in_b;   /* (2F) */
  sdr_tensor ff_out_w;  /* (D, F) */
  sdr_tensor ff_out_b;  /* (D) */
} sdr_transformer_block;

typedef struct sdr_transformer_2d {
  int channels;        /* C, of the feature map */
  int heads, dim_head; /* D = heads * dim_head */
  int groups, layers, linear_projection, context_dim, ff_inner;
  int only_cross;                /* only_cross_attention: attn1 attends to the text as attn2 does */
  sdr_tensor norm_w, norm_b;     /* (C), group norm, eps 1e-6 */
  sdr_tensor proj_in_w;          /* (D, C, 1, 1), or (D, C) when linear */
  sdr_tensor proj_in_b;          /* (D) */
  sdr_tensor proj_out_w;         /* (C, D, 1, 1), or (C, D) when linear */
  sdr_tensor proj_out_b;         /* (C) */
  sdr_transformer_block *blocks; /* layers of them */
} sdr_transformer_2d;

int sdr_transformer_2d_bind(sdr_transformer_2d *t, sdr_weights *w, const char *prefix, int channels,
                            int heads, int dim_head, int layers, int groups, int context_dim,
                            int linear_projection, int only_cross);
void sdr_transformer_2d_free(sdr_transformer_2d *t);
/* x (B, C, H, W), context: the text (B, S, context_dim) and any IP-Adapters' image tokens
 * -> out (B, C, H, W). */
int sdr_transformer_2d_forward(sdr_backend *be, sdr_arena *a, sdr_tensor *out, const sdr_tensor *x,
                               const sdr_attn_context *context, const sdr_transformer_2d *t);

#endif

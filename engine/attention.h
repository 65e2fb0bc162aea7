/* engine/attention.h — diffusers' Attention (models/attention_processor.py) with
 * the default processor: projections, multi-head scaled dot-product, output. */
#ifndef SDR_ENGINE_ATTENTION_H
#define SDR_ENGINE_ATTENTION_H

#include "engine/arena.h"
#include "engine/weights.h"
#include "kernels/backend.h"

enum { SDR_IP_MAX = 4 }; /* IP-Adapters loaded at once */

/* IP-Adapters' additions to a cross-attention (diffusers' IPAdapterAttnProcessor): for each
 * adapter i, to_k_ip.i and to_v_ip.i on its image tokens, attended to by the same queries,
 * added times scale[i] before to_out. The weights belong to the adapters. */
typedef struct sdr_attn_ip {
  int n;
  const sdr_tensor *k_w[SDR_IP_MAX], *v_w[SDR_IP_MAX]; /* (inner, context_dim) */
  float scale[SDR_IP_MAX];
} sdr_attn_ip;

/* What a cross-attention attends to: the text, and each IP-Adapter's image tokens
 * (unet_2d_condition's encoder_hidden_states tuple), (B, S_i, context_dim). */
typedef struct sdr_attn_context {
  const sdr_tensor *text;
  const sdr_tensor *image[SDR_IP_MAX];
  int nimage;
} sdr_attn_context;

typedef struct sdr_attn_layer {
  int query_dim, context_dim, heads, dim_head; /* inner = heads * dim_head */
  sdr_tensor q_w;                              /* (inner, query_dim) */
  sdr_tensor k_w, v_w;                         /* (inner, context_dim) */
  sdr_tensor q_b, k_b, v_b; /* (inner), no data when the projections have no bias (UNet) */
  sdr_tensor out_w;         /* (query_dim, inner) */
  sdr_tensor out_b;         /* (query_dim) */
  const sdr_attn_ip *ip;    /* NULL: the default processor */
} sdr_attn_layer;

/* prefix like "...transformer_blocks.0.attn2"; context_dim == query_dim for self-attention. */
int sdr_attn_layer_bind(sdr_attn_layer *at, sdr_weights *w, const char *prefix, int query_dim,
                        int context_dim, int heads, int dim_head, int qkv_bias);
/* x (B, T, query_dim); context (B, S, context_dim) or NULL (self-attention) -> out (B, T,
 * query_dim). */
int sdr_attn_layer_forward(sdr_backend *be, sdr_arena *a, sdr_tensor *out, const sdr_tensor *x,
                           const sdr_tensor *context, const sdr_attn_layer *at);
/* Cross-attention on ctx: the text, plus the image tokens where the layer has IP-Adapters
 * (which then must be given, one per adapter). */
int sdr_attn_layer_forward_ctx(sdr_backend *be, sdr_arena *a, sdr_tensor *out, const sdr_tensor *x,
                               const sdr_attn_context *ctx, const sdr_attn_layer *at);

#endif

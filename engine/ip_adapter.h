/* engine/ip_adapter.h — an IP-Adapter as diffusers 0.27 loads it (loaders/ip_adapter.py
 * IPAdapterMixin, loaders/unet.py _load_ip_adapter_weights) and runs it
 * (models/embeddings.py's image projections, attention_processor.py's
 * IPAdapterAttnProcessor).
 *
 * The file (.safetensors with "image_proj.*" and "ip_adapter.*" tensors, or a torch.save
 * of {"image_proj": {...}, "ip_adapter": {...}}) holds an image projection, which turns
 * the image encoder's output into tokens as wide as the text's, and for each
 * cross-attention of the UNet a to_k_ip / to_v_ip pair, numbered 1, 3, 5, ... in the
 * order of unet.attn_processors. The projection is one of three, told apart by its
 * tensors as diffusers does:
 *  - ImageProjection ("proj.weight"): image_embeds (B, E) -> linear -> 4 tokens -> norm;
 *  - IPAdapterFullImageProjection ("proj.3.weight", Full Face): hidden_states[-2]
 *    (B, 257, E) -> FeedForward (GELU) -> norm;
 *  - IPAdapterPlusImageProjection (the Resampler, "latents"): hidden_states[-2] through
 *    4 layers where learnt queries attend to the picture's tokens and themselves.
 * Weights are bound on a backend in the UNet's dtype, like a model's.
 */
#ifndef SDR_ENGINE_IP_ADAPTER_H
#define SDR_ENGINE_IP_ADAPTER_H

#include "engine/unet.h"
#include "engine/weights.h"

typedef enum sdr_ip_kind { SDR_IP_PLAIN, SDR_IP_FULL, SDR_IP_PLUS } sdr_ip_kind;

enum { SDR_IP_PLUS_DEPTH = 4 }; /* IPAdapterPlusImageProjection's, which the loader keeps */

typedef struct sdr_ip_resampler_layer {
  sdr_tensor ln0_w, ln0_b; /* the picture's tokens */
  sdr_tensor ln1_w, ln1_b; /* the queries */
  sdr_tensor q_w;          /* (inner, Hd) */
  sdr_tensor kv_w;         /* (2 inner, Hd): to_k then to_v */
  sdr_tensor out_w;        /* (Hd, inner), no bias */
  sdr_tensor ff_ln_w, ff_ln_b;
  sdr_tensor ff1_w; /* (4 Hd, Hd), no bias */
  sdr_tensor ff2_w; /* (Hd, 4 Hd), no bias */
} sdr_ip_resampler_layer;

typedef struct sdr_ip_adapter {
  sdr_backend *be;
  sdr_dtype act;
  sdr_weights weights;
  sdr_ip_kind kind;
  int embed_dim;  /* E: image_embeds' width (plain) or the encoder's hidden width */
  int cross_dim;  /* C: the tokens' width, the UNet's cross_attention_dim */
  int num_tokens; /* per picture: 4, the resampler's queries (Full: 257, as many as given) */
  int nlayers;    /* the UNet's cross-attentions */
  sdr_tensor *k_ip, *v_ip;           /* nlayers each: (inner_i, C) */
  sdr_tensor proj_w, proj_b;         /* plain: (4 C, E); full: ff's first (E, E) */
  sdr_tensor proj2_w, proj2_b;       /* full: ff's second (C, E) */
  sdr_tensor norm_w, norm_b;         /* (C): the last norm of every kind */
  int heads, hidden;                 /* plus: dim_head 64 */
  sdr_tensor latents;                /* plus: (1, Q, Hd) */
  sdr_tensor proj_in_w, proj_in_b;   /* plus: (Hd, E) */
  sdr_tensor proj_out_w, proj_out_b; /* plus: (C, Hd) */
  sdr_ip_resampler_layer layers[SDR_IP_PLUS_DEPTH];
} sdr_ip_adapter;

/* path: the weight file; u: the UNet it is for (its cross-attentions' sizes), on be. */
int sdr_ip_adapter_load(sdr_ip_adapter *ad, sdr_backend *be, const char *path, sdr_unet *u,
                        int keep_dtype);
int sdr_ip_adapter_copy_to(sdr_ip_adapter *dst, const sdr_ip_adapter *src, sdr_backend *be,
                           sdr_unet *u, int keep_dtype);
void sdr_ip_adapter_free(sdr_ip_adapter *ad);

/* Whether the projection takes hidden_states[-2] (Plus, Full) rather than image_embeds
 * (diffusers' output_hidden_states: not an ImageProjection). */
int sdr_ip_adapter_wants_hidden(const sdr_ip_adapter *ad);

/* The tokens per picture the projection makes from in_tokens of the encoder's (a Full Face
 * projection keeps them; the others make num_tokens). */
int64_t sdr_ip_adapter_tokens(const sdr_ip_adapter *ad, int64_t in_tokens);
/* The image projection: in (M, E) for a plain adapter, else (M, T, E), any floating dtype
 * -> out (M, sdr_ip_adapter_tokens(T), C) in ad->act. */
int sdr_ip_adapter_project(sdr_ip_adapter *ad, sdr_arena *a, sdr_tensor *out, const sdr_tensor *in);

/* unet._load_ip_adapter_weights: the cross-attentions of u get the n adapters' to_k_ip and
 * to_v_ip, at scale[i] each (replacing any attached before). detach: back to the default
 * processor. */
int sdr_ip_adapters_attach(sdr_unet *u, sdr_ip_adapter *const *ads, int n, const float *scale);
void sdr_ip_adapters_detach(sdr_unet *u);
/* set_ip_adapter_scale on the attached layers. */
void sdr_ip_adapters_set_scale(sdr_unet *u, const float *scale, int n);

#endif

/* engine/unet.h — diffusers' UNet2DConditionModel for the SD 1.x/2.x family
 * (models/unets/unet_2d_condition.py and unet_2d_blocks.py): timestep
 * embedding, conv_in, down blocks (ResnetBlock2D, Transformer2DModel when
 * CrossAttn, Downsample2D), the cross-attention mid block (or none, mid_block_type
 * null), up blocks with the skip connections, and the output head. Sizes from
 * unet/config.json only.
 */
#ifndef SDR_ENGINE_UNET_H
#define SDR_ENGINE_UNET_H

#include "engine/freeu.h"
#include "engine/resnet_block.h"
#include "engine/transformer_2d.h"
#include "engine/weights.h"
#include "kernels/backend.h"

enum {
  SDR_UNET_MAX_BLOCKS = 6,
  SDR_UNET_MAX_LAYERS = 7, /* layers_per_block */
  /* the skip connections: conv_in's, one per down layer, one per downsampler */
  SDR_UNET_MAX_SKIPS = 1 + SDR_UNET_MAX_BLOCKS * (SDR_UNET_MAX_LAYERS + 1)
};

typedef struct sdr_unet_config {
  int in_channels, out_channels, sample_size;
  int before_0_9; /* its _diffusers_version is older than 0.9.0 (outdated configs) */
  int nblocks;
  int block_out_channels[SDR_UNET_MAX_BLOCKS];
  int layers_per_block[SDR_UNET_MAX_BLOCKS];
  int down_attn[SDR_UNET_MAX_BLOCKS]; /* CrossAttnDownBlock2D (1) or DownBlock2D (0) */
  int up_attn[SDR_UNET_MAX_BLOCKS];   /* CrossAttnUpBlock2D (1) or UpBlock2D (0) */
  int heads[SDR_UNET_MAX_BLOCKS];     /* num_attention_heads (or attention_head_dim, diffusers' old
                                         name) */
  /* transformer_layers_per_block for each attention: down block i's layer j, the mid
   * block's, up block i's layer j (reverse_transformer_layers_per_block where given, as
   * SSD-1B's and Vega's asymmetric UNets have, else the down blocks' reversed) */
  int depth_down[SDR_UNET_MAX_BLOCKS][SDR_UNET_MAX_LAYERS];
  int depth_mid;
  int depth_up[SDR_UNET_MAX_BLOCKS][SDR_UNET_MAX_LAYERS + 1];
  int cross_attention_dim[SDR_UNET_MAX_BLOCKS];
  int norm_num_groups;
  float norm_eps;
  int flip_sin_to_cos;
  float freq_shift;
  int use_linear_projection;
  int downsample_padding;
  float mid_block_scale_factor;
  int has_mid_block;       /* mid_block_type null: none (diffusers' mid_block = None) */
  int center_input_sample; /* the sample becomes 2 * sample - 1 first */
  int time_cond_proj_dim;  /* LCM's: the width of timestep_cond (0: none) */
  /* addition_embed_type "text_time" (SDXL): add_time_proj's width for each of the time ids,
   * and add_embedding's input, the pooled text embeddings' width plus 6 such (0: none) */
  int addition_time_embed_dim;
  int projection_class_embeddings_input_dim;
  /* num_class_embeds: an embedding table of class labels added to the time embedding (the x4
   * upscaler's noise level); 0: none */
  int num_class_embeds;
  /* only_cross_attention of each down block (the up blocks mirror it): attn1 attends to the
   * text too */
  int only_cross[SDR_UNET_MAX_BLOCKS];
} sdr_unet_config;

typedef struct sdr_unet_block {
  int nlayers, has_attn, has_sample; /* sample: the down- or upsampler */
  sdr_resnet_block *resnets;
  sdr_transformer_2d *attns;
  sdr_downsample down;
  sdr_upsample up;
} sdr_unet_block;

typedef struct sdr_unet {
  sdr_unet_config cfg;
  sdr_backend *be;
  sdr_dtype act; /* what activations are computed in: torch_dtype where the backend can */
  sdr_weights weights;
  sdr_tensor conv_in_w;          /* (C0, Cin, 3, 3) */
  sdr_tensor conv_in_b;          /* (C0) */
  sdr_tensor time_1_w, time_1_b; /* (4 C0, C0), (4 C0) */
  sdr_tensor time_2_w, time_2_b; /* (4 C0, 4 C0), (4 C0) */
  sdr_tensor time_cond_w;        /* (C0, time_cond_proj_dim), no bias; with time_cond_proj_dim */
  sdr_tensor add_1_w, add_1_b;   /* add_embedding: (4 C0, input dim), (4 C0); "text_time" only */
  sdr_tensor add_2_w, add_2_b;   /* (4 C0, 4 C0), (4 C0) */
  sdr_tensor class_w;            /* (num_class_embeds, 4 C0); num_class_embeds only */
  sdr_unet_block down[SDR_UNET_MAX_BLOCKS];
  sdr_resnet_block mid_resnets[2];
  sdr_transformer_2d mid_attn;
  sdr_unet_block up[SDR_UNET_MAX_BLOCKS];
  sdr_tensor norm_out_w, norm_out_b; /* (C0) */
  sdr_tensor conv_out_w;             /* (Cout, C0, 3, 3) */
  sdr_tensor conv_out_b;             /* (Cout) */
  sdr_freeu freeu;                   /* enable_freeu's factors (0: off) and its bases */
  sdr_attn_ip *ip_layers; /* IP-Adapters' part of each cross-attention (engine/ip_adapter.h) */
} sdr_unet;

struct sdr_json;
int sdr_unet_config_load(sdr_unet_config *cfg, const char *config_json);
/* The same from an opened config; with_up 0 for a model that has the down half only
 * (ControlNetModel: neither up_block_types nor out_channels). */
int sdr_unet_config_parse(sdr_unet_config *cfg, const struct sdr_json *j, int with_up);
/* Binds conv_in, the time embedding, the down blocks and the mid block of u->cfg from
 * u->weights, by diffusers' names (which ControlNetModel shares); u->be and u->act set. */
int sdr_unet_bind_down(sdr_unet *u);
/* dir is the unet folder. keep_dtype as in sdr_weights_open. */
int sdr_unet_load(sdr_unet *u, sdr_backend *be, const char *dir, const char *variant,
                  int keep_dtype);
void sdr_unet_free(sdr_unet *u);
/* dst: src's weights bound again on be in keep_dtype (a pipeline moving to a device). */
int sdr_unet_copy_to(sdr_unet *dst, const sdr_unet *src, sdr_backend *be, int keep_dtype);

/* sample (B, Cin, H, W); timesteps (B) float32; context (B, S, cross_attention_dim)
 * -> out (B, Cout, H, W). H and W multiples of 2^(blocks - 1). sample, context
 * and out may have any floating dtype; the layers run in u->act between. */
int sdr_unet_forward(sdr_unet *u, sdr_arena *a, sdr_tensor *out, const sdr_tensor *sample,
                     const sdr_tensor *timesteps, const sdr_tensor *context);

/* ControlNet's additions to a UNet call (down_block_additional_residuals,
 * mid_block_additional_residual): one tensor per skip connection, in the down path's
 * order, and one for the mid block's output, each (b, C, h, w) or pooled (b, C, 1, 1),
 * added to the batch rows [row, row + b) (guess mode: the conditional half only). */
typedef struct sdr_unet_residuals {
  const sdr_tensor *down;
  int ndown;
  const sdr_tensor *mid;
  int64_t row;
} sdr_unet_residuals;

/* sdr_unet_forward with residuals (NULL: none). */
int sdr_unet_forward_residuals(sdr_unet *u, sdr_arena *a, sdr_tensor *out, const sdr_tensor *sample,
                               const sdr_tensor *timesteps, const sdr_tensor *context,
                               const sdr_unet_residuals *res);

/* What a UNet call takes besides the sample and the timesteps (unet_2d_condition's forward
 * arguments). */
typedef struct sdr_unet_cond {
  /* encoder_hidden_states, and the IP-Adapters' image tokens beside it (each
   * (B, S_i, cross_attention_dim), one per adapter attached to the layers) */
  sdr_attn_context attn;
  /* timestep_cond (B, time_cond_proj_dim): an LCM's guidance embedding, added to the
   * timestep's projection through time_embedding.cond_proj; NULL: none */
  const sdr_tensor *timestep_cond;
  /* added_cond_kwargs of a "text_time" UNet (SDXL): text_embeds (B, pooled width) and
   * time_ids (B, n), n * addition_time_embed_dim + the pooled width being add_embedding's
   * input; NULL for other UNets */
  const sdr_tensor *text_embeds, *time_ids;
  /* class_labels (B) int64 of a UNet with num_class_embeds (the x4 upscaler's noise level);
   * NULL for others */
  const sdr_tensor *class_labels;
  const sdr_unet_residuals *res; /* ControlNet's, or NULL */
  /* down_intrablock_additional_residuals (T2I-Adapters' features), used in order: each
   * down block's output gets the next (a block with attention before its downsampler, one
   * without after it, its last skip included), then the mid block's output while the next
   * has its shape; the rest go unused, as in diffusers. Each (1 or B, C, h, w). */
  const sdr_tensor *intrablock;
  int nintrablock;
} sdr_unet_cond;

int sdr_unet_forward_cond(sdr_unet *u, sdr_arena *a, sdr_tensor *out, const sdr_tensor *sample,
                          const sdr_tensor *timesteps, const sdr_unet_cond *cond);

/* The cross-attention layers (each transformer block's attn2) in the order of diffusers'
 * unet.attn_processors: down blocks, up blocks, then the mid block. Returns how many, at
 * most max; -1 if there are more. */
int sdr_unet_cross_attns(sdr_unet *u, sdr_attn_layer **out, int max);

/* The down half's outputs. */
typedef struct sdr_unet_down {
  sdr_tensor temb; /* silu(time embedding), what the resnets take */
  sdr_tensor skips[SDR_UNET_MAX_SKIPS];
  int nskips;
  sdr_tensor h; /* the mid block's output (without one, the last skip) */
} sdr_unet_down;

/* The time embedding, conv_in (plus `add`, when given: ControlNet's conditioning), the down
 * blocks and the mid block, on x and cond's tensors already in u->act (cond->res unused).
 * Allocates in a; the caller releases. */
int sdr_unet_down_forward(sdr_unet *u, sdr_arena *a, sdr_unet_down *o, const sdr_tensor *x,
                          const sdr_tensor *timesteps, const sdr_unet_cond *cond,
                          const sdr_tensor *add);
/* The skips' shapes for a sample (B, *, H, W) into shapes; returns how many. */
int sdr_unet_skip_shapes(const sdr_unet *u, int64_t B, int64_t H, int64_t W, int64_t shapes[][4]);
/* Whether a batch of B has the added_cond_kwargs the model's config asks for: text_embeds
 * and time_ids for addition_embed_type "text_time", none otherwise (who names the model in
 * the message). */
int sdr_unet_check_added(const sdr_unet *u, int64_t B, const sdr_tensor *te, const sdr_tensor *ti,
                         const char *who);

#endif

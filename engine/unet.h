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

enum { SDR_UNET_MAX_BLOCKS = 6 };

typedef struct sdr_unet_config {
  int in_channels, out_channels, sample_size;
  int nblocks;
  int block_out_channels[SDR_UNET_MAX_BLOCKS];
  int layers_per_block[SDR_UNET_MAX_BLOCKS];
  int down_attn[SDR_UNET_MAX_BLOCKS]; /* CrossAttnDownBlock2D (1) or DownBlock2D (0) */
  int up_attn[SDR_UNET_MAX_BLOCKS];   /* CrossAttnUpBlock2D (1) or UpBlock2D (0) */
  int heads[SDR_UNET_MAX_BLOCKS];     /* num_attention_heads (or attention_head_dim, diffusers' old
                                         name) */
  int transformer_layers[SDR_UNET_MAX_BLOCKS];
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
  sdr_unet_block down[SDR_UNET_MAX_BLOCKS];
  sdr_resnet_block mid_resnets[2];
  sdr_transformer_2d mid_attn;
  sdr_unet_block up[SDR_UNET_MAX_BLOCKS];
  sdr_tensor norm_out_w, norm_out_b; /* (C0) */
  sdr_tensor conv_out_w;             /* (Cout, C0, 3, 3) */
  sdr_tensor conv_out_b;             /* (Cout) */
  sdr_freeu freeu;                   /* enable_freeu's factors (0: off) and its bases */
} sdr_unet;

int sdr_unet_config_load(sdr_unet_config *cfg, const char *config_json);
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

#endif

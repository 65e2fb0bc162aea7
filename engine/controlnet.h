/* engine/controlnet.h — diffusers' ControlNetModel (models/controlnet.py): a copy of
 * the UNet's down half (conv_in, time embedding, down blocks, mid block, bound by the
 * UNet's own names) whose input also takes a conditioning picture through a small
 * convolution stack (ControlNetConditioningEmbedding), and whose skip connections and
 * mid block output leave through 1x1 "zero" convolutions as residuals for the UNet
 * (engine/unet.h's sdr_unet_residuals). Sizes from config.json only.
 */
#ifndef SDR_ENGINE_CONTROLNET_H
#define SDR_ENGINE_CONTROLNET_H

#include "engine/unet.h"

enum { SDR_CONTROLNET_MAX_COND = 8 }; /* conditioning_embedding_out_channels */

typedef struct sdr_controlnet_config {
  int conditioning_channels;
  int ncond; /* conditioning_embedding_out_channels: stride-2 convolutions between them */
  int cond_channels[SDR_CONTROLNET_MAX_COND];
  int bgr;                    /* controlnet_conditioning_channel_order "bgr": flipped first */
  int global_pool_conditions; /* residuals averaged over the plane; guess mode forced */
} sdr_controlnet_config;

typedef struct sdr_controlnet {
  sdr_controlnet_config cfg;
  sdr_unet base; /* its config, weights and down half: the UNet's code, the UNet's names */
  /* controlnet_cond_embedding */
  sdr_tensor cond_in_w, cond_in_b;
  sdr_tensor cond_w[2 * (SDR_CONTROLNET_MAX_COND - 1)], cond_b[2 * (SDR_CONTROLNET_MAX_COND - 1)];
  sdr_tensor cond_out_w, cond_out_b;
  /* controlnet_down_blocks (one per skip connection) and controlnet_mid_block */
  sdr_tensor zero_w[SDR_UNET_MAX_SKIPS], zero_b[SDR_UNET_MAX_SKIPS];
  int nzero;
  sdr_tensor mid_w, mid_b;
} sdr_controlnet;

/* dir holds config.json and diffusion_pytorch_model[.variant].safetensors (or .bin).
 * keep_dtype as in sdr_weights_open. */
int sdr_controlnet_load(sdr_controlnet *c, sdr_backend *be, const char *dir, const char *variant,
                        int keep_dtype);
void sdr_controlnet_free(sdr_controlnet *c);
/* dst: src's weights bound again on be in keep_dtype (moving to a device). */
int sdr_controlnet_copy_to(sdr_controlnet *dst, const sdr_controlnet *src, sdr_backend *be,
                           int keep_dtype);
/* The number of down residuals it makes (one per skip connection of its UNet). */
int sdr_controlnet_ndown(const sdr_controlnet *c);

/* How the residuals are scaled: conditioning_scale, and guess mode's ramp (each residual k of
 * n + 1 by 10^(k/n - 1), the mid block's by 1) unless the model pools its conditions. */
typedef struct sdr_controlnet_scale {
  float scale;
  int guess_mode;
} sdr_controlnet_scale;

/* sample (B, Cin, h, w), timesteps (B) float32, context (B, S, D), cond (B, conditioning
 * channels, h * 2^(ncond - 1), w * 2^(ncond - 1)) in [0, 1], and an SDXL ControlNet's
 * added_cond_kwargs text_embeds and time_ids (else NULL) -> down[sdr_controlnet_ndown]
 * and mid, allocated here in a (before the working memory, which is released; the caller
 * releases them), in the model's activation dtype: (B, C, h', w'), or (B, C, 1, 1) pooled.
 * Inputs of any floating dtype. */
int sdr_controlnet_forward(sdr_controlnet *c, sdr_arena *a, sdr_tensor *down, sdr_tensor *mid,
                           const sdr_tensor *sample, const sdr_tensor *timesteps,
                           const sdr_tensor *context, const sdr_tensor *cond,
                           const sdr_tensor *text_embeds, const sdr_tensor *time_ids,
                           sdr_controlnet_scale s);

#endif

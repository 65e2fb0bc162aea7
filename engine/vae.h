/* engine/vae.h — diffusers' AutoencoderKL (models/autoencoders/autoencoder_kl.py,
 * vae.py's Encoder and Decoder): images to the latent distribution and latents
 * back to images. Sizes from vae/config.json only. A config of "_class_name"
 * AutoencoderTiny makes the same struct hold TAESD (engine/autoencoder_tiny.h) instead,
 * so a pipeline runs either one. */
#ifndef SDR_ENGINE_VAE_H
#define SDR_ENGINE_VAE_H

#include "engine/attention.h"
#include "engine/autoencoder_tiny.h"
#include "engine/resnet_block.h"
#include "engine/weights.h"
#include "kernels/backend.h"

enum { SDR_VAE_MAX_BLOCKS = 6, SDR_VAE_MAX_LATENT_STATS = 16 };

typedef struct sdr_vae_config {
  int in_channels, out_channels, latent_channels, nblocks, layers_per_block, norm_num_groups;
  int block_out_channels[SDR_VAE_MAX_BLOCKS];
  int sample_size;
  float scaling_factor;
  int use_quant_conv, use_post_quant_conv;
  /* SDXL's pipelines run a float16 VAE in float32 when this is set (diffusers' default) */
  int force_upcast;
  /* latents_mean and latents_std (Playground v2.5's): SDXL's pipelines decode
   * latents * std / scaling_factor + mean, per channel, when both are given */
  int has_latents_stats;
  float latents_mean[SDR_VAE_MAX_LATENT_STATS], latents_std[SDR_VAE_MAX_LATENT_STATS];
  /* AutoencoderTiny: block_out_channels and nblocks are then its decoder's (as diffusers
   * registers them), scaling_factor 1.0 by default, and tiny_cfg holds the rest */
  int tiny;
  sdr_tiny_config tiny_cfg;
} sdr_vae_config;

typedef struct sdr_vae_block {
  int nlayers, has_sample;
  sdr_resnet_block *resnets;
  sdr_downsample down;
  sdr_upsample up;
} sdr_vae_block;

/* UNetMidBlock2D with one attention: resnet, (group norm, single-head attention, residual), resnet.
 */
typedef struct sdr_vae_mid {
  sdr_resnet_block resnets[2];
  sdr_tensor attn_norm_w, attn_norm_b; /* (C) */
  sdr_attn_layer attn;                 /* 1 head of C */
} sdr_vae_mid;

typedef struct sdr_vae_coder {
  sdr_tensor conv_in_w, conv_in_b;
  sdr_vae_block blocks[SDR_VAE_MAX_BLOCKS];
  sdr_vae_mid mid;
  sdr_tensor norm_out_w, norm_out_b;
  sdr_tensor conv_out_w, conv_out_b;
} sdr_vae_coder;

typedef struct sdr_vae {
  sdr_vae_config cfg;
  sdr_backend *be;
  sdr_dtype act; /* what activations are computed in: torch_dtype where the backend can */
  sdr_weights weights;
  sdr_vae_coder encoder, decoder;
  sdr_tensor quant_w, quant_b;           /* (2L, 2L, 1, 1), (2L) */
  sdr_tensor post_quant_w, post_quant_b; /* (L, L, 1, 1), (L) */
  sdr_autoencoder_tiny tiny;             /* where cfg.tiny */
} sdr_vae;

int sdr_vae_config_load(sdr_vae_config *cfg, const char *config_json);
int sdr_vae_load(sdr_vae *v, sdr_backend *be, const char *dir, const char *variant, int keep_dtype);
void sdr_vae_free(sdr_vae *v);
/* dst: src's weights bound again on be in keep_dtype (a pipeline moving to a device). */
int sdr_vae_copy_to(sdr_vae *dst, const sdr_vae *src, sdr_backend *be, int keep_dtype);
/* The factor between image and latent sides: 2^(blocks - 1). */
int sdr_vae_scale_factor(const sdr_vae *v);

/* The channels sdr_vae_encode gives: 2L moments for AutoencoderKL, L latents for
 * AutoencoderTiny. */
int sdr_vae_encoded_channels(const sdr_vae *v);

/* x (B, Cin, H, W) in [-1, 1] -> moments (B, 2L, H/f, W/f): the mean, then the log-variance
 * (DiagonalGaussianDistribution's parameters, before clamping); for AutoencoderTiny the
 * latents (B, L, H/f, W/f) themselves. */
int sdr_vae_encode(sdr_vae *v, sdr_arena *a, sdr_tensor *moments, const sdr_tensor *x);
/* z (B, L, h, w), already divided by scaling_factor -> image (B, Cout, h*f, w*f). */
int sdr_vae_decode(sdr_vae *v, sdr_arena *a, sdr_tensor *image, const sdr_tensor *z);

#endif

/* engine/resnet_block.h — diffusers' ResnetBlock2D, Downsample2D and Upsample2D
 * (models/resnet.py, downsampling.py, upsampling.py), shared by the UNet and the VAE. */
#ifndef SDR_ENGINE_RESNET_BLOCK_H
#define SDR_ENGINE_RESNET_BLOCK_H

#include "engine/arena.h"   // sdr_arena
#include "engine/weights.h" // sdr_weights
#include "kernels/backend.h"

typedef struct sdr_resnet_block {
  int in_channels, out_channels, groups;
  float eps, output_scale_factor;
  sdr_tensor norm1_w, norm1_b; /* (Cin) */
  sdr_tensor conv1_w;          /* (Cout, Cin, 3, 3) */
  sdr_tensor conv1_b;          /* (Cout) */
  sdr_tensor temb_w;           /* (Cout, Ct); no data without a time embedding (the VAE) */
  sdr_tensor temb_b;           /* (Cout) */
  sdr_tensor norm2_w, norm2_b; /* (Cout) */
  sdr_tensor conv2_w;          /* (Cout, Cout, 3, 3) */
  sdr_tensor conv2_b;          /* (Cout) */
  sdr_tensor short_w;          /* (Cout, Cin, 1, 1) when Cin != Cout, else no data */
  sdr_tensor short_b;          /* (Cout) */
} sdr_resnet_block;

/* temb_channels 0: no time embedding. prefix like "down_blocks.0.resnets.1". */
int sdr_resnet_block_bind(sdr_resnet_block *r, sdr_weights *w, const char *prefix, int cin,
                          int cout, int temb_channels, int groups, float eps,
                          float output_scale_factor);
/* x (B, Cin, H, W) -> out (B, Cout, H, W). temb_act is silu(emb) (B, Ct), the
 * same for every block of a UNet call, or NULL in the VAE. */
int sdr_resnet_block_forward(sdr_backend *be, sdr_arena *a, sdr_tensor *out, const sdr_tensor *x,
                             const sdr_tensor *temb_act, const sdr_resnet_block *r);

typedef struct sdr_downsample {
  int channels, padding; /* padding 0: diffusers pads right and bottom by one first (the VAE) */
  sdr_tensor conv_w;     /* (C, C, 3, 3) */
  sdr_tensor conv_b;     /* (C) */
} sdr_downsample;

int sdr_downsample_bind(sdr_downsample *d, sdr_weights *w, const char *prefix, int channels,
                        int padding);
/* (B, C, H, W) -> (B, C, H/2, W/2), a stride-2 convolution. */
int sdr_downsample_forward(sdr_backend *be, sdr_arena *a, sdr_tensor *out, const sdr_tensor *x,
                           const sdr_downsample *d);
/* The output size for an input size, as the convolution computes it. */
int64_t sdr_downsample_size(const sdr_downsample *d, int64_t in);

typedef struct sdr_upsample {
  int channels;
  sdr_tensor conv_w; /* (C, C, 3, 3) */
  sdr_tensor conv_b; /* (C) */
} sdr_upsample;

int sdr_upsample_bind(sdr_upsample *u, sdr_weights *w, const char *prefix, int channels);
/* Nearest 2x, then a 3x3 convolution: (B, C, H, W) -> (B, C, 2H, 2W). out may be
 * one row or column short of that (2H - 1, 2W - 1): the UNet's upsample_size, when
 * its skip came from an odd size; F.interpolate to that size is 2x cut short. */
int sdr_upsample_forward(sdr_backend *be, sdr_arena *a, sdr_tensor *out, const sdr_tensor *x,
                         const sdr_upsample *u);

#endif

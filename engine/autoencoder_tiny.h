/* engine/autoencoder_tiny.h — diffusers' AutoencoderTiny (TAESD: models/autoencoders/
 * autoencoder_tiny.py, vae.py's EncoderTiny and DecoderTiny, unet_2d_blocks.py's
 * AutoencoderTinyBlock): a distilled VAE of plain 3x3 convolutions and ReLUs that a pipeline
 * takes in place of its AutoencoderKL (pipe.vae = AutoencoderTiny.from_pretrained(
 * "madebyollin/taesd")), decoding in a fraction of the time.
 *
 * Its encoder gives the latents themselves, not a distribution: a pipeline's retrieve_latents
 * takes `.latents` and draws no noise from the generator.
 */
#ifndef SDR_ENGINE_AUTOENCODER_TINY_H
#define SDR_ENGINE_AUTOENCODER_TINY_H

#include "engine/arena.h"
#include "engine/model_config.h" // sdr_json
#include "engine/weights.h"
#include "kernels/backend.h"

enum { SDR_TINY_MAX_STAGES = 6 };

typedef struct sdr_tiny_config {
  int nstages; /* as many in the encoder as in the decoder: the image/latent factor 2^(n-1) */
  int encoder_channels[SDR_TINY_MAX_STAGES], encoder_blocks[SDR_TINY_MAX_STAGES];
  int decoder_channels[SDR_TINY_MAX_STAGES], decoder_blocks[SDR_TINY_MAX_STAGES];
  float latent_magnitude, latent_shift; /* scale_latents' range (the config shows them) */
} sdr_tiny_config;

/* One entry of EncoderTiny's or DecoderTiny's nn.Sequential, in order. */
typedef enum sdr_tiny_op {
  SDR_TINY_CONV,     /* nn.Conv2d, 3x3, padding 1 */
  SDR_TINY_BLOCK,    /* AutoencoderTinyBlock */
  SDR_TINY_RELU,     /* the decoder's activation after its first convolution */
  SDR_TINY_UPSAMPLE, /* nn.Upsample(scale_factor=2), nearest */
} sdr_tiny_op;

typedef struct sdr_tiny_layer {
  sdr_tiny_op op;
  int in, out, stride;
  sdr_tensor w, b;                 /* CONV; b unbound (NULL data) where bias=False */
  sdr_tensor conv_w[3], conv_b[3]; /* BLOCK: conv, act, conv, act, conv */
  sdr_tensor skip_w;               /* BLOCK: the 1x1 skip where in != out */
} sdr_tiny_layer;

typedef struct sdr_tiny_coder {
  int nlayers;
  sdr_tiny_layer *layers;
} sdr_tiny_coder;

typedef struct sdr_autoencoder_tiny {
  sdr_tiny_coder encoder, decoder;
} sdr_autoencoder_tiny;

/* The AutoencoderTiny keys of config.json j (path names it in errors). */
int sdr_tiny_config_read(sdr_tiny_config *c, const sdr_json *j, const char *path);
/* Binds "encoder.layers.N..." and "decoder.layers.N..." from w. */
int sdr_autoencoder_tiny_bind(sdr_autoencoder_tiny *t, sdr_weights *w, const sdr_tiny_config *c,
                              int in_channels, int out_channels, int latent_channels);
void sdr_autoencoder_tiny_free(sdr_autoencoder_tiny *t);

/* EncoderTiny: x (B, Cin, H, W) in [-1, 1] -> latents (B, L, H/f, W/f), computed in act. */
int sdr_autoencoder_tiny_encode(const sdr_autoencoder_tiny *t, sdr_backend *be, sdr_arena *a,
                                sdr_dtype act, sdr_tensor *latents, const sdr_tensor *x);
/* DecoderTiny: z (B, L, h, w) -> image (B, Cout, h*f, w*f) in [-1, 1]'s convention. */
int sdr_autoencoder_tiny_decode(const sdr_autoencoder_tiny *t, sdr_backend *be, sdr_arena *a,
                                sdr_dtype act, sdr_tensor *image, const sdr_tensor *z);

#endif

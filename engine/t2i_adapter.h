/* engine/t2i_adapter.h — diffusers' T2IAdapter (models/adapter.py: FullAdapter,
 * FullAdapterXL, LightAdapter and their blocks): a small network that turns a control
 * picture (a sketch, edges, depth) into one feature map per UNet down block, which the UNet
 * adds inside its down path (down_intrablock_additional_residuals). TencentARC's
 * t2iadapter_* for SD 1.5 and t2i-adapter-*-sdxl-1.0 are such models.
 *
 * The picture is pixel-unshuffled by downscale_factor first; the features come from plain
 * convolutions, ReLUs and 2x2 average pooling (ceil mode). It runs once per pipeline call,
 * not per step, so its pixel shuffling and pooling go through the host.
 */
#ifndef SDR_ENGINE_T2I_ADAPTER_H
#define SDR_ENGINE_T2I_ADAPTER_H

#include "engine/arena.h"
#include "engine/weights.h"
#include "kernels/backend.h"

enum { SDR_ADAPTER_MAX_CHANNELS = 8, SDR_ADAPTER_MAX_FEATURES = SDR_ADAPTER_MAX_CHANNELS + 1 };

typedef enum sdr_adapter_type {
  SDR_ADAPTER_FULL,    /* "full_adapter": SD 1.x/2.x */
  SDR_ADAPTER_FULL_XL, /* "full_adapter_xl": SDXL */
  SDR_ADAPTER_LIGHT,   /* "light_adapter" */
} sdr_adapter_type;

typedef struct sdr_t2i_adapter_config {
  int in_channels;
  int nchannels, channels[SDR_ADAPTER_MAX_CHANNELS];
  int num_res_blocks, downscale_factor;
  sdr_adapter_type type;
} sdr_t2i_adapter_config;

/* AdapterResnetBlock (block2 a 1x1 convolution) or LightAdapterResnetBlock (3x3). */
typedef struct sdr_adapter_resnet {
  sdr_tensor w1, b1, w2, b2;
} sdr_adapter_resnet;

/* AdapterBlock or LightAdapterBlock: [average pooling], [in_conv], resnets, [out_conv]. */
typedef struct sdr_adapter_block {
  int in, mid, out, down, has_in_conv, has_out_conv;
  sdr_tensor in_w, in_b, out_w, out_b;
  sdr_adapter_resnet *resnets;
} sdr_adapter_block;

typedef struct sdr_t2i_adapter {
  sdr_t2i_adapter_config cfg;
  sdr_backend *be;
  sdr_dtype act;
  sdr_weights weights;
  sdr_tensor conv_in_w, conv_in_b; /* the full adapters' */
  int nblocks;                     /* as many features */
  sdr_adapter_block blocks[SDR_ADAPTER_MAX_FEATURES];
} sdr_t2i_adapter;

/* dir holds config.json and diffusion_pytorch_model.* (keep_dtype as sdr_weights_open). */
int sdr_t2i_adapter_load(sdr_t2i_adapter *a, sdr_backend *be, const char *dir, const char *variant,
                         int keep_dtype);
/* dst: src's weights bound again on be in keep_dtype. */
int sdr_t2i_adapter_copy_to(sdr_t2i_adapter *dst, const sdr_t2i_adapter *src, sdr_backend *be,
                            int keep_dtype);
void sdr_t2i_adapter_free(sdr_t2i_adapter *a);

/* total_downscale_factor: the features' smallest scale against the picture. */
int sdr_t2i_adapter_total_downscale(const sdr_t2i_adapter *a);

/* The features of pictures x, host float32 (B, in_channels, H, W) with H and W multiples of
 * downscale_factor: features[0 .. nblocks-1] in the arena, in the adapter's act dtype. */
int sdr_t2i_adapter_forward(sdr_t2i_adapter *ad, sdr_arena *a, const float *x,
                            const int64_t shape[4], sdr_tensor *features);

#endif

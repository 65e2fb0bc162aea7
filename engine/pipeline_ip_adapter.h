/* engine/pipeline_ip_adapter.h — IP-Adapters in a pipeline: IPAdapterMixin's
 * load_ip_adapter, set_ip_adapter_scale and unload_ip_adapter (loaders/ip_adapter.py), and
 * the pipelines' encode_image and prepare_ip_adapter_image_embeds
 * (pipeline_stable_diffusion.py).
 */
#ifndef SDR_ENGINE_PIPELINE_IP_ADAPTER_H
#define SDR_ENGINE_PIPELINE_IP_ADAPTER_H

#include "engine/pipeline.h"

/* load_ip_adapter: the n weight files, one adapter each, replace those loaded before, at
 * scale 1. The image encoder is loaded from encoder_dir when the pipeline has none (NULL:
 * none loaded; runs then need ip_adapter_image_embeds), and CLIPImageProcessor() becomes
 * the feature_extractor when there is none. On failure nothing changed. */
int sdr_pipeline_load_ip_adapter(sdr_pipeline *p, const char *const *paths, int n,
                                 const char *encoder_dir);
/* unload_ip_adapter: the adapters and the image encoder go; the feature extractor stays
 * (the safety checker uses it). */
void sdr_pipeline_unload_ip_adapter(sdr_pipeline *p);
/* set_ip_adapter_scale: one scale for every adapter, or one each (n of them). */
int sdr_pipeline_set_ip_adapter_scale(sdr_pipeline *p, const float *scale, int n);

/* pipe.to for the adapters and the encoder: bound again on be against the new UNet u into
 * *enc and ads (not yet attached). */
int sdr_pipeline_ip_copy_to(const sdr_pipeline *p, sdr_backend *be, sdr_unet *u, int keep_dtype,
                            sdr_clip_vision_projection **enc, sdr_ip_adapter **ads);
void sdr_pipeline_ip_free(sdr_clip_vision_projection *enc, sdr_ip_adapter **ads, int n);

/* prepare_ip_adapter_image_embeds: for each adapter, host float32 embeddings
 * (rows, n, E) or (rows, n, T, E) into embeds[i] (malloc'd) with their shapes: the pictures'
 * embeddings stacked B times, or the given ones' rows repeated B times (exact: a run's
 * batch of B, where each half given must be one row); doubled when guided, the negatives
 * first. */
int sdr_ip_image_embeds(sdr_pipeline *p, const sdr_generate *g, int guided, int B, int exact,
                        float **embeds, int *ndim, int64_t shapes[][4]);
/* One adapter's embeddings (host float32 of shape[0..ndim)) through its projection (the
 * UNet's encoder_hid_proj): tokens (rows, n * tokens, C) on its backend, allocated in a. */
int sdr_ip_tokens(sdr_ip_adapter *ad, sdr_arena *a, const float *embeds, int ndim,
                  const int64_t *shape, sdr_tensor *tokens);
/* The same through the adapters' projections: tokens[i] (rows, n * tokens, C) on the
 * backend, allocated in p's arena (the run's). */
int sdr_ip_prepare(sdr_pipeline *p, const sdr_generate *g, int guided, int B, sdr_tensor *tokens);

#endif

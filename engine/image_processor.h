/* engine/image_processor.h — diffusers' VaeImageProcessor: images to and from
 * the VAE's tensors, and a cheap look at latents while they are denoised. */
#ifndef SDR_ENGINE_IMAGE_PROCESSOR_H
#define SDR_ENGINE_IMAGE_PROCESSOR_H

#include "engine/image.h"    // sdr_image
#include "kernels/backend.h" // sdr_tensor

/* preprocess: floors the size to a multiple of factor (resizing with Lanczos
 * when that changes it), takes RGB, maps [0, 255] to [-1, 1] into out
 * (1, 3, h, w) float32 host memory (malloc'd *data). */
int sdr_image_to_tensor(const sdr_image *img, int factor, float **data, int *height, int *width);

/* postprocess to "pil": x (B, 3, H, W) float32 host values in [-1, 1] ->
 * images, (x / 2 + 0.5) clamped to [0, 1], times 255, rounded (numpy_to_pil).
 * Fills imgs[0..B-1]. */
int sdr_tensor_to_images(const float *x, int B, int H, int W, sdr_image **imgs);
/* postprocess to "np": the same values in [0, 1], as (B, H, W, 3). */
void sdr_tensor_to_np(const float *x, int B, int H, int W, float *out);

/* A rough RGB picture of one latent (C, h, w), for live previews. */
sdr_image *sdr_latents_preview(const float *latents, int C, int h, int w);

#endif

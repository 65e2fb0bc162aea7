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
/* The same into out (3, height, width), resized to that size (a list of images all
 * takes the first's). */
int sdr_image_to_pixels(const sdr_image *img, int width, int height, float *out);
/* The same with another resample filter (a VaeImageProcessor made with resample=...). */
int sdr_image_to_pixels_with(const sdr_image *img, int width, int height, int resample, float *out);
/* The same in [0, 1] (VaeImageProcessor with do_normalize=False, as ControlNet's
 * control_image_processor). */
int sdr_image_to_unit_pixels(const sdr_image *img, int width, int height, float *out);
/* preprocess of a tensor x (B, C, H, W) host float32: resized to (height, width) as
 * F.interpolate's nearest mode does, and mapped from [0, 1] to [-1, 1] unless some
 * value is negative (then it is taken to be in [-1, 1] already). Returns whether it
 * mapped them. */
int sdr_pixels_preprocess(const float *x, int B, int C, int H, int W, int height, int width,
                          float *out);
/* The same without the mapping (VaeImageProcessor with do_normalize=False). */
void sdr_pixels_resize_nearest(const float *x, int B, int C, int H, int W, int height, int width,
                               float *out);

/* postprocess to "pil": x (B, 3, H, W) float32 host values in [-1, 1] ->
 * images, (x / 2 + 0.5) clamped to [0, 1], times 255, rounded (numpy_to_pil).
 * Fills imgs[0..B-1]. */
int sdr_tensor_to_images(const float *x, int B, int H, int W, sdr_image **imgs);
/* postprocess to "np": the same values in [0, 1], as (B, H, W, 3). */
void sdr_tensor_to_np(const float *x, int B, int H, int W, float *out);

/* A rough RGB picture of one latent (C, h, w), for live previews. */
sdr_image *sdr_latents_preview(const float *latents, int C, int h, int w);

#endif

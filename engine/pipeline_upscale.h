/* engine/pipeline_upscale.h — StableDiffusionUpscalePipeline's additions to a run (diffusers'
 * pipeline_stable_diffusion_upscale.py, stabilityai/stable-diffusion-x4-upscaler): the
 * low-resolution pictures, noised by the low_res_scheduler to noise_level, go beside the
 * latents into the UNet at every step (its 7 input channels), the noise level is the UNet's
 * class label, and the latents have the pictures' size, so the VAE's decoding makes them its
 * scale factor (4) times larger. */
#ifndef SDR_ENGINE_PIPELINE_UPSCALE_H
#define SDR_ENGINE_PIPELINE_UPSCALE_H

#include "engine/pipeline.h" // sdr_pipeline, sdr_generate

/* The run's size: the pictures' (floored to the VAE's factor, as the upscaler's image processor
 * makes them) times that factor. */
int sdr_upscale_size(const sdr_pipeline *p, const sdr_generate *g, int *height, int *width);

/* The pictures as the UNet sees them beside the latents (guided B rows and up: the pictures
 * noised to noise_level, repeated as torch.cat([image] * 2 * num_images_per_prompt) does) into
 * image (nb * B, 3, lh, lw), and the noise level for each row into labels (nb * B) int64. The
 * pictures' noise is drawn first, before the latents, as diffusers draws it. */
int sdr_upscale_prepare(sdr_pipeline *p, const sdr_generate *g, int nb, int64_t B, int64_t lh,
                        int64_t lw, sdr_tensor *image, sdr_tensor *labels);

#endif

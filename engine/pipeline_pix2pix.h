/* engine/pipeline_pix2pix.h — StableDiffusionInstructPix2PixPipeline's picture latents
 * (pipeline_stable_diffusion_instruct_pix2pix.py prepare_image_latents): the picture is
 * encoded to its posterior's mean (not sampled, not scaled) and goes into the UNet's input
 * beside the latents each step, for the text-and-image, image-only and unconditional rows of
 * the guided batch (image, image, zeros). The rest of the run is txt2img's, with three
 * guided rows (engine/pipeline.c).
 */
#ifndef SDR_ENGINE_PIPELINE_PIX2PIX_H
#define SDR_ENGINE_PIPELINE_PIX2PIX_H

#include "engine/pipeline.h"

/* out ((cfg ? 3 : 1) * B, L, h, w) on the backend. */
int sdr_pix2pix_image_latents(sdr_pipeline *p, const sdr_generate *g, int cfg, int64_t B,
                              sdr_tensor *out);

#endif

/* engine/pipeline_inpaint.h — what StableDiffusionInpaintPipeline adds to a run
 * (diffusers' pipeline_stable_diffusion_inpaint.py): the starting latents, the mask and
 * the masked picture's latents, the UNet's 9-channel input, and the 4-channel UNets'
 * blend after each step. Used by engine/pipeline.c only. */
#ifndef SDR_ENGINE_PIPELINE_INPAINT_H
#define SDR_ENGINE_PIPELINE_INPAINT_H

#include "engine/pipeline.h" // sdr_pipeline, sdr_generate

/* Whether g is an inpainting run (a mask is given). */
int sdr_inpaint_wanted(const sdr_generate *g);

/* A run's tensors, in the pipeline's arena for the run. */
typedef struct sdr_inpaint {
  int unet9;            /* the UNet takes [latents, mask, masked latents] (in_channels 9) */
  sdr_tensor mask;      /* (G*B, 1, h, w): 1 where to paint; G = 2 with guidance */
  sdr_tensor masked;    /* (G*B, L, h, w): the masked picture's latents */
  sdr_tensor unet_in;   /* (G*B, 2L + 1, h, w), unet9 only */
  sdr_tensor image_lat; /* (B, L, h, w): the picture's latents, 4-channel UNets only */
  sdr_tensor noise;     /* (B, L, h, w): the first draw of noise */
  sdr_tensor mask_l;    /* (B, L, h, w): the mask over every latent channel, 4-channel only */
  sdr_tensor keep_l;    /* 1 - mask_l */
  sdr_tensor scratch;   /* (B, L, h, w) */
} sdr_inpaint;

/* check_inputs and the UNet's channels: 4 (the latents), or 9. */
int sdr_inpaint_check(const sdr_pipeline *p, const sdr_generate *g);

/* prepare_latents and prepare_mask_latents: latents (B, L, h, w) on the backend start from
 * noise (strength 1, times init_noise_sigma) or from the picture's latents noised to t0;
 * the draws in diffusers' order: the picture's posterior (when its latents are needed),
 * the noise, the masked picture's posterior. guided doubles mask and masked latents. */
int sdr_inpaint_prepare(sdr_pipeline *p, const sdr_generate *g, int guided, sdr_tensor *latents,
                        double t0, sdr_inpaint *s);

/* The UNet's input for a 9-channel UNet: scaled (G*B, L, h, w) then the mask and the masked
 * latents, into s->unet_in. */
int sdr_inpaint_unet_input(sdr_pipeline *p, sdr_inpaint *s, const sdr_tensor *scaled);

/* A 4-channel UNet after each step: latents outside the mask are the picture's latents,
 * noised to the next timestep t_next (as they are when there is none). */
int sdr_inpaint_blend(sdr_pipeline *p, sdr_inpaint *s, sdr_tensor *latents, int has_next,
                      double t_next);

#endif

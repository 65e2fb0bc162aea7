/* engine/pipeline_controlnet.h — StableDiffusionControlNetPipeline's additions to a run
 * (diffusers' pipeline_controlnet.py and multicontrolnet.py): the control pictures
 * prepared once, and before each UNet call the residuals of the nets acting at that step,
 * summed in the nets' order. Used by engine/pipeline.c. */
#ifndef SDR_ENGINE_PIPELINE_CONTROLNET_H
#define SDR_ENGINE_PIPELINE_CONTROLNET_H

#include "engine/pipeline.h" // sdr_pipeline, sdr_generate

typedef struct sdr_control_run {
  const sdr_generate *g;
  int guess;                         /* guess mode (asked, or forced by pooled conditions) */
  int guided;                        /* the UNet's batch is (uncond, text) */
  int64_t B;                         /* images in the run */
  int64_t steps;                     /* the run's timesteps, for control_guidance_start/end */
  sdr_tensor cond[SDR_MAX_CONTROLS]; /* each net's pictures, batched as its input */
} sdr_control_run;

/* The run's size when height or width is not given (0): the first net's first picture's,
 * floored to the VAE's factor. Also checks the nets and pictures. */
int sdr_control_size(const sdr_pipeline *p, const sdr_generate *g, int *height, int *width);
/* The pictures prepared and uploaded into p's arena for a batch of B images. */
int sdr_control_prepare(sdr_pipeline *p, const sdr_generate *g, int guided, int64_t B, int height,
                        int width, int64_t steps, sdr_control_run *r);
/* Which nets act at step i (a bit each): control_guidance_start/end's keep. */
unsigned sdr_control_active(const sdr_control_run *r, int64_t i);
/* The residuals of the `active` nets for the UNet's inputs (x, tvec, context, and SDXL's
 * text_embeds and time_ids or NULL: its whole batch), allocated in p's arena (the caller
 * releases them) into down/mid and *res. res->ndown is 0 when no net acts. */
int sdr_control_residuals(sdr_pipeline *p, const sdr_control_run *r, unsigned active,
                          const sdr_tensor *x, const sdr_tensor *tvec, const sdr_tensor *context,
                          const sdr_tensor *text_embeds, const sdr_tensor *time_ids,
                          sdr_tensor *down, sdr_tensor *mid, sdr_unet_residuals *res);

#endif

/* engine/pipeline_lcm.h — latent consistency models in a pipeline: the guidance scale
 * embedding an LCM's UNet takes as timestep_cond (get_guidance_scale_embedding of
 * pipeline_latent_consistency_text2img.py and pipeline_stable_diffusion.py), given where its
 * config has time_cond_proj_dim; classifier-free guidance is then off, as diffusers'
 * do_classifier_free_guidance says.
 */
#ifndef SDR_ENGINE_PIPELINE_LCM_H
#define SDR_ENGINE_PIPELINE_LCM_H

#include "engine/pipeline.h"

/* get_guidance_scale_embedding(w) for one w: out (dim floats) = [sin(1000 w f_k), cos(1000 w
 * f_k)], f_k = exp(-k log(10000) / (dim / 2 - 1)), a zero after them when dim is odd; in
 * float32 as torch computes it. */
void sdr_guidance_scale_embedding(float w, int dim, float *out);

/* Whether a run of g uses classifier-free guidance: guidance_scale > 1, the UNet takes no
 * guidance embedding, and the pipeline guides at all (LatentConsistencyModelPipeline never
 * does); InstructPix2Pix's: guidance_scale > 1 and image_guidance_scale >= 1. */
int sdr_pipeline_guided(const sdr_pipeline *p, const sdr_generate *g);

/* The run's timestep_cond on the backend, (B, time_cond_proj_dim) of guidance_scale - 1, in
 * p's arena; *out NULL (and 0 returned) when the UNet takes none. */
int sdr_lcm_timestep_cond(sdr_pipeline *p, const sdr_generate *g, int64_t B, sdr_tensor *cond,
                          const sdr_tensor **out);

#endif

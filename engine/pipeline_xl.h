/* engine/pipeline_xl.h — what StableDiffusionXLPipeline (diffusers'
 * pipelines/stable_diffusion_xl/pipeline_stable_diffusion_xl.py) adds to a run: encode_prompt
 * over two text encoders (the penultimate layers side by side, the second encoder's projected
 * pooled output for the UNet's "text_time" embedding, zeros for an unset negative prompt
 * where force_zeros_for_empty_prompt says so), _get_add_time_ids' micro-conditioning, and
 * denoising_end's cut of the steps.
 */
#ifndef SDR_ENGINE_PIPELINE_XL_H
#define SDR_ENGINE_PIPELINE_XL_H

#include "engine/pipeline.h"

/* diffusers' denoising_value_valid: a denoising_start or denoising_end strictly between 0 and 1
 * acts (an unset one is 0 here). */
static inline int sdr_xl_fraction(double v) { return v > 0 && v < 1; }

/* check_inputs' rules for SDXL's own arguments (prompt_2, the pooled embeddings, the sizes). */
int sdr_xl_check(const sdr_pipeline *p, const sdr_generate *g);
/* _get_add_time_ids' check that the time ids (with or without the aesthetic score) and the
 * pooled width make the UNet's add_embedding input; denoising_start before denoising_end. */
int sdr_xl_check_time_ids(const sdr_pipeline *p, const sdr_generate *g);

/* encode_prompt without the repeat per image: host float32 prompt embeddings (nprompts, T, D)
 * at *pos and pooled ones (nprompts, P) at *pooled; guided, the negatives' at *neg and
 * *neg_pooled (else NULL). *pos owns one block with *neg, *pooled one with *neg_pooled. */
int sdr_xl_encode_prompt(sdr_pipeline *p, const sdr_generate *g, int guided, float **pos,
                         float **neg, float **pooled, float **neg_pooled, int *T, int *D, int *P);

/* The UNet's added_cond_kwargs for the guided batch of nb * B rows (nb 2 guided: the
 * negatives' rows first, as the prompt embeddings): text_embeds (nb * B, P), each prompt's
 * pooled embeddings repeated per image, and time_ids (nb * B, 6) as diffusers' cat and
 * repeat lay them out, float32 in the arena. */
int sdr_xl_added_cond(sdr_pipeline *p, const sdr_generate *g, int guided, int B, int height,
                      int width, const float *pooled, const float *neg_pooled, int P,
                      sdr_tensor *text_embeds, sdr_tensor *time_ids);

/* How many of the n timesteps ts a run with g's denoising_end takes (n without one). */
int sdr_xl_denoising_steps(const sdr_pipeline *p, const sdr_generate *g, const double *ts, int n);

/* StableDiffusionXLImg2ImgPipeline's get_timesteps with a denoising_start in (0, 1): how many
 * of the last of the n timesteps ts run (strength is not used then). */
int sdr_xl_denoising_start(const sdr_pipeline *p, const sdr_generate *g, const double *ts, int n);

/* The latents as the VAE decodes them, in place: latents * latents_std / scaling_factor +
 * latents_mean per channel where the VAE's config gives both (Playground v2.5's), else
 * latents / scaling_factor. */
int sdr_xl_unscale_latents(sdr_pipeline *p, sdr_arena *a, sdr_tensor *latents);

#endif

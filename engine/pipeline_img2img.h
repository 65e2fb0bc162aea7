/* engine/pipeline_img2img.h — img2img's starting point: the pictures (or latents) a
 * run is given, as diffusers' VaeImageProcessor.preprocess and the img2img
 * pipeline's prepare_latents make them. Used by engine/pipeline.c and
 * engine/pipeline_inpaint.c. */
#ifndef SDR_ENGINE_PIPELINE_IMG2IMG_H
#define SDR_ENGINE_PIPELINE_IMG2IMG_H

#include "engine/pipeline.h" // sdr_pipeline, sdr_generate

/* The pictures given as Images, as a list (one image is a list of one; its entry NULL when
 * none is given). */
const sdr_image *const *sdr_img2img_pictures(const sdr_generate *g, int *n);
/* Whether g is an img2img run. */
int sdr_img2img_wanted(const sdr_generate *g);
/* Whether g's pictures are RGBA, which diffusers' img2img takes as latents (its
 * preprocess keeps the 4 channels): the run denoises their normalized values and makes
 * pictures the VAE's factor times their size. */
int sdr_img2img_rgba(const sdr_generate *g);
/* The first picture's size as given (a tensor's last two dimensions); -1 with a message when
 * none is given. */
int sdr_img2img_given_size(const sdr_generate *g, int *height, int *width);
/* The pictures' size, floored to the VAE's factor (or the latents' times it). */
int sdr_img2img_size(const sdr_pipeline *p, const sdr_generate *g, int *height, int *width);
/* Encodes K pictures (K, 3, height, width) host in [-1, 1] and samples their posteriors
 * (_encode_vae_image): z (K, L, h, w) host, times scaling_factor. One generator: one draw
 * for the K; a list: picture i from generator i. */
int sdr_img2img_encode(sdr_pipeline *p, const sdr_generate *g, const float *pixels, int K,
                       int height, int width, float *z);
/* n host rows of `one` floats repeated whole to B rows (torch's repeat: with several
 * pictures they alternate), uploaded to t. */
int sdr_img2img_upload_repeated(sdr_pipeline *p, sdr_tensor *t, const float *rows, int n, int64_t B,
                                size_t one);
/* The K pictures' latents (K, L, h, w) host, malloc'd: given latents (or an RGBA picture's
 * values) as they are; pictures encoded, their posteriors sampled times scaling_factor
 * (mode 0: img2img's) or their means as they are (mode 1: InstructPix2Pix's
 * latent_dist.mode()). K must divide the batch B. */
float *sdr_img2img_starts(sdr_pipeline *p, const sdr_generate *g, int64_t B, int64_t lh, int64_t lw,
                          int mode, int *K);
/* latents (B, C, h, w) on the backend: the encoded pictures (posterior samples times
 * scaling_factor; given latents as they are), the batch repeated to B, noised to t0 (not
 * when g has a denoising_start, as SDXL's img2img). */
int sdr_img2img_latents(sdr_pipeline *p, const sdr_generate *g, sdr_tensor *latents, double t0);

#endif

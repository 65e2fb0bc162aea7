/* engine/safety_checker.h — diffusers' StableDiffusionSafetyChecker
 * (pipelines/stable_diffusion/safety_checker.py).
 *
 * A CLIP vision tower and its projection embed each picture; its cosine similarity to
 * 17 concept embeddings and 3 "special care" ones, less each one's threshold, rounded
 * to 3 places, says whether the picture is flagged: any concept above 0 flags it, and a
 * special-care one above 0 adds 0.01 to the scores after it (the later special-care
 * ones and every concept). A flagged picture is replaced by a black one. diffusers runs
 * this after the VAE whenever the pipeline has a checker (model_index.json names one);
 * CompVis/stable-diffusion-v1-4's is CLIP ViT-L/14 at 224x224.
 */
#ifndef SDR_ENGINE_SAFETY_CHECKER_H
#define SDR_ENGINE_SAFETY_CHECKER_H

#include "engine/arena.h"                // sdr_arena
#include "engine/clip_image_processor.h" // sdr_clip_image_processor
#include "engine/clip_vision_model.h"    // sdr_clip_vision_model
#include "engine/weights.h"              // sdr_weights

enum { SDR_SAFETY_CONCEPTS = 17, SDR_SAFETY_SPECIAL = 3 };

typedef struct sdr_safety_checker {
  sdr_backend *be;
  sdr_weights weights;
  sdr_clip_vision_model vision;
  int projection_dim;              /* P */
  sdr_tensor proj_w;               /* (P, D) visual_projection, no bias */
  sdr_tensor concept, special;     /* (17, P), (3, P) */
  sdr_tensor concept_w, special_w; /* (17), (3): the thresholds */
} sdr_safety_checker;

/* dir is the safety_checker folder (config.json, model[.variant].safetensors or
 * pytorch_model.bin). keep_dtype as in sdr_weights_open. */
int sdr_safety_checker_load(sdr_safety_checker *sc, sdr_backend *be, const char *dir,
                            const char *variant, int keep_dtype);
int sdr_safety_checker_copy_to(sdr_safety_checker *dst, const sdr_safety_checker *src,
                               sdr_backend *be, int keep_dtype);
void sdr_safety_checker_free(sdr_safety_checker *sc);

/* The checker's numbers for pixel_values (B, 3, S, S) host float32: image_embeds (B, P),
 * and the cosine similarities special (B, 3) and concept (B, 17), as float32 after the
 * model's dtype (torch computes them in it); any output may be NULL. */
int sdr_safety_checker_scores(sdr_safety_checker *sc, sdr_arena *a, const float *pixels, int64_t B,
                              int64_t S, float *embeds, float *special, float *concept);
/* Flags from those similarities: nsfw[b] = 1 when picture b has a bad concept. */
int sdr_safety_checker_verdicts(sdr_safety_checker *sc, sdr_arena *a, const float *special,
                                const float *concept, int64_t B, unsigned char *nsfw);

/* run_safety_checker for decoded pictures x (B, 3, H, W) host float32 in [-1, 1]: they go
 * to the feature extractor as the PIL pictures postprocess makes, and each flagged one
 * is set to -1 everywhere, which every output type shows as black (diffusers zeroes it
 * and then leaves it out of the denormalization). nsfw gets B flags. */
int sdr_safety_checker_run(sdr_safety_checker *sc, const sdr_clip_image_processor *fe, sdr_arena *a,
                           float *x, int64_t B, int64_t H, int64_t W, unsigned char *nsfw);

#endif

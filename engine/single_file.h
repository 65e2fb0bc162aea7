/* engine/single_file.h — a pipeline from one checkpoint in the original CompVis/LDM layout.
 *
 * diffusers' StableDiffusionPipeline.from_single_file (loaders/single_file.py
 * and single_file_utils.py, 0.27): a .safetensors or .ckpt file holding
 * model.diffusion_model.* (the UNet), first_stage_model.* (the VAE) and
 * cond_stage_model.transformer.* (CLIP ViT-L/14, SD 1.x) or
 * cond_stage_model.model.* (OpenCLIP ViT-H, SD 2.x). The names are converted
 * to diffusers' as convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint and
 * the text encoder converters do, without copying a tensor: each diffusers
 * name is a view of the file (the VAE's 1x1 attention convolutions seen as
 * matrices, OpenCLIP's fused q/k/v projection seen as three).
 *
 * What the file does not say is inferred as diffusers infers it from the
 * original v1/v2 inference configs: sizes from the tensors' shapes; a
 * context width of 1024 means SD 2.x (linear projections, 64-channel heads:
 * attention_head_dim [5, 10, 20, 20] at SD 2.x sizes, 768 pixels and
 * v-prediction, since diffusers 0.27 cannot see the global step); otherwise
 * SD 1.x (8 heads, 512 pixels, epsilon). The tokenizer is CLIP ViT-L/14's
 * (SD 2.x's pads with "!"), since a checkpoint carries none; the scheduler is
 * made as create_scheduler_from_ldm makes it: DDIM by default (diffusers
 * 0.27's scheduler_type="ddim"), with SD's betas. The UNet's own weights are
 * used, not the EMA copy, unless extract_ema asks (diffusers' default too).
 * Given config_dir, a diffusers folder of the same model, its configs,
 * tokenizer and scheduler are used instead of inferred ones (diffusers'
 * later `config=` option): the way to load a model whose sizes the rules
 * above cannot guess.
 */
#ifndef SDR_ENGINE_SINGLE_FILE_H
#define SDR_ENGINE_SINGLE_FILE_H

#include <stddef.h>

#include "engine/pipeline.h" // sdr_pipeline
#include "engine/weights.h"  // sdr_weight_file, sdr_weight_view

typedef struct sdr_single_file_options {
  const char *config_dir;      /* NULL: infer; else a diffusers folder for configs */
  const char *tokenizer_dir;   /* NULL: config_dir's, else CLIP ViT-L/14's (see below) */
  int extract_ema;             /* 1: the model_ema.* UNet weights when the file has them */
  const char *scheduler_type;  /* NULL: "ddim"; "pndm", "lms", "euler", "euler-ancestral", "dpm" */
  const char *prediction_type; /* NULL: inferred; "epsilon", "v_prediction" */
  int image_size;              /* 0: inferred (512; SD 2.x 768; SDXL 1024) */
  int want_xl; /* the pipeline class asked for: 1 an SDXL one, -1 an SD 1.x/2.x one, 0 either */
} sdr_single_file_options;

/* keep_dtype as in sdr_pipeline_load; opts NULL means all defaults. */
int sdr_pipeline_load_single_file_ex(sdr_pipeline *p, sdr_backend *be, const char *path,
                                     int keep_dtype, const sdr_single_file_options *opts);

/* Where CLIP ViT-L/14's tokenizer files are found when none is given: the
 * folder in $SDREPL_CLIP_TOKENIZER; the Hugging Face cache's
 * openai/clip-vit-large-patch14 (refs/main), where diffusers finds it; the
 * copy in sdrepl's source tree ($SDREPL_SOURCE_DIR or this build's).
 * Writes the folder into out; -1 with a message when none has vocab.json. */
int sdr_single_file_clip_tokenizer(char *out, size_t cap);

/* ---- the name tables (engine/ldm_names.c) ------------------------------------ */

/* A list of views with their names, grown by the converters. */
typedef struct sdr_ldm_views {
  sdr_weight_view *v;
  size_t n, cap;
  char **unknown; /* keys that have no diffusers name, for the error */
  size_t nunknown;
} sdr_ldm_views;

void sdr_ldm_views_free(sdr_ldm_views *views);

/* Counts the keys under prefix "<what>." with distinct indices at their
 * first dotted position ("input_blocks" -> 12 for SD 1.x). */
int sdr_ldm_count(const sdr_weight_file *f, const char *prefix);

/* model.diffusion_model.* -> UNet2DConditionModel names (convert_ldm_unet_checkpoint).
 * ema: take each tensor from its model_ema.* copy (LitEma's dotless names). */
int sdr_ldm_unet_views(const sdr_weight_file *f, int layers_per_block, int ema, sdr_ldm_views *out);
/* first_stage_model.* -> AutoencoderKL names (convert_ldm_vae_checkpoint),
 * attention convolutions as matrices (conv_attn_to_linear). */
int sdr_ldm_vae_views(const sdr_weight_file *f, int nblocks, sdr_ldm_views *out);
/* <prefix>* -> CLIPTextModel names (convert_ldm_clip_checkpoint): prefix
 * "cond_stage_model.transformer." (SD 1.x) or "conditioner.embedders.0.transformer." (SDXL). */
int sdr_ldm_clip_views(const sdr_weight_file *f, const char *prefix, sdr_ldm_views *out);
/* <prefix>* -> CLIPTextModel names (create_text_encoder_from_open_clip_checkpoint), prefix
 * "cond_stage_model.model." (SD 2.x) or SDXL's "conditioner.embedders.N.model.": blocks from
 * nlayers on are left out, as SD 2.x's last one is; projection: text_projection kept as
 * "text_projection.weight" in the file's (width, projection) layout, the transpose of
 * CLIPTextModelWithProjection's (the model reads it so, see clip_text_model.h). */
int sdr_ldm_openclip_views(const sdr_weight_file *f, const char *prefix, int nlayers,
                           int projection, sdr_ldm_views *out);

#endif

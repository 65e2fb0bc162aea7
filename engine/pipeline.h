/* engine/pipeline.h — StableDiffusionPipeline and StableDiffusionImg2ImgPipeline
 * (diffusers' pipeline_stable_diffusion.py and _img2img.py) in one engine call.
 *
 * The steps and their order are diffusers': encode the prompts (negative first
 * when guided), set the timesteps (sliced by strength for img2img), make the
 * latents (img2img: the VAE posterior's sample first, then one draw of noise
 * for every image), denoise with classifier-free guidance as one batch,
 * decode. Every random draw uses the generator(s) given, so a seed gives the
 * latents diffusers would have.
 */
#ifndef SDR_ENGINE_PIPELINE_H
#define SDR_ENGINE_PIPELINE_H

#include "engine/clip_text_model.h"
#include "engine/clip_tokenizer.h"
#include "engine/controlnet.h"
#include "engine/generator.h"
#include "engine/clip_vision_projection.h"
#include "engine/image.h"
#include "engine/ip_adapter.h"
#include "engine/kept_files.h"
#include "engine/lora.h"
#include "engine/safety_checker.h"
#include "engine/scheduler.h"
#include "engine/t2i_adapter.h"
#include "engine/unet.h"
#include "engine/vae.h"

typedef struct sdr_pipeline {
  sdr_backend *be;
  sdr_clip_tokenizer *tokenizer;
  sdr_clip_text_model text_encoder;
  sdr_unet unet;
  sdr_vae vae;
  sdr_scheduler *scheduler;
  sdr_arena arena;
  sdr_dtype dtype; /* torch_dtype: the dtype noise is drawn in (float32 unless asked) */
  int vae_slicing; /* decode one image at a time (the same pictures, less memory) */
  int vae_tiling;  /* encode and decode in overlapping tiles, as diffusers' enable_vae_tiling()
                    * (engine/vae_tiling.h): memory of one tile, diffusers' tiled pictures */
  sdr_lora lora;   /* load_lora_weights' adapters, in the UNet's and text encoder's weights */
  /* model_index.json's safety_checker and feature_extractor, or NULL where it names none
   * (or the caller declined the checker): run after the VAE, as diffusers does */
  sdr_safety_checker *safety_checker;
  sdr_clip_image_processor *feature_extractor;
  /* load_ip_adapter's (engine/pipeline_ip_adapter.h): the image encoder, or NULL, and the
   * adapters, attached to the UNet's cross-attentions at ip_scale */
  sdr_clip_vision_projection *image_encoder;
  sdr_ip_adapter *ip_adapters[SDR_IP_MAX];
  int nip_adapters;
  float ip_scale[SDR_IP_MAX];
  /* StableDiffusionXLPipeline's second tokenizer and text encoder (model_index.json's
   * tokenizer_2 and text_encoder_2, a CLIPTextModelWithProjection; NULL / unloaded for SD 1.x
   * and 2.x) and its config's force_zeros_for_empty_prompt (engine/pipeline_xl.h) */
  sdr_clip_tokenizer *tokenizer_2;
  sdr_clip_text_model text_encoder_2;
  int force_zeros_for_empty_prompt;
  /* SDXL's refiner: no first tokenizer and text encoder (tokenizer NULL, text_encoder
   * unloaded), and its UNet's time ids carry an aesthetic score instead of the target size */
  int requires_aesthetics_score;
  /* StableDiffusionUpscalePipeline's low_res_scheduler (the DDPMScheduler that noises the
   * pictures) and model_index.json's max_noise_level; NULL / 0 for other models */
  sdr_scheduler *low_res_scheduler;
  int max_noise_level;
  /* what save_pretrained writes back as it was: model_index.json and the tokenizers' and
   * feature extractor's files; and the tokenizers' len() then (more tokens later are
   * textual inversion's) */
  sdr_kept_files kept;
  size_t tokens_at_load[2];
} sdr_pipeline;

/* Whether p is a Stable Diffusion XL pipeline: two text encoders, the UNet's "text_time"
 * embedding. */
static inline int sdr_pipeline_is_xl(const sdr_pipeline *p) { return p->tokenizer_2 != NULL; }

/* The models a pipeline's LoRA adapters go into. */
/* The dtype the VAE is kept in: an SDXL pipeline decodes in float32 when the VAE's config says
 * force_upcast (diffusers' upcast_vae), so float16 pipelines keep it in float32. */
int sdr_pipeline_vae_keep_dtype(const sdr_pipeline *p, const sdr_vae_config *c, int keep_dtype);
sdr_lora_models sdr_pipeline_lora_models(sdr_pipeline *p);

/* dir holds model_index.json and the component folders. keep_dtype < 0 keeps
 * weights as stored (noise drawn in float32, as diffusers' default). */
int sdr_pipeline_load(sdr_pipeline *p, sdr_backend *be, const char *dir, const char *variant,
                      int keep_dtype);
/* Models loaded by the caller to use instead of the folder's (diffusers'
 * from_pretrained(..., vae = ...)); NULL: the folder's. */
typedef struct sdr_pipeline_given {
  sdr_unet *unet;
  sdr_vae *vae;
  sdr_clip_text_model *text_encoder;
  int no_safety_checker;               /* from_pretrained(..., safety_checker=None) */
  sdr_clip_text_model *text_encoder_2; /* SDXL's, a CLIPTextModelWithProjection */
} sdr_pipeline_given;
/* sdr_pipeline_load with given models, which move into the pipeline on success (their
 * structs left zeroed: the pipeline owns them now) and stay as they were on failure.
 * They must be on be. */
int sdr_pipeline_load_given(sdr_pipeline *p, sdr_backend *be, const char *dir, const char *variant,
                            int keep_dtype, const sdr_pipeline_given *given);
/* Whether the pipeline folder dir's model_index.json names component (text_encoder_2 for an
 * SDXL model, low_res_scheduler for an upscaler's): 1 or 0, -1 on error. Read before a load, so
 * a model of the wrong class is refused before anything is loaded or given models move in. */
int sdr_pipeline_dir_has(const char *dir, const char *component);
/* The same, with the class model_index.json names for it in cls (n bytes) when it is there. */
int sdr_pipeline_component_class(const char *dir, const char *component, char *cls, size_t n);
/* model_index.json's "_class_name" (the class DiffusionPipeline.from_pretrained makes)
 * into out, at most n bytes with the NUL. */
int sdr_pipeline_class_name(const char *dir, char *out, size_t n);
/* diffusers' from_single_file: one .safetensors or .ckpt in the original
 * CompVis/LDM layout, configuration inferred (engine/single_file.h has the
 * options and the rules). */
int sdr_pipeline_load_single_file(sdr_pipeline *p, sdr_backend *be, const char *path,
                                  int keep_dtype);
void sdr_pipeline_free(sdr_pipeline *p);
/* After the tokenizer (second: SDXL's tokenizer_2) is loaded from folder: what save_pretrained
 * writes back of it (engine/pipeline_save.h); nothing where the pipeline has none. */
int sdr_pipeline_keep_tokenizer(sdr_pipeline *p, int second, const char *folder);
/* pipe.safety_checker = None: the checker's memory goes. */
void sdr_pipeline_drop_safety_checker(sdr_pipeline *p);
/* pipe.vae = another (an AutoencoderTiny, a fine-tuned AutoencoderKL): src's weights bound
 * again on the pipeline's backend in keep_dtype (float32 where an SDXL pipeline upcasts);
 * the pipeline's VAE until now is moved into *old for the caller to keep or free. */
int sdr_pipeline_replace_vae(sdr_pipeline *p, const sdr_vae *src, int keep_dtype, sdr_vae *old);
/* pipe.to(device): the models' weights bound again on be, kept in keep_dtype
 * (-1: as stored); the tokenizer and scheduler stay. On failure nothing changed. */
int sdr_pipeline_to(sdr_pipeline *p, sdr_backend *be, int keep_dtype);
/* The image size when none is asked for: unet.sample_size * the VAE's factor. */
int sdr_pipeline_default_size(const sdr_pipeline *p);

/* Called after each step with the latents (B, C, h, w) on the backend, which
 * it may change in place; a non-zero return stops the run with that error. */
typedef int (*sdr_step_callback)(void *ud, int step, double t, sdr_tensor *latents);

/* One ControlNet of a run (StableDiffusionControlNetPipeline; several: MultiControlNetModel,
 * whose residuals add up). */
typedef struct sdr_control {
  sdr_controlnet *net; /* on the pipeline's backend */
  /* its control pictures: one for the whole batch or one per prompt (made RGB, resized with
   * Lanczos to the run's size, in [0, 1]) */
  const sdr_image *const *images;
  int nimages;
  /* or a tensor, host float32 (M, C, H, W) in [0, 1], resized as F.interpolate's nearest mode */
  const float *tensor;
  int64_t tensor_shape[4];
  float scale;       /* controlnet_conditioning_scale */
  double start, end; /* control_guidance_start and _end: the fraction of the steps it acts in */
} sdr_control;

enum { SDR_MAX_CONTROLS = 8 };

/* One T2I-Adapter of a run (StableDiffusionAdapterPipeline, StableDiffusionXLAdapterPipeline;
 * several: MultiAdapter, whose features add up) and its pictures: one, or one per prompt,
 * resized with Lanczos to the run's size, in [0, 1], with the channels they have (a sketch
 * adapter's "L" pictures one); or a tensor, host float32 (M, C, H, W), taken as it is. */
typedef struct sdr_adapter_input {
  sdr_t2i_adapter *adapter; /* on the pipeline's backend */
  const sdr_image *const *images;
  int nimages;
  const float *tensor;
  int64_t tensor_shape[4];
  float scale; /* adapter_conditioning_scale */
} sdr_adapter_input;

enum { SDR_MAX_ADAPTERS = 8 };

/* What one IP-Adapter of a run looks at: its pictures (ip_adapter_image, encoded by the
 * pipeline's image encoder; or a tensor, which encode_image takes as pixel_values), or
 * embeddings made before (ip_adapter_image_embeds), host float32 (b, n, E) or
 * (b, n, T, E): with guidance the negative b / 2 rows first. */
typedef struct sdr_ip_input {
  const sdr_image *const *images;
  int nimages;
  const float *pixels; /* (n, 3, S, S) */
  int64_t pixels_shape[4];
  const float *embeds;
  int ndim;
  int64_t shape[4];
} sdr_ip_input;

typedef struct sdr_generate {
  const char *const *prompts;          /* NULL when prompt_embeds are given */
  int nprompts;                        /* the batch: prompts, or prompt_embeds' first dimension */
  const char *const *negative_prompts; /* NULL: "" for each prompt */
  int nnegative;
  /* encode_prompt's own inputs, host float32, instead of prompts (the text encoder is
   * not run for them): (nprompts, seq, D) and the same for the negative, or NULL.
   * The negative embeddings may also go with text prompts (seq: the tokenizer's). */
  const float *prompt_embeds, *negative_prompt_embeds;
  int64_t prompt_embeds_shape[3], negative_embeds_shape[3];
  int height, width; /* 0: sdr_pipeline_default_size */
  int num_inference_steps;
  /* custom timesteps (retrieve_timesteps), or NULL: then num_inference_steps is theirs */
  const int64_t *timesteps;
  int ntimesteps;
  float guidance_scale; /* <= 1: no classifier-free guidance */
  /* LatentConsistencyModelPipeline: never classifier-free guidance (guidance_scale goes into
   * the UNet's guidance embedding only) */
  int no_guidance;
  /* LCMScheduler's set_timesteps(original_inference_steps=...); 0: its config's */
  int original_inference_steps;
  /* StableDiffusionInstructPix2PixPipeline: the picture (image/images/image_tensor) goes
   * into the UNet's input beside the latents; guided by both scales */
  int pix2pix;
  float image_guidance_scale;
  /* StableDiffusionUpscalePipeline: the pictures (image/images/image_tensor), noised to
   * noise_level, beside the latents at their own size (engine/pipeline_upscale.h) */
  int upscale;
  int noise_level;
  float guidance_rescale; /* > 0: rescale_noise_cfg after guidance (txt2img's option) */
  int num_images_per_prompt;
  double eta;
  double strength;                /* img2img; a double, as Python's float: int(steps * strength) */
  const sdr_image *image;         /* img2img when this or one of the next two is set */
  const sdr_image *const *images; /* a list of pictures instead, all resized to the first's size */
  int nimages;
  /* or a tensor, host float32: pixels (M, 3, H, W) in [0, 1] (in [-1, 1] when any value is
   * negative), or latents (M, 4, h, w) to start from as they are */
  const float *image_tensor;
  int64_t image_tensor_shape[4];
  /* img2img's pictures made RGB first (ControlNet img2img's image_processor), so an RGBA one
   * is a picture, not latents as plain img2img takes it */
  int image_convert_rgb;
  /* inpainting when set: white where to paint (binarized at 0.5 once resized and made
   * grey), one or as many as the pictures; image/images are then resized to height x
   * width (0: the default size) */
  const sdr_image *const *mask_images;
  int nmasks;
  /* or the masks as a tensor, host float32 (M, 1, H, W): resized as F.interpolate's
   * nearest mode does, then binarized */
  const float *mask_tensor;
  int64_t mask_tensor_shape[4];
  /* inpainting's masked_image_latents, host float32 (M, 4, h, w): the masked picture's
   * latents as they are (not encoded, nothing drawn for them), repeated over the batch */
  const float *masked_image_latents;
  int64_t masked_image_latents_shape[4];
  /* ControlNet: the nets with their pictures (the run's size defaults to the first
   * picture's, floored to the VAE's factor; with img2img, to the image's or height x width);
   * guess_mode: they see the conditional half of
   * a guided batch only, their residuals ramped from 0.1 to 1 (forced by a net that pools
   * its conditions) */
  const sdr_control *controls;
  int ncontrols;
  int guess_mode;
  /* T2I-Adapters: their features go into the UNet's down path for the first
   * int(steps * adapter_conditioning_factor) steps (steps: those that run, after SDXL's
   * denoising_end); the run's size defaults to the first picture's, floored to the first
   * adapter's downscale_factor */
  const sdr_adapter_input *adapters;
  int nadapters;
  double adapter_conditioning_factor;
  /* IP-Adapter: one entry per adapter loaded (none: the pipeline must have none) */
  const sdr_ip_input *ip_inputs;
  int nip_inputs;
  /* StableDiffusionXLPipeline (engine/pipeline_xl.h): prompt_2 and negative_prompt_2 for the
   * second tokenizer (NULL: prompts and negative_prompts), the pooled embeddings that go
   * with given prompt_embeds, host float32 (n, width); the micro-conditioning sizes as
   * (height, width) ({0, 0}: unset; original and target default to the run's size, crops to
   * (0, 0); the negative ones count only when both negative sizes are given); denoising_end
   * in (0, 1): the steps whose timesteps fall below its cut are not run (0: all run) */
  const char *const *prompts_2, *const *negative_prompts_2;
  int nprompts_2, nnegative_2;
  const float *pooled_prompt_embeds, *negative_pooled_prompt_embeds;
  int64_t pooled_shape[2], negative_pooled_shape[2];
  int original_size[2], crops_coords_top_left[2], target_size[2];
  int negative_original_size[2], negative_crops_coords_top_left[2], negative_target_size[2];
  double denoising_end;
  /* StableDiffusionXLImg2ImgPipeline: its time ids (aesthetic_score and
   * negative_aesthetic_score where the model requires_aesthetics_score; the negative sizes
   * default to the positive ones) and denoising_start (has_denoising_start: one was given,
   * and then the image is not noised; in (0, 1) it picks the steps, not strength) */
  int xl_img2img;
  double aesthetic_score, negative_aesthetic_score;
  int has_denoising_start;
  double denoising_start;
  sdr_generator **generators; /* 1, or one per image */
  int ngenerators;
  /* torch's default CPU generator, which DPMSolverSDEScheduler's noise seed comes from
   * (torch.randint, whatever generator the call was given); NULL: none */
  sdr_generator *default_generator;
  const float *latents; /* txt2img: given latents (B*N, C, h, w) in float32, or NULL */
  int clip_skip;        /* 0: the last layer */
  /* cross_attention_kwargs["scale"] (encode_prompt's lora_scale): the LoRA layers scaled by
   * it while the text encoder and the UNet run */
  int has_lora_scale;
  double lora_scale;
  int output_latent;     /* stop before the VAE */
  int no_safety_checker; /* this pipeline's safety_checker is None (the engine's may be shared) */
  sdr_step_callback on_step;
  void *on_step_ud;
  /* set_progress_bar_config: no bar for the denoising loop, or the bar's label (NULL: none) */
  int progress_disable;
  const char *progress_desc;
} sdr_generate;

typedef struct sdr_generated {
  float *data; /* host float32: images (B, 3, H, W) in [-1, 1], or latents */
  int64_t shape[4];
  /* has_nsfw_concept: shape[0] flags when the safety checker ran (flagged pictures are
   * black: -1 everywhere in data), else NULL */
  unsigned char *nsfw;
  int steps_run;     /* UNet evaluations */
  int graph_replays; /* of those, replays of a recorded graph (0 where the backend records none) */
  /* "" or why the UNet call could not be recorded as a graph: the run then went on
   * calling it directly, the same pictures, more slowly */
  char graph_error[256];
} sdr_generated;

int sdr_pipeline_generate(sdr_pipeline *p, const sdr_generate *g, sdr_generated *out);
/* The pictures' size a run of g makes: height and width, else the default (txt2img,
 * inpainting), the picture's (img2img; with a ControlNet also inpainting), or the control
 * picture's (ControlNet txt2img); checks the pictures it looks at. */
int sdr_pipeline_run_size(const sdr_pipeline *p, const sdr_generate *g, int *height, int *width);
/* encode_prompt for g's prompts (or prompt_embeds) without the repeat per image:
 * host float32 (nprompts, T, D) at *pos and, when guided, the negatives' at *neg
 * (else NULL), one malloc'd block that *pos owns. An SDXL pipeline also makes the pooled
 * embeddings (nprompts, P) at *pooled and *neg_pooled, one block *pooled owns (NULL and
 * P 0 for the others). */
int sdr_pipeline_encode_prompt(sdr_pipeline *p, const sdr_generate *g, int guided, float **pos,
                               float **neg, int *T, int *D, float **pooled, float **neg_pooled,
                               int *P);
/* The prompt embeddings' width: the text encoder's (SDXL: both, side by side). */
int sdr_pipeline_text_width(const sdr_pipeline *p);
void sdr_generated_free(sdr_generated *out);

/* diffusers' get_timesteps for img2img: how many of the scheduler's timesteps
 * are skipped for a strength (t_start * order). */
int sdr_img2img_t_start(int num_inference_steps, double strength, int order);

#endif

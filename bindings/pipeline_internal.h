/* bindings/pipeline_internal.h — the pipeline object, shared by the pipeline classes
 * (bindings/pipeline.c) and the classes that pick one (bindings/auto_pipeline.c). */
#ifndef SDR_BINDINGS_PIPELINE_INTERNAL_H
#define SDR_BINDINGS_PIPELINE_INTERNAL_H

#include <lua.h>

#include "bindings/lsdr.h"   // lsdr_param
#include "engine/pipeline.h" // sdr_pipeline

#define LSDR_T2I "StableDiffusionPipeline"
#define LSDR_I2I "StableDiffusionImg2ImgPipeline"
#define LSDR_INPAINT "StableDiffusionInpaintPipeline"
#define LSDR_CONTROLNET_PIPE "StableDiffusionControlNetPipeline"
#define LSDR_CONTROLNET_I2I "StableDiffusionControlNetImg2ImgPipeline"
#define LSDR_CONTROLNET_INPAINT "StableDiffusionControlNetInpaintPipeline"
#define LSDR_LCM "LatentConsistencyModelPipeline"
#define LSDR_LCM_I2I "LatentConsistencyModelImg2ImgPipeline"
#define LSDR_PIX2PIX "StableDiffusionInstructPix2PixPipeline"
#define LSDR_XL "StableDiffusionXLPipeline"
#define LSDR_XL_I2I "StableDiffusionXLImg2ImgPipeline"
#define LSDR_XL_INPAINT "StableDiffusionXLInpaintPipeline"
#define LSDR_XL_CONTROLNET "StableDiffusionXLControlNetPipeline"
#define LSDR_XL_CONTROLNET_I2I "StableDiffusionXLControlNetImg2ImgPipeline"
#define LSDR_XL_CONTROLNET_INPAINT "StableDiffusionXLControlNetInpaintPipeline"
#define LSDR_UPSCALE "StableDiffusionUpscalePipeline"
#define LSDR_ADAPTER_PIPE "StableDiffusionAdapterPipeline"
#define LSDR_XL_ADAPTER "StableDiffusionXLAdapterPipeline"

/* Which of the pipeline classes: the kind a loader or from_pipe makes. */
enum {
  LSDR_KIND_T2I = 0,
  LSDR_KIND_I2I = 1,
  LSDR_KIND_INPAINT = 2,
  LSDR_KIND_CONTROLNET = 3,
  LSDR_KIND_CONTROLNET_I2I = 4,
  LSDR_KIND_CONTROLNET_INPAINT = 5,
  LSDR_KIND_LCM = 6,
  LSDR_KIND_LCM_I2I = 7,
  LSDR_KIND_PIX2PIX = 8,
  LSDR_KIND_XL = 9,
  LSDR_KIND_XL_I2I = 10,
  LSDR_KIND_XL_INPAINT = 11,
  LSDR_KIND_XL_CONTROLNET = 12,
  LSDR_KIND_XL_CONTROLNET_I2I = 13,
  LSDR_KIND_XL_CONTROLNET_INPAINT = 14,
  LSDR_KIND_UPSCALE = 15,
  LSDR_KIND_ADAPTER = 16,
  LSDR_KIND_XL_ADAPTER = 17
};

/* The models and settings of a pipeline. Pipelines made from another by from_pipe
 * hold the same core, as diffusers' share their components: moving one to a device
 * moves the others. */
typedef struct lsdr_pipe_core {
  sdr_pipeline p;
  int loaded;
  int keep_dtype; /* torch_dtype at loading; -1: as stored */
  int open_pipes; /* pipelines holding it that are not closed */
} lsdr_pipe_core;

typedef struct lsdr_pipe {
  lsdr_pipe_core *core; /* NULL once closed */
  int kind;             /* its class, an LSDR_KIND_* */
  /* pipe.safety_checker = nil on this pipeline (the core's checker may serve others) */
  int no_safety_checker;
  int no_feature_extractor; /* pipe.feature_extractor = nil */
  /* set_progress_bar_config, this pipeline's own (copied to the core at each call) */
  int progress_disable;
  char progress_desc[64];
  /* its config's force_zeros_for_empty_prompt and requires_aesthetics_score (SDXL): a
   * pipeline made from another's components takes its class's defaults, as diffusers'
   * __init__ does; copied to the core at each use (lsdr_pipe_own_config) */
  int force_zeros, aesthetics;
} lsdr_pipe;

/* Points the shared models at this pipeline's own config values before they run for it. */
void lsdr_pipe_own_config(lsdr_pipe *pp);

/* The pipeline at idx (a Lua error for another value, or once it is closed). */
lsdr_pipe *lsdr_check_pipe(lua_State *L, int idx);
/* Pushes the table of Lua objects the pipeline at idx keeps its parts in (tokenizer,
 * scheduler, name_or_path, controlnet, the components handed out). */
void lsdr_push_pipe_parts(lua_State *L, int idx);
/* "StableDiffusionPipeline" and the others: the pipeline's class. */
const char *lsdr_pipe_class_name(const lsdr_pipe *p);
/* The class name of an LSDR_KIND_*. */
const char *lsdr_kind_class_name(int kind);
/* The dtype the pipeline's models are kept in on be (dtype >= 0: that one). */
int lsdr_pipe_keep_dtype(const lsdr_pipe *p, const sdr_backend *be, int dtype);
/* The engine's error as a Lua error; when the GPU ran out of memory, with what to try. */
int lsdr_engine_error_advice(lua_State *L, const char *what_to_try);

/* The call, pipe{...} or pipe("a prompt", {...}), and pipe:encode_prompt
 * (bindings/pipeline_call.c), with each class's call options. */
int lsdr_pipe_call(lua_State *L);
int lsdr_pipe_encode_prompt(lua_State *L);
extern const lsdr_param lsdr_t2i_call_options[], lsdr_i2i_call_options[],
    lsdr_inpaint_call_options[], lsdr_controlnet_call_options[], lsdr_controlnet_i2i_call_options[],
    lsdr_controlnet_inpaint_call_options[], lsdr_lcm_call_options[], lsdr_lcm_i2i_call_options[],
    lsdr_pix2pix_call_options[], lsdr_xl_call_options[], lsdr_xl_i2i_call_options[],
    lsdr_xl_inpaint_call_options[], lsdr_xl_controlnet_call_options[],
    lsdr_xl_controlnet_i2i_call_options[], lsdr_xl_controlnet_inpaint_call_options[],
    lsdr_upscale_call_options[], lsdr_adapter_call_options[], lsdr_xl_adapter_call_options[],
    lsdr_encode_prompt_options[];

/* what the ControlNet pipelines take besides the pictures and the scale, in their order */
#define LSDR_CONTROL_CALL_OPTIONS                                                                  \
  {"guess_mode", "boolean", "false",                                                               \
   "the nets see the text half only, their residuals ramped from 0.1 to 1"},                       \
      {"control_guidance_start", "number|table", "0.0",                                            \
       "the fraction of the steps the nets start at"},                                             \
  {                                                                                                \
    "control_guidance_end", "number|table", "1.0", "the fraction of the steps they stop at"        \
  }

/* SD's and SDXL's inpainting: the masked picture's latents given (engine/pipeline.h). */
#define LSDR_MASKED_IMAGE_LATENTS_OPTION                                                           \
  {                                                                                                \
    "masked_image_latents", "Tensor", "nil",                                                       \
        "the masked picture's latents (batch, 4, height/8, width/8), used as they are"             \
  }

/* The inpainting pipelines' padding_mask_crop (bindings/padding_mask_crop.h). */
#define LSDR_PADDING_MASK_CROP_OPTION                                                              \
  {                                                                                                \
    "padding_mask_crop", "integer", "nil",                                                         \
        "paint only a box around the mask widened by this many pixels, at the full size, then "    \
        "lay it over the picture (one PIL picture and mask, output_type \"pil\")"                  \
  }

/* Strings of a string or a list of strings at idx (kept alive by the table): how many. */
int lsdr_read_strings(lua_State *L, int idx, const char *what, const char ***out);
/* The same, a single string repeated for each of n prompts (SDXL's negative prompts). */
int lsdr_read_strings_for(lua_State *L, int idx, const char *what, int n, const char ***out);
/* A tensor option of ndim dimensions as host float32 (lsdr_host_values), its shape in shape. */
const float *lsdr_host_floats(lua_State *L, int opts, const char *name, int ndim, int64_t *shape);
/* StableDiffusionXLPipeline's own call options at opts (prompt_2, negative_prompt_2, the
 * pooled embeddings, the micro-conditioning sizes, denoising_end) into g
 * (bindings/pipeline_xl.c); what g points into stays on the stack. */
void lsdr_read_xl_options(lua_State *L, int opts, sdr_generate *g);
/* Whether the value at idx is a non-empty table with only integer keys (a list, not a table
 * of options). */
int lsdr_is_plain_list(lua_State *L, int idx);
/* The values of the tensor at idx as host float32, kept alive on the stack: a tensor
 * made on the GPU (as a notebook makes latents or embeddings there) is read back once. */
const float *lsdr_host_values(lua_State *L, int idx);
/* The option `name` at idx: one Image or a non-empty list of them, as a block of n pointers
 * left on the stack (the list keeps the Images alive). */
const sdr_image **lsdr_read_image_list(lua_State *L, int idx, const char *name, int *n);

/* from_pretrained's options, for every class that loads a pipeline. */
extern const lsdr_param lsdr_pipeline_load_options[];

/* The pipeline at idx of either class, or NULL. */
lsdr_pipe *lsdr_test_pipe(lua_State *L, int idx);
/* The engine pipeline of the pipeline at idx (a Lua error for another value, or once it
 * is closed), for methods that change its models. */
sdr_pipeline *lsdr_pipeline_models(lua_State *L, int idx);
/* The open pipeline whose model the box at idx is (pipe.unet, pipe.text_encoder), or NULL
 * for a model of its own. */
sdr_pipeline *lsdr_model_owner(lua_State *L, int idx);
/* cross_attention_kwargs["scale"] from the options at opts into *scale: 1 when given, 0
 * when not (a Lua error for a wrong type), for a pipeline's call and pipe.unet's. */
int lsdr_cross_attention_scale(lua_State *L, int opts, double *scale);
/* Before such a model runs on its own: its weights as the pipeline's LoRA state says (a Lua
 * error when they cannot be made). */
void lsdr_model_lora_ready(lua_State *L, int idx, sdr_lora_part part);

/* from_pretrained(name, opts) after lsdr_args and lsdr_options: the folder (a path,
 * or a hub repo id fetched into the cache), then the class pick(L, dir) chooses (an
 * LSDR_KIND_*; it raises a Lua error for a model it cannot run). Pushes the loaded
 * pipeline. */
int lsdr_pipeline_from_pretrained(lua_State *L, int (*pick)(lua_State *L, const char *dir));

/* A new pipeline of the class `kind` (an LSDR_KIND_*) holding the pipeline at idx's
 * models, tokenizer and scheduler (diffusers' from_pipe); pushes it. */
int lsdr_pipeline_from_pipe(lua_State *L, int idx, int kind);

/* pipe:load_textual_inversion(pretrained_model_name_or_path, opts)
 * (bindings/textual_inversion.c). */
int lsdr_pipe_load_textual_inversion(lua_State *L);
int lsdr_pipe_unload_textual_inversion(lua_State *L);
int lsdr_pipe_maybe_convert_prompt(lua_State *L);
extern const lsdr_param lsdr_textual_inversion_options[];

/* pipe:load_lora_weights(pretrained_model_name_or_path_or_dict, opts) and the adapter
 * methods (bindings/lora.c). */
int lsdr_pipe_load_lora_weights(lua_State *L);
/* IPAdapterMixin (bindings/pipeline_ip_adapter.c): pipe:load_ip_adapter(repo, subfolder,
 * weight_name, opts), set_ip_adapter_scale, unload_ip_adapter,
 * prepare_ip_adapter_image_embeds; and a call's ip_adapter_image / ip_adapter_image_embeds
 * into g (what it points into stays on the stack). */
extern const lsdr_param lsdr_ip_adapter_options[];
int lsdr_pipe_load_ip_adapter(lua_State *L);
int lsdr_pipe_set_ip_adapter_scale(lua_State *L);
int lsdr_pipe_unload_ip_adapter(lua_State *L);
int lsdr_pipe_prepare_ip_adapter_image_embeds(lua_State *L);
void lsdr_read_ip_adapter_inputs(lua_State *L, int opts, sdr_generate *g);
/* pipe:save_pretrained(save_directory, opts) (bindings/save_pretrained.c; its options are
 * model_common.h's lsdr_save_pretrained_options). */
int lsdr_pipe_save_pretrained(lua_State *L);
/* diffusers' pipe.config: the model_index.json save_pretrained writes, with a ControlNet or
 * T2I-Adapter pipeline's nets named, as a table (a null in a pair is false). */
int lsdr_push_pipe_config(lua_State *L, int idx);
int lsdr_pipe_fuse_lora(lua_State *L);
int lsdr_pipe_unfuse_lora(lua_State *L);
int lsdr_pipe_unload_lora_weights(lua_State *L);
int lsdr_pipe_set_adapters(lua_State *L);
int lsdr_pipe_disable_lora(lua_State *L);
int lsdr_pipe_enable_lora(lua_State *L);
int lsdr_pipe_delete_adapters(lua_State *L);
int lsdr_pipe_get_active_adapters(lua_State *L);
int lsdr_pipe_get_list_adapters(lua_State *L);
extern const lsdr_param lsdr_lora_options[], lsdr_fuse_lora_options[], lsdr_unfuse_lora_options[];

/* StableDiffusionControlNetPipeline (bindings/pipeline_controlnet.c): from_pretrained's or
 * the components' option 'controlnet' at opts (a ControlNetModel, a list of them or a
 * MultiControlNetModel) pushed as the pipeline keeps it (a list made a
 * MultiControlNetModel); a Lua error naming cls when it is missing or wrong. */
void lsdr_push_controlnet_option(lua_State *L, int opts, const char *cls);
/* The call's control pictures (option `key`) and settings from the options at opts into g,
 * for the nets
 * in the parts table at parts, moved to be (in keep_dtype) first. What g points into stays
 * on the stack. */
void lsdr_read_controls(lua_State *L, int opts, const char *key, int parts, sdr_backend *be,
                        int keep, sdr_generate *g);
/* The LSDR_KIND_* of a pipeline class's name ("StableDiffusionXLPipeline"), or -1. */
int lsdr_kind_of_class(const char *cls);
/* Whether the class `kind` takes a ControlNet (its nets are parts.controlnet). */
int lsdr_kind_has_controlnet(int kind);
/* What a pipeline's class does: img2img, inpainting (either with a ControlNet or without),
 * and whether it takes a ControlNet. */
static inline int lsdr_pipe_img2img(const lsdr_pipe *p) {
  return p->kind == LSDR_KIND_I2I || p->kind == LSDR_KIND_CONTROLNET_I2I ||
         p->kind == LSDR_KIND_LCM_I2I || p->kind == LSDR_KIND_XL_I2I ||
         p->kind == LSDR_KIND_XL_CONTROLNET_I2I;
}
/* The Stable Diffusion XL classes (their models have text_encoder_2). */
static inline int lsdr_kind_xl(int kind) {
  return kind == LSDR_KIND_XL || kind == LSDR_KIND_XL_I2I || kind == LSDR_KIND_XL_INPAINT ||
         kind == LSDR_KIND_XL_CONTROLNET || kind == LSDR_KIND_XL_CONTROLNET_I2I ||
         kind == LSDR_KIND_XL_CONTROLNET_INPAINT || kind == LSDR_KIND_XL_ADAPTER;
}
/* The LatentConsistencyModel pipelines: no classifier-free guidance, LCMScheduler's
 * original_inference_steps (and strength). */
static inline int lsdr_pipe_lcm(const lsdr_pipe *p) {
  return p->kind == LSDR_KIND_LCM || p->kind == LSDR_KIND_LCM_I2I;
}
static inline int lsdr_pipe_inpaint(const lsdr_pipe *p) {
  return p->kind == LSDR_KIND_INPAINT || p->kind == LSDR_KIND_CONTROLNET_INPAINT ||
         p->kind == LSDR_KIND_XL_INPAINT || p->kind == LSDR_KIND_XL_CONTROLNET_INPAINT;
}
static inline int lsdr_pipe_controlnet(const lsdr_pipe *p) {
  return lsdr_kind_has_controlnet(p->kind);
}
/* The nets in the parts table at parts moved to be, kept in keep (pipe:to takes them). */
void lsdr_controlnets_follow(lua_State *L, int parts, sdr_backend *be, int keep);

/* The T2I-Adapter pipelines (bindings/pipeline_adapter.c): whether the class `kind` takes an
 * adapter (parts.adapter); from_pretrained's or the components' option 'adapter' at opts (a
 * T2IAdapter, a list of them or a MultiAdapter) pushed as the pipeline keeps it, a Lua error
 * naming cls when it is missing or wrong; the adapters moved with pipe:to; a call's pictures,
 * adapter_conditioning_scale and (xl) adapter_conditioning_factor into g, the adapters
 * moved to be first. */
int lsdr_kind_has_adapter(int kind);
void lsdr_push_adapter_option(lua_State *L, int opts, const char *cls);
void lsdr_adapters_follow(lua_State *L, int parts, sdr_backend *be, int keep);
void lsdr_read_adapters(lua_State *L, int opts, int parts, sdr_backend *be, int keep, int xl,
                        sdr_generate *g);

#endif

/* bindings/pipeline.c — the diffusers pipelines as Lua objects: the classes,
 * from_pretrained, from_single_file, Cls(components), from_pipe, the properties, :to(device)
 * and the switches (slicing, tiling, FreeU); the call is bindings/pipeline_call.c's. */
#include "bindings/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>

#include "bindings/clip_text_model.h" // lsdr_push_clip_text_model_ref
#include "bindings/clip_tokenizer.h"  // lsdr_push_clip_tokenizer, lsdr_to_clip_tokenizer
#include "bindings/controlnet.h"      // lsdr_push_controlnet_from
#include "bindings/hub.h"             // lsdr_hub_resolve, LSDR_HUB_PARAMS
#include "bindings/lsdr.h"
#include "bindings/model_common.h"
#include "bindings/pipeline_internal.h"
#include "bindings/safety_checker.h" // lsdr_push_safety_checker, lsdr_push_feature_extractor
#include "bindings/scheduler.h"      // lsdr_push_scheduler, lsdr_to_scheduler
#include "bindings/t2i_adapter.h"    // lsdr_push_t2i_adapter_from
#include "bindings/tensor.h"
#include "bindings/image_processor.h" // lsdr_push_image_processor
#include "bindings/unet.h"            // lsdr_push_unet_ref
#include "bindings/vae.h"             // lsdr_push_vae_ref
#include "engine/error.h"
#include "engine/model_config.h" // sdr_component_has_variant
#include "engine/pipeline.h"
#include "engine/single_file.h" // sdr_pipeline_load_single_file_ex, sdr_single_file_options

/* The user value 1 holds the Lua objects the pipeline's parts live in:
 * {tokenizer = CLIPTokenizer, scheduler = Scheduler, name = "path", <cached components>};
 * user value 2 the core, which pipelines made by from_pipe share. */
void lsdr_push_pipe_parts(lua_State *L, int idx) { lua_getiuservalue(L, idx, 1); }

/* The classes, by kind (LSDR_KIND_*). */
static const char *const kind_names[] = {LSDR_T2I,
                                         LSDR_I2I,
                                         LSDR_INPAINT,
                                         LSDR_CONTROLNET_PIPE,
                                         LSDR_CONTROLNET_I2I,
                                         LSDR_CONTROLNET_INPAINT,
                                         LSDR_LCM,
                                         LSDR_LCM_I2I,
                                         LSDR_PIX2PIX,
                                         LSDR_XL,
                                         LSDR_XL_I2I,
                                         LSDR_XL_INPAINT,
                                         LSDR_XL_CONTROLNET,
                                         LSDR_XL_CONTROLNET_I2I,
                                         LSDR_XL_CONTROLNET_INPAINT,
                                         LSDR_UPSCALE,
                                         LSDR_ADAPTER_PIPE,
                                         LSDR_XL_ADAPTER};
static const char *kind_class(int kind) { return kind_names[kind]; }

void lsdr_pipe_own_config(lsdr_pipe *pp) {
  pp->core->p.force_zeros_for_empty_prompt = pp->force_zeros;
  pp->core->p.requires_aesthetics_score = pp->aesthetics;
}

int lsdr_kind_of_class(const char *cls) {
  for (int k = 0; k < (int)(sizeof kind_names / sizeof kind_names[0]); k++)
    if (strcmp(cls, kind_names[k]) == 0)
      return k;
  return -1;
}

int lsdr_kind_has_controlnet(int kind) {
  return kind == LSDR_KIND_CONTROLNET || kind == LSDR_KIND_CONTROLNET_I2I ||
         kind == LSDR_KIND_CONTROLNET_INPAINT || kind == LSDR_KIND_XL_CONTROLNET ||
         kind == LSDR_KIND_XL_CONTROLNET_I2I || kind == LSDR_KIND_XL_CONTROLNET_INPAINT;
}

lsdr_pipe *lsdr_test_pipe(lua_State *L, int idx) {
  lsdr_pipe *p = NULL;
  for (size_t k = 0; !p && k < sizeof kind_names / sizeof kind_names[0]; k++)
    p = luaL_testudata(L, idx, kind_names[k]);
  return p;
}

const char *lsdr_pipe_class_name(const lsdr_pipe *p) { return kind_class(p->kind); }

const char *lsdr_kind_class_name(int kind) { return kind_class(kind); }

/* The dtype a pipeline's models are kept in on be: torch_dtype, else as stored on the CPU
 * (which widens them as it goes) and float32 elsewhere, as diffusers loads them. */
int lsdr_pipe_keep_dtype(const lsdr_pipe *p, const sdr_backend *be, int dtype) {
  int keep = dtype >= 0 ? dtype : p->core->keep_dtype;
  return keep < 0 && be->device != SDR_DEVICE_CPU ? SDR_F32 : keep;
}

lsdr_pipe *lsdr_check_pipe(lua_State *L, int idx) {
  lsdr_pipe *p = lsdr_test_pipe(L, idx);
  if (!p)
    luaL_typeerror(L, idx, "a Stable Diffusion pipeline");
  if (!p->core || !p->core->loaded)
    luaL_error(L, "this pipeline was closed");
  return p;
}

sdr_pipeline *lsdr_pipeline_models(lua_State *L, int idx) {
  return &lsdr_check_pipe(L, idx)->core->p;
}

int lsdr_cross_attention_scale(lua_State *L, int opts, double *scale) {
  lua_getfield(L, opts, "cross_attention_kwargs");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  if (!lua_istable(L, -1))
    lsdr_error(L, "option 'cross_attention_kwargs': a table expected, got %s",
               luaL_typename(L, -1));
  if (lua_getfield(L, -1, "ip_adapter_masks") != LUA_TNIL)
    lsdr_error(L, "cross_attention_kwargs: ip_adapter_masks are not supported (the adapters act "
                  "on the whole picture)");
  lua_pop(L, 1);
  lua_getfield(L, -1, "scale");
  int given = !lua_isnil(L, -1);
  if (given && !lua_isnumber(L, -1))
    lsdr_error(L, "option 'scale': a number expected, got %s", luaL_typename(L, -1));
  if (given)
    *scale = lua_tonumber(L, -1);
  lua_pop(L, 2);
  return given;
}

sdr_pipeline *lsdr_model_owner(lua_State *L, int idx) {
  lua_getiuservalue(L, idx, 1);
  lsdr_pipe *pp = lsdr_test_pipe(L, -1);
  lua_pop(L, 1);
  return pp && pp->core && pp->core->loaded ? &pp->core->p : NULL;
}

void lsdr_model_lora_ready(lua_State *L, int idx, sdr_lora_part part) {
  sdr_pipeline *p = lsdr_model_owner(L, idx);
  if (!p)
    return;
  sdr_lora_models lm = sdr_pipeline_lora_models(p);
  if (sdr_lora_apply_part(&p->lora, &lm, part) != 0)
    lsdr_engine_error(L);
}

/* The models go when the last open pipeline sharing them is closed or collected. */
static void core_release(lsdr_pipe_core *c) {
  if (c->loaded && --c->open_pipes <= 0) {
    /* The tokenizer and scheduler belong to their Lua objects. */
    c->p.tokenizer = NULL;
    c->p.tokenizer_2 = NULL;
    c->p.scheduler = NULL;
    sdr_pipeline_free(&c->p);
    c->loaded = 0;
  }
}

static int pipe_gc(lua_State *L) {
  lsdr_pipe *p = lua_touserdata(L, 1);
  if (p && p->core) {
    core_release(p->core);
    p->core = NULL;
  }
  return 0;
}

/* Pushes a pipeline of the class; with share (a stack index, or 0), one holding the
 * same core as the pipeline there, else a new empty core to load into. */
static lsdr_pipe *new_pipe(lua_State *L, int kind, int share) {
  lsdr_pipe *src = share ? lsdr_check_pipe(L, share) : NULL;
  share = share ? lua_absindex(L, share) : 0;
  lsdr_pipe *p = lua_newuserdatauv(L, sizeof *p, 2);
  memset(p, 0, sizeof *p);
  p->kind = kind;
  luaL_setmetatable(L, lsdr_pipe_class_name(p));
  p->force_zeros = 1; /* the classes' defaults */
  p->aesthetics = 0;
  if (src) {
    p->no_safety_checker = src->no_safety_checker; /* from_pipe takes its components */
    p->force_zeros = src->force_zeros;             /* and AutoPipeline's, its config */
    p->aesthetics = src->aesthetics;
    lua_getiuservalue(L, share, 2);
    p->core = src->core;
    p->core->open_pipes++;
  } else {
    /* A plain userdata the pipelines keep alive; its models go with the last pipe_gc. */
    p->core = lua_newuserdatauv(L, sizeof *p->core, 0);
    memset(p->core, 0, sizeof *p->core);
  }
  lua_setiuservalue(L, -2, 2);
  return p;
}

/* ---- from_pretrained ------------------------------------------------------------ */

const lsdr_param lsdr_pipeline_load_options[] = {
    {"torch_dtype", "table|string", "nil", "dtype the weights are kept in (float32 when nil)"},
    {"variant", "string", "nil", "e.g. \"fp16\": load *.fp16.safetensors where present"},
    LSDR_HUB_PARAMS,
    {"use_safetensors", "boolean", "nil",
     "true: .safetensors only; otherwise PyTorch .bin files are read where no .safetensors is"},
    {"safety_checker", "boolean", "nil",
     "false: load no safety checker (diffusers' safety_checker=None); nil: the model's own, "
     "where it has one"},
    {"requires_safety_checker", "boolean", "true"},
    {"unet", "any", "nil", "a UNet2DConditionModel to use instead of the folder's"},
    {"vae", "any", "nil",
     "an AutoencoderKL to use instead (e.g. a fine-tuned one), or an AutoencoderTiny (TAESD)"},
    {"text_encoder", "any", "nil", "a CLIPTextModel to use instead"},
    {"text_encoder_2", "any", "nil",
     "SDXL: a CLIPTextModelWithProjection to use instead (e.g. base.text_encoder_2)"},
    {"tokenizer", "any", "nil", "a CLIPTokenizer to use instead"},
    {"scheduler", "any", "nil", "a scheduler to use instead"},
    {"controlnet", "any", "nil",
     "StableDiffusionControlNetPipeline's ControlNetModel, or a list of them"},
    {"adapter", "any", "nil", "StableDiffusionAdapterPipeline's T2IAdapter, or a list of them"},
    {"force_zeros_for_empty_prompt", "boolean", "nil",
     "SDXL: zeros as the negative embeddings when no negative prompt is given (nil: the "
     "model's config)"},
    {"requires_aesthetics_score", "boolean", "nil",
     "SDXL img2img: the UNet's time ids carry aesthetic scores (nil: the model's config; the "
     "refiner's is true)"},
    {"add_watermarker", "boolean", "nil",
     "SDXL: accepted; no invisible watermark is added (as diffusers without the "
     "invisible-watermark package)"},
    {0}};

/* A pipeline's models: their keys (pipe.unet, from_pretrained's options, components) and
 * the Lua types of their objects. */
static const char *const model_key[] = {"unet", "vae", "text_encoder"};
static const char *const model_type[] = {"UNet2DConditionModel", "AutoencoderKL", "CLIPTextModel"};

/* A model passed to from_pretrained (key: unet, vae, text_encoder, or text_encoder_2 for
 * SDXL): one loaded on its own (X.from_pretrained), which the pipeline then takes over, or
 * another pipeline's (*shared set: diffusers' refiner given base.vae); NULL when the option
 * is nil. */
static lsdr_model_box *given_box(lua_State *L, int opts, const char *key, const char *type,
                                 int *shared) {
  lua_getfield(L, opts, key);
  *shared = 0;
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return NULL;
  }
  lsdr_model_box *b = luaL_testudata(L, -1, type);
  const int vae = strcmp(key, "vae") == 0;
  if (!b && vae)
    b = luaL_testudata(L, -1, LSDR_VAE_TINY);
  if (!b)
    lsdr_error(L, "option '%s': %s%s expected, got %s", key, type, vae ? " or " LSDR_VAE_TINY : "",
               lsdr_typename(L, -1));
  if (!lsdr_model_box_open(b))
    lsdr_error(L, "option '%s': this %s was closed", key, type);
  *shared = !b->free_own;
  lua_pop(L, 1); /* the options table keeps it */
  return b;
}

/* Another pipeline's models given to from_pretrained, bound again here on be from the same
 * weight files (in keep): the same numbers, held twice (diffusers shares the one module). */
typedef struct shared_copies {
  sdr_unet unet;
  sdr_vae vae;
  sdr_clip_text_model text_encoder, text_encoder_2;
  int made[4];
} shared_copies;

static void shared_copies_free(shared_copies *c) {
  if (c->made[0] && c->unet.be)
    sdr_unet_free(&c->unet);
  if (c->made[1] && c->vae.be)
    sdr_vae_free(&c->vae);
  if (c->made[2] && c->text_encoder.layers)
    sdr_clip_text_model_free(&c->text_encoder);
  if (c->made[3] && c->text_encoder_2.layers)
    sdr_clip_text_model_free(&c->text_encoder_2);
}

/* models[i] becomes the copy of box i's model where it is another pipeline's. */
static int copy_shared(shared_copies *c, lsdr_model_box *const boxes[4], const int shared[4],
                       void *models[4], sdr_backend *be, int keep) {
  memset(c, 0, sizeof *c);
  for (int i = 0; i < 4; i++) {
    if (!boxes[i] || !shared[i])
      continue;
    int rc = i == 0   ? sdr_unet_copy_to(&c->unet, boxes[i]->model, be, keep)
             : i == 1 ? sdr_vae_copy_to(&c->vae, boxes[i]->model, be, keep)
                      : sdr_clip_text_model_copy_to(i == 2 ? &c->text_encoder : &c->text_encoder_2,
                                                    boxes[i]->model, be, keep);
    if (rc != 0) {
      shared_copies_free(c);
      return -1;
    }
    c->made[i] = 1;
    models[i] = i == 0   ? (void *)&c->unet
                : i == 1 ? (void *)&c->vae
                : i == 2 ? (void *)&c->text_encoder
                         : (void *)&c->text_encoder_2;
  }
  return 0;
}

/* After the load took box's model over: the box runs the pipeline's copy from now on,
 * as pipe.<key> does (and is what pipe.<key> gives). */
static void box_follows_pipe(lua_State *L, int opts, int self, lsdr_pipe *p, int i, void *model) {
  lua_getfield(L, opts, model_key[i]);
  lsdr_model_box *b = lua_touserdata(L, -1);
  free(b->own); /* emptied by the move */
  b->own = NULL;
  b->free_own = NULL;
  b->model = model;
  b->owner_loaded = &p->core->loaded;
  lua_pushvalue(L, self);
  lua_setiuservalue(L, -2, 1);
  lsdr_push_pipe_parts(L, self);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, model_key[i]);
  lua_pop(L, 2);
}

static int read_keep_dtype(lua_State *L, int opts) {
  lua_getfield(L, opts, "torch_dtype");
  int keep = -1;
  if (!lua_isnil(L, -1)) {
    keep = lsdr_to_dtype(L, -1);
    if (keep != SDR_F32 && keep != SDR_F16 && keep != SDR_BF16)
      lsdr_error(L,
                 "option 'torch_dtype': torch.float32, torch.float16 or torch.bfloat16 expected");
  }
  lua_pop(L, 1);
  return keep;
}

/* After a load into the new pipeline at `self`: the tokenizer and the scheduler
 * become Lua objects the pipeline points into. */
static void adopt_parts(lua_State *L, int self, lsdr_pipe *p, const char *name) {
  p->core->loaded = 1;
  p->core->open_pipes = 1;
  lua_newtable(L);
  if (p->core->p.tokenizer) { /* an SDXL refiner has none */
    lsdr_push_clip_tokenizer(L, p->core->p.tokenizer, name);
    lua_setfield(L, -2, "tokenizer");
  }
  if (p->core->p.tokenizer_2) {
    lsdr_push_clip_tokenizer(L, p->core->p.tokenizer_2, name);
    lua_setfield(L, -2, "tokenizer_2");
  }
  lsdr_push_scheduler(L, p->core->p.scheduler);
  lua_setfield(L, -2, "scheduler");
  lua_pushstring(L, name);
  lua_setfield(L, -2, "name_or_path");
  lua_setiuservalue(L, self, 1);
}

/* Where the folder has nets of its own (its model_index.json names a "controlnet" or an
 * "adapter") and the option key does not give any, diffusers loads them: one model from
 * dir/<key>, or for MultiControlNetModel and MultiAdapter every folder dir/<key>,
 * dir/<key>_1, dir/<key>_2, ... while they exist (their from_pretrained's names). They become
 * the option, as if given. */
static void take_folder_nets(lua_State *L, int opts, const char *dir, const char *key,
                             const char *variant, int keep) {
  char cls[128], name[64], sub[4200];
  const int has = sdr_pipeline_component_class(dir, key, cls, sizeof cls);
  if (has < 0)
    lsdr_engine_error(L);
  if (!has || lua_getfield(L, opts, key) != LUA_TNIL) {
    lua_pop(L, has ? 1 : 0);
    return;
  }
  lua_pop(L, 1);
  const int cn = key[0] == 'c';
  const char *one = cn ? "ControlNetModel" : "T2IAdapter";
  const int multi = strncmp(cls, "Multi", 5) == 0;
  if (strcmp(cls, one) != 0 && strcmp(cls, cn ? "MultiControlNetModel" : "MultiAdapter") != 0)
    lsdr_error(L, "%s: model_index.json's %s is a %s; %s and its Multi class are supported", dir,
               key, cls, one);
  lua_newtable(L);
  int n = 0;
  for (; n == 0 || multi; n++) {
    snprintf(name, sizeof name, n ? "%s_%d" : "%s", key, n);
    snprintf(sub, sizeof sub, "%s/%s", dir, name);
    if (!lsdr_is_dir(sub))
      break;
    const char *v = variant && sdr_component_has_variant(dir, name, variant) == 1 ? variant : NULL;
    (cn ? lsdr_push_controlnet_from : lsdr_push_t2i_adapter_from)(L, sub, v, keep);
    lua_rawseti(L, -2, n + 1);
  }
  if (n == 0)
    lsdr_error(L, "%s: model_index.json names a %s but there is no folder %s/%s", dir, cls, dir,
               key);
  if (!multi)
    lua_rawgeti(L, -1, 1);
  lua_setfield(L, opts, key);
  lua_pop(L, multi ? 0 : 1);
}

/* What the __init__ of diffusers' StableDiffusionPipeline, StableDiffusionImg2ImgPipeline and
 * StableDiffusionInpaintPipeline does to outdated configs, with its deprecation warnings: the
 * scheduler's steps_offset becomes 1 and clip_sample False (inpainting: skip_prk_steps True),
 * and a UNet config older than diffusers 0.9 with a sample_size below 64 gets 64. The
 * scheduler and UNet are shared objects, so every pipeline holding them sees the change, as
 * in diffusers. */
static void fix_outdated(lua_State *L, int self) {
  lsdr_pipe *p = lsdr_check_pipe(L, self);
  if (p->kind != LSDR_KIND_T2I && p->kind != LSDR_KIND_I2I && p->kind != LSDR_KIND_INPAINT)
    return;
  lsdr_push_pipe_parts(L, self);
  lua_getfield(L, -1, "scheduler");
  sdr_scheduler *s = lsdr_to_scheduler(L, -1);
  lua_pop(L, 2);
  const int changed = s ? sdr_scheduler_fix_outdated(s, p->kind == LSDR_KIND_INPAINT) : 0;
  if (changed < 0)
    lsdr_engine_error(L);
  if (changed > 0)
    fprintf(stderr,
            "warning: the scheduler's config is outdated (steps_offset should be 1, %s); %s "
            "uses it updated, as diffusers does\n",
            p->kind == LSDR_KIND_INPAINT ? "skip_prk_steps true" : "clip_sample false",
            lsdr_pipe_class_name(p));
  sdr_unet_config *u = &p->core->p.unet.cfg;
  if (u->before_0_9 && u->sample_size < 64) {
    fprintf(stderr,
            "warning: the UNet's config (older than diffusers 0.9) has sample_size %d; %s uses "
            "64, as diffusers does\n",
            u->sample_size, lsdr_pipe_class_name(p));
    u->sample_size = 64;
  }
}

int lsdr_pipeline_from_pretrained(lua_State *L, int (*pick)(lua_State *L, const char *dir)) {
  const char *path = lua_tostring(L, 1);
  lua_getfield(L, 2, "safety_checker");
  if (lua_toboolean(L, -1))
    return lsdr_error(L, "option 'safety_checker': false (none, as diffusers' "
                         "safety_checker=None) or nil (the model's own) expected");
  const int no_checker = lua_isboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 2, "variant");
  const char *variant = lua_tostring(L, -1);
  int keep = read_keep_dtype(L, 2);
  /* A folder that exists wins; else a repo id is fetched into the hub cache. */
  const char *dir = lsdr_hub_resolve(L, 1, 2, SDR_HUB_PIPELINE);
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
    return lsdr_error(L, "no model folder at %s (nor a repo id of the Hugging Face hub)", path);
  int kind = pick(L, dir);
  int controlnet = 0; /* the option as the pipeline keeps it, at this index */
  if (lsdr_kind_has_controlnet(kind))
    take_folder_nets(L, 2, dir, "controlnet", variant, keep);
  if (lsdr_kind_has_adapter(kind))
    take_folder_nets(L, 2, dir, "adapter", variant, keep);
  if (lsdr_kind_has_controlnet(kind)) {
    lsdr_push_controlnet_option(L, 2, kind_class(kind));
    controlnet = lua_gettop(L);
  } else if (lua_getfield(L, 2, "controlnet") != LUA_TNIL) {
    return lsdr_error(L,
                      "option 'controlnet': a ControlNet runs in %s (or "
                      "AutoPipelineForText2Image.from_pretrained(..., {controlnet = ...}))",
                      LSDR_CONTROLNET_PIPE);
  }
  int adapter = 0; /* the T2I-Adapter option as the pipeline keeps it */
  if (lsdr_kind_has_adapter(kind)) {
    lsdr_push_adapter_option(L, 2, kind_class(kind));
    adapter = lua_gettop(L);
  } else if (lua_getfield(L, 2, "adapter") != LUA_TNIL) {
    return lsdr_error(L, "option 'adapter': a T2I-Adapter runs in %s or %s", LSDR_ADAPTER_PIPE,
                      LSDR_XL_ADAPTER);
  }
  lsdr_model_box *boxes[4];
  int shared[4];
  for (int i = 0; i < 3; i++)
    boxes[i] = given_box(L, 2, model_key[i], model_type[i], &shared[i]);
  boxes[3] = given_box(L, 2, "text_encoder_2", "CLIPTextModel", &shared[3]);
  shared[3] = 1; /* copied even when loaded on its own: its box keeps its model */
  const int dir_xl = sdr_pipeline_dir_has(dir, "text_encoder_2");
  if (dir_xl < 0)
    return lsdr_engine_error(L);
  /* the class and the model must agree on SDXL's second text encoder */
  if (dir_xl != lsdr_kind_xl(kind))
    return lsdr_error(L,
                      dir_xl ? "this is a Stable Diffusion XL model (it has text_encoder_2): load "
                               "it with %s or %s (or DiffusionPipeline, or an AutoPipeline class)"
                             : "%s needs a Stable Diffusion XL model (with text_encoder_2 and "
                               "tokenizer_2); this one is SD 1.x/2.x",
                      dir_xl ? LSDR_XL : kind_class(kind), LSDR_XL_I2I);
  const int dir_upscaler = sdr_pipeline_dir_has(dir, "low_res_scheduler");
  if (dir_upscaler < 0)
    return lsdr_engine_error(L);
  if ((kind == LSDR_KIND_UPSCALE) != dir_upscaler)
    return lsdr_error(L,
                      dir_upscaler
                          ? "this is an upscaler's model (it has a low_res_scheduler): load "
                            "it with %s (or DiffusionPipeline)"
                          : "%s needs an upscaler's model (with a low_res_scheduler, as "
                            "stabilityai/stable-diffusion-x4-upscaler); this one has none",
                      LSDR_UPSCALE);
  lua_getfield(L, 2, "tokenizer");
  if (!lua_isnil(L, -1) && !lsdr_to_clip_tokenizer(L, -1))
    return lsdr_error(L, "option 'tokenizer': a CLIPTokenizer expected, got %s",
                      lsdr_typename(L, -1));
  lua_getfield(L, 2, "scheduler");
  if (!lua_isnil(L, -1) && !lsdr_to_scheduler(L, -1))
    return lsdr_error(L, "option 'scheduler': a scheduler expected, got %s", lsdr_typename(L, -1));
  lua_pop(L, 2);
  void *models[4];
  for (int i = 0; i < 4; i++)
    models[i] = boxes[i] ? boxes[i]->model : NULL;
  sdr_backend *be = lsdr_backend(L, SDR_DEVICE_CPU);
  shared_copies copies;
  if (copy_shared(&copies, boxes, shared, models, be, keep) != 0)
    return lsdr_engine_error(L);
  sdr_pipeline_given given = {models[0], models[1], models[2], no_checker, models[3]};
  lsdr_pipe *p = new_pipe(L, kind, 0);
  int self = lua_gettop(L);
  p->core->keep_dtype = keep;
  const int rc = sdr_pipeline_load_given(&p->core->p, be, dir, variant, keep, &given);
  shared_copies_free(&copies); /* what did not move in (all of them on a failure) */
  if (rc != 0)
    return lsdr_engine_error(L);
  lua_getfield(L, 2, "force_zeros_for_empty_prompt");
  if (!lua_isnil(L, -1))
    p->core->p.force_zeros_for_empty_prompt = lua_toboolean(L, -1);
  lua_getfield(L, 2, "requires_aesthetics_score");
  if (!lua_isnil(L, -1))
    p->core->p.requires_aesthetics_score = lua_toboolean(L, -1);
  p->force_zeros = p->core->p.force_zeros_for_empty_prompt;
  p->aesthetics = p->core->p.requires_aesthetics_score;
  lua_pop(L, 2);
  adopt_parts(L, self, p, path);
  if (controlnet) {
    lsdr_push_pipe_parts(L, self);
    lua_pushvalue(L, controlnet);
    lua_setfield(L, -2, "controlnet");
    lua_pop(L, 1);
  }
  if (adapter) {
    lsdr_push_pipe_parts(L, self);
    lua_pushvalue(L, adapter);
    lua_setfield(L, -2, "adapter");
    lua_pop(L, 1);
  }
  void *moved[3] = {&p->core->p.unet, &p->core->p.vae, &p->core->p.text_encoder};
  for (int i = 0; i < 3; i++)
    if (boxes[i] && !shared[i])
      box_follows_pipe(L, 2, self, p, i, moved[i]);
  lsdr_push_pipe_parts(L, self);
  lua_getfield(L, 2, "tokenizer");
  if (!lua_isnil(L, -1))
    lua_setfield(L, -2, "tokenizer");
  else
    lua_pop(L, 1);
  lua_pop(L, 1);
  lua_getfield(L, 2, "scheduler");
  if (!lua_isnil(L, -1))
    lua_setfield(L, self, "scheduler");
  else
    lua_pop(L, 1);
  lua_settop(L, self);
  fix_outdated(L, self);
  return 1;
}

int lsdr_pipeline_from_pipe(lua_State *L, int idx, int kind) {
  idx = lua_absindex(L, idx);
  lsdr_pipe *src = lsdr_check_pipe(L, idx);
  if (sdr_pipeline_is_xl(&src->core->p) != lsdr_kind_xl(kind))
    return lsdr_error(L, "%s cannot be made from a %s: %s", kind_class(kind),
                      lsdr_pipe_class_name(src),
                      lsdr_kind_xl(kind) ? "it has no second text encoder (SDXL's)"
                                         : "an SDXL pipeline's models run in SDXL pipelines only");
  /* The components as Lua objects first, so both pipelines hand out the same ones
   * (pipe.unet == other.unet, as in diffusers). */
  for (int i = 0; i < 3; i++) {
    lua_getfield(L, idx, model_key[i]);
    lua_pop(L, 1);
  }
  new_pipe(L, kind, idx);
  int self = lua_gettop(L);
  lua_newtable(L);
  lsdr_push_pipe_parts(L, idx);
  lua_pushnil(L);
  while (lua_next(L, -2)) { /* tokenizer, scheduler, name_or_path and those components */
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -5);
  }
  lua_pop(L, 1);
  lua_setiuservalue(L, self, 1);
  fix_outdated(L, self);
  return 1;
}

/* The pipeline a component at idx was handed out by (pipe.unet and the like), pushed;
 * a Lua error for a model loaded on its own. */
static lsdr_pipe *owner_of(lua_State *L, int idx, const char *key, const char *type) {
  lsdr_model_box *b = luaL_testudata(L, idx, type);
  if (!b)
    lsdr_error(L, "component '%s': %s expected, got %s", key, type, lsdr_typename(L, idx));
  lsdr_pipe *owner = NULL;
  if (b->owner_loaded) {
    lua_getiuservalue(L, idx, 1);
    owner = lsdr_test_pipe(L, -1);
  }
  if (!owner || !owner->core || !owner->core->loaded)
    lsdr_error(L,
               "component '%s': a pipeline is built here from another pipeline's models "
               "(pipe.components); this %s was loaded on its own",
               key, type);
  return owner;
}

/* The safety checker or feature extractor given among components: 1 for the models'
 * pipeline's own (pipe.components has it), 0 for nil or false (none). */
static int checker_component(lua_State *L, int comps, const char *key, int owner_idx) {
  lua_getfield(L, comps, key);
  const int given = !lua_isnil(L, -1) && !(lua_isboolean(L, -1) && !lua_toboolean(L, -1));
  lua_getfield(L, owner_idx, key);
  if (given && !lua_rawequal(L, -1, -2))
    lsdr_error(L,
               "component '%s': the models' pipeline's own (pipe.components), nil or false "
               "expected, got %s",
               key, lsdr_typename(L, -2));
  lua_pop(L, 2);
  return given;
}

/* StableDiffusionPipeline{unet = ..., vae = ..., ...}, as diffusers'
 * StableDiffusionImg2ImgPipeline(**pipe.components): the models of one pipeline,
 * any tokenizer and scheduler. */
static int construct(lua_State *L, int kind) {
  lsdr_args(L);
  lsdr_options(L, 2);
  const int comps = 2;
  lsdr_pipe *owner = NULL;
  int owner_idx = 0;
  for (int i = 0; i < 3; i++) {
    lua_getfield(L, comps, model_key[i]);
    if (i == 2 && lsdr_kind_xl(kind) && lua_isnil(L, -1))
      continue; /* an SDXL refiner's: none */
    lsdr_pipe *o = owner_of(L, lua_gettop(L), model_key[i], model_type[i]);
    if (owner && o->core != owner->core)
      return lsdr_error(L,
                        "component '%s' comes from another pipeline than 'unet'; the models "
                        "must be one pipeline's",
                        model_key[i]);
    owner = o;
    owner_idx = lua_gettop(L);
  }
  lua_getfield(L, comps, "tokenizer");
  if (!lsdr_to_clip_tokenizer(L, -1) &&
      !(lsdr_kind_xl(kind) && lua_isnil(L, -1) && !owner->core->p.tokenizer))
    return lsdr_error(L, "component 'tokenizer': a CLIPTokenizer expected, got %s",
                      lsdr_typename(L, -1));
  int tok = lua_gettop(L);
  lua_getfield(L, comps, "tokenizer_2");
  if (lsdr_kind_xl(kind) && !lsdr_to_clip_tokenizer(L, -1))
    return lsdr_error(L, "component 'tokenizer_2': a CLIPTokenizer expected, got %s",
                      lsdr_typename(L, -1));
  int tok2 = lua_gettop(L);
  const int has_checker = checker_component(L, comps, "safety_checker", owner_idx);
  const int has_features = checker_component(L, comps, "feature_extractor", owner_idx);
  int controlnet = 0, adapter = 0;
  if (lsdr_kind_has_controlnet(kind)) {
    lsdr_push_controlnet_option(L, comps, kind_class(kind));
    controlnet = lua_gettop(L);
  }
  if (lsdr_kind_has_adapter(kind)) {
    lsdr_push_adapter_option(L, comps, kind_class(kind));
    adapter = lua_gettop(L);
  }
  lsdr_pipeline_from_pipe(L, owner_idx, kind);
  lsdr_pipe *made = lua_touserdata(L, -1);
  made->no_safety_checker = !has_checker;
  made->no_feature_extractor = !has_features;
  /* Cls(**components): the class's config defaults unless given among them */
  lua_getfield(L, comps, "force_zeros_for_empty_prompt");
  made->force_zeros = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
  lua_getfield(L, comps, "requires_aesthetics_score");
  made->aesthetics = lua_toboolean(L, -1);
  lua_pop(L, 2);
  lsdr_push_pipe_parts(L, -1);
  lua_pushvalue(L, tok);
  lua_setfield(L, -2, "tokenizer");
  if (lsdr_kind_xl(kind)) {
    lua_pushvalue(L, tok2);
    lua_setfield(L, -2, "tokenizer_2");
  }
  if (controlnet) {
    lua_pushvalue(L, controlnet);
    lua_setfield(L, -2, "controlnet");
  }
  if (adapter) {
    lua_pushvalue(L, adapter);
    lua_setfield(L, -2, "adapter");
  }
  lua_pop(L, 1);
  lua_getfield(L, comps, "scheduler");
  lua_setfield(L, -2, "scheduler"); /* through __newindex, which checks it */
  fix_outdated(L, lua_gettop(L));
  return 1;
}

/* Each class's entry points: Cls(components), and from_pretrained, which loads its own class
 * whatever model_index.json names (as diffusers' from_pretrained on a class). */
#define CLASS_ENTRY_POINTS(name, KIND)                                                             \
  static int name##_construct(lua_State *L) { return construct(L, KIND); }                         \
  static int pick_##name(lua_State *L, const char *dir) {                                          \
    (void)L, (void)dir;                                                                            \
    return KIND;                                                                                   \
  }                                                                                                \
  static int name##_from_pretrained(lua_State *L) {                                                \
    lsdr_args(L);                                                                                  \
    lsdr_options(L, 2);                                                                            \
    return lsdr_pipeline_from_pretrained(L, pick_##name);                                          \
  }
CLASS_ENTRY_POINTS(t2i, LSDR_KIND_T2I)
CLASS_ENTRY_POINTS(i2i, LSDR_KIND_I2I)
CLASS_ENTRY_POINTS(inpaint, LSDR_KIND_INPAINT)
CLASS_ENTRY_POINTS(controlnet, LSDR_KIND_CONTROLNET)
CLASS_ENTRY_POINTS(controlnet_i2i, LSDR_KIND_CONTROLNET_I2I)
CLASS_ENTRY_POINTS(controlnet_inpaint, LSDR_KIND_CONTROLNET_INPAINT)
CLASS_ENTRY_POINTS(lcm, LSDR_KIND_LCM)
CLASS_ENTRY_POINTS(lcm_i2i, LSDR_KIND_LCM_I2I)
CLASS_ENTRY_POINTS(pix2pix, LSDR_KIND_PIX2PIX)
CLASS_ENTRY_POINTS(xl, LSDR_KIND_XL)
CLASS_ENTRY_POINTS(xl_i2i, LSDR_KIND_XL_I2I)
CLASS_ENTRY_POINTS(xl_inpaint, LSDR_KIND_XL_INPAINT)
CLASS_ENTRY_POINTS(xl_controlnet, LSDR_KIND_XL_CONTROLNET)
CLASS_ENTRY_POINTS(xl_controlnet_i2i, LSDR_KIND_XL_CONTROLNET_I2I)
CLASS_ENTRY_POINTS(xl_controlnet_inpaint, LSDR_KIND_XL_CONTROLNET_INPAINT)
CLASS_ENTRY_POINTS(upscale, LSDR_KIND_UPSCALE)
CLASS_ENTRY_POINTS(adapter, LSDR_KIND_ADAPTER)
CLASS_ENTRY_POINTS(xl_adapter, LSDR_KIND_XL_ADAPTER)

static const lsdr_param component_options[] = {
    {"unet", "any", "nil"},
    {"vae", "any", "nil"},
    {"text_encoder", "any", "nil"},
    {"tokenizer", "any", "nil"},
    {"scheduler", "any", "nil"},
    {"safety_checker", "any", "nil", "the models' pipeline's own, or nil or false: none"},
    {"feature_extractor", "any", "nil", "the models' pipeline's own, or nil or false: none"},
    {"image_encoder", "any", "nil", "not used"},
    {"controlnet", "any", "nil", "StableDiffusionControlNetPipeline: a ControlNetModel or a list"},
    {"adapter", "any", "nil", "StableDiffusionAdapterPipeline: a T2IAdapter or a list"},
    {"text_encoder_2", "any", "nil", "SDXL: the models' pipeline's own"},
    {"tokenizer_2", "any", "nil", "SDXL: a CLIPTokenizer"},
    {"requires_safety_checker", "boolean", "true"},
    {0}};

static const lsdr_param single_file_options[] = {
    {"torch_dtype", "table|string", "nil", "dtype the weights are kept in (float32 when nil)"},
    {"config", "string", "nil", "a diffusers folder whose configs, tokenizer and scheduler to use"},
    {"tokenizer", "string", "nil", "a tokenizer folder (default: config's, else CLIP ViT-L/14's)"},
    {"extract_ema", "boolean", "false",
     "take the EMA weights (model_ema.*) when the file has them"},
    {"scheduler_type", "string", "\"ddim\"",
     "pndm, lms, euler, euler-ancestral, dpm or ddim (SDXL: always euler, as diffusers)"},
    {"prediction_type", "string", "nil", "epsilon or v_prediction (inferred when nil)"},
    {"image_size", "integer", "nil", "512, 768 for SD 2.x, 1024 for SDXL (inferred when nil)"},
    LSDR_HUB_PARAMS,
    {0}};

/* A checkpoint named by its place on the hub, as from_single_file takes one
 * ("https://huggingface.co/org/name/blob/main/sd_xl_base_1.0.safetensors", or without the
 * https:// or the blob/main/, or on hf.co: diffusers' _extract_repo_id_and_weights_name),
 * fetched into the hub cache with the options' revision, cache_dir, token and
 * local_files_only. Pushes its local path. */
static const char *hub_single_file(lua_State *L, const char *link, int opts) {
  static const char *const prefixes[] = {"https://huggingface.co/", "huggingface.co/", "hf.co/",
                                         "https://hf.co/"};
  const char *s = link;
  for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
    if (strncmp(s, prefixes[i], strlen(prefixes[i])) == 0)
      s += strlen(prefixes[i]);
  const char *a = strchr(s, '/'), *b = a ? strchr(a + 1, '/') : NULL;
  if (!a || a == s || !b || b == a + 1 || !b[1])
    lsdr_error(L, "no checkpoint file at %s (nor a file on the hub: org/name/path/to/file)", link);
  const char *file = b + 1;
  if (strncmp(file, "blob/main/", 10) == 0)
    file += 10;
  lua_pushlstring(L, s, (size_t)(b - s));
  const int repo = lua_gettop(L);
  lua_createtable(L, 0, 6);
  const int hub = lua_gettop(L);
  static const char *const keys[] = {"revision", "cache_dir", "token", "local_files_only"};
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
    lua_getfield(L, opts, keys[i]);
    lua_setfield(L, hub, keys[i]);
  }
  const char *slash = strrchr(file, '/');
  lua_pushstring(L, slash ? slash + 1 : file);
  lua_setfield(L, hub, "weight_name");
  if (slash) {
    lua_pushlstring(L, file, (size_t)(slash - file));
    lua_setfield(L, hub, "subfolder");
  }
  const char *dir = lsdr_hub_resolve(L, repo, hub, SDR_HUB_FILE);
  return lua_pushfstring(L, "%s/%s", dir, file);
}

/* from_single_file(path, opts): a CompVis/LDM checkpoint (.safetensors or .ckpt), a local file
 * or one on the hub. */
static int from_single_file_as(lua_State *L, int kind) {
  lsdr_args(L);
  lsdr_options(L, 2);
  const char *path = lua_tostring(L, 1);
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
    path = hub_single_file(L, path, 2);
  sdr_single_file_options so;
  memset(&so, 0, sizeof so);
  lua_getfield(L, 2, "config");
  so.config_dir = lua_tostring(L, -1);
  lua_getfield(L, 2, "tokenizer");
  so.tokenizer_dir = lua_tostring(L, -1);
  lua_getfield(L, 2, "extract_ema");
  so.extract_ema = lua_toboolean(L, -1);
  lua_getfield(L, 2, "scheduler_type");
  so.scheduler_type = lua_tostring(L, -1);
  lua_getfield(L, 2, "prediction_type");
  so.prediction_type = lua_tostring(L, -1);
  lua_getfield(L, 2, "image_size");
  so.image_size = (int)lua_tointeger(L, -1);
  lua_pop(L, 6); /* the options table keeps the strings */
  int keep = read_keep_dtype(L, 2);
  sdr_backend *be = lsdr_backend(L, SDR_DEVICE_CPU);
  lsdr_pipe *p = new_pipe(L, kind, 0);
  int self = lua_gettop(L);
  p->core->keep_dtype = keep;
  so.want_xl = lsdr_kind_xl(kind) ? 1 : -1;
  if (sdr_pipeline_load_single_file_ex(&p->core->p, be, path, keep, &so) != 0)
    return lsdr_engine_error(L);
  p->force_zeros = p->core->p.force_zeros_for_empty_prompt;
  p->aesthetics = p->core->p.requires_aesthetics_score;
  adopt_parts(L, self, p, path);
  fix_outdated(L, self);
  return 1;
}

static int t2i_from_single_file(lua_State *L) { return from_single_file_as(L, LSDR_KIND_T2I); }
static int i2i_from_single_file(lua_State *L) { return from_single_file_as(L, LSDR_KIND_I2I); }
static int inpaint_from_single_file(lua_State *L) {
  return from_single_file_as(L, LSDR_KIND_INPAINT);
}
static int xl_from_single_file(lua_State *L) { return from_single_file_as(L, LSDR_KIND_XL); }
static int xl_i2i_from_single_file(lua_State *L) {
  return from_single_file_as(L, LSDR_KIND_XL_I2I);
}
static int xl_inpaint_from_single_file(lua_State *L) {
  return from_single_file_as(L, LSDR_KIND_XL_INPAINT);
}

/* ---- components, device, options -------------------------------------------------- */

/* The models on device d (-1: where they are), their weights in dtype (-1: as they are). */
static void move_pipe_as(lua_State *L, lsdr_pipe *p, int d, int dtype) {
  sdr_backend *be = d < 0 ? p->core->p.be : lsdr_backend(L, (sdr_device)d); /* raises if absent */
  if (be == p->core->p.be && (dtype < 0 || dtype == p->core->keep_dtype))
    return;
  const int keep = lsdr_pipe_keep_dtype(p, be, dtype);
  if (sdr_pipeline_to(&p->core->p, be, keep) != 0)
    lsdr_engine_error_advice(
        L, "loading with {torch_dtype = torch.float16} (half the memory), or the CPU");
  if (dtype >= 0) { /* pipe.to(dtype): the models' dtype is the run's (noise drawn in it) */
    p->core->keep_dtype = dtype;
    p->core->p.dtype = (sdr_dtype)dtype;
  }
  if (lsdr_pipe_controlnet(p)) { /* its nets go along (the pipeline is at 1 in the callers) */
    lsdr_push_pipe_parts(L, 1);
    lsdr_controlnets_follow(L, lua_gettop(L), be, keep);
    lua_pop(L, 1);
  }
  if (lsdr_kind_has_adapter(p->kind)) { /* and the T2I-Adapters */
    lsdr_push_pipe_parts(L, 1);
    lsdr_adapters_follow(L, lua_gettop(L), be, keep);
    lua_pop(L, 1);
  }
}

static void move_pipe(lua_State *L, lsdr_pipe *p, int d) { move_pipe_as(L, p, d, -1); }

/* A dtype argument of pipe.to: torch.float32, float16 or bfloat16. */
static int to_dtype_arg(lua_State *L, int idx, const char *what) {
  int dt = lsdr_to_dtype(L, idx);
  if (dt != SDR_F32 && dt != SDR_F16 && dt != SDR_BF16)
    lsdr_error(L, "%s: torch.float32, torch.float16 or torch.bfloat16 expected, got %s", what,
               lsdr_typename(L, idx));
  return dt;
}

/* diffusers' DiffusionPipeline.to: pipe:to("cuda"), pipe:to(torch.float16),
 * pipe:to("cuda", torch.float16), pipe:to{torch_device = "cuda", torch_dtype = ...}. */
static int pipe_to(lua_State *L) {
  lsdr_args(L);
  lsdr_pipe *p = lsdr_check_pipe(L, 1);
  int d = -1, dtype = -1;
  if (lua_istable(L, 2) && lsdr_to_dtype(L, 2) < 0) { /* keywords */
    static const char *const dev_keys[] = {"torch_device", "device"};
    static const char *const type_keys[] = {"torch_dtype", "dtype"};
    for (int i = 0; i < 2; i++) {
      if (lua_getfield(L, 2, dev_keys[i]) != LUA_TNIL &&
          (d = lsdr_parse_device(lua_tostring(L, -1))) < 0)
        return lsdr_error(L, "option '%s': \"cpu\" or \"cuda\" expected", dev_keys[i]);
      if (lua_getfield(L, 2, type_keys[i]) != LUA_TNIL)
        dtype = to_dtype_arg(L, lua_gettop(L), type_keys[i]);
      lua_pop(L, 2);
    }
  } else if (lua_type(L, 2) == LUA_TSTRING && lsdr_parse_device(lua_tostring(L, 2)) >= 0) {
    d = lsdr_parse_device(lua_tostring(L, 2));
    if (!lua_isnil(L, 3))
      dtype = to_dtype_arg(L, 3, "argument 2 (dtype)");
  } else if (!lua_isnil(L, 2) && lsdr_to_dtype(L, 2) >= 0 && lua_isnil(L, 3)) {
    dtype = to_dtype_arg(L, 2, "argument 1 (dtype)");
  } else {
    return lsdr_argerror(L, 1,
                         "\"cpu\" or \"cuda\", a dtype, or {torch_device = ..., "
                         "torch_dtype = ...}");
  }
  move_pipe_as(L, p, d, dtype);
  lua_settop(L, 1);
  return 1;
}

/* enable_model_cpu_offload(gpu_id, device) and enable_sequential_cpu_offload: diffusers
 * runs each model on the GPU as it is needed, to fit a small card. The pictures are the
 * GPU's either way, and the whole fp16 pipeline fits in under 4 GB here, so the models
 * simply go to the GPU and stay. */
static int pipe_cpu_offload(lua_State *L) {
  lsdr_args(L);
  lsdr_pipe *p = lsdr_check_pipe(L, 1);
  if (!lua_isnil(L, 2) && lua_tointeger(L, 2) != 0)
    return lsdr_argerror(L, 1, "nil or 0 (sdrepl uses one GPU, cuda:0)");
  int d = lsdr_parse_device(lua_tostring(L, 3));
  if (d != SDR_DEVICE_CUDA)
    return lsdr_argerror(L, 2, "\"cuda\"");
  move_pipe(L, p, d);
  return 0;
}

/* upcast_vae (SDXL's and the upscaler's pipelines): the VAE in float32 from now on. With
 * torch 2 diffusers leaves post_quant_conv, the decoder's conv_in and mid block in the old
 * dtype; here the whole VAE goes to float32 (the same pictures within float16's error). */
static int pipe_upcast_vae(lua_State *L) {
  lsdr_args(L);
  sdr_pipeline *p = &lsdr_check_pipe(L, 1)->core->p;
  sdr_vae old;
  if (sdr_pipeline_replace_vae(p, &p->vae, SDR_F32, &old) != 0)
    return lsdr_engine_error(L);
  sdr_vae_free(&old);
  return 0;
}

/* fuse_qkv_projections: one product for q, k and v gives the same values as three; the
 * attention layers here are already as fast either way, so it changes nothing. */
static int pipe_fuse_qkv_projections(lua_State *L) {
  lsdr_args(L);
  lsdr_check_pipe(L, 1);
  return 0;
}

static int pipe_enable_attention_slicing(lua_State *L) {
  lsdr_args(L);
  lsdr_check_pipe(L, 1);
  /* Attention never holds the whole score matrix here, so slicing changes nothing:
   * the same pictures, memory bounded either way. */
  return 0;
}

static int pipe_disable_attention_slicing(lua_State *L) {
  lsdr_args(L);
  lsdr_check_pipe(L, 1);
  return 0;
}

/* tqdm's options as diffusers passes them to its bar: the ones our bar has. */
static int pipe_set_progress_bar_config(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 1);
  lsdr_pipe *p = lsdr_check_pipe(L, 1);
  lua_getfield(L, 2, "disable");
  p->progress_disable = lua_toboolean(L, -1);
  lua_getfield(L, 2, "desc");
  snprintf(p->progress_desc, sizeof p->progress_desc, "%s",
           lua_isnil(L, -1) ? "" : lua_tostring(L, -1));
  return 0;
}

static int pipe_vae_slicing(lua_State *L, int on) {
  lsdr_args(L);
  lsdr_check_pipe(L, 1)->core->p.vae_slicing = on;
  return 0;
}
static int pipe_vae_tiling(lua_State *L, int on) {
  lsdr_args(L);
  lsdr_check_pipe(L, 1)->core->p.vae_tiling = on;
  return 0;
}
static int pipe_enable_vae_tiling(lua_State *L) { return pipe_vae_tiling(L, 1); }
static int pipe_disable_vae_tiling(lua_State *L) { return pipe_vae_tiling(L, 0); }
static int pipe_enable_freeu(lua_State *L) {
  lsdr_args(L);
  return lsdr_freeu_enable(L, &lsdr_pipeline_models(L, 1)->unet, 2);
}

static int pipe_disable_freeu(lua_State *L) {
  lsdr_args(L);
  sdr_freeu *f = &lsdr_pipeline_models(L, 1)->unet.freeu;
  f->s1 = f->s2 = f->b1 = f->b2 = 0;
  return 0;
}

static int pipe_enable_vae_slicing(lua_State *L) { return pipe_vae_slicing(L, 1); }
static int pipe_disable_vae_slicing(lua_State *L) { return pipe_vae_slicing(L, 0); }

static int pipe_properties(lua_State *L) {
  lsdr_pipe *p = lsdr_check_pipe(L, 1);
  const char *k = lua_tostring(L, 2);
  if (!k)
    return 0;
  lsdr_push_pipe_parts(L, 1);
  int parts = lua_gettop(L);
  if (lua_getfield(L, parts, k) != LUA_TNIL &&
      (strcmp(k, "tokenizer") == 0 || strcmp(k, "scheduler") == 0 || strcmp(k, "unet") == 0 ||
       strcmp(k, "vae") == 0 || strcmp(k, "text_encoder") == 0 || strcmp(k, "tokenizer_2") == 0 ||
       strcmp(k, "text_encoder_2") == 0))
    return 1;
  lua_pop(L, 1);
  if (strcmp(k, "text_encoder_2") == 0 || strcmp(k, "tokenizer_2") == 0) {
    if (!sdr_pipeline_is_xl(&p->core->p) || (k[0] == 't' && k[1] == 'o')) {
      lua_pushnil(L); /* not an SDXL pipeline (tokenizer_2 is always in the parts when it is) */
      return 1;
    }
    lsdr_push_clip_text_model_ref(L, &p->core->p.text_encoder_2, 1);
    ((lsdr_model_box *)lua_touserdata(L, -1))->owner_loaded = &p->core->loaded;
  } else if (strcmp(k, "unet") == 0 || strcmp(k, "vae") == 0 || strcmp(k, "text_encoder") == 0) {
    if (k[0] == 'u')
      lsdr_push_unet_ref(L, &p->core->p.unet, 1);
    else if (k[0] == 'v')
      lsdr_push_vae_ref(L, &p->core->p.vae, 1);
    else if (!p->core->p.text_encoder.layers) { /* an SDXL refiner's: none */
      lua_pushnil(L);
      return 1;
    } else
      lsdr_push_clip_text_model_ref(L, &p->core->p.text_encoder, 1);
    /* the core outlives the box (the box keeps this pipeline, which keeps the core) */
    ((lsdr_model_box *)lua_touserdata(L, -1))->owner_loaded = &p->core->loaded;
  } else if (strcmp(k, "safety_checker") == 0 || strcmp(k, "feature_extractor") == 0) {
    /* nil where the model has none, or this pipeline's was set to nil */
    const sdr_pipeline *e = &p->core->p;
    if (k[0] == 's' ? !e->safety_checker || p->no_safety_checker : !e->feature_extractor) {
      lua_pushnil(L);
      return 1;
    }
    if (lua_getfield(L, parts, k) != LUA_TNIL)
      return 1;
    lua_pop(L, 1);
    (k[0] == 's' ? lsdr_push_safety_checker : lsdr_push_feature_extractor)(L, 1);
  } else if (strcmp(k, "device") == 0) {
    lsdr_push_device(L, p->core->p.be->device);
    return 1;
  } else if (strcmp(k, "config") == 0) {
    return lsdr_push_pipe_config(L, 1);
  } else if (strcmp(k, "dtype") == 0) { /* DiffusionPipeline.dtype: its models' */
    lsdr_push_model_dtype(L, &p->core->p.unet.weights);
    return 1;
  } else if (strcmp(k, "vae_scale_factor") == 0) {
    lua_pushinteger(L, sdr_vae_scale_factor(&p->core->p.vae));
    return 1;
  } else if (strcmp(k, "lora_scale") == 0) { /* the last call's LoRA scale, else 1 */
    const sdr_lora *l = &p->core->p.lora;
    lua_pushnumber(L, l->has_last_scale ? l->last_scale : 1.0);
    return 1;
  } else if (strcmp(k, "image_processor") == 0) { /* VaeImageProcessor(vae_scale_factor=...) */
    lsdr_push_image_processor(L, sdr_vae_scale_factor(&p->core->p.vae));
    return 1;
  } else if (strcmp(k, "mask_processor") == 0 && lsdr_pipe_inpaint(p)) {
    lsdr_push_mask_processor(L, sdr_vae_scale_factor(&p->core->p.vae));
    return 1;
  } else if (strcmp(k, "name_or_path") == 0) {
    lua_getfield(L, parts, "name_or_path");
    return 1;
  } else if (strcmp(k, "controlnet") == 0) { /* nil but in a ControlNet pipeline */
    if (lsdr_pipe_controlnet(p))
      lua_getfield(L, parts, "controlnet");
    else
      lua_pushnil(L);
    return 1;
  } else if (strcmp(k, "adapter") == 0) { /* nil but in a T2I-Adapter pipeline */
    if (lsdr_kind_has_adapter(p->kind))
      lua_getfield(L, parts, "adapter");
    else
      lua_pushnil(L);
    return 1;
  } else if (strcmp(k, "control_image_processor") == 0 && lsdr_pipe_controlnet(p)) {
    lsdr_push_control_image_processor(L, sdr_vae_scale_factor(&p->core->p.vae));
    return 1;
  } else if (strcmp(k, "components") == 0) {
    /* diffusers' pipe.components (safety_checker and feature_extractor: nil where none) */
    static const char *const names[] = {"unet",
                                        "vae",
                                        "text_encoder",
                                        "tokenizer",
                                        "scheduler",
                                        "safety_checker",
                                        "feature_extractor"};
    lua_createtable(L, 0, 8);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
      lua_getfield(L, 1, names[i]);
      lua_setfield(L, -2, names[i]);
    }
    if (lsdr_pipe_controlnet(p)) {
      lua_getfield(L, parts, "controlnet");
      lua_setfield(L, -2, "controlnet");
    }
    if (lsdr_kind_has_adapter(p->kind)) {
      lua_getfield(L, parts, "adapter");
      lua_setfield(L, -2, "adapter");
    }
    if (sdr_pipeline_is_xl(&p->core->p))
      for (int i = 0; i < 2; i++) {
        lua_getfield(L, 1, i ? "tokenizer_2" : "text_encoder_2");
        lua_setfield(L, -2, i ? "tokenizer_2" : "text_encoder_2");
      }
    return 1;
  } else {
    return 0;
  }
  /* The same object each time: pipe.unet == pipe.unet. */
  lua_pushvalue(L, -1);
  lua_setfield(L, parts, k);
  return 1;
}

/* pipe.vae = AutoencoderTiny.from_pretrained("madebyollin/taesd"), the docs' line: the next
 * calls decode and encode with it (a copy on the pipeline's device and dtype). An object that
 * showed the old VAE (old = pipe.vae) keeps it, as the module lives on in Python. */
static int replace_vae(lua_State *L) {
  lsdr_pipe *pp = lsdr_check_pipe(L, 1);
  lua_settop(L, 3);
  lua_getfield(L, 1, "vae");
  if (lua_rawequal(L, -1, 3)) /* pipe.vae = torch.compile(pipe.vae) */
    return 0;
  if (!luaL_testudata(L, 3, LSDR_VAE) && !luaL_testudata(L, 3, LSDR_VAE_TINY))
    return luaL_error(L, "pipe.vae: an %s or %s expected, got %s", LSDR_VAE, LSDR_VAE_TINY,
                      lsdr_typename(L, 3));
  lsdr_model_box *box;
  const sdr_vae *src = lsdr_check_vae(L, 3, &box);
  if (pp->core->open_pipes > 1)
    return luaL_error(L,
                      "pipe.vae: %d pipelines share these models (from_pipe); replace the VAE "
                      "before from_pipe, or pass it to from_pretrained ({vae = ...})",
                      pp->core->open_pipes);
  sdr_vae old;
  if (sdr_pipeline_replace_vae(&pp->core->p, src, pp->core->keep_dtype, &old) != 0)
    return lsdr_engine_error(L);
  /* tiling and slicing are the module's flags in diffusers: the new one's */
  pp->core->p.vae_tiling = box->tiling;
  pp->core->p.vae_slicing = 0;
  lsdr_push_pipe_parts(L, 1);
  const int parts = lua_gettop(L);
  if (lua_getfield(L, parts, "vae") != LUA_TNIL)
    lsdr_vae_box_adopt(L, parts + 1, &old);
  else
    sdr_vae_free(&old);
  lua_pushnil(L);
  lua_setfield(L, parts, "vae"); /* pipe.vae shows the new one from now on */
  return 0;
}

/* pipe.scheduler = X.from_config(pipe.scheduler.config), as in diffusers. */
static int pipe_newindex(lua_State *L) {
  lsdr_check_pipe(L, 1);
  const char *k = lua_tostring(L, 2);
  /* pipe.safety_checker = None, the notebooks' line: this pipeline runs none from now on;
   * its memory goes unless other pipelines (from_pipe) still use it */
  if (k && (strcmp(k, "safety_checker") == 0 || strcmp(k, "feature_extractor") == 0)) {
    lua_getfield(L, 1, k);
    if (lua_rawequal(L, -1, 3)) /* the same object back */
      return 0;
    if (!lua_isnil(L, 3))
      return luaL_error(L, "pipeline: '%s' can only be set to nil (to run none)", k);
    lsdr_pipe *pp = lsdr_check_pipe(L, 1);
    if (k[0] == 'f') {
      pp->no_feature_extractor = 1;
      return 0;
    }
    pp->no_safety_checker = 1;
    if (pp->core->open_pipes == 1)
      sdr_pipeline_drop_safety_checker(&pp->core->p);
    lsdr_push_pipe_parts(L, 1);
    lua_pushnil(L);
    lua_setfield(L, -2, k);
    return 0;
  }
  /* pipe.controlnet = another ControlNetModel (or a list): the next calls use it, as diffusers'
   * __call__ reads self.controlnet */
  if (k && strcmp(k, "controlnet") == 0) {
    lsdr_pipe *pp = lsdr_check_pipe(L, 1);
    if (!lsdr_pipe_controlnet(pp))
      return luaL_error(L, "pipeline: a %s takes no ControlNet (%s does)", lsdr_pipe_class_name(pp),
                        LSDR_CONTROLNET_PIPE);
    lua_settop(L, 3);
    lua_createtable(L, 0, 1); /* the option reader's table */
    lua_pushvalue(L, 3);
    lua_setfield(L, -2, "controlnet");
    lsdr_push_controlnet_option(L, 4, lsdr_pipe_class_name(pp));
    lsdr_push_pipe_parts(L, 1);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "controlnet");
    return 0;
  }
  /* pipe.adapter = another T2IAdapter (or a list) */
  if (k && strcmp(k, "adapter") == 0) {
    lsdr_pipe *pp = lsdr_check_pipe(L, 1);
    if (!lsdr_kind_has_adapter(pp->kind))
      return luaL_error(L, "pipeline: a %s takes no T2I-Adapter (%s does)",
                        lsdr_pipe_class_name(pp), LSDR_ADAPTER_PIPE);
    lua_settop(L, 3);
    lua_createtable(L, 0, 1); /* the option reader's table */
    lua_pushvalue(L, 3);
    lua_setfield(L, -2, "adapter");
    lsdr_push_adapter_option(L, 4, lsdr_pipe_class_name(pp));
    lsdr_push_pipe_parts(L, 1);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "adapter");
    return 0;
  }
  if (k && strcmp(k, "vae") == 0)
    return replace_vae(L);
  /* pipe.unet = torch.compile(pipe.unet): the same model back */
  static const char *const parts[] = {"unet",           "text_encoder", "tokenizer",
                                      "text_encoder_2", "tokenizer_2",  NULL};
  for (int i = 0; k && parts[i]; i++) {
    if (strcmp(k, parts[i]) != 0)
      continue;
    lua_getfield(L, 1, k);
    if (lua_rawequal(L, -1, 3))
      return 0;
    return luaL_error(L,
                      "pipeline: '%s' cannot be replaced by another; pass it to from_pretrained "
                      "instead ({%s = ...}), as diffusers' components",
                      k, k);
  }
  if (!k || strcmp(k, "scheduler") != 0)
    return luaL_error(L, "pipeline: '%s' cannot be set (only pipe.scheduler can be replaced)",
                      k ? k : "?");
  if (!lsdr_to_scheduler(L, 3))
    return luaL_error(L,
                      "pipe.scheduler: a scheduler expected (e.g. "
                      "EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)), got %s",
                      lsdr_typename(L, 3));
  lsdr_push_pipe_parts(L, 1);
  lua_pushvalue(L, 3);
  lua_setfield(L, -2, "scheduler");
  return 0;
}

static int pipe_tostring(lua_State *L) {
  lsdr_pipe *p = lua_touserdata(L, 1);
  if (!p->core || !p->core->loaded) {
    lua_pushliteral(L, "<pipeline (closed)>");
    return 1;
  }
  lsdr_push_pipe_parts(L, 1);
  lua_getfield(L, -1, "name_or_path");
  lua_pushfstring(L, "<%s %s on %s>", lsdr_pipe_class_name(p), lua_tostring(L, -1),
                  sdr_device_name(p->core->p.be->device));
  return 1;
}

static const lsdr_param progress_bar_options[] = {
    {"disable", "boolean", "false"},
    {"desc", "string", "nil"},
    {"leave", "boolean", "true", "accepted; the bar stays"},
    {"position", "integer", "nil", "accepted; one bar at a time here"},
    {"ncols", "integer", "nil", "accepted; the bar fits the terminal"},
    {"dynamic_ncols", "boolean", "false", "accepted; the bar fits the terminal"},
    {"ascii", "boolean|string", "nil", "accepted"},
    {"colour", "string", "nil", "accepted"},
    {"mininterval", "number", "0.1", "accepted"},
    {0}};

/* SDXL's and the upscaler's pipe:upcast_vae() */
#define UPCAST_VAE(CLS)                                                                            \
  {                                                                                                \
    CLS ":upcast_vae", pipe_upcast_vae,                                                            \
        "The VAE in float32 from now on (a float16 pipeline's decode without overflow)."           \
  }

static int pipe_numpy_to_pil(lua_State *L) {
  lsdr_args(L);
  lsdr_push_numpy_to_pil(L, 2);
  return 1;
}

#define PIPE_METHODS(CLS)                                                                          \
  {CLS ":to",                                                                                      \
   pipe_to,                                                                                        \
   "Moves the pipeline to a device and/or dtype; returns it.",                                     \
   {{"device", "any", NULL, "\"cuda\", a dtype, or {torch_device, torch_dtype}"},                  \
    {"dtype", "any", "nil", "torch.float16 ..."}}},                                                \
      {CLS ":enable_attention_slicing",                                                            \
       pipe_enable_attention_slicing,                                                              \
       "Accepted for diffusers' sake: attention is computed in slices always.",                    \
       {{"slice_size", "string|integer", "\"auto\""}}},                                            \
      {CLS ":disable_attention_slicing", pipe_disable_attention_slicing,                           \
       "Accepted for diffusers' sake, as enable_attention_slicing."},                              \
      {CLS ":enable_xformers_memory_efficient_attention",                                          \
       pipe_enable_attention_slicing,                                                              \
       "Accepted for diffusers' sake: attention here never holds the whole score matrix.",         \
       {{"attention_op", "any", "nil"}}},                                                          \
      {CLS ":disable_xformers_memory_efficient_attention", pipe_disable_attention_slicing,         \
       "Accepted for diffusers' sake, as enable_xformers_memory_efficient_attention."},            \
      {CLS ":numpy_to_pil",                                                                        \
       pipe_numpy_to_pil,                                                                          \
       "Pictures from an array in [0, 1] (batch, height, width, channels), as output_type = "      \
       "\"np\" gives (diffusers' DiffusionPipeline.numpy_to_pil).",                                \
       {{"images", "Tensor"}}},                                                                    \
      {CLS ":save_pretrained",                                                                     \
       lsdr_pipe_save_pretrained,                                                                  \
       "Writes the pipeline as a diffusers folder that from_pretrained loads (here or in "         \
       "diffusers).",                                                                              \
       {{"save_directory", "string"}, {"opts", "table", "nil"}},                                   \
       lsdr_save_pretrained_options},                                                              \
      {CLS ":set_progress_bar_config",                                                             \
       pipe_set_progress_bar_config,                                                               \
       "The denoising loop's progress bar: disable = true hides it, desc labels it.",              \
       {{"opts", "table"}},                                                                        \
       progress_bar_options},                                                                      \
      {CLS ":encode_prompt",                                                                       \
       lsdr_pipe_encode_prompt,                                                                    \
       "The text embeddings a call would use: prompt_embeds, negative_prompt_embeds (or nil).",    \
       {{"prompt", "string|table", "nil"},                                                         \
        {"device", "string", "nil", "where the tensors go; nil: the pipeline's device"},           \
        {"num_images_per_prompt", "integer", "1"},                                                 \
        {"do_classifier_free_guidance", "boolean", "true"},                                        \
        {"opts", "table", "nil"}},                                                                 \
       lsdr_encode_prompt_options},                                                                \
      {CLS ":enable_model_cpu_offload",                                                            \
       pipe_cpu_offload,                                                                           \
       "Runs the pipeline on the GPU (its models stay there: they fit, and the pictures are the "  \
       "same).",                                                                                   \
       {{"gpu_id", "integer", "nil"}, {"device", "string", "\"cuda\""}}},                          \
      {CLS ":enable_sequential_cpu_offload",                                                       \
       pipe_cpu_offload,                                                                           \
       "As enable_model_cpu_offload.",                                                             \
       {{"gpu_id", "integer", "nil"}, {"device", "string", "\"cuda\""}}},                          \
      {CLS ":load_textual_inversion",                                                              \
       lsdr_pipe_load_textual_inversion,                                                           \
       "Adds a textual inversion's token(s) and embedding(s) to the tokenizer and text encoder.",  \
       {{"pretrained_model_name_or_path", "any"}, {"opts", "table", "nil"}},                       \
       lsdr_textual_inversion_options},                                                            \
      {CLS ":maybe_convert_prompt",                                                                \
       lsdr_pipe_maybe_convert_prompt,                                                             \
       "The prompt (or list) with multi-vector textual inversion tokens spelled out.",             \
       {{"prompt", "string|table"}, {"tokenizer", "any", "nil"}}},                                 \
      {CLS ":unload_textual_inversion",                                                            \
       lsdr_pipe_unload_textual_inversion,                                                         \
       "Removes added tokens (these, or all) from the tokenizer and the text encoder.",            \
       {{"tokens", "string|table", "nil"},                                                         \
        {"tokenizer", "any", "nil", "pipe.tokenizer (nil) or SDXL's pipe.tokenizer_2"},            \
        {"text_encoder", "any", "nil", "the tokenizer's text encoder"}}},                          \
      {CLS ":load_lora_weights",                                                                   \
       lsdr_pipe_load_lora_weights,                                                                \
       "Loads a LoRA (repo id, folder, file or state dict) into the UNet and text encoder.",       \
       {{"pretrained_model_name_or_path_or_dict", "any"}, {"opts", "table|string", "nil"}},        \
       lsdr_lora_options},                                                                         \
      {CLS ":fuse_lora",                                                                           \
       lsdr_pipe_fuse_lora,                                                                        \
       "Adds the active LoRA adapters into the weights themselves.",                               \
       {{"opts", "table", "nil"}},                                                                 \
       lsdr_fuse_lora_options},                                                                    \
      {CLS ":unfuse_lora",                                                                         \
       lsdr_pipe_unfuse_lora,                                                                      \
       "Takes fused LoRA adapters back out of the weights.",                                       \
       {{"opts", "table", "nil"}},                                                                 \
       lsdr_unfuse_lora_options},                                                                  \
      {CLS ":load_ip_adapter",                                                                     \
       lsdr_pipe_load_ip_adapter,                                                                  \
       "Loads IP-Adapters (and their image encoder) into the UNet's cross-attentions.",            \
       {{"pretrained_model_name_or_path_or_dict", "any"},                                          \
        {"subfolder", "string|table", "nil", "where the weights are in the repo (\"models\")"},    \
        {"weight_name", "string|table", "nil", "one file, or one per adapter"},                    \
        {"opts", "table", "nil"}},                                                                 \
       lsdr_ip_adapter_options},                                                                   \
      {CLS ":set_ip_adapter_scale",                                                                \
       lsdr_pipe_set_ip_adapter_scale,                                                             \
       "How much the IP-Adapters' pictures count: one scale, or one per adapter.",                 \
       {{"scale", "number|table"}}},                                                               \
      {CLS ":unload_ip_adapter", lsdr_pipe_unload_ip_adapter,                                      \
       "Removes the IP-Adapters and their image encoder."},                                        \
      {CLS ":prepare_ip_adapter_image_embeds",                                                     \
       lsdr_pipe_prepare_ip_adapter_image_embeds,                                                  \
       "The image embeddings a call makes from ip_adapter_image (one tensor per adapter).",        \
       {{"ip_adapter_image", "any", "nil"},                                                        \
        {"ip_adapter_image_embeds", "table", "nil"},                                               \
        {"device", "string", "nil", "where the tensors go; nil: the pipeline's device"},           \
        {"num_images_per_prompt", "integer", "1"},                                                 \
        {"do_classifier_free_guidance", "boolean", "true"}}},                                      \
      {CLS ":unload_lora_weights", lsdr_pipe_unload_lora_weights,                                  \
       "Removes every LoRA adapter (what was fused stays in the weights)."},                       \
      {CLS ":set_adapters",                                                                        \
       lsdr_pipe_set_adapters,                                                                     \
       "Which LoRA adapters are active, and with what weights.",                                   \
       {{"adapter_names", "string|table"}, {"adapter_weights", "number|table", "nil"}}},           \
      {CLS ":disable_lora", lsdr_pipe_disable_lora,                                                \
       "Runs without the LoRA adapters (they stay loaded)."},                                      \
      {CLS ":enable_lora", lsdr_pipe_enable_lora, "Runs with the LoRA adapters again."},           \
      {CLS ":delete_adapters",                                                                     \
       lsdr_pipe_delete_adapters,                                                                  \
       "Removes these LoRA adapters.",                                                             \
       {{"adapter_names", "string|table"}}},                                                       \
      {CLS ":get_active_adapters", lsdr_pipe_get_active_adapters,                                  \
       "The active LoRA adapters' names."},                                                        \
      {CLS ":get_list_adapters", lsdr_pipe_get_list_adapters,                                      \
       "The LoRA adapters of each model: {unet = names, text_encoder = names}."},                  \
      {CLS ":fuse_qkv_projections",                                                                \
       pipe_fuse_qkv_projections,                                                                  \
       "Accepted for diffusers' sake: the same values as the separate projections.",               \
       {{"opts", "table", "nil"}}},                                                                \
      {CLS ":unfuse_qkv_projections", pipe_fuse_qkv_projections,                                   \
       "Accepted for diffusers' sake, as fuse_qkv_projections."},                                  \
      {CLS ":enable_freeu",                                                                        \
       pipe_enable_freeu,                                                                          \
       "FreeU on the UNet: pipe:enable_freeu{s1 = 0.9, s2 = 0.2, b1 = 1.2, b2 = 1.4}.",            \
       {{"s1", "number|table", NULL, "or {s1 = ..., s2 = ..., b1 = ..., b2 = ...}"},               \
        {"s2", "number", "nil"},                                                                   \
        {"b1", "number", "nil"},                                                                   \
        {"b2", "number", "nil"}}},                                                                 \
      {CLS ":disable_freeu", pipe_disable_freeu, "FreeU off."},                                    \
      {CLS ":enable_vae_slicing", pipe_enable_vae_slicing, "Decode one image at a time."},         \
      {CLS ":disable_vae_slicing", pipe_disable_vae_slicing, "Decode the batch at once."},         \
      {CLS ":enable_vae_tiling", pipe_enable_vae_tiling,                                           \
       "Encode and decode large images in overlapping tiles, as diffusers' tiled VAE."},           \
  {                                                                                                \
    CLS ":disable_vae_tiling", pipe_disable_vae_tiling, "Encode and decode in one piece."          \
  }

static const lsdr_func t2i_methods[] = {
    {LSDR_T2I ":__call",
     lsdr_pipe_call,
     "Text to image, with diffusers' arguments.",
     {{"opts", "table|string", "nil", "the options, or a prompt"},
      {"more", "table", "nil", "the options after a prompt"}},
     lsdr_t2i_call_options},
    PIPE_METHODS(LSDR_T2I),
    {0}};

static const lsdr_func controlnet_methods[] = {
    {LSDR_CONTROLNET_PIPE ":__call",
     lsdr_pipe_call,
     "Text to image guided by a control picture (edges, depth, pose...), with diffusers' "
     "arguments.",
     {{"opts", "table|string", "nil", "the options, or a prompt"},
      {"more", "table", "nil", "the options after a prompt"}},
     lsdr_controlnet_call_options},
    PIPE_METHODS(LSDR_CONTROLNET_PIPE),
    {0}};

static const lsdr_func controlnet_i2i_methods[] = {
    {LSDR_CONTROLNET_I2I ":__call",
     lsdr_pipe_call,
     "Image to image guided by a control picture, with diffusers' arguments: image (where to "
     "start) and control_image.",
     {{"opts", "table|string", "nil", "the options, or a prompt"},
      {"more", "table", "nil", "the options after a prompt"}},
     lsdr_controlnet_i2i_call_options},
    PIPE_METHODS(LSDR_CONTROLNET_I2I),
    {0}};

static const lsdr_func controlnet_inpaint_methods[] = {
    {LSDR_CONTROLNET_INPAINT ":__call",
     lsdr_pipe_call,
     "Inpainting guided by a control picture, with diffusers' arguments: image, mask_image and "
     "control_image.",
     {{"opts", "table|string", "nil", "the options, or a prompt"},
      {"more", "table", "nil", "the options after a prompt"}},
     lsdr_controlnet_inpaint_call_options},
    PIPE_METHODS(LSDR_CONTROLNET_INPAINT),
    {0}};

static const lsdr_func lcm_methods[] = {
    {LSDR_LCM ":__call",
     lsdr_pipe_call,
     "Text to image with a latent consistency model in a few steps: no classifier-free guidance, "
     "guidance_scale goes into the UNet's guidance embedding.",
     {{"opts", "table|string", "nil", "the options, or a prompt"},
      {"more", "table", "nil", "the options after a prompt"}},
     lsdr_lcm_call_options},
    PIPE_METHODS(LSDR_LCM),
    {0}};

static const lsdr_func lcm_class[] = {
    {"LatentConsistencyModelPipeline.__call",
     lcm_construct,
     "A pipeline from another's components: LatentConsistencyModelPipeline(pipe.components).",
     {{"cls", "table"}, {"components", "table"}},
     component_options},
    {"LatentConsistencyModelPipeline.from_pretrained",
     lcm_from_pretrained,
     "Loads a latent consistency model (SimianLuo/LCM_Dreamshaper_v7) from a diffusers folder or "
     "a hub repo id.",
     {{"pretrained_model_name_or_path", "string"}, {"opts", "table", "nil"}},
     lsdr_pipeline_load_options},
    {0}};

static const lsdr_func lcm_i2i_methods[] = {
    {LSDR_LCM_I2I ":__call",
     lsdr_pipe_call,
     "Image to image with a latent consistency model in a few steps: strength cuts the LCM "
     "schedule, guidance_scale goes into the UNet's guidance embedding.",
     {{"opts", "table|string", "nil", "the options, or a prompt"},
      {"more", "table", "nil", "the options after a prompt"}},
     lsdr_lcm_i2i_call_options},
    PIPE_METHODS(LSDR_LCM_I2I),
    {0}};

static const lsdr_func lcm_i2i_class[] = {
    {"LatentConsistencyModelImg2ImgPipeline.__call",
     lcm_i2i_construct,
     "A pipeline from another's components: "
     "LatentConsistencyModelImg2ImgPipeline(pipe.components).",
     {{"cls", "table"}, {"components", "table"}},
     component_options},
    {"LatentConsistencyModelImg2ImgPipeline.from_pretrained",
     lcm_i2i_from_pretrained,
     "Loads a latent consistency model for image to image from a diffusers folder or a hub repo "
     "id.",
     {{"pretrained_model_name_or_path", "string"}, {"opts", "table", "nil"}},
     lsdr_pipeline_load_options},
    {0}};

static const lsdr_func pix2pix_methods[] = {
    {LSDR_PIX2PIX ":__call",
     lsdr_pipe_call,
     "Edits a picture by an instruction (\"turn him into a cyborg\"): the picture goes into the "
     "UNet beside the latents, guided by both guidance_scale and image_guidance_scale.",
     {{"opts", "table|string", "nil", "the options, or a prompt"},
      {"more", "table", "nil", "the options after a prompt"}},
     lsdr_pix2pix_call_options},
    PIPE_METHODS(LSDR_PIX2PIX),
    {0}};

static const lsdr_func pix2pix_class[] = {
    {"StableDiffusionInstructPix2PixPipeline.__call",
     pix2pix_construct,
     "A pipeline from another's components: "
     "StableDiffusionInstructPix2PixPipeline(pipe.components).",
     {{"cls", "table"}, {"components", "table"}},
     component_options},
    {"StableDiffusionInstructPix2PixPipeline.from_pretrained",
     pix2pix_from_pretrained,
     "Loads an InstructPix2Pix model (timbrooks/instruct-pix2pix) from a diffusers folder or a hub "
     "repo id.",
     {{"pretrained_model_name_or_path", "string"}, {"opts", "table", "nil"}},
     lsdr_pipeline_load_options},
    {0}};

static const lsdr_func xl_methods[] = {
    {LSDR_XL ":__call",
     lsdr_pipe_call,
     "Text to image with Stable Diffusion XL, with diffusers' arguments (prompt_2, the "
     "micro-conditioning sizes, denoising_end).",
     {{"opts", "table|string", "nil", "the options, or a prompt"},
      {"more", "table", "nil", "the options after a prompt"}},
     lsdr_xl_call_options},
    PIPE_METHODS(LSDR_XL),
    UPCAST_VAE(LSDR_XL),
    {0}};

static const lsdr_func xl_class[] = {
    {"StableDiffusionXLPipeline.__call",
     xl_construct,
     "A pipeline from another SDXL pipeline's components: "
     "StableDiffusionXLPipeline(pipe.components).",
     {{"cls", "table"}, {"components", "table"}},
     component_options},
    {"StableDiffusionXLPipeline.from_pretrained",
     xl_from_pretrained,
     "Loads a Stable Diffusion XL model (stabilityai/stable-diffusion-xl-base-1.0) from a "
     "diffusers "
     "folder or a hub repo id.",
     {{"pretrained_model_name_or_path", "string"}, {"opts", "table", "nil"}},
     lsdr_pipeline_load_options},
    {"StableDiffusionXLPipeline.from_single_file",
     xl_from_single_file,
     "Loads a single-file SDXL checkpoint in the original (Stability AI) layout, .safetensors or "
     ".ckpt.",
     {{"pretrained_model_link_or_path", "string"}, {"opts", "table", "nil"}},
     single_file_options},
    {0}};

static const lsdr_func xl_i2i_methods[] = {
    {LSDR_XL_I2I ":__call",
     lsdr_pipe_call,
     "Image to image with Stable Diffusion XL (a base model, or the refiner with "
     "denoising_start), with diffusers' arguments.",
     {{"opts", "table|string", "nil", "the options, or a prompt"},
      {"more", "table", "nil", "the options after a prompt"}},
     lsdr_xl_i2i_call_options},
    PIPE_METHODS(LSDR_XL_I2I),
    UPCAST_VAE(LSDR_XL_I2I),
    {0}};

static const lsdr_func xl_i2i_class[] = {
    {"StableDiffusionXLImg2ImgPipeline.__call",
     xl_i2i_construct,
     "A pipeline from another SDXL pipeline's components: "
     "StableDiffusionXLImg2ImgPipeline(pipe.components).",
     {{"cls", "table"}, {"components", "table"}},
     component_options},
    {"StableDiffusionXLImg2ImgPipeline.from_pretrained",
     xl_i2i_from_pretrained,
     "Loads a Stable Diffusion XL model for image to image (the base, or "
     "stabilityai/stable-diffusion-xl-refiner-1.0) from a diffusers folder or a hub repo id.",
     {{"pretrained_model_name_or_path", "string"}, {"opts", "table", "nil"}},
     lsdr_pipeline_load_options},
    {"StableDiffusionXLImg2ImgPipeline.from_single_file",
     xl_i2i_from_single_file,
     "Loads a single-file SDXL checkpoint in the original (Stability AI) layout, .safetensors or "
     ".ckpt.",
     {{"pretrained_model_link_or_path", "string"}, {"opts", "table", "nil"}},
     single_file_options},
    {0}};

static const lsdr_func xl_inpaint_methods[] = {
    {LSDR_XL_INPAINT ":__call",
     lsdr_pipe_call,
     "Inpainting with Stable Diffusion XL (an inpainting UNet of 9 channels, or any SDXL "
     "model's legacy blend), with diffusers' arguments.",
     {{"opts", "table|string", "nil", "the options, or a prompt"},
      {"more", "table", "nil", "the options after a prompt"}},
     lsdr_xl_inpaint_call_options},
    PIPE_METHODS(LSDR_XL_INPAINT),
    UPCAST_VAE(LSDR_XL_INPAINT),
    {0}};

static const lsdr_func xl_inpaint_class[] = {
    {"StableDiffusionXLInpaintPipeline.__call",
     xl_inpaint_construct,
     "A pipeline from another SDXL pipeline's components: "
     "StableDiffusionXLInpaintPipeline(pipe.components).",
     {{"cls", "table"}, {"components", "table"}},
     component_options},
    {"StableDiffusionXLInpaintPipeline.from_pretrained",
     xl_inpaint_from_pretrained,
     "Loads a Stable Diffusion XL model for inpainting (an SDXL inpainting model, or any SDXL "
     "model) from a diffusers folder or a hub repo id.",
     {{"pretrained_model_name_or_path", "string"}, {"opts", "table", "nil"}},
     lsdr_pipeline_load_options},
    {"StableDiffusionXLInpaintPipeline.from_single_file",
     xl_inpaint_from_single_file,
     "Loads a single-file SDXL checkpoint in the original (Stability AI) layout, .safetensors or "
     ".ckpt.",
     {{"pretrained_model_link_or_path", "string"}, {"opts", "table", "nil"}},
     single_file_options},
    {0}};

static const lsdr_func xl_controlnet_methods[] = {
    {LSDR_XL_CONTROLNET ":__call",
     lsdr_pipe_call,
     "Text to image with Stable Diffusion XL steered by ControlNets (pipe.controlnet), with "
     "diffusers' arguments.",
     {{"opts", "table|string", "nil", "the options, or a prompt"},
      {"more", "table", "nil", "the options after a prompt"}},
     lsdr_xl_controlnet_call_options},
    PIPE_METHODS(LSDR_XL_CONTROLNET),
    UPCAST_VAE(LSDR_XL_CONTROLNET),
    {0}};

static const lsdr_func xl_controlnet_class[] = {
    {"StableDiffusionXLControlNetPipeline.__call",
     xl_controlnet_construct,
     "A pipeline from another SDXL pipeline's components and a controlnet: "
     "StableDiffusionXLControlNetPipeline(pipe.components) with components.controlnet set.",
     {{"cls", "table"}, {"components", "table"}},
     component_options},
    {"StableDiffusionXLControlNetPipeline.from_pretrained",
     xl_controlnet_from_pretrained,
     "Loads a Stable Diffusion XL model with a ControlNetModel (the option controlnet, a net or "
     "a list of them) from a diffusers folder or a hub repo id.",
     {{"pretrained_model_name_or_path", "string"}, {"opts", "table", "nil"}},
     lsdr_pipeline_load_options},
    {0}};

static const lsdr_func xl_controlnet_i2i_methods[] = {
    {LSDR_XL_CONTROLNET_I2I ":__call",
     lsdr_pipe_call,
     "Image to image with Stable Diffusion XL steered by ControlNets (image: the start, "
     "control_image: the nets' pictures), with diffusers' arguments.",
     {{"opts", "table|string", "nil", "the options, or a prompt"},
      {"more", "table", "nil", "the options after a prompt"}},
     lsdr_xl_controlnet_i2i_call_options},
    PIPE_METHODS(LSDR_XL_CONTROLNET_I2I),
    UPCAST_VAE(LSDR_XL_CONTROLNET_I2I),
    {0}};

static const lsdr_func xl_controlnet_i2i_class[] = {
    {"StableDiffusionXLControlNetImg2ImgPipeline.__call",
     xl_controlnet_i2i_construct,
     "A pipeline from another SDXL pipeline's components and a controlnet: "
     "StableDiffusionXLControlNetImg2ImgPipeline(pipe.components) with components.controlnet "
     "set.",
     {{"cls", "table"}, {"components", "table"}},
     component_options},
    {"StableDiffusionXLControlNetImg2ImgPipeline.from_pretrained",
     xl_controlnet_i2i_from_pretrained,
     "Loads a Stable Diffusion XL model with a ControlNetModel (the option controlnet, a net or "
     "a list of them) for image to image from a diffusers folder or a hub repo id.",
     {{"pretrained_model_name_or_path", "string"}, {"opts", "table", "nil"}},
     lsdr_pipeline_load_options},
    {0}};

static const lsdr_func xl_controlnet_inpaint_methods[] = {
    {LSDR_XL_CONTROLNET_INPAINT ":__call",
     lsdr_pipe_call,
     "Inpainting with Stable Diffusion XL steered by ControlNets (image, mask_image, and "
     "control_image: the nets' pictures), with diffusers' arguments.",
     {{"opts", "table|string", "nil", "the options, or a prompt"},
      {"more", "table", "nil", "the options after a prompt"}},
     lsdr_xl_controlnet_inpaint_call_options},
    PIPE_METHODS(LSDR_XL_CONTROLNET_INPAINT),
    UPCAST_VAE(LSDR_XL_CONTROLNET_INPAINT),
    {0}};

static const lsdr_func xl_controlnet_inpaint_class[] = {
    {"StableDiffusionXLControlNetInpaintPipeline.__call",
     xl_controlnet_inpaint_construct,
     "A pipeline from another SDXL pipeline's components and a controlnet: "
     "StableDiffusionXLControlNetInpaintPipeline(pipe.components) with components.controlnet "
     "set.",
     {{"cls", "table"}, {"components", "table"}},
     component_options},
    {"StableDiffusionXLControlNetInpaintPipeline.from_pretrained",
     xl_controlnet_inpaint_from_pretrained,
     "Loads a Stable Diffusion XL model (an inpainting one, or any) with a ControlNetModel (the "
     "option controlnet, a net or a list of them) from a diffusers folder or a hub repo id.",
     {{"pretrained_model_name_or_path", "string"}, {"opts", "table", "nil"}},
     lsdr_pipeline_load_options},
    {0}};

static const lsdr_func upscale_methods[] = {
    {LSDR_UPSCALE ":__call",
     lsdr_pipe_call,
     "Upscales a picture 4x (stabilityai/stable-diffusion-x4-upscaler): the picture, noised to "
     "noise_level, steers the latents at its own size, which the VAE makes four times larger.",
     {{"opts", "table|string", "nil", "the options, or a prompt"},
      {"more", "table", "nil", "the options after a prompt"}},
     lsdr_upscale_call_options},
    PIPE_METHODS(LSDR_UPSCALE),
    UPCAST_VAE(LSDR_UPSCALE),
    {0}};

static const lsdr_func upscale_class[] = {
    {"StableDiffusionUpscalePipeline.__call",
     upscale_construct,
     "A pipeline from another's components: StableDiffusionUpscalePipeline(pipe.components).",
     {{"cls", "table"}, {"components", "table"}},
     component_options},
    {"StableDiffusionUpscalePipeline.from_pretrained",
     upscale_from_pretrained,
     "Loads an upscaler (stabilityai/stable-diffusion-x4-upscaler) from a diffusers folder or a "
     "hub repo id.",
     {{"pretrained_model_name_or_path", "string"}, {"opts", "table", "nil"}},
     lsdr_pipeline_load_options},
    {0}};

static const lsdr_func i2i_methods[] = {
    {LSDR_I2I ":__call",
     lsdr_pipe_call,
     "Image to image, with diffusers' arguments.",
     {{"opts", "table|string", "nil", "the options, or a prompt"},
      {"more", "table", "nil", "the options after a prompt"}},
     lsdr_i2i_call_options},
    PIPE_METHODS(LSDR_I2I),
    {0}};

static const lsdr_func inpaint_methods[] = {
    {LSDR_INPAINT ":__call",
     lsdr_pipe_call,
     "Inpainting: paints the masked region of a picture, with diffusers' arguments.",
     {{"opts", "table|string", "nil", "the options, or a prompt"},
      {"more", "table", "nil", "the options after a prompt"}},
     lsdr_inpaint_call_options},
    PIPE_METHODS(LSDR_INPAINT),
    {0}};

static const lsdr_func t2i_class[] = {
    {"StableDiffusionPipeline.__call",
     t2i_construct,
     "A pipeline from another's components: StableDiffusionPipeline(pipe.components).",
     {{"cls", "table"}, {"components", "table"}},
     component_options},
    {"StableDiffusionPipeline.from_pretrained",
     t2i_from_pretrained,
     "Loads a pipeline from a diffusers folder or a Hugging Face hub repo id (\"org/name\").",
     {{"pretrained_model_name_or_path", "string"}, {"opts", "table", "nil"}},
     lsdr_pipeline_load_options},
    {"StableDiffusionPipeline.from_single_file",
     t2i_from_single_file,
     "Loads a single-file checkpoint in the original (CompVis/LDM) layout, .safetensors or .ckpt.",
     {{"pretrained_model_link_or_path", "string"}, {"opts", "table", "nil"}},
     single_file_options},
    {0}};

static const lsdr_func i2i_class[] = {
    {"StableDiffusionImg2ImgPipeline.__call",
     i2i_construct,
     "A pipeline from another's components: StableDiffusionImg2ImgPipeline(pipe.components).",
     {{"cls", "table"}, {"components", "table"}},
     component_options},
    {"StableDiffusionImg2ImgPipeline.from_pretrained",
     i2i_from_pretrained,
     "Loads an image-to-image pipeline from a diffusers folder or a hub repo id.",
     {{"pretrained_model_name_or_path", "string"}, {"opts", "table", "nil"}},
     lsdr_pipeline_load_options},
    {"StableDiffusionImg2ImgPipeline.from_single_file",
     i2i_from_single_file,
     "Loads a single-file checkpoint in the original (CompVis/LDM) layout, .safetensors or .ckpt.",
     {{"pretrained_model_link_or_path", "string"}, {"opts", "table", "nil"}},
     single_file_options},
    {0}};

static const lsdr_func inpaint_class[] = {
    {"StableDiffusionInpaintPipeline.__call",
     inpaint_construct,
     "A pipeline from another's components: StableDiffusionInpaintPipeline(pipe.components).",
     {{"cls", "table"}, {"components", "table"}},
     component_options},
    {"StableDiffusionInpaintPipeline.from_pretrained",
     inpaint_from_pretrained,
     "Loads an inpainting pipeline from a diffusers folder or a hub repo id.",
     {{"pretrained_model_name_or_path", "string"}, {"opts", "table", "nil"}},
     lsdr_pipeline_load_options},
    {"StableDiffusionInpaintPipeline.from_single_file",
     inpaint_from_single_file,
     "Loads a single-file checkpoint in the original (CompVis/LDM) layout, .safetensors or .ckpt "
     "(an inpainting one's UNet takes 9 channels).",
     {{"pretrained_model_link_or_path", "string"}, {"opts", "table", "nil"}},
     single_file_options},
    {0}};

static const lsdr_func controlnet_class[] = {
    {"StableDiffusionControlNetPipeline.__call",
     controlnet_construct,
     "A pipeline from another's components and a ControlNet: "
     "StableDiffusionControlNetPipeline(pipe.components + {controlnet = cn}).",
     {{"cls", "table"}, {"components", "table"}},
     component_options},
    {"StableDiffusionControlNetPipeline.from_pretrained",
     controlnet_from_pretrained,
     "Loads a pipeline from a diffusers folder or a hub repo id, with the ControlNet(s) given "
     "as option 'controlnet'.",
     {{"pretrained_model_name_or_path", "string"}, {"opts", "table", "nil"}},
     lsdr_pipeline_load_options},
    {0}};

static const lsdr_func controlnet_i2i_class[] = {
    {"StableDiffusionControlNetImg2ImgPipeline.__call",
     controlnet_i2i_construct,
     "A pipeline from another's components and a ControlNet: "
     "StableDiffusionControlNetImg2ImgPipeline(pipe.components + {controlnet = cn}).",
     {{"cls", "table"}, {"components", "table"}},
     component_options},
    {"StableDiffusionControlNetImg2ImgPipeline.from_pretrained",
     controlnet_i2i_from_pretrained,
     "Loads a pipeline from a diffusers folder or a hub repo id, with the ControlNet(s) given "
     "as option 'controlnet'.",
     {{"pretrained_model_name_or_path", "string"}, {"opts", "table", "nil"}},
     lsdr_pipeline_load_options},
    {0}};

static const lsdr_func controlnet_inpaint_class[] = {
    {"StableDiffusionControlNetInpaintPipeline.__call",
     controlnet_inpaint_construct,
     "A pipeline from another's components and a ControlNet: "
     "StableDiffusionControlNetInpaintPipeline(pipe.components + {controlnet = cn}).",
     {{"cls", "table"}, {"components", "table"}},
     component_options},
    {"StableDiffusionControlNetInpaintPipeline.from_pretrained",
     controlnet_inpaint_from_pretrained,
     "Loads an inpainting pipeline from a diffusers folder or a hub repo id, with the "
     "ControlNet(s) given as option 'controlnet'.",
     {{"pretrained_model_name_or_path", "string"}, {"opts", "table", "nil"}},
     lsdr_pipeline_load_options},
    {0}};

static const lsdr_func adapter_methods[] = {
    {LSDR_ADAPTER_PIPE ":__call",
     lsdr_pipe_call,
     "Text to image steered by T2I-Adapters (pipe.adapter) from their pictures (image), with "
     "diffusers' arguments.",
     {{"opts", "table|string", "nil", "the options, or a prompt"},
      {"more", "table", "nil", "the options after a prompt"}},
     lsdr_adapter_call_options},
    PIPE_METHODS(LSDR_ADAPTER_PIPE),
    {0}};

static const lsdr_func adapter_class[] = {
    {"StableDiffusionAdapterPipeline.__call",
     adapter_construct,
     "A pipeline from another's components and a T2I-Adapter: "
     "StableDiffusionAdapterPipeline(pipe.components) with components.adapter set.",
     {{"cls", "table"}, {"components", "table"}},
     component_options},
    {"StableDiffusionAdapterPipeline.from_pretrained",
     adapter_from_pretrained,
     "Loads a Stable Diffusion model with a T2IAdapter (the option adapter, one or a list of "
     "them) from a diffusers folder or a hub repo id.",
     {{"pretrained_model_name_or_path", "string"}, {"opts", "table", "nil"}},
     lsdr_pipeline_load_options},
    {0}};

static const lsdr_func xl_adapter_methods[] = {
    {LSDR_XL_ADAPTER ":__call",
     lsdr_pipe_call,
     "Text to image with Stable Diffusion XL steered by T2I-Adapters (pipe.adapter) from their "
     "pictures (image), with diffusers' arguments.",
     {{"opts", "table|string", "nil", "the options, or a prompt"},
      {"more", "table", "nil", "the options after a prompt"}},
     lsdr_xl_adapter_call_options},
    PIPE_METHODS(LSDR_XL_ADAPTER),
    UPCAST_VAE(LSDR_XL_ADAPTER),
    {0}};

static const lsdr_func xl_adapter_class[] = {
    {"StableDiffusionXLAdapterPipeline.__call",
     xl_adapter_construct,
     "A pipeline from another SDXL pipeline's components and a T2I-Adapter: "
     "StableDiffusionXLAdapterPipeline(pipe.components) with components.adapter set.",
     {{"cls", "table"}, {"components", "table"}},
     component_options},
    {"StableDiffusionXLAdapterPipeline.from_pretrained",
     xl_adapter_from_pretrained,
     "Loads a Stable Diffusion XL model with a T2IAdapter (the option adapter, one or a list of "
     "them) from a diffusers folder or a hub repo id.",
     {{"pretrained_model_name_or_path", "string"}, {"opts", "table", "nil"}},
     lsdr_pipeline_load_options},
    {0}};

static void open_class(lua_State *L, const char *cls, const lsdr_func *methods,
                       const lsdr_func *class_funcs) {
  lsdr_model_metatable(L, cls, methods, pipe_properties, pipe_gc, pipe_tostring);
  luaL_getmetatable(L, cls);
  lua_pushcfunction(L, pipe_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_getfield(L, -1, "__fields");
  static const char *const props[] = {"unet",
                                      "vae",
                                      "text_encoder",
                                      "tokenizer",
                                      "scheduler",
                                      "device",
                                      "dtype",
                                      "name_or_path",
                                      "components",
                                      "vae_scale_factor",
                                      "image_processor",
                                      "lora_scale",
                                      "safety_checker",
                                      "feature_extractor",
                                      "text_encoder_2",
                                      "tokenizer_2",
                                      NULL};
  for (int i = 0; props[i]; i++) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, props[i]);
  }
  if (strstr(cls, "AdapterPipeline")) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "adapter");
  }
  if (strncmp(cls, "StableDiffusionControlNet", 25) == 0)
    for (int i = 0; i < 2; i++) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, i ? "control_image_processor" : "controlnet");
    }
  lua_pop(L, 2);
  lsdr_set_class(L, cls, class_funcs); /* Cls(components) too */
}

void lsdr_open_pipeline(lua_State *L) {
  open_class(L, LSDR_T2I, t2i_methods, t2i_class);
  open_class(L, LSDR_I2I, i2i_methods, i2i_class);
  open_class(L, LSDR_INPAINT, inpaint_methods, inpaint_class);
  open_class(L, LSDR_CONTROLNET_PIPE, controlnet_methods, controlnet_class);
  open_class(L, LSDR_CONTROLNET_I2I, controlnet_i2i_methods, controlnet_i2i_class);
  open_class(L, LSDR_CONTROLNET_INPAINT, controlnet_inpaint_methods, controlnet_inpaint_class);
  open_class(L, LSDR_LCM, lcm_methods, lcm_class);
  open_class(L, LSDR_LCM_I2I, lcm_i2i_methods, lcm_i2i_class);
  open_class(L, LSDR_PIX2PIX, pix2pix_methods, pix2pix_class);
  open_class(L, LSDR_XL, xl_methods, xl_class);
  open_class(L, LSDR_XL_I2I, xl_i2i_methods, xl_i2i_class);
  open_class(L, LSDR_XL_INPAINT, xl_inpaint_methods, xl_inpaint_class);
  open_class(L, LSDR_XL_CONTROLNET, xl_controlnet_methods, xl_controlnet_class);
  open_class(L, LSDR_XL_CONTROLNET_I2I, xl_controlnet_i2i_methods, xl_controlnet_i2i_class);
  open_class(L, LSDR_XL_CONTROLNET_INPAINT, xl_controlnet_inpaint_methods,
             xl_controlnet_inpaint_class);
  open_class(L, LSDR_UPSCALE, upscale_methods, upscale_class);
  open_class(L, LSDR_ADAPTER_PIPE, adapter_methods, adapter_class);
  open_class(L, LSDR_XL_ADAPTER, xl_adapter_methods, xl_adapter_class);
}

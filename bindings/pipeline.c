/* bindings/pipeline.c — the diffusers pipelines as Lua objects: from_pretrained,
 * pipe{...} with diffusers' arguments and defaults, components, :to(device). */
#include "bindings/pipeline.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>

#include "bindings/clip_text_model.h" // lsdr_push_clip_text_model_ref
#include "bindings/clip_tokenizer.h"  // lsdr_push_clip_tokenizer, lsdr_to_clip_tokenizer
#include "bindings/generator.h"       // lsdr_to_generator, lsdr_default_generator
#include "bindings/hub.h"             // lsdr_hub_resolve, LSDR_HUB_PARAMS
#include "bindings/image.h"           // lsdr_to_image, lsdr_push_image
#include "bindings/lsdr.h"
#include "bindings/model_common.h"
#include "bindings/pipeline_internal.h"
#include "bindings/safety_checker.h" // lsdr_push_safety_checker, lsdr_push_feature_extractor
#include "bindings/scheduler.h"      // lsdr_push_scheduler, lsdr_to_scheduler
#include "bindings/tensor.h"
#include "bindings/tensor_internal.h"
#include "bindings/image_processor.h" // lsdr_push_image_processor
#include "bindings/unet.h"            // lsdr_push_unet_ref
#include "bindings/vae.h"             // lsdr_push_vae_ref
#include "engine/error.h"
#include "engine/image_processor.h" // sdr_tensor_to_images, sdr_tensor_to_np
#include "engine/pipeline.h"
#include "engine/pipeline_controlnet.h" // sdr_control_size
#include "engine/pipeline_img2img.h"    // sdr_img2img_rgba
#include "engine/single_file.h"         // sdr_pipeline_load_single_file_ex, sdr_single_file_options
#include "engine/textual_inversion.h"   // sdr_ti_convert_prompt

/* The user value 1 holds the Lua objects the pipeline's parts live in:
 * {tokenizer = CLIPTokenizer, scheduler = Scheduler, name = "path", <cached components>};
 * user value 2 the core, which pipelines made by from_pipe share. */
static void push_parts(lua_State *L, int idx) { lua_getiuservalue(L, idx, 1); }

lsdr_pipe *lsdr_test_pipe(lua_State *L, int idx) {
  lsdr_pipe *p = luaL_testudata(L, idx, LSDR_T2I);
  p = p ? p : luaL_testudata(L, idx, LSDR_I2I);
  p = p ? p : luaL_testudata(L, idx, LSDR_CONTROLNET_PIPE);
  return p ? p : luaL_testudata(L, idx, LSDR_INPAINT);
}

static const char *class_name(const lsdr_pipe *p) {
  return p->inpaint      ? LSDR_INPAINT
         : p->img2img    ? LSDR_I2I
         : p->controlnet ? LSDR_CONTROLNET_PIPE
                         : LSDR_T2I;
}

/* The dtype a pipeline's models are kept in on be: torch_dtype, else as stored on the CPU
 * (which widens them as it goes) and float32 elsewhere, as diffusers loads them. */
static int keep_on(const lsdr_pipe *p, const sdr_backend *be, int dtype) {
  int keep = dtype >= 0 ? dtype : p->core->keep_dtype;
  return keep < 0 && be->device != SDR_DEVICE_CPU ? SDR_F32 : keep;
}

static lsdr_pipe *check_pipe(lua_State *L, int idx) {
  lsdr_pipe *p = lsdr_test_pipe(L, idx);
  if (!p)
    luaL_typeerror(L, idx, "a Stable Diffusion pipeline");
  if (!p->core || !p->core->loaded)
    luaL_error(L, "this pipeline was closed");
  return p;
}

sdr_pipeline *lsdr_pipeline_models(lua_State *L, int idx) { return &check_pipe(L, idx)->core->p; }

int lsdr_cross_attention_scale(lua_State *L, int opts, double *scale) {
  lua_getfield(L, opts, "cross_attention_kwargs");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  if (!lua_istable(L, -1))
    lsdr_error(L, "option 'cross_attention_kwargs': a table expected, got %s",
               luaL_typename(L, -1));
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
  lsdr_pipe *src = share ? check_pipe(L, share) : NULL;
  share = share ? lua_absindex(L, share) : 0;
  lsdr_pipe *p = lua_newuserdatauv(L, sizeof *p, 2);
  memset(p, 0, sizeof *p);
  p->img2img = kind == LSDR_KIND_I2I;
  p->inpaint = kind == LSDR_KIND_INPAINT;
  p->controlnet = kind == LSDR_KIND_CONTROLNET;
  luaL_setmetatable(L, class_name(p));
  if (src) {
    p->no_safety_checker = src->no_safety_checker; /* from_pipe takes its components */
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
    {"vae", "any", "nil", "an AutoencoderKL to use instead (e.g. a fine-tuned one)"},
    {"text_encoder", "any", "nil", "a CLIPTextModel to use instead"},
    {"tokenizer", "any", "nil", "a CLIPTokenizer to use instead"},
    {"scheduler", "any", "nil", "a scheduler to use instead"},
    {"controlnet", "any", "nil",
     "StableDiffusionControlNetPipeline's ControlNetModel, or a list of them"},
    {0}};

/* A pipeline's models: their keys (pipe.unet, from_pretrained's options, components) and
 * the Lua types of their objects. */
static const char *const model_key[] = {"unet", "vae", "text_encoder"};
static const char *const model_type[] = {"UNet2DConditionModel", "AutoencoderKL", "CLIPTextModel"};

/* A model passed to from_pretrained: one loaded on its own (X.from_pretrained), which the
 * pipeline then takes over; NULL when the option is nil. */
static lsdr_model_box *given_box(lua_State *L, int opts, int i) {
  lua_getfield(L, opts, model_key[i]);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return NULL;
  }
  lsdr_model_box *b = luaL_testudata(L, -1, model_type[i]);
  if (!b)
    lsdr_error(L, "option '%s': %s expected, got %s", model_key[i], model_type[i],
               lsdr_typename(L, -1));
  if (!lsdr_model_box_open(b))
    lsdr_error(L, "option '%s': this %s was closed", model_key[i], model_type[i]);
  if (!b->free_own)
    lsdr_error(L,
               "option '%s': this %s belongs to a pipeline already; pass one loaded with "
               "%s.from_pretrained, or build from the pipeline's components",
               model_key[i], model_type[i], model_type[i]);
  lua_pop(L, 1); /* the options table keeps it */
  return b;
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
  push_parts(L, self);
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
  lsdr_push_clip_tokenizer(L, p->core->p.tokenizer, name);
  lua_setfield(L, -2, "tokenizer");
  lsdr_push_scheduler(L, p->core->p.scheduler);
  lua_setfield(L, -2, "scheduler");
  lua_pushstring(L, name);
  lua_setfield(L, -2, "name_or_path");
  lua_setiuservalue(L, self, 1);
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
  if (kind == LSDR_KIND_CONTROLNET) {
    lsdr_push_controlnet_option(L, 2, LSDR_CONTROLNET_PIPE);
    controlnet = lua_gettop(L);
  } else if (lua_getfield(L, 2, "controlnet") != LUA_TNIL) {
    return lsdr_error(L,
                      "option 'controlnet': a ControlNet runs in %s (or "
                      "AutoPipelineForText2Image.from_pretrained(..., {controlnet = ...}))",
                      LSDR_CONTROLNET_PIPE);
  }
  lsdr_model_box *boxes[3];
  for (int i = 0; i < 3; i++)
    boxes[i] = given_box(L, 2, i);
  lua_getfield(L, 2, "tokenizer");
  if (!lua_isnil(L, -1) && !lsdr_to_clip_tokenizer(L, -1))
    return lsdr_error(L, "option 'tokenizer': a CLIPTokenizer expected, got %s",
                      lsdr_typename(L, -1));
  lua_getfield(L, 2, "scheduler");
  if (!lua_isnil(L, -1) && !lsdr_to_scheduler(L, -1))
    return lsdr_error(L, "option 'scheduler': a scheduler expected, got %s", lsdr_typename(L, -1));
  lua_pop(L, 2);
  sdr_pipeline_given given = {boxes[0] ? boxes[0]->model : NULL, boxes[1] ? boxes[1]->model : NULL,
                              boxes[2] ? boxes[2]->model : NULL, no_checker};
  sdr_backend *be = lsdr_backend(L, SDR_DEVICE_CPU);
  lsdr_pipe *p = new_pipe(L, kind, 0);
  int self = lua_gettop(L);
  p->core->keep_dtype = keep;
  if (sdr_pipeline_load_given(&p->core->p, be, dir, variant, keep, &given) != 0)
    return lsdr_engine_error(L);
  adopt_parts(L, self, p, path);
  if (controlnet) {
    push_parts(L, self);
    lua_pushvalue(L, controlnet);
    lua_setfield(L, -2, "controlnet");
    lua_pop(L, 1);
  }
  void *moved[3] = {&p->core->p.unet, &p->core->p.vae, &p->core->p.text_encoder};
  for (int i = 0; i < 3; i++)
    if (boxes[i])
      box_follows_pipe(L, 2, self, p, i, moved[i]);
  push_parts(L, self);
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
  return 1;
}

int lsdr_pipeline_from_pipe(lua_State *L, int idx, int kind) {
  idx = lua_absindex(L, idx);
  check_pipe(L, idx);
  /* The components as Lua objects first, so both pipelines hand out the same ones
   * (pipe.unet == other.unet, as in diffusers). */
  for (int i = 0; i < 3; i++) {
    lua_getfield(L, idx, model_key[i]);
    lua_pop(L, 1);
  }
  new_pipe(L, kind, idx);
  int self = lua_gettop(L);
  lua_newtable(L);
  push_parts(L, idx);
  lua_pushnil(L);
  while (lua_next(L, -2)) { /* tokenizer, scheduler, name_or_path and those components */
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -5);
  }
  lua_pop(L, 1);
  lua_setiuservalue(L, self, 1);
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
  if (!lsdr_to_clip_tokenizer(L, -1))
    return lsdr_error(L, "component 'tokenizer': a CLIPTokenizer expected, got %s",
                      lsdr_typename(L, -1));
  int tok = lua_gettop(L);
  const int has_checker = checker_component(L, comps, "safety_checker", owner_idx);
  const int has_features = checker_component(L, comps, "feature_extractor", owner_idx);
  int controlnet = 0;
  if (kind == LSDR_KIND_CONTROLNET) {
    lsdr_push_controlnet_option(L, comps, LSDR_CONTROLNET_PIPE);
    controlnet = lua_gettop(L);
  }
  lsdr_pipeline_from_pipe(L, owner_idx, kind);
  lsdr_pipe *made = lua_touserdata(L, -1);
  made->no_safety_checker = !has_checker;
  made->no_feature_extractor = !has_features;
  push_parts(L, -1);
  lua_pushvalue(L, tok);
  lua_setfield(L, -2, "tokenizer");
  if (controlnet) {
    lua_pushvalue(L, controlnet);
    lua_setfield(L, -2, "controlnet");
  }
  lua_pop(L, 1);
  lua_getfield(L, comps, "scheduler");
  lua_setfield(L, -2, "scheduler"); /* through __newindex, which checks it */
  return 1;
}
static int t2i_construct(lua_State *L) { return construct(L, LSDR_KIND_T2I); }
static int i2i_construct(lua_State *L) { return construct(L, LSDR_KIND_I2I); }
static int inpaint_construct(lua_State *L) { return construct(L, LSDR_KIND_INPAINT); }
static int controlnet_construct(lua_State *L) { return construct(L, LSDR_KIND_CONTROLNET); }

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
    {"requires_safety_checker", "boolean", "true"},
    {0}};

static int pick_t2i(lua_State *L, const char *dir) {
  (void)L, (void)dir;
  return LSDR_KIND_T2I;
}
static int pick_i2i(lua_State *L, const char *dir) {
  (void)L, (void)dir;
  return LSDR_KIND_I2I;
}
static int pick_inpaint(lua_State *L, const char *dir) {
  (void)L, (void)dir;
  return LSDR_KIND_INPAINT;
}
static int pick_controlnet(lua_State *L, const char *dir) {
  (void)L, (void)dir;
  return LSDR_KIND_CONTROLNET;
}

static int t2i_from_pretrained(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  return lsdr_pipeline_from_pretrained(L, pick_t2i);
}
static int i2i_from_pretrained(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  return lsdr_pipeline_from_pretrained(L, pick_i2i);
}
static int inpaint_from_pretrained(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  return lsdr_pipeline_from_pretrained(L, pick_inpaint);
}
static int controlnet_from_pretrained(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  return lsdr_pipeline_from_pretrained(L, pick_controlnet);
}

/* from_single_file(path, opts): a CompVis/LDM checkpoint (.safetensors or .ckpt). */
static int from_single_file_as(lua_State *L, int kind) {
  lsdr_args(L);
  lsdr_options(L, 2);
  const char *path = lua_tostring(L, 1);
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
    return lsdr_error(L, "no checkpoint file at %s", path);
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
  if (sdr_pipeline_load_single_file_ex(&p->core->p, be, path, keep, &so) != 0)
    return lsdr_engine_error(L);
  adopt_parts(L, self, p, path);
  return 1;
}

static int t2i_from_single_file(lua_State *L) { return from_single_file_as(L, LSDR_KIND_T2I); }
static int i2i_from_single_file(lua_State *L) { return from_single_file_as(L, LSDR_KIND_I2I); }
static int inpaint_from_single_file(lua_State *L) {
  return from_single_file_as(L, LSDR_KIND_INPAINT);
}

/* ---- the call ------------------------------------------------------------------- */

/* Strings of a string or a list of strings at idx (kept alive by the table). */
static int read_strings(lua_State *L, int idx, const char *what, const char ***out) {
  if (lua_type(L, idx) == LUA_TSTRING) {
    *out = lua_newuserdatauv(L, sizeof **out, 0);
    (*out)[0] = lua_tostring(L, idx);
    return 1;
  }
  int n = (int)lua_rawlen(L, idx);
  if (n < 1)
    lsdr_error(L, "option '%s': a string or a non-empty list of strings expected", what);
  *out = lua_newuserdatauv(L, (size_t)n * sizeof **out, 0);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, idx, i + 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      lsdr_error(L, "option '%s': entry %d is a %s, not a string", what, i + 1,
                 lsdr_typename(L, -1));
    (*out)[i] = lua_tostring(L, -1);
    lua_pop(L, 1); /* the list keeps the string */
  }
  return n;
}

typedef struct step_ctx {
  lua_State *L;
  int pipe_idx;
  int fn_idx;                   /* callback_on_step_end, or 0 */
  int legacy_idx, legacy_every; /* callback and callback_steps, or 0 */
  char error[512];
} step_ctx;

/* A float32 copy of the latents, pushed as a Lua tensor on their device. */
static lsdr_tensor *push_latents(lua_State *L, sdr_backend *be, const sdr_tensor *latents) {
  lsdr_tensor *copy = lsdr_push_new_tensor(L, be, SDR_F32, latents->ndim, latents->shape);
  if (sdr_affine(be, &copy->t, latents, 1.0f, 0.0f) != 0)
    return NULL;
  return copy;
}

/* latents = the tensor a callback handed back: from its device or from the host. */
static int take_latents(sdr_backend *be, sdr_tensor *latents, const sdr_tensor *back) {
  if (back->device == latents->device)
    return sdr_affine(be, latents, back, 1.0f, 0.0f);
  if (back->device == SDR_DEVICE_CPU)
    return sdr_upload(be, latents->data, back->data, sdr_tensor_nbytes(latents));
  return sdr_fail("the latents it returns are on %s, the pipeline on %s",
                  sdr_device_name(back->device), sdr_device_name(latents->device));
}

/* The run stops with who's error: the Lua error at the top after a failed call
 * (lua_error = 1), else the engine's. */
static int step_failed(step_ctx *c, int top, const char *who, int lua_error) {
  lua_State *L = c->L;
  const char *msg = !lua_error                       ? sdr_last_error()
                    : lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                     : luaL_typename(L, -1);
  snprintf(c->error, sizeof c->error, "%s: %s", who, msg);
  lua_settop(L, top);
  return sdr_fail("%s", c->error);
}

/* After each step, as diffusers' loop: callback_on_step_end(pipe, i, t, {latents = Tensor})
 * -> nil or {latents = Tensor}; then the older callback(i, t, latents) every
 * callback_steps steps (a copy: Lua tensors have no in-place operations). */
static int on_step(void *ud, int step, double t, sdr_tensor *latents) {
  step_ctx *c = ud;
  lua_State *L = c->L;
  int top = lua_gettop(L);
  sdr_backend *be = lsdr_backend(L, latents->device);
  if (c->fn_idx) {
    lua_pushvalue(L, c->fn_idx);
    lua_pushvalue(L, c->pipe_idx);
    lua_pushinteger(L, step);
    lua_pushnumber(L, t);
    lua_createtable(L, 0, 1);
    if (!push_latents(L, be, latents))
      return step_failed(c, top, "callback_on_step_end", 0);
    lua_setfield(L, -2, "latents");
    if (lua_pcall(L, 4, 1, 0) != LUA_OK)
      return step_failed(c, top, "callback_on_step_end", 1);
    if (lua_istable(L, -1) && lua_getfield(L, -1, "latents") != LUA_TNIL) {
      lsdr_tensor *back = lsdr_to_tensor(L, -1);
      if (!back || back->t.dtype != SDR_F32 || !sdr_tensor_same_shape(&back->t, latents)) {
        lua_settop(L, top);
        return sdr_fail("callback_on_step_end: the latents it returns must be a float32 tensor "
                        "of the same shape");
      }
      if (take_latents(be, latents, &back->t) != 0)
        return step_failed(c, top, "callback_on_step_end", 0);
    }
    lua_settop(L, top);
  }
  if (c->legacy_idx && step % c->legacy_every == 0) {
    lua_pushvalue(L, c->legacy_idx);
    lua_pushinteger(L, step); /* step_idx: i // scheduler.order, and every order is 1 */
    lua_pushnumber(L, t);
    if (!push_latents(L, be, latents))
      return step_failed(c, top, "callback", 0);
    if (lua_pcall(L, 3, 0, 0) != LUA_OK)
      return step_failed(c, top, "callback", 1);
    lua_settop(L, top);
  }
  return 0;
}

/* The values of the tensor at idx as host float32, kept alive on the stack: a tensor
 * made on the GPU (as a notebook makes latents or embeddings there) is read back once. */
static const float *host_values(lua_State *L, int idx) {
  lsdr_tensor *t = lsdr_push_float32(L, idx);
  if (t->t.device == SDR_DEVICE_CPU)
    return t->t.data;
  size_t bytes = sdr_tensor_nbytes(&t->t);
  float *host = lua_newuserdatauv(L, bytes ? bytes : 1, 0);
  if (sdr_download(t->storage->be, host, t->t.data, bytes) != 0)
    lsdr_engine_error(L);
  return host;
}

/* A tensor option of ndim dimensions as host float32 (host_values), its shape in shape. */
static const float *host_floats(lua_State *L, int opts, const char *name, int ndim,
                                int64_t *shape) {
  lua_getfield(L, opts, name);
  lsdr_tensor *t = lsdr_to_tensor(L, -1);
  if (!t)
    lsdr_error(L, "option '%s': a Tensor expected, got %s", name, lsdr_typename(L, -1));
  if (t->t.ndim != ndim)
    lsdr_error(L, "option '%s': a %d-dimensional tensor expected, got %d dimensions", name, ndim,
               t->t.ndim);
  memcpy(shape, t->t.shape, (size_t)ndim * sizeof *shape);
  return host_values(L, lua_gettop(L));
}

/* The option `name` at idx: one Image or a non-empty list of them, as a block of n pointers
 * left on the stack (the list keeps the Images alive). */
static const sdr_image **read_image_list(lua_State *L, int idx, const char *name, int *n) {
  const sdr_image *one = lsdr_to_image(L, idx);
  if (!one && !lua_istable(L, idx))
    lsdr_error(L, "option '%s': an Image, a list of Images or a Tensor expected, got %s", name,
               lsdr_typename(L, idx));
  *n = one ? 1 : (int)lua_rawlen(L, idx);
  if (*n < 1)
    lsdr_error(L, "option '%s': an empty list", name);
  const sdr_image **list = lua_newuserdatauv(L, (size_t)*n * sizeof *list, 0);
  list[0] = one;
  for (int i = 0; !one && i < *n; i++) {
    lua_rawgeti(L, idx, i + 1);
    list[i] = lsdr_to_image(L, -1);
    if (!list[i])
      lsdr_error(L, "option '%s': entry %d is a %s, not an Image", name, i + 1,
                 lsdr_typename(L, -1));
    lua_pop(L, 1);
  }
  return list;
}

/* img2img's picture, the option at idx: an Image, a list of them, or a tensor of pictures
 * (torch's (B, 3, H, W) or numpy's (B, H, W, 3), either without the batch too) or of
 * latents (B, 4, h, w). What g points into stays on the stack. */
static void read_image(lua_State *L, int idx, sdr_generate *g) {
  if ((g->image = lsdr_to_image(L, idx)))
    return;
  lsdr_tensor *t = lsdr_to_tensor(L, idx);
  if (t) {
    const int nd = t->t.ndim;
    if (nd != 3 && nd != 4)
      lsdr_error(L, "option 'image': a tensor of 3 or 4 dimensions expected, got %d", nd);
    int64_t s[4] = {1, 1, 1, 1};
    memcpy(s + 4 - nd, t->t.shape, (size_t)nd * sizeof *s);
    const float *x = host_values(L, idx);
    int64_t *gs = g->image_tensor_shape;
    if (s[1] == 3 || s[1] == 4) { /* torch's layout */
      memcpy(gs, s, sizeof g->image_tensor_shape);
      g->image_tensor = x;
      return;
    }
    if (s[3] != 3)
      lsdr_error(L, "option 'image': pictures (batch, 3, height, width) or (batch, height, width, "
                    "3), or latents (batch, 4, h, w) expected");
    /* numpy's (B, H, W, 3), as output_type = "np" gives them: numpy_to_pt */
    const int64_t B = s[0], H = s[1], W = s[2];
    float *nchw = lua_newuserdatauv(L, (size_t)(B * 3 * H * W) * sizeof *nchw, 0);
    for (int64_t b = 0; b < B; b++)
      for (int64_t c = 0; c < 3; c++)
        for (int64_t i = 0; i < H * W; i++)
          nchw[(b * 3 + c) * H * W + i] = x[(b * H * W + i) * 3 + c];
    int64_t shape[4] = {B, 3, H, W};
    memcpy(gs, shape, sizeof shape);
    g->image_tensor = nchw;
    return;
  }
  int n;
  const sdr_image **list = read_image_list(L, idx, "image", &n);
  if (n == 1)
    g->image = list[0];
  else {
    g->images = list;
    g->nimages = n;
  }
}

/* A1111's "parameters" text, which image viewers and web UIs read. */
static void describe(luaL_Buffer *b, const char *prompt, const char *neg, int steps,
                     const char *sampler, float cfg, long long seed, int w, int h,
                     const char *model, float strength, int img2img) {
  char line[512];
  luaL_addstring(b, prompt);
  if (neg && *neg) {
    luaL_addstring(b, "\nNegative prompt: ");
    luaL_addstring(b, neg);
  }
  snprintf(line, sizeof line,
           "\nSteps: %d, Sampler: %s, CFG scale: %g, Seed: %lld, Size: %dx%d, Model: %s", steps,
           sampler, cfg, seed, w, h, model);
  luaL_addstring(b, line);
  if (img2img) {
    snprintf(line, sizeof line, ", Denoising strength: %g", strength);
    luaL_addstring(b, line);
  }
}

static int get_int(lua_State *L, int t, const char *k) {
  lua_getfield(L, t, k);
  int v = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}

static double get_num(lua_State *L, int t, const char *k) {
  lua_getfield(L, t, k);
  double v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

/* Inpainting's picture and mask: Images (or lists of them); the strength. What g points
 * into stays on the stack. */
static void read_inpaint(lua_State *L, int opts, sdr_generate *g) {
  lua_getfield(L, opts, "image");
  if (lua_isnil(L, -1))
    lsdr_error(L, "option 'image': the picture to inpaint is missing");
  read_image(L, lua_gettop(L), g);
  lua_getfield(L, opts, "mask_image");
  int idx = lua_gettop(L);
  lsdr_tensor *t = lsdr_to_tensor(L, idx);
  if (t) { /* (H, W), (B, H, W) or (B, 1, H, W), as mask_processor.preprocess takes them */
    const int nd = t->t.ndim;
    if (nd < 2 || nd > 4)
      lsdr_error(L, "option 'mask_image': a tensor of 2 to 4 dimensions expected, got %d", nd);
    int64_t *ms = g->mask_tensor_shape;
    ms[0] = nd == 2 ? 1 : t->t.shape[0];
    ms[1] = nd == 4 ? t->t.shape[1] : 1;
    ms[2] = t->t.shape[nd - 2];
    ms[3] = t->t.shape[nd - 1];
    g->mask_tensor = host_values(L, idx);
  } else {
    g->mask_images = read_image_list(L, idx, "mask_image", &g->nmasks);
  }
  g->strength = (float)get_num(L, opts, "strength");
}

/* The engine's error; when the GPU ran out of memory, with what to try. */
static int engine_error_with_advice(lua_State *L, const char *what_to_try) {
  const char *msg = sdr_last_error();
  if (strstr(msg, "out of GPU memory"))
    return lsdr_error(L, "%s; try %s", msg, what_to_try);
  return lsdr_error(L, "%s", msg);
}

/* pipe("a prompt", {...}) or pipe({"a", "b"}, {...}): diffusers' positional prompt,
 * folded into the options table at 2. */
static int is_plain_list(lua_State *L, int idx) {
  if (!lua_istable(L, idx) || lua_rawlen(L, idx) == 0)
    return 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TNUMBER) { /* {"a", steps = 5}: an options table's mistake */
      lua_pop(L, 1);
      return 0;
    }
  }
  return 1;
}

static void positional_prompt(lua_State *L) {
  int is_list = is_plain_list(L, 2);
  if (lua_type(L, 2) != LUA_TSTRING && !is_list) {
    if (!lua_isnil(L, 3))
      lsdr_error(L, "argument 2: options come second only after a prompt (pipe(\"a cat\", "
                    "{...})); otherwise all go in one table");
    lua_settop(L, 2);
    return;
  }
  lua_newtable(L);
  if (lua_istable(L, 3)) {
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    }
  }
  if (lua_getfield(L, -1, "prompt") != LUA_TNIL)
    lsdr_error(L, "the prompt is given twice: as the first argument and as option 'prompt'");
  lua_pop(L, 1);
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "prompt");
  lua_replace(L, 2);
  lua_settop(L, 2);
}

/* The parts live in Lua objects: a closed or replaced one is noticed here. Points the
 * pipeline at this pipe's tokenizer and scheduler; returns the parts' index. */
static int bind_parts(lua_State *L, lsdr_pipe *pp) {
  sdr_pipeline *p = &pp->core->p;
  push_parts(L, 1);
  int parts = lua_gettop(L);
  lua_getfield(L, parts, "tokenizer");
  p->tokenizer = lsdr_to_clip_tokenizer(L, -1);
  lua_getfield(L, parts, "scheduler");
  p->scheduler = lsdr_to_scheduler(L, -1);
  lua_pop(L, 2);
  if (!p->tokenizer)
    lsdr_error(L, "the pipeline's tokenizer was closed");
  if (!p->scheduler)
    lsdr_error(L, "pipe.scheduler is not a scheduler");
  return parts;
}

/* prompt (or prompt_embeds), negative_prompt (or negative_prompt_embeds) from the options
 * at opts into g; the engine says which when both or neither are given. */
/* maybe_convert_prompt (a textual inversion's multi-vector tokens spelled out) on n
 * strings in place; the new strings are kept in the table at keep. */
static void convert_prompts(lua_State *L, const sdr_clip_tokenizer *tok, const char **s, int n,
                            int keep) {
  for (int i = 0; tok && s && i < n; i++) {
    char *c = sdr_ti_convert_prompt(tok, s[i]);
    if (!c)
      lsdr_engine_error(L);
    if (strcmp(c, s[i]) != 0) {
      lua_pushstring(L, c);
      s[i] = lua_tostring(L, -1);
      lua_rawseti(L, keep, (lua_Integer)lua_rawlen(L, keep) + 1);
    }
    free(c);
  }
}

static void read_prompts(lua_State *L, int opts, const sdr_clip_tokenizer *tok, sdr_generate *g) {
  const char **prompts = NULL, **negs = NULL;
  int prompt_is_list = 0;
  lua_getfield(L, opts, "prompt_embeds");
  int has_embeds = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (has_embeds) {
    g->prompt_embeds = host_floats(L, opts, "prompt_embeds", 3, g->prompt_embeds_shape);
    g->nprompts = (int)g->prompt_embeds_shape[0];
  }
  lua_getfield(L, opts, "prompt");
  if (!lua_isnil(L, -1)) {
    g->nprompts = read_strings(L, lua_gettop(L), "prompt", &prompts);
    g->prompts = prompts;
    prompt_is_list = lua_istable(L, -2);
  } else if (!has_embeds) {
    lsdr_error(L, "option 'prompt' is required (a string or a list of strings), or "
                  "'prompt_embeds'");
  }
  lua_getfield(L, opts, "negative_prompt_embeds");
  if (!lua_isnil(L, -1))
    g->negative_prompt_embeds =
        host_floats(L, opts, "negative_prompt_embeds", 3, g->negative_embeds_shape);
  lua_getfield(L, opts, "negative_prompt");
  if (!lua_isnil(L, -1)) {
    if (prompts && prompt_is_list != lua_istable(L, -1))
      lsdr_error(L, "`negative_prompt` should be the same type to `prompt`, but got %s != %s",
                 luaL_typename(L, -1), prompt_is_list ? "table" : "string");
    g->nnegative = read_strings(L, lua_gettop(L), "negative_prompt", &negs);
    g->negative_prompts = negs;
  }
  lua_newtable(L); /* encode_prompt's maybe_convert_prompt, on both */
  convert_prompts(L, tok, prompts, g->nprompts, lua_gettop(L));
  convert_prompts(L, tok, negs, g->nnegative, lua_gettop(L));
}

/* diffusers' encode_prompt warns when CLIP's limit cuts a prompt; so do we, in its words,
 * before the work starts. Its list holds, for each prompt of the batch, what lies past
 * the limit once all are padded to the longest: the cut text, or pad tokens. */
static void warn_truncated(const sdr_pipeline *p, const sdr_generate *g) {
  if (!g->prompts || g->prompt_embeds || !p->tokenizer)
    return;
  const int max_len = sdr_clip_tokenizer_model_max_length(p->tokenizer);
  char **cut;
  size_t *lengths = malloc((size_t)g->nprompts * sizeof *lengths + 1);
  if (!lengths ||
      sdr_clip_tokenizer_cut_texts(p->tokenizer, g->prompts, g->nprompts, max_len, &cut, lengths) !=
          0 ||
      !cut) {
    free(lengths);
    return; /* an encoding error is the encode's to report */
  }
  /* diffusers' untruncated tokenization of the prompts comes first, and transformers
   * warns there about the first one too long for the model */
  for (int i = 0; i < g->nprompts; i++)
    lsdr_clip_tokenizer_warn_overlong(p->tokenizer, lengths[i]);
  free(lengths);
  fprintf(stderr,
          "The following part of your input was truncated because CLIP can only handle "
          "sequences up to %d tokens: [",
          max_len);
  for (int i = 0; i < g->nprompts; i++) {
    /* as Python's repr of a str: double quotes when that saves escaping a single one */
    const char q = strchr(cut[i], '\'') && !strchr(cut[i], '"') ? '"' : '\'';
    fprintf(stderr, "%s%c", i ? ", " : "", q);
    for (const char *c = cut[i]; *c; c++) {
      if (*c == q || *c == '\\')
        fputc('\\', stderr);
      fputc(*c, stderr);
    }
    fputc(q, stderr);
  }
  fputs("]\n", stderr);
  sdr_clip_cut_texts_free(cut, g->nprompts);
}

/* The LoRA scale of a call: cross_attention_kwargs["scale"] (under `kwargs`), or
 * encode_prompt's lora_scale (kwargs NULL). */
static void read_lora_scale(lua_State *L, int opts, const char *kwargs, sdr_generate *g) {
  if (kwargs) {
    g->has_lora_scale = lsdr_cross_attention_scale(L, opts, &g->lora_scale);
    return;
  }
  lua_getfield(L, opts, "lora_scale");
  if (!lua_isnil(L, -1)) {
    if (!lua_isnumber(L, -1))
      lsdr_error(L, "option 'lora_scale': a number expected, got %s", luaL_typename(L, -1));
    g->has_lora_scale = 1;
    g->lora_scale = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
}

static int pipe_call(lua_State *L) {
  lsdr_args(L);
  positional_prompt(L);
  lsdr_options(L, 1);
  lsdr_pipe *pp = check_pipe(L, 1);
  sdr_pipeline *p = &pp->core->p;
  const int opts = 2;
  sdr_generate g;
  memset(&g, 0, sizeof g);
  int64_t latents_shape[4];

  int parts = bind_parts(L, pp);
  g.progress_disable = pp->progress_disable;
  g.progress_desc = pp->progress_desc;
  read_prompts(L, opts, p->tokenizer, &g);
  const char *const *prompts = g.prompts, *const *negs = g.negative_prompts;
  g.num_inference_steps = get_int(L, opts, "num_inference_steps");
  lua_getfield(L, opts, "timesteps"); /* retrieve_timesteps: their count is the step count */
  if (!lua_isnil(L, -1)) {
    g.timesteps = lsdr_read_timesteps(L, -1, "timesteps", &g.ntimesteps);
    g.num_inference_steps = g.ntimesteps;
  }
  g.guidance_scale = (float)get_num(L, opts, "guidance_scale");
  g.num_images_per_prompt = get_int(L, opts, "num_images_per_prompt");
  g.eta = (float)get_num(L, opts, "eta");
  g.guidance_rescale = (float)get_num(L, opts, "guidance_rescale");
  if ((pp->img2img || pp->inpaint || pp->controlnet) && g.guidance_rescale != 0) {
    /* diffusers' img2img, inpainting and ControlNet take it into **kwargs and never use it */
    fprintf(stderr, "warning: guidance_rescale is not used by %s (nor by diffusers')\n",
            class_name(pp));
    g.guidance_rescale = 0;
  }
  lua_getfield(L, opts, "clip_skip");
  g.clip_skip = lua_isnil(L, -1) ? 0 : (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (g.clip_skip < 0)
    return lsdr_error(L, "option 'clip_skip': a non-negative integer expected");
  read_lora_scale(L, opts, "cross_attention_kwargs", &g);

  if (pp->img2img) {
    lua_getfield(L, opts, "image");
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_getfield(L, opts, "init_image"); /* the old name, as older notebooks use it */
    }
    read_image(L, lua_gettop(L), &g);
    g.strength = (float)get_num(L, opts, "strength");
    /* diffusers' img2img takes them into **kwargs and never uses them: code written for
     * txt2img runs, with pictures of the image's size */
    lua_getfield(L, opts, "height");
    lua_getfield(L, opts, "width");
    if (!lua_isnil(L, -1) || !lua_isnil(L, -2))
      fprintf(stderr,
              "warning: height and width are not used by %s (nor by diffusers'): the pictures "
              "take the image's size\n",
              LSDR_I2I);
    lua_pop(L, 2);
  } else {
    lua_getfield(L, opts, "height");
    g.height = lua_isnil(L, -1) ? 0 : (int)lua_tointeger(L, -1);
    lua_getfield(L, opts, "width");
    g.width = lua_isnil(L, -1) ? 0 : (int)lua_tointeger(L, -1);
    lua_pop(L, 2);
    if (g.height < 0 || g.width < 0)
      return lsdr_error(L, "height and width must be positive");
    lua_getfield(L, opts, "latents");
    if (!lua_isnil(L, -1)) /* checked against the shape the run makes, below */
      g.latents = host_floats(L, opts, "latents", 4, latents_shape);
  }
  if (pp->inpaint)
    read_inpaint(L, opts, &g);
  if (pp->controlnet)
    lsdr_read_controls(L, opts, parts, p->be, keep_on(pp, p->be, -1), &g);

  /* generator: one, a list (one per image), or the device's default (torch.manual_seed). */
  lua_getfield(L, opts, "generator");
  int gen_idx = lua_gettop(L);
  sdr_generator *one[1];
  sdr_generator **gens = one;
  long long seed0;
  if (lua_isnil(L, gen_idx)) {
    /* diffusers' randn_tensor without a generator draws on the pipeline's device */
    one[0] = lsdr_default_generator(L, p->be->device == SDR_DEVICE_CPU ? SDR_GENERATOR_CPU
                                                                       : SDR_GENERATOR_CUDA);
    g.ngenerators = 1;
  } else if (lsdr_to_generator(L, gen_idx)) {
    one[0] = lsdr_to_generator(L, gen_idx);
    g.ngenerators = 1;
  } else if (lua_istable(L, gen_idx)) {
    int n = (int)lua_rawlen(L, gen_idx);
    if (n < 1)
      return lsdr_error(L, "option 'generator': an empty list");
    gens = lua_newuserdatauv(L, (size_t)n * sizeof *gens, 0);
    for (int i = 0; i < n; i++) {
      lua_rawgeti(L, gen_idx, i + 1);
      gens[i] = lsdr_to_generator(L, -1);
      if (!gens[i])
        return lsdr_error(L, "option 'generator': entry %d is not a torch.Generator", i + 1);
      lua_pop(L, 1);
    }
    g.ngenerators = n;
  } else {
    return lsdr_error(L, "option 'generator': a torch.Generator or a list of them expected");
  }
  g.generators = gens;
  for (int i = 0; i < g.ngenerators; i++)
    lsdr_generator_fit_device(gens[i]);
  seed0 = (long long)gens[0]->seed;

  lua_getfield(L, opts, "output_type");
  const char *output_type = lua_tostring(L, -1);
  int want_pil = strcmp(output_type, "pil") == 0, want_np = strcmp(output_type, "np") == 0;
  int want_pt = strcmp(output_type, "pt") == 0, want_latent = strcmp(output_type, "latent") == 0;
  if (!want_pil && !want_np && !want_pt && !want_latent)
    return lsdr_error(
        L, "option 'output_type': \"pil\", \"np\", \"pt\" or \"latent\" expected, got \"%s\"",
        output_type);
  g.output_latent = want_latent;
  g.no_safety_checker = pp->no_safety_checker;
  if (p->safety_checker && !pp->no_safety_checker && pp->no_feature_extractor)
    return lsdr_error(L, "the safety checker needs the feature extractor, which was set to nil; "
                         "set pipe.safety_checker = nil too to run without either");

  step_ctx ctx = {.L = L, .pipe_idx = 1};
  lua_getfield(L, opts, "callback_on_step_end");
  if (!lua_isnil(L, -1))
    ctx.fn_idx = lua_gettop(L);
  lua_getfield(L, opts, "callback_steps");
  if (!lua_isnil(L, -1) && lua_tointeger(L, -1) <= 0)
    return lsdr_error(L, "`callback_steps` has to be a positive integer but is %I",
                      (lua_Integer)lua_tointeger(L, -1));
  ctx.legacy_every = lua_isnil(L, -1) ? 1 : (int)lua_tointeger(L, -1);
  lua_getfield(L, opts, "callback");
  if (!lua_isnil(L, -1))
    ctx.legacy_idx = lua_gettop(L);
  if (ctx.fn_idx || ctx.legacy_idx) {
    g.on_step = on_step;
    g.on_step_ud = &ctx;
  }

  if (g.latents) {
    const int f = sdr_vae_scale_factor(&p->vae), size = sdr_pipeline_default_size(p);
    int h = g.height ? g.height : size, w = g.width ? g.width : size;
    if (pp->controlnet) { /* the control picture's size where none is asked for */
      h = g.height;
      w = g.width;
      if (sdr_control_size(p, &g, &h, &w) != 0)
        return lsdr_engine_error(L);
    }
    h /= f;
    w /= f;
    const int channels = pp->inpaint ? p->vae.cfg.latent_channels : p->unet.cfg.in_channels;
    int64_t want[4] = {(int64_t)g.nprompts * g.num_images_per_prompt, channels, h, w};
    if (memcmp(want, latents_shape, sizeof want) != 0)
      return lsdr_error(L, "option 'latents': shape (%I, %I, %I, %I) expected",
                        (lua_Integer)want[0], (lua_Integer)want[1], (lua_Integer)want[2],
                        (lua_Integer)want[3]);
  }

  warn_truncated(p, &g);
  if (sdr_img2img_rgba(&g)) /* diffusers does the same without a word; worth one here */
    fputs("warning: the image is RGBA: diffusers' img2img keeps its 4 channels and takes them "
          "as latents (the picture is not encoded, and the output is the VAE's factor times its "
          "size), and so does this one; Image:convert(\"RGB\") for img2img of the picture\n",
          stderr);
  sdr_generated out;
  if (sdr_pipeline_generate(p, &g, &out) != 0)
    return engine_error_with_advice(L, "fewer images per call (num_images_per_prompt), a smaller "
                                       "height and width, or pipe:enable_vae_tiling()");
  if (out.graph_error[0]) /* the same pictures, slower: worth a line, as a Python warning */
    fprintf(stderr,
            "warning: the UNet call could not be recorded as a CUDA graph, so each step "
            "launched its kernels one by one: %s\n",
            out.graph_error);

  /* The result: {images = ...} as diffusers' StableDiffusionPipelineOutput. */
  lua_createtable(L, 0, 2);
  int result = lua_gettop(L);
  const int B = (int)out.shape[0], H = (int)out.shape[2], W = (int)out.shape[3];
  sdr_backend *cpu = lsdr_backend(L, SDR_DEVICE_CPU);
  if (want_latent) { /* on the pipeline's device, as diffusers returns them */
    lsdr_tensor *t = lsdr_push_new_tensor(L, p->be, SDR_F32, 4, out.shape);
    if (sdr_upload(p->be, t->t.data, out.data, sdr_tensor_nbytes(&t->t)) != 0) {
      sdr_generated_free(&out);
      return lsdr_engine_error(L);
    }
  } else if (want_np) { /* numpy arrays: on the host */
    lsdr_tensor *t = lsdr_push_new_tensor(L, cpu, SDR_F32, 4, (int64_t[]){B, H, W, 3});
    sdr_tensor_to_np(out.data, B, H, W, t->t.data);
  } else if (want_pt) { /* torch tensors in [0, 1]: on the pipeline's device */
    const size_t n = (size_t)B * 3 * H * W;
    for (size_t i = 0; i < n; i++) {
      float v = out.data[i] / 2.0f + 0.5f;
      out.data[i] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
    lsdr_tensor *t = lsdr_push_new_tensor(L, p->be, SDR_F32, 4, (int64_t[]){B, 3, H, W});
    if (sdr_upload(p->be, t->t.data, out.data, n * sizeof(float)) != 0) {
      sdr_generated_free(&out);
      return lsdr_engine_error(L);
    }
  } else {
    sdr_image **imgs = calloc((size_t)B, sizeof *imgs);
    if (!imgs || sdr_tensor_to_images(out.data, B, H, W, imgs) != 0) {
      free(imgs);
      sdr_generated_free(&out);
      return lsdr_engine_error(L);
    }
    lua_createtable(L, B, 0);
    lsdr_image_list_meta(L, -1);
    const char *sampler = sdr_scheduler_class_name(sdr_scheduler_kind_of(p->scheduler));
    lua_getfield(L, parts, "name_or_path");
    const char *model = lua_tostring(L, -1);
    lua_pop(L, 1);
    for (int b = 0; b < B; b++) {
      int pi = b / g.num_images_per_prompt;
      long long seed = g.ngenerators > 1 ? (long long)gens[b]->seed : seed0;
      luaL_Buffer buf;
      luaL_buffinit(L, &buf);
      describe(&buf, prompts ? prompts[pi] : "", negs ? negs[pi] : NULL, g.num_inference_steps,
               sampler, g.guidance_scale, seed, W, H, model, g.strength,
               pp->img2img || pp->inpaint);
      luaL_pushresult(&buf);
      sdr_image_set_parameters(imgs[b], lua_tostring(L, -1));
      lua_pop(L, 1);
      lsdr_push_image(L, imgs[b]);
      imgs[b] = NULL;
      lua_rawseti(L, -2, b + 1);
    }
    free(imgs);
  }
  /* has_nsfw_concept: a list of booleans where a safety checker ran, else nil */
  int flagged = 0;
  if (out.nsfw) {
    lua_createtable(L, B, 0);
    for (int b = 0; b < B; b++) {
      lua_pushboolean(L, out.nsfw[b]);
      lua_rawseti(L, -2, b + 1);
      flagged |= out.nsfw[b];
    }
  } else {
    lua_pushnil(L);
  }
  sdr_generated_free(&out);
  if (flagged)
    fputs("Potential NSFW content was detected in one or more images. A black image will be "
          "returned instead. Try again with a different prompt and/or seed.\n",
          stderr);
  /* With return_dict = false, diffusers' tuple (images, has_nsfw_concept). */
  lua_getfield(L, opts, "return_dict");
  int as_dict = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (as_dict) {
    lua_setfield(L, result, "nsfw_content_detected");
    lua_setfield(L, result, "images");
    static const char *const fields[] = {"images", "nsfw_content_detected", NULL};
    lsdr_output_kind(L, result, "StableDiffusionPipelineOutput", fields);
  } else {
    lua_rawseti(L, result, 2);
    lua_rawseti(L, result, 1);
  }
  lua_settop(L, result);
  return 1;
}

/* pipe:encode_prompt(prompt, device, num_images_per_prompt, do_classifier_free_guidance,
 * {negative_prompt, prompt_embeds, negative_prompt_embeds, lora_scale, clip_skip}) ->
 * prompt_embeds, negative_prompt_embeds (nil without guidance), each repeated per image,
 * as the pipeline's call makes them. */
static int pipe_encode_prompt(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 5);
  lsdr_pipe *pp = check_pipe(L, 1);
  sdr_pipeline *p = &pp->core->p;
  bind_parts(L, pp);
  /* the prompt argument goes into the options, where read_prompts looks */
  const int opts = 6;
  lua_pushvalue(L, 2);
  lua_setfield(L, opts, "prompt");
  sdr_backend *be = p->be;
  if (!lua_isnil(L, 3)) {
    int d = lsdr_parse_device(lua_tostring(L, 3));
    if (d < 0)
      return lsdr_argerror(L, 2, "\"cpu\" or \"cuda\"");
    be = lsdr_backend(L, (sdr_device)d);
  }
  const int N = (int)lua_tointeger(L, 4), guided = lua_toboolean(L, 5);
  if (N < 1)
    return lsdr_error(L, "num_images_per_prompt must be a positive number, got %d", N);
  sdr_generate g;
  memset(&g, 0, sizeof g);
  read_prompts(L, opts, p->tokenizer, &g);
  lua_getfield(L, opts, "clip_skip");
  g.clip_skip = lua_isnil(L, -1) ? 0 : (int)lua_tointeger(L, -1);
  if (g.clip_skip < 0)
    return lsdr_error(L, "option 'clip_skip': a non-negative integer expected");
  read_lora_scale(L, opts, NULL, &g);
  float *pos, *neg;
  int T, D;
  warn_truncated(p, &g);
  if (sdr_pipeline_encode_prompt(p, &g, guided, &pos, &neg, &T, &D) != 0)
    return lsdr_engine_error(L);
  const int B0 = g.nprompts;
  const size_t row = (size_t)T * D;
  float *rows[2] = {pos, neg};
  for (int k = 0; k < (guided ? 2 : 1); k++) {
    /* repeat(1, N, 1): each prompt's N copies together */
    lsdr_tensor *t = lsdr_push_new_tensor(L, be, SDR_F32, 3, (int64_t[]){(int64_t)B0 * N, T, D});
    for (int i = 0, r = 0; i < B0; i++)
      for (int c = 0; c < N; c++, r++)
        if (sdr_upload(be, (float *)t->t.data + r * row, rows[k] + i * row, row * sizeof(float)) !=
            0) {
          free(pos);
          return lsdr_engine_error(L);
        }
  }
  free(pos);
  if (!guided)
    lua_pushnil(L);
  return 2;
}

/* ---- components, device, options -------------------------------------------------- */

/* The models on device d (-1: where they are), their weights in dtype (-1: as they are). */
static void move_pipe_as(lua_State *L, lsdr_pipe *p, int d, int dtype) {
  sdr_backend *be = d < 0 ? p->core->p.be : lsdr_backend(L, (sdr_device)d); /* raises if absent */
  if (be == p->core->p.be && (dtype < 0 || dtype == p->core->keep_dtype))
    return;
  const int keep = keep_on(p, be, dtype);
  if (sdr_pipeline_to(&p->core->p, be, keep) != 0)
    engine_error_with_advice(
        L, "loading with {torch_dtype = torch.float16} (half the memory), or the CPU");
  if (dtype >= 0) { /* pipe.to(dtype): the models' dtype is the run's (noise drawn in it) */
    p->core->keep_dtype = dtype;
    p->core->p.dtype = (sdr_dtype)dtype;
  }
  if (p->controlnet) { /* its nets go along (the pipeline is at 1 in the callers) */
    push_parts(L, 1);
    lsdr_controlnets_follow(L, lua_gettop(L), be, keep);
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
  lsdr_pipe *p = check_pipe(L, 1);
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
  lsdr_pipe *p = check_pipe(L, 1);
  if (!lua_isnil(L, 2) && lua_tointeger(L, 2) != 0)
    return lsdr_argerror(L, 1, "nil or 0 (sdrepl uses one GPU, cuda:0)");
  int d = lsdr_parse_device(lua_tostring(L, 3));
  if (d != SDR_DEVICE_CUDA)
    return lsdr_argerror(L, 2, "\"cuda\"");
  move_pipe(L, p, d);
  return 0;
}

/* fuse_qkv_projections: one product for q, k and v gives the same values as three; the
 * attention layers here are already as fast either way, so it changes nothing. */
static int pipe_fuse_qkv_projections(lua_State *L) {
  lsdr_args(L);
  check_pipe(L, 1);
  return 0;
}

static int pipe_enable_attention_slicing(lua_State *L) {
  lsdr_args(L);
  check_pipe(L, 1);
  /* Attention never holds the whole score matrix here, so slicing changes nothing:
   * the same pictures, memory bounded either way. */
  return 0;
}

static int pipe_disable_attention_slicing(lua_State *L) {
  lsdr_args(L);
  check_pipe(L, 1);
  return 0;
}

/* tqdm's options as diffusers passes them to its bar: the ones our bar has. */
static int pipe_set_progress_bar_config(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 1);
  lsdr_pipe *p = check_pipe(L, 1);
  lua_getfield(L, 2, "disable");
  p->progress_disable = lua_toboolean(L, -1);
  lua_getfield(L, 2, "desc");
  snprintf(p->progress_desc, sizeof p->progress_desc, "%s",
           lua_isnil(L, -1) ? "" : lua_tostring(L, -1));
  return 0;
}

static int pipe_vae_slicing(lua_State *L, int on) {
  lsdr_args(L);
  check_pipe(L, 1)->core->p.vae_slicing = on;
  return 0;
}
static int pipe_vae_tiling(lua_State *L, int on) {
  lsdr_args(L);
  check_pipe(L, 1)->core->p.vae_tiling = on;
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
  lsdr_pipe *p = check_pipe(L, 1);
  const char *k = lua_tostring(L, 2);
  if (!k)
    return 0;
  push_parts(L, 1);
  int parts = lua_gettop(L);
  if (lua_getfield(L, parts, k) != LUA_TNIL &&
      (strcmp(k, "tokenizer") == 0 || strcmp(k, "scheduler") == 0 || strcmp(k, "unet") == 0 ||
       strcmp(k, "vae") == 0 || strcmp(k, "text_encoder") == 0))
    return 1;
  lua_pop(L, 1);
  if (strcmp(k, "unet") == 0 || strcmp(k, "vae") == 0 || strcmp(k, "text_encoder") == 0) {
    if (k[0] == 'u')
      lsdr_push_unet_ref(L, &p->core->p.unet, 1);
    else if (k[0] == 'v')
      lsdr_push_vae_ref(L, &p->core->p.vae, 1);
    else
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
  } else if (strcmp(k, "mask_processor") == 0 && p->inpaint) {
    lsdr_push_mask_processor(L, sdr_vae_scale_factor(&p->core->p.vae));
    return 1;
  } else if (strcmp(k, "name_or_path") == 0) {
    lua_getfield(L, parts, "name_or_path");
    return 1;
  } else if (strcmp(k, "controlnet") == 0) { /* nil but in a ControlNet pipeline */
    if (p->controlnet)
      lua_getfield(L, parts, "controlnet");
    else
      lua_pushnil(L);
    return 1;
  } else if (strcmp(k, "control_image_processor") == 0 && p->controlnet) {
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
    if (p->controlnet) {
      lua_getfield(L, parts, "controlnet");
      lua_setfield(L, -2, "controlnet");
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

/* pipe.scheduler = X.from_config(pipe.scheduler.config), as in diffusers. */
static int pipe_newindex(lua_State *L) {
  check_pipe(L, 1);
  const char *k = lua_tostring(L, 2);
  /* pipe.safety_checker = None, the notebooks' line: this pipeline runs none from now on;
   * its memory goes unless other pipelines (from_pipe) still use it */
  if (k && (strcmp(k, "safety_checker") == 0 || strcmp(k, "feature_extractor") == 0)) {
    lua_getfield(L, 1, k);
    if (lua_rawequal(L, -1, 3)) /* the same object back */
      return 0;
    if (!lua_isnil(L, 3))
      return luaL_error(L, "pipeline: '%s' can only be set to nil (to run none)", k);
    lsdr_pipe *pp = check_pipe(L, 1);
    if (k[0] == 'f') {
      pp->no_feature_extractor = 1;
      return 0;
    }
    pp->no_safety_checker = 1;
    if (pp->core->open_pipes == 1)
      sdr_pipeline_drop_safety_checker(&pp->core->p);
    push_parts(L, 1);
    lua_pushnil(L);
    lua_setfield(L, -2, k);
    return 0;
  }
  /* pipe.unet = torch.compile(pipe.unet): the same model back */
  static const char *const parts[] = {"unet", "vae", "text_encoder", "tokenizer", NULL};
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
  push_parts(L, 1);
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
  push_parts(L, 1);
  lua_getfield(L, -1, "name_or_path");
  lua_pushfstring(L, "<%s %s on %s>", class_name(p), lua_tostring(L, -1),
                  sdr_device_name(p->core->p.be->device));
  return 1;
}

#define COMMON_CALL_OPTIONS                                                                        \
  {"prompt", "string|table", "nil", "a prompt or a list of prompts"},                              \
      {"negative_prompt", "string|table", "nil", "what to steer away from (one per prompt)"},      \
      {"num_inference_steps", "integer", "50"},                                                    \
      {"timesteps", "table", "nil",                                                                \
       "custom timesteps, descending (DDPMScheduler, as in diffusers)"},                           \
      {"guidance_scale", "number", "7.5"}, {"num_images_per_prompt", "integer", "1"},              \
      {"eta", "number", "0.0", "DDIM's eta"},                                                      \
      {"generator", "torch.Generator|table", "nil", "one, or one per image; nil: the global one"}, \
      {"output_type", "string", "\"pil\"", "\"pil\", \"np\", \"pt\" or \"latent\""},               \
      {"return_dict", "boolean", "true", "false: {images} as diffusers' tuple"},                   \
      {"callback_on_step_end", "function", "nil", "f(pipe, i, t, {latents}) -> nil or {latents}"}, \
      {"callback_on_step_end_tensor_inputs", "table", "nil", "only latents are passed"},           \
      {"callback", "function", "nil", "the older hook: f(i, t, latents)"},                         \
      {"callback_steps", "integer", "1", "how often callback is called"},                          \
      {"clip_skip", "integer", "nil", "layers of the text encoder to skip from the end"},          \
      {"guidance_rescale", "number", "0.0", "txt2img: rescale_noise_cfg's fraction"},              \
      {"prompt_embeds", "Tensor", "nil", "(batch, tokens, dim): instead of prompt"},               \
      {"negative_prompt_embeds", "Tensor", "nil", "the same shape: instead of negative_prompt"}, { \
    "cross_attention_kwargs", "table", "nil", "{scale = s}: how much of the LoRA adapters to use"  \
  }

static const lsdr_param t2i_call_options[] = {
    COMMON_CALL_OPTIONS,
    {"height", "integer", "nil", "default: unet.config.sample_size * vae_scale_factor"},
    {"width", "integer", "nil"},
    {"latents", "Tensor", "nil", "starting noise (batch, 4, height/8, width/8)"},
    {0}};

static const lsdr_param i2i_call_options[] = {
    COMMON_CALL_OPTIONS,
    {"image", "Image|table|Tensor", "nil", "the picture(s) to start from, or their latents"},
    {"init_image", "Image|table|Tensor", "nil", "the old name of image"},
    {"strength", "number", "0.8", "how much to change it, 0 to 1"},
    {"height", "integer", "nil", "not used: the pictures take the image's size (as in diffusers)"},
    {"width", "integer", "nil", "not used, as height"},
    {0}};

static const lsdr_param inpaint_call_options[] = {
    COMMON_CALL_OPTIONS,
    {"image", "Image|table|Tensor", "nil",
     "the picture(s) to paint into (RGB, or a tensor in [0, 1]), resized to height x width"},
    {"mask_image", "Image|table|Tensor", "nil",
     "white (1) where to paint, binarized at 0.5; one or one per picture"},
    {"strength", "number", "1.0", "how much to change the painted region, 0 to 1"},
    {"height", "integer", "nil", "default: unet.config.sample_size * vae_scale_factor"},
    {"width", "integer", "nil"},
    {"latents", "Tensor", "nil", "starting noise (batch, 4, height/8, width/8)"},
    {0}};

static const lsdr_param controlnet_call_options[] = {
    COMMON_CALL_OPTIONS,
    {"image", "Image|table|Tensor", "nil",
     "the control picture(s): one, one per prompt, or (several nets) one entry per net"},
    {"height", "integer", "nil", "default: the control picture's, floored to vae_scale_factor"},
    {"width", "integer", "nil"},
    {"latents", "Tensor", "nil", "starting noise (batch, 4, height/8, width/8)"},
    {"controlnet_conditioning_scale", "number|table", "1.0",
     "how much of the residuals (one per net, or one for all)"},
    {"guess_mode", "boolean", "false",
     "the nets see the text half only, their residuals ramped from 0.1 to 1"},
    {"control_guidance_start", "number|table", "0.0",
     "the fraction of the steps the nets start at"},
    {"control_guidance_end", "number|table", "1.0", "the fraction of the steps they stop at"},
    {0}};

static const lsdr_param encode_prompt_options[] = {
    {"negative_prompt", "string|table", "nil"},
    {"prompt_embeds", "Tensor", "nil"},
    {"negative_prompt_embeds", "Tensor", "nil"},
    {"lora_scale", "number", "nil", "how much of the loaded LoRA adapters the text encoder uses"},
    {"clip_skip", "integer", "nil"},
    {0}};

/* diffusers hands these to tqdm; the ones that only change how tqdm draws are taken and
 * leave our bar as it is (one line, redrawn in place, kept when done). */
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
      {CLS ":set_progress_bar_config",                                                             \
       pipe_set_progress_bar_config,                                                               \
       "The denoising loop's progress bar: disable = true hides it, desc labels it.",              \
       {{"opts", "table"}},                                                                        \
       progress_bar_options},                                                                      \
      {CLS ":encode_prompt",                                                                       \
       pipe_encode_prompt,                                                                         \
       "The text embeddings a call would use: prompt_embeds, negative_prompt_embeds (or nil).",    \
       {{"prompt", "string|table", "nil"},                                                         \
        {"device", "string", "nil", "where the tensors go; nil: the pipeline's device"},           \
        {"num_images_per_prompt", "integer", "1"},                                                 \
        {"do_classifier_free_guidance", "boolean", "true"},                                        \
        {"opts", "table", "nil"}},                                                                 \
       encode_prompt_options},                                                                     \
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
       {{"tokens", "string|table", "nil"}}},                                                       \
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
     pipe_call,
     "Text to image, with diffusers' arguments.",
     {{"opts", "table|string", "nil", "the options, or a prompt"},
      {"more", "table", "nil", "the options after a prompt"}},
     t2i_call_options},
    PIPE_METHODS(LSDR_T2I),
    {0}};

static const lsdr_func controlnet_methods[] = {
    {LSDR_CONTROLNET_PIPE ":__call",
     pipe_call,
     "Text to image guided by a control picture (edges, depth, pose...), with diffusers' "
     "arguments.",
     {{"opts", "table|string", "nil", "the options, or a prompt"},
      {"more", "table", "nil", "the options after a prompt"}},
     controlnet_call_options},
    PIPE_METHODS(LSDR_CONTROLNET_PIPE),
    {0}};

static const lsdr_func i2i_methods[] = {
    {LSDR_I2I ":__call",
     pipe_call,
     "Image to image, with diffusers' arguments.",
     {{"opts", "table|string", "nil", "the options, or a prompt"},
      {"more", "table", "nil", "the options after a prompt"}},
     i2i_call_options},
    PIPE_METHODS(LSDR_I2I),
    {0}};

static const lsdr_func inpaint_methods[] = {
    {LSDR_INPAINT ":__call",
     pipe_call,
     "Inpainting: paints the masked region of a picture, with diffusers' arguments.",
     {{"opts", "table|string", "nil", "the options, or a prompt"},
      {"more", "table", "nil", "the options after a prompt"}},
     inpaint_call_options},
    PIPE_METHODS(LSDR_INPAINT),
    {0}};

static const lsdr_param single_file_options[] = {
    {"torch_dtype", "table|string", "nil", "dtype the weights are kept in (float32 when nil)"},
    {"config", "string", "nil", "a diffusers folder whose configs, tokenizer and scheduler to use"},
    {"tokenizer", "string", "nil", "a tokenizer folder (default: config's, else CLIP ViT-L/14's)"},
    {"extract_ema", "boolean", "false",
     "take the EMA weights (model_ema.*) when the file has them"},
    {"scheduler_type", "string", "\"ddim\"", "pndm, lms, euler, euler-ancestral, dpm or ddim"},
    {"prediction_type", "string", "nil", "epsilon or v_prediction (inferred when nil)"},
    {"image_size", "integer", "nil", "512, or 768 for SD 2.x (inferred when nil)"},
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
                                      NULL};
  for (int i = 0; props[i]; i++) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, props[i]);
  }
  if (strcmp(cls, LSDR_CONTROLNET_PIPE) == 0) /* completion offers its own parts too */
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
}

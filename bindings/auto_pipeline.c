/* bindings/auto_pipeline.c — the classes that choose a pipeline for the user:
 * DiffusionPipeline.from_pretrained (the class model_index.json names) and
 * AutoPipelineForText2Image / AutoPipelineForImage2Image / AutoPipelineForInpainting
 * (diffusers' pipelines/auto_pipeline.py: from_pretrained and from_pipe), for the Stable
 * Diffusion 1.x and 2.x models sdrepl runs. */
#include "bindings/pipeline.h"

#include <string.h>

#include <lauxlib.h>

#include "bindings/lsdr.h"
#include "bindings/pipeline_internal.h" // lsdr_pipeline_from_pretrained, lsdr_pipeline_from_pipe
#include "engine/pipeline.h"            // sdr_pipeline_class_name

/* The Stable Diffusion pipelines of diffusers: the "stable-diffusion" row of
 * auto_pipeline.py's mappings, which the Auto classes move between. */
static const char *const sd_family[] = {LSDR_T2I, LSDR_I2I, LSDR_INPAINT}; /* by LSDR_KIND_* */

static const char *class_of(lua_State *L, const char *dir, char *buf, size_t n) {
  if (sdr_pipeline_class_name(dir, buf, n) != 0)
    lsdr_engine_error(L);
  return buf;
}

static int in_family(const char *cls) {
  for (size_t i = 0; i < sizeof sd_family / sizeof sd_family[0]; i++)
    if (strcmp(cls, sd_family[i]) == 0)
      return 1;
  return 0;
}

/* AutoPipelineFor*: with a controlnet among the options (at 2), the family's ControlNet
 * pipeline, as diffusers' "stable-diffusion-controlnet" mappings. */
static int with_controlnet(lua_State *L) {
  const int given = lua_getfield(L, 2, "controlnet") != LUA_TNIL;
  lua_pop(L, 1);
  return given;
}

/* DiffusionPipeline: exactly the class the model names. */
static int pick_named(lua_State *L, const char *dir) {
  char buf[128];
  const char *cls = class_of(L, dir, buf, sizeof buf);
  /* every class whose pipeline loads from the model, or from it and the nets given */
  const int kind = lsdr_kind_of_class(cls);
  if (kind >= 0 && (!lsdr_kind_has_controlnet(kind) || with_controlnet(L) ||
                    sdr_pipeline_dir_has(dir, "controlnet") == 1))
    return kind;
  return lsdr_error(L,
                    "this model is a %s; sdrepl runs %s, %s and %s (for a Stable Diffusion "
                    "model, the AutoPipeline classes load any of them)",
                    cls, LSDR_T2I, LSDR_I2I, LSDR_INPAINT);
}

/* The "stable-diffusion-xl" row's class for a task (an SD LSDR_KIND_* of the Auto classes). */
static int xl_kind(int kind) {
  return kind == LSDR_KIND_T2I   ? LSDR_KIND_XL
         : kind == LSDR_KIND_I2I ? LSDR_KIND_XL_I2I
                                 : LSDR_KIND_XL_INPAINT;
}

/* The ControlNet class of a task (an SD LSDR_KIND_*) in a family (xl: SDXL's). */
static int family_controlnet_kind(int kind, int xl) {
  if (kind == LSDR_KIND_T2I)
    return xl ? LSDR_KIND_XL_CONTROLNET : LSDR_KIND_CONTROLNET;
  if (kind == LSDR_KIND_I2I)
    return xl ? LSDR_KIND_XL_CONTROLNET_I2I : LSDR_KIND_CONTROLNET_I2I;
  return xl ? LSDR_KIND_XL_CONTROLNET_INPAINT : LSDR_KIND_CONTROLNET_INPAINT;
}

/* kind for the Stable Diffusion family (its ControlNet kind with a controlnet); lcm_kind (-1:
 * none) for a latent consistency model, the mappings' "lcm" row. */
static int pick_family(lua_State *L, const char *dir, int kind, int controlnet_kind, int lcm_kind) {
  char buf[128];
  const char *cls = class_of(L, dir, buf, sizeof buf);
  const int controlnet = with_controlnet(L);
  if (lcm_kind >= 0 && !controlnet && strcmp(cls, LSDR_LCM) == 0)
    return lcm_kind;
  /* a ControlNet pipeline's folder (its nets loaded from it): the "-controlnet" rows */
  const int named = lsdr_kind_of_class(cls);
  if (named >= 0 && lsdr_kind_has_controlnet(named))
    return family_controlnet_kind(kind, lsdr_kind_xl(named));
  if (strcmp(cls, LSDR_XL) == 0 || strcmp(cls, LSDR_XL_I2I) == 0 ||
      strcmp(cls, LSDR_XL_INPAINT) == 0) { /* the "stable-diffusion-xl" row */
    if (controlnet)
      return kind == LSDR_KIND_T2I   ? LSDR_KIND_XL_CONTROLNET
             : kind == LSDR_KIND_I2I ? LSDR_KIND_XL_CONTROLNET_I2I
                                     : LSDR_KIND_XL_CONTROLNET_INPAINT;
    return xl_kind(kind);
  }
  if (!in_family(cls))
    return lsdr_error(L,
                      "AutoPipeline can't find a pipeline linked to %s (sdrepl runs %s, %s and %s)",
                      cls, LSDR_T2I, LSDR_I2I, LSDR_INPAINT);
  return controlnet ? controlnet_kind : kind;
}
static int pick_t2i(lua_State *L, const char *dir) {
  return pick_family(L, dir, LSDR_KIND_T2I, LSDR_KIND_CONTROLNET, LSDR_KIND_LCM);
}
static int pick_i2i(lua_State *L, const char *dir) {
  return pick_family(L, dir, LSDR_KIND_I2I, LSDR_KIND_CONTROLNET_I2I, LSDR_KIND_LCM_I2I);
}
static int pick_inpaint(lua_State *L, const char *dir) {
  return pick_family(L, dir, LSDR_KIND_INPAINT, LSDR_KIND_CONTROLNET_INPAINT, -1);
}

static int diffusion_from_pretrained(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  return lsdr_pipeline_from_pretrained(L, pick_named);
}
static int auto_t2i_from_pretrained(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  return lsdr_pipeline_from_pretrained(L, pick_t2i);
}
static int auto_i2i_from_pretrained(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  return lsdr_pipeline_from_pretrained(L, pick_i2i);
}
static int auto_inpaint_from_pretrained(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  return lsdr_pipeline_from_pretrained(L, pick_inpaint);
}

static int from_pipe(lua_State *L, int kind) {
  lsdr_args(L);
  lsdr_options(L, 2);
  lsdr_pipe *src = lsdr_test_pipe(L, 1);
  if (!src)
    return lsdr_argerror(L, 1, "a pipeline (StableDiffusionPipeline or its siblings)");
  /* diffusers keeps a ControlNet pipeline's nets (its task's ControlNet class); controlnet =
   * a net adds or changes them, controlnet = false (Python's None) leaves them out */
  lua_getfield(L, 2, "controlnet");
  const int cn_opt = lua_gettop(L);
  const int given =
      !lua_isnil(L, cn_opt) && !(lua_isboolean(L, cn_opt) && !lua_toboolean(L, cn_opt));
  const int controlnet = lua_isnil(L, cn_opt) ? lsdr_pipe_controlnet(src) : given;
  if (src->kind == LSDR_KIND_UPSCALE) /* no row of the mappings */
    return lsdr_error(L, "AutoPipeline can't find a pipeline linked to %s for None",
                      lsdr_pipe_class_name(src));
  if (lsdr_pipe_lcm(src)) { /* the "lcm" row: text to image and image to image only */
    if (kind == LSDR_KIND_INPAINT || controlnet)
      return lsdr_error(L, "AutoPipeline can't find a pipeline linked to %s for None",
                        lsdr_pipe_class_name(src));
    kind = kind == LSDR_KIND_I2I ? LSDR_KIND_LCM_I2I : LSDR_KIND_LCM;
  }
  if (controlnet)
    kind = family_controlnet_kind(kind, lsdr_kind_xl(src->kind));
  else if (lsdr_kind_xl(src->kind)) /* the "stable-diffusion-xl" row */
    kind = xl_kind(kind);
  if (given)
    lsdr_push_controlnet_option(L, 2, lsdr_kind_class_name(kind));
  const int net = given ? lua_gettop(L) : 0;
  lsdr_pipeline_from_pipe(L, 1, kind);
  lsdr_push_pipe_parts(L, -1);
  if (net)
    lua_pushvalue(L, net);
  else if (!controlnet)
    lua_pushnil(L);
  if (net || !controlnet)
    lua_setfield(L, -2, "controlnet");
  lua_pop(L, 1);
  lua_getfield(L, 2, "scheduler"); /* a component passed replaces the original's */
  if (!lua_isnil(L, -1))
    lua_setfield(L, -2, "scheduler");
  else
    lua_pop(L, 1);
  return 1;
}
static int auto_t2i_from_pipe(lua_State *L) { return from_pipe(L, LSDR_KIND_T2I); }
static int auto_i2i_from_pipe(lua_State *L) { return from_pipe(L, LSDR_KIND_I2I); }
static int auto_inpaint_from_pipe(lua_State *L) { return from_pipe(L, LSDR_KIND_INPAINT); }

static const lsdr_param from_pipe_options[] = {
    {"scheduler", "any", "nil", "a scheduler instead of the pipeline's"},
    {"controlnet", "any", "nil",
     "a ControlNetModel (or list) for the task's ControlNet class; false: none (nil keeps the "
     "pipeline's)"},
    {0}};

static const lsdr_func diffusion_class[] = {
    {"DiffusionPipeline.from_pretrained",
     diffusion_from_pretrained,
     "Loads the pipeline class that the model's model_index.json names.",
     {{"pretrained_model_name_or_path", "string"}, {"opts", "table", "nil"}},
     lsdr_pipeline_load_options},
    {0}};

static const lsdr_func auto_t2i_class[] = {
    {"AutoPipelineForText2Image.from_pretrained",
     auto_t2i_from_pretrained,
     "Loads a Stable Diffusion model (any of its pipelines) as a text-to-image pipeline.",
     {{"pretrained_model_name_or_path", "string"}, {"opts", "table", "nil"}},
     lsdr_pipeline_load_options},
    {"AutoPipelineForText2Image.from_pipe",
     auto_t2i_from_pipe,
     "A text-to-image pipeline sharing another pipeline's models (no new memory).",
     {{"pipeline", "any"}, {"opts", "table", "nil"}},
     from_pipe_options},
    {0}};

static const lsdr_func auto_i2i_class[] = {
    {"AutoPipelineForImage2Image.from_pretrained",
     auto_i2i_from_pretrained,
     "Loads a Stable Diffusion model (any of its pipelines) as an image-to-image pipeline.",
     {{"pretrained_model_name_or_path", "string"}, {"opts", "table", "nil"}},
     lsdr_pipeline_load_options},
    {"AutoPipelineForImage2Image.from_pipe",
     auto_i2i_from_pipe,
     "An image-to-image pipeline sharing another pipeline's models (no new memory).",
     {{"pipeline", "any"}, {"opts", "table", "nil"}},
     from_pipe_options},
    {0}};

static const lsdr_func auto_inpaint_class[] = {
    {"AutoPipelineForInpainting.from_pretrained",
     auto_inpaint_from_pretrained,
     "Loads a Stable Diffusion model (any of its pipelines) as an inpainting pipeline.",
     {{"pretrained_model_name_or_path", "string"}, {"opts", "table", "nil"}},
     lsdr_pipeline_load_options},
    {"AutoPipelineForInpainting.from_pipe",
     auto_inpaint_from_pipe,
     "An inpainting pipeline sharing another pipeline's models (no new memory).",
     {{"pipeline", "any"}, {"opts", "table", "nil"}},
     from_pipe_options},
    {0}};

/* Calling the class itself is diffusers' EnvironmentError: these classes only load. */
static int not_constructible(lua_State *L) {
  const char *name = lua_tostring(L, lua_upvalueindex(1));
  return luaL_error(L,
                    "%s is designed to be instantiated using the `%s.from_pretrained("
                    "pretrained_model_name_or_path)`%s method.",
                    name, name, strcmp(name, "DiffusionPipeline") == 0 ? "" : " or `from_pipe`");
}

static void open_class(lua_State *L, const char *name, const lsdr_func *funcs) {
  lua_newtable(L);
  lsdr_register(L, -1, funcs);
  lua_createtable(L, 0, 1);
  lua_pushstring(L, name);
  lua_pushcclosure(L, not_constructible, 1);
  lua_setfield(L, -2, "__call");
  lua_setmetatable(L, -2);
  lua_setglobal(L, name);
}

void lsdr_open_auto_pipeline(lua_State *L) {
  open_class(L, "DiffusionPipeline", diffusion_class);
  open_class(L, "AutoPipelineForText2Image", auto_t2i_class);
  open_class(L, "AutoPipelineForImage2Image", auto_i2i_class);
  open_class(L, "AutoPipelineForInpainting", auto_inpaint_class);
}

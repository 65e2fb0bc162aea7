/* bindings/scheduler.c — PNDMScheduler, DDIMScheduler, ... for Lua, as diffusers' classes:
 * X.from_config(config), X.from_pretrained(path, {subfolder}), s:set_timesteps(n),
 * s.timesteps, s:scale_model_input(x, t), s:step(out, t, x, {generator, eta}).prev_sample,
 * s:add_noise(x, noise, t). */
#include "bindings/scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/generator.h" // lsdr_to_generator, lsdr_default_generator
#include "bindings/hub.h"       // lsdr_hub_resolve, LSDR_HUB_PARAMS
#include "bindings/json_lua.h"  // lsdr_push_json, lsdr_push_json_text
#include "bindings/lsdr.h"
#include "bindings/model_common.h"
#include "bindings/tensor.h"
#include "bindings/tensor_internal.h"
#include "engine/arena.h"
#include "engine/error.h"
#include "engine/model_config.h" // sdr_json_read_text

typedef struct lsdr_sched {
  sdr_scheduler *s;
  sdr_arena arena; /* on the CPU backend, for steps called from Lua */
  int has_arena;
} lsdr_sched;

sdr_scheduler *lsdr_to_scheduler(lua_State *L, int idx) {
  lsdr_sched *b = luaL_testudata(L, idx, LSDR_SCHEDULER);
  return b ? b->s : NULL;
}

static lsdr_sched *check_sched(lua_State *L, int idx) {
  lsdr_sched *b = luaL_checkudata(L, idx, LSDR_SCHEDULER);
  if (!b->s)
    luaL_error(L, "this scheduler was closed");
  return b;
}

static int sched_gc(lua_State *L) {
  lsdr_sched *b = luaL_checkudata(L, 1, LSDR_SCHEDULER);
  if (b->has_arena)
    sdr_arena_free(&b->arena);
  b->has_arena = 0;
  if (b->s)
    sdr_scheduler_free(b->s);
  b->s = NULL;
  return 0;
}

void lsdr_push_scheduler(lua_State *L, sdr_scheduler *s) {
  lsdr_sched *b = lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  b->s = s;
  luaL_setmetatable(L, LSDR_SCHEDULER);
}

static sdr_arena *arena_of(lua_State *L, lsdr_sched *b, sdr_backend *be) {
  if (!b->has_arena) {
    sdr_arena_init(&b->arena, be);
    b->has_arena = 1;
  }
  if (b->arena.be != be) { /* scratch only: it follows the tensors to their device */
    sdr_arena_free(&b->arena);
    sdr_arena_init(&b->arena, be);
  }
  return &b->arena;
}

/* ---- making ----------------------------------------------------------------------- */

static int class_kind(lua_State *L) {
  const lsdr_func *f = lsdr_current(L);
  char cls[64];
  const char *dot = strchr(f->name, '.');
  snprintf(cls, sizeof cls, "%.*s", (int)(dot - f->name), f->name);
  return sdr_scheduler_kind_from_name(cls);
}

/* X.from_config(config, kwargs): config a table (s.config) or JSON text. */
static int from_config(lua_State *L) {
  lsdr_args(L);
  int kind = class_kind(L);
  if (lua_type(L, 1) == LUA_TSTRING)
    lua_pushvalue(L, 1);
  else
    lsdr_push_json_text(L, 1);
  const char *kw = NULL;
  if (!lua_isnil(L, 2)) {
    lsdr_push_json_text(L, 2);
    kw = lua_tostring(L, -1);
  }
  sdr_scheduler *s = sdr_scheduler_from_config(lua_tostring(L, 3), kind, kw);
  if (!s)
    return lsdr_engine_error(L);
  lsdr_push_scheduler(L, s);
  return 1;
}

/* X{kwargs} or X(kwargs): diffusers' X(**kwargs), the __init__ arguments given and the
 * rest their defaults (the config lists those in _use_default_values, as diffusers'
 * does). An argument the class does not take is its TypeError. */
static int construct(lua_State *L) {
  const char *cls = lua_tostring(L, lua_upvalueindex(1));
  int kind = sdr_scheduler_kind_from_name(cls);
  if (!lua_isnoneornil(L, 2) && !lua_istable(L, 2))
    return luaL_error(L, "%s(...): a table of keyword arguments expected, got %s", cls,
                      luaL_typename(L, 2));
  const char *kw = NULL;
  if (lua_istable(L, 2)) {
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      lua_pop(L, 1);
      if (lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "%s(...): keyword arguments are named (a table of name = value)", cls);
      if (!sdr_scheduler_takes(kind, lua_tostring(L, -1)))
        return luaL_error(L, "%s.__init__() got an unexpected keyword argument '%s'", cls,
                          lua_tostring(L, -1));
    }
    lsdr_push_json_text(L, 2);
    kw = lua_tostring(L, -1);
  }
  sdr_scheduler *s = sdr_scheduler_from_config("{}", kind, kw);
  if (!s)
    return luaL_error(L, "%s", sdr_last_error());
  lsdr_push_scheduler(L, s);
  return 1;
}

/* X.from_pretrained(path, {subfolder}) reads <path>[/subfolder]/scheduler_config.json. */
static int from_pretrained(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  const char *root = lsdr_hub_resolve(L, 1, 2, SDR_HUB_SCHEDULER); /* a folder, or a repo id */
  lua_getfield(L, 2, "subfolder");
  const char *sub = lua_tostring(L, -1);
  char path[4096];
  snprintf(path, sizeof path, "%s%s%s/scheduler_config.json", root, sub && *sub ? "/" : "",
           sub ? sub : "");
  size_t len;
  char *text = sdr_json_read_text(path, &len);
  if (!text)
    return lsdr_error(L, "no scheduler config at %s (%s)", path, sdr_last_error());
  lua_pushlstring(L, text, len);
  free(text);
  sdr_scheduler *s = sdr_scheduler_from_config(lua_tostring(L, -1), class_kind(L), NULL);
  if (!s)
    return lsdr_engine_error(L);
  lsdr_push_scheduler(L, s);
  return 1;
}

/* ---- using ------------------------------------------------------------------------ */

const int64_t *lsdr_read_timesteps(lua_State *L, int idx, const char *what, int *n) {
  idx = lua_absindex(L, idx);
  if (!lua_istable(L, idx))
    lsdr_error(L, "option '%s': a list of integer timesteps expected, got %s", what,
               lsdr_typename(L, idx));
  int len = (int)lua_rawlen(L, idx);
  int64_t *t = lua_newuserdatauv(L, (size_t)(len ? len : 1) * sizeof *t, 0);
  for (int i = 0; i < len; i++) {
    lua_rawgeti(L, idx, i + 1);
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok || lua_type(L, -1) != LUA_TNUMBER)
      lsdr_error(L, "option '%s': entry %d is %s, not an integer timestep", what, i + 1,
                 lsdr_typename(L, -1));
    t[i] = (int64_t)v;
    lua_pop(L, 1);
  }
  *n = len;
  return t;
}

/* s:set_timesteps(n), or with custom timesteps s:set_timesteps{timesteps = {...}} (or
 * s:set_timesteps(nil, {timesteps = ...})), as diffusers' set_timesteps(timesteps=...). */
static int m_set_timesteps(lua_State *L) {
  lsdr_args(L);
  lsdr_sched *b = check_sched(L, 1);
  int opts = lua_istable(L, 2) ? 2 : 3, n = 0;
  if (opts == 2 && !lua_isnil(L, 3))
    return lsdr_error(L, "give the options table once");
  if (lua_istable(L, opts))
    lua_getfield(L, opts, "timesteps");
  else
    lua_pushnil(L);
  /* set_timesteps{num_inference_steps = n}: diffusers' keyword */
  int keyword_steps = opts == 2 && lua_getfield(L, 2, "num_inference_steps") != LUA_TNIL;
  if (keyword_steps)
    lua_replace(L, 3);
  else if (opts == 2)
    lua_pop(L, 1);
  if (!lua_isnil(L, -1)) {
    if ((opts == 3 && !lua_isnil(L, 2)) || keyword_steps)
      return lsdr_error(L, "Can only pass one of `num_inference_steps` or `custom_timesteps`.");
    const int64_t *t = lsdr_read_timesteps(L, -1, "timesteps", &n);
    if (sdr_scheduler_set_custom_timesteps(b->s, t, n) != 0)
      return lsdr_engine_error(L);
    return 0;
  }
  const int steps_at = keyword_steps ? 3 : 2;
  if ((opts == 2 && !keyword_steps) || !lua_isinteger(L, steps_at))
    return lsdr_error(L, "argument 1 (num_inference_steps): an integer expected, or "
                         "{timesteps = {...}}");
  if (sdr_scheduler_set_timesteps(b->s, (int)lua_tointeger(L, steps_at)) != 0)
    return lsdr_engine_error(L);
  return 0;
}

static int m_set_begin_index(lua_State *L) {
  lsdr_args(L);
  lsdr_sched *b = check_sched(L, 1);
  if (sdr_scheduler_set_begin_index(b->s, (int)lua_tointeger(L, 2)) != 0)
    return lsdr_engine_error(L);
  return 0;
}

/* A timestep given as a number or a one-value tensor. */
static double timestep_arg(lua_State *L, int idx, int param) {
  if (lua_type(L, idx) == LUA_TNUMBER)
    return lua_tonumber(L, idx);
  lsdr_tensor *t = lsdr_to_tensor(L, idx);
  if (!t || sdr_tensor_numel(&t->t) != 1)
    lsdr_argerror(L, param, "a number or a one-value tensor");
  double *v = lsdr_tensor_host_values(L, t);
  double x = v[0];
  free(v);
  return x;
}

static int m_scale_model_input(lua_State *L) {
  lsdr_args(L);
  lsdr_sched *b = check_sched(L, 1);
  double t = timestep_arg(L, 3, 2);
  lsdr_tensor *x = lsdr_push_float32(L, 2);
  lsdr_tensor *out = lsdr_push_new_tensor(L, x->storage->be, SDR_F32, x->t.ndim, x->t.shape);
  if (sdr_scheduler_scale_model_input(b->s, x->storage->be, &out->t, &x->t, t) != 0)
    return lsdr_engine_error(L);
  return 1;
}

static int m_step(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 4);
  lsdr_sched *b = check_sched(L, 1);
  double t = timestep_arg(L, 3, 2);
  lua_getfield(L, 5, "generator");
  sdr_generator *g = lua_isnil(L, -1) ? NULL : lsdr_to_generator(L, -1);
  if (!lua_isnil(L, -1) && !g)
    return lsdr_error(L, "option 'generator': a torch.Generator expected");
  lsdr_generator_fit_device(g);
  lua_getfield(L, 5, "eta");
  double eta = lua_isnil(L, -1) ? sdr_scheduler_default_eta(b->s) : lua_tonumber(L, -1);
  lsdr_tensor *out = lsdr_push_float32(L, 2);
  lsdr_tensor *x = lsdr_push_float32(L, 4);
  if (out->storage->be != x->storage->be || !sdr_tensor_same_shape(&out->t, &x->t))
    return lsdr_error(L, "model_output and sample must have the same shape and device");
  sdr_backend *be = x->storage->be;
  lua_createtable(L, 0, 2);
  int result = lua_gettop(L);
  lsdr_tensor *prev = lsdr_push_new_tensor(L, be, SDR_F32, x->t.ndim, x->t.shape);
  lua_setfield(L, result, "prev_sample");
  lsdr_tensor *x0 = NULL;
  const char *x0_name = sdr_scheduler_x0_name(b->s);
  if (sdr_scheduler_has_pred_original(b->s)) {
    x0 = lsdr_push_new_tensor(L, be, SDR_F32, x->t.ndim, x->t.shape);
    lua_setfield(L, result, x0_name);
  }
  sdr_arena *a = arena_of(L, b, be);
  sdr_scheduler_set_default_generator(b->s, lsdr_default_generator(L, SDR_GENERATOR_CPU));
  int rc = sdr_scheduler_step_full(b->s, be, a, &prev->t, x0 ? &x0->t : NULL, &out->t, t, &x->t,
                                   g ? &g : NULL, g ? 1 : 0, eta);
  sdr_arena_reset(a);
  if (rc != 0)
    return lsdr_engine_error(L);
  /* the output's class keeps its field names (LCMSchedulerOutput's second is denoised,
   * TCDSchedulerOutput's pred_noised_sample) */
  static const char *const fields[] = {"prev_sample", "pred_original_sample", NULL};
  static const char *const lcm_fields[] = {"prev_sample", "denoised", NULL};
  static const char *const tcd_fields[] = {"prev_sample", "pred_noised_sample", NULL};
  const int lcm = strcmp(x0_name, "denoised") == 0,
            tcd = strcmp(x0_name, "pred_noised_sample") == 0;
  lsdr_output_kind(L, result,
                   lcm   ? "LCMSchedulerOutput"
                   : tcd ? "TCDSchedulerOutput"
                         : "SchedulerOutput",
                   lcm   ? lcm_fields
                   : tcd ? tcd_fields
                         : fields);
  return 1;
}

static int m_add_noise(lua_State *L) {
  lsdr_args(L);
  lsdr_sched *b = check_sched(L, 1);
  double t = timestep_arg(L, 4, 3);
  lsdr_tensor *x = lsdr_push_float32(L, 2);
  lsdr_tensor *noise = lsdr_push_float32(L, 3);
  if (x->storage->be != noise->storage->be || !sdr_tensor_same_shape(&x->t, &noise->t))
    return lsdr_error(L, "original_samples and noise must have the same shape and device");
  lsdr_tensor *out = lsdr_push_new_tensor(L, x->storage->be, SDR_F32, x->t.ndim, x->t.shape);
  if (sdr_scheduler_add_noise(b->s, x->storage->be, &out->t, &x->t, &noise->t, t) != 0)
    return lsdr_engine_error(L);
  return 1;
}

static int sched_properties(lua_State *L) {
  lsdr_sched *b = check_sched(L, 1);
  const char *k = lua_tostring(L, 2);
  if (!k)
    return 0;
  if (strcmp(k, "config") == 0) {
    lsdr_push_json(L, sdr_scheduler_config_json(b->s));
    return 1;
  }
  if (strcmp(k, "timesteps") == 0) {
    int n = 0;
    const double *ts = sdr_scheduler_timesteps(b->s, &n);
    sdr_dtype dt = sdr_scheduler_timesteps_dtype(b->s);
    lsdr_push_from_host(L, lsdr_backend(L, SDR_DEVICE_CPU), dt == SDR_I64 ? SDR_I64 : SDR_F32, 1,
                        (int64_t[]){n}, ts);
    return 1;
  }
  if (strcmp(k, "sigmas") == 0) {
    int n = 0;
    const float *sg = sdr_scheduler_sigmas(b->s, &n);
    if (!sg)
      return 0;
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!v)
      return luaL_error(L, "out of memory");
    for (int i = 0; i < n; i++)
      v[i] = sg[i];
    lsdr_push_from_host(L, lsdr_backend(L, SDR_DEVICE_CPU), SDR_F32, 1, (int64_t[]){n}, v);
    free(v);
    return 1;
  }
  if (strcmp(k, "init_noise_sigma") == 0) {
    lua_pushnumber(L, sdr_scheduler_init_noise_sigma(b->s));
    return 1;
  }
  if (strcmp(k, "order") == 0) {
    lua_pushinteger(L, sdr_scheduler_order(b->s));
    return 1;
  }
  if (strcmp(k, "num_inference_steps") == 0 || strcmp(k, "step_index") == 0 ||
      strcmp(k, "begin_index") == 0) {
    int v = k[0] == 'n'   ? sdr_scheduler_num_inference_steps(b->s)
            : k[0] == 's' ? sdr_scheduler_step_index(b->s)
                          : sdr_scheduler_begin_index(b->s);
    if ((k[0] == 'n' && v == 0) || (k[0] != 'n' && v < 0))
      return 0; /* None */
    lua_pushinteger(L, v);
    return 1;
  }
  if (strcmp(k, "compatibles") == 0) {
    /* the scheduler classes that take this one's config (diffusers' list holds more
     * kinds; these are the ones there are here), as the global class tables:
     * KarrasDiffusionSchedulers' for those, LCM, TCD, DDIM inverse and the EDM classes (whose
     * _compatibles are empty) each alone for itself */
    const sdr_scheduler_kind own = sdr_scheduler_kind_of(b->s);
    const int alone = own == SDR_SCHED_LCM || own == SDR_SCHED_TCD || own == SDR_SCHED_EDM_EULER ||
                      own == SDR_SCHED_DDIM_INVERSE || own == SDR_SCHED_EDM_DPMSOLVER_MULTISTEP;
    lua_createtable(L, SDR_SCHED_COUNT, 0);
    for (int i = 0, n = 0; i < SDR_SCHED_COUNT; i++) {
      int karras = i != SDR_SCHED_LCM && i != SDR_SCHED_TCD && i != SDR_SCHED_EDM_EULER &&
                   i != SDR_SCHED_DDIM_INVERSE && i != SDR_SCHED_EDM_DPMSOLVER_MULTISTEP;
      if (alone ? i != (int)own : !karras)
        continue;
      lua_getglobal(L, sdr_scheduler_class_name((sdr_scheduler_kind)i));
      lua_rawseti(L, -2, ++n);
    }
    return 1;
  }
  if (strcmp(k, "class_name") == 0) {
    lua_pushstring(L, sdr_scheduler_class_name(sdr_scheduler_kind_of(b->s)));
    return 1;
  }
  return 0;
}

static int sched_tostring(lua_State *L) {
  lsdr_sched *b = luaL_checkudata(L, 1, LSDR_SCHEDULER);
  if (!b->s)
    lua_pushliteral(L, "<scheduler (closed)>");
  else
    lua_pushfstring(L, "<%s>", sdr_scheduler_class_name(sdr_scheduler_kind_of(b->s)));
  return 1;
}

static const lsdr_param step_options[] = {
    {"generator", "torch.Generator", "nil", "for schedulers that draw noise"},
    {"eta", "number", "nil", "DDIM's eta (0 when not given); TCDScheduler's gamma (0.3)"},
    {"return_dict", "boolean", "true", "accepted: the result is indexable either way"},
    {0}};

static const lsdr_func methods[] = {
    {"Scheduler:set_timesteps",
     m_set_timesteps,
     "Chooses the timesteps of a run of n steps, or takes {timesteps = {...}} (DDPMScheduler, "
     "LCMScheduler, TCDScheduler).",
     {{"num_inference_steps", "integer|table", "nil"},
      {"opts", "table", "nil", "{timesteps = {...}}: custom timesteps, descending"}}},
    {"Scheduler:set_begin_index",
     m_set_begin_index,
     "Where a sliced run (img2img) begins in the timesteps.",
     {{"begin_index", "integer"}}},
    {"Scheduler:scale_model_input",
     m_scale_model_input,
     "The sample scaled for the model at timestep t.",
     {{"sample", "Tensor"}, {"timestep", "number|Tensor"}}},
    {"Scheduler:step",
     m_step,
     "One step back: returns {prev_sample = Tensor} (and pred_original_sample for DDIM, DDPM, "
     "LMS, Euler, Euler ancestral and EDM Euler, denoised for LCM); out[1] is prev_sample, as "
     "diffusers' "
     "tuple.",
     {{"model_output", "Tensor"},
      {"timestep", "number|Tensor"},
      {"sample", "Tensor"},
      {"opts", "table", "nil"}},
     step_options},
    {"Scheduler:add_noise",
     m_add_noise,
     "The original samples noised to timestep t.",
     {{"original_samples", "Tensor"}, {"noise", "Tensor"}, {"timesteps", "number|Tensor"}}},
    {0}};

static const lsdr_param pretrained_options[] = {
    {"subfolder", "string", "nil", "e.g. \"scheduler\" in a pipeline folder"},
    LSDR_HUB_PARAMS,
    {0}};

#define CLASS(NAME)                                                                                \
  static const lsdr_func NAME##_funcs[] = {                                                        \
      {#NAME ".from_config",                                                                       \
       from_config,                                                                                \
       "A " #NAME " from another scheduler's config (a table or JSON text).",                      \
       {{"config", "table|string"}, {"kwargs", "table", "nil"}}},                                  \
      {#NAME ".from_pretrained",                                                                   \
       from_pretrained,                                                                            \
       "A " #NAME " from a scheduler_config.json.",                                                \
       {{"path", "string"}, {"opts", "table", "nil"}},                                             \
       pretrained_options},                                                                        \
      {0}};

CLASS(PNDMScheduler)
CLASS(DDIMScheduler)
CLASS(LMSDiscreteScheduler)
CLASS(EulerDiscreteScheduler)
CLASS(EulerAncestralDiscreteScheduler)
CLASS(DPMSolverMultistepScheduler)
CLASS(UniPCMultistepScheduler)
CLASS(HeunDiscreteScheduler)
CLASS(DDPMScheduler)
CLASS(KDPM2DiscreteScheduler)
CLASS(KDPM2AncestralDiscreteScheduler)
CLASS(DEISMultistepScheduler)
CLASS(DPMSolverSinglestepScheduler)
CLASS(LCMScheduler)
CLASS(EDMEulerScheduler)
CLASS(EDMDPMSolverMultistepScheduler)
CLASS(TCDScheduler)
CLASS(DPMSolverSDEScheduler)
CLASS(DDIMInverseScheduler)

void lsdr_open_scheduler(lua_State *L) {
  lsdr_model_metatable(L, LSDR_SCHEDULER, methods, sched_properties, sched_gc, sched_tostring);
  luaL_getmetatable(L, LSDR_SCHEDULER);
  lua_getfield(L, -1, "__fields");
  static const char *const props[] = {
      "config",     "timesteps",   "sigmas",     "init_noise_sigma", "order", "num_inference_steps",
      "step_index", "begin_index", "class_name", "compatibles",      NULL};
  for (int i = 0; props[i]; i++) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, props[i]);
  }
  lua_pop(L, 2);
  static const struct {
    const char *name;
    const lsdr_func *funcs;
  } classes[] = {{"PNDMScheduler", PNDMScheduler_funcs},
                 {"DDIMScheduler", DDIMScheduler_funcs},
                 {"LMSDiscreteScheduler", LMSDiscreteScheduler_funcs},
                 {"EulerDiscreteScheduler", EulerDiscreteScheduler_funcs},
                 {"EulerAncestralDiscreteScheduler", EulerAncestralDiscreteScheduler_funcs},
                 {"DPMSolverMultistepScheduler", DPMSolverMultistepScheduler_funcs},
                 {"UniPCMultistepScheduler", UniPCMultistepScheduler_funcs},
                 {"HeunDiscreteScheduler", HeunDiscreteScheduler_funcs},
                 {"DDPMScheduler", DDPMScheduler_funcs},
                 {"KDPM2DiscreteScheduler", KDPM2DiscreteScheduler_funcs},
                 {"KDPM2AncestralDiscreteScheduler", KDPM2AncestralDiscreteScheduler_funcs},
                 {"DEISMultistepScheduler", DEISMultistepScheduler_funcs},
                 {"DPMSolverSinglestepScheduler", DPMSolverSinglestepScheduler_funcs},
                 {"LCMScheduler", LCMScheduler_funcs},
                 {"EDMEulerScheduler", EDMEulerScheduler_funcs},
                 {"EDMDPMSolverMultistepScheduler", EDMDPMSolverMultistepScheduler_funcs},
                 {"TCDScheduler", TCDScheduler_funcs},
                 {"DPMSolverSDEScheduler", DPMSolverSDEScheduler_funcs},
                 {"DDIMInverseScheduler", DDIMInverseScheduler_funcs}};
  for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++) {
    lua_newtable(L);
    lsdr_register(L, -1, classes[i].funcs);
    lua_createtable(L, 0, 1); /* X{...}: the constructor */
    lua_pushstring(L, classes[i].name);
    lua_pushcclosure(L, construct, 1);
    lua_setfield(L, -2, "__call");
    lua_setmetatable(L, -2);
    lua_setglobal(L, classes[i].name);
  }
}

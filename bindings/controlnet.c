/* bindings/controlnet.c — ControlNetModel.from_pretrained, controlnet(sample, t, {...}) and
 * MultiControlNetModel{nets}, as diffusers' ControlNet notebooks use them. */
#include "bindings/controlnet.h"

#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/lsdr.h"
#include "bindings/model_common.h"
#include "bindings/tensor.h"
#include "bindings/tensor_internal.h" // lsdr_push_float32
#include "bindings/unet.h"            // lsdr_push_timesteps
#include "engine/controlnet.h"
#include "engine/error.h"

static void free_controlnet(void *m) { sdr_controlnet_free(m); }

static int load_controlnet(void *m, sdr_backend *be, const char *dir, const char *variant,
                           int keep) {
  return sdr_controlnet_load(m, be, dir, variant, keep);
}

static int from_pretrained(lua_State *L) {
  return lsdr_model_from_pretrained(L, LSDR_CONTROLNET, sizeof(sdr_controlnet), load_controlnet,
                                    free_controlnet);
}

void lsdr_push_controlnet_from(lua_State *L, const char *dir, const char *variant, int keep) {
  lsdr_model_push_loaded(L, LSDR_CONTROLNET, sizeof(sdr_controlnet), load_controlnet,
                         free_controlnet, dir, variant, keep);
}

sdr_controlnet *lsdr_to_controlnet(lua_State *L, int idx) {
  lsdr_model_box *b = luaL_testudata(L, idx, LSDR_CONTROLNET);
  return b && lsdr_model_box_open(b) ? b->model : NULL;
}

sdr_controlnet *lsdr_controlnet_on(lua_State *L, int idx, sdr_backend *be, int keep_dtype) {
  lsdr_model_box *b = lsdr_model_box_check(L, idx, LSDR_CONTROLNET);
  sdr_controlnet *c = b->model;
  /* the CPU computes in float32 whatever the weights are kept in */
  if (c->base.be == be &&
      (be->device == SDR_DEVICE_CPU || c->base.weights.keep_dtype == keep_dtype))
    return c;
  sdr_controlnet *moved = calloc(1, sizeof *moved);
  if (!moved)
    luaL_error(L, "out of memory");
  if (sdr_controlnet_copy_to(moved, c, be, keep_dtype) != 0) {
    free(moved);
    lsdr_engine_error(L);
  }
  sdr_controlnet_free(c);
  free(b->own);
  b->own = b->model = moved;
  lsdr_model_box_follow(b, be);
  return moved;
}

/* controlnet(sample, timestep, {encoder_hidden_states, controlnet_cond, conditioning_scale,
 * guess_mode, added_cond_kwargs}) -> {down_block_res_samples = {...}, mid_block_res_sample =
 * Tensor} */
static int controlnet_call(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 3);
  lsdr_model_box *box = lsdr_model_box_check(L, 1, LSDR_CONTROLNET);
  sdr_controlnet *cn = box->model;
  lsdr_model_box_follow(box, cn->base.be);
  sdr_backend *be = cn->base.be;
  lsdr_tensor *sample = lsdr_to_tensor(L, 2);
  if (sample->t.ndim != 4)
    return lsdr_argerror(L, 1, "a (batch, channels, height, width) tensor");
  const int64_t B = sample->t.shape[0];
  static const char *const needed[] = {"encoder_hidden_states", "controlnet_cond"};
  int idx[2];
  for (int i = 0; i < 2; i++) {
    lua_getfield(L, 4, needed[i]);
    idx[i] = lua_gettop(L);
    if (!lsdr_to_tensor(L, idx[i]))
      return lsdr_error(L, "option '%s': Tensor expected, got %s", needed[i],
                        lsdr_typename(L, idx[i]));
  }
  lua_getfield(L, 4, "conditioning_scale");
  const float scale = (float)lua_tonumber(L, -1);
  lua_getfield(L, 4, "guess_mode");
  const int guess = lua_toboolean(L, -1);
  lua_pop(L, 2);
  lsdr_tensor *ts = lsdr_push_timesteps(L, 3, be, B);
  lsdr_tensor *x = lsdr_push_float32(L, 2);
  lsdr_tensor *ctx = lsdr_push_float32(L, idx[0]);
  lsdr_tensor *cond = lsdr_push_float32(L, idx[1]);
  if (x->storage->be != be || ctx->storage->be != be || cond->storage->be != be)
    return lsdr_error(L, "the tensors must be on the model's device (%s)",
                      sdr_device_name(be->device));
  const int n = sdr_controlnet_ndown(cn);
  sdr_tensor down[SDR_UNET_MAX_SKIPS], mid;
  sdr_arena *a = &box->arena;
  lua_getfield(L, 4, "added_cond_kwargs");
  const sdr_tensor *te, *ti;
  lsdr_read_text_time(L, lua_istable(L, -1) ? lua_gettop(L) : 0, be, &te, &ti);
  if (sdr_controlnet_forward(cn, a, down, &mid, &x->t, &ts->t, &ctx->t, &cond->t, te, ti,
                             (sdr_controlnet_scale){scale, guess}) != 0) {
    sdr_arena_reset(a);
    return lsdr_engine_error(L);
  }
  /* float32 copies the caller keeps (the arena is the model's scratch) */
  lua_createtable(L, 0, 2);
  lua_createtable(L, n, 0);
  int rc = 0;
  for (int i = 0; i <= n && rc == 0; i++) {
    const sdr_tensor *r = i < n ? &down[i] : &mid;
    lsdr_tensor *t = lsdr_push_new_tensor(L, be, SDR_F32, 4, r->shape);
    rc = sdr_cast(be, &t->t, r);
    if (i < n)
      lua_rawseti(L, -2, i + 1);
  }
  sdr_arena_reset(a);
  if (rc != 0)
    return lsdr_engine_error(L);
  lua_setfield(L, -3, "mid_block_res_sample");
  lua_setfield(L, -2, "down_block_res_samples");
  static const char *const fields[] = {"down_block_res_samples", "mid_block_res_sample", NULL};
  lsdr_output_kind(L, -1, "ControlNetOutput", fields);
  return 1;
}

static int controlnet_properties(lua_State *L) {
  lsdr_model_box *box = lsdr_model_box_check(L, 1, LSDR_CONTROLNET);
  const sdr_controlnet *cn = box->model;
  const char *k = lua_tostring(L, 2);
  if (k && strcmp(k, "config") == 0) {
    const sdr_unet_config *c = &cn->base.cfg;
    lua_createtable(L, 0, 12);
    int t = lua_gettop(L);
    lsdr_set_unet_down_config(L, t, c);
    lsdr_set_int(L, t, "conditioning_channels", cn->cfg.conditioning_channels);
    lsdr_set_int(L, t, "cross_attention_dim", c->cross_attention_dim[0]);
    lsdr_set_int_list(L, t, "conditioning_embedding_out_channels", cn->cfg.cond_channels,
                      cn->cfg.ncond);
    lsdr_set_str(L, t, "controlnet_conditioning_channel_order", cn->cfg.bgr ? "bgr" : "rgb");
    lua_pushboolean(L, cn->cfg.global_pool_conditions);
    lua_setfield(L, t, "global_pool_conditions");
    return 1;
  }
  if (k && strcmp(k, "device") == 0) {
    lsdr_push_device(L, cn->base.be->device);
    return 1;
  }
  if (k && strcmp(k, "dtype") == 0) {
    lsdr_push_model_dtype(L, &cn->base.weights);
    return 1;
  }
  return 0;
}

static int controlnet_tostring(lua_State *L) {
  lsdr_model_box *b = luaL_checkudata(L, 1, LSDR_CONTROLNET);
  if (!lsdr_model_box_open(b)) {
    lua_pushliteral(L, "<ControlNetModel (closed)>");
    return 1;
  }
  const sdr_controlnet *c = b->model;
  lua_pushfstring(L, "<ControlNetModel %d blocks, %d channels at the top, on %s>",
                  c->base.cfg.nblocks, c->base.cfg.block_out_channels[0],
                  sdr_device_name(c->base.be->device));
  return 1;
}

/* ---- MultiControlNetModel: {nets = {...}} with its own name ----------------------- */

int lsdr_is_multi_controlnet(lua_State *L, int idx) {
  if (!lua_istable(L, idx) || !lua_getmetatable(L, idx))
    return 0;
  luaL_getmetatable(L, LSDR_MULTI_CONTROLNET);
  const int is = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return is;
}

void lsdr_push_multi_controlnet(lua_State *L, int list) {
  list = lua_absindex(L, list);
  const int n = (int)lua_rawlen(L, list);
  if (n < 1)
    lsdr_error(L, "MultiControlNetModel: a non-empty list of ControlNetModels expected");
  lua_createtable(L, 0, 1);
  lua_createtable(L, n, 0);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    if (!lsdr_to_controlnet(L, -1))
      lsdr_error(L, "MultiControlNetModel: entry %d is a %s, not an open ControlNetModel", i,
                 lsdr_typename(L, -1));
    lua_rawseti(L, -2, i);
  }
  lua_setfield(L, -2, "nets");
  luaL_setmetatable(L, LSDR_MULTI_CONTROLNET);
}

static int multi_new(lua_State *L) {
  lsdr_args(L);
  lsdr_push_multi_controlnet(L, 2);
  return 1;
}

static int multi_tostring(lua_State *L) {
  lua_getfield(L, 1, "nets");
  lua_pushfstring(L, "<MultiControlNetModel of %d>", (int)lua_rawlen(L, -1));
  return 1;
}

static const lsdr_param call_options[] = {
    {"encoder_hidden_states", "Tensor", NULL, "the text embeddings (batch, tokens, width)"},
    {"controlnet_cond", "Tensor", NULL, "the control pictures (batch, 3, H, W) in [0, 1]"},
    {"conditioning_scale", "number", "1.0", "how much of the residuals"},
    {"guess_mode", "boolean", "false", "residuals ramped from 0.1 to 1 over the skips"},
    {"added_cond_kwargs", "table", "nil", "{text_embeds = ..., time_ids = ...}: an SDXL net's"},
    {"return_dict", "boolean", "true",
     "accepted: the result is a table, out[1] the down residuals as in diffusers' tuple"},
    {0}};

static int controlnet_save_pretrained(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  sdr_controlnet *c = lsdr_model_box_check(L, 1, LSDR_CONTROLNET)->model;
  return lsdr_model_save_pretrained(L, &c->base.weights, "diffusion_pytorch_model");
}

static const lsdr_func methods[] = {
    {"ControlNetModel:to",
     lsdr_model_to,
     "The model itself for memory_format (or its own device); a pipeline moves its ControlNet "
     "with it.",
     {{"target", "string|table"}, {"dtype", "any", "nil"}}},
    {"ControlNetModel:__call",
     controlnet_call,
     "The residuals for a UNet call: controlnet(latents, t, {encoder_hidden_states = e, "
     "controlnet_cond = image}).",
     {{"sample", "Tensor"}, {"timestep", "number|Tensor"}, {"opts", "table"}},
     call_options},
    {"ControlNetModel:save_pretrained",
     controlnet_save_pretrained,
     "Writes config.json and the weights (.safetensors) into a folder, as diffusers does.",
     {{"save_directory", "string"}, {"opts", "table", "nil"}},
     lsdr_save_pretrained_options},
    {0}};

static const lsdr_func class_funcs[] = {{"ControlNetModel.from_pretrained",
                                         from_pretrained,
                                         "Loads a ControlNet from a folder (diffusers' layout) or "
                                         "a hub repo id (e.g. lllyasviel/sd-controlnet-canny).",
                                         {{"path", "string"}, {"opts", "table", "nil"}},
                                         lsdr_from_pretrained_options},
                                        {0}};

static const lsdr_func multi_funcs[] = {
    {"MultiControlNetModel.__call",
     multi_new,
     "Several ControlNets whose residuals add up: MultiControlNetModel{a, b} (a list given to "
     "a pipeline makes one).",
     {{"cls", "table"}, {"nets", "table"}}},
    {0}};

void lsdr_open_controlnet(lua_State *L) {
  lsdr_model_metatable(L, LSDR_CONTROLNET, methods, controlnet_properties, lsdr_model_box_gc,
                       controlnet_tostring);
  lsdr_set_class(L, "ControlNetModel", class_funcs);

  luaL_newmetatable(L, LSDR_MULTI_CONTROLNET);
  lua_pushcfunction(L, multi_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushstring(L, LSDR_MULTI_CONTROLNET);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  lsdr_set_class(L, LSDR_MULTI_CONTROLNET, multi_funcs); /* MultiControlNetModel{a, b} */
}

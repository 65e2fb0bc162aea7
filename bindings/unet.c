/* bindings/unet.c — UNet2DConditionModel.from_pretrained and unet(latents, t, {encoder_hidden_states}),
 * as the diffusers deep-dive notebook calls it. */
#include "bindings/unet.h"

#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/lsdr.h"
#include "bindings/model_common.h"
#include "bindings/tensor.h"
#include "bindings/tensor_internal.h" // lsdr_push_float32, lsdr_push_from_host, lsdr_tensor_host_values
#include "engine/error.h"
#include "engine/unet.h"

#define LSDR_UNET "UNet2DConditionModel"

typedef struct lsdr_unet {
  sdr_unet own;    /* loaded by from_pretrained */
  sdr_unet *model; /* &own, or a pipeline's (kept alive through the user value) */
  sdr_arena arena;
  int loaded, borrowed;
} lsdr_unet;

static lsdr_unet *check_unet(lua_State *L, int idx) {
  lsdr_unet *u = luaL_checkudata(L, idx, LSDR_UNET);
  if (!u->loaded)
    luaL_error(L, "UNet2DConditionModel: this model was closed");
  return u;
}

static int unet_gc(lua_State *L) {
  lsdr_unet *u = luaL_checkudata(L, 1, LSDR_UNET);
  if (u->loaded) {
    sdr_arena_free(&u->arena);
    if (!u->borrowed)
      sdr_unet_free(&u->own);
    u->loaded = 0;
  }
  return 0;
}

static int from_pretrained(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  lsdr_pretrained p;
  lsdr_pretrained_read(L, &p);
  sdr_backend *be = lsdr_backend(L, SDR_DEVICE_CPU);
  lsdr_unet *u = lua_newuserdatauv(L, sizeof *u, 1);
  memset(u, 0, sizeof *u);
  luaL_setmetatable(L, LSDR_UNET);
  if (sdr_unet_load(&u->own, be, p.dir, p.variant, p.keep_dtype) != 0)
    return lsdr_engine_error(L);
  u->model = &u->own;
  sdr_arena_init(&u->arena, be);
  u->loaded = 1;
  return 1;
}

void lsdr_push_unet_ref(lua_State *L, sdr_unet *model, int owner) {
  owner = lua_absindex(L, owner);
  lsdr_unet *u = lua_newuserdatauv(L, sizeof *u, 1);
  memset(u, 0, sizeof *u);
  luaL_setmetatable(L, LSDR_UNET);
  u->model = model;
  u->borrowed = 1;
  sdr_arena_init(&u->arena, model->be);
  u->loaded = 1;
  lua_pushvalue(L, owner);
  lua_setiuservalue(L, -2, 1);
}

/* unet(sample, timestep, {encoder_hidden_states = e}) -> {sample = Tensor} */
static int unet_call(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 3);
  lsdr_unet *u = check_unet(L, 1);
  sdr_backend *be = u->model->be;
  lsdr_tensor *sample = lsdr_to_tensor(L, 2);
  if (sample->t.ndim != 4)
    return lsdr_argerror(L, 1, "a (batch, channels, height, width) tensor");
  const int64_t B = sample->t.shape[0];
  lua_getfield(L, 4, "encoder_hidden_states");
  int ctx_idx = lua_gettop(L);
  if (!lsdr_to_tensor(L, ctx_idx))
    return lsdr_error(L, "option 'encoder_hidden_states': Tensor expected, got %s",
                      luaL_typename(L, ctx_idx));
  /* t: a number, or a tensor of one value or one per batch entry (diffusers broadcasts). */
  double *tv = malloc((size_t)B * sizeof *tv);
  if (!tv)
    return luaL_error(L, "out of memory");
  if (lua_type(L, 3) == LUA_TNUMBER) {
    for (int64_t i = 0; i < B; i++)
      tv[i] = lua_tonumber(L, 3);
  } else {
    lsdr_tensor *t = lsdr_to_tensor(L, 3);
    int64_t n = sdr_tensor_numel(&t->t);
    if (n != 1 && n != B) {
      free(tv);
      return lsdr_error(L, "argument 2 (timestep): %I values for a batch of %I",
                        (lua_Integer)n, (lua_Integer)B);
    }
    double *v = lsdr_tensor_host_values(L, t);
    for (int64_t i = 0; i < B; i++)
      tv[i] = v[n == 1 ? 0 : i];
    free(v);
  }
  lsdr_tensor *ts = lsdr_push_from_host(L, be, SDR_F32, 1, (int64_t[]){B}, tv);
  free(tv);
  lsdr_tensor *x = lsdr_push_float32(L, 2);
  lsdr_tensor *ctx = lsdr_push_float32(L, ctx_idx);
  if (x->storage->be != be || ctx->storage->be != be)
    return lsdr_error(L, "the tensors must be on the model's device (%s)", sdr_device_name(be->device));
  lua_createtable(L, 0, 1);
  lsdr_tensor *out = lsdr_push_new_tensor(
      L, be, SDR_F32, 4, (int64_t[]){B, u->model->cfg.out_channels, x->t.shape[2], x->t.shape[3]});
  int rc = sdr_unet_forward(u->model, &u->arena, &out->t, &x->t, &ts->t, &ctx->t);
  sdr_arena_reset(&u->arena);
  if (rc != 0)
    return lsdr_engine_error(L);
  lua_setfield(L, -2, "sample");
  return 1;
}

static int unet_properties(lua_State *L) {
  lsdr_unet *u = check_unet(L, 1);
  const char *k = lua_tostring(L, 2);
  if (k && strcmp(k, "config") == 0) {
    const sdr_unet_config *c = &u->model->cfg;
    lua_createtable(L, 0, 12);
    int t = lua_gettop(L);
    lsdr_set_int(L, t, "in_channels", c->in_channels);
    lsdr_set_int(L, t, "out_channels", c->out_channels);
    lsdr_set_int(L, t, "sample_size", c->sample_size);
    lsdr_set_int_list(L, t, "block_out_channels", c->block_out_channels, c->nblocks);
    lsdr_set_int_list(L, t, "layers_per_block", c->layers_per_block, c->nblocks);
    lsdr_set_int_list(L, t, "attention_head_dim", c->heads, c->nblocks);
    lsdr_set_int_list(L, t, "cross_attention_dim", c->cross_attention_dim, c->nblocks);
    lsdr_set_int(L, t, "norm_num_groups", c->norm_num_groups);
    lsdr_set_num(L, t, "norm_eps", c->norm_eps);
    lua_pushboolean(L, c->use_linear_projection);
    lua_setfield(L, t, "use_linear_projection");
    return 1;
  }
  if (k && strcmp(k, "device") == 0) {
    lua_pushstring(L, sdr_device_name(u->model->be->device));
    return 1;
  }
  return 0;
}

static int unet_tostring(lua_State *L) {
  lsdr_unet *u = luaL_checkudata(L, 1, LSDR_UNET);
  if (!u->loaded)
    lua_pushliteral(L, "<UNet2DConditionModel (closed)>");
  else
    lua_pushfstring(L, "<UNet2DConditionModel %d blocks, %d channels at the top, on %s>",
                    u->model->cfg.nblocks, u->model->cfg.block_out_channels[0],
                    sdr_device_name(u->model->be->device));
  return 1;
}

static const lsdr_param call_options[] = {
    {"encoder_hidden_states", "Tensor", NULL, "the text embeddings (batch, tokens, width)"},
    {"return_dict", "boolean", "true", "accepted for diffusers' sake; the result is always a table"},
    {0}};

static const lsdr_func methods[] = {
    {"UNet2DConditionModel:__call", unet_call,
     "Predicts the noise: unet(latents, t, {encoder_hidden_states = e}).sample.",
     {{"sample", "Tensor"}, {"timestep", "number|Tensor"}, {"opts", "table"}},
     call_options},
    {0}};

static const lsdr_func class_funcs[] = {
    {"UNet2DConditionModel.from_pretrained", from_pretrained,
     "Loads a UNet from a folder (diffusers' layout).",
     {{"path", "string"}, {"opts", "table", "nil"}},
     lsdr_from_pretrained_options},
    {0}};

void lsdr_open_unet(lua_State *L) {
  lsdr_model_metatable(L, LSDR_UNET, methods, unet_properties, unet_gc, unet_tostring);
  lua_newtable(L);
  lsdr_register(L, -1, class_funcs);
  lua_setglobal(L, "UNet2DConditionModel");
}

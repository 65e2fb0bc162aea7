/* bindings/t2i_adapter.c — T2IAdapter.from_pretrained and adapter(pictures), the features a
 * UNet call takes as down_intrablock_additional_residuals, as diffusers' T2I-Adapter
 * notebooks use them. */
#include "bindings/t2i_adapter.h"

#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/lsdr.h"
#include "bindings/model_common.h"
#include "bindings/pipeline_internal.h" // lsdr_host_values
#include "bindings/tensor.h"
#include "engine/error.h"

static void free_adapter(void *m) { sdr_t2i_adapter_free(m); }

static int load_adapter(void *m, sdr_backend *be, const char *dir, const char *variant, int keep) {
  return sdr_t2i_adapter_load(m, be, dir, variant, keep);
}

static int from_pretrained(lua_State *L) {
  return lsdr_model_from_pretrained(L, LSDR_T2I_ADAPTER, sizeof(sdr_t2i_adapter), load_adapter,
                                    free_adapter);
}

void lsdr_push_t2i_adapter_from(lua_State *L, const char *dir, const char *variant, int keep) {
  lsdr_model_push_loaded(L, LSDR_T2I_ADAPTER, sizeof(sdr_t2i_adapter), load_adapter, free_adapter,
                         dir, variant, keep);
}

sdr_t2i_adapter *lsdr_to_t2i_adapter(lua_State *L, int idx) {
  lsdr_model_box *b = luaL_testudata(L, idx, LSDR_T2I_ADAPTER);
  return b && lsdr_model_box_open(b) ? b->model : NULL;
}

sdr_t2i_adapter *lsdr_t2i_adapter_on(lua_State *L, int idx, sdr_backend *be, int keep_dtype) {
  lsdr_model_box *b = lsdr_model_box_check(L, idx, LSDR_T2I_ADAPTER);
  sdr_t2i_adapter *a = b->model;
  /* the CPU computes in float32 whatever the weights are kept in */
  if (a->be == be && (be->device == SDR_DEVICE_CPU || a->weights.keep_dtype == keep_dtype))
    return a;
  sdr_t2i_adapter *moved = calloc(1, sizeof *moved);
  if (!moved)
    luaL_error(L, "out of memory");
  if (sdr_t2i_adapter_copy_to(moved, a, be, keep_dtype) != 0) {
    free(moved);
    lsdr_engine_error(L);
  }
  sdr_t2i_adapter_free(a);
  free(b->own);
  b->own = b->model = moved;
  lsdr_model_box_follow(b, be);
  return moved;
}

/* adapter(x) -> {features...}: x (B, in_channels, H, W), float32 copies the caller keeps */
static int adapter_call(lua_State *L) {
  lsdr_args(L);
  lsdr_model_box *box = lsdr_model_box_check(L, 1, LSDR_T2I_ADAPTER);
  sdr_t2i_adapter *ad = box->model;
  lsdr_model_box_follow(box, ad->be);
  lsdr_tensor *x = lsdr_to_tensor(L, 2);
  if (!x || x->t.ndim != 4)
    return lsdr_argerror(L, 1, "a (batch, channels, height, width) tensor");
  int64_t shape[4];
  memcpy(shape, x->t.shape, sizeof shape);
  const float *v = lsdr_host_values(L, 2);
  sdr_tensor features[SDR_ADAPTER_MAX_FEATURES];
  sdr_arena *a = &box->arena;
  if (sdr_t2i_adapter_forward(ad, a, v, shape, features) != 0) {
    sdr_arena_reset(a);
    return lsdr_engine_error(L);
  }
  lua_createtable(L, ad->nblocks, 0);
  int rc = 0;
  for (int i = 0; i < ad->nblocks && rc == 0; i++) {
    lsdr_tensor *t = lsdr_push_new_tensor(L, ad->be, SDR_F32, 4, features[i].shape);
    rc = sdr_cast(ad->be, &t->t, &features[i]);
    lua_rawseti(L, -2, i + 1);
  }
  sdr_arena_reset(a);
  if (rc != 0)
    return lsdr_engine_error(L);
  return 1;
}

static const char *type_name(sdr_adapter_type t) {
  return t == SDR_ADAPTER_FULL      ? "full_adapter"
         : t == SDR_ADAPTER_FULL_XL ? "full_adapter_xl"
                                    : "light_adapter";
}

static int adapter_properties(lua_State *L) {
  lsdr_model_box *box = lsdr_model_box_check(L, 1, LSDR_T2I_ADAPTER);
  const sdr_t2i_adapter *ad = box->model;
  const sdr_t2i_adapter_config *c = &ad->cfg;
  const char *k = lua_tostring(L, 2);
  if (k && strcmp(k, "config") == 0) {
    lua_createtable(L, 0, 5);
    int t = lua_gettop(L);
    lsdr_set_int(L, t, "in_channels", c->in_channels);
    lsdr_set_int_list(L, t, "channels", c->channels, c->nchannels);
    lsdr_set_int(L, t, "num_res_blocks", c->num_res_blocks);
    lsdr_set_int(L, t, "downscale_factor", c->downscale_factor);
    lsdr_set_str(L, t, "adapter_type", type_name(c->type));
    return 1;
  }
  if (k && strcmp(k, "downscale_factor") == 0) {
    lua_pushinteger(L, c->downscale_factor);
    return 1;
  }
  if (k && strcmp(k, "total_downscale_factor") == 0) {
    lua_pushinteger(L, sdr_t2i_adapter_total_downscale(ad));
    return 1;
  }
  if (k && strcmp(k, "device") == 0) {
    lsdr_push_device(L, ad->be->device);
    return 1;
  }
  if (k && strcmp(k, "dtype") == 0) {
    lsdr_push_model_dtype(L, &ad->weights);
    return 1;
  }
  return 0;
}

static int adapter_tostring(lua_State *L) {
  lsdr_model_box *b = luaL_checkudata(L, 1, LSDR_T2I_ADAPTER);
  if (!lsdr_model_box_open(b)) {
    lua_pushliteral(L, "<T2IAdapter (closed)>");
    return 1;
  }
  const sdr_t2i_adapter *a = b->model;
  lua_pushfstring(L, "<T2IAdapter %s, %d features, %d input channels, on %s>",
                  type_name(a->cfg.type), a->nblocks, a->cfg.in_channels,
                  sdr_device_name(a->be->device));
  return 1;
}

/* ---- MultiAdapter: {adapters = {...}} with its own name ----------------------------- */

int lsdr_is_multi_adapter(lua_State *L, int idx) {
  if (!lua_istable(L, idx) || !lua_getmetatable(L, idx))
    return 0;
  luaL_getmetatable(L, LSDR_MULTI_ADAPTER);
  const int is = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return is;
}

void lsdr_push_multi_adapter(lua_State *L, int list) {
  list = lua_absindex(L, list);
  const int n = lua_istable(L, list) ? (int)lua_rawlen(L, list) : 0;
  if (n < 1)
    lsdr_error(L, "MultiAdapter: Expecting at least one adapter");
  if (n == 1)
    lsdr_error(L, "MultiAdapter: For a single adapter, please use the `T2IAdapter` class instead "
                  "of `MultiAdapter`");
  lua_createtable(L, 0, 1);
  lua_createtable(L, n, 0);
  const sdr_t2i_adapter *first = NULL;
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    const sdr_t2i_adapter *a = lsdr_to_t2i_adapter(L, -1);
    if (!a)
      lsdr_error(L, "MultiAdapter: entry %d is a %s, not an open T2IAdapter", i,
                 lsdr_typename(L, -1));
    if (!first)
      first = a;
    else if (a->cfg.downscale_factor != first->cfg.downscale_factor ||
             sdr_t2i_adapter_total_downscale(a) != sdr_t2i_adapter_total_downscale(first))
      lsdr_error(L,
                 "MultiAdapter: Expecting all adapters to have the same downscaling behavior, "
                 "but adapters[0] has downscale_factor %d (total %d), adapter[%d] %d (total %d)",
                 first->cfg.downscale_factor, sdr_t2i_adapter_total_downscale(first), i - 1,
                 a->cfg.downscale_factor, sdr_t2i_adapter_total_downscale(a));
    lua_rawseti(L, -2, i);
  }
  lua_setfield(L, -2, "adapters");
  luaL_setmetatable(L, LSDR_MULTI_ADAPTER);
}

static int multi_new(lua_State *L) {
  lsdr_args(L);
  lsdr_push_multi_adapter(L, 2);
  return 1;
}

static int multi_tostring(lua_State *L) {
  lua_getfield(L, 1, "adapters");
  lua_pushfstring(L, "<MultiAdapter of %d>", (int)lua_rawlen(L, -1));
  return 1;
}

static const lsdr_func multi_funcs[] = {
    {"MultiAdapter.__call",
     multi_new,
     "Several T2I-Adapters whose features add up, each weighted by its "
     "adapter_conditioning_scale: MultiAdapter{a, b} (a list given to a pipeline makes one).",
     {{"cls", "table"}, {"adapters", "table"}}},
    {0}};

static int adapter_save_pretrained(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  sdr_t2i_adapter *a = lsdr_model_box_check(L, 1, LSDR_T2I_ADAPTER)->model;
  return lsdr_model_save_pretrained(L, &a->weights, "diffusion_pytorch_model");
}

static const lsdr_func methods[] = {
    {"T2IAdapter:to",
     lsdr_model_to,
     "The model itself for memory_format (or its own device).",
     {{"target", "string|table"}, {"dtype", "any", "nil"}}},
    {"T2IAdapter:__call",
     adapter_call,
     "The features of control pictures (batch, in_channels, H, W) in [0, 1], one per UNet down "
     "block: unet(x, t, {down_intrablock_additional_residuals = adapter(image)}).",
     {{"x", "Tensor"}}},
    {"T2IAdapter:save_pretrained",
     adapter_save_pretrained,
     "Writes config.json and the weights (.safetensors) into a folder, as diffusers does.",
     {{"save_directory", "string"}, {"opts", "table", "nil"}},
     lsdr_save_pretrained_options},
    {0}};

static const lsdr_func class_funcs[] = {{"T2IAdapter.from_pretrained",
                                         from_pretrained,
                                         "Loads a T2I-Adapter from a folder (diffusers' layout) "
                                         "or a hub repo id (e.g. "
                                         "TencentARC/t2iadapter_sketch_sd15v2).",
                                         {{"path", "string"}, {"opts", "table", "nil"}},
                                         lsdr_from_pretrained_options},
                                        {0}};

void lsdr_open_t2i_adapter(lua_State *L) {
  lsdr_model_metatable(L, LSDR_T2I_ADAPTER, methods, adapter_properties, lsdr_model_box_gc,
                       adapter_tostring);
  lsdr_set_class(L, "T2IAdapter", class_funcs);

  luaL_newmetatable(L, LSDR_MULTI_ADAPTER);
  lua_pushcfunction(L, multi_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushstring(L, LSDR_MULTI_ADAPTER);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  lsdr_set_class(L, LSDR_MULTI_ADAPTER, multi_funcs); /* MultiAdapter{a, b} */
}

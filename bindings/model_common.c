/* bindings/model_common.c — shared parts of the model bindings. */
#include "bindings/model_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>

#include "bindings/hub.h"    // lsdr_hub_resolve, LSDR_HUB_PARAMS
#include "bindings/tensor.h" // lsdr_to_dtype
#include "kernels/dtype.h"

const lsdr_param lsdr_from_pretrained_options[] = {
    {"subfolder", "string", "nil", "e.g. \"unet\" inside a pipeline folder"},
    {"torch_dtype", "table|string", "nil", "dtype the weights are kept in (as stored when nil)"},
    {"variant", "string", "nil", "e.g. \"fp16\" for ...fp16.safetensors"},
    LSDR_HUB_PARAMS,
    {0}};

void lsdr_pretrained_read(lua_State *L, lsdr_pretrained *p) {
  const char *path = lsdr_hub_resolve(L, 1, 2, SDR_HUB_MODEL); /* a folder, or a repo id */
  lua_getfield(L, 2, "subfolder");
  const char *sub = lua_tostring(L, -1);
  snprintf(p->dir, sizeof p->dir, "%s%s%s", path, sub && *sub ? "/" : "", sub ? sub : "");
  lua_pop(L, 2);
  lua_getfield(L, 2, "variant");
  p->variant = lua_tostring(L, -1); /* the options table keeps the string alive */
  lua_pop(L, 1);
  lua_getfield(L, 2, "torch_dtype");
  p->keep_dtype = -1;
  if (!lua_isnil(L, -1)) {
    p->keep_dtype = lsdr_to_dtype(L, -1);
    if (p->keep_dtype != SDR_F32 && p->keep_dtype != SDR_F16 && p->keep_dtype != SDR_BF16)
      lsdr_error(L,
                 "option 'torch_dtype': torch.float32, torch.float16 or torch.bfloat16 expected");
  }
  lua_pop(L, 1);
  struct stat st;
  if (stat(p->dir, &st) != 0 || !S_ISDIR(st.st_mode))
    lsdr_error(L, "no model folder at %s", p->dir);
}

lsdr_model_box *lsdr_model_box_new(lua_State *L, const char *tname, size_t size) {
  lsdr_model_box *b = lua_newuserdatauv(L, sizeof *b, 1);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, tname);
  if (size > 0 && !(b->own = calloc(1, size)))
    luaL_error(L, "out of memory");
  return b;
}

void lsdr_model_box_ready(lsdr_model_box *b, sdr_backend *be, void (*free_own)(void *model)) {
  b->model = b->own;
  b->be = be;
  b->free_own = free_own;
  sdr_arena_init(&b->arena, be);
  b->loaded = 1;
}

void lsdr_model_box_push_ref(lua_State *L, const char *tname, void *model, sdr_backend *be,
                             int owner) {
  owner = lua_absindex(L, owner);
  lsdr_model_box *b = lsdr_model_box_new(L, tname, 0);
  b->model = model;
  b->be = be;
  sdr_arena_init(&b->arena, be);
  b->loaded = 1;
  lua_pushvalue(L, owner);
  lua_setiuservalue(L, -2, 1);
}

void lsdr_model_box_follow(lsdr_model_box *b, sdr_backend *be) {
  if (b->be == be)
    return;
  sdr_arena_free(&b->arena);
  sdr_arena_init(&b->arena, be);
  b->be = be;
}

int lsdr_model_box_open(const lsdr_model_box *b) {
  return b->loaded && (!b->owner_loaded || *b->owner_loaded);
}

lsdr_model_box *lsdr_model_box_check(lua_State *L, int idx, const char *tname) {
  lsdr_model_box *b = luaL_checkudata(L, idx, tname);
  if (!b->loaded)
    luaL_error(L, "%s: this model was closed", tname);
  if (b->owner_loaded && !*b->owner_loaded)
    luaL_error(L, "%s: the pipeline it belongs to was closed", tname);
  return b;
}

void lsdr_model_push_loaded(lua_State *L, const char *tname, size_t size, lsdr_model_load_fn load,
                            void (*free_own)(void *model), const char *dir, const char *variant,
                            int keep_dtype) {
  sdr_backend *be = lsdr_backend(L, SDR_DEVICE_CPU);
  lsdr_model_box *b = lsdr_model_box_new(L, tname, size);
  /* The CPU computes in float32; weights stay as torch_dtype says (as stored when nil). */
  if (load(b->own, be, dir, variant, keep_dtype) != 0)
    lsdr_engine_error(L);
  lsdr_model_box_ready(b, be, free_own);
}

int lsdr_model_from_pretrained(lua_State *L, const char *tname, size_t size,
                               lsdr_model_load_fn load, void (*free_own)(void *model)) {
  lsdr_args(L);
  lsdr_options(L, 2);
  lsdr_pretrained p;
  lsdr_pretrained_read(L, &p);
  lsdr_model_push_loaded(L, tname, size, load, free_own, p.dir, p.variant, p.keep_dtype);
  return 1;
}

int lsdr_model_box_gc(lua_State *L) {
  lsdr_model_box *b = lua_touserdata(L, 1);
  if (!b)
    return 0;
  if (b->loaded) {
    sdr_arena_free(&b->arena);
    if (b->free_own)
      b->free_own(b->model);
    b->loaded = 0;
  }
  free(b->own); /* also when loading failed halfway */
  b->own = NULL;
  return 0;
}

static int model_index(lua_State *L) {
  lua_getmetatable(L, 1);
  if (lua_getfield(L, -1, "__methods") == LUA_TTABLE && lua_type(L, 2) == LUA_TSTRING &&
      lua_getfield(L, -1, lua_tostring(L, 2)) != LUA_TNIL)
    return 1;
  lua_settop(L, 2);
  lua_CFunction extra = lua_tocfunction(L, lua_upvalueindex(1));
  return extra ? extra(L) : 0;
}

int lsdr_model_to(lua_State *L) {
  const char *tname = NULL;
  if (lua_getmetatable(L, 1)) {
    lua_getfield(L, -1, "__name");
    tname = lua_tostring(L, -1);
    lua_pop(L, 2);
  }
  if (!tname)
    return lsdr_argerror(L, 0, "a model");
  lsdr_model_box *b = lsdr_model_box_check(L, 1, tname);
  const char *device = NULL;
  int dtype = -1;
  if (lua_istable(L, 2) && lsdr_to_dtype(L, 2) < 0) { /* {device, dtype, memory_format} */
    lua_getfield(L, 2, "device");
    device = lua_tostring(L, -1);
    lua_getfield(L, 2, "dtype");
    dtype = lua_isnil(L, -1) ? -1 : lsdr_to_dtype(L, -1);
    lua_pop(L, 2);
  } else {
    for (int i = 2; i <= lua_gettop(L); i++) {
      if (lua_type(L, i) == LUA_TSTRING)
        device = lua_tostring(L, i);
      else if (lsdr_to_dtype(L, i) >= 0)
        dtype = lsdr_to_dtype(L, i);
    }
  }
  int d = device ? lsdr_parse_device(device) : (int)b->be->device;
  if (d < 0)
    return lsdr_error(L, "%s:to: unknown device '%s' (\"cpu\" or \"cuda\")", tname, device);
  if (d != (int)b->be->device || dtype >= 0)
    return lsdr_error(L,
                      "%s:to: one model does not move or change dtype here; move a pipeline's "
                      "models together with pipe:to(\"%s\"), or load with torch_dtype",
                      tname, sdr_device_name((sdr_device)d));
  lua_settop(L, 1); /* memory_format, or where it already is: the model itself */
  return 1;
}

void lsdr_model_metatable(lua_State *L, const char *name, const lsdr_func *methods,
                          lua_CFunction index_extra, lua_CFunction gc, lua_CFunction tostring) {
  luaL_newmetatable(L, name);
  lua_newtable(L);
  lsdr_register(L, -1, methods);
  if (lua_getfield(L, -1, "__call") != LUA_TNIL) {
    lua_setfield(L, -3, "__call");
    lua_pushnil(L);
    lua_setfield(L, -2, "__call");
  } else {
    lua_pop(L, 1);
  }
  /* __fields starts as a copy: types add their properties to it, not to the methods. */
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, -3)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  lua_setfield(L, -3, "__fields");
  lua_setfield(L, -2, "__methods");
  lua_pushcfunction(L, index_extra);
  lua_pushcclosure(L, model_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}

void lsdr_push_model_dtype(lua_State *L, const sdr_weights *w) {
  lsdr_push_dtype(L, w->keep_dtype >= 0 ? (sdr_dtype)w->keep_dtype : SDR_F32);
}

void lsdr_set_int(lua_State *L, int t, const char *key, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, t, key);
}

void lsdr_set_num(lua_State *L, int t, const char *key, lua_Number v) {
  lua_pushnumber(L, v);
  lua_setfield(L, t, key);
}

void lsdr_set_str(lua_State *L, int t, const char *key, const char *v) {
  lua_pushstring(L, v);
  lua_setfield(L, t, key);
}

void lsdr_set_int_list(lua_State *L, int t, const char *key, const int *v, int n) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushinteger(L, v[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, t, key);
}

/* __index of an output: integer k -> the k-th present field (upvalue 1: the names). */
static int output_index(lua_State *L) {
  if (!lua_isinteger(L, 2))
    return 0;
  lua_Integer k = lua_tointeger(L, 2), seen = 0;
  lua_Integer n = (lua_Integer)lua_rawlen(L, lua_upvalueindex(1));
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, lua_upvalueindex(1), i);
    if (lua_rawget(L, 1) != LUA_TNIL && ++seen == k)
      return 1;
    lua_pop(L, 1);
  }
  return 0;
}

void lsdr_output_kind(lua_State *L, int t, const char *tname, const char *const *fields) {
  t = lua_absindex(L, t);
  if (luaL_newmetatable(L, tname)) {
    lua_newtable(L);
    for (int i = 0; fields[i]; i++) {
      lua_pushstring(L, fields[i]);
      lua_rawseti(L, -2, i + 1);
    }
    lua_pushcclosure(L, output_index, 1);
    lua_setfield(L, -2, "__index");
  }
  lua_setmetatable(L, t);
}

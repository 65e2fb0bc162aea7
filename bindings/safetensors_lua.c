/* bindings/safetensors_lua.c — the global `safetensors`: safetensors.torch.load_file and
 * save_file, as notebooks read an SDXL embedding's two halves
 * (`state_dict = load_file(path)`, then state_dict.clip_g and state_dict.clip_l) or keep
 * tensors between sessions. The file is checked as the model loaders check it
 * (engine/safetensors.h); a save goes to a temporary file renamed over the target, so a
 * failed one leaves what was there. */
#include "bindings/safetensors_lua.h"

#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/lsdr.h"
#include "bindings/tensor.h"
#include "engine/safetensors.h"

static int file_gc(lua_State *L) {
  sdr_safetensors **st = lua_touserdata(L, 1);
  if (*st)
    sdr_safetensors_close(*st);
  *st = NULL;
  return 0;
}

/* safetensors.torch.load_file(filename, device): {name = Tensor, ...} */
static int load_file(lua_State *L) {
  lsdr_args(L);
  const char *path = lua_tostring(L, 1);
  const int dev = lsdr_parse_device(lua_tostring(L, 2));
  if (dev < 0)
    return lsdr_error(L, "argument 2 (device): \"cpu\" or \"cuda\" expected");
  sdr_safetensors **st = lua_newuserdatauv(L, sizeof *st, 0);
  *st = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, file_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  if (!(*st = sdr_safetensors_open(path)))
    return lsdr_engine_error(L);
  sdr_backend *be = lsdr_backend(L, (sdr_device)dev);
  const size_t n = sdr_safetensors_count(*st);
  lua_createtable(L, 0, (int)n);
  for (size_t i = 0; i < n; i++) {
    const sdr_st_tensor *t = sdr_safetensors_at(*st, i);
    if (t->ndim > SDR_MAX_DIMS)
      return lsdr_error(L, "%s: '%s' has %d dimensions; tensors have at most %d", path, t->name,
                        t->ndim, SDR_MAX_DIMS);
    lsdr_tensor *out = lsdr_push_new_tensor(L, be, t->dtype, t->ndim, t->shape);
    if (sdr_upload(be, out->t.data, t->data, t->nbytes) != 0)
      return lsdr_engine_error(L);
    lua_setfield(L, -2, t->name);
  }
  sdr_safetensors_close(*st);
  *st = NULL;
  return 1;
}

/* What save_file holds while it writes: the names and the host copies. */
typedef struct save_list {
  sdr_st_tensor *t;
  size_t n;
} save_list;

static int save_gc(lua_State *L) {
  save_list *s = lua_touserdata(L, 1);
  for (size_t i = 0; s->t && i < s->n; i++)
    free((void *)s->t[i].data);
  free(s->t);
  s->t = NULL;
  return 0;
}

/* safetensors.torch.save_file(tensors, filename, metadata): every name = Tensor of the table,
 * laid out as the Python library lays them out, with metadata's string pairs. */
static int save_file(lua_State *L) {
  lsdr_args(L);
  const char *path = lua_tostring(L, 2);
  save_list *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, save_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  size_t cap = 0;
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lsdr_tensor *t = lsdr_to_tensor(L, -1);
    if (lua_type(L, -2) != LUA_TSTRING || !t)
      return lsdr_error(L,
                        "argument 1 (tensors): names mapped to tensors expected; found a %s "
                        "key with a %s",
                        luaL_typename(L, -2), luaL_typename(L, -1));
    if (s->n == cap) {
      cap = cap ? 2 * cap : 16;
      sdr_st_tensor *grown = realloc(s->t, cap * sizeof *grown);
      if (!grown)
        return luaL_error(L, "out of memory");
      s->t = grown;
    }
    sdr_st_tensor *o = &s->t[s->n];
    memset(o, 0, sizeof *o);
    o->name = lua_tostring(L, -2); /* the table keeps the key */
    o->dtype = t->t.dtype;
    o->ndim = t->t.ndim;
    memcpy(o->shape, t->t.shape, (size_t)t->t.ndim * sizeof *o->shape);
    o->nbytes = sdr_tensor_nbytes(&t->t);
    void *host = malloc(o->nbytes ? o->nbytes : 1);
    if (!host)
      return luaL_error(L, "out of memory");
    o->data = host;
    s->n++;
    if (sdr_download(t->storage->be, host, t->t.data, o->nbytes) != 0)
      return lsdr_engine_error(L);
    lua_pop(L, 1);
  }
  /* metadata: {key = "value", ...}, strings only, as the library takes Dict[str, str] */
  int nmeta = 0;
  const char *keys[64], *values[64];
  if (lua_istable(L, 3)) {
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
        return lsdr_error(L, "argument 3 (metadata): string keys and string values expected");
      if (nmeta == 64)
        return lsdr_error(L, "argument 3 (metadata): at most 64 entries");
      keys[nmeta] = lua_tostring(L, -2); /* the table keeps both */
      values[nmeta++] = lua_tostring(L, -1);
      lua_pop(L, 1);
    }
  }
  if (sdr_safetensors_write_metadata(path, s->t, s->n, keys, values, (size_t)nmeta) != 0)
    return lsdr_engine_error(L);
  return 0;
}

static const lsdr_func funcs[] = {
    {"safetensors.torch.load_file",
     load_file,
     "Reads a .safetensors file into a table of name = Tensor (checked as the model loaders "
     "check it).",
     {{"filename", "string"}, {"device", "string", "\"cpu\""}}},
    {"safetensors.torch.save_file",
     save_file,
     "Writes a table of name = Tensor to a .safetensors file (whole or not at all).",
     {{"tensors", "table"}, {"filename", "string"}, {"metadata", "table", "nil"}}},
    {0}};

void lsdr_open_safetensors(lua_State *L) {
  lua_newtable(L);
  lua_newtable(L);
  lsdr_register(L, -1, funcs);
  lua_setfield(L, -2, "torch");
  lua_setglobal(L, "safetensors");
}

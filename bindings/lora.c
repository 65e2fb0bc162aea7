/* bindings/lora.c — diffusers' LoraLoaderMixin on a pipeline: pipe:load_lora_weights(...)
 * (a hub repo id, a folder, a file, or a state dict of tensors), fuse_lora, unfuse_lora,
 * unload_lora_weights, set_adapters, disable_lora, enable_lora, delete_adapters,
 * get_active_adapters, get_list_adapters (engine/lora.h keeps PEFT's state). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/hub.h" // lsdr_hub_resolve
#include "bindings/lsdr.h"
#include "bindings/pipeline_internal.h" // lsdr_test_pipe
#include "bindings/tensor.h"
#include "bindings/tensor_internal.h" // lsdr_tensor_host_values
#include "engine/error.h"
#include "engine/lora.h"

/* The state dict read into a Lua userdata, so an error on the way frees it. */
static int file_gc(lua_State *L) {
  sdr_lora_file_free(lua_touserdata(L, 1));
  return 0;
}

static sdr_lora_file *push_file(lua_State *L) {
  sdr_lora_file *f = lua_newuserdatauv(L, sizeof *f, 0);
  memset(f, 0, sizeof *f);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, file_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  return f;
}

/* {name = Tensor, ...} as a state dict (keys sorted: a Lua table keeps no order). */
static void from_table(lua_State *L, int idx, sdr_lora_file *f) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lsdr_tensor *t = lsdr_to_tensor(L, -1);
    if (lua_type(L, -2) != LUA_TSTRING || !t)
      lsdr_error(L,
                 "argument 1 (pretrained_model_name_or_path_or_dict): a state dict maps "
                 "names to tensors; found a %s key with a %s",
                 luaL_typename(L, -2), luaL_typename(L, -1));
    if (t->t.ndim > 4)
      lsdr_error(L, "argument 1: LoRA tensor '%s' has %d dimensions", lua_tostring(L, -2),
                 t->t.ndim);
    float *fv = lsdr_tensor_host_floats(L, t);
    int rc = sdr_lora_file_add(f, lua_tostring(L, -2), t->t.ndim, t->t.shape, fv);
    free(fv);
    if (rc != 0)
      lsdr_engine_error(L);
    lua_pop(L, 1);
  }
  sdr_lora_file_sort(f);
}

/* A folder's file as lora_state_dict picks it: weight_name, else the one .safetensors
 * (pytorch_lora_weights.safetensors first), else the one .bin. Pushes the path. */
static const char *folder_file(lua_State *L, const char *dir, const char *weight_name, int use_st) {
  if (weight_name) {
    lua_pushfstring(L, "%s/%s", dir, weight_name);
    if (!lsdr_is_file(lua_tostring(L, -1)))
      lsdr_error(L, "Error no file named %s found in directory %s.", weight_name, dir);
    return lua_tostring(L, -1);
  }
  DIR *d = opendir(dir);
  if (!d)
    lsdr_error(L, "argument 1: cannot read the folder %s", dir);
  const char **names = NULL;
  size_t n = 0;
  struct dirent *e;
  int top = lua_gettop(L);
  while ((e = readdir(d))) {
    const char **v = realloc(names, (n + 1) * sizeof *v);
    if (!v)
      break;
    names = v;
    lua_pushstring(L, e->d_name); /* kept on the stack while names point at it */
    names[n++] = lua_tostring(L, -1);
  }
  closedir(d);
  int pick = sdr_lora_choose_file(names, n, use_st);
  if (pick == -2) {
    free(names);
    lsdr_engine_error(L);
  }
  lua_pushfstring(L, "%s/%s", dir, pick >= 0 ? names[pick] : "pytorch_lora_weights.safetensors");
  free(names);
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
  if (!lsdr_is_file(lua_tostring(L, -1)))
    lsdr_error(L, "Error no file named pytorch_lora_weights.safetensors found in directory %s.",
               dir);
  return lua_tostring(L, -1);
}

/* The path a repo id, folder or file stands for (subfolder within); pushes it. */
static const char *source_path(lua_State *L, int src, int opts) {
  const char *name = lua_tostring(L, src);
  lua_getfield(L, opts, "weight_name");
  lua_getfield(L, opts, "subfolder");
  lua_getfield(L, opts, "use_safetensors");
  const char *weight_name = lua_tostring(L, -3), *sub = lua_tostring(L, -2);
  int use_st = lua_isnil(L, -1) ? -1 : lua_toboolean(L, -1);
  if (lsdr_is_file(name)) {
    lua_pushstring(L, name);
    return lua_tostring(L, -1);
  }
  const char *dir = name;
  if (!lsdr_is_dir(name)) {
    lua_createtable(L, 0, 8);
    int hub = lua_gettop(L);
    static const char *const keys[] = {"revision", "cache_dir",   "local_files_only", "subfolder",
                                       "token",    "weight_name", "use_safetensors",  NULL};
    for (int i = 0; keys[i]; i++) {
      lua_getfield(L, opts, keys[i]);
      lua_setfield(L, hub, keys[i]);
    }
    dir = lsdr_hub_resolve(L, src, hub, SDR_HUB_LORA);
  }
  if (sub && *sub) {
    lua_pushfstring(L, "%s/%s", dir, sub);
    dir = lua_tostring(L, -1);
  }
  return folder_file(L, dir, weight_name, use_st);
}

static void push_adapter_names(lua_State *L, const sdr_lora *l, sdr_lora_part part) {
  lua_newtable(L);
  int n = 0;
  for (int a = 0; a < l->nadapters; a++)
    if (l->adapters[a].name && l->adapters[a].part == part) {
      lua_pushstring(L, l->adapters[a].name);
      lua_rawseti(L, -2, ++n);
    }
}

/* The state's weights made again; a failure (out of GPU memory) is the call's error. */
static void apply(lua_State *L, sdr_pipeline *p) {
  sdr_lora_models lm = sdr_pipeline_lora_models(p);
  if (sdr_lora_apply(&p->lora, &lm) != 0)
    lsdr_engine_error(L);
}

const lsdr_param lsdr_lora_options[] = {
    {"adapter_name", "string", "nil", "the adapter's name (nil: default_<n>)"},
    {"weight_name", "string", "nil", "the file in the repo or folder (nil: its one LoRA file)"},
    {"subfolder", "string", "nil", "where the file is in the repo or folder"},
    {"use_safetensors", "boolean", "nil", "nil: .safetensors, else .bin"},
    {"revision", "string", "nil", "branch, tag or commit on the hub"},
    {"cache_dir", "string", "nil", "hub cache folder (default $HF_HUB_CACHE)"},
    {"local_files_only", "boolean", "false", "only the cache, never the network"},
    {"token", "string|boolean", "nil", "hub token"},
    {"low_cpu_mem_usage", "boolean", "nil", "accepted for diffusers' sake"},
    {0}};

int lsdr_pipe_load_lora_weights(lua_State *L) {
  lsdr_args(L);
  if (lua_isstring(L, 3) && !lua_isnumber(L, 3)) { /* load_lora_weights(path, "name") */
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, 3);
    lua_setfield(L, -2, "adapter_name");
    lua_replace(L, 3);
  }
  lsdr_options(L, 2);
  sdr_pipeline *p = lsdr_pipeline_models(L, 1);
  const int src = 2, opts = 3;
  sdr_lora_file *f = push_file(L);
  if (lua_istable(L, src) && !lsdr_to_tensor(L, src)) {
    from_table(L, src, f);
  } else if (lua_type(L, src) == LUA_TSTRING) {
    const char *path = source_path(L, src, opts);
    if (sdr_lora_file_read(path, f) != 0)
      lsdr_engine_error(L);
  } else {
    return lsdr_error(L,
                      "argument 1 (pretrained_model_name_or_path_or_dict): a repo id, "
                      "folder, file or state dict expected, got %s",
                      luaL_typename(L, src));
  }
  lua_getfield(L, opts, "adapter_name");
  const char *name = lua_tostring(L, -1);
  sdr_lora_models lm = sdr_pipeline_lora_models(p);
  char *warning = NULL;
  if (sdr_lora_load(&p->lora, &lm, f, name, &warning) != 0)
    return lsdr_engine_error(L);
  if (warning)
    fprintf(stderr, "warning: %s\n", warning);
  free(warning);
  apply(L, p);
  return 0;
}

/* adapter_names at idx: a string or a list, into names (the strings stay alive in the
 * argument); what: the argument's name for messages. */
static int read_names(lua_State *L, int idx, const char *what, const char **names, int cap) {
  if (lua_type(L, idx) == LUA_TSTRING) {
    names[0] = lua_tostring(L, idx);
    return 1;
  }
  if (!lua_istable(L, idx))
    return lsdr_error(L, "%s: an adapter name or a list of them expected, got %s", what,
                      luaL_typename(L, idx));
  int n = (int)lua_rawlen(L, idx);
  if (n > cap)
    return lsdr_error(L, "%s: at most %d adapters", what, cap);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, idx, i + 1);
    names[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
    if (!names[i])
      return lsdr_error(L, "%s: entry %d is not a string", what, i + 1);
  }
  return n;
}

int lsdr_pipe_fuse_lora(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 1);
  sdr_pipeline *p = lsdr_pipeline_models(L, 1);
  lua_getfield(L, 2, "fuse_unet");
  lua_getfield(L, 2, "fuse_text_encoder");
  lua_getfield(L, 2, "lora_scale");
  lua_getfield(L, 2, "safe_fusing");
  lua_getfield(L, 2, "adapter_names");
  /* fuse_text_encoder: both of SDXL's */
  const int te = lua_isnil(L, -4) || lua_toboolean(L, -4);
  int parts[SDR_LORA_NPARTS] = {lua_isnil(L, -5) || lua_toboolean(L, -5), te, te};
  double scale = lua_isnil(L, -3) ? 1.0 : lua_tonumber(L, -3);
  int safe = lua_toboolean(L, -2);
  const char *names[64];
  int given = !lua_isnil(L, -1);
  int n = given ? read_names(L, lua_gettop(L), "option 'adapter_names'", names, 64) : 0;
  if (sdr_lora_fuse(&p->lora, parts, scale, safe, given ? names : NULL, n) != 0)
    return lsdr_engine_error(L);
  apply(L, p);
  return 0;
}

int lsdr_pipe_unfuse_lora(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 1);
  sdr_pipeline *p = lsdr_pipeline_models(L, 1);
  lua_getfield(L, 2, "unfuse_unet");
  lua_getfield(L, 2, "unfuse_text_encoder");
  const int te = lua_isnil(L, -1) || lua_toboolean(L, -1);
  int parts[SDR_LORA_NPARTS] = {lua_isnil(L, -2) || lua_toboolean(L, -2), te, te};
  sdr_lora_unfuse(&p->lora, parts);
  apply(L, p);
  return 0;
}

int lsdr_pipe_unload_lora_weights(lua_State *L) {
  lsdr_args(L);
  sdr_pipeline *p = lsdr_pipeline_models(L, 1);
  sdr_lora_unload(&p->lora);
  apply(L, p);
  return 0;
}

int lsdr_pipe_set_adapters(lua_State *L) {
  lsdr_args(L);
  sdr_pipeline *p = lsdr_pipeline_models(L, 1);
  const char *names[64];
  double weights[64];
  int n = read_names(L, 2, "argument 1 (adapter_names)", names, 64);
  for (int i = 0; i < n; i++)
    weights[i] = 1.0;
  if (lua_isnumber(L, 3)) {
    for (int i = 0; i < n; i++)
      weights[i] = lua_tonumber(L, 3);
  } else if (lua_istable(L, 3)) {
    if ((int)lua_rawlen(L, 3) != n)
      return lsdr_error(L,
                        "Length of adapter names %d is not equal to the length of their "
                        "weights %d.",
                        n, (int)lua_rawlen(L, 3));
    for (int i = 0; i < n; i++) {
      lua_rawgeti(L, 3, i + 1);
      if (!lua_isnumber(L, -1))
        return lsdr_error(L, "argument 2 (adapter_weights): entry %d is not a number", i + 1);
      weights[i] = lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, 3)) {
    return lsdr_argerror(L, 2, "a number or a list of numbers");
  }
  if (sdr_lora_set_adapters(&p->lora, names, weights, n) != 0)
    return lsdr_engine_error(L);
  apply(L, p);
  return 0;
}

int lsdr_pipe_disable_lora(lua_State *L) {
  lsdr_args(L);
  sdr_pipeline *p = lsdr_pipeline_models(L, 1);
  sdr_lora_enable(&p->lora, 0);
  apply(L, p);
  return 0;
}

int lsdr_pipe_enable_lora(lua_State *L) {
  lsdr_args(L);
  sdr_pipeline *p = lsdr_pipeline_models(L, 1);
  sdr_lora_enable(&p->lora, 1);
  apply(L, p);
  return 0;
}

int lsdr_pipe_delete_adapters(lua_State *L) {
  lsdr_args(L);
  sdr_pipeline *p = lsdr_pipeline_models(L, 1);
  const char *names[64];
  int n = read_names(L, 2, "argument 1 (adapter_names)", names, 64);
  if (sdr_lora_delete(&p->lora, names, n) != 0)
    return lsdr_engine_error(L);
  apply(L, p);
  return 0;
}

int lsdr_pipe_get_active_adapters(lua_State *L) {
  lsdr_args(L);
  sdr_pipeline *p = lsdr_pipeline_models(L, 1);
  const char **names = sdr_lora_active(&p->lora);
  if (!names)
    return luaL_error(L, "out of memory");
  lua_newtable(L);
  for (int i = 0; names[i]; i++) {
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, i + 1);
  }
  free(names);
  return 1;
}

int lsdr_pipe_get_list_adapters(lua_State *L) {
  lsdr_args(L);
  sdr_pipeline *p = lsdr_pipeline_models(L, 1);
  lua_newtable(L);
  for (int part = 0; part < SDR_LORA_NPARTS; part++) {
    int any = 0;
    for (int a = 0; a < p->lora.nadapters; a++)
      any |= p->lora.adapters[a].name && p->lora.adapters[a].part == (sdr_lora_part)part;
    if (!any)
      continue;
    push_adapter_names(L, &p->lora, (sdr_lora_part)part);
    lua_setfield(L, -2, sdr_lora_part_names[part]);
  }
  return 1;
}

const lsdr_param lsdr_fuse_lora_options[] = {
    {"fuse_unet", "boolean", "true"},
    {"fuse_text_encoder", "boolean", "true"},
    {"lora_scale", "number", "1.0", "how much of the LoRA goes into the weights"},
    {"safe_fusing", "boolean", "false", "refuse an adapter with NaN values"},
    {"adapter_names", "string|table", "nil", "nil: the active adapters"},
    {0}};

const lsdr_param lsdr_unfuse_lora_options[] = {
    {"unfuse_unet", "boolean", "true"}, {"unfuse_text_encoder", "boolean", "true"}, {0}};

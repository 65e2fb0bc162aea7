/* bindings/torch_load.c — torch.load(path): what torch.save wrote (a .bin, .pt or .ckpt
 * state dict), read by the restricted unpickler that never runs anything
 * (engine/torch_file.h), as a table of name = Tensor on the CPU. */
#include <string.h>

#include <lauxlib.h>

#include "bindings/lsdr.h" // lsdr_args, lsdr_error, lsdr_engine_error
#include "bindings/tensor.h"
#include "bindings/tensor_internal.h" // lsdr_torch_load_options
#include "engine/torch_file.h"        // sdr_torch_file_open

/* The file stays open in a userdata while the tensors are copied, so a Lua error
 * partway closes it through __gc. */
static int file_gc(lua_State *L) {
  sdr_torch_file **f = lua_touserdata(L, 1);
  if (*f)
    sdr_torch_file_close(*f);
  *f = NULL;
  return 0;
}

const lsdr_param lsdr_torch_load_options[] = {
    {"map_location", "string", "nil", "\"cpu\" (nil) or \"cuda\": where the tensors go"},
    {"weights_only", "boolean", "nil", "accepted: nothing in the file is ever run here"},
    {0}};

int lsdr_torch_load(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  const char *path = lua_tostring(L, 1);
  sdr_torch_file **f = lua_newuserdatauv(L, sizeof *f, 0);
  *f = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, file_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  if (!(*f = sdr_torch_file_open(path)))
    return lsdr_engine_error(L);
  size_t n = sdr_torch_file_count(*f);
  if (n == 0)
    return lsdr_error(L,
                      "%s holds no tensors at its top level (%I other values; nested dicts "
                      "and objects are not read)",
                      path, (lua_Integer)sdr_torch_file_skipped(*f));
  /* map_location: "cpu" (what torch.save of CPU tensors gives back) or "cuda" */
  lua_getfield(L, 2, "map_location");
  int dev = lua_isnil(L, -1) ? SDR_DEVICE_CPU : lsdr_parse_device(lua_tostring(L, -1));
  lua_pop(L, 1);
  if (dev < 0)
    return lsdr_error(L, "option 'map_location': \"cpu\" or \"cuda\" expected");
  sdr_backend *be = lsdr_backend(L, (sdr_device)dev);
  lua_createtable(L, 0, (int)n);
  for (size_t i = 0; i < n; i++) {
    const sdr_st_tensor *t = sdr_torch_file_at(*f, i);
    if (t->ndim > SDR_MAX_DIMS)
      return lsdr_error(L, "%s: '%s' has %d dimensions; tensors have at most %d", path, t->name,
                        t->ndim, SDR_MAX_DIMS);
    lsdr_tensor *out = lsdr_push_new_tensor(L, be, t->dtype, t->ndim, t->shape);
    if (sdr_upload(be, out->t.data, t->data, sdr_tensor_nbytes(&out->t)) != 0)
      return lsdr_engine_error(L);
    lua_setfield(L, -2, t->name);
  }
  sdr_torch_file_close(*f);
  *f = NULL;
  return 1;
}

/* bindings/tensor_npy.c — torch.load_npy(path) and Tensor:save_npy(path). */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/lsdr.h" // lsdr_args, lsdr_error, lsdr_engine_error
#include "bindings/tensor.h"
#include "engine/error.h" // sdr_last_error
#include "bindings/tensor_internal.h"
#include "engine/npy.h" // sdr_npy_read, sdr_npy_write

/* The array being read lives in a userdata, so a Lua error while the tensor
 * is made (out of memory) frees it through __gc instead of leaking it. */
static int npy_guard_gc(lua_State *L) {
  sdr_npy_free(lua_touserdata(L, 1));
  return 0;
}

int lsdr_torch_load_npy(lua_State *L) {
  lsdr_args(L);
  sdr_npy *a = lua_newuserdatauv(L, sizeof *a, 0);
  memset(a, 0, sizeof *a);
  lua_newtable(L);
  lua_pushcfunction(L, npy_guard_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  if (sdr_npy_read(lua_tostring(L, 1), a) != 0)
    return lsdr_engine_error(L);
  if (a->ndim > SDR_MAX_DIMS)
    return lsdr_error(L, "%s has %d dimensions; tensors have at most %d", lua_tostring(L, 1),
                      a->ndim, SDR_MAX_DIMS);
  sdr_backend *be = lsdr_backend(L, SDR_DEVICE_CPU);
  lsdr_tensor *t = lsdr_push_new_tensor(L, be, a->dtype, a->ndim, a->shape);
  memcpy(t->t.data, a->data, a->count * sdr_dtype_size(a->dtype));
  sdr_npy_free(a);
  return 1;
}

int lsdr_tensor_save_npy(lua_State *L) {
  lsdr_args(L);
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  const void *host = t->t.data;
  void *copy = NULL;
  size_t bytes = sdr_tensor_nbytes(&t->t);
  if (t->t.device != SDR_DEVICE_CPU) {
    copy = malloc(bytes ? bytes : 1);
    if (!copy || sdr_download(t->storage->be, copy, t->t.data, bytes) != 0) {
      free(copy);
      return lsdr_error(L, "cannot read the tensor: %s", sdr_last_error());
    }
    host = copy;
  }
  if (t->t.dtype == SDR_BF16) {
    free(copy);
    return lsdr_error(L, "NumPy has no bfloat16; convert with :float() first");
  }
  int rc = sdr_npy_write(lua_tostring(L, 2), t->t.dtype, t->t.ndim, t->t.shape, host);
  free(copy);
  if (rc != 0)
    return lsdr_engine_error(L);
  return 0;
}

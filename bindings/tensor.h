/* bindings/tensor.h — torch.Tensor for Lua: tensors the user can make, look at and save.
 *
 * A Lua tensor owns a reference to a storage (memory on a backend) and is a
 * contiguous view into it, so chunk(), reshape() and t[i] share memory as in
 * torch. Indices and dimensions are 1-based, the Lua way (t[1] is the first
 * row, chunk(n, 1) splits the first dimension), as Torch7 had them.
 */
#ifndef SDR_BINDINGS_TENSOR_H
#define SDR_BINDINGS_TENSOR_H

#include <lua.h>

#include "kernels/backend.h" // sdr_backend, sdr_tensor

#define LSDR_TENSOR "Tensor"

typedef struct lsdr_storage {
  int refs;
  sdr_backend *be;
  void *data;
  size_t bytes;
} lsdr_storage;

typedef struct lsdr_tensor {
  sdr_tensor t;
  lsdr_storage *storage;
} lsdr_tensor;

/* The tensor at idx, or NULL / a Lua error naming the argument. */
lsdr_tensor *lsdr_to_tensor(lua_State *L, int idx);
lsdr_tensor *lsdr_check_tensor(lua_State *L, int idx);

/* Pushes a new tensor with its own (uninitialised) storage on be. */
lsdr_tensor *lsdr_push_new_tensor(lua_State *L, sdr_backend *be, sdr_dtype dtype, int ndim,
                                  const int64_t *shape);
/* Pushes a view of `of`'s storage (shares memory; keeps it alive). */
lsdr_tensor *lsdr_push_view(lua_State *L, const lsdr_tensor *of, sdr_tensor view);
/* Pushes a list of t's rows (its first dimension's) as views: how a tuple of tensors from
 * one block (transformers' hidden_states) comes out here. */
void lsdr_push_row_views(lua_State *L, const lsdr_tensor *t);

/* The backend of this Lua state for a device ("cpu", "cuda"); raises a Lua
 * error saying why when the device is not available. */
sdr_backend *lsdr_backend(lua_State *L, sdr_device device);
/* Pushes a device as torch prints one: "cpu" or "cuda:0" (a tensor's, a model's or a
 * pipeline's .device). */
void lsdr_push_device(lua_State *L, sdr_device d);
/* Parses "cpu", "cuda", "cuda:0"; -1 if not a device name. */
int lsdr_parse_device(const char *s);

/* torch.float16 and friends: pushes the dtype object; reads one (or a name) back. */
void lsdr_push_dtype(lua_State *L, sdr_dtype dtype);
int lsdr_to_dtype(lua_State *L, int idx); /* -1 when not a dtype */

void lsdr_open_tensor(lua_State *L); /* the Tensor metatable */
void lsdr_open_torch(lua_State *L);  /* the global torch */

#endif

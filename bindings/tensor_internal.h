/* bindings/tensor_internal.h — what the tensor files share and nobody else needs. */
#ifndef SDR_BINDINGS_TENSOR_INTERNAL_H
#define SDR_BINDINGS_TENSOR_INTERNAL_H

#include "bindings/tensor.h"

/* Copies a tensor's values to the host as float64 (malloc'd; a Lua error on failure). */
double *lsdr_tensor_host_values(lua_State *L, const lsdr_tensor *t);
/* Installs __index, arithmetic and the methods into the Tensor metatable. */
void lsdr_open_tensor_methods(lua_State *L);
/* A float32 copy of t on the same backend, or t itself when it is float32 already. */
lsdr_tensor *lsdr_push_float32(lua_State *L, int idx);
/* Pushes a tensor holding host values converted to dtype (values are float64). */
lsdr_tensor *lsdr_push_from_host(lua_State *L, sdr_backend *be, sdr_dtype dtype, int ndim,
                                 const int64_t *shape, const double *values);
/* Reads a shape given as a table {2, 3} or as numbers 2, 3 starting at index
 * first; returns the number of dimensions (a Lua error on bad entries). */
int lsdr_read_shape(lua_State *L, int first, int64_t *shape);
/* Tensor:save_npy(path) and torch.load_npy(path) (bindings/tensor_npy.c). */
int lsdr_tensor_save_npy(lua_State *L);
int lsdr_torch_load_npy(lua_State *L);

#endif

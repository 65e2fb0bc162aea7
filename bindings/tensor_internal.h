/* bindings/tensor_internal.h — what the tensor files share and nobody else needs. */
#ifndef SDR_BINDINGS_TENSOR_INTERNAL_H
#define SDR_BINDINGS_TENSOR_INTERNAL_H

#include "bindings/lsdr.h" // lsdr_func
#include "bindings/tensor.h"

/* Copies a tensor's values to the host as float64 (malloc'd; a Lua error on failure). */
double *lsdr_tensor_host_values(lua_State *L, const lsdr_tensor *t);
/* The same as float32 (the values the engine's loaders take). */
float *lsdr_tensor_host_floats(lua_State *L, const lsdr_tensor *t);
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
/* torch.load(path, {map_location, weights_only}) (bindings/torch_load.c). */
int lsdr_torch_load(lua_State *L);
extern const lsdr_param lsdr_torch_load_options[];

/* A copy of the tensor at idx in another dtype, on its backend. */
lsdr_tensor *lsdr_push_cast(lua_State *L, int idx, sdr_dtype to);
/* Pushes a op b (tensors or numbers at indices a and b, float dtypes, broadcast)
 * through the backend's binary op; errors start with `name` ("Tensor +"). */
int lsdr_tensor_arith(lua_State *L, int a, int b, sdr_binary_op op, const char *name);
/* A 1-based dimension (negative counts from the end) of an ndim-d tensor as a
 * 0-based index; a Lua error naming the binding when out of range. */
int lsdr_dim_index(lua_State *L, lua_Integer dim, int ndim);

/* Tables registered by lsdr_open_tensor_methods (methods) and lsdr_open_torch
 * (module functions): bindings/tensor_shape.c, bindings/tensor_math.c, and the
 * function forms of tensor_methods.c's methods (torch.exp(t) as t:exp()). */
/* Sets the Tensor metatable's __pow (t ^ x, torch's t ** x; bindings/tensor_math.c). */
void lsdr_tensor_math_meta(lua_State *L, int meta_idx);
extern const lsdr_func lsdr_tensor_shape_methods[];
extern const lsdr_func lsdr_tensor_math_methods[];
extern const lsdr_func lsdr_torch_shape_funcs[];
extern const lsdr_func lsdr_torch_math_funcs[];
extern const lsdr_func lsdr_torch_method_funcs[];

#endif

/* bindings/torch.c — the global `torch`: making tensors, random numbers, dtypes, devices.
 *
 * Named as torch names them; a shape is a table {1, 4, 64, 64} or numbers
 * (torch.randn(1, 4, 64, 64)); keyword arguments go in a trailing table
 * (torch.randn({1, 4, 64, 64}, {generator = g, dtype = torch.float16})).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/cuda_device.h" // lsdr_cuda_device_get
#include "bindings/generator.h" // lsdr_open_generator, lsdr_default_generator, lsdr_to_generator
#include "bindings/lsdr.h"      // lsdr_register, lsdr_options, lsdr_error
#include "bindings/tensor.h"
#include "bindings/tensor_internal.h" // lsdr_read_shape, lsdr_push_from_host
#include "engine/generator_device.h"  // sdr_generator_fill

/* ---- shape and options, read the torch way ----------------------------- */

/* Reads the shape starting at index 1 and returns the index of the options
 * table after it (which lsdr_options then checks and fills). */
static int shape_and_options(lua_State *L, int64_t *shape, int *ndim) {
  if (!lua_istable(L, 1) && lua_type(L, 1) != LUA_TNUMBER)
    lsdr_argerror(L, 1, "a shape (table or integers)");
  *ndim = lsdr_read_shape(L, 1, shape);
  for (int i = 0; i < *ndim; i++)
    if (shape[i] < 0)
      lsdr_error(L, "negative dimension %I in the shape", (lua_Integer)shape[i]);
  int opts = lua_istable(L, 1) ? 2 : *ndim + 1;
  if (lua_gettop(L) > opts)
    lsdr_error(L, "unexpected argument %d after the options table", opts + 1);
  lua_settop(L, opts);
  lsdr_options(L, opts);
  return opts;
}

static sdr_dtype option_dtype(lua_State *L, int opts, sdr_dtype dflt) {
  lua_getfield(L, opts, "dtype");
  int d = lua_isnil(L, -1) ? (int)dflt : lsdr_to_dtype(L, -1);
  lua_pop(L, 1);
  if (d < 0)
    lsdr_error(L, "option 'dtype': a torch dtype expected (torch.float32, torch.float16, ...)");
  return (sdr_dtype)d;
}

static sdr_device option_device(lua_State *L, int opts) {
  lua_getfield(L, opts, "device");
  int d = lsdr_parse_device(lua_tostring(L, -1));
  lua_pop(L, 1);
  if (d < 0)
    lsdr_error(L, "option 'device': \"cpu\" or \"cuda\" expected");
  return (sdr_device)d;
}

/* ---- random ------------------------------------------------------------- */

/* Which generator draws, as torch decides: the one given (whose device must
 * be the tensor's), else the device's default. */
static sdr_generator *pick_generator(lua_State *L, int opts, sdr_device device) {
  lua_getfield(L, opts, "generator");
  sdr_generator *g = lsdr_to_generator(L, -1);
  lua_pop(L, 1);
  sdr_generator_device want = device == SDR_DEVICE_CPU ? SDR_GENERATOR_CPU : SDR_GENERATOR_CUDA;
  if (!g)
    g = lsdr_default_generator(L, want);
  lsdr_generator_fit_device(g);
  if (g->device != want)
    lsdr_error(L, "Expected a '%s' device type for generator but found '%s'",
               device == SDR_DEVICE_CPU ? "cpu" : "cuda",
               g->device == SDR_GENERATOR_CPU ? "cpu" : "cuda");
  return g;
}

static int random_tensor(lua_State *L, int normal) {
  int64_t shape[SDR_MAX_DIMS];
  int ndim;
  int opts = shape_and_options(L, shape, &ndim);
  sdr_dtype dtype = option_dtype(L, opts, SDR_F32);
  sdr_device device = option_device(L, opts);
  if (dtype != SDR_F32 && dtype != SDR_F16 && dtype != SDR_BF16)
    return lsdr_error(L, "random tensors are float32, float16 or bfloat16, not %s",
                      sdr_dtype_name(dtype));
  if (!normal && dtype != SDR_F32)
    return lsdr_error(L, "torch.rand draws float32 only here, not %s", sdr_dtype_name(dtype));
  sdr_generator *g = pick_generator(L, opts, device);
  sdr_backend *be = lsdr_backend(L, device);
  lsdr_tensor *t = lsdr_push_new_tensor(L, be, dtype, ndim, shape);
  /* on the GPU by torch's own kernel where the generator is CUDA's */
  if (sdr_generator_fill(g, be, NULL, &t->t, dtype, normal) != 0)
    return lsdr_engine_error(L);
  return 1;
}

static int torch_randn(lua_State *L) { return random_tensor(L, 1); }
static int torch_rand(lua_State *L) { return random_tensor(L, 0); }

/* ---- filled tensors ----------------------------------------------------- */

static int filled(lua_State *L, double value, int value_from_option) {
  int64_t shape[SDR_MAX_DIMS];
  int ndim;
  int opts = shape_and_options(L, shape, &ndim);
  if (value_from_option) {
    lua_getfield(L, opts, "fill_value");
    value = lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  sdr_dtype dtype = option_dtype(L, opts, SDR_F32);
  sdr_backend *be = lsdr_backend(L, option_device(L, opts));
  int64_t n = 1;
  for (int i = 0; i < ndim; i++)
    n *= shape[i];
  double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
  if (!v)
    return luaL_error(L, "out of memory");
  for (int64_t i = 0; i < n; i++)
    v[i] = value;
  lsdr_push_from_host(L, be, dtype, ndim, shape, v);
  free(v);
  return 1;
}
static int torch_zeros(lua_State *L) { return filled(L, 0, 0); }
static int torch_ones(lua_State *L) { return filled(L, 1, 0); }
static int torch_full(lua_State *L) { return filled(L, 0, 1); }

/* ---- torch.tensor(nested lists) ------------------------------------------ */

/* Walks nested lists: checks they are rectangular, fills shape (first visit)
 * and values; *all_int stays 1 while every number is an integer. */
static void walk(lua_State *L, int idx, int dim, int *ndim, int64_t *shape, double **v, size_t *n,
                 size_t *cap, int *all_int) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    if (dim != *ndim)
      lsdr_error(L, "argument 1 (data): the lists are not rectangular");
    if (*n == *cap) {
      size_t c = *cap ? *cap * 2 : 64;
      double *nv = realloc(*v, c * sizeof *nv);
      if (!nv)
        luaL_error(L, "out of memory");
      *v = nv;
      *cap = c;
    }
    *all_int &= lua_isinteger(L, idx);
    (*v)[(*n)++] = lua_tonumber(L, idx);
    return;
  }
  if (!lua_istable(L, idx))
    lsdr_error(L, "argument 1 (data): numbers or lists of numbers expected, found %s",
               luaL_typename(L, idx));
  int64_t len = (int64_t)lua_rawlen(L, idx);
  if (dim >= SDR_MAX_DIMS)
    lsdr_error(L, "argument 1 (data): more than %d levels of lists", SDR_MAX_DIMS);
  if (*ndim == dim && *n == 0 && (dim == 0 || shape[dim - 1] >= 0)) {
    /* first path down: fixes the shape */
    shape[dim] = len;
    *ndim = dim + 1;
  } else if (dim >= *ndim || shape[dim] != len) {
    lsdr_error(L, "argument 1 (data): the lists are not rectangular");
  }
  luaL_checkstack(L, 4, "nested lists");
  for (int64_t i = 1; i <= len; i++) {
    lua_rawgeti(L, idx, i);
    walk(L, lua_gettop(L), dim + 1, ndim, shape, v, n, cap, all_int);
    lua_pop(L, 1);
  }
}

static int torch_tensor(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  if (lsdr_to_tensor(L, 1)) { /* torch.tensor(t) copies */
    lsdr_tensor *t = lsdr_to_tensor(L, 1);
    double *v = lsdr_tensor_host_values(L, t);
    sdr_dtype dtype = option_dtype(L, 2, t->t.dtype);
    lsdr_push_from_host(L, lsdr_backend(L, option_device(L, 2)), dtype, t->t.ndim, t->t.shape, v);
    free(v);
    return 1;
  }
  int64_t shape[SDR_MAX_DIMS] = {0};
  int ndim = 0, all_int = 1;
  double *v = NULL;
  size_t n = 0, cap = 0;
  if (lua_type(L, 1) == LUA_TNUMBER) {
    walk(L, 1, 0, &ndim, shape, &v, &n, &cap, &all_int);
  } else {
    /* Scalars at depth 0 give a 0-d tensor; lists set ndim as they go. */
    ndim = 0;
    walk(L, 1, 0, &ndim, shape, &v, &n, &cap, &all_int);
  }
  sdr_dtype dtype = option_dtype(L, 2, all_int && n > 0 ? SDR_I64 : SDR_F32);
  sdr_backend *be = lsdr_backend(L, option_device(L, 2));
  lsdr_push_from_host(L, be, dtype, ndim, shape, v);
  free(v);
  return 1;
}

/* torch.cat(tensors, dim=1): joins along a dimension (1-based). */
static int torch_cat(lua_State *L) {
  lsdr_args(L);
  int n = (int)lua_rawlen(L, 1);
  if (n == 0)
    return lsdr_argerror(L, 1, "a non-empty list of tensors");
  lua_Integer dim = lua_tointeger(L, 2);
  lua_rawgeti(L, 1, 1);
  lsdr_tensor *first = lsdr_to_tensor(L, -1);
  if (!first)
    return lsdr_error(L, "argument 1 (tensors): entry 1 is a %s, not a Tensor",
                      luaL_typename(L, -1));
  int ndim = first->t.ndim;
  if (dim < 0)
    dim += ndim + 1;
  if (dim < 1 || dim > ndim)
    return lsdr_error(L, "dimension %I out of range for %d-d tensors", lua_tointeger(L, 2), ndim);
  /* Start from the first tensor and join the others one at a time. */
  lua_pushvalue(L, -1);
  for (int i = 2; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    lsdr_tensor *acc = lsdr_to_tensor(L, -2), *next = lsdr_to_tensor(L, -1);
    if (!next)
      return lsdr_error(L, "argument 1 (tensors): entry %d is a %s, not a Tensor", i,
                        luaL_typename(L, -1));
    if (next->t.dtype != acc->t.dtype || next->t.device != acc->t.device || next->t.ndim != ndim)
      return lsdr_error(L, "entry %d differs from the first in dtype, device or dimensions", i);
    int64_t shape[SDR_MAX_DIMS];
    for (int d = 0; d < ndim; d++) {
      if (d != dim - 1 && next->t.shape[d] != acc->t.shape[d]) {
        char sa[128], sb[128];
        return lsdr_error(L, "entry %d has shape %s, which does not fit %s along dimension %I", i,
                          sdr_shape_str(&next->t, sb, sizeof sb),
                          sdr_shape_str(&acc->t, sa, sizeof sa), dim);
      }
      shape[d] = d == dim - 1 ? acc->t.shape[d] + next->t.shape[d] : acc->t.shape[d];
    }
    lsdr_tensor *out = lsdr_push_new_tensor(L, acc->storage->be, acc->t.dtype, ndim, shape);
    if (sdr_concat(acc->storage->be, &out->t, &acc->t, &next->t, (int)dim - 1) != 0)
      return lsdr_engine_error(L);
    lua_replace(L, -3);
    lua_pop(L, 1);
  }
  return 1;
}

static const lsdr_param random_options[] = {
    {"generator", LSDR_GENERATOR_TYPE, "nil", "torch.Generator to draw from"},
    {"dtype", "table|string", "nil", "torch.float32 (default), torch.float16, torch.bfloat16"},
    {"device", "string", "\"cpu\""},
    {0}};

static const lsdr_param fill_options[] = {
    {"dtype", "table|string", "nil"}, {"device", "string", "\"cpu\""}, {0}};

static const lsdr_param full_options[] = {{"fill_value", "number"},
                                          {"dtype", "table|string", "nil"},
                                          {"device", "string", "\"cpu\""},
                                          {0}};

static const lsdr_param tensor_options[] = {
    {"dtype", "table|string", "nil", "default: int64 for integers, float32 otherwise"},
    {"device", "string", "\"cpu\""},
    {0}};

static const lsdr_func torch_funcs[] = {
    {"torch.randn",
     torch_randn,
     "Normal random numbers, the same as torch.randn with the same seed and generator.",
     {{"size", "table|integer"}, {"opts", "table", "nil"}},
     random_options},
    {"torch.rand",
     torch_rand,
     "Uniform random numbers in [0, 1), as torch.rand.",
     {{"size", "table|integer"}, {"opts", "table", "nil"}},
     random_options},
    {"torch.zeros",
     torch_zeros,
     "A tensor of zeros.",
     {{"size", "table|integer"}, {"opts", "table", "nil"}},
     fill_options},
    {"torch.ones",
     torch_ones,
     "A tensor of ones.",
     {{"size", "table|integer"}, {"opts", "table", "nil"}},
     fill_options},
    {"torch.full",
     torch_full,
     "A tensor filled with opts.fill_value.",
     {{"size", "table|integer"}, {"opts", "table"}},
     full_options},
    {"torch.tensor",
     torch_tensor,
     "A tensor from nested lists of numbers (or a copy of a tensor).",
     {{"data", "table|number|Tensor"}, {"opts", "table", "nil"}},
     tensor_options},
    {"torch.cat",
     torch_cat,
     "Joins tensors along a dimension (1-based), as torch.cat.",
     {{"tensors", "table"}, {"dim", "integer", "1"}}},
    {"torch.load_npy",
     lsdr_torch_load_npy,
     "Reads a NumPy .npy file into a tensor.",
     {{"path", "string"}}},
    {0}};

/* GPUs the CUDA backend can use: none in a build without it, or without a
 * driver or a device (never an error, as in torch). */
static int gpus(void) {
  const lsdr_cuda_device *gpu = lsdr_cuda_device_get();
  return gpu ? gpu->count() : 0;
}

static int cuda_is_available(lua_State *L) {
  lsdr_args(L);
  lua_pushboolean(L, gpus() > 0);
  return 1;
}

static int cuda_device_count(lua_State *L) {
  lsdr_args(L);
  lua_pushinteger(L, gpus());
  return 1;
}

static const lsdr_func cuda_funcs[] = {
    {"torch.cuda.is_available", cuda_is_available, "Whether a CUDA GPU can be used."},
    {"torch.cuda.device_count", cuda_device_count, "How many CUDA GPUs can be used."},
    {0}};

void lsdr_open_torch(lua_State *L) {
  lsdr_open_tensor(L);
  lua_newtable(L);
  lsdr_register(L, -1, torch_funcs);
  lsdr_open_generator(L, -1);
  static const struct {
    const char *name;
    sdr_dtype t;
  } dtypes[] = {{"float32", SDR_F32}, {"float", SDR_F32},     {"float16", SDR_F16},
                {"half", SDR_F16},    {"bfloat16", SDR_BF16}, {"float64", SDR_F64},
                {"double", SDR_F64},  {"int64", SDR_I64},     {"long", SDR_I64},
                {"int32", SDR_I32},   {"int", SDR_I32},       {"int16", SDR_I16},
                {"int8", SDR_I8},     {"uint8", SDR_U8},      {"bool", SDR_BOOL}};
  for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++) {
    lsdr_push_dtype(L, dtypes[i].t);
    lua_setfield(L, -2, dtypes[i].name);
  }
  lua_newtable(L);
  lsdr_register(L, -1, cuda_funcs);
  lua_setfield(L, -2, "cuda");
  luaL_getmetatable(L, LSDR_TENSOR);
  lua_setfield(L, -2, "Tensor");
  lua_setglobal(L, "torch");
}

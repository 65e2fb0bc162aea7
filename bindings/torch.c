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
#include "bindings/generator.h"   // lsdr_open_generator, lsdr_default_generator, lsdr_to_generator
#include "bindings/image.h"       // lsdr_to_image
#include "bindings/lsdr.h"        // lsdr_register, lsdr_options, lsdr_error
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

/* Pushes a tensor of shape drawn from opts.generator (normal: torch.randn, else torch.rand). */
static int random_fill(lua_State *L, int opts, int ndim, const int64_t *shape, sdr_dtype dtype,
                       sdr_device device, int normal) {
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

static int random_tensor(lua_State *L, int normal) {
  int64_t shape[SDR_MAX_DIMS];
  int ndim;
  int opts = shape_and_options(L, shape, &ndim);
  sdr_dtype dtype = option_dtype(L, opts, SDR_F32);
  sdr_device device = option_device(L, opts);
  return random_fill(L, opts, ndim, shape, dtype, device, normal);
}

static int torch_randn(lua_State *L) { return random_tensor(L, 1); }
static int torch_rand(lua_State *L) { return random_tensor(L, 0); }

/* ---- filled tensors ----------------------------------------------------- */

/* Pushes a tensor of shape with every element value. */
static void push_filled(lua_State *L, sdr_backend *be, sdr_dtype dtype, int ndim,
                        const int64_t *shape, double value) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++)
    n *= shape[i];
  double *v = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *v, 0);
  for (int64_t i = 0; i < n; i++)
    v[i] = value;
  lsdr_push_from_host(L, be, dtype, ndim, shape, v);
  lua_remove(L, -2);
}

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
  push_filled(L, lsdr_backend(L, option_device(L, opts)), dtype, ndim, shape, value);
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
  const sdr_image *img = lsdr_to_image(L, 1);
  if (img) { /* torch.tensor(np.array(img)): (H, W, C) uint8, (H, W) for L */
    const size_t n = (size_t)img->width * img->height * img->channels;
    double *v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
      return luaL_error(L, "out of memory");
    for (size_t i = 0; i < n; i++)
      v[i] = img->pixels[i];
    int64_t shape[3] = {img->height, img->width, img->channels};
    lsdr_push_from_host(L, lsdr_backend(L, option_device(L, 2)), option_dtype(L, 2, SDR_U8),
                        img->channels == 1 ? 2 : 3, shape, v);
    free(v);
    return 1;
  }
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

/* ---- *_like: the shape (and by default dtype and device) of a tensor ---- */

/* The options table at 2 (or 3 for full_like) against t's dtype and device. */
static void like_dtype_device(lua_State *L, int opts, const lsdr_tensor *t, sdr_dtype *dtype,
                              sdr_device *device) {
  *dtype = option_dtype(L, opts, t->t.dtype);
  lua_getfield(L, opts, "device");
  *device = t->t.device;
  if (!lua_isnil(L, -1)) {
    int d = lsdr_parse_device(lua_tostring(L, -1));
    if (d < 0)
      lsdr_error(L, "option 'device': \"cpu\" or \"cuda\" expected");
    *device = (sdr_device)d;
  }
  lua_pop(L, 1);
}

/* torch.randn_like(t, {generator = g}) draws what torch.randn(t.shape, {generator = g,
 * dtype = t.dtype, device = t.device}) draws. torch's randn_like takes no generator;
 * diffusers' randn_tensor does, so it is accepted here. */
static int random_like(lua_State *L, int normal) {
  lsdr_args(L);
  lsdr_options(L, 2);
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  sdr_dtype dtype;
  sdr_device device;
  like_dtype_device(L, 2, t, &dtype, &device);
  int64_t shape[SDR_MAX_DIMS];
  memcpy(shape, t->t.shape, sizeof shape);
  return random_fill(L, 2, t->t.ndim, shape, dtype, device, normal);
}
static int torch_randn_like(lua_State *L) { return random_like(L, 1); }
static int torch_rand_like(lua_State *L) { return random_like(L, 0); }

static int filled_like(lua_State *L, double value, int value_arg) {
  lsdr_args(L);
  int opts = value_arg ? 3 : 2;
  lsdr_options(L, opts);
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  if (value_arg)
    value = lua_tonumber(L, 2);
  sdr_dtype dtype;
  sdr_device device;
  like_dtype_device(L, opts, t, &dtype, &device);
  int64_t shape[SDR_MAX_DIMS];
  memcpy(shape, t->t.shape, sizeof shape);
  push_filled(L, lsdr_backend(L, device), dtype, t->t.ndim, shape, value);
  return 1;
}
static int torch_zeros_like(lua_State *L) { return filled_like(L, 0, 0); }
static int torch_ones_like(lua_State *L) { return filled_like(L, 1, 0); }
static int torch_full_like(lua_State *L) { return filled_like(L, 0, 1); }

/* ---- ranges ------------------------------------------------------------- */

/* torch.linspace(start, end, steps): torch's CPU formula, start + step * i for the
 * first half and end - step * (steps - 1 - i) for the second, so both ends are exact;
 * computed in float for float32 and the half types (as torch's float kernel), in
 * double for float64 and integers. */
static int torch_linspace(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 4);
  double start = lua_tonumber(L, 1), end = lua_tonumber(L, 2);
  lua_Integer steps = lua_tointeger(L, 3);
  if (steps < 0)
    return lsdr_error(L, "number of steps must be non-negative");
  sdr_dtype dtype = option_dtype(L, 4, SDR_F32);
  sdr_backend *be = lsdr_backend(L, option_device(L, 4));
  int64_t n = steps;
  double *v = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *v, 0);
  int single = dtype == SDR_F32 || dtype == SDR_F16 || dtype == SDR_BF16;
  float fs = (float)start, fe = (float)end, fstep = n > 1 ? (fe - fs) / (float)(n - 1) : 0;
  double step = n > 1 ? (end - start) / (double)(n - 1) : 0;
  for (int64_t i = 0; i < n; i++) {
    if (n == 1)
      v[i] = start;
    else if (single)
      v[i] = i < n / 2 ? fs + fstep * (float)i : fe - fstep * (float)(n - 1 - i);
    else
      v[i] = i < n / 2 ? start + step * (double)i : end - step * (double)(n - 1 - i);
  }
  lsdr_push_from_host(L, be, dtype, 1, &n, v);
  return 1;
}

/* torch.arange([start,] end [, step] [, opts]): values start, start + step, ... below
 * end (values, not indices: torch.arange(3) is 0, 1, 2 as in torch). int64 when every
 * number given is an integer, else float32, as torch. */
static int torch_arange(lua_State *L) {
  int k = 0, all_int = 1;
  while (k < 3 && lua_type(L, k + 1) == LUA_TNUMBER) {
    all_int &= lua_isinteger(L, k + 1);
    k++;
  }
  if (k == 0)
    return lsdr_argerror(L, 1, "a number (end, or start and end)");
  if (lua_gettop(L) > k + 1 ||
      (lua_gettop(L) == k + 1 && !lua_istable(L, k + 1) && !lua_isnil(L, k + 1)))
    return lsdr_error(L, "argument %d: a number or the options table expected, got %s", k + 1,
                      lsdr_typename(L, k + 1));
  double a[3];
  for (int i = 0; i < k; i++)
    a[i] = lua_tonumber(L, i + 1);
  double start = k == 1 ? 0 : a[0], end = k == 1 ? a[0] : a[1], step = k == 3 ? a[2] : 1;
  /* the options table goes to index 4, where the spec declares it */
  lua_settop(L, k + 1);
  if (k + 1 != 4) {
    lua_settop(L, 4);
    lua_copy(L, k + 1, 4);
    lua_pushnil(L);
    lua_replace(L, k + 1);
  }
  lsdr_options(L, 4);
  if (step == 0)
    return lsdr_error(L, "step must be nonzero");
  if (!isfinite(start) || !isfinite(end))
    return lsdr_error(L, "unsupported range: %f -> %f", start, end);
  if ((step > 0 && end < start) || (step < 0 && end > start))
    return lsdr_error(L, "upper bound and larger bound inconsistent with step sign");
  double size = ceil((end - start) / step);
  if (size > 1e9)
    return lsdr_error(L, "%f elements are too many", size);
  sdr_dtype dtype = option_dtype(L, 4, all_int ? SDR_I64 : SDR_F32);
  sdr_backend *be = lsdr_backend(L, option_device(L, 4));
  int64_t n = (int64_t)size;
  double *v = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *v, 0);
  for (int64_t i = 0; i < n; i++)
    v[i] = start + step * (double)i; /* torch's accumulate type on the CPU is double */
  lsdr_push_from_host(L, be, dtype, 1, &n, v);
  return 1;
}

/* ---- torch.no_grad ------------------------------------------------------ */

/* There is no autograd here: nothing ever records a graph, so there is nothing to
 * turn off. torch.no_grad() exists so notebook code keeps its shape: it returns a
 * value to close (`local _ <close> = torch.no_grad()`, Python's `with`), and
 * torch.no_grad(fn, ...) calls fn(...) and returns its results (the decorator). */
static int no_grad_close(lua_State *L) {
  (void)L;
  return 0;
}

static int torch_no_grad(lua_State *L) {
  if (lua_isfunction(L, 1)) {
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
  }
  if (lua_gettop(L) > 0 && !lua_isnil(L, 1))
    return lsdr_argerror(L, 1, "nothing or a function to call");
  lua_newtable(L);
  if (luaL_newmetatable(L, "torch.no_grad")) {
    lua_pushcfunction(L, no_grad_close);
    lua_setfield(L, -2, "__close");
  }
  lua_setmetatable(L, -2);
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

static const lsdr_param like_options[] = {{"dtype", "table|string", "nil", "default: the tensor's"},
                                          {"device", "string", "nil", "default: the tensor's"},
                                          {0}};

static const lsdr_param random_like_options[] = {
    {"generator", LSDR_GENERATOR_TYPE, "nil", "torch.Generator to draw from"},
    {"dtype", "table|string", "nil", "default: the tensor's"},
    {"device", "string", "nil", "default: the tensor's"},
    {0}};

static const lsdr_param tensor_options[] = {
    {"dtype", "table|string", "nil", "default: int64 for integers, float32 otherwise"},
    {"device", "string", "\"cpu\""},
    {0}};

/* torch.compile(model, {mode, fullgraph, ...}): the model itself (it is compiled C already). */
static int torch_compile(lua_State *L) {
  if (lua_isnoneornil(L, 1))
    return lsdr_argerror(L, 1, "a model");
  lua_settop(L, 1);
  return 1;
}

/* torch.set_grad_enabled(b), torch.cuda.empty_cache(), torch.cuda.synchronize(): nothing to
 * do here (no autograd; the CUDA backend frees what a call used and returns when done). */
static int torch_nothing(lua_State *L) {
  (void)L;
  return 0;
}

static const lsdr_func torch_funcs[] = {
    {"torch.compile",
     torch_compile,
     "Returns the model as it is: sdrepl's models are compiled C (and a CUDA graph per call).",
     {{"model", "any"}, {"opts", "table", "nil"}}},
    {"torch.set_grad_enabled",
     torch_nothing,
     "A no-op (there is no autograd here).",
     {{"mode", "boolean", "nil"}}},
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
     "A tensor from nested lists of numbers (or a copy of a tensor, or a picture's pixels as "
     "numpy's np.array(img) holds them: (H, W, C) uint8).",
     {{"data", "table|number|Tensor|Image"}, {"opts", "table", "nil"}},
     tensor_options},
    {"torch.cat",
     torch_cat,
     "Joins tensors along a dimension (1-based), as torch.cat.",
     {{"tensors", "table"}, {"dim", "integer", "1"}}},
    {"torch.randn_like",
     torch_randn_like,
     "Normal random numbers shaped as input: torch.randn(input.shape) with input's dtype and "
     "device, the same draws for the same generator.",
     {{"input", "Tensor"}, {"opts", "table", "nil"}},
     random_like_options},
    {"torch.rand_like",
     torch_rand_like,
     "Uniform random numbers in [0, 1) shaped as input (float32).",
     {{"input", "Tensor"}, {"opts", "table", "nil"}},
     random_like_options},
    {"torch.zeros_like",
     torch_zeros_like,
     "Zeros shaped as input, in its dtype and on its device.",
     {{"input", "Tensor"}, {"opts", "table", "nil"}},
     like_options},
    {"torch.ones_like",
     torch_ones_like,
     "Ones shaped as input, in its dtype and on its device.",
     {{"input", "Tensor"}, {"opts", "table", "nil"}},
     like_options},
    {"torch.full_like",
     torch_full_like,
     "fill_value everywhere, shaped as input, in its dtype and on its device.",
     {{"input", "Tensor"}, {"fill_value", "number"}, {"opts", "table", "nil"}},
     like_options},
    {"torch.linspace",
     torch_linspace,
     "steps values evenly spaced from start to end (both included), as torch.linspace.",
     {{"start", "number"}, {"end", "number"}, {"steps", "integer"}, {"opts", "table", "nil"}},
     fill_options},
    {"torch.arange",
     torch_arange,
     "Values from start (0) below end by step (1): torch.arange(5), torch.arange(1, 10, 2).",
     {{"start", "number"},
      {"end", "number", "nil"},
      {"step", "number", "nil"},
      {"opts", "table", "nil"}},
     fill_options},
    {"torch.no_grad",
     torch_no_grad,
     "A no-op (there is no autograd here): `local _ <close> = torch.no_grad()`, or "
     "torch.no_grad(fn, ...) calls fn.",
     {{"fn", "function", "nil"}}},
    {"torch.inference_mode",
     torch_no_grad,
     "The same no-op as torch.no_grad.",
     {{"fn", "function", "nil"}}},
    {"torch.load_npy",
     lsdr_torch_load_npy,
     "Reads a NumPy .npy file into a tensor.",
     {{"path", "string"}}},
    {"torch.load",
     lsdr_torch_load,
     "Reads what torch.save wrote (a state dict) into a table of name = Tensor; nothing in the "
     "file is run.",
     {{"f", "string"}, {"opts", "table", "nil"}},
     lsdr_torch_load_options},
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
    {"torch.cuda.empty_cache", torch_nothing,
     "A no-op: memory a call used is given back when it returns."},
    {"torch.cuda.synchronize", torch_nothing, "A no-op: every call returns when its work is done."},
    {0}};

/* torch.backends' switches, which notebooks set for speed: kept, and read by nothing (the
 * CUDA backend never uses TF32 and has no cuDNN autotuning). */
static void push_backends(lua_State *L) {
  lua_newtable(L);
  lua_newtable(L); /* cuda */
  lua_newtable(L); /* cuda.matmul */
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "allow_tf32");
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "allow_fp16_reduced_precision_reduction");
  lua_setfield(L, -2, "matmul");
  lua_setfield(L, -2, "cuda");
  lua_newtable(L); /* cudnn */
  static const struct {
    const char *name;
    int value;
  } cudnn[] = {{"enabled", 1}, {"benchmark", 0}, {"deterministic", 0}, {"allow_tf32", 1}};
  for (size_t i = 0; i < sizeof cudnn / sizeof cudnn[0]; i++) {
    lua_pushboolean(L, cudnn[i].value);
    lua_setfield(L, -2, cudnn[i].name);
  }
  lua_setfield(L, -2, "cudnn");
}

void lsdr_open_torch(lua_State *L) {
  lsdr_open_tensor(L);
  lua_newtable(L);
  lsdr_register(L, -1, torch_funcs);
  lsdr_register(L, -1, lsdr_torch_shape_funcs);
  lsdr_register(L, -1, lsdr_torch_math_funcs);
  lsdr_register(L, -1, lsdr_torch_method_funcs);
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
  push_backends(L);
  lua_setfield(L, -2, "backends");
  /* memory formats, for model:to{memory_format = torch.channels_last} */
  static const char *const formats[] = {"channels_last", "contiguous_format", "preserve_format"};
  for (size_t i = 0; i < 3; i++) {
    lua_pushfstring(L, "torch.%s", formats[i]);
    lua_setfield(L, -2, formats[i]);
  }
  luaL_getmetatable(L, LSDR_TENSOR);
  lua_setfield(L, -2, "Tensor");
  lua_setglobal(L, "torch");
}

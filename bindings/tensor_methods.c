/* bindings/tensor_methods.c — what a Tensor can do: properties, views, conversion,
 * arithmetic (through the backend ops) and the reductions people check results with. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/lsdr.h" // lsdr_register, lsdr_args, lsdr_error
#include "bindings/tensor.h"
#include "engine/error.h" // sdr_last_error
#include "bindings/tensor_internal.h"
#include "kernels/half.h" // sdr_f32_to_f16, sdr_f32_to_bf16

static const char METHODS_KEY[] = "sdrepl.tensor_methods";

/* ---- making tensors from host values ---------------------------------- */

static int64_t to_int64(double x) {
  if (!(x == x))
    return 0;
  if (x >= 9.2e18)
    return INT64_MAX;
  if (x <= -9.2e18)
    return INT64_MIN;
  return (int64_t)x;
}

static void store_value(void *dst, sdr_dtype dtype, size_t i, double x) {
  switch (dtype) {
  case SDR_F32:
    ((float *)dst)[i] = (float)x;
    break;
  case SDR_F16:
    ((uint16_t *)dst)[i] = sdr_f32_to_f16((float)x);
    break;
  case SDR_BF16:
    ((uint16_t *)dst)[i] = sdr_f32_to_bf16((float)x);
    break;
  case SDR_F64:
    ((double *)dst)[i] = x;
    break;
  /* Integers: truncated toward zero, then wrapped as numpy's astype does on
   * x86; first clamped so the C conversion is always defined. */
  case SDR_I64:
    ((int64_t *)dst)[i] = to_int64(x);
    break;
  case SDR_I32:
    ((int32_t *)dst)[i] = (int32_t)(uint32_t)to_int64(x);
    break;
  case SDR_I16:
    ((int16_t *)dst)[i] = (int16_t)(uint16_t)to_int64(x);
    break;
  case SDR_I8:
    ((int8_t *)dst)[i] = (int8_t)(uint8_t)to_int64(x);
    break;
  case SDR_U8:
    ((uint8_t *)dst)[i] = (uint8_t)to_int64(x);
    break;
  case SDR_BOOL:
    ((uint8_t *)dst)[i] = x != 0;
    break;
  default:
    break;
  }
}

lsdr_tensor *lsdr_push_from_host(lua_State *L, sdr_backend *be, sdr_dtype dtype, int ndim,
                                 const int64_t *shape, const double *values) {
  lsdr_tensor *t = lsdr_push_new_tensor(L, be, dtype, ndim, shape);
  size_t n = (size_t)sdr_tensor_numel(&t->t), bytes = sdr_tensor_nbytes(&t->t);
  void *host = be->device == SDR_DEVICE_CPU ? t->t.data : malloc(bytes ? bytes : 1);
  if (!host)
    luaL_error(L, "out of memory");
  for (size_t i = 0; i < n; i++)
    store_value(host, dtype, i, values[i]);
  if (host != t->t.data) {
    int rc = sdr_upload(be, t->t.data, host, bytes);
    free(host);
    if (rc != 0)
      luaL_error(L, "%s", sdr_last_error());
  }
  return t;
}

static int is_float_dtype(sdr_dtype d) { return d == SDR_F32 || d == SDR_F16 || d == SDR_BF16; }

static lsdr_tensor *push_cast(lua_State *L, int idx, sdr_dtype to) {
  lsdr_tensor *src = lsdr_check_tensor(L, idx);
  sdr_backend *be = src->storage->be;
  if (is_float_dtype(to) && (is_float_dtype(src->t.dtype) || src->t.dtype == SDR_I64)) {
    lsdr_tensor *out = lsdr_push_new_tensor(L, be, to, src->t.ndim, src->t.shape);
    if (sdr_cast(be, &out->t, &src->t) != 0)
      luaL_error(L, "%s", sdr_last_error());
    return out;
  }
  /* Any other pair goes through the host; these tensors are small (ids, masks). */
  double *v = lsdr_tensor_host_values(L, src);
  lsdr_tensor *out = lsdr_push_from_host(L, be, to, src->t.ndim, src->t.shape, v);
  free(v);
  return out;
}

lsdr_tensor *lsdr_push_cast(lua_State *L, int idx, sdr_dtype to) { return push_cast(L, idx, to); }

lsdr_tensor *lsdr_push_float32(lua_State *L, int idx) {
  lsdr_tensor *t = lsdr_check_tensor(L, idx);
  if (t->t.dtype == SDR_F32) {
    lua_pushvalue(L, idx);
    return t;
  }
  return push_cast(L, idx, SDR_F32);
}

/* ---- properties and indexing ------------------------------------------ */

static void push_shape(lua_State *L, const sdr_tensor *t) {
  lua_createtable(L, t->ndim, 0);
  for (int i = 0; i < t->ndim; i++) {
    lua_pushinteger(L, t->shape[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

/* Row i (1-based; negative counts from the end) of the first dimension, as a view. */
static sdr_tensor row_of(lua_State *L, lsdr_tensor *t, lua_Integer i) {
  if (t->t.ndim == 0)
    luaL_error(L, "Tensor: a 0-d tensor cannot be indexed (use :item())");
  int64_t n = t->t.shape[0];
  if (i == 0) /* Python's first row */
    luaL_error(L, "Tensor: index 0: indices count from 1 here, as in Lua (t[1] is the "
                  "first row, t[-1] the last)");
  if (i < 0)
    i += n + 1;
  if (i < 1 || i > n)
    luaL_error(L, "Tensor: index %I is out of range for a first dimension of %I", (lua_Integer)i,
               (lua_Integer)n);
  sdr_tensor row, v;
  if (sdr_tensor_narrow0(&row, &t->t, i - 1, 1) != 0 ||
      sdr_tensor_reshape(&v, &row, t->t.ndim - 1, t->t.shape + 1) != 0)
    luaL_error(L, "%s", sdr_last_error());
  return v;
}

/* t[i]: a view of one row of the first dimension. */
static int push_row(lua_State *L, lsdr_tensor *t, lua_Integer i) {
  lsdr_push_view(L, t, row_of(L, t, i));
  return 1;
}

/* Copies src into dst, both of one dtype, shape and backend. */
static int copy_into(lua_State *L, sdr_backend *be, sdr_tensor *dst, const sdr_tensor *src) {
  size_t bytes = sdr_tensor_nbytes(dst);
  if (dst->device == SDR_DEVICE_CPU) {
    memmove(dst->data, src->data, bytes);
    return 0;
  }
  if (is_float_dtype(dst->dtype))
    return sdr_cast(be, dst, src);
  void *host = malloc(bytes ? bytes : 1); /* int64 ids and the like: through the host */
  int rc = host ? 0 : sdr_fail("out of memory");
  if (rc == 0)
    rc = sdr_download(be, host, src->data, bytes);
  if (rc == 0)
    rc = sdr_upload(be, dst->data, host, bytes);
  free(host);
  return rc;
}

/* t[i] = value: the row takes a number, a one-value tensor, or a tensor of its shape
 * (leading sizes of 1 aside), converted to t's dtype, as torch's row assignment. */
static int tensor_newindex(lua_State *L) {
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  if (!lua_isinteger(L, 2))
    return luaL_error(L, "Tensor: only rows can be assigned (t[i] = value), not %s",
                      luaL_tolstring(L, 2, NULL));
  sdr_tensor row = row_of(L, t, lua_tointeger(L, 2));
  sdr_backend *be = t->storage->be;
  const int64_t n = sdr_tensor_numel(&row);
  lsdr_tensor *v = lsdr_to_tensor(L, 3);
  if (!v && lua_type(L, 3) != LUA_TNUMBER)
    return luaL_error(L, "Tensor: a row takes a number or a tensor, not a %s", luaL_typename(L, 3));
  if (v && v->storage->be != be)
    return luaL_error(L, "Tensor: the value is on %s, the tensor on %s",
                      sdr_device_name(v->t.device), sdr_device_name(t->t.device));
  const int64_t vn = v ? sdr_tensor_numel(&v->t) : 1;
  if (vn == 1) { /* a number for every element */
    double x;
    if (v) {
      double *h = lsdr_tensor_host_values(L, v);
      x = h[0];
      free(h);
    } else {
      x = lua_tonumber(L, 3);
    }
    double *all = malloc((size_t)(n ? n : 1) * sizeof *all);
    if (!all)
      return luaL_error(L, "Tensor: out of memory");
    for (int64_t k = 0; k < n; k++)
      all[k] = x;
    lsdr_tensor *filled = lsdr_push_from_host(L, be, row.dtype, row.ndim, row.shape, all);
    free(all);
    if (copy_into(L, be, &row, &filled->t) != 0)
      return lsdr_engine_error(L);
    return 0;
  }
  /* the same shape once leading 1s are dropped from both */
  int a = 0, b = 0;
  while (a < row.ndim && row.shape[a] == 1)
    a++;
  while (b < v->t.ndim && v->t.shape[b] == 1)
    b++;
  int same = row.ndim - a == v->t.ndim - b;
  for (int k = 0; same && k < row.ndim - a; k++)
    same = row.shape[a + k] == v->t.shape[b + k];
  if (!same) {
    luaL_Buffer buf;
    luaL_buffinit(L, &buf);
    for (int k = 0; k < v->t.ndim; k++) {
      lua_pushfstring(L, k ? ", %I" : "%I", (lua_Integer)v->t.shape[k]);
      luaL_addvalue(&buf);
    }
    luaL_pushresult(&buf);
    return luaL_error(L, "Tensor: a row of %I values cannot take a tensor of shape (%s)",
                      (lua_Integer)n, lua_tostring(L, -1));
  }
  lsdr_tensor *src = v->t.dtype == row.dtype ? v : lsdr_push_cast(L, 3, row.dtype);
  sdr_tensor flat = src->t; /* contiguous, as every tensor here */
  flat.ndim = row.ndim;
  memcpy(flat.shape, row.shape, sizeof(int64_t) * (size_t)row.ndim);
  if (copy_into(L, be, &row, &flat) != 0)
    return lsdr_engine_error(L);
  return 0;
}

static int tensor_index(lua_State *L) {
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  if (lua_type(L, 2) == LUA_TNUMBER && lua_isinteger(L, 2))
    return push_row(L, t, lua_tointeger(L, 2));
  if (lua_type(L, 2) != LUA_TSTRING)
    return 0;
  const char *k = lua_tostring(L, 2);
  lua_getfield(L, LUA_REGISTRYINDEX, METHODS_KEY);
  if (lua_getfield(L, -1, k) != LUA_TNIL)
    return 1;
  if (strcmp(k, "shape") == 0) {
    push_shape(L, &t->t);
  } else if (strcmp(k, "dtype") == 0) {
    lsdr_push_dtype(L, t->t.dtype);
  } else if (strcmp(k, "device") == 0) {
    lsdr_push_device(L, t->t.device);
  } else if (strcmp(k, "ndim") == 0) {
    lua_pushinteger(L, t->t.ndim);
  } else if (strcmp(k, "is_cuda") == 0) {
    lua_pushboolean(L, t->t.device == SDR_DEVICE_CUDA);
  } else {
    lua_pushnil(L);
  }
  return 1;
}

static int tensor_len(lua_State *L) {
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  if (t->t.ndim == 0)
    return luaL_error(L, "Tensor: len() of a 0-d tensor");
  lua_pushinteger(L, t->t.shape[0]);
  return 1;
}

/* ---- methods ------------------------------------------------------------ */

static int m_size(lua_State *L) {
  lsdr_args(L);
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  if (lua_isnil(L, 2)) {
    push_shape(L, &t->t);
    return 1;
  }
  lua_Integer d = lua_tointeger(L, 2);
  if (d < 0)
    d += t->t.ndim + 1;
  if (d < 1 || d > t->t.ndim)
    return lsdr_error(L, "dimension %I out of range (the tensor has %d)", lua_tointeger(L, 2),
                      t->t.ndim);
  lua_pushinteger(L, t->t.shape[d - 1]);
  return 1;
}

static int m_dim(lua_State *L) {
  lsdr_args(L);
  lua_pushinteger(L, lsdr_check_tensor(L, 1)->t.ndim);
  return 1;
}

static int m_numel(lua_State *L) {
  lsdr_args(L);
  lua_pushinteger(L, sdr_tensor_numel(&lsdr_check_tensor(L, 1)->t));
  return 1;
}

static int push_to_device(lua_State *L, int idx, sdr_device d) {
  lsdr_tensor *t = lsdr_check_tensor(L, idx);
  if (t->t.device == d) {
    lua_pushvalue(L, idx);
    return 1;
  }
  sdr_backend *to = lsdr_backend(L, d);
  lsdr_tensor *out = lsdr_push_new_tensor(L, to, t->t.dtype, t->t.ndim, t->t.shape);
  size_t bytes = sdr_tensor_nbytes(&t->t);
  int rc = d == SDR_DEVICE_CPU ? sdr_download(t->storage->be, out->t.data, t->t.data, bytes)
                               : sdr_upload(to, out->t.data, t->t.data, bytes);
  if (rc != 0)
    return luaL_error(L, "%s", sdr_last_error());
  return 1;
}

/* A device or a dtype at idx into *dev or *dtype; 0 when it is neither. */
static int device_or_dtype(lua_State *L, int idx, int *dev, int *dtype) {
  int dt = lsdr_to_dtype(L, idx);
  if (dt >= 0) {
    *dtype = dt;
    return 1;
  }
  int d = lua_type(L, idx) == LUA_TSTRING ? lsdr_parse_device(lua_tostring(L, idx)) : -1;
  if (d >= 0)
    *dev = d;
  return d >= 0;
}

/* t:to(device), t:to(dtype), t:to(device, dtype), or torch's keywords t:to{device = ...,
 * dtype = ...}: a copy moved and cast (itself when nothing changes). */
static int m_to(lua_State *L) {
  lsdr_args(L);
  int dev = -1, dtype = -1;
  const char *want = "a device (\"cpu\", \"cuda\") or a dtype (torch.float16, ...)";
  if (!device_or_dtype(L, 2, &dev, &dtype)) {
    if (!lua_istable(L, 2))
      return lsdr_argerror(L, 1, want);
    lua_getfield(L, 2, "device");
    lua_getfield(L, 2, "dtype");
    if ((!lua_isnil(L, -2) && !device_or_dtype(L, -2, &dev, &dtype)) ||
        (!lua_isnil(L, -1) && lsdr_to_dtype(L, -1) < 0) || (lua_isnil(L, -2) && lua_isnil(L, -1)))
      return lsdr_error(L, "argument 1: {device = \"cpu\" or \"cuda\", dtype = torch.float16, ...} "
                           "expected");
    if (!lua_isnil(L, -1))
      dtype = lsdr_to_dtype(L, -1);
    lua_pop(L, 2);
  }
  if (!lua_isnil(L, 3) && !device_or_dtype(L, 3, &dev, &dtype))
    return lsdr_argerror(L, 2, want);
  lua_pushvalue(L, 1);
  if (dev >= 0 && lsdr_check_tensor(L, -1)->t.device != (sdr_device)dev) {
    push_to_device(L, lua_gettop(L), (sdr_device)dev);
    lua_remove(L, -2);
  }
  if (dtype >= 0 && lsdr_check_tensor(L, -1)->t.dtype != (sdr_dtype)dtype) {
    push_cast(L, lua_gettop(L), (sdr_dtype)dtype);
    lua_remove(L, -2);
  }
  return 1;
}

static int cast_method(lua_State *L, sdr_dtype to) {
  lsdr_args(L);
  if (lsdr_check_tensor(L, 1)->t.dtype == to) {
    lua_pushvalue(L, 1);
    return 1;
  }
  push_cast(L, 1, to);
  return 1;
}
static int m_float(lua_State *L) { return cast_method(L, SDR_F32); }
static int m_half(lua_State *L) { return cast_method(L, SDR_F16); }
static int m_bfloat16(lua_State *L) { return cast_method(L, SDR_BF16); }
static int m_long(lua_State *L) { return cast_method(L, SDR_I64); }
static int m_double(lua_State *L) { return cast_method(L, SDR_F64); }
static int m_int(lua_State *L) { return cast_method(L, SDR_I32); }

/* torch's legacy tensor type names, which t:type() returns. */
static const char *legacy_type_name(sdr_dtype d) {
  switch (d) {
  case SDR_F32:
    return "FloatTensor";
  case SDR_F16:
    return "HalfTensor";
  case SDR_BF16:
    return "BFloat16Tensor";
  case SDR_F64:
    return "DoubleTensor";
  case SDR_I64:
    return "LongTensor";
  case SDR_I32:
    return "IntTensor";
  case SDR_I16:
    return "ShortTensor";
  case SDR_I8:
    return "CharTensor";
  case SDR_U8:
    return "ByteTensor";
  case SDR_BOOL:
    return "BoolTensor";
  default:
    return "Tensor";
  }
}

/* t:type() names the type ("torch.FloatTensor", "torch.cuda.HalfTensor");
 * t:type(dtype) is t:to(dtype), as in torch. */
static int m_type(lua_State *L) {
  lsdr_args(L);
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  if (lua_isnil(L, 2)) {
    lua_pushfstring(L, "torch.%s%s", t->t.device == SDR_DEVICE_CPU ? "" : "cuda.",
                    legacy_type_name(t->t.dtype));
    return 1;
  }
  int dtype = lsdr_to_dtype(L, 2);
  if (dtype < 0)
    return lsdr_argerror(L, 1, "a dtype (torch.float16, ...)");
  if (t->t.dtype == (sdr_dtype)dtype) {
    lua_pushvalue(L, 1);
    return 1;
  }
  push_cast(L, 1, (sdr_dtype)dtype);
  return 1;
}

static int m_cpu(lua_State *L) {
  lsdr_args(L);
  return push_to_device(L, 1, SDR_DEVICE_CPU);
}

static int m_cuda(lua_State *L) {
  lsdr_args(L);
  return push_to_device(L, 1, SDR_DEVICE_CUDA);
}

static int m_clone(lua_State *L) {
  lsdr_args(L);
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  lsdr_tensor *out = lsdr_push_new_tensor(L, t->storage->be, t->t.dtype, t->t.ndim, t->t.shape);
  size_t bytes = sdr_tensor_nbytes(&t->t);
  sdr_backend *be = t->storage->be;
  if (t->t.device == SDR_DEVICE_CPU) {
    memcpy(out->t.data, t->t.data, bytes);
  } else if (is_float_dtype(t->t.dtype)) {
    if (sdr_cast(be, &out->t, &t->t) != 0)
      return lsdr_engine_error(L);
  } else { /* int64 ids and the like: no device op copies them, the host does */
    void *host = lua_newuserdatauv(L, bytes ? bytes : 1, 0);
    if (sdr_download(be, host, t->t.data, bytes) != 0 ||
        sdr_upload(be, out->t.data, host, bytes) != 0)
      return lsdr_engine_error(L);
    lua_pop(L, 1);
  }
  return 1;
}

/* Reads a shape given as a table {2, 3} or as numbers 2, 3 from index first on. */
static int read_shape(lua_State *L, int first, int64_t *shape) {
  int n = 0;
  if (lua_istable(L, first)) {
    n = (int)lua_rawlen(L, first);
    if (n > SDR_MAX_DIMS)
      return lsdr_error(L, "at most %d dimensions, got %d", SDR_MAX_DIMS, n);
    for (int i = 0; i < n; i++) {
      lua_rawgeti(L, first, i + 1);
      if (!lua_isinteger(L, -1))
        return lsdr_error(L, "shape entry %d: integer expected, got %s", i + 1,
                          luaL_typename(L, -1));
      shape[i] = lua_tointeger(L, -1);
      lua_pop(L, 1);
    }
    return n;
  }
  for (int i = first; i <= lua_gettop(L) && lua_type(L, i) == LUA_TNUMBER; i++) {
    if (n == SDR_MAX_DIMS)
      return lsdr_error(L, "at most %d dimensions", SDR_MAX_DIMS);
    if (!lua_isinteger(L, i))
      return lsdr_error(L, "shape entry %d: integer expected, got a fraction", n + 1);
    shape[n++] = lua_tointeger(L, i);
  }
  return n;
}

int lsdr_read_shape(lua_State *L, int first, int64_t *shape) { return read_shape(L, first, shape); }

/* reshape and view take the shape as a table or as numbers, so no lsdr_args. */
static int m_reshape(lua_State *L) {
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  int64_t shape[SDR_MAX_DIMS];
  int n = read_shape(L, 2, shape);
  sdr_tensor v;
  if (sdr_tensor_reshape(&v, &t->t, n, shape) != 0)
    return lsdr_engine_error(L);
  lsdr_push_view(L, t, v);
  return 1;
}

/* t:chunk(n, dim=1): a list of views (first dimension) or copies (others). */
static int m_chunk(lua_State *L) {
  lsdr_args(L);
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  lua_Integer n = lua_tointeger(L, 2), dim = lua_tointeger(L, 3);
  if (n < 1)
    return lsdr_argerror(L, 1, "a positive number of chunks");
  if (dim < 0)
    dim += t->t.ndim + 1;
  if (dim < 1 || dim > t->t.ndim)
    return lsdr_error(L, "dimension %I out of range (the tensor has %d)", lua_tointeger(L, 3),
                      t->t.ndim);
  int64_t size = t->t.shape[dim - 1], step = (size + n - 1) / n;
  lua_newtable(L);
  int k = 0;
  size_t inner = 1, outer = 1, esize = sdr_dtype_size(t->t.dtype);
  for (int d = 0; d < dim - 1; d++)
    outer *= (size_t)t->t.shape[d];
  for (int d = dim; d < t->t.ndim; d++)
    inner *= (size_t)t->t.shape[d];
  for (int64_t start = 0; start < size; start += step) {
    int64_t len = start + step <= size ? step : size - start;
    if (dim == 1) {
      sdr_tensor v;
      if (sdr_tensor_narrow0(&v, &t->t, start, len) != 0)
        return lsdr_engine_error(L);
      lsdr_push_view(L, t, v);
    } else {
      if (t->t.device != SDR_DEVICE_CPU)
        return lsdr_error(L, "chunk along dimension %I needs a CPU tensor", dim);
      int64_t shape[SDR_MAX_DIMS];
      memcpy(shape, t->t.shape, sizeof shape);
      shape[dim - 1] = len;
      lsdr_tensor *c = lsdr_push_new_tensor(L, t->storage->be, t->t.dtype, t->t.ndim, shape);
      size_t row = (size_t)len * inner * esize, full = (size_t)size * inner * esize;
      for (size_t o = 0; o < outer; o++)
        memcpy((char *)c->t.data + o * row,
               (const char *)t->t.data + o * full + (size_t)start * inner * esize, row);
    }
    lua_rawseti(L, -2, ++k);
  }
  return 1;
}

static int m_item(lua_State *L) {
  lsdr_args(L);
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  if (sdr_tensor_numel(&t->t) != 1)
    return lsdr_error(L, "a tensor with %I elements cannot be converted to a number",
                      (lua_Integer)sdr_tensor_numel(&t->t));
  double *v = lsdr_tensor_host_values(L, t);
  double x = v[0];
  free(v);
  if (is_float_dtype(t->t.dtype) || t->t.dtype == SDR_F64)
    lua_pushnumber(L, x);
  else
    lua_pushinteger(L, (lua_Integer)x);
  return 1;
}

static void push_nested(lua_State *L, const lsdr_tensor *t, const double *v, int dim, size_t *pos) {
  if (dim == t->t.ndim) {
    double x = v[(*pos)++];
    if (is_float_dtype(t->t.dtype) || t->t.dtype == SDR_F64)
      lua_pushnumber(L, x);
    else
      lua_pushinteger(L, (lua_Integer)x);
    return;
  }
  lua_createtable(L, (int)t->t.shape[dim], 0);
  for (int64_t i = 0; i < t->t.shape[dim]; i++) {
    push_nested(L, t, v, dim + 1, pos);
    lua_rawseti(L, -2, i + 1);
  }
}

static int m_tolist(lua_State *L) {
  lsdr_args(L);
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  double *v = lsdr_tensor_host_values(L, t);
  size_t pos = 0;
  push_nested(L, t, v, 0, &pos);
  free(v);
  return 1;
}

/* Reductions over all elements, in float64, returned as 0-d tensors as torch does. */
typedef enum { RED_SUM, RED_MEAN, RED_MAX, RED_MIN, RED_STD } reduction;

static int reduce(lua_State *L, reduction r) {
  lsdr_args(L);
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  size_t n = (size_t)sdr_tensor_numel(&t->t);
  if (n == 0 && (r == RED_MAX || r == RED_MIN))
    return lsdr_error(L, "max() and min() of an empty tensor");
  double *v = lsdr_tensor_host_values(L, t);
  double acc = r == RED_MAX ? -INFINITY : r == RED_MIN ? INFINITY : 0;
  int nan = 0;
  for (size_t i = 0; i < n; i++) {
    nan |= isnan(v[i]);
    if (r == RED_MAX)
      acc = v[i] > acc ? v[i] : acc;
    else if (r == RED_MIN)
      acc = v[i] < acc ? v[i] : acc;
    else
      acc += v[i];
  }
  if (r == RED_MEAN || r == RED_STD)
    acc /= (double)n;
  if (r == RED_STD) { /* torch's default: unbiased */
    double ss = 0;
    for (size_t i = 0; i < n; i++)
      ss += (v[i] - acc) * (v[i] - acc);
    acc = n > 1 ? sqrt(ss / (double)(n - 1)) : NAN;
  }
  free(v);
  if (nan) /* torch propagates NaN through max/min as well */
    acc = NAN;
  sdr_dtype out = is_float_dtype(t->t.dtype)
                      ? t->t.dtype
                      : (r == RED_MEAN || r == RED_STD ? SDR_F32 : t->t.dtype);
  lsdr_push_from_host(L, t->storage->be, out, 0, NULL, &acc);
  return 1;
}
static int m_sum(lua_State *L) { return reduce(L, RED_SUM); }
static int m_mean(lua_State *L) { return reduce(L, RED_MEAN); }
static int m_max(lua_State *L) { return reduce(L, RED_MAX); }
static int m_min(lua_State *L) { return reduce(L, RED_MIN); }
static int m_std(lua_State *L) { return reduce(L, RED_STD); }

/* ---- arithmetic -------------------------------------------------------- */

static sdr_dtype result_dtype(sdr_dtype a, sdr_dtype b) {
  if (a == b)
    return a;
  return SDR_F32;
}

/* The operand at idx as a float32 tensor on be: a tensor converted, or a number as a 0-d tensor. */
static lsdr_tensor *operand(lua_State *L, int idx, sdr_backend *be, const char *op) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    double x = lua_tonumber(L, idx);
    return lsdr_push_from_host(L, be, SDR_F32, 0, NULL, &x);
  }
  lsdr_tensor *t = lsdr_to_tensor(L, idx);
  if (!t)
    luaL_error(L, "%s: a tensor or a number expected, got %s", op, luaL_typename(L, idx));
  if (!is_float_dtype(t->t.dtype))
    luaL_error(L, "%s: %s tensors are not supported here; convert with :float()", op,
               sdr_dtype_name(t->t.dtype));
  if (t->storage->be != be)
    luaL_error(L, "%s: expected all tensors on the same device, found %s and %s", op,
               sdr_device_name(t->t.device), sdr_device_name(be->device));
  return lsdr_push_float32(L, idx);
}

int lsdr_tensor_arith(lua_State *L, int ia, int ib, sdr_binary_op op, const char *name) {
  ia = lua_absindex(L, ia);
  ib = lua_absindex(L, ib);
  lsdr_tensor *ta = lsdr_to_tensor(L, ia), *tb = lsdr_to_tensor(L, ib);
  lsdr_tensor *any = ta ? ta : tb;
  if (!any)
    return luaL_error(L, "%s: a tensor expected, got %s and %s", name, luaL_typename(L, ia),
                      luaL_typename(L, ib));
  sdr_backend *be = any->storage->be;
  sdr_dtype rd = ta && tb ? result_dtype(ta->t.dtype, tb->t.dtype) : any->t.dtype;
  lsdr_tensor *a = operand(L, ia, be, name);
  lsdr_tensor *b = operand(L, ib, be, name);
  int ndim;
  int64_t shape[SDR_MAX_DIMS];
  if (sdr_broadcast_shape(&a->t, &b->t, &ndim, shape) != 0) {
    char sa[128], sb[128];
    return luaL_error(L, "%s: shapes %s and %s do not broadcast", name,
                      sdr_shape_str(&a->t, sa, sizeof sa), sdr_shape_str(&b->t, sb, sizeof sb));
  }
  lsdr_tensor *out = lsdr_push_new_tensor(L, be, SDR_F32, ndim, shape);
  if (sdr_binary(be, &out->t, &a->t, &b->t, op) != 0)
    return luaL_error(L, "%s: %s", name, sdr_last_error());
  if (rd != SDR_F32)
    push_cast(L, -1, rd);
  return 1;
}

static int arith(lua_State *L, sdr_binary_op op, const char *name) {
  return lsdr_tensor_arith(L, 1, 2, op, name);
}
static int t_add(lua_State *L) { return arith(L, SDR_BINARY_ADD, "Tensor +"); }
static int t_sub(lua_State *L) { return arith(L, SDR_BINARY_SUB, "Tensor -"); }
static int t_mul(lua_State *L) { return arith(L, SDR_BINARY_MUL, "Tensor *"); }
static int t_div(lua_State *L) { return arith(L, SDR_BINARY_DIV, "Tensor /"); }

static int t_unm(lua_State *L) {
  lua_settop(L, 1);
  lua_pushnumber(L, -1);
  return arith(L, SDR_BINARY_MUL, "Tensor -");
}

static int unary_method(lua_State *L, sdr_unary_op op) {
  lsdr_args(L);
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  if (!is_float_dtype(t->t.dtype))
    return lsdr_error(L, "%s tensors are not supported; convert with :float()",
                      sdr_dtype_name(t->t.dtype));
  sdr_dtype rd = t->t.dtype;
  lsdr_tensor *x = lsdr_push_float32(L, 1);
  lsdr_tensor *out = lsdr_push_new_tensor(L, t->storage->be, SDR_F32, t->t.ndim, t->t.shape);
  if (sdr_unary(t->storage->be, &out->t, &x->t, op) != 0)
    return lsdr_engine_error(L);
  if (rd != SDR_F32)
    push_cast(L, -1, rd);
  return 1;
}
static int m_exp(lua_State *L) { return unary_method(L, SDR_UNARY_EXP); }
static int m_sqrt(lua_State *L) { return unary_method(L, SDR_UNARY_SQRT); }

static int m_abs(lua_State *L) {
  lsdr_args(L);
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  double *v = lsdr_tensor_host_values(L, t);
  size_t n = (size_t)sdr_tensor_numel(&t->t);
  for (size_t i = 0; i < n; i++)
    v[i] = fabs(v[i]);
  lsdr_push_from_host(L, t->storage->be, t->t.dtype, t->t.ndim, t->t.shape, v);
  free(v);
  return 1;
}

/* Element-wise on the host, in float64, back in the tensor's dtype. */
static int host_map(lua_State *L, double (*f)(double, double, double), double a, double b) {
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  double *v = lsdr_tensor_host_values(L, t);
  size_t n = (size_t)sdr_tensor_numel(&t->t);
  for (size_t i = 0; i < n; i++)
    v[i] = f(v[i], a, b);
  lsdr_push_from_host(L, t->storage->be, t->t.dtype, t->t.ndim, t->t.shape, v);
  free(v);
  return 1;
}

static double clamp_fn(double x, double lo, double hi) {
  if (x != x)
    return x;
  return x < lo ? lo : x > hi ? hi : x;
}

static double round_fn(double x, double a, double b) {
  (void)a, (void)b;
  return nearbyint(x); /* half to even, as torch.round */
}

static int m_clamp(lua_State *L) {
  lsdr_args(L);
  double lo = lua_isnil(L, 2) ? -INFINITY : lua_tonumber(L, 2);
  double hi = lua_isnil(L, 3) ? INFINITY : lua_tonumber(L, 3);
  return host_map(L, clamp_fn, lo, hi);
}

static int m_round(lua_State *L) {
  lsdr_args(L);
  return host_map(L, round_fn, 0, 0);
}

/* t:permute(1, 3, 4, 2): dimensions reordered (1-based, as t[i] is), a copy. */
static int m_permute(lua_State *L) {
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  int64_t dims[SDR_MAX_DIMS];
  int n = lsdr_read_shape(L, 2, dims);
  if (n != t->t.ndim)
    return lsdr_error(L, "%d dimensions given for a %d-d tensor", n, t->t.ndim);
  int perm[SDR_MAX_DIMS], seen[SDR_MAX_DIMS] = {0};
  int64_t shape[SDR_MAX_DIMS];
  for (int i = 0; i < n; i++) {
    int64_t d = dims[i] < 0 ? dims[i] + n + 1 : dims[i];
    if (d < 1 || d > n || seen[d - 1]++)
      return lsdr_error(L, "the dimensions must be 1..%d, each once", n);
    perm[i] = (int)d - 1;
    shape[i] = t->t.shape[d - 1];
  }
  lsdr_tensor *out = lsdr_push_new_tensor(L, t->storage->be, t->t.dtype, n, shape);
  if (sdr_permute(t->storage->be, &out->t, &t->t, perm) != 0)
    return lsdr_engine_error(L);
  return 1;
}

static const lsdr_func tensor_methods[] = {
    {"Tensor:clamp",
     m_clamp,
     "Values limited to [min, max] (either may be nil).",
     {{"min", "number", "nil"}, {"max", "number", "nil"}}},
    {"Tensor:round", m_round, "Rounded to the nearest integer, halves to even (torch.round)."},
    {"Tensor:permute",
     m_permute,
     "A copy with the dimensions reordered (1-based): t:permute(1, 3, 4, 2) for NCHW to NHWC.",
     {{"dims", "table|integer"}}},
    {"Tensor:size",
     m_size,
     "The shape as a list, or the size of one dimension (1-based).",
     {{"dim", "integer", "nil"}}},
    {"Tensor:dim", m_dim, "The number of dimensions."},
    {"Tensor:numel", m_numel, "The number of elements."},
    {"Tensor:to",
     m_to,
     "A copy on another device or in another dtype (itself when unchanged); "
     "t:to(\"cuda\", torch.float16) or t:to{device = ..., dtype = ...} do both.",
     {{"target", "string|table"}, {"dtype", "string|table", "nil"}}},
    {"Tensor:float", m_float, "As float32."},
    {"Tensor:half", m_half, "As float16."},
    {"Tensor:bfloat16", m_bfloat16, "As bfloat16."},
    {"Tensor:long", m_long, "As int64."},
    {"Tensor:double", m_double, "As float64."},
    {"Tensor:int", m_int, "As int32."},
    {"Tensor:type",
     m_type,
     "With no argument the type's name (\"torch.FloatTensor\"); with a dtype, as t:to(dtype).",
     {{"dtype", "table|string", "nil"}}},
    {"Tensor:cpu", m_cpu, "On the CPU."},
    {"Tensor:cuda", m_cuda, "On the GPU."},
    {"Tensor:clone", m_clone, "A copy with its own memory."},
    {"Tensor:reshape",
     m_reshape,
     "A view with another shape (a table or numbers; one may be -1).",
     {{"shape", "table|integer"}}},
    {"Tensor:view", m_reshape, "Same as reshape.", {{"shape", "table|integer"}}},
    {"Tensor:chunk",
     m_chunk,
     "Splits into n pieces along dim (1-based), as torch.chunk.",
     {{"chunks", "integer"}, {"dim", "integer", "1"}}},
    {"Tensor:item", m_item, "The value of a one-element tensor as a number."},
    {"Tensor:tolist", m_tolist, "Nested Lua lists of the values."},
    {"Tensor:sum", m_sum, "Sum of all elements (a 0-d tensor)."},
    {"Tensor:mean", m_mean, "Mean of all elements (a 0-d tensor)."},
    {"Tensor:max", m_max, "Largest element (a 0-d tensor)."},
    {"Tensor:min", m_min, "Smallest element (a 0-d tensor)."},
    {"Tensor:std", m_std, "Standard deviation, unbiased as torch's default (a 0-d tensor)."},
    {"Tensor:abs", m_abs, "Element-wise absolute value."},
    {"Tensor:exp", m_exp, "Element-wise exponential."},
    {"Tensor:sqrt", m_sqrt, "Element-wise square root."},
    {"Tensor:save_npy",
     lsdr_tensor_save_npy,
     "Writes a NumPy .npy file (atomically).",
     {{"path", "string"}}},
    {0}};

/* The same C functions as torch.f(t, ...): after lsdr_args the stack holds the
 * tensor and then the arguments, as for the method. */
const lsdr_func lsdr_torch_method_funcs[] = {
    {"torch.clamp",
     m_clamp,
     "Values limited to [min, max] (either may be nil), as t:clamp.",
     {{"input", "Tensor"}, {"min", "number", "nil"}, {"max", "number", "nil"}}},
    {"torch.round", m_round, "Rounded, halves to even, as t:round.", {{"input", "Tensor"}}},
    {"torch.abs", m_abs, "Element-wise absolute value.", {{"input", "Tensor"}}},
    {"torch.exp", m_exp, "Element-wise exponential.", {{"input", "Tensor"}}},
    {"torch.sqrt", m_sqrt, "Element-wise square root.", {{"input", "Tensor"}}},
    {"torch.sum", m_sum, "Sum of all elements (a 0-d tensor).", {{"input", "Tensor"}}},
    {"torch.mean", m_mean, "Mean of all elements (a 0-d tensor).", {{"input", "Tensor"}}},
    {"torch.std", m_std, "Standard deviation, unbiased (a 0-d tensor).", {{"input", "Tensor"}}},
    {0}};

void lsdr_open_tensor_methods(lua_State *L) {
  lua_newtable(L);
  lsdr_register(L, -1, tensor_methods);
  lsdr_register(L, -1, lsdr_tensor_shape_methods);
  lsdr_register(L, -1, lsdr_tensor_math_methods);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, METHODS_KEY);
  luaL_getmetatable(L, LSDR_TENSOR);
  /* For completion: the methods, and the properties as true. */
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, -4)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  static const char *const props[] = {"shape", "dtype", "device", "ndim", "is_cuda", NULL};
  for (int i = 0; props[i]; i++) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, props[i]);
  }
  lua_setfield(L, -2, "__fields");
  static const luaL_Reg meta[] = {{"__index", tensor_index},
                                  {"__newindex", tensor_newindex},
                                  {"__len", tensor_len},
                                  {"__add", t_add},
                                  {"__sub", t_sub},
                                  {"__mul", t_mul},
                                  {"__div", t_div},
                                  {"__unm", t_unm},
                                  {NULL, NULL}};
  luaL_setfuncs(L, meta, 0);
  lsdr_tensor_math_meta(L, -1);
  lua_pop(L, 2);
}

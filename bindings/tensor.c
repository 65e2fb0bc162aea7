/* bindings/tensor.c — the Tensor userdata: storage, views, properties, printing. */
#include "bindings/tensor.h"
#include "engine/error.h" // sdr_last_error
#include "bindings/tensor_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/cuda_device.h"    // lsdr_cuda_device_get
#include "bindings/lsdr.h"           // lsdr_error
#include "kernels/cpu/cpu_backend.h" // sdr_cpu_backend_create
#include "kernels/half.h"            // sdr_f16_to_f32, sdr_bf16_to_f32

/* ---- backends of this Lua state --------------------------------------- */

static const char BACKENDS_KEY[] = "sdrepl.backends";

typedef struct backend_slot {
  sdr_backend *cpu;
  sdr_backend *cuda;
  void (*cuda_destroy)(sdr_backend *be); /* of the device that made cuda */
} backend_slot;

static int backends_gc(lua_State *L) {
  backend_slot *s = lua_touserdata(L, 1);
  if (s->cpu)
    sdr_cpu_backend_destroy(s->cpu);
  s->cpu = NULL;
  if (s->cuda)
    s->cuda_destroy(s->cuda);
  s->cuda = NULL;
  return 0;
}

static backend_slot *backends(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, BACKENDS_KEY) == LUA_TUSERDATA) {
    backend_slot *s = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return s;
  }
  lua_pop(L, 1);
  backend_slot *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  lua_newtable(L);
  lua_pushcfunction(L, backends_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, BACKENDS_KEY);
  return s;
}

sdr_backend *lsdr_backend(lua_State *L, sdr_device device) {
  backend_slot *s = backends(L);
  if (device == SDR_DEVICE_CPU) {
    if (!s->cpu)
      s->cpu = sdr_cpu_backend_create();
    if (!s->cpu)
      luaL_error(L, "cannot start the CPU backend: %s", sdr_last_error());
    return s->cpu;
  }
  const lsdr_cuda_device *gpu = lsdr_cuda_device_get();
  if (!gpu)
    luaL_error(L, "CUDA is not available: this build of sdrepl has no CUDA backend (nvcc was not "
                  "found when it was built); everything runs on the CPU without :to(\"cuda\")");
  if (!s->cuda) {
    if (gpu->count() == 0)
      luaL_error(L,
                 "CUDA is not available (%s): torch.cuda.is_available() is false here; "
                 "everything runs on the CPU without :to(\"cuda\")",
                 gpu->reason());
    s->cuda = gpu->create();
    if (!s->cuda)
      luaL_error(L, "cannot start the CUDA backend: %s", sdr_last_error());
    s->cuda_destroy = gpu->destroy;
  }
  return s->cuda;
}

void lsdr_push_device(lua_State *L, sdr_device d) {
  lua_pushstring(L, d == SDR_DEVICE_CPU ? "cpu" : "cuda:0");
}

int lsdr_parse_device(const char *s) {
  if (strcmp(s, "cpu") == 0)
    return SDR_DEVICE_CPU;
  if (strcmp(s, "cuda") == 0 || strcmp(s, "cuda:0") == 0)
    return SDR_DEVICE_CUDA;
  return -1;
}

/* ---- dtypes ------------------------------------------------------------ */

static const char DTYPES_KEY[] = "sdrepl.dtypes"; /* [sdr_dtype] = dtype object */
#define LSDR_DTYPE "torch.dtype"

static int dtype_tostring(lua_State *L) {
  lua_getfield(L, 1, "name");
  lua_pushfstring(L, "torch.%s", lua_tostring(L, -1));
  return 1;
}

void lsdr_push_dtype(lua_State *L, sdr_dtype dtype) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, DTYPES_KEY) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    luaL_newmetatable(L, LSDR_DTYPE);
    lua_pushcfunction(L, dtype_tostring);
    lua_setfield(L, -2, "__tostring");
    for (int t = 0; t < SDR_DTYPE_COUNT; t++) {
      lua_newtable(L);
      lua_pushstring(L, sdr_dtype_name((sdr_dtype)t));
      lua_setfield(L, -2, "name");
      lua_pushinteger(L, t);
      lua_setfield(L, -2, "id");
      lua_pushvalue(L, -2);
      lua_setmetatable(L, -2);
      lua_rawseti(L, -3, t + 1);
    }
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, DTYPES_KEY);
  }
  lua_rawgeti(L, -1, (int)dtype + 1);
  lua_remove(L, -2);
}

int lsdr_to_dtype(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TSTRING)
    return sdr_dtype_from_name(lua_tostring(L, idx));
  if (luaL_testudata(L, idx, LSDR_DTYPE) || (lua_istable(L, idx) && lua_getmetatable(L, idx))) {
    if (lua_istable(L, idx))
      lua_pop(L, 1);
    if (lua_getfield(L, idx, "id") == LUA_TNUMBER) {
      int t = (int)lua_tointeger(L, -1);
      lua_pop(L, 1);
      lua_getfield(L, idx, "name");
      int ok = lua_type(L, -1) == LUA_TSTRING && sdr_dtype_from_name(lua_tostring(L, -1)) == t;
      lua_pop(L, 1);
      return ok ? t : -1;
    }
    lua_pop(L, 1);
  }
  return -1;
}

/* ---- storage and views ------------------------------------------------- */

static void storage_release(lsdr_storage *s) {
  if (s && --s->refs == 0) {
    sdr_free(s->be, s->data);
    free(s);
  }
}

lsdr_tensor *lsdr_to_tensor(lua_State *L, int idx) {
  lsdr_tensor *t = luaL_testudata(L, idx, LSDR_TENSOR);
  return t && t->storage ? t : NULL;
}

lsdr_tensor *lsdr_check_tensor(lua_State *L, int idx) {
  lsdr_tensor *t = lsdr_to_tensor(L, idx);
  if (!t)
    luaL_typeerror(L, idx, LSDR_TENSOR);
  return t;
}

/* The userdata is made first and filled after, so an error halfway leaves
 * nothing half-built (only an empty tensor for the collector). */
static lsdr_tensor *push_empty(lua_State *L) {
  lsdr_tensor *t = lua_newuserdatauv(L, sizeof *t, 0);
  memset(t, 0, sizeof *t);
  luaL_setmetatable(L, LSDR_TENSOR);
  return t;
}

lsdr_tensor *lsdr_push_new_tensor(lua_State *L, sdr_backend *be, sdr_dtype dtype, int ndim,
                                  const int64_t *shape) {
  lsdr_tensor *t = push_empty(L);
  sdr_tensor v = sdr_tensor_view(NULL, dtype, be->device, ndim, shape);
  size_t bytes = sdr_tensor_nbytes(&v);
  lsdr_storage *s = calloc(1, sizeof *s);
  if (!s) {
    luaL_error(L, "out of memory");
    return NULL;
  }
  s->data = sdr_alloc(be, bytes ? bytes : 1);
  if (!s->data) {
    free(s);
    luaL_error(L, "cannot allocate a tensor of %I bytes: %s", (lua_Integer)bytes, sdr_last_error());
    return NULL; /* not reached: luaL_error does not return */
  }
  s->refs = 1;
  s->be = be;
  s->bytes = bytes;
  v.data = s->data;
  t->t = v;
  t->storage = s;
  /* The collector does not see this memory: tell it, so big tensors are freed in time. */
  lua_gc(L, LUA_GCSTEP, (int)(bytes >> 10 > 1 << 20 ? 1 << 20 : bytes >> 10));
  return t;
}

lsdr_tensor *lsdr_push_view(lua_State *L, const lsdr_tensor *of, sdr_tensor view) {
  lsdr_storage *s = of->storage;
  lsdr_tensor *t = push_empty(L);
  s->refs++;
  t->t = view;
  t->storage = s;
  return t;
}

void lsdr_push_row_views(lua_State *L, const lsdr_tensor *t) {
  const int64_t n = t->t.ndim > 0 ? t->t.shape[0] : 0;
  lua_createtable(L, (int)n, 0);
  for (int64_t i = 0; i < n; i++) {
    sdr_tensor row, v;
    if (sdr_tensor_narrow0(&row, &t->t, i, 1) != 0 ||
        sdr_tensor_reshape(&v, &row, t->t.ndim - 1, t->t.shape + 1) != 0)
      luaL_error(L, "%s", sdr_last_error());
    lsdr_push_view(L, t, v);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

static int tensor_gc(lua_State *L) {
  lsdr_tensor *t = luaL_testudata(L, 1, LSDR_TENSOR);
  if (t && t->storage) {
    storage_release(t->storage);
    t->storage = NULL;
  }
  return 0;
}

/* ---- reading elements (for printing, item, tolist) --------------------- */

double *lsdr_tensor_host_values(lua_State *L, const lsdr_tensor *t) {
  size_t n = (size_t)sdr_tensor_numel(&t->t), bytes = sdr_tensor_nbytes(&t->t);
  void *host = t->t.data;
  void *copy = NULL;
  if (t->t.device != SDR_DEVICE_CPU) {
    copy = malloc(bytes ? bytes : 1);
    if (!copy || sdr_download(t->storage->be, copy, t->t.data, bytes) != 0) {
      free(copy);
      luaL_error(L, "cannot read the tensor: %s", sdr_last_error());
    }
    host = copy;
  }
  double *out = malloc((n ? n : 1) * sizeof *out);
  if (!out) {
    free(copy);
    luaL_error(L, "out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    switch (t->t.dtype) {
    case SDR_F32:
      out[i] = ((const float *)host)[i];
      break;
    case SDR_F16:
      out[i] = sdr_f16_to_f32(((const uint16_t *)host)[i]);
      break;
    case SDR_BF16:
      out[i] = sdr_bf16_to_f32(((const uint16_t *)host)[i]);
      break;
    case SDR_F64:
      out[i] = ((const double *)host)[i];
      break;
    case SDR_I64:
      out[i] = (double)((const int64_t *)host)[i];
      break;
    case SDR_I32:
      out[i] = ((const int32_t *)host)[i];
      break;
    case SDR_I16:
      out[i] = ((const int16_t *)host)[i];
      break;
    case SDR_I8:
      out[i] = ((const int8_t *)host)[i];
      break;
    case SDR_U8:
    case SDR_BOOL:
      out[i] = ((const uint8_t *)host)[i];
      break;
    default:
      out[i] = NAN;
    }
  }
  free(copy);
  return out;
}

float *lsdr_tensor_host_floats(lua_State *L, const lsdr_tensor *t) {
  double *v = lsdr_tensor_host_values(L, t);
  size_t n = (size_t)sdr_tensor_numel(&t->t);
  float *f = malloc((n ? n : 1) * sizeof *f);
  for (size_t i = 0; f && i < n; i++)
    f[i] = (float)v[i];
  free(v);
  if (!f)
    luaL_error(L, "out of memory");
  return f;
}

static int is_integer_dtype(sdr_dtype d) {
  return d != SDR_F32 && d != SDR_F16 && d != SDR_BF16 && d != SDR_F64;
}

/* torch's layout: tensor([[ 0.1000, -2.0000],\n        [ 3.0000,  4.0000]]), summarised
 * past 1000 elements with the first and last 3 of each dimension. */
static void format_values(luaL_Buffer *b, const lsdr_tensor *t, const double *v, int dim,
                          size_t offset, int summarise, int width, int indent) {
  const sdr_tensor *x = &t->t;
  if (x->ndim == 0) {
    char num[64];
    snprintf(num, sizeof num, is_integer_dtype(x->dtype) ? "%.0f" : "%.4f", v[0]);
    luaL_addstring(b, num);
    return;
  }
  int64_t n = x->shape[dim];
  size_t stride = 1;
  for (int d = dim + 1; d < x->ndim; d++)
    stride *= (size_t)x->shape[d];
  luaL_addchar(b, '[');
  for (int64_t i = 0; i < n; i++) {
    if (summarise && n > 6 && i == 3) {
      luaL_addstring(b, dim == x->ndim - 1 ? "..., " : "...,\n");
      if (dim != x->ndim - 1)
        for (int s = 0; s < indent + dim + 1; s++)
          luaL_addchar(b, ' ');
      i = n - 3;
    }
    if (dim == x->ndim - 1) {
      char num[64];
      double e = v[offset + (size_t)i];
      if (is_integer_dtype(x->dtype))
        snprintf(num, sizeof num, "%*.0f", width, e);
      else
        snprintf(num, sizeof num, "%*.4f", width, e);
      luaL_addstring(b, num);
    } else {
      format_values(b, t, v, dim + 1, offset + (size_t)i * stride, summarise, width, indent);
    }
    if (i + 1 < n) {
      luaL_addchar(b, ',');
      if (dim == x->ndim - 1) {
        luaL_addchar(b, ' ');
      } else {
        for (int k = dim; k < x->ndim - 1; k++)
          luaL_addchar(b, '\n');
        for (int s = 0; s < indent + dim + 1; s++)
          luaL_addchar(b, ' ');
      }
    }
  }
  luaL_addchar(b, ']');
}

static int tensor_tostring(lua_State *L) {
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  double *v = lsdr_tensor_host_values(L, t);
  size_t n = (size_t)sdr_tensor_numel(&t->t);
  int width = 1;
  for (size_t i = 0; i < n; i++) {
    char num[64];
    int w = snprintf(num, sizeof num, is_integer_dtype(t->t.dtype) ? "%.0f" : "%.4f", v[i]);
    if (w > width)
      width = w;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "tensor(");
  if (n == 0 && t->t.ndim > 0)
    luaL_addstring(&b, "[]");
  else
    format_values(&b, t, v, 0, 0, n > 1000, width, 7);
  free(v);
  if (t->t.dtype != SDR_F32 && t->t.dtype != SDR_I64) {
    luaL_addstring(&b, ", dtype=torch.");
    luaL_addstring(&b, sdr_dtype_name(t->t.dtype));
  }
  if (t->t.device != SDR_DEVICE_CPU)
    luaL_addstring(&b, ", device='cuda:0'");
  if (n == 0 && t->t.ndim > 0) {
    char shape[128];
    luaL_addstring(&b, ", size=");
    luaL_addstring(&b, sdr_shape_str(&t->t, shape, sizeof shape));
  }
  luaL_addchar(&b, ')');
  luaL_pushresult(&b);
  return 1;
}

void lsdr_open_tensor(lua_State *L) {
  /* The backends' holder first, before any object that keeps device memory: lua_close runs
   * finalizers newest first, so the backends go last (a scheduler made before the first
   * pipeline freed its buffers into a destroyed backend). */
  backends(L);
  if (!luaL_newmetatable(L, LSDR_TENSOR)) {
    lua_pop(L, 1);
    return;
  }
  lua_pushcfunction(L, tensor_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, tensor_gc);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, tensor_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  lsdr_open_tensor_methods(L);
}

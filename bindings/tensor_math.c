/* bindings/tensor_math.c — the element-wise maths and small reductions of torch that
 * notebooks use around a pipeline: t:add/sub/mul/div (the operators as methods), pow
 * (and t ^ x), square, cos, sin, lerp, norm, argmax, torch.where.
 *
 * Where the backends have the op (sdr_binary, sdr_affine) it runs there, on the
 * tensor's device. The others (pow, cos, sin, norm, argmax, where) have no backend
 * op: their values are read to the host, computed in float64 and written back in
 * the result's dtype on the tensor's device. They are notebook-side operations on
 * small tensors (latents, embeddings, noise levels), not the UNet's inner loop, so
 * the round trip costs nothing worth a kernel per backend.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/lsdr.h" // lsdr_args, lsdr_error, lsdr_engine_error
#include "bindings/tensor.h"
#include "bindings/tensor_internal.h" // lsdr_tensor_arith, lsdr_push_from_host, lsdr_dim_index
#include "engine/error.h"             // sdr_last_error

static int is_float(sdr_dtype d) {
  return d == SDR_F32 || d == SDR_F16 || d == SDR_BF16 || d == SDR_F64;
}

/* ---- the operators as methods ------------------------------------------- */

static int m_add(lua_State *L) {
  lsdr_args(L);
  return lsdr_tensor_arith(L, 1, 2, SDR_BINARY_ADD, lsdr_current(L)->name);
}
static int m_sub(lua_State *L) {
  lsdr_args(L);
  return lsdr_tensor_arith(L, 1, 2, SDR_BINARY_SUB, lsdr_current(L)->name);
}
static int m_mul(lua_State *L) {
  lsdr_args(L);
  return lsdr_tensor_arith(L, 1, 2, SDR_BINARY_MUL, lsdr_current(L)->name);
}
static int m_div(lua_State *L) {
  lsdr_args(L);
  return lsdr_tensor_arith(L, 1, 2, SDR_BINARY_DIV, lsdr_current(L)->name);
}

/* ---- host evaluation with broadcasting ---------------------------------- */

/* An operand read to the host: its values (in a userdata on the stack, so an
 * error later frees them) and its shape; a number is a 0-d operand. */
typedef struct host_operand {
  const double *v;
  sdr_tensor shape; /* dtype, ndim, shape; data unused */
  int is_number;
} host_operand;

static void read_operand(lua_State *L, int idx, host_operand *op, const char *name) {
  memset(op, 0, sizeof *op);
  double *v;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    v = lua_newuserdatauv(L, sizeof *v, 0);
    *v = lua_tonumber(L, idx);
    op->is_number = 1;
    op->shape.dtype = lua_isinteger(L, idx) ? SDR_I64 : SDR_F32;
  } else {
    lsdr_tensor *t = lsdr_to_tensor(L, idx);
    if (!t)
      luaL_error(L, "%s: a tensor or a number expected, got %s", name, lsdr_typename(L, idx));
    size_t n = (size_t)sdr_tensor_numel(&t->t);
    v = lua_newuserdatauv(L, (n ? n : 1) * sizeof *v, 0);
    double *host = lsdr_tensor_host_values(L, t);
    memcpy(v, host, n * sizeof *v);
    free(host);
    op->shape = t->t;
  }
  op->v = v;
}

/* torch's type promotion, for the cases met here: a number takes the tensor's
 * dtype unless it is a fraction and the tensor holds integers (then float32);
 * two tensors give the wider float, or a float over an integer, or int64. */
static sdr_dtype promote(const host_operand *a, const host_operand *b) {
  if (a->is_number && b->is_number)
    return a->shape.dtype == SDR_I64 && b->shape.dtype == SDR_I64 ? SDR_I64 : SDR_F32;
  if (a->is_number || b->is_number) {
    const host_operand *t = a->is_number ? b : a, *x = a->is_number ? a : b;
    return is_float(t->shape.dtype) || x->shape.dtype == SDR_I64 ? t->shape.dtype : SDR_F32;
  }
  sdr_dtype da = a->shape.dtype, db = b->shape.dtype;
  if (da == db)
    return da;
  if (is_float(da) && is_float(db))
    return da == SDR_F64 || db == SDR_F64 ? SDR_F64 : SDR_F32;
  if (is_float(da) || is_float(db))
    return is_float(da) ? da : db;
  return da == SDR_BOOL ? db : db == SDR_BOOL ? da : SDR_I64;
}

/* The device the result goes to: that of the tensor operands, which must agree. */
static sdr_backend *operands_backend(lua_State *L, const int *idx, int k, const char *name) {
  sdr_backend *be = NULL;
  for (int i = 0; i < k; i++) {
    lsdr_tensor *t = lsdr_to_tensor(L, idx[i]);
    if (t && be && t->storage->be != be)
      luaL_error(L, "%s: expected all tensors on the same device, found %s and %s", name,
                 sdr_device_name(be->device), sdr_device_name(t->t.device));
    if (t && !be)
      be = t->storage->be;
  }
  return be ? be : lsdr_backend(L, SDR_DEVICE_CPU);
}

typedef double (*host_fn)(const double *args);

/* out (the broadcast shape of the k operands) = f(operands) element by element;
 * pushes the result in dtype on be. */
static int host_eval(lua_State *L, sdr_backend *be, sdr_dtype dtype, const host_operand *ops, int k,
                     host_fn f, const char *name) {
  int ndim = 0;
  int64_t shape[SDR_MAX_DIMS];
  sdr_tensor acc = sdr_tensor_view(NULL, SDR_F32, SDR_DEVICE_CPU, 0, NULL);
  for (int i = 0; i < k; i++) {
    if (sdr_broadcast_shape(&acc, &ops[i].shape, &ndim, shape) != 0) {
      char sa[128], sb[128];
      luaL_error(L, "%s: shapes %s and %s do not broadcast", name,
                 sdr_shape_str(&acc, sa, sizeof sa), sdr_shape_str(&ops[i].shape, sb, sizeof sb));
    }
    acc = sdr_tensor_view(NULL, SDR_F32, SDR_DEVICE_CPU, ndim, shape);
  }
  int64_t stride[4][SDR_MAX_DIMS], n = sdr_tensor_numel(&acc);
  for (int i = 0; i < k; i++) {
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
      int od = d - (ndim - ops[i].shape.ndim);
      int64_t size = od >= 0 ? ops[i].shape.shape[od] : 1;
      stride[i][d] = size == 1 ? 0 : s;
      s *= size;
    }
  }
  double *out = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *out, 0);
  int64_t idx[SDR_MAX_DIMS] = {0};
  for (int64_t e = 0; e < n; e++) {
    double args[4];
    for (int i = 0; i < k; i++) {
      int64_t off = 0;
      for (int d = 0; d < ndim; d++)
        off += idx[d] * stride[i][d];
      args[i] = ops[i].v[off];
    }
    out[e] = f(args);
    for (int d = ndim - 1; d >= 0 && ++idx[d] == shape[d]; d--)
      idx[d] = 0;
  }
  lsdr_push_from_host(L, be, dtype, ndim, shape, out);
  return 1;
}

/* ---- pow, square, cos, sin ---------------------------------------------- */

static double pow_fn(const double *a) { return pow(a[0], a[1]); }
static double cos_fn(const double *a) { return cos(a[0]); }
static double sin_fn(const double *a) { return sin(a[0]); }
static double square_fn(const double *a) { return a[0] * a[0]; }

/* t:pow(exponent), torch.pow(base, exponent), t ^ x: either may be a number. */
static int pow_at(lua_State *L, int ia, int ib, const char *name) {
  host_operand ops[2];
  int idx[2] = {lua_absindex(L, ia), lua_absindex(L, ib)};
  sdr_backend *be = operands_backend(L, idx, 2, name);
  read_operand(L, idx[0], &ops[0], name);
  read_operand(L, idx[1], &ops[1], name);
  sdr_dtype dtype = promote(&ops[0], &ops[1]);
  if (!is_float(dtype) && dtype != SDR_BOOL) { /* as torch: no fractions from integers */
    size_t n = (size_t)sdr_tensor_numel(&ops[1].shape);
    for (size_t i = 0; i < n; i++)
      if (ops[1].v[i] < 0)
        return luaL_error(L, "%s: Integers to negative integer powers are not allowed.", name);
  }
  return host_eval(L, be, dtype, ops, 2, pow_fn, name);
}

static int m_pow(lua_State *L) {
  lsdr_args(L);
  return pow_at(L, 1, 2, lsdr_current(L)->name);
}

static int t_pow(lua_State *L) { return pow_at(L, 1, 2, "Tensor ^"); }

/* One-operand functions on the host: floats keep their dtype, integers give float32
 * (torch.cos of an int64 tensor is float32), unless keep_int (square). */
static int host_unary(lua_State *L, host_fn f, int keep_int) {
  lsdr_args(L);
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  host_operand op;
  read_operand(L, 1, &op, lsdr_current(L)->name);
  sdr_dtype dtype = is_float(t->t.dtype) || keep_int ? t->t.dtype : SDR_F32;
  return host_eval(L, t->storage->be, dtype, &op, 1, f, lsdr_current(L)->name);
}

static int m_cos(lua_State *L) { return host_unary(L, cos_fn, 0); }
static int m_sin(lua_State *L) { return host_unary(L, sin_fn, 0); }

/* t:square(): t * t by the backend for float16/32 and bfloat16, on the host otherwise. */
static int m_square(lua_State *L) {
  lsdr_args(L);
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  if (t->t.dtype == SDR_F32 || t->t.dtype == SDR_F16 || t->t.dtype == SDR_BF16)
    return lsdr_tensor_arith(L, 1, 1, SDR_BINARY_MUL, lsdr_current(L)->name);
  return host_unary(L, square_fn, 1);
}

/* ---- lerp --------------------------------------------------------------- */

static lsdr_tensor *new_like_broadcast(lua_State *L, sdr_backend *be, const sdr_tensor *a,
                                       const sdr_tensor *b) {
  int ndim;
  int64_t shape[SDR_MAX_DIMS];
  if (sdr_broadcast_shape(a, b, &ndim, shape) != 0) {
    char sa[128], sb[128];
    lsdr_error(L, "shapes %s and %s do not broadcast", sdr_shape_str(a, sa, sizeof sa),
               sdr_shape_str(b, sb, sizeof sb));
  }
  return lsdr_push_new_tensor(L, be, SDR_F32, ndim, shape);
}

/* t:lerp(end, weight) = t + weight * (end - t), broadcast, on the backend in float32.
 * A number weight follows torch's two-sided formula (end - (end - t) * (1 - weight)
 * from 0.5 on), so the ends are exact; a tensor weight takes the first form. */
static int m_lerp(lua_State *L) {
  lsdr_args(L);
  lsdr_tensor *s = lsdr_check_tensor(L, 1), *e = lsdr_check_tensor(L, 2);
  lsdr_tensor *w = lsdr_to_tensor(L, 3);
  sdr_backend *be = s->storage->be;
  if (!is_float(s->t.dtype) || s->t.dtype == SDR_F64)
    return lsdr_error(L, "%s tensors are not supported; convert with :float()",
                      sdr_dtype_name(s->t.dtype));
  if (e->t.dtype != s->t.dtype)
    return lsdr_error(L, "expected dtype %s for `end` but got dtype %s", sdr_dtype_name(s->t.dtype),
                      sdr_dtype_name(e->t.dtype));
  if (w && w->t.dtype != s->t.dtype)
    return lsdr_error(L, "expected dtype %s for `weight` but got dtype %s",
                      sdr_dtype_name(s->t.dtype), sdr_dtype_name(w->t.dtype));
  if (e->storage->be != be || (w && w->storage->be != be))
    return lsdr_error(L, "expected all tensors on the same device");
  lsdr_tensor *a = lsdr_push_float32(L, 1), *b = lsdr_push_float32(L, 2);
  lsdr_tensor *diff = new_like_broadcast(L, be, &a->t, &b->t);
  if (sdr_binary(be, &diff->t, &b->t, &a->t, SDR_BINARY_SUB) != 0)
    return lsdr_engine_error(L);
  lsdr_tensor *out;
  if (!w) {
    float wt = (float)lua_tonumber(L, 3);
    int low = wt < 0.5f;
    /* diff scaled in place: weight * diff, or -(1 - weight) * diff */
    if (sdr_affine(be, &diff->t, &diff->t, low ? wt : -(1.0f - wt), 0.0f) != 0)
      return lsdr_engine_error(L);
    const sdr_tensor *base = low ? &a->t : &b->t;
    out = new_like_broadcast(L, be, base, &diff->t);
    if (sdr_binary(be, &out->t, base, &diff->t, SDR_BINARY_ADD) != 0)
      return lsdr_engine_error(L);
  } else {
    lsdr_tensor *wf = lsdr_push_float32(L, 3);
    lsdr_tensor *scaled = new_like_broadcast(L, be, &diff->t, &wf->t);
    if (sdr_binary(be, &scaled->t, &diff->t, &wf->t, SDR_BINARY_MUL) != 0)
      return lsdr_engine_error(L);
    out = new_like_broadcast(L, be, &a->t, &scaled->t);
    if (sdr_binary(be, &out->t, &a->t, &scaled->t, SDR_BINARY_ADD) != 0)
      return lsdr_engine_error(L);
  }
  if (s->t.dtype != SDR_F32)
    lsdr_push_cast(L, -1, s->t.dtype);
  return 1;
}

/* ---- norm, argmax ------------------------------------------------------- */

/* t:norm(p=2): the p-norm of all elements (torch.norm's default, Frobenius), a 0-d tensor. */
static int m_norm(lua_State *L) {
  lsdr_args(L);
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  if (!is_float(t->t.dtype))
    return lsdr_error(L, "input dtype should be either floating point or complex, got %s",
                      sdr_dtype_name(t->t.dtype));
  double p = lua_tonumber(L, 2), acc = 0;
  size_t n = (size_t)sdr_tensor_numel(&t->t);
  double *v = lsdr_tensor_host_values(L, t);
  for (size_t i = 0; i < n; i++) {
    double x = fabs(v[i]);
    if (isinf(p))
      acc = p > 0 ? (x > acc || isnan(x) ? x : acc) : (i == 0 || x < acc || isnan(x) ? x : acc);
    else if (p == 0)
      acc += x != 0;
    else if (p == 2)
      acc += x * x;
    else
      acc += pow(x, p);
  }
  free(v);
  if (!isinf(p) && p != 0)
    acc = p == 2 ? sqrt(acc) : pow(acc, 1 / p);
  lsdr_push_from_host(L, t->storage->be, t->t.dtype, 0, NULL, &acc);
  return 1;
}

/* t:argmax([dim], [keepdim]): where the largest value is, as an int64 index that is
 * 1-based like every index here (t[i] picks it); NaN counts as the largest, as in torch. */
static int m_argmax(lua_State *L) {
  lsdr_args(L);
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  int whole = lua_isnil(L, 2), keep = lua_toboolean(L, 3);
  int n = t->t.ndim, d = whole ? 0 : lsdr_dim_index(L, lua_tointeger(L, 2), n > 0 ? n : 1);
  int64_t total = sdr_tensor_numel(&t->t);
  int64_t size = whole || n == 0 ? total : t->t.shape[d];
  if (size == 0)
    return lsdr_error(L, "cannot take argmax of an empty dimension");
  int64_t inner = 1, outer = 1;
  for (int i = d + 1; !whole && i < n; i++)
    inner *= t->t.shape[i];
  for (int i = 0; !whole && i < d; i++)
    outer *= t->t.shape[i];
  int64_t shape[SDR_MAX_DIMS];
  int m = 0;
  for (int i = 0; i < n; i++) {
    if (whole)
      shape[m++] = 1;
    else if (i != d)
      shape[m++] = t->t.shape[i];
    else if (keep)
      shape[m++] = 1;
  }
  if (whole && !keep)
    m = 0;
  double *v = lsdr_tensor_host_values(L, t);
  double *out = malloc((size_t)(outer * inner > 0 ? outer * inner : 1) * sizeof *out);
  if (!out) {
    free(v);
    return luaL_error(L, "out of memory");
  }
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      const double *x = v + o * size * inner + i;
      int64_t best = 0;
      for (int64_t j = 1; j < size && !isnan(x[best * inner]); j++)
        if (x[j * inner] > x[best * inner] || isnan(x[j * inner]))
          best = j;
      out[o * inner + i] = (double)(best + 1);
    }
  free(v);
  /* the buffer goes into a userdata first, so a failing allocation frees it */
  size_t bytes = (size_t)(outer * inner) * sizeof *out;
  double *kept = lua_newuserdatauv(L, bytes, 0);
  memcpy(kept, out, bytes);
  free(out);
  lsdr_push_from_host(L, t->storage->be, SDR_I64, m, shape, kept);
  return 1;
}

/* ---- torch.where -------------------------------------------------------- */

static double where_fn(const double *a) { return a[0] != 0 ? a[1] : a[2]; }

/* torch.where(condition, input, other): input where condition is true (non-zero),
 * other elsewhere, all three broadcast; input and other may be numbers. */
static int torch_where(lua_State *L) {
  lsdr_args(L);
  const char *name = lsdr_current(L)->name;
  int idx[3] = {1, 2, 3};
  sdr_backend *be = operands_backend(L, idx, 3, name);
  host_operand ops[3];
  for (int i = 0; i < 3; i++)
    read_operand(L, i + 1, &ops[i], name);
  return host_eval(L, be, promote(&ops[1], &ops[2]), ops, 3, where_fn, name);
}

const lsdr_func lsdr_tensor_math_methods[] = {
    {"Tensor:add",
     m_add,
     "t + other, broadcast (a tensor or a number).",
     {{"other", "Tensor|number"}}},
    {"Tensor:sub",
     m_sub,
     "t - other, broadcast (a tensor or a number).",
     {{"other", "Tensor|number"}}},
    {"Tensor:mul",
     m_mul,
     "t * other, broadcast (a tensor or a number).",
     {{"other", "Tensor|number"}}},
    {"Tensor:div",
     m_div,
     "t / other, broadcast (a tensor or a number).",
     {{"other", "Tensor|number"}}},
    {"Tensor:pow",
     m_pow,
     "t to the power exponent (a tensor or a number), broadcast; also t ^ exponent.",
     {{"exponent", "Tensor|number"}}},
    {"Tensor:square", m_square, "Element-wise t * t."},
    {"Tensor:cos", m_cos, "Element-wise cosine."},
    {"Tensor:sin", m_sin, "Element-wise sine."},
    {"Tensor:lerp",
     m_lerp,
     "t + weight * (end - t), broadcast (weight a number or a tensor), as torch.lerp.",
     {{"end", "Tensor"}, {"weight", "number|Tensor"}}},
    {"Tensor:norm",
     m_norm,
     "The p-norm of all elements (2: Frobenius, math.huge: max abs), a 0-d tensor.",
     {{"p", "number", "2"}}},
    {"Tensor:argmax",
     m_argmax,
     "Index of the largest value (1-based, so t[i] picks it): of all elements, or along dim.",
     {{"dim", "integer", "nil"}, {"keepdim", "boolean", "false"}}},
    {0}};

const lsdr_func lsdr_torch_math_funcs[] = {
    {"torch.add",
     m_add,
     "input + other, broadcast.",
     {{"input", "Tensor"}, {"other", "Tensor|number"}}},
    {"torch.sub",
     m_sub,
     "input - other, broadcast.",
     {{"input", "Tensor"}, {"other", "Tensor|number"}}},
    {"torch.mul",
     m_mul,
     "input * other, broadcast.",
     {{"input", "Tensor"}, {"other", "Tensor|number"}}},
    {"torch.div",
     m_div,
     "input / other, broadcast.",
     {{"input", "Tensor"}, {"other", "Tensor|number"}}},
    {"torch.pow",
     m_pow,
     "input to the power exponent, broadcast (either may be a number).",
     {{"input", "Tensor|number"}, {"exponent", "Tensor|number"}}},
    {"torch.square", m_square, "Element-wise input * input.", {{"input", "Tensor"}}},
    {"torch.cos", m_cos, "Element-wise cosine.", {{"input", "Tensor"}}},
    {"torch.sin", m_sin, "Element-wise sine.", {{"input", "Tensor"}}},
    {"torch.lerp",
     m_lerp,
     "input + weight * (end - input), broadcast, as torch.lerp.",
     {{"input", "Tensor"}, {"end", "Tensor"}, {"weight", "number|Tensor"}}},
    {"torch.norm",
     m_norm,
     "The p-norm of all elements, a 0-d tensor.",
     {{"input", "Tensor"}, {"p", "number", "2"}}},
    {"torch.argmax",
     m_argmax,
     "Index of the largest value (1-based), of all elements or along dim.",
     {{"input", "Tensor"}, {"dim", "integer", "nil"}, {"keepdim", "boolean", "false"}}},
    {"torch.where",
     torch_where,
     "input where condition is non-zero, other elsewhere (broadcast; numbers allowed).",
     {{"condition", "Tensor"}, {"input", "Tensor|number"}, {"other", "Tensor|number"}}},
    {0}};

void lsdr_tensor_math_meta(lua_State *L, int meta_idx) {
  meta_idx = lua_absindex(L, meta_idx);
  lua_pushcfunction(L, t_pow);
  lua_setfield(L, meta_idx, "__pow");
}

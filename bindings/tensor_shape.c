/* bindings/tensor_shape.c — changing a tensor's shape the torch way: unsqueeze, squeeze,
 * flatten, transpose, expand, repeat, torch.stack, and the no-ops a notebook calls out of
 * habit (detach, contiguous, numpy).
 *
 * Dimensions are 1-based as everywhere here (t:unsqueeze(1) adds a leading
 * dimension, as x.unsqueeze(0) in torch); negative ones count from the end as
 * in torch. Our tensors are always contiguous, so what torch returns as a
 * strided view (transpose, expand) is a copy here; unsqueeze, squeeze and
 * flatten only change the shape and stay views, as in torch.
 */
#include <string.h>

#include <lauxlib.h>

#include "bindings/lsdr.h" // lsdr_args, lsdr_error, lsdr_engine_error
#include "bindings/tensor.h"
#include "bindings/tensor_internal.h" // lsdr_dim_index, lsdr_read_shape
#include "engine/error.h"             // sdr_last_error

int lsdr_dim_index(lua_State *L, lua_Integer dim, int ndim) {
  if (dim == 0)
    lsdr_error(L, "dimension 0: dimensions count from 1 here, as in Lua (1 is the first, -1 the "
                  "last)");
  lua_Integer d = dim < 0 ? dim + ndim : dim - 1;
  if (d < 0 || d >= ndim) {
    if (ndim == 0)
      lsdr_error(L, "dimension %I out of range: the tensor is 0-d", dim);
    lsdr_error(L, "dimension %I out of range for a %d-d tensor (expected 1..%d or -%d..-1)", dim,
               ndim, ndim, ndim);
  }
  return (int)d;
}

static int push_reshaped(lua_State *L, lsdr_tensor *t, int ndim, const int64_t *shape) {
  sdr_tensor v;
  if (sdr_tensor_reshape(&v, &t->t, ndim, shape) != 0)
    return lsdr_engine_error(L);
  lsdr_push_view(L, t, v);
  return 1;
}

/* t:unsqueeze(dim): a view with a new dimension of size 1 at dim of the result. */
static int m_unsqueeze(lua_State *L) {
  lsdr_args(L);
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  int n = t->t.ndim;
  if (n == SDR_MAX_DIMS)
    return lsdr_error(L, "tensors have at most %d dimensions here", SDR_MAX_DIMS);
  int d = lsdr_dim_index(L, lua_tointeger(L, 2), n + 1);
  int64_t shape[SDR_MAX_DIMS];
  for (int i = 0, j = 0; i <= n; i++)
    shape[i] = i == d ? 1 : t->t.shape[j++];
  return push_reshaped(L, t, n + 1, shape);
}

/* t:squeeze([dim]): without dim every dimension of size 1 goes; with one, that
 * dimension goes if its size is 1 (else the shape is unchanged, as torch). */
static int m_squeeze(lua_State *L) {
  lsdr_args(L);
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  int n = t->t.ndim, d = -1, m = 0;
  if (!lua_isnil(L, 2))
    d = lsdr_dim_index(L, lua_tointeger(L, 2), n > 0 ? n : 1); /* torch accepts 1 on a 0-d */
  int64_t shape[SDR_MAX_DIMS];
  for (int i = 0; i < n; i++)
    if (t->t.shape[i] != 1 || (d >= 0 && i != d))
      shape[m++] = t->t.shape[i];
  return push_reshaped(L, t, m, shape);
}

/* t:flatten(start_dim=1, end_dim=-1): dimensions start..end merged into one, a view. */
static int m_flatten(lua_State *L) {
  lsdr_args(L);
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  int n = t->t.ndim;
  if (n == 0) { /* torch: a 0-d tensor flattens to one element */
    int64_t one = 1;
    lsdr_dim_index(L, lua_tointeger(L, 2), 1);
    lsdr_dim_index(L, lua_tointeger(L, 3), 1);
    return push_reshaped(L, t, 1, &one);
  }
  int s = lsdr_dim_index(L, lua_tointeger(L, 2), n), e = lsdr_dim_index(L, lua_tointeger(L, 3), n);
  if (s > e)
    return lsdr_error(L, "start_dim (%I) cannot come after end_dim (%I)", lua_tointeger(L, 2),
                      lua_tointeger(L, 3));
  int64_t shape[SDR_MAX_DIMS];
  int m = 0;
  for (int i = 0; i < n; i++) {
    if (i <= s || i > e)
      shape[m++] = t->t.shape[i];
    else
      shape[m - 1] *= t->t.shape[i];
  }
  return push_reshaped(L, t, m, shape);
}

/* t:transpose(d1, d2): the two dimensions swapped (a copy: sdr_permute, any dtype). */
static int m_transpose(lua_State *L) {
  lsdr_args(L);
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  int n = t->t.ndim;
  if (n == 0) { /* torch allows transpose(0, 0) and transpose(-1, -1) of a 0-d tensor */
    lsdr_dim_index(L, lua_tointeger(L, 2), 1);
    lsdr_dim_index(L, lua_tointeger(L, 3), 1);
    lua_pushvalue(L, 1);
    return 1;
  }
  int a = lsdr_dim_index(L, lua_tointeger(L, 2), n), b = lsdr_dim_index(L, lua_tointeger(L, 3), n);
  int perm[SDR_MAX_DIMS];
  int64_t shape[SDR_MAX_DIMS];
  for (int i = 0; i < n; i++)
    perm[i] = i == a ? b : i == b ? a : i;
  for (int i = 0; i < n; i++)
    shape[i] = t->t.shape[perm[i]];
  lsdr_tensor *out = lsdr_push_new_tensor(L, t->storage->be, t->t.dtype, n, shape);
  if (sdr_permute(t->storage->be, &out->t, &t->t, perm) != 0)
    return lsdr_engine_error(L);
  return 1;
}

/* ---- expand and repeat: tiling copies ----------------------------------- */

/* dst (ndim, out_shape) from src (ndim, in_shape; each in_shape[d] divides
 * out_shape[d]): element i of dimension d reads element i % in_shape[d] — which
 * is expand when in_shape[d] is 1 and repeat otherwise. */
static void tile_copy(char *dst, const char *src, size_t esize, int ndim, const int64_t *out_shape,
                      const int64_t *in_shape) {
  int64_t idx[SDR_MAX_DIMS] = {0}, in_stride[SDR_MAX_DIMS];
  int64_t n = 1, s = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    in_stride[d] = s;
    s *= in_shape[d];
    n *= out_shape[d];
  }
  for (int64_t i = 0; i < n; i++) {
    int64_t off = 0;
    for (int d = 0; d < ndim; d++)
      off += (idx[d] % in_shape[d]) * in_stride[d];
    memcpy(dst + (size_t)i * esize, src + (size_t)off * esize, esize);
    for (int d = ndim - 1; d >= 0 && ++idx[d] == out_shape[d]; d--)
      idx[d] = 0;
  }
}

/* Pushes the tiling of t to out_shape. The backends have no gather op, so a
 * tensor on the GPU goes through the host (download, tile, upload): these are
 * notebook-sized tensors (latents, embeddings), not the UNet's inner loop.
 * Scratch memory is Lua userdata, so an error on the way leaks nothing. */
static int push_tiled(lua_State *L, lsdr_tensor *t, int ndim, const int64_t *out_shape,
                      const int64_t *in_shape) {
  sdr_backend *be = t->storage->be;
  lsdr_tensor *out = lsdr_push_new_tensor(L, be, t->t.dtype, ndim, out_shape);
  size_t esize = sdr_dtype_size(t->t.dtype);
  if (sdr_tensor_numel(&out->t) == 0)
    return 1;
  if (t->t.device == SDR_DEVICE_CPU) {
    tile_copy(out->t.data, t->t.data, esize, ndim, out_shape, in_shape);
    return 1;
  }
  size_t in_bytes = sdr_tensor_nbytes(&t->t), out_bytes = sdr_tensor_nbytes(&out->t);
  char *src = lua_newuserdatauv(L, in_bytes ? in_bytes : 1, 0);
  char *dst = lua_newuserdatauv(L, out_bytes, 0);
  if (sdr_download(be, src, t->t.data, in_bytes) != 0)
    return lsdr_engine_error(L);
  tile_copy(dst, src, esize, ndim, out_shape, in_shape);
  if (sdr_upload(be, out->t.data, dst, out_bytes) != 0)
    return lsdr_engine_error(L);
  lua_pop(L, 2);
  return 1;
}

/* Reads sizes given as a table or as numbers after self; at least ndim of them. */
static int read_sizes(lua_State *L, const lsdr_tensor *t, int64_t *sizes, const char *what) {
  int m = lsdr_read_shape(L, 2, sizes);
  if (m < t->t.ndim)
    lsdr_error(L,
               "%d sizes given for a %d-d tensor: the number of %s cannot be smaller than the "
               "tensor's dimensions",
               m, t->t.ndim, what);
  return m;
}

/* t:expand(sizes): dimensions of size 1 stretched (-1 keeps a size; new ones in front). */
static int m_expand(lua_State *L) {
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  int64_t sizes[SDR_MAX_DIMS], in_shape[SDR_MAX_DIMS];
  int m = read_sizes(L, t, sizes, "sizes");
  int lead = m - t->t.ndim;
  for (int d = 0; d < m; d++) {
    int64_t have = d < lead ? 1 : t->t.shape[d - lead];
    in_shape[d] = have;
    if (sizes[d] == -1 && d >= lead)
      sizes[d] = have;
    else if (sizes[d] < 0)
      return lsdr_error(L, "the expanded size %I is not allowed in a new leading dimension %d",
                        (lua_Integer)sizes[d], d + 1);
    else if (sizes[d] != have && have != 1)
      return lsdr_error(L,
                        "the expanded size of the tensor (%I) must match the existing size (%I) "
                        "at non-singleton dimension %d",
                        (lua_Integer)sizes[d], (lua_Integer)have, d + 1);
  }
  return push_tiled(L, t, m, sizes, in_shape);
}

/* t:repeat(sizes): the tensor tiled sizes[d] times along each dimension (torch's
 * repeat); more sizes than dimensions add leading ones. t:tile(sizes) is the same
 * but, as torch.tile, takes fewer sizes too (padded with ones in front); `repeat` is
 * a Lua keyword, so t:tile(...) is what reads well here (or t["repeat"](t, ...)). */
static int repeat_or_tile(lua_State *L, int tile) {
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  int64_t sizes[SDR_MAX_DIMS], in_shape[SDR_MAX_DIMS], out_shape[SDR_MAX_DIMS];
  int m;
  if (tile) {
    int64_t given[SDR_MAX_DIMS];
    int k = lsdr_read_shape(L, 2, given);
    m = k > t->t.ndim ? k : t->t.ndim;
    for (int d = 0; d < m; d++)
      sizes[d] = d < m - k ? 1 : given[d - (m - k)];
  } else {
    m = read_sizes(L, t, sizes, "repeat dims");
  }
  int lead = m - t->t.ndim;
  for (int d = 0; d < m; d++) {
    if (sizes[d] < 0)
      return lsdr_error(L, "repeat %I at dimension %d: repeats cannot be negative",
                        (lua_Integer)sizes[d], d + 1);
    in_shape[d] = d < lead ? 1 : t->t.shape[d - lead];
    out_shape[d] = in_shape[d] * sizes[d];
  }
  return push_tiled(L, t, m, out_shape, in_shape);
}
static int m_repeat(lua_State *L) { return repeat_or_tile(L, 0); }
static int m_tile(lua_State *L) { return repeat_or_tile(L, 1); }

/* ---- no-ops ------------------------------------------------------------- */

/* There is no autograd here: detach() is a new tensor sharing the memory (as torch's). */
static int m_detach(lua_State *L) {
  lsdr_args(L);
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  lsdr_push_view(L, t, t->t);
  return 1;
}

/* Our tensors are always contiguous, so contiguous() is the tensor itself (as torch's on a
 * contiguous tensor). */
static int m_contiguous(lua_State *L) {
  lsdr_args(L);
  lsdr_check_tensor(L, 1);
  lua_pushvalue(L, 1);
  return 1;
}

/* A CPU tensor stands for a numpy array too (Tensor:save_npy, output_type = "np"), so
 * numpy() is the tensor itself; on the GPU it refuses as torch does. */
static int m_numpy(lua_State *L) {
  lsdr_args(L);
  lsdr_tensor *t = lsdr_check_tensor(L, 1);
  if (t->t.device != SDR_DEVICE_CPU)
    return lsdr_error(L, "can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to "
                         "copy the tensor to host memory first.");
  lua_pushvalue(L, 1);
  return 1;
}

/* ---- torch.stack -------------------------------------------------------- */

/* torch.stack(tensors, dim=1): equal-shaped tensors joined along a new dimension.
 * Each is copied into its row of a (k, ...) tensor by an identity sdr_permute (the
 * backends' copy for any dtype), then the new dimension is moved to dim. */
static int torch_stack(lua_State *L) {
  lsdr_args(L);
  int k = (int)lua_rawlen(L, 1);
  if (k == 0)
    return lsdr_argerror(L, 1, "a non-empty list of tensors");
  lua_rawgeti(L, 1, 1);
  lsdr_tensor *first = lsdr_to_tensor(L, -1);
  if (!first)
    return lsdr_error(L, "argument 1 (tensors): entry 1 is a %s, not a Tensor",
                      lsdr_typename(L, -1));
  int n = first->t.ndim;
  if (n == SDR_MAX_DIMS)
    return lsdr_error(L, "tensors have at most %d dimensions here", SDR_MAX_DIMS);
  int dim = lsdr_dim_index(L, lua_tointeger(L, 2), n + 1);
  sdr_backend *be = first->storage->be;
  int64_t rows_shape[SDR_MAX_DIMS], one_shape[SDR_MAX_DIMS];
  rows_shape[0] = k;
  one_shape[0] = 1;
  for (int d = 0; d < n; d++)
    rows_shape[d + 1] = one_shape[d + 1] = first->t.shape[d];
  for (int i = 2; i <= k; i++) { /* all checked before anything is allocated */
    lua_rawgeti(L, 1, i);
    lsdr_tensor *x = lsdr_to_tensor(L, -1);
    if (!x)
      return lsdr_error(L, "argument 1 (tensors): entry %d is a %s, not a Tensor", i,
                        lsdr_typename(L, -1));
    char sa[128], sb[128];
    if (x->t.ndim != n || memcmp(x->t.shape, first->t.shape, (size_t)n * sizeof(int64_t)) != 0)
      return lsdr_error(L,
                        "stack expects each tensor to be equal size, but got %s at entry 1 "
                        "and %s at entry %d",
                        sdr_shape_str(&first->t, sa, sizeof sa),
                        sdr_shape_str(&x->t, sb, sizeof sb), i);
    if (x->t.dtype != first->t.dtype)
      return lsdr_error(L, "entry %d is %s and entry 1 %s: convert them to one dtype first", i,
                        sdr_dtype_name(x->t.dtype), sdr_dtype_name(first->t.dtype));
    if (x->storage->be != be)
      return lsdr_error(L,
                        "expected all tensors on the same device, found %s (entry 1) and %s "
                        "(entry %d)",
                        sdr_device_name(first->t.device), sdr_device_name(x->t.device), i);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lsdr_tensor *rows = lsdr_push_new_tensor(L, be, first->t.dtype, n + 1, rows_shape);
  int ident[SDR_MAX_DIMS];
  for (int d = 0; d <= n; d++)
    ident[d] = d;
  for (int i = 1; i <= k; i++) {
    lua_rawgeti(L, 1, i);
    lsdr_tensor *x = lsdr_to_tensor(L, -1);
    sdr_tensor src, dst;
    if (sdr_tensor_reshape(&src, &x->t, n + 1, one_shape) != 0 ||
        sdr_tensor_narrow0(&dst, &rows->t, i - 1, 1) != 0 ||
        sdr_permute(be, &dst, &src, ident) != 0)
      return lsdr_engine_error(L);
    lua_pop(L, 1);
  }
  if (dim == 0)
    return 1;
  /* move the new dimension (0 in rows) to dim */
  int perm[SDR_MAX_DIMS];
  int64_t shape[SDR_MAX_DIMS];
  for (int d = 0, j = 1; d <= n; d++)
    perm[d] = d == dim ? 0 : j++;
  for (int d = 0; d <= n; d++)
    shape[d] = rows->t.shape[perm[d]];
  lsdr_tensor *out = lsdr_push_new_tensor(L, be, first->t.dtype, n + 1, shape);
  if (sdr_permute(be, &out->t, &rows->t, perm) != 0)
    return lsdr_engine_error(L);
  return 1;
}

const lsdr_func lsdr_tensor_shape_methods[] = {
    {"Tensor:unsqueeze",
     m_unsqueeze,
     "A view with a new dimension of size 1 at dim (1-based: t:unsqueeze(1) is torch's "
     "x.unsqueeze(0)).",
     {{"dim", "integer"}}},
    {"Tensor:squeeze",
     m_squeeze,
     "A view without dimensions of size 1 (only dim, when given).",
     {{"dim", "integer", "nil"}}},
    {"Tensor:flatten",
     m_flatten,
     "A view with dimensions start_dim..end_dim (1-based, inclusive) merged.",
     {{"start_dim", "integer", "1"}, {"end_dim", "integer", "-1"}}},
    {"Tensor:transpose",
     m_transpose,
     "A copy with two dimensions (1-based) swapped.",
     {{"dim0", "integer"}, {"dim1", "integer"}}},
    {"Tensor:expand",
     m_expand,
     "A copy with dimensions of size 1 stretched to sizes (a table or numbers; -1 keeps one).",
     {{"sizes", "table|integer"}}},
    {"Tensor:repeat",
     m_repeat,
     "A copy tiled sizes[d] times along each dimension, as torch's repeat (a Lua keyword: "
     "call it t[\"repeat\"](t, ...), or use t:tile).",
     {{"sizes", "table|integer"}}},
    {"Tensor:tile",
     m_tile,
     "A copy tiled sizes[d] times along each dimension (fewer sizes: ones in front), as "
     "torch.tile; t:repeat without Lua's keyword.",
     {{"sizes", "table|integer"}}},
    {"Tensor:detach", m_detach, "The same values, sharing memory (there is no autograd here)."},
    {"Tensor:contiguous", m_contiguous, "The tensor itself: tensors here are always contiguous."},
    {"Tensor:numpy", m_numpy,
     "The tensor itself on the CPU (tensors stand for numpy arrays too); an error on the GPU."},
    {0}};

const lsdr_func lsdr_torch_shape_funcs[] = {
    {"torch.stack",
     torch_stack,
     "Joins equal-shaped tensors along a new dimension (1-based), as torch.stack.",
     {{"tensors", "table"}, {"dim", "integer", "1"}}},
    {"torch.unsqueeze",
     m_unsqueeze,
     "As t:unsqueeze(dim) (1-based).",
     {{"input", "Tensor"}, {"dim", "integer"}}},
    {"torch.squeeze",
     m_squeeze,
     "As t:squeeze([dim]).",
     {{"input", "Tensor"}, {"dim", "integer", "nil"}}},
    {"torch.flatten",
     m_flatten,
     "As t:flatten(start_dim, end_dim) (1-based).",
     {{"input", "Tensor"}, {"start_dim", "integer", "1"}, {"end_dim", "integer", "-1"}}},
    {"torch.transpose",
     m_transpose,
     "As t:transpose(dim0, dim1) (1-based).",
     {{"input", "Tensor"}, {"dim0", "integer"}, {"dim1", "integer"}}},
    {0}};

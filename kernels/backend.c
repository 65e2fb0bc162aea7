/* kernels/backend.c — the sdr_* calls: check arguments once, the same way for every
 * backend, then dispatch to be->ops.
 *
 * After these checks a backend may assume: every tensor is non-NULL, on the
 * backend's device, of an accepted dtype (activations: one of the backend's
 * act_dtypes, the same for the output and every activation input of an op), with the documented
 * shapes, with data unless empty, and the output is not empty (empty outputs return 0 here).
 *
 * Aliasing: elementwise ops (unary, binary, affine, softmax, layer_norm,
 * group_norm, cast between types of one size) may write in place, out and an
 * input being the very same memory; any other overlap between an output and an
 * input is an error, because kernels read inputs after writing outputs.
 */
#include "kernels/backend.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "kernels/error.h" // sdr_fail

/* ---- dtype sets ---- */

enum {
  T_F32 = 1u << SDR_F32,
  T_F16 = 1u << SDR_F16,
  T_BF16 = 1u << SDR_BF16,
  T_I64 = 1u << SDR_I64,
  T_FLOAT = T_F32 | T_F16 | T_BF16, /* what weights may be */
  T_ANY = (1u << SDR_DTYPE_COUNT) - 1,
};

static const char *dtype_set_str(unsigned set, char *buf, size_t n) {
  int count = 0, total = 0;
  for (int t = 0; t < SDR_DTYPE_COUNT; t++)
    total += (set >> t) & 1;
  buf[0] = 0;
  for (int t = 0; t < SDR_DTYPE_COUNT; t++) {
    if (!((set >> t) & 1))
      continue;
    size_t len = strlen(buf);
    const char *sep = count == 0 ? "" : count == total - 1 ? " or " : ", ";
    snprintf(buf + len, n - len, "%s%s", sep, sdr_dtype_name((sdr_dtype)t));
    count++;
  }
  return buf;
}

/* ---- dispatch ---- */

/* The op, between the backend's optional hooks (a profiler's timers). */
#define RUN(out, aux, call)                                                                        \
  do {                                                                                             \
    if (!be->ops->op_begin)                                                                        \
      return call;                                                                                 \
    be->ops->op_begin(be, op, out, aux);                                                           \
    int rc_ = call;                                                                                \
    be->ops->op_end(be, op);                                                                       \
    return rc_;                                                                                    \
  } while (0)

/* ---- common checks ---- */

/* The dtypes a backend computes activations in (every activation of one op in
 * the same one); a backend that says nothing computes in float32. */
static unsigned act_dtypes(const sdr_backend *be) {
  return be->act_dtypes ? be->act_dtypes & T_FLOAT : T_F32;
}
#define ACT(be) act_dtypes(be)

#define SHAPE(t, buf) sdr_shape_str((t), (buf), sizeof(buf))

static int check_backend(const char *op, const sdr_backend *be) {
  if (!be || !be->ops)
    return sdr_fail("%s: no backend", op);
  return 0;
}

static int missing(const char *op, const sdr_backend *be) {
  return sdr_fail("%s: the %s backend has no such op", op, be->name ? be->name : "?");
}

static int check_tensor(const char *op, const sdr_backend *be, const char *name,
                        const sdr_tensor *t, unsigned dtypes) {
  char buf[96];
  if (!t)
    return sdr_fail("%s: %s is NULL", op, name);
  if (t->ndim < 0 || t->ndim > SDR_MAX_DIMS)
    return sdr_fail("%s: %s has %d dimensions (at most %d)", op, name, t->ndim, SDR_MAX_DIMS);
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) {
    if (t->shape[i] < 0)
      return sdr_fail("%s: %s %s has a negative dimension", op, name, SHAPE(t, buf));
    if (__builtin_mul_overflow(n, t->shape[i], &n) || n > ((int64_t)1 << 50))
      return sdr_fail("%s: %s %s is too large", op, name, SHAPE(t, buf));
  }
  if ((unsigned)t->dtype >= SDR_DTYPE_COUNT || !((dtypes >> t->dtype) & 1))
    return sdr_fail("%s: %s has dtype %s, expected %s", op, name, sdr_dtype_name(t->dtype),
                    dtype_set_str(dtypes, buf, sizeof buf));
  if (t->device != be->device)
    return sdr_fail("%s: %s is on %s, the %s backend on %s", op, name, sdr_device_name(t->device),
                    be->name ? be->name : "?", sdr_device_name(be->device));
  if (!t->data && n > 0)
    return sdr_fail("%s: %s %s has no data", op, name, SHAPE(t, buf));
  return 0;
}

static int check_opt(const char *op, const sdr_backend *be, const char *name, const sdr_tensor *t,
                     unsigned dtypes) {
  return t ? check_tensor(op, be, name, t, dtypes) : 0;
}

/* out must have exactly the shape `want` (ndim, dims). */
static int check_shape(const char *op, const char *name, const sdr_tensor *t, int ndim,
                       const int64_t *want) {
  sdr_tensor w;
  memset(&w, 0, sizeof w);
  w.ndim = ndim;
  for (int i = 0; i < ndim; i++)
    w.shape[i] = want[i];
  if (sdr_tensor_same_shape(t, &w))
    return 0;
  char a[96], b[96];
  return sdr_fail("%s: %s %s, expected %s", op, name, SHAPE(t, a), SHAPE(&w, b));
}

static int check_same_shape(const char *op, const char *name, const sdr_tensor *t,
                            const sdr_tensor *ref) {
  return check_shape(op, name, t, ref->ndim, ref->shape);
}

static int check_vector(const char *op, const char *name, const sdr_tensor *t, int64_t n) {
  if (!t)
    return 0;
  return check_shape(op, name, t, 1, &n);
}

/* Byte ranges of two tensors; exact aliasing passes when allow_same. */
static int check_overlap(const char *op, const char *oname, const sdr_tensor *out,
                         const char *iname, const sdr_tensor *in, int allow_same) {
  if (!in || !out->data || !in->data)
    return 0;
  size_t on = sdr_tensor_nbytes(out), in_n = sdr_tensor_nbytes(in);
  if (on == 0 || in_n == 0)
    return 0;
  uintptr_t o0 = (uintptr_t)out->data, i0 = (uintptr_t)in->data;
  if (o0 + on <= i0 || i0 + in_n <= o0)
    return 0;
  if (allow_same && o0 == i0 && on == in_n)
    return 0;
  return sdr_fail("%s: %s overlaps %s%s", op, oname, iname,
                  allow_same ? " (only exact in-place use is allowed)" : "");
}

static int fits_int(const char *op, const char *what, int64_t v) {
  if (v > INT_MAX)
    return sdr_fail("%s: %s %lld exceeds what BLAS can index", op, what, (long long)v);
  return 0;
}

#define TRY(x)                                                                                     \
  do {                                                                                             \
    if ((x) < 0)                                                                                   \
      return -1;                                                                                   \
  } while (0)

/* The backend exists and implements fn. */
#define NEED(fn)                                                                                   \
  do {                                                                                             \
    if (check_backend(op, be) < 0)                                                                 \
      return -1;                                                                                   \
    if (!be->ops->fn)                                                                              \
      return missing(op, be);                                                                      \
  } while (0)

/* ---- memory ---- */

void *sdr_alloc(sdr_backend *be, size_t bytes) {
  const char *op = "sdr_alloc";
  if (check_backend(op, be) < 0)
    return NULL;
  if (!be->ops->alloc) {
    missing(op, be);
    return NULL;
  }
  return be->ops->alloc(be, bytes);
}

void sdr_free(sdr_backend *be, void *ptr) {
  if (be && be->ops && be->ops->free && ptr)
    be->ops->free(be, ptr);
}

int sdr_upload(sdr_backend *be, void *dst, const void *src, size_t bytes) {
  const char *op = "sdr_upload";
  NEED(upload);
  if (bytes && (!dst || !src))
    return sdr_fail("%s: NULL pointer", op);
  return bytes ? be->ops->upload(be, dst, src, bytes) : 0;
}

int sdr_download(sdr_backend *be, void *dst, const void *src, size_t bytes) {
  const char *op = "sdr_download";
  NEED(download);
  if (bytes && (!dst || !src))
    return sdr_fail("%s: NULL pointer", op);
  return bytes ? be->ops->download(be, dst, src, bytes) : 0;
}

int sdr_sync(sdr_backend *be) {
  const char *op = "sdr_sync";
  NEED(sync);
  return be->ops->sync(be);
}

int sdr_reserve_workspace(sdr_backend *be, size_t bytes) {
  const char *op = "sdr_reserve_workspace";
  NEED(reserve_workspace);
  return be->ops->reserve_workspace(be, bytes);
}

/* ---- products ---- */

int sdr_linear(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *w,
               const sdr_tensor *bias) {
  const char *op = "sdr_linear";
  char a[96], b[96];
  NEED(linear);
  TRY(check_tensor(op, be, "out", out, ACT(be)));
  TRY(check_tensor(op, be, "in", in, 1u << out->dtype));
  TRY(check_tensor(op, be, "w", w, T_FLOAT));
  TRY(check_opt(op, be, "bias", bias, T_FLOAT));
  if (in->ndim < 1)
    return sdr_fail("%s: in is a scalar", op);
  if (w->ndim != 2)
    return sdr_fail("%s: w %s is not (N, K)", op, SHAPE(w, a));
  int64_t K = in->shape[in->ndim - 1], N = w->shape[0];
  if (w->shape[1] != K)
    return sdr_fail("%s: in %s and w %s: inner dimensions differ", op, SHAPE(in, a), SHAPE(w, b));
  int64_t want[SDR_MAX_DIMS];
  memcpy(want, in->shape, sizeof want);
  want[in->ndim - 1] = N;
  TRY(check_shape(op, "out", out, in->ndim, want));
  TRY(check_vector(op, "bias", bias, N));
  TRY(fits_int(op, "rows", sdr_tensor_numel(in) / (K ? K : 1)));
  TRY(fits_int(op, "N", N));
  TRY(fits_int(op, "K", K));
  TRY(check_overlap(op, "out", out, "in", in, 0));
  TRY(check_overlap(op, "out", out, "w", w, 0));
  TRY(check_overlap(op, "out", out, "bias", bias, 0));
  if (sdr_tensor_numel(out) == 0)
    return 0;
  RUN(out, w, be->ops->linear(be, out, in, w, bias));
}

int sdr_bmm(sdr_backend *be, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b, int trans_b,
            float alpha) {
  const char *op = "sdr_bmm";
  char x[96], y[96];
  NEED(bmm);
  TRY(check_tensor(op, be, "out", out, ACT(be)));
  TRY(check_tensor(op, be, "a", a, 1u << out->dtype));
  TRY(check_tensor(op, be, "b", b, 1u << out->dtype));
  if (a->ndim != 3 || b->ndim != 3)
    return sdr_fail("%s: a %s and b %s must both be (batch, rows, columns)", op, SHAPE(a, x),
                    SHAPE(b, y));
  if (a->shape[0] != b->shape[0])
    return sdr_fail("%s: a %s and b %s: batch sizes differ", op, SHAPE(a, x), SHAPE(b, y));
  int64_t K = a->shape[2], bK = trans_b ? b->shape[2] : b->shape[1];
  int64_t N = trans_b ? b->shape[1] : b->shape[2];
  if (bK != K)
    return sdr_fail("%s: a %s and b %s%s: inner dimensions differ", op, SHAPE(a, x), SHAPE(b, y),
                    trans_b ? " (transposed)" : "");
  int64_t want[3] = {a->shape[0], a->shape[1], N};
  TRY(check_shape(op, "out", out, 3, want));
  TRY(fits_int(op, "M", a->shape[1]));
  TRY(fits_int(op, "N", N));
  TRY(fits_int(op, "K", K));
  TRY(check_overlap(op, "out", out, "a", a, 0));
  TRY(check_overlap(op, "out", out, "b", b, 0));
  if (sdr_tensor_numel(out) == 0)
    return 0;
  RUN(out, b, be->ops->bmm(be, out, a, b, trans_b, alpha));
}

int sdr_conv2d(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *w,
               const sdr_tensor *bias, int stride, int padding) {
  const char *op = "sdr_conv2d";
  char x[96], y[96];
  NEED(conv2d);
  TRY(check_tensor(op, be, "out", out, ACT(be)));
  TRY(check_tensor(op, be, "in", in, 1u << out->dtype));
  TRY(check_tensor(op, be, "w", w, T_FLOAT));
  TRY(check_opt(op, be, "bias", bias, T_FLOAT));
  if (in->ndim != 4)
    return sdr_fail("%s: in %s is not (B, C, H, W)", op, SHAPE(in, x));
  if (w->ndim != 4)
    return sdr_fail("%s: w %s is not (Cout, Cin, kh, kw)", op, SHAPE(w, x));
  if (stride < 1 || padding < 0)
    return sdr_fail("%s: stride %d and padding %d (stride >= 1, padding >= 0)", op, stride,
                    padding);
  if (w->shape[1] != in->shape[1])
    return sdr_fail("%s: in %s has %lld channels, w %s expects %lld", op, SHAPE(in, x),
                    (long long)in->shape[1], SHAPE(w, y), (long long)w->shape[1]);
  int64_t kh = w->shape[2], kw = w->shape[3];
  int64_t hp = in->shape[2] + 2 * (int64_t)padding, wp = in->shape[3] + 2 * (int64_t)padding;
  if (kh < 1 || kw < 1 || hp < kh || wp < kw)
    return sdr_fail("%s: kernel %lldx%lld does not fit in %s padded by %d", op, (long long)kh,
                    (long long)kw, SHAPE(in, x), padding);
  int64_t want[4] = {in->shape[0], w->shape[0], (hp - kh) / stride + 1, (wp - kw) / stride + 1};
  TRY(check_shape(op, "out", out, 4, want));
  TRY(check_vector(op, "bias", bias, w->shape[0]));
  TRY(fits_int(op, "Cout", w->shape[0]));
  TRY(fits_int(op, "Cin*kh*kw", w->shape[1] * kh * kw));
  TRY(fits_int(op, "output pixels", want[2] * want[3]));
  TRY(fits_int(op, "input pixels", in->shape[2] * in->shape[3]));
  TRY(check_overlap(op, "out", out, "in", in, 0));
  TRY(check_overlap(op, "out", out, "w", w, 0));
  TRY(check_overlap(op, "out", out, "bias", bias, 0));
  if (sdr_tensor_numel(out) == 0)
    return 0;
  RUN(out, w, be->ops->conv2d(be, out, in, w, bias, stride, padding));
}

/* ---- normalisation ---- */

int sdr_group_norm(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *gamma,
                   const sdr_tensor *beta, int groups, float eps, int silu) {
  const char *op = "sdr_group_norm";
  char x[96];
  NEED(group_norm);
  TRY(check_tensor(op, be, "out", out, ACT(be)));
  TRY(check_tensor(op, be, "in", in, 1u << out->dtype));
  TRY(check_opt(op, be, "gamma", gamma, T_FLOAT));
  TRY(check_opt(op, be, "beta", beta, T_FLOAT));
  if (in->ndim < 2)
    return sdr_fail("%s: in %s is not (B, C, ...)", op, SHAPE(in, x));
  int64_t C = in->shape[1];
  if (groups < 1 || C % groups != 0)
    return sdr_fail("%s: %lld channels do not split into %d groups", op, (long long)C, groups);
  TRY(check_same_shape(op, "out", out, in));
  TRY(check_vector(op, "gamma", gamma, C));
  TRY(check_vector(op, "beta", beta, C));
  TRY(check_overlap(op, "out", out, "in", in, 1));
  TRY(check_overlap(op, "out", out, "gamma", gamma, 0));
  TRY(check_overlap(op, "out", out, "beta", beta, 0));
  if (sdr_tensor_numel(out) == 0)
    return 0;
  RUN(out, in, be->ops->group_norm(be, out, in, gamma, beta, groups, eps, silu ? 1 : 0));
}

int sdr_layer_norm(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *gamma,
                   const sdr_tensor *beta, float eps) {
  const char *op = "sdr_layer_norm";
  NEED(layer_norm);
  TRY(check_tensor(op, be, "out", out, ACT(be)));
  TRY(check_tensor(op, be, "in", in, 1u << out->dtype));
  TRY(check_opt(op, be, "gamma", gamma, T_FLOAT));
  TRY(check_opt(op, be, "beta", beta, T_FLOAT));
  if (in->ndim < 1)
    return sdr_fail("%s: in is a scalar", op);
  int64_t D = in->shape[in->ndim - 1];
  TRY(check_same_shape(op, "out", out, in));
  TRY(check_vector(op, "gamma", gamma, D));
  TRY(check_vector(op, "beta", beta, D));
  TRY(check_overlap(op, "out", out, "in", in, 1));
  TRY(check_overlap(op, "out", out, "gamma", gamma, 0));
  TRY(check_overlap(op, "out", out, "beta", beta, 0));
  if (sdr_tensor_numel(out) == 0)
    return 0;
  RUN(out, in, be->ops->layer_norm(be, out, in, gamma, beta, eps));
}

/* ---- attention ---- */

int sdr_attention(sdr_backend *be, sdr_tensor *out, const sdr_tensor *q, const sdr_tensor *k,
                  const sdr_tensor *v, int heads, float scale, int causal) {
  const char *op = "sdr_attention";
  char x[96], y[96];
  NEED(attention);
  TRY(check_tensor(op, be, "out", out, ACT(be)));
  TRY(check_tensor(op, be, "q", q, 1u << out->dtype));
  TRY(check_tensor(op, be, "k", k, 1u << out->dtype));
  TRY(check_tensor(op, be, "v", v, 1u << out->dtype));
  if (q->ndim != 3 || k->ndim != 3)
    return sdr_fail("%s: q %s and k %s must be (B, T, heads*Dh)", op, SHAPE(q, x), SHAPE(k, y));
  if (q->shape[0] != k->shape[0] || q->shape[2] != k->shape[2])
    return sdr_fail("%s: q %s and k %s: batch or width differ", op, SHAPE(q, x), SHAPE(k, y));
  TRY(check_same_shape(op, "v", v, k));
  TRY(check_same_shape(op, "out", out, q));
  if (heads < 1 || q->shape[2] % heads != 0)
    return sdr_fail("%s: width %lld does not split into %d heads", op, (long long)q->shape[2],
                    heads);
  if (k->shape[1] == 0 && q->shape[1] > 0)
    return sdr_fail("%s: no keys", op);
  TRY(fits_int(op, "width", q->shape[2]));
  TRY(fits_int(op, "Tq", q->shape[1]));
  TRY(fits_int(op, "Tk", k->shape[1]));
  TRY(check_overlap(op, "out", out, "q", q, 0));
  TRY(check_overlap(op, "out", out, "k", k, 0));
  TRY(check_overlap(op, "out", out, "v", v, 0));
  if (sdr_tensor_numel(out) == 0)
    return 0;
  RUN(out, k, be->ops->attention(be, out, q, k, v, heads, scale, causal ? 1 : 0));
}

int sdr_softmax(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in) {
  const char *op = "sdr_softmax";
  NEED(softmax);
  TRY(check_tensor(op, be, "out", out, ACT(be)));
  TRY(check_tensor(op, be, "in", in, 1u << out->dtype));
  if (in->ndim < 1)
    return sdr_fail("%s: in is a scalar", op);
  TRY(check_same_shape(op, "out", out, in));
  TRY(check_overlap(op, "out", out, "in", in, 1));
  if (sdr_tensor_numel(out) == 0)
    return 0;
  RUN(out, in, be->ops->softmax(be, out, in));
}

/* ---- elementwise ---- */

const char *sdr_unary_name(sdr_unary_op uop) {
  static const char *const names[] = {"silu", "gelu", "gelu_tanh", "quick_gelu",
                                      "exp",  "sqrt", "relu",      "tanh"};
  _Static_assert(sizeof names / sizeof names[0] == SDR_UNARY_COUNT, "a name for each op");
  return (unsigned)uop < SDR_UNARY_COUNT ? names[uop] : "?";
}

int sdr_unary(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, sdr_unary_op uop) {
  const char *op = "sdr_unary";
  NEED(unary);
  if ((unsigned)uop >= SDR_UNARY_COUNT)
    return sdr_fail("%s: unknown operation %d", op, (int)uop);
  TRY(check_tensor(op, be, "out", out, ACT(be)));
  TRY(check_tensor(op, be, "in", in, 1u << out->dtype));
  TRY(check_same_shape(op, "out", out, in));
  TRY(check_overlap(op, "out", out, "in", in, 1));
  if (sdr_tensor_numel(out) == 0)
    return 0;
  RUN(out, in, be->ops->unary(be, out, in, uop));
}

int sdr_geglu(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in) {
  const char *op = "sdr_geglu";
  char x[96];
  NEED(geglu);
  TRY(check_tensor(op, be, "out", out, ACT(be)));
  TRY(check_tensor(op, be, "in", in, 1u << out->dtype));
  if (in->ndim < 1 || in->shape[in->ndim - 1] % 2 != 0)
    return sdr_fail("%s: in %s must end in an even dimension", op, SHAPE(in, x));
  int64_t want[SDR_MAX_DIMS];
  memcpy(want, in->shape, sizeof want);
  want[in->ndim - 1] /= 2;
  TRY(check_shape(op, "out", out, in->ndim, want));
  TRY(check_overlap(op, "out", out, "in", in, 0));
  if (sdr_tensor_numel(out) == 0)
    return 0;
  RUN(out, in, be->ops->geglu(be, out, in));
}

int sdr_broadcast_shape(const sdr_tensor *a, const sdr_tensor *b, int *ndim, int64_t *shape) {
  int n = a->ndim > b->ndim ? a->ndim : b->ndim;
  if (a->ndim < 0 || b->ndim < 0 || n > SDR_MAX_DIMS)
    return -1;
  for (int i = 0; i < n; i++) { /* aligned from the right */
    int ia = a->ndim - n + i, ib = b->ndim - n + i;
    int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
    if (da != db && da != 1 && db != 1)
      return -1;
    shape[i] = da == 1 ? db : da;
  }
  *ndim = n;
  return 0;
}

int sdr_binary(sdr_backend *be, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b,
               sdr_binary_op bop) {
  const char *op = "sdr_binary";
  char x[96], y[96];
  NEED(binary);
  if ((unsigned)bop >= SDR_BINARY_COUNT)
    return sdr_fail("%s: unknown operation %d", op, (int)bop);
  TRY(check_tensor(op, be, "out", out, ACT(be)));
  TRY(check_tensor(op, be, "a", a, 1u << out->dtype));
  TRY(check_tensor(op, be, "b", b, 1u << out->dtype));
  int n;
  int64_t shape[SDR_MAX_DIMS];
  if (sdr_broadcast_shape(a, b, &n, shape) < 0)
    return sdr_fail("%s: a %s and b %s do not broadcast", op, SHAPE(a, x), SHAPE(b, y));
  TRY(check_shape(op, "out", out, n, shape));
  TRY(check_overlap(op, "out", out, "a", a, 1));
  TRY(check_overlap(op, "out", out, "b", b, 1));
  if (sdr_tensor_numel(out) == 0)
    return 0;
  RUN(out, b, be->ops->binary(be, out, a, b, bop));
}

int sdr_affine(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, float alpha, float beta) {
  const char *op = "sdr_affine";
  NEED(affine);
  TRY(check_tensor(op, be, "out", out, ACT(be)));
  TRY(check_tensor(op, be, "in", in, 1u << out->dtype));
  TRY(check_same_shape(op, "out", out, in));
  TRY(check_overlap(op, "out", out, "in", in, 1));
  if (sdr_tensor_numel(out) == 0)
    return 0;
  RUN(out, in, be->ops->affine(be, out, in, alpha, beta));
}

/* ---- layout ---- */

int sdr_upsample_nearest2x(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in) {
  const char *op = "sdr_upsample_nearest2x";
  char x[96];
  NEED(upsample_nearest2x);
  TRY(check_tensor(op, be, "out", out, ACT(be)));
  TRY(check_tensor(op, be, "in", in, 1u << out->dtype));
  if (in->ndim != 4)
    return sdr_fail("%s: in %s is not (B, C, H, W)", op, SHAPE(in, x));
  int64_t want[4] = {in->shape[0], in->shape[1], 2 * in->shape[2], 2 * in->shape[3]};
  TRY(check_shape(op, "out", out, 4, want));
  TRY(check_overlap(op, "out", out, "in", in, 0));
  if (sdr_tensor_numel(out) == 0)
    return 0;
  RUN(out, in, be->ops->upsample_nearest2x(be, out, in));
}

int sdr_pad2d(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, int left, int right, int top,
              int bottom) {
  const char *op = "sdr_pad2d";
  char x[96];
  NEED(pad2d);
  TRY(check_tensor(op, be, "out", out, ACT(be)));
  TRY(check_tensor(op, be, "in", in, 1u << out->dtype));
  if (in->ndim != 4)
    return sdr_fail("%s: in %s is not (B, C, H, W)", op, SHAPE(in, x));
  if (left < 0 || right < 0 || top < 0 || bottom < 0)
    return sdr_fail("%s: negative padding (%d, %d, %d, %d)", op, left, right, top, bottom);
  int64_t want[4] = {in->shape[0], in->shape[1], in->shape[2] + top + bottom,
                     in->shape[3] + left + right};
  TRY(check_shape(op, "out", out, 4, want));
  TRY(check_overlap(op, "out", out, "in", in, 0));
  if (sdr_tensor_numel(out) == 0)
    return 0;
  RUN(out, in, be->ops->pad2d(be, out, in, left, right, top, bottom));
}

int sdr_concat(sdr_backend *be, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b,
               int dim) {
  const char *op = "sdr_concat";
  char x[96], y[96];
  NEED(concat);
  TRY(check_tensor(op, be, "out", out, T_ANY));
  TRY(check_tensor(op, be, "a", a, 1u << out->dtype));
  TRY(check_tensor(op, be, "b", b, 1u << out->dtype));
  if (a->ndim < 1 || a->ndim != b->ndim)
    return sdr_fail("%s: a %s and b %s: dimensions differ", op, SHAPE(a, x), SHAPE(b, y));
  if (dim < 0)
    dim += a->ndim; /* torch.cat's negative dims */
  if (dim < 0 || dim >= a->ndim)
    return sdr_fail("%s: dimension %d outside %s", op, dim, SHAPE(a, x));
  for (int i = 0; i < a->ndim; i++)
    if (i != dim && a->shape[i] != b->shape[i])
      return sdr_fail("%s: a %s and b %s differ outside dimension %d", op, SHAPE(a, x), SHAPE(b, y),
                      dim);
  int64_t want[SDR_MAX_DIMS];
  memcpy(want, a->shape, sizeof want);
  want[dim] += b->shape[dim];
  TRY(check_shape(op, "out", out, a->ndim, want));
  TRY(check_overlap(op, "out", out, "a", a, 0));
  TRY(check_overlap(op, "out", out, "b", b, 0));
  if (sdr_tensor_numel(out) == 0)
    return 0;
  RUN(out, b, be->ops->concat(be, out, a, b, dim));
}

int sdr_permute(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const int *perm) {
  const char *op = "sdr_permute";
  NEED(permute);
  TRY(check_tensor(op, be, "out", out, T_ANY));
  TRY(check_tensor(op, be, "in", in, 1u << out->dtype));
  if (!perm)
    return sdr_fail("%s: perm is NULL", op);
  int seen[SDR_MAX_DIMS] = {0};
  int64_t want[SDR_MAX_DIMS];
  for (int i = 0; i < in->ndim; i++) {
    if (perm[i] < 0 || perm[i] >= in->ndim || seen[perm[i]]++)
      return sdr_fail("%s: perm is not a permutation of %d dimensions", op, in->ndim);
    want[i] = in->shape[perm[i]];
  }
  TRY(check_shape(op, "out", out, in->ndim, want));
  TRY(check_overlap(op, "out", out, "in", in, 0));
  if (sdr_tensor_numel(out) == 0)
    return 0;
  RUN(out, in, be->ops->permute(be, out, in, perm));
}

int sdr_cast(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in) {
  const char *op = "sdr_cast";
  NEED(cast);
  TRY(check_tensor(op, be, "out", out, T_FLOAT));
  TRY(check_tensor(op, be, "in", in, T_FLOAT | T_I64));
  if (in->dtype == SDR_I64 && out->dtype != SDR_F32)
    return sdr_fail("%s: int64 casts only to float32, not %s", op, sdr_dtype_name(out->dtype));
  TRY(check_same_shape(op, "out", out, in));
  TRY(check_overlap(op, "out", out, "in", in,
                    sdr_dtype_size(out->dtype) == sdr_dtype_size(in->dtype)));
  if (sdr_tensor_numel(out) == 0)
    return 0;
  RUN(out, in, be->ops->cast(be, out, in));
}

int sdr_embedding(sdr_backend *be, sdr_tensor *out, const sdr_tensor *table,
                  const sdr_tensor *ids) {
  const char *op = "sdr_embedding";
  char x[96];
  NEED(embedding);
  TRY(check_tensor(op, be, "out", out, ACT(be)));
  TRY(check_tensor(op, be, "table", table, T_FLOAT));
  TRY(check_tensor(op, be, "ids", ids, T_I64));
  if (table->ndim != 2)
    return sdr_fail("%s: table %s is not (V, D)", op, SHAPE(table, x));
  if (ids->ndim >= SDR_MAX_DIMS)
    return sdr_fail("%s: ids %s has too many dimensions", op, SHAPE(ids, x));
  int64_t want[SDR_MAX_DIMS];
  memcpy(want, ids->shape, sizeof want);
  want[ids->ndim] = table->shape[1];
  TRY(check_shape(op, "out", out, ids->ndim + 1, want));
  TRY(check_overlap(op, "out", out, "table", table, 0));
  TRY(check_overlap(op, "out", out, "ids", ids, 0));
  if (sdr_tensor_numel(out) == 0)
    return 0;
  RUN(out, table, be->ops->embedding(be, out, table, ids));
}

int sdr_timestep_embedding(sdr_backend *be, sdr_tensor *out, const sdr_tensor *t, int dim,
                           int flip_sin_to_cos, float downscale_freq_shift, float scale,
                           int max_period) {
  const char *op = "sdr_timestep_embedding";
  char x[96];
  NEED(timestep_embedding);
  TRY(check_tensor(op, be, "out", out, ACT(be)));
  TRY(check_tensor(op, be, "t", t, T_F32));
  if (t->ndim != 1) /* diffusers: "Timesteps should be a 1d-array" */
    return sdr_fail("%s: t %s must be one-dimensional", op, SHAPE(t, x));
  if (dim < 1 || max_period < 1)
    return sdr_fail("%s: dim %d and max_period %d must be positive", op, dim, max_period);
  if (dim >= 2 && (float)(dim / 2) - downscale_freq_shift == 0.0f)
    return sdr_fail("%s: dim %d with downscale_freq_shift %g divides by zero", op, dim,
                    (double)downscale_freq_shift);
  int64_t want[2] = {t->shape[0], dim};
  TRY(check_shape(op, "out", out, 2, want));
  TRY(check_overlap(op, "out", out, "t", t, 0));
  if (sdr_tensor_numel(out) == 0)
    return 0;
  RUN(out, t,
      be->ops->timestep_embedding(be, out, t, dim, flip_sin_to_cos ? 1 : 0, downscale_freq_shift,
                                  scale, max_period));
}

int sdr_fill(sdr_backend *be, sdr_tensor *out, float value) {
  const char *op = "sdr_fill";
  NEED(fill);
  TRY(check_tensor(op, be, "out", out, T_FLOAT));
  if (sdr_tensor_numel(out) == 0)
    return 0;
  RUN(out, NULL, be->ops->fill(be, out, value));
}

/* ---- activations and graphs ---- */

sdr_dtype sdr_backend_act_dtype(const sdr_backend *be, int want) {
  if (!be || want < 0 || want >= SDR_DTYPE_COUNT)
    return SDR_F32;
  return (act_dtypes(be) >> want) & 1 ? (sdr_dtype)want : SDR_F32;
}

int sdr_philox_supported(const sdr_backend *be) { return be && be->ops && be->ops->philox; }

int sdr_philox(sdr_backend *be, sdr_tensor *out, uint64_t seed, uint64_t offset, uint64_t grid,
               int normal) {
  const char *op = "sdr_philox";
  TRY(check_backend(op, be));
  if (!be->ops->philox)
    return missing(op, be);
  TRY(check_tensor(op, be, "out", out, T_FLOAT));
  if (grid < 1 || grid > 0x7fffffffu)
    return sdr_fail("%s: a grid of %llu blocks", op, (unsigned long long)grid);
  if (sdr_tensor_numel(out) == 0)
    return 0;
  RUN(out, NULL, be->ops->philox(be, out, seed, offset, grid, normal ? 1 : 0));
}

int sdr_graph_supported(const sdr_backend *be) {
  return be && be->ops && be->ops->graph_begin && be->ops->graph_end && be->ops->graph_replay &&
         be->ops->graph_destroy;
}

int sdr_graph_begin(sdr_backend *be) {
  if (!sdr_graph_supported(be))
    return sdr_fail("sdr_graph_begin: the %s backend records no graphs", be ? be->name : "?");
  return be->ops->graph_begin(be);
}

sdr_graph *sdr_graph_end(sdr_backend *be) {
  if (!sdr_graph_supported(be)) {
    sdr_fail("sdr_graph_end: the %s backend records no graphs", be ? be->name : "?");
    return NULL;
  }
  return be->ops->graph_end(be);
}

int sdr_graph_replay(sdr_backend *be, sdr_graph *g) {
  if (!sdr_graph_supported(be))
    return sdr_fail("sdr_graph_replay: the %s backend records no graphs", be ? be->name : "?");
  if (!g)
    return sdr_fail("sdr_graph_replay: no graph");
  return be->ops->graph_replay(be, g);
}

void sdr_graph_destroy(sdr_backend *be, sdr_graph *g) {
  if (g && sdr_graph_supported(be))
    be->ops->graph_destroy(be, g);
}

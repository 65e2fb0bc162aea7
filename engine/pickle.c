/* engine/pickle.c — the restricted unpickler (see pickle.h).
 *
 * Opcode semantics are CPython's (Lib/pickle.py, _Unpickler.load_*): MARK
 * starts a new stack segment, POP never crosses one, TUPLE/LIST/DICT/APPENDS/
 * SETITEMS consume the segment. What REDUCE may call mirrors torch: the
 * rebuild functions of torch/_utils.py and torch/_tensor.py, OrderedDict for
 * the state dict and its hooks, and _codecs.encode, which Python's protocol 2
 * uses for bytes.
 */
#include "engine/pickle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h" // sdr_fail

/* ---- the globals a torch file may name --------------------------------------- */

enum {
  G_ORDERED_DICT,
  G_REBUILD_TENSOR_V2,
  G_REBUILD_PARAMETER,
  G_REBUILD_PARAMETER_WITH_STATE,
  G_REBUILD_FROM_TYPE_V2,
  G_CODECS_ENCODE,
  G_TENSOR,
  G_PARAMETER,
  G_FIRST_STORAGE /* the storage types follow */
};

static const struct pk_global {
  const char *module, *name;
  int dtype; /* storage types: the element type; else -1 */
} pk_globals[] = {
    {"collections", "OrderedDict", -1},
    {"torch._utils", "_rebuild_tensor_v2", -1},
    {"torch._utils", "_rebuild_parameter", -1},
    {"torch._utils", "_rebuild_parameter_with_state", -1},
    {"torch._tensor", "_rebuild_from_type_v2", -1},
    {"_codecs", "encode", -1},
    {"torch", "Tensor", -1},
    {"torch.nn.parameter", "Parameter", -1},
    /* torch.serialization's persistent ids name the legacy typed storage classes
     * (normalize_storage_type / _pickle_storage_type), never torch.cuda ones. */
    {"torch", "DoubleStorage", SDR_F64},
    {"torch", "FloatStorage", SDR_F32},
    {"torch", "HalfStorage", SDR_F16},
    {"torch", "BFloat16Storage", SDR_BF16},
    {"torch", "LongStorage", SDR_I64},
    {"torch", "IntStorage", SDR_I32},
    {"torch", "ShortStorage", SDR_I16},
    {"torch", "CharStorage", SDR_I8},
    {"torch", "ByteStorage", SDR_U8},
    {"torch", "BoolStorage", SDR_BOOL},
};
enum { N_GLOBALS = sizeof pk_globals / sizeof pk_globals[0] };

/* ---- the context ------------------------------------------------------------- */

typedef struct pk_chunk {
  struct pk_chunk *next;
  size_t used, cap;
  _Alignas(16) unsigned char data[];
} pk_chunk;

struct sdr_pickle {
  char *name;
  pk_chunk *chunks;
  sdr_pk_storage *storages;
  /* the load in progress */
  const unsigned char *start, *p, *end, *op; /* op: the opcode being run */
  sdr_pk_value **stack;
  size_t sp, stack_cap;
  size_t *marks;
  size_t nmarks, marks_cap;
  sdr_pk_value **memo;
  size_t memo_cap, memo_puts, memo_len; /* puts made; distinct entries set */
};

static int pk_fail(sdr_pickle *pk, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int pk_fail(sdr_pickle *pk, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return sdr_fail("%s: byte %zu: %s", pk->name, (size_t)(pk->op - pk->start), msg);
}

/* A name from the file, printable: at most 120 characters, others as \xNN. */
static void pk_printable(char *out, size_t cap, const char *s, size_t len) {
  size_t o = 0;
  for (size_t i = 0; i < len && o + 5 < cap; i++) {
    unsigned char c = (unsigned char)s[i];
    if (i == 120) {
      memcpy(out + o, "...", 3);
      o += 3;
      break;
    }
    if (c >= 0x20 && c < 0x7f)
      out[o++] = (char)c;
    else
      o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
  }
  out[o] = 0;
}

sdr_pickle *sdr_pickle_new(const char *name) {
  sdr_pickle *pk = calloc(1, sizeof *pk);
  if (!pk || !(pk->name = strdup(name ? name : "<pickle>"))) {
    free(pk);
    sdr_fail("out of memory");
    return NULL;
  }
  return pk;
}

void sdr_pickle_free(sdr_pickle *pk) {
  if (!pk)
    return;
  for (pk_chunk *c = pk->chunks, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  free(pk->stack);
  free(pk->marks);
  free(pk->memo);
  free(pk->name);
  free(pk);
}

sdr_pk_storage *sdr_pickle_storages(const sdr_pickle *pk) { return pk ? pk->storages : NULL; }

/* Pool memory, 16-byte aligned, zeroed; freed with the context. */
static void *pk_alloc(sdr_pickle *pk, size_t n) {
  n = (n + 15) & ~(size_t)15;
  pk_chunk *c = pk->chunks;
  if (!c || c->cap - c->used < n) {
    size_t cap = n > ((size_t)64 << 10) ? n : (size_t)64 << 10;
    if (cap > SIZE_MAX - sizeof *c || !(c = malloc(sizeof *c + cap))) {
      sdr_fail("out of memory");
      return NULL;
    }
    c->used = 0;
    c->cap = cap;
    c->next = pk->chunks;
    pk->chunks = c;
  }
  void *p = c->data + c->used;
  c->used += n;
  memset(p, 0, n);
  return p;
}

static sdr_pk_value *pk_new(sdr_pickle *pk, sdr_pk_kind kind) {
  sdr_pk_value *v = pk_alloc(pk, sizeof *v);
  if (v)
    v->kind = kind;
  return v;
}

static int seq_push(sdr_pickle *pk, sdr_pk_value *seq, sdr_pk_value *item) {
  if (seq->u.seq.n == seq->u.seq.cap) {
    size_t cap = seq->u.seq.cap ? seq->u.seq.cap * 2 : 4;
    sdr_pk_value **v = pk_alloc(pk, cap * sizeof *v);
    if (!v)
      return -1;
    if (seq->u.seq.n)
      memcpy(v, seq->u.seq.v, seq->u.seq.n * sizeof *v);
    seq->u.seq.v = v;
    seq->u.seq.cap = cap;
  }
  seq->u.seq.v[seq->u.seq.n++] = item;
  return 0;
}

/* ---- the stack --------------------------------------------------------------- */

static int push(sdr_pickle *pk, sdr_pk_value *v) {
  if (!v)
    return -1;
  if (pk->sp == pk->stack_cap) {
    size_t cap = pk->stack_cap ? pk->stack_cap * 2 : 64;
    sdr_pk_value **s = realloc(pk->stack, cap * sizeof *s);
    if (!s)
      return sdr_fail("out of memory");
    pk->stack = s;
    pk->stack_cap = cap;
  }
  pk->stack[pk->sp++] = v;
  return 0;
}

static size_t segment_base(const sdr_pickle *pk) {
  return pk->nmarks ? pk->marks[pk->nmarks - 1] : 0;
}

static sdr_pk_value *pop(sdr_pickle *pk) {
  if (pk->sp <= segment_base(pk)) {
    pk_fail(pk, "the pickle pops from an empty stack");
    return NULL;
  }
  return pk->stack[--pk->sp];
}

static sdr_pk_value *top(sdr_pickle *pk) {
  if (pk->sp <= segment_base(pk)) {
    pk_fail(pk, "the pickle uses the top of an empty stack");
    return NULL;
  }
  return pk->stack[pk->sp - 1];
}

static int push_mark(sdr_pickle *pk) {
  if (pk->nmarks == pk->marks_cap) {
    size_t cap = pk->marks_cap ? pk->marks_cap * 2 : 16;
    size_t *m = realloc(pk->marks, cap * sizeof *m);
    if (!m)
      return sdr_fail("out of memory");
    pk->marks = m;
    pk->marks_cap = cap;
  }
  pk->marks[pk->nmarks++] = pk->sp;
  return 0;
}

/* Ends the current segment: its items are stack[*from .. sp), which the caller consumes. */
static int pop_mark(sdr_pickle *pk, size_t *from) {
  if (!pk->nmarks)
    return pk_fail(pk, "the pickle ends a MARK it never began");
  *from = pk->marks[--pk->nmarks];
  return 0;
}

/* ---- reading ----------------------------------------------------------------- */

static int need(sdr_pickle *pk, uint64_t n) {
  if ((uint64_t)(pk->end - pk->p) < n)
    return pk_fail(pk, "truncated: the pickle needs %llu more bytes, %zu are left",
                   (unsigned long long)n, (size_t)(pk->end - pk->p));
  return 0;
}

static uint64_t rd_le(sdr_pickle *pk, int n) {
  uint64_t x = 0;
  for (int i = 0; i < n; i++)
    x |= (uint64_t)pk->p[i] << (8 * i);
  pk->p += n;
  return x;
}

/* A text argument ending in '\n' (protocol 0 forms): returns its length, -1 on error. */
static int rd_line(sdr_pickle *pk, const char **s, size_t max) {
  const unsigned char *nl =
      memchr(pk->p, '\n', (size_t)(pk->end - pk->p) < max ? (size_t)(pk->end - pk->p) : max);
  if (!nl)
    return pk_fail(pk, "a text argument without its newline (or longer than %zu bytes)", max);
  *s = (const char *)pk->p;
  int len = (int)(nl - pk->p);
  pk->p = nl + 1;
  return len;
}

/* A decimal integer from a text argument (INT, PUT, GET). */
static int rd_decimal(sdr_pickle *pk, int64_t *out) {
  const char *s = NULL;
  int len = rd_line(pk, &s, 32);
  if (len < 0)
    return -1;
  int i = 0, neg = 0;
  if (i < len && (s[i] == '-' || s[i] == '+'))
    neg = s[i++] == '-';
  if (i == len)
    return pk_fail(pk, "an empty decimal argument");
  uint64_t v = 0;
  for (; i < len; i++) {
    if (s[i] < '0' || s[i] > '9' || v > (uint64_t)INT64_MAX / 10)
      return pk_fail(pk, "a decimal argument that is not an integer in range");
    v = v * 10 + (uint64_t)(s[i] - '0');
    if (v > (uint64_t)INT64_MAX)
      return pk_fail(pk, "a decimal argument that is not an integer in range");
  }
  *out = neg ? -(int64_t)v : (int64_t)v;
  return 0;
}

static sdr_pk_value *new_int(sdr_pickle *pk, sdr_pk_kind kind, int64_t i) {
  sdr_pk_value *v = pk_new(pk, kind);
  if (v)
    v->u.i = i;
  return v;
}

/* LONG1/LONG4: n bytes of little-endian two's complement. */
static sdr_pk_value *new_long(sdr_pickle *pk, uint64_t n) {
  if (need(pk, n) != 0)
    return NULL;
  sdr_pk_value *v;
  if (n <= 8) {
    uint64_t x = 0;
    for (uint64_t i = 0; i < n; i++)
      x |= (uint64_t)pk->p[i] << (8 * i);
    if (n && n < 8 && (pk->p[n - 1] & 0x80))
      x |= ~(uint64_t)0 << (8 * n); /* sign-extend */
    v = new_int(pk, SDR_PK_INT, (int64_t)x);
  } else if ((v = pk_new(pk, SDR_PK_BIGINT))) {
    v->u.s.p = (const char *)pk->p;
    v->u.s.len = (size_t)n;
  }
  pk->p += n;
  return v;
}

static sdr_pk_value *new_bytes(sdr_pickle *pk, sdr_pk_kind kind, uint64_t n) {
  if (need(pk, n) != 0)
    return NULL;
  sdr_pk_value *v = pk_new(pk, kind);
  if (v) {
    v->u.s.p = (const char *)pk->p;
    v->u.s.len = (size_t)n;
  }
  pk->p += n;
  return v;
}

/* ---- the memo ---------------------------------------------------------------- */

static int memo_put(sdr_pickle *pk, uint64_t idx) {
  /* Python's pickler numbers entries 0, 1, 2, ... as it writes them: an index
   * beyond the puts made so far is hostile, and would size the memo by it. */
  if (idx > pk->memo_puts)
    return pk_fail(pk, "memo index %llu is out of order (%zu entries so far)",
                   (unsigned long long)idx, pk->memo_puts);
  sdr_pk_value *v = top(pk);
  if (!v)
    return -1;
  if (idx >= pk->memo_cap) {
    size_t cap = pk->memo_cap ? pk->memo_cap * 2 : 256;
    while (cap <= idx)
      cap *= 2;
    sdr_pk_value **m = realloc(pk->memo, cap * sizeof *m);
    if (!m)
      return sdr_fail("out of memory");
    memset(m + pk->memo_cap, 0, (cap - pk->memo_cap) * sizeof *m);
    pk->memo = m;
    pk->memo_cap = cap;
  }
  if (!pk->memo[idx])
    pk->memo_len++;
  pk->memo[idx] = v;
  pk->memo_puts++;
  return 0;
}

static int memo_get(sdr_pickle *pk, uint64_t idx) {
  if (idx >= pk->memo_cap || !pk->memo[idx])
    return pk_fail(pk, "memo index %llu was never stored", (unsigned long long)idx);
  return push(pk, pk->memo[idx]);
}

/* ---- globals and calls ------------------------------------------------------- */

static int find_global(sdr_pickle *pk, const char *mod, size_t mlen, const char *name,
                       size_t nlen) {
  for (int i = 0; i < N_GLOBALS; i++)
    if (strlen(pk_globals[i].module) == mlen && memcmp(pk_globals[i].module, mod, mlen) == 0 &&
        strlen(pk_globals[i].name) == nlen && memcmp(pk_globals[i].name, name, nlen) == 0)
      return i;
  char m[512], n[512];
  pk_printable(m, sizeof m, mod, mlen);
  pk_printable(n, sizeof n, name, nlen);
  sdr_fail("%s: refusing to load: the file asks for the Python global %s.%s (only torch's "
           "tensors, storages and dicts are read, and nothing in a file is run)",
           pk->name, m, n);
  return -1;
}

static sdr_pk_value *new_global(sdr_pickle *pk, const char *mod, size_t mlen, const char *name,
                                size_t nlen) {
  int g = find_global(pk, mod, mlen, name, nlen);
  if (g < 0)
    return NULL;
  sdr_pk_value *v = pk_new(pk, SDR_PK_GLOBAL);
  if (v)
    v->u.global = g;
  return v;
}

const char *sdr_pk_global_module(const sdr_pk_value *v) {
  return v && v->kind == SDR_PK_GLOBAL ? pk_globals[v->u.global].module : NULL;
}

const char *sdr_pk_global_name(const sdr_pk_value *v) {
  return v && v->kind == SDR_PK_GLOBAL ? pk_globals[v->u.global].name : NULL;
}

static const char *gname(int g) { return pk_globals[g].name; }

static int is_int(const sdr_pk_value *v) { return v->kind == SDR_PK_INT || v->kind == SDR_PK_BOOL; }

/* A tuple of at most SDR_PK_MAX_DIMS non-negative integers (torch.Size, strides). */
static int int_tuple(sdr_pickle *pk, const sdr_pk_value *t, const char *what, int64_t *out,
                     int *n) {
  if (t->kind != SDR_PK_TUPLE)
    return pk_fail(pk, "_rebuild_tensor_v2: the %s is a %s, not a tuple", what,
                   sdr_pk_kind_name(t->kind));
  if (t->u.seq.n > SDR_PK_MAX_DIMS)
    return pk_fail(pk, "_rebuild_tensor_v2: a tensor of %zu dimensions (at most %d are read)",
                   t->u.seq.n, SDR_PK_MAX_DIMS);
  for (size_t i = 0; i < t->u.seq.n; i++) {
    const sdr_pk_value *x = t->u.seq.v[i];
    if (x->kind != SDR_PK_INT || x->u.i < 0)
      return pk_fail(pk, "_rebuild_tensor_v2: the %s holds something other than a size", what);
    out[i] = x->u.i;
  }
  *n = (int)t->u.seq.n;
  return 0;
}

/* torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride,
 * requires_grad, backward_hooks, metadata=None). */
static sdr_pk_value *rebuild_tensor(sdr_pickle *pk, const sdr_pk_value *args) {
  size_t n = args->u.seq.n;
  sdr_pk_value *const *a = args->u.seq.v;
  if (n != 6 && n != 7) {
    pk_fail(pk, "_rebuild_tensor_v2 takes 6 or 7 arguments, the file gives %zu", n);
    return NULL;
  }
  if (a[0]->kind != SDR_PK_STORAGE) {
    pk_fail(pk, "_rebuild_tensor_v2: the storage is a %s", sdr_pk_kind_name(a[0]->kind));
    return NULL;
  }
  if (a[1]->kind != SDR_PK_INT || a[1]->u.i < 0) {
    pk_fail(pk, "_rebuild_tensor_v2: the storage offset is not a non-negative integer");
    return NULL;
  }
  sdr_pk_tensor *t = pk_alloc(pk, sizeof *t);
  if (!t)
    return NULL;
  int ns = 0, nst = 0;
  if (int_tuple(pk, a[2], "size", t->shape, &ns) != 0 ||
      int_tuple(pk, a[3], "stride", t->stride, &nst) != 0)
    return NULL;
  if (ns != nst) {
    pk_fail(pk, "_rebuild_tensor_v2: %d sizes but %d strides", ns, nst);
    return NULL;
  }
  if (!is_int(a[4]) || (a[5]->kind != SDR_PK_DICT && a[5]->kind != SDR_PK_NONE) ||
      (n == 7 && a[6]->kind != SDR_PK_DICT && a[6]->kind != SDR_PK_NONE)) {
    pk_fail(pk, "_rebuild_tensor_v2: requires_grad, backward_hooks or metadata of a wrong type");
    return NULL;
  }
  t->storage = a[0]->u.storage;
  t->offset = a[1]->u.i;
  t->ndim = ns;
  sdr_pk_value *v = pk_new(pk, SDR_PK_TENSOR);
  if (v)
    v->u.tensor = t;
  return v;
}

/* OrderedDict(), OrderedDict(pairs) or OrderedDict(dict). */
static sdr_pk_value *ordered_dict(sdr_pickle *pk, const sdr_pk_value *args) {
  sdr_pk_value *d = pk_new(pk, SDR_PK_DICT);
  if (!d || args->u.seq.n == 0)
    return d;
  const sdr_pk_value *src = args->u.seq.v[0];
  if (args->u.seq.n != 1 ||
      (src->kind != SDR_PK_DICT && src->kind != SDR_PK_LIST && src->kind != SDR_PK_TUPLE)) {
    pk_fail(pk, "OrderedDict called with arguments torch never gives it");
    return NULL;
  }
  if (src->kind == SDR_PK_DICT) {
    for (size_t i = 0; i < src->u.seq.n; i++)
      if (seq_push(pk, d, src->u.seq.v[i]) != 0)
        return NULL;
    return d;
  }
  for (size_t i = 0; i < src->u.seq.n; i++) {
    const sdr_pk_value *pair = src->u.seq.v[i];
    if ((pair->kind != SDR_PK_TUPLE && pair->kind != SDR_PK_LIST) || pair->u.seq.n != 2) {
      pk_fail(pk, "OrderedDict: an item that is not a (key, value) pair");
      return NULL;
    }
    if (seq_push(pk, d, pair->u.seq.v[0]) != 0 || seq_push(pk, d, pair->u.seq.v[1]) != 0)
      return NULL;
  }
  return d;
}

/* _codecs.encode(text, "latin1"): how protocol 2 writes Python 3 bytes. */
static sdr_pk_value *codecs_encode(sdr_pickle *pk, const sdr_pk_value *args) {
  const sdr_pk_value *a = args->u.seq.n == 2 ? args->u.seq.v[0] : NULL;
  const sdr_pk_value *e = a ? args->u.seq.v[1] : NULL;
  if (!a || a->kind != SDR_PK_STR || e->kind != SDR_PK_STR ||
      !((e->u.s.len == 6 && memcmp(e->u.s.p, "latin1", 6) == 0) ||
        (e->u.s.len == 7 && memcmp(e->u.s.p, "latin-1", 7) == 0))) {
    pk_fail(pk, "_codecs.encode called with arguments other than (text, \"latin1\")");
    return NULL;
  }
  unsigned char *out = pk_alloc(pk, a->u.s.len + 1);
  if (!out)
    return NULL;
  size_t o = 0;
  const unsigned char *s = (const unsigned char *)a->u.s.p;
  for (size_t i = 0; i < a->u.s.len;) {
    if (s[i] < 0x80)
      out[o++] = s[i++];
    else if ((s[i] & 0xfe) == 0xc2 && i + 1 < a->u.s.len && (s[i + 1] & 0xc0) == 0x80) {
      out[o++] = (unsigned char)(((s[i] & 0x03) << 6) | (s[i + 1] & 0x3f));
      i += 2;
    } else {
      pk_fail(pk, "_codecs.encode: text that latin1 cannot encode");
      return NULL;
    }
  }
  sdr_pk_value *v = pk_new(pk, SDR_PK_BYTES);
  if (v) {
    v->u.s.p = (const char *)out;
    v->u.s.len = o;
  }
  return v;
}

static sdr_pk_value *call(sdr_pickle *pk, const sdr_pk_value *f, const sdr_pk_value *args,
                          int nested);

/* torch._tensor._rebuild_from_type_v2(func, new_type, args, state): a tensor
 * with Python attributes; the attributes (state) are dropped. */
static sdr_pk_value *rebuild_from_type(sdr_pickle *pk, const sdr_pk_value *args) {
  sdr_pk_value *const *a = args->u.seq.v;
  if (args->u.seq.n != 4 || a[0]->kind != SDR_PK_GLOBAL || a[1]->kind != SDR_PK_GLOBAL ||
      a[2]->kind != SDR_PK_TUPLE || (a[1]->u.global != G_TENSOR && a[1]->u.global != G_PARAMETER)) {
    pk_fail(pk, "_rebuild_from_type_v2 called with arguments torch never gives it");
    return NULL;
  }
  return call(pk, a[0], a[2], 1);
}

/* REDUCE: f(*args) for the few functions of the table. */
static sdr_pk_value *call(sdr_pickle *pk, const sdr_pk_value *f, const sdr_pk_value *args,
                          int nested) {
  if (f->kind != SDR_PK_GLOBAL) {
    pk_fail(pk, "the pickle calls a %s", sdr_pk_kind_name(f->kind));
    return NULL;
  }
  if (args->kind != SDR_PK_TUPLE) {
    pk_fail(pk, "the arguments of %s are a %s, not a tuple", gname(f->u.global),
            sdr_pk_kind_name(args->kind));
    return NULL;
  }
  int g = f->u.global;
  size_t n = args->u.seq.n;
  sdr_pk_value *const *a = args->u.seq.v;
  switch (g) {
  case G_REBUILD_TENSOR_V2:
    return rebuild_tensor(pk, args);
  case G_REBUILD_PARAMETER:
  case G_REBUILD_PARAMETER_WITH_STATE:
    /* (data, requires_grad, backward_hooks[, state]): the tensor itself */
    if (n != (g == G_REBUILD_PARAMETER ? 3u : 4u) || a[0]->kind != SDR_PK_TENSOR) {
      pk_fail(pk, "%s called with arguments torch never gives it", gname(g));
      return NULL;
    }
    return a[0];
  case G_ORDERED_DICT:
    return ordered_dict(pk, args);
  case G_CODECS_ENCODE:
    return codecs_encode(pk, args);
  case G_REBUILD_FROM_TYPE_V2:
    if (!nested)
      return rebuild_from_type(pk, args);
    break;
  default:
    break;
  }
  pk_fail(pk, "the file calls %s.%s, which torch.save never calls", pk_globals[g].module, gname(g));
  return NULL;
}

/* BINPERSID: torch.serialization's persistent_load. The id is ('storage',
 * storage_type, key, location, numel) in the zip format; the legacy format
 * adds view_metadata, None unless a storage is a view of another (torch < 0.4). */
static sdr_pk_value *persistent_load(sdr_pickle *pk, const sdr_pk_value *pid) {
  sdr_pk_value *const *a = pid->u.seq.v;
  if (pid->kind != SDR_PK_TUPLE || pid->u.seq.n < 5 || pid->u.seq.n > 6 ||
      a[0]->kind != SDR_PK_STR || a[0]->u.s.len != 7 || memcmp(a[0]->u.s.p, "storage", 7) != 0) {
    pk_fail(pk, "a persistent id that is not torch's ('storage', type, key, location, size)");
    return NULL;
  }
  if (a[1]->kind != SDR_PK_GLOBAL || pk_globals[a[1]->u.global].dtype < 0) {
    pk_fail(pk, "a persistent id whose storage type is not a torch storage class");
    return NULL;
  }
  if (a[2]->kind != SDR_PK_STR || a[3]->kind != SDR_PK_STR || a[4]->kind != SDR_PK_INT ||
      a[4]->u.i < 0) {
    pk_fail(pk, "a persistent id with a key, location or size of a wrong type");
    return NULL;
  }
  if (pid->u.seq.n == 6 && a[5]->kind != SDR_PK_NONE) {
    pk_fail(pk, "a storage that is a view of another (torch < 0.4 files) is not supported");
    return NULL;
  }
  sdr_pk_storage *s = pk_alloc(pk, sizeof *s);
  sdr_pk_value *v = s ? pk_new(pk, SDR_PK_STORAGE) : NULL;
  if (!v)
    return NULL;
  s->dtype = (sdr_dtype)pk_globals[a[1]->u.global].dtype;
  s->key = a[2]->u.s.p;
  s->key_len = a[2]->u.s.len;
  s->numel = a[4]->u.i;
  s->next = pk->storages;
  pk->storages = s;
  v->u.storage = s;
  return v;
}

/* ---- the machine ------------------------------------------------------------- */

/* A container from the current segment: TUPLE, LIST, or DICT (pairs). */
static int from_mark(sdr_pickle *pk, sdr_pk_kind kind) {
  size_t from = 0;
  if (pop_mark(pk, &from) != 0)
    return -1;
  if (kind == SDR_PK_DICT && (pk->sp - from) % 2)
    return pk_fail(pk, "DICT with an odd number of items");
  sdr_pk_value *v = pk_new(pk, kind);
  if (!v)
    return -1;
  for (size_t i = from; i < pk->sp; i++)
    if (seq_push(pk, v, pk->stack[i]) != 0)
      return -1;
  pk->sp = from;
  return push(pk, v);
}

static int tuple_n(sdr_pickle *pk, size_t n) {
  if (pk->sp - segment_base(pk) < n)
    return pk_fail(pk, "TUPLE%zu with fewer items on the stack", n);
  sdr_pk_value *v = pk_new(pk, SDR_PK_TUPLE);
  if (!v)
    return -1;
  for (size_t i = pk->sp - n; i < pk->sp; i++)
    if (seq_push(pk, v, pk->stack[i]) != 0)
      return -1;
  pk->sp -= n;
  return push(pk, v);
}

/* APPEND(S) and SETITEM(S): items from index `from` go into the container below them. */
static int add_items(sdr_pickle *pk, size_t from, sdr_pk_kind kind) {
  if (from == 0 || from - 1 < segment_base(pk))
    return pk_fail(pk, "%s without a container below its items",
                   kind == SDR_PK_LIST ? "APPEND" : "SETITEM");
  sdr_pk_value *c = pk->stack[from - 1];
  if (c->kind != kind)
    return pk_fail(pk, "%s on a %s", kind == SDR_PK_LIST ? "APPEND" : "SETITEM",
                   sdr_pk_kind_name(c->kind));
  if (kind == SDR_PK_DICT && (pk->sp - from) % 2)
    return pk_fail(pk, "SETITEMS with an odd number of items");
  for (size_t i = from; i < pk->sp; i++)
    if (seq_push(pk, c, pk->stack[i]) != 0)
      return -1;
  pk->sp = from;
  return 0;
}

static int reduce(sdr_pickle *pk) {
  sdr_pk_value *args = pop(pk), *f = args ? pop(pk) : NULL;
  if (!f)
    return -1;
  return push(pk, call(pk, f, args, 0));
}

static int newobj(sdr_pickle *pk) {
  sdr_pk_value *args = pop(pk), *cls = args ? pop(pk) : NULL;
  if (!cls)
    return -1;
  if (cls->kind == SDR_PK_GLOBAL)
    return pk_fail(pk, "refusing to load: the file makes an object of %s.%s with NEWOBJ",
                   pk_globals[cls->u.global].module, gname(cls->u.global));
  return pk_fail(pk, "NEWOBJ on a %s", sdr_pk_kind_name(cls->kind));
}

static int build(sdr_pickle *pk) {
  sdr_pk_value *state = pop(pk), *obj = state ? top(pk) : NULL;
  if (!obj)
    return -1;
  /* An OrderedDict state dict carries _metadata (module versions) as its
   * __dict__; a tensor may carry Python attributes. Neither matters here. */
  if (obj->kind == SDR_PK_DICT || obj->kind == SDR_PK_TENSOR)
    return 0;
  return pk_fail(pk, "BUILD (setting the state of an object) on a %s", sdr_pk_kind_name(obj->kind));
}

static int op_global(sdr_pickle *pk) {
  const char *mod = NULL, *name = NULL;
  int ml = rd_line(pk, &mod, 256);
  int nl = ml < 0 ? -1 : rd_line(pk, &name, 256);
  if (nl < 0)
    return -1;
  return push(pk, new_global(pk, mod, (size_t)ml, name, (size_t)nl));
}

static int op_stack_global(sdr_pickle *pk) {
  sdr_pk_value *name = pop(pk), *mod = name ? pop(pk) : NULL;
  if (!mod)
    return -1;
  if (mod->kind != SDR_PK_STR || name->kind != SDR_PK_STR)
    return pk_fail(pk, "STACK_GLOBAL with a module or name that is not a string");
  return push(pk, new_global(pk, mod->u.s.p, mod->u.s.len, name->u.s.p, name->u.s.len));
}

static int op_inst(sdr_pickle *pk) {
  const char *mod = NULL, *name = NULL;
  int ml = rd_line(pk, &mod, 256);
  int nl = ml < 0 ? -1 : rd_line(pk, &name, 256);
  if (nl < 0)
    return -1;
  char m[512], n[512];
  pk_printable(m, sizeof m, mod, (size_t)ml);
  pk_printable(n, sizeof n, name, (size_t)nl);
  return sdr_fail("%s: refusing to load: the file asks for the Python global %s.%s (only "
                  "torch's tensors, storages and dicts are read, and nothing in a file is run)",
                  pk->name, m, n);
}

/* Runs one opcode; 1 at STOP. */
static int step(sdr_pickle *pk, sdr_pk_value **result) {
  pk->op = pk->p;
  if (need(pk, 1) != 0)
    return pk_fail(pk, "truncated: the pickle ends before its STOP");
  unsigned char op = *pk->p++;
  int64_t i64 = 0;
  size_t from = 0;
  switch (op) {
  case 0x80: /* PROTO */
    if (need(pk, 1) != 0)
      return -1;
    if (*pk->p > 5)
      return pk_fail(pk, "pickle protocol %d (at most 5 exists)", *pk->p);
    pk->p++;
    return 0;
  case 0x95: /* FRAME: a length prefix only; the opcodes follow inline */
    if (need(pk, 8) != 0)
      return -1;
    pk->p += 8;
    return 0;
  case '.': /* STOP */
    if (!(*result = pop(pk)))
      return -1;
    return 1;
  case '(':
    return push_mark(pk);
  case '0': /* POP: the top item, or the mark when the segment is empty */
    if (pk->sp > segment_base(pk)) {
      pk->sp--;
      return 0;
    }
    return pop_mark(pk, &from);
  case '1': /* POP_MARK */
    if (pop_mark(pk, &from) != 0)
      return -1;
    pk->sp = from;
    return 0;
  case '2': { /* DUP */
    sdr_pk_value *v = top(pk);
    return v ? push(pk, v) : -1;
  }
  case 'N':
    return push(pk, pk_new(pk, SDR_PK_NONE));
  case 0x88: /* NEWTRUE */
  case 0x89: /* NEWFALSE */
    return push(pk, new_int(pk, SDR_PK_BOOL, op == 0x88));
  case 'J': /* BININT */
    if (need(pk, 4) != 0)
      return -1;
    return push(pk, new_int(pk, SDR_PK_INT, (int32_t)(uint32_t)rd_le(pk, 4)));
  case 'K': /* BININT1 */
    if (need(pk, 1) != 0)
      return -1;
    return push(pk, new_int(pk, SDR_PK_INT, (int64_t)rd_le(pk, 1)));
  case 'M': /* BININT2 */
    if (need(pk, 2) != 0)
      return -1;
    return push(pk, new_int(pk, SDR_PK_INT, (int64_t)rd_le(pk, 2)));
  case 'I': /* INT (protocol 0; "01" and "00" are True and False) */
    if (rd_decimal(pk, &i64) != 0)
      return -1;
    if (pk->p - pk->op == 4 && pk->op[1] == '0' && (pk->op[2] == '0' || pk->op[2] == '1'))
      return push(pk, new_int(pk, SDR_PK_BOOL, i64));
    return push(pk, new_int(pk, SDR_PK_INT, i64));
  case 0x8a: /* LONG1 */
    if (need(pk, 1) != 0)
      return -1;
    return push(pk, new_long(pk, rd_le(pk, 1)));
  case 0x8b: /* LONG4 */
    if (need(pk, 4) != 0)
      return -1;
    i64 = (int32_t)(uint32_t)rd_le(pk, 4);
    if (i64 < 0)
      return pk_fail(pk, "LONG4 with a negative length");
    return push(pk, new_long(pk, (uint64_t)i64));
  case 'G': { /* BINFLOAT: big-endian double */
    if (need(pk, 8) != 0)
      return -1;
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++)
      bits = bits << 8 | pk->p[i];
    pk->p += 8;
    sdr_pk_value *v = pk_new(pk, SDR_PK_FLOAT);
    if (v)
      memcpy(&v->u.f, &bits, sizeof bits);
    return push(pk, v);
  }
  case 'X': /* BINUNICODE */
  case 'T': /* BINSTRING (Python 2 str, read as ASCII text) */
  case 'B': /* BINBYTES */
    if (need(pk, 4) != 0)
      return -1;
    i64 = op == 'T' ? (int32_t)(uint32_t)rd_le(pk, 4) : (int64_t)rd_le(pk, 4);
    if (i64 < 0)
      return pk_fail(pk, "BINSTRING with a negative length");
    return push(pk, new_bytes(pk, op == 'B' ? SDR_PK_BYTES : SDR_PK_STR, (uint64_t)i64));
  case 0x8c: /* SHORT_BINUNICODE */
  case 'U':  /* SHORT_BINSTRING */
  case 'C':  /* SHORT_BINBYTES */
    if (need(pk, 1) != 0)
      return -1;
    return push(pk, new_bytes(pk, op == 'C' ? SDR_PK_BYTES : SDR_PK_STR, rd_le(pk, 1)));
  case 0x8d: /* BINUNICODE8 */
  case 0x8e: /* BINBYTES8 */
    if (need(pk, 8) != 0)
      return -1;
    return push(pk, new_bytes(pk, op == 0x8d ? SDR_PK_STR : SDR_PK_BYTES, rd_le(pk, 8)));
  case ')':
    return push(pk, pk_new(pk, SDR_PK_TUPLE));
  case 't':
    return from_mark(pk, SDR_PK_TUPLE);
  case 0x85:
  case 0x86:
  case 0x87: /* TUPLE1..3 */
    return tuple_n(pk, (size_t)(op - 0x84));
  case ']':
    return push(pk, pk_new(pk, SDR_PK_LIST));
  case 'l':
    return from_mark(pk, SDR_PK_LIST);
  case '}':
    return push(pk, pk_new(pk, SDR_PK_DICT));
  case 'd':
    return from_mark(pk, SDR_PK_DICT);
  case 'a': /* APPEND */
    if (pk->sp - segment_base(pk) < 2)
      return pk_fail(pk, "APPEND without a list and an item");
    return add_items(pk, pk->sp - 1, SDR_PK_LIST);
  case 's': /* SETITEM */
    if (pk->sp - segment_base(pk) < 3)
      return pk_fail(pk, "SETITEM without a dict, a key and a value");
    return add_items(pk, pk->sp - 2, SDR_PK_DICT);
  case 'e': /* APPENDS */
  case 'u': /* SETITEMS */
    if (pop_mark(pk, &from) != 0)
      return -1;
    return add_items(pk, from, op == 'e' ? SDR_PK_LIST : SDR_PK_DICT);
  case 'p': /* PUT */
    if (rd_decimal(pk, &i64) != 0)
      return -1;
    if (i64 < 0)
      return pk_fail(pk, "a negative memo index");
    return memo_put(pk, (uint64_t)i64);
  case 'q': /* BINPUT */
    if (need(pk, 1) != 0)
      return -1;
    return memo_put(pk, rd_le(pk, 1));
  case 'r': /* LONG_BINPUT */
    if (need(pk, 4) != 0)
      return -1;
    return memo_put(pk, rd_le(pk, 4));
  case 0x94: /* MEMOIZE */
    return memo_put(pk, pk->memo_len);
  case 'g': /* GET */
    if (rd_decimal(pk, &i64) != 0)
      return -1;
    if (i64 < 0)
      return pk_fail(pk, "a negative memo index");
    return memo_get(pk, (uint64_t)i64);
  case 'h': /* BINGET */
    if (need(pk, 1) != 0)
      return -1;
    return memo_get(pk, rd_le(pk, 1));
  case 'j': /* LONG_BINGET */
    if (need(pk, 4) != 0)
      return -1;
    return memo_get(pk, rd_le(pk, 4));
  case 'c':
    return op_global(pk);
  case 0x93:
    return op_stack_global(pk);
  case 'i': /* INST: refused with the class it names */
    return op_inst(pk);
  case 'R':
    return reduce(pk);
  case 'b':
    return build(pk);
  case 0x81:                    /* NEWOBJ */
  case 0x92:                    /* NEWOBJ_EX */
    if (op == 0x92 && !pop(pk)) /* its kwargs */
      return -1;
    return newobj(pk);
  case 'Q': { /* BINPERSID */
    sdr_pk_value *pid = pop(pk);
    return pid ? push(pk, persistent_load(pk, pid)) : -1;
  }
  case 'o': /* OBJ */
    return pk_fail(pk, "refusing to load: the file makes an object with OBJ");
  case 'P': /* PERSID (text) */
    return pk_fail(pk, "a text persistent id, which torch never writes");
  case 0x82:
  case 0x83:
  case 0x84:
    return pk_fail(pk,
                   "refusing to load: the file asks for a global from the copyreg "
                   "extension registry (EXT%d)",
                   op == 0x82   ? 1
                   : op == 0x83 ? 2
                                : 4);
  default:
    if (op >= 0x20 && op < 0x7f)
      return pk_fail(pk, "pickle opcode '%c' (0x%02x) is not supported here", op, op);
    return pk_fail(pk, "pickle opcode 0x%02x is not supported here", op);
  }
}

const sdr_pk_value *sdr_pickle_load(sdr_pickle *pk, const void *data, size_t len, size_t *used) {
  pk->start = pk->p = pk->op = data;
  pk->end = pk->start + (data ? len : 0);
  pk->sp = pk->nmarks = 0;
  pk->memo_puts = pk->memo_len = 0;
  if (pk->memo)
    memset(pk->memo, 0, pk->memo_cap * sizeof *pk->memo);
  sdr_pk_value *result = NULL;
  int rc;
  while ((rc = step(pk, &result)) == 0)
    ;
  if (rc < 0)
    return NULL;
  if (used)
    *used = (size_t)(pk->p - pk->start);
  return result;
}

/* ---- reading values ---------------------------------------------------------- */

const sdr_pk_value *sdr_pk_dict_get(const sdr_pk_value *d, const char *key) {
  if (!d || d->kind != SDR_PK_DICT)
    return NULL;
  size_t klen = strlen(key);
  for (size_t i = d->u.seq.n; i >= 2; i -= 2) {
    const sdr_pk_value *k = d->u.seq.v[i - 2];
    if (k->kind == SDR_PK_STR && k->u.s.len == klen && memcmp(k->u.s.p, key, klen) == 0)
      return d->u.seq.v[i - 1];
  }
  return NULL;
}

const char *sdr_pk_kind_name(sdr_pk_kind kind) {
  static const char *const names[] = {"None",   "bool",    "int",   "int",  "float",
                                      "str",    "bytes",   "tuple", "list", "dict",
                                      "global", "storage", "tensor"};
  return (unsigned)kind < sizeof names / sizeof names[0] ? names[kind] : "value";
}

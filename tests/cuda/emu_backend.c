/* tests/cuda/emu_backend.c — an emulated CUDA device over the CPU backend (emu_backend.h). */
#include "emu_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_backend.h" // sdr_cpu_backend_create
#include "kernels/error.h"           // sdr_fail
#include "kernels/half.h"            // sdr_f16_to_f32, sdr_f32_to_f16, ...
#include "kernels/philox_fill.h"     // sdr_philox_fill

/* ---- device addresses --------------------------------------------------------------
 *
 * A device address is the host address with TAG set. On x86-64 bit 62 makes any
 * user address non-canonical (with 4- or 5-level paging): a load faults before
 * it reaches memory, and ASan's shadow lookup of it faults too. AArch64 ignores
 * the top byte (TBI), so there bit 55 is used: it selects the kernel's half. */
#if defined(__aarch64__)
#define TAG ((uintptr_t)1 << 55)
#else
#define TAG ((uintptr_t)1 << 62)
#endif

enum { EMU_ALIGN = 256 }; /* cudaMalloc's alignment, at least */

typedef struct emu_alloc {
  uintptr_t base; /* host address, untagged */
  size_t bytes;
} emu_alloc;

/* ---- calls: one op with its arguments, run now or recorded ---- */

typedef enum emu_op {
  OP_LINEAR,
  OP_BMM,
  OP_CONV2D,
  OP_GROUP_NORM,
  OP_LAYER_NORM,
  OP_ATTENTION,
  OP_SOFTMAX,
  OP_UNARY,
  OP_GEGLU,
  OP_BINARY,
  OP_AFFINE,
  OP_UPSAMPLE,
  OP_CONCAT,
  OP_PERMUTE,
  OP_CAST,
  OP_EMBEDDING,
  OP_TIMESTEP,
  OP_FILL,
  OP_PAD2D,
  OP_COUNT
} emu_op;

static const char *const op_names[OP_COUNT] = {"linear",
                                               "bmm",
                                               "conv2d",
                                               "group_norm",
                                               "layer_norm",
                                               "attention",
                                               "softmax",
                                               "unary",
                                               "geglu",
                                               "binary",
                                               "affine",
                                               "upsample",
                                               "concat",
                                               "permute",
                                               "cast",
                                               "embedding",
                                               "timestep_embedding",
                                               "fill",
                                               "pad2d"};

/* Which tensor slots (0 the output, then the inputs in the op's order) hold
 * activations: widened from float16/bfloat16 to float32 before the CPU op runs,
 * the output rounded back after. Other slots (weights, biases, norm parameters,
 * ids, timesteps) go to the CPU op as they are. Ops that only move bytes
 * (concat, permute, cast, fill) run on the stored dtype and have none. */
static const unsigned act_slots[OP_COUNT] = {
    [OP_LINEAR] = 0x3,     [OP_BMM] = 0x7,       [OP_CONV2D] = 0x3,  [OP_GROUP_NORM] = 0x3,
    [OP_LAYER_NORM] = 0x3, [OP_ATTENTION] = 0xf, [OP_SOFTMAX] = 0x3, [OP_UNARY] = 0x3,
    [OP_GEGLU] = 0x3,      [OP_BINARY] = 0x7,    [OP_AFFINE] = 0x3,  [OP_UPSAMPLE] = 0x3,
    [OP_CONCAT] = 0,       [OP_PERMUTE] = 0,     [OP_CAST] = 0,      [OP_EMBEDDING] = 0x1,
    [OP_TIMESTEP] = 0x1,   [OP_FILL] = 0,        [OP_PAD2D] = 0x3,
};

enum { EMU_SLOTS = 4 };

typedef struct emu_call {
  emu_op op;
  unsigned present; /* bit per slot given (optional bias, gamma, beta may be NULL) */
  sdr_tensor t[EMU_SLOTS];
  int i[4];
  float f[3];
  int perm[SDR_MAX_DIMS];
} emu_call;

typedef struct emu_graph {
  emu_call *calls;
  size_t n, cap;
} emu_graph;

typedef struct emu_state {
  sdr_backend *cpu;
  emu_alloc *allocs; /* sorted by base */
  size_t nallocs, cap;
  size_t ws_bytes;
  int recording;
  long long refuse_after; /* test knob: the next recording fails at this op (-1: never) */
  int broken;             /* an op failed while recording: the graph cannot end */
  emu_graph *rec;
  void **deferred; /* frees asked for while recording */
  size_t ndeferred, deferred_cap;
  sdr_emu_stats stats;
} emu_state;

static emu_state *state_of(const sdr_backend *be) { return (emu_state *)be->impl; }

/* ---- the allocation table ---- */

/* Index of the first allocation with base > p. */
static size_t upper_bound(const emu_state *st, uintptr_t p) {
  size_t lo = 0, hi = st->nallocs;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (st->allocs[mid].base <= p)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* The allocation holding [p, p + bytes), or NULL. */
static const emu_alloc *find_alloc(const emu_state *st, uintptr_t p, size_t bytes) {
  size_t i = upper_bound(st, p);
  if (i == 0)
    return NULL;
  const emu_alloc *a = &st->allocs[i - 1];
  if (p - a->base >= a->bytes && !(bytes == 0 && p == a->base + a->bytes))
    return NULL;
  if (bytes > a->bytes - (p - a->base))
    return NULL;
  return a;
}

static int is_device(const void *p) { return ((uintptr_t)p & TAG) != 0; }
static uintptr_t untag(const void *p) { return (uintptr_t)p & ~TAG; }

/* The host address of the device range [p, p + bytes); NULL and sdr_fail when
 * the range is not device memory of this backend. */
static void *host_of(const emu_state *st, const char *op, const char *what, const void *p,
                     size_t bytes) {
  if (!is_device(p)) {
    sdr_fail("%s: %s %p is a host address, not device memory (emulated CUDA backend)", op, what, p);
    return NULL;
  }
  uintptr_t h = untag(p);
  if (!find_alloc(st, h, bytes)) {
    sdr_fail("%s: %s %p (%zu bytes) is not inside one live device allocation (freed, or past "
             "its end; emulated CUDA backend)",
             op, what, p, bytes);
    return NULL;
  }
  return (void *)h;
}

static int refuse_recording(const emu_state *st, const char *op) {
  if (st->recording)
    return sdr_fail("%s: not allowed while a graph is being captured (ops only; emulated CUDA "
                    "backend)",
                    op);
  return 0;
}

/* ---- memory ---- */

static void *emu_alloc_op(sdr_backend *be, size_t bytes) {
  emu_state *st = state_of(be);
  if (refuse_recording(st, "sdr_alloc") < 0)
    return NULL;
  size_t n = (bytes + EMU_ALIGN - 1) / EMU_ALIGN * EMU_ALIGN;
  if (n == 0)
    n = EMU_ALIGN;
  if (n < bytes) {
    sdr_fail("sdr_alloc: out of memory (%zu bytes)", bytes);
    return NULL;
  }
  if (st->nallocs == st->cap) {
    size_t cap = st->cap ? 2 * st->cap : 256;
    emu_alloc *a = realloc(st->allocs, cap * sizeof *a);
    if (!a) {
      sdr_fail("sdr_alloc: out of memory");
      return NULL;
    }
    st->allocs = a;
    st->cap = cap;
  }
  void *p = aligned_alloc(EMU_ALIGN, n);
  if (!p) {
    sdr_fail("sdr_alloc: out of memory allocating %zu bytes (emulated device)", bytes);
    return NULL;
  }
  if ((uintptr_t)p & TAG) { /* never on Linux: user addresses stay below 2^47 (2^56) */
    free(p);
    sdr_fail("sdr_alloc: the host gave an address with the emulator's tag bit set");
    return NULL;
  }
  memset(p, 0xff, n); /* NaN in every float dtype: memory nobody wrote reads as NaN */
  size_t i = upper_bound(st, (uintptr_t)p);
  memmove(&st->allocs[i + 1], &st->allocs[i], (st->nallocs - i) * sizeof *st->allocs);
  st->allocs[i].base = (uintptr_t)p;
  st->allocs[i].bytes = bytes;
  st->nallocs++;
  st->stats.allocs++;
  st->stats.live_allocs++;
  st->stats.live_bytes += bytes;
  if (st->stats.live_bytes > st->stats.peak_bytes)
    st->stats.peak_bytes = st->stats.live_bytes;
  return (void *)((uintptr_t)p | TAG);
}

static void free_now(emu_state *st, void *ptr) {
  uintptr_t h = untag(ptr);
  size_t i = upper_bound(st, h);
  if (!is_device(ptr) || i == 0 || st->allocs[i - 1].base != h) {
    /* a bug in the caller; free() would crash or corrupt, so say it and go on */
    fprintf(stderr, "emu_backend: sdr_free(%p): not an allocation of this device\n", ptr);
    return;
  }
  st->stats.frees++;
  st->stats.live_allocs--;
  st->stats.live_bytes -= st->allocs[i - 1].bytes;
  memmove(&st->allocs[i - 1], &st->allocs[i], (st->nallocs - i) * sizeof *st->allocs);
  st->nallocs--;
  free((void *)h);
}

static void emu_free_op(sdr_backend *be, void *ptr) {
  emu_state *st = state_of(be);
  if (st->recording) { /* as kernels/cuda: cudaFree would break the capture */
    if (st->ndeferred == st->deferred_cap) {
      size_t cap = st->deferred_cap ? 2 * st->deferred_cap : 16;
      void **d = realloc(st->deferred, cap * sizeof *d);
      if (!d) {
        fprintf(stderr, "emu_backend: out of memory deferring a free; leaked\n");
        return;
      }
      st->deferred = d;
      st->deferred_cap = cap;
    }
    st->deferred[st->ndeferred++] = ptr;
    return;
  }
  free_now(st, ptr);
}

static int emu_upload(sdr_backend *be, void *dst, const void *src, size_t bytes) {
  emu_state *st = state_of(be);
  const char *op = "sdr_upload";
  if (refuse_recording(st, op) < 0)
    return -1;
  if (is_device(src))
    return sdr_fail("%s: the source %p is device memory (emulated CUDA backend)", op, src);
  void *h = host_of(st, op, "destination", dst, bytes);
  if (!h)
    return -1;
  memmove(h, src, bytes);
  st->stats.uploads++;
  return 0;
}

static int emu_download(sdr_backend *be, void *dst, const void *src, size_t bytes) {
  emu_state *st = state_of(be);
  const char *op = "sdr_download";
  if (refuse_recording(st, op) < 0)
    return -1;
  if (is_device(dst))
    return sdr_fail("%s: the destination %p is device memory (emulated CUDA backend)", op, dst);
  void *h = host_of(st, op, "source", src, bytes);
  if (!h)
    return -1;
  memmove(dst, h, bytes);
  st->stats.downloads++;
  return 0;
}

static int emu_sync(sdr_backend *be) {
  emu_state *st = state_of(be);
  if (refuse_recording(st, "sdr_sync") < 0)
    return -1;
  st->stats.syncs++;
  return 0;
}

/* The CPU backend's workspace is what the CPU ops carve their scratch from. */
static int emu_reserve_workspace(sdr_backend *be, size_t bytes) {
  emu_state *st = state_of(be);
  if (bytes <= st->ws_bytes)
    return 0;
  if (refuse_recording(st, "sdr_reserve_workspace") < 0)
    return -1;
  if (sdr_reserve_workspace(st->cpu, bytes) < 0)
    return -1;
  st->ws_bytes = bytes;
  return 0;
}

/* ---- running one call ---- */

static void widen(float *y, const void *x, sdr_dtype dt, int64_t n) {
  const uint16_t *h = x;
  if (dt == SDR_F16)
    for (int64_t i = 0; i < n; i++)
      y[i] = sdr_f16_to_f32(h[i]);
  else
    for (int64_t i = 0; i < n; i++)
      y[i] = sdr_bf16_to_f32(h[i]);
}

static void narrow(void *y, sdr_dtype dt, const float *x, int64_t n) {
  uint16_t *h = y;
  if (dt == SDR_F16)
    for (int64_t i = 0; i < n; i++)
      h[i] = sdr_f32_to_f16(x[i]);
  else
    for (int64_t i = 0; i < n; i++)
      h[i] = sdr_f32_to_bf16(x[i]);
}

static int dispatch(sdr_backend *cpu, const emu_call *c, sdr_tensor *t) {
#define T(k) ((c->present >> (k)) & 1 ? &t[k] : NULL)
  switch (c->op) {
  case OP_LINEAR:
    return sdr_linear(cpu, &t[0], &t[1], &t[2], T(3));
  case OP_BMM:
    return sdr_bmm(cpu, &t[0], &t[1], &t[2], c->i[0], c->f[0]);
  case OP_CONV2D:
    return sdr_conv2d(cpu, &t[0], &t[1], &t[2], T(3), c->i[0], c->i[1]);
  case OP_GROUP_NORM:
    return sdr_group_norm(cpu, &t[0], &t[1], T(2), T(3), c->i[0], c->f[0], c->i[1]);
  case OP_LAYER_NORM:
    return sdr_layer_norm(cpu, &t[0], &t[1], T(2), T(3), c->f[0]);
  case OP_ATTENTION:
    return sdr_attention(cpu, &t[0], &t[1], &t[2], &t[3], c->i[0], c->f[0], c->i[1]);
  case OP_SOFTMAX:
    return sdr_softmax(cpu, &t[0], &t[1]);
  case OP_UNARY:
    return sdr_unary(cpu, &t[0], &t[1], (sdr_unary_op)c->i[0]);
  case OP_GEGLU:
    return sdr_geglu(cpu, &t[0], &t[1]);
  case OP_BINARY:
    return sdr_binary(cpu, &t[0], &t[1], &t[2], (sdr_binary_op)c->i[0]);
  case OP_AFFINE:
    return sdr_affine(cpu, &t[0], &t[1], c->f[0], c->f[1]);
  case OP_UPSAMPLE:
    return sdr_upsample_nearest2x(cpu, &t[0], &t[1]);
  case OP_CONCAT:
    return sdr_concat(cpu, &t[0], &t[1], &t[2], c->i[0]);
  case OP_PERMUTE:
    return sdr_permute(cpu, &t[0], &t[1], c->perm);
  case OP_CAST:
    return sdr_cast(cpu, &t[0], &t[1]);
  case OP_EMBEDDING:
    return sdr_embedding(cpu, &t[0], &t[1], &t[2]);
  case OP_TIMESTEP:
    return sdr_timestep_embedding(cpu, &t[0], &t[1], c->i[0], c->i[1], c->f[0], c->f[1], c->i[2]);
  case OP_FILL:
    return sdr_fill(cpu, &t[0], c->f[0]);
  case OP_PAD2D:
    return sdr_pad2d(cpu, &t[0], &t[1], c->i[0], c->i[1], c->i[2], c->i[3]);
  default:
    return sdr_fail("emu_backend: unknown op %d", (int)c->op);
  }
#undef T
}

/* Translates the call's tensors to host memory, widens half activations into
 * float32 scratch, runs the CPU op, rounds the output back. */
static int run_call(sdr_backend *be, const emu_call *c) {
  emu_state *st = state_of(be);
  char what[64];
  sdr_tensor t[EMU_SLOTS];
  void *scratch[EMU_SLOTS] = {0};
  void *out_host = NULL;
  const sdr_dtype act = c->t[0].dtype;
  const int half = (act_slots[c->op] & 1) && (act == SDR_F16 || act == SDR_BF16);
  int rc = 0;
  for (int k = 0; k < EMU_SLOTS && rc == 0; k++) {
    if (!((c->present >> k) & 1))
      continue;
    t[k] = c->t[k];
    t[k].device = SDR_DEVICE_CPU;
    size_t nb = sdr_tensor_nbytes(&t[k]);
    if (nb == 0 && !t[k].data)
      continue;
    if (k == 0)
      snprintf(what, sizeof what, "the output");
    else
      snprintf(what, sizeof what, "input %d", k);
    void *h = host_of(st, op_names[c->op], what, c->t[k].data, nb);
    if (!h) {
      rc = -1;
      break;
    }
    t[k].data = h;
    if (k == 0)
      out_host = h;
    if (half && ((act_slots[c->op] >> k) & 1)) {
      int64_t n = sdr_tensor_numel(&t[k]);
      float *s = malloc((size_t)(n ? n : 1) * sizeof *s);
      if (!s) {
        rc = sdr_fail("%s: out of memory for float32 scratch (emulated CUDA backend)",
                      op_names[c->op]);
        break;
      }
      if (k > 0) /* the output's old contents are never read */
        widen(s, h, t[k].dtype, n);
      scratch[k] = s;
      t[k].data = s;
      t[k].dtype = SDR_F32;
    }
  }
  if (rc == 0)
    rc = dispatch(st->cpu, c, t);
  if (rc == 0 && scratch[0]) /* rounded to the activations' dtype, as the GPU stores it */
    narrow(out_host, act, scratch[0], sdr_tensor_numel(&c->t[0]));
  for (int k = 0; k < EMU_SLOTS; k++)
    free(scratch[k]);
  if (rc == 0) {
    st->stats.ops_run++;
    if (act_slots[c->op] & 1) {
      st->stats.ops_f16 += act == SDR_F16;
      st->stats.ops_bf16 += act == SDR_BF16;
    }
  }
  return rc;
}

static int record(emu_state *st, const emu_call *c) {
  emu_graph *g = st->rec;
  if (st->refuse_after >= 0 && (long long)g->n >= st->refuse_after) {
    st->refuse_after = -1;
    st->broken = 1; /* as a failed launch invalidates a CUDA capture */
    return sdr_fail("%s: refused while recording (emulated CUDA backend, as the test asked)",
                    op_names[c->op]);
  }
  if (g->n == g->cap) {
    size_t cap = g->cap ? 2 * g->cap : 256;
    emu_call *calls = realloc(g->calls, cap * sizeof *calls);
    if (!calls)
      return sdr_fail("%s: out of memory recording a graph (emulated CUDA backend)",
                      op_names[c->op]);
    g->calls = calls;
    g->cap = cap;
  }
  g->calls[g->n++] = *c;
  st->stats.ops_recorded++;
  return 0;
}

static int submit(sdr_backend *be, const emu_call *c) {
  emu_state *st = state_of(be);
  return st->recording ? record(st, c) : run_call(be, c);
}

/* A call with tensors (NULL for an absent optional one). */
static emu_call make_call(emu_op op, const sdr_tensor *t0, const sdr_tensor *t1,
                          const sdr_tensor *t2, const sdr_tensor *t3) {
  emu_call c;
  memset(&c, 0, sizeof c);
  c.op = op;
  const sdr_tensor *ts[EMU_SLOTS] = {t0, t1, t2, t3};
  for (int k = 0; k < EMU_SLOTS; k++)
    if (ts[k]) {
      c.t[k] = *ts[k];
      c.present |= 1u << k;
    }
  return c;
}

/* ---- the ops ---- */

static int emu_linear(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *w,
                      const sdr_tensor *bias) {
  emu_call c = make_call(OP_LINEAR, out, in, w, bias);
  return submit(be, &c);
}

static int emu_bmm(sdr_backend *be, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b,
                   int trans_b, float alpha) {
  emu_call c = make_call(OP_BMM, out, a, b, NULL);
  c.i[0] = trans_b;
  c.f[0] = alpha;
  return submit(be, &c);
}

static int emu_conv2d(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *w,
                      const sdr_tensor *bias, int stride, int padding) {
  emu_call c = make_call(OP_CONV2D, out, in, w, bias);
  c.i[0] = stride;
  c.i[1] = padding;
  return submit(be, &c);
}

static int emu_group_norm(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in,
                          const sdr_tensor *gamma, const sdr_tensor *beta, int groups, float eps,
                          int silu) {
  emu_call c = make_call(OP_GROUP_NORM, out, in, gamma, beta);
  c.i[0] = groups;
  c.i[1] = silu;
  c.f[0] = eps;
  return submit(be, &c);
}

static int emu_layer_norm(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in,
                          const sdr_tensor *gamma, const sdr_tensor *beta, float eps) {
  emu_call c = make_call(OP_LAYER_NORM, out, in, gamma, beta);
  c.f[0] = eps;
  return submit(be, &c);
}

static int emu_attention(sdr_backend *be, sdr_tensor *out, const sdr_tensor *q, const sdr_tensor *k,
                         const sdr_tensor *v, int heads, float scale, int causal) {
  emu_call c = make_call(OP_ATTENTION, out, q, k, v);
  c.i[0] = heads;
  c.i[1] = causal;
  c.f[0] = scale;
  return submit(be, &c);
}

static int emu_softmax(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in) {
  emu_call c = make_call(OP_SOFTMAX, out, in, NULL, NULL);
  return submit(be, &c);
}

static int emu_unary(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, sdr_unary_op op) {
  emu_call c = make_call(OP_UNARY, out, in, NULL, NULL);
  c.i[0] = (int)op;
  return submit(be, &c);
}

static int emu_geglu(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in) {
  emu_call c = make_call(OP_GEGLU, out, in, NULL, NULL);
  return submit(be, &c);
}

static int emu_binary(sdr_backend *be, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b,
                      sdr_binary_op op) {
  emu_call c = make_call(OP_BINARY, out, a, b, NULL);
  c.i[0] = (int)op;
  return submit(be, &c);
}

static int emu_affine(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, float alpha,
                      float beta) {
  emu_call c = make_call(OP_AFFINE, out, in, NULL, NULL);
  c.f[0] = alpha;
  c.f[1] = beta;
  return submit(be, &c);
}

static int emu_upsample(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in) {
  emu_call c = make_call(OP_UPSAMPLE, out, in, NULL, NULL);
  return submit(be, &c);
}

static int emu_concat(sdr_backend *be, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b,
                      int dim) {
  emu_call c = make_call(OP_CONCAT, out, a, b, NULL);
  c.i[0] = dim;
  return submit(be, &c);
}

static int emu_permute(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const int *perm) {
  emu_call c = make_call(OP_PERMUTE, out, in, NULL, NULL);
  memcpy(c.perm, perm, (size_t)in->ndim * sizeof *perm);
  return submit(be, &c);
}

static int emu_cast(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in) {
  emu_call c = make_call(OP_CAST, out, in, NULL, NULL);
  return submit(be, &c);
}

static int emu_embedding(sdr_backend *be, sdr_tensor *out, const sdr_tensor *table,
                         const sdr_tensor *ids) {
  emu_call c = make_call(OP_EMBEDDING, out, table, ids, NULL);
  return submit(be, &c);
}

static int emu_timestep(sdr_backend *be, sdr_tensor *out, const sdr_tensor *t, int dim,
                        int flip_sin_to_cos, float downscale_freq_shift, float scale,
                        int max_period) {
  emu_call c = make_call(OP_TIMESTEP, out, t, NULL, NULL);
  c.i[0] = dim;
  c.i[1] = flip_sin_to_cos;
  c.i[2] = max_period;
  c.f[0] = downscale_freq_shift;
  c.f[1] = scale;
  return submit(be, &c);
}

static int emu_fill(sdr_backend *be, sdr_tensor *out, float value) {
  emu_call c = make_call(OP_FILL, out, NULL, NULL, NULL);
  c.f[0] = value;
  return submit(be, &c);
}

/* torch's CUDA randn, computed on the host into the emulated device's memory. Not
 * recorded into graphs (the engine draws outside them). */
static int emu_philox(sdr_backend *be, sdr_tensor *out, uint64_t seed, uint64_t offset,
                      uint64_t grid, int normal) {
  emu_state *st = state_of(be);
  if (refuse_recording(st, "sdr_philox") < 0)
    return -1;
  void *h = host_of(st, "philox", "the output", out->data, sdr_tensor_nbytes(out));
  if (!h)
    return -1;
  sdr_philox_fill(seed, offset, grid, normal, out->dtype, h, (size_t)sdr_tensor_numel(out));
  st->stats.ops_run++;
  return 0;
}

static int emu_pad2d(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, int left, int right,
                     int top, int bottom) {
  emu_call c = make_call(OP_PAD2D, out, in, NULL, NULL);
  c.i[0] = left;
  c.i[1] = right;
  c.i[2] = top;
  c.i[3] = bottom;
  return submit(be, &c);
}

/* ---- graphs ---- */

static void flush_deferred(emu_state *st) {
  for (size_t i = 0; i < st->ndeferred; i++)
    free_now(st, st->deferred[i]);
  st->ndeferred = 0;
}

static void graph_free(emu_graph *g) {
  if (g)
    free(g->calls);
  free(g);
}

void sdr_emu_backend_refuse_recording(sdr_backend *be, long long after_ops) {
  state_of(be)->refuse_after = after_ops;
}

static int emu_graph_begin(sdr_backend *be) {
  emu_state *st = state_of(be);
  if (st->recording)
    return sdr_fail("sdr_graph_begin: a recording is already under way (emulated CUDA backend)");
  st->rec = calloc(1, sizeof *st->rec);
  if (!st->rec)
    return sdr_fail("sdr_graph_begin: out of memory");
  st->recording = 1;
  st->broken = 0;
  st->ndeferred = 0;
  return 0;
}

static sdr_graph *emu_graph_end(sdr_backend *be) {
  emu_state *st = state_of(be);
  if (!st->recording) {
    sdr_fail("sdr_graph_end: no recording under way (emulated CUDA backend)");
    return NULL;
  }
  emu_graph *g = st->rec;
  st->rec = NULL;
  st->recording = 0;
  flush_deferred(st);
  if (st->broken) {
    free(g->calls);
    free(g);
    sdr_fail("sdr_graph_end: the capture broke: an op failed while recording (emulated CUDA "
             "backend)");
    return NULL;
  }
  st->stats.graphs++;
  return (sdr_graph *)g;
}

static int emu_graph_replay(sdr_backend *be, sdr_graph *graph) {
  emu_state *st = state_of(be);
  emu_graph *g = (emu_graph *)graph;
  if (refuse_recording(st, "sdr_graph_replay") < 0)
    return -1;
  for (size_t i = 0; i < g->n; i++)
    if (run_call(be, &g->calls[i]) < 0)
      return sdr_fail_prefix("sdr_graph_replay: call %zu of %zu: ", i + 1, g->n);
  st->stats.graph_replays++;
  return 0;
}

static void emu_graph_destroy(sdr_backend *be, sdr_graph *g) {
  (void)be;
  graph_free((emu_graph *)g);
}

static const sdr_backend_ops emu_ops = {
    .alloc = emu_alloc_op,
    .free = emu_free_op,
    .upload = emu_upload,
    .download = emu_download,
    .sync = emu_sync,
    .reserve_workspace = emu_reserve_workspace,
    .linear = emu_linear,
    .bmm = emu_bmm,
    .conv2d = emu_conv2d,
    .group_norm = emu_group_norm,
    .layer_norm = emu_layer_norm,
    .attention = emu_attention,
    .softmax = emu_softmax,
    .unary = emu_unary,
    .geglu = emu_geglu,
    .binary = emu_binary,
    .affine = emu_affine,
    .upsample_nearest2x = emu_upsample,
    .concat = emu_concat,
    .permute = emu_permute,
    .cast = emu_cast,
    .embedding = emu_embedding,
    .timestep_embedding = emu_timestep,
    .fill = emu_fill,
    .pad2d = emu_pad2d,
    .philox = emu_philox,
    .graph_begin = emu_graph_begin,
    .graph_end = emu_graph_end,
    .graph_replay = emu_graph_replay,
    .graph_destroy = emu_graph_destroy,
};

/* ---- making one ---- */

sdr_backend *sdr_emu_backend_create(void) {
  sdr_backend *be = calloc(1, sizeof *be);
  emu_state *st = calloc(1, sizeof *st);
  if (!be || !st) {
    free(be);
    free(st);
    sdr_fail("sdr_emu_backend_create: out of memory");
    return NULL;
  }
  st->refuse_after = -1;
  st->cpu = sdr_cpu_backend_create();
  if (!st->cpu) {
    free(be);
    free(st);
    return NULL;
  }
  be->name = "cuda (emulated)";
  be->device = SDR_DEVICE_CUDA;
  be->act_dtypes = (1u << SDR_F32) | (1u << SDR_F16) | (1u << SDR_BF16);
  be->ops = &emu_ops;
  be->impl = st;
  return be;
}

void sdr_emu_backend_destroy(sdr_backend *be) {
  if (!be)
    return;
  emu_state *st = state_of(be);
  if (st->recording) {
    graph_free(st->rec);
    st->recording = 0;
  }
  flush_deferred(st);
  for (size_t i = 0; i < st->nallocs; i++)
    free((void *)st->allocs[i].base);
  free(st->allocs);
  free(st->deferred);
  sdr_cpu_backend_destroy(st->cpu);
  free(st);
  free(be);
}

void sdr_emu_backend_stats(const sdr_backend *be, sdr_emu_stats *s) { *s = state_of(be)->stats; }

void sdr_emu_backend_reset_stats(sdr_backend *be) {
  emu_state *st = state_of(be);
  sdr_emu_stats keep = st->stats;
  memset(&st->stats, 0, sizeof st->stats);
  st->stats.live_allocs = keep.live_allocs;
  st->stats.live_bytes = keep.live_bytes;
  st->stats.peak_bytes = keep.live_bytes;
}

void *sdr_emu_host_address(const sdr_backend *be, const void *p) {
  const emu_state *st = state_of(be);
  if (!is_device(p) || !find_alloc(st, untag(p), 0))
    return NULL;
  return (void *)untag(p);
}

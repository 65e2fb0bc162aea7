/* engine/arena.c — blocks of backend memory handed out in order. */
#include "engine/arena.h"

#include <stdlib.h>

#include "engine/error.h" // sdr_fail

enum { ARENA_ALIGN = 256, ARENA_MIN_BLOCK = 1 << 20 };

static size_t align_up(size_t n) { return (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1); }

void sdr_arena_init(sdr_arena *a, sdr_backend *be) {
  a->be = be;
  a->top = NULL;
  a->in_use = a->peak = a->watched = 0;
}

static void free_blocks(sdr_arena *a) {
  while (a->top) {
    sdr_arena_block *b = a->top;
    a->top = b->prev;
    sdr_free(a->be, b->base);
    free(b);
  }
}

void sdr_arena_free(sdr_arena *a) {
  free_blocks(a);
  a->in_use = a->peak = 0;
}

static int push_block(sdr_arena *a, size_t cap) {
  sdr_arena_block *b = calloc(1, sizeof *b);
  if (!b)
    return sdr_fail("out of memory");
  b->base = sdr_alloc(a->be, cap);
  if (!b->base) {
    free(b);
    return -1;
  }
  b->cap = cap;
  b->prev = a->top;
  a->top = b;
  return 0;
}

int sdr_arena_reset(sdr_arena *a) {
  if (a->top && a->top->prev) {
    /* The call needed more than one block: next time one block holds it all. */
    free_blocks(a);
    a->in_use = 0;
    return push_block(a, align_up(a->peak));
  }
  if (a->top)
    a->top->used = 0;
  a->in_use = 0;
  return 0;
}

sdr_arena_mark sdr_arena_get_mark(const sdr_arena *a) {
  sdr_arena_mark m = {a->top, a->top ? a->top->used : 0, a->in_use};
  return m;
}

void sdr_arena_release(sdr_arena *a, sdr_arena_mark m) {
  /* Blocks added after the mark stay (they are reused by later requests) but empty. */
  for (sdr_arena_block *b = a->top; b && b != m.block; b = b->prev)
    b->used = 0;
  if (m.block)
    m.block->used = m.used;
  a->in_use = m.in_use;
}

static void *take(sdr_arena *a, size_t bytes) {
  bytes = align_up(bytes ? bytes : 1);
  sdr_arena_block *b = a->top;
  /* An empty block left on top by a release may be too small; a used one is never skipped. */
  if (!b || b->used + bytes > b->cap) {
    size_t cap = bytes > ARENA_MIN_BLOCK ? bytes : ARENA_MIN_BLOCK;
    if (b && cap < b->cap * 2)
      cap = b->cap * 2;
    if (push_block(a, cap) != 0)
      return NULL;
    b = a->top;
  }
  void *p = b->base + b->used;
  b->used += bytes;
  a->in_use += bytes;
  if (a->in_use > a->peak)
    a->peak = a->in_use;
  if (a->in_use > a->watched)
    a->watched = a->in_use;
  return p;
}

void sdr_arena_watch(sdr_arena *a) { a->watched = a->in_use; }

size_t sdr_arena_watched(const sdr_arena *a) { return a->watched; }

int sdr_arena_reserve(sdr_arena *a, size_t bytes) {
  bytes = align_up(bytes);
  if (a->top && a->top->cap - a->top->used >= bytes)
    return 0;
  /* A block on top of the rest: marks taken below it stay valid. */
  return push_block(a, bytes > ARENA_MIN_BLOCK ? bytes : ARENA_MIN_BLOCK);
}

int sdr_arena_as(sdr_arena *a, sdr_tensor *out, const sdr_tensor *x, sdr_dtype dtype) {
  if (x->dtype == dtype) {
    *out = *x;
    return 0;
  }
  if (sdr_arena_tensor(a, out, dtype, x->ndim, x->shape) != 0)
    return -1;
  return sdr_cast(a->be, out, x);
}

int sdr_arena_tensor(sdr_arena *a, sdr_tensor *out, sdr_dtype dtype, int ndim,
                     const int64_t *shape) {
  if (ndim < 0 || ndim > SDR_MAX_DIMS)
    return sdr_fail("arena: %d dimensions (at most %d)", ndim, SDR_MAX_DIMS);
  sdr_tensor t = sdr_tensor_view(NULL, dtype, a->be->device, ndim, shape);
  void *p = take(a, sdr_tensor_nbytes(&t));
  if (!p)
    return -1;
  t.data = p;
  *out = t;
  return 0;
}

int sdr_pingpong_init(sdr_arena *a, sdr_pingpong *p, sdr_dtype dtype, int64_t most) {
  p->next = 0;
  for (int i = 0; i < 2; i++)
    if (sdr_arena_tensor(a, &p->buf[i], dtype, 1, (int64_t[]){most}) != 0)
      return -1;
  return 0;
}

int sdr_pingpong_take(sdr_pingpong *p, sdr_tensor *out, const int64_t shape[4]) {
  sdr_tensor flat;
  const int64_t n = shape[0] * shape[1] * shape[2] * shape[3];
  if (sdr_tensor_narrow0(&flat, &p->buf[p->next], 0, n) != 0 ||
      sdr_tensor_reshape(out, &flat, 4, shape) != 0)
    return -1;
  p->next ^= 1;
  return 0;
}

/* engine/arena.h — the memory of one forward pass, taken in order and given back at once.
 *
 * Temporaries of a model call come from an arena so no op waits on malloc.
 * The arena grows by adding blocks while a call runs; on reset it keeps one
 * block as large as the whole call needed, so from the second call on every
 * tensor gets the same address each time (what a CUDA graph replay needs).
 * Marks give back the tail (a layer's scratch) without giving back the rest.
 */
#ifndef SDR_ENGINE_ARENA_H
#define SDR_ENGINE_ARENA_H

#include <stddef.h>

#include "kernels/backend.h" // sdr_backend, sdr_tensor

typedef struct sdr_arena_block {
  struct sdr_arena_block *prev;
  unsigned char *base; /* backend memory */
  size_t cap, used;
} sdr_arena_block;

typedef struct sdr_arena {
  sdr_backend *be;
  sdr_arena_block *top;
  size_t in_use; /* bytes handed out across blocks, for marks and the peak */
  size_t peak;
  size_t watched; /* the most in use since sdr_arena_watch */
} sdr_arena;

typedef struct sdr_arena_mark {
  sdr_arena_block *block;
  size_t used, in_use;
} sdr_arena_mark;

void sdr_arena_init(sdr_arena *a, sdr_backend *be);
void sdr_arena_free(sdr_arena *a);
/* Everything handed out is given back; the memory is kept for the next call. */
int sdr_arena_reset(sdr_arena *a);
sdr_arena_mark sdr_arena_get_mark(const sdr_arena *a);
void sdr_arena_release(sdr_arena *a, sdr_arena_mark m);

/* Measuring a span of calls: watch, run them, then sdr_arena_watched gives
 * the most bytes that were in use at once meanwhile. */
void sdr_arena_watch(sdr_arena *a);
size_t sdr_arena_watched(const sdr_arena *a);
/* The next `bytes` of requests (counted as in_use counts them) come from one
 * block without allocating: what a call recorded into a CUDA graph needs. */
int sdr_arena_reserve(sdr_arena *a, size_t bytes);

/* A new contiguous tensor from the arena (256-byte aligned):
 *   sdr_arena_tensor(a, &x, SDR_F32, 3, (int64_t[]){B, T, D}) */
int sdr_arena_tensor(sdr_arena *a, sdr_tensor *out, sdr_dtype dtype, int ndim,
                     const int64_t *shape);
/* x as dtype: *out = *x when x already has it, else a copy cast into the arena
 * (a model's float32 inputs in the dtype it computes in). */
int sdr_arena_as(sdr_arena *a, sdr_tensor *out, const sdr_tensor *x, sdr_dtype dtype);

/* Two arena buffers a model's chain of layers writes in turn, each as large as the largest
 * activation they hold: a 1024x1024 VAE pass keeps two activations, not every layer's. */
typedef struct sdr_pingpong {
  sdr_tensor buf[2];
  int next;
} sdr_pingpong;

/* Both buffers, of `most` elements of dtype. */
int sdr_pingpong_init(sdr_arena *a, sdr_pingpong *p, sdr_dtype dtype, int64_t most);
/* The next buffer as a tensor of shape (4 dimensions, at most `most` elements); the other one
 * is taken after it. */
int sdr_pingpong_take(sdr_pingpong *p, sdr_tensor *out, const int64_t shape[4]);

#endif

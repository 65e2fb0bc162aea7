/* engine/brownian_tree.h — torchsde's BrownianTree (torchsde 0.2.6,
 * _brownian/derived.py over brownian_interval.py with halfway_tree=True), the Brownian
 * motion DPMSolverSDEScheduler draws its noise from.
 *
 * The tree halves [t0, t1] at midpoints rounded to its tolerance (1e-6: Python's
 * round(x, 6)) down to the queried times. Each node that splits draws one normal tensor
 * from a fresh torch.Generator seeded by numpy's SeedSequence(entropy, spawn_key=(key,
 * depth), pool_size=24), and its children's increments are the Brownian bridge between
 * its ends. The tree is the same whatever was asked before, so a query walks it from the
 * top and nothing is kept between queries (torchsde's cache only saves time).
 */
#ifndef SDR_ENGINE_BROWNIAN_TREE_H
#define SDR_ENGINE_BROWNIAN_TREE_H

#include <stdint.h>

#include "engine/arena.h"     // sdr_arena
#include "engine/generator.h" // sdr_generator_device, sdr_cuda_geometry

typedef struct sdr_brownian_tree {
  double t0, t1;     /* the ends as given */
  double start, end; /* the ends rounded to the tolerance */
  uint64_t entropy;
  sdr_generator_device device; /* the generators' kind: where torch would hold the tensors */
  sdr_cuda_geometry geometry;  /* a CUDA generator's launch layout */
  sdr_dtype dtype;             /* what the normals are drawn in (float32, float16, bfloat16) */
} sdr_brownian_tree;

/* BrownianTree(t0, w0, t1, entropy=entropy) for t0 <= t1 (-1 with a message otherwise).
 * geometry may be NULL (an H100/H200's). */
int sdr_brownian_tree_init(sdr_brownian_tree *b, double t0, double t1, uint64_t entropy,
                           sdr_generator_device device, const sdr_cuda_geometry *geometry,
                           sdr_dtype dtype);
/* out = tree(ta, tb), the increment W(tb) - W(ta) for ta <= tb, each clamped into the
 * tree's interval as torchsde does; float32 on be, in out's shape. Temporaries from a. */
int sdr_brownian_tree_increment(const sdr_brownian_tree *b, sdr_backend *be, sdr_arena *a,
                                sdr_tensor *out, double ta, double tb);

#endif

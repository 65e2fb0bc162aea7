/* engine/brownian_tree.c — torchsde's BrownianTree: the halfway tree, its seeds and the
 * Brownian bridge, in the float32 operations torch runs (a Python float times a tensor
 * is the tensor times that float rounded to float32). */
#include "engine/brownian_tree.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/error.h"            // sdr_fail
#include "engine/generator_device.h" // sdr_generator_fill
#include "engine/seed_sequence.h"    // sdr_seed_sequence_state

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

enum { POOL_SIZE = 24, MAX_DEPTH = 200 };

/* Python's round(x, 6) (tol 1e-6 gives ndigits = -int(log10(tol)) = 6): the decimal
 * nearest to x's exact value, ties to even, read back. */
static double round_tol(double x) {
  char buf[512];
  snprintf(buf, sizeof buf, "%.6f", x);
  return strtod(buf, NULL);
}

int sdr_brownian_tree_init(sdr_brownian_tree *b, double t0, double t1, uint64_t entropy,
                           sdr_generator_device device, const sdr_cuda_geometry *geometry,
                           sdr_dtype dtype) {
  if (!(t0 <= t1))
    return sdr_fail("BrownianTree: t0 (%g) must not be above t1 (%g)", t0, t1);
  b->t0 = t0, b->t1 = t1;
  b->start = round_tol(t0), b->end = round_tol(t1);
  b->entropy = entropy;
  b->device = device;
  sdr_generator g;
  sdr_generator_init(&g, device);
  b->geometry = geometry ? *geometry : g.geometry;
  b->dtype = dtype;
  return 0;
}

/* out = torch.randn(out.shape, generator=torch.Generator(device).manual_seed(seed)) */
static int draw(const sdr_brownian_tree *b, sdr_backend *be, sdr_arena *a, sdr_tensor *out,
                uint32_t seed) {
  sdr_generator g;
  sdr_generator_init(&g, b->device);
  g.geometry = b->geometry;
  sdr_generator_manual_seed(&g, seed);
  return sdr_generator_fill(&g, be, a, out, b->dtype, 1);
}

typedef struct query {
  const sdr_brownian_tree *b;
  sdr_backend *be;
  sdr_arena *a;
  sdr_tensor *out;
  int have; /* out holds the pieces summed so far */
} query;

/* The pieces of [ta, tb] in the node [start, end] whose increment is w, left to right,
 * summed into q->out as torchsde sums its list of intervals. */
static int visit(query *q, double start, double end, uint64_t key, int depth, const sdr_tensor *w,
                 double ta, double tb) {
  if (ta == start && tb == end) {
    int rc = q->have ? sdr_binary(q->be, q->out, q->out, w, SDR_BINARY_ADD)
                     : sdr_affine(q->be, q->out, w, 1.0f, 0.0f);
    q->have = 1;
    return rc;
  }
  if (depth >= MAX_DEPTH)
    return sdr_fail("BrownianTree: no node ends at %.17g within %d halvings", ta, MAX_DEPTH);
  double mid = round_tol(0.5 * (end + start));
  /* _split_exact's seeds: SeedSequence(entropy, spawn_key=(key, depth)); the first is W's */
  uint64_t spawn[2] = {key, (uint64_t)depth};
  uint32_t seeds[4];
  sdr_seed_sequence_state(q->b->entropy, spawn, 2, POOL_SIZE, seeds, 4);
  double left_diff = mid - start, right_diff = end - mid, h_reciprocal = 1 / (end - start);
  double var = left_diff * right_diff * h_reciprocal;
  sdr_arena_mark m = sdr_arena_get_mark(q->a);
  sdr_tensor noise, left, right;
  int rc = sdr_arena_tensor(q->a, &noise, SDR_F32, w->ndim, w->shape);
  if (rc == 0)
    rc = sdr_arena_tensor(q->a, &left, SDR_F32, w->ndim, w->shape);
  if (rc == 0)
    rc = sdr_arena_tensor(q->a, &right, SDR_F32, w->ndim, w->shape);
  /* left = left_diff * W * h_reciprocal + sqrt(var) * noise; right = W - left */
  if (rc == 0)
    rc = draw(q->b, q->be, q->a, &noise, seeds[0]);
  if (rc == 0)
    rc = sdr_affine(q->be, &left, w, (float)left_diff, 0.0f);
  if (rc == 0)
    rc = sdr_affine(q->be, &left, &left, (float)h_reciprocal, 0.0f);
  if (rc == 0)
    rc = sdr_affine(q->be, &noise, &noise, (float)sqrt(var), 0.0f);
  if (rc == 0)
    rc = sdr_binary(q->be, &left, &left, &noise, SDR_BINARY_ADD);
  if (rc == 0)
    rc = sdr_binary(q->be, &right, w, &left, SDR_BINARY_SUB);
  if (rc == 0) {
    if (tb <= mid) {
      rc = visit(q, start, mid, 2 * key, depth + 1, &left, ta, tb);
    } else if (ta >= mid) {
      rc = visit(q, mid, end, 2 * key + 1, depth + 1, &right, ta, tb);
    } else {
      rc = visit(q, start, mid, 2 * key, depth + 1, &left, ta, mid);
      if (rc == 0)
        rc = visit(q, mid, end, 2 * key + 1, depth + 1, &right, mid, tb);
    }
  }
  sdr_arena_release(q->a, m);
  return rc;
}

int sdr_brownian_tree_increment(const sdr_brownian_tree *b, sdr_backend *be, sdr_arena *a,
                                sdr_tensor *out, double ta, double tb) {
  /* __call__: clamped into [start, end] (warnings in torchsde), equal ends give zeros,
   * then both rounded */
  ta = ta < b->start ? b->start : ta > b->end ? b->end : ta;
  tb = tb < b->start ? b->start : tb > b->end ? b->end : tb;
  if (ta > tb)
    return sdr_fail("BrownianTree: query times ta=%.3f and tb=%.3f must respect ta <= tb", ta, tb);
  if (ta == tb)
    return sdr_fill(be, out, 0.0f);
  ta = round_tol(ta), tb = round_tol(tb);
  if (ta == tb) /* closer than the tolerance: torchsde would halve without end */
    return sdr_fill(be, out, 0.0f);
  /* the whole interval's increment: SeedSequence(entropy)'s first word's normals times
   * sqrt(t1 - t0), the ends unrounded */
  uint32_t seeds[3];
  sdr_seed_sequence_state(b->entropy, NULL, 0, POOL_SIZE, seeds, 3);
  sdr_arena_mark m = sdr_arena_get_mark(a);
  sdr_tensor w;
  int rc = sdr_arena_tensor(a, &w, SDR_F32, out->ndim, out->shape);
  if (rc == 0)
    rc = draw(b, be, a, &w, seeds[0]);
  if (rc == 0)
    rc = sdr_affine(be, &w, &w, (float)sqrt(b->t1 - b->t0), 0.0f);
  query q = {b, be, a, out, 0};
  if (rc == 0)
    rc = visit(&q, b->start, b->end, 0, 0, &w, ta, tb);
  sdr_arena_release(a, m);
  return rc;
}

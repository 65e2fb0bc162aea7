/* tests/unit/test_brownian_tree.c — the noise of DPMSolverSDEScheduler, piece by piece,
 * against tests/reference/brownian (scripts/reference/make_brownian_cases.py):
 * numpy's SeedSequence words, torch.randint's 63-bit seed from a seeded generator, and
 * torchsde's BrownianTree increments over a run's intervals, clamped and empty ones.
 * All bit for bit (tolerance 0): each piece is integer arithmetic or the same float32
 * operations torch runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/arena.h"
#include "engine/brownian_tree.h"
#include "engine/error.h" // sdr_last_error
#include "engine/generator.h"
#include "engine/model_config.h" // sdr_json_load
#include "engine/npy.h"          // sdr_npy_read
#include "engine/seed_sequence.h"
#include "kernels/cpu/cpu_backend.h" // sdr_cpu_backend_create

#include <cjson/cJSON.h>

#define DIR "tests/reference/brownian/"

static const cJSON *item(const cJSON *o, const char *k) {
  return cJSON_GetObjectItemCaseSensitive(o, k);
}
static uint64_t u64(const cJSON *v) { return strtoull(v->valuestring, NULL, 10); }

static void check_seed_sequences(const cJSON *cases) {
  int n = 0;
  for (const cJSON *c = cases->child; c; c = c->next, n++) {
    uint64_t key[8];
    int nk = 0;
    for (const cJSON *k = item(c, "spawn_key")->child; k && nk < 8; k = k->next)
      key[nk++] = u64(k);
    uint32_t got[4];
    sdr_seed_sequence_state(u64(item(c, "entropy")), key, nk,
                            (int)item(c, "pool_size")->valuedouble, got, 4);
    int i = 0;
    for (const cJSON *w = item(c, "state")->child; w && i < 4; w = w->next, i++)
      if (got[i] != (uint32_t)w->valuedouble) {
        fprintf(stderr, "seed_sequence %d word %d: ours %u, numpy %.0f\n", n, i, got[i],
                w->valuedouble);
        check_failures++;
      }
  }
  CHECK(n >= 5);
}

static void check_randint(const cJSON *cases) {
  for (const cJSON *c = cases->child; c; c = c->next) {
    sdr_generator g;
    sdr_generator_init(&g, SDR_GENERATOR_CPU);
    sdr_generator_manual_seed(&g, (uint64_t)item(c, "seed")->valuedouble);
    uint64_t v = sdr_generator_randint63(&g);
    if (v != u64(item(c, "value"))) {
      fprintf(stderr, "randint seed %.0f: ours %llu, torch %s\n", item(c, "seed")->valuedouble,
              (unsigned long long)v, item(c, "value")->valuestring);
      check_failures++;
    }
    float after[4];
    sdr_generator_randn_f32(&g, after, 4);
    int i = 0;
    for (const cJSON *w = item(c, "after")->child; w && i < 4; w = w->next, i++)
      CHECK(after[i] == (float)w->valuedouble);
  }
}

static void check_tree(sdr_backend *be, sdr_arena *a, const cJSON *c) {
  const char *name = item(c, "name")->valuestring;
  char path[256];
  snprintf(path, sizeof path, DIR "%s", item(c, "out")->valuestring);
  sdr_npy ref;
  if (sdr_npy_read(path, &ref) != 0 || ref.dtype != SDR_F32) {
    fprintf(stderr, "cannot read %s: %s\n", path, sdr_last_error());
    check_failures++;
    return;
  }
  int64_t shape[4];
  int ndim = 0;
  for (const cJSON *d = item(c, "shape")->child; d && ndim < 4; d = d->next)
    shape[ndim++] = (int64_t)d->valuedouble;
  sdr_brownian_tree tree;
  CHECK(sdr_brownian_tree_init(&tree, item(c, "t0")->valuedouble, item(c, "t1")->valuedouble,
                               u64(item(c, "entropy")), SDR_GENERATOR_CPU, NULL, SDR_F32) == 0);
  sdr_tensor out;
  CHECK(sdr_arena_tensor(a, &out, SDR_F32, ndim, shape) == 0);
  size_t n = (size_t)sdr_tensor_numel(&out);
  int q = 0, bad = 0;
  for (const cJSON *p = item(c, "queries")->child; p; p = p->next, q++) {
    double ta = p->child->valuedouble, tb = p->child->next->valuedouble;
    if (sdr_brownian_tree_increment(&tree, be, a, &out, ta, tb) != 0) {
      fprintf(stderr, "%s query %d: %s\n", name, q, sdr_last_error());
      check_failures++;
      continue;
    }
    const float *want = (const float *)ref.data + (size_t)q * n, *got = out.data;
    for (size_t i = 0; i < n; i++)
      if (!(got[i] == want[i]) && bad++ < 4)
        fprintf(stderr, "%s query %d (%.9g, %.9g) [%zu]: ours %.9g, torchsde %.9g\n", name, q, ta,
                tb, i, got[i], want[i]);
  }
  CHECK(bad == 0);
  CHECK((size_t)q * n == ref.count);
  sdr_npy_free(&ref);
  sdr_arena_reset(a);
}

int main(void) {
  sdr_json j = {0};
  const cJSON *man = sdr_json_load(&j, DIR "manifest.json") == 0 ? j.root : NULL;
  sdr_backend *be = sdr_cpu_backend_create();
  if (!man || !be) {
    fprintf(stderr, "cannot start (run from the source root): %s\n", sdr_last_error());
    return 1;
  }
  sdr_arena a;
  sdr_arena_init(&a, be);
  check_seed_sequences(item(man, "seed_sequence"));
  check_randint(item(man, "randint"));
  int trees = 0;
  for (const cJSON *c = item(man, "trees")->child; c; c = c->next, trees++)
    check_tree(be, &a, c);
  CHECK(trees == 3);

  /* t0 must not come after t1 */
  sdr_brownian_tree t;
  CHECK(sdr_brownian_tree_init(&t, 2.0, 1.0, 1, SDR_GENERATOR_CPU, NULL, SDR_F32) != 0);
  CHECK(strstr(sdr_last_error(), "t0") != NULL);

  sdr_arena_free(&a);
  sdr_cpu_backend_destroy(be);
  sdr_json_free(&j);
  return check_exit();
}

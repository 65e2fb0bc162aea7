/* kernels/cuda/cuda_profile.cu — where a run's GPU time goes: every op between
 * sdr_cuda_profile_start and sdr_cuda_profile_report is timed with a pair of CUDA
 * events around it and grouped by op, dtype and shapes.
 *
 * The time of an op is from the moment the GPU reaches its first event to the
 * moment it reaches its second: its kernels, plus any time the GPU waited for the
 * host to launch them. So without graphs a launch-bound op shows as slow, which is
 * what an eager run pays; ops recorded into a graph are not timed (events of a
 * capture belong to the graph). Nothing is timed unless asked: the hooks return at
 * once when no profile is open.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_internal.h"

enum { PROF_PENDING = 4096, PROF_KEYS = 2048, PROF_KEY_LEN = 160 };

typedef struct prof_key {
  char key[PROF_KEY_LEN]; /* "conv2d float16 (2, 320, 64, 64) w (320, 320, 3, 3)" */
  const char *op;
  long long count;
  double ms;
} prof_key;

typedef struct prof_pending {
  int key;
  cudaEvent_t a, b;
} prof_pending;

struct cuda_profile {
  prof_key *keys;
  int nkeys;
  prof_pending pend[PROF_PENDING];
  int nevents;    /* pairs made */
  int npend;      /* pairs recorded and not yet read */
  int open;       /* the pair between op_begin and op_end, or -1 */
  long long lost; /* ops not timed: more distinct shapes than PROF_KEYS */
};

static void profile_free(cuda_profile *p) {
  if (!p)
    return;
  for (int i = 0; i < p->nevents; i++) {
    cudaEventDestroy(p->pend[i].a);
    cudaEventDestroy(p->pend[i].b);
  }
  free(p->keys);
  free(p);
}

void cuda_profile_destroy(cuda_state *st) {
  profile_free(st->profile);
  st->profile = NULL;
}

/* Reads the recorded pairs into their keys (waits for the last one). */
static int resolve(cuda_profile *p) {
  const char *op = "sdr_cuda_profile";
  if (p->npend == 0)
    return 0;
  CUDA_TRY(op, cudaEventSynchronize(p->pend[p->npend - 1].b));
  for (int i = 0; i < p->npend; i++) {
    float ms = 0.0f;
    CUDA_TRY(op, cudaEventElapsedTime(&ms, p->pend[i].a, p->pend[i].b));
    p->keys[p->pend[i].key].ms += ms;
    p->keys[p->pend[i].key].count++;
  }
  p->npend = 0;
  return 0;
}

static void shape_text(char *buf, size_t n, const sdr_tensor *t) {
  size_t len = 0;
  len += (size_t)snprintf(buf + len, n - len, "(");
  for (int i = 0; i < t->ndim && len < n; i++)
    len += (size_t)snprintf(buf + len, n - len, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
  if (len < n)
    snprintf(buf + len, n - len, ")");
}

static int find_key(cuda_profile *p, const char *op, const sdr_tensor *out, const sdr_tensor *aux) {
  char o[64], a[64], key[PROF_KEY_LEN];
  shape_text(o, sizeof o, out);
  if (aux)
    shape_text(a, sizeof a, aux);
  snprintf(key, sizeof key, "%s %s %s%s%s", op + (strncmp(op, "sdr_", 4) == 0 ? 4 : 0),
           sdr_dtype_name(out->dtype), o, aux ? " by " : "", aux ? a : "");
  for (int i = 0; i < p->nkeys; i++)
    if (strcmp(p->keys[i].key, key) == 0)
      return i;
  if (p->nkeys == PROF_KEYS)
    return -1;
  prof_key *k = &p->keys[p->nkeys];
  snprintf(k->key, sizeof k->key, "%s", key);
  k->op = op;
  return p->nkeys++;
}

void cuda_op_begin(sdr_backend *be, const char *op, const sdr_tensor *out, const sdr_tensor *aux) {
  cuda_state *st = cuda_state_of(be);
  cuda_profile *p = st->profile;
  if (!p || st->capturing)
    return;
  cuda_make_current(st); /* events belong to the GPU current when they are made */
  if (p->npend == PROF_PENDING && resolve(p) < 0) {
    cuda_profile_destroy(st); /* a broken profile stops, the run goes on */
    return;
  }
  int k = find_key(p, op, out, aux);
  if (k < 0) {
    p->lost++;
    return;
  }
  prof_pending *e = &p->pend[p->npend];
  if (p->npend == p->nevents) {
    if (cudaEventCreate(&e->a) != cudaSuccess) {
      cudaGetLastError();
      p->lost++;
      return;
    }
    if (cudaEventCreate(&e->b) != cudaSuccess) {
      cudaGetLastError();
      cudaEventDestroy(e->a);
      p->lost++;
      return;
    }
    p->nevents++;
  }
  e->key = k;
  if (cudaEventRecord(e->a, st->stream) != cudaSuccess) {
    cudaGetLastError(); /* untimed, and not the op's error */
    p->lost++;
    return;
  }
  p->open = p->npend;
}

void cuda_op_end(sdr_backend *be, const char *op) {
  cuda_state *st = cuda_state_of(be);
  cuda_profile *p = st->profile;
  if (!p || p->open < 0)
    return;
  cuda_make_current(st);
  if (cudaEventRecord(p->pend[p->open].b, st->stream) == cudaSuccess) {
    p->npend++;
  } else {
    cudaGetLastError();
    p->lost++;
  }
  p->open = -1;
}

int sdr_cuda_profile_start(sdr_backend *be) {
  cuda_state *st = cuda_use(be);
  cuda_profile_destroy(st);
  cuda_profile *p = (cuda_profile *)calloc(1, sizeof *p);
  if (p)
    p->keys = (prof_key *)calloc(PROF_KEYS, sizeof *p->keys);
  if (!p || !p->keys) {
    profile_free(p);
    return sdr_fail("sdr_cuda_profile_start: out of memory");
  }
  p->open = -1;
  st->profile = p;
  return 0;
}

static int by_time(const void *x, const void *y) {
  double a = ((const prof_key *)x)->ms, b = ((const prof_key *)y)->ms;
  return a < b ? 1 : a > b ? -1 : 0;
}

int sdr_cuda_profile_report(sdr_backend *be, FILE *f, int top) {
  cuda_state *st = cuda_use(be);
  cuda_profile *p = st->profile;
  if (!p)
    return sdr_fail("sdr_cuda_profile_report: no profile was started");
  if (st->capturing) /* it waits for the events, which a capture refuses */
    return sdr_fail("sdr_cuda_profile_report: not while a CUDA graph is being captured");
  if (resolve(p) < 0) {
    cuda_profile_destroy(st);
    return -1;
  }
  qsort(p->keys, (size_t)p->nkeys, sizeof *p->keys, by_time);
  double total = 0.0;
  long long calls = 0;
  for (int i = 0; i < p->nkeys; i++) {
    total += p->keys[i].ms;
    calls += p->keys[i].count;
  }
  /* per op first, then the heaviest op-and-shape groups */
  fprintf(f, "GPU time by op: %.3f ms in %lld calls%s\n", total, calls,
          p->lost ? " (some calls not timed: too many shapes)" : "");
  const char *done[64];
  int ndone = 0;
  for (int i = 0; i < p->nkeys && ndone < 64; i++) {
    int seen = 0;
    for (int j = 0; j < ndone; j++)
      seen |= strcmp(done[j], p->keys[i].op) == 0;
    if (seen)
      continue;
    done[ndone++] = p->keys[i].op;
    double ms = 0.0;
    long long n = 0;
    for (int j = i; j < p->nkeys; j++)
      if (strcmp(p->keys[j].op, p->keys[i].op) == 0) {
        ms += p->keys[j].ms;
        n += p->keys[j].count;
      }
    fprintf(f, "  %-26s %9.3f ms %5.1f%% %7lld calls\n", p->keys[i].op, ms,
            total > 0 ? 100.0 * ms / total : 0.0, n);
  }
  fprintf(f, "heaviest op and shape groups:\n");
  for (int i = 0; i < p->nkeys && i < top; i++)
    fprintf(f, "  %9.3f ms %5.1f%% %6lld x %8.1f us  %s\n", p->keys[i].ms,
            total > 0 ? 100.0 * p->keys[i].ms / total : 0.0, p->keys[i].count,
            p->keys[i].count ? 1000.0 * p->keys[i].ms / (double)p->keys[i].count : 0.0,
            p->keys[i].key);
  cuda_profile_destroy(st);
  return 0;
}

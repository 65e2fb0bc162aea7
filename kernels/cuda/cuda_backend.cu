/* kernels/cuda/cuda_backend.cu — the CUDA backend: its table of ops, devices, memory,
 * workspace, the error flags kernels raise, and CUDA graphs.
 *
 * Memory is plain cudaMalloc (device memory, 256-byte aligned). Everything the
 * ops need besides their tensors is made here, once: the stream, the cuBLAS
 * handle with its workspace, the workspace, group_norm's partial sums and the
 * flags. So ops only enqueue kernels, and a whole model call can be captured.
 *
 * Waiting: download and sync wait for the stream; upload from ordinary
 * (pageable) host memory returns once CUDA has taken a copy of the source, so
 * the caller may reuse it at once (CUDA's rule for pageable copies); from
 * page-locked memory it waits, for the same guarantee.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_internal.h"

/* ---- errors ---- */

/* `what` is the failed call as written; its function name is enough for a message. */
int cuda_fail(const char *op, const char *what, cudaError_t e) {
  int n = (int)strcspn(what, "(");
  return sdr_fail("%s: %.*s: %s", op, n, what, cudaGetErrorString(e));
}

int cublas_fail(const char *op, const char *what, cublasStatus_t s) {
  int n = (int)strcspn(what, "(");
  return sdr_fail("%s: %.*s: %s", op, n, what, cublasGetStatusString(s));
}

int cuda_act_dtype(const char *op, const sdr_tensor *const *ts, int n, sdr_dtype *dt) {
  sdr_dtype d = ts[0]->dtype;
  if (d != SDR_F32 && d != SDR_F16 && d != SDR_BF16)
    return sdr_fail("%s: activations in %s; the CUDA backend takes float32, float16 or bfloat16",
                    op, sdr_dtype_name(d));
  for (int i = 1; i < n; i++)
    if (ts[i]->dtype != d)
      return sdr_fail("%s: activations in %s and %s; the CUDA backend needs one dtype per op", op,
                      sdr_dtype_name(d), sdr_dtype_name(ts[i]->dtype));
  *dt = d;
  return 0;
}

static const char *human_bytes(size_t n, char *buf, size_t len) {
  if (n >= (size_t)1 << 30)
    snprintf(buf, len, "%.2f GiB", (double)n / (double)(1u << 30));
  else if (n >= (size_t)1 << 20)
    snprintf(buf, len, "%.1f MiB", (double)n / (double)(1u << 20));
  else
    snprintf(buf, len, "%zu bytes", n);
  return buf;
}

/* ---- devices ---- */

static char unavailable_reason[256] = "CUDA was not asked yet";

int sdr_cuda_device_count(void) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError(); /* not sticky; leave nothing behind */
    int rt = 0;
    cudaRuntimeGetVersion(&rt);
    if (e == cudaErrorInsufficientDriver)
      snprintf(unavailable_reason, sizeof unavailable_reason,
               "no NVIDIA driver, or one older than this build's CUDA %d.%d needs", rt / 1000,
               rt % 1000 / 10);
    else
      snprintf(unavailable_reason, sizeof unavailable_reason, "%s", cudaGetErrorString(e));
    return 0;
  }
  if (n == 0)
    snprintf(unavailable_reason, sizeof unavailable_reason, "no CUDA-capable device is detected");
  return n;
}

const char *sdr_cuda_unavailable_reason(void) { return unavailable_reason; }

int sdr_cuda_device_info_get(int device, sdr_cuda_device_info *info) {
  const char *op = "sdr_cuda_device_info";
  memset(info, 0, sizeof *info);
  int n = sdr_cuda_device_count();
  if (device < 0 || device >= n)
    return sdr_fail("%s: no CUDA device %d (%d found%s%s)", op, device, n, n ? "" : ": ",
                    n ? "" : unavailable_reason);
  cudaDeviceProp p;
  CUDA_TRY(op, cudaGetDeviceProperties(&p, device));
  snprintf(info->name, sizeof info->name, "%s", p.name);
  CUDA_TRY(op, cudaDeviceGetAttribute(&info->major, cudaDevAttrComputeCapabilityMajor, device));
  CUDA_TRY(op, cudaDeviceGetAttribute(&info->minor, cudaDevAttrComputeCapabilityMinor, device));
  CUDA_TRY(op, cudaDeviceGetAttribute(&info->sm_count, cudaDevAttrMultiProcessorCount, device));
  CUDA_TRY(op, cudaDeviceGetAttribute(&info->max_threads_per_sm,
                                      cudaDevAttrMaxThreadsPerMultiProcessor, device));
  int cur = 0;
  CUDA_TRY(op, cudaGetDevice(&cur));
  CUDA_TRY(op, cudaSetDevice(device));
  cudaError_t e = cudaMemGetInfo(&info->free_bytes, &info->total_bytes);
  cudaSetDevice(cur);
  if (e != cudaSuccess)
    return cuda_fail(op, "cudaMemGetInfo", e);
  return 0;
}

/* ---- memory ---- */

/* What the backend holds through cudaMalloc, for sdr_cuda_memory_stats: each
 * block's size by address (cudaFree is told only the address), sorted. It
 * lives beside the state (cuda_state_ext, made by sdr_cuda_backend_create) so
 * the state shared with the op files stays as it is. A block the host could
 * not record (out of host memory) is counted and never uncounted. */
typedef struct cuda_block {
  uintptr_t addr;
  size_t bytes;
} cuda_block;
typedef struct cuda_mem {
  size_t in_use, peak;
  cuda_block *blocks;
  size_t n, cap;
} cuda_mem;
typedef struct cuda_state_ext {
  cuda_state st; /* first: a cuda_state * is the address of its cuda_state_ext */
  cuda_mem mem;
} cuda_state_ext;

static cuda_mem *mem_of(cuda_state *st) { return &((cuda_state_ext *)st)->mem; }

/* The first block at or above addr. */
static size_t mem_find(const cuda_mem *m, uintptr_t addr) {
  size_t lo = 0, hi = m->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (m->blocks[mid].addr < addr)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static void mem_taken(cuda_state *st, void *p, size_t bytes) {
  cuda_mem *m = mem_of(st);
  m->in_use += bytes;
  if (m->in_use > m->peak)
    m->peak = m->in_use;
  if (m->n == m->cap) {
    size_t cap = m->cap ? 2 * m->cap : 256;
    cuda_block *b = (cuda_block *)realloc(m->blocks, cap * sizeof *b);
    if (!b)
      return;
    m->blocks = b;
    m->cap = cap;
  }
  size_t i = mem_find(m, (uintptr_t)p);
  memmove(m->blocks + i + 1, m->blocks + i, (m->n - i) * sizeof *m->blocks);
  m->blocks[i].addr = (uintptr_t)p;
  m->blocks[i].bytes = bytes;
  m->n++;
}

/* cudaFree with the block uncounted. */
static void device_free(cuda_state *st, void *p) {
  cuda_mem *m = mem_of(st);
  size_t i = mem_find(m, (uintptr_t)p);
  if (p && i < m->n && m->blocks[i].addr == (uintptr_t)p) {
    m->in_use -= m->blocks[i].bytes;
    memmove(m->blocks + i, m->blocks + i + 1, (m->n - i - 1) * sizeof *m->blocks);
    m->n--;
  }
  if (cudaFree(p) != cudaSuccess) /* nobody to tell; not left for the next op to report */
    cudaGetLastError();
}

static void *device_alloc(cuda_state *st, const char *op, size_t bytes) {
  void *p = NULL;
  cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
  if (e == cudaSuccess && st->poison && bytes) /* NaN in every float dtype: unwritten shows */
    e = cudaMemsetAsync(p, 0xff, bytes, st->stream);
  if (e == cudaSuccess) {
    mem_taken(st, p, bytes ? bytes : 1);
    return p;
  }
  if (p)
    cudaFree(p);
  cudaGetLastError();
  if (e == cudaErrorMemoryAllocation) {
    size_t fr = 0, tot = 0;
    cudaMemGetInfo(&fr, &tot);
    cudaGetLastError();
    char a[32], b[32], c[32];
    sdr_fail("%s: out of GPU memory: %s needed, %s free of %s on %s", op,
             human_bytes(bytes, a, sizeof a), human_bytes(fr, b, sizeof b),
             human_bytes(tot, c, sizeof c), st->name);
  } else {
    cuda_fail(op, "cudaMalloc", e);
  }
  return NULL;
}

static int refuse_in_capture(const cuda_state *st, const char *op) {
  if (st->capturing)
    return sdr_fail("%s: not allowed while a CUDA graph is being captured (ops only)", op);
  return 0;
}

static void *cuda_alloc(sdr_backend *be, size_t bytes) {
  cuda_state *st = cuda_use(be);
  if (refuse_in_capture(st, "sdr_alloc") < 0)
    return NULL;
  return device_alloc(st, "sdr_alloc", bytes);
}

static void cuda_free(sdr_backend *be, void *ptr) {
  cuda_state *st = cuda_use(be);
  if (st->capturing) { /* cudaFree would break the capture; the graph may use it: its own */
    if (st->ndeferred < CUDA_DEFERRED_FREES)
      st->deferred[st->ndeferred++] = ptr;
    else
      st->deferred_lost = 1;
    return;
  }
  device_free(st, ptr); /* waits for the device; an error here has nobody to go to */
}

/* Raised flags (cuda_state.flags) become the error of this call; then cleared. */
static int check_flags(cuda_state *st, const char *op) {
  long long h[3] = {0, 0, 0};
  CUDA_TRY(op, cudaMemcpyAsync(h, st->flags, sizeof h, cudaMemcpyDeviceToHost, st->stream));
  CUDA_TRY(op, cudaStreamSynchronize(st->stream));
  if (h[0] == 0)
    return 0;
  CUDA_TRY(op, cudaMemsetAsync(st->flags, 0, 3 * sizeof(long long), st->stream));
  if (h[0] == CUDA_FLAG_EMBEDDING_ID)
    return sdr_fail("sdr_embedding: id %lld is outside [0, %lld) (found on the GPU; those rows "
                    "hold NaN)",
                    h[1], h[2]);
  return sdr_fail("%s: a kernel raised error %lld", op, h[0]);
}

static int cuda_upload(sdr_backend *be, void *dst, const void *src, size_t bytes) {
  const char *op = "sdr_upload";
  cuda_state *st = cuda_use(be);
  if (refuse_in_capture(st, op) < 0)
    return -1;
  CUDA_TRY(op, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, st->stream));
  cudaPointerAttributes a;
  if (cudaPointerGetAttributes(&a, src) == cudaSuccess && a.type == cudaMemoryTypeHost)
    CUDA_TRY(op, cudaStreamSynchronize(st->stream)); /* page-locked: the copy is truly async */
  cudaGetLastError();
  return 0;
}

static int cuda_download(sdr_backend *be, void *dst, const void *src, size_t bytes) {
  const char *op = "sdr_download";
  cuda_state *st = cuda_use(be);
  if (refuse_in_capture(st, op) < 0)
    return -1;
  CUDA_TRY(op, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, st->stream));
  CUDA_TRY(op, cudaStreamSynchronize(st->stream));
  return check_flags(st, op);
}

static int cuda_sync(sdr_backend *be) {
  const char *op = "sdr_sync";
  cuda_state *st = cuda_use(be);
  if (refuse_in_capture(st, op) < 0)
    return -1;
  CUDA_TRY(op, cudaStreamSynchronize(st->stream));
  return check_flags(st, op);
}

/* Grows, never shrinks; the contents are not kept (scratch holds nothing between ops).
 * The new block is taken before the old one goes, so a failure keeps the old. */
static int cuda_reserve_workspace(sdr_backend *be, size_t bytes) {
  const char *op = "sdr_reserve_workspace";
  cuda_state *st = cuda_use(be);
  if (bytes <= st->ws_bytes)
    return 0;
  if (refuse_in_capture(st, op) < 0)
    return -1;
  if (st->live_graphs > 0) /* their ops hold the old workspace's address */
    return sdr_fail("%s: %zu bytes asked while %d recorded graph%s use the workspace of %zu "
                    "bytes; destroy them first",
                    op, bytes, st->live_graphs, st->live_graphs == 1 ? "" : "s", st->ws_bytes);
  void *p = device_alloc(st, op, bytes);
  if (!p)
    return -1;
  CUDA_TRY(op, cudaStreamSynchronize(st->stream)); /* queued ops may still use the old one */
  device_free(st, st->ws);
  st->ws = p;
  st->ws_bytes = bytes;
  return 0;
}

/* ---- graphs ---- */

struct sdr_cuda_graph {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  cuda_state *st;
  void **frees; /* memory freed while recording: the graph's kernels may still use it */
  int nfrees;
};

int sdr_cuda_graph_begin(sdr_backend *be) {
  const char *op = "sdr_cuda_graph_begin";
  cuda_state *st = cuda_use(be);
  if (st->capturing)
    return sdr_fail("%s: a capture is already under way", op);
  /* thread-local: another thread's unrelated CUDA calls do not break ours */
  CUDA_TRY(op, cudaStreamBeginCapture(st->stream, cudaStreamCaptureModeThreadLocal));
  st->capturing = 1;
  st->ndeferred = 0;
  st->deferred_lost = 0;
  return 0;
}

sdr_cuda_graph *sdr_cuda_graph_end(sdr_backend *be) {
  const char *op = "sdr_cuda_graph_end";
  cuda_state *st = cuda_use(be);
  if (!st->capturing) {
    sdr_fail("%s: no capture under way", op);
    return NULL;
  }
  cudaGraph_t graph = NULL;
  cudaError_t e = cudaStreamEndCapture(st->stream, &graph);
  st->capturing = 0;
  const int nfrees = st->ndeferred;
  st->ndeferred = 0;
  sdr_cuda_graph *g = NULL;
  cudaGraphExec_t exec = NULL;
  if (e != cudaSuccess || !graph) {
    cudaGetLastError();
    sdr_fail("%s: the capture broke (%s): a call that cannot be recorded ran while capturing", op,
             cudaGetErrorString(e));
  } else if (st->deferred_lost) {
    sdr_fail("%s: more than %d buffers were freed while recording", op, CUDA_DEFERRED_FREES);
  } else if ((e = cudaGraphInstantiate(&exec, graph, 0)) != cudaSuccess) {
    cudaGetLastError();
    exec = NULL;
    cuda_fail(op, "cudaGraphInstantiate", e);
  } else if (!(g = (sdr_cuda_graph *)calloc(1, sizeof *g)) ||
             (nfrees > 0 && !(g->frees = (void **)malloc((size_t)nfrees * sizeof *g->frees)))) {
    sdr_fail("%s: out of memory", op);
  } else {
    g->graph = graph;
    g->exec = exec;
    g->st = st;
    g->nfrees = nfrees;
    if (nfrees > 0)
      memcpy(g->frees, st->deferred, (size_t)nfrees * sizeof *g->frees);
    st->live_graphs++;
    return g;
  }
  /* No graph: nothing will run what was recorded, so its frees are done now. */
  if (g)
    free(g->frees);
  free(g);
  if (exec)
    cudaGraphExecDestroy(exec);
  if (graph)
    cudaGraphDestroy(graph);
  for (int i = 0; i < nfrees; i++)
    device_free(st, st->deferred[i]);
  return NULL;
}

int sdr_cuda_graph_replay(sdr_backend *be, sdr_cuda_graph *g) {
  const char *op = "sdr_cuda_graph_replay";
  cuda_state *st = cuda_use(be);
  if (!g)
    return sdr_fail("%s: no graph", op);
  if (refuse_in_capture(st, op) < 0)
    return -1;
  CUDA_TRY(op, cudaGraphLaunch(g->exec, st->stream));
  return 0;
}

void sdr_cuda_graph_destroy(sdr_cuda_graph *g) {
  if (!g)
    return;
  cuda_state *st = g->st;
  cuda_make_current(st);
  cudaGraphExecDestroy(g->exec); /* one still running is freed when it completes */
  cudaGraphDestroy(g->graph);
  for (int i = 0; i < g->nfrees; i++) /* cudaFree waits for the device */
    device_free(st, g->frees[i]);
  free(g->frees);
  st->live_graphs--;
  free(g);
}

/* The interface's graph ops: sdr_graph is this backend's sdr_cuda_graph. */
static int graph_begin_op(sdr_backend *be) { return sdr_cuda_graph_begin(be); }
static sdr_graph *graph_end_op(sdr_backend *be) { return (sdr_graph *)sdr_cuda_graph_end(be); }
static int graph_replay_op(sdr_backend *be, sdr_graph *g) {
  return sdr_cuda_graph_replay(be, (sdr_cuda_graph *)g);
}
static void graph_destroy_op(sdr_backend *be, sdr_graph *g) {
  (void)be;
  sdr_cuda_graph_destroy((sdr_cuda_graph *)g);
}

static int philox_op(sdr_backend *be, sdr_tensor *out, uint64_t seed, uint64_t offset,
                     uint64_t grid, int normal) {
  return sdr_cuda_random(be, out, seed, offset, grid, normal);
}

/* ---- the backend ---- */

static sdr_backend_ops cuda_ops;

/* Filled in order at first use (C++17 has no designated initialisers). */
static const sdr_backend_ops *ops_table(void) {
  sdr_backend_ops *o = &cuda_ops;
  o->alloc = cuda_alloc;
  o->free = cuda_free;
  o->upload = cuda_upload;
  o->download = cuda_download;
  o->sync = cuda_sync;
  o->reserve_workspace = cuda_reserve_workspace;
  o->linear = cuda_linear;
  o->bmm = cuda_bmm;
  o->conv2d = cuda_conv2d;
  o->group_norm = cuda_group_norm;
  o->layer_norm = cuda_layer_norm;
  o->attention = cuda_attention;
  o->softmax = cuda_softmax;
  o->unary = cuda_unary;
  o->geglu = cuda_geglu;
  o->binary = cuda_binary;
  o->affine = cuda_affine;
  o->upsample_nearest2x = cuda_upsample_nearest2x;
  o->concat = cuda_concat;
  o->permute = cuda_permute;
  o->cast = cuda_cast;
  o->embedding = cuda_embedding;
  o->timestep_embedding = cuda_timestep_embedding;
  o->fill = cuda_fill;
  o->pad2d = cuda_pad2d;
  o->graph_begin = graph_begin_op;
  o->graph_end = graph_end_op;
  o->graph_replay = graph_replay_op;
  o->graph_destroy = graph_destroy_op;
  o->philox = philox_op;
  o->op_begin = cuda_op_begin;
  o->op_end = cuda_op_end;
  return o;
}

static int setup(sdr_backend *be, cuda_state *st, const sdr_cuda_options *o) {
  const char *op = "sdr_cuda_backend_create";
  CUDA_TRY(op, cudaSetDevice(st->device));
  cudaDeviceProp p;
  CUDA_TRY(op, cudaGetDeviceProperties(&p, st->device));
  snprintf(st->name, sizeof st->name, "%s", p.name);
  CUDA_TRY(op, cudaDeviceGetAttribute(&st->sm_count, cudaDevAttrMultiProcessorCount, st->device));
  int optin = 0;
  CUDA_TRY(op, cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, st->device));
  st->smem_optin = (size_t)optin;
  st->simple_attention = o->simple_attention;
  st->mma_attention = o->mma_attention;
  const char *sync = getenv("SDREPL_CUDA_SYNC"), *poison = getenv("SDREPL_CUDA_POISON");
  st->sync_each_op = sync && strcmp(sync, "1") == 0;
  st->poison = poison && strcmp(poison, "1") == 0;
  CUDA_TRY(op, cudaStreamCreateWithFlags(&st->stream, cudaStreamNonBlocking));
  cublasStatus_t s = cublasCreate(&st->blas);
  if (s != CUBLAS_STATUS_SUCCESS) {
    st->blas = NULL;
    return cublas_fail(op, "cublasCreate", s);
  }
  if ((s = cublasSetStream(st->blas, st->stream)) != CUBLAS_STATUS_SUCCESS)
    return cublas_fail(op, "cublasSetStream", s);
  /* said, not assumed: float32 products in true float32 (no TF32), as the CPU and torch's
   * default (allow_tf32 = False) compute them */
  if ((s = cublasSetMathMode(st->blas, CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS)
    return cublas_fail(op, "cublasSetMathMode", s);
  if (!(st->blas_ws = device_alloc(st, op, CUDA_BLAS_WORKSPACE)))
    return -1;
  if ((s = cublasSetWorkspace(st->blas, st->blas_ws, CUDA_BLAS_WORKSPACE)) != CUBLAS_STATUS_SUCCESS)
    return cublas_fail(op, "cublasSetWorkspace", s);
  if (!(st->norm_partials = (double2 *)device_alloc(st, op, CUDA_NORM_PARTIALS * sizeof(double2))))
    return -1;
  if (!(st->flags = (long long *)device_alloc(st, op, 4 * sizeof(long long))))
    return -1;
  CUDA_TRY(op, cudaMemsetAsync(st->flags, 0, 4 * sizeof(long long), st->stream));
  size_t ws = o->workspace_bytes ? o->workspace_bytes : (size_t)SDR_CUDA_DEFAULT_WORKSPACE;
  if (!(st->ws = device_alloc(st, op, ws)))
    return -1;
  st->ws_bytes = ws;
  if (cuda_attention_init(st) < 0)
    return -1;
  CUDA_TRY(op, cudaStreamSynchronize(st->stream));
  (void)be;
  return 0;
}

sdr_backend *sdr_cuda_backend_create(const sdr_cuda_options *options) {
  sdr_cuda_options o;
  memset(&o, 0, sizeof o);
  if (options) {
    o = *options;
  } else { /* the attention kernel being measured against attn_flash (README) */
    const char *a = getenv("SDREPL_CUDA_ATTENTION");
    o.mma_attention = a && strcmp(a, "mma") == 0;
  }
  int n = sdr_cuda_device_count();
  if (n == 0) {
    sdr_fail("no CUDA GPU: %s", unavailable_reason);
    return NULL;
  }
  if (o.device < 0 || o.device >= n) {
    sdr_fail("no CUDA device %d: %d GPU%s found", o.device, n, n == 1 ? "" : "s");
    return NULL;
  }
  sdr_backend *be = (sdr_backend *)calloc(1, sizeof *be);
  cuda_state *st = (cuda_state *)calloc(1, sizeof(cuda_state_ext));
  if (!be || !st) {
    free(be);
    free(st);
    sdr_fail("sdr_cuda_backend_create: out of memory");
    return NULL;
  }
  be->name = "cuda";
  be->device = SDR_DEVICE_CUDA;
  be->act_dtypes = (1u << SDR_F32) | (1u << SDR_F16) | (1u << SDR_BF16);
  be->ops = ops_table();
  be->impl = st;
  st->device = o.device;
  if (setup(be, st, &o) < 0) {
    sdr_cuda_backend_destroy(be);
    return NULL;
  }
  return be;
}

int sdr_cuda_set_attention(sdr_backend *be, int mma) {
  cuda_state *st = cuda_state_of(be);
  int was = st->mma_attention;
  st->mma_attention = mma ? 1 : 0;
  return was;
}

void sdr_cuda_backend_destroy(sdr_backend *be) {
  if (!be)
    return;
  cuda_state *st = cuda_state_of(be);
  if (st) {
    cudaSetDevice(st->device);
    if (st->capturing) { /* abandon the recording */
      cudaGraph_t g = NULL;
      cudaStreamEndCapture(st->stream, &g);
      if (g)
        cudaGraphDestroy(g);
    }
    if (st->stream)
      cudaStreamSynchronize(st->stream);
    cuda_profile_destroy(st);
    for (int i = 0; i < st->ndeferred; i++)
      cudaFree(st->deferred[i]);
    if (st->blas)
      cublasDestroy(st->blas);
    cudaFree(st->blas_ws);
    cudaFree(st->ws);
    cudaFree(st->norm_partials);
    cudaFree(st->flags);
    if (st->stream)
      cudaStreamDestroy(st->stream);
    cudaGetLastError();
    free(mem_of(st)->blocks);
  }
  free(st);
  free(be);
}

int sdr_cuda_memory_stats(sdr_backend *be, size_t *in_use, size_t *peak) {
  if (!be || be->device != SDR_DEVICE_CUDA || !be->impl)
    return sdr_fail("sdr_cuda_memory_stats: not a CUDA backend");
  const cuda_mem *m = mem_of(cuda_state_of(be));
  if (in_use)
    *in_use = m->in_use;
  if (peak)
    *peak = m->peak;
  return 0;
}

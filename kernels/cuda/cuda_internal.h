/* kernels/cuda/cuda_internal.h — what the CUDA backend's files share (never the engine's).
 *
 * Every cuda_* op below is called with arguments kernels/backend.c has checked
 * (shapes, devices, non-empty output, activations in one of this backend's
 * act_dtypes: float32, float16 or bfloat16, all of one op's in one dtype, which
 * cuda_act_dtype checks again). Weights, biases, gamma and beta may be any of
 * the three whatever the activations are.
 *
 * Ops only enqueue work on the backend's stream: no allocation, no waiting,
 * nothing that a CUDA graph capture refuses. Scratch comes from the workspace
 * (reserved beforehand) and the small buffers made with the backend.
 */
#ifndef SDR_KERNELS_CUDA_INTERNAL_H
#define SDR_KERNELS_CUDA_INTERNAL_H

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "kernels/cuda/cuda_backend.h" // sdr_backend, sdr_tensor, sdr_cuda_*
#include "kernels/cuda/cuda_device.cuh" // to_f, from_f, ld_param, idx_divmod, GRID_STRIDE
extern "C" {
#include "kernels/error.h" // sdr_fail
}

/* Partial sums of group_norm's statistics (double2 each): enough for 32 groups
 * x 8 images x 256 pieces. */
enum { CUDA_NORM_PARTIALS = 1 << 16 };
/* cuBLAS's own workspace, set once so it never allocates (graph capture needs that). */
enum { CUDA_BLAS_WORKSPACE = 32 << 20 };
/* frees asked for while capturing, done at sdr_cuda_graph_end */
enum { CUDA_DEFERRED_FREES = 256 };

/* Error codes kernels raise in cuda_state.flags (read back at sync and download). */
enum { CUDA_FLAG_EMBEDDING_ID = 1 };

typedef struct cuda_profile cuda_profile; /* cuda_profile.cu */

typedef struct cuda_state {
  int device;
  cudaStream_t stream;
  cublasHandle_t blas;
  void *blas_ws;
  void *ws; /* workspace, 256-byte aligned */
  size_t ws_bytes;
  double2 *norm_partials; /* CUDA_NORM_PARTIALS */
  long long *flags;       /* device: [0] error code, [1] detail (the bad id) */
  int sm_count;           /* for grid sizes */
  size_t smem_optin;      /* the most dynamic shared memory one block may ask for */
  int simple_attention;   /* options.simple_attention */
  int mma_attention;      /* options.mma_attention (cuda_attention_mma.cu) */
  int capturing;          /* between sdr_cuda_graph_begin and _end */
  int live_graphs;        /* recorded and not destroyed: they hold the workspace's address */
  int sync_each_op;       /* SDREPL_CUDA_SYNC=1: a fault is reported by the op that made it */
  void *deferred[CUDA_DEFERRED_FREES]; /* frees asked for while capturing: the graph's */
  int ndeferred;
  int deferred_lost; /* more than CUDA_DEFERRED_FREES: the capture is refused */
  int poison;        /* SDREPL_CUDA_POISON=1: new allocations filled with NaN (checks) */
  char name[256];        /* the GPU, for messages */
  cuda_profile *profile; /* NULL unless sdr_cuda_profile_start */
} cuda_state;

static inline cuda_state *cuda_state_of(sdr_backend *be) { return (cuda_state *)be->impl; }

/* The backend's state, with its GPU made current for this thread (a session may
 * hold backends on two GPUs); every op starts with it. */
static inline void cuda_make_current(const cuda_state *st) {
  int cur = -1;
  if (cudaGetDevice(&cur) != cudaSuccess || cur != st->device) {
    /* a failure shows at the op's first call; cleared so that the launch check after
     * it does not report it a second time under another op's name */
    if (cudaSetDevice(st->device) != cudaSuccess)
      cudaGetLastError();
  }
}

static inline cuda_state *cuda_use(sdr_backend *be) {
  cuda_state *st = (cuda_state *)be->impl;
  cuda_make_current(st);
  return st;
}

/* ---- errors ---- */

/* "op: what failed: CUDA's message"; returns -1. */
int cuda_fail(const char *op, const char *what, cudaError_t e);
int cublas_fail(const char *op, const char *what, cublasStatus_t s);

#define CUDA_TRY(op, call)                                                                         \
  do {                                                                                             \
    cudaError_t e_ = (call);                                                                       \
    if (e_ != cudaSuccess)                                                                         \
      return cuda_fail((op), #call, e_);                                                           \
  } while (0)

/* After a launch: a bad configuration shows here; faults inside kernels show at the
 * next sync, or here when SDREPL_CUDA_SYNC=1 (st->sync_each_op) and not capturing. */
static inline cudaError_t cuda_launched(const cuda_state *st) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess && st->sync_each_op && !st->capturing)
    e = cudaStreamSynchronize(st->stream);
  return e;
}
#define CUDA_LAUNCHED(op) CUDA_TRY(op, cuda_launched(st))

/* kernel<<<grid, block, smem, stream>>>(args): as a macro, so that the host simulation
 * (tests/cuda/simt) can run the same launches. */
#ifndef SDR_LAUNCH
#define SDR_LAUNCH(kernel, grid, block, smem, stream, ...)                                         \
  kernel<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__)
#endif

/* ---- dtypes ---- */

/* The activations' dtype of an op: all of ts[0..n) float32, float16 or bfloat16 and equal. */
int cuda_act_dtype(const char *op, const sdr_tensor *const *ts, int n, sdr_dtype *dt);

/* ---- launches ---- */

enum { CUDA_THREADS = 256 };

/* Blocks for a grid-stride loop over n items: enough to fill the GPU, no more. */
static inline unsigned cuda_blocks(const cuda_state *st, int64_t n, int threads) {
  int64_t b = (n + threads - 1) / threads, cap = (int64_t)st->sm_count * 32;
  if (b > cap)
    b = cap;
  return (unsigned)(b < 1 ? 1 : b);
}

/* ---- shared helpers (cuda_linear.cu, cuda_layout.cu) ---- */

/* C (column-major) = alpha op(A) op(B) + beta C in dtype dt, float32 accumulation;
 * batch > 1: strided batches (a stride may be 0). */
int cuda_gemm(cuda_state *st, const char *op, sdr_dtype dt, cublasOperation_t ta,
              cublasOperation_t tb, int m, int n, int k, float alpha, const void *A, int lda,
              long long sa, const void *B, int ldb, long long sb, float beta, void *C, int ldc,
              long long sc, int batch);
/* dst (n elements of dt) = src (n elements of st_dt) converted, round to nearest even. */
int cuda_convert(cuda_state *st, const char *op, void *dst, sdr_dtype dt, const void *src,
                 sdr_dtype src_dt, int64_t n);
/* w in dtype dt: w itself, or converted into the workspace at *ws_off (which moves on). */
int cuda_weight_as(cuda_state *st, const char *op, const sdr_tensor *w, sdr_dtype dt,
                   size_t *ws_off, const void **out);
/* x (outer, C, inner) = bias (C) broadcast, bias of any float dtype (the products then add
 * onto it with beta = 1). */
int cuda_fill_bias(cuda_state *st, const char *op, void *x, sdr_dtype dt, const sdr_tensor *bias,
                   int64_t outer, int64_t C, int64_t inner);

/* ---- ops (one file per family, as kernels/cpu/) ---- */

int cuda_linear(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *w,
                const sdr_tensor *bias);
int cuda_bmm(sdr_backend *be, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b,
             int trans_b, float alpha);
int cuda_conv2d(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *w,
                const sdr_tensor *bias, int stride, int padding);
int cuda_group_norm(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *gamma,
                    const sdr_tensor *beta, int groups, float eps, int silu);
int cuda_layer_norm(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *gamma,
                    const sdr_tensor *beta, float eps);
int cuda_softmax(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in);
int cuda_attention(sdr_backend *be, sdr_tensor *out, const sdr_tensor *q, const sdr_tensor *k,
                   const sdr_tensor *v, int heads, float scale, int causal);
/* The register-resident attention (cuda_attention_mma.cu): 1 when it ran, 0 when the
 * heads are not for it (float32, not a multiple of 8 wide or wider than 160, views not
 * 16-byte aligned), -1 on an error. */
int cuda_attention_mma(cuda_state *st, const char *op, sdr_tensor *out, const sdr_tensor *q,
                       const sdr_tensor *k, const sdr_tensor *v, sdr_dtype dt, int B, int Tq,
                       int Tk, int H, int Dh, float scale, int causal);
/* Raises the attention kernels' shared-memory limits; once, when the backend is made. */
int cuda_attention_init(cuda_state *st);
int cuda_attention_mma_init(cuda_state *st);
int cuda_unary(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, sdr_unary_op op);
int cuda_geglu(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in);
int cuda_binary(sdr_backend *be, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b,
                sdr_binary_op op);
int cuda_affine(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, float alpha, float beta);
int cuda_fill(sdr_backend *be, sdr_tensor *out, float value);
int cuda_upsample_nearest2x(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in);
int cuda_pad2d(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, int left, int right, int top,
               int bottom);
int cuda_concat(sdr_backend *be, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b,
                int dim);
int cuda_permute(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const int *perm);
int cuda_cast(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in);
int cuda_embedding(sdr_backend *be, sdr_tensor *out, const sdr_tensor *table,
                   const sdr_tensor *ids);
int cuda_timestep_embedding(sdr_backend *be, sdr_tensor *out, const sdr_tensor *t, int dim,
                            int flip_sin_to_cos, float downscale_freq_shift, float scale,
                            int max_period);

/* ---- profiling (cuda_profile.cu): the op hooks of the ops table ---- */
void cuda_op_begin(sdr_backend *be, const char *op, const sdr_tensor *out, const sdr_tensor *aux);
void cuda_op_end(sdr_backend *be, const char *op);
void cuda_profile_destroy(cuda_state *st);

#endif

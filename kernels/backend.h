/* kernels/backend.h — the one interface every backend implements (cpu/ now, cuda/ later).
 *
 * Engine code calls the sdr_* wrappers below and never knows which backend
 * runs. The wrappers check shapes and dtypes once, for every backend alike
 * (kernels/backend.c), then call the backend's function.
 *
 * Rules that let a CUDA backend keep everything on the device and capture a
 * whole UNet call as one graph:
 *  - ops never allocate and never wait: outputs and inputs are given, and a
 *    backend's scratch space is reserved beforehand (reserve_workspace);
 *  - ops may run asynchronously; download() and sync() are the only points
 *    where the host waits;
 *  - all tensors of one call are on the backend's device and contiguous;
 *  - element-wise ops (unary, binary, affine, cast between equal sizes, fill)
 *    and the norms may write over an input, exactly (out->data == in->data,
 *    same shape): models add residuals and time embeddings in place. Any
 *    other overlap between an output and an input is refused.
 *
 * Precision: activations are float32 on the CPU; weights (the `w` of linear
 * and conv2d) may be float16 or bfloat16 there and are widened as they are
 * used. A CUDA backend also takes float16 or bfloat16 activations and computes
 * with float32 accumulation (act_dtypes says which a backend takes; all
 * activations of one op share one dtype). Norm parameters (gamma, beta) and
 * biases may have any floating dtype.
 */
#ifndef SDR_KERNELS_BACKEND_H
#define SDR_KERNELS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/tensor.h" // sdr_tensor, sdr_device

typedef struct sdr_backend sdr_backend;
/* A recorded sequence of ops (a CUDA graph), owned by the backend that made it. */
typedef struct sdr_graph sdr_graph;

typedef enum sdr_unary_op {
  SDR_UNARY_SILU,       /* x * sigmoid(x) */
  SDR_UNARY_GELU,       /* exact, with erf (torch's default) */
  SDR_UNARY_GELU_TANH,  /* the tanh approximation */
  SDR_UNARY_QUICK_GELU, /* x * sigmoid(1.702 x), CLIP's */
  SDR_UNARY_EXP,
  SDR_UNARY_SQRT,
  SDR_UNARY_RELU, /* max(x, 0), NaN kept */
  SDR_UNARY_TANH,
  SDR_UNARY_COUNT
} sdr_unary_op;

/* The op's name ("silu", "relu"), for messages and test reports. */
const char *sdr_unary_name(sdr_unary_op uop);

typedef enum sdr_binary_op {
  SDR_BINARY_ADD,
  SDR_BINARY_SUB,
  SDR_BINARY_MUL,
  SDR_BINARY_DIV,
  SDR_BINARY_COUNT
} sdr_binary_op;

typedef struct sdr_backend_ops {
  /* ---- memory (the only calls that allocate or wait) ---- */
  void *(*alloc)(sdr_backend *be, size_t bytes); /* NULL and sdr_fail on out of memory */
  void (*free)(sdr_backend *be, void *ptr);
  int (*upload)(sdr_backend *be, void *dst, const void *src, size_t bytes);
  int (*download)(sdr_backend *be, void *dst, const void *src, size_t bytes);
  int (*sync)(sdr_backend *be);
  /* Scratch for ops such as conv2d, so they never allocate. */
  int (*reserve_workspace)(sdr_backend *be, size_t bytes);

  /* ---- ops ---- */
  /* out (M, N) = in (M, K) @ w (N, K)^T + bias (N); leading dims of in/out are flattened. */
  int (*linear)(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *w,
                const sdr_tensor *bias);
  /* out (B, M, N) = alpha * a (B, M, K) @ (b (B, K, N), or b (B, N, K)^T when trans_b). */
  int (*bmm)(sdr_backend *be, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b,
             int trans_b, float alpha);
  /* NCHW; w (Cout, Cin, kh, kw); bias (Cout) or NULL; square stride and padding (zeros). */
  int (*conv2d)(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *w,
                const sdr_tensor *bias, int stride, int padding);
  /* in (B, C, ...): statistics per (batch, group) over C/groups channels and all of ...;
   * then per-channel gamma, beta (C); SiLU after when silu (diffusers' norm + act pair). */
  int (*group_norm)(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *gamma,
                    const sdr_tensor *beta, int groups, float eps, int silu);
  /* Over the last dimension D; gamma, beta (D). */
  int (*layer_norm)(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *gamma,
                    const sdr_tensor *beta, float eps);
  /* Multi-head attention without materialising the full score matrix.
   * q (B, Tq, heads*Dh), k and v (B, Tk, heads*Dh), out (B, Tq, heads*Dh);
   * softmax(q k^T * scale) v per head; causal masks key j > query i (CLIP). */
  int (*attention)(sdr_backend *be, sdr_tensor *out, const sdr_tensor *q, const sdr_tensor *k,
                   const sdr_tensor *v, int heads, float scale, int causal);
  /* Over the last dimension. */
  int (*softmax)(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in);
  int (*unary)(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, sdr_unary_op op);
  /* in (..., 2*D) -> out (..., D): first half * gelu(second half), diffusers' GEGLU. */
  int (*geglu)(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in);
  /* NumPy broadcasting over up to SDR_MAX_DIMS dims; out has the broadcast shape. */
  int (*binary)(sdr_backend *be, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b,
                sdr_binary_op op);
  /* out = alpha * in + beta. */
  int (*affine)(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, float alpha, float beta);
  /* (B, C, H, W) -> (B, C, 2H, 2W), nearest. */
  int (*upsample_nearest2x)(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in);
  /* Along dimension dim; all other dimensions equal. */
  int (*concat)(sdr_backend *be, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b,
                int dim);
  /* out = in with dimensions reordered: out.shape[i] = in.shape[perm[i]]. */
  int (*permute)(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const int *perm);
  /* Same shape, another dtype (float32, float16, bfloat16; int64 to float). */
  int (*cast)(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in);
  /* out (..., D) = table (V, D)[ids (...)], ids int64; an id outside [0, V) is an error. */
  int (*embedding)(sdr_backend *be, sdr_tensor *out, const sdr_tensor *table,
                   const sdr_tensor *ids);
  /* diffusers' get_timestep_embedding: t (B) float32 -> out (B, dim). */
  int (*timestep_embedding)(sdr_backend *be, sdr_tensor *out, const sdr_tensor *t, int dim,
                            int flip_sin_to_cos, float downscale_freq_shift, float scale,
                            int max_period);
  int (*fill)(sdr_backend *be, sdr_tensor *out, float value);
  /* (B, C, H, W) -> (B, C, top + H + bottom, left + W + right), zeros around
   * (torch's F.pad(x, (left, right, top, bottom)); the VAE's downsampler pads (0, 1, 0, 1)). */
  int (*pad2d)(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, int left, int right, int top,
               int bottom);

  /* ---- optional (NULL where a backend cannot): record ops once, replay them ----
   * Between graph_begin and graph_end ops are recorded, not run, and only ops
   * may be called. A replay runs them again on the same addresses with the same
   * scalar arguments, so inputs that change are written into the same buffers
   * before it. */
  int (*graph_begin)(sdr_backend *be);
  sdr_graph *(*graph_end)(sdr_backend *be);
  int (*graph_replay)(sdr_backend *be, sdr_graph *g);
  void (*graph_destroy)(sdr_backend *be, sdr_graph *g);

  /* ---- optional: torch's CUDA random numbers drawn where the tensor is ----
   * out (float32, float16, bfloat16) as one call of torch's CUDA distribution
   * kernel with `grid` blocks of 256 threads from Philox (seed, offset): normal
   * (torch.randn) or uniform in [0, 1) (torch.rand). The caller owns the grid
   * and the generator's offset (engine/generator_device.c). */
  int (*philox)(sdr_backend *be, sdr_tensor *out, uint64_t seed, uint64_t offset, uint64_t grid,
                int normal);

  /* ---- optional: called around every op once its arguments are checked (a
   * profiler's timers; NULL when not profiling). aux is the op's weight or
   * second input, which tells calls of one op apart in a report. ---- */
  void (*op_begin)(sdr_backend *be, const char *op, const sdr_tensor *out, const sdr_tensor *aux);
  void (*op_end)(sdr_backend *be, const char *op);
} sdr_backend_ops;

struct sdr_backend {
  const char *name; /* "cpu", "cuda" */
  sdr_device device;
  const sdr_backend_ops *ops;
  void *impl; /* the backend's own state (threads, streams, handles, workspace) */
  /* Bit (1 << dtype) for each dtype activations may have on this backend; 0
   * means float32 only. Models take the weights' dtype when it is here. */
  unsigned act_dtypes;
};

/* ---- the calls engine code makes (checked, then dispatched) ---- */

void *sdr_alloc(sdr_backend *be, size_t bytes);
void sdr_free(sdr_backend *be, void *ptr);
int sdr_upload(sdr_backend *be, void *dst, const void *src, size_t bytes);
int sdr_download(sdr_backend *be, void *dst, const void *src, size_t bytes);
int sdr_sync(sdr_backend *be);
int sdr_reserve_workspace(sdr_backend *be, size_t bytes);

int sdr_linear(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *w,
               const sdr_tensor *bias);
int sdr_bmm(sdr_backend *be, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b, int trans_b,
            float alpha);
int sdr_conv2d(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *w,
               const sdr_tensor *bias, int stride, int padding);
int sdr_group_norm(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *gamma,
                   const sdr_tensor *beta, int groups, float eps, int silu);
int sdr_layer_norm(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *gamma,
                   const sdr_tensor *beta, float eps);
int sdr_attention(sdr_backend *be, sdr_tensor *out, const sdr_tensor *q, const sdr_tensor *k,
                  const sdr_tensor *v, int heads, float scale, int causal);
int sdr_softmax(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in);
int sdr_unary(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, sdr_unary_op op);
int sdr_geglu(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in);
int sdr_binary(sdr_backend *be, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b,
               sdr_binary_op op);
int sdr_affine(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, float alpha, float beta);
int sdr_upsample_nearest2x(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in);
int sdr_concat(sdr_backend *be, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b, int dim);
int sdr_permute(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const int *perm);
int sdr_cast(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in);
int sdr_embedding(sdr_backend *be, sdr_tensor *out, const sdr_tensor *table, const sdr_tensor *ids);
int sdr_timestep_embedding(sdr_backend *be, sdr_tensor *out, const sdr_tensor *t, int dim,
                           int flip_sin_to_cos, float downscale_freq_shift, float scale,
                           int max_period);
int sdr_fill(sdr_backend *be, sdr_tensor *out, float value);
int sdr_pad2d(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, int left, int right, int top,
              int bottom);

/* The dtype activations take when weights are kept in `want` (-1: as stored):
 * want itself where the backend computes in it, else float32. */
sdr_dtype sdr_backend_act_dtype(const sdr_backend *be, int want);

/* Philox draws on the device: whether the backend has them, and the checked call. */
int sdr_philox_supported(const sdr_backend *be);
int sdr_philox(sdr_backend *be, sdr_tensor *out, uint64_t seed, uint64_t offset, uint64_t grid,
               int normal);

/* Graphs: whether the backend records them, and the checked calls. */
int sdr_graph_supported(const sdr_backend *be);
int sdr_graph_begin(sdr_backend *be);
sdr_graph *sdr_graph_end(sdr_backend *be);
int sdr_graph_replay(sdr_backend *be, sdr_graph *g);
void sdr_graph_destroy(sdr_backend *be, sdr_graph *g);

/* Shape of the result of broadcasting a with b (NumPy rules); -1 if they don't broadcast. */
int sdr_broadcast_shape(const sdr_tensor *a, const sdr_tensor *b, int *ndim, int64_t *shape);

#endif

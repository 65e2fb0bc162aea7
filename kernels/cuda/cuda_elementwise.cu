/* kernels/cuda/cuda_elementwise.cu — unary activations, GEGLU, binary ops with NumPy
 * broadcasting (torch.add/sub/mul/div), affine (x * alpha + beta) and fill; mirrors
 * kernels/cpu/cpu_elementwise.c and cpu_vmath.c's formulas.
 *
 * One thread per element in grid-stride loops, float32 arithmetic whatever the
 * storage. Binary broadcasting folds the shapes on the host as the CPU does
 * (size-1 dimensions dropped, neighbours merged where both operands run on
 * contiguously), so most calls reach the kernel as one dimension with unit or
 * zero strides; the kernel handles up to SDR_MAX_DIMS either way.
 */
#include <string.h>

#include "kernels/broadcast.h" // sdr_bcast_plan
#include "kernels/cuda/cuda_internal.h"

/* ---- formulas (cpu_vmath.c) ---- */

__device__ __forceinline__ float sigmoid_mul(float x, float k) { return x / (1.0f + expf(-k * x)); }

/* exact GELU, torch's default: 0.5 x erfc(-x / sqrt 2), which keeps the negative tail */
__device__ __forceinline__ float gelu_f(float x) {
  return 0.5f * x * erfcf(-x * 0.70710678118654752f);
}

__device__ __forceinline__ float unary_f(float x, int op) {
  switch (op) {
  case SDR_UNARY_SILU:
    return sigmoid_mul(x, 1.0f);
  case SDR_UNARY_GELU:
    return gelu_f(x);
  case SDR_UNARY_GELU_TANH: /* 0.5 x (1 + tanh u) = x sigmoid(2u), u = sqrt(2/pi)(x + 0.044715 x^3)
                             */
    return sigmoid_mul(x, 2.0f * 0.79788456080286536f * (1.0f + 0.044715f * x * x));
  case SDR_UNARY_QUICK_GELU:
    return sigmoid_mul(x, 1.702f);
  case SDR_UNARY_EXP:
    return expf(x);
  case SDR_UNARY_RELU: /* NaN kept, as torch's relu (fmaxf would give 0) */
    return x < 0.0f ? 0.0f : x;
  case SDR_UNARY_TANH:
    return tanhf(x);
  default:
    return sqrtf(x);
  }
}

/* ---- unary, geglu, affine, fill ---- */

template <typename T> __global__ void unary_kernel(T *y, const T *x, int64_t n, int op) {
  GRID_STRIDE(i, n) { y[i] = from_f<T>(unary_f(to_f(x[i]), op)); }
}

/* diffusers' GEGLU: hidden, gate = proj(x).chunk(2, -1); hidden * gelu(gate). */
template <typename T> __global__ void geglu_kernel(T *y, const T *x, int64_t n, int64_t D) {
  GRID_STRIDE(i, n) {
    int64_t r, j;
    idx_divmod(i, D, &r, &j);
    const T *row = x + r * 2 * D;
    y[i] = from_f<T>(to_f(row[j]) * gelu_f(to_f(row[D + j])));
  }
}

template <typename T> __global__ void affine_kernel(T *y, const T *x, int64_t n, float a, float b) {
  GRID_STRIDE(i, n) { y[i] = from_f<T>(to_f(x[i]) * a + b); }
}

template <typename T> __global__ void fill_kernel(T *y, int64_t n, float v) {
  const T h = from_f<T>(v);
  GRID_STRIDE(i, n) { y[i] = h; }
}

/* Launches kernel<T> for the activations' dtype dt; `args` are the kernel's arguments
 * with the tensors' data pointers cast by PTR. */
#define LAUNCH_T(dt, kernel, n, ...)                                                               \
  do {                                                                                             \
    unsigned g_ = cuda_blocks(st, (n), CUDA_THREADS);                                              \
    if ((dt) == SDR_F32) {                                                                         \
      typedef float T;                                                                             \
      SDR_LAUNCH(kernel<T>, g_, CUDA_THREADS, 0, st->stream, __VA_ARGS__);                         \
    } else if ((dt) == SDR_F16) {                                                                  \
      typedef __half T;                                                                            \
      SDR_LAUNCH(kernel<T>, g_, CUDA_THREADS, 0, st->stream, __VA_ARGS__);                         \
    } else {                                                                                       \
      typedef __nv_bfloat16 T;                                                                     \
      SDR_LAUNCH(kernel<T>, g_, CUDA_THREADS, 0, st->stream, __VA_ARGS__);                         \
    }                                                                                              \
  } while (0)

int cuda_unary(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, sdr_unary_op uop) {
  const char *op = "sdr_unary";
  cuda_state *st = cuda_use(be);
  sdr_dtype dt;
  const sdr_tensor *acts[2] = {out, in};
  if (cuda_act_dtype(op, acts, 2, &dt) < 0)
    return -1;
  int64_t n = sdr_tensor_numel(out);
  LAUNCH_T(dt, unary_kernel, n, (T *)out->data, (const T *)in->data, n, (int)uop);
  CUDA_LAUNCHED(op);
  return 0;
}

int cuda_geglu(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in) {
  const char *op = "sdr_geglu";
  cuda_state *st = cuda_use(be);
  sdr_dtype dt;
  const sdr_tensor *acts[2] = {out, in};
  if (cuda_act_dtype(op, acts, 2, &dt) < 0)
    return -1;
  int64_t n = sdr_tensor_numel(out), D = out->shape[out->ndim - 1];
  LAUNCH_T(dt, geglu_kernel, n, (T *)out->data, (const T *)in->data, n, D);
  CUDA_LAUNCHED(op);
  return 0;
}

int cuda_affine(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, float alpha, float beta) {
  const char *op = "sdr_affine";
  cuda_state *st = cuda_use(be);
  sdr_dtype dt;
  const sdr_tensor *acts[2] = {out, in};
  if (cuda_act_dtype(op, acts, 2, &dt) < 0)
    return -1;
  int64_t n = sdr_tensor_numel(out);
  LAUNCH_T(dt, affine_kernel, n, (T *)out->data, (const T *)in->data, n, alpha, beta);
  CUDA_LAUNCHED(op);
  return 0;
}

int cuda_fill(sdr_backend *be, sdr_tensor *out, float value) {
  const char *op = "sdr_fill";
  cuda_state *st = cuda_use(be);
  int64_t n = sdr_tensor_numel(out);
  uint32_t bits;
  memcpy(&bits, &value, sizeof bits);
  if (bits == 0) { /* +0 is all zero bits in every float dtype */
    CUDA_TRY(op, cudaMemsetAsync(out->data, 0, sdr_tensor_nbytes(out), st->stream));
    return 0;
  }
  LAUNCH_T(out->dtype, fill_kernel, n, (T *)out->data, n, value);
  CUDA_LAUNCHED(op);
  return 0;
}

/* ---- binary with broadcasting ---- */

__device__ __forceinline__ float binary_f(float x, float y, int op) {
  switch (op) {
  case SDR_BINARY_ADD:
    return x + y;
  case SDR_BINARY_SUB:
    return x - y;
  case SDR_BINARY_MUL:
    return x * y;
  default:
    return x / y;
  }
}

/* The common case, one folded dimension: strides in registers, no plan in local memory. */
template <typename T>
__global__ void binary1_kernel(T *o, const T *a, const T *b, int64_t n, int64_t sa, int64_t sb,
                               int op) {
  GRID_STRIDE(i, n) { o[i] = from_f<T>(binary_f(to_f(a[i * sa]), to_f(b[i * sb]), op)); }
}

template <typename T>
__global__ void binary_kernel(T *o, const T *a, const T *b, int64_t n, sdr_bcast p, int op) {
  GRID_STRIDE(i, n) {
    int64_t rem = i, oa = 0, ob = 0;
    for (int d = p.nd - 1; d >= 0; d--) {
      int64_t c;
      idx_divmod(rem, p.dim[d], &rem, &c);
      oa += c * p.sa[d];
      ob += c * p.sb[d];
    }
    o[i] = from_f<T>(binary_f(to_f(a[oa]), to_f(b[ob]), op));
  }
}

int cuda_binary(sdr_backend *be, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b,
                sdr_binary_op bop) {
  const char *op = "sdr_binary";
  cuda_state *st = cuda_use(be);
  sdr_dtype dt;
  const sdr_tensor *acts[3] = {out, a, b};
  if (cuda_act_dtype(op, acts, 3, &dt) < 0)
    return -1;
  sdr_bcast p;
  sdr_bcast_plan(&p, out, a, b);
  int64_t n = sdr_tensor_numel(out);
  if (p.nd == 1)
    LAUNCH_T(dt, binary1_kernel, n, (T *)out->data, (const T *)a->data, (const T *)b->data, n,
             p.sa[0], p.sb[0], (int)bop);
  else
    LAUNCH_T(dt, binary_kernel, n, (T *)out->data, (const T *)a->data, (const T *)b->data, n, p,
             (int)bop);
  CUDA_LAUNCHED(op);
  return 0;
}

/* kernels/cpu/cpu_internal.h — what the CPU backend's files share; engine code never includes it.
 *
 * Every cpu_* op below is called by the checked sdr_* wrapper (kernels/backend.c),
 * so it may assume valid dtypes, shapes, devices and a non-empty output.
 *
 * Threads: ops split work with OpenMP over omp_get_max_threads() threads. BLAS
 * (OpenBLAS built for OpenMP) is called either outside our parallel regions,
 * where it uses the same pool, or inside them, where it runs on the calling
 * thread only (OpenBLAS checks omp_in_parallel()); never both at once, so the
 * two cores are never oversubscribed.
 *
 * Scratch: ops never allocate. They carve what they need out of the workspace
 * (sdr_reserve_workspace; CPU_DEFAULT_WORKSPACE from the start), size their
 * chunks to fit it, and fail with a message when even the smallest chunk does not.
 * So one backend runs one op at a time; two threads wanting to run ops at once
 * each need a backend of their own.
 */
#ifndef SDR_KERNELS_CPU_INTERNAL_H
#define SDR_KERNELS_CPU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h" // sdr_backend, sdr_tensor, sdr_unary_op

/* Enough for every op's largest useful chunk (conv2d: 16 MB of widened weights
 * + 16 MB of im2col columns + the bias; attention: 4 MB of scores per thread). */
enum { CPU_DEFAULT_WORKSPACE = 40 << 20 };

/* Loops over fewer elements than this stay on one thread: forking costs a few µs. */
enum { CPU_GRAIN = 1 << 15 };

typedef struct cpu_state {
  float *ws;       /* 64-byte aligned */
  size_t ws_bytes; /* reserved */
} cpu_state;

static inline cpu_state *cpu_state_of(sdr_backend *be) { return (cpu_state *)be->impl; }
static inline size_t cpu_ws_floats(sdr_backend *be) { return cpu_state_of(be)->ws_bytes / 4; }

int cpu_threads(void);

/* ---- vector math on arrays (cpu_vmath.c): AVX-512 where the CPU has it, else plain C ---- */

/* Chooses the code path once: AVX-512 if present, unless SDREPL_CPU_ISA=generic. */
void cpu_vmath_init(void);
/* 1 when the AVX-512 path is in use. */
int cpu_vmath_avx512(void);
/* Whether the AVX2 (with FMA) paths are taken: a CPU without AVX-512 that has them. */
int cpu_vmath_avx2(void);

/* y (n float32) = x (n elements of dtype float32, float16 or bfloat16) widened. */
void cpu_widen(float *y, const void *x, sdr_dtype dtype, int64_t n);
/* y (n elements of dtype float32, float16 or bfloat16) = x rounded to nearest even. */
void cpu_narrow(void *y, sdr_dtype dtype, const float *x, int64_t n);
/* Element i of a float32, float16 or bfloat16 vector as float (for per-channel parameters). */
float cpu_load_float(const void *x, sdr_dtype dtype, int64_t i);

float cpu_max(const float *x, int64_t n);
/* y = exp(x * a - m), the product and difference rounded once (a fused multiply-add);
 * returns the sum of y. y may be x. */
float cpu_exp_sum(float *y, const float *x, int64_t n, float a, float m);
/* y = x * s. y may be x. */
void cpu_scale(float *y, const float *x, int64_t n, float s);
/* y = op(x). y may be x. */
void cpu_unary_row(sdr_unary_op op, float *y, const float *x, int64_t n);
/* y = (x - c)*a + b, then SiLU when silu. y may be x. */
void cpu_axpb(float *y, const float *x, int64_t n, float c, float a, float b, int silu);
/* Sums in double, for normalisation statistics. */
double cpu_sum_f64(const float *x, int64_t n);
double cpu_sqdev_f64(const float *x, int64_t n, double mean); /* sum of (x - mean)^2 */

/* ---- ops (one file per family) ---- */

/* C (M, N) = A (M, K) @ W (N, K)^T with our kernel (cpu_gemm.c), W packed into
 * ws (ws_floats floats); 1 when done, 0 when not for it (neither AVX-512 nor AVX2, N not
 * a multiple of 16, not even one packed panel fits ws): then OpenBLAS does it. */
int cpu_gemm_nt(sdr_backend *be, float *C, const float *A, const void *w, sdr_dtype wt, int64_t M,
                int64_t N, int64_t K, float *ws, size_t ws_floats);
/* C (M, N; row stride ldc) = A (M, K; lda) @ B (K, N; ldb), plus C's old values when
 * accumulate, with our kernel (cpu_gemm.c); 1 when done, 0 when not for it (neither
 * AVX-512 nor AVX2, N not a multiple of 16): then OpenBLAS does it. */
int cpu_gemm_nn(float *C, int64_t ldc, const float *A, int64_t lda, const float *B, int64_t ldb,
                int64_t M, int64_t N, int64_t K, int accumulate);
/* cpu_attention on our kernel (cpu_attention_mk.c): 1 when done, 0 when not for it
 * (neither AVX-512 nor AVX2, heads wider than 256, the packed heads do not fit the
 * workspace). */
int cpu_attention_mk(sdr_backend *be, sdr_tensor *out, const sdr_tensor *q, const sdr_tensor *k,
                     const sdr_tensor *v, int heads, float scale, int causal);
int cpu_linear(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *w,
               const sdr_tensor *bias);
int cpu_bmm(sdr_backend *be, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b, int trans_b,
            float alpha);
int cpu_conv2d(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *w,
               const sdr_tensor *bias, int stride, int padding);
/* Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions (cpu_winograd.c). pays: whether it
 * beats im2col for B images of Ho x Wo outputs. conv2d_winograd: 0 done, 1 declined (the
 * workspace is too small for its smallest chunk: im2col needs less). */
int cpu_winograd_pays(int64_t B, int64_t Ho, int64_t Wo);
int cpu_conv2d_winograd(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *w,
                        const sdr_tensor *bias, int padding);
int cpu_group_norm(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *gamma,
                   const sdr_tensor *beta, int groups, float eps, int silu);
int cpu_layer_norm(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const sdr_tensor *gamma,
                   const sdr_tensor *beta, float eps);
int cpu_softmax(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in);
int cpu_attention(sdr_backend *be, sdr_tensor *out, const sdr_tensor *q, const sdr_tensor *k,
                  const sdr_tensor *v, int heads, float scale, int causal);
int cpu_unary(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, sdr_unary_op op);
int cpu_geglu(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in);
int cpu_binary(sdr_backend *be, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b,
               sdr_binary_op op);
int cpu_affine(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, float alpha, float beta);
int cpu_fill(sdr_backend *be, sdr_tensor *out, float value);
int cpu_upsample_nearest2x(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in);
int cpu_pad2d(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, int left, int right, int top,
              int bottom);
int cpu_concat(sdr_backend *be, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b, int dim);
int cpu_permute(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const int *perm);
int cpu_cast(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in);
int cpu_embedding(sdr_backend *be, sdr_tensor *out, const sdr_tensor *table, const sdr_tensor *ids);
int cpu_timestep_embedding(sdr_backend *be, sdr_tensor *out, const sdr_tensor *t, int dim,
                           int flip_sin_to_cos, float downscale_freq_shift, float scale,
                           int max_period);

#endif

/* kernels/cpu/cpu_elementwise.c — unary activations, GEGLU, binary ops with NumPy
 * broadcasting (torch.add/sub/mul/div), affine (x * alpha + beta) and fill.
 *
 * Flat work is cut into blocks of CPU_GRAIN elements shared by the threads.
 * Binary broadcasting first folds the shapes into as few dimensions as possible
 * (dimensions of size 1 dropped, neighbours merged where both operands are
 * contiguous across them), so same-shape, scalar and per-channel or per-row
 * operands all end in an inner loop with unit or zero strides.
 */
#include <string.h>

#include "kernels/broadcast.h" // sdr_bcast_plan
#include "kernels/cpu/cpu_internal.h"
#include "kernels/half.h" // sdr_f32_to_f16, sdr_f32_to_bf16

/* ---- unary, geglu, affine, fill ---- */

int cpu_unary(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, sdr_unary_op op) {
  (void)be;
  int64_t n = sdr_tensor_numel(in), blocks = (n + CPU_GRAIN - 1) / CPU_GRAIN;
  const float *x = in->data;
  float *y = out->data;
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t b = 0; b < blocks; b++) {
    int64_t i = b * CPU_GRAIN, m = n - i < CPU_GRAIN ? n - i : CPU_GRAIN;
    cpu_unary_row(op, y + i, x + i, m);
  }
  return 0;
}

/* diffusers' GEGLU: hidden, gate = proj(x).chunk(2, -1); hidden * gelu(gate). */
int cpu_geglu(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in) {
  (void)be;
  int64_t D = out->shape[out->ndim - 1], rows = sdr_tensor_numel(out) / D;
  const float *x = in->data;
  float *y = out->data;
#pragma omp parallel for schedule(static) if (rows > 1 && rows * D > CPU_GRAIN)
  for (int64_t r = 0; r < rows; r++) {
    const float *h = x + r * 2 * D, *gate = h + D;
    float *o = y + r * D;
    cpu_unary_row(SDR_UNARY_GELU, o, gate, D);
    for (int64_t j = 0; j < D; j++)
      o[j] *= h[j];
  }
  return 0;
}

int cpu_affine(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, float alpha, float beta) {
  (void)be;
  int64_t n = sdr_tensor_numel(in);
  const float *x = in->data;
  float *y = out->data;
#pragma omp parallel for schedule(static) if (n > CPU_GRAIN)
  for (int64_t i = 0; i < n; i++)
    y[i] = x[i] * alpha + beta;
  return 0;
}

int cpu_fill(sdr_backend *be, sdr_tensor *out, float value) {
  (void)be;
  int64_t n = sdr_tensor_numel(out);
  if (out->dtype == SDR_F32) {
    float *y = out->data;
#pragma omp parallel for schedule(static) if (n > CPU_GRAIN)
    for (int64_t i = 0; i < n; i++)
      y[i] = value;
  } else {
    uint16_t h = out->dtype == SDR_F16 ? sdr_f32_to_f16(value) : sdr_f32_to_bf16(value);
    uint16_t *y = out->data;
#pragma omp parallel for schedule(static) if (n > CPU_GRAIN)
    for (int64_t i = 0; i < n; i++)
      y[i] = h;
  }
  return 0;
}

/* ---- binary with broadcasting ---- */

#define INNER(OP)                                                                                  \
  do {                                                                                             \
    if (ia == 1 && ib == 1)                                                                        \
      for (int64_t j = 0; j < n; j++)                                                              \
        o[j] = A[j] OP B[j];                                                                       \
    else if (ia == 1) {                                                                            \
      float s = B[0];                                                                              \
      for (int64_t j = 0; j < n; j++)                                                              \
        o[j] = A[j] OP s;                                                                          \
    } else if (ib == 1) {                                                                          \
      float s = A[0];                                                                              \
      for (int64_t j = 0; j < n; j++)                                                              \
        o[j] = s OP B[j];                                                                          \
    } else {                                                                                       \
      float s = A[0] OP B[0];                                                                      \
      for (int64_t j = 0; j < n; j++)                                                              \
        o[j] = s;                                                                                  \
    }                                                                                              \
  } while (0)

/* o[j] = A[j*ia] op B[j*ib], ia and ib each 0 or 1. */
static void binary_inner(sdr_binary_op op, float *o, const float *A, const float *B, int64_t n,
                         int64_t ia, int64_t ib) {
  switch (op) {
  case SDR_BINARY_ADD:
    INNER(+);
    break;
  case SDR_BINARY_SUB:
    INNER(-);
    break;
  case SDR_BINARY_MUL:
    INNER(*);
    break;
  case SDR_BINARY_DIV:
    INNER(/);
    break;
  default:
    break;
  }
}

int cpu_binary(sdr_backend *be, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b,
               sdr_binary_op op) {
  (void)be;
  sdr_bcast p;
  sdr_bcast_plan(&p, out, a, b);
  int last = p.nd - 1;
  int64_t inner = p.dim[last], rows = sdr_tensor_numel(out) / inner;
  int64_t per_row = (inner + CPU_GRAIN - 1) / CPU_GRAIN, tasks = rows * per_row;
  const float *A = a->data, *Bd = b->data;
  float *O = out->data;
#pragma omp parallel for schedule(static) if (tasks > 1 && rows * inner > CPU_GRAIN)
  for (int64_t t = 0; t < tasks; t++) {
    int64_t r = t / per_row, j0 = (t % per_row) * CPU_GRAIN;
    int64_t n = inner - j0 < CPU_GRAIN ? inner - j0 : CPU_GRAIN;
    int64_t oa = 0, ob = 0, rem = r;
    for (int i = last - 1; i >= 0; i--) { /* row index -> offsets in a and b */
      int64_t c = rem % p.dim[i];
      rem /= p.dim[i];
      oa += c * p.sa[i];
      ob += c * p.sb[i];
    }
    binary_inner(op, O + r * inner + j0, A + oa + j0 * p.sa[last], Bd + ob + j0 * p.sb[last], n,
                 p.sa[last], p.sb[last]);
  }
  return 0;
}

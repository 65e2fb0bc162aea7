/* kernels/cuda/cuda_layout.cu — ops that move elements: permute (torch.permute +
 * contiguous), concat (torch.cat), upsample_nearest2x (F.interpolate(scale_factor=2,
 * mode="nearest")), pad2d (F.pad with zeros), cast (Tensor.to(dtype)) and embedding
 * (nn.Embedding); mirrors kernels/cpu/cpu_layout.c.
 *
 * Moves are by element size (1, 2, 4 or 8 bytes), so one kernel serves every
 * dtype of that size. permute folds dimensions as the CPU does; the transpose of
 * the last two (NCHW <-> NHWC around every transformer block) goes through
 * 32x32 tiles in shared memory so that reads and writes are both coalesced.
 */
#include "kernels/cuda/cuda_internal.h"

/* Runs BODY with E the unsigned type of es bytes. */
#define BY_SIZE(op, es, BODY)                                                                      \
  do {                                                                                             \
    switch (es) {                                                                                  \
    case 1: {                                                                                      \
      typedef uint8_t E;                                                                           \
      BODY;                                                                                        \
    } break;                                                                                       \
    case 2: {                                                                                      \
      typedef uint16_t E;                                                                          \
      BODY;                                                                                        \
    } break;                                                                                       \
    case 4: {                                                                                      \
      typedef uint32_t E;                                                                          \
      BODY;                                                                                        \
    } break;                                                                                       \
    case 8: {                                                                                      \
      typedef unsigned long long E;                                                                \
      BODY;                                                                                        \
    } break;                                                                                       \
    default:                                                                                       \
      return sdr_fail("%s: elements of %zu bytes", (op), (size_t)(es));                            \
    }                                                                                              \
  } while (0)

/* ---- permute ---- */

typedef struct pplan {
  int nd;
  int64_t dim[SDR_MAX_DIMS], st[SDR_MAX_DIMS]; /* output dims, input stride of each */
} pplan;

template <typename E> __global__ void permute_kernel(E *y, const E *x, int64_t n, pplan p) {
  GRID_STRIDE(i, n) {
    int64_t rem = i, off = 0;
    for (int d = p.nd - 1; d >= 0; d--) {
      int64_t c;
      idx_divmod(rem, p.dim[d], &rem, &c);
      off += c * p.st[d];
    }
    y[i] = x[off];
  }
}

/* y (batch, R, C) = x (batch, C, R) transposed; block (R tile, C tile, batch), 32 x 8 threads. */
template <typename E> __global__ void transpose_kernel(E *y, const E *x, int64_t C, int64_t R) {
  __shared__ E tile[32][33];
  const int64_t base = (int64_t)blockIdx.z * C * R;
  const int64_t r0 = (int64_t)blockIdx.x * 32, c0 = (int64_t)blockIdx.y * 32;
  for (int j = threadIdx.y; j < 32; j += 8) {
    int64_t c = c0 + j, r = r0 + threadIdx.x;
    if (c < C && r < R)
      tile[j][threadIdx.x] = x[base + c * R + r];
  }
  __syncthreads();
  for (int j = threadIdx.y; j < 32; j += 8) {
    int64_t r = r0 + j, c = c0 + threadIdx.x;
    if (r < R && c < C)
      y[base + r * C + c] = tile[threadIdx.x][j];
  }
}

int cuda_permute(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const int *perm) {
  const char *op = "sdr_permute";
  cuda_state *st = cuda_use(be);
  size_t es = sdr_dtype_size(in->dtype);
  int nd = in->ndim;
  int64_t istride[SDR_MAX_DIMS], s = 1;
  for (int i = nd - 1; i >= 0; i--) {
    istride[i] = s;
    s *= in->shape[i];
  }
  /* output dims with their input strides, size-1 dims dropped, neighbours merged */
  pplan p;
  p.nd = 0;
  for (int i = 0; i < nd; i++) {
    int64_t d = out->shape[i], str = istride[perm[i]];
    if (d == 1)
      continue;
    if (p.nd > 0 && p.st[p.nd - 1] == str * d) {
      p.dim[p.nd - 1] *= d;
      p.st[p.nd - 1] = str;
      continue;
    }
    p.dim[p.nd] = d;
    p.st[p.nd] = str;
    p.nd++;
  }
  int64_t total = sdr_tensor_numel(out);
  if (p.nd == 0 || (p.nd == 1 && p.st[0] == 1)) { /* nothing moves */
    CUDA_TRY(op, cudaMemcpyAsync(out->data, in->data, (size_t)total * es, cudaMemcpyDeviceToDevice,
                                 st->stream));
    return 0;
  }
  /* (batch, C, R) -> (batch, R, C): out's last dim walks the input with stride R */
  int n = p.nd;
  if (n >= 2 && p.st[n - 2] == 1 && p.st[n - 1] == p.dim[n - 2]) {
    int64_t R = p.dim[n - 2], C = p.dim[n - 1], batch = total / (R * C), expect = R * C;
    int ok = 1;
    for (int i = n - 3; i >= 0; i--) { /* leading dims in input order */
      ok &= p.st[i] == expect;
      expect *= p.dim[i];
    }
    if (ok && (C + 31) / 32 <= 65535 && batch <= 65535) {
      dim3 grid((unsigned)((R + 31) / 32), (unsigned)((C + 31) / 32), (unsigned)batch);
      BY_SIZE(op, es,
              (SDR_LAUNCH(transpose_kernel<E>, grid, dim3(32, 8), 0, st->stream, (E *)out->data,
                          (const E *)in->data, C, R)));
      CUDA_LAUNCHED(op);
      return 0;
    }
  }
  unsigned g = cuda_blocks(st, total, CUDA_THREADS);
  BY_SIZE(op, es,
          (SDR_LAUNCH(permute_kernel<E>, g, CUDA_THREADS, 0, st->stream, (E *)out->data,
                      (const E *)in->data, total, p)));
  CUDA_LAUNCHED(op);
  return 0;
}

/* ---- concat ---- */

/* out (outer, na + nb) from a (outer, na) and b (outer, nb), in elements. */
template <typename E>
__global__ void concat_kernel(E *y, const E *a, const E *b, int64_t na, int64_t nb, int64_t n) {
  GRID_STRIDE(i, n) {
    int64_t row, c;
    idx_divmod(i, na + nb, &row, &c);
    y[i] = c < na ? a[row * na + c] : b[row * nb + (c - na)];
  }
}

int cuda_concat(sdr_backend *be, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b,
                int dim) {
  const char *op = "sdr_concat";
  cuda_state *st = cuda_use(be);
  size_t es = sdr_dtype_size(out->dtype);
  int64_t inner = 1;
  for (int i = dim + 1; i < out->ndim; i++)
    inner *= out->shape[i];
  int64_t na = a->shape[dim] * inner, nb = b->shape[dim] * inner, n = sdr_tensor_numel(out);
  unsigned g = cuda_blocks(st, n, CUDA_THREADS);
  BY_SIZE(op, es,
          (SDR_LAUNCH(concat_kernel<E>, g, CUDA_THREADS, 0, st->stream, (E *)out->data,
                      (const E *)a->data, (const E *)b->data, na, nb, n)));
  CUDA_LAUNCHED(op);
  return 0;
}

/* ---- upsample ---- */

/* out row orow of 2W elements is input row orow / 2 (planes of 2H rows over planes of H). */
template <typename E> __global__ void upsample_kernel(E *y, const E *x, int64_t W, int64_t n) {
  GRID_STRIDE(i, n) {
    int64_t orow, ocol;
    idx_divmod(i, 2 * W, &orow, &ocol);
    y[i] = x[(orow >> 1) * W + (ocol >> 1)];
  }
}

int cuda_upsample_nearest2x(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in) {
  const char *op = "sdr_upsample_nearest2x";
  cuda_state *st = cuda_use(be);
  size_t es = sdr_dtype_size(in->dtype);
  int64_t n = sdr_tensor_numel(out), W = in->shape[3];
  unsigned g = cuda_blocks(st, n, CUDA_THREADS);
  BY_SIZE(op, es,
          (SDR_LAUNCH(upsample_kernel<E>, g, CUDA_THREADS, 0, st->stream, (E *)out->data,
                      (const E *)in->data, W, n)));
  CUDA_LAUNCHED(op);
  return 0;
}

/* ---- pad2d (F.pad(x, (left, right, top, bottom)) with zeros) ---- */

template <typename E>
__global__ void pad_kernel(E *y, const E *x, int64_t H, int64_t W, int64_t OH, int64_t OW, int top,
                           int left, int64_t n) {
  GRID_STRIDE(i, n) {
    int64_t t, ow, p, oh;
    idx_divmod(i, OW, &t, &ow);
    idx_divmod(t, OH, &p, &oh);
    int64_t ih = oh - top, iw = ow - left;
    y[i] = ih >= 0 && ih < H && iw >= 0 && iw < W ? x[(p * H + ih) * W + iw] : (E)0;
  }
}

int cuda_pad2d(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, int left, int right, int top,
               int bottom) {
  const char *op = "sdr_pad2d";
  cuda_state *st = cuda_use(be);
  (void)right;
  (void)bottom;
  size_t es = sdr_dtype_size(in->dtype);
  int64_t n = sdr_tensor_numel(out);
  unsigned g = cuda_blocks(st, n, CUDA_THREADS);
  BY_SIZE(op, es,
          (SDR_LAUNCH(pad_kernel<E>, g, CUDA_THREADS, 0, st->stream, (E *)out->data,
                      (const E *)in->data, in->shape[2], in->shape[3], out->shape[2], out->shape[3],
                      top, left, n)));
  CUDA_LAUNCHED(op);
  return 0;
}

/* ---- cast ---- */

template <typename A, typename B> __global__ void convert_kernel(B *y, const A *x, int64_t n) {
  GRID_STRIDE(i, n) { y[i] = from_f<B>(to_f(x[i])); }
}

/* token ids and such: exact below 2^24, else rounded to nearest even as (float) does */
__global__ void i64_to_f32_kernel(float *y, const long long *x, int64_t n) {
  GRID_STRIDE(i, n) { y[i] = __ll2float_rn(x[i]); }
}

template <typename A>
static int convert_from(cuda_state *st, void *dst, sdr_dtype dt, const void *src, int64_t n) {
  unsigned g = cuda_blocks(st, n, CUDA_THREADS);
  if (dt == SDR_F32)
    SDR_LAUNCH((convert_kernel<A, float>), g, CUDA_THREADS, 0, st->stream, (float *)dst,
               (const A *)src, n);
  else if (dt == SDR_F16)
    SDR_LAUNCH((convert_kernel<A, __half>), g, CUDA_THREADS, 0, st->stream, (__half *)dst,
               (const A *)src, n);
  else
    SDR_LAUNCH((convert_kernel<A, __nv_bfloat16>), g, CUDA_THREADS, 0, st->stream,
               (__nv_bfloat16 *)dst, (const A *)src, n);
  return 0;
}

int cuda_convert(cuda_state *st, const char *op, void *dst, sdr_dtype dt, const void *src,
                 sdr_dtype src_dt, int64_t n) {
  if (dt == src_dt) {
    if (dst != src)
      CUDA_TRY(op, cudaMemcpyAsync(dst, src, (size_t)n * sdr_dtype_size(dt),
                                   cudaMemcpyDeviceToDevice, st->stream));
    return 0;
  }
  if (src_dt == SDR_I64 && dt == SDR_F32) {
    SDR_LAUNCH(i64_to_f32_kernel, cuda_blocks(st, n, CUDA_THREADS), CUDA_THREADS, 0, st->stream,
               (float *)dst, (const long long *)src, n);
  } else if (src_dt == SDR_F32) {
    convert_from<float>(st, dst, dt, src, n);
  } else if (src_dt == SDR_F16) {
    convert_from<__half>(st, dst, dt, src, n);
  } else if (src_dt == SDR_BF16) {
    convert_from<__nv_bfloat16>(st, dst, dt, src, n);
  } else {
    return sdr_fail("%s: no conversion from %s to %s", op, sdr_dtype_name(src_dt),
                    sdr_dtype_name(dt));
  }
  CUDA_LAUNCHED(op);
  return 0;
}

int cuda_cast(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in) {
  cuda_state *st = cuda_use(be);
  return cuda_convert(st, "sdr_cast", out->data, out->dtype, in->data, in->dtype,
                      sdr_tensor_numel(in));
}

/* ---- embedding ---- */

/* An id outside [0, V) cannot fail the call (the host does not wait for the
 * GPU): its row is NaN and the first such id is flagged, so the next sync or
 * download fails with it (cuda_backend.c: check_flags). */
template <typename T>
__global__ void embedding_kernel(T *y, const void *table, int tdt, const long long *ids, int64_t D,
                                 int64_t V, int64_t n, long long *flags) {
  GRID_STRIDE(i, n) {
    int64_t r, d;
    idx_divmod(i, D, &r, &d);
    long long id = ids[r];
    if (id < 0 || id >= V) {
      if (d == 0 && atomicCAS((unsigned long long *)flags, 0ull,
                              (unsigned long long)CUDA_FLAG_EMBEDDING_ID) == 0ull) {
        flags[1] = id;
        flags[2] = V;
      }
      y[i] = from_f<T>(__int_as_float(0x7fc00000));
    } else {
      y[i] = from_f<T>(ld_param(table, tdt, id * D + d));
    }
  }
}

int cuda_embedding(sdr_backend *be, sdr_tensor *out, const sdr_tensor *table,
                   const sdr_tensor *ids) {
  const char *op = "sdr_embedding";
  cuda_state *st = cuda_use(be);
  sdr_dtype dt;
  const sdr_tensor *acts[1] = {out};
  if (cuda_act_dtype(op, acts, 1, &dt) < 0)
    return -1;
  int64_t V = table->shape[0], D = table->shape[1], n = sdr_tensor_numel(out);
  unsigned g = cuda_blocks(st, n, CUDA_THREADS);
  const long long *id = (const long long *)ids->data;
  if (dt == SDR_F32)
    SDR_LAUNCH(embedding_kernel, g, CUDA_THREADS, 0, st->stream, (float *)out->data, table->data,
               table->dtype, id, D, V, n, st->flags);
  else if (dt == SDR_F16)
    SDR_LAUNCH(embedding_kernel, g, CUDA_THREADS, 0, st->stream, (__half *)out->data, table->data,
               table->dtype, id, D, V, n, st->flags);
  else
    SDR_LAUNCH(embedding_kernel, g, CUDA_THREADS, 0, st->stream, (__nv_bfloat16 *)out->data,
               table->data, table->dtype, id, D, V, n, st->flags);
  CUDA_LAUNCHED(op);
  return 0;
}

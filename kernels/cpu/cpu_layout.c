/* kernels/cpu/cpu_layout.c — ops that move elements: permute (torch.permute + contiguous),
 * concat (torch.cat), upsample_nearest2x (F.interpolate(scale_factor=2, mode="nearest")),
 * cast (Tensor.to(dtype)) and embedding (nn.Embedding).
 *
 * permute folds dimensions that stay neighbours into one, then either copies whole
 * rows (last dimension unmoved), transposes tiles (the last two swapped, as in
 * NCHW <-> NHWC), or walks the input with strides.
 */
#include <string.h>

#include "kernels/cpu/cpu_internal.h"
#include "kernels/error.h" // sdr_fail

/* ---- permute ---- */

enum { TILE = 32 };

/* out (R, C) = in (C, R)^T for `batch` matrices, elements of es bytes. */
static void transpose_batch(char *out, const char *in, int64_t batch, int64_t C, int64_t R,
                            size_t es) {
  int64_t tr = (R + TILE - 1) / TILE, tc = (C + TILE - 1) / TILE, tiles = batch * tr * tc;
#pragma omp parallel for schedule(static) if (batch * R * C > CPU_GRAIN)
  for (int64_t t = 0; t < tiles; t++) {
    int64_t bi = t / (tr * tc), r0 = (t / tc) % tr * TILE, c0 = t % tc * TILE;
    int64_t r1 = r0 + TILE < R ? r0 + TILE : R, c1 = c0 + TILE < C ? c0 + TILE : C;
    const char *src = in + (size_t)(bi * R * C) * es;
    char *dst = out + (size_t)(bi * R * C) * es;
    if (es == 4) {
      const float *s = (const float *)src;
      float *d = (float *)dst;
      for (int64_t r = r0; r < r1; r++)
        for (int64_t c = c0; c < c1; c++)
          d[r * C + c] = s[c * R + r];
    } else {
      for (int64_t r = r0; r < r1; r++)
        for (int64_t c = c0; c < c1; c++)
          memcpy(dst + (size_t)(r * C + c) * es, src + (size_t)(c * R + r) * es, es);
    }
  }
}

int cpu_permute(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, const int *perm) {
  (void)be;
  size_t es = sdr_dtype_size(in->dtype);
  int nd = in->ndim;
  int64_t istride[SDR_MAX_DIMS], s = 1;
  for (int i = nd - 1; i >= 0; i--) {
    istride[i] = s;
    s *= in->shape[i];
  }
  /* output dims with their input strides, size-1 dims dropped, neighbours merged */
  int64_t dim[SDR_MAX_DIMS], st[SDR_MAX_DIMS];
  int n = 0;
  for (int i = 0; i < nd; i++) {
    int64_t d = out->shape[i], str = istride[perm[i]];
    if (d == 1)
      continue;
    if (n > 0 && st[n - 1] == str * d) {
      dim[n - 1] *= d;
      st[n - 1] = str;
      continue;
    }
    dim[n] = d;
    st[n] = str;
    n++;
  }
  const char *src = in->data;
  char *dst = out->data;
  int64_t total = sdr_tensor_numel(out);
  if (n == 0 || (n == 1 && st[0] == 1)) { /* nothing moves */
    memcpy(dst, src, (size_t)total * es);
    return 0;
  }
  if (st[n - 1] == 1) { /* rows of dim[n-1] stay whole */
    int64_t L = dim[n - 1], rows = total / L;
#pragma omp parallel for schedule(static) if (total > CPU_GRAIN)
    for (int64_t r = 0; r < rows; r++) {
      int64_t off = 0, rem = r;
      for (int i = n - 2; i >= 0; i--) {
        off += rem % dim[i] * st[i];
        rem /= dim[i];
      }
      memcpy(dst + (size_t)(r * L) * es, src + (size_t)off * es, (size_t)L * es);
    }
    return 0;
  }
  /* (batch, C, R) -> (batch, R, C): out's last dim walks the input with stride R */
  if (n >= 2 && st[n - 2] == 1 && st[n - 1] == dim[n - 2]) {
    int64_t R = dim[n - 2], C = dim[n - 1], batch = total / (R * C);
    int ok = 1;
    int64_t expect = R * C;
    for (int i = n - 3; i >= 0; i--) { /* leading dims in input order */
      ok &= st[i] == expect;
      expect *= dim[i];
    }
    if (ok) {
      transpose_batch(dst, src, batch, C, R, es);
      return 0;
    }
  }
  /* general: each output row walks the input with stride st[n-1] */
  int64_t L = dim[n - 1], rows = total / L, ls = st[n - 1];
#pragma omp parallel for schedule(static) if (total > CPU_GRAIN)
  for (int64_t r = 0; r < rows; r++) {
    int64_t off = 0, rem = r;
    for (int i = n - 2; i >= 0; i--) {
      off += rem % dim[i] * st[i];
      rem /= dim[i];
    }
    char *d = dst + (size_t)(r * L) * es;
    if (es == 4) {
      const float *sp = (const float *)src + off;
      for (int64_t j = 0; j < L; j++)
        ((float *)d)[j] = sp[j * ls];
    } else {
      for (int64_t j = 0; j < L; j++)
        memcpy(d + (size_t)j * es, src + (size_t)(off + j * ls) * es, es);
    }
  }
  return 0;
}

/* ---- concat ---- */

int cpu_concat(sdr_backend *be, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b,
               int dim) {
  (void)be;
  size_t es = sdr_dtype_size(out->dtype);
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < dim; i++)
    outer *= out->shape[i];
  for (int i = dim + 1; i < out->ndim; i++)
    inner *= out->shape[i];
  size_t na = (size_t)(a->shape[dim] * inner) * es, nb = (size_t)(b->shape[dim] * inner) * es;
  const char *pa = a->data, *pb = b->data;
  char *po = out->data;
#pragma omp parallel for schedule(static) if (outer > 1 && sdr_tensor_numel(out) > CPU_GRAIN)
  for (int64_t i = 0; i < outer; i++) {
    char *o = po + (size_t)i * (na + nb);
    if (na)
      memcpy(o, pa + (size_t)i * na, na);
    if (nb)
      memcpy(o + na, pb + (size_t)i * nb, nb);
  }
  return 0;
}

/* ---- upsample ---- */

int cpu_upsample_nearest2x(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in) {
  (void)be;
  int64_t rows = in->shape[0] * in->shape[1] * in->shape[2], W = in->shape[3];
  const float *x = in->data;
  float *y = out->data;
#pragma omp parallel for schedule(static) if (rows * W > CPU_GRAIN)
  for (int64_t r = 0; r < rows; r++) {
    const float *s = x + r * W;
    float *d = y + r * 4 * W; /* output rows 2r and 2r+1 of its plane */
    for (int64_t j = 0; j < W; j++)
      d[2 * j] = d[2 * j + 1] = s[j];
    memcpy(d + 2 * W, d, (size_t)(2 * W) * sizeof(float));
  }
  return 0;
}

/* ---- cast ---- */

int cpu_cast(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in) {
  (void)be;
  int64_t n = sdr_tensor_numel(in), blocks = (n + CPU_GRAIN - 1) / CPU_GRAIN;
  sdr_dtype from = in->dtype, to = out->dtype;
  size_t fs = sdr_dtype_size(from), ts = sdr_dtype_size(to);
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t b = 0; b < blocks; b++) {
    int64_t i = b * CPU_GRAIN, m = n - i < CPU_GRAIN ? n - i : CPU_GRAIN;
    const char *src = (const char *)in->data + (size_t)i * fs;
    char *dst = (char *)out->data + (size_t)i * ts;
    float buf[1024];
    if (from == to) {
      memmove(dst, src, (size_t)m * fs);
    } else if (from == SDR_I64) { /* token ids and such: exact below 2^24 */
      for (int64_t j = 0; j < m; j++)
        ((float *)dst)[j] = (float)((const int64_t *)src)[j];
    } else if (from == SDR_F32) {
      cpu_narrow(dst, to, (const float *)src, m);
    } else if (to == SDR_F32) {
      cpu_widen((float *)dst, src, from, m);
    } else { /* float16 <-> bfloat16 through float, a slice at a time */
      for (int64_t j = 0; j < m; j += 1024) {
        int64_t c = m - j < 1024 ? m - j : 1024;
        cpu_widen(buf, src + (size_t)j * fs, from, c);
        cpu_narrow(dst + (size_t)j * ts, to, buf, c);
      }
    }
  }
  return 0;
}

/* ---- embedding ---- */

int cpu_embedding(sdr_backend *be, sdr_tensor *out, const sdr_tensor *table,
                  const sdr_tensor *ids) {
  (void)be;
  int64_t V = table->shape[0], D = table->shape[1], n = sdr_tensor_numel(ids);
  const int64_t *id = ids->data;
  for (int64_t i = 0; i < n; i++) /* all checked before anything is written */
    if (id[i] < 0 || id[i] >= V)
      return sdr_fail("sdr_embedding: id %lld at position %lld is outside [0, %lld)",
                      (long long)id[i], (long long)i, (long long)V);
  size_t es = sdr_dtype_size(table->dtype);
  float *y = out->data;
#pragma omp parallel for schedule(static) if (n * D > CPU_GRAIN)
  for (int64_t i = 0; i < n; i++)
    cpu_widen(y + i * D, (const char *)table->data + (size_t)(id[i] * D) * es, table->dtype, D);
  return 0;
}

/* ---- pad2d (F.pad(x, (left, right, top, bottom)) with zeros) ---- */

int cpu_pad2d(sdr_backend *be, sdr_tensor *out, const sdr_tensor *in, int left, int right, int top,
              int bottom) {
  (void)be;
  (void)bottom;
  const int64_t planes = in->shape[0] * in->shape[1], H = in->shape[2], W = in->shape[3];
  const int64_t OH = out->shape[2], OW = out->shape[3];
  const float *x = in->data;
  float *y = out->data;
#pragma omp parallel for schedule(static) if (planes * OH * OW > CPU_GRAIN)
  for (int64_t p = 0; p < planes; p++) {
    float *d = y + p * OH * OW;
    const float *s = x + p * H * W;
    memset(d, 0, (size_t)(top * OW) * sizeof(float));
    for (int64_t r = 0; r < H; r++) {
      float *row = d + (top + r) * OW;
      memset(row, 0, (size_t)left * sizeof(float));
      memcpy(row + left, s + r * W, (size_t)W * sizeof(float));
      memset(row + left + W, 0, (size_t)right * sizeof(float));
    }
    memset(d + (top + H) * OW, 0, (size_t)((OH - top - H) * OW) * sizeof(float));
  }
  return 0;
}

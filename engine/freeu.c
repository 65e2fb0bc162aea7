/* engine/freeu.c — diffusers' apply_freeu and fourier_filter (utils/torch_utils.py), as
 * two products with a basis of the frequencies fourier_filter scales (engine/freeu.h). */
#include "engine/freeu.h"

#include <math.h>
#include <stdlib.h>

#include "engine/error.h"

int sdr_freeu_enabled(const sdr_freeu *f) { return f->s1 && f->s2 && f->b1 && f->b2; }

/* The distinct frequencies of {0, -1} along an axis of n: fftshift puts them at n // 2
 * and n // 2 - 1, the two rows (columns) the mask scales; n == 1 has only 0. */
static int axis_freqs(int64_t n, int64_t *k) {
  k[0] = 0;
  k[1] = n - 1;
  return n > 1 ? 2 : 1;
}

/* F (8, h w): for each frequency pair (ky, kx) a row of cos(theta) and one of sin(theta),
 * theta = 2 pi (ky y / h + kx x / w); G (h w, 8) = (s - 1) / (h w) F^T. Rows of frequencies
 * an axis of 1 lacks stay zero. */
static int make_basis(sdr_freeu_basis *b, sdr_backend *be, int64_t h, int64_t w, double s) {
  const size_t hw = (size_t)(h * w);
  float *host = calloc(16 * hw, sizeof *host);
  if (!host)
    return sdr_fail("FreeU: out of memory");
  float *F = host, *G = host + 8 * hw;
  int64_t ky[2], kx[2];
  int ny = axis_freqs(h, ky), nx = axis_freqs(w, kx), row = 0;
  const double alpha = (s - 1.0) / (double)hw;
  for (int i = 0; i < ny; i++)
    for (int j = 0; j < nx; j++, row += 2)
      for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++) {
          /* the phase reduced mod 1 before the angle, so large planes keep their precision */
          double turns =
              fmod((double)(ky[i] * y) / (double)h + (double)(kx[j] * x) / (double)w, 1.0);
          double c = cos(2 * M_PI * turns), sn = sin(2 * M_PI * turns);
          size_t p = (size_t)(y * w + x);
          F[(size_t)row * hw + p] = (float)c;
          F[(size_t)(row + 1) * hw + p] = (float)sn;
          G[p * 8 + (size_t)row] = (float)(alpha * c);
          G[p * 8 + (size_t)row + 1] = (float)(alpha * sn);
        }
  if (b->mem)
    sdr_free(be, b->mem);
  b->mem = sdr_alloc(be, 16 * hw * sizeof(float));
  int rc = b->mem ? sdr_upload(be, b->mem, host, 16 * hw * sizeof(float)) : -1;
  free(host);
  if (rc != 0) {
    if (b->mem)
      sdr_free(be, b->mem);
    b->mem = NULL;
    return sdr_fail_prefix("FreeU: ");
  }
  b->h = h;
  b->w = w;
  b->s = s;
  return 0;
}

int sdr_freeu_apply(sdr_freeu *f, sdr_backend *be, sdr_arena *a, int stage, sdr_tensor *h,
                    sdr_tensor *skip) {
  const double s = stage == 0 ? f->s1 : f->s2, bscale = stage == 0 ? f->b1 : f->b2;
  /* hidden_states[:, :C // 2] *= b: the first half of each image's channels, contiguous */
  const int64_t B = h->shape[0], C = h->shape[1], plane = h->shape[2] * h->shape[3];
  for (int64_t i = 0; i < B && C / 2 > 0; i++) {
    sdr_tensor half = *h;
    half.ndim = 1;
    half.shape[0] = C / 2 * plane;
    half.data = (char *)h->data + (size_t)(i * C * plane) * sdr_dtype_size(h->dtype);
    if (sdr_affine(be, &half, &half, (float)bscale, 0.0f) != 0)
      return -1;
  }
  /* the skip's low frequencies: skip += (skip @ F^T) @ G^T, plane by plane */
  const int64_t hh = skip->shape[2], ww = skip->shape[3], hw = hh * ww;
  sdr_freeu_basis *b = &f->basis[stage];
  /* made outside a recorded graph: the pipeline's first UNet call is not recorded */
  if ((!b->mem || b->h != hh || b->w != ww || b->s != s) && make_basis(b, be, hh, ww, s) != 0)
    return -1;
  sdr_tensor F = sdr_tensor_view(b->mem, SDR_F32, be->device, 2, (int64_t[]){8, hw});
  sdr_tensor G =
      sdr_tensor_view((float *)b->mem + 8 * hw, SDR_F32, be->device, 2, (int64_t[]){hw, 8});
  const int64_t rows = skip->shape[0] * skip->shape[1];
  sdr_tensor x = *skip, coef, delta;
  x.ndim = 2;
  x.shape[0] = rows;
  x.shape[1] = hw;
  sdr_arena_mark m = sdr_arena_get_mark(a);
  int rc = sdr_arena_tensor(a, &coef, skip->dtype, 2, (int64_t[]){rows, 8});
  if (rc == 0)
    rc = sdr_arena_tensor(a, &delta, skip->dtype, 2, (int64_t[]){rows, hw});
  if (rc == 0)
    rc = sdr_linear(be, &coef, &x, &F, NULL);
  if (rc == 0)
    rc = sdr_linear(be, &delta, &coef, &G, NULL);
  if (rc == 0)
    rc = sdr_binary(be, &x, &x, &delta, SDR_BINARY_ADD);
  sdr_arena_release(a, m);
  return rc;
}

void sdr_freeu_free(sdr_freeu *f, sdr_backend *be) {
  for (int i = 0; i < 2; i++)
    if (f->basis[i].mem)
      sdr_free(be, f->basis[i].mem);
  f->basis[0].mem = f->basis[1].mem = NULL;
}

/* kernels/broadcast.c — the broadcasting plan both backends' binary ops follow. */
#include "kernels/broadcast.h"

static void strides_of(const sdr_tensor *t, int nd, const int64_t *odim, int64_t *s) {
  int64_t stride = 1;
  for (int i = nd - 1; i >= 0; i--) {
    int it = t->ndim - nd + i;
    int64_t d = it >= 0 ? t->shape[it] : 1;
    s[i] = d == 1 && odim[i] != 1 ? 0 : stride;
    if (odim[i] == 1)
      s[i] = 0;
    stride *= d;
  }
}

void sdr_bcast_plan(sdr_bcast *p, const sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b) {
  int64_t sa[SDR_MAX_DIMS], sb[SDR_MAX_DIMS];
  strides_of(a, out->ndim, out->shape, sa);
  strides_of(b, out->ndim, out->shape, sb);
  p->nd = 0;
  for (int i = 0; i < out->ndim; i++) {
    if (out->shape[i] == 1)
      continue;
    int k = p->nd - 1;
    /* merge into the previous kept dimension when both walk on contiguously */
    if (k >= 0 && p->sa[k] == sa[i] * out->shape[i] && p->sb[k] == sb[i] * out->shape[i]) {
      p->dim[k] *= out->shape[i];
      p->sa[k] = sa[i];
      p->sb[k] = sb[i];
      continue;
    }
    p->dim[p->nd] = out->shape[i];
    p->sa[p->nd] = sa[i];
    p->sb[p->nd] = sb[i];
    p->nd++;
  }
  if (p->nd == 0) { /* a single element */
    p->nd = 1;
    p->dim[0] = 1;
    p->sa[0] = p->sb[0] = 0;
  }
}

/* engine/freeu.h — FreeU (diffusers' UNet2DConditionModel.enable_freeu, apply_freeu and
 * fourier_filter in utils/torch_utils.py): in the first two up blocks, before each resnet,
 * the first half of the backbone's channels is scaled by b1 (b2) and the skip's lowest
 * frequencies by s1 (s2).
 *
 * fourier_filter with threshold 1 scales the 2 x 2 frequencies around the centre of the
 * shifted spectrum, which are the frequencies 0 and -1 along each axis, and keeps the real
 * part. So no FFT is needed: with C_k and S_k the sums of x * cos and x * sin over the
 * plane for each of those frequencies k, the filtered plane is
 *   x + (s - 1) / (H W) * sum_k (C_k cos(theta_k) + S_k sin(theta_k)),
 * two products with an (8, H W) basis, on the backend like every other op (and so inside a
 * recorded CUDA graph). */
#ifndef SDR_ENGINE_FREEU_H
#define SDR_ENGINE_FREEU_H

#include "engine/arena.h"
#include "kernels/backend.h"

typedef struct sdr_freeu_basis {
  int64_t h, w;
  double s;
  void *mem; /* on the backend: F (8, h w) then G (h w, 8) = (s - 1) / (h w) * F^T */
} sdr_freeu_basis;

typedef struct sdr_freeu {
  double s1, s2, b1, b2; /* 0 when not enabled */
  sdr_freeu_basis basis[2];
} sdr_freeu;

/* diffusers' is_freeu_enabled: all four factors set and non-zero. */
int sdr_freeu_enabled(const sdr_freeu *f);
/* apply_freeu for resolution index stage (0 or 1) on h (B, C, H, W), scaled in place, and
 * skip (B, C', H', W'), filtered in place (the UNet uses each skip once). */
int sdr_freeu_apply(sdr_freeu *f, sdr_backend *be, sdr_arena *a, int stage, sdr_tensor *h,
                    sdr_tensor *skip);
void sdr_freeu_free(sdr_freeu *f, sdr_backend *be);

#endif

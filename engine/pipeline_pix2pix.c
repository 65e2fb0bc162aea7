/* engine/pipeline_pix2pix.c — InstructPix2Pix's picture latents (see pipeline_pix2pix.h). */
#include "engine/pipeline_pix2pix.h"

#include <stdlib.h>

#include "engine/error.h"            // sdr_fail
#include "engine/pipeline_img2img.h" // sdr_img2img_starts, sdr_img2img_upload_repeated

int sdr_pix2pix_image_latents(sdr_pipeline *p, const sdr_generate *g, int cfg, int64_t B,
                              sdr_tensor *out) {
  const int64_t L = out->shape[1], lh = out->shape[2], lw = out->shape[3];
  if (L + L != p->unet.cfg.in_channels)
    return sdr_fail("Incorrect configuration settings! The config of `pipeline.unet` expects %d "
                    "but received `num_channels_latents`: %lld + `num_channels_image`: %lld  = "
                    "%lld. Please verify the config of `pipeline.unet` or your `image` input.",
                    p->unet.cfg.in_channels, (long long)L, (long long)L, (long long)(L + L));
  int K;
  float *z = sdr_img2img_starts(p, g, B, lh, lw, 1, &K);
  if (!z)
    return -1;
  /* torch.cat([image_latents] * (B // K)), then [that, that, zeros] when guided */
  sdr_tensor rows;
  int rc = sdr_tensor_narrow0(&rows, out, 0, B);
  if (rc == 0)
    rc = sdr_img2img_upload_repeated(p, &rows, z, K, B, (size_t)(L * lh * lw));
  if (rc == 0 && cfg) {
    sdr_tensor second, third;
    rc = sdr_tensor_narrow0(&second, out, B, B);
    if (rc == 0)
      rc = sdr_affine(p->be, &second, &rows, 1.0f, 0.0f);
    if (rc == 0)
      rc = sdr_tensor_narrow0(&third, out, 2 * B, B);
    if (rc == 0)
      rc = sdr_fill(p->be, &third, 0.0f);
  }
  free(z);
  return rc;
}

/* engine/pipeline_lcm.c — the guidance scale embedding of latent consistency models (see
 * pipeline_lcm.h). */
#include "engine/pipeline_lcm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h" // sdr_fail

void sdr_guidance_scale_embedding(float w, int dim, float *out) {
  const int half = dim / 2;
  const float ww = w * 1000.0f;
  /* torch.log(torch.tensor(10000.0)) / (half_dim - 1), in float32 */
  const float step = logf(10000.0f) / (float)(half - 1);
  for (int k = 0; k < half; k++) {
    const float f = expf((float)k * -step);
    const float x = ww * f;
    out[k] = sinf(x);
    out[half + k] = cosf(x);
  }
  if (dim % 2)
    out[dim - 1] = 0.0f;
}

int sdr_pipeline_guided(const sdr_pipeline *p, const sdr_generate *g) {
  if (g->pix2pix) /* InstructPix2Pix's do_classifier_free_guidance */
    return g->guidance_scale > 1.0f && g->image_guidance_scale >= 1.0f;
  return g->guidance_scale > 1.0f && !p->unet.cfg.time_cond_proj_dim && !g->no_guidance;
}

int sdr_lcm_timestep_cond(sdr_pipeline *p, const sdr_generate *g, int64_t B, sdr_tensor *cond,
                          const sdr_tensor **out) {
  *out = NULL;
  const int dim = p->unet.cfg.time_cond_proj_dim;
  if (!dim && g->no_guidance)
    return sdr_fail("LatentConsistencyModelPipeline needs a latent consistency model's UNet "
                    "(time_cond_proj_dim in its config); with an LCM-LoRA, use "
                    "StableDiffusionPipeline and LCMScheduler");
  if (!dim)
    return 0;
  float *host = malloc((size_t)(B * dim) * sizeof *host);
  if (!host)
    return sdr_fail("out of memory");
  /* torch.tensor(guidance_scale - 1): the Python float's difference, then float32 */
  sdr_guidance_scale_embedding((float)((double)g->guidance_scale - 1.0), dim, host);
  for (int64_t b = 1; b < B; b++)
    memcpy(host + b * dim, host, (size_t)dim * sizeof *host);
  int rc = sdr_arena_tensor(&p->arena, cond, SDR_F32, 2, (int64_t[]){B, dim});
  if (rc == 0)
    rc = sdr_upload(p->be, cond->data, host, (size_t)(B * dim) * sizeof *host);
  free(host);
  if (rc == 0)
    *out = cond;
  return rc;
}

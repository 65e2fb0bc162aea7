/* engine/pipeline_upscale.c — StableDiffusionUpscalePipeline's pictures (see
 * pipeline_upscale.h). */
#include "engine/pipeline_upscale.h"

#include <stdlib.h>

#include "engine/error.h"            // sdr_fail
#include "engine/generator_device.h" // sdr_generator_fill_batch
#include "engine/image_processor.h"  // sdr_image_to_pixels_with, sdr_pixels_preprocess
#include "engine/pipeline_img2img.h" // sdr_img2img_pictures

#define TRY(x)                                                                                     \
  do {                                                                                             \
    if ((x) != 0)                                                                                  \
      goto fail;                                                                                   \
  } while (0)

static int picture_count(const sdr_generate *g) {
  int n = 0;
  const sdr_image *const *pics = sdr_img2img_pictures(g, &n);
  return g->image_tensor ? (int)g->image_tensor_shape[0] : pics[0] ? n : 0;
}

int sdr_upscale_size(const sdr_pipeline *p, const sdr_generate *g, int *height, int *width) {
  const int f = sdr_vae_scale_factor(&p->vae);
  int h = 0, w = 0;
  const int64_t *s = g->image_tensor_shape;
  if (g->image_tensor &&
      (s[0] < 1 || s[1] != 3 || s[2] < 1 || s[3] < 1 || s[2] > 65536 || s[3] > 65536))
    return sdr_fail("image: a tensor of pictures (batch, 3, height, width) expected, got (%lld, "
                    "%lld, %lld, %lld)",
                    (long long)s[0], (long long)s[1], (long long)s[2], (long long)s[3]);
  if (sdr_img2img_given_size(g, &h, &w) != 0)
    return -1;
  if (h < f || w < f)
    return sdr_fail("the image is %dx%d; it must be at least %dx%d", w, h, f, f);
  h -= h % f;
  w -= w % f;
  if (h > 65536 / f || w > 65536 / f)
    return sdr_fail("the image is %dx%d; %d times that is too large a picture", w, h, f);
  *height = h * f;
  *width = w * f;
  return 0;
}

int sdr_upscale_prepare(sdr_pipeline *p, const sdr_generate *g, int nb, int64_t B, int64_t lh,
                        int64_t lw, sdr_tensor *image, sdr_tensor *labels) {
  sdr_backend *be = p->be;
  sdr_arena *a = &p->arena;
  if (!p->low_res_scheduler)
    return sdr_fail("this pipeline has no low_res_scheduler (not an upscaler's model)");
  if (g->noise_level < 0 || g->noise_level > p->max_noise_level)
    return sdr_fail("`noise_level` has to be <= %d but is %d", p->max_noise_level, g->noise_level);
  const int M = picture_count(g), N = g->num_images_per_prompt;
  /* torch.cat([image] * batch_multiplier * num_images_per_prompt) must make the latents' rows */
  if ((int64_t)M * N * nb != (int64_t)nb * B)
    return sdr_fail("image: %d pictures for %d prompts; the upscaler takes one picture per prompt",
                    M, g->nprompts);
  const size_t plane = (size_t)lh * lw, one = 3 * plane;
  float *pixels = malloc((size_t)M * one * sizeof *pixels);
  int64_t *ids = malloc((size_t)(nb * B) * sizeof *ids);
  int rc = -1;
  if (!pixels || !ids) {
    sdr_fail("out of memory");
    goto fail;
  }
  /* the upscaler's image processor: resample bicubic, to the size floored to the factor */
  if (g->image_tensor) {
    const int64_t *s = g->image_tensor_shape;
    sdr_pixels_preprocess(g->image_tensor, M, 3, (int)s[2], (int)s[3], (int)lh, (int)lw, pixels);
  } else {
    int n;
    const sdr_image *const *pics = sdr_img2img_pictures(g, &n);
    for (int i = 0; i < M; i++)
      TRY(sdr_image_to_pixels_with(pics[i], (int)lw, (int)lh, SDR_RESAMPLE_BICUBIC,
                                   pixels + (size_t)i * one));
  }
  /* noise of the pictures' shape, drawn first; a list of generators gives row i its own */
  if (g->ngenerators > 1 && g->ngenerators < M) {
    sdr_fail("generator: %d generators for %d pictures", g->ngenerators, M);
    goto fail;
  }
  sdr_tensor clean, noise, noised;
  const int64_t shape[4] = {M, 3, lh, lw};
  TRY(sdr_arena_tensor(a, &clean, SDR_F32, 4, shape));
  TRY(sdr_arena_tensor(a, &noise, SDR_F32, 4, shape));
  TRY(sdr_arena_tensor(a, &noised, SDR_F32, 4, shape));
  TRY(sdr_upload(be, clean.data, pixels, (size_t)M * one * sizeof *pixels));
  TRY(sdr_generator_fill_batch(g->generators, g->ngenerators > 1 ? M : 1, be, a, &noise, p->dtype));
  TRY(sdr_scheduler_add_noise(p->low_res_scheduler, be, &noised, &clean, &noise,
                              (double)g->noise_level));
  TRY(sdr_arena_tensor(a, image, SDR_F32, 4, (int64_t[]){nb * B, 3, lh, lw}));
  for (int64_t r = 0; r < nb * B; r++) { /* the M pictures, over and over */
    sdr_tensor src, dst;
    TRY(sdr_tensor_narrow0(&src, &noised, r % M, 1));
    TRY(sdr_tensor_narrow0(&dst, image, r, 1));
    TRY(sdr_affine(be, &dst, &src, 1.0f, 0.0f));
    ids[r] = g->noise_level;
  }
  TRY(sdr_arena_tensor(a, labels, SDR_I64, 1, (int64_t[]){nb * B}));
  TRY(sdr_upload(be, labels->data, ids, (size_t)(nb * B) * sizeof *ids));
  rc = 0;
fail:
  free(pixels);
  free(ids);
  return rc;
}

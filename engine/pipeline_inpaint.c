/* engine/pipeline_inpaint.c — StableDiffusionInpaintPipeline's additions to a run
 * (diffusers' pipeline_stable_diffusion_inpaint.py).
 *
 * The pictures are resized (Lanczos) to the run's size and mapped to [-1, 1]; the masks
 * are resized the same way in their own mode, made grey (L), and binarized: 1 (paint)
 * where value / 255 >= 0.5. Tensors (pictures in [0, 1], masks) are resized as
 * F.interpolate's nearest mode does. The masked picture is the picture with the painted region set
 * to 0. Random draws, in diffusers' order, from the run's generator(s): the picture's
 * posterior when its latents are needed (a 4-channel UNet, or strength below 1), the
 * noise, then the masked picture's posterior. A 9-channel UNet (runwayml's inpainting
 * model) sees [latents, mask, masked latents] at every step; with a 4-channel one, after
 * every step the region outside the mask is set back to the picture's latents noised to
 * the next timestep.
 */
#include "engine/pipeline_inpaint.h"

#include <stdlib.h>
#include <string.h>

#include "engine/error.h"            // sdr_fail
#include "engine/generator_device.h" // sdr_generator_fill_batch
#include "engine/image_processor.h"  // sdr_image_to_pixels, sdr_pixels_resize_nearest
#include "engine/pipeline_img2img.h" // sdr_img2img_encode, sdr_img2img_pictures, ...

#define TRY(x)                                                                                     \
  do {                                                                                             \
    if ((x) != 0)                                                                                  \
      goto fail;                                                                                   \
  } while (0)

int sdr_inpaint_wanted(const sdr_generate *g) { return g->mask_images || g->mask_tensor; }

static int picture_count(const sdr_generate *g) {
  int n;
  const sdr_image *const *pics = sdr_img2img_pictures(g, &n);
  return g->image_tensor ? (int)g->image_tensor_shape[0] : pics[0] ? n : 0;
}

static int mask_count(const sdr_generate *g) {
  return g->mask_tensor ? (int)g->mask_tensor_shape[0] : g->nmasks;
}

/* The image given is latents (a base run's output_type = "latent"): as many channels as the
 * VAE's latents, where a picture has 3. */
static int latents_given(const sdr_pipeline *p, const sdr_generate *g) {
  return g->image_tensor && g->image_tensor_shape[1] == p->vae.cfg.latent_channels &&
         g->image_tensor_shape[1] != 3;
}

int sdr_inpaint_check(const sdr_pipeline *p, const sdr_generate *g) {
  int n;
  const sdr_image *const *pics = sdr_img2img_pictures(g, &n);
  const int64_t *is = g->image_tensor_shape, *ms = g->mask_tensor_shape;
  const int lat = latents_given(p, g);
  if (g->image_tensor && (is[0] < 1 || (is[1] != 3 && !lat) || is[2] < 1 || is[3] < 1))
    return sdr_fail("image: a tensor of pictures (batch, 3, height, width) or of latents "
                    "(batch, %d, height/%d, width/%d) expected, got (%lld, %lld, %lld, %lld)",
                    p->vae.cfg.latent_channels, sdr_vae_scale_factor(&p->vae),
                    sdr_vae_scale_factor(&p->vae), (long long)is[0], (long long)is[1],
                    (long long)is[2], (long long)is[3]);
  if (lat && p->unet.cfg.in_channels == 9 && !g->masked_image_latents)
    return sdr_fail("image: latents given to inpaint with a 9-channel UNet, which needs the "
                    "masked picture (diffusers fails there too); give the picture or "
                    "masked_image_latents");
  const int64_t *ml = g->masked_image_latents_shape;
  if (g->masked_image_latents && (ml[0] < 1 || ml[1] != 4 || ml[1] != p->vae.cfg.latent_channels))
    return sdr_fail("masked_image_latents: latents (batch, 4, height/%d, width/%d) expected, got "
                    "(%lld, %lld, %lld, %lld)",
                    sdr_vae_scale_factor(&p->vae), sdr_vae_scale_factor(&p->vae), (long long)ml[0],
                    (long long)ml[1], (long long)ml[2], (long long)ml[3]);
  if (picture_count(g) < 1)
    return sdr_fail("image: the picture to inpaint is missing");
  for (int i = 0; !g->image_tensor && i < n; i++)
    if (pics[i]->channels != 3)
      return sdr_fail("image: picture %d is %s; inpainting takes RGB pictures "
                      "(Image:convert(\"RGB\"))",
                      i + 1, sdr_image_mode_name(pics[i]->channels));
  if (g->mask_tensor && (ms[0] < 1 || ms[1] != 1 || ms[2] < 1 || ms[3] < 1))
    return sdr_fail("mask_image: a tensor of masks (batch, 1, height, width) expected, got "
                    "(%lld, %lld, %lld, %lld)",
                    (long long)ms[0], (long long)ms[1], (long long)ms[2], (long long)ms[3]);
  if (mask_count(g) < 1)
    return sdr_fail("mask_image: no mask given");
  if (!(g->strength >= 0 && g->strength <= 1)) /* NaN too */
    return sdr_fail("The value of strength should in [0.0, 1.0] but is %g", g->strength);
  const int in = p->unet.cfg.in_channels, L = p->vae.cfg.latent_channels;
  if (in == 9 && 2 * L + 1 != 9)
    return sdr_fail("Incorrect configuration settings! The UNet expects 9 input channels but "
                    "received num_channels_latents: %d + num_channels_mask: 1 + "
                    "num_channels_masked_image: %d = %d.",
                    L, L, 2 * L + 1);
  if (in != 9 && in != 4)
    return sdr_fail("The unet should have either 4 or 9 input channels, not %d.", in);
  if (in == 4 && L != 4)
    return sdr_fail("the UNet takes %d channels and the VAE makes %d latent channels", in, L);
  return 0;
}

/* The masks as preprocess makes them: (n, 1, H, W) host, 0 or 1. */
static float *masks_of(const sdr_generate *g, int height, int width) {
  const size_t plane = (size_t)height * width;
  const int n = mask_count(g);
  float *out = malloc((size_t)n * plane * sizeof *out);
  if (!out) {
    sdr_fail("out of memory");
    return NULL;
  }
  if (g->mask_tensor) { /* resize (nearest), then binarize */
    const int64_t *s = g->mask_tensor_shape;
    sdr_pixels_resize_nearest(g->mask_tensor, n, 1, (int)s[2], (int)s[3], height, width, out);
    for (size_t k = 0; k < (size_t)n * plane; k++)
      out[k] = out[k] < 0.5f ? 0.0f : 1.0f;
    return out;
  }
  for (int i = 0; i < g->nmasks; i++) {
    const sdr_image *m = g->mask_images[i];
    sdr_image *sized = NULL, *grey = NULL;
    if (m->width != width || m->height != height) {
      if (!(sized = sdr_image_resize(m, width, height, SDR_RESAMPLE_LANCZOS)))
        goto fail;
      m = sized;
    }
    if (m->channels != 1) {
      if (!(grey = sdr_image_convert(m, 1))) {
        sdr_image_free(sized);
        goto fail;
      }
      m = grey;
    }
    for (size_t k = 0; k < plane; k++) /* pil_to_numpy's / 255, then binarize */
      out[(size_t)i * plane + k] = (float)m->pixels[k] / 255.0f < 0.5f ? 0.0f : 1.0f;
    sdr_image_free(grey);
    sdr_image_free(sized);
  }
  return out;
fail:
  free(out);
  return NULL;
}

/* rows (n, C, h, w) encoded or resized, for a batch of B (G copies of it when guided). */
static int batch_tensor(sdr_pipeline *p, sdr_tensor *t, const float *rows, int n, int64_t B, int G,
                        int64_t C, int64_t h, int64_t w) {
  if (sdr_arena_tensor(&p->arena, t, SDR_F32, 4, (int64_t[]){G * B, C, h, w}) != 0)
    return -1;
  for (int k = 0; k < G; k++) {
    sdr_tensor half;
    if (sdr_tensor_narrow0(&half, t, k * B, B) != 0 ||
        sdr_img2img_upload_repeated(p, &half, rows, n, B, (size_t)(C * h * w)) != 0)
      return -1;
  }
  return 0;
}

int sdr_inpaint_prepare(sdr_pipeline *p, const sdr_generate *g, int guided, sdr_tensor *latents,
                        double t0, sdr_inpaint *s) {
  memset(s, 0, sizeof *s);
  sdr_arena *a = &p->arena;
  const int f = sdr_vae_scale_factor(&p->vae), L = p->vae.cfg.latent_channels, G = guided ? 2 : 1;
  const int64_t B = latents->shape[0], lh = latents->shape[2], lw = latents->shape[3];
  const int height = (int)lh * f, width = (int)lw * f;
  const size_t plane = (size_t)height * width, one = (size_t)L * lh * lw;
  const int strength_max = g->strength == 1.0;
  /* SDXL's denoising_start: no noise added, the picture's latents go on as they are */
  const int add_noise = !g->has_denoising_start, lat = latents_given(p, g);
  s->unet9 = p->unet.cfg.in_channels == 9;
  int n;
  const sdr_image *const *pics = sdr_img2img_pictures(g, &n);
  const int M = picture_count(g), Mm = mask_count(g);
  if (M != Mm && M != 1 && Mm != 1)
    return sdr_fail("The size of tensor a (%d) must match the size of tensor b (%d) at "
                    "non-singleton dimension 0: %d pictures and %d masks",
                    M, Mm, M, Mm);
  const int Mx = M > Mm ? M : Mm;
  float *pixels = malloc((size_t)M * 3 * plane * sizeof *pixels);
  float *masked = malloc((size_t)Mx * 3 * plane * sizeof *masked);
  float *z = malloc((size_t)Mx * one * sizeof *z);
  float *mask_small = malloc((size_t)Mm * lh * lw * sizeof *mask_small);
  float *masks = NULL;
  int rc = -1;
  if (!pixels || !masked || !z || !mask_small) {
    sdr_fail("out of memory");
    goto fail;
  }
  if (lat && (g->image_tensor_shape[2] != lh || g->image_tensor_shape[3] != lw)) {
    sdr_fail("image: latents of %lldx%lld for a run of %dx%d (latents %lldx%lld): give height "
             "and width",
             (long long)g->image_tensor_shape[3], (long long)g->image_tensor_shape[2], width,
             height, (long long)lw, (long long)lh);
    goto fail;
  }
  if (g->image_tensor && !lat) { /* resized (nearest), mapped to [-1, 1] unless already below 0 */
    const int64_t *is = g->image_tensor_shape;
    sdr_pixels_preprocess(g->image_tensor, M, 3, (int)is[2], (int)is[3], height, width, pixels);
  }
  for (int i = 0; !g->image_tensor && i < M; i++)
    TRY(sdr_image_to_pixels(pics[i], width, height, pixels + (size_t)i * 3 * plane));
  if (!(masks = masks_of(g, height, width)))
    goto fail;
  /* init_image * (mask_condition < 0.5), broadcast over the batch (none for latents) */
  for (int i = 0; !lat && i < Mx; i++) {
    const float *src = pixels + (size_t)(M == 1 ? 0 : i) * 3 * plane;
    const float *m = masks + (size_t)(Mm == 1 ? 0 : i) * plane;
    float *dst = masked + (size_t)i * 3 * plane;
    for (int c = 0; c < 3; c++)
      for (size_t k = 0; k < plane; k++)
        dst[c * plane + k] = m[k] < 0.5f ? src[c * plane + k] : 0.0f;
  }

  if (g->ngenerators > 1 && Mx > g->ngenerators) {
    sdr_fail("generator: %d generators for %d pictures to encode (one each)", g->ngenerators, Mx);
    goto fail;
  }
  /* prepare_latents: the picture's latents when needed (given, return_image_latents, or a
   * start from the picture), then the noise */
  const int need_image = lat || !s->unet9 || (!g->latents && !strength_max);
  if (!need_image && !add_noise) {
    sdr_fail("denoising_start with strength 1 and a 9-channel UNet leaves no picture latents to "
             "start from (diffusers fails there too); give a strength below 1");
    goto fail;
  }
  if (need_image) {
    if (lat)
      memcpy(z, g->image_tensor, (size_t)M * one * sizeof *z);
    else
      TRY(sdr_img2img_encode(p, g, pixels, M, height, width, z));
    if (B % M != 0) {
      sdr_fail("image: %d pictures for a batch of %lld (prompts times num_images_per_prompt)", M,
               (long long)B);
      goto fail;
    }
    TRY(batch_tensor(p, &s->image_lat, z, M, B, 1, L, lh, lw));
  }
  TRY(sdr_arena_tensor(a, &s->noise, SDR_F32, 4, latents->shape));
  if (g->latents && add_noise) /* without add_noise diffusers draws new noise whatever is given */
    TRY(sdr_upload(p->be, s->noise.data, g->latents, (size_t)B * one * sizeof(float)));
  else
    TRY(sdr_generator_fill_batch(g->generators, g->ngenerators, p->be, a, &s->noise, p->dtype));
  if (!add_noise) {
    TRY(sdr_affine(p->be, latents, &s->image_lat, 1.0f, 0.0f));
  } else if (strength_max || g->latents) {
    const double sigma = sdr_scheduler_init_noise_sigma(p->scheduler);
    TRY(sdr_affine(p->be, latents, &s->noise, (float)sigma, 0.0f));
  } else {
    TRY(sdr_scheduler_add_noise(p->scheduler, p->be, latents, &s->image_lat, &s->noise, t0));
  }

  /* prepare_mask_latents: the mask at the latents' size, the masked picture encoded */
  sdr_pixels_resize_nearest(masks, Mm, 1, height, width, (int)lh, (int)lw, mask_small);
  if (B % Mm != 0) {
    sdr_fail("The passed mask and the required batch size don't match. Masks are supposed to be "
             "duplicated to a total batch size of %lld, but %d masks were passed. Make sure the "
             "number of masks that you pass is divisible by the total requested batch size.",
             (long long)B, Mm);
    goto fail;
  }
  const int64_t *ml = g->masked_image_latents_shape;
  if (g->masked_image_latents) { /* given: taken as they are, nothing encoded nor drawn */
    if (ml[2] != lh || ml[3] != lw) {
      sdr_fail("masked_image_latents: %lldx%lld latents for a run of %dx%d (latents %lldx%lld)",
               (long long)ml[3], (long long)ml[2], width, height, (long long)lw, (long long)lh);
      goto fail;
    }
    if (B % ml[0] != 0) {
      sdr_fail("The passed images and the required batch size don't match. Images are supposed "
               "to be duplicated to a total batch size of %lld, but %lld images were passed. "
               "Make sure the number of images that you pass is divisible by the total requested "
               "batch size.",
               (long long)B, (long long)ml[0]);
      goto fail;
    }
    TRY(batch_tensor(p, &s->masked, g->masked_image_latents, (int)ml[0], B, G, L, lh, lw));
  } else if (!lat) { /* latents given have no masked picture (a 4-channel UNet needs none) */
    TRY(sdr_img2img_encode(p, g, masked, Mx, height, width, z));
    if (B % Mx != 0) {
      sdr_fail("The passed images and the required batch size don't match. Images are supposed "
               "to be duplicated to a total batch size of %lld, but %d images were passed. Make "
               "sure the number of images that you pass is divisible by the total requested "
               "batch size.",
               (long long)B, Mx);
      goto fail;
    }
    TRY(batch_tensor(p, &s->masked, z, Mx, B, G, L, lh, lw));
  }
  TRY(batch_tensor(p, &s->mask, mask_small, Mm, B, G, 1, lh, lw));
  if (s->unet9) {
    TRY(sdr_arena_tensor(a, &s->unet_in, SDR_F32, 4, (int64_t[]){G * B, 2 * L + 1, lh, lw}));
  } else {
    /* the mask over every latent channel, and its complement, for the blend */
    float *m4 = z; /* Mx * one floats: Mm <= Mx rows fit */
    for (int i = 0; i < Mm; i++)
      for (int c = 0; c < L; c++)
        memcpy(m4 + (size_t)i * one + (size_t)c * lh * lw, mask_small + (size_t)i * lh * lw,
               (size_t)(lh * lw) * sizeof *m4);
    TRY(batch_tensor(p, &s->mask_l, m4, Mm, B, 1, L, lh, lw));
    for (size_t k = 0; k < (size_t)Mm * one; k++)
      m4[k] = 1.0f - m4[k];
    TRY(batch_tensor(p, &s->keep_l, m4, Mm, B, 1, L, lh, lw));
    TRY(sdr_arena_tensor(a, &s->scratch, SDR_F32, 4, latents->shape));
  }
  rc = 0;
fail:
  free(pixels);
  free(masked);
  free(z);
  free(mask_small);
  free(masks);
  return rc;
}

int sdr_inpaint_unet_input(sdr_pipeline *p, sdr_inpaint *s, const sdr_tensor *scaled) {
  const int64_t N = scaled->shape[0], L = scaled->shape[1], h = scaled->shape[2],
                w = scaled->shape[3];
  sdr_arena_mark mark = sdr_arena_get_mark(&p->arena);
  sdr_tensor first;
  int rc = sdr_arena_tensor(&p->arena, &first, SDR_F32, 4, (int64_t[]){N, L + 1, h, w});
  if (rc == 0)
    rc = sdr_concat(p->be, &first, scaled, &s->mask, 1);
  if (rc == 0)
    rc = sdr_concat(p->be, &s->unet_in, &first, &s->masked, 1);
  sdr_arena_release(&p->arena, mark);
  return rc;
}

int sdr_inpaint_blend(sdr_pipeline *p, sdr_inpaint *s, sdr_tensor *latents, int has_next,
                      double t_next) {
  sdr_backend *be = p->be;
  /* (1 - mask) * init_latents_proper + mask * latents; with a mask of 0 and 1, each value
   * is exactly one of the two, as torch's */
  if (has_next)
    TRY(sdr_scheduler_add_noise(p->scheduler, be, &s->scratch, &s->image_lat, &s->noise, t_next));
  else
    TRY(sdr_affine(be, &s->scratch, &s->image_lat, 1.0f, 0.0f));
  TRY(sdr_binary(be, &s->scratch, &s->scratch, &s->keep_l, SDR_BINARY_MUL));
  TRY(sdr_binary(be, latents, latents, &s->mask_l, SDR_BINARY_MUL));
  TRY(sdr_binary(be, latents, latents, &s->scratch, SDR_BINARY_ADD));
  return 0;
fail:
  return -1;
}

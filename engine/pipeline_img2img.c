/* engine/pipeline_img2img.c — img2img's starting latents (StableDiffusionImg2ImgPipeline's
 * prepare_latents, with VaeImageProcessor.preprocess before it).
 *
 * The pictures come as one image, a list of images (each resized with Lanczos to the
 * first's size, floored to the VAE's factor), or a tensor: pixels in [0, 1] resized
 * as F.interpolate's nearest mode does, or 4-channel latents used as they are. An RGBA
 * picture keeps its 4 channels in diffusers' preprocess, and img2img then takes them
 * as latents too (normalized, not encoded): so does this one. Each
 * picture is encoded and its posterior sampled: with one generator, one draw for all
 * of them after encoding; with a list, picture i with generator i (diffusers encodes
 * image[i:i+1] for every i of the batch, so pictures beyond the batch are dropped and
 * generators beyond the pictures draw nothing there). The encoded batch is then
 * repeated whole to the run's batch (torch.cat([init_latents] * k), so with several
 * pictures and several images per prompt the pictures alternate, as in diffusers),
 * and noised to the first timestep with one draw of noise for all.
 */
#include "engine/pipeline_img2img.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"            // sdr_fail
#include "engine/generator_device.h" // sdr_generator_fill_batch
#include "engine/image_processor.h"  // sdr_image_to_pixels, sdr_pixels_preprocess
#include "engine/vae_tiling.h"       // sdr_vae_encode_tiled

int sdr_img2img_wanted(const sdr_generate *g) { return g->image || g->images || g->image_tensor; }

static int given_latents(const sdr_generate *g) {
  return g->image_tensor && g->image_tensor_shape[1] == 4;
}

const sdr_image *const *sdr_img2img_pictures(const sdr_generate *g, int *n) {
  *n = g->images ? g->nimages : 1;
  return g->images ? g->images : &g->image;
}

int sdr_img2img_rgba(const sdr_generate *g) {
  int n;
  const sdr_image *const *list = sdr_img2img_pictures(g, &n);
  return !g->image_tensor && !g->image_convert_rgb && n > 0 && list[0] && list[0]->channels == 4;
}

/* RGBA pictures, as preprocess makes them: each resized to (w, h) as PIL resizes RGBA
 * (premultiplied by alpha), its four channels normalized to [-1, 1]; (n, 4, h, w),
 * host, malloc'd. prepare_latents then takes these values as latents. */
static float *rgba_latents(const sdr_generate *g, int h, int w, int *n_out) {
  int n;
  const sdr_image *const *list = sdr_img2img_pictures(g, &n);
  const size_t plane = (size_t)h * w;
  float *out = malloc((size_t)n * 4 * plane * sizeof *out);
  if (!out) {
    sdr_fail("out of memory");
    return NULL;
  }
  for (int i = 0; i < n; i++) {
    if (list[i]->channels != 4) { /* diffusers cannot stack them either */
      sdr_fail("image: entry 1 is RGBA and entry %d has %d channels; convert them to one mode "
               "(Image:convert(\"RGB\") for img2img of the pictures)",
               i + 1, list[i]->channels);
      free(out);
      return NULL;
    }
    sdr_image *sized = NULL;
    const sdr_image *src = list[i];
    if (src->width != w || src->height != h) {
      sized = sdr_image_resize(src, w, h, SDR_RESAMPLE_LANCZOS);
      if (!sized) {
        free(out);
        return NULL;
      }
      src = sized;
    }
    float *o = out + (size_t)i * 4 * plane;
    for (int c = 0; c < 4; c++)
      for (size_t k = 0; k < plane; k++)
        o[c * plane + k] = 2.0f * ((float)src->pixels[k * 4 + c] / 255.0f) - 1.0f;
    sdr_image_free(sized);
  }
  *n_out = n;
  return out;
}

int sdr_img2img_given_size(const sdr_generate *g, int *height, int *width) {
  if (g->image_tensor) {
    *height = (int)g->image_tensor_shape[2];
    *width = (int)g->image_tensor_shape[3];
    return 0;
  }
  int n;
  const sdr_image *const *list = sdr_img2img_pictures(g, &n);
  if (n < 1 || !list[0])
    return sdr_fail("image: no picture given");
  *height = list[0]->height;
  *width = list[0]->width;
  return 0;
}

int sdr_img2img_size(const sdr_pipeline *p, const sdr_generate *g, int *height, int *width) {
  const int f = sdr_vae_scale_factor(&p->vae);
  int h = 0, w = 0;
  if (g->image_tensor) {
    const int64_t *s = g->image_tensor_shape;
    if (s[0] < 1 || (s[1] != 3 && s[1] != 4) || s[2] < 1 || s[3] < 1 || s[2] > 65536 ||
        s[3] > 65536)
      return sdr_fail("image: a tensor of pictures (batch, 3, height, width) or of latents "
                      "(batch, 4, height / %d, width / %d) expected, got (%lld, %lld, %lld, %lld)",
                      f, f, (long long)s[0], (long long)s[1], (long long)s[2], (long long)s[3]);
    if (s[1] == 4) {
      if (p->vae.cfg.latent_channels != 4)
        return sdr_fail("image: latents with 4 channels given, the VAE makes %d",
                        p->vae.cfg.latent_channels);
      *height = (int)s[2] * f;
      *width = (int)s[3] * f;
      return 0;
    }
  }
  if (sdr_img2img_given_size(g, &h, &w) != 0)
    return -1;
  if (h < f || w < f)
    return sdr_fail("the image is %dx%d; it must be at least %dx%d", w, h, f, f);
  *height = h - h % f;
  *width = w - w % f;
  if (sdr_img2img_rgba(g)) { /* the picture's values are the latents: f times its size out */
    if (p->vae.cfg.latent_channels != 4)
      return sdr_fail("image: an RGBA picture is taken as latents with 4 channels, the VAE "
                      "makes %d; Image:convert(\"RGB\") it",
                      p->vae.cfg.latent_channels);
    if (*height > 65536 / f || *width > 65536 / f)
      return sdr_fail("image: an RGBA picture is taken as latents, and %dx%d latents make a "
                      "picture too large",
                      *width, *height);
    *height *= f;
    *width *= f;
  }
  return 0;
}

/* The pictures as pixels (M, 3, height, width) in [-1, 1], host, malloc'd. */
static float *pixels_of(const sdr_generate *g, int height, int width, int *M) {
  const size_t per = (size_t)3 * height * width;
  if (g->image_tensor) {
    const int64_t *s = g->image_tensor_shape;
    float *out = malloc((size_t)s[0] * per * sizeof *out);
    if (!out) {
      sdr_fail("out of memory");
      return NULL;
    }
    sdr_pixels_preprocess(g->image_tensor, (int)s[0], 3, (int)s[2], (int)s[3], height, width, out);
    *M = (int)s[0];
    return out;
  }
  int n;
  const sdr_image *const *list = sdr_img2img_pictures(g, &n);
  float *out = malloc((size_t)n * per * sizeof *out);
  if (!out) {
    sdr_fail("out of memory");
    return NULL;
  }
  for (int i = 0; i < n; i++)
    if (sdr_image_to_pixels(list[i], width, height, out + (size_t)i * per) != 0) {
      free(out);
      return NULL;
    }
  *M = n;
  return out;
}

/* vae.encode of K pictures (K, 3, height, width) host: the posteriors' moments (K, 2L, h, w)
 * host, mean then log-variance; an AutoencoderTiny's latents (K, L, h, w). */
static int encode_moments(sdr_pipeline *p, const float *pixels, int K, int height, int width,
                          float *moments_host) {
  sdr_arena *a = &p->arena;
  const int f = sdr_vae_scale_factor(&p->vae), E = sdr_vae_encoded_channels(&p->vae);
  const int64_t lh = height / f, lw = width / f;
  const size_t per = (size_t)3 * height * width, one = (size_t)E * lh * lw;
  int rc = 0;
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  for (int i = 0; i < K && rc == 0; i++) {
    sdr_tensor x, moments;
    rc = sdr_arena_tensor(a, &x, SDR_F32, 4, (int64_t[]){1, 3, height, width});
    if (rc == 0)
      rc = sdr_upload(p->be, x.data, pixels + (size_t)i * per, per * sizeof(float));
    if (rc == 0)
      rc = sdr_arena_tensor(a, &moments, SDR_F32, 4, (int64_t[]){1, E, lh, lw});
    /* vae.encode: tiled (when larger than a tile) after pipe.enable_vae_tiling() */
    if (rc == 0)
      rc = (p->vae_tiling ? sdr_vae_encode_tiled : sdr_vae_encode)(&p->vae, a, &moments, &x);
    if (rc == 0)
      rc = sdr_download(p->be, moments_host + (size_t)i * one, moments.data, one * sizeof(float));
    sdr_arena_release(a, mark);
  }
  return rc;
}

int sdr_img2img_encode(sdr_pipeline *p, const sdr_generate *g, const float *pixels, int K,
                       int height, int width, float *z) {
  sdr_arena *a = &p->arena;
  const sdr_vae_config *vc = &p->vae.cfg;
  const int f = sdr_vae_scale_factor(&p->vae), L = vc->latent_channels;
  const int64_t lh = height / f, lw = width / f, plane = lh * lw;
  const size_t one = (size_t)L * plane;
  if (vc->tiny) { /* retrieve_latents takes AutoencoderTinyOutput.latents: no draw */
    if (encode_moments(p, pixels, K, height, width, z) != 0)
      return -1;
    for (size_t k = 0; k < (size_t)K * one; k++)
      z[k] *= vc->scaling_factor;
    return 0;
  }
  float *moments_host = malloc((size_t)K * 2 * one * sizeof *moments_host);
  if (!moments_host)
    return sdr_fail("out of memory");
  int rc = encode_moments(p, pixels, K, height, width, moments_host);
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  /* latent_dist.sample(generator): one draw of the encoded batch, or one per picture
   * from its own generator */
  sdr_tensor eps;
  if (rc == 0)
    rc = sdr_arena_tensor(a, &eps, SDR_F32, 4, (int64_t[]){K, L, lh, lw});
  for (int i = 0; rc == 0 && i < (g->ngenerators > 1 ? K : 1); i++) {
    sdr_tensor part;
    rc = sdr_tensor_narrow0(&part, &eps, g->ngenerators > 1 ? i : 0, g->ngenerators > 1 ? 1 : K);
    if (rc == 0)
      rc = sdr_generator_fill_batch(g->generators + i, 1, p->be, a, &part, p->dtype);
  }
  if (rc == 0)
    rc = sdr_download(p->be, z, eps.data, (size_t)K * one * sizeof(float));
  sdr_arena_release(a, mark);
  for (int i = 0; rc == 0 && i < K; i++) {
    const float *mean = moments_host + (size_t)i * 2 * one, *logvar = mean + one;
    float *zi = z + (size_t)i * one;
    for (size_t k = 0; k < one; k++) {
      float lv = logvar[k] < -30 ? -30 : logvar[k] > 20 ? 20 : logvar[k];
      zi[k] = vc->scaling_factor * (mean[k] + expf(0.5f * lv) * zi[k]);
    }
  }
  free(moments_host);
  return rc;
}

int sdr_img2img_upload_repeated(sdr_pipeline *p, sdr_tensor *t, const float *rows, int n, int64_t B,
                                size_t one) {
  float *rep = malloc((size_t)B * one * sizeof *rep);
  if (!rep)
    return sdr_fail("out of memory");
  for (int64_t b = 0; b < B; b++)
    memcpy(rep + (size_t)b * one, rows + (size_t)(b % n) * one, one * sizeof *rep);
  int rc = sdr_upload(p->be, t->data, rep, (size_t)B * one * sizeof *rep);
  free(rep);
  return rc;
}

float *sdr_img2img_starts(sdr_pipeline *p, const sdr_generate *g, int64_t B, int64_t lh, int64_t lw,
                          int mode, int *K_out) {
  const int f = sdr_vae_scale_factor(&p->vae), L = p->vae.cfg.latent_channels;
  const size_t one = (size_t)L * lh * lw;
  const int height = (int)lh * f, width = (int)lw * f;
  float *z = NULL, *pixels = NULL;
  int K;
  if (given_latents(g)) {
    K = (int)g->image_tensor_shape[0];
    z = malloc((size_t)K * one * sizeof *z);
    if (!z) {
      sdr_fail("out of memory");
      return NULL;
    }
    memcpy(z, g->image_tensor, (size_t)K * one * sizeof *z);
  } else if (sdr_img2img_rgba(g)) {
    if (!(z = rgba_latents(g, (int)lh, (int)lw, &K)))
      return NULL;
  } else {
    int M;
    pixels = pixels_of(g, height, width, &M);
    if (!pixels)
      return NULL;
    /* with a list of generators, image[i:i+1] for i in range(batch) (sampling only) */
    K = !mode && g->ngenerators > 1 && M > B ? (int)B : M;
    const int per = sdr_vae_encoded_channels(&p->vae) / L; /* 2 moments, or 1 latent */
    z = malloc((size_t)K * (mode ? per : 1) * one * sizeof *z);
    if (!z) {
      sdr_fail("out of memory");
      goto fail;
    }
    if (mode) { /* latent_dist.mode(): the means, as they are (a tiny VAE's latents) */
      if (encode_moments(p, pixels, K, height, width, z) != 0)
        goto fail;
      for (int i = 1; i < K; i++)
        memmove(z + (size_t)i * one, z + (size_t)i * per * one, one * sizeof *z);
    } else if (sdr_img2img_encode(p, g, pixels, K, height, width, z) != 0) {
      goto fail;
    }
    free(pixels);
    pixels = NULL;
  }
  if (B < K) {
    sdr_fail("image: %d pictures for a batch of %lld (prompts times num_images_per_prompt)", K,
             (long long)B);
    goto fail;
  }
  if (B % K != 0) {
    sdr_fail("Cannot duplicate `image` of batch size %d to %lld text prompts.", K, (long long)B);
    goto fail;
  }
  *K_out = K;
  return z;
fail:
  free(z);
  free(pixels);
  return NULL;
}

int sdr_img2img_latents(sdr_pipeline *p, const sdr_generate *g, sdr_tensor *latents, double t0) {
  const int L = p->vae.cfg.latent_channels;
  const int64_t B = latents->shape[0], lh = latents->shape[2], lw = latents->shape[3];
  const size_t one = (size_t)L * lh * lw;
  int K, rc = -1;
  float *z = sdr_img2img_starts(p, g, B, lh, lw, 0, &K);
  if (!z)
    return -1;
  if (sdr_img2img_upload_repeated(p, latents, z, K, B, one) != 0)
    goto done;
  if (g->has_denoising_start) { /* SDXL img2img's add_noise=False: a base run's latents go on */
    rc = 0;
    goto done;
  }
  sdr_arena_mark mark = sdr_arena_get_mark(&p->arena);
  sdr_tensor noise;
  rc = sdr_arena_tensor(&p->arena, &noise, SDR_F32, 4, latents->shape);
  if (rc == 0)
    rc =
        sdr_generator_fill_batch(g->generators, g->ngenerators, p->be, &p->arena, &noise, p->dtype);
  if (rc == 0)
    rc = sdr_scheduler_add_noise(p->scheduler, p->be, latents, latents, &noise, t0);
  sdr_arena_release(&p->arena, mark);
done:
  free(z);
  return rc;
}

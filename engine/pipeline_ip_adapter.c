/* engine/pipeline_ip_adapter.c — IP-Adapters in a pipeline (see pipeline_ip_adapter.h). */
#include "engine/pipeline_ip_adapter.h"

#include <stdlib.h>
#include <string.h>

#include "engine/error.h" // sdr_fail

#define TRY(x)                                                                                     \
  do {                                                                                             \
    if ((x) != 0)                                                                                  \
      goto fail;                                                                                   \
  } while (0)

void sdr_pipeline_ip_free(sdr_clip_vision_projection *enc, sdr_ip_adapter **ads, int n) {
  if (enc) {
    sdr_clip_vision_projection_free(enc);
    free(enc);
  }
  for (int k = 0; k < n; k++)
    if (ads[k]) {
      sdr_ip_adapter_free(ads[k]);
      free(ads[k]);
      ads[k] = NULL;
    }
}

int sdr_pipeline_load_ip_adapter(sdr_pipeline *p, const char *const *paths, int n,
                                 const char *encoder_dir) {
  if (n < 1 || n > SDR_IP_MAX)
    return sdr_fail("load_ip_adapter: %d weight files (1 to %d adapters at once)", n, SDR_IP_MAX);
  /* the pipeline's dtype, as diffusers moves what it loads to self.dtype */
  const int keep = (int)p->dtype;
  sdr_ip_adapter *ads[SDR_IP_MAX] = {0};
  sdr_clip_vision_projection *enc = NULL;
  sdr_clip_image_processor *fe = NULL;
  for (int k = 0; k < n; k++) {
    if (!(ads[k] = malloc(sizeof *ads[k]))) {
      sdr_fail("out of memory");
      goto fail;
    }
    if (sdr_ip_adapter_load(ads[k], p->be, paths[k], &p->unet, keep) != 0) {
      free(ads[k]);
      ads[k] = NULL;
      goto fail;
    }
  }
  if (!p->image_encoder && encoder_dir) {
    if (!(enc = malloc(sizeof *enc))) {
      sdr_fail("out of memory");
      goto fail;
    }
    if (sdr_clip_vision_projection_load(enc, p->be, encoder_dir, keep) != 0) {
      free(enc);
      enc = NULL;
      goto fail;
    }
  }
  if (!p->feature_extractor) {
    if (!(fe = malloc(sizeof *fe))) {
      sdr_fail("out of memory");
      goto fail;
    }
    sdr_clip_image_processor_default(fe);
  }
  const float ones[SDR_IP_MAX] = {1, 1, 1, 1};
  TRY(sdr_ip_adapters_attach(&p->unet, ads, n, ones));
  sdr_pipeline_ip_free(NULL, p->ip_adapters, p->nip_adapters);
  memcpy(p->ip_adapters, ads, sizeof ads);
  p->nip_adapters = n;
  memcpy(p->ip_scale, ones, sizeof ones);
  if (enc)
    p->image_encoder = enc;
  if (fe)
    p->feature_extractor = fe;
  return 0;
fail:
  sdr_pipeline_ip_free(enc, ads, n);
  free(fe);
  return -1;
}

void sdr_pipeline_unload_ip_adapter(sdr_pipeline *p) {
  sdr_ip_adapters_detach(&p->unet);
  sdr_pipeline_ip_free(p->image_encoder, p->ip_adapters, p->nip_adapters);
  p->image_encoder = NULL;
  p->nip_adapters = 0;
}

int sdr_pipeline_set_ip_adapter_scale(sdr_pipeline *p, const float *scale, int n) {
  if (p->nip_adapters == 0) /* diffusers finds no IP-Adapter processor to set */
    return 0;
  if (n != 1 && n != p->nip_adapters)
    return sdr_fail("`scale` should be a list of same length as the number if ip-adapters "
                    "Expected %d but got %d.",
                    p->nip_adapters, n);
  for (int k = 0; k < p->nip_adapters; k++)
    p->ip_scale[k] = scale[n == 1 ? 0 : k];
  sdr_ip_adapters_set_scale(&p->unet, p->ip_scale, p->nip_adapters);
  return 0;
}

int sdr_pipeline_ip_copy_to(const sdr_pipeline *p, sdr_backend *be, sdr_unet *u, int keep_dtype,
                            sdr_clip_vision_projection **enc, sdr_ip_adapter **ads) {
  *enc = NULL;
  memset(ads, 0, SDR_IP_MAX * sizeof *ads);
  if (p->image_encoder) {
    if (!(*enc = malloc(sizeof **enc)))
      return sdr_fail("out of memory");
    if (sdr_clip_vision_projection_copy_to(*enc, p->image_encoder, be, keep_dtype) != 0) {
      free(*enc);
      *enc = NULL;
      return -1;
    }
  }
  for (int k = 0; k < p->nip_adapters; k++) {
    if (!(ads[k] = malloc(sizeof *ads[k]))) {
      sdr_fail("out of memory");
      goto fail;
    }
    if (sdr_ip_adapter_copy_to(ads[k], p->ip_adapters[k], be, u, keep_dtype) != 0) {
      free(ads[k]);
      ads[k] = NULL;
      goto fail;
    }
  }
  return 0;
fail:
  sdr_pipeline_ip_free(*enc, ads, p->nip_adapters);
  *enc = NULL;
  return -1;
}

/* ---- a run's embeddings ------------------------------------------------------------ */

/* encode_image for one adapter's pictures: the positive and, when guided, the negative
 * embeddings, X floats per picture each (*pos malloc'd, *neg after it). */
static int encode_image(sdr_pipeline *p, const sdr_ip_input *in, int hidden, int guided,
                        float **pos, float **neg, int64_t *X, int64_t *T) {
  *pos = NULL;
  if (!p->image_encoder)
    return sdr_fail("ip_adapter_image: the pipeline has no image_encoder (load_ip_adapter "
                    "without image_encoder_folder); give ip_adapter_image_embeds instead");
  float *pixels = NULL;
  int h, w;
  int64_t n = in->nimages;
  if (in->pixels) { /* a tensor is pixel_values as it is */
    n = in->pixels_shape[0];
    h = (int)in->pixels_shape[2];
    w = (int)in->pixels_shape[3];
    const size_t bytes = (size_t)(n * 3 * h * w) * sizeof *pixels;
    if (in->pixels_shape[1] != 3)
      return sdr_fail("ip_adapter_image: a tensor of pixel values (images, 3, height, width) "
                      "expected");
    if (!(pixels = malloc(bytes ? bytes : 1)))
      return sdr_fail("out of memory");
    memcpy(pixels, in->pixels, bytes);
  } else if (sdr_clip_image_processor_run(p->feature_extractor, in->images, in->nimages, &pixels,
                                          &h, &w) != 0) {
    return -1;
  }
  const int back = hidden ? 2 : 0; /* hidden_states[-2] */
  int rc = -1;
  if (h != w) {
    sdr_fail("ip_adapter_image: the feature extractor makes %dx%d pictures; the image encoder "
             "takes squares",
             h, w);
    goto done;
  }
  const sdr_clip_vision_config *c = &p->image_encoder->vision.cfg;
  *X = sdr_clip_vision_projection_size(p->image_encoder, back);
  *T = hidden ? (int64_t)(h / c->patch_size) * (w / c->patch_size) + 1 : 1;
  if (!(*pos = calloc((size_t)(2 * n * *X), sizeof **pos))) {
    sdr_fail("out of memory");
    goto done;
  }
  *neg = *pos + n * *X;
  sdr_arena_mark mark = sdr_arena_get_mark(&p->arena);
  rc = sdr_clip_vision_projection_run(p->image_encoder, &p->arena, *pos, pixels, n, h, back);
  /* the negative: zeros for image_embeds, the encoder on zeros_like(pixels) for hidden
   * states */
  if (rc == 0 && guided && hidden) {
    memset(pixels, 0, (size_t)(n * 3 * h * w) * sizeof *pixels);
    rc = sdr_clip_vision_projection_run(p->image_encoder, &p->arena, *neg, pixels, n, h, back);
  }
  sdr_arena_release(&p->arena, mark);
done:
  free(pixels);
  if (rc != 0) {
    free(*pos);
    *pos = NULL;
  }
  return rc;
}

/* Given embeddings: each half (the negative, the positive) repeated reps times as torch's
 * repeat does (rows e0..e(h-1), then again). A run repeats them once per image of its batch,
 * so there each half must be one row (exact). */
static int given_embeds(const sdr_ip_input *in, int k, int hidden, int guided, int reps, int exact,
                        float **out, int64_t shape[4]) {
  if (in->ndim != 3 && in->ndim != 4)
    return sdr_fail("`ip_adapter_image_embeds` has to be a list of 3D or 4D tensors but is %dD",
                    in->ndim);
  if (in->ndim != (hidden ? 4 : 3))
    return sdr_fail("ip_adapter_image_embeds[%d]: this IP-Adapter takes %s, (batch, images, "
                    "%s) with the negatives first when guided",
                    k + 1, hidden ? "hidden states" : "image embeddings",
                    hidden ? "tokens, width" : "width");
  const int64_t b = in->shape[0], half = guided ? b / 2 : b;
  if (half < 1 || (guided && b % 2))
    return sdr_fail("ip_adapter_image_embeds[%d]: %lld rows%s", k + 1, (long long)b,
                    guided ? "; with guidance the negatives come first, as many as the positives"
                           : "");
  if (exact && half != 1)
    return sdr_fail("ip_adapter_image_embeds[%d]: %lld rows %s; each is repeated for every "
                    "image of the batch, so one is expected (prepare_ip_adapter_image_embeds "
                    "with num_images_per_prompt 1 makes that)",
                    k + 1, (long long)half, guided ? "a half" : "given");
  int64_t per = 1;
  for (int d = 1; d < in->ndim; d++)
    per *= in->shape[d];
  const int64_t each = half * reps, rows = (guided ? 2 : 1) * each;
  float *o = malloc((size_t)(rows * per) * sizeof *o);
  if (!o)
    return sdr_fail("out of memory");
  for (int64_t r = 0; r < rows; r++) {
    const int64_t src = (r / each) * half + (r % each) % half;
    memcpy(o + r * per, in->embeds + src * per, (size_t)per * sizeof *o);
  }
  *out = o;
  shape[0] = rows;
  for (int d = 1; d < in->ndim; d++)
    shape[d] = in->shape[d];
  return 0;
}

static int check_inputs(const sdr_pipeline *p, const sdr_generate *g) {
  if (g->nip_inputs && !p->nip_adapters)
    return sdr_fail("ip_adapter_image: no IP-Adapter is loaded (pipe:load_ip_adapter first)");
  if (p->nip_adapters && !g->nip_inputs)
    return sdr_fail("this pipeline has %s loaded: give ip_adapter_image or "
                    "ip_adapter_image_embeds (or pipe:unload_ip_adapter())",
                    p->nip_adapters == 1 ? "an IP-Adapter" : "IP-Adapters");
  if (g->nip_inputs != p->nip_adapters)
    return sdr_fail("`ip_adapter_image` must have same length as the number of IP Adapters. Got "
                    "%d images and %d IP Adapters.",
                    g->nip_inputs, p->nip_adapters);
  return 0;
}

int sdr_ip_image_embeds(sdr_pipeline *p, const sdr_generate *g, int guided, int B, int exact,
                        float **embeds, int *ndim, int64_t shapes[][4]) {
  if (check_inputs(p, g) != 0)
    return -1;
  int k = 0;
  for (; k < g->nip_inputs; k++) {
    const sdr_ip_input *in = &g->ip_inputs[k];
    const int hidden = sdr_ip_adapter_wants_hidden(p->ip_adapters[k]);
    embeds[k] = NULL;
    if (!in->images && !in->pixels) {
      TRY(given_embeds(in, k, hidden, guided, B, exact, &embeds[k], shapes[k]));
      ndim[k] = in->ndim;
      continue;
    }
    /* one encoding of the pictures, repeated for every row of the batch */
    float *pos, *neg = NULL;
    int64_t X = 0, T = 1;
    TRY(encode_image(p, in, hidden, guided, &pos, &neg, &X, &T));
    const int64_t n = in->pixels ? in->pixels_shape[0] : in->nimages;
    const int64_t rows = (guided ? 2 : 1) * (int64_t)B, per = n * X;
    float *o = malloc((size_t)(rows * per) * sizeof *o);
    if (!o) {
      free(pos);
      sdr_fail("out of memory");
      goto fail;
    }
    for (int64_t r = 0; r < rows; r++)
      memcpy(o + r * per, guided && r < B ? neg : pos, (size_t)per * sizeof *o);
    free(pos);
    embeds[k] = o;
    ndim[k] = hidden ? 4 : 3;
    const int64_t D = hidden ? X / T : X;
    memcpy(shapes[k], hidden ? (int64_t[]){rows, n, T, D} : (int64_t[]){rows, n, D, 0},
           sizeof shapes[k]);
  }
  return 0;
fail:
  for (int i = 0; i <= k && i < g->nip_inputs; i++) {
    free(embeds[i]);
    embeds[i] = NULL;
  }
  return -1;
}

int sdr_ip_tokens(sdr_ip_adapter *ad, sdr_arena *a, const float *embeds, int ndim,
                  const int64_t *shape, sdr_tensor *tokens) {
  if (ndim != (sdr_ip_adapter_wants_hidden(ad) ? 4 : 3))
    return sdr_fail("image_embeds: this IP-Adapter takes %s", sdr_ip_adapter_wants_hidden(ad)
                                                                  ? "(batch, images, tokens, width)"
                                                                  : "(batch, images, width)");
  const int64_t rows = shape[0], n = shape[1];
  const int64_t T = ndim == 4 ? shape[2] : 1, E = shape[ndim - 1];
  const int64_t tok = sdr_ip_adapter_tokens(ad, T);
  sdr_tensor out, in;
  /* MultiIPAdapterImageProjection: (rows * n, ...) through the projection, then each row's n
   * pictures' tokens side by side */
  if (sdr_arena_tensor(a, &out, ad->act, 3, (int64_t[]){rows * n, tok, ad->cross_dim}) != 0)
    return -1;
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  int rc = sdr_arena_tensor(a, &in, SDR_F32, ndim - 1,
                            ndim == 4 ? (int64_t[]){rows * n, T, E} : (int64_t[]){rows * n, E});
  if (rc == 0)
    rc = sdr_upload(ad->be, in.data, embeds, sdr_tensor_nbytes(&in));
  if (rc == 0)
    rc = sdr_ip_adapter_project(ad, a, &out, &in);
  sdr_arena_release(a, mark);
  if (rc == 0)
    rc = sdr_tensor_reshape(tokens, &out, 3, (int64_t[]){rows, n * tok, ad->cross_dim});
  return rc;
}

int sdr_ip_prepare(sdr_pipeline *p, const sdr_generate *g, int guided, int B, sdr_tensor *tokens) {
  float *embeds[SDR_IP_MAX] = {0};
  int ndim[SDR_IP_MAX];
  int64_t shapes[SDR_IP_MAX][4];
  if (sdr_ip_image_embeds(p, g, guided, B, 1, embeds, ndim, shapes) != 0)
    return -1;
  int rc = 0;
  for (int k = 0; rc == 0 && k < g->nip_inputs; k++)
    rc = sdr_ip_tokens(p->ip_adapters[k], &p->arena, embeds[k], ndim[k], shapes[k], &tokens[k]);
  for (int k = 0; k < g->nip_inputs; k++)
    free(embeds[k]);
  return rc;
}

/* engine/pipeline_adapter.c — T2I-Adapters in a run (see pipeline_adapter.h). */
#include "engine/pipeline_adapter.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h" // sdr_fail

#define TRY(x)                                                                                     \
  do {                                                                                             \
    if ((x) != 0)                                                                                  \
      goto fail;                                                                                   \
  } while (0)

int sdr_adapter_size(const sdr_pipeline *p, const sdr_generate *g, int *height, int *width) {
  (void)p;
  const sdr_adapter_input *first = &g->adapters[0];
  for (int k = 0; k < g->nadapters; k++)
    if (!g->adapters[k].adapter)
      return sdr_fail("adapter %d: no T2IAdapter", k + 1);
  const int f = first->adapter->cfg.downscale_factor;
  const int total = sdr_t2i_adapter_total_downscale(first->adapter);
  for (int k = 0; k < g->nadapters; k++) {
    const sdr_adapter_input *in = &g->adapters[k];
    if (in->adapter->cfg.downscale_factor != f ||
        sdr_t2i_adapter_total_downscale(in->adapter) != total)
      return sdr_fail("Expecting all adapters to have the same downscaling behavior, but got "
                      "adapters[0].downscale_factor=%d, total_downscale_factor=%d and "
                      "adapter[%d].downscale_factor=%d, total_downscale_factor=%d",
                      f, total, k, in->adapter->cfg.downscale_factor,
                      sdr_t2i_adapter_total_downscale(in->adapter));
    if (!in->tensor && in->nimages < 1)
      return sdr_fail("adapter %d: no picture (image) given", k + 1);
  }
  /* the first picture's size, floored; height and width as given otherwise */
  int h = first->tensor ? (int)first->tensor_shape[2] : first->images[0]->height;
  int w = first->tensor ? (int)first->tensor_shape[3] : first->images[0]->width;
  *height = g->height > 0 ? g->height : h / f * f;
  *width = g->width > 0 ? g->width : w / f * f;
  return 0;
}

/* _preprocess_adapter_image for pictures (a tensor is taken as it is): resized to width x
 * height with Lanczos, each value / 255 as float32, channels first, into *out (malloc'd). */
static int pictures(const sdr_adapter_input *in, int height, int width, float **out,
                    int64_t shape[4]) {
  const int C = in->images[0]->channels;
  for (int i = 1; i < in->nimages; i++)
    if (in->images[i]->channels != C)
      return sdr_fail("adapter pictures: picture %d has %d channels, the first %d (np.concatenate "
                      "needs them alike)",
                      i + 1, in->images[i]->channels, C);
  const int64_t plane = (int64_t)height * width;
  float *v = malloc(sizeof(float) * (size_t)(in->nimages * C * plane));
  if (!v)
    return sdr_fail("out of memory");
  for (int i = 0; i < in->nimages; i++) {
    sdr_image *r = sdr_image_resize(in->images[i], width, height, SDR_RESAMPLE_LANCZOS);
    if (!r) {
      free(v);
      return -1;
    }
    float *dst = v + (int64_t)i * C * plane;
    for (int64_t k = 0; k < plane; k++)
      for (int c = 0; c < C; c++)
        dst[c * plane + k] = (float)r->pixels[k * C + c] / 255.0f;
    sdr_image_free(r);
  }
  shape[0] = in->nimages, shape[1] = C, shape[2] = height, shape[3] = width;
  *out = v;
  return 0;
}

int sdr_adapter_prepare(sdr_pipeline *p, const sdr_generate *g, int guided, int B0, int N,
                        int height, int width, int nsteps, sdr_adapter_run *r) {
  sdr_backend *be = p->be;
  sdr_arena *a = &p->arena;
  memset(r, 0, sizeof *r);
  sdr_tensor sum[SDR_ADAPTER_MAX_FEATURES];
  int64_t b = 0;
  for (int k = 0; k < g->nadapters; k++) {
    const sdr_adapter_input *in = &g->adapters[k];
    sdr_t2i_adapter *ad = in->adapter;
    if (ad->be != be)
      return sdr_fail("adapter %d is on %s, the pipeline on %s", k + 1,
                      sdr_device_name(ad->be->device), sdr_device_name(be->device));
    float *owned = NULL;
    int64_t shape[4];
    memcpy(shape, in->tensor_shape, sizeof shape);
    if (!in->tensor && pictures(in, height, width, &owned, shape) != 0)
      return -1;
    const float *x = in->tensor ? in->tensor : owned;
    if (shape[1] != ad->cfg.in_channels) {
      free(owned);
      return sdr_fail("adapter %d takes pictures of %d channels, the image has %lld%s", k + 1,
                      ad->cfg.in_channels, (long long)shape[1],
                      ad->cfg.in_channels == 1   ? " (a sketch adapter's: image:convert(\"L\"))"
                      : ad->cfg.in_channels == 3 ? " (image:convert(\"RGB\"))"
                                                 : "");
    }
    /* MultiAdapter adds each adapter's features to the first's, in order */
    if (k > 0 && (shape[0] != b || ad->nblocks > r->nfeatures)) {
      free(owned);
      return sdr_fail("adapter %d: %lld pictures and %d features, the first adapter's %lld and "
                      "%d (MultiAdapter adds them to the first's)",
                      k + 1, (long long)shape[0], ad->nblocks, (long long)b, r->nfeatures);
    }
    sdr_tensor f[SDR_ADAPTER_MAX_FEATURES];
    int rc = sdr_t2i_adapter_forward(ad, a, x, shape, f);
    free(owned);
    if (rc != 0)
      return -1;
    /* v * adapter_conditioning_scale; MultiAdapter: w * features, added in order */
    for (int i = 0; i < ad->nblocks; i++) {
      TRY(sdr_affine(be, &f[i], &f[i], in->scale, 0.0f));
      if (k == 0)
        sum[i] = f[i];
      else
        TRY(sdr_binary(be, &sum[i], &sum[i], &f[i], SDR_BINARY_ADD));
    }
    b = shape[0];
    if (k == 0)
      r->nfeatures = ad->nblocks;
  }
  /* repeat(num_images_per_prompt) and torch.cat([v] * 2) when guided: one picture stays
   * batch 1 and is broadcast over the UNet's batch (the same numbers), one per prompt is
   * tiled as diffusers tiles it */
  const int nb = guided ? 2 : 1;
  if (b != 1 && b != B0)
    return sdr_fail("adapter pictures: %lld for %d prompts (one picture, or one per prompt)",
                    (long long)b, B0);
  for (int i = 0; i < r->nfeatures; i++) {
    if (b == 1) {
      r->features[i] = sum[i];
      continue;
    }
    const int64_t *s = sum[i].shape;
    TRY(sdr_arena_tensor(a, &r->features[i], sum[i].dtype, 4,
                         (int64_t[]){b * N * nb, s[1], s[2], s[3]}));
    for (int64_t copy = 0; copy < (int64_t)N * nb; copy++) {
      sdr_tensor rows;
      TRY(sdr_tensor_narrow0(&rows, &r->features[i], copy * b, b));
      TRY(sdr_affine(be, &rows, &sum[i], 1.0f, 0.0f));
    }
  }
  /* the adapter's features go into the steps i < int(nsteps * factor): none for a negative
   * product, all for one past nsteps; NaN is Python's ValueError */
  const double steps = (double)nsteps * g->adapter_conditioning_factor;
  if (isnan(steps)) {
    sdr_fail("adapter_conditioning_factor must be a number, got nan");
    goto fail;
  }
  r->steps = steps >= nsteps ? nsteps : steps <= -1 ? -1 : (int)steps;
  return 0;
fail:
  return -1;
}

/* engine/pipeline_controlnet.c — StableDiffusionControlNetPipeline's additions to a run.
 *
 * Each net's pictures go through its control_image_processor (made RGB, resized with
 * Lanczos to the run's size, kept in [0, 1]; tensors resized as F.interpolate's nearest
 * mode), then are repeated for the batch: one picture B times, one per prompt each
 * num_images_per_prompt times (repeat_interleave), and twice over when the batch is
 * guided and the nets see all of it. In guess mode they see the conditional half only,
 * and their residuals are added to that half. A net whose step is outside its
 * control_guidance_start/end does not run: diffusers runs it with scale 0, which adds
 * nothing to the UNet's skips.
 */
#include "engine/pipeline_controlnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"            // sdr_fail
#include "engine/image_processor.h"  // sdr_image_to_unit_pixels, sdr_pixels_resize_nearest
#include "engine/pipeline_inpaint.h" // sdr_inpaint_wanted

#define TRY(x)                                                                                     \
  do {                                                                                             \
    if ((x) != 0)                                                                                  \
      goto fail;                                                                                   \
  } while (0)

static int picture_count(const sdr_control *c) {
  return c->tensor ? (int)c->tensor_shape[0] : c->nimages;
}

static int check(const sdr_pipeline *p, const sdr_generate *g) {
  if (g->ncontrols < 1 || g->ncontrols > SDR_MAX_CONTROLS)
    return sdr_fail("controlnet: 1 to %d ControlNets expected, got %d", SDR_MAX_CONTROLS,
                    g->ncontrols);
  const sdr_unet_config *u = &p->unet.cfg;
  for (int k = 0; k < g->ncontrols; k++) {
    const sdr_control *c = &g->controls[k];
    const sdr_unet_config *n = &c->net->base.cfg;
    char which[32] = "";
    if (g->ncontrols > 1)
      snprintf(which, sizeof which, " %d", k + 1);
    if (c->net->base.be != p->be)
      return sdr_fail("controlnet%s is on another device than the pipeline", which);
    /* the nets see the latents (an inpainting UNet also takes the mask and masked picture) */
    const int latents = sdr_inpaint_wanted(g) ? p->vae.cfg.latent_channels : u->in_channels;
    if (n->in_channels != latents || n->nblocks != u->nblocks ||
        n->cross_attention_dim[0] != u->cross_attention_dim[0] ||
        memcmp(n->block_out_channels, u->block_out_channels, sizeof n->block_out_channels) ||
        memcmp(n->layers_per_block, u->layers_per_block, sizeof n->layers_per_block))
      return sdr_fail("controlnet%s was made for another UNet (its blocks, channels or text "
                      "width differ from pipe.unet's)",
                      which);
    const int64_t *s = c->tensor_shape;
    if (c->tensor && (s[0] < 1 || s[1] < 1 || s[2] < 1 || s[3] < 1 || s[2] > 65536 || s[3] > 65536))
      return sdr_fail("image%s: a tensor of pictures (batch, channels, height, width) expected",
                      which);
    if (c->tensor && s[1] != c->net->cfg.conditioning_channels)
      return sdr_fail("image%s: the tensor has %lld channels, the ControlNet takes %d", which,
                      (long long)s[1], c->net->cfg.conditioning_channels);
    if (!c->tensor && c->net->cfg.conditioning_channels != 3)
      return sdr_fail("image%s: the ControlNet takes %d channels; give it a tensor", which,
                      c->net->cfg.conditioning_channels);
    const int m = picture_count(c);
    if (m < 1)
      return sdr_fail("image%s: the control picture is missing", which);
    /* check_image: one picture, or one per prompt */
    if (m != 1 && m != g->nprompts)
      return sdr_fail("If image batch size is not 1, image batch size must be same as prompt "
                      "batch size. image batch size: %d, prompt batch size: %d",
                      m, g->nprompts);
    /* check_inputs' control guidance rules, in diffusers' words */
    if (c->start >= c->end)
      return sdr_fail("control guidance start: %g cannot be larger or equal to control guidance "
                      "end: %g.",
                      c->start, c->end);
    if (c->start < 0.0)
      return sdr_fail("control guidance start: %g can't be smaller than 0.", c->start);
    if (c->end > 1.0)
      return sdr_fail("control guidance end: %g can't be larger than 1.0.", c->end);
  }
  return 0;
}

int sdr_control_size(const sdr_pipeline *p, const sdr_generate *g, int *height, int *width) {
  if (check(p, g) != 0)
    return -1;
  const sdr_control *c = &g->controls[0];
  const int f = sdr_vae_scale_factor(&p->vae);
  /* get_default_height_width: the first picture's size, floored to the factor */
  int h = c->tensor ? (int)c->tensor_shape[2] : c->images[0]->height;
  int w = c->tensor ? (int)c->tensor_shape[3] : c->images[0]->width;
  if (*height <= 0)
    *height = h - h % f;
  if (*width <= 0)
    *width = w - w % f;
  return 0;
}

/* The pictures as (M, C, height, width) in [0, 1], host, malloc'd. */
static float *pixels_of(const sdr_control *c, int height, int width) {
  const int m = picture_count(c);
  const int64_t C = c->tensor ? c->tensor_shape[1] : 3;
  const size_t per = (size_t)C * height * width;
  float *out = malloc((size_t)m * per * sizeof *out);
  if (!out) {
    sdr_fail("out of memory");
    return NULL;
  }
  if (c->tensor) {
    const int64_t *s = c->tensor_shape;
    sdr_pixels_resize_nearest(c->tensor, m, (int)C, (int)s[2], (int)s[3], height, width, out);
    return out;
  }
  for (int i = 0; i < m; i++)
    if (sdr_image_to_unit_pixels(c->images[i], width, height, out + (size_t)i * per) != 0) {
      free(out);
      return NULL;
    }
  return out;
}

int sdr_control_prepare(sdr_pipeline *p, const sdr_generate *g, int guided, int64_t B, int height,
                        int width, int64_t steps, sdr_control_run *r) {
  memset(r, 0, sizeof *r);
  r->g = g;
  r->B = B;
  r->steps = steps;
  /* guess mode is forced by the first net's global_pool_conditions */
  r->guess = g->guess_mode || g->controls[0].net->cfg.global_pool_conditions;
  r->guided = guided;
  const int copies = guided && !r->guess ? 2 : 1;
  const int64_t N = g->num_images_per_prompt;
  for (int k = 0; k < g->ncontrols; k++) {
    const sdr_control *c = &g->controls[k];
    const int m = picture_count(c);
    const int64_t C = c->tensor ? c->tensor_shape[1] : 3;
    const size_t per = (size_t)C * height * width;
    float *px = pixels_of(c, height, width);
    if (!px)
      return -1;
    float *rows = malloc((size_t)copies * B * per * sizeof *rows);
    if (!rows) {
      free(px);
      return sdr_fail("out of memory");
    }
    /* one picture: B copies; one per prompt: each N times in turn */
    for (int64_t b = 0; b < copies * B; b++)
      memcpy(rows + b * per, px + (m == 1 ? 0 : (size_t)((b % B) / N)) * per, per * sizeof *rows);
    free(px);
    int rc = sdr_arena_tensor(&p->arena, &r->cond[k], SDR_F32, 4,
                              (int64_t[]){copies * B, C, height, width});
    if (rc == 0)
      rc = sdr_upload(p->be, r->cond[k].data, rows, (size_t)copies * B * per * sizeof *rows);
    free(rows);
    if (rc != 0)
      return -1;
  }
  return 0;
}

unsigned sdr_control_active(const sdr_control_run *r, int64_t i) {
  unsigned mask = 0;
  const double n = (double)r->steps;
  for (int k = 0; k < r->g->ncontrols; k++) {
    const sdr_control *c = &r->g->controls[k];
    /* controlnet_keep: 1 - (i / n < start or (i + 1) / n > end) */
    if (!((double)i / n < c->start || (double)(i + 1) / n > c->end))
      mask |= 1u << k;
  }
  return mask;
}

/* acc += t, into a new tensor when t is larger (a pooled net's residual plus a full one). */
static int accumulate(sdr_pipeline *p, sdr_tensor *acc, const sdr_tensor *t) {
  if (memcmp(acc->shape, t->shape, sizeof acc->shape) == 0)
    return sdr_binary(p->be, acc, acc, t, SDR_BINARY_ADD);
  int n;
  int64_t shape[SDR_MAX_DIMS];
  sdr_tensor sum;
  if (sdr_broadcast_shape(acc, t, &n, shape) < 0)
    return sdr_fail("controlnet: the nets' residuals do not add up (shapes differ)");
  if (sdr_arena_tensor(&p->arena, &sum, acc->dtype, n, shape) != 0 ||
      sdr_binary(p->be, &sum, acc, t, SDR_BINARY_ADD) != 0)
    return -1;
  *acc = sum;
  return 0;
}

int sdr_control_residuals(sdr_pipeline *p, const sdr_control_run *r, unsigned active,
                          const sdr_tensor *x, const sdr_tensor *tvec, const sdr_tensor *context,
                          const sdr_tensor *text_embeds, const sdr_tensor *time_ids,
                          sdr_tensor *down, sdr_tensor *mid, sdr_unet_residuals *res) {
  const sdr_generate *g = r->g;
  memset(res, 0, sizeof *res);
  sdr_tensor cx = *x, ct = *tvec, cc = *context, te = {0}, ti = {0};
  if (text_embeds) {
    te = *text_embeds;
    ti = *time_ids;
  }
  /* the conditional half: latents, timesteps, text, and SDXL's added_cond_kwargs' chunk(2)[1]
   * (the second half of the rows as they are, as diffusers takes it) */
  if (r->guess && r->guided) {
    TRY(sdr_tensor_narrow0(&cx, x, r->B, r->B));
    TRY(sdr_tensor_narrow0(&ct, tvec, r->B, r->B));
    TRY(sdr_tensor_narrow0(&cc, context, r->B, r->B));
    if (text_embeds) {
      TRY(sdr_tensor_narrow0(&te, text_embeds, r->B, r->B));
      TRY(sdr_tensor_narrow0(&ti, time_ids, r->B, r->B));
    }
    res->row = r->B;
  }
  sdr_tensor d[SDR_UNET_MAX_SKIPS], m;
  int first = 1;
  for (int k = 0; k < g->ncontrols; k++) {
    if (!(active & (1u << k)))
      continue;
    sdr_controlnet *net = g->controls[k].net;
    const int n = sdr_controlnet_ndown(net);
    const sdr_controlnet_scale s = {g->controls[k].scale, r->guess};
    TRY(sdr_controlnet_forward(net, &p->arena, first ? down : d, first ? mid : &m, &cx, &ct, &cc,
                               &r->cond[k], te.ndim ? &te : NULL, ti.ndim ? &ti : NULL, s));
    if (!first) {
      if (n != res->ndown)
        return sdr_fail("controlnet %d makes %d residuals, the first %d", k + 1, n, res->ndown);
      for (int i = 0; i < n; i++)
        TRY(accumulate(p, &down[i], &d[i]));
      TRY(accumulate(p, mid, &m));
    }
    res->ndown = n;
    first = 0;
  }
  res->down = down;
  res->mid = mid;
  return 0;
fail:
  return -1;
}

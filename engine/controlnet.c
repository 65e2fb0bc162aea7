/* engine/controlnet.c — ControlNetModel: config, weights, forward pass. */
#include "engine/controlnet.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/error.h"        // sdr_fail
#include "engine/model_config.h" // sdr_json, sdr_find_weight_files

#define TRY(x)                                                                                     \
  do {                                                                                             \
    if ((x) != 0)                                                                                  \
      goto fail;                                                                                   \
  } while (0)

/* ---- config -------------------------------------------------------------- */

static int parse_config(sdr_controlnet *c, const sdr_json *j) {
  sdr_controlnet_config *k = &c->cfg;
  memset(k, 0, sizeof *k);
  if (sdr_unet_config_parse(&c->base.cfg, j, 0) != 0)
    return -1;
  if (!c->base.cfg.has_mid_block)
    return sdr_fail("%s: a ControlNet without a mid block is not supported", j->path);
  long long v, ch[SDR_CONTROLNET_MAX_COND];
  if (sdr_json_int_opt(j, "conditioning_channels", 3, &v) != 0)
    return -1;
  if (v < 1 || v > 64)
    return sdr_fail("%s: \"conditioning_channels\" is %lld", j->path, v);
  k->conditioning_channels = (int)v;
  if (sdr_json_has(j, "conditioning_embedding_out_channels")) {
    if (sdr_json_int_array(j, "conditioning_embedding_out_channels", ch, SDR_CONTROLNET_MAX_COND,
                           &k->ncond, 0) != 0)
      return -1;
  } else {
    const long long dflt[] = {16, 32, 96, 256};
    memcpy(ch, dflt, sizeof dflt);
    k->ncond = 4;
  }
  if (k->ncond < 1)
    return sdr_fail("%s: \"conditioning_embedding_out_channels\" is empty", j->path);
  for (int i = 0; i < k->ncond; i++) {
    if (ch[i] < 1 || ch[i] > 1 << 16)
      return sdr_fail("%s: \"conditioning_embedding_out_channels\" entry %d is %lld", j->path, i,
                      ch[i]);
    k->cond_channels[i] = (int)ch[i];
  }
  const char *order;
  if (sdr_json_string_opt(j, "controlnet_conditioning_channel_order", "rgb", &order) != 0)
    return -1;
  k->bgr = strcmp(order, "bgr") == 0;
  if (!k->bgr && strcmp(order, "rgb") != 0)
    return sdr_fail("%s: unknown controlnet_conditioning_channel_order \"%s\"", j->path, order);
  return sdr_json_bool_opt(j, "global_pool_conditions", 0, &k->global_pool_conditions);
}

/* ---- weights --------------------------------------------------------------- */

static int bind_conv(sdr_weights *w, sdr_tensor *wt, sdr_tensor *b, const char *prefix, int out,
                     int in, int k) {
  int rc = sdr_weights_bindf(w, wt, 4, (int64_t[]){out, in, k, k}, "%s.weight", prefix);
  rc |= sdr_weights_bindf(w, b, 1, (int64_t[]){out}, "%s.bias", prefix);
  return rc;
}

static int bind(sdr_controlnet *c) {
  const sdr_controlnet_config *k = &c->cfg;
  const sdr_unet_config *u = &c->base.cfg;
  sdr_weights *w = &c->base.weights;
  int rc = sdr_unet_bind_down(&c->base);
  rc |= bind_conv(w, &c->cond_in_w, &c->cond_in_b, "controlnet_cond_embedding.conv_in",
                  k->cond_channels[0], k->conditioning_channels, 3);
  char p[128];
  for (int i = 0; i + 1 < k->ncond; i++) { /* a convolution, then one of stride 2 */
    const int ci = k->cond_channels[i], co = k->cond_channels[i + 1];
    snprintf(p, sizeof p, "controlnet_cond_embedding.blocks.%d", 2 * i);
    rc |= bind_conv(w, &c->cond_w[2 * i], &c->cond_b[2 * i], p, ci, ci, 3);
    snprintf(p, sizeof p, "controlnet_cond_embedding.blocks.%d", 2 * i + 1);
    rc |= bind_conv(w, &c->cond_w[2 * i + 1], &c->cond_b[2 * i + 1], p, co, ci, 3);
  }
  const int C0 = u->block_out_channels[0];
  rc |= bind_conv(w, &c->cond_out_w, &c->cond_out_b, "controlnet_cond_embedding.conv_out", C0,
                  k->cond_channels[k->ncond - 1], 3);
  int64_t shapes[SDR_UNET_MAX_SKIPS][4];
  c->nzero = sdr_unet_skip_shapes(&c->base, 1, 1, 1, shapes);
  for (int i = 0; i < c->nzero; i++) {
    snprintf(p, sizeof p, "controlnet_down_blocks.%d", i);
    const int ch = (int)shapes[i][1];
    rc |= bind_conv(w, &c->zero_w[i], &c->zero_b[i], p, ch, ch, 1);
  }
  const int Cm = u->block_out_channels[u->nblocks - 1];
  rc |= bind_conv(w, &c->mid_w, &c->mid_b, "controlnet_mid_block", Cm, Cm, 1);
  return rc ? -1 : 0;
}

int sdr_controlnet_load(sdr_controlnet *c, sdr_backend *be, const char *dir, const char *variant,
                        int keep_dtype) {
  memset(c, 0, sizeof *c);
  c->base.be = be;
  c->base.act = sdr_backend_act_dtype(be, keep_dtype);
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", dir);
  sdr_json j;
  if (sdr_json_load(&j, path) != 0)
    return -1;
  int rc = parse_config(c, &j);
  sdr_json_free(&j);
  if (rc != 0)
    return -1;
  size_t nfiles = 0;
  char **files = sdr_find_weight_files(dir, NULL, "diffusion_pytorch_model", variant, -1, &nfiles);
  if (!files)
    return -1;
  rc = sdr_weights_open(&c->base.weights, be, "controlnet", (const char *const *)files, (int)nfiles,
                        keep_dtype);
  sdr_weight_files_free(files);
  if (rc != 0)
    return -1;
  sdr_weights_owner(&c->base.weights, c, sizeof *c);
  if (sdr_weights_keep_config(&c->base.weights, path) != 0 || bind(c) != 0 ||
      sdr_weights_finish(&c->base.weights) != 0) {
    sdr_controlnet_free(c);
    return -1;
  }
  return 0;
}

int sdr_controlnet_copy_to(sdr_controlnet *dst, const sdr_controlnet *src, sdr_backend *be,
                           int keep_dtype) {
  memset(dst, 0, sizeof *dst);
  dst->cfg = src->cfg;
  dst->base.cfg = src->base.cfg;
  dst->base.be = be;
  dst->base.act = sdr_backend_act_dtype(be, keep_dtype);
  if (sdr_weights_reopen(&dst->base.weights, &src->base.weights, be, keep_dtype) != 0)
    return -1;
  sdr_weights_owner(&dst->base.weights, dst, sizeof *dst);
  if (bind(dst) != 0 || sdr_weights_finish(&dst->base.weights) != 0) {
    sdr_controlnet_free(dst);
    return -1;
  }
  return 0;
}

void sdr_controlnet_free(sdr_controlnet *c) {
  sdr_unet_free(&c->base); /* the down half's blocks and the weights */
  memset(c, 0, sizeof *c);
}

int sdr_controlnet_ndown(const sdr_controlnet *c) { return c->nzero; }

/* ---- forward --------------------------------------------------------------- */

/* torch.logspace(-1, 0, n)[k] in float32: the exponent stepped in float from whichever end
 * is nearer, 10 raised to it in double. */
static float logspace_at(int k, int n) {
  const float start = -1.0f, end = 0.0f, step = (end - start) / (float)(n - 1);
  const float e = k < n / 2 ? start + step * (float)k : end - step * (float)(n - k - 1);
  return (float)pow(10.0, (double)e);
}

/* controlnet_conditioning_channel_order "bgr": the channels reversed, plane by plane. */
static int flip_channels(sdr_backend *be, sdr_arena *a, sdr_tensor *out, const sdr_tensor *in) {
  const int64_t B = in->shape[0], C = in->shape[1];
  sdr_tensor planes_in, planes_out, src, dst;
  const int64_t pshape[3] = {B * C, in->shape[2], in->shape[3]};
  TRY(sdr_arena_tensor(a, out, in->dtype, 4, in->shape));
  TRY(sdr_tensor_reshape(&planes_in, in, 3, pshape));
  TRY(sdr_tensor_reshape(&planes_out, out, 3, pshape));
  for (int64_t b = 0; b < B; b++)
    for (int64_t ch = 0; ch < C; ch++) {
      TRY(sdr_tensor_narrow0(&src, &planes_in, b * C + (C - 1 - ch), 1));
      TRY(sdr_tensor_narrow0(&dst, &planes_out, b * C + ch, 1));
      TRY(sdr_affine(be, &dst, &src, 1.0f, 0.0f));
    }
  return 0;
fail:
  return -1;
}

/* ControlNetConditioningEmbedding: conv_in, then pairs of convolutions (the second of
 * stride 2), each followed by SiLU, then conv_out. */
static int cond_embedding(sdr_controlnet *c, sdr_arena *a, sdr_tensor *out, const sdr_tensor *x) {
  sdr_backend *be = c->base.be;
  const sdr_controlnet_config *k = &c->cfg;
  const int64_t B = x->shape[0];
  int64_t H = x->shape[2], W = x->shape[3];
  sdr_tensor h, next;
  TRY(sdr_arena_tensor(a, &h, c->base.act, 4, (int64_t[]){B, k->cond_channels[0], H, W}));
  TRY(sdr_conv2d(be, &h, x, &c->cond_in_w, &c->cond_in_b, 1, 1));
  TRY(sdr_unary(be, &h, &h, SDR_UNARY_SILU));
  for (int i = 0; i + 1 < k->ncond; i++) {
    TRY(sdr_arena_tensor(a, &next, c->base.act, 4, h.shape));
    TRY(sdr_conv2d(be, &next, &h, &c->cond_w[2 * i], &c->cond_b[2 * i], 1, 1));
    TRY(sdr_unary(be, &next, &next, SDR_UNARY_SILU));
    H = (H - 1) / 2 + 1; /* 3x3, stride 2, padding 1 */
    W = (W - 1) / 2 + 1;
    TRY(sdr_arena_tensor(a, &h, c->base.act, 4, (int64_t[]){B, k->cond_channels[i + 1], H, W}));
    TRY(sdr_conv2d(be, &h, &next, &c->cond_w[2 * i + 1], &c->cond_b[2 * i + 1], 2, 1));
    TRY(sdr_unary(be, &h, &h, SDR_UNARY_SILU));
  }
  TRY(sdr_conv2d(be, out, &h, &c->cond_out_w, &c->cond_out_b, 1, 1));
  return 0;
fail:
  return -1;
}

/* torch.mean(x, dim=(2, 3), keepdim=True) as a product with ones, into out (B, C, 1, 1). */
static int mean_plane(sdr_backend *be, sdr_arena *a, sdr_tensor *out, const sdr_tensor *x) {
  const int64_t BC = x->shape[0] * x->shape[1], HW = x->shape[2] * x->shape[3];
  sdr_tensor rows, ones, sums;
  TRY(sdr_tensor_reshape(&rows, x, 2, (int64_t[]){BC, HW}));
  TRY(sdr_tensor_reshape(&sums, out, 2, (int64_t[]){BC, 1}));
  TRY(sdr_arena_tensor(a, &ones, x->dtype, 2, (int64_t[]){1, HW}));
  TRY(sdr_fill(be, &ones, 1.0f));
  TRY(sdr_linear(be, &sums, &rows, &ones, NULL));
  TRY(sdr_affine(be, &sums, &sums, 1.0f / (float)HW, 0.0f));
  return 0;
fail:
  return -1;
}

/* A zero convolution's output, scaled (and pooled) into out. */
static int residual(sdr_controlnet *c, sdr_arena *a, sdr_tensor *out, const sdr_tensor *x,
                    const sdr_tensor *w, const sdr_tensor *b, float scale) {
  sdr_backend *be = c->base.be;
  sdr_tensor full = *out;
  if (c->cfg.global_pool_conditions)
    TRY(sdr_arena_tensor(a, &full, c->base.act, 4, x->shape));
  TRY(sdr_conv2d(be, &full, x, w, b, 1, 0));
  if (scale != 1.0f) /* x * 1 is x: torch's product changes nothing there either */
    TRY(sdr_affine(be, &full, &full, scale, 0.0f));
  if (c->cfg.global_pool_conditions)
    TRY(mean_plane(be, a, out, &full));
  return 0;
fail:
  return -1;
}

int sdr_controlnet_forward(sdr_controlnet *c, sdr_arena *a, sdr_tensor *down, sdr_tensor *mid,
                           const sdr_tensor *sample, const sdr_tensor *timesteps,
                           const sdr_tensor *context, const sdr_tensor *cond,
                           const sdr_tensor *text_embeds, const sdr_tensor *time_ids,
                           sdr_controlnet_scale s) {
  sdr_unet *u = &c->base;
  const sdr_unet_config *uc = &u->cfg;
  if (sample->ndim != 4 || sample->shape[1] != uc->in_channels)
    return sdr_fail("controlnet: sample must be (batch, %d, height, width)", uc->in_channels);
  const int64_t B = sample->shape[0], h = sample->shape[2], w = sample->shape[3];
  if (timesteps->ndim != 1 || timesteps->shape[0] != B)
    return sdr_fail("controlnet: one timestep per batch entry expected");
  if (context->ndim != 3 || context->shape[0] != B)
    return sdr_fail("controlnet: encoder_hidden_states must be (%lld, tokens, width)",
                    (long long)B);
  if (sdr_unet_check_added(u, B, text_embeds, time_ids, "controlnet") != 0)
    return -1;
  int64_t eh = cond->ndim == 4 ? cond->shape[2] : 0, ew = cond->ndim == 4 ? cond->shape[3] : 0;
  for (int i = 0; i + 1 < c->cfg.ncond; i++) {
    eh = (eh - 1) / 2 + 1;
    ew = (ew - 1) / 2 + 1;
  }
  if (cond->ndim != 4 || cond->shape[0] != B || cond->shape[1] != c->cfg.conditioning_channels ||
      eh != h || ew != w)
    return sdr_fail("controlnet: controlnet_cond must be (%lld, %d, H, W) with H and W %d times "
                    "the sample's %lldx%lld",
                    (long long)B, c->cfg.conditioning_channels, 1 << (c->cfg.ncond - 1),
                    (long long)h, (long long)w);

  /* the outputs first, below the working memory released at the end */
  sdr_arena_mark outer = sdr_arena_get_mark(a), mark;
  int64_t shapes[SDR_UNET_MAX_SKIPS][4];
  const int n = sdr_unet_skip_shapes(u, B, h, w, shapes);
  const int pooled = c->cfg.global_pool_conditions;
  for (int i = 0; i <= n; i++) {
    const int64_t *sh = shapes[i < n ? i : n - 1];
    TRY(sdr_arena_tensor(a, i < n ? &down[i] : mid, u->act, 4,
                         (int64_t[]){B, sh[1], pooled ? 1 : sh[2], pooled ? 1 : sh[3]}));
  }
  mark = sdr_arena_get_mark(a);
  sdr_tensor x, ctx, cnd, emb;
  sdr_unet_down d;
  TRY(sdr_arena_as(a, &x, sample, u->act));
  TRY(sdr_arena_as(a, &ctx, context, u->act));
  TRY(sdr_arena_as(a, &cnd, cond, u->act));
  if (c->cfg.bgr) {
    sdr_tensor flipped;
    TRY(flip_channels(u->be, a, &flipped, &cnd));
    cnd = flipped;
  }
  TRY(sdr_arena_tensor(a, &emb, u->act, 4, (int64_t[]){B, uc->block_out_channels[0], h, w}));
  TRY(cond_embedding(c, a, &emb, &cnd));
  /* its attention sees the text only */
  const sdr_unet_cond cx = {
      .attn = {.text = &ctx}, .text_embeds = text_embeds, .time_ids = time_ids};
  TRY(sdr_unet_down_forward(u, a, &d, &x, timesteps, &cx, &emb));

  /* guess mode's ramp from 0.1 to 1 over the residuals (not with pooled conditions) */
  const int ramp = s.guess_mode && !pooled;
  for (int i = 0; i < n; i++) {
    const float k = ramp ? logspace_at(i, n + 1) * s.scale : s.scale;
    TRY(residual(c, a, &down[i], &d.skips[i], &c->zero_w[i], &c->zero_b[i], k));
  }
  TRY(residual(c, a, mid, &d.h, &c->mid_w, &c->mid_b,
               ramp ? logspace_at(n, n + 1) * s.scale : s.scale));
  sdr_arena_release(a, mark);
  return 0;
fail:
  sdr_arena_release(a, outer);
  return -1;
}

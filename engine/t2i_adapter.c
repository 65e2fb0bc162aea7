/* engine/t2i_adapter.c — T2IAdapter: config, weights, forward (see t2i_adapter.h). */
#include "engine/t2i_adapter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"        // sdr_fail
#include "engine/model_config.h" // sdr_json, sdr_find_weight_files

#define TRY(x)                                                                                     \
  do {                                                                                             \
    if ((x) != 0)                                                                                  \
      goto fail;                                                                                   \
  } while (0)

/* ---- config ---------------------------------------------------------------- */

static int parse_config(sdr_t2i_adapter_config *c, const sdr_json *j) {
  long long v, ch[SDR_ADAPTER_MAX_CHANNELS];
  const char *type;
  memset(c, 0, sizeof *c);
  if (sdr_json_string_opt(j, "adapter_type", "full_adapter", &type) != 0)
    return -1;
  if (strcmp(type, "full_adapter") == 0)
    c->type = SDR_ADAPTER_FULL;
  else if (strcmp(type, "full_adapter_xl") == 0)
    c->type = SDR_ADAPTER_FULL_XL;
  else if (strcmp(type, "light_adapter") == 0)
    c->type = SDR_ADAPTER_LIGHT;
  else
    return sdr_fail("%s: Unsupported adapter_type: '%s'. Choose either 'full_adapter' or "
                    "'full_adapter_xl' or 'light_adapter'.",
                    j->path, type);
  if (!sdr_json_has(j, "channels")) { /* the class defaults */
    static const int full[] = {320, 640, 1280, 1280}, light[] = {320, 640, 1280};
    c->nchannels = c->type == SDR_ADAPTER_LIGHT ? 3 : 4;
    memcpy(c->channels, c->type == SDR_ADAPTER_LIGHT ? light : full,
           sizeof(int) * (size_t)c->nchannels);
  } else {
    if (sdr_json_int_array(j, "channels", ch, SDR_ADAPTER_MAX_CHANNELS, &c->nchannels, 0) != 0)
      return -1;
    for (int i = 0; i < c->nchannels; i++) {
      if (ch[i] < 1 || ch[i] > 1 << 16)
        return sdr_fail("%s: \"channels\"[%d] is %lld", j->path, i, ch[i]);
      c->channels[i] = (int)ch[i];
    }
  }
  if (c->nchannels < 1 || (c->type == SDR_ADAPTER_FULL_XL && c->nchannels < 3))
    return sdr_fail("%s: \"channels\" has %d entries; %s needs at least %d", j->path, c->nchannels,
                    type, c->type == SDR_ADAPTER_FULL_XL ? 3 : 1);
  if (c->type == SDR_ADAPTER_LIGHT)
    for (int i = 0; i < c->nchannels; i++)
      if (c->channels[i] < 4)
        return sdr_fail("%s: a light adapter's channels (%d) must be at least 4 (it works on a "
                        "quarter of them)",
                        j->path, c->channels[i]);
  if (sdr_json_int_opt(j, "in_channels", 3, &v) != 0)
    return -1;
  c->in_channels = (int)v;
  if (sdr_json_int_opt(j, "num_res_blocks", c->type == SDR_ADAPTER_LIGHT ? 4 : 2, &v) != 0)
    return -1;
  c->num_res_blocks = (int)v;
  if (sdr_json_int_opt(j, "downscale_factor", c->type == SDR_ADAPTER_FULL_XL ? 16 : 8, &v) != 0)
    return -1;
  c->downscale_factor = (int)v;
  if (c->in_channels < 1 || c->in_channels > 64 || c->num_res_blocks < 0 ||
      c->num_res_blocks > 64 || c->downscale_factor < 1 || c->downscale_factor > 64)
    return sdr_fail("%s: in_channels %d, num_res_blocks %d or downscale_factor %d out of range",
                    j->path, c->in_channels, c->num_res_blocks, c->downscale_factor);
  return 0;
}

/* The blocks' sizes, as FullAdapter, FullAdapterXL and LightAdapter lay them out. */
static void layout(sdr_t2i_adapter *a) {
  const sdr_t2i_adapter_config *c = &a->cfg;
  const int n = c->nchannels, *ch = c->channels;
  const int unshuffled = c->in_channels * c->downscale_factor * c->downscale_factor;
  sdr_adapter_block *b = a->blocks;
  if (c->type == SDR_ADAPTER_FULL) {
    a->nblocks = n;
    for (int i = 0; i < n; i++)
      b[i] = (sdr_adapter_block){.in = ch[i > 0 ? i - 1 : 0], .out = ch[i], .down = i > 0};
  } else if (c->type == SDR_ADAPTER_FULL_XL) {
    a->nblocks = n;
    for (int i = 0; i < n; i++)
      b[i] = (sdr_adapter_block){
          .in = i == 1 || i == 2 ? ch[i - 1] : ch[i], .out = ch[i], .down = i == 2};
  } else {
    a->nblocks = n + 1;
    b[0] = (sdr_adapter_block){.in = unshuffled, .out = ch[0]};
    for (int i = 0; i + 1 < n; i++)
      b[i + 1] = (sdr_adapter_block){.in = ch[i], .out = ch[i + 1], .down = 1};
    b[n] = (sdr_adapter_block){.in = ch[n - 1], .out = ch[n - 1], .down = 1};
  }
  for (int i = 0; i < a->nblocks; i++) {
    const int light = c->type == SDR_ADAPTER_LIGHT;
    b[i].mid = light ? b[i].out / 4 : b[i].out;
    b[i].has_in_conv = light || b[i].in != b[i].out;
    b[i].has_out_conv = light;
  }
}

/* ---- weights --------------------------------------------------------------- */

static int bind_conv(sdr_weights *w, sdr_tensor *wt, sdr_tensor *bias, const char *name, int out,
                     int in, int k) {
  return sdr_weights_bindf(w, wt, 4, (int64_t[]){out, in, k, k}, "%s.weight", name) |
         sdr_weights_bindf(w, bias, 1, (int64_t[]){out}, "%s.bias", name);
}

static int bind(sdr_t2i_adapter *a) {
  const sdr_t2i_adapter_config *c = &a->cfg;
  sdr_weights *w = &a->weights;
  const int light = c->type == SDR_ADAPTER_LIGHT;
  int rc = 0;
  layout(a);
  if (!light)
    rc |= bind_conv(w, &a->conv_in_w, &a->conv_in_b, "adapter.conv_in", c->channels[0],
                    c->in_channels * c->downscale_factor * c->downscale_factor, 3);
  char p[128];
  for (int i = 0; i < a->nblocks; i++) {
    sdr_adapter_block *b = &a->blocks[i];
    if (c->num_res_blocks > 0 &&
        !(b->resnets = calloc((size_t)c->num_res_blocks, sizeof *b->resnets)))
      return sdr_fail("out of memory");
    if (b->has_in_conv) {
      snprintf(p, sizeof p, "adapter.body.%d.in_conv", i);
      rc |= bind_conv(w, &b->in_w, &b->in_b, p, b->mid, b->in, 1);
    }
    for (int r = 0; r < c->num_res_blocks; r++) {
      sdr_adapter_resnet *res = &b->resnets[r];
      snprintf(p, sizeof p, "adapter.body.%d.resnets.%d.block1", i, r);
      rc |= bind_conv(w, &res->w1, &res->b1, p, b->mid, b->mid, 3);
      snprintf(p, sizeof p, "adapter.body.%d.resnets.%d.block2", i, r);
      rc |= bind_conv(w, &res->w2, &res->b2, p, b->mid, b->mid, light ? 3 : 1);
    }
    if (b->has_out_conv) {
      snprintf(p, sizeof p, "adapter.body.%d.out_conv", i);
      rc |= bind_conv(w, &b->out_w, &b->out_b, p, b->out, b->mid, 1);
    }
  }
  return rc ? -1 : 0;
}

static int finish(sdr_t2i_adapter *a) {
  sdr_weights_owner(&a->weights, a, sizeof *a);
  if (bind(a) != 0 || sdr_weights_finish(&a->weights) != 0) {
    sdr_t2i_adapter_free(a);
    return -1;
  }
  return 0;
}

int sdr_t2i_adapter_load(sdr_t2i_adapter *a, sdr_backend *be, const char *dir, const char *variant,
                         int keep_dtype) {
  memset(a, 0, sizeof *a);
  a->be = be;
  a->act = sdr_backend_act_dtype(be, keep_dtype);
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", dir);
  sdr_json j;
  if (sdr_json_load(&j, path) != 0)
    return -1;
  int rc = parse_config(&a->cfg, &j);
  sdr_json_free(&j);
  if (rc != 0)
    return -1;
  size_t nfiles = 0;
  char **files = sdr_find_weight_files(dir, NULL, "diffusion_pytorch_model", variant, -1, &nfiles);
  if (!files)
    return -1;
  rc = sdr_weights_open(&a->weights, be, "adapter", (const char *const *)files, (int)nfiles,
                        keep_dtype);
  sdr_weight_files_free(files);
  if (rc != 0)
    return -1;
  if (sdr_weights_keep_config(&a->weights, path) != 0) {
    sdr_t2i_adapter_free(a);
    return -1;
  }
  return finish(a);
}

int sdr_t2i_adapter_copy_to(sdr_t2i_adapter *dst, const sdr_t2i_adapter *src, sdr_backend *be,
                            int keep_dtype) {
  memset(dst, 0, sizeof *dst);
  dst->cfg = src->cfg;
  dst->be = be;
  dst->act = sdr_backend_act_dtype(be, keep_dtype);
  if (sdr_weights_reopen(&dst->weights, &src->weights, be, keep_dtype) != 0)
    return -1;
  return finish(dst);
}

void sdr_t2i_adapter_free(sdr_t2i_adapter *a) {
  if (!a)
    return;
  for (int i = 0; i < SDR_ADAPTER_MAX_FEATURES; i++)
    free(a->blocks[i].resnets);
  sdr_weights_close(&a->weights);
  memset(a, 0, sizeof *a);
}

int sdr_t2i_adapter_total_downscale(const sdr_t2i_adapter *a) {
  const sdr_t2i_adapter_config *c = &a->cfg;
  const int f = c->downscale_factor;
  return c->type == SDR_ADAPTER_FULL      ? f << (c->nchannels - 1)
         : c->type == SDR_ADAPTER_FULL_XL ? f * 2
                                          : f << c->nchannels;
}

/* ---- forward --------------------------------------------------------------- */

/* nn.PixelUnshuffle(r): out[b, (c r + i) r + j, y, x] = in[b, c, y r + i, x r + j]. */
static void pixel_unshuffle(float *out, const float *in, const int64_t s[4], int r) {
  const int64_t C = s[1], H = s[2], W = s[3], h = H / r, w = W / r;
  float *o = out;
  for (int64_t b = 0; b < s[0]; b++)
    for (int64_t c = 0; c < C; c++)
      for (int i = 0; i < r; i++)
        for (int j = 0; j < r; j++)
          for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++)
              *o++ = in[((b * C + c) * H + y * r + i) * W + x * r + j];
}

/* nn.AvgPool2d(2, 2, ceil_mode=True) of (N, H, W) planes: a window the edge cuts off is
 * averaged over what it holds (no padding, so count_include_pad changes nothing); the sum
 * runs row by row as torch's kernel adds. */
static void avg_pool_ceil(float *out, const float *in, int64_t N, int64_t H, int64_t W) {
  const int64_t h = (H + 1) / 2, w = (W + 1) / 2;
  for (int64_t n = 0; n < N; n++)
    for (int64_t y = 0; y < h; y++)
      for (int64_t x = 0; x < w; x++) {
        const int64_t y1 = 2 * y + 2 < H ? 2 * y + 2 : H, x1 = 2 * x + 2 < W ? 2 * x + 2 : W;
        float sum = 0;
        for (int64_t yy = 2 * y; yy < y1; yy++)
          for (int64_t xx = 2 * x; xx < x1; xx++)
            sum += in[(n * H + yy) * W + xx];
        out[(n * h + y) * w + x] = sum / (float)((y1 - 2 * y) * (x1 - 2 * x));
      }
}

/* x pooled into a new arena tensor of x's dtype (through the host in float32) */
static int pool(sdr_backend *be, sdr_arena *a, sdr_tensor *out, const sdr_tensor *x) {
  const int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  const int64_t h = (H + 1) / 2, w = (W + 1) / 2;
  sdr_arena_mark m = sdr_arena_get_mark(a);
  sdr_tensor in32, out32;
  float *host = malloc(sizeof(float) * (size_t)(B * C * (H * W + h * w)));
  if (!host)
    return sdr_fail("out of memory");
  TRY(sdr_arena_as(a, &in32, x, SDR_F32));
  TRY(sdr_download(be, host, in32.data, sizeof(float) * (size_t)(B * C * H * W)));
  avg_pool_ceil(host + B * C * H * W, host, B * C, H, W);
  sdr_arena_release(a, m); /* out may take in32's place */
  TRY(sdr_arena_tensor(a, out, x->dtype, 4, (int64_t[]){B, C, h, w}));
  TRY(sdr_arena_tensor(a, &out32, SDR_F32, 4, (int64_t[]){B, C, h, w}));
  TRY(sdr_upload(be, out32.data, host + B * C * H * W, sizeof(float) * (size_t)(B * C * h * w)));
  TRY(sdr_cast(be, out, &out32));
  free(host);
  return 0;
fail:
  free(host);
  return -1;
}

/* out = conv(x) into a new arena tensor */
static int conv(sdr_backend *be, sdr_arena *a, sdr_tensor *out, const sdr_tensor *x,
                const sdr_tensor *w, const sdr_tensor *b) {
  const int k = (int)w->shape[2];
  if (sdr_arena_tensor(a, out, x->dtype, 4,
                       (int64_t[]){x->shape[0], w->shape[0], x->shape[2], x->shape[3]}) != 0)
    return -1;
  return sdr_conv2d(be, out, x, w, b, 1, k / 2);
}

static int block_forward(sdr_t2i_adapter *ad, sdr_arena *a, sdr_tensor *h,
                         const sdr_adapter_block *b) {
  sdr_backend *be = ad->be;
  sdr_tensor next, t;
  if (b->down) {
    TRY(pool(be, a, &next, h));
    *h = next;
  }
  if (b->has_in_conv) {
    TRY(conv(be, a, &next, h, &b->in_w, &b->in_b));
    *h = next;
  }
  for (int r = 0; r < ad->cfg.num_res_blocks; r++) { /* h + block2(relu(block1(h))) */
    const sdr_adapter_resnet *res = &b->resnets[r];
    TRY(conv(be, a, &t, h, &res->w1, &res->b1));
    TRY(sdr_unary(be, &t, &t, SDR_UNARY_RELU));
    TRY(conv(be, a, &next, &t, &res->w2, &res->b2));
    TRY(sdr_binary(be, &next, &next, h, SDR_BINARY_ADD));
    *h = next;
  }
  if (b->has_out_conv) {
    TRY(conv(be, a, &next, h, &b->out_w, &b->out_b));
    *h = next;
  }
  return 0;
fail:
  return -1;
}

int sdr_t2i_adapter_forward(sdr_t2i_adapter *ad, sdr_arena *a, const float *x,
                            const int64_t shape[4], sdr_tensor *features) {
  const sdr_t2i_adapter_config *c = &ad->cfg;
  const int r = c->downscale_factor;
  if (shape[0] < 1 || shape[1] != c->in_channels || shape[2] < r || shape[3] < r || shape[2] % r ||
      shape[3] % r)
    return sdr_fail("T2IAdapter: the pictures are %lldx%lldx%lld; it takes %d channels, height "
                    "and width multiples of its downscale_factor %d",
                    (long long)shape[1], (long long)shape[2], (long long)shape[3], c->in_channels,
                    r);
  sdr_backend *be = ad->be;
  const int64_t B = shape[0], C = shape[1] * r * r, h = shape[2] / r, w = shape[3] / r;
  const size_t n = (size_t)(B * C * h * w);
  float *un = malloc(sizeof(float) * n);
  if (!un)
    return sdr_fail("out of memory");
  pixel_unshuffle(un, x, shape, r);
  sdr_tensor x32, cur, next;
  int rc = sdr_arena_tensor(a, &x32, SDR_F32, 4, (int64_t[]){B, C, h, w});
  if (rc == 0)
    rc = sdr_upload(be, x32.data, un, sizeof(float) * n);
  free(un);
  TRY(rc);
  TRY(sdr_arena_as(a, &cur, &x32, ad->act));
  if (c->type != SDR_ADAPTER_LIGHT) {
    TRY(conv(be, a, &next, &cur, &ad->conv_in_w, &ad->conv_in_b));
    cur = next;
  }
  for (int i = 0; i < ad->nblocks; i++) {
    TRY(block_forward(ad, a, &cur, &ad->blocks[i]));
    features[i] = cur;
  }
  return 0;
fail:
  return -1;
}

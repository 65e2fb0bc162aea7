/* engine/vae.c — AutoencoderKL: Encoder, Decoder, quant convolutions. */
#include "engine/vae.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "engine/error.h"        // sdr_fail
#include "engine/model_config.h" // sdr_json, sdr_find_weight_files

#define TRY(x)                                                                                     \
  do {                                                                                             \
    if ((x) != 0)                                                                                  \
      goto fail;                                                                                   \
  } while (0)

/* diffusers builds the VAE's resnets and attention with this eps (vae.py). */
static const float VAE_EPS = 1e-6f;

/* AutoencoderTiny's config: the keys a pipeline reads, then its own. */
static int tiny_config(sdr_vae_config *c, const sdr_json *j, const char *path) {
  long long v;
  double d;
  c->tiny = 1;
  if (sdr_tiny_config_read(&c->tiny_cfg, j, path) != 0)
    return -1;
  c->nblocks = c->tiny_cfg.nstages;
  memcpy(c->block_out_channels, c->tiny_cfg.decoder_channels, sizeof c->block_out_channels);
  if (sdr_json_int_opt(j, "in_channels", 3, &v) != 0)
    return -1;
  c->in_channels = (int)v;
  if (sdr_json_int_opt(j, "out_channels", 3, &v) != 0)
    return -1;
  c->out_channels = (int)v;
  if (sdr_json_int_opt(j, "latent_channels", 4, &v) != 0)
    return -1;
  c->latent_channels = (int)v;
  if (sdr_json_number_opt(j, "scaling_factor", 1.0, &d) != 0)
    return -1;
  c->scaling_factor = (float)d;
  c->sample_size = 512;
  c->force_upcast = 0; /* __init__ registers force_upcast=False whatever the file says */
  if (c->in_channels < 1 || c->out_channels < 1 || c->latent_channels < 1 || c->in_channels > 64 ||
      c->out_channels > 64 || c->latent_channels > 4096)
    return sdr_fail("%s: channels in %d, out %d, latent %d are out of range", path, c->in_channels,
                    c->out_channels, c->latent_channels);
  return 0;
}

/* One of latents_mean / latents_std: a list of latent_channels numbers, or null or absent
 * (*given 0). diffusers views it as (1, 4, 1, 1), so another length fails there too. */
static int latents_stat(const sdr_vae_config *c, const sdr_json *j, const char *path,
                        const char *key, float *out, int *given) {
  const cJSON *v = sdr_json_get(j, key);
  *given = v && !cJSON_IsNull(v);
  if (!*given)
    return 0;
  if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != c->latent_channels ||
      c->latent_channels > SDR_VAE_MAX_LATENT_STATS)
    return sdr_fail("%s: \"%s\": expected a list of %d numbers (one per latent channel) or null",
                    path, key, c->latent_channels);
  int i = 0;
  for (const cJSON *x = v->child; x; x = x->next, i++) {
    if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble))
      return sdr_fail("%s: \"%s\"[%d]: expected a number", path, key, i);
    out[i] = (float)x->valuedouble;
  }
  return 0;
}

static int latents_stats(sdr_vae_config *c, const sdr_json *j, const char *path) {
  int has_mean, has_std;
  if (latents_stat(c, j, path, "latents_mean", c->latents_mean, &has_mean) != 0 ||
      latents_stat(c, j, path, "latents_std", c->latents_std, &has_std) != 0)
    return -1;
  c->has_latents_stats = has_mean && has_std;
  return 0;
}

int sdr_vae_config_load(sdr_vae_config *c, const char *path) {
  memset(c, 0, sizeof *c);
  sdr_json j;
  if (sdr_json_load(&j, path) != 0)
    return -1;
  if (strcmp(sdr_json_string_or(&j, "_class_name", "AutoencoderKL"), "AutoencoderTiny") == 0) {
    const int rc = tiny_config(c, &j, path);
    sdr_json_free(&j);
    return rc;
  }
  int rc = -1, n = 0, nd = 0, nu = 0;
  long long boc[SDR_VAE_MAX_BLOCKS], v;
  const char *down[SDR_VAE_MAX_BLOCKS], *up[SDR_VAE_MAX_BLOCKS];
  TRY(sdr_json_int_array(&j, "block_out_channels", boc, SDR_VAE_MAX_BLOCKS, &n, 0));
  TRY(sdr_json_string_array(&j, "down_block_types", down, SDR_VAE_MAX_BLOCKS, &nd));
  TRY(sdr_json_string_array(&j, "up_block_types", up, SDR_VAE_MAX_BLOCKS, &nu));
  if (n < 1 || nd != n || nu != n) {
    sdr_fail("%s: %d block_out_channels but %d down and %d up block types", path, n, nd, nu);
    goto fail;
  }
  for (int i = 0; i < n; i++) {
    if (strcmp(down[i], "DownEncoderBlock2D") != 0 || strcmp(up[i], "UpDecoderBlock2D") != 0) {
      sdr_fail("%s: block types %s/%s are not supported", path, down[i], up[i]);
      goto fail;
    }
    c->block_out_channels[i] = (int)boc[i];
  }
  c->nblocks = n;
  TRY(sdr_json_int_opt(&j, "in_channels", 3, &v));
  c->in_channels = (int)v;
  TRY(sdr_json_int_opt(&j, "out_channels", 3, &v));
  c->out_channels = (int)v;
  TRY(sdr_json_int_opt(&j, "latent_channels", 4, &v));
  c->latent_channels = (int)v;
  TRY(sdr_json_int_opt(&j, "layers_per_block", 1, &v));
  c->layers_per_block = (int)v;
  TRY(sdr_json_int_opt(&j, "norm_num_groups", 32, &v));
  c->norm_num_groups = (int)v;
  TRY(sdr_json_int_opt(&j, "sample_size", 512, &v));
  c->sample_size = (int)v;
  double d;
  TRY(sdr_json_number_opt(&j, "scaling_factor", 0.18215, &d));
  c->scaling_factor = (float)d;
  TRY(sdr_json_bool_opt(&j, "use_quant_conv", 1, &c->use_quant_conv));
  TRY(sdr_json_bool_opt(&j, "use_post_quant_conv", 1, &c->use_post_quant_conv));
  TRY(sdr_json_bool_opt(&j, "force_upcast", 1, &c->force_upcast));
  TRY(latents_stats(c, &j, path));
  if (sdr_json_string_or(&j, "act_fn", "silu") &&
      strcmp(sdr_json_string_or(&j, "act_fn", "silu"), "silu")) {
    sdr_fail("%s: act_fn \"%s\" is not supported", path, sdr_json_string_or(&j, "act_fn", ""));
    goto fail;
  }
  if (!sdr_json_bool_or(&j, "mid_block_add_attention", 1)) {
    sdr_fail("%s: a VAE without mid-block attention is not supported", path);
    goto fail;
  }
  for (int i = 0; i < n; i++)
    if (c->block_out_channels[i] <= 0 || c->block_out_channels[i] % c->norm_num_groups) {
      sdr_fail("%s: block_out_channels[%d] = %d does not split into %d groups", path, i,
               c->block_out_channels[i], c->norm_num_groups);
      goto fail;
    }
  rc = 0;
fail:
  sdr_json_free(&j);
  return rc;
}

int sdr_vae_scale_factor(const sdr_vae *v) { return 1 << (v->cfg.nblocks - 1); }

int sdr_vae_encoded_channels(const sdr_vae *v) {
  return v->cfg.tiny ? v->cfg.latent_channels : 2 * v->cfg.latent_channels;
}

/* ---- weights --------------------------------------------------------------- */

static int bind_mid(sdr_vae_mid *m, sdr_weights *w, const char *coder, int C, int groups) {
  char p[256];
  int rc = 0;
  for (int j = 0; j < 2; j++) {
    snprintf(p, sizeof p, "%s.mid_block.resnets.%d", coder, j);
    rc |= sdr_resnet_block_bind(&m->resnets[j], w, p, C, C, 0, groups, VAE_EPS, 1.0f);
  }
  snprintf(p, sizeof p, "%s.mid_block.attentions.0", coder);
  rc |= sdr_weights_bindf(w, &m->attn_norm_w, 1, (int64_t[]){C}, "%s.group_norm.weight", p);
  rc |= sdr_weights_bindf(w, &m->attn_norm_b, 1, (int64_t[]){C}, "%s.group_norm.bias", p);
  char old[300];
  snprintf(old, sizeof old, "%s.query.weight", p);
  if (!sdr_weights_has(w, old))
    return rc | sdr_attn_layer_bind(&m->attn, w, p, C, C, 1, C, 1);
  /* Files saved before diffusers 0.14 name the projections query/key/value/proj_attn. */
  sdr_attn_layer *at = &m->attn;
  *at = (sdr_attn_layer){.query_dim = C, .context_dim = C, .heads = 1, .dim_head = C};
  const int64_t cc[2] = {C, C}, c1[1] = {C};
  rc |= sdr_weights_bindf(w, &at->q_w, 2, cc, "%s.query.weight", p);
  rc |= sdr_weights_bindf(w, &at->q_b, 1, c1, "%s.query.bias", p);
  rc |= sdr_weights_bindf(w, &at->k_w, 2, cc, "%s.key.weight", p);
  rc |= sdr_weights_bindf(w, &at->k_b, 1, c1, "%s.key.bias", p);
  rc |= sdr_weights_bindf(w, &at->v_w, 2, cc, "%s.value.weight", p);
  rc |= sdr_weights_bindf(w, &at->v_b, 1, c1, "%s.value.bias", p);
  rc |= sdr_weights_bindf(w, &at->out_w, 2, cc, "%s.proj_attn.weight", p);
  rc |= sdr_weights_bindf(w, &at->out_b, 1, c1, "%s.proj_attn.bias", p);
  return rc;
}

static int bind_encoder(sdr_vae *v) {
  const sdr_vae_config *c = &v->cfg;
  sdr_weights *w = &v->weights;
  sdr_vae_coder *e = &v->encoder;
  const int n = c->nblocks, C0 = c->block_out_channels[0], Cl = c->block_out_channels[n - 1];
  const int g = c->norm_num_groups;
  char p[256];
  int rc = 0;
  rc |= sdr_weights_bind(w, &e->conv_in_w, "encoder.conv_in.weight", 4,
                         (int64_t[]){C0, c->in_channels, 3, 3});
  rc |= sdr_weights_bind(w, &e->conv_in_b, "encoder.conv_in.bias", 1, (int64_t[]){C0});
  int out = C0;
  for (int i = 0; i < n; i++) {
    sdr_vae_block *b = &e->blocks[i];
    int in = out;
    out = c->block_out_channels[i];
    b->nlayers = c->layers_per_block;
    b->has_sample = i < n - 1;
    b->resnets = calloc((size_t)b->nlayers, sizeof *b->resnets);
    if (!b->resnets)
      return sdr_fail("out of memory");
    for (int j = 0; j < b->nlayers; j++) {
      snprintf(p, sizeof p, "encoder.down_blocks.%d.resnets.%d", i, j);
      rc |=
          sdr_resnet_block_bind(&b->resnets[j], w, p, j == 0 ? in : out, out, 0, g, VAE_EPS, 1.0f);
    }
    if (b->has_sample) {
      snprintf(p, sizeof p, "encoder.down_blocks.%d.downsamplers.0", i);
      rc |= sdr_downsample_bind(&b->down, w, p, out, 0);
    }
  }
  rc |= bind_mid(&e->mid, w, "encoder", Cl, g);
  rc |= sdr_weights_bind(w, &e->norm_out_w, "encoder.conv_norm_out.weight", 1, (int64_t[]){Cl});
  rc |= sdr_weights_bind(w, &e->norm_out_b, "encoder.conv_norm_out.bias", 1, (int64_t[]){Cl});
  rc |= sdr_weights_bind(w, &e->conv_out_w, "encoder.conv_out.weight", 4,
                         (int64_t[]){2 * c->latent_channels, Cl, 3, 3});
  rc |= sdr_weights_bind(w, &e->conv_out_b, "encoder.conv_out.bias", 1,
                         (int64_t[]){2 * c->latent_channels});
  return rc;
}

static int bind_decoder(sdr_vae *v) {
  const sdr_vae_config *c = &v->cfg;
  sdr_weights *w = &v->weights;
  sdr_vae_coder *d = &v->decoder;
  const int n = c->nblocks, C0 = c->block_out_channels[0], Cl = c->block_out_channels[n - 1];
  const int g = c->norm_num_groups;
  char p[256];
  int rc = 0;
  rc |= sdr_weights_bind(w, &d->conv_in_w, "decoder.conv_in.weight", 4,
                         (int64_t[]){Cl, c->latent_channels, 3, 3});
  rc |= sdr_weights_bind(w, &d->conv_in_b, "decoder.conv_in.bias", 1, (int64_t[]){Cl});
  rc |= bind_mid(&d->mid, w, "decoder", Cl, g);
  int out = Cl;
  for (int i = 0; i < n; i++) {
    sdr_vae_block *b = &d->blocks[i];
    int prev = out;
    out = c->block_out_channels[n - 1 - i];
    b->nlayers = c->layers_per_block + 1;
    b->has_sample = i < n - 1;
    b->resnets = calloc((size_t)b->nlayers, sizeof *b->resnets);
    if (!b->resnets)
      return sdr_fail("out of memory");
    for (int j = 0; j < b->nlayers; j++) {
      snprintf(p, sizeof p, "decoder.up_blocks.%d.resnets.%d", i, j);
      rc |= sdr_resnet_block_bind(&b->resnets[j], w, p, j == 0 ? prev : out, out, 0, g, VAE_EPS,
                                  1.0f);
    }
    if (b->has_sample) {
      snprintf(p, sizeof p, "decoder.up_blocks.%d.upsamplers.0", i);
      rc |= sdr_upsample_bind(&b->up, w, p, out);
    }
  }
  rc |= sdr_weights_bind(w, &d->norm_out_w, "decoder.conv_norm_out.weight", 1, (int64_t[]){C0});
  rc |= sdr_weights_bind(w, &d->norm_out_b, "decoder.conv_norm_out.bias", 1, (int64_t[]){C0});
  rc |= sdr_weights_bind(w, &d->conv_out_w, "decoder.conv_out.weight", 4,
                         (int64_t[]){c->out_channels, C0, 3, 3});
  rc |=
      sdr_weights_bind(w, &d->conv_out_b, "decoder.conv_out.bias", 1, (int64_t[]){c->out_channels});
  return rc;
}

static int bind_all(sdr_vae *v);

int sdr_vae_load(sdr_vae *v, sdr_backend *be, const char *dir, const char *variant,
                 int keep_dtype) {
  memset(v, 0, sizeof *v);
  v->be = be;
  v->act = sdr_backend_act_dtype(be, keep_dtype);
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", dir);
  if (sdr_vae_config_load(&v->cfg, path) != 0)
    return -1;
  size_t nfiles = 0;
  /* safetensors first, else the .bin (diffusers' use_safetensors=None) */
  char **files = sdr_find_weight_files(dir, NULL, "diffusion_pytorch_model", variant, -1, &nfiles);
  if (!files)
    return -1;
  int rc =
      sdr_weights_open(&v->weights, be, "vae", (const char *const *)files, (int)nfiles, keep_dtype);
  sdr_weight_files_free(files);
  if (rc != 0)
    return -1;
  /* bound slots found again after the struct moves by value (pipe:to, a given VAE), as
   * save_pretrained looks them up */
  sdr_weights_owner(&v->weights, v, sizeof *v);
  if (sdr_weights_keep_config(&v->weights, path) != 0 || bind_all(v) != 0 ||
      sdr_weights_finish(&v->weights) != 0) {
    sdr_vae_free(v);
    return -1;
  }
  return 0;
}

int sdr_vae_copy_to(sdr_vae *dst, const sdr_vae *src, sdr_backend *be, int keep_dtype) {
  memset(dst, 0, sizeof *dst);
  dst->cfg = src->cfg;
  dst->be = be;
  dst->act = sdr_backend_act_dtype(be, keep_dtype);
  if (sdr_weights_reopen(&dst->weights, &src->weights, be, keep_dtype) != 0)
    return -1;
  sdr_weights_owner(&dst->weights, dst, sizeof *dst);
  if (bind_all(dst) != 0 || sdr_weights_finish(&dst->weights) != 0) {
    sdr_vae_free(dst);
    return -1;
  }
  return 0;
}

static int bind_all(sdr_vae *v) {
  const int L2 = 2 * v->cfg.latent_channels, L = v->cfg.latent_channels;
  if (v->cfg.tiny)
    return sdr_autoencoder_tiny_bind(&v->tiny, &v->weights, &v->cfg.tiny_cfg, v->cfg.in_channels,
                                     v->cfg.out_channels, L) == 0
               ? 0
               : -1;
  int rc = bind_encoder(v) | bind_decoder(v);
  if (v->cfg.use_quant_conv) {
    rc |= sdr_weights_bind(&v->weights, &v->quant_w, "quant_conv.weight", 4,
                           (int64_t[]){L2, L2, 1, 1});
    rc |= sdr_weights_bind(&v->weights, &v->quant_b, "quant_conv.bias", 1, (int64_t[]){L2});
  }
  if (v->cfg.use_post_quant_conv) {
    rc |= sdr_weights_bind(&v->weights, &v->post_quant_w, "post_quant_conv.weight", 4,
                           (int64_t[]){L, L, 1, 1});
    rc |=
        sdr_weights_bind(&v->weights, &v->post_quant_b, "post_quant_conv.bias", 1, (int64_t[]){L});
  }
  return rc ? -1 : 0;
}

void sdr_vae_free(sdr_vae *v) {
  for (int i = 0; i < SDR_VAE_MAX_BLOCKS; i++) {
    free(v->encoder.blocks[i].resnets);
    free(v->decoder.blocks[i].resnets);
  }
  sdr_autoencoder_tiny_free(&v->tiny);
  sdr_weights_close(&v->weights);
  memset(v, 0, sizeof *v);
}

/* ---- forward --------------------------------------------------------------- */

/* UNetMidBlock2D: resnet, attention over the H*W positions (one head), resnet. x updated. */
static int mid_forward(sdr_backend *be, sdr_arena *a, sdr_tensor *x, const sdr_vae_mid *m,
                       int groups) {
  const int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], N = H * W;
  const int to_tokens[3] = {0, 2, 1};
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor h, n, tok, att, back;
  TRY(sdr_arena_tensor(a, &h, x->dtype, 4, x->shape));
  TRY(sdr_resnet_block_forward(be, a, &h, x, NULL, &m->resnets[0]));
  /* Attention: group_norm on (B, C, H*W), to (B, H*W, C), attend, back, + residual */
  TRY(sdr_arena_tensor(a, &n, x->dtype, 4, x->shape));
  TRY(sdr_group_norm(be, &n, &h, &m->attn_norm_w, &m->attn_norm_b, groups, VAE_EPS, 0));
  sdr_tensor n3, back3;
  TRY(sdr_tensor_reshape(&n3, &n, 3, (int64_t[]){B, C, N}));
  TRY(sdr_arena_tensor(a, &tok, x->dtype, 3, (int64_t[]){B, N, C}));
  TRY(sdr_permute(be, &tok, &n3, to_tokens));
  TRY(sdr_arena_tensor(a, &att, x->dtype, 3, (int64_t[]){B, N, C}));
  TRY(sdr_attn_layer_forward(be, a, &att, &tok, NULL, &m->attn));
  TRY(sdr_arena_tensor(a, &back, x->dtype, 4, x->shape));
  TRY(sdr_tensor_reshape(&back3, &back, 3, (int64_t[]){B, C, N}));
  TRY(sdr_permute(be, &back3, &att, to_tokens));
  TRY(sdr_binary(be, &h, &h, &back, SDR_BINARY_ADD));
  TRY(sdr_resnet_block_forward(be, a, x, &h, NULL, &m->resnets[1]));
  sdr_arena_release(a, mark);
  return 0;
fail:
  sdr_arena_release(a, mark);
  return -1;
}

/* conv2d into out of another dtype than in: through the arena, then cast. */
static int conv_into(sdr_backend *be, sdr_arena *a, sdr_tensor *out, const sdr_tensor *in,
                     const sdr_tensor *w, const sdr_tensor *b, int stride, int padding) {
  if (out->dtype == in->dtype)
    return sdr_conv2d(be, out, in, w, b, stride, padding);
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor o;
  int rc = sdr_arena_tensor(a, &o, in->dtype, out->ndim, out->shape);
  if (rc == 0)
    rc = sdr_conv2d(be, &o, in, w, b, stride, padding);
  if (rc == 0)
    rc = sdr_cast(be, out, &o);
  sdr_arena_release(a, mark);
  return rc;
}

/* conv_norm_out -> silu -> conv_out into out. */
static int head(sdr_backend *be, sdr_arena *a, sdr_tensor *out, const sdr_tensor *h,
                const sdr_vae_coder *c, int groups) {
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor n;
  TRY(sdr_arena_tensor(a, &n, h->dtype, 4, h->shape));
  TRY(sdr_group_norm(be, &n, h, &c->norm_out_w, &c->norm_out_b, groups, VAE_EPS, 1));
  TRY(conv_into(be, a, out, &n, &c->conv_out_w, &c->conv_out_b, 1, 1));
  sdr_arena_release(a, mark);
  return 0;
fail:
  sdr_arena_release(a, mark);
  return -1;
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

int sdr_vae_encode(sdr_vae *v, sdr_arena *a, sdr_tensor *moments, const sdr_tensor *x) {
  const sdr_vae_config *c = &v->cfg;
  sdr_backend *be = v->be;
  const int n = c->nblocks, f = sdr_vae_scale_factor(v);
  if (x->ndim != 4 || x->shape[1] != c->in_channels)
    return sdr_fail("vae.encode: the image must be (batch, %d, height, width)", c->in_channels);
  const int64_t B = x->shape[0];
  int64_t H = x->shape[2], W = x->shape[3];
  if (H % f || W % f)
    return sdr_fail("vae.encode: the image is %lldx%lld; its sides must be multiples of %d",
                    (long long)W, (long long)H, f);
  if (c->tiny)
    return sdr_autoencoder_tiny_encode(&v->tiny, be, a, v->act, moments, x);
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor h, next, xa;
  sdr_pingpong pp;
  int64_t most = B * c->block_out_channels[0] * H * W; /* conv_in's output */
  for (int i = 0, h_ = (int)H, w_ = (int)W; i < n; i++) {
    most = max64(most, B * c->block_out_channels[i] * h_ * w_);
    if (v->encoder.blocks[i].has_sample) {
      h_ = (int)sdr_downsample_size(&v->encoder.blocks[i].down, h_);
      w_ = (int)sdr_downsample_size(&v->encoder.blocks[i].down, w_);
    }
  }
  TRY(sdr_arena_as(a, &xa, x, v->act));
  TRY(sdr_pingpong_init(a, &pp, v->act, most));
  TRY(sdr_pingpong_take(&pp, &h, (int64_t[]){B, c->block_out_channels[0], H, W}));
  TRY(sdr_conv2d(be, &h, &xa, &v->encoder.conv_in_w, &v->encoder.conv_in_b, 1, 1));
  for (int i = 0; i < n; i++) {
    const sdr_vae_block *b = &v->encoder.blocks[i];
    const int64_t ch = c->block_out_channels[i];
    for (int j = 0; j < b->nlayers; j++) {
      TRY(sdr_pingpong_take(&pp, &next, (int64_t[]){B, ch, H, W}));
      TRY(sdr_resnet_block_forward(be, a, &next, &h, NULL, &b->resnets[j]));
      h = next;
    }
    if (b->has_sample) {
      H = sdr_downsample_size(&b->down, H);
      W = sdr_downsample_size(&b->down, W);
      TRY(sdr_pingpong_take(&pp, &next, (int64_t[]){B, ch, H, W}));
      TRY(sdr_downsample_forward(be, a, &next, &h, &b->down));
      h = next;
    }
  }
  TRY(mid_forward(be, a, &h, &v->encoder.mid, c->norm_num_groups));
  const int64_t L2 = 2 * c->latent_channels;
  if (c->use_quant_conv) {
    TRY(sdr_arena_tensor(a, &next, v->act, 4, (int64_t[]){B, L2, H, W}));
    TRY(head(be, a, &next, &h, &v->encoder, c->norm_num_groups));
    TRY(conv_into(be, a, moments, &next, &v->quant_w, &v->quant_b, 1, 0));
  } else {
    TRY(head(be, a, moments, &h, &v->encoder, c->norm_num_groups));
  }
  sdr_arena_release(a, mark);
  return 0;
fail:
  sdr_arena_release(a, mark);
  return -1;
}

int sdr_vae_decode(sdr_vae *v, sdr_arena *a, sdr_tensor *image, const sdr_tensor *z) {
  const sdr_vae_config *c = &v->cfg;
  sdr_backend *be = v->be;
  const int n = c->nblocks;
  if (z->ndim != 4 || z->shape[1] != c->latent_channels)
    return sdr_fail("vae.decode: latents must be (batch, %d, height, width)", c->latent_channels);
  if (c->tiny)
    return sdr_autoencoder_tiny_decode(&v->tiny, be, a, v->act, image, z);
  const int64_t B = z->shape[0];
  int64_t H = z->shape[2], W = z->shape[3];
  const int64_t Cl = c->block_out_channels[n - 1];
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor h, next, zq, za;
  sdr_pingpong pp;
  int64_t most = B * Cl * H * W; /* conv_in's and the mid block's */
  for (int i = 0, s = 1; i < n; i++) {
    const int64_t ch = c->block_out_channels[n - 1 - i];
    most = max64(most, B * ch * H * W * s * s);
    if (v->decoder.blocks[i].has_sample)
      most = max64(most, B * ch * H * W * (2 * s) * (2 * s)), s *= 2;
  }
  TRY(sdr_arena_as(a, &za, z, v->act));
  const sdr_tensor *in = &za;
  if (c->use_post_quant_conv) {
    TRY(sdr_arena_tensor(a, &zq, v->act, 4, z->shape));
    TRY(sdr_conv2d(be, &zq, &za, &v->post_quant_w, &v->post_quant_b, 1, 0));
    in = &zq;
  }
  TRY(sdr_pingpong_init(a, &pp, v->act, most));
  TRY(sdr_pingpong_take(&pp, &h, (int64_t[]){B, Cl, H, W}));
  TRY(sdr_conv2d(be, &h, in, &v->decoder.conv_in_w, &v->decoder.conv_in_b, 1, 1));
  TRY(mid_forward(be, a, &h, &v->decoder.mid, c->norm_num_groups));
  for (int i = 0; i < n; i++) {
    const sdr_vae_block *b = &v->decoder.blocks[i];
    const int64_t ch = c->block_out_channels[n - 1 - i];
    for (int j = 0; j < b->nlayers; j++) {
      TRY(sdr_pingpong_take(&pp, &next, (int64_t[]){B, ch, H, W}));
      TRY(sdr_resnet_block_forward(be, a, &next, &h, NULL, &b->resnets[j]));
      h = next;
    }
    if (b->has_sample) {
      H *= 2;
      W *= 2;
      TRY(sdr_pingpong_take(&pp, &next, (int64_t[]){B, ch, H, W}));
      TRY(sdr_upsample_forward(be, a, &next, &h, &b->up));
      h = next;
    }
  }
  TRY(head(be, a, image, &h, &v->decoder, c->norm_num_groups));
  sdr_arena_release(a, mark);
  return 0;
fail:
  sdr_arena_release(a, mark);
  return -1;
}

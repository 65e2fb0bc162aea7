/* engine/unet.c — UNet2DConditionModel: config, weights, forward pass. */
#include "engine/unet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "engine/error.h"        // sdr_fail
#include "engine/model_config.h" // sdr_json, sdr_find_weight_files

#define TRY(x)                                                                                     \
  do {                                                                                             \
    if ((x) != 0)                                                                                  \
      goto fail;                                                                                   \
  } while (0)

/* ---- config -------------------------------------------------------------- */

/* A key that is one integer or one per block (diffusers accepts both). */
static int per_block(const sdr_json *j, const char *key, int n, int *out, int dflt) {
  long long v[SDR_UNET_MAX_BLOCKS];
  int got = 0;
  if (!sdr_json_has(j, key)) {
    for (int i = 0; i < n; i++)
      out[i] = dflt;
    return 0;
  }
  if (sdr_json_int_array(j, key, v, SDR_UNET_MAX_BLOCKS, &got, n) != 0)
    return -1;
  if (got != n)
    return sdr_fail("%s: \"%s\" has %d entries for %d blocks", j->path, key, got, n);
  for (int i = 0; i < n; i++) {
    if (v[i] <= 0 || v[i] > 1 << 16)
      return sdr_fail("%s: \"%s\" entry %d is %lld", j->path, key, i, v[i]);
    out[i] = (int)v[i];
  }
  return 0;
}

/* One entry of transformer_layers_per_block (or of the reverse list): a depth for every one
 * of the block's n layers, or a list of n depths. */
static int depths_of(const sdr_json *j, const char *key, int block, const cJSON *v, int n,
                     int *out) {
  if (cJSON_IsNumber(v)) {
    for (int k = 0; k < n; k++)
      out[k] = (int)v->valuedouble;
  } else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) >= n) {
    /* diffusers reads the first n (a longer list is not refused there) */
    int k = 0;
    for (const cJSON *x = v->child; x && k < n; x = x->next, k++) {
      if (!cJSON_IsNumber(x))
        return sdr_fail("%s: \"%s\"[%d][%d]: expected an integer", j->path, key, block, k);
      out[k] = (int)x->valuedouble;
    }
  } else {
    return sdr_fail("%s: \"%s\"[%d]: expected an integer or a list of %d (one per layer)", j->path,
                    key, block, n);
  }
  for (int k = 0; k < n; k++)
    if (out[k] <= 0 || out[k] > 1 << 16)
      return sdr_fail("%s: \"%s\"[%d]: a depth of %d", j->path, key, block, out[k]);
  return 0;
}

/* transformer_layers_per_block (an integer, or per block an integer or per layer a list) and
 * reverse_transformer_layers_per_block, as UNet2DConditionModel's __init__ spreads them. */
static int parse_depths(sdr_unet_config *c, const sdr_json *j, int with_up) {
  const char *key = "transformer_layers_per_block", *rkey = "reverse_transformer_layers_per_block";
  const int n = c->nblocks;
  const cJSON *v = sdr_json_get(j, key), *rv = sdr_json_get(j, rkey);
  cJSON one = {.type = cJSON_Number, .valuedouble = 1, .valueint = 1};
  const cJSON *entry[SDR_UNET_MAX_BLOCKS];
  int nested = 0;
  if (!v || cJSON_IsNull(v) || cJSON_IsNumber(v)) {
    for (int i = 0; i < n; i++)
      entry[i] = v && cJSON_IsNumber(v) ? v : &one;
  } else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == n) {
    int i = 0;
    for (const cJSON *x = v->child; x; x = x->next, i++) {
      entry[i] = x;
      nested |= cJSON_IsArray(x);
    }
  } else {
    return sdr_fail("%s: \"%s\" must be an integer or a list of %d entries (one per block)",
                    j->path, key, n);
  }
  for (int i = 0; i < n; i++)
    if (depths_of(j, key, i, entry[i], c->layers_per_block[i], c->depth_down[i]) != 0)
      return -1;
  /* the mid block's one attention: the last block's entry (its first, when a list) */
  int mid[1];
  if (depths_of(j, key, n - 1, entry[n - 1], 1, mid) != 0)
    return -1;
  c->depth_mid = mid[0];
  if (!with_up)
    return 0;
  const int reversed = rv && !cJSON_IsNull(rv);
  if (nested && !reversed)
    return sdr_fail("%s: a \"%s\" with per-layer lists (an asymmetric UNet) needs \"%s\", as "
                    "diffusers says",
                    j->path, key, rkey);
  if (reversed && (!cJSON_IsArray(rv) || cJSON_GetArraySize(rv) != n))
    return sdr_fail("%s: \"%s\" must be a list of %d entries (one per up block)", j->path, rkey, n);
  for (int i = 0; i < n; i++) {
    const int r = n - 1 - i;
    if (depths_of(j, reversed ? rkey : key, reversed ? i : r,
                  reversed ? cJSON_GetArrayItem(rv, i) : entry[r], c->layers_per_block[r] + 1,
                  c->depth_up[i]) != 0)
      return -1;
  }
  return 0;
}

/* Config values diffusers supports but SD 1.x/2.x UNets never use: refused by name. */
static int refuse(const sdr_json *j, const char *key, const char *want) {
  if (!sdr_json_has(j, key))
    return 0;
  const char *s = sdr_json_string_or(j, key, NULL);
  if (want && s && strcmp(s, want) == 0)
    return 0;
  if (!want && !s && sdr_json_bool_or(j, key, 0) == 0)
    return 0;
  return sdr_fail("%s: \"%s\" = %s is not supported (SD 1.x/2.x UNets only)", j->path, key,
                  s ? s : "a value");
}

int sdr_unet_config_parse(sdr_unet_config *c, const sdr_json *j, int with_up) {
  memset(c, 0, sizeof *c);
  const char *path = j->path;
  int rc = -1;
  long long v;
  const char *down_types[SDR_UNET_MAX_BLOCKS], *up_types[SDR_UNET_MAX_BLOCKS];
  int nd = 0, nu = 0;
  long long boc[SDR_UNET_MAX_BLOCKS];
  int n = 0;
  TRY(sdr_json_int_array(j, "block_out_channels", boc, SDR_UNET_MAX_BLOCKS, &n, 0));
  if (n < 1) {
    sdr_fail("%s: \"block_out_channels\" is empty", path);
    goto fail;
  }
  c->nblocks = n;
  for (int i = 0; i < n; i++)
    c->block_out_channels[i] = (int)boc[i];
  TRY(sdr_json_string_array(j, "down_block_types", down_types, SDR_UNET_MAX_BLOCKS, &nd));
  if (with_up)
    TRY(sdr_json_string_array(j, "up_block_types", up_types, SDR_UNET_MAX_BLOCKS, &nu));
  else /* ControlNetModel: the down half only */
    for (nu = 0; nu < n; nu++)
      up_types[nu] = "UpBlock2D";
  if (nd != n || nu != n) {
    sdr_fail("%s: %d block_out_channels but %d down and %d up block types", path, n, nd, nu);
    goto fail;
  }
  for (int i = 0; i < n; i++) {
    c->down_attn[i] = strcmp(down_types[i], "CrossAttnDownBlock2D") == 0;
    c->up_attn[i] = strcmp(up_types[i], "CrossAttnUpBlock2D") == 0;
    if (!c->down_attn[i] && strcmp(down_types[i], "DownBlock2D") != 0) {
      sdr_fail("%s: down block type \"%s\" is not supported", path, down_types[i]);
      goto fail;
    }
    if (!c->up_attn[i] && strcmp(up_types[i], "UpBlock2D") != 0) {
      sdr_fail("%s: up block type \"%s\" is not supported", path, up_types[i]);
      goto fail;
    }
  }
  TRY(sdr_json_int_opt(j, "in_channels", 4, &v));
  c->in_channels = (int)v;
  TRY(sdr_json_int_opt(j, "out_channels", 4, &v));
  c->out_channels = (int)v;
  TRY(sdr_json_int_opt(j, "sample_size", 64, &v));
  c->sample_size = (int)v;
  /* version.parse(_diffusers_version).base_version < 0.9.0 (StableDiffusionPipeline's check) */
  const char *version = sdr_json_string_or(j, "_diffusers_version", NULL);
  int major = 0, minor = 0;
  if (version && sscanf(version, "%d.%d", &major, &minor) == 2)
    c->before_0_9 = major == 0 && minor < 9;
  TRY(per_block(j, "layers_per_block", n, c->layers_per_block, 2));
  for (int i = 0; i < n; i++)
    if (c->layers_per_block[i] > SDR_UNET_MAX_LAYERS) {
      sdr_fail("%s: \"layers_per_block\" is %d; at most %d are supported", path,
               c->layers_per_block[i], SDR_UNET_MAX_LAYERS);
      goto fail;
    }
  /* diffusers' old naming: attention_head_dim holds the number of heads when
   * num_attention_heads is not given. */
  if (sdr_json_has(j, "num_attention_heads"))
    TRY(per_block(j, "num_attention_heads", n, c->heads, 8));
  else
    TRY(per_block(j, "attention_head_dim", n, c->heads, 8));
  TRY(parse_depths(c, j, with_up));
  TRY(per_block(j, "cross_attention_dim", n, c->cross_attention_dim, 1280));
  TRY(sdr_json_int_opt(j, "norm_num_groups", 32, &v));
  c->norm_num_groups = (int)v;
  double d;
  TRY(sdr_json_number_opt(j, "norm_eps", 1e-5, &d));
  c->norm_eps = (float)d;
  TRY(sdr_json_bool_opt(j, "flip_sin_to_cos", 1, &c->flip_sin_to_cos));
  TRY(sdr_json_number_opt(j, "freq_shift", 0, &d));
  c->freq_shift = (float)d;
  TRY(sdr_json_bool_opt(j, "use_linear_projection", 0, &c->use_linear_projection));
  TRY(sdr_json_int_opt(j, "downsample_padding", 1, &v));
  c->downsample_padding = (int)v;
  TRY(sdr_json_number_opt(j, "mid_block_scale_factor", 1, &d));
  c->mid_block_scale_factor = (float)d;
  TRY(refuse(j, "act_fn", "silu"));
  const cJSON *mid = sdr_json_get(j, "mid_block_type");
  c->has_mid_block = !cJSON_IsNull(mid); /* absent means the default, UNetMidBlock2DCrossAttn */
  TRY(refuse(j, "mid_block_type", "UNetMidBlock2DCrossAttn"));
  TRY(refuse(j, "time_embedding_type", "positional"));
  TRY(refuse(j, "resnet_time_scale_shift", "default"));
  TRY(refuse(j, "class_embed_type", NULL));
  const cJSON *nce = sdr_json_get(j, "num_class_embeds");
  if (nce && !cJSON_IsNull(nce)) { /* with class_embed_type null: an nn.Embedding */
    if (!cJSON_IsNumber(nce) || nce->valuedouble < 1 || nce->valuedouble > (1 << 20) ||
        nce->valuedouble != (int)nce->valuedouble) {
      sdr_fail("%s: \"num_class_embeds\" must be a positive integer or null", path);
      goto fail;
    }
    c->num_class_embeds = (int)nce->valuedouble;
  }
  const cJSON *aet = sdr_json_get(j, "addition_embed_type");
  if (cJSON_IsString(aet) && strcmp(aet->valuestring, "text_time") == 0) {
    long long td = 0, pd = 0;
    TRY(sdr_json_int_opt(j, "addition_time_embed_dim", 0, &td));
    TRY(sdr_json_int_opt(j, "projection_class_embeddings_input_dim", 0, &pd));
    /* the pooled text plus 5 time ids (a refiner's, with the aesthetic score) or 6 */
    if (td < 1 || td > (1 << 16) || td % 2 || pd <= 5 * td || pd > (1 << 20)) {
      sdr_fail("%s: addition_embed_type \"text_time\" needs an even addition_time_embed_dim "
               "and a projection_class_embeddings_input_dim above 5 times it",
               path);
      goto fail;
    }
    c->addition_time_embed_dim = (int)td;
    c->projection_class_embeddings_input_dim = (int)pd;
  } else {
    TRY(refuse(j, "addition_embed_type", NULL));
  }
  TRY(sdr_json_bool_opt(j, "center_input_sample", 0, &c->center_input_sample));
  TRY(refuse(j, "dual_cross_attention", NULL));
  /* only_cross_attention: one boolean for every block, or one per down block */
  const cJSON *oca = sdr_json_get(j, "only_cross_attention");
  if (cJSON_IsArray(oca)) {
    if (cJSON_GetArraySize(oca) != n) {
      sdr_fail("%s: \"only_cross_attention\" has %d entries for %d blocks", path,
               cJSON_GetArraySize(oca), n);
      goto fail;
    }
    for (int i = 0; i < n; i++)
      c->only_cross[i] = cJSON_IsTrue(cJSON_GetArrayItem(oca, i));
  } else if (cJSON_IsTrue(oca)) {
    for (int i = 0; i < n; i++)
      c->only_cross[i] = 1;
  }
  /* upcast_attention (SD 2.1) only matters in half precision: the CPU computes
   * attention in float32 always, the GPU accumulates in float32. */
  const cJSON *tc = sdr_json_get(j, "time_cond_proj_dim");
  if (tc && !cJSON_IsNull(tc)) {
    if (!cJSON_IsNumber(tc) || tc->valuedouble < 1 || tc->valuedouble > (1 << 16) ||
        tc->valuedouble != (int)tc->valuedouble) {
      sdr_fail("%s: \"time_cond_proj_dim\" must be a positive integer or null", path);
      goto fail;
    }
    c->time_cond_proj_dim = (int)tc->valuedouble;
  }
  TRY(refuse(j, "encoder_hid_dim", NULL));
  TRY(refuse(j, "encoder_hid_dim_type", NULL));
  /* options of other UNets that would change the numbers: refused, never ignored */
  TRY(refuse(j, "timestep_post_act", NULL));
  TRY(refuse(j, "time_embedding_act_fn", NULL));
  TRY(refuse(j, "cross_attention_norm", NULL));
  TRY(refuse(j, "attention_type", "default"));
  TRY(refuse(j, "resnet_skip_time_act", NULL));
  TRY(refuse(j, "class_embeddings_concat", NULL));
  if (sdr_json_number_or(j, "resnet_out_scale_factor", 1.0) != 1.0) {
    sdr_fail("%s: \"resnet_out_scale_factor\" other than 1.0 is not supported (SD 1.x/2.x UNets "
             "only)",
             path);
    goto fail;
  }
  const cJSON *ted = sdr_json_get(j, "time_embedding_dim");
  if (ted && !cJSON_IsNull(ted) &&
      !(cJSON_IsNumber(ted) && ted->valuedouble == 4.0 * c->block_out_channels[0])) {
    sdr_fail("%s: \"time_embedding_dim\" other than 4 * block_out_channels[0] is not supported",
             path);
    goto fail;
  }
  if (sdr_json_int_or(j, "conv_in_kernel", 3) != 3 ||
      sdr_json_int_or(j, "conv_out_kernel", 3) != 3) {
    sdr_fail("%s: only 3x3 conv_in and conv_out kernels are supported", path);
    goto fail;
  }
  for (int i = 0; i < n; i++) {
    if (c->block_out_channels[i] % c->norm_num_groups) {
      sdr_fail("%s: block_out_channels[%d] = %d is not a multiple of norm_num_groups %d", path, i,
               c->block_out_channels[i], c->norm_num_groups);
      goto fail;
    }
    if ((c->down_attn[i] || c->up_attn[n - 1 - i] || i == n - 1) &&
        c->block_out_channels[i] % c->heads[i]) {
      sdr_fail("%s: block %d: %d channels do not split into %d heads", path, i,
               c->block_out_channels[i], c->heads[i]);
      goto fail;
    }
  }
  rc = 0;
fail:
  return rc;
}

int sdr_unet_config_load(sdr_unet_config *c, const char *path) {
  sdr_json j;
  if (sdr_json_load(&j, path) != 0)
    return -1;
  int rc = sdr_unet_config_parse(c, &j, 1);
  sdr_json_free(&j);
  return rc;
}

/* ---- weights --------------------------------------------------------------- */

static int bind_block_attn(sdr_transformer_2d *t, sdr_weights *w, const char *prefix, int ch,
                           int heads, int layers, int ctx, const sdr_unet_config *c,
                           int only_cross) {
  return sdr_transformer_2d_bind(t, w, prefix, ch, heads, ch / heads, layers, c->norm_num_groups,
                                 ctx, c->use_linear_projection, only_cross);
}

int sdr_unet_bind_down(sdr_unet *u) {
  const sdr_unet_config *c = &u->cfg;
  sdr_weights *w = &u->weights;
  const int n = c->nblocks, C0 = c->block_out_channels[0], T = 4 * C0;
  char p[256];
  int rc = 0;
  rc |= sdr_weights_bind(w, &u->conv_in_w, "conv_in.weight", 4,
                         (int64_t[]){C0, c->in_channels, 3, 3});
  rc |= sdr_weights_bind(w, &u->conv_in_b, "conv_in.bias", 1, (int64_t[]){C0});
  rc |= sdr_weights_bind(w, &u->time_1_w, "time_embedding.linear_1.weight", 2, (int64_t[]){T, C0});
  rc |= sdr_weights_bind(w, &u->time_1_b, "time_embedding.linear_1.bias", 1, (int64_t[]){T});
  rc |= sdr_weights_bind(w, &u->time_2_w, "time_embedding.linear_2.weight", 2, (int64_t[]){T, T});
  rc |= sdr_weights_bind(w, &u->time_2_b, "time_embedding.linear_2.bias", 1, (int64_t[]){T});
  if (c->time_cond_proj_dim)
    rc |= sdr_weights_bind(w, &u->time_cond_w, "time_embedding.cond_proj.weight", 2,
                           (int64_t[]){C0, c->time_cond_proj_dim});
  if (c->num_class_embeds)
    rc |= sdr_weights_bind(w, &u->class_w, "class_embedding.weight", 2,
                           (int64_t[]){c->num_class_embeds, T});
  if (c->addition_time_embed_dim) {
    rc |= sdr_weights_bind(w, &u->add_1_w, "add_embedding.linear_1.weight", 2,
                           (int64_t[]){T, c->projection_class_embeddings_input_dim});
    rc |= sdr_weights_bind(w, &u->add_1_b, "add_embedding.linear_1.bias", 1, (int64_t[]){T});
    rc |= sdr_weights_bind(w, &u->add_2_w, "add_embedding.linear_2.weight", 2, (int64_t[]){T, T});
    rc |= sdr_weights_bind(w, &u->add_2_b, "add_embedding.linear_2.bias", 1, (int64_t[]){T});
  }

  int out_ch = C0;
  for (int i = 0; i < n; i++) {
    sdr_unet_block *b = &u->down[i];
    int in_ch = out_ch;
    out_ch = c->block_out_channels[i];
    b->nlayers = c->layers_per_block[i];
    b->has_attn = c->down_attn[i];
    b->has_sample = i < n - 1;
    b->resnets = calloc((size_t)b->nlayers, sizeof *b->resnets);
    b->attns = b->has_attn ? calloc((size_t)b->nlayers, sizeof *b->attns) : NULL;
    if (!b->resnets || (b->has_attn && !b->attns))
      return sdr_fail("out of memory");
    for (int j = 0; j < b->nlayers; j++) {
      snprintf(p, sizeof p, "down_blocks.%d.resnets.%d", i, j);
      rc |= sdr_resnet_block_bind(&b->resnets[j], w, p, j == 0 ? in_ch : out_ch, out_ch, T,
                                  c->norm_num_groups, c->norm_eps, 1.0f);
      if (b->has_attn) {
        snprintf(p, sizeof p, "down_blocks.%d.attentions.%d", i, j);
        rc |= bind_block_attn(&b->attns[j], w, p, out_ch, c->heads[i], c->depth_down[i][j],
                              c->cross_attention_dim[i], c, c->only_cross[i]);
      }
    }
    if (b->has_sample) {
      snprintf(p, sizeof p, "down_blocks.%d.downsamplers.0", i);
      rc |= sdr_downsample_bind(&b->down, w, p, out_ch, c->downsample_padding);
    }
  }

  const int Cm = c->block_out_channels[n - 1];
  for (int j = 0; j < 2 && c->has_mid_block; j++) {
    snprintf(p, sizeof p, "mid_block.resnets.%d", j);
    rc |= sdr_resnet_block_bind(&u->mid_resnets[j], w, p, Cm, Cm, T, c->norm_num_groups,
                                c->norm_eps, c->mid_block_scale_factor);
  }
  if (c->has_mid_block)
    rc |= bind_block_attn(&u->mid_attn, w, "mid_block.attentions.0", Cm, c->heads[n - 1],
                          c->depth_mid, c->cross_attention_dim[n - 1], c, 0);
  return rc ? -1 : 0;
}

static int bind(sdr_unet *u) {
  const sdr_unet_config *c = &u->cfg;
  sdr_weights *w = &u->weights;
  const int n = c->nblocks, C0 = c->block_out_channels[0], T = 4 * C0;
  char p[256];
  int rc = sdr_unet_bind_down(u);

  /* Up blocks walk the channels backwards; each resnet takes the running
   * features plus one skip from the down path (unet_2d_blocks.CrossAttnUpBlock2D). */
  int out_ch = c->block_out_channels[n - 1];
  for (int i = 0; i < n; i++) {
    const int r = n - 1 - i; /* the down block this up block mirrors */
    sdr_unet_block *b = &u->up[i];
    int prev_out = out_ch;
    out_ch = c->block_out_channels[r];
    int in_ch = c->block_out_channels[r > 0 ? r - 1 : 0];
    b->nlayers = c->layers_per_block[r] + 1;
    b->has_attn = c->up_attn[i];
    b->has_sample = i < n - 1;
    b->resnets = calloc((size_t)b->nlayers, sizeof *b->resnets);
    b->attns = b->has_attn ? calloc((size_t)b->nlayers, sizeof *b->attns) : NULL;
    if (!b->resnets || (b->has_attn && !b->attns))
      return sdr_fail("out of memory");
    for (int j = 0; j < b->nlayers; j++) {
      int skip = j == b->nlayers - 1 ? in_ch : out_ch;
      int res_in = j == 0 ? prev_out : out_ch;
      snprintf(p, sizeof p, "up_blocks.%d.resnets.%d", i, j);
      rc |= sdr_resnet_block_bind(&b->resnets[j], w, p, res_in + skip, out_ch, T,
                                  c->norm_num_groups, c->norm_eps, 1.0f);
      if (b->has_attn) {
        snprintf(p, sizeof p, "up_blocks.%d.attentions.%d", i, j);
        rc |= bind_block_attn(&b->attns[j], w, p, out_ch, c->heads[r], c->depth_up[i][j],
                              c->cross_attention_dim[r], c, c->only_cross[r]);
      }
    }
    if (b->has_sample) {
      snprintf(p, sizeof p, "up_blocks.%d.upsamplers.0", i);
      rc |= sdr_upsample_bind(&b->up, w, p, out_ch);
    }
  }
  rc |= sdr_weights_bind(w, &u->norm_out_w, "conv_norm_out.weight", 1, (int64_t[]){C0});
  rc |= sdr_weights_bind(w, &u->norm_out_b, "conv_norm_out.bias", 1, (int64_t[]){C0});
  rc |= sdr_weights_bind(w, &u->conv_out_w, "conv_out.weight", 4,
                         (int64_t[]){c->out_channels, C0, 3, 3});
  rc |= sdr_weights_bind(w, &u->conv_out_b, "conv_out.bias", 1, (int64_t[]){c->out_channels});
  return rc ? -1 : 0;
}

int sdr_unet_load(sdr_unet *u, sdr_backend *be, const char *dir, const char *variant,
                  int keep_dtype) {
  memset(u, 0, sizeof *u);
  u->be = be;
  u->act = sdr_backend_act_dtype(be, keep_dtype);
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", dir);
  if (sdr_unet_config_load(&u->cfg, path) != 0)
    return -1;
  size_t nfiles = 0;
  /* safetensors first, else the .bin (diffusers' use_safetensors=None) */
  char **files = sdr_find_weight_files(dir, NULL, "diffusion_pytorch_model", variant, -1, &nfiles);
  if (!files)
    return -1;
  int rc = sdr_weights_open(&u->weights, be, "unet", (const char *const *)files, (int)nfiles,
                            keep_dtype);
  sdr_weight_files_free(files);
  if (rc != 0)
    return -1;
  sdr_weights_owner(&u->weights, u, sizeof *u);
  if (sdr_weights_keep_config(&u->weights, path) != 0 || bind(u) != 0 ||
      sdr_weights_finish(&u->weights) != 0) {
    sdr_unet_free(u);
    return -1;
  }
  return 0;
}

int sdr_unet_copy_to(sdr_unet *dst, const sdr_unet *src, sdr_backend *be, int keep_dtype) {
  memset(dst, 0, sizeof *dst);
  dst->cfg = src->cfg;
  dst->be = be;
  dst->act = sdr_backend_act_dtype(be, keep_dtype);
  dst->freeu = (sdr_freeu){src->freeu.s1, src->freeu.s2, src->freeu.b1, src->freeu.b2, {{0}}};
  if (sdr_weights_reopen(&dst->weights, &src->weights, be, keep_dtype) != 0)
    return -1;
  sdr_weights_owner(&dst->weights, dst, sizeof *dst);
  if (bind(dst) != 0 || sdr_weights_finish(&dst->weights) != 0) {
    sdr_unet_free(dst);
    return -1;
  }
  return 0;
}

static void free_block(sdr_unet_block *b) {
  if (b->attns)
    for (int j = 0; j < b->nlayers; j++)
      sdr_transformer_2d_free(&b->attns[j]);
  free(b->attns);
  free(b->resnets);
}

void sdr_unet_free(sdr_unet *u) {
  for (int i = 0; i < SDR_UNET_MAX_BLOCKS; i++) {
    free_block(&u->down[i]);
    free_block(&u->up[i]);
  }
  sdr_transformer_2d_free(&u->mid_attn);
  free(u->ip_layers);
  if (u->be)
    sdr_freeu_free(&u->freeu, u->be);
  sdr_weights_close(&u->weights);
  memset(u, 0, sizeof *u);
}

static int block_cross_attns(sdr_unet_block *b, sdr_attn_layer **out, int n, int max) {
  for (int j = 0; b->has_attn && j < b->nlayers; j++)
    for (int k = 0; k < b->attns[j].layers; k++)
      if (n < max)
        out[n++] = &b->attns[j].blocks[k].attn2;
      else
        return -1;
  return n;
}

int sdr_unet_cross_attns(sdr_unet *u, sdr_attn_layer **out, int max) {
  int n = 0;
  for (int i = 0; i < u->cfg.nblocks && n >= 0; i++)
    n = block_cross_attns(&u->down[i], out, n, max);
  for (int i = 0; i < u->cfg.nblocks && n >= 0; i++)
    n = block_cross_attns(&u->up[i], out, n, max);
  for (int k = 0; u->cfg.has_mid_block && n >= 0 && k < u->mid_attn.layers; k++)
    if (n < max)
      out[n++] = &u->mid_attn.blocks[k].attn2;
    else
      n = -1;
  return n < 0 ? sdr_fail("unet: more than %d cross-attention layers", max) : n;
}

/* ---- forward --------------------------------------------------------------- */

int sdr_unet_skip_shapes(const sdr_unet *u, int64_t B, int64_t H, int64_t W, int64_t shapes[][4]) {
  const sdr_unet_config *c = &u->cfg;
  int n = 0;
  memcpy(shapes[n++], (int64_t[]){B, c->block_out_channels[0], H, W}, sizeof shapes[0]);
  for (int i = 0; i < c->nblocks; i++) {
    const sdr_unet_block *b = &u->down[i];
    for (int j = 0; j < b->nlayers; j++)
      memcpy(shapes[n++], (int64_t[]){B, c->block_out_channels[i], H, W}, sizeof shapes[0]);
    if (b->has_sample) {
      H = sdr_downsample_size(&b->down, H);
      W = sdr_downsample_size(&b->down, W);
      memcpy(shapes[n++], (int64_t[]){B, c->block_out_channels[i], H, W}, sizeof shapes[0]);
    }
  }
  return n;
}

int sdr_unet_check_added(const sdr_unet *u, int64_t B, const sdr_tensor *te, const sdr_tensor *ti,
                         const char *who) {
  const sdr_unet_config *c = &u->cfg;
  if (c->addition_time_embed_dim) {
    const int64_t P = c->projection_class_embeddings_input_dim;
    if (!te || !ti)
      return sdr_fail("%s: this model (addition_embed_type \"text_time\", SDXL's) takes "
                      "added_cond_kwargs text_embeds and time_ids",
                      who);
    if (te->ndim != 2 || te->shape[0] != B || ti->ndim != 2 || ti->shape[0] != B ||
        te->shape[1] + ti->shape[1] * c->addition_time_embed_dim != P)
      return sdr_fail("%s: added_cond_kwargs: text_embeds (%lld, width) and time_ids (%lld, n) "
                      "with width + n * %d = %lld expected",
                      who, (long long)B, (long long)B, c->addition_time_embed_dim, (long long)P);
  } else if (te || ti) {
    return sdr_fail("%s: text_embeds and time_ids given to a model without "
                    "addition_embed_type \"text_time\"",
                    who);
  }
  return 0;
}

/* get_aug_embed's "text_time": add_embedding(cat(text_embeds, add_time_proj(time_ids)))
 * added to emb. The time ids' sinusoids are computed in float32, as Timesteps does. */
static int add_text_time(sdr_unet *u, sdr_arena *a, sdr_tensor *emb, const sdr_unet_cond *cond) {
  const sdr_unet_config *c = &u->cfg;
  sdr_backend *be = u->be;
  const sdr_tensor *te = cond->text_embeds, *ti = cond->time_ids;
  const int64_t B = emb->shape[0], n = ti->shape[1], td = c->addition_time_embed_dim;
  const int64_t T = emb->shape[1];
  sdr_tensor ids, flat, sines, sines2, text, in, h1, h2;
  TRY(sdr_arena_as(a, &ids, ti, SDR_F32));
  TRY(sdr_tensor_reshape(&flat, &ids, 1, (int64_t[]){B * n}));
  TRY(sdr_arena_tensor(a, &sines, u->act, 2, (int64_t[]){B * n, td}));
  TRY(sdr_timestep_embedding(be, &sines, &flat, (int)td, c->flip_sin_to_cos, c->freq_shift, 1.0f,
                             10000));
  TRY(sdr_tensor_reshape(&sines2, &sines, 2, (int64_t[]){B, n * td}));
  TRY(sdr_arena_as(a, &text, te, u->act));
  TRY(sdr_arena_tensor(a, &in, u->act, 2, (int64_t[]){B, te->shape[1] + n * td}));
  TRY(sdr_concat(be, &in, &text, &sines2, 1));
  TRY(sdr_arena_tensor(a, &h1, u->act, 2, (int64_t[]){B, T}));
  TRY(sdr_arena_tensor(a, &h2, u->act, 2, (int64_t[]){B, T}));
  TRY(sdr_linear(be, &h1, &in, &u->add_1_w, &u->add_1_b));
  TRY(sdr_unary(be, &h1, &h1, SDR_UNARY_SILU));
  TRY(sdr_linear(be, &h2, &h1, &u->add_2_w, &u->add_2_b));
  TRY(sdr_binary(be, emb, emb, &h2, SDR_BINARY_ADD));
  return 0;
fail:
  return -1;
}

/* h += intrablock[k] in place (h is the block's fresh output, or the last skip with it),
 * cast to h's dtype, its batch 1 or h's. block: which down block, -1 for the mid block. */
static int add_intrablock(sdr_backend *be, sdr_arena *a, sdr_tensor *h, const sdr_unet_cond *cond,
                          int k, int block) {
  const sdr_tensor *r = &cond->intrablock[k];
  if (r->ndim != 4 || (r->shape[0] != 1 && r->shape[0] != h->shape[0]) ||
      r->shape[1] != h->shape[1] || r->shape[2] != h->shape[2] || r->shape[3] != h->shape[3]) {
    char what[32] = "the mid block";
    if (block >= 0)
      snprintf(what, sizeof what, "down block %d", block);
    return sdr_fail("unet: down_intrablock_additional_residuals[%d] does not fit %s's "
                    "%lldx%lldx%lld output (batch 1 or %lld): an adapter made for another UNet, "
                    "or pictures of another size?",
                    k + 1, what, (long long)h->shape[1], (long long)h->shape[2],
                    (long long)h->shape[3], (long long)h->shape[0]);
  }
  sdr_tensor rr;
  if (sdr_arena_as(a, &rr, r, h->dtype) != 0)
    return -1;
  return sdr_binary(be, h, h, &rr, SDR_BINARY_ADD);
}

int sdr_unet_down_forward(sdr_unet *u, sdr_arena *a, sdr_unet_down *o, const sdr_tensor *x,
                          const sdr_tensor *timesteps, const sdr_unet_cond *cond,
                          const sdr_tensor *add) {
  const sdr_attn_context *context = &cond->attn;
  const sdr_unet_config *c = &u->cfg;
  sdr_backend *be = u->be;
  const int n = c->nblocks, C0 = c->block_out_channels[0];
  const int64_t B = x->shape[0];
  int64_t H = x->shape[2], W = x->shape[3];
  o->nskips = 0;
  sdr_tensor emb, emb1, temb, h, next;

  /* time: sinusoidal projection, linear_1, silu, linear_2; resnets take silu(emb) */
  TRY(sdr_arena_tensor(a, &temb, u->act, 2, (int64_t[]){B, C0}));
  TRY(sdr_timestep_embedding(be, &temb, timesteps, C0, c->flip_sin_to_cos, c->freq_shift, 1.0f,
                             10000));
  if (cond->timestep_cond && c->time_cond_proj_dim) {
    /* TimestepEmbedding: sample + cond_proj(condition), before linear_1 */
    sdr_tensor tc;
    TRY(sdr_arena_tensor(a, &tc, u->act, 2, (int64_t[]){B, C0}));
    TRY(sdr_linear(be, &tc, cond->timestep_cond, &u->time_cond_w, NULL));
    TRY(sdr_binary(be, &temb, &temb, &tc, SDR_BINARY_ADD));
  }
  TRY(sdr_arena_tensor(a, &emb1, u->act, 2, (int64_t[]){B, 4 * C0}));
  TRY(sdr_arena_tensor(a, &emb, u->act, 2, (int64_t[]){B, 4 * C0}));
  TRY(sdr_arena_tensor(a, &o->temb, u->act, 2, (int64_t[]){B, 4 * C0}));
  TRY(sdr_linear(be, &emb1, &temb, &u->time_1_w, &u->time_1_b));
  TRY(sdr_unary(be, &emb1, &emb1, SDR_UNARY_SILU));
  TRY(sdr_linear(be, &emb, &emb1, &u->time_2_w, &u->time_2_b));
  if (c->num_class_embeds) { /* get_class_embed: the labels' rows, added */
    if (!cond->class_labels) {
      sdr_fail("class_labels should be provided when num_class_embeds > 0");
      goto fail;
    }
    sdr_tensor class_emb;
    TRY(sdr_arena_tensor(a, &class_emb, u->act, 2, (int64_t[]){B, 4 * C0}));
    TRY(sdr_embedding(be, &class_emb, &u->class_w, cond->class_labels));
    TRY(sdr_binary(be, &emb, &emb, &class_emb, SDR_BINARY_ADD));
  }
  if (c->addition_time_embed_dim)
    TRY(add_text_time(u, a, &emb, cond));
  TRY(sdr_unary(be, &o->temb, &emb, SDR_UNARY_SILU));

  TRY(sdr_arena_tensor(a, &h, u->act, 4, (int64_t[]){B, C0, H, W}));
  TRY(sdr_conv2d(be, &h, x, &u->conv_in_w, &u->conv_in_b, 1, 1));
  if (add)
    TRY(sdr_binary(be, &h, &h, add, SDR_BINARY_ADD));
  o->skips[o->nskips++] = h;

  int intra = 0; /* the next of cond->intrablock */
  for (int i = 0; i < n; i++) {
    const sdr_unet_block *b = &u->down[i];
    const int64_t ch = c->block_out_channels[i];
    for (int j = 0; j < b->nlayers; j++) {
      TRY(sdr_arena_tensor(a, &next, u->act, 4, (int64_t[]){B, ch, H, W}));
      TRY(sdr_resnet_block_forward(be, a, &next, &h, &o->temb, &b->resnets[j]));
      h = next;
      if (b->has_attn) {
        TRY(sdr_arena_tensor(a, &next, u->act, 4, (int64_t[]){B, ch, H, W}));
        TRY(sdr_transformer_2d_forward(be, a, &next, &h, context, &b->attns[j]));
        h = next;
        /* CrossAttnDownBlock2D's additional_residuals: after its last pair */
        if (j == b->nlayers - 1 && intra < cond->nintrablock)
          TRY(add_intrablock(be, a, &h, cond, intra++, i));
      }
      o->skips[o->nskips++] = h;
    }
    if (b->has_sample) {
      H = sdr_downsample_size(&b->down, H);
      W = sdr_downsample_size(&b->down, W);
      TRY(sdr_arena_tensor(a, &next, u->act, 4, (int64_t[]){B, ch, H, W}));
      TRY(sdr_downsample_forward(be, a, &next, &h, &b->down));
      h = next;
      o->skips[o->nskips++] = h;
    }
    /* a block without attention: `sample += ...` after it, in place, so its last skip (the
     * same tensor in diffusers) has it too */
    if (!b->has_attn && intra < cond->nintrablock)
      TRY(add_intrablock(be, a, &h, cond, intra++, i));
  }

  const int64_t Cm = c->block_out_channels[n - 1];
  const int64_t mid_shape[4] = {B, Cm, H, W};
  if (c->has_mid_block) {
    TRY(sdr_arena_tensor(a, &next, u->act, 4, mid_shape));
    TRY(sdr_resnet_block_forward(be, a, &next, &h, &o->temb, &u->mid_resnets[0]));
    h = next;
    TRY(sdr_arena_tensor(a, &next, u->act, 4, mid_shape));
    TRY(sdr_transformer_2d_forward(be, a, &next, &h, context, &u->mid_attn));
    h = next;
    TRY(sdr_arena_tensor(a, &next, u->act, 4, mid_shape));
    TRY(sdr_resnet_block_forward(be, a, &next, &h, &o->temb, &u->mid_resnets[1]));
    h = next;
    /* T2I-Adapter-XL's last feature, when it has the mid block's shape */
    if (intra < cond->nintrablock && sdr_tensor_same_shape(&cond->intrablock[intra], &h))
      TRY(add_intrablock(be, a, &h, cond, intra++, -1));
  }
  o->h = h;
  return 0;
fail:
  return -1;
}

/* dst[row ...] += r, r cast to dst's dtype first; into a new tensor when dst is also
 * `keep` (the mid block's input, which the residual must not change). */
static int add_residual(sdr_backend *be, sdr_arena *a, sdr_tensor *dst, const sdr_tensor *r,
                        int64_t row, const sdr_tensor *keep) {
  sdr_tensor rr, rows;
  TRY(sdr_arena_as(a, &rr, r, dst->dtype));
  if (keep && keep->data == dst->data) {
    sdr_tensor copy;
    TRY(sdr_arena_tensor(a, &copy, dst->dtype, dst->ndim, dst->shape));
    TRY(sdr_affine(be, &copy, dst, 1.0f, 0.0f));
    *dst = copy;
  }
  TRY(sdr_tensor_narrow0(&rows, dst, row, rr.shape[0]));
  TRY(sdr_binary(be, &rows, &rows, &rr, SDR_BINARY_ADD));
  return 0;
fail:
  return -1;
}

static int check_residuals(const sdr_unet_down *d, const sdr_unet_residuals *r) {
  if (r->ndown != d->nskips)
    return sdr_fail("unet: %d down block residuals given for %d skip connections", r->ndown,
                    d->nskips);
  const int64_t B = d->h.shape[0];
  for (int i = 0; i <= r->ndown; i++) {
    const sdr_tensor *t = i < r->ndown ? &r->down[i] : r->mid;
    const sdr_tensor *want = i < r->ndown ? &d->skips[i] : &d->h;
    const int pooled = t->ndim == 4 && t->shape[2] == 1 && t->shape[3] == 1;
    if (t->ndim != 4 || t->shape[1] != want->shape[1] || r->row < 0 || t->shape[0] > B - r->row ||
        (!pooled && (t->shape[2] != want->shape[2] || t->shape[3] != want->shape[3])))
      return sdr_fail("unet: %s residual %d does not fit its %lldx%lldx%lld features "
                      "(a ControlNet made for another UNet?)",
                      i < r->ndown ? "down block" : "mid block", i < r->ndown ? i : 0,
                      (long long)want->shape[1], (long long)want->shape[2],
                      (long long)want->shape[3]);
  }
  return 0;
}

int sdr_unet_forward(sdr_unet *u, sdr_arena *a, sdr_tensor *out, const sdr_tensor *sample,
                     const sdr_tensor *timesteps, const sdr_tensor *context) {
  return sdr_unet_forward_residuals(u, a, out, sample, timesteps, context, NULL);
}

int sdr_unet_forward_residuals(sdr_unet *u, sdr_arena *a, sdr_tensor *out, const sdr_tensor *sample,
                               const sdr_tensor *timesteps, const sdr_tensor *context,
                               const sdr_unet_residuals *res) {
  const sdr_unet_cond cond = {.attn = {.text = context}, .res = res};
  return sdr_unet_forward_cond(u, a, out, sample, timesteps, &cond);
}

int sdr_unet_forward_cond(sdr_unet *u, sdr_arena *a, sdr_tensor *out, const sdr_tensor *sample,
                          const sdr_tensor *timesteps, const sdr_unet_cond *cond) {
  const sdr_attn_context *given = &cond->attn;
  const sdr_unet_residuals *res = cond->res;
  const sdr_unet_config *c = &u->cfg;
  sdr_backend *be = u->be;
  const int n = c->nblocks, C0 = c->block_out_channels[0];
  const sdr_tensor *context = given->text;
  if (sample->ndim != 4 || sample->shape[1] != c->in_channels)
    return sdr_fail("unet: sample must be (batch, %d, height, width)", c->in_channels);
  const int64_t B = sample->shape[0];
  int64_t H, W;
  if (timesteps->ndim != 1 || timesteps->shape[0] != B)
    return sdr_fail("unet: one timestep per batch entry expected");
  if (context->ndim != 3 || context->shape[0] != B)
    return sdr_fail("unet: encoder_hidden_states must be (%lld, tokens, width)", (long long)B);
  for (int i = 0; i < given->nimage; i++)
    if (given->image[i]->ndim != 3 || given->image[i]->shape[0] != B)
      return sdr_fail("unet: IP-Adapter %d's image tokens must be (%lld, tokens, width)", i + 1,
                      (long long)B);
  const sdr_tensor *tc = cond->timestep_cond;
  if (c->time_cond_proj_dim && !tc)
    return sdr_fail("unet: this UNet takes timestep_cond (%lld, %d), the guidance embedding of "
                    "a latent consistency model",
                    (long long)B, c->time_cond_proj_dim);
  if (tc && (!c->time_cond_proj_dim || tc->ndim != 2 || tc->shape[0] != B ||
             tc->shape[1] != c->time_cond_proj_dim))
    return sdr_fail(c->time_cond_proj_dim ? "unet: timestep_cond must be (%lld, %d)"
                                          : "unet: timestep_cond given to a UNet without "
                                            "time_cond_proj_dim (%lld, %d)",
                    (long long)B, c->time_cond_proj_dim);
  const sdr_tensor *te = cond->text_embeds, *ti = cond->time_ids, *cl = cond->class_labels;
  if (sdr_unet_check_added(u, B, te, ti, "unet") != 0)
    return -1;
  if (c->num_class_embeds && !cl)
    return sdr_fail("unet: class_labels should be provided when num_class_embeds > 0");
  if (cl && (!c->num_class_embeds || cl->dtype != SDR_I64 || cl->ndim != 1 || cl->shape[0] != B))
    return sdr_fail(c->num_class_embeds ? "unet: class_labels must be (%lld) int64"
                                        : "unet: class_labels given to a UNet without "
                                          "num_class_embeds (%lld)",
                    (long long)B);
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_unet_down d;
  sdr_tensor h, next, x, text, images[SDR_IP_MAX], tcond;
  sdr_unet_cond all = {.attn = {.text = &text, .nimage = given->nimage},
                       .text_embeds = te,
                       .time_ids = ti,
                       .class_labels = cl,
                       .intrablock = cond->intrablock,
                       .nintrablock = cond->nintrablock};
  const sdr_attn_context *context_all = &all.attn;
  TRY(sdr_arena_as(a, &x, sample, u->act));
  TRY(sdr_arena_as(a, &text, context, u->act));
  for (int i = 0; i < given->nimage; i++) {
    TRY(sdr_arena_as(a, &images[i], given->image[i], u->act));
    all.attn.image[i] = &images[i];
  }
  if (tc) {
    TRY(sdr_arena_as(a, &tcond, tc, u->act));
    all.timestep_cond = &tcond;
  }
  if (c->center_input_sample) { /* 2 * sample - 1.0, into a new tensor: x may be the caller's */
    sdr_tensor centered;
    TRY(sdr_arena_tensor(a, &centered, u->act, 4, x.shape));
    TRY(sdr_affine(be, &centered, &x, 2.0f, -1.0f));
    x = centered;
  }
  TRY(sdr_unet_down_forward(u, a, &d, &x, timesteps, &all, NULL));
  h = d.h;
  /* ControlNet's residuals: added to the skips after the down path, to the mid block's
   * output after it (unet_2d_condition's is_controlnet) */
  if (res) {
    TRY(check_residuals(&d, res));
    for (int i = 0; i < res->ndown; i++)
      TRY(add_residual(be, a, &d.skips[i], &res->down[i], res->row, &h));
    TRY(add_residual(be, a, &h, res->mid, res->row, NULL));
  }
  sdr_tensor *skips = d.skips;
  int nskips = d.nskips;
  const sdr_tensor temb_act = d.temb;
  H = h.shape[2];
  W = h.shape[3];

  for (int i = 0; i < n; i++) {
    const sdr_unet_block *b = &u->up[i];
    const int64_t ch = c->block_out_channels[n - 1 - i];
    for (int j = 0; j < b->nlayers; j++) {
      sdr_tensor *skip = &skips[--nskips];
      if (i < 2 && sdr_freeu_enabled(&u->freeu)) /* FreeU: the first two stages only */
        TRY(sdr_freeu_apply(&u->freeu, be, a, i, &h, skip));
      sdr_tensor cat;
      TRY(sdr_arena_tensor(a, &cat, u->act, 4, (int64_t[]){B, h.shape[1] + skip->shape[1], H, W}));
      TRY(sdr_concat(be, &cat, &h, skip, 1));
      TRY(sdr_arena_tensor(a, &next, u->act, 4, (int64_t[]){B, ch, H, W}));
      TRY(sdr_resnet_block_forward(be, a, &next, &cat, &temb_act, &b->resnets[j]));
      h = next;
      if (b->has_attn) {
        TRY(sdr_arena_tensor(a, &next, u->act, 4, (int64_t[]){B, ch, H, W}));
        TRY(sdr_transformer_2d_forward(be, a, &next, &h, context_all, &b->attns[j]));
        h = next;
      }
    }
    if (b->has_sample) {
      /* Back to the size of the skip this level saved (diffusers' upsample_size). */
      const sdr_tensor *target = &skips[nskips - 1];
      H = target->shape[2];
      W = target->shape[3];
      TRY(sdr_arena_tensor(a, &next, u->act, 4, (int64_t[]){B, ch, H, W}));
      TRY(sdr_upsample_forward(be, a, &next, &h, &b->up));
      h = next;
    }
  }

  sdr_tensor normed;
  TRY(sdr_arena_tensor(a, &normed, u->act, 4, (int64_t[]){B, C0, H, W}));
  TRY(sdr_group_norm(be, &normed, &h, &u->norm_out_w, &u->norm_out_b, c->norm_num_groups,
                     c->norm_eps, 1));
  if (out->dtype == u->act) {
    TRY(sdr_conv2d(be, out, &normed, &u->conv_out_w, &u->conv_out_b, 1, 1));
  } else {
    sdr_tensor o;
    TRY(sdr_arena_tensor(a, &o, u->act, 4, out->shape));
    TRY(sdr_conv2d(be, &o, &normed, &u->conv_out_w, &u->conv_out_b, 1, 1));
    TRY(sdr_cast(be, out, &o));
  }
  sdr_arena_release(a, mark);
  return 0;
fail:
  sdr_arena_release(a, mark);
  return -1;
}

/* engine/ldm_names.c — the original CompVis/LDM names of SD's weights, as diffusers names them.
 *
 * The rules of diffusers 0.27's loaders/single_file_utils.py, written as a
 * parse of each key rather than as string replacements over key lists:
 * convert_ldm_unet_checkpoint (input_blocks.{i}.{0: resnet, 1: attention}
 * with i = (layers + 1) * block + layer + 1, op = the downsampler;
 * output_blocks likewise with a conv for the upsampler), convert_ldm_vae_checkpoint
 * (down.{i}.block.{j}, up blocks in reverse order, mid.attn_1 q/k/v/proj_out),
 * and the two text encoders (CLIP: the prefix stripped; OpenCLIP: resblocks,
 * ln_1/ln_2, c_fc/c_proj and the fused in_proj split in three). A key with no
 * diffusers name is listed for the error rather than dropped.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"       // sdr_fail
#include "engine/single_file.h" // sdr_ldm_views

enum { NAME_MAX_LEN = 512, MAX_UNKNOWN = 8 };

void sdr_ldm_views_free(sdr_ldm_views *views) {
  for (size_t i = 0; i < views->n; i++)
    free((char *)views->v[i].name);
  for (size_t i = 0; i < views->nunknown; i++)
    free(views->unknown[i]);
  free(views->v);
  free(views->unknown);
  memset(views, 0, sizeof *views);
}

/* A view of src (or part of it) under name, with the given shape. */
static int add_view(sdr_ldm_views *out, const char *name, const sdr_st_tensor *src, size_t offset,
                    int ndim, const int64_t *shape) {
  if (out->n == out->cap) {
    size_t cap = out->cap ? out->cap * 2 : 256;
    sdr_weight_view *v = realloc(out->v, cap * sizeof *v);
    if (!v)
      return sdr_fail("out of memory");
    out->v = v;
    out->cap = cap;
  }
  sdr_weight_view *v = &out->v[out->n];
  memset(v, 0, sizeof *v);
  if (!(v->name = strdup(name)))
    return sdr_fail("out of memory");
  v->src = src;
  v->offset = offset;
  v->ndim = ndim;
  memcpy(v->shape, shape, (size_t)ndim * sizeof *shape);
  out->n++;
  return 0;
}

static int add_same(sdr_ldm_views *out, const char *name, const sdr_st_tensor *src) {
  return add_view(out, name, src, 0, src->ndim, src->shape);
}

static int add_unknown(sdr_ldm_views *out, const char *key) {
  if (out->nunknown >= MAX_UNKNOWN) {
    out->nunknown++;
    return 0;
  }
  char **u = realloc(out->unknown, (out->nunknown + 1) * sizeof *u);
  if (!u || !(u[out->nunknown] = strdup(key))) {
    if (u)
      out->unknown = u;
    return sdr_fail("out of memory");
  }
  out->unknown = u;
  out->nunknown++;
  return 0;
}

/* ---- parsing a key ---------------------------------------------------------------- */

/* Consumes word at *p. */
static int eat(const char **p, const char *word) {
  size_t n = strlen(word);
  if (strncmp(*p, word, n) != 0)
    return 0;
  *p += n;
  return 1;
}

/* Consumes "<digits>." into *i. */
static int eat_index(const char **p, int *i) {
  const char *s = *p;
  long v = 0;
  if (*s < '0' || *s > '9')
    return 0;
  for (; *s >= '0' && *s <= '9'; s++) {
    v = v * 10 + (*s - '0');
    if (v > 1 << 20)
      return 0;
  }
  if (*s != '.')
    return 0;
  *i = (int)v;
  *p = s + 1;
  return 1;
}

static int joined(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int joined(char *out, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(out, NAME_MAX_LEN, fmt, ap);
  va_end(ap);
  return n > 0 && n < NAME_MAX_LEN;
}

/* update_unet_resnet_ldm_to_diffusers: in_layers.0 -> norm1, ... */
static const char *unet_resnet_part(const char **rest) {
  static const char *const map[][2] = {
      {"in_layers.0.", "norm1."},          {"in_layers.2.", "conv1."},
      {"out_layers.0.", "norm2."},         {"out_layers.3.", "conv2."},
      {"emb_layers.1.", "time_emb_proj."}, {"skip_connection.", "conv_shortcut."},
  };
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (eat(rest, map[i][0]))
      return map[i][1];
  return NULL;
}

/* The diffusers name of a UNet key (without "model.diffusion_model."), or 0. */
static int unet_name(const char *key, int L, char *out) {
  const char *p = key, *r;
  int i, j;
  if (eat(&p, "time_embed.0."))
    return joined(out, "time_embedding.linear_1.%s", p);
  if (eat(&p, "time_embed.2."))
    return joined(out, "time_embedding.linear_2.%s", p);
  /* SDXL's added embedding ("text_time": the pooled text and the micro-conditioning ids) */
  if (eat(&p, "label_emb.0.0."))
    return joined(out, "add_embedding.linear_1.%s", p);
  if (eat(&p, "label_emb.0.2."))
    return joined(out, "add_embedding.linear_2.%s", p);
  if (eat(&p, "input_blocks.0.0."))
    return joined(out, "conv_in.%s", p);
  if (eat(&p, "out.0."))
    return joined(out, "conv_norm_out.%s", p);
  if (eat(&p, "out.2."))
    return joined(out, "conv_out.%s", p);
  if (eat(&p, "input_blocks.") && eat_index(&p, &i) && i >= 1 && eat_index(&p, &j)) {
    int b = (i - 1) / (L + 1), l = (i - 1) % (L + 1);
    if (j == 0 && eat(&p, "op."))
      return joined(out, "down_blocks.%d.downsamplers.0.conv.%s", b, p);
    if (j == 0 && (r = unet_resnet_part(&p)))
      return joined(out, "down_blocks.%d.resnets.%d.%s%s", b, l, r, p);
    if (j == 1)
      return joined(out, "down_blocks.%d.attentions.%d.%s", b, l, p);
    return 0;
  }
  p = key;
  if (eat(&p, "middle_block.") && eat_index(&p, &j)) {
    if (j == 1)
      return joined(out, "mid_block.attentions.0.%s", p);
    if ((j == 0 || j == 2) && (r = unet_resnet_part(&p)))
      return joined(out, "mid_block.resnets.%d.%s%s", j / 2, r, p);
    return 0;
  }
  p = key;
  if (eat(&p, "output_blocks.") && eat_index(&p, &i) && eat_index(&p, &j)) {
    int b = i / (L + 1), l = i % (L + 1);
    if (j == 0 && (r = unet_resnet_part(&p)))
      return joined(out, "up_blocks.%d.resnets.%d.%s%s", b, l, r, p);
    if ((j == 1 || j == 2) && eat(&p, "conv."))
      return joined(out, "up_blocks.%d.upsamplers.0.conv.%s", b, p);
    if (j == 1)
      return joined(out, "up_blocks.%d.attentions.%d.%s", b, l, p);
  }
  return 0;
}

/* ---- components ---------------------------------------------------------------------- */

int sdr_ldm_count(const sdr_weight_file *f, const char *prefix) {
  size_t plen = strlen(prefix);
  int n = 0;
  for (size_t k = 0; k < sdr_weight_file_count(f); k++) {
    const char *p = sdr_weight_file_at(f, k)->name;
    int i;
    if (strncmp(p, prefix, plen) == 0 && p[plen] == '.' && (p += plen + 1, eat_index(&p, &i)) &&
        i + 1 > n)
      n = i + 1;
  }
  return n;
}

/* LitEma's name of a model.diffusion_model.* key: "model_ema." + the rest without dots. */
static void ema_name(const char *key, char *out) {
  size_t o = strlen(strcpy(out, "model_ema."));
  for (const char *p = key + strlen("model."); *p && o + 1 < NAME_MAX_LEN; p++)
    if (*p != '.')
      out[o++] = *p;
  out[o] = 0;
}

int sdr_ldm_unet_views(const sdr_weight_file *f, int layers_per_block, int ema,
                       sdr_ldm_views *out) {
  static const char prefix[] = "model.diffusion_model.";
  char name[NAME_MAX_LEN], flat[NAME_MAX_LEN];
  for (size_t k = 0; k < sdr_weight_file_count(f); k++) {
    const sdr_st_tensor *t = sdr_weight_file_at(f, k);
    if (strncmp(t->name, prefix, sizeof prefix - 1) != 0)
      continue;
    if (!unet_name(t->name + sizeof prefix - 1, layers_per_block, name)) {
      if (add_unknown(out, t->name) != 0)
        return -1;
      continue;
    }
    if (ema) { /* convert_ldm_unet_checkpoint(extract_ema=True): every weight from its copy */
      ema_name(t->name, flat);
      const sdr_st_tensor *e = sdr_weight_file_find(f, flat);
      if (!e)
        return sdr_fail("%s: the EMA weights lack %s (the copy of %s)", sdr_weight_file_path(f),
                        flat, t->name);
      t = e;
    }
    if (add_same(out, name, t) != 0)
      return -1;
  }
  return 0;
}

/* The VAE's resnets keep their names except nin_shortcut (update_vae_resnet_ldm_to_diffusers). */
static int vae_resnet(char *out, const char *head, const char *rest) {
  if (strncmp(rest, "nin_shortcut.", 13) == 0)
    return joined(out, "%sconv_shortcut.%s", head, rest + 13);
  return joined(out, "%s%s", head, rest);
}

/* mid.attn_1 (update_vae_attentions_ldm_to_diffusers); *linear: a q/k/v/proj_out
 * weight, which diffusers keeps as a matrix. */
static int vae_attention(char *out, const char *coder, const char *rest, int *linear) {
  static const char *const map[][2] = {{"norm.", "group_norm."},
                                       {"q.", "to_q."},
                                       {"k.", "to_k."},
                                       {"v.", "to_v."},
                                       {"proj_out.", "to_out.0."}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
    const char *p = rest;
    if (eat(&p, map[i][0])) {
      *linear = i > 0 && strcmp(p, "weight") == 0;
      return joined(out, "%s.mid_block.attentions.0.%s%s", coder, map[i][1], p);
    }
  }
  return 0;
}

static int vae_name(const char *key, int n, char *out, int *linear) {
  const char *p = key, *coder;
  char head[128];
  int i, j;
  *linear = 0;
  if (eat(&p, "quant_conv.") || eat(&p, "post_quant_conv."))
    return joined(out, "%s", key);
  if (eat(&p, "encoder."))
    coder = "encoder";
  else if (eat(&p, "decoder."))
    coder = "decoder";
  else
    return 0;
  if (eat(&p, "conv_in.") || eat(&p, "conv_out."))
    return joined(out, "%s", key);
  if (eat(&p, "norm_out."))
    return joined(out, "%s.conv_norm_out.%s", coder, p);
  if (eat(&p, "mid.block_1."))
    return vae_resnet(
        out, *coder == 'e' ? "encoder.mid_block.resnets.0." : "decoder.mid_block.resnets.0.", p);
  if (eat(&p, "mid.block_2."))
    return vae_resnet(
        out, *coder == 'e' ? "encoder.mid_block.resnets.1." : "decoder.mid_block.resnets.1.", p);
  if (eat(&p, "mid.attn_1."))
    return vae_attention(out, coder, p, linear);
  if (*coder == 'e' && eat(&p, "down.") && eat_index(&p, &i)) {
    if (eat(&p, "downsample.conv."))
      return joined(out, "encoder.down_blocks.%d.downsamplers.0.conv.%s", i, p);
    if (eat(&p, "block.") && eat_index(&p, &j)) {
      snprintf(head, sizeof head, "encoder.down_blocks.%d.resnets.%d.", i, j);
      return vae_resnet(out, head, p);
    }
    return 0;
  }
  if (*coder == 'd' && eat(&p, "up.") && eat_index(&p, &i) && i < n) {
    if (eat(&p, "upsample.conv."))
      return joined(out, "decoder.up_blocks.%d.upsamplers.0.conv.%s", n - 1 - i, p);
    if (eat(&p, "block.") && eat_index(&p, &j)) {
      snprintf(head, sizeof head, "decoder.up_blocks.%d.resnets.%d.", n - 1 - i, j);
      return vae_resnet(out, head, p);
    }
  }
  return 0;
}

int sdr_ldm_vae_views(const sdr_weight_file *f, int nblocks, sdr_ldm_views *out) {
  static const char prefix[] = "first_stage_model.";
  char name[NAME_MAX_LEN];
  for (size_t k = 0; k < sdr_weight_file_count(f); k++) {
    const sdr_st_tensor *t = sdr_weight_file_at(f, k);
    const char *key = t->name + sizeof prefix - 1;
    if (strncmp(t->name, prefix, sizeof prefix - 1) != 0 || strncmp(key, "loss.", 5) == 0)
      continue; /* the training loss (LPIPS, discriminator) is no part of the VAE */
    int linear = 0;
    if (!vae_name(key, nblocks, name, &linear)) {
      if (add_unknown(out, t->name) != 0)
        return -1;
      continue;
    }
    /* conv_attn_to_linear: (C, C, 1, 1) or (C, C, 1) seen as (C, C) */
    int rc;
    if (linear && t->ndim > 2) {
      int ones = 1;
      for (int d = 2; d < t->ndim; d++)
        ones &= t->shape[d] == 1;
      if (!ones)
        return sdr_fail("%s: %s has shape %lldx%lld with a kernel larger than 1x1",
                        sdr_weight_file_path(f), t->name, (long long)t->shape[0],
                        (long long)t->shape[1]);
      rc = add_view(out, name, t, 0, 2, t->shape);
    } else {
      rc = add_same(out, name, t);
    }
    if (rc != 0)
      return -1;
  }
  return 0;
}

int sdr_ldm_clip_views(const sdr_weight_file *f, const char *prefix, sdr_ldm_views *out) {
  const size_t plen = strlen(prefix);
  char name[NAME_MAX_LEN];
  for (size_t k = 0; k < sdr_weight_file_count(f); k++) {
    const sdr_st_tensor *t = sdr_weight_file_at(f, k);
    const char *key = t->name + plen;
    if (strncmp(t->name, prefix, plen) != 0)
      continue;
    /* transformers before 4.x saved the model without its "text_model." level */
    int ok = strncmp(key, "text_model.", 11) == 0 ? joined(name, "%s", key)
                                                  : joined(name, "text_model.%s", key);
    if ((ok ? add_same(out, name, t) : add_unknown(out, t->name)) != 0)
      return -1;
  }
  return 0;
}

/* The OpenCLIP name of a block's part, as transformers' (DIFFUSERS_TO_LDM_MAPPING["openclip"]). */
static const char *openclip_part(const char **rest) {
  static const char *const map[][2] = {
      {"ln_1.", "layer_norm1."},
      {"ln_2.", "layer_norm2."},
      {"mlp.c_fc.", "mlp.fc1."},
      {"mlp.c_proj.", "mlp.fc2."},
      {"attn.out_proj.", "self_attn.out_proj."},
  };
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (eat(rest, map[i][0]))
      return map[i][1];
  return NULL;
}

/* attn.in_proj_weight (3D, D) / in_proj_bias (3D): rows [0, D) are q, then k, then v. */
static int split_qkv(sdr_ldm_views *out, const sdr_weight_file *f, const sdr_st_tensor *t,
                     int layer, const char *kind) {
  if (t->ndim < 1 || t->ndim > 2 || t->shape[0] % 3)
    return sdr_fail("%s: %s is not a fused q/k/v projection", sdr_weight_file_path(f), t->name);
  int64_t shape[2] = {t->shape[0] / 3, t->ndim == 2 ? t->shape[1] : 1};
  size_t part = t->nbytes / 3;
  static const char *const qkv[] = {"q", "k", "v"};
  char name[NAME_MAX_LEN];
  for (int i = 0; i < 3; i++) {
    joined(name, "text_model.encoder.layers.%d.self_attn.%s_proj.%s", layer, qkv[i], kind);
    if (add_view(out, name, t, part * (size_t)i, t->ndim, shape) != 0)
      return -1;
  }
  return 0;
}

int sdr_ldm_openclip_views(const sdr_weight_file *f, const char *prefix, int nlayers,
                           int projection, sdr_ldm_views *out) {
  const size_t plen = strlen(prefix);
  char name[NAME_MAX_LEN];
  for (size_t k = 0; k < sdr_weight_file_count(f); k++) {
    const sdr_st_tensor *t = sdr_weight_file_at(f, k);
    const char *p = t->name + plen, *r;
    int i, ok = 0, rc = 0;
    if (strncmp(t->name, prefix, plen) != 0)
      continue;
    if (strcmp(p, "logit_scale") == 0 || (!projection && strcmp(p, "text_projection") == 0))
      continue; /* CLIPTextModel has no projection; SD 2.x uses the hidden states */
    if (strcmp(p, "text_projection") == 0) /* (width, projection): diffusers' weight transposed */
      ok = joined(name, "text_projection.weight");
    else if (strcmp(p, "token_embedding.weight") == 0)
      ok = joined(name, "text_model.embeddings.token_embedding.weight");
    else if (strcmp(p, "positional_embedding") == 0)
      ok = joined(name, "text_model.embeddings.position_embedding.weight");
    else if (eat(&p, "ln_final."))
      ok = joined(name, "text_model.final_layer_norm.%s", p);
    else if (eat(&p, "transformer.resblocks.") && eat_index(&p, &i)) {
      if (i >= nlayers)
        continue; /* SD 2.x conditions on the penultimate block; diffusers drops the last */
      if (strcmp(p, "attn.in_proj_weight") == 0 || strcmp(p, "attn.in_proj_bias") == 0) {
        if (split_qkv(out, f, t, i, p[13] == 'w' ? "weight" : "bias") != 0)
          return -1;
        continue;
      }
      if ((r = openclip_part(&p)))
        ok = joined(name, "text_model.encoder.layers.%d.%s%s", i, r, p);
    }
    rc = ok ? add_same(out, name, t) : add_unknown(out, t->name);
    if (rc != 0)
      return -1;
  }
  return 0;
}

/* engine/clip_vision_model.c — CLIPVisionModel's forward pass over the backend ops. */
#include "engine/clip_vision_model.h"

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

/* CLIPVisionConfig's defaults (transformers 4.40), for keys a config leaves out. */
static const struct {
  const char *key;
  long long dflt;
} size_keys[] = {{"hidden_size", 768},        {"intermediate_size", 3072},
                 {"num_attention_heads", 12}, {"num_hidden_layers", 12},
                 {"num_channels", 3},         {"image_size", 224},
                 {"patch_size", 32}};
enum { NSIZES = sizeof size_keys / sizeof size_keys[0] };

static int read_vision(const sdr_json *j, sdr_clip_vision_config *cfg) {
  long long v[NSIZES];
  for (int i = 0; i < NSIZES; i++) {
    if (sdr_json_int_opt(j, size_keys[i].key, size_keys[i].dflt, &v[i]) != 0)
      return -1;
    if (v[i] <= 0 || v[i] > (1 << 20))
      return sdr_fail("%s: vision \"%s\" is %lld, expected a positive size", j->path,
                      size_keys[i].key, v[i]);
  }
  const char *act;
  double eps;
  if (sdr_json_string_opt(j, "hidden_act", "quick_gelu", &act) != 0 ||
      sdr_json_number_opt(j, "layer_norm_eps", 1e-5, &eps) != 0)
    return -1;
  if (strcmp(act, "quick_gelu") != 0 && strcmp(act, "gelu") != 0)
    return sdr_fail("%s: vision hidden_act \"%s\" is not supported (quick_gelu or gelu)", j->path,
                    act);
  cfg->hidden_size = (int)v[0];
  cfg->intermediate_size = (int)v[1];
  cfg->num_attention_heads = (int)v[2];
  cfg->num_hidden_layers = (int)v[3];
  cfg->num_channels = (int)v[4];
  cfg->image_size = (int)v[5];
  cfg->patch_size = (int)v[6];
  cfg->quick_gelu = strcmp(act, "quick_gelu") == 0;
  cfg->layer_norm_eps = (float)eps;
  if (cfg->hidden_size % cfg->num_attention_heads != 0)
    return sdr_fail("%s: vision hidden_size %d is not a multiple of num_attention_heads %d",
                    j->path, cfg->hidden_size, cfg->num_attention_heads);
  if (cfg->patch_size > cfg->image_size)
    return sdr_fail("%s: vision patch_size %d exceeds image_size %d", j->path, cfg->patch_size,
                    cfg->image_size);
  return 0;
}

int sdr_clip_vision_config_load(sdr_clip_vision_config *cfg, int *projection_dim,
                                const char *config_json) {
  sdr_json j;
  if (sdr_json_load(&j, config_json) != 0)
    return -1;
  const cJSON *mt = sdr_json_get(&j, "model_type");
  const int clip = cJSON_IsString(mt) && strcmp(mt->valuestring, "clip") == 0;
  /* CLIPConfig: vision_config_dict (CompVis' safety checker has one) is made into a whole
   * CLIPVisionConfig, defaults and all, which then replaces vision_config's values. */
  sdr_json sub = j;
  if (clip) {
    const cJSON *d = sdr_json_get(&j, "vision_config_dict");
    if (!cJSON_IsObject(d))
      d = sdr_json_get(&j, "vision_config");
    static cJSON empty_object = {.type = cJSON_Object};
    sub.root = cJSON_IsObject(d) ? (cJSON *)d : &empty_object;
  }
  long long proj;
  int rc = read_vision(&sub, cfg);
  if (rc == 0)
    rc = sdr_json_int_opt(&j, "projection_dim", 512, &proj);
  if (rc == 0 && (proj <= 0 || proj > (1 << 20)))
    rc = sdr_fail("%s: \"projection_dim\" is %lld, expected a positive size", config_json, proj);
  if (rc == 0)
    *projection_dim = (int)proj;
  sdr_json_free(&j);
  return rc;
}

int sdr_clip_vision_open(sdr_clip_vision_config *cfg, int *projection_dim, sdr_weights *w,
                         sdr_backend *be, const char *dir, const char *variant,
                         const char *component, int keep_dtype) {
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", dir);
  if (sdr_clip_vision_config_load(cfg, projection_dim, path) != 0)
    return -1;
  size_t nfiles = 0;
  char **files = sdr_find_weight_files(dir, NULL, "model", variant, -1, &nfiles);
  if (!files)
    return -1;
  int rc = sdr_weights_open(w, be, component, (const char *const *)files, (int)nfiles, keep_dtype);
  sdr_weight_files_free(files);
  if (rc == 0 && sdr_weights_keep_config(w, path) != 0) {
    sdr_weights_close(w);
    return -1;
  }
  return rc;
}

int sdr_clip_vision_bind(sdr_clip_vision_model *m, sdr_weights *w, const char *prefix,
                         sdr_dtype act, const char *who) {
  const sdr_clip_vision_config *c = &m->cfg;
  const int64_t D = c->hidden_size, p = c->patch_size, g = c->image_size / c->patch_size;
  const sdr_clip_encoder_params params = {c->hidden_size,         c->intermediate_size,
                                          c->num_attention_heads, c->layer_norm_eps,
                                          c->quick_gelu,          0};
  m->be = w->be;
  m->act = act;
  m->who = who;
  m->layers = calloc((size_t)c->num_hidden_layers, sizeof *m->layers);
  if (!m->layers)
    return sdr_fail("out of memory");
  char layers[512];
  snprintf(layers, sizeof layers, "%sencoder.layers", prefix);
  TRY(sdr_weights_bindf(w, &m->patch_w, 4, (int64_t[]){D, c->num_channels, p, p},
                        "%sembeddings.patch_embedding.weight", prefix));
  TRY(sdr_weights_bindf(w, &m->class_emb, 1, (int64_t[]){D}, "%sembeddings.class_embedding",
                        prefix));
  TRY(sdr_weights_bindf(w, &m->pos_emb, 2, (int64_t[]){g * g + 1, D},
                        "%sembeddings.position_embedding.weight", prefix));
  TRY(sdr_weights_bindf(w, &m->pre_ln_w, 1, (int64_t[]){D}, "%spre_layrnorm.weight", prefix));
  TRY(sdr_weights_bindf(w, &m->pre_ln_b, 1, (int64_t[]){D}, "%spre_layrnorm.bias", prefix));
  for (int i = 0; i < c->num_hidden_layers; i++)
    TRY(sdr_clip_layer_bind(w, &m->layers[i], layers, i, &params));
  TRY(sdr_weights_bindf(w, &m->post_ln_w, 1, (int64_t[]){D}, "%spost_layernorm.weight", prefix));
  TRY(sdr_weights_bindf(w, &m->post_ln_b, 1, (int64_t[]){D}, "%spost_layernorm.bias", prefix));
  char ids[512];
  snprintf(ids, sizeof ids, "%sembeddings.position_ids", prefix);
  sdr_weights_skip(w, ids); /* a buffer older transformers saved; not a weight */
  return 0;
fail:
  return -1;
}

void sdr_clip_vision_free(sdr_clip_vision_model *m) {
  free(m->layers);
  memset(m, 0, sizeof *m);
}

/* The pictures as rows of patches for the patch embedding: (B, T, C*p*p) with row 0 of
 * each picture zero (the class token's place) and row 1 + gy*g + gx holding the square
 * at (gy, gx), its values in the convolution weight's order (c, ky, kx). A stride-p
 * convolution without bias is then a product with the weight seen as (D, C*p*p). */
static void patch_rows(float *rows, const float *pixels, int64_t B, int64_t C, int64_t S,
                       int64_t p) {
  const int64_t g = S / p, T = g * g + 1, K = C * p * p;
  memset(rows, 0, (size_t)(B * T * K) * sizeof *rows);
  for (int64_t b = 0; b < B; b++)
    for (int64_t gy = 0; gy < g; gy++)
      for (int64_t gx = 0; gx < g; gx++) {
        float *row = rows + (b * T + 1 + gy * g + gx) * K;
        for (int64_t c = 0; c < C; c++)
          for (int64_t ky = 0; ky < p; ky++)
            memcpy(row + (c * p + ky) * p, pixels + ((b * C + c) * S + gy * p + ky) * S + gx * p,
                   (size_t)p * sizeof *row);
      }
}

/* The embeddings and pre_layrnorm, then nlayers encoder layers: *h (B, T, D) in m->act,
 * allocated in a. */
static int hidden_states(sdr_clip_vision_model *m, sdr_arena *a, sdr_tensor *h, const float *pixels,
                         int64_t B, int64_t S, int nlayers) {
  const char *who = m->who;
  const sdr_clip_vision_config *c = &m->cfg;
  sdr_backend *be = m->be;
  const int64_t D = c->hidden_size, C = c->num_channels, p = c->patch_size, g = S / p;
  const int64_t T = g * g + 1, K = C * p * p;
  if (T != m->pos_emb.shape[0])
    return sdr_fail("%s: %lldx%lld pictures make %lld patches of %lld; the vision "
                    "model takes %d x %d (%lld position embeddings)",
                    who, (long long)S, (long long)S, (long long)(g * g), (long long)p,
                    c->image_size, c->image_size, (long long)m->pos_emb.shape[0]);
  const sdr_clip_encoder_params params = {c->hidden_size,         c->intermediate_size,
                                          c->num_attention_heads, c->layer_norm_eps,
                                          c->quick_gelu,          0};
  const int64_t btd[3] = {B, T, D};
  sdr_tensor rows32, rows, w2, x, y, table, cls_table, row0, ids;
  float *host = malloc((size_t)(B * T * K) * sizeof *host);
  if (!host)
    return sdr_fail("out of memory");
  patch_rows(host, pixels, B, C, S, p);
  int rc = sdr_arena_tensor(a, &rows32, SDR_F32, 3, (int64_t[]){B, T, K});
  if (rc == 0)
    rc = sdr_upload(be, rows32.data, host, (size_t)(B * T * K) * sizeof *host);
  free(host);
  TRY(rc);
  /* pixel_values.to(the weight's dtype), then the convolution as a product */
  TRY(sdr_arena_as(a, &rows, &rows32, m->act));
  TRY(sdr_tensor_reshape(&w2, &m->patch_w, 2, (int64_t[]){D, K}));
  TRY(sdr_arena_tensor(a, &x, m->act, 3, btd));
  TRY(sdr_linear(be, &x, &rows, &w2, NULL));
  /* + position_embedding, and the class embedding on row 0 (which the product left
   * zero): cat([class, patches]) + positions, each sum rounded once as torch's. The
   * lookups widen float16 tables to the activations' dtype. */
  TRY(sdr_clip_ids(be, a, &ids, T, 1, 0));
  TRY(sdr_arena_tensor(a, &table, m->act, 2, (int64_t[]){T, D}));
  TRY(sdr_embedding(be, &table, &m->pos_emb, &ids));
  sdr_tensor cls2, id0;
  TRY(sdr_tensor_reshape(&cls2, &m->class_emb, 2, (int64_t[]){1, D}));
  TRY(sdr_tensor_narrow0(&id0, &ids, 0, 1));
  TRY(sdr_arena_tensor(a, &cls_table, m->act, 2, (int64_t[]){1, D}));
  TRY(sdr_embedding(be, &cls_table, &cls2, &id0));
  TRY(sdr_tensor_narrow0(&row0, &table, 0, 1));
  TRY(sdr_binary(be, &row0, &cls_table, &row0, SDR_BINARY_ADD));
  TRY(sdr_binary(be, &x, &x, &table, SDR_BINARY_ADD));
  TRY(sdr_arena_tensor(a, &y, m->act, 3, btd));
  TRY(sdr_layer_norm(be, &y, &x, &m->pre_ln_w, &m->pre_ln_b, c->layer_norm_eps));
  for (int i = 0; i < nlayers; i++) {
    TRY(sdr_clip_encoder_layer(be, a, &x, &y, &m->layers[i], &params));
    sdr_tensor t = x;
    x = y;
    y = t;
  }
  *h = y;
  return 0;
fail:
  return -1;
}

int sdr_clip_vision_forward(sdr_clip_vision_model *m, sdr_arena *a, sdr_tensor *pooled,
                            const float *pixels, int64_t B, int64_t S) {
  const sdr_clip_vision_config *c = &m->cfg;
  const int64_t D = c->hidden_size;
  if (pooled->ndim != 2 || pooled->shape[0] != B || pooled->shape[1] != D ||
      pooled->dtype != m->act)
    return sdr_fail("%s: pooled output must be (%lld, %lld)", m->who, (long long)B, (long long)D);
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor y, ids, flat, first;
  TRY(hidden_states(m, a, &y, pixels, B, S, c->num_hidden_layers));
  /* last_hidden_state[:, 0, :] through post_layernorm */
  const int64_t T = y.shape[1];
  TRY(sdr_clip_ids(m->be, a, &ids, B, T, 0));
  TRY(sdr_tensor_reshape(&flat, &y, 2, (int64_t[]){B * T, D}));
  TRY(sdr_arena_tensor(a, &first, m->act, 2, (int64_t[]){B, D}));
  TRY(sdr_embedding(m->be, &first, &flat, &ids));
  TRY(sdr_layer_norm(m->be, pooled, &first, &m->post_ln_w, &m->post_ln_b, c->layer_norm_eps));
  sdr_arena_release(a, mark);
  return 0;
fail:
  sdr_arena_release(a, mark);
  return -1;
}

int sdr_clip_vision_hidden(sdr_clip_vision_model *m, sdr_arena *a, sdr_tensor *out,
                           const float *pixels, int64_t B, int64_t S, int back) {
  const sdr_clip_vision_config *c = &m->cfg;
  if (back < 1 || back > c->num_hidden_layers + 1)
    return sdr_fail("%s: hidden_states[-%d] of %d layers", m->who, back, c->num_hidden_layers);
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor y;
  TRY(hidden_states(m, a, &y, pixels, B, S, c->num_hidden_layers + 1 - back));
  if (out->ndim != 3 || out->shape[0] != B || out->shape[1] != y.shape[1] ||
      out->shape[2] != c->hidden_size) {
    sdr_fail("%s: hidden states must be (%lld, %lld, %d)", m->who, (long long)B,
             (long long)y.shape[1], c->hidden_size);
    goto fail;
  }
  TRY(out->dtype == y.dtype ? sdr_affine(m->be, out, &y, 1.0f, 0.0f) : sdr_cast(m->be, out, &y));
  sdr_arena_release(a, mark);
  return 0;
fail:
  sdr_arena_release(a, mark);
  return -1;
}

/* engine/clip_text_model.c — CLIPTextModel's forward pass over the backend ops. */
#include "engine/clip_text_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "engine/error.h"        // sdr_fail, sdr_fail_prefix
#include "engine/model_config.h" // sdr_json, sdr_find_weights

#define TRY(x)                                                                                     \
  do {                                                                                             \
    if ((x) != 0)                                                                                  \
      goto fail;                                                                                   \
  } while (0)

/* CLIPTextConfig's defaults (transformers 4.40), for keys a config leaves out. */
static const struct {
  const char *key;
  long long dflt;
} size_keys[] = {{"vocab_size", 49408},       {"hidden_size", 512},
                 {"intermediate_size", 2048}, {"num_attention_heads", 8},
                 {"num_hidden_layers", 12},   {"max_position_embeddings", 77}};

/* A CLIPModel's config.json (model_type "clip", e.g. openai/clip-vit-large-patch14) holds
 * the text model's under "text_config": CLIPTextConfig.from_pretrained reads that one. */
static int enter_text_config(sdr_json *j) {
  const cJSON *mt = sdr_json_get(j, "model_type");
  if (!cJSON_IsString(mt) || strcmp(mt->valuestring, "clip") != 0)
    return 0;
  cJSON *tc = cJSON_DetachItemFromObjectCaseSensitive(j->root, "text_config");
  if (!cJSON_IsObject(tc)) {
    cJSON_Delete(tc);
    return sdr_fail("%s: a CLIP model's config without a \"text_config\" object", j->path);
  }
  cJSON_Delete(j->root);
  j->root = tc;
  return 0;
}

int sdr_clip_text_config_load(sdr_clip_text_config *cfg, const char *config_json) {
  sdr_json j;
  if (sdr_json_load(&j, config_json) != 0)
    return -1;
  long long v[6], ids[3];
  const char *act;
  double eps;
  int rc = enter_text_config(&j);
  for (int i = 0; rc == 0 && i < 6; i++) {
    rc = sdr_json_int_opt(&j, size_keys[i].key, size_keys[i].dflt, &v[i]);
    if (rc == 0 && (v[i] <= 0 || v[i] > (1 << 24)))
      rc = sdr_fail("%s: \"%s\" is %lld, expected a positive size", config_json, size_keys[i].key,
                    v[i]);
  }
  if (rc == 0)
    rc = sdr_json_string_opt(&j, "hidden_act", "quick_gelu", &act);
  if (rc == 0)
    rc = sdr_json_number_opt(&j, "layer_norm_eps", 1e-5, &eps);
  long long proj = 512;
  if (rc == 0)
    rc = sdr_json_int_opt(&j, "projection_dim", 512, &proj);
  if (rc == 0 && (proj <= 0 || proj > (1 << 24)))
    rc = sdr_fail("%s: \"projection_dim\" is %lld, expected a positive size", config_json, proj);
  if (rc == 0)
    rc = sdr_json_int_opt(&j, "pad_token_id", 1, &ids[0]);
  if (rc == 0)
    rc = sdr_json_int_opt(&j, "bos_token_id", 49406, &ids[1]);
  if (rc == 0)
    rc = sdr_json_int_opt(&j, "eos_token_id", 49407, &ids[2]);
  if (rc != 0) {
    sdr_json_free(&j);
    return -1;
  }
  cfg->vocab_size = (int)v[0];
  cfg->hidden_size = (int)v[1];
  cfg->intermediate_size = (int)v[2];
  cfg->num_attention_heads = (int)v[3];
  cfg->num_hidden_layers = (int)v[4];
  cfg->max_position_embeddings = (int)v[5];
  cfg->quick_gelu = strcmp(act, "quick_gelu") == 0;
  cfg->layer_norm_eps = (float)eps;
  const cJSON *arch = sdr_json_get(&j, "architectures");
  const cJSON *first = cJSON_IsArray(arch) ? cJSON_GetArrayItem(arch, 0) : NULL;
  cfg->with_projection =
      cJSON_IsString(first) && strcmp(first->valuestring, "CLIPTextModelWithProjection") == 0;
  cfg->projection_dim = cfg->with_projection ? (int)proj : 0; /* a CLIPTextModel has none */
  if (rc == 0)
    rc = sdr_json_bool_opt(&j, "text_projection_transposed", 0, &cfg->projection_transposed);
  cfg->pad_token_id = ids[0];
  cfg->bos_token_id = ids[1];
  cfg->eos_token_id = ids[2];
  if (strcmp(act, "quick_gelu") != 0 && strcmp(act, "gelu") != 0)
    rc = sdr_fail("%s: hidden_act \"%s\" is not supported (quick_gelu or gelu)", config_json, act);
  else if (cfg->hidden_size % cfg->num_attention_heads != 0)
    rc = sdr_fail("%s: hidden_size %d is not a multiple of num_attention_heads %d", config_json,
                  cfg->hidden_size, cfg->num_attention_heads);
  sdr_json_free(&j);
  return rc;
}

/* The text tower's layers: causal attention. */
static sdr_clip_encoder_params layer_params(const sdr_clip_text_config *c) {
  return (sdr_clip_encoder_params){c->hidden_size,    c->intermediate_size, c->num_attention_heads,
                                   c->layer_norm_eps, c->quick_gelu,        1};
}

static int bind_all(sdr_clip_text_model *m);

int sdr_clip_text_model_load(sdr_clip_text_model *m, sdr_backend *be, const char *dir,
                             const char *variant, int keep_dtype) {
  memset(m, 0, sizeof *m);
  m->be = be;
  m->act = sdr_backend_act_dtype(be, keep_dtype);
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", dir);
  if (sdr_clip_text_config_load(&m->cfg, path) != 0)
    return -1;
  /* dir is the component folder itself; its weights may be sharded.
   * safetensors first, else pytorch_model.bin (read by the restricted
   * unpickler), as transformers' from_pretrained falls back. */
  size_t nfiles = 0;
  char **files = sdr_find_weight_files(dir, NULL, "model", variant, -1, &nfiles);
  if (!files)
    return -1;
  int rc = sdr_weights_open(&m->weights, be, "text_encoder", (const char *const *)files,
                            (int)nfiles, keep_dtype);
  sdr_weight_files_free(files);
  if (rc != 0)
    return -1;
  sdr_weights_owner(&m->weights, m, sizeof *m);
  TRY(sdr_weights_keep_config(&m->weights, path));
  TRY(bind_all(m));
  TRY(sdr_weights_finish(&m->weights));
  return 0;
fail:
  sdr_clip_text_model_free(m);
  return -1;
}

int sdr_clip_text_model_copy_to(sdr_clip_text_model *dst, const sdr_clip_text_model *src,
                                sdr_backend *be, int keep_dtype) {
  memset(dst, 0, sizeof *dst);
  dst->cfg = src->cfg;
  dst->file_vocab = src->file_vocab;
  dst->be = be;
  dst->act = sdr_backend_act_dtype(be, keep_dtype);
  if (sdr_weights_reopen(&dst->weights, &src->weights, be, keep_dtype) != 0)
    return -1;
  sdr_weights_owner(&dst->weights, dst, sizeof *dst);
  TRY(bind_all(dst));
  TRY(sdr_weights_finish(&dst->weights));
  TRY(sdr_clip_token_rows_copy(dst, src));
  return 0;
fail:
  sdr_clip_text_model_free(dst);
  return -1;
}

static int bind_all(sdr_clip_text_model *m) {
  const sdr_clip_text_config *c = &m->cfg;
  sdr_weights_optional_prefix(&m->weights, "text_model.");
  const int64_t D = c->hidden_size;
  const sdr_clip_encoder_params params = layer_params(c);
  m->layers = calloc((size_t)c->num_hidden_layers, sizeof *m->layers);
  if (!m->layers)
    return sdr_fail("out of memory");
  if (!m->file_vocab)
    m->file_vocab = c->vocab_size;
  TRY(sdr_weights_bind(&m->weights, &m->tok_emb_file,
                       "text_model.embeddings.token_embedding.weight", 2,
                       (int64_t[]){m->file_vocab, D}));
  m->tok_emb = m->tok_emb_file;
  TRY(sdr_weights_bind(&m->weights, &m->pos_emb, "text_model.embeddings.position_embedding.weight",
                       2, (int64_t[]){c->max_position_embeddings, D}));
  for (int i = 0; i < c->num_hidden_layers; i++)
    TRY(sdr_clip_layer_bind(&m->weights, &m->layers[i], "text_model.encoder.layers", i, &params));
  TRY(sdr_weights_bind(&m->weights, &m->final_ln_w, "text_model.final_layer_norm.weight", 1,
                       (int64_t[]){D}));
  TRY(sdr_weights_bind(&m->weights, &m->final_ln_b, "text_model.final_layer_norm.bias", 1,
                       (int64_t[]){D}));
  if (c->with_projection)
    TRY(sdr_weights_bind(&m->weights, &m->text_proj, "text_projection.weight", 2,
                         c->projection_transposed ? (int64_t[]){D, c->projection_dim}
                                                  : (int64_t[]){c->projection_dim, D}));
  /* A buffer older transformers saved; not a weight. */
  sdr_weights_skip(&m->weights, "text_model.embeddings.position_ids");
  /* The rest of a CLIPModel checkpoint (openai/clip-vit-large-patch14 as the fast.ai
   * notebook loads it): transformers leaves these out without a word. */
  static const char *const other[] = {"vision_model.", "visual_projection.", "text_projection.",
                                      "logit_scale"};
  for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
    sdr_weights_skip_prefix(&m->weights, other[i]);
  return 0;
fail:
  return -1;
}

void sdr_clip_text_model_free(sdr_clip_text_model *m) {
  sdr_clip_token_rows_free(m);
  sdr_weights_close(&m->weights);
  free(m->layers);
  memset(m, 0, sizeof *m);
}

/* The encoder's layers from x0 (B, T, D in the activations' dtype, which hidden_states[0]
 * gets): each layer's output into hidden_states[i] when asked for, else into two buffers
 * in turn; *x the last one (x0 itself with no layers; arena memory the caller releases). */
static int run_layers(sdr_clip_text_model *m, sdr_arena *a, const sdr_tensor *x0,
                      sdr_tensor *hidden_states, int causal, sdr_tensor *x) {
  sdr_backend *be = m->be;
  const int L = m->cfg.num_hidden_layers;
  const int64_t *btd = x0->shape;
  sdr_clip_encoder_params params = layer_params(&m->cfg);
  params.causal = causal;
  sdr_tensor stage[2];
  TRY(sdr_arena_tensor(a, &stage[0], m->act, 3, btd));
  TRY(sdr_arena_tensor(a, &stage[1], m->act, 3, btd));
  *x = *x0;
  for (int i = 0; i <= L; i++) {
    if (i == 0 && !hidden_states)
      continue; /* the first layer reads x0 where it is */
    sdr_tensor dst = stage[i % 2], slice, row;
    if (hidden_states) {
      TRY(sdr_tensor_narrow0(&row, hidden_states, i, 1));
      TRY(sdr_tensor_reshape(&slice, &row, 3, btd));
      if (hidden_states->dtype == m->act)
        dst = slice;
    }
    if (i == 0)
      TRY(sdr_affine(be, &dst, x0, 1.0f, 0.0f));
    else
      TRY(sdr_clip_encoder_layer(be, a, &dst, x, &m->layers[i - 1], &params));
    if (hidden_states && hidden_states->dtype != m->act)
      TRY(sdr_cast(be, &slice, &dst));
    *x = dst;
  }
  return 0;
fail:
  return -1;
}

/* out = x, cast when out is not in the activations' dtype */
static int store(sdr_clip_text_model *m, sdr_tensor *out, const sdr_tensor *x) {
  return out->dtype == x->dtype ? sdr_affine(m->be, out, x, 1.0f, 0.0f) : sdr_cast(m->be, out, x);
}

static int check_hidden(const sdr_clip_text_model *m, const sdr_tensor *out,
                        const sdr_tensor *hidden_states, int64_t B, int64_t T) {
  const int64_t D = m->cfg.hidden_size;
  const int L = m->cfg.num_hidden_layers;
  if (out->ndim != 3 || out->shape[0] != B || out->shape[1] != T || out->shape[2] != D)
    return sdr_fail("text_encoder: last_hidden_state must be (%lld, %lld, %lld)", (long long)B,
                    (long long)T, (long long)D);
  if (hidden_states && (hidden_states->ndim != 4 || hidden_states->shape[0] != L + 1 ||
                        hidden_states->shape[1] != B || hidden_states->shape[2] != T ||
                        hidden_states->shape[3] != D))
    return sdr_fail("text_encoder: hidden_states must be (%d, %lld, %lld, %lld)", L + 1,
                    (long long)B, (long long)T, (long long)D);
  return 0;
}

int sdr_clip_text_embeddings(sdr_clip_text_model *m, sdr_arena *a, sdr_tensor *out,
                             const sdr_tensor *ids) {
  const sdr_clip_text_config *c = &m->cfg;
  sdr_backend *be = m->be;
  if (ids->ndim != 2 || ids->dtype != SDR_I64)
    return sdr_fail("text_encoder: input_ids must be a (batch, tokens) int64 tensor");
  const int64_t B = ids->shape[0], T = ids->shape[1], D = c->hidden_size;
  if (T < 1 || T > c->max_position_embeddings)
    return sdr_fail("text_encoder: %lld tokens, the model takes 1 to %d", (long long)T,
                    c->max_position_embeddings);
  if (out->ndim != 3 || out->shape[0] != B || out->shape[1] != T || out->shape[2] != D)
    return sdr_fail("text_encoder: the embeddings must be (%lld, %lld, %lld)", (long long)B,
                    (long long)T, (long long)D);
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  const int64_t btd[3] = {B, T, D};
  sdr_tensor tok, pos, sum, pos_ids;
  TRY(sdr_arena_tensor(a, &tok, m->act, 3, btd));
  TRY(sdr_embedding(be, &tok, &m->tok_emb, ids));
  /* position_embedding(position_ids), as transformers looks it up: the lookup
   * also widens a float16 table to the float32 activations. */
  TRY(sdr_clip_ids(be, a, &pos_ids, T, 1, 0));
  TRY(sdr_arena_tensor(a, &pos, m->act, 2, (int64_t[]){T, D}));
  TRY(sdr_embedding(be, &pos, &m->pos_emb, &pos_ids));
  if (out->dtype == m->act) {
    TRY(sdr_binary(be, out, &tok, &pos, SDR_BINARY_ADD));
  } else {
    TRY(sdr_arena_tensor(a, &sum, m->act, 3, btd));
    TRY(sdr_binary(be, &sum, &tok, &pos, SDR_BINARY_ADD));
    TRY(sdr_cast(be, out, &sum));
  }
  sdr_arena_release(a, mark);
  return 0;
fail:
  sdr_arena_release(a, mark);
  return -1;
}

int sdr_clip_text_encoder(sdr_clip_text_model *m, sdr_arena *a, sdr_tensor *last,
                          sdr_tensor *hidden_states, const sdr_tensor *embeds, int causal) {
  if (embeds->ndim != 3 || embeds->shape[2] != m->cfg.hidden_size)
    return sdr_fail("text_encoder: inputs_embeds must be (batch, tokens, %d)", m->cfg.hidden_size);
  const int64_t B = embeds->shape[0], T = embeds->shape[1];
  if (check_hidden(m, last, hidden_states, B, T) != 0)
    return -1;
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor x0, x;
  TRY(sdr_arena_tensor(a, &x0, m->act, 3, embeds->shape));
  TRY(store(m, &x0, embeds));
  TRY(run_layers(m, a, &x0, hidden_states, causal, &x));
  TRY(store(m, last, &x));
  sdr_arena_release(a, mark);
  return 0;
fail:
  sdr_arena_release(a, mark);
  return -1;
}

int sdr_clip_text_final_norm(sdr_clip_text_model *m, sdr_arena *a, sdr_tensor *out,
                             const sdr_tensor *x) {
  if (x->ndim < 1 || x->shape[x->ndim - 1] != m->cfg.hidden_size || !sdr_tensor_same_shape(out, x))
    return sdr_fail("text_encoder: final_layer_norm takes (..., %d) values", m->cfg.hidden_size);
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor in = *x, normed;
  if (x->dtype != m->act) {
    TRY(sdr_arena_tensor(a, &in, m->act, x->ndim, x->shape));
    TRY(sdr_cast(m->be, &in, x));
  }
  if (out->dtype == m->act) {
    TRY(sdr_layer_norm(m->be, out, &in, &m->final_ln_w, &m->final_ln_b, m->cfg.layer_norm_eps));
  } else {
    TRY(sdr_arena_tensor(a, &normed, m->act, x->ndim, x->shape));
    TRY(sdr_layer_norm(m->be, &normed, &in, &m->final_ln_w, &m->final_ln_b, m->cfg.layer_norm_eps));
    TRY(sdr_cast(m->be, out, &normed));
  }
  sdr_arena_release(a, mark);
  return 0;
fail:
  sdr_arena_release(a, mark);
  return -1;
}

int sdr_clip_text_forward(sdr_clip_text_model *m, sdr_arena *a, sdr_tensor *last_hidden,
                          sdr_tensor *hidden_states, const sdr_tensor *ids) {
  if (ids->ndim != 2 || ids->dtype != SDR_I64)
    return sdr_fail("text_encoder: input_ids must be a (batch, tokens) int64 tensor");
  const int64_t B = ids->shape[0], T = ids->shape[1], D = m->cfg.hidden_size;
  if (T >= 1 && T <= m->cfg.max_position_embeddings &&
      check_hidden(m, last_hidden, hidden_states, B, T) != 0)
    return -1;
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor x0, x;
  TRY(sdr_arena_tensor(a, &x0, m->act, 3, (int64_t[]){B, T, D}));
  TRY(sdr_clip_text_embeddings(m, a, &x0, ids));
  TRY(run_layers(m, a, &x0, hidden_states, 1, &x));
  TRY(sdr_clip_text_final_norm(m, a, last_hidden, &x));
  sdr_arena_release(a, mark);
  return 0;
fail:
  sdr_arena_release(a, mark);
  return -1;
}

int sdr_clip_text_pool(sdr_clip_text_model *m, sdr_arena *a, sdr_tensor *pooled,
                       const sdr_tensor *last_hidden, const sdr_tensor *ids) {
  const int64_t B = ids->shape[0], T = ids->shape[1], D = m->cfg.hidden_size;
  if (last_hidden->ndim != 3 || last_hidden->shape[0] != B || last_hidden->shape[1] != T ||
      last_hidden->shape[2] != D || pooled->ndim != 2 || pooled->shape[0] != B ||
      pooled->shape[1] != D)
    return sdr_fail("text_encoder: pooler_output must be (%lld, %lld) from a (%lld, %lld, %lld) "
                    "last_hidden_state",
                    (long long)B, (long long)D, (long long)B, (long long)T, (long long)D);
  int64_t *host = malloc((size_t)(B * T + B) * sizeof *host);
  if (!host)
    return sdr_fail("out of memory");
  int64_t *rows = host + B * T;
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor at, table;
  int rc = sdr_download(m->be, host, ids->data, (size_t)(B * T) * sizeof *host);
  for (int64_t b = 0; rc == 0 && b < B; b++) {
    const int64_t *row = host + b * T;
    int64_t pos = 0; /* torch's argmax: the first of equal maxima (no end token: 0) */
    if (m->cfg.eos_token_id == 2) {
      for (int64_t i = 1; i < T; i++)
        pos = row[i] > row[pos] ? i : pos;
    } else {
      while (pos < T && row[pos] != m->cfg.eos_token_id)
        pos++;
      pos = pos == T ? 0 : pos;
    }
    rows[b] = b * T + pos;
  }
  if (rc == 0)
    rc = sdr_arena_tensor(a, &at, SDR_I64, 1, (int64_t[]){B});
  if (rc == 0)
    rc = sdr_upload(m->be, at.data, rows, (size_t)B * sizeof *rows);
  if (rc == 0)
    rc = sdr_tensor_reshape(&table, last_hidden, 2, (int64_t[]){B * T, D});
  if (rc == 0)
    rc = sdr_embedding(m->be, pooled, &table, &at);
  sdr_arena_release(a, mark);
  free(host);
  return rc;
}

int sdr_clip_text_project(sdr_clip_text_model *m, sdr_arena *a, sdr_tensor *text_embeds,
                          const sdr_tensor *pooled) {
  const sdr_clip_text_config *c = &m->cfg;
  if (!c->with_projection)
    return sdr_fail("text_encoder: a CLIPTextModel has no text_projection "
                    "(CLIPTextModelWithProjection has)");
  const int64_t B = pooled->shape[0];
  if (pooled->ndim != 2 || pooled->shape[1] != c->hidden_size || text_embeds->ndim != 2 ||
      text_embeds->shape[0] != B || text_embeds->shape[1] != c->projection_dim)
    return sdr_fail("text_encoder: text_embeds must be (%lld, %d) from a (%lld, %d) pooler_output",
                    (long long)B, c->projection_dim, (long long)B, c->hidden_size);
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor x, y;
  int rc = sdr_arena_as(a, &x, pooled, m->act);
  if (rc == 0)
    rc = sdr_arena_tensor(a, &y, m->act, 2, text_embeds->shape);
  if (rc == 0 && !c->projection_transposed) {
    rc = sdr_linear(m->be, &y, &x, &m->text_proj, NULL);
  } else if (rc == 0) { /* pooled @ text_projection, as OpenCLIP computes it */
    sdr_tensor w, x3, w3, y3;
    const int64_t D = c->hidden_size, P = c->projection_dim;
    rc = sdr_arena_as(a, &w, &m->text_proj, m->act);
    if (rc == 0)
      rc = sdr_tensor_reshape(&x3, &x, 3, (int64_t[]){1, B, D});
    if (rc == 0)
      rc = sdr_tensor_reshape(&w3, &w, 3, (int64_t[]){1, D, P});
    if (rc == 0)
      rc = sdr_tensor_reshape(&y3, &y, 3, (int64_t[]){1, B, P});
    if (rc == 0)
      rc = sdr_bmm(m->be, &y3, &x3, &w3, 0, 1.0f);
  }
  if (rc == 0)
    rc = y.dtype == text_embeds->dtype ? sdr_affine(m->be, text_embeds, &y, 1.0f, 0.0f)
                                       : sdr_cast(m->be, text_embeds, &y);
  sdr_arena_release(a, mark);
  return rc;
}

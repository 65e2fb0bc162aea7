/* bindings/clip_text_model.c — CLIPTextModel.from_pretrained and calling it, as transformers. */
#include "bindings/clip_text_model.h"

#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/lsdr.h"                  // lsdr_register, lsdr_args, lsdr_options, lsdr_error
#include "bindings/model_common.h"          // lsdr_pretrained_read, lsdr_model_metatable
#include "bindings/pipeline_internal.h"     // lsdr_model_lora_ready
#include "bindings/clip_text_transformer.h" // lsdr_push_text_model
#include "bindings/generator.h"             // lsdr_default_generator, lsdr_generator_fit_device
#include "bindings/tensor.h" // lsdr_backend, lsdr_to_dtype, lsdr_push_new_tensor, lsdr_push_view
#include "bindings/token_embedding.h" // lsdr_push_clip_embedding
#include "engine/clip_text_model.h"
#include "engine/error.h" // sdr_last_error

#define LSDR_CLIP_TEXT_MODEL "CLIPTextModel"

static sdr_clip_text_model *check_model(lua_State *L, int idx, lsdr_model_box **box) {
  *box = lsdr_model_box_check(L, idx, LSDR_CLIP_TEXT_MODEL);
  sdr_clip_text_model *m = (*box)->model;
  lsdr_model_box_follow(*box, m->be);
  return m;
}

sdr_clip_text_model *lsdr_to_clip_text_model(lua_State *L, int idx) {
  lsdr_model_box *box = luaL_testudata(L, idx, LSDR_CLIP_TEXT_MODEL);
  return box ? box->model : NULL;
}

static void free_model(void *m) { sdr_clip_text_model_free(m); }

static int load_model(void *m, sdr_backend *be, const char *dir, const char *variant, int keep) {
  return sdr_clip_text_model_load(m, be, dir, variant, keep);
}

/* CLIPTextModel.from_pretrained(path, {subfolder, torch_dtype, variant, ...}) */
static int from_pretrained(lua_State *L) {
  return lsdr_model_from_pretrained(L, LSDR_CLIP_TEXT_MODEL, sizeof(sdr_clip_text_model),
                                    load_model, free_model);
}

lsdr_model_box *lsdr_clip_text_part_box(lua_State *L, int idx, const char *tname) {
  luaL_checkudata(L, idx, tname);
  lua_getiuservalue(L, idx, 1);
  lsdr_model_box *box;
  check_model(L, -1, &box);
  lua_pop(L, 1);
  return box;
}

void lsdr_push_clip_text_model_ref(lua_State *L, sdr_clip_text_model *model, int owner) {
  lsdr_model_box_push_ref(L, LSDR_CLIP_TEXT_MODEL, model, model->be, owner);
}

/* model(input_ids, {output_hidden_states=false}) -> {last_hidden_state=, pooler_output=,
 * hidden_states=}, indexable as transformers' tuple (out[1] is last_hidden_state) */
static int model_call(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  lsdr_model_box *box;
  sdr_clip_text_model *model = check_model(L, 1, &box);
  lsdr_tensor *in = lsdr_check_tensor(L, 2);
  if (in->t.dtype != SDR_I64 || in->t.ndim != 2)
    return lsdr_argerror(L, 1, "a (batch, tokens) int64 tensor");
  if (in->storage->be != model->be)
    return lsdr_error(L, "input_ids are on %s, the model on %s", sdr_device_name(in->t.device),
                      sdr_device_name(model->be->device));
  /* a pipeline's, with its LoRA */
  const sdr_pipeline *owner = lsdr_model_owner(L, 1);
  lsdr_model_lora_ready(L, 1,
                        owner && model == &owner->text_encoder_2 ? SDR_LORA_TEXT_ENCODER_2
                                                                 : SDR_LORA_TEXT_ENCODER);
  lua_getfield(L, 3, "output_hidden_states");
  int want_hidden = lua_toboolean(L, -1);
  lua_pop(L, 1);
  const int64_t B = in->t.shape[0], T = in->t.shape[1], D = model->cfg.hidden_size;
  const int L1 = model->cfg.num_hidden_layers + 1;
  lua_createtable(L, 0, 3);
  int result = lua_gettop(L);
  lsdr_tensor *last = lsdr_push_new_tensor(L, model->be, SDR_F32, 3, (int64_t[]){B, T, D});
  lua_setfield(L, result, "last_hidden_state");
  lsdr_tensor *pooled = lsdr_push_new_tensor(L, model->be, SDR_F32, 2, (int64_t[]){B, D});
  lua_setfield(L, result, "pooler_output");
  lsdr_tensor *hidden = NULL;
  if (want_hidden) {
    hidden = lsdr_push_new_tensor(L, model->be, SDR_F32, 4, (int64_t[]){L1, B, T, D});
    lua_insert(L, result + 1);
  }
  /* CLIPTextModelWithProjection (SDXL's text_encoder_2) gives text_embeds, the projected
   * pooled output, first and no pooler_output, as transformers' CLIPTextModelOutput */
  lsdr_tensor *embeds = NULL;
  if (model->cfg.with_projection) {
    embeds =
        lsdr_push_new_tensor(L, model->be, SDR_F32, 2, (int64_t[]){B, model->cfg.projection_dim});
    lua_setfield(L, result, "text_embeds");
  }
  int rc = sdr_clip_text_forward(model, &box->arena, &last->t, hidden ? &hidden->t : NULL, &in->t);
  if (rc == 0)
    rc = sdr_clip_text_pool(model, &box->arena, &pooled->t, &last->t, &in->t);
  if (rc == 0 && embeds)
    rc = sdr_clip_text_project(model, &box->arena, &embeds->t, &pooled->t);
  sdr_arena_reset(&box->arena);
  if (rc != 0)
    return lsdr_engine_error(L);
  static const char *const fields[] = {"last_hidden_state", "pooler_output", "hidden_states", NULL};
  static const char *const projected[] = {"text_embeds", "last_hidden_state", "hidden_states",
                                          NULL};
  if (embeds) {
    lua_pushnil(L);
    lua_setfield(L, result, "pooler_output");
  }
  lsdr_output_kind(L, result, embeds ? "CLIPTextModelOutput" : "BaseModelOutputWithPooling",
                   embeds ? projected : fields);
  if (hidden) {
    lsdr_push_row_views(L, hidden); /* transformers' tuple of L + 1 tensors */
    lua_setfield(L, result, "hidden_states");
  }
  lua_settop(L, result);
  return 1;
}

static int model_properties(lua_State *L) {
  lsdr_model_box *box;
  sdr_clip_text_model *model = check_model(L, 1, &box);
  const char *k = lua_tostring(L, 2);
  if (k && strcmp(k, "config") == 0) {
    const sdr_clip_text_config *c = &model->cfg;
    lua_createtable(L, 0, 11);
    int t = lua_gettop(L);
    lsdr_set_int(L, t, "vocab_size", c->vocab_size);
    lsdr_set_int(L, t, "hidden_size", c->hidden_size);
    lsdr_set_int(L, t, "intermediate_size", c->intermediate_size);
    lsdr_set_int(L, t, "num_attention_heads", c->num_attention_heads);
    lsdr_set_int(L, t, "num_hidden_layers", c->num_hidden_layers);
    lsdr_set_int(L, t, "max_position_embeddings", c->max_position_embeddings);
    lsdr_set_str(L, t, "hidden_act", c->quick_gelu ? "quick_gelu" : "gelu");
    lsdr_set_num(L, t, "layer_norm_eps", c->layer_norm_eps);
    lsdr_set_int(L, t, "pad_token_id", c->pad_token_id);
    lsdr_set_int(L, t, "bos_token_id", c->bos_token_id);
    lsdr_set_int(L, t, "eos_token_id", c->eos_token_id);
    return 1;
  }
  if (k && strcmp(k, "device") == 0) {
    lsdr_push_device(L, model->be->device);
    return 1;
  }
  if (k && strcmp(k, "text_model") == 0) {
    lsdr_push_text_model(L, 1);
    return 1;
  }
  if (k && strcmp(k, "dtype") == 0) {
    lsdr_push_model_dtype(L, &model->weights);
    return 1;
  }
  return 0;
}

static int model_tostring(lua_State *L) {
  lsdr_model_box *b = luaL_checkudata(L, 1, LSDR_CLIP_TEXT_MODEL);
  if (!lsdr_model_box_open(b)) {
    lua_pushliteral(L, "<CLIPTextModel (closed)>");
    return 1;
  }
  const sdr_clip_text_model *m = b->model;
  lua_pushfstring(L, "<CLIPTextModel %d layers, width %d, on %s>", m->cfg.num_hidden_layers,
                  m->cfg.hidden_size, sdr_device_name(m->be->device));
  return 1;
}

static const lsdr_param call_options[] = {
    {"output_hidden_states", "boolean", "false", "also return every layer's output"},
    {"return_dict", "boolean", "true", "accepted: the result is indexable either way"},
    {0}};

static const lsdr_func class_funcs[] = {
    {"CLIPTextModel.from_pretrained",
     from_pretrained,
     "Loads a CLIP text encoder from a folder (transformers' layout).",
     {{"path", "string"}, {"opts", "table", "nil"}},
     lsdr_from_pretrained_options},
    {0}};

static int model_save_pretrained(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  lsdr_model_box *box;
  return lsdr_model_save_pretrained(L, &check_model(L, 1, &box)->weights, "model");
}

/* model:get_input_embeddings(): the token embedding, an nn.Embedding whose weight's rows
 * can be set */
static int model_get_input_embeddings(lua_State *L) {
  lsdr_args(L);
  lsdr_model_box *box;
  check_model(L, 1, &box);
  lsdr_push_clip_embedding(L, 1, 0);
  return 1;
}

/* model:resize_token_embeddings(new_num_tokens, {pad_to_multiple_of}): a table of that many
 * rows, the old ones kept and the new ones drawn as a new nn.Embedding draws them (normal,
 * from the default generator of the model's device); returns the embedding */
static int model_resize_token_embeddings(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  lsdr_model_box *box;
  sdr_clip_text_model *model = check_model(L, 1, &box);
  lua_getfield(L, 3, "pad_to_multiple_of");
  lua_Integer multiple = lua_isnil(L, -1) ? 1 : lua_tointeger(L, -1);
  if (multiple < 1 || multiple > (1 << 20))
    return lsdr_error(L, "option 'pad_to_multiple_of': a positive integer expected");
  if (!lua_isnil(L, 2)) {
    lua_Integer n = lua_tointeger(L, 2);
    n = (n + multiple - 1) / multiple * multiple;
    if (n < 1 || n > (1 << 24))
      return lsdr_argerror(L, 1, "a number of tokens from 1 to 16777216");
    sdr_generator *g = lsdr_default_generator(
        L, model->be->device == SDR_DEVICE_CPU ? SDR_GENERATOR_CPU : SDR_GENERATOR_CUDA);
    lsdr_generator_fit_device(g);
    if (sdr_clip_text_resize_drawn(model, (int)n, g, (int)n) != 0)
      return lsdr_engine_error(L);
  }
  lsdr_push_clip_embedding(L, 1, 0);
  return 1;
}

static const lsdr_param resize_options[] = {
    {"pad_to_multiple_of", "integer", "nil", "round the number of rows up to a multiple of it"},
    {0}};

static const lsdr_func call_funcs[] = {
    {"CLIPTextModel:get_input_embeddings",
     model_get_input_embeddings,
     "The token embedding (an nn.Embedding): emb(ids) looks ids up, emb.weight[id + 1] = v "
     "sets a token's vector (rows count from 1).",
     {{0}}},
    {"CLIPTextModel:resize_token_embeddings",
     model_resize_token_embeddings,
     "Grows (or cuts) the token table to new_num_tokens rows, as transformers: the new rows "
     "drawn normal from the default generator. Returns the embedding.",
     {{"new_num_tokens", "integer", "nil"}, {"opts", "table", "nil"}},
     resize_options},
    {"CLIPTextModel:to",
     lsdr_model_to,
     "The model itself for memory_format (or its own device); pipe:to moves a pipeline.",
     {{"target", "string|table"}, {"dtype", "any", "nil"}}},
    {"CLIPTextModel:__call",
     model_call,
     "Encodes token ids (batch, tokens): returns {last_hidden_state=, pooler_output=, "
     "hidden_states=}; out[1], out[2] as transformers' tuple.",
     {{"input_ids", "Tensor"}, {"opts", "table", "nil"}},
     call_options},
    {"CLIPTextModel:save_pretrained",
     model_save_pretrained,
     "Writes config.json and model.safetensors into a folder, as transformers does.",
     {{"save_directory", "string"}, {"opts", "table", "nil"}},
     lsdr_save_pretrained_options},
    {0}};

void lsdr_open_clip_text_model(lua_State *L) {
  lsdr_model_metatable(L, LSDR_CLIP_TEXT_MODEL, call_funcs, model_properties, lsdr_model_box_gc,
                       model_tostring);
  luaL_getmetatable(L, LSDR_CLIP_TEXT_MODEL); /* the properties, for completion */
  lua_getfield(L, -1, "__fields");
  static const char *const props[] = {"config", "device", "dtype", "text_model", NULL};
  for (int i = 0; props[i]; i++) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, props[i]);
  }
  lua_pop(L, 2);
  lua_newtable(L);
  lsdr_register(L, -1, class_funcs);
  lua_setglobal(L, "CLIPTextModel");
}

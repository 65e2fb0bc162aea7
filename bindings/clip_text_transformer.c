/* bindings/clip_text_transformer.c — text_encoder.text_model: transformers'
 * CLIPTextTransformer in its parts, as the fast.ai deep dive takes it apart to feed the
 * encoder embeddings of its own:
 *
 *   tm = text_encoder.text_model
 *   tm.embeddings.token_embedding(ids),
 * tm.embeddings.position_embedding(tm.embeddings.position_ids) tm.embeddings(ids) -- both, summed
 *   mask = tm:_build_causal_attention_mask(bsz, seq_len, {dtype = x.dtype})
 *   out = tm.encoder{inputs_embeds = x, causal_attention_mask = mask, output_hidden_states = true}
 *   tm.final_layer_norm(out[1])
 *
 * Each part holds the model (its box, as the uservalue) and runs on its device.
 */
#include "bindings/clip_text_transformer.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/clip_text_model.h" // lsdr_clip_text_part_box
#include "bindings/lsdr.h"            // lsdr_error, lsdr_engine_error
#include "bindings/model_common.h"    // lsdr_model_box, lsdr_output_kind
#include "bindings/tensor.h"          // lsdr_check_tensor, lsdr_push_new_tensor
#include "bindings/tensor_internal.h" // lsdr_push_from_host, lsdr_tensor_host_values
#include "bindings/token_embedding.h" // lsdr_push_clip_embedding
#include "engine/clip_text_model.h"

#define TRANSFORMER "CLIPTextTransformer"
#define EMBEDDINGS "CLIPTextEmbeddings"
#define ENCODER "CLIPEncoder"
#define LAYER_NORM "CLIPTextTransformer.final_layer_norm"

/* A part of the model at idx (a holder of its box) pushed with the metatable tname. */
static void push_part(lua_State *L, int idx, const char *tname) {
  idx = lua_absindex(L, idx);
  lua_newuserdatauv(L, 0, 1);
  lua_getiuservalue(L, idx, 1);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, tname);
}

/* Checks x: a float tensor on the model's device ending in hidden_size. */
static lsdr_tensor *check_hidden(lua_State *L, int idx, const sdr_clip_text_model *m,
                                 const char *what) {
  lsdr_tensor *x = lsdr_to_tensor(L, idx);
  if (!x)
    luaL_error(L, "%s: a tensor expected, got %s", what, luaL_typename(L, idx));
  if (x->t.ndim < 1 || x->t.shape[x->t.ndim - 1] != m->cfg.hidden_size ||
      (x->t.dtype != SDR_F32 && x->t.dtype != SDR_F16 && x->t.dtype != SDR_BF16))
    luaL_error(L, "%s: a float tensor of (..., %d) expected", what, m->cfg.hidden_size);
  if (x->storage->be != m->be)
    luaL_error(L, "%s: the tensor is on %s, the model on %s", what, sdr_device_name(x->t.device),
               sdr_device_name(m->be->device));
  return x;
}

/* ---- embeddings ---------------------------------------------------------------------- */

static int embeddings_index(lua_State *L) {
  lsdr_model_box *box = lsdr_clip_text_part_box(L, 1, EMBEDDINGS);
  const sdr_clip_text_model *m = box->model;
  const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "";
  if (strcmp(k, "token_embedding") == 0 || strcmp(k, "position_embedding") == 0) {
    lua_getiuservalue(L, 1, 1);
    lsdr_push_clip_embedding(L, -1, k[0] == 'p');
  } else if (strcmp(k, "position_ids") == 0) { /* the buffer: (1, max_position_embeddings) */
    const int P = (int)m->pos_emb.shape[0];
    double *v = malloc((size_t)P * sizeof *v);
    if (!v)
      return luaL_error(L, "position_ids: out of memory");
    for (int i = 0; i < P; i++)
      v[i] = i;
    lsdr_push_from_host(L, m->be, SDR_I64, 2, (int64_t[]){1, P}, v);
    free(v);
  } else {
    lua_pushnil(L);
  }
  return 1;
}

/* embeddings(input_ids): token plus position embeddings, (batch, tokens, hidden_size) */
static int embeddings_call(lua_State *L) {
  lsdr_model_box *box = lsdr_clip_text_part_box(L, 1, EMBEDDINGS);
  sdr_clip_text_model *m = box->model;
  lsdr_tensor *ids = lsdr_check_tensor(L, 2);
  if (ids->t.dtype != SDR_I64 || ids->t.ndim != 2)
    return luaL_error(L, "CLIPTextEmbeddings: input_ids must be a (batch, tokens) int64 tensor");
  if (ids->storage->be != m->be)
    return luaL_error(L, "CLIPTextEmbeddings: input_ids are on %s, the model on %s",
                      sdr_device_name(ids->t.device), sdr_device_name(m->be->device));
  lsdr_tensor *out =
      lsdr_push_new_tensor(L, m->be, sdr_clip_text_torch_dtype(m), 3,
                           (int64_t[]){ids->t.shape[0], ids->t.shape[1], m->cfg.hidden_size});
  int rc = sdr_clip_text_embeddings(m, &box->arena, &out->t, &ids->t);
  sdr_arena_reset(&box->arena);
  if (rc != 0)
    return lsdr_engine_error(L);
  return 1;
}

/* ---- the encoder --------------------------------------------------------------------- */

/* Whether the mask at idx (batch, 1, T, T) is the causal one: 0 on and below the diagonal,
 * a large negative number above it (torch.finfo(dtype).min, or -inf). */
static int is_causal_mask(lua_State *L, int idx, int64_t B, int64_t T) {
  lsdr_tensor *mk = lsdr_to_tensor(L, idx);
  if (!mk)
    lsdr_error(L, "option 'causal_attention_mask': a tensor or nil expected, got %s",
               luaL_typename(L, idx));
  const int64_t *s = mk->t.shape;
  if (mk->t.ndim != 4 || s[0] != B || s[1] != 1 || s[2] != T || s[3] != T)
    lsdr_error(L, "option 'causal_attention_mask': (%I, 1, %I, %I) expected", (lua_Integer)B,
               (lua_Integer)T, (lua_Integer)T);
  double *v = lsdr_tensor_host_values(L, mk);
  int causal = 1;
  for (int64_t b = 0; b < B && causal; b++)
    for (int64_t i = 0; i < T && causal; i++)
      for (int64_t j = 0; j < T && causal; j++) {
        double x = v[(b * T + i) * T + j];
        causal = j <= i ? x == 0 : x <= -1e4;
      }
  free(v);
  return causal;
}

/* encoder{inputs_embeds = x, causal_attention_mask = mask, attention_mask = nil,
 * output_hidden_states = false}: the layers from x, no final layer norm */
static int encoder_call(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 1);
  lsdr_model_box *box = lsdr_clip_text_part_box(L, 1, ENCODER);
  sdr_clip_text_model *m = box->model;
  lua_getfield(L, 2, "inputs_embeds");
  lsdr_tensor *x = check_hidden(L, -1, m, "option 'inputs_embeds'");
  if (x->t.ndim != 3)
    return lsdr_error(L, "option 'inputs_embeds': (batch, tokens, %d) expected",
                      m->cfg.hidden_size);
  const int64_t B = x->t.shape[0], T = x->t.shape[1], D = m->cfg.hidden_size;
  const int L1 = m->cfg.num_hidden_layers + 1;
  lua_getfield(L, 2, "attention_mask");
  if (!lua_isnil(L, -1))
    return lsdr_error(L, "option 'attention_mask': only nil (no padding mask) is supported");
  lua_getfield(L, 2, "causal_attention_mask");
  int causal = 0;
  if (!lua_isnil(L, -1)) {
    causal = is_causal_mask(L, -1, B, T);
    if (!causal)
      return lsdr_error(L, "option 'causal_attention_mask': only the causal mask "
                           "(_build_causal_attention_mask's) or nil is supported");
  }
  lua_getfield(L, 2, "output_hidden_states");
  const int want_hidden = lua_toboolean(L, -1);
  lua_settop(L, 3); /* self, opts, inputs_embeds */
  lua_createtable(L, 0, 2);
  int result = lua_gettop(L);
  const sdr_dtype dt = sdr_clip_text_torch_dtype(m);
  lsdr_tensor *last = lsdr_push_new_tensor(L, m->be, dt, 3, (int64_t[]){B, T, D});
  lua_setfield(L, result, "last_hidden_state");
  lsdr_tensor *hidden =
      want_hidden ? lsdr_push_new_tensor(L, m->be, dt, 4, (int64_t[]){L1, B, T, D}) : NULL;
  int rc =
      sdr_clip_text_encoder(m, &box->arena, &last->t, hidden ? &hidden->t : NULL, &x->t, causal);
  sdr_arena_reset(&box->arena);
  if (rc != 0)
    return lsdr_engine_error(L);
  if (hidden) {
    lsdr_push_row_views(L, hidden); /* transformers' tuple of L + 1 tensors */
    lua_setfield(L, result, "hidden_states");
    lua_pop(L, 1);
  }
  static const char *const fields[] = {"last_hidden_state", "hidden_states", NULL};
  lsdr_output_kind(L, result, "BaseModelOutput", fields);
  lua_settop(L, result);
  return 1;
}

static const lsdr_param encoder_options[] = {
    {"inputs_embeds", "Tensor", NULL, "(batch, tokens, hidden_size)"},
    {"attention_mask", "any", "nil", "only nil"},
    {"causal_attention_mask", "Tensor", "nil", "_build_causal_attention_mask's, or nil: none"},
    {"output_attentions", "any", "nil", "accepted (no attention maps are returned)"},
    {"output_hidden_states", "boolean", "false", "also every layer's output"},
    {"return_dict", "any", "nil", "accepted: the result is indexable either way"},
    {0}};

static const lsdr_func encoder_funcs[] = {
    {"CLIPEncoder:__call",
     encoder_call,
     "The text encoder's layers from embeddings of one's own: {last_hidden_state=, "
     "hidden_states=} (out[1] is the first), before final_layer_norm.",
     {{"opts", "table"}},
     encoder_options},
    {0}};

/* ---- final_layer_norm ---------------------------------------------------------------- */

static int layer_norm_call(lua_State *L) {
  lsdr_model_box *box = lsdr_clip_text_part_box(L, 1, LAYER_NORM);
  sdr_clip_text_model *m = box->model;
  lsdr_tensor *x = check_hidden(L, 2, m, "final_layer_norm");
  lsdr_tensor *out = lsdr_push_new_tensor(L, m->be, x->t.dtype, x->t.ndim, x->t.shape);
  int rc = sdr_clip_text_final_norm(m, &box->arena, &out->t, &x->t);
  sdr_arena_reset(&box->arena);
  if (rc != 0)
    return lsdr_engine_error(L);
  return 1;
}

/* ---- the transformer ----------------------------------------------------------------- */

/* tm:_build_causal_attention_mask(bsz, seq_len, {dtype}): (bsz, 1, seq_len, seq_len), 0 on
 * and below the diagonal, torch.finfo(dtype).min above it, as transformers built it */
static int build_causal_mask(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 3);
  lsdr_model_box *box = lsdr_clip_text_part_box(L, 1, TRANSFORMER);
  const sdr_clip_text_model *m = box->model;
  lua_Integer B = lua_tointeger(L, 2), T = lua_tointeger(L, 3);
  if (B < 1 || B > 4096 || T < 1 || T > 4096)
    return lsdr_error(L, "bsz and seq_len from 1 to 4096 expected");
  lua_getfield(L, 4, "dtype");
  int dt = lua_isnil(L, -1) ? SDR_F32 : lsdr_to_dtype(L, -1);
  if (dt != SDR_F32 && dt != SDR_F16 && dt != SDR_BF16)
    return lsdr_error(L, "option 'dtype': torch.float32, torch.float16 or torch.bfloat16 expected");
  const double lowest = dt == SDR_F16    ? -65504.0
                        : dt == SDR_BF16 ? -3.3895313892515355e38
                                         : -FLT_MAX;
  double *v = malloc((size_t)(B * T * T) * sizeof *v);
  if (!v)
    return lsdr_error(L, "out of memory");
  for (lua_Integer b = 0; b < B; b++)
    for (lua_Integer i = 0; i < T; i++)
      for (lua_Integer j = 0; j < T; j++)
        v[(b * T + i) * T + j] = j > i ? lowest : 0.0;
  lsdr_push_from_host(L, m->be, (sdr_dtype)dt, 4, (int64_t[]){B, 1, T, T}, v);
  free(v);
  return 1;
}

static const lsdr_param mask_options[] = {
    {"dtype", "any", "torch.float32", "the mask's dtype (its lowest value above the diagonal)"},
    {0}};

static const lsdr_func transformer_funcs[] = {
    {"CLIPTextTransformer:_build_causal_attention_mask",
     build_causal_mask,
     "The causal mask the encoder takes: 0 on and below the diagonal, the dtype's lowest value "
     "above it.",
     {{"bsz", "integer"}, {"seq_len", "integer"}, {"opts", "table", "nil"}},
     mask_options},
    {0}};

static int transformer_index(lua_State *L) {
  lsdr_clip_text_part_box(L, 1, TRANSFORMER);
  const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "";
  if (strcmp(k, "embeddings") == 0)
    push_part(L, 1, EMBEDDINGS);
  else if (strcmp(k, "encoder") == 0)
    push_part(L, 1, ENCODER);
  else if (strcmp(k, "final_layer_norm") == 0)
    push_part(L, 1, LAYER_NORM);
  else if (luaL_getmetatable(L, TRANSFORMER) && lua_getfield(L, -1, "__methods") == LUA_TTABLE)
    lua_getfield(L, -1, k);
  else
    lua_pushnil(L);
  return 1;
}

/* text_model(input_ids, opts): the model's own call */
static int transformer_call(lua_State *L) {
  lsdr_clip_text_part_box(L, 1, TRANSFORMER);
  lua_getiuservalue(L, 1, 1);
  lua_replace(L, 1);
  luaL_getmetafield(L, 1, "__call");
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

static int part_tostring(lua_State *L) {
  luaL_getmetafield(L, 1, "__name");
  lua_pushfstring(L, "<%s>", lua_tostring(L, -1));
  return 1;
}

static void metatable(lua_State *L, const char *tname, lua_CFunction index, lua_CFunction call,
                      const lsdr_func *methods) {
  if (!luaL_newmetatable(L, tname)) {
    lua_pop(L, 1);
    return;
  }
  if (index) {
    lua_pushcfunction(L, index);
    lua_setfield(L, -2, "__index");
  }
  if (call) {
    lua_pushcfunction(L, call);
    lua_setfield(L, -2, "__call");
  }
  if (methods) {
    lua_newtable(L);
    lsdr_register(L, -1, methods);
    if (lua_getfield(L, -1, "__call") != LUA_TNIL)
      lua_setfield(L, -3, "__call");
    else
      lua_pop(L, 1);
    lua_setfield(L, -2, "__methods");
  }
  lua_pushcfunction(L, part_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}

void lsdr_push_text_model(lua_State *L, int model_idx) {
  model_idx = lua_absindex(L, model_idx);
  metatable(L, TRANSFORMER, transformer_index, transformer_call, transformer_funcs);
  metatable(L, EMBEDDINGS, embeddings_index, embeddings_call, NULL);
  metatable(L, ENCODER, NULL, NULL, encoder_funcs);
  metatable(L, LAYER_NORM, NULL, layer_norm_call, NULL);
  lua_newuserdatauv(L, 0, 1);
  lua_pushvalue(L, model_idx);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, TRANSFORMER);
}

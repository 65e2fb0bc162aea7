/* bindings/token_embedding.c — torch.nn.Embedding over a CLIPTextModel's token table
 * (transformers' get_input_embeddings()) or its position table
 * (text_model.embeddings.position_embedding), and its weight as a Parameter:
 *
 *   emb = text_encoder:get_input_embeddings()
 *   emb(ids)                          -- the ids' vectors, (..., hidden_size)
 *   emb.weight[id + 1] = vector       -- a row set in the model (rows count from 1 in Lua)
 *   emb.weight.data[id + 1]           -- a row read back; .data is the weight itself
 *   emb.weight:clone(), .shape, ...   -- any Tensor method, on a copy of the table
 *
 * Both hold the model (its box, as the uservalue), so they follow it: a row set after
 * pipe:to("cuda") is set on the GPU, and a closed model or pipeline is an error here too.
 */
#include "bindings/token_embedding.h"

#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/clip_text_model.h" // lsdr_clip_text_part_box
#include "bindings/lsdr.h"            // lsdr_error, lsdr_engine_error
#include "bindings/model_common.h"    // lsdr_model_box
#include "bindings/tensor.h"          // lsdr_check_tensor, lsdr_push_new_tensor
#include "bindings/tensor_internal.h" // lsdr_tensor_host_floats
#include "engine/clip_text_model.h"
#include "engine/error.h" // sdr_last_error

#define EMBEDDING "torch.nn.Embedding"
#define PARAMETER "torch.nn.Parameter"

/* The model behind the Embedding or Parameter at idx; *position: whether it is the position
 * table's (may be NULL). */
static sdr_clip_text_model *model_of(lua_State *L, int idx, const char *tname, int *position) {
  lsdr_model_box *box = lsdr_clip_text_part_box(L, idx, tname);
  if (position)
    *position = *(const int *)lua_touserdata(L, idx);
  return box->model;
}

static void push_holder(lua_State *L, int model_idx, const char *tname, int position) {
  model_idx = lua_absindex(L, model_idx);
  *(int *)lua_newuserdatauv(L, sizeof(int), 1) = position;
  lua_pushvalue(L, model_idx);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, tname);
}

/* Rows [first, first + n) of a table as a new tensor in torch's dtype on the model's device:
 * (D) for one row (squeeze), else (n, D). */
static void push_rows(lua_State *L, const sdr_clip_text_model *m, int position, int first, int n,
                      int squeeze) {
  const int D = m->cfg.hidden_size;
  const sdr_dtype dt = sdr_clip_text_torch_dtype(m);
  lsdr_tensor *t = squeeze ? lsdr_push_new_tensor(L, m->be, dt, 1, (int64_t[]){D})
                           : lsdr_push_new_tensor(L, m->be, dt, 2, (int64_t[]){n, D});
  const size_t count = (size_t)n * D;
  float *f = malloc((count ? count : 1) * sizeof *f);
  void *raw = dt == SDR_F32 ? (void *)f : malloc((count ? count : 1) * sdr_dtype_size(dt));
  int rc = f && raw ? sdr_clip_text_table_rows(m, position, first, n, f) : -1;
  if (rc == 0 && raw != f)
    sdr_floats_convert(raw, dt, f, SDR_F32, count);
  if (rc == 0)
    rc = sdr_upload(m->be, t->t.data, raw, count * sdr_dtype_size(dt));
  if (raw != f)
    free(raw);
  free(f);
  if (rc != 0)
    luaL_error(L, "token embedding: %s", f && raw ? sdr_last_error() : "out of memory");
}

/* The rows of a table. */
static int rows_of(const sdr_clip_text_model *m, int position) {
  return position ? (int)m->pos_emb.shape[0] : m->cfg.vocab_size;
}

/* A 1-based row index (negative from the end), as a token id or position. */
static int row_id(lua_State *L, const sdr_clip_text_model *m, int position, int idx) {
  lua_Integer i = lua_tointeger(L, idx), V = rows_of(m, position);
  if (i == 0)
    luaL_error(L, "Parameter: index 0: rows count from 1 here, as in Lua (weight[id + 1] is "
                  "token id's row)");
  if (i < 0)
    i += V + 1;
  if (i < 1 || i > V)
    luaL_error(L, "Parameter: index %I is out of range for %I rows", lua_tointeger(L, idx), V);
  return (int)(i - 1);
}

/* ---- Parameter ---------------------------------------------------------------------- */

/* A Tensor method called on a copy of the whole table (upvalue 1: the method's name). */
static int on_copy(lua_State *L) {
  int pos;
  sdr_clip_text_model *m = model_of(L, 1, PARAMETER, &pos);
  push_rows(L, m, pos, 0, rows_of(m, pos), 0);
  lua_replace(L, 1);
  lua_getfield(L, 1, lua_tostring(L, lua_upvalueindex(1)));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

static int param_index(lua_State *L) {
  int pos;
  sdr_clip_text_model *m = model_of(L, 1, PARAMETER, &pos);
  if (lua_isinteger(L, 2)) {
    push_rows(L, m, pos, row_id(L, m, pos, 2), 1, 1);
    return 1;
  }
  const char *k = lua_tostring(L, 2);
  if (!k || lua_type(L, 2) != LUA_TSTRING)
    return 0;
  if (strcmp(k, "data") == 0) { /* weight.data is the weight, as far as rows go */
    lua_pushvalue(L, 1);
  } else if (strcmp(k, "shape") == 0) {
    lua_createtable(L, 2, 0);
    lua_pushinteger(L, rows_of(m, pos));
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, m->cfg.hidden_size);
    lua_rawseti(L, -2, 2);
  } else if (strcmp(k, "dtype") == 0) {
    lsdr_push_dtype(L, sdr_clip_text_torch_dtype(m));
  } else if (strcmp(k, "device") == 0) {
    lsdr_push_device(L, m->be->device);
  } else if (strcmp(k, "requires_grad") == 0) {
    lua_pushboolean(L, 0); /* sdrepl trains nothing */
  } else {
    /* a Tensor method (clone, mean, to, ...), run on a copy of the table; a property that
     * does not depend on the rows (ndim, is_cuda) from a copy of one */
    push_rows(L, m, pos, 0, 1, 0);
    if (lua_getfield(L, -1, k) != LUA_TFUNCTION)
      return 1;
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, on_copy, 1);
  }
  return 1;
}

/* weight[i] = vector (hidden_size values, any shape) or a number for every value */
static int param_newindex(lua_State *L) {
  int pos;
  sdr_clip_text_model *m = model_of(L, 1, PARAMETER, &pos);
  if (!lua_isinteger(L, 2))
    return luaL_error(L, "Parameter: only rows can be set (weight[id + 1] = vector), not %s",
                      luaL_tolstring(L, 2, NULL));
  if (pos)
    return luaL_error(L, "Parameter: the position embedding's rows are the model's own; only "
                         "the token embedding's can be set");
  const int id = row_id(L, m, 0, 2), D = m->cfg.hidden_size;
  float *vec;
  if (lua_type(L, 3) == LUA_TNUMBER) {
    vec = malloc((size_t)D * sizeof *vec);
    if (!vec)
      return luaL_error(L, "Parameter: out of memory");
    for (int i = 0; i < D; i++)
      vec[i] = (float)lua_tonumber(L, 3);
  } else {
    lsdr_tensor *t = lsdr_to_tensor(L, 3);
    if (!t)
      return luaL_error(L, "Parameter: a row takes a tensor of %d values or a number, not a %s", D,
                        luaL_typename(L, 3));
    if (sdr_tensor_numel(&t->t) != D)
      return luaL_error(L, "Parameter: a row takes %d values, the tensor has %I", D,
                        (lua_Integer)sdr_tensor_numel(&t->t));
    vec = lsdr_tensor_host_floats(L, t);
  }
  int rc = sdr_clip_text_set_token_embedding(m, id, vec);
  free(vec);
  if (rc != 0)
    return lsdr_engine_error(L);
  return 0;
}

static int param_len(lua_State *L) {
  int pos;
  sdr_clip_text_model *m = model_of(L, 1, PARAMETER, &pos);
  lua_pushinteger(L, rows_of(m, pos));
  return 1;
}

static int param_tostring(lua_State *L) {
  int pos;
  sdr_clip_text_model *m = model_of(L, 1, PARAMETER, &pos);
  push_rows(L, m, pos, 0, rows_of(m, pos), 0);
  lua_pushfstring(L, "Parameter containing:\n%s", luaL_tolstring(L, -1, NULL));
  return 1;
}

/* ---- Embedding ---------------------------------------------------------------------- */

static int emb_index(lua_State *L) {
  int pos;
  sdr_clip_text_model *m = model_of(L, 1, EMBEDDING, &pos);
  const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "";
  if (strcmp(k, "weight") == 0) {
    lua_getiuservalue(L, 1, 1);
    push_holder(L, -1, PARAMETER, pos);
  } else if (strcmp(k, "num_embeddings") == 0) {
    lua_pushinteger(L, rows_of(m, pos));
  } else if (strcmp(k, "embedding_dim") == 0) {
    lua_pushinteger(L, m->cfg.hidden_size);
  } else {
    lua_pushnil(L); /* padding_idx is None */
  }
  return 1;
}

/* emb(ids): int64 ids of any shape on the model's device -> (..., hidden_size) */
static int emb_call(lua_State *L) {
  int pos;
  sdr_clip_text_model *m = model_of(L, 1, EMBEDDING, &pos);
  lsdr_tensor *ids = lsdr_check_tensor(L, 2);
  if (ids->t.dtype != SDR_I64)
    return luaL_error(L, "Embedding: the indices must be an int64 tensor (torch.long), not %s",
                      sdr_dtype_name(ids->t.dtype));
  if (ids->storage->be != m->be)
    return luaL_error(L, "Embedding: the indices are on %s, the weight on %s",
                      sdr_device_name(ids->t.device), sdr_device_name(m->be->device));
  if (ids->t.ndim >= SDR_MAX_DIMS)
    return luaL_error(L, "Embedding: indices of %d dimensions; at most %d", ids->t.ndim,
                      SDR_MAX_DIMS - 1);
  int64_t shape[SDR_MAX_DIMS];
  memcpy(shape, ids->t.shape, sizeof(int64_t) * (size_t)ids->t.ndim);
  shape[ids->t.ndim] = m->cfg.hidden_size;
  lsdr_tensor *out =
      lsdr_push_new_tensor(L, m->be, sdr_clip_text_torch_dtype(m), ids->t.ndim + 1, shape);
  if (sdr_embedding(m->be, &out->t, pos ? &m->pos_emb : &m->tok_emb, &ids->t) != 0)
    return lsdr_engine_error(L);
  return 1;
}

static int emb_tostring(lua_State *L) {
  int pos;
  sdr_clip_text_model *m = model_of(L, 1, EMBEDDING, &pos);
  lua_pushfstring(L, "Embedding(%d, %d)", rows_of(m, pos), m->cfg.hidden_size);
  return 1;
}

void lsdr_push_clip_embedding(lua_State *L, int model_idx, int position) {
  if (luaL_newmetatable(L, EMBEDDING)) {
    static const luaL_Reg emb[] = {
        {"__index", emb_index}, {"__call", emb_call}, {"__tostring", emb_tostring}, {NULL, NULL}};
    luaL_setfuncs(L, emb, 0);
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, PARAMETER)) {
    static const luaL_Reg param[] = {{"__index", param_index},
                                     {"__newindex", param_newindex},
                                     {"__len", param_len},
                                     {"__tostring", param_tostring},
                                     {NULL, NULL}};
    luaL_setfuncs(L, param, 0);
  }
  lua_pop(L, 1);
  push_holder(L, model_idx, EMBEDDING, position);
}

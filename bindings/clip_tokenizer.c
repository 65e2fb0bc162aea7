/* bindings/clip_tokenizer.c — CLIPTokenizer in Lua, as diffusers' pipelines use transformers'.
 *
 *   tok = CLIPTokenizer.from_pretrained(path, {subfolder = "tokenizer"})
 *   enc = tok(prompt, {padding = "max_length", max_length = tok.model_max_length,
 *                      truncation = true})
 *   enc.input_ids, enc.attention_mask     -- lists of ids; lists of lists for a list of prompts
 *   tok:decode(ids, {skip_special_tokens = true})   tok:tokenize(text)   tok:encode(text)
 *   tok.model_max_length  tok.bos_token_id  tok.eos_token_id  tok.pad_token_id  tok.vocab_size
 *
 * The call mirrors PreTrainedTokenizerBase.__call__ for one text or a list:
 * the padding and truncation strategies are worked out as
 * _get_padding_truncation_strategies does (max_length alone truncates; padding
 * "max_length" or truncation without max_length use model_max_length), the ids
 * are cut as truncate_sequences does and padded on the right. The result is a
 * plain table with BatchEncoding's keys; return_tensors="pt" gives int64 tensors.
 *
 * A CLIPTokenizer is a userdata with the metatable "CLIPTokenizer". As for
 * Image, __index is a function (the properties depend on the object), the
 * methods sit in the metatable's __methods, and __fields names methods and
 * properties for completion.
 */
#include "bindings/clip_tokenizer.h"
#include "bindings/tensor.h"          // lsdr_backend
#include "bindings/tensor_internal.h" // lsdr_push_from_host

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/hub.h"  // lsdr_hub_resolve, LSDR_HUB_PARAMS
#include "bindings/lsdr.h" // lsdr_args, lsdr_options, lsdr_register, lsdr_error
#include "engine/error.h"  // sdr_last_error

typedef struct {
  sdr_clip_tokenizer *tok; /* NULL once closed */
} tok_box;

static void push_metatable(lua_State *L);

void lsdr_push_clip_tokenizer(lua_State *L, sdr_clip_tokenizer *tok, const char *name_or_path) {
  tok_box *b = lua_newuserdatauv(L, sizeof *b, 1);
  b->tok = tok;
  lua_pushstring(L, name_or_path ? name_or_path : "");
  lua_setiuservalue(L, -2, 1);
  push_metatable(L);
  lua_setmetatable(L, -2);
}

sdr_clip_tokenizer *lsdr_to_clip_tokenizer(lua_State *L, int idx) {
  tok_box *b = luaL_testudata(L, idx, LSDR_CLIP_TOKENIZER);
  return b ? b->tok : NULL;
}

static sdr_clip_tokenizer *self_tok(lua_State *L) {
  tok_box *b = luaL_checkudata(L, 1, LSDR_CLIP_TOKENIZER);
  if (!b->tok)
    lsdr_error(L, "the tokenizer is closed");
  return b->tok;
}

/* transformers' VERY_LARGE_INTEGER, int(1e30), when the config gives no model_max_length. */
static void push_max_length(lua_State *L, int m) {
  if (m == INT_MAX)
    lua_pushnumber(L, 1e30);
  else
    lua_pushinteger(L, m);
}

/* A Lua string as a C string: NUL bytes are dropped, as ftfy's
 * remove_control_chars would drop U+0000 (pushes the copy when one is made). */
static const char *c_text(lua_State *L, int idx) {
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  if (strlen(s) == len)
    return s;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < len; i++)
    if (s[i])
      luaL_addchar(&b, s[i]);
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* ---- from_pretrained ------------------------------------------------------------ */

static const lsdr_param from_pretrained_options[] = {
    {"subfolder", "string", "nil", "e.g. \"tokenizer\" inside a pipeline folder"},
    LSDR_HUB_PARAMS,
    {0}};

static int l_from_pretrained(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  const char *path = lsdr_hub_resolve(L, 1, 2, SDR_HUB_TOKENIZER); /* a folder, or a repo id */
  lua_getfield(L, 2, "subfolder");
  const char *sub = lua_tostring(L, -1);
  const char *dir = sub && *sub ? lua_pushfstring(L, "%s/%s", path, sub) : path;
  sdr_clip_tokenizer *tok = sdr_clip_tokenizer_load(dir);
  if (!tok)
    return lsdr_engine_error(L);
  lsdr_push_clip_tokenizer(L, tok, lua_tostring(L, 1)); /* name_or_path: as the user wrote it */
  return 1;
}

/* ---- __call ------------------------------------------------------------------------ */

static const lsdr_param call_options[] = {
    {"padding", "boolean|string", "false",
     "true or \"longest\", \"max_length\", false or \"do_not_pad\""},
    {"max_length", "integer", "nil", "for padding and truncation (default: model_max_length)"},
    {"truncation", "boolean|string", "nil",
     "true or \"longest_first\"; nil truncates only when max_length is given without padding"},
    {"add_special_tokens", "boolean", "true", "BOS first and EOS last"},
    {"return_attention_mask", "boolean", "true", "include attention_mask"},
    {"return_tensors", "string", "nil", "\"pt\": int64 tensors (batch, tokens) instead of lists"},
    {0}};

enum { PAD_NONE, PAD_LONGEST, PAD_MAX_LENGTH };

typedef struct {
  int pad;        /* PAD_* */
  int truncate;   /* 0 or 1 */
  int max_length; /* 0: none */
  int add_special;
  int attention_mask;
  int return_pt; /* return_tensors="pt": int64 tensors (batch, tokens) */
} call_spec;

static int opt_is(lua_State *L, int idx, const char *s) {
  return lua_type(L, idx) == LUA_TSTRING && strcmp(lua_tostring(L, idx), s) == 0;
}

/* _get_padding_truncation_strategies, for the options table at user argument 2. */
static call_spec read_options(lua_State *L, const sdr_clip_tokenizer *tok) {
  int opts = lsdr_arg(L, 2);
  call_spec c = {0};
  lua_getfield(L, opts, "return_tensors");
  if (opt_is(L, -1, "pt"))
    c.return_pt = 1;
  else if (!lua_isnil(L, -1))
    lsdr_error(L, "return_tensors='%s': only 'pt' (torch tensors) is available",
               lua_tostring(L, -1));
  lua_pop(L, 1);

  lua_getfield(L, opts, "padding");
  if (lua_toboolean(L, -1) == 0 || opt_is(L, -1, "do_not_pad"))
    c.pad = PAD_NONE;
  else if (lua_isboolean(L, -1) || opt_is(L, -1, "longest"))
    c.pad = PAD_LONGEST;
  else if (opt_is(L, -1, "max_length"))
    c.pad = PAD_MAX_LENGTH;
  else
    lsdr_error(L,
               "option 'padding': expected true, false, \"longest\", \"max_length\" or "
               "\"do_not_pad\", got \"%s\"",
               lua_tostring(L, -1));
  lua_pop(L, 1);

  lua_getfield(L, opts, "max_length");
  int has_max = !lua_isnil(L, -1);
  if (has_max) {
    lua_Integer m = lua_tointeger(L, -1);
    if (m < 0 || m > INT_MAX)
      lsdr_error(L, "option 'max_length': expected a length from 0, got %d", (int)m);
    c.max_length = (int)m;
  }
  lua_pop(L, 1);

  lua_getfield(L, opts, "truncation");
  int truncation = -1; /* None */
  if (lua_isboolean(L, -1))
    truncation = lua_toboolean(L, -1);
  else if (opt_is(L, -1, "longest_first") || opt_is(L, -1, "only_first"))
    truncation = 1;
  else if (opt_is(L, -1, "do_not_truncate"))
    truncation = 0;
  else if (!lua_isnil(L, -1))
    lsdr_error(L,
               "option 'truncation': expected true, false, \"longest_first\", \"only_first\" "
               "or \"do_not_truncate\", got \"%s\"",
               lua_tostring(L, -1));
  lua_pop(L, 1);
  /* max_length without padding and without a word on truncation truncates
   * (transformers warns and defaults to longest_first). */
  if (truncation < 0)
    truncation = has_max && c.pad == PAD_NONE;
  c.truncate = truncation;

  int model_max = sdr_clip_tokenizer_model_max_length(tok);
  if (!has_max) {
    /* With no model_max_length either, transformers warns and does neither. */
    if (c.pad == PAD_MAX_LENGTH) {
      if (model_max == INT_MAX)
        c.pad = PAD_NONE;
      else
        c.max_length = model_max;
    }
    if (c.truncate) {
      if (model_max == INT_MAX)
        c.truncate = 0;
      else
        c.max_length = model_max;
    }
  }
  if (c.pad != PAD_NONE && sdr_clip_tokenizer_pad_id(tok) < 0)
    lsdr_error(L, "asking to pad but the tokenizer has no padding token");

  lua_getfield(L, opts, "add_special_tokens");
  c.add_special = lua_toboolean(L, -1);
  lua_getfield(L, opts, "return_attention_mask");
  c.attention_mask = lua_toboolean(L, -1);
  lua_pop(L, 2);
  return c;
}

void lsdr_clip_tokenizer_warn_overlong(sdr_clip_tokenizer *tok, size_t n) {
  if (sdr_clip_tokenizer_first_overlong(tok, n))
    fprintf(stderr,
            "Token indices sequence length is longer than the specified maximum sequence length "
            "for this model (%zu > %d). Running this sequence through the model will result in "
            "indexing errors\n",
            n, sdr_clip_tokenizer_model_max_length(tok));
}

/* The ids of one text as prepare_for_model makes them: truncated, then BOS
 * and EOS added (malloc'd, *n ids), with transformers' warning about a sequence too
 * long for the model when no max_length applies. Raises on an engine error. */
static int32_t *encode_one(lua_State *L, sdr_clip_tokenizer *tok, const char *text,
                           const call_spec *c, size_t *n) {
  int32_t *plain;
  size_t m;
  if (sdr_clip_tokenizer_encode_plain(tok, text, &plain, &m))
    lsdr_engine_error(L);
  size_t specials = c->add_special ? 2 : 0;
  /* truncate_sequences: when the cut would take every token, transformers
   * logs an error and cuts nothing. */
  if (c->truncate && c->max_length > 0 && m + specials > (size_t)c->max_length) {
    size_t remove = m + specials - (size_t)c->max_length;
    if (m > remove)
      m -= remove;
  }
  int32_t *ids = malloc((m + specials) * sizeof *ids + 1);
  if (!ids) {
    free(plain);
    lsdr_error(L, "out of memory");
  }
  if (c->add_special)
    ids[0] = sdr_clip_tokenizer_bos_id(tok);
  memcpy(ids + (c->add_special ? 1 : 0), plain, m * sizeof *ids);
  if (c->add_special)
    ids[m + 1] = sdr_clip_tokenizer_eos_id(tok);
  free(plain);
  *n = m + specials;
  if (c->max_length == 0)
    lsdr_clip_tokenizer_warn_overlong(tok, *n);
  return ids;
}

/* Pushes {ids..., pad...} and {1..., 0...} padded to `to`. */
static void push_ids_and_mask(lua_State *L, const int32_t *ids, size_t n, size_t to,
                              int32_t pad_id) {
  size_t total = n > to ? n : to;
  lua_createtable(L, (int)total, 0);
  for (size_t i = 0; i < total; i++) {
    lua_pushinteger(L, i < n ? ids[i] : pad_id);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_createtable(L, (int)total, 0);
  for (size_t i = 0; i < total; i++) {
    lua_pushinteger(L, i < n ? 1 : 0);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

/* The texts of user argument 1: a string, or a non-empty list of strings. */
static int count_texts(lua_State *L) {
  int idx = lsdr_arg(L, 1);
  if (lua_type(L, idx) == LUA_TSTRING)
    return -1;
  int n = (int)lua_rawlen(L, idx);
  if (n == 0)
    lsdr_error(L, "argument 1 (text): expected a string or a non-empty list of strings, got an "
                  "empty table");
  for (int i = 1; i <= n; i++) {
    if (lua_rawgeti(L, idx, i) != LUA_TSTRING)
      lsdr_error(L, "argument 1 (text): item %d is a %s, expected a string", i,
                 luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  return n;
}

typedef struct {
  int32_t *ids;
  size_t n;
} encoded;

/* Frees the batch when a Lua error unwinds past it (a to-be-closed value). */
static int batch_close(lua_State *L) {
  encoded *e = lua_touserdata(L, 1);
  size_t n = lua_rawlen(L, 1) / sizeof *e;
  for (size_t i = 0; i < n; i++) {
    free(e[i].ids);
    e[i].ids = NULL;
  }
  return 0;
}

/* tok(text, {padding=false, max_length=nil, truncation=nil, ...}) */
static int tok_call(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  sdr_clip_tokenizer *tok = self_tok(L);
  call_spec c = read_options(L, tok);
  int count = count_texts(L);
  int text_idx = lsdr_arg(L, 1);
  int32_t pad_id = sdr_clip_tokenizer_pad_id(tok);

  int single = count < 0;
  size_t n = single ? 1 : (size_t)count;
  encoded *e = lua_newuserdatauv(L, n * sizeof *e, 0);
  memset(e, 0, n * sizeof *e);
  lua_newtable(L);
  lua_pushcfunction(L, batch_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, batch_close);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_toclose(L, -1);
  int batch = lua_gettop(L);

  size_t longest = 0;
  for (size_t i = 0; i < n; i++) {
    if (single)
      lua_pushvalue(L, text_idx);
    else
      lua_rawgeti(L, text_idx, (lua_Integer)i + 1);
    int top = lua_gettop(L);
    e[i].ids = encode_one(L, tok, c_text(L, top), &c, &e[i].n);
    lua_settop(L, top - 1);
    if (e[i].n > longest)
      longest = e[i].n;
  }
  size_t to = c.pad == PAD_MAX_LENGTH ? (size_t)c.max_length : c.pad == PAD_LONGEST ? longest : 0;

  lua_createtable(L, 0, 2);
  int result = lua_gettop(L);
  if (c.return_pt) {
    /* BatchEncoding.convert_to_tensors: rows of one length, else transformers' error. */
    size_t width = 0;
    for (size_t i = 0; i < n; i++) {
      size_t w = e[i].n > to ? e[i].n : to;
      if (i > 0 && w != width)
        return lsdr_error(L, "Unable to create tensor, you should probably activate truncation "
                             "and/or padding with 'padding=True' 'truncation=True' to have batched "
                             "tensors with the same length.");
      width = w;
    }
    size_t cells = n * width > 0 ? n * width : 1;
    double *ids = malloc(cells * sizeof *ids), *mask = malloc(cells * sizeof *mask);
    if (!ids || !mask) {
      free(ids);
      free(mask);
      return lsdr_error(L, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
      for (size_t k = 0; k < width; k++) {
        ids[i * width + k] = k < e[i].n ? e[i].ids[k] : pad_id;
        mask[i * width + k] = k < e[i].n;
      }
    sdr_backend *cpu = lsdr_backend(L, SDR_DEVICE_CPU);
    const int64_t shape[2] = {(int64_t)n, (int64_t)width};
    lsdr_push_from_host(L, cpu, SDR_I64, 2, shape, ids);
    lua_setfield(L, result, "input_ids");
    if (c.attention_mask) {
      lsdr_push_from_host(L, cpu, SDR_I64, 2, shape, mask);
      lua_setfield(L, result, "attention_mask");
    }
    free(ids);
    free(mask);
    lua_closeslot(L, batch);
    return 1;
  }
  if (single) {
    push_ids_and_mask(L, e[0].ids, e[0].n, to, pad_id);
  } else {
    lua_createtable(L, (int)n, 0);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
      push_ids_and_mask(L, e[i].ids, e[i].n, to, pad_id);
      lua_rawseti(L, result + 2, (lua_Integer)i + 1);
      lua_rawseti(L, result + 1, (lua_Integer)i + 1);
    }
  }
  if (c.attention_mask)
    lua_setfield(L, result, "attention_mask");
  else
    lua_pop(L, 1);
  lua_setfield(L, result, "input_ids");
  lua_closeslot(L, batch);
  return 1;
}

/* tok:encode(text, options): the input_ids of tok(text, options). */
static int tok_encode(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  sdr_clip_tokenizer *tok = self_tok(L);
  call_spec c = read_options(L, tok);
  size_t n;
  int32_t *ids = encode_one(L, tok, c_text(L, lsdr_arg(L, 1)), &c, &n);
  size_t to = c.pad == PAD_MAX_LENGTH ? (size_t)c.max_length : 0;
  size_t total = n > to ? n : to;
  lua_createtable(L, (int)total, 0);
  for (size_t i = 0; i < total; i++) {
    lua_pushinteger(L, i < n ? ids[i] : sdr_clip_tokenizer_pad_id(tok));
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  free(ids);
  return 1;
}

/* ---- decode, tokenize --------------------------------------------------------------- */

static const lsdr_param decode_options[] = {
    {"skip_special_tokens", "boolean", "false", "leave out BOS, EOS and padding"},
    {"clean_up_tokenization_spaces", "boolean", "nil",
     "join \" .\" into \".\" and the like (default: the tokenizer's setting, true for CLIP)"},
    {0}};

/* The ids at idx (a list of integers, or one integer) as int32s (malloc'd). */
static int32_t *read_ids(lua_State *L, int idx, const char *what, size_t *n) {
  if (lua_isinteger(L, idx) || lsdr_is_type(L, idx, "integer")) {
    int32_t *one = malloc(sizeof *one);
    if (!one)
      lsdr_error(L, "out of memory");
    one[0] = (int32_t)lua_tointeger(L, idx);
    *n = 1;
    return one;
  }
  *n = lua_rawlen(L, idx);
  int32_t *ids = malloc(*n * sizeof *ids + 1);
  if (!ids)
    lsdr_error(L, "out of memory");
  for (size_t i = 0; i < *n; i++) {
    lua_rawgeti(L, idx, (lua_Integer)i + 1);
    int ok = lsdr_is_type(L, -1, "integer");
    lua_Integer v = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (!ok || v < INT32_MIN || v > INT32_MAX) {
      free(ids);
      lsdr_error(L, "%s: item %d is not a token id", what, (int)i + 1);
    }
    ids[i] = (int32_t)v;
  }
  return ids;
}

static void push_decoded(lua_State *L, sdr_clip_tokenizer *tok, int idx, const char *what) {
  int opts = lsdr_arg(L, 2);
  lua_getfield(L, opts, "skip_special_tokens");
  int skip = lua_toboolean(L, -1);
  lua_getfield(L, opts, "clean_up_tokenization_spaces");
  int clean = lua_isnil(L, -1) ? -1 : lua_toboolean(L, -1);
  lua_pop(L, 2);
  size_t n;
  int32_t *ids = read_ids(L, idx, what, &n);
  char *text = sdr_clip_tokenizer_decode_ex(tok, ids, n, skip, clean);
  free(ids);
  if (!text)
    lsdr_engine_error(L);
  lua_pushstring(L, text);
  free(text);
}

/* tok:decode(ids, {skip_special_tokens=false}) */
static int tok_decode(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  push_decoded(L, self_tok(L), lsdr_arg(L, 1), "argument 1 (ids)");
  return 1;
}

/* tok:batch_decode(list_of_ids, {skip_special_tokens=false}) */
static int tok_batch_decode(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  sdr_clip_tokenizer *tok = self_tok(L);
  int list = lsdr_arg(L, 1);
  size_t n = lua_rawlen(L, list);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, list, (lua_Integer)i + 1);
    if (!lua_istable(L, -1))
      lsdr_error(L, "argument 1 (sequences): item %d is a %s, expected a list of ids", (int)i + 1,
                 luaL_typename(L, -1));
    const char *what = lua_pushfstring(L, "argument 1 (sequences), item %d", (int)i + 1);
    push_decoded(L, tok, lua_gettop(L) - 1, what);
    lua_rawseti(L, -4, (lua_Integer)i + 1);
    lua_pop(L, 2);
  }
  return 1;
}

/* tok:tokenize(text): the tokens before ids. */
static int tok_tokenize(lua_State *L) {
  lsdr_args(L);
  sdr_clip_tokenizer *tok = self_tok(L);
  char **toks;
  size_t n;
  if (sdr_clip_tokenizer_tokenize(tok, c_text(L, lsdr_arg(L, 1)), &toks, &n))
    return lsdr_engine_error(L);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushstring(L, toks[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  sdr_clip_tokens_free(toks, n);
  return 1;
}

/* tok:convert_ids_to_tokens(ids): a token for one id, a list for a list. */
static int tok_convert_ids_to_tokens(lua_State *L) {
  lsdr_args(L);
  sdr_clip_tokenizer *tok = self_tok(L);
  int idx = lsdr_arg(L, 1);
  int one = !lua_istable(L, idx);
  size_t n;
  int32_t *ids = read_ids(L, idx, "argument 1 (ids)", &n);
  if (!one)
    lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    const char *t = sdr_clip_tokenizer_id_to_token(tok, ids[i]);
    if (t)
      lua_pushstring(L, t);
    else
      lua_pushnil(L); /* transformers gives None */
    if (!one)
      lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  free(ids);
  return 1;
}

/* tok:convert_tokens_to_ids(tokens): an id for one token, a list for a list. */
static int tok_convert_tokens_to_ids(lua_State *L) {
  lsdr_args(L);
  sdr_clip_tokenizer *tok = self_tok(L);
  int idx = lsdr_arg(L, 1);
  if (lua_type(L, idx) == LUA_TSTRING) {
    lua_pushinteger(L, sdr_clip_tokenizer_token_to_id(tok, lua_tostring(L, idx)));
    return 1;
  }
  size_t n = lua_rawlen(L, idx);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    if (lua_rawgeti(L, idx, (lua_Integer)i + 1) != LUA_TSTRING)
      lsdr_error(L, "argument 1 (tokens): item %d is a %s, expected a string", (int)i + 1,
                 luaL_typename(L, -1));
    lua_pushinteger(L, sdr_clip_tokenizer_token_to_id(tok, lua_tostring(L, -1)));
    lua_rawseti(L, -3, (lua_Integer)i + 1);
    lua_pop(L, 1);
  }
  return 1;
}

/* tok:add_tokens(tokens, {special_tokens = false}): each token (a string or a list of them)
 * from then on cut out of texts whole; returns how many were new to the vocabulary, as
 * transformers' add_tokens (an empty one is skipped, one added before stays as it was). */
static int tok_add_tokens(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  sdr_clip_tokenizer *tok = self_tok(L);
  int idx = lsdr_arg(L, 1);
  lua_getfield(L, 3, "special_tokens");
  const int special = lua_toboolean(L, -1);
  lua_pop(L, 1);
  const int one = lua_type(L, idx) == LUA_TSTRING;
  if (!one && !lua_istable(L, idx))
    return lsdr_argerror(L, 1, "a token (string) or a list of them");
  const size_t n = one ? 1 : lua_rawlen(L, idx);
  for (size_t i = 0; i < n && !one; i++) { /* all checked before any is added */
    if (lua_rawgeti(L, idx, (lua_Integer)i + 1) != LUA_TSTRING) {
      const char *type = luaL_typename(L, -1);
      return lsdr_error(L, "Token %s is not a string but a %s.", luaL_tolstring(L, -1, NULL), type);
    }
    lua_pop(L, 1);
  }
  lua_Integer added = 0;
  for (size_t i = 0; i < n; i++) {
    if (!one)
      lua_rawgeti(L, idx, (lua_Integer)i + 1);
    const char *text = lua_tostring(L, one ? idx : -1);
    if (*text && !sdr_clip_tokenizer_is_added(tok, text)) {
      const size_t before = sdr_clip_tokenizer_len(tok);
      int32_t id;
      if (sdr_clip_tokenizer_add_token(tok, text, special, &id) != 0)
        return lsdr_engine_error(L);
      added += sdr_clip_tokenizer_len(tok) > before;
    }
    if (!one)
      lua_pop(L, 1);
  }
  lua_pushinteger(L, added);
  return 1;
}

static const lsdr_param add_tokens_options[] = {
    {"special_tokens", "boolean", "false",
     "added as special tokens (skip_special_tokens drops them)"},
    {0}};

/* ---- the object --------------------------------------------------------------------- */

static const char *const PROPERTIES[] = {"model_max_length", "vocab_size",
                                         "bos_token_id",     "eos_token_id",
                                         "pad_token_id",     "unk_token_id",
                                         "bos_token",        "eos_token",
                                         "pad_token",        "unk_token",
                                         "name_or_path",     "padding_side",
                                         "truncation_side",  NULL};

static void push_id(lua_State *L, int32_t id) {
  if (id < 0)
    lua_pushnil(L);
  else
    lua_pushinteger(L, id);
}

static int push_property(lua_State *L, sdr_clip_tokenizer *tok, const char *k) {
  if (strcmp(k, "model_max_length") == 0)
    push_max_length(L, sdr_clip_tokenizer_model_max_length(tok));
  else if (strcmp(k, "vocab_size") == 0)
    lua_pushinteger(L, (lua_Integer)sdr_clip_tokenizer_vocab_size(tok));
  else if (strcmp(k, "bos_token_id") == 0)
    push_id(L, sdr_clip_tokenizer_bos_id(tok));
  else if (strcmp(k, "eos_token_id") == 0)
    push_id(L, sdr_clip_tokenizer_eos_id(tok));
  else if (strcmp(k, "pad_token_id") == 0)
    push_id(L, sdr_clip_tokenizer_pad_id(tok));
  else if (strcmp(k, "unk_token_id") == 0)
    push_id(L, sdr_clip_tokenizer_unk_id(tok));
  else if (strlen(k) == 9 && strcmp(k + 3, "_token") == 0) {
    char which[4] = {k[0], k[1], k[2], 0};
    const char *t = sdr_clip_tokenizer_special_token(tok, which);
    if (!t)
      return 0;
    lua_pushstring(L, t);
  } else if (strcmp(k, "name_or_path") == 0)
    lua_getiuservalue(L, 1, 1);
  else if (strcmp(k, "padding_side") == 0 || strcmp(k, "truncation_side") == 0)
    lua_pushliteral(L, "right");
  else
    return 0;
  return 1;
}

static int tok_index(lua_State *L) {
  lua_getmetatable(L, 1);
  if (lua_getfield(L, -1, "__methods") == LUA_TTABLE && lua_type(L, 2) == LUA_TSTRING &&
      lua_getfield(L, -1, lua_tostring(L, 2)) != LUA_TNIL)
    return 1;
  lua_settop(L, 2);
  tok_box *b = luaL_checkudata(L, 1, LSDR_CLIP_TOKENIZER);
  if (!b->tok || lua_type(L, 2) != LUA_TSTRING)
    return 0;
  return push_property(L, b->tok, lua_tostring(L, 2)) ? 1 : 0;
}

static int tok_gc(lua_State *L) {
  tok_box *b = luaL_checkudata(L, 1, LSDR_CLIP_TOKENIZER);
  sdr_clip_tokenizer_free(b->tok);
  b->tok = NULL;
  return 0;
}

/* len(tokenizer) */
static int tok_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sdr_clip_tokenizer_len(self_tok(L)));
  return 1;
}

static int tok_tostring(lua_State *L) {
  tok_box *b = luaL_checkudata(L, 1, LSDR_CLIP_TOKENIZER);
  if (!b->tok) {
    lua_pushliteral(L, "CLIPTokenizer(closed)");
    return 1;
  }
  lua_getiuservalue(L, 1, 1);
  int m = sdr_clip_tokenizer_model_max_length(b->tok);
  char max[32];
  if (m == INT_MAX)
    strcpy(max, "1000000000000000019884624838656"); /* int(1e30), as Python prints it */
  else
    snprintf(max, sizeof max, "%d", m);
  lua_pushfstring(L, "CLIPTokenizer(name_or_path='%s', vocab_size=%d, model_max_length=%s)",
                  lua_tostring(L, -1), (int)sdr_clip_tokenizer_vocab_size(b->tok), max);
  return 1;
}

static const lsdr_func module_funcs[] = {
    {"CLIPTokenizer.from_pretrained",
     l_from_pretrained,
     "Loads a tokenizer folder (vocab.json, merges.txt, tokenizer_config.json, "
     "special_tokens_map.json), as transformers' CLIPTokenizer.from_pretrained.",
     {{"path", "string", NULL, "a local folder or a hub repo id"},
      {"opts", "table", "{}", "options, see below"}},
     from_pretrained_options},
    {0}};

static const lsdr_func method_funcs[] = {
    {"CLIPTokenizer:__call",
     tok_call,
     "Tokenizes a prompt or a list of prompts: {input_ids = ..., attention_mask = ...}.",
     {{"text", "string|table", NULL, "a prompt, or a list of prompts"},
      {"opts", "table", "{}", "options, see below"}},
     call_options},
    {"CLIPTokenizer:encode",
     tok_encode,
     "The input_ids of one prompt (a list of ids).",
     {{"text", "string"}, {"opts", "table", "{}", "options as for tok(text, opts)"}},
     call_options},
    {"CLIPTokenizer:decode",
     tok_decode,
     "The text of a list of ids.",
     {{"ids", "table|integer"}, {"opts", "table", "{}", "options, see below"}},
     decode_options},
    {"CLIPTokenizer:batch_decode",
     tok_batch_decode,
     "The texts of a list of lists of ids.",
     {{"sequences", "table"}, {"opts", "table", "{}", "options as for decode"}},
     decode_options},
    {"CLIPTokenizer:tokenize",
     tok_tokenize,
     "The tokens of a prompt before ids (byte-level BPE pieces, \"</w>\" ending a word).",
     {{"text", "string"}}},
    {"CLIPTokenizer:convert_ids_to_tokens",
     tok_convert_ids_to_tokens,
     "The token of an id, or the tokens of a list of ids.",
     {{"ids", "table|integer"}}},
    {"CLIPTokenizer:convert_tokens_to_ids",
     tok_convert_tokens_to_ids,
     "The id of a token, or the ids of a list of tokens (unknown ones: unk_token_id).",
     {{"tokens", "table|string"}}},
    {"CLIPTokenizer:add_tokens",
     tok_add_tokens,
     "Adds tokens the prompts then keep whole (a textual inversion's new word): the number "
     "new to the vocabulary, each with the id len(tokenizer) at its turn.",
     {{"new_tokens", "string|table"}, {"opts", "table", "{}", "options, see below"}},
     add_tokens_options},
    {0}};

/* The "CLIPTokenizer" metatable, made on first use. */
static void push_metatable(lua_State *L) {
  if (!luaL_newmetatable(L, LSDR_CLIP_TOKENIZER))
    return;
  int mt = lua_gettop(L);
  lua_newtable(L);
  lsdr_register(L, -1, method_funcs);
  lua_getfield(L, -1, "__call");
  lua_setfield(L, mt, "__call");
  lua_pushnil(L);
  lua_setfield(L, -2, "__call");
  /* __fields: what completion lists (methods as functions, properties as true). */
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, -3)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  for (const char *const *p = PROPERTIES; *p; p++) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, *p);
  }
  lua_setfield(L, mt, "__fields");
  lua_setfield(L, mt, "__methods");
  static const luaL_Reg meta[] = {{"__index", tok_index},       {"__gc", tok_gc},
                                  {"__close", tok_gc},          {"__len", tok_len},
                                  {"__tostring", tok_tostring}, {NULL, NULL}};
  luaL_setfuncs(L, meta, 0);
}

void lsdr_open_clip_tokenizer(lua_State *L) {
  push_metatable(L);
  lua_pop(L, 1);
  lua_newtable(L);
  lsdr_register(L, -1, module_funcs);
  lua_setglobal(L, "CLIPTokenizer");
}

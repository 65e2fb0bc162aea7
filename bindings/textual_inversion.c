/* bindings/textual_inversion.c — pipe:load_textual_inversion(...) as diffusers'
 * TextualInversionLoaderMixin.load_textual_inversion: a hub repo id (sd-concepts-library/
 * cat-toy), a folder, a file, a tensor, a state dict, or a list of them; the token given,
 * else the file's. The embeddings go into the pipeline's tokenizer and text encoder (SDXL's
 * second pair where tokenizer/text_encoder name it, as diffusers' SDXL docs load an
 * embedding's clip_g half), shared with the pipelines from_pipe made from it, and its prompts
 * then spell out multi-vector tokens (engine/textual_inversion.c). */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/clip_text_model.h" // lsdr_to_clip_text_model
#include "bindings/clip_tokenizer.h"  // lsdr_to_clip_tokenizer
#include "bindings/generator.h"       // lsdr_default_generator
#include "bindings/hub.h"             // lsdr_hub_resolve
#include "bindings/lsdr.h"
#include "bindings/pipeline_internal.h" // lsdr_test_pipe
#include "bindings/tensor.h"
#include "bindings/tensor_internal.h" // lsdr_tensor_host_values
#include "engine/error.h"             // sdr_last_error
#include "engine/textual_inversion.h"

/* A tensor's values as one embedding (rows x dim) under token. */
static void from_tensor(lua_State *L, int idx, const char *token, sdr_ti_embedding *e) {
  lsdr_tensor *t = lsdr_to_tensor(L, idx);
  if (t->t.ndim < 1 || t->t.ndim > 2)
    lsdr_error(L,
               "argument 1 (pretrained_model_name_or_path): an embedding tensor is (dim) or "
               "(vectors, dim), not %d-dimensional",
               t->t.ndim);
  const int rows = t->t.ndim == 2 ? (int)t->t.shape[0] : 1, dim = (int)t->t.shape[t->t.ndim - 1];
  float *f = lsdr_tensor_host_floats(L, t);
  int rc = sdr_ti_from_values(token, f, rows, dim, e);
  free(f);
  if (rc != 0)
    lsdr_engine_error(L);
}

/* The file a folder or repo id stands for: weight_name, else learned_embeds.safetensors
 * (when there and allowed), else learned_embeds.bin, under subfolder. Pushes the path. */
static const char *embedding_path(lua_State *L, int src, int opts) {
  /* the hub's options, without `token` (here the embedding's token, not a hub token) */
  lua_createtable(L, 0, 6);
  int hub = lua_gettop(L);
  static const char *const keys[] = {"revision",  "cache_dir",       "local_files_only",
                                     "subfolder", "use_safetensors", "weight_name",
                                     NULL};
  for (int i = 0; keys[i]; i++) {
    lua_getfield(L, opts, keys[i]);
    lua_setfield(L, hub, keys[i]);
  }
  const char *dir = lsdr_hub_resolve(L, src, hub, SDR_HUB_TEXTUAL_INVERSION);
  lua_getfield(L, opts, "subfolder");
  lua_getfield(L, opts, "weight_name");
  lua_getfield(L, opts, "use_safetensors");
  const char *sub = lua_tostring(L, -3), *name = lua_tostring(L, -2);
  int use_st = lua_isnil(L, -1) ? -1 : lua_toboolean(L, -1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, dir);
  if (sub && *sub) {
    luaL_addchar(&b, '/');
    luaL_addstring(&b, sub);
  }
  luaL_addchar(&b, '/');
  luaL_pushresult(&b);
  const char *base = lua_tostring(L, -1);
  if (name) {
    lua_pushfstring(L, "%s%s", base, name);
  } else {
    lua_pushfstring(L, "%slearned_embeds.safetensors", base);
    if (use_st == 0 || !lsdr_is_file(lua_tostring(L, -1))) {
      lua_pop(L, 1);
      lua_pushfstring(L, "%slearned_embeds.bin", base);
    }
  }
  if (!lsdr_is_file(lua_tostring(L, -1)))
    lsdr_error(L, "Error no file named %s found in directory %s",
               name ? name : "learned_embeds.bin", base);
  return lua_tostring(L, -1);
}

/* One source at idx into e (token: the given one, or NULL). */
static void read_source(lua_State *L, int idx, const char *token, int opts, sdr_ti_embedding *e) {
  idx = lua_absindex(L, idx);
  if (lsdr_to_tensor(L, idx)) {
    if (!token)
      lsdr_error(L, "You are trying to load a textual inversion embedding that has been saved as a "
                    "PyTorch tensor. Make sure to pass the name of the corresponding token in "
                    "this case: `token=...`.");
    from_tensor(L, idx, token, e);
    return;
  }
  if (lua_istable(L, idx)) { /* a state dict: {token = tensor}, or A1111's */
    lua_getfield(L, idx, "string_to_param");
    if (lua_istable(L, -1)) {
      lua_getfield(L, -1, "*");
      lua_getfield(L, idx, "name");
      const char *name = token ? token : lua_tostring(L, -1);
      if (!lsdr_to_tensor(L, -2) || !name)
        lsdr_error(L, "argument 1: an A1111 state dict needs string_to_param['*'] and name");
      from_tensor(L, lua_gettop(L) - 1, name, e);
      lua_pop(L, 3);
      return;
    }
    lua_pop(L, 1);
    int keys = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      lua_pop(L, 1);
      keys++;
    }
    lua_pushnil(L);
    if (keys != 1 || !lua_next(L, idx) || lua_type(L, -2) != LUA_TSTRING || !lsdr_to_tensor(L, -1))
      lsdr_error(L, "Loaded state dictionary is incorrect. Please verify that the loaded state "
                    "dictionary of the textual embedding either only has a single key or includes "
                    "the `string_to_param` input key.");
    from_tensor(L, lua_gettop(L), token ? token : lua_tostring(L, -2), e);
    lua_pop(L, 2);
    return;
  }
  const char *name = lua_tostring(L, idx);
  if (!name)
    lsdr_error(L,
               "argument 1 (pretrained_model_name_or_path): a repo id, folder, file, tensor or "
               "state dict expected, got %s",
               luaL_typename(L, idx));
  const char *path = lsdr_is_file(name) ? name : embedding_path(L, idx, opts);
  if (sdr_ti_read_file(path, token, e) != 0)
    lsdr_engine_error(L);
}

typedef struct ti_list {
  sdr_ti_embedding *es;
  int n;
} ti_list;

static int ti_list_gc(lua_State *L) {
  ti_list *l = lua_touserdata(L, 1);
  for (int i = 0; i < l->n; i++)
    sdr_ti_embedding_free(&l->es[i]);
  free(l->es);
  l->es = NULL;
  l->n = 0;
  return 0;
}

const lsdr_param lsdr_textual_inversion_options[] = {
    {"token", "string|table", "nil", "the token (or a list); nil: the file's own"},
    {"weight_name", "string", "nil", "the file in the repo or folder (default learned_embeds.*)"},
    {"subfolder", "string", "nil", "where the file is in the repo or folder"},
    {"use_safetensors", "boolean", "nil", "nil: the .safetensors if there, else the .bin"},
    {"revision", "string", "nil", "branch, tag or commit on the hub"},
    {"cache_dir", "string", "nil", "hub cache folder (default $HF_HUB_CACHE)"},
    {"local_files_only", "boolean", "false", "only the cache, never the network"},
    {"tokenizer", "any", "nil", "pipe.tokenizer (nil) or SDXL's pipe.tokenizer_2"},
    {"text_encoder", "any", "nil", "pipe.text_encoder (nil) or SDXL's pipe.text_encoder_2"},
    {0}};

/* The tokenizer and text encoder a call works on (the values at tok_idx and te_idx, nil for
 * the pipeline's first pair): the pipeline's own, either pair, the one named by either value
 * when the other is nil. */
static void ti_pair(lua_State *L, sdr_pipeline *p, int tok_idx, int te_idx,
                    sdr_clip_tokenizer **tok, sdr_clip_text_model **te) {
  const sdr_clip_tokenizer *gtok =
      lua_isnil(L, tok_idx) ? NULL : lsdr_to_clip_tokenizer(L, tok_idx);
  const sdr_clip_text_model *gte = lua_isnil(L, te_idx) ? NULL : lsdr_to_clip_text_model(L, te_idx);
  if (!lua_isnil(L, tok_idx) && !gtok)
    lsdr_error(L, "tokenizer: a CLIPTokenizer expected, got %s", lsdr_typename(L, tok_idx));
  if (!lua_isnil(L, te_idx) && !gte)
    lsdr_error(L, "text_encoder: a CLIPTextModel expected, got %s", lsdr_typename(L, te_idx));
  const int second = (gtok && gtok == p->tokenizer_2) || (gte && gte == &p->text_encoder_2);
  *tok = second ? p->tokenizer_2 : p->tokenizer;
  *te = second ? &p->text_encoder_2 : &p->text_encoder;
  if ((gtok && gtok != *tok) || (gte && gte != *te))
    lsdr_error(L, "tokenizer and text_encoder: the pipeline's own pair expected (pipe.tokenizer "
                  "with pipe.text_encoder, or pipe.tokenizer_2 with pipe.text_encoder_2)");
  if (!(*te)->layers || !*tok)
    lsdr_error(L, "this pipeline has no tokenizer and text_encoder (an SDXL refiner has "
                  "text_encoder_2 only: give tokenizer = pipe.tokenizer_2, text_encoder = "
                  "pipe.text_encoder_2) for a textual inversion");
}

int lsdr_pipe_load_textual_inversion(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  sdr_pipeline *p = lsdr_pipeline_models(L, 1);
  const int src = 2, opts = 3;
  sdr_clip_tokenizer *tok;
  sdr_clip_text_model *te;
  lua_getfield(L, opts, "tokenizer");
  lua_getfield(L, opts, "text_encoder");
  ti_pair(L, p, lua_gettop(L) - 1, lua_gettop(L), &tok, &te);
  lua_pop(L, 2);
  /* sources and tokens, each one or a list */
  int is_list = lua_istable(L, src) && !lsdr_to_tensor(L, src) && lua_rawlen(L, src) > 0;
  int nsrc = is_list ? (int)lua_rawlen(L, src) : 1;
  lua_getfield(L, opts, "token");
  const int tok_idx = lua_gettop(L);
  int ntok = lua_istable(L, tok_idx) ? (int)lua_rawlen(L, tok_idx) : 1;
  if (!lua_isnil(L, tok_idx) && !lua_isstring(L, tok_idx) && !lua_istable(L, tok_idx))
    return lsdr_error(L, "option 'token': a string or a list of strings expected");
  /* 4.1: one tensor holding as many embeddings as there are tokens */
  int split = ntok > 1 && nsrc == 1 && !is_list && lsdr_to_tensor(L, src);
  if (!split && lua_istable(L, tok_idx) && ntok != nsrc)
    return lsdr_error(L,
                      "You have passed a list of models of length %d, and list of tokens of "
                      "length %d Make sure both lists have the same length.",
                      nsrc, ntok);

  ti_list *list = lua_newuserdatauv(L, sizeof *list, 0);
  memset(list, 0, sizeof *list);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, ti_list_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  const int n = split ? ntok : nsrc;
  if (!(list->es = calloc((size_t)n, sizeof *list->es)))
    return luaL_error(L, "out of memory");
  for (int i = 0; i < n; i++) {
    const char *token = NULL;
    if (lua_istable(L, tok_idx)) {
      lua_rawgeti(L, tok_idx, i + 1);
      token = lua_tostring(L, -1); /* kept by the list */
      lua_pop(L, 1);
      if (!token)
        return lsdr_error(L, "option 'token': entry %d is not a string", i + 1);
    } else {
      token = lua_tostring(L, tok_idx);
    }
    if (split) {
      lsdr_tensor *t = lsdr_to_tensor(L, src);
      if (t->t.ndim != 2 || t->t.shape[0] != ntok)
        return lsdr_error(L,
                          "You have passed a state_dict contains %d embeddings, and list of "
                          "tokens of length %d Make sure both have the same length.",
                          t->t.ndim == 2 ? (int)t->t.shape[0] : 1, ntok);
      lua_pushvalue(L, src);
      lua_pushinteger(L, i + 1);
      lua_gettable(L, -2); /* t[i]: the i-th row */
      read_source(L, -1, token, opts, &list->es[i]);
      lua_pop(L, 2);
    } else if (is_list) {
      lua_rawgeti(L, src, i + 1);
      read_source(L, -1, token, opts, &list->es[i]);
      lua_pop(L, 1);
    } else {
      read_source(L, src, token, opts, &list->es[i]);
    }
    list->n = i + 1;
  }
  sdr_generator *g = lsdr_default_generator(
      L, te->be->device == SDR_DEVICE_CUDA ? SDR_GENERATOR_CUDA : SDR_GENERATOR_CPU);
  lsdr_generator_fit_device(g);
  if (sdr_ti_load(tok, te, g, list->es, list->n) != 0)
    return lsdr_engine_error(L);
  return 0;
}

/* pipe:unload_textual_inversion(tokens): the tokens (a string or a list; nil: every token
 * that was added) leave the tokenizer and the text encoder. */
int lsdr_pipe_unload_textual_inversion(lua_State *L) {
  lsdr_args(L);
  sdr_pipeline *p = lsdr_pipeline_models(L, 1);
  sdr_clip_tokenizer *tok;
  sdr_clip_text_model *te;
  ti_pair(L, p, 3, 4, &tok, &te);
  int n = lua_istable(L, 2) ? (int)lua_rawlen(L, 2) : lua_isnil(L, 2) ? 0 : 1;
  const char **names = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *names, 0);
  for (int i = 0; i < n; i++) {
    if (lua_istable(L, 2))
      lua_rawgeti(L, 2, i + 1);
    else
      lua_pushvalue(L, 2);
    if (lua_type(L, -1) != LUA_TSTRING)
      return lsdr_error(L, "argument 1 (tokens): a string or a list of strings expected");
    names[i] = lua_tostring(L, -1); /* the argument keeps the strings */
    lua_pop(L, 1);
  }
  if (lua_istable(L, 2) && n == 0) /* an empty list: nothing to look for */
    return lsdr_error(L, "No tokens to remove found");
  if (sdr_ti_unload(tok, te, lsdr_default_generator(L, SDR_GENERATOR_CPU), names, n) != 0)
    return lsdr_engine_error(L);
  return 0;
}

/* pipe:maybe_convert_prompt(prompt, tokenizer): the prompt (or list) with multi-vector
 * tokens spelled out, as the pipeline's call sees it (tokenizer nil: the pipeline's). */
int lsdr_pipe_maybe_convert_prompt(lua_State *L) {
  lsdr_args(L);
  const sdr_clip_tokenizer *tok = lsdr_pipeline_models(L, 1)->tokenizer;
  if (!lua_isnil(L, 3) && !(tok = lsdr_to_clip_tokenizer(L, 3)))
    return lsdr_argerror(L, 2, "a CLIPTokenizer");
  int list = lua_istable(L, 2), n = list ? (int)lua_rawlen(L, 2) : 1;
  if (list)
    lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    if (list)
      lua_rawgeti(L, 2, i + 1);
    else
      lua_pushvalue(L, 2);
    if (lua_type(L, -1) != LUA_TSTRING)
      return lsdr_error(L, "argument 1 (prompt): a string or a list of strings expected");
    char *c = sdr_ti_convert_prompt(tok, lua_tostring(L, -1));
    lua_pop(L, 1);
    if (!c)
      return lsdr_engine_error(L);
    lua_pushstring(L, c);
    free(c);
    if (list)
      lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

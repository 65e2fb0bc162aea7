/* bindings/unet.c — UNet2DConditionModel.from_pretrained and unet(latents, t,
 * {encoder_hidden_states}), as the diffusers deep-dive notebook calls it. */
#include "bindings/unet.h"

#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/lsdr.h"
#include "bindings/model_common.h"
#include "bindings/pipeline_internal.h" // lsdr_test_pipe: the pipeline a UNet is part of
#include "bindings/tensor.h"
#include "bindings/tensor_internal.h" // lsdr_push_float32, lsdr_push_from_host, lsdr_tensor_host_values
#include "engine/error.h"
#include "engine/pipeline_ip_adapter.h" // sdr_ip_tokens
#include "engine/unet.h"

#define LSDR_UNET "UNet2DConditionModel"

static sdr_unet *check_unet(lua_State *L, int idx, lsdr_model_box **box) {
  *box = lsdr_model_box_check(L, idx, LSDR_UNET);
  sdr_unet *u = (*box)->model;
  lsdr_model_box_follow(*box, u->be);
  return u;
}

static void free_unet(void *m) { sdr_unet_free(m); }

static int load_unet(void *m, sdr_backend *be, const char *dir, const char *variant, int keep) {
  return sdr_unet_load(m, be, dir, variant, keep);
}

static int from_pretrained(lua_State *L) {
  return lsdr_model_from_pretrained(L, LSDR_UNET, sizeof(sdr_unet), load_unet, free_unet);
}

void lsdr_push_unet_ref(lua_State *L, sdr_unet *model, int owner) {
  lsdr_model_box_push_ref(L, LSDR_UNET, model, model->be, owner);
}

lsdr_tensor *lsdr_push_timesteps(lua_State *L, int idx, sdr_backend *be, int64_t B) {
  /* t: a number, or a tensor of one value or one per batch entry (diffusers broadcasts). */
  double *tv = malloc((size_t)B * sizeof *tv);
  if (!tv)
    luaL_error(L, "out of memory");
  if (lua_type(L, idx) == LUA_TNUMBER) {
    for (int64_t i = 0; i < B; i++)
      tv[i] = lua_tonumber(L, idx);
  } else {
    lsdr_tensor *t = lsdr_to_tensor(L, idx);
    if (!t) {
      free(tv);
      lsdr_error(L, "argument 2 (timestep): a number or a Tensor expected, got %s",
                 lsdr_typename(L, idx));
    }
    int64_t n = sdr_tensor_numel(&t->t);
    if (n != 1 && n != B) {
      free(tv);
      lsdr_error(L, "argument 2 (timestep): %I values for a batch of %I", (lua_Integer)n,
                 (lua_Integer)B);
    }
    double *v = lsdr_tensor_host_values(L, t);
    for (int64_t i = 0; i < B; i++)
      tv[i] = v[n == 1 ? 0 : i];
    free(v);
  }
  lsdr_tensor *ts = lsdr_push_from_host(L, be, SDR_F32, 1, (int64_t[]){B}, tv);
  free(tv);
  return ts;
}

/* unet(sample, timestep, {encoder_hidden_states = e}) -> {sample = Tensor} */
void lsdr_read_text_time(lua_State *L, int acond, sdr_backend *be, const sdr_tensor **text_embeds,
                         const sdr_tensor **time_ids) {
  static const char *const text_time[] = {"text_embeds", "time_ids"};
  const sdr_tensor **tt[] = {text_embeds, time_ids};
  for (int i = 0; i < 2; i++) {
    *tt[i] = NULL;
    if (!acond)
      continue;
    lua_getfield(L, acond, text_time[i]);
    if (lua_isnil(L, -1))
      continue;
    if (!lsdr_to_tensor(L, -1))
      lsdr_error(L, "added_cond_kwargs: %s must be a Tensor, got %s", text_time[i],
                 lsdr_typename(L, -1));
    lsdr_tensor *t = lsdr_push_float32(L, -1);
    if (t->storage->be != be)
      lsdr_error(L, "added_cond_kwargs: %s must be on the model's device (%s)", text_time[i],
                 sdr_device_name(be->device));
    *tt[i] = &t->t;
  }
}

static int unet_call(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 3);
  lsdr_model_box *box;
  sdr_unet *unet = check_unet(L, 1, &box);
  sdr_backend *be = unet->be;
  lsdr_tensor *sample = lsdr_to_tensor(L, 2);
  if (sample->t.ndim != 4)
    return lsdr_argerror(L, 1, "a (batch, channels, height, width) tensor");
  const int64_t B = sample->t.shape[0];
  lua_getfield(L, 4, "encoder_hidden_states");
  int ctx_idx = lua_gettop(L);
  if (!lsdr_to_tensor(L, ctx_idx))
    return lsdr_error(L, "option 'encoder_hidden_states': Tensor expected, got %s",
                      luaL_typename(L, ctx_idx));
  lsdr_tensor *ts = lsdr_push_timesteps(L, 3, be, B);
  lsdr_tensor *x = lsdr_push_float32(L, 2);
  lsdr_tensor *ctx = lsdr_push_float32(L, ctx_idx);
  if (x->storage->be != be || ctx->storage->be != be)
    return lsdr_error(L, "the tensors must be on the model's device (%s)",
                      sdr_device_name(be->device));
  lua_createtable(L, 0, 1);
  lsdr_tensor *out = lsdr_push_new_tensor(
      L, be, SDR_F32, 4, (int64_t[]){B, unet->cfg.out_channels, x->t.shape[2], x->t.shape[3]});
  sdr_pipeline *owner = lsdr_model_owner(L, 1);
  /* a ControlNet's residuals (down_block_additional_residuals with
   * mid_block_additional_residual), on the model's device */
  sdr_unet_residuals res = {0};
  sdr_tensor down[SDR_UNET_MAX_SKIPS], mid;
  const int top = lua_gettop(L); /* the result table and its sample */
  lua_getfield(L, 4, "down_block_additional_residuals");
  lua_getfield(L, 4, "mid_block_additional_residual");
  if (!lua_isnil(L, -1) || !lua_isnil(L, -2)) {
    if (!lua_istable(L, -2) || !lsdr_to_tensor(L, -1))
      return lsdr_error(L, "options 'down_block_additional_residuals' (a list of Tensors) and "
                           "'mid_block_additional_residual' (a Tensor) go together");
    const int list = lua_gettop(L) - 1, n = (int)lua_rawlen(L, list);
    if (n > SDR_UNET_MAX_SKIPS)
      return lsdr_error(L, "option 'down_block_additional_residuals': %d tensors, at most %d", n,
                        SDR_UNET_MAX_SKIPS);
    for (int i = 0; i <= n; i++) {
      if (i < n)
        lua_rawgeti(L, list, i + 1);
      else
        lua_pushvalue(L, list + 1);
      if (!lsdr_to_tensor(L, -1))
        return lsdr_error(L,
                          "option 'down_block_additional_residuals': entry %d is a %s, not a "
                          "Tensor",
                          i + 1, lsdr_typename(L, -1));
      lsdr_tensor *r = lsdr_push_float32(L, -1);
      if (r->storage->be != be)
        return lsdr_error(L, "the residuals must be on the model's device (%s)",
                          sdr_device_name(be->device));
      *(i < n ? &down[i] : &mid) = r->t;
    }
    res = (sdr_unet_residuals){down, n, &mid, 0};
  }
  /* added_cond_kwargs = {image_embeds = {...}}: the pipeline's IP-Adapters' projections
   * (encoder_hid_proj), one list entry per adapter */
  sdr_tensor tokens[SDR_IP_MAX];
  sdr_unet_cond cond = {.attn = {.text = &ctx->t}};
  lua_getfield(L, 4, "added_cond_kwargs");
  const int acond = lua_istable(L, -1) ? lua_gettop(L) : 0;
  if (acond)
    lua_getfield(L, -1, "image_embeds");
  const int nip = owner ? owner->nip_adapters : 0;
  if (nip && !lua_istable(L, -1))
    return lsdr_error(L, "the pipeline's IP-Adapters need added_cond_kwargs = {image_embeds = "
                         "{...}} (one tensor per adapter)");
  if (!nip && !lua_isnil(L, -1))
    return lsdr_error(L, "option 'added_cond_kwargs': image_embeds without an IP-Adapter loaded");
  if (nip && (int)lua_rawlen(L, -1) != nip)
    return lsdr_error(L,
                      "image_embeds must have the same length as image_projection_layers, got "
                      "%d and %d",
                      (int)lua_rawlen(L, -1), nip);
  const int embeds = lua_gettop(L);
  for (int i = 0; i < nip; i++) {
    lua_rawgeti(L, embeds, i + 1);
    lsdr_tensor *e = lsdr_to_tensor(L, -1);
    if (!e)
      return lsdr_error(L, "image_embeds: entry %d is a %s, not a Tensor", i + 1,
                        lsdr_typename(L, -1));
    if (e->t.shape[0] != B)
      return lsdr_error(L, "image_embeds: entry %d has %I rows for a batch of %I", i + 1,
                        (lua_Integer)e->t.shape[0], (lua_Integer)B);
    const float *v = lsdr_host_values(L, lua_gettop(L));
    if (sdr_ip_tokens(owner->ip_adapters[i], &box->arena, v, e->t.ndim, e->t.shape, &tokens[i]) !=
        0)
      return lsdr_engine_error(L);
    cond.attn.image[i] = &tokens[i];
  }
  cond.attn.nimage = nip;
  lsdr_read_text_time(L, acond, be, &cond.text_embeds, &cond.time_ids);
  /* timestep_cond: an LCM UNet's guidance embedding (B, time_cond_proj_dim) */
  lua_getfield(L, 4, "timestep_cond");
  if (!lua_isnil(L, -1)) {
    if (!lsdr_to_tensor(L, -1))
      return lsdr_error(L, "option 'timestep_cond': a Tensor expected, got %s",
                        lsdr_typename(L, -1));
    lsdr_tensor *tc = lsdr_push_float32(L, -1);
    if (tc->storage->be != be)
      return lsdr_error(L, "timestep_cond must be on the model's device (%s)",
                        sdr_device_name(be->device));
    cond.timestep_cond = &tc->t;
  }
  /* class_labels: a UNet with num_class_embeds (the x4 upscaler's noise level), one label a
   * batch entry, or one number for all; checked here, as the rows are looked up on the device */
  lua_getfield(L, 4, "class_labels");
  if (!lua_isnil(L, -1)) {
    const int ci = lua_gettop(L);
    const int V = unet->cfg.num_class_embeds;
    lsdr_tensor *lt = lsdr_to_tensor(L, ci);
    if (!lt && !lua_isnumber(L, ci))
      return lsdr_error(L, "option 'class_labels': a Tensor or a number expected, got %s",
                        lsdr_typename(L, ci));
    if (lt && (lt->t.ndim != 1 || lt->t.shape[0] != B))
      return lsdr_error(L, "option 'class_labels': (%I) labels expected", (lua_Integer)B);
    double *v = malloc((size_t)B * sizeof *v);
    if (!v)
      return luaL_error(L, "out of memory");
    if (lt) {
      double *host = lsdr_tensor_host_values(L, lt);
      memcpy(v, host, (size_t)B * sizeof *v);
      free(host);
    } else {
      for (int64_t i = 0; i < B; i++)
        v[i] = lua_tonumber(L, ci);
    }
    for (int64_t i = 0; i < B; i++)
      if (v[i] != (double)(int64_t)v[i] || v[i] < 0 || (V && v[i] >= V)) {
        const double bad = v[i];
        free(v);
        return lsdr_error(L, "option 'class_labels': %f is not a class of 0 to %d", bad, V - 1);
      }
    lsdr_tensor *labels = lsdr_push_from_host(L, be, SDR_I64, 1, (int64_t[]){B}, v);
    free(v);
    cond.class_labels = &labels->t;
  }
  /* down_intrablock_additional_residuals: a T2I-Adapter's features, on the model's device */
  sdr_tensor intra[SDR_UNET_MAX_BLOCKS + 1];
  lua_getfield(L, 4, "down_intrablock_additional_residuals");
  if (!lua_isnil(L, -1)) {
    const int list = lua_gettop(L), n = lua_istable(L, list) ? (int)lua_rawlen(L, list) : -1;
    if (n < 0 || n > SDR_UNET_MAX_BLOCKS + 1)
      return lsdr_error(L,
                        "option 'down_intrablock_additional_residuals': a list of at most %d "
                        "Tensors expected, got %s",
                        SDR_UNET_MAX_BLOCKS + 1, lsdr_typename(L, list));
    for (int i = 0; i < n; i++) {
      lua_rawgeti(L, list, i + 1);
      if (!lsdr_to_tensor(L, -1))
        return lsdr_error(L,
                          "option 'down_intrablock_additional_residuals': entry %d is a %s, not "
                          "a Tensor",
                          i + 1, lsdr_typename(L, -1));
      lsdr_tensor *r = lsdr_push_float32(L, -1);
      if (r->storage->be != be)
        return lsdr_error(L, "the residuals must be on the model's device (%s)",
                          sdr_device_name(be->device));
      intra[i] = r->t;
    }
    cond.intrablock = intra;
    cond.nintrablock = n;
  }
  /* cross_attention_kwargs["scale"]: a pipeline's LoRA layers scaled for the call, as the
   * UNet's forward does with PEFT (a UNet of no pipeline has no LoRA to scale); last, so no
   * argument error leaves them scaled */
  double scale = 1.0;
  lsdr_cross_attention_scale(L, 4, &scale);
  sdr_lora_models lm = owner ? sdr_pipeline_lora_models(owner) : (sdr_lora_models){0};
  if (owner) {
    sdr_lora_scale(&owner->lora, SDR_LORA_UNET, scale);
    if (sdr_lora_apply_part(&owner->lora, &lm, SDR_LORA_UNET) != 0) {
      sdr_lora_unscale(&owner->lora, SDR_LORA_UNET, scale);
      return lsdr_engine_error(L);
    }
  }
  cond.res = res.mid ? &res : NULL;
  int rc = sdr_unet_forward_cond(unet, &box->arena, &out->t, &x->t, &ts->t, &cond);
  lua_settop(L, top); /* the residuals' copies were needed until here */
  sdr_arena_reset(&box->arena);
  if (owner) /* the state back; the weights are made again when the UNet next runs */
    sdr_lora_unscale(&owner->lora, SDR_LORA_UNET, scale);
  if (rc != 0)
    return lsdr_engine_error(L);
  lua_setfield(L, -2, "sample");
  static const char *const fields[] = {"sample", NULL};
  lsdr_output_kind(L, -1, "UNet2DConditionOutput", fields);
  return 1;
}

void lsdr_set_unet_down_config(lua_State *L, int t, const sdr_unet_config *c) {
  lsdr_set_int(L, t, "in_channels", c->in_channels);
  lsdr_set_int_list(L, t, "block_out_channels", c->block_out_channels, c->nblocks);
  lsdr_set_int_list(L, t, "layers_per_block", c->layers_per_block, c->nblocks);
  lsdr_set_int_list(L, t, "attention_head_dim", c->heads, c->nblocks);
  lsdr_set_int(L, t, "norm_num_groups", c->norm_num_groups);
  lsdr_set_num(L, t, "norm_eps", c->norm_eps);
  lua_pushboolean(L, c->use_linear_projection);
  lua_setfield(L, t, "use_linear_projection");
}

static int unet_properties(lua_State *L) {
  lsdr_model_box *box;
  sdr_unet *unet = check_unet(L, 1, &box);
  const char *k = lua_tostring(L, 2);
  if (k && strcmp(k, "config") == 0) {
    const sdr_unet_config *c = &unet->cfg;
    lua_createtable(L, 0, 12);
    int t = lua_gettop(L);
    lsdr_set_unet_down_config(L, t, c);
    lsdr_set_int(L, t, "out_channels", c->out_channels);
    lsdr_set_int(L, t, "sample_size", c->sample_size);
    lsdr_set_int_list(L, t, "cross_attention_dim", c->cross_attention_dim, c->nblocks);
    if (c->time_cond_proj_dim) /* else None */
      lsdr_set_int(L, t, "time_cond_proj_dim", c->time_cond_proj_dim);
    if (c->addition_time_embed_dim) { /* SDXL's; else None */
      lua_pushstring(L, "text_time");
      lua_setfield(L, t, "addition_embed_type");
      lsdr_set_int(L, t, "addition_time_embed_dim", c->addition_time_embed_dim);
      lsdr_set_int(L, t, "projection_class_embeddings_input_dim",
                   c->projection_class_embeddings_input_dim);
    }
    return 1;
  }
  if (k && strcmp(k, "device") == 0) {
    lsdr_push_device(L, unet->be->device);
    return 1;
  }
  if (k && strcmp(k, "dtype") == 0) {
    lsdr_push_model_dtype(L, &unet->weights);
    return 1;
  }
  return 0;
}

static int unet_tostring(lua_State *L) {
  lsdr_model_box *b = luaL_checkudata(L, 1, LSDR_UNET);
  if (!lsdr_model_box_open(b)) {
    lua_pushliteral(L, "<UNet2DConditionModel (closed)>");
    return 1;
  }
  const sdr_unet *u = b->model;
  lua_pushfstring(L, "<UNet2DConditionModel %d blocks, %d channels at the top, on %s>",
                  u->cfg.nblocks, u->cfg.block_out_channels[0], sdr_device_name(u->be->device));
  return 1;
}

int lsdr_freeu_enable(lua_State *L, sdr_unet *unet, int first) {
  static const char *const names[] = {"s1", "s2", "b1", "b2"};
  double v[4];
  for (int i = 0; i < 4; i++) {
    if (lua_istable(L, first))
      lua_getfield(L, first, names[i]);
    else
      lua_pushvalue(L, first + i);
    if (!lua_isnumber(L, -1))
      return lsdr_error(L,
                        "enable_freeu() missing or not a number: '%s' (s1, s2, b1 and b2 are "
                        "required, as {s1 = 0.9, s2 = 0.2, b1 = 1.2, b2 = 1.4})",
                        names[i]);
    v[i] = lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  unet->freeu.s1 = v[0];
  unet->freeu.s2 = v[1];
  unet->freeu.b1 = v[2];
  unet->freeu.b2 = v[3];
  return 0;
}

static int unet_enable_freeu(lua_State *L) {
  lsdr_args(L);
  lsdr_model_box *box;
  return lsdr_freeu_enable(L, check_unet(L, 1, &box), 2);
}

static int unet_disable_freeu(lua_State *L) {
  lsdr_args(L);
  lsdr_model_box *box;
  sdr_unet *u = check_unet(L, 1, &box);
  u->freeu.s1 = u->freeu.s2 = u->freeu.b1 = u->freeu.b2 = 0;
  return 0;
}

static const lsdr_param call_options[] = {
    {"encoder_hidden_states", "Tensor", NULL, "the text embeddings (batch, tokens, width)"},
    {"cross_attention_kwargs", "table", "nil", "{scale = s}: how much of the LoRA adapters"},
    {"down_block_additional_residuals", "table", "nil",
     "a ControlNet's residuals, one per skip connection"},
    {"mid_block_additional_residual", "Tensor", "nil", "and the one for the mid block"},
    {"down_intrablock_additional_residuals", "table", "nil",
     "a T2I-Adapter's features, one per down block (and the mid block's)"},
    {"timestep_cond", "Tensor", "nil",
     "an LCM UNet's guidance embedding (batch, time_cond_proj_dim)"},
    {"class_labels", "Tensor|number", "nil",
     "a UNet with num_class_embeds: one label a batch entry (the upscaler's noise level)"},
    {"added_cond_kwargs", "table", "nil",
     "{image_embeds = {...}}: the IP-Adapters' image embeddings, one tensor per adapter; "
     "{text_embeds = ..., time_ids = ...}: an SDXL UNet's"},
    {"return_dict", "boolean", "true",
     "accepted: the result is a table, out[1] the sample as in diffusers' tuple"},
    {0}};

static int unet_save_pretrained(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  lsdr_model_box *box;
  return lsdr_model_save_pretrained(L, &check_unet(L, 1, &box)->weights, "diffusion_pytorch_model");
}

static const lsdr_func methods[] = {
    {"UNet2DConditionModel:to",
     lsdr_model_to,
     "The model itself for memory_format (or its own device); pipe:to moves a pipeline.",
     {{"target", "string|table"}, {"dtype", "any", "nil"}}},
    {"UNet2DConditionModel:__call",
     unet_call,
     "Predicts the noise: unet(latents, t, {encoder_hidden_states = e}).sample.",
     {{"sample", "Tensor"}, {"timestep", "number|Tensor"}, {"opts", "table"}},
     call_options},
    {"UNet2DConditionModel:enable_freeu",
     unet_enable_freeu,
     "FreeU: the first two up blocks' backbone channels scaled by b1, b2 and their skips' "
     "lowest frequencies by s1, s2 (all four non-zero).",
     {{"s1", "number|table", NULL, "or {s1 = ..., s2 = ..., b1 = ..., b2 = ...}"},
      {"s2", "number", "nil"},
      {"b1", "number", "nil"},
      {"b2", "number", "nil"}}},
    {"UNet2DConditionModel:disable_freeu", unet_disable_freeu, "FreeU off."},
    {"UNet2DConditionModel:save_pretrained",
     unet_save_pretrained,
     "Writes config.json and the weights (.safetensors) into a folder, as diffusers does.",
     {{"save_directory", "string"}, {"opts", "table", "nil"}},
     lsdr_save_pretrained_options},
    {0}};

static const lsdr_func class_funcs[] = {{"UNet2DConditionModel.from_pretrained",
                                         from_pretrained,
                                         "Loads a UNet from a folder (diffusers' layout).",
                                         {{"path", "string"}, {"opts", "table", "nil"}},
                                         lsdr_from_pretrained_options},
                                        {0}};

void lsdr_open_unet(lua_State *L) {
  lsdr_model_metatable(L, LSDR_UNET, methods, unet_properties, lsdr_model_box_gc, unet_tostring);
  lua_newtable(L);
  lsdr_register(L, -1, class_funcs);
  lua_setglobal(L, "UNet2DConditionModel");
}

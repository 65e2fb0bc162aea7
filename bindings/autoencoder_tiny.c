/* bindings/autoencoder_tiny.c — AutoencoderTiny (TAESD): from_pretrained, encode(x).latents,
 * decode(z).sample, and its place in a pipeline (pipe.vae = AutoencoderTiny.from_pretrained(
 * "madebyollin/taesd"), or {vae = ...} to from_pretrained). The same engine struct as
 * AutoencoderKL (engine/vae.h), so tiling, slicing and decode are vae.c's. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/lsdr.h"
#include "bindings/model_common.h"
#include "bindings/tensor.h"
#include "bindings/tensor_internal.h" // lsdr_tensor_host_values, lsdr_push_from_host
#include "bindings/vae.h"
#include "engine/vae.h"

static int load_tiny(void *m, sdr_backend *be, const char *dir, const char *variant, int keep) {
  return lsdr_vae_load_class(m, be, dir, variant, keep, 1);
}

static int from_pretrained(lua_State *L) {
  return lsdr_model_from_pretrained(L, LSDR_VAE_TINY, sizeof(sdr_vae), load_tiny,
                                    lsdr_vae_free_own);
}

/* AutoencoderTinyOutput: the latents themselves, no distribution to sample. */
static int tiny_encode(lua_State *L) {
  lsdr_model_box *box;
  sdr_vae *vae;
  lsdr_vae_encode_raw(L, &box, &vae);
  lua_createtable(L, 0, 1);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "latents");
  static const char *const fields[] = {"latents", NULL};
  lsdr_output_kind(L, -1, "AutoencoderTinyOutput", fields);
  return 1;
}

/* scale_latents (raw latents to [0, 1]) and unscale_latents (back), in float32 as torch. */
static void push_scaled(lua_State *L, const sdr_vae *vae, int idx, int unscale) {
  lsdr_tensor *t = lsdr_check_tensor(L, idx);
  const float two_mag = 2.0f * vae->cfg.tiny_cfg.latent_magnitude;
  const float shift = vae->cfg.tiny_cfg.latent_shift;
  double *v = lsdr_tensor_host_values(L, t);
  const size_t n = (size_t)sdr_tensor_numel(&t->t);
  for (size_t i = 0; i < n; i++) {
    float x = (float)v[i];
    if (unscale) {
      x = (x - shift) * two_mag;
    } else {
      x = x / two_mag + shift;
      x = x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x;
    }
    v[i] = x;
  }
  lsdr_push_from_host(L, t->storage->be, SDR_F32, t->t.ndim, t->t.shape, v);
  free(v);
}

static int tiny_scale_latents(lua_State *L) {
  lsdr_args(L);
  lsdr_model_box *box;
  push_scaled(L, lsdr_check_vae(L, 1, &box), 2, 0);
  return 1;
}

static int tiny_unscale_latents(lua_State *L) {
  lsdr_args(L);
  lsdr_model_box *box;
  push_scaled(L, lsdr_check_vae(L, 1, &box), 2, 1);
  return 1;
}

/* vae(sample): encode, the latents stored as bytes (scale_latents, * 255, rounded) and read
 * back (/ 255, unscale_latents), decode: AutoencoderTiny.forward's round trip. */
static int tiny_forward(lua_State *L) {
  lsdr_args(L);
  lsdr_model_box *box;
  const sdr_vae *vae = lsdr_check_vae(L, 1, &box);
  lsdr_check_tensor(L, 2);
  lua_settop(L, 2);
  lua_getfield(L, 1, "encode");
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_call(L, 2, 1);
  lua_getfield(L, -1, "latents");
  push_scaled(L, vae, lua_gettop(L), 0);
  lsdr_tensor *q = lsdr_check_tensor(L, -1);
  double *v = lsdr_tensor_host_values(L, q);
  const size_t n = (size_t)sdr_tensor_numel(&q->t);
  for (size_t i = 0; i < n; i++) /* .mul_(255).round_().byte(), then / 255.0 in float32 */
    v[i] = (float)nearbyintf((float)v[i] * 255.0f) / 255.0f;
  lsdr_push_from_host(L, q->storage->be, SDR_F32, q->t.ndim, q->t.shape, v);
  free(v);
  push_scaled(L, vae, lua_gettop(L), 1);
  const int z = lua_gettop(L);
  lua_getfield(L, 1, "decode");
  lua_pushvalue(L, 1);
  lua_pushvalue(L, z);
  lua_call(L, 2, 1);
  return 1;
}

static int tiny_properties(lua_State *L) {
  lsdr_model_box *box;
  sdr_vae *vae = lsdr_check_vae(L, 1, &box);
  const char *k = lua_tostring(L, 2);
  if (k && strcmp(k, "config") == 0) {
    const sdr_vae_config *c = &vae->cfg;
    const sdr_tiny_config *t = &c->tiny_cfg;
    lua_createtable(L, 0, 14);
    int i = lua_gettop(L);
    lsdr_set_int(L, i, "in_channels", c->in_channels);
    lsdr_set_int(L, i, "out_channels", c->out_channels);
    lsdr_set_int(L, i, "latent_channels", c->latent_channels);
    lsdr_set_int_list(L, i, "encoder_block_out_channels", t->encoder_channels, t->nstages);
    lsdr_set_int_list(L, i, "decoder_block_out_channels", t->decoder_channels, t->nstages);
    lsdr_set_int_list(L, i, "block_out_channels", c->block_out_channels, c->nblocks);
    lsdr_set_int_list(L, i, "num_encoder_blocks", t->encoder_blocks, t->nstages);
    lsdr_set_int_list(L, i, "num_decoder_blocks", t->decoder_blocks, t->nstages);
    lsdr_set_str(L, i, "act_fn", "relu");
    lsdr_set_int(L, i, "upsampling_scaling_factor", 2);
    lsdr_set_num(L, i, "latent_magnitude", t->latent_magnitude);
    lsdr_set_num(L, i, "latent_shift", t->latent_shift);
    lsdr_set_num(L, i, "scaling_factor", c->scaling_factor);
    lua_pushboolean(L, 0);
    lua_setfield(L, i, "force_upcast");
    return 1;
  }
  return lsdr_vae_device_dtype(L, vae, k);
}

static int tiny_tostring(lua_State *L) {
  lsdr_model_box *b = luaL_checkudata(L, 1, LSDR_VAE_TINY);
  if (!lsdr_model_box_open(b)) {
    lua_pushliteral(L, "<AutoencoderTiny (closed)>");
    return 1;
  }
  const sdr_vae *v = b->model;
  lua_pushfstring(L, "<AutoencoderTiny %d latent channels, factor %d, on %s>",
                  v->cfg.latent_channels, sdr_vae_scale_factor(v), sdr_device_name(v->be->device));
  return 1;
}

static const lsdr_param encode_options[] = {
    {"return_dict", "boolean", "true", "accepted: out[1] is the latents either way"}, {0}};

static const lsdr_func methods[] = {
    {"AutoencoderTiny:to",
     lsdr_model_to,
     "The model itself for memory_format (or its own device); pipe:to moves a pipeline.",
     {{"target", "string|table"}, {"dtype", "any", "nil"}}},
    {"AutoencoderTiny:enable_tiling", lsdr_vae_enable_tiling,
     "Encode and decode in 512-pixel tiles blended over an eighth, as diffusers' "
     "AutoencoderTiny does (every call, whatever the size)."},
    {"AutoencoderTiny:disable_tiling", lsdr_vae_disable_tiling, "Encode and decode in one piece."},
    {"AutoencoderTiny:enable_slicing", lsdr_vae_enable_slicing,
     "Decode a batch one image at a time (a pipeline's VAE: the pipeline's decode)."},
    {"AutoencoderTiny:disable_slicing", lsdr_vae_disable_slicing, "Decode the batch at once."},
    {"AutoencoderTiny:save_pretrained",
     lsdr_vae_save_pretrained,
     "Writes config.json and the weights (.safetensors) into a folder, as diffusers does.",
     {{"save_directory", "string"}, {"opts", "table", "nil"}},
     lsdr_save_pretrained_options},
    {"AutoencoderTiny:encode",
     tiny_encode,
     "Image (batch, 3, H, W) in [-1, 1] to {latents = (batch, 4, H/8, W/8)}: no distribution, "
     "nothing drawn.",
     {{"x", "Tensor"}, {"opts", "table", "nil"}},
     encode_options},
    {"AutoencoderTiny:scale_latents",
     tiny_scale_latents,
     "Raw latents to [0, 1] (x / (2 latent_magnitude) + latent_shift, clamped), as TAESD "
     "stores them in an image.",
     {{"x", "Tensor"}}},
    {"AutoencoderTiny:unscale_latents",
     tiny_unscale_latents,
     "[0, 1] back to raw latents ((x - latent_shift) * 2 latent_magnitude).",
     {{"x", "Tensor"}}},
    {"AutoencoderTiny:__call",
     tiny_forward,
     "vae(sample): encode, the latents through 8 bits and back, decode ({sample = ...}).",
     {{"sample", "Tensor"}}},
    {"AutoencoderTiny:decode",
     lsdr_vae_decode,
     "Latents (already divided by scaling_factor, 1.0 for TAESD) to {sample = image in [-1, 1]}.",
     {{"z", "Tensor"}, {"opts", "table", "nil"}},
     lsdr_vae_decode_options},
    {0}};

static const lsdr_func class_funcs[] = {
    {"AutoencoderTiny.from_pretrained",
     from_pretrained,
     "Loads a tiny VAE (TAESD, e.g. madebyollin/taesd or taesdxl) from a folder or the hub; "
     "pipe.vae = it decodes in a fraction of the time.",
     {{"path", "string"}, {"opts", "table", "nil"}},
     lsdr_from_pretrained_options},
    {0}};

void lsdr_open_autoencoder_tiny(lua_State *L) {
  lsdr_model_metatable(L, LSDR_VAE_TINY, methods, tiny_properties, lsdr_model_box_gc,
                       tiny_tostring);
  lua_newtable(L);
  lsdr_register(L, -1, class_funcs);
  lua_setglobal(L, "AutoencoderTiny");
}

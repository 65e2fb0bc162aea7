/* bindings/autoencoder_tiny.c — AutoencoderTiny (TAESD): from_pretrained, encode(x).latents,
 * decode(z).sample, and its place in a pipeline (pipe.vae = AutoencoderTiny.from_pretrained(
 * "madebyollin/taesd"), or {vae = ...} to from_pretrained). The same engine struct as
 * AutoencoderKL (engine/vae.h), so tiling, slicing and decode are vae.c's. */
#include <string.h>

#include <lauxlib.h>

#include "bindings/lsdr.h"
#include "bindings/model_common.h"
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
    {"AutoencoderTiny:encode",
     tiny_encode,
     "Image (batch, 3, H, W) in [-1, 1] to {latents = (batch, 4, H/8, W/8)}: no distribution, "
     "nothing drawn.",
     {{"x", "Tensor"}, {"opts", "table", "nil"}},
     encode_options},
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

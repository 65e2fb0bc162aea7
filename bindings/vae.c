/* bindings/vae.c — AutoencoderKL.from_pretrained, vae:encode(x).latent_dist, vae:decode(z).sample,
 * and what AutoencoderTiny (bindings/autoencoder_tiny.c) shares with it.
 */
#include "bindings/vae.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/generator.h" // lsdr_to_generator, lsdr_default_generator
#include "bindings/lsdr.h"
#include "bindings/model_common.h"
#include "bindings/pipeline_internal.h" // lsdr_model_owner
#include "bindings/tensor.h"
#include "bindings/tensor_internal.h"
#include "engine/error.h"
#include "engine/vae.h"
#include "engine/vae_tiling.h" // sdr_vae_decode_tiled, sdr_vae_encode_tiled

#define LSDR_DIST "DiagonalGaussianDistribution"

sdr_vae *lsdr_check_vae(lua_State *L, int idx, lsdr_model_box **box) {
  const char *tname = luaL_testudata(L, idx, LSDR_VAE_TINY) ? LSDR_VAE_TINY : LSDR_VAE;
  *box = lsdr_model_box_check(L, idx, tname);
  sdr_vae *v = (*box)->model;
  lsdr_model_box_follow(*box, v->be);
  return v;
}

void lsdr_vae_free_own(void *m) { sdr_vae_free(m); }

int lsdr_vae_save_pretrained(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  lsdr_model_box *box;
  return lsdr_model_save_pretrained(L, &lsdr_check_vae(L, 1, &box)->weights,
                                    "diffusion_pytorch_model");
}

int lsdr_vae_load_class(sdr_vae *v, sdr_backend *be, const char *dir, const char *variant, int keep,
                        int tiny) {
  if (sdr_vae_load(v, be, dir, variant, keep) != 0)
    return -1;
  if (v->cfg.tiny == tiny)
    return 0;
  sdr_vae_free(v);
  return sdr_fail("%s holds an %s (config.json's _class_name): load it with %s.from_pretrained",
                  dir, tiny ? LSDR_VAE : LSDR_VAE_TINY, tiny ? LSDR_VAE : LSDR_VAE_TINY);
}

static int load_vae(void *m, sdr_backend *be, const char *dir, const char *variant, int keep) {
  return lsdr_vae_load_class(m, be, dir, variant, keep, 0);
}

static int from_pretrained(lua_State *L) {
  return lsdr_model_from_pretrained(L, LSDR_VAE, sizeof(sdr_vae), load_vae, lsdr_vae_free_own);
}

void lsdr_push_vae_ref(lua_State *L, sdr_vae *model, int owner) {
  lsdr_model_box_push_ref(L, model->cfg.tiny ? LSDR_VAE_TINY : LSDR_VAE, model, model->be, owner);
}

void lsdr_vae_box_adopt(lua_State *L, int idx, const sdr_vae *old) {
  lsdr_model_box *b = lua_touserdata(L, idx);
  b->own = malloc(sizeof(sdr_vae));
  if (!b->own) {
    sdr_vae_free((sdr_vae *)old);
    b->loaded = 0; /* "this model was closed" from now on */
    return;
  }
  memcpy(b->own, old, sizeof(sdr_vae));
  b->model = b->own;
  b->free_own = lsdr_vae_free_own;
  b->owner_loaded = NULL;
  lua_pushnil(L);
  lua_setiuservalue(L, idx, 1);
}

/* ---- DiagonalGaussianDistribution ------------------------------------------ */

/* Pushes a distribution table for the moments tensor at idx (mean then logvar
 * along the channels): {parameters, mean, logvar, std, var} as diffusers' class. */
static void push_distribution(lua_State *L, int idx) {
  lsdr_tensor *m = lsdr_to_tensor(L, idx);
  const int64_t B = m->t.shape[0], C2 = m->t.shape[1], H = m->t.shape[2], W = m->t.shape[3];
  const int64_t L2 = C2 / 2, plane = H * W;
  double *v = lsdr_tensor_host_values(L, m);
  size_t n = (size_t)(B * L2 * plane);
  double *mean = malloc(n * sizeof *mean), *logvar = malloc(n * sizeof *logvar);
  double *std = malloc(n * sizeof *std), *var = malloc(n * sizeof *var);
  if (!mean || !logvar || !std || !var) {
    free(v), free(mean), free(logvar), free(std), free(var);
    luaL_error(L, "out of memory");
  }
  for (int64_t b = 0; b < B; b++)
    for (int64_t c = 0; c < L2; c++)
      for (int64_t i = 0; i < plane; i++) {
        size_t o = (size_t)((b * L2 + c) * plane + i);
        mean[o] = v[(b * C2 + c) * plane + i];
        double lv = v[(b * C2 + L2 + c) * plane + i];
        /* diffusers: logvar.clamp(-30, 20); std = exp(0.5 logvar); var = exp(logvar),
         * each in float32. */
        lv = lv < -30 ? -30 : lv > 20 ? 20 : lv;
        logvar[o] = lv;
        std[o] = expf(0.5f * (float)lv);
        var[o] = expf((float)lv);
      }
  free(v);
  sdr_backend *be = m->storage->be;
  const int64_t shape[4] = {B, L2, H, W};
  lua_createtable(L, 0, 5);
  lua_pushvalue(L, idx);
  lua_setfield(L, -2, "parameters");
  lsdr_push_from_host(L, be, SDR_F32, 4, shape, mean);
  lua_setfield(L, -2, "mean");
  lsdr_push_from_host(L, be, SDR_F32, 4, shape, logvar);
  lua_setfield(L, -2, "logvar");
  lsdr_push_from_host(L, be, SDR_F32, 4, shape, std);
  lua_setfield(L, -2, "std");
  lsdr_push_from_host(L, be, SDR_F32, 4, shape, var);
  lua_setfield(L, -2, "var");
  free(mean), free(logvar), free(std), free(var);
  luaL_setmetatable(L, LSDR_DIST);
}

/* dist:sample(generator=nil): mean + std * randn(mean.shape), drawn as diffusers'
 * randn_tensor draws: from the generator given, else the device's default. */
static int dist_sample(lua_State *L) {
  lsdr_args(L);
  lua_getfield(L, 1, "mean");
  lua_getfield(L, 1, "std");
  lsdr_tensor *mean = lsdr_to_tensor(L, -2), *std = lsdr_to_tensor(L, -1);
  if (!mean || !std)
    return lsdr_error(L, "the distribution has no mean or std");
  if (lua_istable(L, 2)) { /* sample{generator = g}, diffusers' keyword */
    lua_getfield(L, 2, "generator");
    lua_replace(L, 2);
  }
  sdr_generator *g = lua_isnil(L, 2) ? NULL : lsdr_to_generator(L, 2);
  if (!lua_isnil(L, 2) && !g)
    return lsdr_argerror(L, 1, "torch.Generator");
  sdr_generator_device want =
      mean->t.device == SDR_DEVICE_CPU ? SDR_GENERATOR_CPU : SDR_GENERATOR_CUDA;
  if (!g)
    g = lsdr_default_generator(L, want);
  lsdr_generator_fit_device(g);
  size_t n = (size_t)sdr_tensor_numel(&mean->t);
  float *eps = malloc((n ? n : 1) * sizeof *eps);
  if (!eps)
    return luaL_error(L, "out of memory");
  /* A CPU generator may feed a GPU tensor (drawn here, then moved), as randn_tensor allows. */
  sdr_generator_randn_f32(g, eps, n);
  double *m = lsdr_tensor_host_values(L, mean), *s = lsdr_tensor_host_values(L, std);
  for (size_t i = 0; i < n; i++)
    m[i] = (double)((float)m[i] + (float)s[i] * eps[i]);
  free(eps);
  lsdr_push_from_host(L, mean->storage->be, SDR_F32, mean->t.ndim, mean->t.shape, m);
  free(m), free(s);
  return 1;
}

static int dist_mode(lua_State *L) {
  lsdr_args(L);
  lua_getfield(L, 1, "mean");
  return 1;
}

static const lsdr_func dist_methods[] = {
    {"DiagonalGaussianDistribution:sample",
     dist_sample,
     "mean + std * noise, the noise drawn from the generator (or the global one); "
     "sample(g) or sample{generator = g}.",
     {{"generator", "torch.Generator|table", "nil"}}},
    {"DiagonalGaussianDistribution:mode", dist_mode, "The mean."},
    {0}};

/* ---- encode and decode ------------------------------------------------------ */

static int vae_encode(lua_State *L) {
  lsdr_model_box *box;
  sdr_vae *vae;
  lsdr_vae_encode_raw(L, &box, &vae);
  lua_createtable(L, 0, 1);
  push_distribution(L, lua_gettop(L) - 1);
  lua_setfield(L, -2, "latent_dist");
  static const char *const fields[] = {"latent_dist", NULL};
  lsdr_output_kind(L, -1, "AutoencoderKLOutput", fields);
  return 1;
}

void lsdr_vae_encode_raw(lua_State *L, lsdr_model_box **boxp, sdr_vae **vaep) {
  lsdr_args(L);
  lsdr_options(L, 2);
  lsdr_model_box *box;
  sdr_vae *vae = lsdr_check_vae(L, 1, &box);
  *boxp = box, *vaep = vae;
  lsdr_tensor *x = lsdr_push_float32(L, 2);
  if (x->t.ndim != 4)
    lsdr_argerror(L, 1, "a (batch, channels, height, width) tensor");
  if (x->storage->be != vae->be)
    lsdr_error(L, "the image is on %s, the model on %s", sdr_device_name(x->t.device),
               sdr_device_name(vae->be->device));
  const int f = sdr_vae_scale_factor(vae);
  lsdr_tensor *moments =
      lsdr_push_new_tensor(L, vae->be, SDR_F32, 4,
                           (int64_t[]){x->t.shape[0], sdr_vae_encoded_channels(vae),
                                       x->t.shape[2] / f, x->t.shape[3] / f});
  int rc = box->tiling ? sdr_vae_encode_tiled(vae, &box->arena, &moments->t, &x->t)
                       : sdr_vae_encode(vae, &box->arena, &moments->t, &x->t);
  sdr_arena_reset(&box->arena);
  if (rc != 0)
    lsdr_engine_error(L);
}

int lsdr_vae_decode(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  lsdr_model_box *box;
  sdr_vae *vae = lsdr_check_vae(L, 1, &box);
  lsdr_tensor *z = lsdr_push_float32(L, 2);
  if (z->t.ndim != 4)
    return lsdr_argerror(L, 1, "a (batch, channels, height, width) tensor");
  if (z->storage->be != vae->be)
    return lsdr_error(L, "the latents are on %s, the model on %s", sdr_device_name(z->t.device),
                      sdr_device_name(vae->be->device));
  const int f = sdr_vae_scale_factor(vae);
  lua_createtable(L, 0, 1);
  lsdr_tensor *img = lsdr_push_new_tensor(
      L, vae->be, SDR_F32, 4,
      (int64_t[]){z->t.shape[0], vae->cfg.out_channels, z->t.shape[2] * f, z->t.shape[3] * f});
  int rc = box->tiling ? sdr_vae_decode_tiled(vae, &box->arena, &img->t, &z->t)
                       : sdr_vae_decode(vae, &box->arena, &img->t, &z->t);
  sdr_arena_reset(&box->arena);
  if (rc != 0)
    return lsdr_engine_error(L);
  lua_setfield(L, -2, "sample");
  static const char *const fields[] = {"sample", NULL};
  lsdr_output_kind(L, -1, "DecoderOutput", fields);
  return 1;
}

static int vae_properties(lua_State *L) {
  lsdr_model_box *box;
  sdr_vae *vae = lsdr_check_vae(L, 1, &box);
  const char *k = lua_tostring(L, 2);
  if (k && strcmp(k, "config") == 0) {
    const sdr_vae_config *c = &vae->cfg;
    lua_createtable(L, 0, 8);
    int t = lua_gettop(L);
    lsdr_set_int(L, t, "in_channels", c->in_channels);
    lsdr_set_int(L, t, "out_channels", c->out_channels);
    lsdr_set_int(L, t, "latent_channels", c->latent_channels);
    lsdr_set_int_list(L, t, "block_out_channels", c->block_out_channels, c->nblocks);
    lsdr_set_int(L, t, "layers_per_block", c->layers_per_block);
    lsdr_set_int(L, t, "norm_num_groups", c->norm_num_groups);
    lsdr_set_int(L, t, "sample_size", c->sample_size);
    lsdr_set_num(L, t, "scaling_factor", c->scaling_factor);
    lua_pushboolean(L, c->force_upcast);
    lua_setfield(L, t, "force_upcast");
    /* None (absent) unless the config gives both, which is when SDXL's pipelines use them */
    if (c->has_latents_stats) {
      const float *stats[2] = {c->latents_mean, c->latents_std};
      const char *names[2] = {"latents_mean", "latents_std"};
      for (int s = 0; s < 2; s++) {
        lua_createtable(L, c->latent_channels, 0);
        for (int i = 0; i < c->latent_channels; i++) {
          lua_pushnumber(L, stats[s][i]);
          lua_rawseti(L, -2, i + 1);
        }
        lua_setfield(L, t, names[s]);
      }
    }
    return 1;
  }
  return lsdr_vae_device_dtype(L, vae, k);
}

int lsdr_vae_device_dtype(lua_State *L, const sdr_vae *vae, const char *k) {
  if (k && strcmp(k, "device") == 0) {
    lsdr_push_device(L, vae->be->device);
    return 1;
  }
  if (k && strcmp(k, "dtype") == 0) {
    lsdr_push_model_dtype(L, &vae->weights);
    return 1;
  }
  return 0;
}

static int vae_tostring(lua_State *L) {
  lsdr_model_box *b = luaL_checkudata(L, 1, LSDR_VAE);
  if (!lsdr_model_box_open(b)) {
    lua_pushliteral(L, "<AutoencoderKL (closed)>");
    return 1;
  }
  const sdr_vae *v = b->model;
  lua_pushfstring(L, "<AutoencoderKL %d latent channels, factor %d, on %s>", v->cfg.latent_channels,
                  sdr_vae_scale_factor(v), sdr_device_name(v->be->device));
  return 1;
}

/* A pipeline's VAE (pipe.vae) sets the pipeline's decode too, as the flag on diffusers'
 * module does. */
static int set_tiling(lua_State *L, int on) {
  lsdr_args(L);
  lsdr_model_box *box;
  lsdr_check_vae(L, 1, &box);
  box->tiling = on;
  sdr_pipeline *owner = lsdr_model_owner(L, 1);
  if (owner)
    owner->vae_tiling = on;
  return 0;
}
int lsdr_vae_enable_tiling(lua_State *L) { return set_tiling(L, 1); }
int lsdr_vae_disable_tiling(lua_State *L) { return set_tiling(L, 0); }

/* Slicing decodes a batch one image at a time: the same pictures, less memory. decode
 * here already holds one pass; a pipeline's VAE sets the pipeline's. */
static int set_slicing(lua_State *L, int on) {
  lsdr_args(L);
  lsdr_model_box *box;
  lsdr_check_vae(L, 1, &box);
  sdr_pipeline *owner = lsdr_model_owner(L, 1);
  if (owner)
    owner->vae_slicing = on;
  return 0;
}
int lsdr_vae_enable_slicing(lua_State *L) { return set_slicing(L, 1); }
int lsdr_vae_disable_slicing(lua_State *L) { return set_slicing(L, 0); }

/* diffusers' keywords: the result is a table indexable either way (out[1]); AutoencoderKL's
 * decode takes a generator and does not use it. */
static const lsdr_param encode_options[] = {
    {"return_dict", "boolean", "true", "accepted: out[1] is latent_dist either way"}, {0}};
const lsdr_param lsdr_vae_decode_options[] = {
    {"return_dict", "boolean", "true", "accepted: out[1] is the sample either way"},
    {"generator", "torch.Generator", "nil", "accepted and unused, as diffusers'"},
    {0}};

static const lsdr_func methods[] = {
    {"AutoencoderKL:to",
     lsdr_model_to,
     "The model itself for memory_format (or its own device); pipe:to moves a pipeline.",
     {{"target", "string|table"}, {"dtype", "any", "nil"}}},
    {"AutoencoderKL:enable_tiling", lsdr_vae_enable_tiling,
     "Encode and decode images larger than a tile in overlapping tiles, as diffusers does."},
    {"AutoencoderKL:disable_tiling", lsdr_vae_disable_tiling, "Encode and decode in one piece."},
    {"AutoencoderKL:enable_slicing", lsdr_vae_enable_slicing,
     "Decode a batch one image at a time (a pipeline's VAE: the pipeline's decode)."},
    {"AutoencoderKL:disable_slicing", lsdr_vae_disable_slicing, "Decode the batch at once."},
    {"AutoencoderKL:save_pretrained",
     lsdr_vae_save_pretrained,
     "Writes config.json and the weights (.safetensors) into a folder, as diffusers does.",
     {{"save_directory", "string"}, {"opts", "table", "nil"}},
     lsdr_save_pretrained_options},
    {"AutoencoderKL:encode",
     vae_encode,
     "Image (batch, 3, H, W) in [-1, 1] to {latent_dist = DiagonalGaussianDistribution}.",
     {{"x", "Tensor"}, {"opts", "table", "nil"}},
     encode_options},
    {"AutoencoderKL:decode",
     lsdr_vae_decode,
     "Latents (already divided by scaling_factor) to {sample = image in [-1, 1]}.",
     {{"z", "Tensor"}, {"opts", "table", "nil"}},
     lsdr_vae_decode_options},
    {0}};

static const lsdr_func class_funcs[] = {{"AutoencoderKL.from_pretrained",
                                         from_pretrained,
                                         "Loads a VAE from a folder (diffusers' layout).",
                                         {{"path", "string"}, {"opts", "table", "nil"}},
                                         lsdr_from_pretrained_options},
                                        {0}};

void lsdr_open_vae(lua_State *L) {
  lsdr_model_metatable(L, LSDR_VAE, methods, vae_properties, lsdr_model_box_gc, vae_tostring);
  luaL_newmetatable(L, LSDR_DIST);
  lua_newtable(L);
  lsdr_register(L, -1, dist_methods);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__fields");
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_newtable(L);
  lsdr_register(L, -1, class_funcs);
  lua_setglobal(L, "AutoencoderKL");
}

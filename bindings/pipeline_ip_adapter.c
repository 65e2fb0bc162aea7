/* bindings/pipeline_ip_adapter.c — diffusers' IPAdapterMixin on a pipeline:
 * pipe:load_ip_adapter(repo, subfolder, weight_name, {...}), set_ip_adapter_scale,
 * unload_ip_adapter, prepare_ip_adapter_image_embeds, and the calls' ip_adapter_image and
 * ip_adapter_image_embeds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/hub.h"   // lsdr_hub_resolve
#include "bindings/image.h" // lsdr_to_image
#include "bindings/lsdr.h"
#include "bindings/pipeline_internal.h"
#include "bindings/tensor.h"
#include "engine/pipeline_ip_adapter.h"

const lsdr_param lsdr_ip_adapter_options[] = {
    {"image_encoder_folder", "string|boolean", "\"image_encoder\"",
     "where the image encoder is: a folder in subfolder, or a path in the repo (with a '/'); "
     "false: none"},
    {"revision", "string", "nil", "branch, tag or commit on the hub"},
    {"cache_dir", "string", "nil", "hub cache folder (default $HF_HUB_CACHE)"},
    {"local_files_only", "boolean", "false", "only the cache, never the network"},
    {"token", "string|boolean", "nil", "hub token"},
    {"low_cpu_mem_usage", "boolean", "nil", "accepted for diffusers' sake"},
    {"force_download", "boolean", "nil", "accepted for diffusers' sake"},
    {"resume_download", "boolean", "nil", "accepted for diffusers' sake"},
    {"proxies", "table", "nil", "accepted for diffusers' sake"},
    {0}};

/* The string at idx or entry k of the list there (one entry: every k). */
static const char *entry(lua_State *L, int idx, int k, int n, const char *what) {
  if (lua_type(L, idx) == LUA_TSTRING)
    return lua_tostring(L, idx);
  const int len = (int)lua_rawlen(L, idx);
  if (len != 1 && len != n)
    lsdr_error(L, "`%s` and `weight_name` must have the same length.", what);
  lua_rawgeti(L, idx, len == 1 ? 1 : k + 1);
  const char *s = lua_tostring(L, -1);
  if (lua_type(L, -1) != LUA_TSTRING)
    lsdr_error(L, "%s: entry %d is a %s, not a string", what, len == 1 ? 1 : k + 1,
               lsdr_typename(L, -1));
  lua_pop(L, 1); /* the list keeps it */
  return s;
}

/* The folder a repo id or folder stands for (fetching subfolder/file, or a model's files in
 * subfolder, from the hub); pushed. */
static const char *resolve(lua_State *L, const char *src, const char *sub, const char *file,
                           int opts) {
  lua_pushstring(L, src);
  int name = lua_gettop(L);
  lua_createtable(L, 0, 8);
  int hub = lua_gettop(L);
  static const char *const keys[] = {"revision", "cache_dir", "local_files_only", "token", NULL};
  for (int i = 0; keys[i]; i++) {
    lua_getfield(L, opts, keys[i]);
    lua_setfield(L, hub, keys[i]);
  }
  lua_pushstring(L, sub);
  lua_setfield(L, hub, "subfolder");
  if (file) {
    lua_pushstring(L, file);
    lua_setfield(L, hub, "weight_name");
  }
  const char *dir = lsdr_hub_resolve(L, name, hub, file ? SDR_HUB_LORA : SDR_HUB_MODEL);
  lua_replace(L, name);
  lua_settop(L, name);
  return dir;
}

int lsdr_pipe_load_ip_adapter(lua_State *L) {
  /* the keyword form: (src, {subfolder = ..., weight_name = ..., ...}) */
  if (lua_gettop(L) == 3 && lua_istable(L, 3) && !lsdr_is_plain_list(L, 3)) {
    lua_getfield(L, 3, "subfolder");
    lua_getfield(L, 3, "weight_name");
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
      if (strcmp(k, "subfolder") == 0 || strcmp(k, "weight_name") == 0) {
        lua_pop(L, 1);
        continue;
      }
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    }
    lua_remove(L, 3);
  }
  lsdr_args(L);
  lsdr_options(L, 4);
  sdr_pipeline *p = lsdr_pipeline_models(L, 1);
  const int src = 2, subs = 3, names = 4, opts = 5;
  if (lua_isnil(L, subs) || lua_isnil(L, names))
    return lsdr_error(L, "subfolder and weight_name are required, as in diffusers: "
                         "pipe:load_ip_adapter(\"h94/IP-Adapter\", \"models\", "
                         "\"ip-adapter_sd15.bin\")");
  if (lua_type(L, src) != LUA_TSTRING && !lsdr_is_plain_list(L, src))
    return lsdr_error(L,
                      "argument 1 (pretrained_model_name_or_path_or_dict): a repo id or folder "
                      "(or a list of them) expected, got %s",
                      lsdr_typename(L, src));
  const int n = lua_type(L, names) == LUA_TSTRING ? 1 : (int)lua_rawlen(L, names);
  if (n < 1 || n > SDR_IP_MAX)
    return lsdr_error(L, "weight_name: 1 to %d files expected, got %d", SDR_IP_MAX, n);
  if (lua_istable(L, src) && lua_rawlen(L, src) != 1 && (int)lua_rawlen(L, src) != n)
    return lsdr_error(L, "`weight_name` and `pretrained_model_name_or_path_or_dict` must have the "
                         "same length.");
  const char *paths[SDR_IP_MAX];
  for (int k = 0; k < n; k++) {
    const char *repo = entry(L, src, k, n, "pretrained_model_name_or_path_or_dict");
    const char *sub = entry(L, subs, k, n, "subfolder");
    const char *file = entry(L, names, k, n, "weight_name");
    const char *dir = resolve(L, repo, sub, file, opts);
    lua_pushfstring(L, "%s%s%s/%s", dir, *sub ? "/" : "", sub, file);
    paths[k] = lua_tostring(L, -1); /* kept on the stack */
  }
  /* the image encoder, from the first source, when the pipeline has none */
  const char *encoder = NULL;
  lua_getfield(L, opts, "image_encoder_folder");
  const int enc_idx = lua_gettop(L);
  if (!p->image_encoder && lua_type(L, enc_idx) == LUA_TSTRING) {
    const char *folder = lua_tostring(L, enc_idx);
    const char *sub = entry(L, subs, 0, n, "subfolder");
    if (!strchr(folder, '/'))
      lua_pushfstring(L, "%s%s%s", sub, *sub ? "/" : "", folder);
    else
      lua_pushstring(L, folder);
    const char *enc_sub = lua_tostring(L, -1);
    const char *dir = resolve(L, entry(L, src, 0, n, "pretrained_model_name_or_path_or_dict"),
                              enc_sub, NULL, opts);
    lua_pushfstring(L, "%s/%s", dir, enc_sub);
    encoder = lua_tostring(L, -1);
  } else if (!p->image_encoder) {
    fputs("warning: image_encoder is not loaded since `image_encoder_folder=None` passed. You "
          "will not be able to use `ip_adapter_image` when calling the pipeline with "
          "IP-Adapter.Use `ip_adapter_image_embeds` to pass pre-generated image embedding "
          "instead.\n",
          stderr);
  }
  if (sdr_pipeline_load_ip_adapter(p, paths, n, encoder) != 0)
    return lsdr_engine_error_advice(L, "a smaller model, or free other pipelines first");
  return 0;
}

int lsdr_pipe_set_ip_adapter_scale(lua_State *L) {
  lsdr_args(L);
  sdr_pipeline *p = lsdr_pipeline_models(L, 1);
  float scale[SDR_IP_MAX];
  int n = 1;
  if (lua_isnumber(L, 2)) {
    scale[0] = (float)lua_tonumber(L, 2);
  } else {
    n = (int)lua_rawlen(L, 2);
    if (n < 1 || n > SDR_IP_MAX)
      return lsdr_error(L, "scale: a number or a list of 1 to %d numbers expected", SDR_IP_MAX);
    for (int k = 0; k < n; k++) {
      lua_rawgeti(L, 2, k + 1);
      if (!lua_isnumber(L, -1))
        return lsdr_error(L, "scale: entry %d is a %s, not a number", k + 1, lsdr_typename(L, -1));
      scale[k] = (float)lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
  }
  if (sdr_pipeline_set_ip_adapter_scale(p, scale, n) != 0)
    return lsdr_engine_error(L);
  return 0;
}

int lsdr_pipe_unload_ip_adapter(lua_State *L) {
  lsdr_args(L);
  sdr_pipeline_unload_ip_adapter(lsdr_pipeline_models(L, 1));
  return 0;
}

/* One adapter's pictures at idx: an Image, a list of Images, or a tensor of pixel values. */
static void read_pictures(lua_State *L, int idx, int k, sdr_ip_input *in) {
  lsdr_tensor *t = lsdr_to_tensor(L, idx);
  if (t) {
    if (t->t.ndim != 4)
      lsdr_error(L,
                 "option 'ip_adapter_image': entry %d: pixel values (images, 3, height, "
                 "width) expected, got %d dimensions",
                 k + 1, t->t.ndim);
    memcpy(in->pixels_shape, t->t.shape, sizeof in->pixels_shape);
    in->pixels = lsdr_host_values(L, idx);
    return;
  }
  char what[64];
  snprintf(what, sizeof what, "ip_adapter_image[%d]", k + 1);
  in->images = lsdr_read_image_list(L, idx, what, &in->nimages);
}

void lsdr_read_ip_adapter_inputs(lua_State *L, int opts, sdr_generate *g) {
  lua_getfield(L, opts, "ip_adapter_image");
  const int img = lua_gettop(L);
  lua_getfield(L, opts, "ip_adapter_image_embeds");
  const int emb = lua_gettop(L);
  if (!lua_isnil(L, img) && !lua_isnil(L, emb))
    lsdr_error(L, "Provide either `ip_adapter_image` or `ip_adapter_image_embeds`. Cannot leave "
                  "both `ip_adapter_image` and `ip_adapter_image_embeds` defined.");
  if (lua_isnil(L, img) && lua_isnil(L, emb))
    return;
  int n = 1;
  const int single = !lua_isnil(L, img) && (lsdr_to_image(L, img) || lsdr_to_tensor(L, img));
  if (!single) {
    const int idx = lua_isnil(L, img) ? emb : img;
    if (!lsdr_is_plain_list(L, idx))
      lsdr_error(L,
                 lua_isnil(L, img) ? "`ip_adapter_image_embeds` has to be of type `list` but is %s"
                                   : "option 'ip_adapter_image': an Image, a Tensor or a list "
                                     "(one entry per IP-Adapter) expected, got %s",
                 lsdr_typename(L, idx));
    n = (int)lua_rawlen(L, idx);
  }
  if (n > SDR_IP_MAX)
    lsdr_error(L, "%d IP-Adapter inputs (at most %d)", n, SDR_IP_MAX);
  sdr_ip_input *in = lua_newuserdatauv(L, (size_t)n * sizeof *in, 0);
  memset(in, 0, (size_t)n * sizeof *in);
  for (int k = 0; k < n; k++) {
    if (single) {
      read_pictures(L, img, k, &in[k]);
      continue;
    }
    lua_rawgeti(L, lua_isnil(L, img) ? emb : img, k + 1);
    const int e = lua_gettop(L);
    if (!lua_isnil(L, img)) {
      read_pictures(L, e, k, &in[k]);
      continue;
    }
    lsdr_tensor *t = lsdr_to_tensor(L, e);
    if (!t)
      lsdr_error(L, "option 'ip_adapter_image_embeds': entry %d is a %s, not a Tensor", k + 1,
                 lsdr_typename(L, e));
    in[k].ndim = t->t.ndim;
    if (t->t.ndim < 1 || t->t.ndim > 4)
      lsdr_error(L, "`ip_adapter_image_embeds` has to be a list of 3D or 4D tensors but is %dD",
                 t->t.ndim);
    memcpy(in[k].shape, t->t.shape, (size_t)t->t.ndim * sizeof *in[k].shape);
    in[k].embeds = lsdr_host_values(L, e);
  }
  g->ip_inputs = in;
  g->nip_inputs = n;
}

/* pipe:prepare_ip_adapter_image_embeds(ip_adapter_image, ip_adapter_image_embeds, device,
 * num_images_per_prompt, do_classifier_free_guidance) -> a list of tensors, one per adapter,
 * as the call makes them (with guidance the negatives first). */
int lsdr_pipe_prepare_ip_adapter_image_embeds(lua_State *L) {
  lsdr_args(L);
  sdr_pipeline *p = lsdr_pipeline_models(L, 1);
  lua_createtable(L, 0, 2);
  const int opts = lua_gettop(L);
  lua_pushvalue(L, 2);
  lua_setfield(L, opts, "ip_adapter_image");
  lua_pushvalue(L, 3);
  lua_setfield(L, opts, "ip_adapter_image_embeds");
  sdr_backend *be = p->be;
  if (!lua_isnil(L, 4)) {
    int d = lsdr_parse_device(lua_tostring(L, 4));
    if (d < 0)
      return lsdr_argerror(L, 3, "\"cpu\" or \"cuda\"");
    be = lsdr_backend(L, (sdr_device)d);
  }
  const int N = (int)lua_tointeger(L, 5), guided = lua_toboolean(L, 6);
  if (N < 1)
    return lsdr_error(L, "num_images_per_prompt must be a positive number, got %d", N);
  sdr_generate g;
  memset(&g, 0, sizeof g);
  lsdr_read_ip_adapter_inputs(L, opts, &g);
  if (!g.nip_inputs)
    return lsdr_error(L, "ip_adapter_image or ip_adapter_image_embeds is required");
  g.num_images_per_prompt = N;
  float *embeds[SDR_IP_MAX] = {0};
  int ndim[SDR_IP_MAX];
  int64_t shapes[SDR_IP_MAX][4];
  /* stacked or repeated num_images_per_prompt times, as diffusers' method does */
  if (sdr_ip_image_embeds(p, &g, guided, N, 0, embeds, ndim, shapes) != 0)
    return lsdr_engine_error(L);
  lua_createtable(L, g.nip_inputs, 0);
  int rc = 0;
  for (int k = 0; k < g.nip_inputs; k++) {
    lsdr_tensor *t = lsdr_push_new_tensor(L, be, SDR_F32, ndim[k], shapes[k]);
    if (rc == 0)
      rc = sdr_upload(be, t->t.data, embeds[k], sdr_tensor_nbytes(&t->t));
    lua_rawseti(L, -2, k + 1);
  }
  for (int k = 0; k < g.nip_inputs; k++)
    free(embeds[k]);
  if (rc != 0)
    return lsdr_engine_error(L);
  return 1;
}

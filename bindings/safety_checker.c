/* bindings/safety_checker.c — pipe.safety_checker and pipe.feature_extractor: diffusers'
 * StableDiffusionSafetyChecker and transformers' CLIPImageProcessor as the pipeline holds
 * them (engine/safety_checker.h, engine/clip_image_processor.h).
 *
 * Each is a handle on its pipeline (its user value), so it runs what the pipeline holds
 * now, on the pipeline's device:
 *   pipe.feature_extractor(images, {return_tensors = "pt"}).pixel_values
 *   images, has_nsfw = pipe.safety_checker{images = x, clip_input = pixel_values}
 * the checker's call blacks out (zeroes) the flagged entries of images in place, as
 * diffusers' forward does.
 */
#include "bindings/safety_checker.h"

#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/image_processor.h"   // lsdr_read_images
#include "bindings/lsdr.h"              // lsdr_func, lsdr_error
#include "bindings/model_common.h"      // lsdr_model_metatable, lsdr_push_model_dtype, lsdr_set_int
#include "bindings/pipeline_internal.h" // lsdr_pipeline_models
#include "bindings/tensor_internal.h"   // lsdr_tensor_host_floats
#include "engine/error.h"               // sdr_last_error

#define LSDR_SAFETY "StableDiffusionSafetyChecker"
#define LSDR_FEATURES "CLIPImageProcessor"

static void push_handle(lua_State *L, int pipe, const char *tname) {
  pipe = lua_absindex(L, pipe);
  lua_newuserdatauv(L, 1, 1);
  lua_pushvalue(L, pipe);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, tname);
}

void lsdr_push_safety_checker(lua_State *L, int pipe) { push_handle(L, pipe, LSDR_SAFETY); }
void lsdr_push_feature_extractor(lua_State *L, int pipe) { push_handle(L, pipe, LSDR_FEATURES); }

/* The pipeline a handle at idx belongs to (a Lua error once it is closed). */
static sdr_pipeline *owner(lua_State *L, int idx) {
  lua_getiuservalue(L, idx, 1);
  sdr_pipeline *p = lsdr_pipeline_models(L, -1);
  lua_pop(L, 1);
  return p;
}

static sdr_safety_checker *checker(lua_State *L, sdr_pipeline **pp) {
  luaL_checkudata(L, 1, LSDR_SAFETY);
  sdr_pipeline *p = owner(L, 1);
  if (!p->safety_checker)
    lsdr_error(L, "the pipeline's safety checker was removed (pipe.safety_checker = nil)");
  if (pp)
    *pp = p;
  return p->safety_checker;
}

static const sdr_clip_image_processor *features(lua_State *L, int idx) {
  luaL_checkudata(L, idx, LSDR_FEATURES);
  const sdr_clip_image_processor *fe = owner(L, idx)->feature_extractor;
  if (!fe)
    lsdr_error(L, "the pipeline has no feature extractor");
  return fe;
}

/* ---- the safety checker ---------------------------------------------------------------- */

/* forward(clip_input, images): the arguments by position, or by name in one table. */
static int sc_call(lua_State *L) {
  lsdr_args(L);
  sdr_pipeline *p;
  sdr_safety_checker *sc = checker(L, &p);
  int clip = 2, images = 3;
  if (lua_istable(L, 2)) { /* a tensor is a userdata */
    lua_getfield(L, 2, "clip_input");
    lua_getfield(L, 2, "images");
    clip = lua_absindex(L, -2), images = lua_absindex(L, -1);
  }
  lsdr_tensor *pv = lsdr_to_tensor(L, clip);
  if (!pv || pv->t.ndim != 4 || pv->t.shape[1] != 3 || pv->t.shape[2] != pv->t.shape[3])
    return lsdr_error(L,
                      "clip_input: the feature extractor's pixel_values expected, a (B, 3, S, "
                      "S) tensor; got %s",
                      lsdr_typename(L, clip));
  const int64_t B = pv->t.shape[0], S = pv->t.shape[2];
  lsdr_tensor *img = lua_isnil(L, images) ? NULL : lsdr_to_tensor(L, images);
  if (!lua_isnil(L, images) && (!img || img->t.ndim < 1 || img->t.shape[0] != B))
    return lsdr_error(L,
                      "images: a tensor with %I pictures expected (the batch of "
                      "clip_input), got %s",
                      (lua_Integer)B, lsdr_typename(L, images));
  unsigned char *nsfw = lua_newuserdatauv(L, (size_t)B, 0);
  float *pixels = lsdr_tensor_host_floats(L, pv);
  float *scores = malloc((size_t)B * (SDR_SAFETY_SPECIAL + SDR_SAFETY_CONCEPTS) * sizeof *scores);
  if (!scores) {
    free(pixels);
    return luaL_error(L, "out of memory");
  }
  sdr_arena_mark mark = sdr_arena_get_mark(&p->arena);
  int rc = sdr_safety_checker_scores(sc, &p->arena, pixels, B, S, NULL, scores,
                                     scores + B * SDR_SAFETY_SPECIAL);
  if (rc == 0)
    rc = sdr_safety_checker_verdicts(sc, &p->arena, scores, scores + B * SDR_SAFETY_SPECIAL, B,
                                     nsfw);
  sdr_arena_release(&p->arena, mark);
  free(pixels);
  free(scores);
  if (rc != 0)
    return lsdr_engine_error(L);
  int flagged = 0;
  for (int64_t b = 0; b < B; b++) {
    if (!nsfw[b] || !img)
      continue;
    flagged = 1;
    sdr_tensor one;
    if (sdr_tensor_narrow0(&one, &img->t, b, 1) != 0 || sdr_fill(img->storage->be, &one, 0.0f) != 0)
      return lsdr_engine_error(L);
  }
  if (flagged)
    fputs("Potential NSFW content was detected in one or more images. A black image will be "
          "returned instead. Try again with a different prompt and/or seed.\n",
          stderr);
  lua_pushvalue(L, images);
  lua_createtable(L, (int)B, 0);
  for (int64_t b = 0; b < B; b++) {
    lua_pushboolean(L, nsfw[b]);
    lua_rawseti(L, -2, (lua_Integer)b + 1);
  }
  return 2;
}

static int sc_properties(lua_State *L) {
  sdr_safety_checker *sc = checker(L, NULL);
  const char *k = lua_tostring(L, 2);
  if (!k)
    return 0;
  if (strcmp(k, "dtype") == 0) {
    lsdr_push_model_dtype(L, &sc->weights);
  } else if (strcmp(k, "device") == 0) {
    lsdr_push_device(L, sc->be->device);
  } else if (strcmp(k, "config") == 0) { /* CLIPConfig's part the checker uses */
    const sdr_clip_vision_config *c = &sc->vision.cfg;
    lua_createtable(L, 0, 2);
    int t = lua_gettop(L);
    lsdr_set_int(L, t, "projection_dim", sc->projection_dim);
    lua_createtable(L, 0, 9);
    int v = lua_gettop(L);
    lsdr_set_int(L, v, "hidden_size", c->hidden_size);
    lsdr_set_int(L, v, "intermediate_size", c->intermediate_size);
    lsdr_set_int(L, v, "num_attention_heads", c->num_attention_heads);
    lsdr_set_int(L, v, "num_hidden_layers", c->num_hidden_layers);
    lsdr_set_int(L, v, "num_channels", c->num_channels);
    lsdr_set_int(L, v, "image_size", c->image_size);
    lsdr_set_int(L, v, "patch_size", c->patch_size);
    lsdr_set_str(L, v, "hidden_act", c->quick_gelu ? "quick_gelu" : "gelu");
    lsdr_set_num(L, v, "layer_norm_eps", c->layer_norm_eps);
    lua_setfield(L, t, "vision_config");
  } else {
    return 0;
  }
  return 1;
}

static int sc_tostring(lua_State *L) {
  sdr_safety_checker *sc = checker(L, NULL);
  lua_pushfstring(L, "<StableDiffusionSafetyChecker CLIP vision %dx%d, patch %d, %d layers>",
                  sc->vision.cfg.image_size, sc->vision.cfg.image_size, sc->vision.cfg.patch_size,
                  sc->vision.cfg.num_hidden_layers);
  return 1;
}

static int handle_gc(lua_State *L) {
  (void)L;
  return 0;
}

static const lsdr_func sc_methods[] = {
    {"StableDiffusionSafetyChecker:__call",
     sc_call,
     "diffusers' safety_checker(clip_input, images) (or {clip_input = ..., images = ...}): "
     "images with the flagged ones zeroed in place, and a flag per picture.",
     {{"clip_input", "any"}, {"images", "any", "nil"}}},
    {0}};

/* ---- the feature extractor ------------------------------------------------------------- */

static int fe_call(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  const sdr_clip_image_processor *fe = features(L, 1);
  lua_getfield(L, 3, "return_tensors");
  const char *rt = lua_tostring(L, -1);
  if (rt && strcmp(rt, "pt") != 0 && strcmp(rt, "np") != 0)
    return lsdr_error(L, "option 'return_tensors': \"pt\" or \"np\" expected, got \"%s\"", rt);
  sdr_image **imgs;
  int n;
  if (lsdr_read_images(L, 2, &imgs, &n) == 0)
    return lsdr_error(L, "argument 1 (images): an Image or a list of Images expected, got %s",
                      lsdr_typename(L, 2));
  float *px;
  int h, w;
  if (sdr_clip_image_processor_run(fe, (const sdr_image *const *)imgs, n, &px, &h, &w) != 0)
    return lsdr_engine_error(L);
  lua_createtable(L, 0, 1);
  lsdr_tensor *t =
      lsdr_push_new_tensor(L, lsdr_backend(L, SDR_DEVICE_CPU), SDR_F32, 4, (int64_t[]){n, 3, h, w});
  memcpy(t->t.data, px, (size_t)n * 3 * h * w * sizeof *px);
  free(px);
  lua_setfield(L, -2, "pixel_values");
  return 1;
}

static void push_size(lua_State *L, int shortest, int h, int w) {
  lua_createtable(L, 0, 2);
  if (shortest > 0) {
    lsdr_set_int(L, lua_gettop(L), "shortest_edge", shortest);
  } else {
    lsdr_set_int(L, lua_gettop(L), "height", h);
    lsdr_set_int(L, lua_gettop(L), "width", w);
  }
}

static void push_triple(lua_State *L, const double *v) {
  lua_createtable(L, 3, 0);
  for (int i = 0; i < 3; i++) {
    lua_pushnumber(L, v[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

static int fe_properties(lua_State *L) {
  const sdr_clip_image_processor *fe = features(L, 1);
  const char *k = lua_tostring(L, 2);
  if (!k)
    return 0;
  const struct {
    const char *name;
    int value;
  } flags[] = {{"do_resize", fe->do_resize},
               {"do_center_crop", fe->do_center_crop},
               {"do_rescale", fe->do_rescale},
               {"do_normalize", fe->do_normalize},
               {"do_convert_rgb", fe->do_convert_rgb}};
  for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
    if (strcmp(k, flags[i].name) == 0) {
      lua_pushboolean(L, flags[i].value);
      return 1;
    }
  if (strcmp(k, "size") == 0)
    push_size(L, fe->shortest_edge, fe->size_h, fe->size_w);
  else if (strcmp(k, "crop_size") == 0)
    push_size(L, 0, fe->crop_h, fe->crop_w);
  else if (strcmp(k, "resample") == 0)
    lua_pushinteger(L, fe->resample);
  else if (strcmp(k, "rescale_factor") == 0)
    lua_pushnumber(L, fe->rescale_factor);
  else if (strcmp(k, "image_mean") == 0)
    push_triple(L, fe->mean);
  else if (strcmp(k, "image_std") == 0)
    push_triple(L, fe->std);
  else
    return 0;
  return 1;
}

static int fe_tostring(lua_State *L) {
  const sdr_clip_image_processor *fe = features(L, 1);
  lua_pushfstring(L, "<CLIPImageProcessor crop %dx%d>", fe->crop_w, fe->crop_h);
  return 1;
}

static const lsdr_param fe_options[] = {
    {"return_tensors", "string", "\"pt\"", "\"pt\" or \"np\": pixel_values as a tensor"}, {0}};

static const lsdr_func fe_methods[] = {
    {"CLIPImageProcessor:__call",
     fe_call,
     "transformers' feature_extractor(images, return_tensors=\"pt\"): {pixel_values = (B, 3, H, "
     "W) tensor}.",
     {{"images", "any"}, {"opts", "table", "nil"}},
     fe_options},
    {0}};

void lsdr_open_safety_checker(lua_State *L) {
  lsdr_model_metatable(L, LSDR_SAFETY, sc_methods, sc_properties, handle_gc, sc_tostring);
  lsdr_model_metatable(L, LSDR_FEATURES, fe_methods, fe_properties, handle_gc, fe_tostring);
}

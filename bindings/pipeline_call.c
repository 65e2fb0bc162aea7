/* bindings/pipeline_call.c — a pipeline's call, pipe{...} with diffusers' arguments and
 * defaults (the prompts, the pictures and masks, the generators, the callbacks, the output
 * types), and pipe:encode_prompt, for every pipeline class; the classes' call options. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/padding_mask_crop.h" // lsdr_mask_crop_prepare, lsdr_mask_crop_overlay
#include "bindings/clip_tokenizer.h"    // lsdr_clip_tokenizer_warn_overlong, lsdr_to_clip_tokenizer
#include "bindings/generator.h"         // lsdr_to_generator, lsdr_default_generator
#include "bindings/image.h"             // lsdr_to_image, lsdr_push_image
#include "bindings/lsdr.h"
#include "bindings/model_common.h" // lsdr_output_kind
#include "bindings/pipeline_internal.h"
#include "bindings/scheduler.h" // lsdr_to_scheduler, lsdr_read_timesteps
#include "bindings/tensor.h"
#include "bindings/tensor_internal.h"
#include "engine/error.h"
#include "engine/image_processor.h" // sdr_tensor_to_images, sdr_tensor_to_np
#include "engine/pipeline.h"
#include "engine/pipeline_img2img.h"  // sdr_img2img_rgba
#include "engine/textual_inversion.h" // sdr_ti_convert_prompt

int lsdr_read_strings(lua_State *L, int idx, const char *what, const char ***out) {
  if (lua_type(L, idx) == LUA_TSTRING) {
    *out = lua_newuserdatauv(L, sizeof **out, 0);
    (*out)[0] = lua_tostring(L, idx);
    return 1;
  }
  int n = (int)lua_rawlen(L, idx);
  if (n < 1)
    lsdr_error(L, "option '%s': a string or a non-empty list of strings expected", what);
  *out = lua_newuserdatauv(L, (size_t)n * sizeof **out, 0);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, idx, i + 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      lsdr_error(L, "option '%s': entry %d is a %s, not a string", what, i + 1,
                 lsdr_typename(L, -1));
    (*out)[i] = lua_tostring(L, -1);
    lua_pop(L, 1); /* the list keeps the string */
  }
  return n;
}

int lsdr_read_strings_for(lua_State *L, int idx, const char *what, int n, const char ***out) {
  if (lua_type(L, idx) != LUA_TSTRING || n <= 1)
    return lsdr_read_strings(L, idx, what, out);
  *out = lua_newuserdatauv(L, (size_t)n * sizeof **out, 0);
  for (int i = 0; i < n; i++)
    (*out)[i] = lua_tostring(L, idx);
  return n;
}

typedef struct step_ctx {
  lua_State *L;
  int pipe_idx;
  int fn_idx;                   /* callback_on_step_end, or 0 */
  int legacy_idx, legacy_every; /* callback and callback_steps, or 0 */
  char error[512];
} step_ctx;

/* A float32 copy of the latents, pushed as a Lua tensor on their device. */
static lsdr_tensor *push_latents(lua_State *L, sdr_backend *be, const sdr_tensor *latents) {
  lsdr_tensor *copy = lsdr_push_new_tensor(L, be, SDR_F32, latents->ndim, latents->shape);
  if (sdr_affine(be, &copy->t, latents, 1.0f, 0.0f) != 0)
    return NULL;
  return copy;
}

/* latents = the tensor a callback handed back: from its device or from the host. */
static int take_latents(sdr_backend *be, sdr_tensor *latents, const sdr_tensor *back) {
  if (back->device == latents->device)
    return sdr_affine(be, latents, back, 1.0f, 0.0f);
  if (back->device == SDR_DEVICE_CPU)
    return sdr_upload(be, latents->data, back->data, sdr_tensor_nbytes(latents));
  return sdr_fail("the latents it returns are on %s, the pipeline on %s",
                  sdr_device_name(back->device), sdr_device_name(latents->device));
}

/* The run stops with who's error: the Lua error at the top after a failed call
 * (lua_error = 1), else the engine's. */
static int step_failed(step_ctx *c, int top, const char *who, int lua_error) {
  lua_State *L = c->L;
  const char *msg = !lua_error                       ? sdr_last_error()
                    : lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                     : luaL_typename(L, -1);
  snprintf(c->error, sizeof c->error, "%s: %s", who, msg);
  lua_settop(L, top);
  return sdr_fail("%s", c->error);
}

/* After each step, as diffusers' loop: callback_on_step_end(pipe, i, t, {latents = Tensor})
 * -> nil or {latents = Tensor}; then the older callback(i, t, latents) every
 * callback_steps steps (a copy: Lua tensors have no in-place operations). */
static int on_step(void *ud, int step, double t, sdr_tensor *latents) {
  step_ctx *c = ud;
  lua_State *L = c->L;
  int top = lua_gettop(L);
  sdr_backend *be = lsdr_backend(L, latents->device);
  if (c->fn_idx) {
    lua_pushvalue(L, c->fn_idx);
    lua_pushvalue(L, c->pipe_idx);
    lua_pushinteger(L, step);
    lua_pushnumber(L, t);
    lua_createtable(L, 0, 1);
    if (!push_latents(L, be, latents))
      return step_failed(c, top, "callback_on_step_end", 0);
    lua_setfield(L, -2, "latents");
    if (lua_pcall(L, 4, 1, 0) != LUA_OK)
      return step_failed(c, top, "callback_on_step_end", 1);
    if (lua_istable(L, -1) && lua_getfield(L, -1, "latents") != LUA_TNIL) {
      lsdr_tensor *back = lsdr_to_tensor(L, -1);
      if (!back || back->t.dtype != SDR_F32 || !sdr_tensor_same_shape(&back->t, latents)) {
        lua_settop(L, top);
        return sdr_fail("callback_on_step_end: the latents it returns must be a float32 tensor "
                        "of the same shape");
      }
      if (take_latents(be, latents, &back->t) != 0)
        return step_failed(c, top, "callback_on_step_end", 0);
    }
    lua_settop(L, top);
  }
  if (c->legacy_idx && step % c->legacy_every == 0) {
    lua_pushvalue(L, c->legacy_idx);
    lua_pushinteger(L, step); /* step_idx: i // scheduler.order, and every order is 1 */
    lua_pushnumber(L, t);
    if (!push_latents(L, be, latents))
      return step_failed(c, top, "callback", 0);
    if (lua_pcall(L, 3, 0, 0) != LUA_OK)
      return step_failed(c, top, "callback", 1);
    lua_settop(L, top);
  }
  return 0;
}

const float *lsdr_host_values(lua_State *L, int idx) {
  lsdr_tensor *t = lsdr_push_float32(L, idx);
  if (t->t.device == SDR_DEVICE_CPU)
    return t->t.data;
  size_t bytes = sdr_tensor_nbytes(&t->t);
  float *host = lua_newuserdatauv(L, bytes ? bytes : 1, 0);
  if (sdr_download(t->storage->be, host, t->t.data, bytes) != 0)
    lsdr_engine_error(L);
  return host;
}

const float *lsdr_host_floats(lua_State *L, int opts, const char *name, int ndim, int64_t *shape) {
  lua_getfield(L, opts, name);
  lsdr_tensor *t = lsdr_to_tensor(L, -1);
  if (!t)
    lsdr_error(L, "option '%s': a Tensor expected, got %s", name, lsdr_typename(L, -1));
  if (t->t.ndim != ndim)
    lsdr_error(L, "option '%s': a %d-dimensional tensor expected, got %d dimensions", name, ndim,
               t->t.ndim);
  memcpy(shape, t->t.shape, (size_t)ndim * sizeof *shape);
  return lsdr_host_values(L, lua_gettop(L));
}

const sdr_image **lsdr_read_image_list(lua_State *L, int idx, const char *name, int *n) {
  const sdr_image *one = lsdr_to_image(L, idx);
  if (!one && !lua_istable(L, idx))
    lsdr_error(L, "option '%s': an Image, a list of Images or a Tensor expected, got %s", name,
               lsdr_typename(L, idx));
  *n = one ? 1 : (int)lua_rawlen(L, idx);
  if (*n < 1)
    lsdr_error(L, "option '%s': an empty list", name);
  const sdr_image **list = lua_newuserdatauv(L, (size_t)*n * sizeof *list, 0);
  list[0] = one;
  for (int i = 0; !one && i < *n; i++) {
    lua_rawgeti(L, idx, i + 1);
    list[i] = lsdr_to_image(L, -1);
    if (!list[i])
      lsdr_error(L, "option '%s': entry %d is a %s, not an Image", name, i + 1,
                 lsdr_typename(L, -1));
    lua_pop(L, 1);
  }
  return list;
}

/* img2img's picture, the option at idx: an Image, a list of them, or a tensor of pictures
 * (torch's (B, 3, H, W) or numpy's (B, H, W, 3), either without the batch too) or of
 * latents (B, 4, h, w). What g points into stays on the stack. */
static void read_image(lua_State *L, int idx, sdr_generate *g) {
  if ((g->image = lsdr_to_image(L, idx)))
    return;
  lsdr_tensor *t = lsdr_to_tensor(L, idx);
  if (t) {
    const int nd = t->t.ndim;
    if (nd != 3 && nd != 4)
      lsdr_error(L, "option 'image': a tensor of 3 or 4 dimensions expected, got %d", nd);
    int64_t s[4] = {1, 1, 1, 1};
    memcpy(s + 4 - nd, t->t.shape, (size_t)nd * sizeof *s);
    const float *x = lsdr_host_values(L, idx);
    int64_t *gs = g->image_tensor_shape;
    if (s[1] == 3 || s[1] == 4) { /* torch's layout */
      memcpy(gs, s, sizeof g->image_tensor_shape);
      g->image_tensor = x;
      return;
    }
    if (s[3] != 3)
      lsdr_error(L, "option 'image': pictures (batch, 3, height, width) or (batch, height, width, "
                    "3), or latents (batch, 4, h, w) expected");
    /* numpy's (B, H, W, 3), as output_type = "np" gives them: numpy_to_pt */
    const int64_t B = s[0], H = s[1], W = s[2];
    float *nchw = lua_newuserdatauv(L, (size_t)(B * 3 * H * W) * sizeof *nchw, 0);
    for (int64_t b = 0; b < B; b++)
      for (int64_t c = 0; c < 3; c++)
        for (int64_t i = 0; i < H * W; i++)
          nchw[(b * 3 + c) * H * W + i] = x[(b * H * W + i) * 3 + c];
    int64_t shape[4] = {B, 3, H, W};
    memcpy(gs, shape, sizeof shape);
    g->image_tensor = nchw;
    return;
  }
  int n;
  const sdr_image **list = lsdr_read_image_list(L, idx, "image", &n);
  if (n == 1)
    g->image = list[0];
  else {
    g->images = list;
    g->nimages = n;
  }
}

/* A1111's "parameters" text, which image viewers and web UIs read. */
static void describe(luaL_Buffer *b, const char *prompt, const char *neg, int steps,
                     const char *sampler, float cfg, long long seed, int w, int h,
                     const char *model, double strength, int img2img) {
  char line[512];
  luaL_addstring(b, prompt);
  if (neg && *neg) {
    luaL_addstring(b, "\nNegative prompt: ");
    luaL_addstring(b, neg);
  }
  snprintf(line, sizeof line,
           "\nSteps: %d, Sampler: %s, CFG scale: %g, Seed: %lld, Size: %dx%d, Model: %s", steps,
           sampler, cfg, seed, w, h, model);
  luaL_addstring(b, line);
  if (img2img) {
    snprintf(line, sizeof line, ", Denoising strength: %g", strength);
    luaL_addstring(b, line);
  }
}

static int get_int(lua_State *L, int t, const char *k) {
  lua_getfield(L, t, k);
  int v = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}

static double get_num(lua_State *L, int t, const char *k) {
  lua_getfield(L, t, k);
  double v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

/* Inpainting's picture and mask: Images (or lists of them); the strength. What g points
 * into stays on the stack. */
static void read_inpaint(lua_State *L, int opts, sdr_generate *g) {
  lua_getfield(L, opts, "image");
  if (lua_isnil(L, -1))
    lsdr_error(L, "option 'image': the picture to inpaint is missing");
  read_image(L, lua_gettop(L), g);
  lua_getfield(L, opts, "mask_image");
  int idx = lua_gettop(L);
  lsdr_tensor *t = lsdr_to_tensor(L, idx);
  if (t) { /* (H, W), (B, H, W) or (B, 1, H, W), as mask_processor.preprocess takes them */
    const int nd = t->t.ndim;
    if (nd < 2 || nd > 4)
      lsdr_error(L, "option 'mask_image': a tensor of 2 to 4 dimensions expected, got %d", nd);
    int64_t *ms = g->mask_tensor_shape;
    ms[0] = nd == 2 ? 1 : t->t.shape[0];
    ms[1] = nd == 4 ? t->t.shape[1] : 1;
    ms[2] = t->t.shape[nd - 2];
    ms[3] = t->t.shape[nd - 1];
    g->mask_tensor = lsdr_host_values(L, idx);
  } else {
    g->mask_images = lsdr_read_image_list(L, idx, "mask_image", &g->nmasks);
  }
  g->strength = get_num(L, opts, "strength");
  lua_getfield(L, opts, "masked_image_latents"); /* SD's and SDXL's inpainting only */
  if (!lua_isnil(L, -1))
    g->masked_image_latents =
        lsdr_host_floats(L, opts, "masked_image_latents", 4, g->masked_image_latents_shape);
}

/* The engine's error; when the GPU ran out of memory, with what to try. */
int lsdr_engine_error_advice(lua_State *L, const char *what_to_try) {
  const char *msg = sdr_last_error();
  if (strstr(msg, "out of GPU memory"))
    return lsdr_error(L, "%s; try %s", msg, what_to_try);
  return lsdr_error(L, "%s", msg);
}

int lsdr_is_plain_list(lua_State *L, int idx) {
  if (!lua_istable(L, idx) || lua_rawlen(L, idx) == 0)
    return 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TNUMBER) { /* {"a", steps = 5}: an options table's mistake */
      lua_pop(L, 1);
      return 0;
    }
  }
  return 1;
}

/* pipe("a prompt", {...}) or pipe({"a", "b"}, {...}): diffusers' positional prompt,
 * folded into the options table at 2. */
static void positional_prompt(lua_State *L) {
  int is_list = lsdr_is_plain_list(L, 2);
  if (lua_type(L, 2) != LUA_TSTRING && !is_list) {
    if (!lua_isnil(L, 3))
      lsdr_error(L, "argument 2: options come second only after a prompt (pipe(\"a cat\", "
                    "{...})); otherwise all go in one table");
    lua_settop(L, 2);
    return;
  }
  lua_newtable(L);
  if (lua_istable(L, 3)) {
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    }
  }
  if (lua_getfield(L, -1, "prompt") != LUA_TNIL)
    lsdr_error(L, "the prompt is given twice: as the first argument and as option 'prompt'");
  lua_pop(L, 1);
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "prompt");
  lua_replace(L, 2);
  lua_settop(L, 2);
}

/* The parts live in Lua objects: a closed or replaced one is noticed here. Points the
 * pipeline at this pipe's tokenizer and scheduler; returns the parts' index. */
static int bind_parts(lua_State *L, lsdr_pipe *pp) {
  sdr_pipeline *p = &pp->core->p;
  lsdr_pipe_own_config(pp);
  lsdr_push_pipe_parts(L, 1);
  int parts = lua_gettop(L);
  lua_getfield(L, parts, "tokenizer");
  p->tokenizer = lsdr_to_clip_tokenizer(L, -1);
  lua_getfield(L, parts, "scheduler");
  p->scheduler = lsdr_to_scheduler(L, -1);
  lua_pop(L, 2);
  if (!p->tokenizer && p->text_encoder.layers) /* an SDXL refiner has none */
    lsdr_error(L, "the pipeline's tokenizer was closed");
  if (sdr_pipeline_is_xl(p)) {
    lua_getfield(L, parts, "tokenizer_2");
    p->tokenizer_2 = lsdr_to_clip_tokenizer(L, -1);
    lua_pop(L, 1);
    if (!p->tokenizer_2)
      lsdr_error(L, "the pipeline's tokenizer_2 was closed");
  }
  if (!p->scheduler)
    lsdr_error(L, "pipe.scheduler is not a scheduler");
  return parts;
}

/* prompt (or prompt_embeds), negative_prompt (or negative_prompt_embeds) from the options
 * at opts into g; the engine says which when both or neither are given. */
/* maybe_convert_prompt (a textual inversion's multi-vector tokens spelled out) on n
 * strings in place; the new strings are kept in the table at keep. */
static void convert_prompts(lua_State *L, const sdr_clip_tokenizer *tok, const char **s, int n,
                            int keep) {
  for (int i = 0; tok && s && i < n; i++) {
    char *c = sdr_ti_convert_prompt(tok, s[i]);
    if (!c)
      lsdr_engine_error(L);
    if (strcmp(c, s[i]) != 0) {
      lua_pushstring(L, c);
      s[i] = lua_tostring(L, -1);
      lua_rawseti(L, keep, (lua_Integer)lua_rawlen(L, keep) + 1);
    }
    free(c);
  }
}

static void read_prompts(lua_State *L, int opts, const sdr_pipeline *p, sdr_generate *g) {
  /* the tokenizer the first prompts meet: an SDXL refiner's second, its only one */
  const sdr_clip_tokenizer *tok = p->tokenizer ? p->tokenizer : p->tokenizer_2;
  const char **prompts = NULL, **negs = NULL;
  int prompt_is_list = 0;
  lua_getfield(L, opts, "prompt_embeds");
  int has_embeds = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (has_embeds) {
    g->prompt_embeds = lsdr_host_floats(L, opts, "prompt_embeds", 3, g->prompt_embeds_shape);
    g->nprompts = (int)g->prompt_embeds_shape[0];
  }
  lua_getfield(L, opts, "prompt");
  if (!lua_isnil(L, -1)) {
    g->nprompts = lsdr_read_strings(L, lua_gettop(L), "prompt", &prompts);
    g->prompts = prompts;
    prompt_is_list = lua_istable(L, -2);
  } else if (!has_embeds) {
    lsdr_error(L, "option 'prompt' is required (a string or a list of strings), or "
                  "'prompt_embeds'");
  }
  lua_getfield(L, opts, "negative_prompt_embeds");
  if (!lua_isnil(L, -1))
    g->negative_prompt_embeds =
        lsdr_host_floats(L, opts, "negative_prompt_embeds", 3, g->negative_embeds_shape);
  lua_getfield(L, opts, "negative_prompt");
  if (!lua_isnil(L, -1) && sdr_pipeline_is_xl(p)) {
    /* SDXL's encode_prompt: one negative string for every prompt */
    g->nnegative = lsdr_read_strings_for(L, lua_gettop(L), "negative_prompt", g->nprompts, &negs);
    g->negative_prompts = negs;
  } else if (!lua_isnil(L, -1)) {
    if (prompts && prompt_is_list != lua_istable(L, -1))
      lsdr_error(L, "`negative_prompt` should be the same type to `prompt`, but got %s != %s",
                 luaL_typename(L, -1), prompt_is_list ? "table" : "string");
    g->nnegative = lsdr_read_strings(L, lua_gettop(L), "negative_prompt", &negs);
    g->negative_prompts = negs;
  }
  if (sdr_pipeline_is_xl(p)) {
    /* SDXL's second tokenizer gets the prompts as given, then spelled out by its own tokens
     * (maybe_convert_prompt runs once per tokenizer; xl_prompts_2 does it, after prompt_2 and
     * negative_prompt_2 may have replaced these) */
    for (int k = 0; k < 2; k++) {
      const char **src = k ? negs : prompts;
      const int n = k ? g->nnegative : g->nprompts;
      if (!src)
        continue;
      const char **copy = lua_newuserdatauv(L, (size_t)n * sizeof *copy, 0);
      memcpy(copy, src, (size_t)n * sizeof *copy);
      *(k ? &g->negative_prompts_2 : &g->prompts_2) = copy;
      *(k ? &g->nnegative_2 : &g->nprompts_2) = n;
    }
  }
  lua_newtable(L); /* encode_prompt's maybe_convert_prompt, on both */
  convert_prompts(L, tok, prompts, g->nprompts, lua_gettop(L));
  convert_prompts(L, tok, negs, g->nnegative, lua_gettop(L));
}

/* SDXL's encode_prompt: the second tokenizer's prompts spelled out by its own textual
 * inversion tokens (a refiner's first prompts were, in read_prompts). */
static void xl_prompts_2(lua_State *L, const sdr_pipeline *p, sdr_generate *g) {
  if (!p->tokenizer || !p->tokenizer_2)
    return;
  lua_newtable(L);
  convert_prompts(L, p->tokenizer_2, (const char **)g->prompts_2, g->nprompts_2, lua_gettop(L));
  convert_prompts(L, p->tokenizer_2, (const char **)g->negative_prompts_2, g->nnegative_2,
                  lua_gettop(L));
}

/* diffusers' encode_prompt warns when CLIP's limit cuts a prompt; so do we, in its words,
 * before the work starts. Its list holds, for each prompt of the batch, what lies past
 * the limit once all are padded to the longest: the cut text, or pad tokens. */
static void warn_truncated(const sdr_pipeline *p, const sdr_generate *g) {
  if (!g->prompts || g->prompt_embeds || !p->tokenizer)
    return;
  const int max_len = sdr_clip_tokenizer_model_max_length(p->tokenizer);
  char **cut;
  size_t *lengths = malloc((size_t)g->nprompts * sizeof *lengths + 1);
  if (!lengths ||
      sdr_clip_tokenizer_cut_texts(p->tokenizer, g->prompts, g->nprompts, max_len, &cut, lengths) !=
          0 ||
      !cut) {
    free(lengths);
    return; /* an encoding error is the encode's to report */
  }
  /* diffusers' untruncated tokenization of the prompts comes first, and transformers
   * warns there about the first one too long for the model */
  for (int i = 0; i < g->nprompts; i++)
    lsdr_clip_tokenizer_warn_overlong(p->tokenizer, lengths[i]);
  free(lengths);
  fprintf(stderr,
          "The following part of your input was truncated because CLIP can only handle "
          "sequences up to %d tokens: [",
          max_len);
  for (int i = 0; i < g->nprompts; i++) {
    /* as Python's repr of a str: double quotes when that saves escaping a single one */
    const char q = strchr(cut[i], '\'') && !strchr(cut[i], '"') ? '"' : '\'';
    fprintf(stderr, "%s%c", i ? ", " : "", q);
    for (const char *c = cut[i]; *c; c++) {
      if (*c == q || *c == '\\')
        fputc('\\', stderr);
      fputc(*c, stderr);
    }
    fputc(q, stderr);
  }
  fputs("]\n", stderr);
  sdr_clip_cut_texts_free(cut, g->nprompts);
}

/* The LoRA scale of a call: cross_attention_kwargs["scale"] (under `kwargs`), or
 * encode_prompt's lora_scale (kwargs NULL). */
static void read_lora_scale(lua_State *L, int opts, const char *kwargs, sdr_generate *g) {
  if (kwargs) {
    g->has_lora_scale = lsdr_cross_attention_scale(L, opts, &g->lora_scale);
    return;
  }
  lua_getfield(L, opts, "lora_scale");
  if (!lua_isnil(L, -1)) {
    if (!lua_isnumber(L, -1))
      lsdr_error(L, "option 'lora_scale': a number expected, got %s", luaL_typename(L, -1));
    g->has_lora_scale = 1;
    g->lora_scale = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
}

int lsdr_pipe_call(lua_State *L) {
  lsdr_args(L);
  positional_prompt(L);
  lsdr_options(L, 1);
  lsdr_pipe *pp = lsdr_check_pipe(L, 1);
  sdr_pipeline *p = &pp->core->p;
  const int opts = 2;
  sdr_generate g;
  memset(&g, 0, sizeof g);
  int64_t latents_shape[4];

  int parts = bind_parts(L, pp);
  g.progress_disable = pp->progress_disable;
  g.progress_desc = pp->progress_desc;
  read_prompts(L, opts, p, &g);
  if (lsdr_kind_xl(pp->kind)) {
    lsdr_read_xl_options(L, opts, &g);
    xl_prompts_2(L, p, &g);
  }
  /* SDXL img2img and inpainting: _get_add_time_ids with the negative sizes' defaults and
   * the aesthetic scores */
  g.xl_img2img = pp->kind == LSDR_KIND_XL_I2I || pp->kind == LSDR_KIND_XL_INPAINT ||
                 pp->kind == LSDR_KIND_XL_CONTROLNET_I2I ||
                 pp->kind == LSDR_KIND_XL_CONTROLNET_INPAINT;
  const char *const *prompts = g.prompts, *const *negs = g.negative_prompts;
  g.num_inference_steps = get_int(L, opts, "num_inference_steps");
  lua_getfield(L, opts, "timesteps"); /* retrieve_timesteps: their count is the step count */
  if (!lua_isnil(L, -1)) {
    g.timesteps = lsdr_read_timesteps(L, -1, "timesteps", &g.ntimesteps);
    g.num_inference_steps = g.ntimesteps;
  }
  g.guidance_scale = (float)get_num(L, opts, "guidance_scale");
  if (lsdr_pipe_lcm(pp)) {
    g.no_guidance = 1;
    lua_getfield(L, opts, "original_inference_steps");
    g.original_inference_steps = lua_isnil(L, -1) ? 0 : (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (g.original_inference_steps < 0)
      return lsdr_error(L, "option 'original_inference_steps': a positive integer expected");
  }
  g.num_images_per_prompt = get_int(L, opts, "num_images_per_prompt");
  g.eta = get_num(L, opts, "eta");
  g.guidance_rescale = (float)get_num(L, opts, "guidance_rescale");
  const int rescales = pp->kind == LSDR_KIND_T2I || pp->kind == LSDR_KIND_XL_CONTROLNET_INPAINT ||
                       (lsdr_kind_xl(pp->kind) && !lsdr_pipe_controlnet(pp));
  if (!rescales && g.guidance_rescale != 0) {
    /* diffusers' SD img2img, inpainting and ControlNets take it into **kwargs and never use it */
    fprintf(stderr, "warning: guidance_rescale is not used by %s (nor by diffusers')\n",
            lsdr_pipe_class_name(pp));
    g.guidance_rescale = 0;
  }
  lua_getfield(L, opts, "clip_skip");
  g.clip_skip = lua_isnil(L, -1) ? 0 : (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (g.clip_skip < 0)
    return lsdr_error(L, "option 'clip_skip': a non-negative integer expected");
  read_lora_scale(L, opts, "cross_attention_kwargs", &g);

  if (pp->kind == LSDR_KIND_UPSCALE) { /* the picture to upscale, beside the latents */
    lua_getfield(L, opts, "image");
    if (lua_isnil(L, -1))
      return lsdr_error(L, "`image` input cannot be undefined.");
    read_image(L, lua_gettop(L), &g);
    g.upscale = 1;
    g.noise_level = get_int(L, opts, "noise_level");
  }
  if (pp->kind == LSDR_KIND_PIX2PIX) { /* the picture to edit, beside txt2img's noise */
    lua_getfield(L, opts, "image");
    if (lua_isnil(L, -1))
      return lsdr_error(L, "`image` input cannot be undefined.");
    read_image(L, lua_gettop(L), &g);
    g.pix2pix = 1;
    g.image_guidance_scale = (float)get_num(L, opts, "image_guidance_scale");
  }
  if (lsdr_pipe_img2img(pp)) {
    lua_getfield(L, opts, "image");
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_getfield(L, opts, "init_image"); /* the old name, as older notebooks use it */
    }
    read_image(L, lua_gettop(L), &g);
    g.strength = get_num(L, opts, "strength");
    /* ControlNet img2img's image_processor makes the pictures RGB and resizes them to height
     * and width; plain img2img takes those into **kwargs and never uses them: code written
     * for txt2img runs, with pictures of the image's size */
    g.image_convert_rgb = lsdr_pipe_controlnet(pp);
    lua_getfield(L, opts, "height");
    lua_getfield(L, opts, "width");
    if (lsdr_pipe_controlnet(pp)) {
      g.height = lua_isnil(L, -2) ? 0 : (int)lua_tointeger(L, -2);
      g.width = lua_isnil(L, -1) ? 0 : (int)lua_tointeger(L, -1);
      if (g.height < 0 || g.width < 0)
        return lsdr_error(L, "height and width must be positive");
    } else if (!lua_isnil(L, -1) || !lua_isnil(L, -2)) {
      fprintf(stderr,
              "warning: height and width are not used by %s (nor by diffusers'): the pictures "
              "take the image's size\n",
              LSDR_I2I);
    }
    lua_pop(L, 2);
  } else {
    lua_getfield(L, opts, "height");
    g.height = lua_isnil(L, -1) ? 0 : (int)lua_tointeger(L, -1);
    lua_getfield(L, opts, "width");
    g.width = lua_isnil(L, -1) ? 0 : (int)lua_tointeger(L, -1);
    lua_pop(L, 2);
    if (g.height < 0 || g.width < 0)
      return lsdr_error(L, "height and width must be positive");
    lua_getfield(L, opts, "latents");
    if (!lua_isnil(L, -1)) /* checked against the shape the run makes, below */
      g.latents = lsdr_host_floats(L, opts, "latents", 4, latents_shape);
  }
  lsdr_mask_crop crop = {0};
  if (lsdr_pipe_inpaint(pp)) {
    const int f = sdr_vae_scale_factor(&p->vae);
    lsdr_mask_crop_prepare(L, opts, g.height, g.width, p->unet.cfg.sample_size * f, f,
                           lsdr_pipe_controlnet(pp), &crop);
    read_inpaint(L, opts, &g);
  }
  lsdr_read_ip_adapter_inputs(L, opts, &g);
  if (lsdr_kind_has_adapter(pp->kind))
    lsdr_read_adapters(L, opts, parts, p->be, lsdr_pipe_keep_dtype(pp, p->be, -1),
                       lsdr_kind_xl(pp->kind), &g);
  if (lsdr_pipe_controlnet(pp))
    lsdr_read_controls(L, opts,
                       lsdr_pipe_img2img(pp) || lsdr_pipe_inpaint(pp) ? "control_image" : "image",
                       parts, p->be, lsdr_pipe_keep_dtype(pp, p->be, -1), &g);

  /* generator: one, a list (one per image), or the device's default (torch.manual_seed). */
  lua_getfield(L, opts, "generator");
  int gen_idx = lua_gettop(L);
  sdr_generator *one[1];
  sdr_generator **gens = one;
  long long seed0;
  if (lua_isnil(L, gen_idx)) {
    /* diffusers' randn_tensor without a generator draws on the pipeline's device */
    one[0] = lsdr_default_generator(L, p->be->device == SDR_DEVICE_CPU ? SDR_GENERATOR_CPU
                                                                       : SDR_GENERATOR_CUDA);
    g.ngenerators = 1;
  } else if (lsdr_to_generator(L, gen_idx)) {
    one[0] = lsdr_to_generator(L, gen_idx);
    g.ngenerators = 1;
  } else if (lua_istable(L, gen_idx)) {
    int n = (int)lua_rawlen(L, gen_idx);
    if (n < 1)
      return lsdr_error(L, "option 'generator': an empty list");
    gens = lua_newuserdatauv(L, (size_t)n * sizeof *gens, 0);
    for (int i = 0; i < n; i++) {
      lua_rawgeti(L, gen_idx, i + 1);
      gens[i] = lsdr_to_generator(L, -1);
      if (!gens[i])
        return lsdr_error(L, "option 'generator': entry %d is not a torch.Generator", i + 1);
      lua_pop(L, 1);
    }
    g.ngenerators = n;
  } else {
    return lsdr_error(L, "option 'generator': a torch.Generator or a list of them expected");
  }
  g.generators = gens;
  g.default_generator = lsdr_default_generator(L, SDR_GENERATOR_CPU);
  for (int i = 0; i < g.ngenerators; i++)
    lsdr_generator_fit_device(gens[i]);
  seed0 = (long long)gens[0]->seed;

  lua_getfield(L, opts, "output_type");
  const char *output_type = lua_tostring(L, -1);
  int want_pil = strcmp(output_type, "pil") == 0, want_np = strcmp(output_type, "np") == 0;
  int want_pt = strcmp(output_type, "pt") == 0, want_latent = strcmp(output_type, "latent") == 0;
  if (!want_pil && !want_np && !want_pt && !want_latent)
    return lsdr_error(
        L, "option 'output_type': \"pil\", \"np\", \"pt\" or \"latent\" expected, got \"%s\"",
        output_type);
  g.output_latent = want_latent;
  g.no_safety_checker = pp->no_safety_checker;
  if (p->safety_checker && !pp->no_safety_checker && pp->no_feature_extractor)
    return lsdr_error(L, "the safety checker needs the feature extractor, which was set to nil; "
                         "set pipe.safety_checker = nil too to run without either");

  step_ctx ctx = {.L = L, .pipe_idx = 1};
  lua_getfield(L, opts, "callback_on_step_end");
  if (!lua_isnil(L, -1))
    ctx.fn_idx = lua_gettop(L);
  lua_getfield(L, opts, "callback_steps");
  if (!lua_isnil(L, -1) && lua_tointeger(L, -1) <= 0)
    return lsdr_error(L, "`callback_steps` has to be a positive integer but is %I",
                      (lua_Integer)lua_tointeger(L, -1));
  ctx.legacy_every = lua_isnil(L, -1) ? 1 : (int)lua_tointeger(L, -1);
  lua_getfield(L, opts, "callback");
  if (!lua_isnil(L, -1))
    ctx.legacy_idx = lua_gettop(L);
  if (ctx.fn_idx || ctx.legacy_idx) {
    g.on_step = on_step;
    g.on_step_ud = &ctx;
  }

  if (g.latents) {
    const int f = sdr_vae_scale_factor(&p->vae);
    int h, w;
    if (sdr_pipeline_run_size(p, &g, &h, &w) != 0)
      return lsdr_engine_error(L);
    h /= f;
    w /= f;
    const int channels =
        lsdr_pipe_inpaint(pp) || g.pix2pix ? p->vae.cfg.latent_channels : p->unet.cfg.in_channels;
    int64_t want[4] = {(int64_t)g.nprompts * g.num_images_per_prompt, channels, h, w};
    if (memcmp(want, latents_shape, sizeof want) != 0)
      return lsdr_error(L, "option 'latents': shape (%I, %I, %I, %I) expected",
                        (lua_Integer)want[0], (lua_Integer)want[1], (lua_Integer)want[2],
                        (lua_Integer)want[3]);
  }

  warn_truncated(p, &g);
  if (sdr_img2img_rgba(&g)) /* diffusers does the same without a word; worth one here */
    fputs("warning: the image is RGBA: diffusers' img2img keeps its 4 channels and takes them "
          "as latents (the picture is not encoded, and the output is the VAE's factor times its "
          "size), and so does this one; Image:convert(\"RGB\") for img2img of the picture\n",
          stderr);
  sdr_generated out;
  if (sdr_pipeline_generate(p, &g, &out) != 0)
    return lsdr_engine_error_advice(L, "fewer images per call (num_images_per_prompt), a smaller "
                                       "height and width, or pipe:enable_vae_tiling()");
  if (out.graph_error[0]) /* the same pictures, slower: worth a line, as a Python warning */
    fprintf(stderr,
            "warning: the UNet call could not be recorded as a CUDA graph, so each step "
            "launched its kernels one by one: %s\n",
            out.graph_error);

  /* The result: {images = ...} as diffusers' StableDiffusionPipelineOutput. */
  lua_createtable(L, 0, 2);
  int result = lua_gettop(L);
  const int B = (int)out.shape[0], H = (int)out.shape[2], W = (int)out.shape[3];
  sdr_backend *cpu = lsdr_backend(L, SDR_DEVICE_CPU);
  if (want_latent) { /* on the pipeline's device, as diffusers returns them */
    lsdr_tensor *t = lsdr_push_new_tensor(L, p->be, SDR_F32, 4, out.shape);
    if (sdr_upload(p->be, t->t.data, out.data, sdr_tensor_nbytes(&t->t)) != 0) {
      sdr_generated_free(&out);
      return lsdr_engine_error(L);
    }
  } else if (want_np) { /* numpy arrays: on the host */
    lsdr_tensor *t = lsdr_push_new_tensor(L, cpu, SDR_F32, 4, (int64_t[]){B, H, W, 3});
    sdr_tensor_to_np(out.data, B, H, W, t->t.data);
  } else if (want_pt) { /* torch tensors in [0, 1]: on the pipeline's device */
    const size_t n = (size_t)B * 3 * H * W;
    for (size_t i = 0; i < n; i++) {
      float v = out.data[i] / 2.0f + 0.5f;
      out.data[i] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
    lsdr_tensor *t = lsdr_push_new_tensor(L, p->be, SDR_F32, 4, (int64_t[]){B, 3, H, W});
    if (sdr_upload(p->be, t->t.data, out.data, n * sizeof(float)) != 0) {
      sdr_generated_free(&out);
      return lsdr_engine_error(L);
    }
  } else {
    sdr_image **imgs = calloc((size_t)B, sizeof *imgs);
    if (!imgs || sdr_tensor_to_images(out.data, B, H, W, imgs) != 0) {
      free(imgs);
      sdr_generated_free(&out);
      return lsdr_engine_error(L);
    }
    lua_createtable(L, B, 0);
    lsdr_image_list_meta(L, -1);
    const char *sampler = sdr_scheduler_class_name(sdr_scheduler_kind_of(p->scheduler));
    lua_getfield(L, parts, "name_or_path");
    const char *model = lua_tostring(L, -1);
    lua_pop(L, 1);
    for (int b = 0; b < B; b++) {
      int pi = b / g.num_images_per_prompt;
      long long seed = g.ngenerators > 1 ? (long long)gens[b]->seed : seed0;
      luaL_Buffer buf;
      luaL_buffinit(L, &buf);
      describe(&buf, prompts ? prompts[pi] : "", negs ? negs[pi] : NULL, g.num_inference_steps,
               sampler, g.guidance_scale, seed, W, H, model, g.strength,
               lsdr_pipe_img2img(pp) || lsdr_pipe_inpaint(pp));
      luaL_pushresult(&buf);
      sdr_image_set_parameters(imgs[b], lua_tostring(L, -1));
      lua_pop(L, 1);
      lsdr_push_image(L, imgs[b]);
      imgs[b] = NULL;
      lua_rawseti(L, -2, b + 1);
    }
    free(imgs);
    lsdr_mask_crop_overlay(L, lua_gettop(L), &crop);
  }
  /* has_nsfw_concept: a list of booleans where a safety checker ran, else nil */
  int flagged = 0;
  if (out.nsfw) {
    lua_createtable(L, B, 0);
    for (int b = 0; b < B; b++) {
      lua_pushboolean(L, out.nsfw[b]);
      lua_rawseti(L, -2, b + 1);
      flagged |= out.nsfw[b];
    }
  } else {
    lua_pushnil(L);
  }
  sdr_generated_free(&out);
  if (flagged)
    fputs("Potential NSFW content was detected in one or more images. A black image will be "
          "returned instead. Try again with a different prompt and/or seed.\n",
          stderr);
  /* With return_dict = false, diffusers' tuple (images, has_nsfw_concept). */
  lua_getfield(L, opts, "return_dict");
  int as_dict = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (as_dict) {
    lua_setfield(L, result, "nsfw_content_detected");
    lua_setfield(L, result, "images");
    static const char *const fields[] = {"images", "nsfw_content_detected", NULL};
    lsdr_output_kind(L, result, "StableDiffusionPipelineOutput", fields);
  } else {
    lua_rawseti(L, result, 2);
    lua_rawseti(L, result, 1);
  }
  lua_settop(L, result);
  return 1;
}

/* pipe:encode_prompt(prompt, device, num_images_per_prompt, do_classifier_free_guidance,
 * {negative_prompt, prompt_embeds, negative_prompt_embeds, lora_scale, clip_skip}) ->
 * prompt_embeds, negative_prompt_embeds (nil without guidance), each repeated per image,
 * as the pipeline's call makes them. */
int lsdr_pipe_encode_prompt(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 5);
  lsdr_pipe *pp = lsdr_check_pipe(L, 1);
  sdr_pipeline *p = &pp->core->p;
  bind_parts(L, pp);
  /* the prompt argument goes into the options, where read_prompts looks */
  const int opts = 6;
  lua_pushvalue(L, 2);
  lua_setfield(L, opts, "prompt");
  sdr_backend *be = p->be;
  if (!lua_isnil(L, 3)) {
    int d = lsdr_parse_device(lua_tostring(L, 3));
    if (d < 0)
      return lsdr_argerror(L, 2, "\"cpu\" or \"cuda\"");
    be = lsdr_backend(L, (sdr_device)d);
  }
  const int N = (int)lua_tointeger(L, 4), guided = lua_toboolean(L, 5);
  if (N < 1)
    return lsdr_error(L, "num_images_per_prompt must be a positive number, got %d", N);
  sdr_generate g;
  memset(&g, 0, sizeof g);
  read_prompts(L, opts, p, &g);
  if (sdr_pipeline_is_xl(p)) {
    lsdr_read_xl_options(L, opts, &g);
    xl_prompts_2(L, p, &g);
  }
  lua_getfield(L, opts, "clip_skip");
  g.clip_skip = lua_isnil(L, -1) ? 0 : (int)lua_tointeger(L, -1);
  if (g.clip_skip < 0)
    return lsdr_error(L, "option 'clip_skip': a non-negative integer expected");
  read_lora_scale(L, opts, NULL, &g);
  float *pos, *neg, *pooled, *neg_pooled;
  int T, D, P;
  warn_truncated(p, &g);
  if (sdr_pipeline_encode_prompt(p, &g, guided, &pos, &neg, &T, &D, &pooled, &neg_pooled, &P) != 0)
    return lsdr_engine_error(L);
  const int B0 = g.nprompts;
  /* prompt_embeds, negative_prompt_embeds and, for SDXL, the pooled ones after them */
  float *blocks[4] = {pos, neg, pooled, neg_pooled};
  const int nblocks = pooled ? 4 : 2;
  int rc = 0;
  for (int k = 0; k < nblocks; k++) {
    const int is_pooled = k >= 2;
    if (!guided && k % 2) {
      lua_pushnil(L);
      continue;
    }
    /* repeat(1, N, 1): each prompt's N copies together */
    const size_t row = is_pooled ? (size_t)P : (size_t)T * D;
    lsdr_tensor *t =
        is_pooled ? lsdr_push_new_tensor(L, be, SDR_F32, 2, (int64_t[]){(int64_t)B0 * N, P})
                  : lsdr_push_new_tensor(L, be, SDR_F32, 3, (int64_t[]){(int64_t)B0 * N, T, D});
    for (int i = 0, r = 0; rc == 0 && i < B0; i++)
      for (int c = 0; rc == 0 && c < N; c++, r++)
        rc = sdr_upload(be, (float *)t->t.data + r * row, blocks[k] + i * row, row * sizeof(float));
  }
  free(pos);
  free(pooled);
  if (rc != 0)
    return lsdr_engine_error(L);
  return nblocks;
}

#define COMMON_CALL_OPTIONS                                                                        \
  {"prompt", "string|table", "nil", "a prompt or a list of prompts"},                              \
      {"negative_prompt", "string|table", "nil", "what to steer away from (one per prompt)"},      \
      {"num_inference_steps", "integer", "50"},                                                    \
      {"timesteps", "table", "nil",                                                                \
       "custom timesteps, descending (DDPMScheduler, as in diffusers)"},                           \
      {"guidance_scale", "number", "7.5"}, {"num_images_per_prompt", "integer", "1"},              \
      {"eta", "number", "0.0", "DDIM's eta"},                                                      \
      {"generator", "torch.Generator|table", "nil", "one, or one per image; nil: the global one"}, \
      {"output_type", "string", "\"pil\"", "\"pil\", \"np\", \"pt\" or \"latent\""},               \
      {"return_dict", "boolean", "true", "false: {images} as diffusers' tuple"},                   \
      {"callback_on_step_end", "function", "nil", "f(pipe, i, t, {latents}) -> nil or {latents}"}, \
      {"callback_on_step_end_tensor_inputs", "table", "nil", "only latents are passed"},           \
      {"callback", "function", "nil", "the older hook: f(i, t, latents)"},                         \
      {"callback_steps", "integer", "1", "how often callback is called"},                          \
      {"clip_skip", "integer", "nil", "layers of the text encoder to skip from the end"},          \
      {"guidance_rescale", "number", "0.0", "txt2img: rescale_noise_cfg's fraction"},              \
      {"prompt_embeds", "Tensor", "nil", "(batch, tokens, dim): instead of prompt"},               \
      {"negative_prompt_embeds", "Tensor", "nil", "the same shape: instead of negative_prompt"},   \
      {"ip_adapter_image", "Image|table|Tensor", "nil",                                            \
       "the IP-Adapters' pictures: one entry per adapter (an Image or a list of them)"},           \
      {"ip_adapter_image_embeds", "table", "nil",                                                  \
       "instead: one tensor per adapter, as prepare_ip_adapter_image_embeds makes them"},          \
  {                                                                                                \
    "cross_attention_kwargs", "table", "nil", "{scale = s}: how much of the LoRA adapters to use"  \
  }

const lsdr_param lsdr_t2i_call_options[] = {
    COMMON_CALL_OPTIONS,
    {"height", "integer", "nil", "default: unet.config.sample_size * vae_scale_factor"},
    {"width", "integer", "nil"},
    {"latents", "Tensor", "nil", "starting noise (batch, 4, height/8, width/8)"},
    {0}};

const lsdr_param lsdr_i2i_call_options[] = {
    COMMON_CALL_OPTIONS,
    {"image", "Image|table|Tensor", "nil", "the picture(s) to start from, or their latents"},
    {"init_image", "Image|table|Tensor", "nil", "the old name of image"},
    {"strength", "number", "0.8", "how much to change it, 0 to 1"},
    {"height", "integer", "nil", "not used: the pictures take the image's size (as in diffusers)"},
    {"width", "integer", "nil", "not used, as height"},
    {0}};

const lsdr_param lsdr_inpaint_call_options[] = {
    COMMON_CALL_OPTIONS,
    {"image", "Image|table|Tensor", "nil",
     "the picture(s) to paint into (RGB, or a tensor in [0, 1]), resized to height x width"},
    {"mask_image", "Image|table|Tensor", "nil",
     "white (1) where to paint, binarized at 0.5; one or one per picture"},
    {"strength", "number", "1.0", "how much to change the painted region, 0 to 1"},
    {"height", "integer", "nil", "default: unet.config.sample_size * vae_scale_factor"},
    {"width", "integer", "nil"},
    {"latents", "Tensor", "nil", "starting noise (batch, 4, height/8, width/8)"},
    LSDR_MASKED_IMAGE_LATENTS_OPTION,
    LSDR_PADDING_MASK_CROP_OPTION,
    {0}};

const lsdr_param lsdr_controlnet_call_options[] = {
    COMMON_CALL_OPTIONS,
    {"image", "Image|table|Tensor", "nil",
     "the control picture(s): one, one per prompt, or (several nets) one entry per net"},
    {"height", "integer", "nil", "default: the control picture's, floored to vae_scale_factor"},
    {"width", "integer", "nil"},
    {"latents", "Tensor", "nil", "starting noise (batch, 4, height/8, width/8)"},
    {"controlnet_conditioning_scale", "number|table", "1.0",
     "how much of the residuals (one per net, or one for all)"},
    LSDR_CONTROL_CALL_OPTIONS,
    {0}};

const lsdr_param lsdr_controlnet_i2i_call_options[] = {
    COMMON_CALL_OPTIONS,
    {"image", "Image|table|Tensor", "nil", "the picture(s) to start from (made RGB), or latents"},
    {"control_image", "Image|table|Tensor", "nil",
     "the control picture(s): one, one per prompt, or (several nets) one entry per net"},
    {"strength", "number", "0.8", "how much to change the picture, 0 to 1"},
    {"height", "integer", "nil", "default: the picture's, floored to vae_scale_factor"},
    {"width", "integer", "nil"},
    {"controlnet_conditioning_scale", "number|table", "0.8",
     "how much of the residuals (one per net, or one for all)"},
    LSDR_CONTROL_CALL_OPTIONS,
    {0}};

const lsdr_param lsdr_controlnet_inpaint_call_options[] = {
    COMMON_CALL_OPTIONS,
    {"image", "Image|table|Tensor", "nil",
     "the picture(s) to paint into (RGB, or a tensor in [0, 1]), resized to height x width"},
    {"mask_image", "Image|table|Tensor", "nil",
     "white (1) where to paint, binarized at 0.5; one or one per picture"},
    {"control_image", "Image|table|Tensor", "nil",
     "the control picture(s): one, one per prompt, or (several nets) one entry per net"},
    {"strength", "number", "1.0", "how much to change the painted region, 0 to 1"},
    {"height", "integer", "nil", "default: the picture's, floored to vae_scale_factor"},
    {"width", "integer", "nil"},
    {"latents", "Tensor", "nil", "starting noise (batch, 4, height/8, width/8)"},
    {"controlnet_conditioning_scale", "number|table", "0.5",
     "how much of the residuals (one per net, or one for all)"},
    LSDR_CONTROL_CALL_OPTIONS,
    LSDR_PADDING_MASK_CROP_OPTION,
    {0}};

/* The LatentConsistencyModel pipelines': no negative prompt (an LCM learnt guidance against
 * ""), no eta or guidance_rescale; 4 steps and guidance 8.5 by default */
#define LCM_CALL_OPTIONS                                                                           \
  {"prompt", "string|table", "nil", "a prompt or a list of prompts"},                              \
      {"num_inference_steps", "integer", "4"},                                                     \
      {"original_inference_steps", "integer", "nil",                                               \
       "the distillation schedule's length (nil: the scheduler's config)"},                        \
      {"timesteps", "table", "nil", "custom timesteps, descending"},                               \
      {"guidance_scale", "number", "8.5", "into the UNet's guidance embedding (w = scale - 1)"},   \
      {"num_images_per_prompt", "integer", "1"},                                                   \
      {"generator", "torch.Generator|table", "nil", "one, or one per image; nil: the global one"}, \
      {"prompt_embeds", "Tensor", "nil", "(batch, tokens, dim): instead of prompt"},               \
      {"ip_adapter_image", "Image|table|Tensor", "nil",                                            \
       "the IP-Adapters' pictures: one entry per adapter (an Image or a list of them)"},           \
      {"ip_adapter_image_embeds", "table", "nil",                                                  \
       "instead: one tensor per adapter, as prepare_ip_adapter_image_embeds makes them"},          \
      {"output_type", "string", "\"pil\"", "\"pil\", \"np\", \"pt\" or \"latent\""},               \
      {"return_dict", "boolean", "true", "false: {images} as diffusers' tuple"},                   \
      {"cross_attention_kwargs", "table", "nil",                                                   \
       "{scale = s}: how much of the LoRA adapters to use"},                                       \
      {"clip_skip", "integer", "nil", "layers of the text encoder to skip from the end"},          \
      {"callback_on_step_end", "function", "nil", "f(pipe, i, t, {latents}) -> nil or {latents}"}, \
  {                                                                                                \
    "callback_on_step_end_tensor_inputs", "table", "nil", "only latents are passed"                \
  }

const lsdr_param lsdr_lcm_call_options[] = {
    LCM_CALL_OPTIONS,
    {"height", "integer", "nil", "default: unet.config.sample_size * vae_scale_factor"},
    {"width", "integer", "nil"},
    {"latents", "Tensor", "nil", "starting noise (batch, 4, height/8, width/8)"},
    {0}};

const lsdr_param lsdr_lcm_i2i_call_options[] = {
    LCM_CALL_OPTIONS,
    {"image", "Image|table|Tensor", "nil", "the picture(s) to start from, or their latents"},
    {"strength", "number", "0.8", "how much to change it: cuts the LCM schedule, 0 to 1"},
    {0}};

/* StableDiffusionInstructPix2PixPipeline's: no height, width, clip_skip or cross_attention
 * kwargs in its signature; 100 steps and image_guidance_scale 1.5 by default */
const lsdr_param lsdr_pix2pix_call_options[] = {
    {"prompt", "string|table", "nil", "the instruction(s)"},
    {"image", "Image|table|Tensor", "nil", "the picture(s) to edit (or their latents)"},
    {"num_inference_steps", "integer", "100"},
    {"guidance_scale", "number", "7.5", "how closely to follow the instruction"},
    {"image_guidance_scale", "number", "1.5", "how closely to keep to the picture (>= 1)"},
    {"negative_prompt", "string|table", "nil", "what to steer away from (one per prompt)"},
    {"num_images_per_prompt", "integer", "1"},
    {"eta", "number", "0.0", "DDIM's eta"},
    {"generator", "torch.Generator|table", "nil", "one, or one per image; nil: the global one"},
    {"latents", "Tensor", "nil", "starting noise (batch, 4, height/8, width/8)"},
    {"prompt_embeds", "Tensor", "nil", "(batch, tokens, dim): instead of prompt"},
    {"negative_prompt_embeds", "Tensor", "nil", "the same shape: instead of negative_prompt"},
    {"output_type", "string", "\"pil\"", "\"pil\", \"np\", \"pt\" or \"latent\""},
    {"return_dict", "boolean", "true", "false: {images} as diffusers' tuple"},
    {"callback_on_step_end", "function", "nil", "f(pipe, i, t, {latents}) -> nil or {latents}"},
    {"callback_on_step_end_tensor_inputs", "table", "nil", "only latents are passed"},
    {"callback", "function", "nil", "the older hook: f(i, t, latents)"},
    {"callback_steps", "integer", "1", "how often callback is called"},
    {0}};

const lsdr_param lsdr_adapter_call_options[] = {
    COMMON_CALL_OPTIONS,
    {"image", "Image|table|Tensor", "nil",
     "the adapter's picture(s) (a sketch adapter's \"L\"): one, one per prompt, or "
     "(MultiAdapter) one entry per adapter"},
    {"height", "integer", "nil",
     "default: the picture's, floored to the adapter's downscale_factor"},
    {"width", "integer", "nil"},
    {"latents", "Tensor", "nil", "starting noise (batch, 4, height/8, width/8)"},
    {"adapter_conditioning_scale", "number|table", "1.0",
     "how much of the features (one per adapter, or one for all)"},
    {0}};

const lsdr_param lsdr_upscale_call_options[] = {
    {"prompt", "string|table", "nil", "a prompt or a list of prompts"},
    {"image", "Image|table|Tensor", "nil", "the picture(s) to upscale, one per prompt"},
    {"num_inference_steps", "integer", "75"},
    {"guidance_scale", "number", "9.0"},
    {"noise_level", "integer", "20", "how much noise the picture gets first (up to 350)"},
    {"negative_prompt", "string|table", "nil", "what to steer away from (one per prompt)"},
    {"num_images_per_prompt", "integer", "1"},
    {"eta", "number", "0.0", "DDIM's eta"},
    {"generator", "torch.Generator|table", "nil", "one, or one per image; nil: the global one"},
    {"latents", "Tensor", "nil", "starting noise (batch, 4, height, width): the picture's size"},
    {"prompt_embeds", "Tensor", "nil", "(batch, tokens, dim): instead of prompt"},
    {"negative_prompt_embeds", "Tensor", "nil", "the same shape: instead of negative_prompt"},
    {"output_type", "string", "\"pil\"", "\"pil\", \"np\", \"pt\" or \"latent\""},
    {"return_dict", "boolean", "true", "false: {images} as diffusers' tuple"},
    {"callback", "function", "nil", "the older hook: f(i, t, latents)"},
    {"callback_steps", "integer", "1", "how often callback is called"},
    {"cross_attention_kwargs", "table", "nil", "{scale = s}: how much of the LoRA adapters to use"},
    {"clip_skip", "integer", "nil", "layers of the text encoder to skip from the end"},
    {0}};

const lsdr_param lsdr_encode_prompt_options[] = {
    {"negative_prompt", "string|table", "nil"},
    {"prompt_embeds", "Tensor", "nil"},
    {"negative_prompt_embeds", "Tensor", "nil"},
    {"prompt_2", "string|table", "nil", "SDXL: the prompt for the second text encoder"},
    {"negative_prompt_2", "string|table", "nil", "SDXL: the negative for the second encoder"},
    {"pooled_prompt_embeds", "Tensor", "nil", "SDXL: with prompt_embeds"},
    {"negative_pooled_prompt_embeds", "Tensor", "nil", "SDXL: with negative_prompt_embeds"},
    {"lora_scale", "number", "nil", "how much of the loaded LoRA adapters the text encoder uses"},
    {"clip_skip", "integer", "nil"},
    {0}};

/* diffusers hands these to tqdm; the ones that only change how tqdm draws are taken and
 * leave our bar as it is (one line, redrawn in place, kept when done). */

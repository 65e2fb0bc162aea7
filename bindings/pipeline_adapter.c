/* bindings/pipeline_adapter.c — what StableDiffusionAdapterPipeline and
 * StableDiffusionXLAdapterPipeline add to the pipeline object: their `adapter` component (a
 * T2IAdapter, or a MultiAdapter made from a list) and their call's options (the adapters'
 * pictures, adapter_conditioning_scale, SDXL's adapter_conditioning_factor), with diffusers'
 * checks. */
#include <string.h>

#include <lauxlib.h>

#include "bindings/image.h"             // lsdr_to_image
#include "bindings/lsdr.h"              // lsdr_error, lsdr_typename
#include "bindings/pipeline_internal.h" // lsdr_read_image_list, lsdr_host_values
#include "bindings/t2i_adapter.h"       // lsdr_t2i_adapter_on, lsdr_push_multi_adapter
#include "bindings/tensor.h"            // lsdr_to_tensor

int lsdr_kind_has_adapter(int kind) {
  return kind == LSDR_KIND_ADAPTER || kind == LSDR_KIND_XL_ADAPTER;
}

void lsdr_push_adapter_option(lua_State *L, int opts, const char *cls) {
  lua_getfield(L, opts, "adapter");
  const int v = lua_gettop(L);
  if (lua_isnil(L, v))
    lsdr_error(L,
               "option 'adapter': %s needs a T2IAdapter (or a list of them), as "
               "T2IAdapter.from_pretrained(\"TencentARC/t2iadapter_sketch_sd15v2\") loads",
               cls);
  if (lsdr_to_t2i_adapter(L, v) || lsdr_is_multi_adapter(L, v))
    return;
  if (lua_istable(L, v) && !lua_getmetatable(L, v)) { /* a list: MultiAdapter */
    lsdr_push_multi_adapter(L, v);
    lua_replace(L, v);
    return;
  }
  lsdr_error(L, "option 'adapter': a T2IAdapter or a list of them expected, got %s",
             lsdr_typename(L, v));
}

/* The adapters of the adapter at idx (one, or a MultiAdapter's) pushed as a list; returns how
 * many. */
static int push_adapters(lua_State *L, int idx) {
  if (lsdr_is_multi_adapter(L, idx)) {
    lua_getfield(L, idx, "adapters");
    return (int)lua_rawlen(L, -1);
  }
  lua_createtable(L, 1, 0);
  lua_pushvalue(L, idx);
  lua_rawseti(L, -2, 1);
  return 1;
}

void lsdr_adapters_follow(lua_State *L, int parts, sdr_backend *be, int keep) {
  lua_getfield(L, parts, "adapter");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  const int n = push_adapters(L, lua_gettop(L));
  for (int k = 0; k < n; k++) {
    lua_rawgeti(L, -1, k + 1);
    lsdr_t2i_adapter_on(L, -1, be, keep);
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
}

/* One adapter's pictures at idx: an Image, a list of them, or a tensor (C, H, W) or
 * (B, C, H, W) taken as it is. What in points into stays on the stack. */
static void read_pictures(lua_State *L, int idx, const char *name, sdr_adapter_input *in) {
  idx = lua_absindex(L, idx);
  lsdr_tensor *t = lsdr_to_tensor(L, idx);
  if (!t) {
    in->images = lsdr_read_image_list(L, idx, name, &in->nimages);
    return;
  }
  if (t->t.ndim != 3 && t->t.ndim != 4)
    lsdr_error(L,
               "option '%s': a tensor (batch, channels, height, width) expected, got %d "
               "dimensions",
               name, t->t.ndim);
  int64_t s[4] = {1, 1, 1, 1};
  memcpy(s + 4 - t->t.ndim, t->t.shape, (size_t)t->t.ndim * sizeof *s);
  memcpy(in->tensor_shape, s, sizeof s);
  in->tensor = lsdr_host_values(L, idx);
}

void lsdr_read_adapters(lua_State *L, int opts, int parts, sdr_backend *be, int keep, int xl,
                        sdr_generate *g) {
  lua_getfield(L, parts, "adapter");
  const int n = push_adapters(L, lua_gettop(L));
  const int list = lua_gettop(L);
  if (n > SDR_MAX_ADAPTERS)
    lsdr_error(L, "adapter: at most %d T2IAdapters, got %d", SDR_MAX_ADAPTERS, n);
  sdr_adapter_input *in = lua_newuserdatauv(L, (size_t)n * sizeof *in, 0);
  memset(in, 0, (size_t)n * sizeof *in);
  for (int k = 0; k < n; k++) { /* on the pipeline's device and dtype first */
    lua_rawgeti(L, list, k + 1);
    in[k].adapter = lsdr_t2i_adapter_on(L, -1, be, keep);
    lua_pop(L, 1);
  }
  /* the pictures: the adapter's; with a MultiAdapter, a list of one entry per adapter */
  lua_getfield(L, opts, "image");
  const int img = lua_gettop(L);
  if (lua_isnil(L, img))
    lsdr_error(L, "option 'image': the adapter's picture is missing (an Image, a list of Images "
                  "or a Tensor)");
  if (n == 1) {
    read_pictures(L, img, "image", &in[0]);
  } else {
    if (!lua_istable(L, img) || lsdr_to_image(L, img) || lsdr_to_tensor(L, img))
      lsdr_error(L, "MultiAdapter is enabled, but `image` is not a list. Please pass a list of "
                    "images to `image`.");
    if ((int)lua_rawlen(L, img) != n)
      lsdr_error(L,
                 "MultiAdapter requires passing the same number of images as adapters. Given %d "
                 "images and %d adapters.",
                 (int)lua_rawlen(L, img), n);
    char what[32];
    for (int k = 0; k < n; k++) {
      lua_rawgeti(L, img, k + 1);
      snprintf(what, sizeof what, "image[%d]", k + 1);
      read_pictures(L, -1, what, &in[k]);
    }
  }
  /* adapter_conditioning_scale: a number (for every adapter), or one per adapter */
  lua_getfield(L, opts, "adapter_conditioning_scale");
  const int sc = lua_gettop(L);
  if (lua_isnil(L, sc)) {
    for (int k = 0; k < n; k++)
      in[k].scale = 1.0f;
  } else if (lua_type(L, sc) == LUA_TNUMBER) {
    for (int k = 0; k < n; k++)
      in[k].scale = (float)lua_tonumber(L, sc);
  } else if (lua_istable(L, sc) && (int)lua_rawlen(L, sc) == n) {
    for (int k = 0; k < n; k++) {
      lua_rawgeti(L, sc, k + 1);
      if (lua_type(L, -1) != LUA_TNUMBER)
        lsdr_error(L, "option 'adapter_conditioning_scale': entry %d is a %s, not a number", k + 1,
                   lsdr_typename(L, -1));
      in[k].scale = (float)lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
  } else {
    lsdr_error(L,
               "option 'adapter_conditioning_scale': a number or a list of %d numbers (one "
               "per adapter) expected",
               n);
  }
  g->adapter_conditioning_factor = 1.0;
  if (xl) {
    lua_getfield(L, opts, "adapter_conditioning_factor");
    if (!lua_isnil(L, -1)) {
      if (lua_type(L, -1) != LUA_TNUMBER)
        lsdr_error(L, "option 'adapter_conditioning_factor': a number expected, got %s",
                   lsdr_typename(L, -1));
      g->adapter_conditioning_factor = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
  }
  g->adapters = in;
  g->nadapters = n;
}

/* bindings/pipeline_controlnet.c — what StableDiffusionControlNetPipeline adds to the
 * pipeline object: its `controlnet` component (a ControlNetModel, or a MultiControlNetModel
 * made from a list) and its call's options (the control pictures, the scales, the step
 * range, guess mode) with diffusers' checks and alignment rules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/controlnet.h"        // lsdr_to_controlnet, lsdr_controlnet_on
#include "bindings/image.h"             // lsdr_to_image
#include "bindings/lsdr.h"              // lsdr_error, lsdr_typename
#include "bindings/pipeline_internal.h" // lsdr_pipe, lsdr_read_image_list, lsdr_host_values
#include "bindings/tensor.h"            // lsdr_to_tensor

void lsdr_push_controlnet_option(lua_State *L, int opts, const char *cls) {
  lua_getfield(L, opts, "controlnet");
  const int v = lua_gettop(L);
  if (lua_isnil(L, v))
    lsdr_error(L,
               "option 'controlnet': %s needs a ControlNetModel (or a list of them), as "
               "ControlNetModel.from_pretrained(\"lllyasviel/sd-controlnet-canny\") loads",
               cls);
  if (lsdr_to_controlnet(L, v) || lsdr_is_multi_controlnet(L, v))
    return;
  if (lua_istable(L, v) && !lua_getmetatable(L, v)) { /* a list: MultiControlNetModel */
    lsdr_push_multi_controlnet(L, v);
    lua_replace(L, v);
    return;
  }
  lsdr_error(L, "option 'controlnet': a ControlNetModel or a list of them expected, got %s",
             lsdr_typename(L, v));
}

/* The nets of the controlnet at idx (one, or a MultiControlNetModel's) pushed as a list;
 * returns how many. */
static int push_nets(lua_State *L, int idx) {
  if (lsdr_is_multi_controlnet(L, idx)) {
    lua_getfield(L, idx, "nets");
    return (int)lua_rawlen(L, -1);
  }
  lua_createtable(L, 1, 0);
  lua_pushvalue(L, idx);
  lua_rawseti(L, -2, 1);
  return 1;
}

/* One net's pictures from the option `name` at idx: an Image, a list of Images, or a tensor
 * (C, H, W) or (B, C, H, W) in [0, 1]. What c points into stays on the stack. */
static void read_pictures(lua_State *L, int idx, const char *name, sdr_control *c) {
  idx = lua_absindex(L, idx);
  lsdr_tensor *t = lsdr_to_tensor(L, idx);
  if (!t) {
    c->images = lsdr_read_image_list(L, idx, name, &c->nimages);
    return;
  }
  if (t->t.ndim != 3 && t->t.ndim != 4)
    lsdr_error(L,
               "option '%s': a tensor (batch, channels, height, width) expected, got %d "
               "dimensions",
               name, t->t.ndim);
  int64_t s[4] = {1, 1, 1, 1};
  memcpy(s + 4 - t->t.ndim, t->t.shape, (size_t)t->t.ndim * sizeof *s);
  memcpy(c->tensor_shape, s, sizeof s);
  c->tensor = lsdr_host_values(L, idx);
}

/* A number or a list of numbers at opts[key] into out[0..n-1]: a number for every net, a
 * list one per net. Returns how many the list had (1 for a number), 0 when nil. */
static int read_numbers(lua_State *L, int opts, const char *key, double *out, int max) {
  lua_getfield(L, opts, key);
  int n = 0;
  if (lua_isnil(L, -1)) {
    n = 0;
  } else if (lua_type(L, -1) == LUA_TNUMBER) {
    out[0] = lua_tonumber(L, -1);
    n = 1;
  } else if (lua_istable(L, -1)) {
    n = (int)lua_rawlen(L, -1);
    if (n < 1 || n > max)
      lsdr_error(L, "option '%s': a number or a list of 1 to %d numbers expected", key, max);
    for (int i = 0; i < n; i++) {
      lua_rawgeti(L, -1, i + 1);
      if (lua_type(L, -1) != LUA_TNUMBER)
        lsdr_error(L, "option '%s': entry %d is a %s, not a number", key, i + 1,
                   lsdr_typename(L, -1));
      out[i] = lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
  } else {
    lsdr_error(L, "option '%s': a number or a list of numbers expected, got %s", key,
               lsdr_typename(L, -1));
  }
  lua_pop(L, 1);
  return n;
}

void lsdr_controlnets_follow(lua_State *L, int parts, sdr_backend *be, int keep) {
  lua_getfield(L, parts, "controlnet");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  const int n = push_nets(L, lua_gettop(L));
  for (int k = 0; k < n; k++) {
    lua_rawgeti(L, -1, k + 1);
    lsdr_controlnet_on(L, -1, be, keep);
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
}

void lsdr_read_controls(lua_State *L, int opts, const char *key, int parts, sdr_backend *be,
                        int keep, sdr_generate *g) {
  lua_getfield(L, parts, "controlnet");
  const int cn = lua_gettop(L);
  const int n = push_nets(L, cn);
  const int nets = lua_gettop(L);
  if (n > SDR_MAX_CONTROLS)
    lsdr_error(L, "controlnet: at most %d ControlNets, got %d", SDR_MAX_CONTROLS, n);
  sdr_control *c = lua_newuserdatauv(L, (size_t)n * sizeof *c, 0);
  memset(c, 0, (size_t)n * sizeof *c);
  for (int k = 0; k < n; k++) { /* on the pipeline's device and dtype first */
    lua_rawgeti(L, nets, k + 1);
    c[k].net = lsdr_controlnet_on(L, -1, be, keep);
    lua_pop(L, 1);
  }

  /* the control pictures (`key`): the single net's; with several, one entry per net, or a
   * list per prompt of one picture per net (diffusers transposes it) */
  lua_getfield(L, opts, key);
  const int img = lua_gettop(L);
  if (lua_isnil(L, img))
    lsdr_error(L,
               "option '%s': the control picture is missing (an Image, a list of Images or a "
               "Tensor)",
               key);
  char what[64];
  if (n == 1) {
    read_pictures(L, img, key, &c[0]);
  } else {
    if (!lua_istable(L, img) || lsdr_to_image(L, img) || lsdr_to_tensor(L, img))
      lsdr_error(L, "For multiple controlnets: `%s` must be type `list`", key);
    lua_rawgeti(L, img, 1);
    const int nested = lua_istable(L, -1) && !lsdr_to_image(L, -1) && !lsdr_to_tensor(L, -1);
    lua_pop(L, 1);
    const int m = (int)lua_rawlen(L, img);
    if (nested) {
      for (int k = 0; k < n; k++) { /* net k's pictures: entry k of each prompt's list */
        lua_createtable(L, m, 0);
        for (int i = 0; i < m; i++) {
          lua_rawgeti(L, img, i + 1);
          if (!lua_istable(L, -1) || (int)lua_rawlen(L, -1) != n)
            lsdr_error(L,
                       "For multiple controlnets: if you pass`%s` as a list of list, each "
                       "sublist must have the same length as the number of controlnets, but the "
                       "sublists in `%s` got %d images and %d ControlNets.",
                       key, key, lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 1, n);
          lua_rawgeti(L, -1, k + 1);
          lua_rawseti(L, -3, i + 1);
          lua_pop(L, 1);
        }
        snprintf(what, sizeof what, "%s[net %d]", key, k + 1);
        read_pictures(L, -1, what, &c[k]);
      }
    } else {
      if (m != n)
        lsdr_error(L,
                   "For multiple controlnets: `%s` must have the same length as the number of "
                   "controlnets, but got %d images and %d ControlNets.",
                   key, m, n);
      for (int k = 0; k < n; k++) {
        lua_rawgeti(L, img, k + 1);
        snprintf(what, sizeof what, "%s[%d]", key, k + 1);
        read_pictures(L, -1, what, &c[k]);
      }
    }
  }

  /* controlnet_conditioning_scale: a number (for every net), or one per net */
  double scale[SDR_MAX_CONTROLS] = {1.0};
  lua_getfield(L, opts, "controlnet_conditioning_scale");
  const int scale_is_list = lua_istable(L, -1);
  lua_pop(L, 1);
  int ns = read_numbers(L, opts, "controlnet_conditioning_scale", scale, SDR_MAX_CONTROLS);
  if (n == 1 && scale_is_list)
    lsdr_error(L, "For single controlnet: `controlnet_conditioning_scale` must be type `float`.");
  if (scale_is_list && ns != n)
    lsdr_error(L, "For multiple controlnets: When `controlnet_conditioning_scale` is specified as "
                  "`list`, it must have the same length as the number of controlnets");
  for (int k = 0; k < n; k++)
    c[k].scale = (float)scale[scale_is_list ? k : 0];

  /* control_guidance_start and _end: numbers or lists, one made as long as the other */
  double start[SDR_MAX_CONTROLS] = {0.0}, end[SDR_MAX_CONTROLS] = {1.0};
  int nst = read_numbers(L, opts, "control_guidance_start", start, SDR_MAX_CONTROLS);
  int nen = read_numbers(L, opts, "control_guidance_end", end, SDR_MAX_CONTROLS);
  lua_getfield(L, opts, "control_guidance_start");
  const int st_list = lua_istable(L, -1);
  lua_getfield(L, opts, "control_guidance_end");
  const int en_list = lua_istable(L, -1);
  lua_pop(L, 2);
  if (!st_list && !en_list) {
    nst = nen = n;
    for (int k = 1; k < n; k++) {
      start[k] = start[0];
      end[k] = end[0];
    }
  } else if (st_list && !en_list) {
    for (int k = 1; k < nst; k++)
      end[k] = end[0];
    nen = nst;
  } else if (!st_list && en_list) {
    for (int k = 1; k < nen; k++)
      start[k] = start[0];
    nst = nen;
  }
  if (nst != nen)
    lsdr_error(L,
               "`control_guidance_start` has %d elements, but `control_guidance_end` has %d "
               "elements. Make sure to provide the same number of elements to each list.",
               nst, nen);
  if (n > 1 && nst != n)
    lsdr_error(L,
               "`control_guidance_start` has %d elements but there are %d controlnets available. "
               "Make sure to provide %d.",
               nst, n, n);
  for (int k = 0; k < nst; k++) { /* every pair is checked; a single net uses the first */
    if (start[k] >= end[k])
      lsdr_error(L,
                 "control guidance start: %f cannot be larger or equal to control guidance end: "
                 "%f.",
                 start[k], end[k]);
    if (start[k] < 0.0)
      lsdr_error(L, "control guidance start: %f can't be smaller than 0.", start[k]);
    if (end[k] > 1.0)
      lsdr_error(L, "control guidance end: %f can't be larger than 1.0.", end[k]);
  }
  for (int k = 0; k < n; k++) {
    c[k].start = start[k];
    c[k].end = end[k];
  }
  lua_getfield(L, opts, "guess_mode");
  g->guess_mode = lua_toboolean(L, -1);
  lua_pop(L, 1);
  g->controls = c;
  g->ncontrols = n;
}

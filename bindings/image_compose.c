/* bindings/image_compose.c — PIL's functions that make one picture of two: Image.blend,
 * Image.composite (image1 where the mask is white, image2 where it is black: an inpainted
 * picture laid back over its original) and Image.alpha_composite. Each returns a new Image. */
#include "bindings/image.h"

#include <lauxlib.h>

#include "bindings/lsdr.h"
#include "engine/image.h"

static int l_blend(lua_State *L) {
  lsdr_args(L);
  const sdr_image *a = lsdr_arg_image(L, 1, "im1"), *b = lsdr_arg_image(L, 2, "im2");
  const float alpha = (float)lua_tonumber(L, lsdr_arg(L, 3)); /* Pillow's C takes a float */
  if (a->channels != b->channels || a->width != b->width || a->height != b->height)
    return lsdr_error(L, "images do not match (%dx%d %s and %dx%d %s)", a->width, a->height,
                      sdr_image_mode_name(a->channels), b->width, b->height,
                      sdr_image_mode_name(b->channels));
  sdr_image **slot = lsdr_push_image_slot(L); /* first: nothing leaks on a failure */
  if (!(*slot = sdr_image_blend(a, b, alpha)))
    return lsdr_engine_error(L);
  return 1;
}

static int l_composite(lua_State *L) {
  lsdr_args(L);
  const sdr_image *a = lsdr_arg_image(L, 1, "image1"), *b = lsdr_arg_image(L, 2, "image2"),
                  *mask = lsdr_arg_image(L, 3, "mask");
  if (a->width != b->width || a->height != b->height || mask->width != b->width ||
      mask->height != b->height)
    return lsdr_error(L, "images do not match (image1 %dx%d, image2 %dx%d, mask %dx%d)", a->width,
                      a->height, b->width, b->height, mask->width, mask->height);
  if (mask->channels == 3)
    return lsdr_error(L, "bad transparency mask (an L or RGBA mask expected, got RGB)");
  sdr_image **slot = lsdr_push_image_slot(L);
  if (!(*slot = sdr_image_copy(b)) || sdr_image_paste(*slot, a, 0, 0, mask) != 0)
    return lsdr_engine_error(L);
  return 1;
}

static int l_alpha_composite(lua_State *L) {
  lsdr_args(L);
  const sdr_image *a = lsdr_arg_image(L, 1, "im1"), *b = lsdr_arg_image(L, 2, "im2");
  sdr_image **slot = lsdr_push_image_slot(L);
  if (!(*slot = sdr_image_copy(a)) || sdr_image_alpha_composite(*slot, b) != 0)
    return lsdr_engine_error(L);
  return 1;
}

static const lsdr_func funcs[] = {
    {"Image.blend",
     l_blend,
     "im1 + alpha (im2 - im1), value by value (one mode and size), as PIL's blend.",
     {{"im1", "Image"}, {"im2", "Image"}, {"alpha", "number"}}},
    {"Image.composite",
     l_composite,
     "image1 where the mask (L or RGBA) is white, image2 where it is black, blended between.",
     {{"image1", "Image"}, {"image2", "Image"}, {"mask", "Image"}}},
    {"Image.alpha_composite",
     l_alpha_composite,
     "im2 laid over im1 by its alpha (both RGBA, one size).",
     {{"im1", "Image"}, {"im2", "Image"}}},
    {0}};

void lsdr_open_image_compose(lua_State *L) {
  lua_getglobal(L, "Image");
  lsdr_register(L, -1, funcs);
  lua_pop(L, 1);
}

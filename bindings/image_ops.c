/* bindings/image_ops.c — PIL's ImageOps functions a diffusers notebook uses around its
 * pictures: invert (an inpainting mask the other way round), grayscale, mirror and flip.
 * Each returns a new Image, as PIL's do. (ImageOps.exif_transpose is in load_image.c.) */
#include "bindings/image.h"

#include <lauxlib.h>

#include "bindings/lsdr.h"
#include "engine/image.h"

static int l_invert(lua_State *L) {
  lsdr_args(L);
  const sdr_image *img = lsdr_arg_image(L, 1, "image");
  if (img->channels == 4) /* PIL's _lut takes L and RGB only */
    return lsdr_error(L, "not supported for this image mode (RGBA)");
  sdr_image **slot = lsdr_push_image_slot(L); /* first: nothing leaks on a failure */
  if (!(*slot = sdr_image_copy(img)))
    return lsdr_engine_error(L);
  const size_t n = (size_t)img->width * img->height * img->channels;
  for (size_t i = 0; i < n; i++)
    (*slot)->pixels[i] = (uint8_t)(255 - img->pixels[i]);
  return 1;
}

static int l_grayscale(lua_State *L) {
  lsdr_args(L);
  const sdr_image *img = lsdr_arg_image(L, 1, "image");
  sdr_image **slot = lsdr_push_image_slot(L);
  if (!(*slot = sdr_image_convert(img, 1)))
    return lsdr_engine_error(L);
  return 1;
}

static int transposed(lua_State *L, int method) {
  lsdr_args(L);
  const sdr_image *img = lsdr_arg_image(L, 1, "image");
  sdr_image **slot = lsdr_push_image_slot(L);
  if (!(*slot = sdr_image_transpose(img, method)))
    return lsdr_engine_error(L);
  return 1;
}
static int l_mirror(lua_State *L) { return transposed(L, SDR_FLIP_LEFT_RIGHT); }
static int l_flip(lua_State *L) { return transposed(L, SDR_FLIP_TOP_BOTTOM); }

static const lsdr_func funcs[] = {
    {"ImageOps.invert",
     l_invert,
     "The picture's negative (255 - value), of an L or RGB picture (PIL's ImageOps.invert).",
     {{"image", "Image"}}},
    {"ImageOps.grayscale",
     l_grayscale,
     "The picture in mode L (image:convert(\"L\")).",
     {{"image", "Image"}}},
    {"ImageOps.mirror", l_mirror, "The picture flipped left to right.", {{"image", "Image"}}},
    {"ImageOps.flip", l_flip, "The picture flipped top to bottom.", {{"image", "Image"}}},
    {0}};

void lsdr_push_image_ops(lua_State *L) {
  if (lua_getglobal(L, "ImageOps") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setglobal(L, "ImageOps");
  }
}

void lsdr_open_image_ops(lua_State *L) {
  lsdr_push_image_ops(L);
  lsdr_register(L, -1, funcs);
  lua_pop(L, 1);
}

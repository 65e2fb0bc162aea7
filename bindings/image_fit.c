/* bindings/image_fit.c — PIL's ImageOps.fit, contain, cover, pad and expand, the ways a
 * notebook brings a picture to the pipeline's size:
 *
 *   init_image = ImageOps.fit(photo, {512, 512})        -- centred crop, then resize
 *   control = ImageOps.pad(photo, {768, 512}, Image.BICUBIC, {0, 0, 0})
 *
 * Each returns a new Image (engine/image_fit.c). */
#include "bindings/image.h"

#include <lauxlib.h>

#include "bindings/lsdr.h"
#include "engine/image.h"

/* A {x, y} pair of numbers at user argument param, default (0.5, 0.5). */
static void get_centering(lua_State *L, int param, double *x, double *y) {
  const int idx = lsdr_arg(L, param);
  *x = *y = 0.5;
  if (lua_isnil(L, idx))
    return;
  lua_rawgeti(L, idx, 1);
  lua_rawgeti(L, idx, 2);
  if (lua_rawlen(L, idx) != 2 || !lua_isnumber(L, -2) || !lua_isnumber(L, -1))
    lsdr_error(L, "argument %d (centering): expected {x, y} of numbers from 0 to 1", param);
  *x = lua_tonumber(L, -2);
  *y = lua_tonumber(L, -1);
  lua_pop(L, 2);
}

static int method_arg(lua_State *L, int param) {
  return lua_isnil(L, lsdr_arg(L, param)) ? SDR_RESAMPLE_BICUBIC : lsdr_check_resample(L, param);
}

/* (image, size, method): make's picture, in an Image pushed before it is made. */
static int resized(lua_State *L, sdr_image *(*make)(const sdr_image *, int, int, int)) {
  lsdr_args(L);
  const sdr_image *img = lsdr_arg_image(L, 1, "image");
  int w, h;
  lsdr_get_size(L, 2, 0, &w, &h);
  const int method = method_arg(L, 3);
  sdr_image **slot = lsdr_push_image_slot(L);
  if (!(*slot = make(img, w, h, method)))
    return lsdr_engine_error(L);
  return 1;
}

static int l_contain(lua_State *L) { return resized(L, sdr_image_contain); }
static int l_cover(lua_State *L) { return resized(L, sdr_image_cover); }

static int l_pad(lua_State *L) {
  lsdr_args(L);
  const sdr_image *img = lsdr_arg_image(L, 1, "image");
  int w, h;
  lsdr_get_size(L, 2, 0, &w, &h);
  const int method = method_arg(L, 3);
  uint8_t color[4] = {0, 0, 0, 0}; /* PIL's None: a new picture of zeros */
  if (!lua_isnil(L, lsdr_arg(L, 4)))
    lsdr_get_color(L, 4, "color", img->channels, color);
  double cx, cy;
  get_centering(L, 5, &cx, &cy);
  sdr_image **slot = lsdr_push_image_slot(L);
  if (!(*slot = sdr_image_pad(img, w, h, method, color, cx, cy)))
    return lsdr_engine_error(L);
  return 1;
}

static int l_expand(lua_State *L) {
  lsdr_args(L);
  const sdr_image *img = lsdr_arg_image(L, 1, "image");
  const int bi = lsdr_arg(L, 2);
  int border[4] = {0, 0, 0, 0};
  static const char *const expected = "a whole number, {x, y} or {left, top, right, bottom}";
  if (lua_istable(L, bi)) {
    const int n = (int)lua_rawlen(L, bi);
    if (n != 2 && n != 4)
      return lsdr_error(L, "argument 2 (border): expected %s", expected);
    for (int i = 0; i < n; i++) {
      lua_rawgeti(L, bi, i + 1);
      if (!lua_isinteger(L, -1))
        return lsdr_error(L, "argument 2 (border): expected %s", expected);
      border[i] = (int)lua_tointeger(L, -1);
      lua_pop(L, 1);
    }
    if (n == 2) /* (x, y): left and right x, top and bottom y */
      border[2] = border[0], border[3] = border[1];
  } else if (!lua_isnil(L, bi)) {
    if (!lua_isinteger(L, bi))
      return lsdr_error(L, "argument 2 (border): expected %s", expected);
    border[0] = border[1] = border[2] = border[3] = (int)lua_tointeger(L, bi);
  }
  uint8_t color[4] = {0, 0, 0, 0};
  if (!lua_isnil(L, lsdr_arg(L, 3)))
    lsdr_get_color(L, 3, "fill", img->channels, color);
  sdr_image **slot = lsdr_push_image_slot(L);
  if (!(*slot = sdr_image_expand(img, border, color)))
    return lsdr_engine_error(L);
  return 1;
}

static int l_fit(lua_State *L) {
  lsdr_args(L);
  const sdr_image *img = lsdr_arg_image(L, 1, "image");
  int w, h;
  lsdr_get_size(L, 2, 0, &w, &h);
  const int method = method_arg(L, 3);
  const int bleed_i = lsdr_arg(L, 4);
  const double bleed = lua_isnil(L, bleed_i) ? 0.0 : lua_tonumber(L, bleed_i);
  double cx, cy;
  get_centering(L, 5, &cx, &cy);
  sdr_image **slot = lsdr_push_image_slot(L);
  if (!(*slot = sdr_image_fit(img, w, h, method, bleed, cx, cy)))
    return lsdr_engine_error(L);
  return 1;
}

#define SIZE_PARAM                                                                                 \
  { "size", "table", NULL, "{width, height}" }
#define METHOD_PARAM                                                                               \
  {                                                                                                \
    "method", "integer", "Image.BICUBIC",                                                          \
        "Image.NEAREST, BOX, BILINEAR, HAMMING, BICUBIC or "                                       \
        "LANCZOS"                                                                                  \
  }
#define CENTERING_PARAM                                                                            \
  {                                                                                                \
    "centering", "table", "{0.5, 0.5}",                                                            \
        "where the picture sits: {0, 0} top left, {1, 1} bottom "                                  \
        "right"                                                                                    \
  }

static const lsdr_func funcs[] = {
    {"ImageOps.fit",
     l_fit,
     "The picture cropped to the aspect of size (centred by centering, less bleed of each edge) "
     "and resized to it, as PIL's ImageOps.fit.",
     {{"image", "Image"},
      SIZE_PARAM,
      METHOD_PARAM,
      {"bleed", "number", "0.0", "the fraction of each edge left out (0 to 0.5)"},
      CENTERING_PARAM}},
    {"ImageOps.contain",
     l_contain,
     "The picture resized to the largest size within size, its aspect kept.",
     {{"image", "Image"}, SIZE_PARAM, METHOD_PARAM}},
    {"ImageOps.cover",
     l_cover,
     "The picture resized to the smallest size that covers size, its aspect kept.",
     {{"image", "Image"}, SIZE_PARAM, METHOD_PARAM}},
    {"ImageOps.pad",
     l_pad,
     "ImageOps.contain's picture on a canvas of size, filled with color (zeros by default).",
     {{"image", "Image"},
      SIZE_PARAM,
      METHOD_PARAM,
      {"color", "integer|table", "nil", "as Image.new's color"},
      CENTERING_PARAM}},
    {"ImageOps.expand",
     l_expand,
     "The picture with a border of fill around it.",
     {{"image", "Image"},
      {"border", "integer|table", "0", "a width, {x, y} or {left, top, right, bottom}"},
      {"fill", "integer|table", "0", "as Image.new's color"}}},
    {0}};

void lsdr_open_image_fit(lua_State *L) {
  lsdr_push_image_ops(L);
  lsdr_register(L, -1, funcs);
  lua_pop(L, 1);
}

/* bindings/image_bands.c — PIL's band methods on Image:
 *
 *   mask = rgba:getchannel("A")                          -- or rgba:split()[4]
 *   mask = mask:point(function(v) return v > 127 and 255 or 0 end)
 *   box = mask:getbbox()                                 -- {left, upper, right, lower} or nil
 *   rgb:putalpha(mask)                                   -- in place: RGB becomes RGBA
 *   img = Image.merge("RGB", {r, g, b})
 *
 * Boxes and band indices are 0-based, as in PIL (engine/image_bands.c). */
#include "bindings/image.h"

#include <math.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/lsdr.h"
#include "engine/image.h"

static const char *const BAND_NAMES[5] = {NULL, "L", NULL, "RGB", "RGBA"};

static int image_split(lua_State *L) {
  lsdr_args(L);
  const sdr_image *img = lsdr_self_image(L);
  lua_createtable(L, img->channels, 0);
  for (int k = 0; k < img->channels; k++) {
    sdr_image **slot = lsdr_push_image_slot(L);
    if (!(*slot = sdr_image_band(img, k)))
      return lsdr_engine_error(L);
    lua_rawseti(L, -2, k + 1);
  }
  lsdr_image_list_meta(L, lua_gettop(L));
  return 1;
}

static int image_getchannel(lua_State *L) {
  lsdr_args(L);
  const sdr_image *img = lsdr_self_image(L);
  const int ci = lsdr_arg(L, 1);
  int band = -1;
  if (lua_type(L, ci) == LUA_TSTRING) { /* a band's name in the mode: "R", "G", "B", "A", "L" */
    const char *name = lua_tostring(L, ci), *bands = BAND_NAMES[img->channels];
    const char *at = strlen(name) == 1 ? strchr(bands, name[0]) : NULL;
    if (!at)
      return lsdr_error(L, "argument 1 (channel): the band '%s' is not in mode %s", name, bands);
    band = (int)(at - bands);
  } else {
    band = (int)lua_tointeger(L, ci);
  }
  sdr_image **slot = lsdr_push_image_slot(L);
  if (!(*slot = sdr_image_band(img, band)))
    return lsdr_engine_error(L);
  return 1;
}

static int image_merge(lua_State *L) {
  lsdr_args(L);
  const char *mode = lua_tostring(L, lsdr_arg(L, 1));
  const int bi = lsdr_arg(L, 2), want = sdr_image_mode_channels(mode);
  if (!want)
    return lsdr_error(L, "argument 1 (mode): expected \"L\", \"RGB\" or \"RGBA\", got \"%s\"",
                      mode);
  if ((int)lua_rawlen(L, bi) != want)
    return lsdr_error(L, "wrong number of bands (%d for mode %s)", (int)lua_rawlen(L, bi), mode);
  const sdr_image *bands[4];
  for (int k = 0; k < want; k++) {
    lua_rawgeti(L, bi, k + 1);
    if (!(bands[k] = lsdr_to_image(L, -1)))
      return lsdr_error(L, "argument 2 (bands): entry %d is not an open Image", k + 1);
    lua_pop(L, 1); /* the table still holds it */
  }
  sdr_image **slot = lsdr_push_image_slot(L);
  if (!(*slot = sdr_image_merge(bands, want)))
    return lsdr_engine_error(L);
  return 1;
}

static int image_putalpha(lua_State *L) {
  lsdr_args(L);
  sdr_image *img = lsdr_self_image(L);
  const int ai = lsdr_arg(L, 1);
  const sdr_image *alpha = NULL;
  lua_Integer value = 0;
  if (lua_isinteger(L, ai)) {
    value = lua_tointeger(L, ai);
    value = value < 0 ? 0 : value > 255 ? 255 : value;
  } else if (!(alpha = lsdr_to_image(L, ai))) {
    return lsdr_error(L, "argument 1 (alpha): an L Image or a whole number expected");
  }
  if (sdr_image_putalpha(img, alpha, (uint8_t)value) != 0)
    return lsdr_engine_error(L);
  return 0;
}

/* PIL's point: a function called for 0 .. 255 (its table serves every band) or a table of
 * 256 values per band; each rounded half to even and clipped to 0 .. 255. */
static int image_point(lua_State *L) {
  lsdr_args(L);
  const sdr_image *img = lsdr_self_image(L);
  const int li = lsdr_arg(L, 1), c = img->channels;
  uint8_t lut[4 * 256];
  const int fn = lua_isfunction(L, li);
  if (!fn && (int)lua_rawlen(L, li) != 256 * c)
    return lsdr_error(L, "argument 1 (lut): a function, or a table of %d numbers (256 per band)",
                      256 * c);
  for (int i = 0; i < (fn ? 256 : 256 * c); i++) {
    if (fn) {
      lua_pushvalue(L, li);
      lua_pushinteger(L, i);
      lua_call(L, 1, 1);
    } else {
      lua_rawgeti(L, li, i + 1);
    }
    if (!lua_isnumber(L, -1))
      return lsdr_error(L, "argument 1 (lut): value %d is %s, not a number", i,
                        luaL_typename(L, -1));
    const double v = nearbyint(lua_tonumber(L, -1));
    lua_pop(L, 1);
    lut[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
  }
  for (int k = 1; fn && k < c; k++)
    memcpy(lut + 256 * k, lut, 256);
  sdr_image **slot = lsdr_push_image_slot(L);
  if (!(*slot = sdr_image_point(img, lut)))
    return lsdr_engine_error(L);
  return 1;
}

static int image_getbbox(lua_State *L) {
  lsdr_args(L);
  const sdr_image *img = lsdr_self_image(L);
  const int oi = lsdr_arg(L, 1);
  const int alpha_only = lua_isnil(L, oi) ? 1 : lua_toboolean(L, oi);
  int box[4];
  if (!sdr_image_getbbox(img, alpha_only, box))
    return 0; /* None: nothing but zeros */
  lua_createtable(L, 4, 0);
  for (int i = 0; i < 4; i++) {
    lua_pushinteger(L, box[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int image_getextrema(lua_State *L) {
  lsdr_args(L);
  const sdr_image *img = lsdr_self_image(L);
  uint8_t lo[4], hi[4];
  if (!sdr_image_extrema(img, lo, hi))
    return 0;
  if (img->channels > 1)
    lua_createtable(L, img->channels, 0);
  for (int k = 0; k < img->channels; k++) {
    lua_createtable(L, 2, 0);
    lua_pushinteger(L, lo[k]);
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, hi[k]);
    lua_rawseti(L, -2, 2);
    if (img->channels > 1)
      lua_rawseti(L, -2, k + 1);
  }
  return 1;
}

static const lsdr_func image_funcs[] = {
    {"Image:split", image_split, "The bands as L pictures, in the mode's order.", {{0}}},
    {"Image:getchannel",
     image_getchannel,
     "One band as an L picture: by name (\"R\", \"G\", \"B\", \"A\", \"L\") or 0-based index.",
     {{"channel", "string|integer"}}},
    {"Image:putalpha",
     image_putalpha,
     "Sets the alpha band in place from an L picture or a number; RGB becomes RGBA.",
     {{"alpha", "Image|integer"}}},
    {"Image:point",
     image_point,
     "Each value through a function (called for 0 to 255) or a table of 256 per band, rounded "
     "and clipped: mask:point(function(v) return v > 127 and 255 or 0 end).",
     {{"lut", "function|table"}}},
    {"Image:getbbox",
     image_getbbox,
     "{left, upper, right, lower} of the pixels not zero (alpha alone when alpha_only and the "
     "picture has it), or nil.",
     {{"alpha_only", "boolean", "true"}}},
    {"Image:getextrema",
     image_getextrema,
     "{min, max} for an L picture, one such pair per band otherwise.",
     {{0}}},
    {0}};

static const lsdr_func module_funcs[] = {
    {"Image.merge",
     image_merge,
     "One picture from L bands of one size (PIL's Image.merge).",
     {{"mode", "string", NULL, "\"L\", \"RGB\" or \"RGBA\""},
      {"bands", "table", NULL, "a list of L Images, one per band"}}},
    {0}};

void lsdr_open_image_bands(lua_State *L) {
  lsdr_register_image_methods(L, image_funcs);
  lua_getglobal(L, "Image");
  lsdr_register(L, -1, module_funcs);
  lua_pop(L, 1);
}

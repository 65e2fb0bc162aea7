/* bindings/image_filter.c — PIL's ImageFilter.GaussianBlur and BoxBlur, and Image:filter:
 *
 *   soft = mask:filter(ImageFilter.GaussianBlur(8))    -- a softer inpainting mask
 *
 * A filter is a small table (its radius, a number or {x, y}) whose metatable names its class,
 * as PIL's filter objects carry theirs. The blurs are Pillow's, pixel for pixel
 * (engine/image_blur.c). */
#include "bindings/image.h"

#include <lauxlib.h>

#include "bindings/lsdr.h"
#include "engine/image.h"

#define GAUSSIAN "ImageFilter.GaussianBlur"
#define BOX "ImageFilter.BoxBlur"

/* The radius at idx (a number, or a list {x, y}) into x and y; a Lua error otherwise. */
static void read_radius(lua_State *L, int idx, float *x, float *y) {
  if (lua_isnumber(L, idx)) {
    *x = *y = (float)lua_tonumber(L, idx);
  } else if (lua_istable(L, idx) && lua_rawlen(L, idx) == 2) {
    lua_rawgeti(L, idx, 1);
    lua_rawgeti(L, idx, 2);
    if (!lua_isnumber(L, -2) || !lua_isnumber(L, -1))
      lsdr_error(L, "radius: a number or {x, y} of numbers expected");
    *x = (float)lua_tonumber(L, -2);
    *y = (float)lua_tonumber(L, -1);
    lua_pop(L, 2);
  } else {
    lsdr_error(L, "radius: a number or {x, y} expected, got %s", lsdr_typename(L, idx));
  }
  if (!(*x >= 0) || !(*y >= 0))
    lsdr_error(L, "radius must be >= 0");
}

static int make_filter(lua_State *L, const char *cls) {
  lsdr_args(L);
  float x, y;
  read_radius(L, 1, &x, &y); /* refused now, as PIL's constructors do */
  lua_createtable(L, 0, 1);
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "radius");
  luaL_setmetatable(L, cls);
  return 1;
}
static int l_gaussian(lua_State *L) { return make_filter(L, GAUSSIAN); }
static int l_box(lua_State *L) { return make_filter(L, BOX); }

/* Whether the value at idx is a filter table of the class cls. */
static int is_filter(lua_State *L, int idx, const char *cls) {
  if (!lua_istable(L, idx) || !lua_getmetatable(L, idx))
    return 0;
  luaL_getmetatable(L, cls);
  const int same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return same;
}

int lsdr_push_filtered(lua_State *L, const sdr_image *img, int filter) {
  const int gaussian = is_filter(L, filter, GAUSSIAN);
  if (!gaussian && !is_filter(L, filter, BOX))
    return lsdr_error(L, "filter: an ImageFilter.GaussianBlur or BoxBlur expected, got %s",
                      lsdr_typename(L, filter));
  lua_getfield(L, filter, "radius");
  float x, y;
  read_radius(L, lua_gettop(L), &x, &y);
  lua_pop(L, 1);
  sdr_image **slot = lsdr_push_image_slot(L); /* first: nothing leaks on a failure */
  *slot = gaussian ? sdr_image_gaussian_blur(img, x, y) : sdr_image_box_blur(img, x, y, 1);
  if (!*slot)
    return lsdr_engine_error(L);
  return 1;
}

static int image_filter(lua_State *L) {
  lsdr_args(L);
  return lsdr_push_filtered(L, lsdr_self_image(L), 2);
}

static int filter_tostring(lua_State *L) {
  lua_getfield(L, 1, "radius");
  float x, y;
  read_radius(L, lua_gettop(L), &x, &y);
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "__name");
  if (x == y)
    lua_pushfstring(L, "<%s radius=%f>", lua_tostring(L, -1), (double)x);
  else
    lua_pushfstring(L, "<%s radius=(%f, %f)>", lua_tostring(L, -1), (double)x, (double)y);
  return 1;
}

static const lsdr_func filter_funcs[] = {
    {"ImageFilter.GaussianBlur",
     l_gaussian,
     "A gaussian blur of standard deviation radius (or {x, y}), as Pillow computes it: for "
     "image:filter(...).",
     {{"radius", "number|table", "2"}}},
    {"ImageFilter.BoxBlur",
     l_box,
     "The mean of a box reaching radius pixels (or {x, y}) each way; fractions weigh the far "
     "pixels: for image:filter(...).",
     {{"radius", "number|table"}}},
    {0}};

static const lsdr_func image_funcs[] = {
    {"Image:filter",
     image_filter,
     "A new picture through an ImageFilter (GaussianBlur or BoxBlur), as PIL's filter.",
     {{"filter", "table"}}},
    {0}};

void lsdr_open_image_filter(lua_State *L) {
  static const char *const classes[] = {GAUSSIAN, BOX};
  for (int i = 0; i < 2; i++) {
    luaL_newmetatable(L, classes[i]);
    lua_pushcfunction(L, filter_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
  }
  lua_newtable(L);
  lsdr_register(L, -1, filter_funcs);
  lua_setglobal(L, "ImageFilter");
  lsdr_register_image_methods(L, image_funcs);
}

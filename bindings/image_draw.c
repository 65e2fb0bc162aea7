/* bindings/image_draw.c — PIL's ImageDraw.Draw with rectangle, ellipse, polygon and line, on
 * the picture in place, for inpainting masks drawn by hand:
 *
 *   mask = Image.new("L", {512, 512}, 0)
 *   draw = ImageDraw.Draw(mask)
 *   draw:rectangle({100, 120, 300, 380}, {fill = 255})     -- or draw:rectangle(xy, 255)
 *   draw:ellipse({{200, 200}, {400, 330}}, {fill = "white"})
 *
 * Coordinates are inclusive and truncated to whole pixels, and the pixels are Pillow's
 * (engine/image_draw.c). Colours: a number (grey for L; packed 0xAABBGGRR for RGB), a list
 * {r, g, b[, a]}, or "#rgb", "#rrggbb", "#rrggbbaa" and a few names. */
#include "bindings/image.h"

#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/lsdr.h"
#include "engine/image.h"

#define DRAW_META "ImageDraw"

/* ImageColor.getcolor for the names a notebook writes most, as CSS (and PIL) defines them. */
static const struct {
  const char *name;
  uint8_t rgb[3];
} NAMES[] = {{"white", {255, 255, 255}}, {"black", {0, 0, 0}},      {"red", {255, 0, 0}},
             {"green", {0, 128, 0}},     {"lime", {0, 255, 0}},     {"blue", {0, 0, 255}},
             {"gray", {128, 128, 128}},  {"grey", {128, 128, 128}}, {"yellow", {255, 255, 0}}};

static int hex_digit(char c) {
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                : -1;
}

/* A colour name or #hex into rgba; 0, or -1 when it is neither. */
static int parse_color_string(const char *s, uint8_t rgba[4]) {
  rgba[3] = 255;
  for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
    if (strcmp(s, NAMES[i].name) == 0) {
      memcpy(rgba, NAMES[i].rgb, 3);
      return 0;
    }
  const size_t n = strlen(s);
  if (s[0] != '#' || (n != 4 && n != 7 && n != 9))
    return -1;
  for (size_t i = 1; i < n; i++)
    if (hex_digit(s[i]) < 0)
      return -1;
  for (int k = 0; k < (n == 9 ? 4 : 3); k++)
    rgba[k] = n == 4 ? (uint8_t)(hex_digit(s[1 + k]) * 17)
                     : (uint8_t)(hex_digit(s[1 + 2 * k]) * 16 + hex_digit(s[2 + 2 * k]));
  return 0;
}

static uint8_t clip8(lua_Integer v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

/* The colour at idx as ink for a picture of `channels` bands; a Lua error naming what. */
static void read_ink(lua_State *L, int idx, int channels, const char *what, uint8_t ink[4]) {
  lua_Integer v[4] = {0, 0, 0, 255};
  if (lua_isinteger(L, idx)) {
    const lua_Integer p = lua_tointeger(L, idx);
    if (channels == 1)
      v[0] = p;
    else
      for (int k = 0; k < 4; k++)
        v[k] = (lua_Integer)(((lua_Unsigned)p >> (8 * k)) & 0xff);
  } else if (lua_type(L, idx) == LUA_TSTRING) {
    uint8_t rgba[4];
    if (parse_color_string(lua_tostring(L, idx), rgba) != 0)
      lsdr_error(L,
                 "%s: unknown color \"%s\" (use {r, g, b}, \"#rrggbb\" or white, black, red, "
                 "green, lime, blue, gray, yellow)",
                 what, lua_tostring(L, idx));
    for (int k = 0; k < 4; k++)
      v[k] = rgba[k];
    if (channels == 1) /* ImageColor.getcolor(..., "L"): ITU-R 601 luma, floored */
      v[0] = (v[0] * 299 + v[1] * 587 + v[2] * 114) / 1000;
  } else if (lua_istable(L, idx)) {
    const int n = (int)lua_rawlen(L, idx);
    if (channels == 1 ? n != 1 : (n != 3 && n != 4))
      lsdr_error(L, "%s: expected %s", what, channels == 1 ? "a number or {v}" : "{r, g, b[, a]}");
    for (int k = 0; k < n; k++) {
      lua_rawgeti(L, idx, k + 1);
      if (!lua_isinteger(L, -1))
        lsdr_error(L, "%s: color values must be whole numbers", what);
      v[k] = lua_tointeger(L, -1);
      lua_pop(L, 1);
    }
  } else {
    lsdr_error(L, "%s: a color expected, got %s", what, luaL_typename(L, idx));
  }
  for (int k = 0; k < 4; k++)
    ink[k] = clip8(v[k]);
}

/* xy as {x0, y0, x1, y1} or {{x0, y0}, {x1, y1}}, truncated as Pillow's C int cast. */
static void read_xy(lua_State *L, int idx, int xy[4]) {
  static const char *const expected = "argument 1 (xy): expected {x0, y0, x1, y1} or "
                                      "{{x0, y0}, {x1, y1}}";
  double d[4];
  const int n = (int)lua_rawlen(L, idx);
  if (n == 4) {
    for (int k = 0; k < 4; k++) {
      lua_rawgeti(L, idx, k + 1);
      if (!lua_isnumber(L, -1))
        lsdr_error(L, "%s", expected);
      d[k] = lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
  } else if (n == 2) {
    for (int p = 0; p < 2; p++) {
      lua_rawgeti(L, idx, p + 1);
      if (!lua_istable(L, -1) || lua_rawlen(L, -1) != 2)
        lsdr_error(L, "%s", expected);
      for (int k = 0; k < 2; k++) {
        lua_rawgeti(L, -1 - k, k + 1);
        if (!lua_isnumber(L, -1))
          lsdr_error(L, "%s", expected);
        d[2 * p + k] = lua_tonumber(L, -1);
      }
      lua_pop(L, 3);
    }
  } else {
    lsdr_error(L, "%s", expected);
  }
  if (d[2] < d[0])
    lsdr_error(L, "x1 must be greater than or equal to x0");
  if (d[3] < d[1])
    lsdr_error(L, "y1 must be greater than or equal to y0");
  for (int k = 0; k < 4; k++) {
    if (!(d[k] > -2147483648.0 && d[k] < 2147483648.0))
      lsdr_error(L, "argument 1 (xy): coordinate %f out of range", d[k]);
    xy[k] = (int)d[k];
  }
}

typedef void (*shape_fn)(sdr_image *, int, int, int, int, const uint8_t *, int, int);

static void polygon_shape(lua_State *L, sdr_image *img, int xi, const uint8_t *ink, int fill,
                          int width);
static int *read_points(lua_State *L, int idx, int min_points, int *count);

/* One pass of a shape: a box shape (shape) over xy, or the polygon (shape NULL). */
static void run(lua_State *L, shape_fn shape, sdr_image *img, int xi, const int *xy,
                const uint8_t *ink, int fill, int width) {
  if (shape)
    shape(img, xy[0], xy[1], xy[2], xy[3], ink, fill, width);
  else
    polygon_shape(L, img, xi, ink, fill, width);
}

/* The drawing's image (self's "image"), or a Lua error when it is closed. */
static sdr_image *drawing_image(lua_State *L) {
  lua_getfield(L, 1, "image");
  sdr_image *img = lsdr_to_image(L, -1);
  if (!img)
    lsdr_error(L, "the drawing's image is closed");
  return img;
}

/* Arguments 2 to 4 (their stack indices in at[]), or, when argument 2 is a table of keyword
 * arguments ({fill = ..., width = ...}), those three keys' values pushed in their place. */
static void keyword_args(lua_State *L, const char *const keys[3], int at[3]) {
  for (int k = 0; k < 3; k++)
    at[k] = lsdr_arg(L, k + 2);
  const int opts = at[0];
  if (!lua_istable(L, opts) || lua_rawlen(L, opts) != 0)
    return;
  for (int k = 0; k < 3; k++) {
    lua_getfield(L, opts, keys[k]);
    at[k] = lua_gettop(L);
  }
}

/* rectangle and ellipse: (xy, fill, outline, width) or (xy, {fill=, outline=, width=}). The
 * fill first, then an outline of another ink; neither given: an outline of the default ink
 * (black for L, white otherwise), as ImageDraw's _getink. */
static int draw_shape(lua_State *L, shape_fn shape) {
  lsdr_args(L);
  sdr_image *img = drawing_image(L);
  const int xi = lsdr_arg(L, 1);
  static const char *const keys[3] = {"fill", "outline", "width"};
  int at[3];
  keyword_args(L, keys, at);
  const int fi = at[0], oi = at[1], wi = at[2];
  int xy[4] = {0, 0, 0, 0};
  if (shape)
    read_xy(L, xi, xy);
  const int width = lua_isnil(L, wi) ? 1 : (int)luaL_checkinteger(L, wi);
  uint8_t fill[4], outline[4];
  const int has_fill = !lua_isnil(L, fi), has_outline = !lua_isnil(L, oi);
  if (has_fill)
    read_ink(L, fi, img->channels, "fill", fill);
  if (has_outline)
    read_ink(L, oi, img->channels, "outline", outline);
  /* checked before anything is drawn: a failed call leaves the picture as it was */
  if (!shape && width > 1 && (has_outline || !has_fill))
    return lsdr_error(L, "polygon: outlines wider than 1 pixel are not drawn here (Pillow draws "
                         "them as wide lines masked by the fill); give width = 1");
  if (!shape) {
    int count;
    read_points(L, xi, 2, &count);
  }
  if (!has_fill && !has_outline) {
    memset(outline, img->channels == 1 ? 0 : 255, 4);
    run(L, shape, img, xi, xy, outline, 0, width);
    return 0;
  }
  if (has_fill)
    run(L, shape, img, xi, xy, fill, 1, width);
  if (has_outline && width != 0 && (!has_fill || memcmp(fill, outline, 4) != 0))
    run(L, shape, img, xi, xy, outline, 0, width);
  return 0;
}

/* polygon's points: {x0, y0, x1, y1, ...} or {{x0, y0}, {x1, y1}, ...}, at least 2, truncated. */
static int *read_points(lua_State *L, int idx, int min_points, int *count) {
  static const char *const expected = "argument 1 (xy): expected {x0, y0, x1, y1, ...} or "
                                      "{{x0, y0}, {x1, y1}, ...}";
  const int n = (int)lua_rawlen(L, idx);
  lua_rawgeti(L, idx, 1);
  const int pairs = lua_istable(L, -1);
  lua_pop(L, 1);
  const int points = pairs ? n : n / 2;
  if ((!pairs && n % 2) || points < min_points)
    lsdr_error(L, "%s (coordinate list must contain at least %d coordinates)", expected,
               min_points);
  int *xy = lua_newuserdatauv(L, sizeof(int) * 2 * (size_t)(points + 1), 0); /* freed by the GC */
  for (int i = 0; i < 2 * points; i++) {
    if (pairs) {
      lua_rawgeti(L, idx, i / 2 + 1);
      if (!lua_istable(L, -1))
        lsdr_error(L, "%s", expected);
      lua_rawgeti(L, -1, i % 2 + 1);
    } else {
      lua_pushnil(L);
      lua_rawgeti(L, idx, i + 1);
    }
    if (!lua_isnumber(L, -1))
      lsdr_error(L, "%s", expected);
    const double v = lua_tonumber(L, -1);
    if (!(v > -2147483648.0 && v < 2147483648.0))
      lsdr_error(L, "argument 1 (xy): coordinate %f out of range", v);
    xy[i] = (int)v;
    lua_pop(L, 2);
  }
  *count = points;
  return xy;
}

static void polygon_shape(lua_State *L, sdr_image *img, int xi, const uint8_t *ink, int fill,
                          int width) {
  int count;
  const int *xy = read_points(L, xi, 2, &count);
  if (sdr_image_draw_polygon(img, xy, count, ink, fill) != 0)
    lsdr_engine_error(L);
}

/* line(xy, fill, width, joint) or line(xy, {fill=, width=, joint=}): no fill draws the
 * default ink, as ImageDraw's _getink; width 0 draws nothing. */
static int l_line(lua_State *L) {
  lsdr_args(L);
  sdr_image *img = drawing_image(L);
  const int xi = lsdr_arg(L, 1);
  static const char *const keys[3] = {"fill", "width", "joint"};
  int at[3];
  keyword_args(L, keys, at);
  const int fi = at[0], wi = at[1], ji = at[2];
  int count;
  const int *xy = read_points(L, xi, 1, &count);
  const int width = lua_isnil(L, wi) ? 1 : (int)luaL_checkinteger(L, wi);
  if (width < 0)
    return lsdr_error(L, "line: width must be >= 0 (got %d)", width);
  if (lua_type(L, ji) == LUA_TSTRING && strcmp(lua_tostring(L, ji), "curve") == 0 && width > 4)
    return lsdr_error(L, "line: joint = \"curve\" is not drawn here (Pillow adds pie slices at "
                         "the joints); leave joint out");
  uint8_t ink[4];
  if (lua_isnil(L, fi))
    memset(ink, img->channels == 1 ? 0 : 255, 4);
  else
    read_ink(L, fi, img->channels, "fill", ink);
  if (width != 0 && sdr_image_draw_line(img, xy, count, ink, width) != 0)
    return lsdr_engine_error(L);
  return 0;
}

static int l_rectangle(lua_State *L) { return draw_shape(L, sdr_image_draw_rectangle); }
static int l_ellipse(lua_State *L) { return draw_shape(L, sdr_image_draw_ellipse); }
static int l_polygon(lua_State *L) { return draw_shape(L, NULL); }

static int l_draw(lua_State *L) {
  lsdr_args(L);
  lsdr_arg_image(L, 1, "im"); /* open */
  lua_createtable(L, 0, 1);
  lua_pushvalue(L, lsdr_arg(L, 1));
  lua_setfield(L, -2, "image");
  luaL_setmetatable(L, DRAW_META);
  return 1;
}

#define SHAPE_PARAMS                                                                               \
  {                                                                                                \
    {"xy", "table", NULL, "{x0, y0, x1, y1} or {{x0, y0}, {x1, y1}}, inclusive"},                  \
        {"fill", "integer|table|string", "nil",                                                    \
         "a color, or {fill = ..., outline = ..., width = ...}"},                                  \
        {"outline", "integer|table|string", "nil", "a color"}, {                                   \
      "width", "integer", "1", "the outline's width"                                               \
    }                                                                                              \
  }

static const lsdr_func draw_methods[] = {
    {"ImageDraw:rectangle", l_rectangle, "Draws a rectangle on the image in place, as Pillow's.",
     SHAPE_PARAMS},
    {"ImageDraw:ellipse", l_ellipse,
     "Draws an ellipse within the box on the image in place, as Pillow's.", SHAPE_PARAMS},
    {"ImageDraw:line",
     l_line,
     "Draws a line through the points on the image in place, as Pillow's (width pixels wide).",
     {{"xy", "table", NULL, "{x0, y0, x1, y1, ...} or {{x0, y0}, {x1, y1}, ...}"},
      {"fill", "integer|table|string", "nil", "a color, or {fill = ..., width = ..., joint = ...}"},
      {"width", "integer", "1", "the line's width"},
      {"joint", "string", "nil", "\"curve\" is not drawn here"}}},
    {"ImageDraw:polygon",
     l_polygon,
     "Draws a polygon through the points on the image in place, as Pillow's (outline width 1).",
     {{"xy", "table", NULL, "{x0, y0, x1, y1, ...} or {{x0, y0}, {x1, y1}, ...}"},
      {"fill", "integer|table|string", "nil",
       "a color, or {fill = ..., outline = ..., width = ...}"},
      {"outline", "integer|table|string", "nil", "a color"},
      {"width", "integer", "1", "the outline's width: 1 here"}}},
    {0}};

static const lsdr_func module_funcs[] = {
    {"ImageDraw.Draw",
     l_draw,
     "A drawing on the picture: its rectangle and ellipse change the picture in place.",
     {{"im", "Image"}}},
    {0}};

void lsdr_open_image_draw(lua_State *L) {
  luaL_newmetatable(L, DRAW_META);
  lua_newtable(L);
  lsdr_register(L, -1, draw_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_newtable(L);
  lsdr_register(L, -1, module_funcs);
  lua_setglobal(L, "ImageDraw");
}

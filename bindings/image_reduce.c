/* bindings/image_reduce.c — PIL's Image.reduce and Image.thumbnail:
 *
 *   init_image:thumbnail({768, 768})      -- in place, aspect kept, as PIL
 *   half = img:reduce(2)
 *
 * thumbnail resizes with a reducing_gap of 2 (Image.reduce first, then the filter), as
 * Pillow's does; and, as Pillow's draft, a JPEG from Image.open whose pixels nothing has read
 * yet is decoded again at 1/2, 1/4 or 1/8 size by libjpeg before that.
 */
#include "bindings/image.h"

#include <stdlib.h>

#include <lauxlib.h>

#include "bindings/lsdr.h"
#include "engine/image.h"

/* The number at index k (1-based) of the table at idx, or a Lua error naming the argument. */
static double table_number(lua_State *L, int idx, int k, int param, const char *name,
                           const char *expected) {
  lua_rawgeti(L, idx, k);
  if (!lua_isnumber(L, -1))
    lsdr_error(L, "argument %d (%s): expected %s", param, name, expected);
  double v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

static int whole(lua_State *L, double v, int param, const char *name, const char *expected) {
  if (!(v == (double)(int)v))
    lsdr_error(L, "argument %d (%s): expected %s, got %f", param, name, expected, v);
  return (int)v;
}

static int image_reduce(lua_State *L) {
  lsdr_args(L);
  const sdr_image *img = lsdr_self_image(L);
  const int fi = lsdr_arg(L, 1), bi = lsdr_arg(L, 2);
  static const char *const factor_expected = "a whole number or {x, y} of whole numbers";
  int fx, fy;
  if (lua_istable(L, fi)) {
    if (lua_rawlen(L, fi) != 2)
      return lsdr_error(L, "argument 1 (factor): expected %s", factor_expected);
    fx = whole(L, table_number(L, fi, 1, 1, "factor", factor_expected), 1, "factor",
               factor_expected);
    fy = whole(L, table_number(L, fi, 2, 1, "factor", factor_expected), 1, "factor",
               factor_expected);
  } else {
    fx = fy = whole(L, lua_tonumber(L, fi), 1, "factor", factor_expected);
  }
  int box[4];
  if (!lua_isnil(L, bi)) {
    static const char *const box_expected = "{left, upper, right, lower} of whole numbers";
    if (lua_rawlen(L, bi) != 4)
      return lsdr_error(L, "argument 2 (box): expected %s", box_expected);
    for (int i = 0; i < 4; i++)
      box[i] = whole(L, table_number(L, bi, i + 1, 2, "box", box_expected), 2, "box", box_expected);
  }
  sdr_image **slot = lsdr_push_image_slot(L);
  if (!(*slot = sdr_image_reduce(img, fx, fy, lua_isnil(L, bi) ? NULL : box)))
    return lsdr_engine_error(L);
  return 1;
}

/* PIL's JpegImageFile.draft for thumbnail: the largest of 8, 4, 2 that the picture is still
 * reducing_gap times the size asked for, or 1 (no draft). */
static int draft_scale(const sdr_image *img, double w, double h, double gap) {
  const int rw = (int)(w * gap), rh = (int)(h * gap); /* Python's int() */
  const int sx = img->width / rw, sy = img->height / rh, scale = sx < sy ? sx : sy;
  return scale >= 8 ? 8 : scale >= 4 ? 4 : scale >= 2 ? 2 : 1;
}

static int image_thumbnail(lua_State *L) {
  lsdr_args(L);
  const int si = lsdr_arg(L, 1), gi = lsdr_arg(L, 3);
  static const char *const size_expected = "{width, height} of numbers";
  if (lua_rawlen(L, si) != 2)
    return lsdr_error(L, "argument 1 (size): expected %s", size_expected);
  const double w = table_number(L, si, 1, 1, "size", size_expected);
  const double h = table_number(L, si, 2, 1, "size", size_expected);
  const int resample = lsdr_check_resample(L, 2);
  /* PIL's default is 2.0; false stands for its None (the filter alone) */
  if (lua_isboolean(L, gi) && lua_toboolean(L, gi))
    return lsdr_error(L, "argument 3 (reducing_gap): a number, or false for none");
  const double gap = lua_isnil(L, gi) ? 2.0 : lua_isboolean(L, gi) ? 0 : lua_tonumber(L, gi);
  if (gap != 0 && !(gap >= 1.0))
    return lsdr_error(L, "reducing_gap must be 1.0 or greater (got %f)", gap);
  /* No Lua error from here until jpeg is freed. */
  size_t jlen = 0;
  uint8_t *jpeg = lsdr_image_take_draft(L, 1, &jlen);
  sdr_image *img = lsdr_self_image(L);
  int tw = 0, th = 0;
  const int fits = sdr_image_thumbnail_size(img, w, h, &tw, &th);
  /* A JPEG nothing has read yet decodes smaller first, as PIL's draft: then the box is the
   * whole picture in the smaller one's coordinates. */
  const int scale = fits > 0 && jpeg && gap != 0 ? draft_scale(img, w, h, gap) : 1;
  sdr_image *drafted = scale > 1 ? sdr_image_jpeg_draft(jpeg, jlen, "image", scale) : NULL;
  free(jpeg);
  if (fits < 0 || (scale > 1 && !drafted))
    return lsdr_engine_error(L);
  if (fits == 0)
    return 0;
  const sdr_image *from = drafted ? drafted : img;
  const double box[4] = {0, 0, (double)img->width / scale, (double)img->height / scale};
  sdr_image *t = from->width == tw && from->height == th
                     ? sdr_image_copy(from)
                     : sdr_image_resize_gap(from, tw, th, resample, drafted ? box : NULL, gap);
  sdr_image_free(drafted);
  if (!t)
    return lsdr_engine_error(L);
  /* in place, as PIL: the pixels change, the picture's info (parameters, orientation) stays */
  uint8_t *old = img->pixels;
  img->pixels = t->pixels;
  img->width = tw;
  img->height = th;
  t->pixels = old;
  sdr_image_free(t);
  return 0;
}

static const lsdr_func image_funcs[] = {
    {"Image:reduce",
     image_reduce,
     "A copy reduced factor times (the mean of each block; sizes not divisible round up), as "
     "PIL's reduce.",
     {{"factor", "integer|table", NULL, "a whole number, or {x, y}"},
      {"box", "table", "nil", "{left, upper, right, lower}: the region to reduce"}}},
    {"Image:thumbnail",
     image_thumbnail,
     "Makes the picture, in place, no larger than size, its aspect kept (PIL's thumbnail).",
     {{"size", "table", NULL, "{width, height}"},
      {"resample", "integer", "Image.BICUBIC",
       "Image.NEAREST, BOX, BILINEAR, HAMMING, BICUBIC "
       "or LANCZOS"},
      {"reducing_gap", "number|boolean", "2.0",
       "reduce first while the filter still shrinks this many times; false: the filter alone"}}},
    {0}};

void lsdr_open_image_reduce(lua_State *L) { lsdr_register_image_methods(L, image_funcs); }

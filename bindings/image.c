/* bindings/image.c — the Lua Image type: PIL's Image, the part a diffusers notebook uses.
 *
 *   img = Image.open(path)                 Image.new(mode, size, color=0)
 *   img:convert("RGB")  img:resize({512, 512}, Image.LANCZOS)  img:crop({l, u, r, b})
 *   img:paste(im, box, mask)  img:copy()  img:save(path)
 *   img.size == {w, h}  img.width  img.height  img.mode  img.info.parameters
 *
 * An Image is a userdata holding one sdr_image (engine/image.h), with the
 * metatable "Image" (so its __name reads "Image" in messages and argument
 * checks). Methods live in a table, also reachable as Image.Image (PIL's
 * class name) and as the metatable's __methods; __index is a function,
 * because the properties (size, mode, ...) depend on the object and a
 * table __index never sees the object. __gc and __close free the pixels; a
 * closed image refuses every operation, as PIL's does.
 *
 * Every function is declared with an lsdr_func, so help() and the argument
 * checks come from one table; a result object is created empty before the
 * engine fills it, so an error halfway leaves only garbage, never half an
 * Image.
 */
#include "bindings/image.h"
#include "bindings/tensor.h" // lsdr_check_tensor

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/lsdr.h" // lsdr_args, lsdr_register, lsdr_error, lsdr_engine_error
#include "engine/image.h"  // sdr_image_*

typedef struct {
  sdr_image *img; /* NULL once closed */
  /* A JPEG's file from Image.open, until anything reads the pixels: PIL opens lazily, and
   * thumbnail's draft may still decode it smaller (bindings/image_reduce.c). */
  uint8_t *draft;
  size_t draft_len;
} image_box;

static void push_metatable(lua_State *L);

/* A new Image owning nothing yet, on top of the stack. */
static image_box *push_box(lua_State *L) {
  image_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->img = NULL;
  b->draft = NULL;
  b->draft_len = 0;
  push_metatable(L);
  lua_setmetatable(L, -2);
  return b;
}

void lsdr_push_image(lua_State *L, sdr_image *img) { push_box(L)->img = img; }

sdr_image **lsdr_push_image_slot(lua_State *L) { return &push_box(L)->img; }

static void drop_draft(image_box *b) {
  free(b->draft);
  b->draft = NULL;
  b->draft_len = 0;
}

/* The image without counting as a use of its pixels (size, mode, repr). */
static sdr_image *peek_image(lua_State *L, int idx) {
  image_box *b = luaL_testudata(L, idx, LSDR_IMAGE);
  return b ? b->img : NULL;
}

sdr_image *lsdr_to_image(lua_State *L, int idx) {
  image_box *b = luaL_testudata(L, idx, LSDR_IMAGE);
  if (b && b->draft) /* the pixels are used: loaded, in PIL's terms */
    drop_draft(b);
  return b ? b->img : NULL;
}

uint8_t *lsdr_image_take_draft(lua_State *L, int idx, size_t *len) {
  image_box *b = luaL_testudata(L, idx, LSDR_IMAGE);
  if (!b || !b->draft || !b->img)
    return NULL;
  uint8_t *d = b->draft;
  *len = b->draft_len;
  b->draft = NULL;
  b->draft_len = 0;
  return d;
}

/* ---- argument helpers ------------------------------------------------- */

sdr_image *lsdr_self_image(lua_State *L) {
  image_box *b = luaL_checkudata(L, 1, LSDR_IMAGE);
  if (!b->img)
    lsdr_error(L, "operation on closed image");
  drop_draft(b);
  return b->img;
}

sdr_image *lsdr_arg_image(lua_State *L, int param, const char *name) {
  sdr_image *img = lsdr_to_image(L, lsdr_arg(L, param));
  if (!img)
    lsdr_error(L, "argument %d (%s): image is closed", param, name);
  return img;
}

/* A whole number at idx within [lo, hi], or an error naming what was expected. */
static int get_int(lua_State *L, int idx, lua_Integer lo, lua_Integer hi, int *out) {
  if (!lsdr_is_type(L, idx, "integer"))
    return 0;
  lua_Integer v = lua_tointeger(L, idx);
  if (v < lo || v > hi)
    return 0;
  *out = (int)v;
  return 1;
}

/* "{64, 64.5}": how a short table looked, for error messages. */
static const char *describe_table(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  if (n > 6)
    return lua_pushfstring(L, "a table of %d values", (int)n);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '{');
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    luaL_tolstring(L, -1, NULL);
    lua_remove(L, -2);
    if (i > 1)
      luaL_addstring(&b, ", ");
    luaL_addvalue(&b);
  }
  luaL_addchar(&b, '}');
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* Reads a table of exactly n whole numbers in [lo, hi]; raises otherwise. */
static void get_ints(lua_State *L, int param, const char *name, const char *expected, int n,
                     lua_Integer lo, lua_Integer hi, int *out) {
  int idx = lsdr_arg(L, param);
  int ok = lua_istable(L, idx) && lua_rawlen(L, idx) == (size_t)n;
  for (int i = 0; ok && i < n; i++) {
    lua_rawgeti(L, idx, i + 1);
    ok = get_int(L, -1, lo, hi, &out[i]);
    lua_pop(L, 1);
  }
  if (!ok)
    lsdr_error(L, "argument %d (%s): expected %s, got %s", param, name, expected,
               lua_istable(L, idx) ? describe_table(L, idx) : luaL_typename(L, idx));
}

void lsdr_get_size(lua_State *L, int param, int min, int *w, int *h) {
  int wh[2];
  const char *expected = min > 0 ? "{width, height} with whole numbers from 1 to 32768"
                                 : "{width, height} with whole numbers from 0 to 32768";
  get_ints(L, param, "size", expected, 2, min, SDR_IMAGE_MAX_SIDE, wh);
  *w = wh[0];
  *h = wh[1];
}

static int get_mode(lua_State *L, int param) {
  int idx = lsdr_arg(L, param);
  int channels = sdr_image_mode_channels(lua_tostring(L, idx));
  if (!channels)
    lsdr_error(L, "argument %d (mode): expected \"L\", \"RGB\" or \"RGBA\", got \"%s\"", param,
               lua_tostring(L, idx));
  return channels;
}

static uint8_t clip8(lua_Integer v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

/* A color for an image of `channels` bands, as PIL's getink reads one: for L a
 * number or {v}; for RGB(A) a table {r, g, b[, a]} (alpha 255 when left out),
 * {v} (v in red, others 0), or a number, which PIL takes as packed 0xAABBGGRR.
 * Table values are clipped to 0..255. */
void lsdr_get_color(lua_State *L, int param, const char *name, int channels, uint8_t *color) {
  int idx = lsdr_arg(L, param);
  lua_Integer v[4] = {0, 0, 0, 255};
  int n = 0, ok = 1;
  if (lua_isinteger(L, idx) || lsdr_is_type(L, idx, "integer")) {
    lua_Integer packed = lua_tointeger(L, idx);
    if (channels == 1) {
      v[0] = packed;
    } else {
      lua_Unsigned u = (lua_Unsigned)packed;
      for (int i = 0; i < 4; i++)
        v[i] = (lua_Integer)((u >> (8 * i)) & 0xff);
    }
  } else if (lua_istable(L, idx)) {
    n = (int)lua_rawlen(L, idx);
    ok = channels == 1 ? n == 1 : (n == 1 || n == 3 || n == 4);
    for (int i = 0; ok && i < n; i++) {
      lua_rawgeti(L, idx, i + 1);
      ok = lsdr_is_type(L, -1, "integer");
      v[i] = ok ? lua_tointeger(L, -1) : 0;
      lua_pop(L, 1);
    }
    if (n == 1 && channels == 4)
      v[3] = 0; /* PIL: {v} is (v, 0, 0, 0) */
  } else {
    ok = 0;
  }
  if (!ok) {
    const char *expected =
        channels == 1 ? "a whole number or {v} for mode L" : "a whole number or {r, g, b[, a]}";
    lsdr_error(L, "argument %d (%s): expected %s, got %s", param, name, expected,
               lua_istable(L, idx) ? describe_table(L, idx) : luaL_typename(L, idx));
  }
  for (int i = 0; i < channels; i++)
    color[i] = clip8(v[i]);
}

int lsdr_check_resample(lua_State *L, int param) {
  lua_Integer r = lua_tointeger(L, lsdr_arg(L, param));
  if (r < 0 || r > 5)
    lsdr_error(L,
               "argument %d (resample): unknown resampling filter (%d); use Image.NEAREST (0), "
               "Image.LANCZOS (1), Image.BILINEAR (2), Image.BICUBIC (3), Image.BOX (4) or "
               "Image.HAMMING (5)",
               param, (int)r);
  return (int)r;
}

/* ---- Image.open, Image.new, Image.frombytes ---------------------------- */

static int image_open(lua_State *L) {
  lsdr_args(L);
  image_box *b = push_box(L);
  if (!(b->img = sdr_image_load_source(lua_tostring(L, lsdr_arg(L, 1)), &b->draft, &b->draft_len)))
    return lsdr_engine_error(L);
  return 1;
}

static int image_new(lua_State *L) {
  lsdr_args(L);
  int channels = get_mode(L, 1), w, h;
  lsdr_get_size(L, 2, 0, &w, &h);
  uint8_t color[4];
  lsdr_get_color(L, 3, "color", channels, color);
  image_box *b = push_box(L);
  if (!(b->img = sdr_image_new(w, h, channels)))
    return lsdr_engine_error(L);
  sdr_image_fill(b->img, color, channels);
  return 1;
}

static int image_frombytes(lua_State *L) {
  lsdr_args(L);
  int channels = get_mode(L, 1), w, h;
  lsdr_get_size(L, 2, 0, &w, &h);
  size_t len;
  const char *data = lua_tolstring(L, lsdr_arg(L, 3), &len);
  size_t need = (size_t)w * (size_t)h * (size_t)channels;
  if (len < need)
    return lsdr_error(L, "argument 3 (data): not enough image data (%I bytes for %dx%d %s, got %I)",
                      (lua_Integer)need, w, h, sdr_image_mode_name(channels), (lua_Integer)len);
  image_box *b = push_box(L);
  if (!(b->img = sdr_image_new(w, h, channels)))
    return lsdr_engine_error(L);
  memcpy(b->img->pixels, data, need);
  return 1;
}

/* Image.fromarray(t): a uint8 tensor (H, W), (H, W, 3) or (H, W, 4), as PIL's
 * fromarray takes numpy's arrays (the deep-dive notebook's last step). */
static int image_fromarray(lua_State *L) {
  lsdr_args(L);
  lsdr_tensor *t = lsdr_check_tensor(L, lsdr_arg(L, 1));
  if (t->t.dtype != SDR_U8)
    return lsdr_error(L,
                      "argument 1 (obj): a uint8 tensor expected, got %s (for values in [0, 1]: "
                      "(t * 255):round():to(torch.uint8))",
                      sdr_dtype_name(t->t.dtype));
  int channels = t->t.ndim == 2 ? 1 : t->t.ndim == 3 ? (int)t->t.shape[2] : 0;
  if (channels != 1 && channels != 3 && channels != 4)
    return lsdr_error(L, "argument 1 (obj): shape (H, W), (H, W, 3) or (H, W, 4) expected");
  if (t->t.shape[0] < 1 || t->t.shape[1] < 1 || t->t.shape[0] > SDR_IMAGE_MAX_SIDE ||
      t->t.shape[1] > SDR_IMAGE_MAX_SIDE)
    return lsdr_error(L, "argument 1 (obj): sides must be 1 to %d", SDR_IMAGE_MAX_SIDE);
  image_box *b = push_box(L);
  if (!(b->img = sdr_image_new((int)t->t.shape[1], (int)t->t.shape[0], channels)))
    return lsdr_engine_error(L);
  size_t bytes = sdr_tensor_nbytes(&t->t);
  if (t->t.device == SDR_DEVICE_CPU)
    memcpy(b->img->pixels, t->t.data, bytes);
  else if (sdr_download(t->storage->be, b->img->pixels, t->t.data, bytes) != 0)
    return lsdr_engine_error(L);
  return 1;
}

/* ---- methods ------------------------------------------------------------ */

static int image_convert(lua_State *L) {
  lsdr_args(L);
  sdr_image *img = lsdr_self_image(L);
  int channels = get_mode(L, 1);
  image_box *b = push_box(L);
  if (!(b->img = sdr_image_convert(img, channels)))
    return lsdr_engine_error(L);
  return 1;
}

static int image_resize(lua_State *L) {
  lsdr_args(L);
  sdr_image *img = lsdr_self_image(L);
  int w, h;
  lsdr_get_size(L, 1, 1, &w, &h);
  int resample = lsdr_check_resample(L, 2);
  const int bi = lsdr_arg(L, 3), gi = lsdr_arg(L, 4);
  double box[4];
  if (!lua_isnil(L, bi)) { /* resize(size, resample, box): the region sampled */
    if (!lua_istable(L, bi) || lua_rawlen(L, bi) != 4)
      return lsdr_argerror(L, 3, "{left, upper, right, lower}");
    for (int i = 0; i < 4; i++) {
      lua_rawgeti(L, bi, i + 1);
      if (!lua_isnumber(L, -1))
        return lsdr_argerror(L, 3, "{left, upper, right, lower} of numbers");
      box[i] = lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
  }
  const double gap = lua_isnil(L, gi) ? 0 : lua_tonumber(L, gi);
  image_box *b = push_box(L);
  if (!(b->img = sdr_image_resize_gap(img, w, h, resample, lua_isnil(L, bi) ? NULL : box, gap)))
    return lsdr_engine_error(L);
  return 1;
}

/* PIL rounds crop coordinates with Python's round(): halves go to even. */
static int round_coordinate(lua_State *L, int idx, int *out) {
  if (lua_type(L, idx) != LUA_TNUMBER)
    return 0;
  double v =
      lua_isinteger(L, idx) ? (double)lua_tointeger(L, idx) : nearbyint(lua_tonumber(L, idx));
  if (!(v >= -2147483647.0 && v <= 2147483647.0))
    return 0;
  *out = (int)v;
  return 1;
}

static int image_transpose(lua_State *L) {
  lsdr_args(L);
  sdr_image *img = lsdr_self_image(L);
  const lua_Integer m = lua_tointeger(L, lsdr_arg(L, 1));
  if (m < SDR_FLIP_LEFT_RIGHT || m > SDR_TRANSVERSE)
    return lsdr_error(L, "argument 1 (method): one of Image.Transpose's (0 to 6) expected, got %I",
                      m);
  image_box *b = push_box(L);
  if (!(b->img = sdr_image_transpose(img, (int)m)))
    return lsdr_engine_error(L);
  return 1;
}

static int image_crop(lua_State *L) {
  lsdr_args(L);
  sdr_image *img = lsdr_self_image(L);
  int idx = lsdr_arg(L, 1), box[4] = {0, 0, img->width, img->height};
  if (!lua_isnil(L, idx)) {
    int ok = lua_rawlen(L, idx) == 4;
    for (int i = 0; ok && i < 4; i++) {
      lua_rawgeti(L, idx, i + 1);
      ok = round_coordinate(L, -1, &box[i]);
      lua_pop(L, 1);
    }
    if (!ok)
      return lsdr_error(L, "argument 1 (box): expected {left, upper, right, lower}, got %s",
                        describe_table(L, idx));
  }
  image_box *b = push_box(L);
  if (!(b->img = sdr_image_crop(img, box[0], box[1], box[2], box[3])))
    return lsdr_engine_error(L);
  return 1;
}

/* img:paste(im, box, mask): PIL's semantics. box is nil (the top left
 * corner), {x, y} or {left, upper, right, lower} (which must match the pasted
 * size); an Image in place of box is the mask (PIL's paste(im, mask)). im may
 * be a color, which fills the box. */
static int image_paste(lua_State *L) {
  lsdr_args(L);
  sdr_image *dst = lsdr_self_image(L);
  int box_idx = lsdr_arg(L, 2), mask_idx = lsdr_arg(L, 3);
  if (lsdr_is_type(L, box_idx, LSDR_IMAGE)) {
    if (!lua_isnil(L, mask_idx))
      return lsdr_error(L, "argument 2 (box): an Image here is the mask, so argument 3 (mask) "
                           "must be nil");
    lua_pushvalue(L, box_idx);
    lua_replace(L, mask_idx);
    lua_pushnil(L);
    lua_replace(L, box_idx);
  }
  sdr_image *mask = lua_isnil(L, mask_idx) ? NULL : lsdr_arg_image(L, 3, "mask");
  sdr_image *src = lsdr_is_type(L, lsdr_arg(L, 1), LSDR_IMAGE) ? lsdr_arg_image(L, 1, "im") : NULL;
  int box[4] = {0, 0, 0, 0}, nbox = 2;
  if (!lua_isnil(L, box_idx)) {
    nbox = (int)lua_rawlen(L, box_idx);
    if (nbox != 2)
      nbox = 4;
    get_ints(L, 2, "box", "{x, y} or {left, upper, right, lower} of whole numbers", nbox,
             -2147483647, 2147483647, box);
  }
  if (nbox == 2) {
    const sdr_image *sized = src ? src : mask;
    if (!sized)
      return lsdr_error(L, "cannot determine region size; use a 4-item box");
    long long right = (long long)box[0] + sized->width, lower = (long long)box[1] + sized->height;
    box[2] = (int)(right < 2147483647 ? right : 2147483647); /* clipped away anyway */
    box[3] = (int)(lower < 2147483647 ? lower : 2147483647);
  }
  if (src && nbox == 4 &&
      ((long long)box[2] - box[0] != src->width || (long long)box[3] - box[1] != src->height))
    return lsdr_error(L, "images do not match: box (%d, %d, %d, %d) is not %dx%d", box[0], box[1],
                      box[2], box[3], src->width, src->height);
  int rc;
  if (src) {
    rc = sdr_image_paste(dst, src, box[0], box[1], mask);
  } else {
    uint8_t color[4];
    lsdr_get_color(L, 1, "im", dst->channels, color);
    rc = sdr_image_paste_color(dst, color, box[0], box[1], box[2], box[3], mask);
  }
  return rc == 0 ? 0 : lsdr_engine_error(L);
}

static int image_copy(lua_State *L) {
  lsdr_args(L);
  sdr_image *img = lsdr_self_image(L);
  image_box *b = push_box(L);
  if (!(b->img = sdr_image_copy(img)))
    return lsdr_engine_error(L);
  return 1;
}

static int image_save(lua_State *L) {
  lsdr_args(L);
  sdr_image *img = lsdr_self_image(L);
  if (sdr_image_save(img, lua_tostring(L, lsdr_arg(L, 1))) != 0)
    return lsdr_engine_error(L);
  return 0;
}

/* PIL's getpixel/putpixel coordinates: negative ones count from the far edge. */
static uint8_t *pixel_at(lua_State *L, sdr_image *img) {
  int xy[2];
  get_ints(L, 1, "xy", "{x, y} of whole numbers", 2, -2147483647, 2147483647, xy);
  long long x = xy[0] < 0 ? (long long)xy[0] + img->width : xy[0];
  long long y = xy[1] < 0 ? (long long)xy[1] + img->height : xy[1];
  if (x < 0 || x >= img->width || y < 0 || y >= img->height)
    lsdr_error(L, "image index out of range: {%d, %d} in %dx%d", xy[0], xy[1], img->width,
               img->height);
  return img->pixels + ((size_t)y * (size_t)img->width + (size_t)x) * (size_t)img->channels;
}

static int image_getpixel(lua_State *L) {
  lsdr_args(L);
  sdr_image *img = lsdr_self_image(L);
  const uint8_t *p = pixel_at(L, img);
  if (img->channels == 1) {
    lua_pushinteger(L, p[0]);
    return 1;
  }
  lua_createtable(L, img->channels, 0);
  for (int c = 0; c < img->channels; c++) {
    lua_pushinteger(L, p[c]);
    lua_rawseti(L, -2, c + 1);
  }
  return 1;
}

static int image_putpixel(lua_State *L) {
  lsdr_args(L);
  sdr_image *img = lsdr_self_image(L);
  uint8_t *p = pixel_at(L, img), color[4];
  lsdr_get_color(L, 2, "value", img->channels, color);
  memcpy(p, color, (size_t)img->channels);
  return 0;
}

static int image_tobytes(lua_State *L) {
  lsdr_args(L);
  sdr_image *img = lsdr_self_image(L);
  lua_pushlstring(L, (const char *)img->pixels, sdr_image_bytes(img));
  return 1;
}

static int image_close(lua_State *L) {
  lsdr_args(L);
  image_box *b = luaL_checkudata(L, 1, LSDR_IMAGE);
  sdr_image_free(b->img);
  b->img = NULL;
  drop_draft(b);
  return 0;
}

/* ---- metamethods -------------------------------------------------------- */

static int image_gc(lua_State *L) {
  image_box *b = luaL_checkudata(L, 1, LSDR_IMAGE);
  sdr_image_free(b->img);
  b->img = NULL;
  drop_draft(b);
  return 0;
}

static int image_tostring(lua_State *L) {
  sdr_image *img = peek_image(L, 1);
  if (!img)
    lua_pushliteral(L, "<Image closed>");
  else
    lua_pushfstring(L, "<Image %dx%d %s>", img->width, img->height,
                    sdr_image_mode_name(img->channels));
  return 1;
}

/* As PIL's __eq__: the same mode, size and pixels. */
static int image_eq(lua_State *L) {
  sdr_image *a = lsdr_to_image(L, 1), *b = lsdr_to_image(L, 2);
  lua_pushboolean(L, a && b && a->width == b->width && a->height == b->height &&
                         a->channels == b->channels &&
                         memcmp(a->pixels, b->pixels, sdr_image_bytes(a)) == 0);
  return 1;
}

static void push_size(lua_State *L, const sdr_image *img) {
  lua_createtable(L, 2, 0);
  lua_pushinteger(L, img->width);
  lua_rawseti(L, -2, 1);
  lua_pushinteger(L, img->height);
  lua_rawseti(L, -2, 2);
}

/* Methods first (the upvalue), then the properties, computed per object. */
static int image_index(lua_State *L) {
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL || lua_type(L, 2) != LUA_TSTRING)
    return 1;
  const char *key = lua_tostring(L, 2);
  static const char *const properties[] = {"size", "width", "height", "mode", "info", NULL};
  int which = -1;
  for (int i = 0; properties[i] && which < 0; i++)
    if (strcmp(key, properties[i]) == 0)
      which = i;
  if (which < 0)
    return 1; /* nil, as for any missing field */
  sdr_image *img = peek_image(L, 1);
  if (!img)
    return luaL_error(L, "Image.%s: operation on closed image", key);
  switch (which) {
  case 0:
    push_size(L, img);
    break;
  case 1:
    lua_pushinteger(L, img->width);
    break;
  case 2:
    lua_pushinteger(L, img->height);
    break;
  case 3:
    lua_pushstring(L, sdr_image_mode_name(img->channels));
    break;
  default:
    lua_newtable(L);
    if (img->parameters) {
      lua_pushstring(L, img->parameters);
      lua_setfield(L, -2, "parameters");
    }
    break;
  }
  return 1;
}

/* ---- registration ------------------------------------------------------- */

static const lsdr_func image_functions[] = {
    {"Image.open",
     image_open,
     "Opens an image file (PNG, JPEG, WebP, BMP, GIF, TGA, PSD, PNM); grey files open as L. "
     "A PNG's \"parameters\" text is in img.info.parameters.",
     {{"path", "string"}}},
    {"Image.new",
     image_new,
     "Creates an image of one color (PIL's Image.new).",
     {{"mode", "string", NULL, "\"L\", \"RGB\" or \"RGBA\""},
      {"size", "table", NULL, "{width, height}"},
      {"color", "integer|table", "0",
       "{r, g, b[, a]}, or a number: grey for L, PIL's packed 0xAABBGGRR for RGB(A)"}}},
    {"Image.fromarray",
     image_fromarray,
     "An image from a uint8 tensor (H, W), (H, W, 3) or (H, W, 4) (PIL's fromarray).",
     {{"obj", "Tensor"}}},
    {"Image.frombytes",
     image_frombytes,
     "Creates an image from raw bytes, row by row, channels interleaved (PIL's frombytes).",
     {{"mode", "string"}, {"size", "table", NULL, "{width, height}"}, {"data", "string"}}},
    {0}};

static const lsdr_func image_methods[] = {
    {"Image:convert",
     image_convert,
     "Returns a copy in another mode, with PIL's formulas (L uses ITU-R 601-2 luma; RGBA to "
     "RGB drops alpha).",
     {{"mode", "string", NULL, "\"L\", \"RGB\" or \"RGBA\""}}},
    {"Image:resize",
     image_resize,
     "Returns a resized copy, pixel for pixel as Pillow's resize.",
     {{"size", "table", NULL, "{width, height}"},
      {"resample", "integer", "Image.BICUBIC",
       "Image.NEAREST, BOX, BILINEAR, HAMMING, BICUBIC or LANCZOS"},
      {"box", "table", "nil", "{left, upper, right, lower}: the region to sample (not NEAREST)"},
      {"reducing_gap", "number", "nil",
       "first Image.reduce by whole factors while the filter still shrinks this many times"}}},
    {"Image:transpose",
     image_transpose,
     "Returns a flipped or rotated copy (PIL's transpose).",
     {{"method", "integer", NULL,
       "Image.FLIP_LEFT_RIGHT, FLIP_TOP_BOTTOM, ROTATE_90 (counter-clockwise), ROTATE_180, "
       "ROTATE_270, TRANSPOSE or TRANSVERSE"}}},
    {"Image:crop",
     image_crop,
     "Returns the box {left, upper, right, lower} as a new image; outside the image is zero.",
     {{"box", "table", "nil", "{left, upper, right, lower}; nil copies the whole image"}}},
    {"Image:paste",
     image_paste,
     "Pastes an image (converted to this mode) or fills with a color, in place (PIL's paste).",
     {{"im", "Image|integer|table", NULL, "an Image, or a color to fill the box with"},
      {"box", "table|Image", "nil", "{x, y} or {left, upper, right, lower}; nil is {0, 0}"},
      {"mask", "Image", "nil", "L or RGBA (its alpha): 255 pastes, 0 keeps, between blends"}}},
    {"Image:copy", image_copy, "Returns a copy.", {{0}}},
    {"Image:save",
     image_save,
     "Saves as PNG (with the parameters text) or JPEG (quality 75), by extension; atomically.",
     {{"path", "string", NULL, "ending in .png, .jpg or .jpeg"}}},
    {"Image:getpixel",
     image_getpixel,
     "The pixel at {x, y}: a number for L, {r, g, b[, a]} otherwise.",
     {{"xy", "table", NULL, "{x, y}, 0-based as in PIL; negative counts from the end"}}},
    {"Image:putpixel",
     image_putpixel,
     "Sets the pixel at {x, y}.",
     {{"xy", "table", NULL, "{x, y}, 0-based as in PIL"},
      {"value", "integer|table", NULL, "as Image.new's color"}}},
    {"Image:tobytes",
     image_tobytes,
     "The pixels as a string, row by row, channels interleaved.",
     {{0}}},
    {"Image:close", image_close, "Frees the pixels now; the image can no longer be used.", {{0}}},
    {0}};

static const luaL_Reg image_meta[] = {{"__gc", image_gc},
                                      {"__close", image_gc},
                                      {"__tostring", image_tostring},
                                      {"__eq", image_eq},
                                      {NULL, NULL}};

/* The "Image" metatable, made on first use (lsdr_push_image may come first). */
static void push_metatable(lua_State *L) {
  if (!luaL_newmetatable(L, LSDR_IMAGE))
    return;
  luaL_setfuncs(L, image_meta, 0);
  lua_newtable(L);
  lsdr_register(L, -1, image_methods);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__methods");
  lua_pushcclosure(L, image_index, 1);
  lua_setfield(L, -2, "__index");
}

static void set_filters(lua_State *L, int t) {
  static const struct {
    const char *name;
    int value;
  } filters[] = {{"NEAREST", SDR_RESAMPLE_NEAREST},   {"BOX", SDR_RESAMPLE_BOX},
                 {"BILINEAR", SDR_RESAMPLE_BILINEAR}, {"HAMMING", SDR_RESAMPLE_HAMMING},
                 {"BICUBIC", SDR_RESAMPLE_BICUBIC},   {"LANCZOS", SDR_RESAMPLE_LANCZOS}};
  for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
    lua_pushinteger(L, filters[i].value);
    lua_setfield(L, t, filters[i].name);
  }
}

static void set_transposes(lua_State *L, int t) {
  static const struct {
    const char *name;
    int value;
  } methods[] = {{"FLIP_LEFT_RIGHT", SDR_FLIP_LEFT_RIGHT},
                 {"FLIP_TOP_BOTTOM", SDR_FLIP_TOP_BOTTOM},
                 {"ROTATE_90", SDR_ROTATE_90},
                 {"ROTATE_180", SDR_ROTATE_180},
                 {"ROTATE_270", SDR_ROTATE_270},
                 {"TRANSPOSE", SDR_TRANSPOSE},
                 {"TRANSVERSE", SDR_TRANSVERSE}};
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
    lua_pushinteger(L, methods[i].value);
    lua_setfield(L, t, methods[i].name);
  }
}

static int image_list_index(lua_State *L) {
  if (lua_type(L, 2) == LUA_TNUMBER && lua_tonumber(L, 2) == 0)
    return luaL_error(L, "images[0]: lists count from 1 in Lua; images[1] is the first image, "
                         "images[#images] the last");
  return 0;
}

void lsdr_image_list_meta(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (luaL_newmetatable(L, LSDR_IMAGE_LIST)) {
    lua_pushcfunction(L, image_list_index);
    lua_setfield(L, -2, "__index");
  }
  lua_setmetatable(L, idx);
}

void lsdr_open_image(lua_State *L) {
  push_metatable(L);
  lua_newtable(L);
  int module = lua_gettop(L);
  lsdr_register(L, module, image_functions);
  set_filters(L, module);
  lua_newtable(L); /* Image.Resampling.LANCZOS, as Pillow >= 9 */
  set_filters(L, lua_gettop(L));
  lua_setfield(L, module, "Resampling");
  set_transposes(L, module);
  lua_newtable(L); /* Image.Transpose.FLIP_LEFT_RIGHT, as Pillow >= 9 */
  set_transposes(L, lua_gettop(L));
  lua_setfield(L, module, "Transpose");
  lua_getfield(L, module - 1, "__methods");
  lua_setfield(L, module, "Image");
  lua_setglobal(L, "Image");
  lua_pop(L, 1);
}

void lsdr_register_image_methods(lua_State *L, const lsdr_func *funcs) {
  luaL_getmetatable(L, LSDR_IMAGE);
  lua_getfield(L, -1, "__methods");
  lsdr_register(L, -1, funcs);
  lua_pop(L, 2);
}

/* bindings/image_grid.c — image_grid(imgs, rows, cols), the diffusers notebooks' helper, and
 * make_image_grid(images, rows, cols, resize), diffusers.utils' own.
 *
 * The notebook defines
 *     def image_grid(imgs, rows, cols):
 *         w, h = imgs[0].size
 *         grid = Image.new('RGB', size=(cols*w, rows*h))
 *         for i, img in enumerate(imgs): grid.paste(img, box=(i%cols*w, i//cols*h))
 *         return grid
 * Here the grid takes the first image's mode (so RGBA pictures keep their
 * alpha; the notebook's RGB pictures give RGB as there), rows and cols may
 * come as numbers or as {rows = 1, cols = 3}, and what the Python version
 * would do wrongly is an error: more images than cells, images of
 * different sizes, anything in the list that is not an Image. Fewer images
 * than cells leave the last cells black, as the notebook's loop does.
 *
 * make_image_grid is diffusers': exactly rows * cols images (its assert), each first
 * resized to resize x resize when given (Pillow's default bicubic), pasted at the first
 * one's size into an RGB grid (larger ones overlap their neighbours, as PIL pastes them).
 */
#include <lauxlib.h>

#include "bindings/image.h" // lsdr_push_image_slot, lsdr_to_image
#include "bindings/lsdr.h"  // lsdr_args, lsdr_options, lsdr_register, lsdr_error

static const lsdr_param grid_options[] = {
    {"rows", "integer", NULL, "rows of the grid"}, {"cols", "integer", NULL, "columns"}, {0}};

/* rows and cols as arguments 2 and 3, or as {rows = r, cols = c, ...} in argument 2 (its
 * other fields, named by `more`, into the arguments after 3). */
static void read_rows_cols(lua_State *L, lua_Integer *rows, lua_Integer *cols,
                           const char *const *more) {
  const int rows_idx = lsdr_arg(L, 2), cols_idx = lsdr_arg(L, 3);
  if (lua_istable(L, rows_idx)) {
    if (!lua_isnil(L, cols_idx))
      lsdr_error(L, "argument 3 (cols): give rows and cols as numbers or in the table "
                    "{rows = r, cols = c}, not both");
    lsdr_options(L, 2);
    for (int i = 0; more && more[i]; i++) {
      lua_getfield(L, rows_idx, more[i]);
      lua_replace(L, lsdr_arg(L, 4 + i));
    }
    lua_getfield(L, rows_idx, "cols");
    lua_replace(L, cols_idx);
    lua_getfield(L, rows_idx, "rows");
    lua_replace(L, rows_idx);
  } else if (lua_isnil(L, cols_idx)) {
    lsdr_error(L, "argument 3 (cols): integer expected, got no value");
  }
  *rows = lua_tointeger(L, rows_idx);
  *cols = lua_tointeger(L, cols_idx);
}

static int image_grid(lua_State *L) {
  lsdr_args(L);
  lua_Integer rows, cols;
  read_rows_cols(L, &rows, &cols, NULL);
  if (rows < 1 || cols < 1 || rows > SDR_IMAGE_MAX_SIDE || cols > SDR_IMAGE_MAX_SIDE)
    return lsdr_error(L, "rows and cols must be from 1 to %d, got %I and %I", SDR_IMAGE_MAX_SIDE,
                      rows, cols);

  /* Check every entry before making anything. */
  int list = lsdr_arg(L, 1);
  lua_Integer n = (lua_Integer)lua_rawlen(L, list);
  if (n == 0)
    return lsdr_error(L, "argument 1 (imgs): expected a list of Images, got an empty table");
  if (n > rows * cols)
    return lsdr_error(L, "%I images do not fit in a grid of rows = %I, cols = %I", n, rows, cols);
  const sdr_image *first = NULL;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    const sdr_image *img = lsdr_to_image(L, -1);
    if (!img)
      return lsdr_error(L, "argument 1 (imgs): imgs[%I] is %s, expected an open Image", i,
                        luaL_typename(L, -1));
    if (!first)
      first = img;
    else if (img->width != first->width || img->height != first->height)
      return lsdr_error(L,
                        "argument 1 (imgs): imgs[%I] is %dx%d but imgs[1] is %dx%d; a grid "
                        "needs images of one size",
                        i, img->width, img->height, first->width, first->height);
    lua_pop(L, 1); /* the list keeps it alive */
  }
  long long gw = (long long)cols * first->width, gh = (long long)rows * first->height;
  if (gw > SDR_IMAGE_MAX_SIDE || gh > SDR_IMAGE_MAX_SIDE)
    return lsdr_error(L, "a grid of %I x %I images of %dx%d would be %Ix%I, over %d on a side",
                      rows, cols, first->width, first->height, (lua_Integer)gw, (lua_Integer)gh,
                      SDR_IMAGE_MAX_SIDE);

  sdr_image **slot = lsdr_push_image_slot(L); /* the object first, then its pixels */
  sdr_image *grid = *slot = sdr_image_new((int)gw, (int)gh, first->channels);
  if (!grid)
    return lsdr_engine_error(L);
  for (lua_Integer i = 0; i < n; i++) {
    lua_rawgeti(L, list, i + 1);
    const sdr_image *img = lsdr_to_image(L, -1);
    int x = (int)(i % cols) * first->width, y = (int)(i / cols) * first->height;
    if (sdr_image_paste(grid, img, x, y, NULL) != 0)
      return lsdr_engine_error(L);
    lua_pop(L, 1);
  }
  return 1;
}

static const lsdr_param make_grid_options[] = {{"rows", "integer", NULL, "rows of the grid"},
                                               {"cols", "integer", NULL, "columns"},
                                               {"resize", "integer", "nil", "each image's side"},
                                               {0}};

static int make_image_grid(lua_State *L) {
  lsdr_args(L);
  const int list = lsdr_arg(L, 1), size_idx = lsdr_arg(L, 4);
  static const char *const more[] = {"resize", NULL};
  lua_Integer rows, cols;
  read_rows_cols(L, &rows, &cols, more);
  const lua_Integer n = (lua_Integer)lua_rawlen(L, list);
  if (rows < 1 || cols < 1 || n != rows * cols)
    return lsdr_error(L,
                      "%I images for a grid of rows = %I, cols = %I: len(images) must be "
                      "rows * cols",
                      n, rows, cols);
  const lua_Integer side = lua_isnil(L, size_idx) ? 0 : lua_tointeger(L, size_idx);
  if (!lua_isnil(L, size_idx) && (side < 1 || side > SDR_IMAGE_MAX_SIDE))
    return lsdr_error(L, "option 'resize': a side from 1 to %d expected, got %I",
                      SDR_IMAGE_MAX_SIDE, side);
  /* the images, resized when asked (kept on the stack as Images) */
  lua_createtable(L, (int)n, 0);
  const int sized = lua_gettop(L);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    const sdr_image *img = lsdr_to_image(L, -1);
    if (!img)
      return lsdr_error(L, "argument 1 (images): images[%I] is %s, expected an open Image", i,
                        luaL_typename(L, -1));
    if (side) {
      sdr_image **slot = lsdr_push_image_slot(L);
      if (!(*slot = sdr_image_resize(img, (int)side, (int)side, SDR_RESAMPLE_BICUBIC)))
        return lsdr_engine_error(L);
      lua_remove(L, -2);
    }
    lua_rawseti(L, sized, i);
  }
  lua_rawgeti(L, sized, 1);
  const sdr_image *first = lsdr_to_image(L, -1);
  lua_pop(L, 1);
  const long long gw = (long long)cols * first->width, gh = (long long)rows * first->height;
  if (gw > SDR_IMAGE_MAX_SIDE || gh > SDR_IMAGE_MAX_SIDE)
    return lsdr_error(L, "a grid of %I x %I images of %dx%d would be %Ix%I, over %d on a side",
                      rows, cols, first->width, first->height, (lua_Integer)gw, (lua_Integer)gh,
                      SDR_IMAGE_MAX_SIDE);
  const int w = first->width, h = first->height;
  sdr_image **slot = lsdr_push_image_slot(L);
  sdr_image *grid = *slot = sdr_image_new((int)gw, (int)gh, 3);
  if (!grid)
    return lsdr_engine_error(L);
  for (lua_Integer i = 0; i < n; i++) {
    lua_rawgeti(L, sized, i + 1);
    if (sdr_image_paste(grid, lsdr_to_image(L, -1), (int)(i % cols) * w, (int)(i / cols) * h,
                        NULL) != 0)
      return lsdr_engine_error(L);
    lua_pop(L, 1);
  }
  return 1;
}

static const lsdr_func grid_functions[] = {
    {"make_image_grid",
     make_image_grid,
     "diffusers.utils.make_image_grid: rows x cols images (each resized to resize x resize when "
     "given) in one RGB picture.",
     {{"images", "table", NULL, "rows * cols Images"},
      {"rows", "integer|table", NULL, "a number, or {rows = r, cols = c, resize = s}"},
      {"cols", "integer", "nil"},
      {"resize", "integer", "nil"}},
     make_grid_options},
    {"image_grid",
     image_grid,
     "Pastes images into a rows x cols grid, row by row (the diffusers notebook's helper).",
     {{"imgs", "table", NULL, "a list of Images of one size"},
      {"rows", "integer|table", NULL, "a number, or {rows = r, cols = c}"},
      {"cols", "integer", "nil"}},
     grid_options},
    {0}};

void lsdr_open_image_grid(lua_State *L) {
  lua_pushglobaltable(L);
  lsdr_register(L, -1, grid_functions);
  lua_pop(L, 1);
}

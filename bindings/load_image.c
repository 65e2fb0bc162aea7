/* bindings/load_image.c — diffusers.utils.load_image and PIL's ImageOps.exif_transpose.
 *
 *   init_image = load_image("https://.../sketch.png")   -- or a path, or an Image
 *   upright = ImageOps.exif_transpose(Image.open("photo.jpg"))
 *
 * load_image opens a URL (fetched afresh, as diffusers' requests.get, into a temporary
 * folder removed afterwards) or a file, turns it upright by its EXIF orientation (a phone's
 * photo opens as the sensor stored it), and converts it to RGB, or passes it to
 * convert_method instead.
 */
#include "bindings/image.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "bindings/lsdr.h"   // lsdr_func, lsdr_error, lsdr_is_file
#include "engine/download.h" // sdr_download_file
#include "engine/error.h"    // sdr_fail
#include "engine/image.h"    // sdr_image_load, sdr_image_exif_transpose

/* requests.get(url) then PIL.Image.open: the bytes into a temporary file, decoded there. */
static sdr_image *open_url(const char *url) {
  const char *tmp = getenv("TMPDIR");
  char dir[4096], path[4200];
  snprintf(dir, sizeof dir, "%s/sdrepl-load-image-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) {
    sdr_fail("cannot make a temporary folder in %s: %s", tmp && *tmp ? tmp : "/tmp",
             strerror(errno));
    return NULL;
  }
  snprintf(path, sizeof path, "%s/image", dir);
  const char *slash = strrchr(url, '/');
  sdr_image *img = NULL;
  if (sdr_download_file(url, path, NULL, slash && slash[1] ? slash + 1 : url, 1) == 0)
    img = sdr_image_load(path);
  unlink(path);
  char partial[4300];
  snprintf(partial, sizeof partial, "%s.incomplete", path);
  unlink(partial);
  rmdir(dir);
  return img;
}

/* Pushes an Image that owns what make returns from src (made after the Image, so nothing leaks
 * if either fails); the engine's error when make returns NULL. */
static sdr_image *push_made(lua_State *L, sdr_image *(*make)(const sdr_image *),
                            const sdr_image *src) {
  sdr_image **slot = lsdr_push_image_slot(L);
  if (!(*slot = make(src)))
    lsdr_engine_error(L);
  return *slot;
}

static sdr_image *to_rgb(const sdr_image *img) { return sdr_image_convert(img, 3); }

static int l_load_image(lua_State *L) {
  lsdr_args(L);
  const int arg = lsdr_arg(L, 1), convert = lsdr_arg(L, 2);
  const sdr_image *img = lsdr_to_image(L, arg);
  if (!img && lua_type(L, arg) == LUA_TSTRING) {
    const char *s = lua_tostring(L, arg);
    const int url = strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
    if (!url && !lsdr_is_file(s))
      return lsdr_error(L,
                        "Incorrect path or URL. URLs must start with `http://` or `https://`, "
                        "and %s is not a valid path.",
                        s);
    sdr_image **opened = lsdr_push_image_slot(L); /* the Lua stack owns it from here */
    if (!(*opened = url ? open_url(s) : sdr_image_load(s)))
      return lsdr_engine_error(L);
    img = *opened;
  } else if (!img) {
    return lsdr_error(L, "Incorrect format used for the image. Should be a URL linking to an "
                         "image, a local path, or an Image.");
  }
  const sdr_image *upright = push_made(L, sdr_image_exif_transpose, img);
  if (!lua_isnil(L, convert)) { /* convert_method(image) */
    lua_pushvalue(L, convert);
    lua_insert(L, -2);
    lua_call(L, 1, 1);
    return 1;
  }
  push_made(L, to_rgb, upright);
  return 1;
}

static int l_exif_transpose(lua_State *L) {
  lsdr_args(L);
  const sdr_image *img = lsdr_to_image(L, lsdr_arg(L, 1));
  if (!img)
    return lsdr_error(L, "argument 1 (image): an open Image expected");
  push_made(L, sdr_image_exif_transpose, img);
  return 1;
}

static const lsdr_func global_funcs[] = {
    {"load_image",
     l_load_image,
     "diffusers.utils.load_image: a URL, a path or an Image, turned upright by its EXIF "
     "orientation and converted to RGB (or by convert_method).",
     {{"image", "string|Image"}, {"convert_method", "function", "nil"}}},
    {0}};

static const lsdr_func imageops_funcs[] = {
    {"ImageOps.exif_transpose",
     l_exif_transpose,
     "A copy turned upright by the picture's EXIF orientation (PIL's ImageOps.exif_transpose).",
     {{"image", "Image"}}},
    {0}};

void lsdr_open_load_image(lua_State *L) {
  lua_pushglobaltable(L);
  lsdr_register(L, -1, global_funcs);
  lua_pop(L, 1);
  lua_newtable(L);
  lsdr_register(L, -1, imageops_funcs);
  lua_setglobal(L, "ImageOps");
}

/* repl/display.c — where displayed images go. */
#include "repl/display.h"

#include <stdio.h>

#include <lauxlib.h>

#include "bindings/image.h"    // lsdr_to_image
#include "bindings/lsdr.h"     // lsdr_register, lsdr_args
#include "repl/inline_image.h" // inline_image_detect, inline_image_write
#include "repl/notebook.h"     // notebook_add_image
#include "repl/pretty.h"       // pretty_push
#include "repl/window.h"       // preview_window_show

static notebook *recording;
static int inline_enabled;

void display_set_notebook(notebook *nb) { recording = nb; }
void display_set_inline(int enabled) { inline_enabled = enabled; }

int display_is_displayable(lua_State *L, int idx) {
  if (lsdr_to_image(L, idx))
    return 1;
  if (!lua_istable(L, idx))
    return 0;
  if (lua_getmetatable(L, idx)) { /* an object, unless a pipeline's list of images */
    luaL_getmetatable(L, LSDR_IMAGE_LIST);
    int list = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (!list)
      return 0;
  }
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  if (n == 0)
    return 0;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    int ok = lsdr_to_image(L, -1) != NULL;
    lua_pop(L, 1);
    if (!ok)
      return 0;
  }
  return 1;
}

void display_image(const sdr_image *img, const char *what) {
  char title[256];
  snprintf(title, sizeof title, "%s%s%dx%d %s", what ? what : "", what ? " — " : "", img->width,
           img->height, sdr_image_mode_name(img->channels));
  preview_window_show(img, title);
  int shown = preview_window_is_open();
  if (recording) {
    notebook_add_image(recording, img);
    shown = 1;
  }
  inline_protocol proto = inline_enabled ? inline_image_detect() : INLINE_OFF;
  if (proto != INLINE_OFF) {
    fflush(stdout);
    shown = inline_image_write(stdout, img, proto) == 0 || shown;
    fflush(stdout);
  }
  if (!shown)
    printf("<Image %dx%d %s>\n", img->width, img->height, sdr_image_mode_name(img->channels));
}

void display_value(lua_State *L, int idx, const char *what) {
  idx = lua_absindex(L, idx);
  sdr_image *img = lsdr_to_image(L, idx);
  if (img) {
    display_image(img, what);
    return;
  }
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    char label[300];
    snprintf(label, sizeof label, "%s[%lld]", what ? what : "", (long long)i);
    display_image(lsdr_to_image(L, -1), label);
    lua_pop(L, 1);
  }
}

static int display_global(lua_State *L) {
  lsdr_args(L);
  if (display_is_displayable(L, 1)) {
    display_value(L, 1, NULL);
    return 0;
  }
  lua_getglobal(L, "print");
  if (lua_istable(L, 1))
    pretty_push(L, 1);
  else
    lua_pushvalue(L, 1);
  lua_call(L, 1, 0);
  return 0;
}

/* PIL's img.show(title): PIL hands the picture to an external viewer; here it is shown as a
 * cell's last value is. */
static int image_show(lua_State *L) {
  lsdr_args(L);
  if (!lsdr_to_image(L, 1))
    return luaL_error(L, "Image:show: operation on closed image");
  display_value(L, 1, lua_tostring(L, 2));
  return 0;
}

static const lsdr_func image_funcs[] = {
    {"Image:show",
     image_show,
     "Shows the picture in the preview window (and the terminal, and the notebook record), "
     "as a cell's last value is shown.",
     {{"title", "string", "nil"}}},
    {0}};

static const lsdr_func display_funcs[] = {
    {"display",
     display_global,
     "Shows an Image or a list of Images (window, terminal, notebook); prints anything else.",
     {{"value", "any"}}},
    {0}};

void display_open(lua_State *L) {
  lua_pushglobaltable(L);
  lsdr_register(L, -1, display_funcs);
  lua_pop(L, 1);
  /* the Image class's own methods table (bindings/image.c), where show belongs */
  luaL_getmetatable(L, LSDR_IMAGE);
  lua_getfield(L, -1, "__methods");
  lsdr_register(L, -1, image_funcs);
  lua_pop(L, 2);
}

/* bindings/bindings.c — opens every module into a fresh Lua state. */
#include "bindings/bindings.h"

#include <lauxlib.h>
#include <lualib.h>

#include "bindings/download.h" // lsdr_open_download
#include "bindings/image.h"    // lsdr_open_image, lsdr_open_image_grid
#include "bindings/lsdr.h"     // lsdr_open_help

void lsdr_open_all(lua_State *L) {
  luaL_openlibs(L);
  lsdr_open_help(L);
  lsdr_open_image(L);
  lsdr_open_image_grid(L);
  lsdr_open_download(L);
}

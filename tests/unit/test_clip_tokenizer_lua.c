/* tests/unit/test_clip_tokenizer_lua.c — runs tests/lua/test_clip_tokenizer.lua on a bare state.
 *
 * The Lua test also runs under sdrepl once bindings/bindings.c opens
 * CLIPTokenizer; this runner opens just the standard libraries, help() and
 * CLIPTokenizer, so the binding is tested on its own.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lualib.h>

#include "bindings/clip_tokenizer.h" // lsdr_open_clip_tokenizer
#include "bindings/lsdr.h"           // lsdr_open_help

static int traceback(lua_State *L) {
  luaL_traceback(L, L, lua_tostring(L, 1), 1);
  return 1;
}

int main(void) {
  const char *src = getenv("SDREPL_SOURCE_DIR");
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/tests/lua/test_clip_tokenizer.lua", src ? src : ".");
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  lsdr_open_help(L);
  lsdr_open_clip_tokenizer(L);
  lua_pushcfunction(L, traceback);
  int rc = luaL_loadfile(L, path);
  if (rc == LUA_OK)
    rc = lua_pcall(L, 0, 0, 1);
  if (rc != LUA_OK)
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
  lua_close(L);
  return rc == LUA_OK ? 0 : 1;
}

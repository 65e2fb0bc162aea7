/* PLACEHOLDER: replaced by the notebook work. */
#include "repl/script.h"
#include <stdio.h>
#include <lauxlib.h>
#include "repl/run.h"
int script_run_file(lua_State *L, const char *path, const script_options *opts) {
  if (luaL_loadfile(L, path) != LUA_OK || run_call(L, 0) != LUA_OK) { fprintf(stderr, "%s\n", lua_tostring(L, -1)); lua_pop(L,1); return 1; }
  lua_settop(L, 0); return 0;
}

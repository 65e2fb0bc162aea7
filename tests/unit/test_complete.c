/* repl/complete: what Tab offers, and that it never runs user code. */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "check.h"
#include "repl/complete.h"

static int has(char **c, const char *s) {
  for (int i = 0; c && c[i]; i++)
    if (strcmp(c[i], s) == 0)
      return 1;
  return 0;
}

static int count(char **c) {
  int n = 0;
  while (c && c[n])
    n++;
  return n;
}

static void release(char **c) {
  for (int i = 0; c && c[i]; i++)
    free(c[i]);
  free(c);
}

int main(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_dostring(L, "pipe = setmetatable({unet = {}}, {__index = {enable_attention_slicing = "
                   "function() end, enable_vae_tiling = function() end, to = function() end, "
                   "scale = 1}})\n"
                   "trap = setmetatable({}, {__index = function() error('ran user code') end})\n"
                   "_hidden = 1\n"
                   "obj = setmetatable({}, {__index = function() end, __fields = {resize = print, "
                   "size = true}})");

  char **c = complete_candidates(L, "pipe:enable_");
  CHECK(count(c) == 2 && has(c, "pipe:enable_attention_slicing") && has(c, "pipe:enable_vae_tiling"));
  release(c);
  /* After ':' only functions; after '.' every field. */
  c = complete_candidates(L, "pipe:");
  CHECK(!has(c, "pipe:scale") && !has(c, "pipe:unet") && has(c, "pipe:to"));
  release(c);
  c = complete_candidates(L, "pipe.");
  CHECK(has(c, "pipe.scale") && has(c, "pipe.unet") && has(c, "pipe.to"));
  release(c);
  c = complete_candidates(L, "string.up");
  CHECK(count(c) == 1 && has(c, "string.upper"));
  release(c);
  c = complete_candidates(L, "pri");
  CHECK(has(c, "print"));
  release(c);
  c = complete_candidates(L, "fun");
  CHECK(has(c, "function"));
  release(c);
  /* Names starting with '_' only when asked for. */
  c = complete_candidates(L, "");
  CHECK(!has(c, "_hidden") && has(c, "pipe"));
  release(c);
  c = complete_candidates(L, "_h");
  CHECK(has(c, "_hidden"));
  release(c);
  /* A type with an __index function lists its members in __fields. */
  c = complete_candidates(L, "obj:re");
  CHECK(count(c) == 1 && has(c, "obj:resize"));
  release(c);
  c = complete_candidates(L, "obj.s");
  CHECK(count(c) == 1 && has(c, "obj.size"));
  release(c);
  /* An __index function is never called. */
  c = complete_candidates(L, "trap.x");
  CHECK(count(c) == 0);
  release(c);
  c = complete_candidates(L, "nosuch.x");
  CHECK(count(c) == 0);
  release(c);
  CHECK(lua_gettop(L) == 0);
  lua_close(L);
  return check_exit();
}

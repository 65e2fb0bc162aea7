/* repl/run: which code shows which values, as lua.c and Jupyter would. */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "check.h"
#include "repl/run.h"

/* Runs code and returns what it yields, as "v1,v2" ("" for nothing), or
 * "ERR:<msg>" / "INCOMPLETE". */
static const char *yields(lua_State *L, const char *code) {
  static char out[256];
  int quiet;
  lua_settop(L, 0);
  int status = run_compile(L, code, strlen(code), "=test", &quiet);
  if (status == RUN_INCOMPLETE)
    return "INCOMPLETE";
  if (status == LUA_OK)
    status = run_call(L, 0);
  if (status != LUA_OK) {
    snprintf(out, sizeof out, "ERR:%s", lua_tostring(L, -1));
    return out;
  }
  out[0] = 0;
  if (quiet)
    snprintf(out, sizeof out, "QUIET");
  for (int i = 1; i <= lua_gettop(L); i++) {
    size_t n = strlen(out);
    snprintf(out + n, sizeof out - n, "%s%s", i > 1 ? "," : "", luaL_tolstring(L, i, NULL));
    lua_pop(L, 1);
  }
  return out;
}

int main(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);

  CHECK_STR(yields(L, "1 + 1"), "2");
  CHECK_STR(yields(L, "x = 3"), "");
  CHECK_STR(yields(L, "x"), "3");
  CHECK_STR(yields(L, "x, x * 2"), "3,6");
  /* The last expression of several lines is the result (Jupyter's cell rule). */
  CHECK_STR(yields(L, "local a = 10\nlocal b = 20\na + b"), "30");
  CHECK_STR(yields(L, "y = 5; y * 1000"), "5000");
  CHECK_STR(yields(L, "local t = {}\nt.k = 'v'\nt.k"), "v");
  /* An expression split over lines is found whole. */
  CHECK_STR(yields(L, "z = 1\nmath.max(z,\n  7)"), "7");
  /* A call as the last line shows its results. */
  CHECK_STR(yields(L, "x = 4\nstring.rep('a', x)"), "aaaa");
  /* A trailing ';' runs and shows nothing. */
  CHECK_STR(yields(L, "w = 9; w * 2;"), "QUIET18");
  CHECK_STR(yields(L, "w"), "9");
  /* Statement-only code yields nothing and is not rewritten. */
  CHECK_STR(yields(L, "s = 0\nfor i = 1, 3 do\n  s = s + i\nend"), "");
  CHECK_STR(yields(L, "s"), "6");
  /* "return" must not be slipped inside a block: the loop runs all its turns. */
  CHECK_STR(yields(L, "n = 0\nfor i = 1, 3 do\n  n = n + 1\nend"), "");
  CHECK_STR(yields(L, "n"), "3");
  /* A line that could continue the one before is not split off:
   * "v = 1\n-v" is "v = 1 - v" in Lua. */
  CHECK_STR(yields(L, "v = 2"), "");
  CHECK_STR(yields(L, "v = 1\n-v"), "");
  CHECK_STR(yields(L, "v"), "-1");
  /* Incomplete chunks ask for more lines; real syntax errors are errors. */
  CHECK_STR(yields(L, "function f(a)"), "INCOMPLETE");
  CHECK_STR(yields(L, "t = {1, 2,"), "INCOMPLETE");
  CHECK(strncmp(yields(L, "x = = 1"), "ERR:test:1:", 11) == 0);
  /* Runtime errors carry a traceback. */
  const char *e = yields(L, "error('boom')");
  CHECK(strstr(e, "boom") && strstr(e, "stack traceback"));
  lua_close(L);
  return check_exit();
}

/* repl/pretty: tables printed readably, within bounds, cycles safe. */
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "check.h"
#include "repl/pretty.h"

static const char *pretty(lua_State *L, const char *expr) {
  static char out[4096];
  lua_settop(L, 0);
  char code[512];
  snprintf(code, sizeof code, "return %s", expr);
  if (luaL_dostring(L, code) != LUA_OK)
    return lua_tostring(L, -1);
  pretty_push(L, 1);
  snprintf(out, sizeof out, "%s", lua_tostring(L, -1));
  return out;
}

int main(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  CHECK_STR(pretty(L, "{}"), "{}");
  CHECK_STR(pretty(L, "{1, 2, 3}"), "{1, 2, 3}");
  CHECK_STR(pretty(L, "{b = 2, a = 'x', [10] = true}"), "{[10] = true, a = \"x\", b = 2}");
  CHECK_STR(pretty(L, "{['not ident'] = 1, ['end'] = 2}"), "{[\"end\"] = 2, [\"not ident\"] = 1}");
  CHECK_STR(pretty(L, "{'line\\nbreak'}"), "{\"line\\nbreak\"}");
  /* Depth bound. */
  CHECK_STR(pretty(L, "{{{{{1}}}}}"), "{{{{{...}}}}}");
  /* Length bound: 50 entries then "...". */
  const char *s = pretty(L, "(function() local t = {} for i = 1, 200 do t[i] = i end return t end)()");
  CHECK(strstr(s, "50,") && !strstr(s, "51") && strstr(s, "..."));
  /* A cycle is named, not followed. */
  s = pretty(L, "(function() local t = {name = 'self'} t.me = t return t end)()");
  CHECK(strstr(s, "me = <cycle>") != NULL);
  /* Long tables go over several indented lines. */
  s = pretty(L, "{alpha = string.rep('a', 40), beta = string.rep('b', 40)}");
  CHECK(strstr(s, "{\n  alpha = ") && strstr(s, ",\n  beta = ") && s[strlen(s) - 1] == '}');
  /* A table with __tostring prints as it says. */
  CHECK_STR(pretty(L, "setmetatable({}, {__tostring = function() return '<Thing>' end})"), "<Thing>");
  lua_close(L);
  return check_exit();
}

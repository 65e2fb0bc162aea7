/* bindings/lsdr: argument checks, defaults, options and help from one spec. */
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "bindings/lsdr.h"
#include "check.h"

/* sample(name, count=3, scale=0.5): returns its arguments as the binding sees them. */
static int sample(lua_State *L) {
  lsdr_args(L);
  return 3;
}

/* grid(imgs, opts): returns opts.rows, opts.cols, opts.label. */
static int grid(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  lua_getfield(L, 2, "rows");
  lua_getfield(L, 2, "cols");
  lua_getfield(L, 2, "label");
  return 3;
}

static const lsdr_param grid_options[] = {
    {"rows", "integer", "1"}, {"cols", "integer"}, {"label", "string", "\"grid\""}, {0}};

static const lsdr_func funcs[] = {
    {"M.sample",
     sample,
     "Returns its arguments.",
     {{"name", "string"}, {"count", "integer", "3"}, {"scale", "number", "0.5"}}},
    {"M.grid",
     grid,
     "Keyword options.",
     {{"imgs", "table"}, {"opts", "table", "nil"}},
     grid_options},
    {"M.__call", sample, "Makes one.", {{"cls", "table"}, {"name", "string"}}},
    {0}};

static const char *run(lua_State *L, const char *code) {
  static char out[512];
  lua_settop(L, 0);
  if (luaL_dostring(L, code) != LUA_OK)
    snprintf(out, sizeof out, "ERR:%s", lua_tostring(L, -1));
  else
    snprintf(out, sizeof out, "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
  return out;
}

int main(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  lua_newtable(L);
  lsdr_register(L, -1, funcs);
  lua_setglobal(L, "M");
  lsdr_open_help(L);

  CHECK_STR(run(L, "local a, b, c = M.sample('x') return a .. b .. c"), "x30.5");
  CHECK_STR(run(L, "local a, b, c = M.sample('x', 7, 2) return a .. b .. c"), "x72");
  /* A float with an integer value is an integer, as torch and Python accept 3.0. */
  CHECK_STR(run(L, "local a, b = M.sample('x', 4.0) return a .. b"), "x4.0");
  CHECK_STR(run(L, "M.sample(42)"), "ERR:M.sample: argument 1 (name): string expected, got number");
  CHECK_STR(run(L, "M.sample()"), "ERR:M.sample: argument 1 (name): string expected, got no value");
  CHECK_STR(run(L, "M.sample('x', 1.5)"),
            "ERR:M.sample: argument 2 (count): integer expected, got number");
  CHECK_STR(run(L, "M.sample('x', 1, 2, 3)"), "ERR:M.sample: takes at most 3 arguments, got 4");

  CHECK_STR(run(L, "local r, c, l = M.grid({}, {cols = 3}) return r .. c .. l"), "13grid");
  CHECK_STR(
      run(L, "local r, c, l = M.grid({}, {rows = 2, cols = 3, label = 'x'}) return r .. c .. l"),
      "23x");
  CHECK_STR(run(L, "M.grid({}, {cols = 3, colz = 2})"),
            "ERR:M.grid: unexpected option 'colz' (expected one of: rows, cols, label)");
  CHECK_STR(run(L, "M.grid({}, {cols = 'three'})"),
            "ERR:M.grid: option 'cols': integer expected, got string");
  CHECK_STR(run(L, "M.grid({})"), "ERR:M.grid: option 'cols' is required (integer)");

  /* help text comes from the same table. */
  lua_settop(L, 0);
  lua_getglobal(L, "M");
  lua_getfield(L, 1, "sample");
  lsdr_push_help(L, 2);
  const char *h = lua_tostring(L, -1);
  CHECK(h && strstr(h, "M.sample(name, count=3, scale=0.5)"));
  CHECK(h && strstr(h, "Returns its arguments."));
  lua_getfield(L, 1, "grid");
  lsdr_push_help(L, -1);
  h = lua_tostring(L, -1);
  CHECK(h && strstr(h, "rows: integer = 1") && strstr(h, "label: string = \"grid\""));
  /* A module lists its documented functions. */
  lsdr_push_help(L, 1);
  h = lua_tostring(L, -1);
  CHECK(h && strstr(h, "M.grid(imgs, opts=nil)") && strstr(h, "M.sample(name"));
  /* A class called as M(name): its metatable's __call is listed as that call. */
  CHECK_STR(run(L, "setmetatable(M, {__call = M.__call}) M.__call = nil"), "?");
  lua_settop(L, 0);
  lua_getglobal(L, "M");
  lsdr_push_help(L, 1);
  h = lua_tostring(L, -1);
  CHECK(h && strstr(h, "\n  M(name)\n      Makes one."));
  CHECK(h && !strstr(h, "__call"));
  CHECK_STR(run(L, "help(42)"), "?"); /* prints "no help", returns nothing */
  CHECK_STR(run(L, "help('no.such.name')"), "ERR:help: no such name 'no.such.name'");
  lua_close(L);
  return check_exit();
}

/* bindings/lsdr.c — argument specs: checks, defaults and help from one table. */
#include "bindings/lsdr.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/error.h" // sdr_last_error

static const char SPECS_KEY[] = "sdrepl.specs"; /* function -> lightuserdata(lsdr_func) */
static const char EXPRS_KEY[] = "sdrepl.exprs"; /* default expression -> value */

static void push_weak_registry_table(lua_State *L, const char *key, const char *mode) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, key) == LUA_TTABLE)
    return;
  lua_pop(L, 1);
  lua_newtable(L);
  if (mode) {
    lua_newtable(L);
    lua_pushstring(L, mode);
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
  }
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, key);
}

static const char *short_name(const char *name) {
  const char *dot = strrchr(name, '.'), *colon = strrchr(name, ':');
  const char *sep = dot > colon ? dot : colon;
  return sep ? sep + 1 : name;
}

static int is_method(const lsdr_func *f) { return strchr(f->name, ':') != NULL; }

static int param_count(const lsdr_func *f) {
  int n = 0;
  while (n < LSDR_MAX_PARAMS && f->params[n].name)
    n++;
  return n;
}

void lsdr_register(lua_State *L, int t_idx, const lsdr_func *funcs) {
  t_idx = lua_absindex(L, t_idx);
  push_weak_registry_table(L, SPECS_KEY, "k");
  for (const lsdr_func *f = funcs; f->name; f++) {
    lua_pushlightuserdata(L, (void *)f);
    lua_pushcclosure(L, f->fn, 1);
    lua_pushvalue(L, -1);
    lua_pushlightuserdata(L, (void *)f);
    lua_rawset(L, -4);
    lua_setfield(L, t_idx, short_name(f->name));
  }
  lua_pop(L, 1);
}

void lsdr_set_class(lua_State *L, const char *name, const lsdr_func *funcs) {
  lua_newtable(L);
  lsdr_register(L, -1, funcs);
  if (lua_getfield(L, -1, "__call") != LUA_TNIL) {
    lua_createtable(L, 0, 1);
    lua_insert(L, -2);
    lua_setfield(L, -2, "__call");
    lua_setmetatable(L, -2);
    lua_pushnil(L);
    lua_setfield(L, -2, "__call");
  } else {
    lua_pop(L, 1);
  }
  lua_setglobal(L, name);
}

const lsdr_func *lsdr_current(lua_State *L) {
  return (const lsdr_func *)lua_touserdata(L, lua_upvalueindex(1));
}

int lsdr_arg(lua_State *L, int param) {
  const lsdr_func *f = lsdr_current(L);
  return param + (f && is_method(f) ? 1 : 0);
}

/* What a value is, for "expected, got X": a userdata's type name when it has one. */
const char *lsdr_typename(lua_State *L, int idx) {
  if (lua_isnone(L, idx))
    return "no value";
  int t = luaL_getmetafield(L, idx, "__name");
  if (t != LUA_TNIL) {
    const char *name = t == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1); /* the metatable keeps the string alive */
    if (name && (lua_type(L, idx) == LUA_TUSERDATA || lua_type(L, idx) == LUA_TTABLE))
      return name;
  }
  return luaL_typename(L, idx);
}

int lsdr_error(lua_State *L, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const lsdr_func *f = lsdr_current(L);
  if (f)
    lua_pushfstring(L, "%s: ", f->name);
  else /* a metamethod of no lsdr_func (weight[i] = v): where luaL_error would say */
    luaL_where(L, 1);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_concat(L, 2);
  lua_error(L);
#if defined(__GNUC__)
  __builtin_unreachable(); /* lua_error longjmps */
#else
  return 0;
#endif
}

int lsdr_engine_error(lua_State *L) { lsdr_error(L, "%s", sdr_last_error()); }

LSDR_NORETURN static int param_error(lua_State *L, int param, const char *pname,
                                     const char *expected, int idx) {
  lsdr_error(L, "argument %d (%s): %s expected, got %s", param, pname, expected,
             lsdr_typename(L, idx));
}

int lsdr_is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int lsdr_is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int lsdr_argerror(lua_State *L, int param, const char *expected) {
  const lsdr_func *f = lsdr_current(L);
  const char *pname = f && param >= 1 && param <= param_count(f) ? f->params[param - 1].name : "?";
  param_error(L, param, pname, expected, lsdr_arg(L, param));
}

static int is_one_type(lua_State *L, int idx, const char *t, size_t n) {
#define IS(lit) (n == sizeof(lit) - 1 && memcmp(t, lit, n) == 0)
  int lt = lua_type(L, idx);
  if (IS("any"))
    return lt != LUA_TNIL && lt != LUA_TNONE;
  if (IS("string"))
    return lt == LUA_TSTRING;
  if (IS("number"))
    return lt == LUA_TNUMBER;
  if (IS("integer")) {
    if (lt != LUA_TNUMBER)
      return 0;
    if (lua_isinteger(L, idx))
      return 1;
    lua_Number x = lua_tonumber(L, idx);
    return x == floor(x) && fabs(x) < 9.0e15;
  }
  if (IS("boolean"))
    return lt == LUA_TBOOLEAN;
  if (IS("table"))
    return lt == LUA_TTABLE;
  if (IS("function"))
    return lt == LUA_TFUNCTION;
  if (IS("userdata"))
    return lt == LUA_TUSERDATA;
#undef IS
  /* A type name: a userdata, or a table object, whose metatable has that __name. */
  if ((lt != LUA_TUSERDATA && lt != LUA_TTABLE) || !lua_getmetatable(L, idx))
    return 0;
  lua_getfield(L, -1, "__name");
  size_t len;
  const char *name = lua_tolstring(L, -1, &len);
  int ok = name && len == n && memcmp(name, t, n) == 0;
  lua_pop(L, 2);
  return ok;
}

int lsdr_is_type(lua_State *L, int idx, const char *type) {
  idx = lua_absindex(L, idx);
  for (const char *p = type; *p;) {
    const char *bar = strchr(p, '|');
    size_t n = bar ? (size_t)(bar - p) : strlen(p);
    if (is_one_type(L, idx, p, n))
      return 1;
    if (!bar)
      break;
    p = bar + 1;
  }
  return 0;
}

void lsdr_push_expr(lua_State *L, const char *expr) {
  push_weak_registry_table(L, EXPRS_KEY, NULL);
  if (lua_getfield(L, -1, expr) != LUA_TNIL) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  lua_pushfstring(L, "return %s", expr);
  if (luaL_loadbuffer(L, lua_tostring(L, -1), lua_rawlen(L, -1), "=default") != LUA_OK)
    lua_error(L);
  lua_remove(L, -2);
  lua_call(L, 0, 1);
  /* A table or userdata default is made afresh each call: a shared one could be mutated. */
  int t = lua_type(L, -1);
  if (t != LUA_TTABLE && t != LUA_TUSERDATA && t != LUA_TNIL) {
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, expr);
  }
  lua_remove(L, -2);
}

static void check_self(lua_State *L, const lsdr_func *f) {
  const char *colon = strchr(f->name, ':');
  size_t n = (size_t)(colon - f->name);
  if (!is_one_type(L, 1, f->name, n)) {
    char type[128];
    snprintf(type, sizeof type, "%.*s", (int)n, f->name);
    lua_pushfstring(L, "%s: self: %s expected, got %s (call it as x:%s(...))", f->name, type,
                    lsdr_typename(L, 1), short_name(f->name));
    lua_error(L);
  }
}

void lsdr_args(lua_State *L) {
  const lsdr_func *f = lsdr_current(L);
  if (!f)
    luaL_error(L, "lsdr_args called from an unregistered function");
  int base = is_method(f) ? 1 : 0, n = param_count(f);
  if (base)
    check_self(L, f);
  int given = lua_gettop(L) - base;
  if (given > n)
    lsdr_error(L, "takes at most %d argument%s, got %d", n, n == 1 ? "" : "s", given);
  lua_settop(L, base + n);
  for (int i = 1; i <= n; i++) {
    const lsdr_param *p = &f->params[i - 1];
    int idx = base + i;
    if (lua_isnil(L, idx)) {
      if (!p->dflt)
        param_error(L, i, p->name, p->type, i <= given ? idx : lua_gettop(L) + 1);
      lsdr_push_expr(L, p->dflt);
      lua_replace(L, idx);
      if (lua_isnil(L, idx))
        continue;
    }
    if (!lsdr_is_type(L, idx, p->type))
      param_error(L, i, p->name, p->type, idx);
  }
}

static const lsdr_param *find_option(const lsdr_param *opts, const char *name) {
  for (const lsdr_param *o = opts; o && o->name; o++)
    if (strcmp(o->name, name) == 0)
      return o;
  return NULL;
}

void lsdr_options(lua_State *L, int param) {
  const lsdr_func *f = lsdr_current(L);
  int idx = lsdr_arg(L, param);
  if (!lua_isnil(L, idx) && !lua_istable(L, idx))
    lsdr_argerror(L, param, "table");
  lua_newtable(L);
  int out = lua_gettop(L);
  if (lua_istable(L, idx)) {
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      if (lua_type(L, -2) != LUA_TSTRING) {
        /* A positional entry inside a keyword table is a typo we can name. */
        lsdr_error(
            L, "argument %d: unexpected positional value in the options table (use name = value)",
            param);
      }
      const char *key = lua_tostring(L, -2);
      const lsdr_param *o = find_option(f->options, key);
      if (!o) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (const lsdr_param *q = f->options; q && q->name; q++) {
          if (q != f->options)
            luaL_addstring(&b, ", ");
          luaL_addstring(&b, q->name);
        }
        luaL_pushresult(&b);
        lsdr_error(L, "unexpected option '%s' (expected one of: %s)", key, lua_tostring(L, -1));
      }
      if (!lsdr_is_type(L, -1, o->type))
        lsdr_error(L, "option '%s': %s expected, got %s", key, o->type, lsdr_typename(L, -1));
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, out);
    }
  }
  for (const lsdr_param *o = f->options; o && o->name; o++) {
    if (lua_getfield(L, out, o->name) != LUA_TNIL) {
      lua_pop(L, 1);
      continue;
    }
    lua_pop(L, 1);
    if (!o->dflt)
      lsdr_error(L, "option '%s' is required (%s)", o->name, o->type);
    lsdr_push_expr(L, o->dflt);
    lua_setfield(L, out, o->name);
  }
  lua_replace(L, idx);
}

/* ---- help ------------------------------------------------------------- */

/* A class's constructor is spec'd as "Cls.__call(cls, ...)" but typed Cls(...). */
static int is_class_call(const lsdr_func *f) {
  const char *dot = strrchr(f->name, '.');
  return dot && strcmp(dot, ".__call") == 0;
}

static void add_signature(luaL_Buffer *b, const lsdr_func *f) {
  int first = 0;
  if (is_class_call(f)) {
    luaL_addlstring(b, f->name, strlen(f->name) - strlen(".__call"));
    first = 1;
  } else {
    luaL_addstring(b, f->name);
  }
  luaL_addchar(b, '(');
  for (int i = first; i < param_count(f); i++) {
    const lsdr_param *p = &f->params[i];
    if (i > first)
      luaL_addstring(b, ", ");
    luaL_addstring(b, p->name);
    if (p->dflt) {
      luaL_addchar(b, '=');
      luaL_addstring(b, p->dflt);
    }
  }
  luaL_addchar(b, ')');
}

static void add_param_lines(luaL_Buffer *b, const lsdr_param *ps, int n, const char *title) {
  if (n == 0)
    return;
  luaL_addstring(b, "\n  ");
  luaL_addstring(b, title);
  for (int i = 0; i < n; i++) {
    const lsdr_param *p = &ps[i];
    luaL_addstring(b, "\n    ");
    luaL_addstring(b, p->name);
    luaL_addstring(b, ": ");
    luaL_addstring(b, p->type);
    if (p->dflt) {
      luaL_addstring(b, " = ");
      luaL_addstring(b, p->dflt);
    }
    if (p->doc) {
      luaL_addstring(b, "  -- ");
      luaL_addstring(b, p->doc);
    }
  }
}

static const lsdr_func *spec_of(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (!lua_isfunction(L, idx))
    return NULL;
  push_weak_registry_table(L, SPECS_KEY, "k");
  lua_pushvalue(L, idx);
  lua_rawget(L, -2);
  const lsdr_func *f = lua_touserdata(L, -1);
  lua_pop(L, 2);
  return f;
}

static void add_func_help(luaL_Buffer *b, const lsdr_func *f) {
  add_signature(b, f);
  if (f->doc) {
    luaL_addstring(b, "\n  ");
    luaL_addstring(b, f->doc);
  }
  add_param_lines(b, f->params, param_count(f), "arguments:");
  int nopt = 0;
  while (f->options && f->options[nopt].name)
    nopt++;
  add_param_lines(b, f->options, nopt, "options (in the table):");
}

static void push_member_line(lua_State *L, const lsdr_func *f) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  add_signature(&b, f);
  if (f->doc) {
    luaL_addstring(&b, "\n      ");
    luaL_addstring(&b, f->doc);
  }
  luaL_pushresult(&b);
}

/* For a module or an object: pushes a title line, then the signature and one
 * line of each documented function, sorted; returns 0 (nothing pushed) when
 * there is none. */
static int push_members_help(lua_State *L, int idx, const char *title) {
  const int top = lua_gettop(L);
  /* An object's methods are in its metatable's __index when that is a table,
   * else in __methods (types whose __index is a function, for properties); a
   * plain table (a module) lists its own fields. */
  int tbl = 0;
  if (luaL_getmetafield(L, idx, "__index") == LUA_TTABLE)
    tbl = lua_gettop(L);
  else if (lua_settop(L, top), luaL_getmetafield(L, idx, "__methods") == LUA_TTABLE)
    tbl = lua_gettop(L);
  else if (lua_settop(L, top), lua_istable(L, idx))
    tbl = idx;
  else
    return 0;
  lua_newtable(L);
  int list = lua_gettop(L), n = 0;
  lua_pushnil(L);
  while (lua_next(L, tbl)) {
    const lsdr_func *f = spec_of(L, -1);
    lua_pop(L, 1);
    if (f && lua_type(L, -1) == LUA_TSTRING) {
      push_member_line(L, f);
      lua_rawseti(L, list, ++n);
    }
  }
  /* The call itself (pipe(...), Cls(components)) sits in the metatable, off the list. */
  if (luaL_getmetafield(L, idx, "__call") != LUA_TNIL) {
    const lsdr_func *f = spec_of(L, -1);
    lua_pop(L, 1);
    if (f) {
      push_member_line(L, f);
      lua_rawseti(L, list, ++n);
    }
  }
  if (n == 0) {
    lua_settop(L, top);
    return 0;
  }
  lua_getglobal(L, "table");
  lua_getfield(L, -1, "sort");
  lua_pushvalue(L, list);
  lua_call(L, 1, 0);
  lua_pop(L, 1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, title);
  for (int i = 1; i <= n; i++) {
    luaL_addstring(&b, "\n  ");
    lua_rawgeti(L, list, i);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
  return 1;
}

int lsdr_push_help(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  const lsdr_func *f = spec_of(L, idx);
  if (f) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    add_func_help(&b, f);
    luaL_pushresult(&b);
    return 1;
  }
  char title[160];
  /* a module or a class table (whose metatable, if any, only makes it callable) */
  int plain = lua_istable(L, idx) && luaL_getmetafield(L, idx, "__name") == LUA_TNIL;
  if (!plain && lua_istable(L, idx))
    lua_pop(L, 1);
  if (plain)
    snprintf(title, sizeof title, "members:");
  else
    snprintf(title, sizeof title, "%s methods:", lsdr_typename(L, idx));
  if (push_members_help(L, idx, title))
    return 1;
  lua_pushnil(L);
  return 1;
}

/* help(x): x a documented function, module or object, or the name of one. */
static int help_global(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_getglobal(L, "print");
    lua_pushliteral(L, "sdrepl: Stable Diffusion at a Lua prompt.\n"
                       "  help(f) or ?f    what f takes and does (f a function, module or object)\n"
                       "  %time <code>     time a chunk\n"
                       "  display(x)       show an Image or a list of Images\n"
                       "  a trailing ;     run without printing the result\n"
                       "  _                the last result");
    lua_call(L, 1, 0);
    return 0;
  }
  lua_settop(L, 1);
  if (lua_type(L, 1) == LUA_TSTRING) {
    const char *name = lua_tostring(L, 1);
    lua_pushfstring(L, "return %s", name);
    if (luaL_loadbuffer(L, lua_tostring(L, -1), lua_rawlen(L, -1), "=help") != LUA_OK ||
        lua_pcall(L, 0, 1, 0) != LUA_OK || lua_isnil(L, -1))
      return lsdr_error(L, "no such name '%s'", name);
    lua_replace(L, 1);
    lua_settop(L, 1);
  }
  lsdr_push_help(L, 1);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushfstring(L, "no help for this %s", lsdr_typename(L, 1));
  }
  lua_getglobal(L, "print");
  lua_insert(L, -2);
  lua_call(L, 1, 0);
  return 0;
}

static const lsdr_func help_funcs[] = {
    {"help",
     help_global,
     "Prints what a function takes (arguments, defaults) and does; for a module or object, its "
     "functions. Also ?name at the prompt.",
     {{"what", "any", "nil"}}},
    {0}};

void lsdr_open_help(lua_State *L) {
  lua_pushglobaltable(L);
  lsdr_register(L, -1, help_funcs);
  lua_pop(L, 1);
}

/* bindings/json_lua.c — cJSON trees to Lua values and back. */
#include "bindings/json_lua.h"

#include <math.h>
#include <stdlib.h>

#include <cJSON.h>
#include <lauxlib.h>

#include "engine/json_python.h" // sdr_json_parse_python

static void push_item(lua_State *L, const cJSON *it, int depth) {
  if (depth > 64)
    luaL_error(L, "JSON nested too deeply");
  luaL_checkstack(L, 4, "JSON");
  if (cJSON_IsObject(it)) {
    lua_newtable(L);
    for (const cJSON *c = it->child; c; c = c->next) {
      if (cJSON_IsNull(c))
        continue; /* None has no Lua table value: the key is left out */
      push_item(L, c, depth + 1);
      lua_setfield(L, -2, c->string);
    }
  } else if (cJSON_IsArray(it)) {
    lua_newtable(L);
    int i = 0;
    for (const cJSON *c = it->child; c; c = c->next) {
      if (cJSON_IsNull(c))
        lua_pushboolean(L, 0); /* a hole would end the list early */
      else
        push_item(L, c, depth + 1);
      lua_rawseti(L, -2, ++i);
    }
  } else if (cJSON_IsString(it)) {
    lua_pushstring(L, it->valuestring);
  } else if (cJSON_IsBool(it)) {
    lua_pushboolean(L, cJSON_IsTrue(it));
  } else if (cJSON_IsNumber(it)) {
    double v = it->valuedouble;
    if (v == floor(v) && fabs(v) < 9.0e15)
      lua_pushinteger(L, (lua_Integer)v);
    else
      lua_pushnumber(L, v);
  } else {
    lua_pushnil(L);
  }
}

void lsdr_push_json(lua_State *L, const char *text) {
  cJSON *root = sdr_json_parse_python(text); /* diffusers' configs may hold -Infinity */
  if (!root)
    luaL_error(L, "malformed JSON");
  push_item(L, root, 0);
  cJSON_Delete(root);
}

static int is_array(lua_State *L, int idx) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n) {
      lua_pop(L, 1);
      return 0;
    }
    count++;
  }
  return count == n && n > 0;
}

/* Raises for anything JSON cannot hold, before any cJSON item exists (a Lua
 * error then leaks nothing). */
static void check_value(lua_State *L, int idx, int depth) {
  idx = lua_absindex(L, idx);
  if (depth > 64)
    luaL_error(L, "a table nested too deeply for JSON (or a cycle)");
  int t = lua_type(L, idx);
  if (t == LUA_TNIL || t == LUA_TBOOLEAN || t == LUA_TNUMBER || t == LUA_TSTRING)
    return;
  if (t != LUA_TTABLE)
    luaL_error(L, "a %s cannot be written as JSON", luaL_typename(L, idx));
  luaL_checkstack(L, 4, "JSON");
  int array = is_array(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (!array && lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "JSON objects have string keys, found a %s", luaL_typename(L, -2));
    check_value(L, -1, depth + 1);
    lua_pop(L, 1);
  }
}

static cJSON *to_item(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
  case LUA_TBOOLEAN:
    return cJSON_CreateBool(lua_toboolean(L, idx));
  case LUA_TNUMBER:
    return cJSON_CreateNumber(lua_tonumber(L, idx));
  case LUA_TSTRING:
    return cJSON_CreateString(lua_tostring(L, idx));
  case LUA_TTABLE:
    break;
  default:
    return cJSON_CreateNull();
  }
  if (is_array(L, idx)) {
    cJSON *arr = cJSON_CreateArray();
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, i);
      cJSON_AddItemToArray(arr, to_item(L, -1));
      lua_pop(L, 1);
    }
    return arr;
  }
  cJSON *obj = cJSON_CreateObject();
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    cJSON_AddItemToObject(obj, lua_tostring(L, -2), to_item(L, -1));
    lua_pop(L, 1);
  }
  return obj;
}

void lsdr_push_json_text(lua_State *L, int idx) {
  check_value(L, idx, 0);
  cJSON *item = to_item(L, idx);
  char *text = cJSON_PrintUnformatted(item);
  cJSON_Delete(item);
  if (!text)
    luaL_error(L, "out of memory");
  lua_pushstring(L, text);
  free(text);
}

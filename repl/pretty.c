/* repl/pretty.c — the table printer, written in Lua because it is string work. */
#include "repl/pretty.h"

#include <lauxlib.h>

static const char PRETTY_KEY[] = "sdrepl.pretty";

static const char pretty_source[] =
    "local MAX_DEPTH, MAX_ITEMS, WIDTH = 4, 50, 78\n"
    "local function is_ident(k)\n"
    "  return type(k) == 'string' and k:match('^[%a_][%w_]*$') and not ({['and']=1,['break']=1,\n"
    "    ['do']=1,['else']=1,['elseif']=1,['end']=1,['false']=1,['for']=1,['function']=1,\n"
    "    ['goto']=1,['if']=1,['in']=1,['local']=1,['nil']=1,['not']=1,['or']=1,['repeat']=1,\n"
    "    ['return']=1,['then']=1,['true']=1,['until']=1,['while']=1})[k]\n"
    "end\n"
    "local function scalar(v)\n"
    "  if type(v) == 'string' then return string.format('%q', v):gsub('\\\\\\n', '\\\\n') end\n"
    "  return tostring(v)\n"
    "end\n"
    "local fmt\n"
    "local function entries(t, depth, seen)\n"
    "  local out, n, count = {}, #t, 0\n"
    "  for i = 1, n do\n"
    "    count = count + 1\n"
    "    if count > MAX_ITEMS then out[#out+1] = '...'; return out end\n"
    "    out[#out+1] = fmt(rawget(t, i), depth + 1, seen)\n"
    "  end\n"
    "  local keys = {}\n"
    "  for k in next, t do\n"
    "    if not (math.type(k) == 'integer' and k >= 1 and k <= n) then keys[#keys+1] = k end\n"
    "  end\n"
    "  table.sort(keys, function(a, b)\n"
    "    local ta, tb = type(a), type(b)\n"
    "    if ta ~= tb then return ta < tb end\n"
    "    if ta == 'number' or ta == 'string' then return a < b end\n"
    "    return tostring(a) < tostring(b)\n"
    "  end)\n"
    "  for _, k in ipairs(keys) do\n"
    "    count = count + 1\n"
    "    if count > MAX_ITEMS then out[#out+1] = '...'; break end\n"
    "    local key = is_ident(k) and k or ('[' .. scalar(k) .. ']')\n"
    "    out[#out+1] = key .. ' = ' .. fmt(rawget(t, k), depth + 1, seen)\n"
    "  end\n"
    "  return out\n"
    "end\n"
    "fmt = function(v, depth, seen)\n"
    "  if type(v) ~= 'table' then return scalar(v) end\n"
    "  local mt = getmetatable(v)\n"
    "  if mt and rawget(mt, '__tostring') then return tostring(v) end\n"
    "  if seen[v] then return '<cycle>' end\n"
    "  if next(v) == nil then return '{}' end\n"
    "  if depth >= MAX_DEPTH then return '{...}' end\n"
    "  seen[v] = true\n"
    "  local items = entries(v, depth, seen)\n"
    "  seen[v] = nil\n"
    "  local one = '{' .. table.concat(items, ', ') .. '}'\n"
    "  if #one + depth * 2 <= WIDTH and not one:find('\\n') then return one end\n"
    "  local pad = string.rep('  ', depth + 1)\n"
    "  for i, s in ipairs(items) do items[i] = pad .. s:gsub('\\n', '\\n  ') end\n"
    "  return '{\\n' .. table.concat(items, ',\\n') .. '\\n' .. string.rep('  ', depth) .. '}'\n"
    "end\n"
    "return function(v) return fmt(v, 0, {}) end\n";

void pretty_push(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_getfield(L, LUA_REGISTRYINDEX, PRETTY_KEY) != LUA_TFUNCTION) {
    lua_pop(L, 1);
    if (luaL_loadbuffer(L, pretty_source, sizeof pretty_source - 1, "=pretty") != LUA_OK)
      lua_error(L);
    lua_call(L, 0, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, PRETTY_KEY);
  }
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_isstring(L, -1)) {
    lua_pop(L, 1);
    luaL_tolstring(L, idx, NULL);
  }
}

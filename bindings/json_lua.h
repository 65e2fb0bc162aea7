/* bindings/json_lua.h — JSON text to Lua values and back (configs, as diffusers' dicts). */
#ifndef SDR_BINDINGS_JSON_LUA_H
#define SDR_BINDINGS_JSON_LUA_H

#include <lua.h>

/* Pushes the value of JSON text: objects as tables, arrays as lists; a null
 * in an object leaves its key out (Lua has no None), in a list it is false.
 * Raises a Lua error on malformed text. */
void lsdr_push_json(lua_State *L, const char *text);
/* JSON text of the value at idx (tables with only 1..n keys are arrays); a Lua
 * error for values JSON cannot hold. Pushes the string. */
void lsdr_push_json_text(lua_State *L, int idx);

#endif

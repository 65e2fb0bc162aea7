/* bindings/safetensors_lua.h — the global `safetensors` (safetensors.torch.load_file,
 * save_file). */
#ifndef SDR_BINDINGS_SAFETENSORS_LUA_H
#define SDR_BINDINGS_SAFETENSORS_LUA_H

#include <lua.h>

void lsdr_open_safetensors(lua_State *L);

#endif

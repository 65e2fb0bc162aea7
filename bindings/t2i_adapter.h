/* bindings/t2i_adapter.h — the global T2IAdapter. */
#ifndef SDR_BINDINGS_T2I_ADAPTER_H
#define SDR_BINDINGS_T2I_ADAPTER_H

#include <lua.h>

#include "engine/t2i_adapter.h" // sdr_t2i_adapter

#define LSDR_T2I_ADAPTER "T2IAdapter"

void lsdr_open_t2i_adapter(lua_State *L);
/* The open T2IAdapter at idx, or NULL. */
sdr_t2i_adapter *lsdr_to_t2i_adapter(lua_State *L, int idx);

#endif

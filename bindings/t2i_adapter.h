/* bindings/t2i_adapter.h — the global T2IAdapter. */
#ifndef SDR_BINDINGS_T2I_ADAPTER_H
#define SDR_BINDINGS_T2I_ADAPTER_H

#include <lua.h>

#include "engine/t2i_adapter.h" // sdr_t2i_adapter

#define LSDR_T2I_ADAPTER "T2IAdapter"
#define LSDR_MULTI_ADAPTER "MultiAdapter"

void lsdr_open_t2i_adapter(lua_State *L);
/* Pushes a T2IAdapter loaded from the folder dir (a pipeline folder's adapter). */
void lsdr_push_t2i_adapter_from(lua_State *L, const char *dir, const char *variant, int keep);
/* The open T2IAdapter at idx, or NULL. */
sdr_t2i_adapter *lsdr_to_t2i_adapter(lua_State *L, int idx);
/* The T2IAdapter at idx on be: moved there first (its weights bound again in keep_dtype)
 * when it is elsewhere, as a pipeline moving to a device takes it along. */
sdr_t2i_adapter *lsdr_t2i_adapter_on(lua_State *L, int idx, sdr_backend *be, int keep_dtype);
/* Whether the value at idx is a MultiAdapter ({adapters = {...}}). */
int lsdr_is_multi_adapter(lua_State *L, int idx);
/* Pushes a MultiAdapter of the list of T2IAdapters at idx (at least two, downscaling alike). */
void lsdr_push_multi_adapter(lua_State *L, int list);

#endif

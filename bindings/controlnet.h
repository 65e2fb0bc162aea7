/* bindings/controlnet.h — the globals ControlNetModel and MultiControlNetModel. */
#ifndef SDR_BINDINGS_CONTROLNET_H
#define SDR_BINDINGS_CONTROLNET_H

#include <lua.h>

#include "engine/controlnet.h" // sdr_controlnet

#define LSDR_CONTROLNET "ControlNetModel"
#define LSDR_MULTI_CONTROLNET "MultiControlNetModel"

void lsdr_open_controlnet(lua_State *L);
/* Pushes a ControlNetModel loaded from the folder dir (a pipeline folder's controlnet). */
void lsdr_push_controlnet_from(lua_State *L, const char *dir, const char *variant, int keep);
/* The open ControlNetModel at idx, or NULL. */
sdr_controlnet *lsdr_to_controlnet(lua_State *L, int idx);
/* The ControlNetModel at idx on be: moved there first (its weights bound again in
 * keep_dtype) when it is elsewhere, as a pipeline moving to a device takes it along. */
sdr_controlnet *lsdr_controlnet_on(lua_State *L, int idx, sdr_backend *be, int keep_dtype);
/* Whether the value at idx is a MultiControlNetModel ({nets = {...}}). */
int lsdr_is_multi_controlnet(lua_State *L, int idx);
/* Pushes a MultiControlNetModel of the list of ControlNetModels at idx. */
void lsdr_push_multi_controlnet(lua_State *L, int list);

#endif

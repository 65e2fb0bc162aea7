/* bindings/unet.h — the global UNet2DConditionModel. */
#ifndef SDR_BINDINGS_UNET_H
#define SDR_BINDINGS_UNET_H

#include <lua.h>

#include "engine/unet.h" // sdr_unet

void lsdr_open_unet(lua_State *L);
/* Pushes a UNet2DConditionModel for a model that the value at `owner` (a
 * pipeline) holds; the owner stays alive as long as the new object. */
void lsdr_push_unet_ref(lua_State *L, sdr_unet *model, int owner);

#endif

/* bindings/unet.h — the global UNet2DConditionModel. */
#ifndef SDR_BINDINGS_UNET_H
#define SDR_BINDINGS_UNET_H

#include <lua.h>

void lsdr_open_unet(lua_State *L);

#endif

/* bindings/image_processor.h — diffusers' VaeImageProcessor in Lua (pipe.image_processor). */
#ifndef SDR_BINDINGS_IMAGE_PROCESSOR_H
#define SDR_BINDINGS_IMAGE_PROCESSOR_H

#include <lua.h>

/* Pushes a VaeImageProcessor with diffusers' defaults and this vae_scale_factor. */
void lsdr_push_image_processor(lua_State *L, int vae_scale_factor);
/* Sets the global VaeImageProcessor. */
void lsdr_open_image_processor(lua_State *L);

#endif

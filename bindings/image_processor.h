/* bindings/image_processor.h — diffusers' VaeImageProcessor in Lua (pipe.image_processor). */
#ifndef SDR_BINDINGS_IMAGE_PROCESSOR_H
#define SDR_BINDINGS_IMAGE_PROCESSOR_H

#include <lua.h>

#include "engine/image.h" // sdr_image

/* Pushes a VaeImageProcessor with diffusers' defaults and this vae_scale_factor. */
void lsdr_push_image_processor(lua_State *L, int vae_scale_factor);
/* The inpainting pipeline's mask_processor: no normalization, grey, binarized. */
void lsdr_push_mask_processor(lua_State *L, int vae_scale_factor);
/* ControlNet's control_image_processor: RGB, resized, kept in [0, 1]. */
void lsdr_push_control_image_processor(lua_State *L, int vae_scale_factor);
/* The pictures of a list (or the one picture) at idx, in *imgs (n of them, in a scratch
 * block left on the stack); 0 when idx holds no picture at all (a tensor, say). */
int lsdr_read_images(lua_State *L, int idx, sdr_image ***imgs, int *n);
/* diffusers' numpy_to_pil of the array at idx ((B, H, W, C) or (H, W, C) in [0, 1]): pushes the
 * list of Images. */
void lsdr_push_numpy_to_pil(lua_State *L, int idx);
/* Sets the global VaeImageProcessor. */
void lsdr_open_image_processor(lua_State *L);

#endif

/* PLACEHOLDER: replaced by the image work. */
#include "bindings/image.h"
#include <lauxlib.h>
void lsdr_push_image(lua_State *L, sdr_image *img) { (void)img; lua_pushnil(L); }
sdr_image *lsdr_to_image(lua_State *L, int idx) { return NULL; }
void lsdr_open_image(lua_State *L) {}
void lsdr_open_image_grid(lua_State *L) {}

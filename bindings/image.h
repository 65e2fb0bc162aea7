/* bindings/image.h — the Lua Image type (PIL's Image, the subset sdrepl needs). */
#ifndef SDR_BINDINGS_IMAGE_H
#define SDR_BINDINGS_IMAGE_H

#include <lua.h>

#include "bindings/lsdr.h" // lsdr_func
#include "engine/image.h"  // sdr_image

#define LSDR_IMAGE "Image"
#define LSDR_IMAGE_LIST "sdrepl.ImageList" /* the metatable of a pipeline's list of images */

/* Pushes a new Image userdata that owns img (freed by __gc/__close). */
void lsdr_push_image(lua_State *L, sdr_image *img);
/* User argument `param` (named `name`) as an open Image, after lsdr_args checked its type; a
 * Lua error when it is closed. */
sdr_image *lsdr_arg_image(lua_State *L, int param, const char *name);
/* A method's self as an open Image (a use of its pixels); a Lua error when it is closed. */
sdr_image *lsdr_self_image(lua_State *L);
/* User argument `param` as one of PIL's resampling filters (Image.NEAREST ... HAMMING, 0 to
 * 5); a Lua error naming it otherwise. */
int lsdr_check_resample(lua_State *L, int param);
/* User argument `param` as a size {width, height} of whole numbers from min (0 or 1) to
 * 32768, into *w and *h; a Lua error naming it otherwise. */
void lsdr_get_size(lua_State *L, int param, int min, int *w, int *h);
/* User argument `param` (named name) as a color of `channels` bands, as PIL's getink reads
 * one (a number, {v}, {r, g, b[, a]}); a Lua error naming it otherwise. */
void lsdr_get_color(lua_State *L, int param, const char *name, int channels, uint8_t *color);
/* Adds funcs ("Image:name" entries) to Image's methods, after lsdr_open_image. */
void lsdr_register_image_methods(lua_State *L, const lsdr_func *funcs);
/* Image:split, getchannel, putalpha, point, getbbox, getextrema and Image.merge
 * (bindings/image_bands.c), after lsdr_open_image. */
void lsdr_open_image_bands(lua_State *L);
/* The global ImageDraw: Draw(im) with rectangle and ellipse (bindings/image_draw.c). */
void lsdr_open_image_draw(lua_State *L);
/* ImageOps.fit, contain, cover, pad and expand (bindings/image_fit.c). */
void lsdr_open_image_fit(lua_State *L);
/* Image:reduce and Image:thumbnail (bindings/image_reduce.c), after lsdr_open_image. */
void lsdr_open_image_reduce(lua_State *L);
/* Pushes an Image that owns nothing yet and returns where its image goes, so
 * a binding makes the object before the pixels (nothing leaks if either
 * fails): `sdr_image **slot = lsdr_push_image_slot(L); *slot = sdr_image_new(...)`. */
sdr_image **lsdr_push_image_slot(lua_State *L);
/* The image at idx, or NULL when it is not an Image (or a closed one). */
sdr_image *lsdr_to_image(lua_State *L, int idx);
/* The JPEG file an Image opened from, when nothing has read its pixels yet (PIL's lazy open);
 * the caller owns it from here (free). NULL otherwise. */
uint8_t *lsdr_image_take_draft(lua_State *L, int idx, size_t *len);
/* Gives the list of images at idx a metatable that answers list[0], Python's first
 * entry, with an error saying Lua counts from 1 (instead of a nil that fails later). */
void lsdr_image_list_meta(lua_State *L, int idx);
/* Sets the global Image module (Image.open, Image.new, constants). */
void lsdr_open_image(lua_State *L);
/* Sets the globals load_image and ImageOps (bindings/load_image.c). */
void lsdr_open_load_image(lua_State *L);
/* ImageOps.invert, grayscale, mirror, flip (bindings/image_ops.c), after lsdr_open_load_image. */
void lsdr_open_image_ops(lua_State *L);
/* Pushes the global ImageOps table, made when there is none yet. */
void lsdr_push_image_ops(lua_State *L);
/* The global ImageFilter (GaussianBlur, BoxBlur) and Image:filter (bindings/image_filter.c),
 * after lsdr_open_image; and img through the filter at idx pushed as a new Image. */
void lsdr_open_image_filter(lua_State *L);
/* Image.blend, Image.composite, Image.alpha_composite (bindings/image_compose.c), after
 * lsdr_open_image. */
void lsdr_open_image_compose(lua_State *L);
int lsdr_push_filtered(lua_State *L, const sdr_image *img, int filter);
/* Sets the global image_grid. */
void lsdr_open_image_grid(lua_State *L);

#endif

/* bindings/padding_mask_crop.c — the inpainting pipelines' padding_mask_crop option
 * (engine/mask_crop.h): the pictures cropped around the mask before the call reads them, the
 * results laid over the original picture after. */
#include "bindings/padding_mask_crop.h"

#include <string.h>

#include <lauxlib.h>

#include "bindings/image.h" // lsdr_to_image, lsdr_push_image
#include "bindings/lsdr.h"
#include "engine/error.h"     // sdr_last_error
#include "engine/mask_crop.h" // sdr_mask_crop_region, sdr_image_resize_fill, ...

/* preprocess(..., crops_coords, resize_mode="fill"): the box cut out, then filled out to the
 * processing size (get_default_height_width's multiples of the VAE's factor). Pushes it. */
static void push_filled(lua_State *L, const sdr_image *img, const int box[4], int width,
                        int height) {
  sdr_image *cut = sdr_image_crop(img, box[0], box[1], box[2], box[3]);
  sdr_image *filled = cut ? sdr_image_resize_fill(cut, width, height) : NULL;
  sdr_image_free(cut);
  if (!filled)
    lsdr_error(L, "padding_mask_crop: %s", sdr_last_error());
  lsdr_push_image(L, filled);
}

/* opts[key] (an Image or a list of them, ControlNets' control_image) replaced by its cropped,
 * filled pictures. */
static void fill_option(lua_State *L, int opts, const char *key, const lsdr_mask_crop *mc, int w,
                        int h) {
  lua_getfield(L, opts, key);
  const int v = lua_gettop(L);
  if (lsdr_to_image(L, v)) {
    push_filled(L, lsdr_to_image(L, v), mc->box, w, h);
  } else if (lua_istable(L, v)) {
    const int n = (int)lua_rawlen(L, v);
    lua_createtable(L, n, 0);
    for (int i = 1; i <= n; i++) {
      lua_rawgeti(L, v, i);
      const sdr_image *img = lsdr_to_image(L, -1);
      if (!img)
        lsdr_error(L, "option '%s': pictures (Images) expected with padding_mask_crop", key);
      push_filled(L, img, mc->box, w, h);
      lua_rawseti(L, -3, i);
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, v)) {
    lsdr_error(L, "option '%s': pictures (Images) expected with padding_mask_crop", key);
  } else {
    lua_pop(L, 1);
    return;
  }
  lua_setfield(L, opts, key);
  lua_pop(L, 1);
}

void lsdr_mask_crop_prepare(lua_State *L, int opts, int height, int width, int sample_side,
                            int factor, int controlnet, lsdr_mask_crop *mc) {
  memset(mc, 0, sizeof *mc);
  lua_getfield(L, opts, "padding_mask_crop");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0)
    lsdr_error(L, "option 'padding_mask_crop': a non-negative integer (pixels) expected, got %s",
               lsdr_typename(L, -1));
  const int pad = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  /* check_inputs' conditions, in diffusers' words */
  lua_getfield(L, opts, "image");
  const sdr_image *image = lsdr_to_image(L, -1);
  if (!image)
    lsdr_error(L, "The image should be a PIL image when inpainting mask crop, but is of type %s.",
               lsdr_typename(L, -1));
  lua_getfield(L, opts, "mask_image");
  const sdr_image *mask = lsdr_to_image(L, -1);
  if (!mask)
    lsdr_error(L,
               "The mask image should be a PIL image when inpainting mask crop, but is of type "
               "%s.",
               lsdr_typename(L, -1));
  lua_getfield(L, opts, "output_type");
  const char *output_type = lua_tostring(L, -1);
  if (!output_type || strcmp(output_type, "pil") != 0)
    lsdr_error(L, "The output type should be PIL when inpainting mask crop, but is %s.",
               output_type ? output_type : "?");
  lua_pop(L, 1);
  /* the originals stay on the stack for the overlay */
  mc->mask_idx = lua_gettop(L);
  mc->image_idx = mc->mask_idx - 1;
  /* the size the box is found for: SD's and SDXL's inpainting take height or the UNet's
   * default; the ControlNet ones the picture's size, floored to the factor first
   * (get_default_height_width) */
  int h = height ? height : controlnet ? image->height : sample_side;
  int w = width ? width : controlnet ? image->width : sample_side;
  if (controlnet)
    h -= h % factor, w -= w % factor;
  if (sdr_mask_crop_region(mask, w, h, pad, mc->box) != 0)
    lsdr_error(L, "%s", sdr_last_error());
  h -= h % factor, w -= w % factor;
  fill_option(L, opts, "image", mc, w, h);
  fill_option(L, opts, "mask_image", mc, w, h);
  if (controlnet)
    fill_option(L, opts, "control_image", mc, w, h);
  mc->on = 1;
}

void lsdr_mask_crop_overlay(lua_State *L, int list, const lsdr_mask_crop *mc) {
  if (!mc->on)
    return;
  const sdr_image *image = lsdr_to_image(L, mc->image_idx), *mask = lsdr_to_image(L, mc->mask_idx);
  const int n = (int)lua_rawlen(L, list);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    sdr_image *out = sdr_mask_crop_overlay(mask, image, lsdr_to_image(L, -1), mc->box);
    if (!out)
      lsdr_error(L, "padding_mask_crop: %s", sdr_last_error());
    lua_pop(L, 1);
    lsdr_push_image(L, out);
    lua_rawseti(L, list, i);
  }
}

/* ---- VaeImageProcessor's methods (pipe.image_processor, pipe.mask_processor) ---- */

/* An Image argument at idx (arg: its position for the message). */
static const sdr_image *image_arg(lua_State *L, int idx, int arg) {
  const sdr_image *img = lsdr_to_image(L, idx);
  if (!img)
    lsdr_argerror(L, arg, "Image");
  return img;
}

static void push_box(lua_State *L, const int box[4]) {
  lua_createtable(L, 4, 0);
  for (int i = 0; i < 4; i++) {
    lua_pushinteger(L, box[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

/* proc:get_crop_region(mask, width, height, pad) -> {x1, y1, x2, y2}; pad also as {pad = n} */
int lsdr_proc_get_crop_region(lua_State *L) {
  lsdr_args(L);
  const sdr_image *mask = image_arg(L, 2, 1);
  const int width = (int)lua_tointeger(L, 3), height = (int)lua_tointeger(L, 4);
  int pad = 0;
  if (lua_istable(L, 5)) {
    lua_getfield(L, 5, "pad");
    pad = (int)lua_tointeger(L, -1);
  } else if (!lua_isnil(L, 5)) {
    pad = (int)lua_tointeger(L, 5);
  }
  int box[4];
  if (sdr_mask_crop_region(mask, width, height, pad, box) != 0)
    return lsdr_error(L, "%s", sdr_last_error());
  push_box(L, box);
  return 1;
}

void lsdr_read_crop_coords(lua_State *L, int idx, int arg, int box[4]) {
  if (!lua_istable(L, idx) || lua_rawlen(L, idx) != 4)
    lsdr_argerror(L, arg, "{x1, y1, x2, y2}");
  for (int i = 0; i < 4; i++) {
    lua_rawgeti(L, idx, i + 1);
    if (!lua_isinteger(L, -1))
      lsdr_argerror(L, arg, "{x1, y1, x2, y2} of integers");
    box[i] = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
  }
  if (box[2] <= box[0] || box[3] <= box[1])
    lsdr_error(L, "crop_coords (%d, %d, %d, %d): an empty box", box[0], box[1], box[2], box[3]);
}

/* proc:apply_overlay(mask, init_image, image, crop_coords) -> Image */
int lsdr_proc_apply_overlay(lua_State *L) {
  lsdr_args(L);
  const sdr_image *mask = image_arg(L, 2, 1), *init = image_arg(L, 3, 2),
                  *image = image_arg(L, 4, 3);
  int box[4], *b = NULL;
  if (!lua_isnil(L, 5)) {
    lsdr_read_crop_coords(L, 5, 4, box);
    b = box;
  }
  sdr_image *out;
  if (b) {
    out = sdr_mask_crop_overlay(mask, init, image, b);
  } else { /* no box: the picture as it is, under the original */
    const int whole[4] = {0, 0, image->width, image->height};
    out = sdr_mask_crop_overlay(mask, init, image, whole);
  }
  if (!out)
    return lsdr_error(L, "apply_overlay: %s", sdr_last_error());
  lsdr_push_image(L, out);
  return 1;
}

/* proc:resize(image, height, width, resize_mode) -> Image ("default", "fill" or "crop") */
int lsdr_proc_resize(lua_State *L) {
  lsdr_args(L);
  const sdr_image *image = image_arg(L, 2, 1);
  const int height = (int)lua_tointeger(L, 3), width = (int)lua_tointeger(L, 4);
  const char *mode = lua_isnil(L, 5) ? "default" : lua_tostring(L, 5);
  if (height < 1 || width < 1)
    return lsdr_error(L, "resize: height and width must be positive, got %d x %d", height, width);
  sdr_image *out = strcmp(mode, "default") == 0
                       ? sdr_image_resize(image, width, height, SDR_RESAMPLE_LANCZOS)
                   : strcmp(mode, "fill") == 0 ? sdr_image_resize_fill(image, width, height)
                   : strcmp(mode, "crop") == 0 ? sdr_image_resize_cover(image, width, height)
                                               : NULL;
  if (!out && strcmp(mode, "default") && strcmp(mode, "fill") && strcmp(mode, "crop"))
    return lsdr_error(
        L, "resize: resize_mode \"default\", \"fill\" or \"crop\" expected, got \"%s\"", mode);
  if (!out)
    return lsdr_error(L, "resize: %s", sdr_last_error());
  lsdr_push_image(L, out);
  return 1;
}

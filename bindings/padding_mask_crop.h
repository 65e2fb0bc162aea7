/* bindings/padding_mask_crop.h — inpainting's padding_mask_crop around a pipeline call. */
#ifndef SDR_BINDINGS_PADDING_MASK_CROP_H
#define SDR_BINDINGS_PADDING_MASK_CROP_H

#include <lua.h>

typedef struct lsdr_mask_crop {
  int on;
  int box[4];              /* get_crop_region's (x1, y1, x2, y2) */
  int image_idx, mask_idx; /* the caller's original pictures, kept on the stack */
} lsdr_mask_crop;

/* Where the options at opts give padding_mask_crop: checks diffusers' conditions (one
 * picture and one mask, output_type "pil"), finds the box for the call's height x width (0
 * where not given: sample_side, the UNet's default, or for a ControlNet pipeline the
 * picture's size), and replaces opts.image and opts.mask_image (and control_image for a
 * ControlNet) by their crops filled out to that size in multiples of factor, for the call to
 * read as usual. The originals are pushed. */
void lsdr_mask_crop_prepare(lua_State *L, int opts, int height, int width, int sample_side,
                            int factor, int controlnet, lsdr_mask_crop *mc);
/* apply_overlay on each picture of the list at idx, in place (nothing when mc is off). */
void lsdr_mask_crop_overlay(lua_State *L, int list, const lsdr_mask_crop *mc);

/* VaeImageProcessor:get_crop_region, :apply_overlay and :resize (Images; resize_mode
 * "default", "fill" or "crop"), for bindings/image_processor.c's method table. */
int lsdr_proc_get_crop_region(lua_State *L);
int lsdr_proc_apply_overlay(lua_State *L);
int lsdr_proc_resize(lua_State *L);
/* crop_coords at idx: {x1, y1, x2, y2} of integers, not empty (arg names it in errors). */
void lsdr_read_crop_coords(lua_State *L, int idx, int arg, int box[4]);

#endif

/* engine/mask_crop.h — inpainting's padding_mask_crop, as diffusers 0.27.2's VaeImageProcessor
 * does it (image_processor.py: get_crop_region, _resize_and_fill, _resize_and_crop,
 * apply_overlay): the pipeline paints only a box around the mask, at the full processing
 * size, and the result is laid back over the original picture outside the mask.
 *
 * All of it is Pillow's arithmetic on 8-bit pictures (LANCZOS resizes, pastes, premultiplied
 * alpha, alpha_composite), so the pictures are the ones a notebook gets.
 */
#ifndef SDR_ENGINE_MASK_CROP_H
#define SDR_ENGINE_MASK_CROP_H

#include "engine/image.h" // sdr_image

/* get_crop_region(mask, width, height, pad): the box (x1, y1, x2, y2) around the mask's
 * non-zero pixels (of its L conversion), widened by pad and then to width:height's aspect
 * ratio, kept within the mask. */
int sdr_mask_crop_region(const sdr_image *mask, int width, int height, int pad, int box[4]);

/* _resize_and_fill: img resized (LANCZOS) to fit width x height keeping its aspect ratio,
 * centred on black RGB, the empty bands filled by stretching its first and last rows (or
 * columns). */
sdr_image *sdr_image_resize_fill(const sdr_image *img, int width, int height);
/* _resize_and_crop: img resized (LANCZOS) to cover width x height keeping its aspect ratio,
 * centred, the excess cut (RGB). */
sdr_image *sdr_image_resize_cover(const sdr_image *img, int width, int height);

/* apply_overlay(mask, init_image, image, crop_coords): image (the pipeline's output of the
 * cropped box) resized into box on a black picture of its own size, then init_image (resized
 * to that size) laid over it where mask is black. A new RGB picture. */
sdr_image *sdr_mask_crop_overlay(const sdr_image *mask, const sdr_image *init_image,
                                 const sdr_image *image, const int box[4]);

#endif

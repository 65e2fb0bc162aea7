/* engine/image_jpeg.h — JPEG files read and written by libjpeg-turbo, as PIL does.
 *
 * PIL opens a JPEG through libjpeg(-turbo) with its defaults (the accurate integer IDCT,
 * smooth chroma upsampling), so the same decoder gives the same bytes, where stb_image's
 * own decoder is a few levels off: an img2img started from a JPEG sketch then starts from
 * the latents diffusers starts from. libjpeg also refuses what it should (undefined tables,
 * impossible Huffman codes) and fills in the standard Huffman tables a motion-JPEG frame
 * leaves out, as PIL's decoder does.
 */
#ifndef SDR_ENGINE_IMAGE_JPEG_H
#define SDR_ENGINE_IMAGE_JPEG_H

#include <stddef.h>
#include <stdint.h>

#include "engine/image.h" // sdr_image

/* 1 when data is a JPEG's start (0xFF, fill bytes, then the start-of-image marker), which
 * only this decoder may read; PIL refuses the fill bytes, and libjpeg does too. */
int sdr_jpeg_is(const uint8_t *data, size_t len);

/* The header's size and the channels PIL's mode has once opened as RGB or L (CMYK files
 * open as RGB here, converted as PIL's convert("RGB") does). 0, or -1 and
 * "NAME: cannot identify image file (...)" in sdr_last_error(). */
int sdr_jpeg_info(const uint8_t *data, size_t len, const char *name, int *width, int *height,
                  int *channels);

/* Decodes into img, which has the size and channels sdr_jpeg_info gave. 0, or -1 and
 * "NAME: cannot decode image (...)" in sdr_last_error(). */
int sdr_jpeg_read(const uint8_t *data, size_t len, const char *name, sdr_image *img);
/* The same decoded at 1/scale (2, 4 or 8: libjpeg's scaled IDCT, as PIL's draft asks for), img
 * sized ceil(width / scale) x ceil(height / scale). */
int sdr_jpeg_read_scaled(const uint8_t *data, size_t len, const char *name, int scale,
                         sdr_image *img);

/* img (L or RGB) encoded as PIL's save does at this quality; *out is malloc'd. 0, or -1 and
 * sdr_last_error(). */
int sdr_jpeg_write(const sdr_image *img, int quality, uint8_t **out, size_t *out_len);

#endif

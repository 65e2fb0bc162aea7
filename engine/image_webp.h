/* engine/image_webp.h — WebP files read by libwebp, as PIL reads them.
 *
 * PIL opens a WebP through libwebp's animation decoder: the first frame drawn on a
 * transparent canvas, RGB when the file has no alpha, RGBA when it has. The same decoder
 * here gives the same bytes.
 */
#ifndef SDR_ENGINE_IMAGE_WEBP_H
#define SDR_ENGINE_IMAGE_WEBP_H

#include <stddef.h>
#include <stdint.h>

#include "engine/image.h" // sdr_image

/* 1 when data starts as a WebP file does ("RIFF", a size, "WEBP"). */
int sdr_webp_is(const uint8_t *data, size_t len);

/* The canvas size and channels (3, or 4 with alpha). 0, or -1 and
 * "NAME: cannot identify image file (...)" or "NAME: image file is truncated (...)". */
int sdr_webp_info(const uint8_t *data, size_t len, const char *name, int *width, int *height,
                  int *channels);

/* The first frame into img, sized as sdr_webp_info said. 0, or -1 and
 * "NAME: cannot decode image (...)". */
int sdr_webp_read(const uint8_t *data, size_t len, const char *name, sdr_image *img);

#endif

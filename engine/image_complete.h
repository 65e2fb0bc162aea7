/* engine/image_complete.h — refusing image files cut short, as PIL does on load. */
#ifndef SDR_ENGINE_IMAGE_COMPLETE_H
#define SDR_ENGINE_IMAGE_COMPLETE_H

#include <stddef.h>
#include <stdint.h>

/* 0 when the file holds what its header promises (or its format is not one checked
 * here), else -1 and "NAME: image file is truncated (...)" in sdr_last_error().
 * For files stb_image recognised (stbi_info succeeded). */
int sdr_image_check_complete(const uint8_t *data, size_t len, const char *name);

#endif

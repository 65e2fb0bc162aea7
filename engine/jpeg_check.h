/* engine/jpeg_check.h — refusing JPEG files that would overrun stb_image's tables.
 *
 * The stb_image Debian ships (git 2022-09-08) builds a Huffman table from the 16
 * code counts of a DHT segment without checking that they add up to at most 256,
 * the size of its arrays: a crafted file writes past them. Upstream stb checks it
 * now; until Debian's does, every JPEG's DHT segments are checked here first.
 */
#ifndef SDR_ENGINE_JPEG_CHECK_H
#define SDR_ENGINE_JPEG_CHECK_H

#include <stddef.h>
#include <stdint.h>

/* 0, or -1 and sdr_last_error() when a Huffman table has more than 256 codes or
 * runs past its segment. Structure it does not understand is left to stb_image. */
int sdr_jpeg_check_huffman(const uint8_t *data, size_t len, const char *name);

#endif

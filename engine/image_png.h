/* engine/image_png.h — PNG chunks: text, shared by the decoder and the encoder, and what
 * the decoder looks for before stb_image.
 *
 * Stable Diffusion front ends (AUTOMATIC1111, InvokeAI, sdrepl) keep how a
 * picture was made in a PNG text chunk named "parameters". stb_image skips
 * text chunks, so they are read here; stb_image_write cannot write them, so
 * the encoder splices one in (engine/image_png.c).
 */
#ifndef SDR_ENGINE_IMAGE_PNG_H
#define SDR_ENGINE_IMAGE_PNG_H

#include <stddef.h>
#include <stdint.h>

/* Longest text accepted in either direction (PIL's MAX_TEXT_CHUNK). */
enum { SDR_PNG_MAX_TEXT = 1 << 20 };

/* The last "parameters" text of a PNG file (tEXt and zTXt read as Latin-1,
 * iTXt as UTF-8; returned as UTF-8, malloc'd), or NULL when there is none, it
 * is damaged (bad CRC, bad compression) or data is not a PNG. Never fails
 * otherwise: a picture with unreadable text still opens. */
char *sdr_png_read_parameters(const uint8_t *data, size_t len);

/* The body of the first chunk of this type before IEND (its length in *n), or NULL (none,
 * or not a PNG). */
const uint8_t *sdr_png_find_chunk(const uint8_t *data, size_t len, const char *type, size_t *n);

/* stb_image reads a first IDAT chunk of length 0 through a null buffer (undefined behaviour,
 * which UBSan reports); an empty IDAT carries nothing, so a copy without them decodes the
 * same. That copy (malloc'd, its length in *out_len), or NULL when there is none to drop. */
uint8_t *sdr_png_without_empty_idat(const uint8_t *data, size_t len, size_t *out_len);

#endif

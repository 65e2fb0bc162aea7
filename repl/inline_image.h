/* repl/inline_image.h — images drawn in the terminal itself.
 *
 * The kitty graphics protocol, iTerm2's inline images, or sixel, detected from
 * the environment (SDREPL_INLINE=kitty|iterm|sixel|off forces one).
 */
#ifndef SDR_REPL_INLINE_IMAGE_H
#define SDR_REPL_INLINE_IMAGE_H

#include <stdio.h>

#include "engine/image.h" // sdr_image

typedef enum { INLINE_OFF = 0, INLINE_KITTY, INLINE_ITERM, INLINE_SIXEL } inline_protocol;

inline_protocol inline_image_detect(void);
/* Writes the escape sequences that draw img; returns -1 on failure. */
int inline_image_write(FILE *out, const sdr_image *img, inline_protocol proto);

/* Sixel (DEC's bitmap graphics, in repl/inline_sixel.c): img scaled down to
 * at most INLINE_SIXEL_MAX_SIDE pixels a side, quantized to a fixed 240-color palette
 * with ordered dithering. Returns -1 on failure. */
enum { INLINE_SIXEL_MAX_SIDE = 800 };
int inline_sixel_write(FILE *out, const sdr_image *img);

#endif

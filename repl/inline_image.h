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

#endif

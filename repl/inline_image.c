/* PLACEHOLDER: replaced by the window work. */
#include "repl/inline_image.h"
inline_protocol inline_image_detect(void) { return INLINE_OFF; }
int inline_image_write(FILE *out, const sdr_image *img, inline_protocol proto) { return -1; }

/* repl/window_save.h — the preview window's "s" key, and its messages. */
#ifndef SDR_REPL_WINDOW_SAVE_H
#define SDR_REPL_WINDOW_SAVE_H

#include <stddef.h>

#include "engine/image.h" // sdr_image

/* Saves img as PNG under the first free name sdrepl-0001.png, sdrepl-0002.png ...
 * in the current directory, never replacing a file; writes the name into path.
 * Returns 0, or -1 with sdr_last_error(). */
int window_save_fresh(const sdr_image *img, char *path, size_t path_size);

/* Prints one line to stdout without garbling a half-typed line at the prompt. */
void window_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

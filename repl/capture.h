/* repl/capture.h — what a cell prints, kept for the notebook while still shown.
 *
 * Redirects file descriptors 1 and 2 into a pipe; a thread copies everything
 * to the original descriptors and into a buffer, so C code's output (progress
 * bars) is caught as well as Lua's print.
 */
#ifndef SDR_REPL_CAPTURE_H
#define SDR_REPL_CAPTURE_H

#include <stddef.h>

typedef struct capture capture;

capture *capture_begin(void);
/* Restores the descriptors; returns the text (malloc'd, NUL-terminated). */
char *capture_end(capture *c, size_t *len);

#endif

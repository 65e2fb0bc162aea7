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

/* Flushes stdio first. NULL when the descriptors cannot be redirected (then
 * nothing has changed and output simply goes where it went). */
capture *capture_begin(void);
/* What was caught since the start or the last take (malloc'd, NUL-terminated),
 * then forgets it; the capture goes on. Lets a notebook put text that came
 * before an image above it. */
char *capture_take(capture *c, size_t *len);
/* Restores the descriptors; returns the text (malloc'd, NUL-terminated).
 * capture_end(NULL, &len) returns NULL with len 0. */
char *capture_end(capture *c, size_t *len);

#endif

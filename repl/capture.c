/* PLACEHOLDER: replaced by the notebook work. */
#include "repl/capture.h"
#include <stddef.h>
capture *capture_begin(void) { return NULL; }
char *capture_end(capture *c, size_t *len) { return NULL; }

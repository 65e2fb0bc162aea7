/* repl/window_history.h — the pictures the preview window has shown.
 *
 * Copies, oldest first, bounded by count and by bytes of pixels: adding past
 * either bound drops the oldest, so a long session never holds every picture
 * it ever made. The newest is always kept, however large.
 */
#ifndef SDR_REPL_WINDOW_HISTORY_H
#define SDR_REPL_WINDOW_HISTORY_H

#include <stddef.h>

#include "engine/image.h" // sdr_image

enum { WINDOW_HISTORY_MAX_COUNT = 100 };
#define WINDOW_HISTORY_MAX_BYTES ((size_t)512 << 20)

typedef struct window_entry {
  sdr_image *img; /* owned copy */
  char *title;    /* owned; never NULL */
} window_entry;

typedef struct window_history {
  window_entry *items; /* (count), oldest first */
  int count, cap;
  int max_count;    /* 0: WINDOW_HISTORY_MAX_COUNT */
  size_t max_bytes; /* 0: WINDOW_HISTORY_MAX_BYTES */
  size_t bytes;     /* pixel bytes held */
} window_history;

/* Adds copies of img and title; returns the number of older entries dropped,
 * or -1 (sdr_last_error) when out of memory, leaving the history as it was. */
int window_history_add(window_history *h, const sdr_image *img, const char *title);
const window_entry *window_history_at(const window_history *h, int i);
void window_history_clear(window_history *h);

#endif

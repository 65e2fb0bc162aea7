/* repl/window_history.c — the preview window's bounded list of pictures. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strdup, getcwd under -std=c11 */
#endif
#include "repl/window_history.h"

#include <stdlib.h>
#include <string.h>

#include "engine/error.h" // sdr_fail

static size_t image_bytes(const sdr_image *img) {
  return (size_t)img->width * (size_t)img->height * (size_t)img->channels;
}

static void entry_free(window_entry *e) {
  sdr_image_free(e->img);
  free(e->title);
}

static void drop_oldest(window_history *h) {
  h->bytes -= image_bytes(h->items[0].img);
  entry_free(&h->items[0]);
  memmove(h->items, h->items + 1, (size_t)(h->count - 1) * sizeof *h->items);
  h->count--;
}

int window_history_add(window_history *h, const sdr_image *img, const char *title) {
  int max_count = h->max_count > 0 ? h->max_count : WINDOW_HISTORY_MAX_COUNT;
  size_t max_bytes = h->max_bytes > 0 ? h->max_bytes : WINDOW_HISTORY_MAX_BYTES;
  /* Everything that can fail happens before the history changes. */
  if (h->count == h->cap) {
    int cap = h->cap ? h->cap * 2 : 8;
    window_entry *items = realloc(h->items, (size_t)cap * sizeof *items);
    if (!items)
      return sdr_fail("out of memory");
    h->items = items;
    h->cap = cap;
  }
  window_entry e = {sdr_image_copy(img), strdup(title ? title : "")};
  if (!e.img || !e.title) {
    entry_free(&e);
    return sdr_fail("out of memory");
  }
  size_t size = image_bytes(img);
  int dropped = 0;
  while (h->count > 0 && (h->count + 1 > max_count || h->bytes + size > max_bytes)) {
    drop_oldest(h);
    dropped++;
  }
  h->items[h->count++] = e;
  h->bytes += size;
  return dropped;
}

const window_entry *window_history_at(const window_history *h, int i) {
  return i >= 0 && i < h->count ? &h->items[i] : NULL;
}

void window_history_clear(window_history *h) {
  for (int i = 0; i < h->count; i++)
    entry_free(&h->items[i]);
  free(h->items);
  h->items = NULL;
  h->count = h->cap = 0;
  h->bytes = 0;
}

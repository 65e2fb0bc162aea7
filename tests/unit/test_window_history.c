/* tests/unit/test_window_history.c — the preview window's history keeps
 * copies, drops the oldest past its count or byte bound, and always keeps the
 * newest. Also: without a display, every window call returns at once. */
#define _POSIX_C_SOURCE 200809L /* setenv under -std=c11 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/image.h"        // sdr_image_new
#include "repl/window.h"         // preview_window_show
#include "repl/window_history.h" // window_history_add

static sdr_image *solid(int w, int h, uint8_t v) {
  sdr_image *img = sdr_image_new(w, h, 3);
  memset(img->pixels, v, (size_t)w * h * 3);
  return img;
}

static void test_copies(void) {
  window_history h = {0};
  sdr_image *img = solid(4, 2, 7);
  char title[] = "first";
  CHECK(window_history_add(&h, img, title) == 0);
  img->pixels[0] = 99;
  title[0] = 'X';
  const window_entry *e = window_history_at(&h, 0);
  CHECK(e && e->img != img && e->img->pixels[0] == 7);
  CHECK_STR(e ? e->title : NULL, "first");
  CHECK(window_history_add(&h, img, NULL) == 0);
  CHECK_STR(window_history_at(&h, 1) ? window_history_at(&h, 1)->title : NULL, "");
  CHECK(window_history_at(&h, 2) == NULL && window_history_at(&h, -1) == NULL);
  window_history_clear(&h);
  CHECK(h.count == 0 && h.bytes == 0);
  sdr_image_free(img);
}

static void test_bounds(void) {
  window_history h = {.max_count = 3};
  for (int i = 0; i < 5; i++) {
    sdr_image *img = solid(2, 2, (uint8_t)i);
    int dropped = window_history_add(&h, img, NULL);
    CHECK(dropped == (i >= 3 ? 1 : 0));
    sdr_image_free(img);
  }
  CHECK(h.count == 3);
  CHECK(h.items[0].img->pixels[0] == 2 && h.items[2].img->pixels[0] == 4);
  CHECK(h.bytes == 3 * 12);
  window_history_clear(&h);

  /* Bytes: 100 per picture, room for 250. */
  h = (window_history){.max_bytes = 250};
  for (int i = 0; i < 4; i++) {
    sdr_image *img = sdr_image_new(10, 10, 1);
    img->pixels[0] = (uint8_t)i;
    window_history_add(&h, img, NULL);
    sdr_image_free(img);
  }
  CHECK(h.count == 2 && h.bytes == 200);
  CHECK(h.items[0].img->pixels[0] == 2);
  /* A picture larger than the bound replaces everything but is kept. */
  sdr_image *big = sdr_image_new(30, 10, 1);
  CHECK(window_history_add(&h, big, "big") == 2);
  CHECK(h.count == 1 && h.bytes == 300);
  sdr_image_free(big);
  window_history_clear(&h);
}

static void test_no_display(void) {
  /* With the window switched off nothing opens and nothing fails. */
  setenv("SDREPL_NO_WINDOW", "1", 1);
  sdr_image *img = solid(8, 8, 255);
  preview_window_show(img, "t");
  preview_window_live(img, "t");
  preview_window_pump();
  CHECK(preview_window_is_open() == 0);
  preview_window_shutdown();
  sdr_image_free(img);
}

int main(void) {
  test_copies();
  test_bounds();
  test_no_display();
  return check_exit();
}

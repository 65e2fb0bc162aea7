/* PLACEHOLDER: replaced by the window work. */
#include "repl/window.h"
void preview_window_show(const sdr_image *img, const char *title) {}
void preview_window_live(const sdr_image *img, const char *title) {}
void preview_window_pump(void) {}
int preview_window_is_open(void) { return 0; }
void preview_window_shutdown(void) {}

/* repl/window.h — the SDL2 preview window.
 *
 * Opens on the first image shown when a display exists (and SDREPL_NO_WINDOW
 * is not set); otherwise every call returns at once and nothing fails. It keeps
 * the images shown so far (←/→ step through them, s saves, f toggles fit and
 * 100%, q/Esc hides until the next show). Closing it never ends the session.
 * SDL never takes SIGINT from the REPL.
 */
#ifndef SDR_REPL_WINDOW_H
#define SDR_REPL_WINDOW_H

#include "engine/image.h" // sdr_image

/* Adds a copy of img to the window's history and shows it. */
void preview_window_show(const sdr_image *img, const char *title);
/* Replaces what is shown without adding to the history (live denoising previews). */
void preview_window_live(const sdr_image *img, const char *title);
/* Handles pending window events; cheap when no window is open. Call often. */
void preview_window_pump(void);
/* 1 when a window is open and visible. */
int preview_window_is_open(void);
void preview_window_shutdown(void);

#endif

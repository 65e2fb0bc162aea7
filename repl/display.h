/* repl/display.h — showing images as Jupyter does: preview window, inline, notebook.
 *
 * An Image, or a list of Images, that a chunk yields (or that display() is
 * given) goes to every place that can show it: the preview window when one
 * can open, the terminal inline when it speaks an image protocol, and the
 * notebook record when a script is being exported.
 */
#ifndef SDR_REPL_DISPLAY_H
#define SDR_REPL_DISPLAY_H

#include <lua.h>

#include "engine/image.h" // sdr_image

struct notebook;

/* Is the value an Image or a non-empty list of Images? */
int display_is_displayable(lua_State *L, int idx);
/* Shows it; `what` (may be NULL) says where it came from, for the window title. */
void display_value(lua_State *L, int idx, const char *what);
void display_image(const sdr_image *img, const char *what);

/* The notebook being recorded, or NULL. */
void display_set_notebook(struct notebook *nb);
/* Whether images are also drawn inline in the terminal (interactive use). */
void display_set_inline(int enabled);

/* Registers display(x). */
void display_open(lua_State *L);

#endif

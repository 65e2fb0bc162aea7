/* repl/notebook.h — the record of a notebook run and its export.
 *
 * Each cell's source, what it printed, the images it displayed and its error
 * (traceback) if it failed, in order. Exported by extension: .html (one
 * self-contained page, images embedded as PNG data URLs), .md (Markdown,
 * images saved as PNG files beside it), .ipynb (nbformat 4 with outputs, which
 * Jupyter opens). Files are written to a temporary name and renamed.
 */
#ifndef SDR_REPL_NOTEBOOK_H
#define SDR_REPL_NOTEBOOK_H

#include <stddef.h>

#include "engine/image.h" // sdr_image

typedef struct notebook notebook;

enum { NOTEBOOK_CODE = 0, NOTEBOOK_MARKDOWN = 1 };

notebook *notebook_new(const char *title);
void notebook_free(notebook *nb);
/* Starts a cell; later outputs belong to it. */
void notebook_begin_cell(notebook *nb, int kind, const char *title, const char *source);
void notebook_add_stream(notebook *nb, const char *text, size_t len);
void notebook_add_image(notebook *nb, const sdr_image *img);
void notebook_add_error(notebook *nb, const char *message);
/* By out_path's extension; -1 and sdr_last_error() on failure. */
int notebook_export(const notebook *nb, const char *out_path);

/* Records a cell that was not run (after a failure): its source, no outputs,
 * no execution count, as Jupyter shows "In [ ]:". */
void notebook_skip_cell(notebook *nb, int kind, const char *title, const char *source);

/* Called before an image or an error is added, so the caller can add the text
 * printed before it first (see capture_take): outputs keep their order. */
typedef void (*notebook_flush_fn)(void *ctx);
void notebook_set_flush(notebook *nb, notebook_flush_fn fn, void *ctx);

/* Whether the extension is one notebook_export writes (.html, .md, .ipynb);
 * when not, sdr_last_error() says which are. */
int notebook_format_known(const char *out_path);

#endif

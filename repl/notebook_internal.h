/* repl/notebook_internal.h — the record's layout and the helpers the three exporters share.
 * Private to repl/notebook*.c. */
#ifndef SDR_REPL_NOTEBOOK_INTERNAL_H
#define SDR_REPL_NOTEBOOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "repl/notebook.h" // notebook

/* ---- the record -------------------------------------------------------- */

enum { NB_STREAM, NB_IMAGE, NB_ERROR };

typedef struct nb_output {
  int type;
  char *text; /* stream text, error message with traceback, or an image's text/plain */
  size_t len;
  uint8_t *png; /* NB_IMAGE: the PNG file, or NULL when it could not be encoded */
  size_t png_len;
  int width, height;
} nb_output;

typedef struct nb_cell {
  int kind; /* NOTEBOOK_CODE or NOTEBOOK_MARKDOWN */
  char *title;
  char *source;
  int execution_count; /* code cells: 1, 2, ... in the order run; 0 when not run */
  nb_output *outputs;
  int noutputs, cap;
} nb_cell;

struct notebook {
  char *title;
  nb_cell *cells;
  int ncells, cap;
  int executed;      /* code cells run so far */
  int out_of_memory; /* something could not be recorded: export fails rather than lie */
  notebook_flush_fn flush;
  void *flush_ctx;
};

/* ---- text -------------------------------------------------------------- */

/* A growing string; an allocation failure sets oom and later puts do nothing. */
typedef struct nb_buf {
  char *p;
  size_t len, cap;
  int oom;
} nb_buf;

void nb_put(nb_buf *b, const char *s, size_t n);
void nb_puts(nb_buf *b, const char *s);
void nb_printf(nb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* HTML-escaped: & < > " ' */
void nb_put_html(nb_buf *b, const char *s, size_t n);
void nb_put_base64(nb_buf *b, const uint8_t *data, size_t n);
void nb_buf_free(nb_buf *b);

/* A copy that is valid UTF-8 without NULs (bad bytes become U+FFFD), so every
 * exporter, JSON above all, can take it as it is. */
char *nb_utf8_dup(const char *s, size_t n, size_t *out_len);
/* What a terminal would leave of captured output: escape sequences removed,
 * a line rewritten after '\r' (progress bars) keeps only its last state. A
 * '\r' at the very end is kept, so text appended later still overwrites. */
size_t nb_clean_stream(char *s, size_t n);

/* Minimal Markdown (headings, paragraphs, lists, code, emphasis, links) as HTML;
 * everything else is escaped. */
void nb_markdown_to_html(nb_buf *b, const char *md);

/* ---- files ------------------------------------------------------------- */

/* Writes a temporary file beside path, then renames it over path. */
int nb_write_file(const char *path, const void *data, size_t len);

int nb_export_html(const notebook *nb, const char *path);
int nb_export_markdown(const notebook *nb, const char *path);
int nb_export_ipynb(const notebook *nb, const char *path);

#endif

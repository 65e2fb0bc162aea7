/* repl/cells.h — a script cut into cells at "-- %%" lines (jupytext's percent format for Lua).
 *
 *   -- %% optional title           a code cell
 *   -- %% [markdown]               a Markdown cell: its lines are "-- text" comments
 *
 * Lines before the first marker form a code cell of their own when they hold
 * anything but blank lines. A cell's source keeps its lines; first_line (1-based)
 * is where its source starts in the file, so errors can name the file's lines.
 * A first line starting with '#' (a shebang) is skipped, as lua does; so is a
 * jupytext header ("-- ---" lines around YAML) before the first cell.
 */
#ifndef SDR_REPL_CELLS_H
#define SDR_REPL_CELLS_H

#include <stddef.h>

typedef struct cell {
  int kind;     /* NOTEBOOK_CODE or NOTEBOOK_MARKDOWN (repl/notebook.h) */
  char *title;  /* text after the marker, "" when none */
  char *source; /* code, or Markdown text with the "-- " prefixes removed */
  int first_line;
} cell;

typedef struct cell_list {
  cell *cells;
  int count;
  int markers; /* how many "-- %%" lines the text held: 0 means a plain script */
} cell_list;

/* Never fails on any input except out of memory (-1). */
int cells_split(const char *text, size_t len, cell_list *out);
void cells_free(cell_list *list);

#endif

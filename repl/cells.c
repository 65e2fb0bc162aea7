/* repl/cells.c — cutting a script into cells (jupytext's "percent" format, Lua flavour).
 *
 * A marker is a line "-- %%" (leading blanks allowed, as jupytext allows),
 * then the end of the line or a blank and, in any order, an optional title
 * and a cell type in brackets: "-- %% Load the model", "-- %% [markdown]",
 * "-- %% Results [md]". Anything else after the marker, jupytext's
 * key="value" metadata included, stays in the title.
 *
 * Line ends may be "\n", "\r\n" or a lone "\r" (Lua counts all three), and
 * sources are rebuilt with "\n" only, so a line number Lua reports inside a
 * cell, plus first_line - 1, is the file's own. Blank lines around a cell's
 * source are dropped (first_line moves with them), as jupytext does.
 */
#include "repl/cells.h"

#include <stdlib.h>
#include <string.h>

#include "repl/notebook.h" // NOTEBOOK_CODE, NOTEBOOK_MARKDOWN

/* ---- lines ------------------------------------------------------------- */

typedef struct line {
  const char *p;
  size_t len; /* without its line end */
} line;

/* Cuts text into lines; a final line without a line end counts, an empty
 * tail after the last line end does not (as an editor shows it). */
static line *split_lines(const char *text, size_t len, size_t *count) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++)
    if (text[i] == '\n' || (text[i] == '\r' && (i + 1 == len || text[i + 1] != '\n')))
      n++;
  line *lines = malloc((n + 1) * sizeof *lines);
  if (!lines)
    return NULL;
  size_t k = 0, start = 0;
  for (size_t i = 0; i < len; i++) {
    if (text[i] != '\n' && text[i] != '\r')
      continue;
    lines[k].p = text + start;
    lines[k].len = i - start;
    k++;
    if (text[i] == '\r' && i + 1 < len && text[i + 1] == '\n')
      i++;
    start = i + 1;
  }
  if (start < len) {
    lines[k].p = text + start;
    lines[k].len = len - start;
    k++;
  }
  *count = k;
  return lines;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\f' || c == '\v'; }

static int is_blank(const line *l) {
  for (size_t i = 0; i < l->len; i++)
    if (!is_space(l->p[i]))
      return 0;
  return 1;
}

static int line_is(const line *l, const char *s) {
  size_t n = strlen(s);
  return l->len == n && memcmp(l->p, s, n) == 0;
}

/* ---- markers ----------------------------------------------------------- */

/* If l is a marker, sets *rest to what follows "-- %%" and returns 1. */
static int is_marker(const line *l, line *rest) {
  size_t i = 0;
  while (i < l->len && is_space(l->p[i]))
    i++;
  if (l->len - i < 5 || memcmp(l->p + i, "-- %%", 5) != 0)
    return 0;
  i += 5;
  /* jupytext's pattern is "%%(%%)*" then a blank or the end: "-- %%%%" marks too. */
  while (l->len - i >= 2 && l->p[i] == '%' && l->p[i + 1] == '%')
    i += 2;
  if (i < l->len && !is_space(l->p[i]))
    return 0;
  rest->p = l->p + i;
  rest->len = l->len - i;
  return 1;
}

static int equal_nocase(const char *a, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z')
      x = (char)(x - 'A' + 'a');
    if (x != y)
      return 0;
  }
  return 1;
}

/* Appends p[0..n) to buf at *at with blanks trimmed at both ends, separated
 * from what is already there by one space. */
static void append_trimmed(char *buf, size_t *at, const char *p, size_t n) {
  while (n && is_space(*p))
    p++, n--;
  while (n && is_space(p[n - 1]))
    n--;
  if (!n)
    return;
  if (*at)
    buf[(*at)++] = ' ';
  memcpy(buf + *at, p, n);
  *at += n;
}

/* The title (malloc'd): the marker's rest without its cell type; sets *kind. */
static char *parse_marker_rest(const line *rest, int *kind) {
  static const char *const types[] = {"[markdown]", "[md]"};
  *kind = NOTEBOOK_CODE;
  size_t cut = rest->len, cut_len = 0;
  for (size_t t = 0; t < sizeof types / sizeof types[0] && !cut_len; t++) {
    size_t n = strlen(types[t]);
    for (size_t i = 0; i + n <= rest->len; i++) {
      if (equal_nocase(rest->p + i, types[t], n)) {
        cut = i;
        cut_len = n;
        *kind = NOTEBOOK_MARKDOWN;
        break;
      }
    }
  }
  char *title = malloc(rest->len + 2);
  if (!title)
    return NULL;
  size_t at = 0;
  append_trimmed(title, &at, rest->p, cut);
  if (cut_len)
    append_trimmed(title, &at, rest->p + cut + cut_len, rest->len - cut - cut_len);
  title[at] = '\0';
  return title;
}

/* ---- cells ------------------------------------------------------------- */

/* A Markdown line without its comment: "-- text" -> "text", "--text" -> "text". */
static line markdown_text(line l) {
  size_t i = 0;
  while (i < l.len && is_space(l.p[i]))
    i++;
  if (l.len - i >= 2 && l.p[i] == '-' && l.p[i + 1] == '-') {
    i += 2;
    if (i < l.len && l.p[i] == ' ')
      i++;
    l.p += i;
    l.len -= i;
  }
  return l;
}

/* Builds one cell from lines[first, end) (0-based; line numbers are index + 1). */
static int make_cell(cell *c, int kind, char *title, line *lines, size_t first, size_t end,
                     size_t marker_next) {
  if (kind == NOTEBOOK_MARKDOWN)
    for (size_t i = first; i < end; i++)
      lines[i] = markdown_text(lines[i]);
  while (first < end && is_blank(&lines[first]))
    first++;
  while (end > first && is_blank(&lines[end - 1]))
    end--;
  size_t total = 1;
  for (size_t i = first; i < end; i++)
    total += lines[i].len + 1;
  char *src = malloc(total);
  if (!src)
    return -1;
  size_t at = 0;
  for (size_t i = first; i < end; i++) {
    if (i > first)
      src[at++] = '\n';
    memcpy(src + at, lines[i].p, lines[i].len);
    at += lines[i].len;
  }
  src[at] = '\0';
  c->kind = kind;
  c->title = title;
  c->source = src;
  /* An empty cell starts on the line after its marker. */
  c->first_line = (int)(first < end ? first + 1 : marker_next + 1);
  return 0;
}

/* jupytext writes notebook metadata as a header before the first cell:
 * "-- ---" lines around YAML. It is metadata, not code; returns the index
 * just past it (or `from` when there is none). */
static size_t skip_jupytext_header(const line *lines, size_t from, size_t end) {
  size_t i = from;
  while (i < end && is_blank(&lines[i]))
    i++;
  if (i == end || !line_is(&lines[i], "-- ---"))
    return from;
  for (size_t j = i + 1; j < end; j++) {
    if (line_is(&lines[j], "-- ---"))
      return j + 1;
    if (lines[j].len < 2 || memcmp(lines[j].p, "--", 2) != 0)
      return from;
  }
  return from;
}

static int push_cell(cell_list *out, size_t *cap) {
  if ((size_t)out->count < *cap)
    return 0;
  size_t ncap = *cap ? *cap * 2 : 8;
  cell *grown = realloc(out->cells, ncap * sizeof *grown);
  if (!grown)
    return -1;
  out->cells = grown;
  *cap = ncap;
  return 0;
}

int cells_split(const char *text, size_t len, cell_list *out) {
  memset(out, 0, sizeof *out);
  size_t nlines = 0, cap = 0;
  line *lines = split_lines(text ? text : "", text ? len : 0, &nlines);
  if (!lines)
    return -1;
  /* As luaL_loadfile: a UTF-8 byte order mark, then a first line starting
   * with '#' (a shebang) are skipped, and line numbers still count them. */
  size_t start = 0;
  if (nlines && lines[0].len >= 3 && memcmp(lines[0].p, "\xEF\xBB\xBF", 3) == 0) {
    lines[0].p += 3;
    lines[0].len -= 3;
  }
  if (nlines && lines[0].len && lines[0].p[0] == '#')
    start = 1;

  size_t seg = skip_jupytext_header(lines, start, nlines);
  int kind = NOTEBOOK_CODE;
  char *title = NULL;
  int have_marker = 0;
  size_t marker_next = seg;
  for (size_t i = seg; i <= nlines; i++) {
    line rest = {NULL, 0}; /* set by is_marker; zeroed for the compiler */
    int at_end = i == nlines;
    if (!at_end && !is_marker(&lines[i], &rest))
      continue;
    /* Close the cell lines[seg, i); before the first marker it counts only
     * when it holds something. */
    int keep = have_marker;
    for (size_t j = seg; j < i && !keep; j++)
      keep = !is_blank(&lines[j]);
    if (keep) {
      if (!title && !(title = calloc(1, 1)))
        goto oom;
      if (push_cell(out, &cap) ||
          make_cell(&out->cells[out->count], kind, title, lines, seg, i, marker_next) != 0)
        goto oom;
      out->count++;
      title = NULL;
    }
    if (at_end)
      break;
    have_marker = 1;
    out->markers++;
    title = parse_marker_rest(&rest, &kind);
    if (!title)
      goto oom;
    seg = i + 1;
    marker_next = i + 1;
  }
  free(lines);
  return 0;
oom:
  free(title);
  free(lines);
  cells_free(out);
  return -1;
}

void cells_free(cell_list *list) {
  if (!list)
    return;
  for (int i = 0; i < list->count; i++) {
    free(list->cells[i].title);
    free(list->cells[i].source);
  }
  free(list->cells);
  list->cells = NULL;
  list->count = 0;
  list->markers = 0;
}

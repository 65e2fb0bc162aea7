/* tests/unit/test_cells.c — cells_split: markers, titles, Markdown, line numbers, odd input. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "repl/cells.h"    // cells_split, cells_free
#include "repl/notebook.h" // NOTEBOOK_CODE, NOTEBOOK_MARKDOWN

static cell_list split(const char *text) {
  cell_list l;
  int rc = cells_split(text, strlen(text), &l);
  CHECK(rc == 0);
  return l;
}

#define CHECK_CELL(l, i, k, t, src, line)                                                          \
  do {                                                                                             \
    CHECK((i) < (l).count);                                                                        \
    if ((i) < (l).count) {                                                                         \
      CHECK((l).cells[i].kind == (k));                                                             \
      CHECK_STR((l).cells[i].title, (t));                                                          \
      CHECK_STR((l).cells[i].source, (src));                                                       \
      if ((l).cells[i].first_line != (line))                                                       \
        fprintf(stderr, "cell %d first_line %d, want %d\n", (int)(i), (l).cells[i].first_line,     \
                (int)(line));                                                                      \
      CHECK((l).cells[i].first_line == (line));                                                    \
    }                                                                                              \
  } while (0)

static void test_plain_script(void) {
  cell_list l = split("print(1)\nprint(2)\n");
  CHECK(l.count == 1);
  CHECK(l.markers == 0);
  CHECK_CELL(l, 0, NOTEBOOK_CODE, "", "print(1)\nprint(2)", 1);
  cells_free(&l);

  l = split("");
  CHECK(l.count == 0 && l.markers == 0);
  cells_free(&l);

  l = split("\n\n  \n");
  CHECK(l.count == 0);
  cells_free(&l);

  l = split("\n\nx = 1"); /* no trailing newline, leading blank lines */
  CHECK_CELL(l, 0, NOTEBOOK_CODE, "", "x = 1", 3);
  cells_free(&l);
}

static void test_markers_and_titles(void) {
  cell_list l = split("local a = 1\n"
                      "-- %%\n"
                      "x = 2\n"
                      "\n"
                      "-- %% Load the model\n"
                      "\n"
                      "y = 3\n"
                      "z = 4\n"
                      "-- %% tags=[\"parameters\"]\n"
                      "w = 5\n");
  CHECK(l.count == 4);
  CHECK(l.markers == 3);
  CHECK_CELL(l, 0, NOTEBOOK_CODE, "", "local a = 1", 1);
  CHECK_CELL(l, 1, NOTEBOOK_CODE, "", "x = 2", 3);
  CHECK_CELL(l, 2, NOTEBOOK_CODE, "Load the model", "y = 3\nz = 4", 7);
  CHECK_CELL(l, 3, NOTEBOOK_CODE, "tags=[\"parameters\"]", "w = 5", 10);
  cells_free(&l);

  /* Blank lines before the first marker make no cell. */
  l = split("\n\n-- %%\nprint(1)\n");
  CHECK(l.count == 1);
  CHECK_CELL(l, 0, NOTEBOOK_CODE, "", "print(1)", 4);
  cells_free(&l);

  /* Not markers: no blank after %%, a comment that merely mentions it, "--%%". */
  l = split("-- %%x\n--%%\nlocal s = '-- %%'\n-- a %% b\n");
  CHECK(l.count == 1 && l.markers == 0);
  cells_free(&l);

  /* Indented markers, tabs, "-- %%%%" (jupytext's sub-cells). */
  l = split("  -- %%\ta\n1\n-- %%%% b \n2\n");
  CHECK(l.count == 2);
  CHECK_CELL(l, 0, NOTEBOOK_CODE, "a", "1", 2);
  CHECK_CELL(l, 1, NOTEBOOK_CODE, "b", "2", 4);
  cells_free(&l);
}

static void test_empty_cells(void) {
  cell_list l = split("-- %%\n-- %% two\n\n\n-- %%\nx\n-- %%");
  CHECK(l.count == 4);
  CHECK_CELL(l, 0, NOTEBOOK_CODE, "", "", 2);
  CHECK_CELL(l, 1, NOTEBOOK_CODE, "two", "", 3);
  CHECK_CELL(l, 2, NOTEBOOK_CODE, "", "x", 6);
  CHECK_CELL(l, 3, NOTEBOOK_CODE, "", "", 8);
  cells_free(&l);
}

static void test_markdown(void) {
  cell_list l = split("-- %% [markdown]\n"
                      "-- # A title\n"
                      "--\n"
                      "-- Some *text*, `code`.\n"
                      "--   indented\n"
                      "--no space\n"
                      "\n"
                      "-- %% Results [md]\n"
                      "-- - one\n"
                      "-- %% [MarkDown] Intro\n"
                      "-- hi\n"
                      "-- %%\n"
                      "print('-- %% [markdown]')\n");
  CHECK(l.count == 4);
  CHECK_CELL(l, 0, NOTEBOOK_MARKDOWN, "", "# A title\n\nSome *text*, `code`.\n  indented\nno space",
             2);
  CHECK_CELL(l, 1, NOTEBOOK_MARKDOWN, "Results", "- one", 9);
  CHECK_CELL(l, 2, NOTEBOOK_MARKDOWN, "Intro", "hi", 11);
  CHECK_CELL(l, 3, NOTEBOOK_CODE, "", "print('-- %% [markdown]')", 13);
  cells_free(&l);

  /* Blank comment lines around Markdown are dropped and first_line follows. */
  l = split("-- %% [markdown]\n--\n-- \n-- text\n--\n");
  CHECK_CELL(l, 0, NOTEBOOK_MARKDOWN, "", "text", 4);
  cells_free(&l);
}

static void test_line_ends(void) {
  cell_list l = split("a = 1\r\n-- %% T\r\n\r\nb = 2\r\nc = 3\r\n");
  CHECK(l.count == 2);
  CHECK_CELL(l, 0, NOTEBOOK_CODE, "", "a = 1", 1);
  CHECK_CELL(l, 1, NOTEBOOK_CODE, "T", "b = 2\nc = 3", 4);
  cells_free(&l);

  /* A lone CR ends a line too, as Lua counts it. */
  l = split("a\r-- %%\rb\rc");
  CHECK(l.count == 2);
  CHECK_CELL(l, 1, NOTEBOOK_CODE, "", "b\nc", 3);
  cells_free(&l);

  /* Markdown lines with CRLF keep no CR. */
  l = split("-- %% [markdown]\r\n-- x\r\n-- y\r\n");
  CHECK_CELL(l, 0, NOTEBOOK_MARKDOWN, "", "x\ny", 2);
  cells_free(&l);
}

static void test_shebang_and_header(void) {
  cell_list l = split("#!/usr/bin/env sdrepl\nprint(1)\n-- %%\nerror('x')\n");
  CHECK(l.count == 2);
  CHECK_CELL(l, 0, NOTEBOOK_CODE, "", "print(1)", 2);
  CHECK_CELL(l, 1, NOTEBOOK_CODE, "", "error('x')", 4);
  cells_free(&l);

  /* A shebang alone makes no cell; a BOM before it is skipped as lua does. */
  l = split("\xEF\xBB\xBF#!/usr/bin/env sdrepl\n");
  CHECK(l.count == 0);
  cells_free(&l);
  l = split("\xEF\xBB\xBFx = 1\n");
  CHECK_CELL(l, 0, NOTEBOOK_CODE, "", "x = 1", 1);
  cells_free(&l);

  /* '#' elsewhere is Lua's length operator, never skipped. */
  l = split("-- %%\n#t\n");
  CHECK_CELL(l, 0, NOTEBOOK_CODE, "", "#t", 2);
  cells_free(&l);

  /* jupytext's header is metadata, not a cell. */
  l = split("-- ---\n-- jupyter:\n--   kernelspec:\n--     name: sdrepl\n-- ---\n\n-- %%\nx\n");
  CHECK(l.count == 1);
  CHECK_CELL(l, 0, NOTEBOOK_CODE, "", "x", 8);
  cells_free(&l);

  /* An unclosed "header" is only comments: kept as code. */
  l = split("-- ---\n-- not a header\n");
  CHECK(l.count == 1);
  CHECK_CELL(l, 0, NOTEBOOK_CODE, "", "-- ---\n-- not a header", 1);
  cells_free(&l);
}

static void test_odd_bytes(void) {
  /* Embedded NUL: never read past len; the source stops at the NUL when read as a string. */
  static const char text[] = "-- %% a\nx\0y\n-- %%";
  cell_list l;
  CHECK(cells_split(text, sizeof text - 1, &l) == 0);
  CHECK(l.count == 2);
  cells_free(&l);

  /* Not NUL-terminated: only len bytes are read. */
  char buf[6] = {'-', '-', ' ', '%', '%', 'X'};
  CHECK(cells_split(buf, 5, &l) == 0);
  CHECK(l.count == 1 && l.markers == 1);
  cells_free(&l);

  CHECK(cells_split(NULL, 0, &l) == 0);
  CHECK(l.count == 0);
  cells_free(&l);
  cells_free(&l); /* twice is harmless */
}

static void test_many_cells(void) {
  size_t n = 5000;
  char *text = malloc(n * 16);
  size_t at = 0;
  for (size_t i = 0; i < n; i++)
    at += (size_t)sprintf(text + at, "-- %%%%\nx=%zu\n", i);
  cell_list l;
  CHECK(cells_split(text, at, &l) == 0);
  CHECK(l.count == (int)n);
  CHECK(l.count == (int)n && l.cells[n - 1].first_line == (int)(2 * n));
  cells_free(&l);
  free(text);
}

int main(void) {
  test_plain_script();
  test_markers_and_titles();
  test_empty_cells();
  test_markdown();
  test_line_ends();
  test_shebang_and_header();
  test_odd_bytes();
  test_many_cells();
  return check_exit();
}

/* repl/script.c — running a notebook script, and recording it when asked.
 *
 * A file without "-- %%" markers is one chunk, as `lua FILE` runs it; with
 * markers every code cell is a chunk of its own, as Jupyter runs cells. Both
 * go through run_compile/run_call/run_show_results, the prompt's own path,
 * so a cell's last expression is shown (an Image displayed) and a trailing
 * ';' keeps it quiet. Each chunk is named "@FILE" and starts with as many
 * newlines as lines come before it in the file, so every message and
 * traceback names FILE's own lines. The script's arguments are the chunk's
 * `...`, as in lua.
 *
 * With an export path, a notebook records the run: each cell's source, what
 * it printed (caught at the file descriptors, still shown), the images it
 * displayed, and its error. The record is written at the end even when a
 * cell failed, so the failure can be read in it.
 */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include "repl/script.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "engine/error.h"  // sdr_last_error
#include "repl/capture.h"  // capture_begin, capture_take, capture_end
#include "repl/cells.h"    // cells_split
#include "repl/display.h"  // display_set_notebook
#include "repl/notebook.h" // notebook_*
#include "repl/run.h"      // run_compile, run_call, run_show_results

/* ---- reading ----------------------------------------------------------- */

static char *read_all(FILE *f, size_t *len) {
  size_t cap = 65536, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap)
      break;
    char *grown = cap < SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
    if (!grown) {
      free(buf);
      buf = NULL;
      errno = ENOMEM;
      break;
    }
    buf = grown;
    cap *= 2;
  }
  if (buf && ferror(f)) {
    free(buf);
    buf = NULL;
  }
  *len = n;
  return buf;
}

/* The script's text, or NULL after printing why. */
static char *read_script(const char *path, size_t *len) {
  int from_stdin = strcmp(path, "-") == 0;
  FILE *f = from_stdin ? stdin : fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "sdrepl: cannot open %s: %s\n", path, strerror(errno));
    return NULL;
  }
  char *text = read_all(f, len);
  int e = errno;
  if (!from_stdin)
    fclose(f);
  if (!text)
    fprintf(stderr, "sdrepl: cannot read %s: %s\n", from_stdin ? "stdin" : path, strerror(e));
  return text;
}

/* ---- running one chunk ------------------------------------------------- */

/* Pushes arg[1..n] (the script's arguments) and returns n. */
static int push_script_args(lua_State *L) {
  if (lua_getglobal(L, "arg") != LUA_TTABLE) {
    lua_pop(L, 1);
    return 0;
  }
  int n = (int)luaL_len(L, -1);
  luaL_checkstack(L, n + 1, "too many arguments to script");
  for (int i = 1; i <= n; i++)
    lua_rawgeti(L, -i, i);
  lua_remove(L, -n - 1);
  return n;
}

/* Runs source as if it sat at first_line of the chunk; shows its results.
 * On error leaves the message (with a traceback) on the stack. */
static int run_source(lua_State *L, const char *source, int first_line, const char *chunkname,
                      const char *what) {
  size_t slen = strlen(source), pad = first_line > 1 ? (size_t)first_line - 1 : 0;
  char *code = malloc(pad + slen + 1);
  if (!code) {
    lua_pushliteral(L, "not enough memory");
    return LUA_ERRMEM;
  }
  memset(code, '\n', pad);
  memcpy(code + pad, source, slen + 1);
  size_t len = pad + slen;
  int quiet = 0;
  int base = lua_gettop(L);
  int status = run_compile(L, code, len, chunkname, &quiet);
  if (status == RUN_INCOMPLETE) {
    /* The whole cell ends early: Lua's own message says where. */
    status = luaL_loadbuffer(L, code, len, chunkname);
    if (status == LUA_OK) {
      lua_pop(L, 1);
      lua_pushliteral(L, "incomplete chunk");
      status = LUA_ERRSYNTAX;
    }
  }
  free(code);
  if (status != LUA_OK)
    return status;
  status = run_call(L, push_script_args(L));
  if (status != LUA_OK)
    return status;
  if (quiet)
    lua_settop(L, base);
  else
    run_show_results(L, base + 1, what);
  return LUA_OK;
}

/* Ctrl-C stops the whole script, whatever keep_going says. */
static int was_interrupted(const char *msg) {
  size_t n = strcspn(msg, "\n");
  static const char word[] = "interrupted";
  return n >= sizeof word - 1 && memcmp(msg + n - (sizeof word - 1), word, sizeof word - 1) == 0;
}

static int is_blank(const char *s) {
  for (; *s; s++)
    if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r' && *s != '\f' && *s != '\v')
      return 0;
  return 1;
}

/* ---- the run ----------------------------------------------------------- */

typedef struct run_state {
  notebook *nb;    /* NULL: no record */
  capture *cap;    /* the running cell's capture, or NULL */
  int interrupted; /* Ctrl-C ended a cell */
} run_state;

/* Before an image or an error is recorded, the text printed before it. */
static void flush_capture(void *ctx) {
  run_state *rs = ctx;
  if (!rs->cap)
    return;
  size_t n;
  char *text = capture_take(rs->cap, &n);
  if (text)
    notebook_add_stream(rs->nb, text, n);
  free(text);
}

/* Runs one code cell; returns its status and prints (and records) its error. */
static int run_cell(lua_State *L, run_state *rs, const cell *c, const char *chunkname, int index) {
  char what[64];
  if (c->title[0])
    snprintf(what, sizeof what, "%.63s", c->title);
  else
    snprintf(what, sizeof what, "cell %d", index + 1);
  int base = lua_gettop(L);
  if (rs->nb) {
    notebook_begin_cell(rs->nb, c->kind, c->title, c->source);
    rs->cap = capture_begin(); /* NULL: run uncaught rather than not at all */
  }
  int status = run_source(L, c->source, c->first_line, chunkname, what);
  if (rs->cap) {
    size_t n;
    char *text = capture_end(rs->cap, &n);
    rs->cap = NULL;
    if (text)
      notebook_add_stream(rs->nb, text, n);
    free(text);
  }
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (!msg)
      msg = "(error object is not a string)";
    fprintf(stderr, "sdrepl: %s\n", msg);
    fflush(stderr);
    rs->interrupted = was_interrupted(msg);
    if (rs->nb)
      notebook_add_error(rs->nb, msg);
  }
  lua_settop(L, base);
  return status;
}

static char *title_of(const char *path) {
  if (strcmp(path, "-") == 0)
    return strdup("stdin");
  const char *slash = strrchr(path, '/');
  return strdup(slash ? slash + 1 : path);
}

int script_run_file(lua_State *L, const char *path, const script_options *opts) {
  const char *export_path = opts ? opts->export_path : NULL;
  int keep_going = opts ? opts->keep_going : 0;
  /* A wrong extension is found before a long run, not after it. */
  if (export_path && !notebook_format_known(export_path)) {
    fprintf(stderr, "sdrepl: %s\n", sdr_last_error());
    return 1;
  }
  size_t len;
  char *text = read_script(path, &len);
  if (!text)
    return 1;
  cell_list cells;
  int rc = cells_split(text, len, &cells);
  free(text);
  if (rc != 0) {
    fprintf(stderr, "sdrepl: %s: not enough memory\n", path);
    return 1;
  }
  size_t nlen = strlen(path) + 8; /* "@" + path, or "=stdin" */
  char *chunkname = malloc(nlen);
  char *title = title_of(path);
  run_state rs = {NULL, NULL, 0};
  if (export_path && chunkname && title) {
    rs.nb = notebook_new(title);
    if (rs.nb) {
      notebook_set_flush(rs.nb, flush_capture, &rs);
      display_set_notebook(rs.nb);
    }
  }
  if (!chunkname || !title || (export_path && !rs.nb)) {
    fprintf(stderr, "sdrepl: %s: not enough memory\n", path);
    free(chunkname);
    free(title);
    notebook_free(rs.nb);
    cells_free(&cells);
    return 1;
  }
  snprintf(chunkname, nlen, strcmp(path, "-") == 0 ? "=stdin" : "@%s", path);

  /* Without markers the file is one chunk (cells_split gave at most one cell);
   * with them, one chunk per code cell. The same loop runs both. */
  int failed = 0, stopped = 0;
  for (int i = 0; i < cells.count; i++) {
    const cell *c = &cells.cells[i];
    if (stopped || c->kind == NOTEBOOK_MARKDOWN || is_blank(c->source)) {
      /* Markdown is recorded, never run; so are cells not reached or empty. */
      if (rs.nb) {
        if (c->kind == NOTEBOOK_MARKDOWN && !stopped)
          notebook_begin_cell(rs.nb, c->kind, c->title, c->source);
        else
          notebook_skip_cell(rs.nb, c->kind, c->title, c->source);
      }
      continue;
    }
    int status = run_cell(L, &rs, c, chunkname, i);
    if (status != LUA_OK) {
      failed = 1;
      if (!keep_going || rs.interrupted || status == LUA_ERRMEM)
        stopped = 1;
    }
  }
  if (rs.nb) {
    display_set_notebook(NULL);
    if (notebook_export(rs.nb, export_path) != 0) {
      fprintf(stderr, "sdrepl: %s\n", sdr_last_error());
      failed = 1;
    } else {
      fprintf(stderr, "sdrepl: wrote %s\n", export_path);
    }
    notebook_free(rs.nb);
  }
  free(chunkname);
  free(title);
  cells_free(&cells);
  return failed;
}

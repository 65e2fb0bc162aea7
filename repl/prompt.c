/* repl/prompt.c — the interactive loop on Readline's callback interface.
 *
 * The callback interface (rather than readline()) lets the loop wait with
 * select(): while no key comes, the preview window handles its events, and a
 * Ctrl-C at the prompt (our handler, not Readline's: rl_catch_signals is off)
 * clears the line instead of ending the process.
 */
#include "repl/prompt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include <lauxlib.h>

#include "engine/interrupt.h" // sdr_interrupt_pending, sdr_interrupt_clear
#include "repl/complete.h"    // complete_install
#include "repl/magic.h"       // magic_try
#include "repl/run.h"         // run_compile, run_call, run_show_results
#include "repl/window.h"      // preview_window_pump

enum { HISTORY_MAX = 10000 };
static const char PROMPT1[] = "> ", PROMPT2[] = ">> ";

/* ---- history ----------------------------------------------------------- */

static int mkdirs(const char *path) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = 0;
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
      return -1;
    *p = '/';
  }
  return mkdir(buf, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

char *prompt_history_path(void) {
  const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
  char buf[4096];
  if (state && *state)
    snprintf(buf, sizeof buf, "%s/sdrepl/history", state);
  else
    snprintf(buf, sizeof buf, "%s/.local/state/sdrepl/history", home ? home : ".");
  return strdup(buf);
}

static void history_save(const char *path) {
  char dir[4096], tmp[4200];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash) {
    *slash = 0;
    mkdirs(dir);
  }
  /* A new file renamed over the old one: a crash never leaves half a history. */
  snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
  if (write_history(tmp) == 0) {
    if (rename(tmp, path) != 0)
      fprintf(stderr, "sdrepl: could not save history to %s\n", path);
  } else {
    unlink(tmp);
  }
}

/* ---- reading lines ----------------------------------------------------- */

static char *got_line;
static int got_eof, line_ready;

static void on_line(char *line) {
  if (line)
    got_line = line;
  else
    got_eof = 1;
  line_ready = 1;
  rl_callback_handler_remove();
}

/* Returns the next line (malloc'd), NULL at end of input, or "" with
 * *interrupted set when Ctrl-C cleared the line. */
static char *read_line(const char *prompt, int *interrupted) {
  *interrupted = 0;
  line_ready = got_eof = 0;
  got_line = NULL;
  rl_callback_handler_install(prompt, on_line);
  while (!line_ready) {
    if (sdr_interrupt_pending()) {
      sdr_interrupt_clear();
      rl_free_line_state();
      rl_callback_sigcleanup();
      rl_callback_handler_remove();
      rl_crlf();
      *interrupted = 1;
      return NULL;
    }
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(fileno(rl_instream), &fds);
    struct timeval tv = {0, 30 * 1000};
    int n = select(fileno(rl_instream) + 1, &fds, NULL, NULL, &tv);
    if (n > 0)
      rl_callback_read_char();
    else if (n < 0 && errno != EINTR)
      break;
    preview_window_pump();
  }
  return got_eof ? NULL : got_line;
}

static void report(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "%s\n", msg ? msg : "(error object is not a string)");
  fflush(stderr);
  lua_pop(L, 1);
}

/* A short name for what made a result, for window titles: the code itself. */
static void source_title(char *out, size_t n, const char *code) {
  while (*code == ' ' || *code == '\t')
    code++;
  size_t len = strcspn(code, "\n");
  if (len > 60)
    len = 60;
  snprintf(out, n, "%.*s", (int)len, code);
}

int prompt_loop(lua_State *L) {
  char *hist = prompt_history_path();
  rl_readline_name = "sdrepl";
  rl_catch_signals = 0;
  using_history();
  stifle_history(HISTORY_MAX);
  read_history(hist);
  complete_install(L);

  char *chunk = NULL;
  size_t chunk_len = 0;
  for (;;) {
    int interrupted;
    char *line = read_line(chunk ? PROMPT2 : PROMPT1, &interrupted);
    if (interrupted) {
      free(chunk);
      chunk = NULL;
      chunk_len = 0;
      continue;
    }
    if (!line) {
      printf("\n");
      break;
    }
    if (!chunk && magic_try(L, line)) {
      add_history(line);
      free(line);
      continue;
    }
    size_t len = strlen(line);
    char *joined = realloc(chunk, chunk_len + len + 2);
    if (!joined) {
      free(line);
      fprintf(stderr, "sdrepl: out of memory\n");
      continue;
    }
    chunk = joined;
    if (chunk_len)
      chunk[chunk_len++] = '\n';
    memcpy(chunk + chunk_len, line, len + 1);
    chunk_len += len;
    free(line);

    int quiet;
    int status = run_compile(L, chunk, chunk_len, "=stdin", &quiet);
    if (status == RUN_INCOMPLETE)
      continue;
    if (chunk_len > 0)
      add_history(chunk);
    if (status == LUA_OK) {
      int first = lua_gettop(L);
      status = run_call(L, 0);
      if (status == LUA_OK) {
        char title[64];
        source_title(title, sizeof title, chunk);
        if (quiet)
          lua_settop(L, first - 1);
        else
          run_show_results(L, first, title);
      }
    }
    if (status != LUA_OK)
      report(L);
    lua_settop(L, 0);
    fflush(stdout);
    free(chunk);
    chunk = NULL;
    chunk_len = 0;
  }
  free(chunk);
  history_save(hist);
  free(hist);
  return 0;
}

/* repl/run.c — compile, call and show a chunk (lua.c's loop, plus Jupyter's last expression). */
#include "repl/run.h"

#include <ctype.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "engine/interrupt.h"  // sdr_interrupt_request, sdr_interrupt_check, sdr_interrupt_clear
#include "repl/did_you_mean.h" // did_you_mean_push
#include "repl/display.h"      // display_is_displayable, display_value
#include "repl/pretty.h"       // pretty_push

/* ---- Ctrl-C ------------------------------------------------------------ */

static lua_State *running_L;
static volatile sig_atomic_t code_running;

static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  /* C code that noticed the interrupt first has consumed it and is already
   * raising its own error ("download: interrupted"): leave that one alone. */
  if (sdr_interrupt_check() == 0)
    return;
  lua_pushstring(L, "interrupted");
  lua_error(L);
}

/* Only sets flags and a hook (lua.c does the same): the hook raises the error
 * from a safe point, and C loops poll the engine's flag. */
static void on_sigint(int sig) {
  (void)sig;
  sdr_interrupt_request();
  if (code_running && running_L)
    lua_sethook(running_L, interrupt_hook,
                LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
}

void run_install_sigint(lua_State *L) {
  running_L = L;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  /* No SA_RESTART: a blocking read at the prompt returns EINTR and the REPL sees it. */
  sigaction(SIGINT, &sa, NULL);
}

static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  did_you_mean_push(L, msg);
  luaL_traceback(L, L, lua_tostring(L, -1), 1);
  return 1;
}

int run_call(lua_State *L, int narg) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  sdr_interrupt_clear();
  lua_sethook(L, NULL, 0, 0);
  code_running = 1;
  int status = lua_pcall(L, narg, LUA_MULTRET, base);
  code_running = 0;
  lua_sethook(L, NULL, 0, 0);
  sdr_interrupt_clear();
  lua_remove(L, base);
  return status;
}

/* ---- compiling --------------------------------------------------------- */

static int compiles(lua_State *L, const char *code, size_t len, const char *name) {
  int ok = luaL_loadbuffer(L, code, len, name) == LUA_OK;
  lua_pop(L, 1);
  return ok;
}

/* A suffix that starts with one of these could continue the line before it
 * ("x = 1\n-y" is "x = 1 - y"), so it is never split off as the last expression. */
static int may_continue_expression(const char *s) {
  while (*s == ' ' || *s == '\t')
    s++;
  if (s[0] == '-' && s[1] == '-')
    return 1;
  return strchr("-+*/%^.<>=~&|([{:\"'#", *s) != NULL && *s != '\0';
}

/* Loads "prefix return suffix" where the suffix is the shortest tail, starting
 * after a newline or a ';', that is an expression, and the prefix is a chunk
 * of its own. Jupyter shows a cell's last expression the same way. */
static int load_with_last_expression(lua_State *L, const char *code, size_t len, const char *name) {
  enum { MAX_SPLITS = 40 };
  size_t k = len;
  for (int tries = 0; tries < MAX_SPLITS && k > 0; tries++) {
    k--;
    while (k > 0 && code[k - 1] != '\n' && code[k - 1] != ';')
      k--;
    const char *suffix = code + k;
    size_t slen = len - k;
    const char *p = suffix;
    while (p < code + len && isspace((unsigned char)*p))
      p++;
    if (p == code + len || may_continue_expression(p))
      continue;
    /* The values pass through a function so a call on the last line is not a
     * tail call: its frame, and the cell's line, stay in a traceback. The
     * closing parenthesis goes on a line of its own, after any comment. */
    static const char open[] = "return (function(...) return ... end)(", close[] = "\n)";
    const size_t no = sizeof open - 1, nc = sizeof close - 1;
    char *joined = malloc(len + no + nc + 1);
    if (!joined)
      return 0;
    memcpy(joined, code, k);
    memcpy(joined + k, open, no);
    memcpy(joined + k + no, suffix, slen);
    memcpy(joined + k + no + slen, close, nc);
    int ok = compiles(L, joined + k, slen + no + nc, name) && compiles(L, code, k, name);
    if (ok) {
      ok = luaL_loadbuffer(L, joined, len + no + nc, name) == LUA_OK;
      if (!ok)
        lua_pop(L, 1);
    }
    free(joined);
    if (ok)
      return 1;
  }
  return 0;
}

static int is_incomplete(lua_State *L) {
  size_t n;
  const char *msg = lua_tolstring(L, -1, &n);
  static const char mark[] = "<eof>";
  return msg && n >= sizeof mark - 1 && strcmp(msg + n - (sizeof mark - 1), mark) == 0;
}

int run_compile(lua_State *L, const char *code, size_t len, const char *chunkname, int *quiet) {
  /* A trailing ';' means "run, show nothing", as in IPython. */
  size_t end = len;
  while (end > 0 && isspace((unsigned char)code[end - 1]))
    end--;
  *quiet = end > 0 && code[end - 1] == ';';
  if (*quiet)
    len = end - 1;

  char *ret = malloc(len + 8);
  if (!ret) {
    lua_pushliteral(L, "out of memory");
    return LUA_ERRMEM;
  }
  memcpy(ret, "return ", 7);
  memcpy(ret + 7, code, len);
  int status = luaL_loadbuffer(L, ret, len + 7, chunkname);
  free(ret);
  if (status == LUA_OK)
    return LUA_OK;
  lua_pop(L, 1);

  if (load_with_last_expression(L, code, len, chunkname))
    return LUA_OK;
  status = luaL_loadbuffer(L, code, len, chunkname);
  if (status == LUA_ERRSYNTAX && is_incomplete(L)) {
    lua_pop(L, 1);
    return RUN_INCOMPLETE;
  }
  return status;
}

/* ---- showing results --------------------------------------------------- */

void run_show_results(lua_State *L, int first, const char *source) {
  int top = lua_gettop(L);
  if (top < first)
    return;
  lua_pushvalue(L, first);
  lua_setglobal(L, "_");
  int nprint = 0;
  for (int i = first; i <= top; i++) {
    if (display_is_displayable(L, i)) {
      display_value(L, i, source);
      continue;
    }
    if (lua_istable(L, i))
      pretty_push(L, i);
    else
      luaL_tolstring(L, i, NULL);
    nprint++;
  }
  if (nprint) {
    /* Through the global print, as lua.c does, so a redefined print sees it. */
    lua_getglobal(L, "print");
    lua_insert(L, top + 1);
    if (lua_pcall(L, nprint, 0, 0) != LUA_OK) {
      fprintf(stderr, "error calling 'print' (%s)\n", lua_tostring(L, -1));
      lua_pop(L, 1);
    }
  }
  lua_settop(L, first - 1);
}

int run_chunk(lua_State *L, const char *code, size_t len, const char *chunkname) {
  int quiet;
  int status = run_compile(L, code, len, chunkname, &quiet);
  if (status == RUN_INCOMPLETE) {
    /* A whole chunk that ends early: report it as Lua would. */
    status = luaL_loadbuffer(L, code, len, chunkname);
    if (status == LUA_OK) {
      lua_pop(L, 1);
      lua_pushliteral(L, "incomplete chunk");
      status = LUA_ERRSYNTAX;
    }
    return status;
  }
  if (status != LUA_OK)
    return status;
  int first = lua_gettop(L);
  status = run_call(L, 0);
  if (status != LUA_OK)
    return status;
  if (quiet)
    lua_settop(L, first - 1);
  else
    run_show_results(L, first, NULL);
  return LUA_OK;
}

/* repl/main.c — sdrepl's command line.
 *
 *   sdrepl                        the prompt
 *   sdrepl FILE.lua [args]        run a notebook script and exit
 *   sdrepl -i FILE.lua            run it, then stay at the prompt
 *   sdrepl -e CODE                run one chunk (may repeat)
 *   sdrepl -                      run standard input as a script
 *   sdrepl --export OUT FILE.lua  run it and write a record (.html, .md, .ipynb)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "bindings/bindings.h" // lsdr_open_all
#include "repl/display.h"      // display_open, display_set_inline
#include "repl/progress_bar.h" // progress_bar_install
#include "repl/prompt.h"       // prompt_loop
#include "repl/run.h"          // run_chunk, run_install_sigint
#include "repl/script.h"       // script_run_file
#include "repl/window.h"       // preview_window_shutdown

#define SDREPL_VERSION "0.1.0"

static void usage(FILE *out) {
  fprintf(out, "usage: sdrepl [options] [FILE.lua [args...]]\n"
               "  -i              stay at the prompt after FILE or -e\n"
               "  -e CODE         run CODE (may be given more than once)\n"
               "  -               read the script from standard input\n"
               "  --export OUT    run FILE as a notebook and write OUT (.html, .md or .ipynb)\n"
               "  --keep-going    with --export, run the cells after a failing one\n"
               "  -v, --version   print the version\n"
               "  -h, --help      print this help\n");
}

/* arg as lua.c builds it: arg[0] the script, arg[1..] what follows it. */
static void set_arg_table(lua_State *L, char **argv, int argc, int script) {
  lua_createtable(L, argc - script, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

/* $SDREPL_INIT, or ~/.sdreplrc.lua when it exists; an error in it is reported, not fatal. */
static void run_startup_file(lua_State *L) {
  const char *init = getenv("SDREPL_INIT");
  char path[4096];
  if (init && *init) {
    snprintf(path, sizeof path, "%s", init);
  } else {
    const char *home = getenv("HOME");
    if (!home)
      return;
    snprintf(path, sizeof path, "%s/.sdreplrc.lua", home);
    if (access(path, R_OK) != 0)
      return;
  }
  if (luaL_loadfile(L, path) != LUA_OK || run_call(L, 0) != LUA_OK)
    fprintf(stderr, "sdrepl: startup file: %s\n", lua_tostring(L, -1));
  lua_settop(L, 0);
}

int main(int argc, char **argv) {
  int interactive = 0, keep_going = 0, script = 0, ran_code = 0;
  const char *export_path = NULL;
  /* First pass: options up to the script name; -e chunks are run in order later. */
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-i") == 0) {
      interactive = 1;
    } else if (strcmp(a, "-e") == 0) {
      if (++i >= argc) {
        fprintf(stderr, "sdrepl: -e needs an argument\n");
        return 2;
      }
    } else if (strcmp(a, "--export") == 0) {
      if (++i >= argc) {
        fprintf(stderr, "sdrepl: --export needs a file name\n");
        return 2;
      }
      export_path = argv[i];
    } else if (strcmp(a, "--keep-going") == 0) {
      keep_going = 1;
    } else if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
      printf("sdrepl %s (%s)\n", SDREPL_VERSION, LUA_RELEASE);
      return 0;
    } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--") == 0) {
      i++;
      break;
    } else if (a[0] == '-' && a[1] != '\0') {
      fprintf(stderr, "sdrepl: unknown option '%s'\n", a);
      usage(stderr);
      return 2;
    } else {
      break;
    }
  }
  if (i < argc)
    script = i;
  if (export_path && !script) {
    fprintf(stderr, "sdrepl: --export needs a script to run\n");
    return 2;
  }

  lua_State *L = luaL_newstate();
  if (!L) {
    fprintf(stderr, "sdrepl: cannot create the Lua state (out of memory)\n");
    return 1;
  }
  lsdr_open_all(L);
  display_open(L);
  progress_bar_install();
  run_install_sigint(L);
  set_arg_table(L, argv, argc, script ? script : 0);
  run_startup_file(L);

  int status = 0;
  for (int j = 1; j < (script ? script : argc) && status == 0; j++) {
    if (strcmp(argv[j], "--export") == 0) {
      j++;
    } else if (strcmp(argv[j], "-e") == 0) {
      const char *code = argv[++j];
      ran_code = 1;
      if (run_chunk(L, code, strlen(code), "=(command line)") != LUA_OK) {
        fprintf(stderr, "sdrepl: %s\n", lua_tostring(L, -1));
        status = 1;
      }
      lua_settop(L, 0);
    }
  }
  if (status == 0 && script) {
    script_options opts = {export_path, keep_going};
    status = script_run_file(L, argv[script], &opts);
    ran_code = 1;
  }
  if (!ran_code && !isatty(STDIN_FILENO)) {
    /* Piped input with nothing else to do runs as a script, as lua does. */
    script_options opts = {NULL, 0};
    status = script_run_file(L, "-", &opts);
    ran_code = 1;
  }
  if (interactive || !ran_code) {
    display_set_inline(isatty(STDOUT_FILENO));
    if (!ran_code)
      printf("sdrepl %s (%s) — help() for help, Ctrl-D to leave\n", SDREPL_VERSION, LUA_RELEASE);
    status = prompt_loop(L) || status;
  }
  preview_window_shutdown();
  lua_close(L);
  return status;
}

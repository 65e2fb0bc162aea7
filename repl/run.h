/* repl/run.h — running a chunk of user code, shared by the prompt and the cell runner.
 *
 * As lua.c does: code is first tried as an expression ("return <code>"),
 * then as statements. Beyond lua.c, as Jupyter does for a cell: when the code
 * ends in an expression after some statements, that last expression's values
 * are the chunk's results. A trailing ';' runs the code without showing
 * anything. Results are kept in the global `_`, printed (tables pretty-printed)
 * and Images displayed. Ctrl-C raises "interrupted" at the next safe point.
 */
#ifndef SDR_REPL_RUN_H
#define SDR_REPL_RUN_H

#include <stddef.h>

#include <lua.h>

enum {
  RUN_INCOMPLETE = -1, /* run_compile: the code ends early (more lines are needed) */
};

/* Compiles code into a function on the stack; returns LUA_OK, RUN_INCOMPLETE
 * (nothing pushed) or a Lua error status (message pushed). *quiet is set when
 * the code ended in ';'. */
int run_compile(lua_State *L, const char *code, size_t len, const char *chunkname, int *quiet);

/* Calls the function below narg arguments under a traceback handler with Ctrl-C
 * armed. Leaves LUA_MULTRET results, or the message with a traceback. */
int run_call(lua_State *L, int narg);

/* Compiles and runs code; shows results unless quiet. On error returns the
 * status and leaves the message (with traceback) on the stack. */
int run_chunk(lua_State *L, const char *code, size_t len, const char *chunkname);

/* Shows the values from index first to the top (sets _, prints, displays);
 * `source` (may be NULL) names what made them, for window titles. Pops them. */
void run_show_results(lua_State *L, int first, const char *source);

/* Installs the SIGINT handler that turns Ctrl-C into a Lua error while code runs. */
void run_install_sigint(lua_State *L);

#endif

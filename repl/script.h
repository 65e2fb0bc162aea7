/* repl/script.h — running a notebook script: `sdrepl FILE.lua` and `--export`.
 *
 * A file without "-- %%" markers runs as one chunk, as `lua FILE.lua` would.
 * With markers each cell runs as its own chunk, as Jupyter runs cells (a
 * `local` does not reach the next cell); a cell's last expression is shown.
 * Error messages and tracebacks name the file's own lines.
 */
#ifndef SDR_REPL_SCRIPT_H
#define SDR_REPL_SCRIPT_H

#include <lua.h>

typedef struct script_options {
  const char *export_path; /* NULL: no record */
  int keep_going;          /* run later cells after a failing one */
} script_options;

/* path "-" reads standard input. Returns 0 when every cell ran, 1 otherwise
 * (the error has been printed to stderr). */
int script_run_file(lua_State *L, const char *path, const script_options *opts);

#endif

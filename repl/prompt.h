/* repl/prompt.h — the interactive prompt (GNU Readline).
 *
 * History across sessions, Tab completion, multi-line chunks (continued while
 * the code ends early, as lua.c detects "<eof>"), ?name and %time magics,
 * Ctrl-C clears the line, Ctrl-D leaves and saves history. While it waits for
 * a key the preview window keeps handling its events.
 */
#ifndef SDR_REPL_PROMPT_H
#define SDR_REPL_PROMPT_H

#include <lua.h>

/* Runs until end of input; returns the process exit status. */
int prompt_loop(lua_State *L);

/* Path of the history file ($XDG_STATE_HOME/sdrepl/history); malloc'd. */
char *prompt_history_path(void);

#endif

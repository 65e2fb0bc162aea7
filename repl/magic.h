/* repl/magic.h — IPython-style lines that are not Lua: ?name, name?, %time code. */
#ifndef SDR_REPL_MAGIC_H
#define SDR_REPL_MAGIC_H

#include <lua.h>

/* Runs the line when it is a magic and returns 1; returns 0 otherwise. */
int magic_try(lua_State *L, const char *line);

#endif

/* repl/complete.h — Tab completion of Lua names at the prompt.
 *
 * Globals and keywords; after "a.b." the fields of that table; after "x:" the
 * methods of x (a userdata's metatable __index, a table's own functions, or
 * the metatable's __fields when __index is a function), so `pipe:en<Tab>` completes. Names are looked up with raw access and __index
 * tables only: completing never runs user code.
 */
#ifndef SDR_REPL_COMPLETE_H
#define SDR_REPL_COMPLETE_H

#include <lua.h>

void complete_install(lua_State *L);

/* The completions of text, as a NULL-terminated malloc'd array of malloc'd
 * strings (NULL when none); what readline gets, exposed for tests. */
char **complete_candidates(lua_State *L, const char *text);

#endif

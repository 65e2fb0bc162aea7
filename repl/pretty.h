/* repl/pretty.h — tables printed readably at the prompt, with bounds.
 *
 * {1, 2, 3} and {a = 1, b = "x"}; nested tables to a depth of 4, at most 50
 * entries per table, cycles shown as <cycle>; one line when short, indented
 * lines otherwise. Array entries come first, then other keys sorted.
 */
#ifndef SDR_REPL_PRETTY_H
#define SDR_REPL_PRETTY_H

#include <lua.h>

/* Pushes the text for the value at idx. */
void pretty_push(lua_State *L, int idx);

#endif

/* repl/did_you_mean.h — Python's "Did you mean: ...?" for a mistyped global name. */
#ifndef SDR_REPL_DID_YOU_MEAN_H
#define SDR_REPL_DID_YOU_MEAN_H

#include <lua.h>

/* An error message about a nil global ("attempt to call a nil value (global 'X')"),
 * pushed again with ". Did you mean: 'Y'?" after its first line when a global Y is a few
 * letters away from X; else msg itself is pushed. */
void did_you_mean_push(lua_State *L, const char *msg);

#endif

/* bindings/bindings.h — every Lua module sdrepl gives the user. */
#ifndef SDR_BINDINGS_BINDINGS_H
#define SDR_BINDINGS_BINDINGS_H

#include <lua.h>

/* Opens the standard libraries and all sdrepl modules as globals. */
void lsdr_open_all(lua_State *L);

#endif

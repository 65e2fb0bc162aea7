/* bindings/safety_checker.h — a pipeline's safety checker and feature extractor in Lua. */
#ifndef SDR_BINDINGS_SAFETY_CHECKER_H
#define SDR_BINDINGS_SAFETY_CHECKER_H

#include <lua.h>

/* Push a handle on the safety checker, the feature extractor, of the pipeline at idx. */
void lsdr_push_safety_checker(lua_State *L, int pipe);
void lsdr_push_feature_extractor(lua_State *L, int pipe);
/* Their metatables. */
void lsdr_open_safety_checker(lua_State *L);

#endif

/* bindings/model_common.h — what every model binding does the same way:
 * from_pretrained's folder and options, the userdata's metatable, config tables. */
#ifndef SDR_BINDINGS_MODEL_COMMON_H
#define SDR_BINDINGS_MODEL_COMMON_H

#include <lua.h>

#include "bindings/lsdr.h" // lsdr_func, lsdr_param

/* The options every from_pretrained takes: subfolder, torch_dtype, variant. */
extern const lsdr_param lsdr_from_pretrained_options[];

typedef struct lsdr_pretrained {
  char dir[4096];      /* path[/subfolder], checked to be a folder */
  int keep_dtype;      /* -1: as stored */
  const char *variant; /* NULL or e.g. "fp16"; points into the options table */
} lsdr_pretrained;

/* Reads from_pretrained(path, opts) after lsdr_args/lsdr_options: path at
 * user argument 1, the filled options table at 2. Raises a Lua error naming
 * the folder when it does not exist. */
void lsdr_pretrained_read(lua_State *L, lsdr_pretrained *p);

/* Makes the metatable `name` for a model userdata: __index looks in the
 * methods (registered from `methods`, which may hold a "Type:__call" entry that
 * becomes __call) and then calls index_extra(L) for properties; __gc and __close
 * call gc; __fields lists the methods for completion. Leaves nothing on the stack. */
void lsdr_model_metatable(lua_State *L, const char *name, const lsdr_func *methods,
                          lua_CFunction index_extra, lua_CFunction gc, lua_CFunction tostring);

/* Sets t[key] = value for config tables. */
void lsdr_set_int(lua_State *L, int t, const char *key, lua_Integer v);
void lsdr_set_num(lua_State *L, int t, const char *key, lua_Number v);
void lsdr_set_str(lua_State *L, int t, const char *key, const char *v);
void lsdr_set_int_list(lua_State *L, int t, const char *key, const int *v, int n);

#endif

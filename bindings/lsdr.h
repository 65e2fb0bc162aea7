/* bindings/lsdr.h — how every binding declares, checks and documents its arguments.
 *
 * A binding is a C function plus an lsdr_func that names it, lists its
 * parameters with their types and default values (as Lua expressions), and
 * says in one line what it does. The same table drives three things, so they
 * cannot drift apart: the argument checks, the defaults the function sees, and
 * what help(f) prints.
 *
 *   static const lsdr_func image_funcs[] = {
 *     {"Image:resize", image_resize, "Returns a resized copy (PIL's Image.resize).",
 *      {{"size", "table"}, {"resample", "integer", "Image.BICUBIC"}}},
 *     {0}};
 *
 * Inside the function, lsdr_args(L) checks every argument against its type
 * and puts defaults in place of missing ones; after it, argument i of the
 * user's call sits at stack index lsdr_arg(L, i). A method ("Type:name")
 * keeps self at index 1 and numbers the user's arguments from 1 after it, as
 * Python does. Errors read "Image:resize: argument 1 (size): table expected,
 * got number".
 *
 * Types are '|'-separated: nil-less Lua types (string, number, boolean,
 * table, function, userdata), "integer" (a number with an integer value),
 * "any", or a type name given to luaL_newmetatable, of a userdata or of a
 * table object ("Image", "DiagonalGaussianDistribution").
 */
#ifndef SDR_BINDINGS_LSDR_H
#define SDR_BINDINGS_LSDR_H

#include <lauxlib.h>
#include <lua.h>

enum { LSDR_MAX_PARAMS = 12, LSDR_MAX_OPTIONS = 40 };

typedef struct lsdr_param {
  const char *name;
  const char *type;
  const char *dflt; /* Lua expression; NULL: the argument is required */
  const char *doc;  /* optional, shown by help */
} lsdr_param;

typedef struct lsdr_func {
  const char *name; /* as written by the user: "Image.open", "Image:resize", "image_grid" */
  lua_CFunction fn;
  const char *doc;
  lsdr_param params[LSDR_MAX_PARAMS];
  /* Named fields accepted by the last parameter when its type is "table" and
   * the binding calls lsdr_options (keyword arguments, diffusers-style). */
  const lsdr_param *options;
} lsdr_func;

/* Sets t[short name] = function for each entry up to one with a NULL name,
 * where t is the table at index t_idx. */
void lsdr_register(lua_State *L, int t_idx, const lsdr_func *funcs);
/* The global `name`: a new class table with funcs registered, callable as Cls(...) when
 * funcs has a "Cls.__call" entry (moved to the table's metatable). */
void lsdr_set_class(lua_State *L, const char *name, const lsdr_func *funcs);

/* The spec of the running binding (registered with lsdr_register). */
const lsdr_func *lsdr_current(lua_State *L);

/* Checks arguments, fills defaults, sets the stack to exactly the declared
 * parameters (plus self). Raises a Lua error on a bad argument. */
void lsdr_args(lua_State *L);
int lsdr_arg(lua_State *L, int param);

/* For a keyword table at user parameter `param` (nil allowed): checks each
 * field against f->options (unknown names are an error, as Python's
 * "unexpected keyword argument"), and replaces the argument by a new table
 * holding every option, defaults filled in. */
void lsdr_options(lua_State *L, int param);

/* What the value at idx is, for "expected, got X": a userdata's type name
 * ("UNet2DConditionModel") where it has one, else Lua's type name. */
const char *lsdr_typename(lua_State *L, int idx);
/* They raise a Lua error and never return; the int return type lets a binding write
 * `return lsdr_error(...)`, and noreturn tells the compiler what follows is dead. */
#if defined(__GNUC__)
#define LSDR_NORETURN __attribute__((noreturn))
#else
#define LSDR_NORETURN
#endif
/* Raise "<binding name>: <message>". */
LSDR_NORETURN int lsdr_error(lua_State *L, const char *fmt, ...);
/* Raise "<binding name>: <sdr_last_error()>" (an engine call failed). */
LSDR_NORETURN int lsdr_engine_error(lua_State *L);
LSDR_NORETURN int lsdr_argerror(lua_State *L, int param, const char *expected);

/* Whether path is a regular file, a folder (what a loader's argument names). */
int lsdr_is_file(const char *path);
int lsdr_is_dir(const char *path);

/* Pushes the value of a Lua expression, evaluated once and cached. */
void lsdr_push_expr(lua_State *L, const char *expr);

/* Does the value at idx have this type spec ("integer|table", ...)? */
int lsdr_is_type(lua_State *L, int idx, const char *type);

/* help(f): pushes the help text of a registered function, or nil. */
int lsdr_push_help(lua_State *L, int idx);

/* Registers help() as a global. */
void lsdr_open_help(lua_State *L);

#endif

/* bindings/download.c — download(url) and FastDownload():download(url).
 *
 * The notebook's `p = FastDownload().download(url)` becomes
 * `p = FastDownload():download(url)`: the path of a cached local copy.
 * FastDownload{base = dir} keeps its files in dir (fastdownload's `base`);
 * the plain download(url) uses the default cache. Both take {force = true}
 * to fetch again (fastdownload's force=True).
 */
#include "bindings/download.h"

#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/lsdr.h"   // lsdr_args, lsdr_options, lsdr_register, lsdr_engine_error
#include "engine/download.h" // sdr_download, sdr_download_default_dir

#define FASTDOWNLOAD "FastDownload"

static const lsdr_param download_options[] = {
    {"force", "boolean", "false", "download again even when a cached copy exists"}, {0}};

static const lsdr_param fastdownload_options[] = {
    {"base", "string", "nil", "cache folder (default $XDG_CACHE_HOME/sdrepl/downloads)"}, {0}};

/* Runs the engine and pushes the path, or raises "<name>: <reason>". */
static int push_download(lua_State *L, const char *url, const char *base, int force) {
  char *path = sdr_download_url(url, base, force);
  if (!path)
    return lsdr_engine_error(L);
  lua_pushstring(L, path);
  free(path);
  return 1;
}

static int option_force(lua_State *L, int param) {
  lua_getfield(L, lsdr_arg(L, param), "force");
  int force = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return force;
}

/* download(url, {force=false}) */
static int l_download(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  return push_download(L, lua_tostring(L, lsdr_arg(L, 1)), NULL, option_force(L, 2));
}

/* FastDownload:download(url, {force=false}); the base folder is the user value. */
static int fastdownload_download(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  lua_getiuservalue(L, 1, 1);
  const char *base = lua_tostring(L, -1); /* NULL: the default cache */
  return push_download(L, lua_tostring(L, lsdr_arg(L, 1)), base, option_force(L, 2));
}

/* fastdownload expands "~" in base (Path.expanduser); so do we. */
static void push_expanded_base(lua_State *L, const char *base) {
  const char *home = getenv("HOME");
  if (home && base[0] == '~' && (base[1] == '/' || base[1] == 0))
    lua_pushfstring(L, "%s%s", home, base + 1);
  else
    lua_pushstring(L, base);
}

/* FastDownload({base=nil}) */
static int l_fastdownload(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 1);
  lua_getfield(L, lsdr_arg(L, 1), "base");
  const char *base = lua_tostring(L, -1);
  lua_newuserdatauv(L, 0, 1);
  if (base) {
    push_expanded_base(L, base);
    lua_setiuservalue(L, -2, 1);
  }
  luaL_setmetatable(L, FASTDOWNLOAD);
  return 1;
}

static int fastdownload_tostring(lua_State *L) {
  luaL_checkudata(L, 1, FASTDOWNLOAD);
  lua_getiuservalue(L, 1, 1);
  if (lua_isstring(L, -1)) {
    lua_pushfstring(L, "<FastDownload base=%s>", lua_tostring(L, -1));
    return 1;
  }
  char *dir = sdr_download_default_dir();
  if (dir)
    lua_pushfstring(L, "<FastDownload base=%s>", dir);
  else
    lua_pushliteral(L, "<FastDownload>");
  free(dir);
  return 1;
}

static const lsdr_func global_funcs[] = {
    {"download",
     l_download,
     "Returns the local path of url (http, https or file), downloading it into the cache "
     "unless a copy is there already.",
     {{"url", "string"}, {"opts", "table", "{}", "options, see below"}},
     download_options},
    {"FastDownload",
     l_fastdownload,
     "A downloader with a cache folder, as fastdownload's FastDownload; "
     "p = FastDownload():download(url).",
     {{"opts", "table", "{}", "options, see below"}},
     fastdownload_options},
    {0}};

static const lsdr_func method_funcs[] = {
    {"FastDownload:download",
     fastdownload_download,
     "Returns the local path of url, downloading it unless the cache has it (fastdownload's "
     "download).",
     {{"url", "string"}, {"opts", "table", "{}", "options, see below"}},
     download_options},
    {0}};

void lsdr_open_download(lua_State *L) {
  luaL_newmetatable(L, FASTDOWNLOAD);
  lua_newtable(L);
  lsdr_register(L, -1, method_funcs);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, fastdownload_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);

  lua_pushglobaltable(L);
  lsdr_register(L, -1, global_funcs);
  lua_pop(L, 1);
}

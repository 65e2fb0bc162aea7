/* repl/did_you_mean.c — a suggestion for a mistyped global, as Python 3.10+ gives one for a
 * NameError (traceback.py's _compute_suggestion_error): the global nearest by Levenshtein
 * distance, a case change costing 1 and any other edit 2, within (len(a) + len(b) + 3) * 2
 * // 6. A diffusers class sdrepl does not have (a name ending in Scheduler or Pipeline, no
 * typo of one it has) gets the list of those it has instead of a far-fetched guess. */
#include "repl/did_you_mean.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

enum { MAX_NAME = 40, MOVE = 2, CASE = 1, TYPO = MOVE /* one letter */ };

static int distance(const char *a, const char *b) {
  size_t n = strlen(a), m = strlen(b);
  int d[MAX_NAME + 1][MAX_NAME + 1];
  if (n > MAX_NAME || m > MAX_NAME)
    return 1 << 20;
  for (size_t i = 0; i <= n; i++)
    d[i][0] = MOVE * (int)i;
  for (size_t j = 0; j <= m; j++)
    d[0][j] = MOVE * (int)j;
  for (size_t i = 1; i <= n; i++)
    for (size_t j = 1; j <= m; j++) {
      int sub = a[i - 1] == b[j - 1]                                                   ? 0
                : tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? CASE
                                                                                       : MOVE;
      int best = d[i - 1][j - 1] + sub;
      best = d[i - 1][j] + MOVE < best ? d[i - 1][j] + MOVE : best;
      best = d[i][j - 1] + MOVE < best ? d[i][j - 1] + MOVE : best;
      d[i][j] = best;
    }
  return d[n][m];
}

static int ends_with(const char *s, const char *tail) {
  size_t n = strlen(s), m = strlen(tail);
  return n >= m && strcmp(s + n - m, tail) == 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The global names, sorted (malloc'd; *n of them, NULL when there is no memory). They
 * stay alive while the table holding them, pushed here, is on the stack. Sorted in C,
 * not with table.sort, which a notebook may have replaced. */
static const char **sorted_globals(lua_State *L, int *n) {
  lua_newtable(L);
  int count = 0;
  lua_pushglobaltable(L);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      lua_pushvalue(L, -1);
      lua_rawseti(L, -4, ++count);
    }
  }
  lua_pop(L, 1);
  const char **names = malloc(((size_t)count + 1) * sizeof *names);
  for (int i = 0; names && i < count; i++) {
    lua_rawgeti(L, -1, i + 1);
    names[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  if (names)
    qsort(names, (size_t)count, sizeof *names, by_name);
  *n = names ? count : 0;
  return names;
}

void did_you_mean_push(lua_State *L, const char *msg) {
  const char *at = strstr(msg, "(global '");
  const char *end = at ? strchr(at + 9, '\'') : NULL;
  char name[MAX_NAME + 1];
  if (!end || end == at + 9 || end - (at + 9) > MAX_NAME) {
    lua_pushstring(L, msg);
    return;
  }
  memcpy(name, at + 9, (size_t)(end - (at + 9)));
  name[end - (at + 9)] = '\0';
  /* a global that exists (called or indexed wrongly) is not a typo */
  int exists = lua_getglobal(L, name) != LUA_TNIL;
  lua_pop(L, 1);
  if (exists) {
    lua_pushstring(L, msg);
    return;
  }
  const char *kind = ends_with(name, "Scheduler")  ? "Scheduler"
                     : ends_with(name, "Pipeline") ? "Pipeline"
                                                   : NULL;
  const char *kinds = kind && kind[0] == 'S' ? "schedulers" : "pipelines";
  int n, best = -1;
  const char **names = sorted_globals(L, &n);
  const char *found = NULL;
  for (int i = 0; i < n; i++) {
    const char *g = names[i];
    int limit = ((int)strlen(name) + (int)strlen(g) + 3) * MOVE / 6;
    int dist = strcmp(g, name) == 0 ? limit + 1 : distance(name, g);
    if (dist <= limit && (!found || dist < best)) {
      best = dist;
      found = g;
    }
  }
  const char *nl = strchr(msg, '\n');
  size_t first = nl ? (size_t)(nl - msg) : strlen(msg);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, msg, first);
  if (kind && (!found || best > TYPO)) {
    lua_pushfstring(L, ". sdrepl has no %s; its %s:", name, kinds);
    luaL_addvalue(&b);
    for (int i = 0, k = 0; i < n; i++)
      if (ends_with(names[i], kind) && strcmp(names[i], kind) != 0) {
        luaL_addstring(&b, k++ ? ", " : " ");
        luaL_addstring(&b, names[i]);
      }
  } else if (found) {
    luaL_addstring(&b, ". Did you mean: '");
    luaL_addstring(&b, found);
    luaL_addstring(&b, "'?");
  }
  luaL_addstring(&b, msg + first);
  luaL_pushresult(&b);
  lua_remove(L, -2); /* the names */
  free(names);
}

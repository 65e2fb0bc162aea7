/* repl/complete.c — Tab completion over the live Lua state. */
#include "repl/complete.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <readline/readline.h>

#include <lauxlib.h>

static lua_State *complete_L;

static const char *const keywords[] = {"and",   "break", "do",       "else",  "elseif", "end",
                                       "false", "for",   "function", "goto",  "if",     "in",
                                       "local", "nil",   "not",      "or",    "repeat", "return",
                                       "then",  "true",  "until",    "while", NULL};

typedef struct {
  char **items;
  size_t n, cap;
} strlist;

static void add(strlist *l, const char *prefix, size_t plen, const char *name) {
  for (size_t i = 0; i < l->n; i++) /* a name found on the object and on its __index once */
    if (strcmp(l->items[i] + plen, name) == 0)
      return;
  if (l->n + 2 > l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    char **items = realloc(l->items, cap * sizeof *items);
    if (!items)
      return;
    l->items = items;
    l->cap = cap;
  }
  size_t nlen = strlen(name);
  char *s = malloc(plen + nlen + 1);
  if (!s)
    return;
  memcpy(s, prefix, plen);
  memcpy(s + plen, name, nlen + 1);
  l->items[l->n++] = s;
  l->items[l->n] = NULL;
}

static int is_identifier(const char *s) {
  if (!isalpha((unsigned char)*s) && *s != '_')
    return 0;
  for (s++; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '_')
      return 0;
  return 1;
}

/* Adds the keys of the table at idx that start with partial (functions only
 * when methods_only). */
static void add_keys(lua_State *L, int idx, strlist *l, const char *prefix, size_t plen,
                     const char *partial, int methods_only) {
  size_t n = strlen(partial);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -2);
      /* Names starting with '_' only when asked for, as IPython hides them. */
      if (strncmp(k, partial, n) == 0 && is_identifier(k) && (k[0] != '_' || partial[0] == '_'))
        if (!methods_only || lua_isfunction(L, -1))
          add(l, prefix, plen, k);
    }
    lua_pop(L, 1);
  }
}

/* Adds the names reachable from the value at idx: its own fields when a table,
 * then its metatable's __index tables (a few levels, for inheritance chains). */
static void add_members(lua_State *L, int idx, strlist *l, const char *prefix, size_t plen,
                        const char *partial, int methods_only) {
  idx = lua_absindex(L, idx);
  int top = lua_gettop(L);
  lua_pushvalue(L, idx);
  for (int depth = 0; depth < 8; depth++) {
    if (lua_istable(L, -1))
      add_keys(L, lua_gettop(L), l, prefix, plen, partial, methods_only);
    if (!lua_getmetatable(L, -1))
      break;
    if (lua_getfield(L, -1, "__index") != LUA_TTABLE) {
      /* An __index function (properties, t[i]) cannot be listed; such a type
       * names its members in __fields (methods as functions, properties as true)
       * or its methods in __methods. */
      lua_pop(L, 1);
      if (lua_getfield(L, -1, "__fields") == LUA_TTABLE)
        add_keys(L, lua_gettop(L), l, prefix, plen, partial, methods_only);
      lua_pop(L, 1);
      if (lua_getfield(L, -1, "__methods") == LUA_TTABLE)
        add_keys(L, lua_gettop(L), l, prefix, plen, partial, methods_only);
      break;
    }
    lua_remove(L, -2);
  }
  lua_settop(L, top);
}

/* Walks "a.b.c" through tables and __index tables without running code;
 * pushes the value or returns 0. */
static int resolve(lua_State *L, const char *path, size_t len) {
  lua_pushglobaltable(L);
  size_t start = 0;
  while (start <= len) {
    size_t end = start;
    while (end < len && path[end] != '.' && path[end] != ':')
      end++;
    if (end == start) {
      lua_pop(L, 1);
      return 0;
    }
    char key[256];
    if (end - start >= sizeof key) {
      lua_pop(L, 1);
      return 0;
    }
    memcpy(key, path + start, end - start);
    key[end - start] = 0;
    int found = 0;
    for (int depth = 0; depth < 8 && !found; depth++) {
      if (lua_istable(L, -1)) {
        lua_pushstring(L, key);
        lua_rawget(L, -2);
        if (!lua_isnil(L, -1)) {
          lua_remove(L, -2);
          found = 1;
          break;
        }
        lua_pop(L, 1);
      }
      if (!lua_getmetatable(L, -1))
        break;
      lua_getfield(L, -1, "__index");
      lua_remove(L, -2);
      lua_remove(L, -2);
      if (!lua_istable(L, -1))
        break;
    }
    if (!found) {
      lua_pop(L, 1);
      return 0;
    }
    start = end + 1;
  }
  return 1;
}

char **complete_candidates(lua_State *L, const char *text) {
  strlist l = {0};
  int top = lua_gettop(L);
  const char *sep = NULL;
  for (const char *p = text; *p; p++)
    if (*p == '.' || *p == ':')
      sep = p;
  if (!sep) {
    size_t n = strlen(text);
    for (const char *const *k = keywords; *k; k++)
      if (strncmp(*k, text, n) == 0)
        add(&l, "", 0, *k);
    lua_pushglobaltable(L);
    add_members(L, -1, &l, "", 0, text, 0);
  } else if (resolve(L, text, (size_t)(sep - text))) {
    add_members(L, -1, &l, text, (size_t)(sep - text) + 1, sep + 1, *sep == ':');
  }
  lua_settop(L, top);
  if (l.n > 1) {
    qsort(l.items, l.n, sizeof *l.items, (int (*)(const void *, const void *))strcmp);
  }
  return l.items;
}

static char *generator(const char *text, int state) {
  static char **items;
  static size_t next;
  if (state == 0) {
    if (items) {
      for (size_t i = next; items[i]; i++)
        free(items[i]);
      free(items);
    }
    items = complete_candidates(complete_L, text);
    next = 0;
  }
  if (!items || !items[next]) {
    free(items);
    items = NULL;
    return NULL;
  }
  return items[next++];
}

static char **attempt(const char *text, int start, int end) {
  (void)start;
  (void)end;
  rl_attempted_completion_over = 1; /* never fall back to file names */
  return rl_completion_matches(text, generator);
}

void complete_install(lua_State *L) {
  complete_L = L;
  rl_attempted_completion_function = attempt;
  /* '.' and ':' stay inside words so "pipe:en" is completed as one name path. */
  rl_completer_word_break_characters = " \t\n\"\\'`@$><=;|&{(,+-*/%^#~[]";
  rl_completion_append_character = '\0';
}

/* repl/magic.c — ?name and %time. */
#include "repl/magic.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <lauxlib.h>

#include "repl/run.h" // run_compile, run_call, run_show_results

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void cpu_times(double *user, double *sys) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  *user = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6;
  *sys = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

/* IPython's way of writing a duration: 12.3 ms, 1.23 s, 2min 3s. */
static void format_duration(char *buf, size_t n, double s) {
  if (s >= 60)
    snprintf(buf, n, "%dmin %.0fs", (int)(s / 60), s - 60 * (int)(s / 60));
  else if (s >= 1)
    snprintf(buf, n, "%.3g s", s);
  else if (s >= 1e-3)
    snprintf(buf, n, "%.3g ms", s * 1e3);
  else
    snprintf(buf, n, "%.3g µs", s * 1e6);
}

static void time_chunk(lua_State *L, const char *code) {
  int quiet, top = lua_gettop(L);
  int status = run_compile(L, code, strlen(code), "=stdin", &quiet);
  if (status == RUN_INCOMPLETE) {
    fprintf(stderr, "%%time: the code is incomplete\n");
    return;
  }
  double u0, s0, u1, s1, t0 = now_s();
  cpu_times(&u0, &s0);
  if (status == LUA_OK)
    status = run_call(L, 0);
  double wall = now_s() - t0;
  cpu_times(&u1, &s1);
  char u[32], s[32], tot[32], w[32];
  format_duration(u, sizeof u, u1 - u0);
  format_duration(s, sizeof s, s1 - s0);
  format_duration(tot, sizeof tot, (u1 - u0) + (s1 - s0));
  format_duration(w, sizeof w, wall);
  printf("CPU times: user %s, sys: %s, total: %s\nWall time: %s\n", u, s, tot, w);
  if (status != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    lua_settop(L, top);
    return;
  }
  if (quiet)
    lua_settop(L, top);
  else
    run_show_results(L, top + 1, code);
}

static void help_name(lua_State *L, const char *name, size_t len) {
  lua_getglobal(L, "help");
  lua_pushlstring(L, name, len);
  if (run_call(L, 1) != LUA_OK)
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
  lua_settop(L, 0);
}

int magic_try(lua_State *L, const char *line) {
  while (isspace((unsigned char)*line))
    line++;
  size_t len = strlen(line);
  while (len > 0 && isspace((unsigned char)line[len - 1]))
    len--;
  if (len == 0)
    return 0;
  if (strncmp(line, "%time", 5) == 0 && (len == 5 || isspace((unsigned char)line[5]))) {
    char *code = strndup(line + 5, len - 5);
    if (code)
      time_chunk(L, code);
    free(code);
    return 1;
  }
  if (line[0] == '?' && len > 1) {
    help_name(L, line + 1, len - 1);
    return 1;
  }
  if (line[len - 1] == '?' && len > 1) {
    help_name(L, line, len - 1);
    return 1;
  }
  return 0;
}

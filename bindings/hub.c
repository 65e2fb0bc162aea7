/* bindings/hub.c — login() and the repo-id half of every from_pretrained.
 *
 * login() is huggingface_hub's notebook_login as a terminal has it
 * (interpreter_login, then _login): the token is read with echo off, checked
 * against the hub's whoami, and written to $HF_HOME/token, where Python's
 * huggingface_hub (and every later from_pretrained here) finds it.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif
#include "bindings/hub.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <lauxlib.h>

#include "bindings/lsdr.h"    // lsdr_args, lsdr_options, lsdr_register, lsdr_error
#include "engine/error.h"     // sdr_last_error
#include "engine/hub.h"       // sdr_hub_snapshot, sdr_hub_whoami, sdr_hub_save_token
#include "engine/interrupt.h" // sdr_interrupt_check

/* ---- from_pretrained ------------------------------------------------------------ */

static const char *opt_string(lua_State *L, int opts, const char *key) {
  if (!opts)
    return NULL;
  lua_getfield(L, opts, key);
  const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  lua_pop(L, 1); /* the options table keeps the string alive */
  return s;
}

/* nil -> dflt, true -> 1, false -> 0 */
static int opt_bool(lua_State *L, int opts, const char *key, int dflt) {
  if (!opts)
    return dflt;
  lua_getfield(L, opts, key);
  int v = lua_isnil(L, -1) ? dflt : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

const char *lsdr_hub_resolve(lua_State *L, int name_idx, int opts_idx, sdr_hub_kind kind) {
  name_idx = lua_absindex(L, name_idx);
  int opts = opts_idx && lua_istable(L, opts_idx) ? lua_absindex(L, opts_idx) : 0;
  const char *name = lua_tostring(L, name_idx);
  struct stat st;
  if (!name || (stat(name, &st) == 0 && S_ISDIR(st.st_mode)) || !sdr_hub_is_repo_id(name)) {
    lua_pushvalue(L, name_idx);
    return lua_tostring(L, -1);
  }
  /* What sdrepl loads of a pipeline: not the safety checker with safety_checker = false, nor
   * a model passed to from_pretrained (diffusers fetches neither). */
  static const char *const components[] = {"safety_checker",
                                           "text_encoder",
                                           "text_encoder_2",
                                           "unet",
                                           "vae",
                                           "tokenizer",
                                           "tokenizer_2",
                                           "scheduler",
                                           "feature_extractor",
                                           "low_res_scheduler"};
  enum { NCOMP = sizeof components / sizeof components[0] };
  const char *wanted[NCOMP + 1];
  int n = 0;
  for (int i = 0; i < NCOMP; i++) {
    int skip = 0;
    if (opts && i < 5) { /* the checker, and the models the engine then does not read */
      lua_getfield(L, opts, components[i]);
      skip = i == 0 ? lua_isboolean(L, -1) && !lua_toboolean(L, -1) : !lua_isnil(L, -1);
      lua_pop(L, 1);
    }
    if (!skip)
      wanted[n++] = components[i];
  }
  wanted[n] = NULL;
  sdr_hub_options o = {.use_safetensors = opt_bool(L, opts, "use_safetensors", -1)};
  o.revision = opt_string(L, opts, "revision");
  o.subfolder = opt_string(L, opts, "subfolder");
  o.variant = opt_string(L, opts, "variant");
  o.weight_name = opt_string(L, opts, "weight_name");
  o.cache_dir = opt_string(L, opts, "cache_dir");
  o.token = opt_string(L, opts, "token");
  o.no_token = opt_bool(L, opts, "token", 1) == 0;
  o.local_files_only = opt_bool(L, opts, "local_files_only", 0);
  o.components = kind == SDR_HUB_PIPELINE ? wanted : NULL;
  char *snapshot = sdr_hub_snapshot(name, kind, &o);
  if (!snapshot)
    lsdr_engine_error(L);
  if (o.note[0]) {
    fflush(stdout);
    fprintf(stderr, "sdrepl: %s\n", o.note);
  }
  lua_pushstring(L, snapshot);
  free(snapshot);
  return lua_tostring(L, -1);
}

/* ---- reading a token ------------------------------------------------------------- */

/* getpass: echo off (when fd 0 is a terminal), then the prompt, then one line
 * from fd 0 without its newline, read byte by byte so nothing after it is
 * consumed. Ctrl-C ends it. */
static int read_secret(lua_State *L, luaL_Buffer *b, const char *prompt) {
  struct termios saved, quiet;
  int tty = isatty(0) && tcgetattr(0, &saved) == 0;
  if (tty) {
    quiet = saved;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    tcsetattr(0, TCSAFLUSH, &quiet);
  }
  fputs(prompt, stdout);
  fflush(stdout);
  int status = 0; /* 0 a line, 1 end of input, -1 interrupted, -2 read error */
  int err = 0;
  for (;;) {
    struct pollfd p = {.fd = 0, .events = POLLIN};
    int ready = poll(&p, 1, 100);
    if (sdr_interrupt_check() != 0) {
      status = -1;
      break;
    }
    if (ready < 0 && errno != EINTR) {
      status = -2;
      err = errno;
      break;
    }
    if (ready <= 0)
      continue;
    char c;
    ssize_t n = read(0, &c, 1);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n < 0) {
      status = -2;
      err = errno;
      break;
    }
    if (n == 0) {
      status = luaL_bufflen(b) > 0 ? 0 : 1;
      break;
    }
    if (c == '\n')
      break;
    luaL_addchar(b, c);
  }
  if (tty)
    tcsetattr(0, TCSAFLUSH, &saved);
  if (status == -1)
    return lsdr_error(L, "interrupted");
  if (status == -2)
    return lsdr_error(L, "cannot read the token: %s", strerror(err));
  return status;
}

/* ---- login ------------------------------------------------------------------------ */

static const lsdr_param login_options[] = {
    {"token", "string", "nil", "the token; asked for (without echo) when nil"}, {0}};

static int l_login(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 1);
  lua_getfield(L, lsdr_arg(L, 1), "token");
  const char *token = lua_tostring(L, -1);
  if (!token) {
    /* interpreter_login */
    char *endpoint = sdr_hub_endpoint();
    char *old = sdr_hub_get_token();
    if (old)
      printf("    A token is already saved on your machine; a new one replaces it.\n");
    printf("    To log in, sdrepl needs a token made at %s/settings/tokens .\n",
           endpoint ? endpoint : "https://huggingface.co");
    free(endpoint);
    free(old);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    int eof = read_secret(L, &b, "Enter your token (input will not be visible): ");
    luaL_pushresult(&b);
    if (eof)
      return lsdr_error(L, "no token given (end of input)");
    token = lua_tostring(L, -1);
  }
  /* _clean_token: no spaces or line ends around it */
  while (*token == ' ' || *token == '\t')
    token++;
  size_t n = strlen(token);
  while (n > 0 && (token[n - 1] == ' ' || token[n - 1] == '\t' || token[n - 1] == '\r'))
    n--;
  lua_pushlstring(L, token, n);
  token = lua_tostring(L, -1);
  if (!*token)
    return lsdr_error(L, "no token given");
  /* _login */
  char *user, *role;
  if (sdr_hub_whoami(token, &user, &role) != 0)
    return lsdr_engine_error(L);
  printf("Token is valid (permission: %s).\n", *role ? role : "unknown");
  free(user);
  free(role);
  char *path = sdr_hub_save_token(token);
  if (!path)
    return lsdr_engine_error(L);
  printf("Your token has been saved to %s\n", path);
  free(path);
  const char *env = getenv("HF_TOKEN");
  if (env && *env)
    printf("Note: the environment variable HF_TOKEN is set and is the token in use, whatever "
           "was saved.\n");
  printf("Login successful\n");
  fflush(stdout);
  return 0;
}

static const lsdr_func hub_funcs[] = {
    {"login",
     l_login,
     "Logs in to the Hugging Face hub (huggingface_hub's login / notebook_login): asks for a "
     "token without echo, checks it and saves it to $HF_HOME/token.",
     {{"opts", "table", "{}", "options, see below"}},
     login_options},
    {"notebook_login",
     l_login,
     "The same as login().",
     {{"opts", "table", "{}", "options, see below"}},
     login_options},
    {0}};

void lsdr_open_hub(lua_State *L) {
  lua_pushglobaltable(L);
  lsdr_register(L, -1, hub_funcs);
  lua_pop(L, 1);
}

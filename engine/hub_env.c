/* engine/hub_env.c — where the hub and its cache are, and the token, as
 * huggingface_hub 0.22's constants.py and utils/_token.py decide them; the
 * repo id check of utils/_validators.py; saving a token as _login does. */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "engine/error.h" // sdr_fail
#include "engine/hub_internal.h"

char *hub_printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (!s) {
    sdr_fail("out of memory");
    return NULL;
  }
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

static const char *env(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

/* constants.ENDPOINT = os.getenv("HF_ENDPOINT") or "https://huggingface.co" */
char *sdr_hub_endpoint(void) {
  const char *e = env("HF_ENDPOINT");
  char *s = hub_printf("%s", e ? e : "https://huggingface.co");
  if (s)
    for (size_t n = strlen(s); n > 0 && s[n - 1] == '/'; n--)
      s[n - 1] = 0;
  return s;
}

/* os.path.expanduser of a leading "~". */
static char *expand_user(const char *path) {
  const char *home = env("HOME");
  if (path[0] == '~' && (path[1] == '/' || path[1] == 0) && home)
    return hub_printf("%s%s", home, path + 1);
  return hub_printf("%s", path);
}

/* HF_HOME = expanduser(os.getenv("HF_HOME", join(os.getenv("XDG_CACHE_HOME", "~/.cache"),
 * "huggingface"))) */
char *sdr_hub_home(void) {
  const char *h = env("HF_HOME");
  if (h)
    return expand_user(h);
  const char *xdg = env("XDG_CACHE_HOME");
  if (xdg)
    return hub_printf("%s/huggingface", xdg);
  if (!env("HOME")) {
    sdr_fail("no Hugging Face folder: set HF_HOME (or HOME)");
    return NULL;
  }
  return expand_user("~/.cache/huggingface");
}

/* HF_HUB_CACHE = os.getenv("HF_HUB_CACHE", os.getenv("HUGGINGFACE_HUB_CACHE", HF_HOME/hub)) */
char *sdr_hub_cache_dir(void) {
  const char *c = env("HF_HUB_CACHE");
  if (!c)
    c = env("HUGGINGFACE_HUB_CACHE");
  if (c)
    return expand_user(c);
  char *home = sdr_hub_home();
  if (!home)
    return NULL;
  char *s = hub_printf("%s/hub", home);
  free(home);
  return s;
}

/* HF_TOKEN_PATH = join(HF_HOME, "token") */
char *sdr_hub_token_path(void) {
  char *home = sdr_hub_home();
  if (!home)
    return NULL;
  char *s = hub_printf("%s/token", home);
  free(home);
  return s;
}

/* _is_true: the value upper-cased is one of 1, ON, YES, TRUE. */
static int is_true(const char *v) {
  return v && (strcmp(v, "1") == 0 || strcasecmp(v, "on") == 0 || strcasecmp(v, "yes") == 0 ||
               strcasecmp(v, "true") == 0);
}

int sdr_hub_offline(void) {
  return is_true(env("HF_HUB_OFFLINE") ? env("HF_HUB_OFFLINE") : env("TRANSFORMERS_OFFLINE"));
}

int sdr_hub_implicit_token_off(void) { return is_true(env("HF_HUB_DISABLE_IMPLICIT_TOKEN")); }

/* _clean_token: without \r and \n, stripped; "" is no token. */
static char *clean_token(const char *t) {
  if (!t)
    return NULL;
  char *s = hub_printf("%s", t);
  if (!s)
    return NULL;
  size_t j = 0;
  for (size_t i = 0; s[i]; i++)
    if (s[i] != '\r' && s[i] != '\n')
      s[j++] = s[i];
  s[j] = 0;
  while (j > 0 && isspace((unsigned char)s[j - 1]))
    s[--j] = 0;
  size_t lead = strspn(s, " \t\v\f");
  memmove(s, s + lead, j - lead + 1);
  if (!*s) {
    free(s);
    return NULL;
  }
  return s;
}

char *sdr_hub_get_token(void) {
  const char *e = env("HF_TOKEN");
  if (!e)
    e = env("HUGGING_FACE_HUB_TOKEN");
  char *t = clean_token(e);
  if (t)
    return t;
  char *path = sdr_hub_token_path();
  FILE *f = path ? fopen(path, "rb") : NULL;
  free(path);
  if (!f)
    return NULL;
  char buf[1024];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  return clean_token(buf);
}

/* validate_repo_id (REPO_ID_REGEX and the checks after it). */
static int word_char(char c) { return isalnum((unsigned char)c) || c == '_'; }
static int name_char(char c) { return word_char(c) || c == '-' || c == '.'; }

static int valid_part(const char *s, size_t n, size_t max) {
  if (n == 0 || n > max || !word_char(s[0]) || !word_char(s[n - 1]))
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!name_char(s[i]))
      return 0;
  return 1;
}

int sdr_hub_is_repo_id(const char *s) {
  if (!s || strstr(s, "--") || strstr(s, ".."))
    return 0;
  size_t n = strlen(s);
  if (n >= 4 && strcmp(s + n - 4, ".git") == 0)
    return 0;
  const char *slash = strchr(s, '/');
  if (!slash)
    return valid_part(s, n, 96);
  if (strchr(slash + 1, '/'))
    return 0;
  return valid_part(s, (size_t)(slash - s), (size_t)-1) &&
         valid_part(slash + 1, strlen(slash + 1), 96);
}

/* _login: path.write_text(token). Ours is written 0600 and renamed into place,
 * so a reader never sees half a token and other users never see it at all. */
char *sdr_hub_save_token(const char *token) {
  char *path = sdr_hub_token_path();
  if (!path)
    return NULL;
  char *dir = hub_printf("%s", path);
  char *tmp = hub_printf("%s.tmp.%ld", path, (long)getpid());
  if (!dir || !tmp)
    goto fail;
  *strrchr(dir, '/') = 0;
  if (sdr_make_dirs(dir) != 0)
    goto fail;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    sdr_fail("cannot write %s: %s", tmp, strerror(errno));
    goto fail;
  }
  size_t len = strlen(token);
  ssize_t w = write(fd, token, len);
  int e = errno;
  if (close(fd) != 0 && w == (ssize_t)len) {
    w = -1;
    e = errno;
  }
  if (w != (ssize_t)len || rename(tmp, path) != 0) {
    sdr_fail("cannot write %s: %s", path, strerror(w != (ssize_t)len ? e : errno));
    unlink(tmp);
    goto fail;
  }
  free(dir);
  free(tmp);
  return path;
fail:
  free(dir);
  free(tmp);
  free(path);
  return NULL;
}

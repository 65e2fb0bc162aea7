/* engine/download.c — fastdownload's cache: a URL in, a local path out.
 *
 * A URL maps to <cache>/<16 hex of FNV-1a(url)>/<base name>: the hash keeps
 * two URLs with the same base name apart, the base name keeps the file
 * readable (and its extension, which image loaders look at). A file that is
 * there is whole (engine/http.c renames only complete transfers), so it is
 * returned without touching the network unless the caller forces a refetch.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif
#include "engine/download.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "engine/atomic_file.h" // sdr_make_dirs
#include "engine/error.h"       // sdr_fail

enum { NAME_MAX_LEN = 120 };

static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_printf(const char *fmt, ...) {
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

char *sdr_download_default_dir(void) {
  /* The XDG spec says a relative XDG_CACHE_HOME is invalid and to be ignored. */
  const char *xdg = getenv("XDG_CACHE_HOME");
  if (xdg && xdg[0] == '/')
    return str_printf("%s/sdrepl/downloads", xdg);
  const char *home = getenv("HOME");
  if (home && *home)
    return str_printf("%s/.cache/sdrepl/downloads", home);
  sdr_fail("no cache folder: set XDG_CACHE_HOME or HOME");
  return NULL;
}

/* ---- names --------------------------------------------------------------- */

static uint64_t fnv1a64(const char *s) {
  uint64_t h = 0xcbf29ce484222325u;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 0x100000001b3u;
  }
  return h;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = (char)(c | 0x20);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes %XX escapes of s[0..n) into out (at least n+1 bytes). */
static void percent_decode(char *out, const char *s, size_t n) {
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    int hi, lo;
    if (s[i] == '%' && i + 2 < n && (hi = hex_value(s[i + 1])) >= 0 &&
        (lo = hex_value(s[i + 2])) >= 0) {
      out[j++] = (char)(hi * 16 + lo);
      i += 2;
    } else {
      out[j++] = s[i];
    }
  }
  out[j] = 0;
}

/* The path part of "scheme://host/path?query#fragment" as [*start, *end). */
static void url_path(const char *url, const char **start, const char **end) {
  const char *p = strstr(url, "://");
  p = p ? p + 3 : url;
  p += strcspn(p, "/?#"); /* skip the authority */
  *start = p;
  *end = p + strcspn(p, "?#");
}

/* The last path segment, decoded, with anything but [A-Za-z0-9._+-] made
 * '_', so it is safe as one file name on any file system we meet. */
static void url_file_name(const char *url, char *out, size_t outsz) {
  const char *start, *end;
  url_path(url, &start, &end);
  const char *seg = end;
  while (seg > start && seg[-1] != '/')
    seg--;
  size_t n = (size_t)(end - seg);
  char *dec = malloc(n + 1);
  if (!dec) {
    snprintf(out, outsz, "index");
    return;
  }
  percent_decode(dec, seg, n);
  size_t len = strlen(dec);
  /* Keep the tail when too long: the extension is what matters most. */
  const char *s = len > NAME_MAX_LEN ? dec + len - NAME_MAX_LEN : dec;
  size_t j = 0;
  for (; *s && j + 1 < outsz; s++) {
    char c = *s;
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '_' || c == '-' || c == '+';
    out[j++] = ok ? c : '_';
  }
  out[j] = 0;
  free(dec);
  /* Never ".", ".." or a hidden file. */
  if (out[0] == '.')
    out[0] = '_';
  if (j == 0 || strspn(out, "_") == j)
    snprintf(out, outsz, "index");
}

char *sdr_download_cache_path(const char *url, const char *cache_dir) {
  char *dir = cache_dir ? str_printf("%s", cache_dir) : sdr_download_default_dir();
  if (!dir)
    return NULL;
  size_t n = strlen(dir);
  while (n > 1 && dir[n - 1] == '/')
    dir[--n] = 0;
  char name[NAME_MAX_LEN + 1];
  url_file_name(url, name, sizeof name);
  char *path = str_printf("%s/%016" PRIx64 "/%s", dir, fnv1a64(url), name);
  free(dir);
  return path;
}

/* ---- local files ----------------------------------------------------------- */

static int is_scheme(const char *url, const char *scheme) {
  size_t n = strlen(scheme);
  return strncasecmp(url, scheme, n) == 0 && strncmp(url + n, "://", 3) == 0;
}

/* file:///abs/path or file://localhost/abs/path: the file itself is the copy. */
static char *file_url_path(const char *url) {
  const char *p = url + strlen("file://");
  if (strncasecmp(p, "localhost/", 10) == 0)
    p += 9;
  if (*p != '/') {
    sdr_fail("unsupported file URL %s (expected file:///absolute/path)", url);
    return NULL;
  }
  size_t n = strcspn(p, "?#");
  char *path = malloc(n + 1);
  if (!path) {
    sdr_fail("out of memory");
    return NULL;
  }
  percent_decode(path, p, n);
  struct stat st;
  if (stat(path, &st) != 0) {
    sdr_fail("%s: %s (from %s)", path, strerror(errno), url);
    free(path);
    return NULL;
  }
  if (!S_ISREG(st.st_mode)) {
    sdr_fail("%s: not a regular file (from %s)", path, url);
    free(path);
    return NULL;
  }
  return path;
}

/* mkdir -p for the folder that holds `path`. */
static int make_parent_dirs(const char *path) {
  char *p = str_printf("%s", path);
  if (!p)
    return -1;
  char *slash = strrchr(p, '/');
  int rc = 0;
  if (slash && slash != p) {
    *slash = 0;
    rc = sdr_make_dirs(p);
  }
  free(p);
  return rc;
}

/* ---- the cache ------------------------------------------------------------- */

char *sdr_download_url(const char *url, const char *cache_dir, int force) {
  if (!url || !*url) {
    sdr_fail("empty URL");
    return NULL;
  }
  if (is_scheme(url, "file"))
    return file_url_path(url);
  if (!is_scheme(url, "http") && !is_scheme(url, "https")) {
    sdr_fail("unsupported URL '%s' (expected http://, https:// or file://)", url);
    return NULL;
  }
  char *path = sdr_download_cache_path(url, cache_dir);
  if (!path)
    return NULL;
  struct stat st;
  if (!force && stat(path, &st) == 0 && S_ISREG(st.st_mode))
    return path;
  const char *name = strrchr(path, '/') + 1;
  if (make_parent_dirs(path) != 0 || sdr_download_file(url, path, NULL, name, force) != 0) {
    free(path);
    return NULL;
  }
  return path;
}

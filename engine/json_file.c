/* engine/json_file.c — a JSON file and typed getters whose errors name the file, the key and what
 * was there.
 *
 * diffusers configs are read by Python's json: nulls mean None, booleans are
 * true/false, lists stand for tuples, and an integer may have been written
 * as 4.0 by a tool that went through floats. The getters accept exactly
 * what the model code would use and say why otherwise:
 *   unet/config.json: "cross_attention_dim": expected an integer, got "768"
 */
#include "engine/model_config.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"      // sdr_fail
#include "engine/utf8_check.h" // sdr_utf8_check

/* Past this a config is not a config; vocab.json, the largest JSON we read, is ~1 MB. */
enum { JSON_MAX_FILE = 256 << 20 };
/* Integers travel as doubles in cJSON; beyond 2^53 they are no longer exact. */
#define JSON_MAX_EXACT 9007199254740992.0

/* ---- loading ---------------------------------------------------------------- */

char *sdr_json_read_text(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    sdr_fail("%s: %s", path, strerror(errno));
    return NULL;
  }
  char *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 8192;
      char *p = cap <= (size_t)JSON_MAX_FILE * 2 ? realloc(buf, cap) : NULL;
      if (!p) {
        sdr_fail("%s: too large for a JSON config, or out of memory", path);
        goto fail;
      }
      buf = p;
    }
    size_t got = fread(buf + n, 1, cap - n - 1, f);
    n += got;
    if (n > JSON_MAX_FILE) {
      sdr_fail("%s: larger than %d MB, too large for a JSON config", path, JSON_MAX_FILE >> 20);
      goto fail;
    }
    if (got == 0)
      break;
  }
  if (ferror(f)) {
    sdr_fail("%s: read error", path);
    goto fail;
  }
  fclose(f);
  buf[n] = 0;
  *len = n;
  return buf;
fail:
  fclose(f);
  free(buf);
  return NULL;
}

/* Line and column of byte `at`, for "not valid JSON" messages. */
static void json_position(const char *text, size_t at, int *line, int *col) {
  *line = 1;
  *col = 1;
  for (size_t i = 0; i < at && text[i]; i++) {
    if (text[i] == '\n') {
      ++*line;
      *col = 1;
    } else
      ++*col;
  }
}

int sdr_json_load(sdr_json *j, const char *path) {
  j->path = NULL;
  j->root = NULL;
  size_t len = 0;
  char *text = sdr_json_read_text(path, &len);
  if (!text)
    return -1;
  size_t bad = sdr_utf8_check(text, len);
  if (bad != len) {
    int line, col;
    json_position(text, bad, &line, &col);
    free(text);
    return sdr_fail("%s: not valid UTF-8 (line %d, column %d)", path, line, col);
  }
  /* diffusers reads configs with encoding="utf-8", which keeps a byte order
   * mark, and json.loads then refuses it ("Unexpected UTF-8 BOM"); cJSON
   * would skip it silently. */
  if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
    free(text);
    return sdr_fail("%s: starts with a UTF-8 byte order mark, which Python's json refuses", path);
  }
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, len + 1, &end, 1);
  if (!root || memchr(text, 0, len)) {
    int line, col;
    size_t at = root ? (size_t)((const char *)memchr(text, 0, len) - text)
                : end && end >= text && end <= text + len ? (size_t)(end - text)
                                                          : 0;
    json_position(text, at, &line, &col);
    cJSON_Delete(root);
    free(text);
    return sdr_fail("%s: not valid JSON (line %d, column %d)", path, line, col);
  }
  free(text);
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return sdr_fail("%s: expected a JSON object at the top", path);
  }
  j->path = strdup(path);
  if (!j->path) {
    cJSON_Delete(root);
    return sdr_fail("%s: out of memory", path);
  }
  j->root = root;
  return 0;
}

void sdr_json_free(sdr_json *j) {
  if (!j)
    return;
  free(j->path);
  cJSON_Delete(j->root);
  j->path = NULL;
  j->root = NULL;
}

/* ---- lookup and descriptions ------------------------------------------------ */

const cJSON *sdr_json_get(const sdr_json *j, const char *key) {
  if (!j || !j->root || !key)
    return NULL;
  const cJSON *found = NULL;
  /* Case-sensitive, and the last of repeated keys, as a Python dict ends up. */
  for (const cJSON *c = j->root->child; c; c = c->next)
    if (c->string && strcmp(c->string, key) == 0)
      found = c;
  return found;
}

int sdr_json_has(const sdr_json *j, const char *key) {
  const cJSON *v = sdr_json_get(j, key);
  return v && !cJSON_IsNull(v);
}

/* What a value is, as the error shows it: null, true, 1.5, "text", a list, an object. */
static void json_describe(const cJSON *v, char *out, size_t size) {
  if (cJSON_IsNull(v))
    snprintf(out, size, "null");
  else if (cJSON_IsBool(v))
    snprintf(out, size, "%s", cJSON_IsTrue(v) ? "true" : "false");
  else if (cJSON_IsNumber(v))
    snprintf(out, size, "%.17g", v->valuedouble);
  else if (cJSON_IsString(v))
    snprintf(out, size, "\"%.60s%s\"", v->valuestring, strlen(v->valuestring) > 60 ? "..." : "");
  else if (cJSON_IsArray(v))
    snprintf(out, size, "a list");
  else
    snprintf(out, size, "an object");
}

static int json_expected(const sdr_json *j, const char *key, const char *what, const cJSON *v) {
  char got[96];
  json_describe(v, got, sizeof got);
  return sdr_fail("%s: \"%s\": expected %s, got %s", j->path, key, what, got);
}

static int json_missing(const sdr_json *j, const char *key) {
  return sdr_fail("%s: \"%s\" is missing", j && j->path ? j->path : "(no JSON)",
                  key ? key : "(null)");
}

/* An integral number within 2^53: 4 and 4.0 pass, 4.5 and 1e300 do not. */
static int json_as_int(const cJSON *v, long long *out) {
  if (!cJSON_IsNumber(v))
    return -1;
  double d = v->valuedouble;
  if (!(fabs(d) <= JSON_MAX_EXACT) || d != floor(d))
    return -1;
  *out = (long long)d;
  return 0;
}

/* ---- getters -------------------------------------------------------------- */

/* Each getter has three faces: required (missing is an error), _opt (missing
 * or null gives dflt, a wrong type is an error) and _or (dflt for all three). */
enum { JSON_REQUIRED, JSON_OPTIONAL };

static const cJSON *json_lookup(const sdr_json *j, const char *key, int mode, int *use_dflt) {
  const cJSON *v = sdr_json_get(j, key);
  *use_dflt = mode == JSON_OPTIONAL && (!v || cJSON_IsNull(v));
  return v;
}

static int json_int(const sdr_json *j, const char *key, int mode, long long dflt, long long *out) {
  int use_dflt;
  const cJSON *v = json_lookup(j, key, mode, &use_dflt);
  if (use_dflt) {
    *out = dflt;
    return 0;
  }
  if (!v)
    return json_missing(j, key);
  return json_as_int(v, out) == 0 ? 0 : json_expected(j, key, "an integer", v);
}

static int json_number(const sdr_json *j, const char *key, int mode, double dflt, double *out) {
  int use_dflt;
  const cJSON *v = json_lookup(j, key, mode, &use_dflt);
  if (use_dflt) {
    *out = dflt;
    return 0;
  }
  if (!v)
    return json_missing(j, key);
  if (!cJSON_IsNumber(v))
    return json_expected(j, key, "a number", v);
  *out = v->valuedouble;
  return 0;
}

static int json_bool(const sdr_json *j, const char *key, int mode, int dflt, int *out) {
  int use_dflt;
  const cJSON *v = json_lookup(j, key, mode, &use_dflt);
  if (use_dflt) {
    *out = dflt;
    return 0;
  }
  if (!v)
    return json_missing(j, key);
  if (!cJSON_IsBool(v))
    return json_expected(j, key, "true or false", v);
  *out = cJSON_IsTrue(v);
  return 0;
}

static int json_string(const sdr_json *j, const char *key, int mode, const char *dflt,
                       const char **out) {
  int use_dflt;
  const cJSON *v = json_lookup(j, key, mode, &use_dflt);
  if (use_dflt) {
    *out = dflt;
    return 0;
  }
  if (!v)
    return json_missing(j, key);
  if (!cJSON_IsString(v))
    return json_expected(j, key, "a string", v);
  *out = v->valuestring;
  return 0;
}

int sdr_json_int(const sdr_json *j, const char *key, long long *out) {
  return json_int(j, key, JSON_REQUIRED, 0, out);
}
int sdr_json_number(const sdr_json *j, const char *key, double *out) {
  return json_number(j, key, JSON_REQUIRED, 0, out);
}
int sdr_json_bool(const sdr_json *j, const char *key, int *out) {
  return json_bool(j, key, JSON_REQUIRED, 0, out);
}
int sdr_json_string(const sdr_json *j, const char *key, const char **out) {
  return json_string(j, key, JSON_REQUIRED, NULL, out);
}

int sdr_json_int_opt(const sdr_json *j, const char *key, long long dflt, long long *out) {
  return json_int(j, key, JSON_OPTIONAL, dflt, out);
}
int sdr_json_number_opt(const sdr_json *j, const char *key, double dflt, double *out) {
  return json_number(j, key, JSON_OPTIONAL, dflt, out);
}
int sdr_json_bool_opt(const sdr_json *j, const char *key, int dflt, int *out) {
  return json_bool(j, key, JSON_OPTIONAL, dflt, out);
}
int sdr_json_string_opt(const sdr_json *j, const char *key, const char *dflt, const char **out) {
  return json_string(j, key, JSON_OPTIONAL, dflt, out);
}

/* The _or getters never fail, so they leave sdr_last_error() alone. */
long long sdr_json_int_or(const sdr_json *j, const char *key, long long dflt) {
  const cJSON *x = sdr_json_get(j, key);
  long long v;
  return x && json_as_int(x, &v) == 0 ? v : dflt;
}
double sdr_json_number_or(const sdr_json *j, const char *key, double dflt) {
  const cJSON *x = sdr_json_get(j, key);
  return cJSON_IsNumber(x) ? x->valuedouble : dflt;
}
int sdr_json_bool_or(const sdr_json *j, const char *key, int dflt) {
  const cJSON *x = sdr_json_get(j, key);
  return cJSON_IsBool(x) ? cJSON_IsTrue(x) != 0 : dflt;
}
const char *sdr_json_string_or(const sdr_json *j, const char *key, const char *dflt) {
  const cJSON *x = sdr_json_get(j, key);
  return cJSON_IsString(x) ? x->valuestring : dflt;
}

/* ---- arrays ----------------------------------------------------------------- */

int sdr_json_int_array(const sdr_json *j, const char *key, long long *out, int max, int *n,
                       int n_if_scalar) {
  const cJSON *v = sdr_json_get(j, key);
  *n = 0;
  if (!v)
    return json_missing(j, key);
  long long one;
  if (n_if_scalar > 0 && json_as_int(v, &one) == 0) {
    if (n_if_scalar > max)
      return sdr_fail("%s: \"%s\": %d copies of %lld do not fit in %d", j->path, key, n_if_scalar,
                      one, max);
    for (int i = 0; i < n_if_scalar; i++)
      out[i] = one;
    *n = n_if_scalar;
    return 0;
  }
  if (!cJSON_IsArray(v))
    return json_expected(
        j, key, n_if_scalar > 0 ? "an integer or a list of integers" : "a list of integers", v);
  int count = cJSON_GetArraySize(v);
  if (count > max)
    return sdr_fail("%s: \"%s\": %d entries, more than the %d expected", j->path, key, count, max);
  int i = 0;
  for (const cJSON *e = v->child; e; e = e->next, i++)
    if (json_as_int(e, &out[i]) != 0) {
      char what[48];
      snprintf(what, sizeof what, "an integer at index %d", i);
      return json_expected(j, key, what, e);
    }
  *n = count;
  return 0;
}

int sdr_json_string_array(const sdr_json *j, const char *key, const char **out, int max, int *n) {
  const cJSON *v = sdr_json_get(j, key);
  *n = 0;
  if (!v)
    return json_missing(j, key);
  if (!cJSON_IsArray(v))
    return json_expected(j, key, "a list of strings", v);
  int count = cJSON_GetArraySize(v);
  if (count > max)
    return sdr_fail("%s: \"%s\": %d entries, more than the %d expected", j->path, key, count, max);
  int i = 0;
  for (const cJSON *e = v->child; e; e = e->next, i++) {
    if (!cJSON_IsString(e)) {
      char what[48];
      snprintf(what, sizeof what, "a string at index %d", i);
      return json_expected(j, key, what, e);
    }
    out[i] = e->valuestring;
  }
  *n = count;
  return 0;
}

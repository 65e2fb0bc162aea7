/* engine/json_python.c — Python's non-standard JSON numbers, rewritten for cJSON. */
#include "engine/json_python.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Infinity becomes 1e999, which strtod (and so cJSON) reads as an infinity. NaN
 * becomes a marker number that is swapped for NaN after parsing. */
static const double NAN_MARK = -1.2345678901234567e-300;

static void restore_nan(cJSON *item) {
  for (cJSON *c = item; c; c = c->next) {
    if (cJSON_IsNumber(c) && c->valuedouble == NAN_MARK)
      cJSON_SetNumberValue(c, NAN);
    if (c->child)
      restore_nan(c->child);
  }
}

cJSON *sdr_json_parse_python(const char *text) {
  size_t n = strlen(text);
  /* "NaN" (3) grows to the marker (24 chars); Infinity (8) shrinks to 5. */
  char *out = malloc(n * 8 + 1);
  if (!out)
    return NULL;
  size_t o = 0;
  int in_string = 0, rewrote_nan = 0;
  for (size_t i = 0; i < n;) {
    char c = text[i];
    if (in_string) {
      out[o++] = c;
      if (c == '\\' && i + 1 < n)
        out[o++] = text[++i];
      else if (c == '"')
        in_string = 0;
      i++;
      continue;
    }
    if (c == '"') {
      in_string = 1;
      out[o++] = text[i++];
    } else if (strncmp(text + i, "Infinity", 8) == 0) {
      memcpy(out + o, "1e999", 5);
      o += 5;
      i += 8;
    } else if (strncmp(text + i, "NaN", 3) == 0) {
      static const char mark[] = "-1.2345678901234567e-300";
      memcpy(out + o, mark, sizeof mark - 1);
      o += sizeof mark - 1;
      i += 3;
      rewrote_nan = 1;
    } else {
      out[o++] = text[i++];
    }
  }
  out[o] = 0;
  cJSON *root = cJSON_Parse(out);
  free(out);
  if (root && rewrote_nan)
    restore_nan(root);
  return root;
}

char *sdr_json_print_python(const cJSON *obj) {
  cJSON *dup = cJSON_Duplicate(obj, 1);
  if (!dup)
    return NULL;
  for (cJSON *c = dup->child; c;) {
    cJSON *next = c->next;
    if (cJSON_IsNumber(c) && !isfinite(c->valuedouble)) {
      const char *raw = isnan(c->valuedouble) ? "NaN"
                        : c->valuedouble > 0  ? "Infinity"
                                              : "-Infinity";
      cJSON *r = cJSON_CreateRaw(raw);
      if (r) { /* the key moves to the new item; the old one is freed without it */
        r->string = c->string;
        c->string = NULL;
        cJSON_ReplaceItemViaPointer(dup, c, r);
      }
    }
    c = next;
  }
  char *text = cJSON_Print(dup);
  cJSON_Delete(dup);
  return text;
}

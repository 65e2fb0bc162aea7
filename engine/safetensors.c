/* engine/safetensors.c — open a .safetensors file: map it, check its header, index its tensors.
 *
 * Layout: 8 bytes little-endian N, N bytes of JSON header, then the data
 * section; each tensor's data_offsets are relative to the data section. The
 * checks mirror Metadata::validate in safetensors/src/tensor.rs (see
 * engine/safetensors.h for the list); every message names the file and,
 * where there is one, the tensor.
 */
#include "engine/safetensors.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/error.h"      // sdr_fail
#include "engine/utf8_check.h" // sdr_utf8_check

/* The Python library's MAX_HEADER_SIZE: a bigger header is refused before parsing. */
enum { ST_MAX_HEADER = 100000000 };
/* serde_json's recursion limit, which the Python library inherits. */
enum { ST_MAX_DEPTH = 127 };
/* JSON numbers arrive as doubles; above 2^53 they are no longer exact integers. */
#define ST_MAX_EXACT 9007199254740992.0

/* A hash index from names to positions: open addressing, linear probing. */
typedef struct st_slot {
  const char *key; /* NULL: empty */
  size_t pos;
} st_slot;

typedef struct st_index {
  st_slot *slots;
  size_t mask; /* capacity - 1, capacity a power of two */
} st_index;

struct sdr_safetensors {
  char *name;               /* path or caller's name, for messages */
  const unsigned char *buf; /* whole file */
  size_t len;
  void *map;              /* the mapping to unmap, NULL for from_memory */
  sdr_st_tensor *tensors; /* in data order */
  size_t count;
  st_index tensor_index;
  char **meta_keys, **meta_values; /* in file order */
  size_t meta_count;
  st_index meta_index;
};

/* ---- errors ---------------------------------------------------------------- */

static int st_fail(const sdr_safetensors *st, const char *tensor, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int st_fail(const sdr_safetensors *st, const char *tensor, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (tensor)
    return sdr_fail("%s: tensor \"%.200s\": %s", st->name, tensor, msg);
  return sdr_fail("%s: %s", st->name, msg);
}

/* ---- name index ------------------------------------------------------------ */

static uint64_t st_hash(const char *s) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static int st_index_init(st_index *ix, size_t n) {
  size_t cap = 16;
  while (cap < 2 * n) { /* at most half full keeps probes short */
    if (cap > SIZE_MAX / 4 / sizeof(st_slot))
      return -1;
    cap *= 2;
  }
  ix->slots = calloc(cap, sizeof *ix->slots);
  ix->mask = cap - 1;
  return ix->slots ? 0 : -1;
}

/* The slot holding key, or the empty slot where it would go. */
static st_slot *st_index_slot(const st_index *ix, const char *key) {
  size_t i = (size_t)st_hash(key) & ix->mask;
  while (ix->slots[i].key && strcmp(ix->slots[i].key, key) != 0)
    i = (i + 1) & ix->mask;
  return &ix->slots[i];
}

/* What cJSON lets through and serde_json or C strings do not: nesting deeper
 * than serde_json's 127 containers (cJSON allows 1000); control characters
 * other than tab, CR and LF between tokens, or any of them raw inside a string
 * (cJSON takes every byte up to 32 for whitespace); and "\u0000" in a string,
 * which cJSON decodes into a C string that ends there ("a\u0000b" would pass
 * for "a"). Returns the offset of the first such place, or n, and why. */
static size_t st_unreadable_at(const char *text, size_t n, int max_depth, const char **why) {
  int depth = 0, in_string = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)text[i];
    if (in_string) {
      if (c < 0x20) {
        *why = "a control character inside a string";
        return i;
      }
      if (c == '\\') {
        if (n - i >= 6 && memcmp(text + i + 1, "u0000", 5) == 0) {
          *why = "\\u0000 in a string";
          return i;
        }
        i++; /* whatever is escaped cannot end the string */
      } else if (c == '"')
        in_string = 0;
    } else if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
      *why = "a control character";
      return i;
    } else if (c == '"')
      in_string = 1;
    else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        *why = "nesting deeper than 127 levels";
        return i;
      }
    } else if (c == ']' || c == '}')
      depth--;
  }
  return n;
}

/* ---- JSON field checks --------------------------------------------------- */

/* A JSON number that is an integer in [0, 2^53]. */
static int st_uint(const cJSON *v, uint64_t *out) {
  if (!cJSON_IsNumber(v))
    return -1;
  double d = v->valuedouble;
  if (!(d >= 0 && d <= ST_MAX_EXACT) || d != floor(d))
    return -1;
  *out = (uint64_t)d;
  return 0;
}

/* What a JSON value is, for messages. */
static const char *st_kind(const cJSON *v) {
  if (cJSON_IsNull(v))
    return "null";
  if (cJSON_IsBool(v))
    return "a boolean";
  if (cJSON_IsNumber(v))
    return "a number";
  if (cJSON_IsString(v))
    return "a string";
  if (cJSON_IsArray(v))
    return "a list";
  return "an object";
}

/* dtype names the Python library knows and sdr_dtype has no room for. */
static int st_known_elsewhere(const char *name) {
  static const char *const others[] = {"U16", "U32", "U64", "F8_E5M2", "F8_E4M3"};
  for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
    if (strcmp(name, others[i]) == 0)
      return 1;
  return 0;
}

/* Where a tensor's data lies, kept beside it while the ranges are checked. */
typedef struct st_range {
  uint64_t begin, end;
  size_t order; /* position in the header, to keep the sort stable */
} st_range;

/* One header entry: {"dtype": "F16", "shape": [..], "data_offsets": [b, e]}. */
static int st_parse_entry(const sdr_safetensors *st, const cJSON *e, sdr_st_tensor *t,
                          st_range *r) {
  const char *name = e->string;
  if (!cJSON_IsObject(e))
    return st_fail(st, name, "expected an object with dtype, shape and data_offsets, got %s",
                   st_kind(e));
  const cJSON *dtype = NULL, *shape = NULL, *offsets = NULL;
  for (const cJSON *f = e->child; f; f = f->next) {
    const cJSON **slot = strcmp(f->string, "dtype") == 0          ? &dtype
                         : strcmp(f->string, "shape") == 0        ? &shape
                         : strcmp(f->string, "data_offsets") == 0 ? &offsets
                                                                  : NULL;
    if (!slot)
      continue; /* serde ignores unknown fields; so do we */
    if (*slot)
      return st_fail(st, name, "\"%s\" appears twice", f->string);
    *slot = f;
  }
  if (!dtype || !shape || !offsets)
    return st_fail(st, name, "\"%s\" is missing",
                   !dtype   ? "dtype"
                   : !shape ? "shape"
                            : "data_offsets");

  if (!cJSON_IsString(dtype))
    return st_fail(st, name, "dtype: expected a string, got %s", st_kind(dtype));
  int dt = sdr_dtype_from_safetensors(dtype->valuestring);
  if (dt < 0)
    return st_fail(st, name, "%s dtype \"%.40s\"",
                   st_known_elsewhere(dtype->valuestring) ? "unsupported" : "unknown",
                   dtype->valuestring);

  if (!cJSON_IsArray(shape))
    return st_fail(st, name, "shape: expected a list of integers, got %s", st_kind(shape));
  int ndim = cJSON_GetArraySize(shape);
  if (ndim > SDR_ST_MAX_DIMS)
    return st_fail(st, name, "shape has %d dimensions, more than %d", ndim, SDR_ST_MAX_DIMS);
  uint64_t elements = 1;
  int k = 0;
  for (const cJSON *d = shape->child; d; d = d->next, k++) {
    uint64_t v;
    if (st_uint(d, &v) != 0)
      return st_fail(st, name, "shape[%d] is not an integer in [0, 2^53]", k);
    t->shape[k] = (int64_t)v;
    if (__builtin_mul_overflow(elements, v, &elements))
      return st_fail(st, name, "shape's element count overflows 64 bits");
  }
  uint64_t nbytes;
  if (__builtin_mul_overflow(elements, (uint64_t)sdr_dtype_size((sdr_dtype)dt), &nbytes))
    return st_fail(st, name, "shape's size in bytes overflows 64 bits");

  if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2)
    return st_fail(st, name, "data_offsets: expected a list [begin, end], got %s",
                   cJSON_IsArray(offsets) ? "a list of another length" : st_kind(offsets));
  if (st_uint(offsets->child, &r->begin) != 0 || st_uint(offsets->child->next, &r->end) != 0)
    return st_fail(st, name, "data_offsets are not integers in [0, 2^53]");
  if (r->end < r->begin)
    return st_fail(st, name, "data_offsets [%llu, %llu] end before they begin",
                   (unsigned long long)r->begin, (unsigned long long)r->end);
  if (r->end - r->begin != nbytes)
    return st_fail(
        st, name, "%s with %llu elements needs %llu bytes, but data_offsets [%llu, %llu] hold %llu",
        dtype->valuestring, (unsigned long long)elements, (unsigned long long)nbytes,
        (unsigned long long)r->begin, (unsigned long long)r->end,
        (unsigned long long)(r->end - r->begin));
  if (nbytes > SIZE_MAX)
    return st_fail(st, name, "too large for this machine's address space");
  t->dtype = (sdr_dtype)dt;
  t->ndim = ndim;
  t->nbytes = (size_t)nbytes;
  return 0;
}

/* "__metadata__": null, or an object of strings. */
static int st_parse_metadata(sdr_safetensors *st, const cJSON *m) {
  if (cJSON_IsNull(m))
    return 0;
  if (!cJSON_IsObject(m))
    return st_fail(st, NULL, "__metadata__: expected an object of strings, got %s", st_kind(m));
  size_t n = (size_t)cJSON_GetArraySize(m);
  st->meta_keys = calloc(n + 1, sizeof *st->meta_keys);
  st->meta_values = calloc(n + 1, sizeof *st->meta_values);
  if (!st->meta_keys || !st->meta_values || st_index_init(&st->meta_index, n) != 0)
    return st_fail(st, NULL, "out of memory reading __metadata__");
  for (const cJSON *e = m->child; e; e = e->next) {
    if (!cJSON_IsString(e))
      return st_fail(st, NULL, "__metadata__ \"%.200s\": expected a string, got %s", e->string,
                     st_kind(e));
    st_slot *s = st_index_slot(&st->meta_index, e->string);
    if (s->key)
      return st_fail(st, NULL, "__metadata__ \"%.200s\" appears twice", e->string);
    size_t i = st->meta_count;
    st->meta_keys[i] = strdup(e->string);
    st->meta_values[i] = strdup(e->valuestring);
    st->meta_count++; /* before the check, so close frees what was copied */
    if (!st->meta_keys[i] || !st->meta_values[i])
      return st_fail(st, NULL, "out of memory reading __metadata__");
    s->key = st->meta_keys[i];
    s->pos = i;
  }
  return 0;
}

static int st_range_cmp(const void *a, const void *b) {
  const st_range *x = a, *y = b;
  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end)
    return x->end < y->end ? -1 : 1;
  return x->order < y->order ? -1 : x->order > y->order;
}

/* ---- the header ------------------------------------------------------------ */

/* Parses and checks the JSON header; fills tensors, metadata and indexes. */
static int st_parse_header(sdr_safetensors *st, const cJSON *root, size_t data_len) {
  size_t n = 0;
  const cJSON *meta = NULL;
  for (const cJSON *e = root->child; e; e = e->next) {
    if (strcmp(e->string, "__metadata__") != 0)
      n++;
    else if (meta)
      return st_fail(st, NULL, "\"__metadata__\" appears twice");
    else
      meta = e;
  }
  if (meta && st_parse_metadata(st, meta) != 0)
    return -1;

  st->tensors = calloc(n ? n : 1, sizeof *st->tensors);
  st_range *ranges = calloc(n ? n : 1, sizeof *ranges);
  sdr_st_tensor *unsorted = calloc(n ? n : 1, sizeof *unsorted);
  if (!st->tensors || !ranges || !unsorted || st_index_init(&st->tensor_index, n) != 0) {
    free(ranges);
    free(unsorted);
    return st_fail(st, NULL, "out of memory for %zu tensors", n);
  }
  int rc = -1;
  size_t i = 0;
  for (const cJSON *e = root->child; e; e = e->next) {
    if (e == meta)
      continue;
    if (st_parse_entry(st, e, &unsorted[i], &ranges[i]) != 0)
      goto done;
    unsorted[i].name = e->string; /* copied below, once in place */
    ranges[i].order = i;
    i++;
  }

  /* Data order, as the Python library sorts before validating. */
  qsort(ranges, n, sizeof *ranges, st_range_cmp);
  for (i = 0; i < n; i++) {
    sdr_st_tensor *t = &st->tensors[i];
    *t = unsorted[ranges[i].order];
    char *copy = strdup(t->name);
    t->name = copy;
    if (!copy) {
      st_fail(st, NULL, "out of memory for tensor names");
      goto done;
    }
    st->count = i + 1;
    st_slot *s = st_index_slot(&st->tensor_index, copy);
    if (s->key) {
      st_fail(st, copy, "the name appears twice");
      goto done;
    }
    s->key = copy;
    s->pos = i;
  }

  /* The ranges must tile [0, data_len): the Python library requires each to
   * start where the previous one ended and the last to end at the file's end. */
  uint64_t at = 0;
  for (i = 0; i < n; i++) {
    const st_range *r = &ranges[i];
    const char *name = st->tensors[i].name;
    if (r->end > data_len) {
      st_fail(st, name,
              "data_offsets [%llu, %llu] go past the end of the data section (%zu bytes): "
              "truncated file?",
              (unsigned long long)r->begin, (unsigned long long)r->end, data_len);
      goto done;
    }
    if (r->begin < at) {
      st_fail(st, name, "data_offsets [%llu, %llu] overlap tensor \"%.200s\", which ends at %llu",
              (unsigned long long)r->begin, (unsigned long long)r->end, st->tensors[i - 1].name,
              (unsigned long long)at);
      goto done;
    }
    if (r->begin > at) {
      st_fail(st, name, "data_offsets [%llu, %llu] leave a gap: the previous tensor ends at %llu",
              (unsigned long long)r->begin, (unsigned long long)r->end, (unsigned long long)at);
      goto done;
    }
    at = r->end;
  }
  if (at != data_len) {
    st_fail(st, NULL, "the last %llu bytes of the data section belong to no tensor",
            (unsigned long long)(data_len - at));
    goto done;
  }
  const unsigned char *data = st->buf + (st->len - data_len);
  for (i = 0; i < n; i++)
    st->tensors[i].data = data + ranges[i].begin;
  rc = 0;
done:
  free(ranges);
  free(unsorted);
  return rc;
}

/* Checks the whole buffer st->buf[0 .. st->len). */
static int st_parse(sdr_safetensors *st) {
  if (st->len < 8)
    return st_fail(st, NULL, "%zu bytes is too short for a safetensors file (8-byte header length)",
                   st->len);
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--)
    n = n << 8 | st->buf[i];
  if (n > ST_MAX_HEADER)
    return st_fail(st, NULL, "header length %llu is over the 100 MB limit", (unsigned long long)n);
  if (n > st->len - 8)
    return st_fail(st, NULL, "header length %llu is more than the %zu bytes that follow it",
                   (unsigned long long)n, st->len - 8);
  const char *text = (const char *)st->buf + 8;
  if (n == 0 || text[0] != '{')
    return st_fail(st, NULL, "the header does not start with '{'");
  /* cJSON reads a NUL as the end of the text and does not check UTF-8;
   * serde_json refuses both, so refuse them first. */
  if (memchr(text, 0, n))
    return st_fail(st, NULL, "the header contains a NUL byte");
  size_t bad = sdr_utf8_check(text, n);
  if (bad != n)
    return st_fail(st, NULL, "the header is not valid UTF-8 (byte %zu)", bad);

  const char *why = "";
  size_t odd = st_unreadable_at(text, n, ST_MAX_DEPTH, &why);
  if (odd != n)
    return st_fail(st, NULL, "the header has %s (byte %zu)", why, odd);

  /* A terminated copy, so cJSON can require that nothing but padding follows. */
  char *copy = malloc(n + 1);
  if (!copy)
    return st_fail(st, NULL, "out of memory for a %llu-byte header", (unsigned long long)n);
  memcpy(copy, text, n);
  copy[n] = 0;
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(copy, n + 1, &end, 1);
  if (!root) {
    size_t at = end && end >= copy && end <= copy + n ? (size_t)(end - copy) : 0;
    free(copy);
    return st_fail(st, NULL, "the header is not valid JSON (near byte %zu of %llu)", at,
                   (unsigned long long)n);
  }
  free(copy);
  int rc = cJSON_IsObject(root) ? st_parse_header(st, root, st->len - 8 - (size_t)n)
                                : st_fail(st, NULL, "the header is not a JSON object");
  cJSON_Delete(root);
  return rc;
}

/* ---- public -------------------------------------------------------------- */

static sdr_safetensors *st_new(const char *name) {
  sdr_safetensors *st = calloc(1, sizeof *st);
  if (!st || !(st->name = strdup(name ? name : "<memory>"))) {
    free(st);
    sdr_fail("out of memory");
    return NULL;
  }
  return st;
}

sdr_safetensors *sdr_safetensors_from_memory(const void *data, size_t len, const char *name) {
  sdr_safetensors *st = st_new(name);
  if (!st)
    return NULL;
  st->buf = data;
  st->len = data ? len : 0;
  if (st_parse(st) != 0) {
    sdr_safetensors_close(st);
    return NULL;
  }
  return st;
}

sdr_safetensors *sdr_safetensors_open(const char *path) {
  sdr_safetensors *st = st_new(path);
  if (!st)
    return NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat sb;
  if (fd < 0 || fstat(fd, &sb) != 0) {
    st_fail(st, NULL, "%s", strerror(errno));
    goto fail;
  }
  if (!S_ISREG(sb.st_mode)) {
    st_fail(st, NULL, "not a regular file");
    goto fail;
  }
  if ((uint64_t)sb.st_size > SIZE_MAX) {
    st_fail(st, NULL, "too large to map on this machine");
    goto fail;
  }
  st->len = (size_t)sb.st_size;
  if (st->len >= 8) { /* mmap refuses 0 bytes; st_parse reports short files */
    /* Read-only and private: the file is never written through the mapping. */
    void *m = mmap(NULL, st->len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      st_fail(st, NULL, "mmap: %s", strerror(errno));
      goto fail;
    }
    st->map = m;
    st->buf = m;
  }
  close(fd);
  fd = -1;
  if (st_parse(st) != 0)
    goto fail;
  return st;
fail:
  if (fd >= 0)
    close(fd);
  sdr_safetensors_close(st);
  return NULL;
}

void sdr_safetensors_close(sdr_safetensors *st) {
  if (!st)
    return;
  for (size_t i = 0; i < st->count; i++)
    free((char *)st->tensors[i].name);
  for (size_t i = 0; i < st->meta_count; i++) {
    free(st->meta_keys[i]);
    free(st->meta_values[i]);
  }
  free(st->meta_keys);
  free(st->meta_values);
  free(st->meta_index.slots);
  free(st->tensors);
  free(st->tensor_index.slots);
  if (st->map)
    munmap(st->map, st->len);
  free(st->name);
  free(st);
}

size_t sdr_safetensors_count(const sdr_safetensors *st) { return st ? st->count : 0; }

const sdr_st_tensor *sdr_safetensors_at(const sdr_safetensors *st, size_t i) {
  return st && i < st->count ? &st->tensors[i] : NULL;
}

const sdr_st_tensor *sdr_safetensors_find(const sdr_safetensors *st, const char *name) {
  if (!st || !name || !st->tensor_index.slots)
    return NULL;
  const st_slot *s = st_index_slot(&st->tensor_index, name);
  return s->key ? &st->tensors[s->pos] : NULL;
}

const char *sdr_safetensors_metadata(const sdr_safetensors *st, const char *key) {
  if (!st || !key || !st->meta_index.slots)
    return NULL;
  const st_slot *s = st_index_slot(&st->meta_index, key);
  return s->key ? st->meta_values[s->pos] : NULL;
}

const char *sdr_safetensors_name(const sdr_safetensors *st) { return st ? st->name : NULL; }

size_t sdr_safetensors_metadata_count(const sdr_safetensors *st) { return st ? st->meta_count : 0; }

const char *sdr_safetensors_metadata_key(const sdr_safetensors *st, size_t i) {
  return st && i < st->meta_count ? st->meta_keys[i] : NULL;
}

/* engine/weights.c — binding named tensors from safetensors files to a backend. */
#include "engine/weights.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h" // sdr_fail
#include "kernels/half.h" // sdr_f16_to_f32, sdr_f32_to_f16, ...

enum { MAX_LISTED = 12 };

int sdr_weights_open(sdr_weights *w, sdr_backend *be, const char *component,
                     const char *const *paths, int npaths, int keep_dtype) {
  memset(w, 0, sizeof *w);
  w->be = be;
  w->keep_dtype = keep_dtype;
  w->component = strdup(component ? component : "model");
  w->files = calloc((size_t)(npaths > 0 ? npaths : 1), sizeof *w->files);
  if (!w->component || !w->files) {
    sdr_weights_close(w);
    return sdr_fail("out of memory");
  }
  for (int i = 0; i < npaths; i++) {
    w->files[i] = sdr_safetensors_open(paths[i]);
    if (!w->files[i]) {
      sdr_fail_prefix("%s: ", w->component);
      sdr_weights_close(w);
      return -1;
    }
    w->nfiles++;
    w->ntensors += sdr_safetensors_count(w->files[i]);
  }
  w->used = calloc(w->ntensors ? w->ntensors : 1, 1);
  if (!w->used) {
    sdr_weights_close(w);
    return sdr_fail("out of memory");
  }
  return 0;
}

void sdr_weights_close(sdr_weights *w) {
  for (size_t i = 0; i < w->nowned; i++)
    sdr_free(w->be, w->owned[i]);
  for (int i = 0; i < w->nfiles; i++)
    sdr_safetensors_close(w->files[i]);
  free(w->owned);
  free(w->files);
  free(w->used);
  free(w->problems);
  free(w->component);
  memset(w, 0, sizeof *w);
}

static void add_problem(sdr_weights *w, const char *fmt, ...) {
  w->nproblems++;
  if (w->nproblems > MAX_LISTED)
    return;
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  size_t len = strlen(line);
  char *p = realloc(w->problems, w->problems_len + len + 3);
  if (!p)
    return;
  w->problems = p;
  if (w->problems_len) {
    memcpy(p + w->problems_len, "; ", 2);
    w->problems_len += 2;
  }
  memcpy(p + w->problems_len, line, len + 1);
  w->problems_len += len;
}

/* Finds name in the files; *flat is its index over all files (for `used`). */
static const sdr_st_tensor *find(sdr_weights *w, const char *name, size_t *flat) {
  size_t base = 0;
  for (int f = 0; f < w->nfiles; f++) {
    const sdr_st_tensor *t = sdr_safetensors_find(w->files[f], name);
    size_t n = sdr_safetensors_count(w->files[f]);
    if (t) {
      for (size_t i = 0; i < n; i++)
        if (sdr_safetensors_at(w->files[f], i) == t) {
          *flat = base + i;
          return t;
        }
      *flat = (size_t)-1;
      return t;
    }
    base += n;
  }
  return NULL;
}

static int is_float(sdr_dtype t) { return t == SDR_F32 || t == SDR_F16 || t == SDR_BF16; }

static float load_f(const void *src, sdr_dtype t, size_t i) {
  switch (t) {
  case SDR_F16:
    return sdr_f16_to_f32(((const uint16_t *)src)[i]);
  case SDR_BF16:
    return sdr_bf16_to_f32(((const uint16_t *)src)[i]);
  default:
    return ((const float *)src)[i];
  }
}

static void convert(void *dst, sdr_dtype to, const void *src, sdr_dtype from, size_t n) {
  for (size_t i = 0; i < n; i++) {
    float x = load_f(src, from, i);
    if (to == SDR_F32)
      ((float *)dst)[i] = x;
    else if (to == SDR_F16)
      ((uint16_t *)dst)[i] = sdr_f32_to_f16(x);
    else
      ((uint16_t *)dst)[i] = sdr_f32_to_bf16(x);
  }
}

static int own(sdr_weights *w, void *p) {
  if (w->nowned == w->capowned) {
    size_t cap = w->capowned ? w->capowned * 2 : 64;
    void **o = realloc(w->owned, cap * sizeof *o);
    if (!o)
      return sdr_fail("out of memory");
    w->owned = o;
    w->capowned = cap;
  }
  w->owned[w->nowned++] = p;
  return 0;
}

static void shape_text(char *buf, size_t n, int ndim, const int64_t *shape) {
  size_t len = (size_t)snprintf(buf, n, "(");
  for (int i = 0; i < ndim && len < n; i++)
    len += (size_t)snprintf(buf + len, n - len, "%s%lld", i ? ", " : "", (long long)shape[i]);
  if (len < n)
    snprintf(buf + len, n - len, ")");
}

int sdr_weights_bind(sdr_weights *w, sdr_tensor *out, const char *name, int ndim,
                     const int64_t *shape) {
  memset(out, 0, sizeof *out);
  size_t flat;
  const sdr_st_tensor *st = find(w, name, &flat);
  if (!st) {
    add_problem(w, "missing '%s'", name);
    return 0;
  }
  if (flat != (size_t)-1)
    w->used[flat] = 1;
  int same = st->ndim == ndim;
  for (int i = 0; same && i < ndim; i++)
    same = st->shape[i] == shape[i];
  if (!same) {
    char have[128], want[128];
    shape_text(have, sizeof have, st->ndim, st->shape);
    shape_text(want, sizeof want, ndim, shape);
    add_problem(w, "'%s' has shape %s, expected %s", name, have, want);
    return 0;
  }
  sdr_dtype keep = st->dtype;
  if (w->keep_dtype >= 0 && is_float(st->dtype))
    keep = (sdr_dtype)w->keep_dtype;
  else if (!is_float(st->dtype)) {
    add_problem(w, "'%s' is %s, expected a floating-point tensor", name, sdr_dtype_name(st->dtype));
    return 0;
  }
  sdr_tensor t = sdr_tensor_view((void *)st->data, keep, w->be->device, ndim, shape);
  size_t n = (size_t)sdr_tensor_numel(&t);
  if (keep == st->dtype && w->be->device == SDR_DEVICE_CPU) {
    *out = t; /* used in place, in the mapped file */
    return 0;
  }
  size_t bytes = sdr_tensor_nbytes(&t);
  void *dev = sdr_alloc(w->be, bytes ? bytes : 1);
  if (!dev)
    return sdr_fail_prefix("%s: loading '%s': ", w->component, name);
  int rc = 0;
  if (keep == st->dtype) {
    rc = sdr_upload(w->be, dev, st->data, bytes);
  } else if (w->be->device == SDR_DEVICE_CPU) {
    convert(dev, keep, st->data, st->dtype, n);
  } else {
    void *host = malloc(bytes ? bytes : 1);
    rc = host ? 0 : sdr_fail("out of memory");
    if (host) {
      convert(host, keep, st->data, st->dtype, n);
      rc = sdr_upload(w->be, dev, host, bytes);
      free(host);
    }
  }
  if (rc != 0 || own(w, dev) != 0) {
    sdr_free(w->be, dev);
    return sdr_fail_prefix("%s: loading '%s': ", w->component, name);
  }
  t.data = dev;
  *out = t;
  return 0;
}

int sdr_weights_bindf(sdr_weights *w, sdr_tensor *out, int ndim, const int64_t *shape,
                      const char *fmt, ...) {
  char name[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  return sdr_weights_bind(w, out, name, ndim, shape);
}

int sdr_weights_has(sdr_weights *w, const char *name) {
  size_t flat;
  return find(w, name, &flat) != NULL;
}

void sdr_weights_skip(sdr_weights *w, const char *name) {
  size_t flat;
  if (find(w, name, &flat) && flat != (size_t)-1)
    w->used[flat] = 1;
}

int sdr_weights_finish(sdr_weights *w) {
  size_t flat = 0;
  for (int f = 0; f < w->nfiles; f++) {
    size_t n = sdr_safetensors_count(w->files[f]);
    for (size_t i = 0; i < n; i++, flat++)
      if (!w->used[flat])
        add_problem(w, "unexpected '%s'", sdr_safetensors_at(w->files[f], i)->name);
  }
  if (w->nproblems == 0)
    return 0;
  if (w->nproblems > MAX_LISTED)
    return sdr_fail("%s: %d problems with the weights: %s; and %d more", w->component,
                    w->nproblems, w->problems ? w->problems : "", w->nproblems - MAX_LISTED);
  return sdr_fail("%s: %d problem%s with the weights: %s", w->component, w->nproblems,
                  w->nproblems == 1 ? "" : "s", w->problems ? w->problems : "");
}

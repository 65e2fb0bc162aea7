/* engine/weights.c — binding named tensors from weight files to a backend.
 *
 * Sources are files (every tensor under its own name) and view tables (a
 * converted checkpoint's names); both are indexed once into `all`, and a
 * name is looked up by hash, so a loader's walk costs one probe per tensor.
 */
#include "engine/weights.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/error.h"        // sdr_fail
#include "engine/model_config.h" // sdr_json_read_text
#include "engine/torch_file.h"   // sdr_torch_file

enum { MAX_LISTED = 12 };

/* ---- files of either format ---------------------------------------------------- */

struct sdr_weight_file {
  int refs;
  sdr_safetensors *st; /* one of the two */
  sdr_torch_file *tf;
};

sdr_weight_file *sdr_weight_file_open(const char *path) {
  /* The first bytes decide, as torch.load and safe_open would each refuse the other's file. */
  unsigned char head[16];
  ssize_t got = -1;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    got = read(fd, head, sizeof head);
    close(fd);
  }
  sdr_weight_file *f = calloc(1, sizeof *f);
  if (!f) {
    sdr_fail("out of memory");
    return NULL;
  }
  f->refs = 1;
  if (got > 0 && sdr_torch_file_sniff(head, (size_t)got))
    f->tf = sdr_torch_file_open(path);
  else
    f->st = sdr_safetensors_open(path); /* also reports a missing or unreadable file */
  if (!f->tf && !f->st) {
    free(f);
    return NULL;
  }
  return f;
}

sdr_weight_file *sdr_weight_file_retain(sdr_weight_file *f) {
  if (f)
    __atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
  return f;
}

void sdr_weight_file_release(sdr_weight_file *f) {
  if (!f || __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) != 0)
    return;
  sdr_safetensors_close(f->st);
  sdr_torch_file_close(f->tf);
  free(f);
}

size_t sdr_weight_file_count(const sdr_weight_file *f) {
  return !f ? 0 : f->st ? sdr_safetensors_count(f->st) : sdr_torch_file_count(f->tf);
}

const sdr_st_tensor *sdr_weight_file_at(const sdr_weight_file *f, size_t i) {
  return !f ? NULL : f->st ? sdr_safetensors_at(f->st, i) : sdr_torch_file_at(f->tf, i);
}

const sdr_st_tensor *sdr_weight_file_find(const sdr_weight_file *f, const char *name) {
  return !f ? NULL : f->st ? sdr_safetensors_find(f->st, name) : sdr_torch_file_find(f->tf, name);
}

int sdr_weight_file_is_safetensors(const sdr_weight_file *f) { return f->st != NULL; }

const char *sdr_weight_file_path(const sdr_weight_file *f) {
  return !f ? NULL : f->st ? sdr_safetensors_name(f->st) : sdr_torch_file_name(f->tf);
}

/* ---- the name index -------------------------------------------------------------- */

struct sdr_weights_slot {
  const char *key; /* NULL: empty */
  size_t pos;
};

static uint64_t name_hash(const char *s) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static sdr_weights_slot *slot_of(const sdr_weights *w, const char *name) {
  size_t i = (size_t)name_hash(name) & w->mask;
  while (w->slots[i].key && strcmp(w->slots[i].key, name) != 0)
    i = (i + 1) & w->mask;
  return &w->slots[i];
}

/* Lists every tensor of the files, then the views, and indexes their names. */
static int index_all(sdr_weights *w) {
  size_t n = w->nviews, cap = 16;
  for (int f = 0; f < w->nfiles; f++)
    if (!w->views)
      n += sdr_weight_file_count(w->files[f]);
  while (cap < 2 * n)
    cap *= 2;
  w->all = calloc(n ? n : 1, sizeof *w->all);
  w->used = calloc(n ? n : 1, 1);
  w->slots = calloc(cap, sizeof *w->slots);
  w->mask = cap - 1;
  if (!w->all || !w->used || !w->slots)
    return sdr_fail("out of memory");
  for (int f = 0; f < w->nfiles && !w->views; f++)
    for (size_t i = 0; i < sdr_weight_file_count(w->files[f]); i++)
      w->all[w->ntensors++] = sdr_weight_file_at(w->files[f], i);
  for (size_t i = 0; i < w->nviews; i++)
    w->all[w->ntensors++] = &w->views[i];
  for (size_t i = 0; i < w->ntensors; i++) {
    sdr_weights_slot *s = slot_of(w, w->all[i]->name);
    if (!s->key) {
      s->key = w->all[i]->name;
      s->pos = i;
    }
  }
  return 0;
}

/* ---- views and redirects ------------------------------------------------------------ */

/* Copies views into tensors of their own names, checking each fits its source. */
static int add_views(sdr_weights *w, const sdr_weight_view *views, size_t n) {
  sdr_st_tensor *t = realloc(w->views, (w->nviews + n + 1) * sizeof *t);
  if (!t)
    return sdr_fail("out of memory");
  w->views = t;
  for (size_t i = 0; i < n; i++) {
    const sdr_weight_view *v = &views[i];
    sdr_st_tensor *o = &w->views[w->nviews];
    memset(o, 0, sizeof *o);
    uint64_t numel = 1;
    int bad = !v->src || v->ndim < 0 || v->ndim > SDR_ST_MAX_DIMS;
    for (int d = 0; !bad && d < v->ndim; d++)
      bad = v->shape[d] < 0 || __builtin_mul_overflow(numel, (uint64_t)v->shape[d], &numel);
    uint64_t bytes = bad ? 0 : numel * sdr_dtype_size(v->src->dtype);
    if (bad || v->offset > v->src->nbytes || bytes > v->src->nbytes - v->offset)
      return sdr_fail("%s: the view '%s' does not fit in '%s'", w->component, v->name,
                      v->src ? v->src->name : "(none)");
    if (!(o->name = strdup(v->name)))
      return sdr_fail("out of memory");
    o->dtype = v->src->dtype;
    o->ndim = v->ndim;
    memcpy(o->shape, v->shape, sizeof o->shape);
    o->data = (const unsigned char *)v->src->data + v->offset;
    o->nbytes = (size_t)bytes;
    w->nviews++;
  }
  return 0;
}

static int add_file(sdr_weights *w, sdr_weight_file *f) {
  sdr_weight_file **files = realloc(w->files, (size_t)(w->nfiles + 1) * sizeof *files);
  if (!files)
    return sdr_fail("out of memory");
  w->files = files;
  w->files[w->nfiles++] = f;
  return 0;
}

typedef struct redirect {
  struct redirect *next;
  char *path;
  sdr_weight_file *file;
  sdr_weight_view *views; /* names owned */
  size_t n;
} redirect;

static pthread_mutex_t redirect_lock = PTHREAD_MUTEX_INITIALIZER;
static redirect *redirects;

static void redirect_free(redirect *r) {
  for (size_t i = 0; r->views && i < r->n; i++)
    free((char *)r->views[i].name);
  free(r->views);
  sdr_weight_file_release(r->file);
  free(r->path);
  free(r);
}

int sdr_weights_redirect(const char *path, sdr_weight_file *file, const sdr_weight_view *views,
                         size_t n) {
  redirect *r = calloc(1, sizeof *r);
  if (!r)
    return sdr_fail("out of memory");
  r->path = strdup(path);
  r->views = calloc(n ? n : 1, sizeof *r->views);
  int ok = r->path && r->views;
  for (size_t i = 0; ok && i < n; i++) {
    r->views[i] = views[i];
    ok = (r->views[i].name = strdup(views[i].name)) != NULL;
    r->n = i + 1;
  }
  if (!ok) {
    redirect_free(r);
    return sdr_fail("out of memory");
  }
  r->file = sdr_weight_file_retain(file);
  pthread_mutex_lock(&redirect_lock);
  r->next = redirects;
  redirects = r;
  pthread_mutex_unlock(&redirect_lock);
  return 0;
}

void sdr_weights_redirect_end(const char *path) {
  pthread_mutex_lock(&redirect_lock);
  redirect *found = NULL;
  for (redirect **p = &redirects; *p; p = &(*p)->next)
    if (strcmp((*p)->path, path) == 0) {
      found = *p;
      *p = found->next;
      break;
    }
  pthread_mutex_unlock(&redirect_lock);
  if (found)
    redirect_free(found);
}

/* Adds the redirect of path, if there is one: 1 when added, 0 when none, -1 on error. */
static int take_redirect(sdr_weights *w, const char *path) {
  pthread_mutex_lock(&redirect_lock);
  redirect *r = redirects;
  while (r && strcmp(r->path, path) != 0)
    r = r->next;
  int rc = 0;
  if (r && w->nfiles > 0 && !w->views)
    rc = sdr_fail("%s: a converted checkpoint cannot be loaded beside other files", w->component);
  else if (r) {
    rc = add_views(w, r->views, r->n) == 0 && add_file(w, r->file) == 0 ? 1 : -1;
    if (rc == 1)
      sdr_weight_file_retain(r->file);
  }
  pthread_mutex_unlock(&redirect_lock);
  return rc;
}

/* ---- opening and closing ---------------------------------------------------------- */

static int weights_init(sdr_weights *w, sdr_backend *be, const char *component, int keep_dtype) {
  memset(w, 0, sizeof *w);
  w->be = be;
  w->keep_dtype = keep_dtype;
  w->component = strdup(component ? component : "model");
  return w->component ? 0 : sdr_fail("out of memory");
}

int sdr_weights_open(sdr_weights *w, sdr_backend *be, const char *component,
                     const char *const *paths, int npaths, int keep_dtype) {
  if (weights_init(w, be, component, keep_dtype) != 0)
    goto fail;
  for (int i = 0; i < npaths; i++) {
    int r = take_redirect(w, paths[i]);
    if (r < 0)
      goto fail;
    if (r > 0)
      continue;
    if (w->views) {
      sdr_fail("%s: %s cannot be loaded beside a converted checkpoint", w->component, paths[i]);
      goto fail;
    }
    sdr_weight_file *f = sdr_weight_file_open(paths[i]);
    if (!f) {
      sdr_fail_prefix("%s: ", w->component);
      goto fail;
    }
    if (add_file(w, f) != 0) {
      sdr_weight_file_release(f);
      goto fail;
    }
  }
  if (index_all(w) != 0)
    goto fail;
  return 0;
fail:
  sdr_weights_close(w);
  return -1;
}

int sdr_weights_open_views(sdr_weights *w, sdr_backend *be, const char *component,
                           sdr_weight_file *file, const sdr_weight_view *views, size_t n,
                           int keep_dtype) {
  if (weights_init(w, be, component, keep_dtype) != 0 || add_views(w, views, n) != 0 ||
      add_file(w, file) != 0) {
    sdr_weights_close(w);
    return -1;
  }
  sdr_weight_file_retain(file);
  if (index_all(w) != 0) {
    sdr_weights_close(w);
    return -1;
  }
  return 0;
}

int sdr_weights_reopen(sdr_weights *w, const sdr_weights *src, sdr_backend *be, int keep_dtype) {
  if (weights_init(w, be, src->component, keep_dtype) != 0)
    goto fail;
  if (src->config_text && !(w->config_text = strdup(src->config_text))) {
    sdr_fail("out of memory");
    goto fail;
  }
  for (int i = 0; i < src->nfiles; i++) {
    if (add_file(w, src->files[i]) != 0)
      goto fail;
    sdr_weight_file_retain(src->files[i]);
  }
  if (src->nviews) {
    if (!(w->views = calloc(src->nviews + 1, sizeof *w->views))) {
      sdr_fail("out of memory");
      goto fail;
    }
    for (size_t i = 0; i < src->nviews; i++) {
      w->views[i] = src->views[i];
      if (!(w->views[i].name = strdup(src->views[i].name))) {
        sdr_fail("out of memory");
        goto fail;
      }
      w->nviews++;
    }
  }
  if (index_all(w) != 0)
    goto fail;
  return 0;
fail:
  sdr_weights_close(w);
  return -1;
}

int sdr_weights_keep_config(sdr_weights *w, const char *path) {
  size_t len;
  char *text = sdr_json_read_text(path, &len);
  if (!text)
    return -1;
  free(w->config_text);
  w->config_text = text;
  return 0;
}

void sdr_weights_close(sdr_weights *w) {
  for (size_t i = 0; i < w->nowned; i++)
    sdr_free(w->be, w->owned[i]);
  for (int i = 0; i < w->nfiles; i++)
    sdr_weight_file_release(w->files[i]);
  for (size_t i = 0; i < w->nviews; i++)
    free((char *)w->views[i].name);
  free(w->views);
  free(w->all);
  free(w->slots);
  free(w->owned);
  free(w->files);
  free(w->used);
  free(w->problems);
  free(w->component);
  free(w->config_text);
  for (size_t i = 0; i < w->nbound; i++)
    free(w->bound[i].name);
  free(w->bound);
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

/* Finds name, or name without the optional prefix (sdr_weights_optional_prefix);
 * *flat is its index in `all` (for `used`). */
static const sdr_st_tensor *find(sdr_weights *w, const char *name, size_t *flat) {
  if (!w->slots)
    return NULL;
  const sdr_weights_slot *s = slot_of(w, name);
  if (!s->key && w->optional_prefix) {
    size_t n = strlen(w->optional_prefix);
    if (strncmp(name, w->optional_prefix, n) == 0)
      s = slot_of(w, name + n);
  }
  if (!s->key)
    return NULL;
  *flat = s->pos;
  return w->all[s->pos];
}

void sdr_weights_optional_prefix(sdr_weights *w, const char *prefix) {
  w->optional_prefix = prefix;
}

static int is_float(sdr_dtype t) { return t == SDR_F32 || t == SDR_F16 || t == SDR_BF16; }

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

static size_t align256(size_t n) { return (n + 255) & ~(size_t)255; }

/* The bytes every tensor of the files takes in the dtype it is kept in. */
static size_t pool_bound(const sdr_weights *w) {
  size_t total = 0;
  for (size_t i = 0; i < w->ntensors; i++) {
    const sdr_st_tensor *st = w->all[i];
    size_t es = sdr_dtype_size(st->dtype), n = es ? st->nbytes / es : 0;
    sdr_dtype keep =
        w->keep_dtype >= 0 && is_float(st->dtype) ? (sdr_dtype)w->keep_dtype : st->dtype;
    total += align256(n * sdr_dtype_size(keep) + 1);
  }
  return total;
}

/* Backend memory for one tensor: from the component's pool on a device, else its
 * own allocation; *pooled says which (a pooled one is never freed alone). */
static void *take_memory(sdr_weights *w, size_t bytes, int *pooled) {
  *pooled = 0;
  if (w->be->device != SDR_DEVICE_CPU) {
    if (!w->pool && !w->pool_cap) {
      w->pool_cap = pool_bound(w);
      w->pool = sdr_alloc(w->be, w->pool_cap);
      if (!w->pool || own(w, w->pool) != 0) {
        if (w->pool)
          sdr_free(w->be, w->pool);
        w->pool = NULL;
        return NULL;
      }
    }
    size_t need = align256(bytes ? bytes : 1);
    if (w->pool && w->pool_used + need <= w->pool_cap) {
      void *p = w->pool + w->pool_used;
      w->pool_used += need;
      *pooled = 1;
      return p;
    }
  }
  return sdr_alloc(w->be, bytes ? bytes : 1);
}

static void shape_text(char *buf, size_t n, int ndim, const int64_t *shape) {
  size_t len = (size_t)snprintf(buf, n, "(");
  for (int i = 0; i < ndim && len < n; i++)
    len += (size_t)snprintf(buf + len, n - len, "%s%lld", i ? ", " : "", (long long)shape[i]);
  if (len < n)
    snprintf(buf + len, n - len, ")");
}

/* Remembers where name was bound, for sdr_weights_bound_slot. A slot inside the owner's struct is
 * kept relative to w (embedded in the same struct, so the two move together when the
 * model's struct is copied); one elsewhere (an array of blocks) as it is. */
static int remember(sdr_weights *w, sdr_tensor *out, const char *name) {
  if (w->nbound == w->capbound) {
    size_t cap = w->capbound ? 2 * w->capbound : 256;
    sdr_weights_bound *b = realloc(w->bound, cap * sizeof *b);
    if (!b)
      return sdr_fail("%s: out of memory", w->component);
    w->bound = b;
    w->capbound = cap;
  }
  char *copy = strdup(name);
  if (!copy)
    return sdr_fail("%s: out of memory", w->component);
  const char *o = w->owner, *p = (const char *)out;
  int inside = o && p >= o && p < o + w->owner_size;
  w->bound[w->nbound++] =
      (sdr_weights_bound){copy, inside, inside ? p - (const char *)w : 0, inside ? NULL : out};
  return 0;
}

static int bind_one(sdr_weights *w, sdr_tensor *out, const char *name, int ndim,
                    const int64_t *shape);

int sdr_weights_bind(sdr_weights *w, sdr_tensor *out, const char *name, int ndim,
                     const int64_t *shape) {
  int rc = bind_one(w, out, name, ndim, shape);
  return rc == 0 && out->data ? remember(w, out, name) : rc;
}

void sdr_weights_owner(sdr_weights *w, const void *owner, size_t size) {
  w->owner = owner;
  w->owner_size = size;
}

sdr_tensor *sdr_weights_bound_at(sdr_weights *w, size_t i) {
  return w->bound[i].inside ? (sdr_tensor *)((char *)w + w->bound[i].offset) : w->bound[i].slot;
}

sdr_tensor *sdr_weights_bound_slot(sdr_weights *w, const char *name) {
  for (size_t i = 0; i < w->nbound; i++)
    if (strcmp(w->bound[i].name, name) == 0)
      return sdr_weights_bound_at(w, i);
  return NULL;
}

size_t sdr_weights_nbound(const sdr_weights *w) { return w->nbound; }

const char *sdr_weights_bound_name(const sdr_weights *w, size_t i) { return w->bound[i].name; }

static int bind_one(sdr_weights *w, sdr_tensor *out, const char *name, int ndim,
                    const int64_t *shape) {
  memset(out, 0, sizeof *out);
  size_t flat;
  const sdr_st_tensor *st = find(w, name, &flat);
  if (!st) {
    add_problem(w, "missing '%s'", name);
    return 0;
  }
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
  /* Files from other writers (the legacy torch format, some safetensors) may
   * place a tensor at an address its type cannot be read from directly. */
  const void *src = st->data;
  void *aligned = NULL;
  if (st->nbytes && (uintptr_t)src % sdr_dtype_size(st->dtype) != 0) {
    if (!(aligned = malloc(st->nbytes)))
      return sdr_fail("%s: loading '%s': out of memory", w->component, name);
    memcpy(aligned, src, st->nbytes);
    src = aligned;
  }
  if (keep == st->dtype && w->be->device == SDR_DEVICE_CPU && !aligned) {
    *out = t; /* used in place, in the mapped file */
    return 0;
  }
  size_t bytes = sdr_tensor_nbytes(&t);
  int pooled;
  void *dev = take_memory(w, bytes, &pooled);
  if (!dev) {
    free(aligned);
    return sdr_fail_prefix("%s: loading '%s': ", w->component, name);
  }
  int rc = 0;
  if (keep == st->dtype) {
    rc = sdr_upload(w->be, dev, src, bytes);
  } else if (w->be->device == SDR_DEVICE_CPU) {
    sdr_floats_convert(dev, keep, src, st->dtype, n);
  } else {
    void *host = malloc(bytes ? bytes : 1);
    rc = host ? 0 : sdr_fail("out of memory");
    if (host) {
      sdr_floats_convert(host, keep, src, st->dtype, n);
      rc = sdr_upload(w->be, dev, host, bytes);
      free(host);
    }
  }
  free(aligned);
  if (rc != 0 || (!pooled && own(w, dev) != 0)) {
    if (!pooled)
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
  if (find(w, name, &flat))
    w->used[flat] = 1;
}

void sdr_weights_skip_prefix(sdr_weights *w, const char *prefix) {
  size_t n = strlen(prefix);
  for (size_t i = 0; i < w->ntensors; i++)
    if (strncmp(w->all[i]->name, prefix, n) == 0)
      w->used[i] = 1;
}

int sdr_weights_finish(sdr_weights *w) {
  for (size_t i = 0; i < w->ntensors; i++)
    if (!w->used[i])
      add_problem(w, "unexpected '%s'", w->all[i]->name);
  if (w->nproblems == 0)
    return 0;
  if (w->nproblems > MAX_LISTED)
    return sdr_fail("%s: %d problems with the weights: %s; and %d more", w->component, w->nproblems,
                    w->problems ? w->problems : "", w->nproblems - MAX_LISTED);
  return sdr_fail("%s: %d problem%s with the weights: %s", w->component, w->nproblems,
                  w->nproblems == 1 ? "" : "s", w->problems ? w->problems : "");
}

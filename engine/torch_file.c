/* engine/torch_file.c — torch.load for state dicts, without running anything (see torch_file.h).
 *
 * Mirrors torch/serialization.py: _load (the zip format: data.pkl, storages
 * in data/<key>) and _legacy_load (a magic number, protocol version and
 * sys_info pickled one after another, then the object, then the list of
 * storage keys, then each storage as an 8-byte element count and its bytes).
 */
#include "engine/torch_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "engine/error.h"      // sdr_fail
#include "engine/pickle.h"     // sdr_pickle, sdr_pk_value
#include "engine/torch_zip.h"  // sdr_torch_zip
#include "engine/utf8_check.h" // sdr_utf8_check

/* torch.serialization's MAGIC_NUMBER (0x1950a86a20f9469cfc6c) as LONG1 writes
 * it, and PROTOCOL_VERSION. */
static const unsigned char LEGACY_MAGIC[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c,
                                             0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
enum { LEGACY_PROTOCOL = 1001, MAX_UNWRAP = 8 };

typedef struct tf_slot {
  const char *key; /* NULL: empty */
  size_t pos;
} tf_slot;

struct sdr_torch_file {
  char *name;
  const unsigned char *buf;
  size_t len;
  void *map;
  sdr_st_tensor *tensors;
  size_t count;
  tf_slot *slots;
  size_t mask;
  int unwrapped;
  size_t skipped;
};

static int tf_fail(const sdr_torch_file *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int tf_fail(const sdr_torch_file *f, const char *fmt, ...) {
  char msg[640];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return sdr_fail("%s: %s", f->name, msg);
}

int sdr_torch_file_sniff(const void *data, size_t len) {
  return sdr_torch_zip_sniff(data, len) ||
         (len >= sizeof LEGACY_MAGIC && memcmp(data, LEGACY_MAGIC, sizeof LEGACY_MAGIC) == 0);
}

/* ---- the name index ------------------------------------------------------------ */

static uint64_t tf_hash(const char *s) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static tf_slot *tf_slot_of(const sdr_torch_file *f, const char *key) {
  size_t i = (size_t)tf_hash(key) & f->mask;
  while (f->slots[i].key && strcmp(f->slots[i].key, key) != 0)
    i = (i + 1) & f->mask;
  return &f->slots[i];
}

/* ---- the state dict ------------------------------------------------------------ */

/* Checks a tensor as torch would hold it and makes the entry: contiguous
 * (torch's is_contiguous: strides of size-1 dimensions do not matter), inside
 * its storage, its storage inside the file. */
static int make_tensor(sdr_torch_file *f, sdr_st_tensor *out, const char *name,
                       const sdr_pk_tensor *t) {
  const sdr_pk_storage *s = t->storage;
  size_t esize = sdr_dtype_size(s->dtype);
  uint64_t numel = 1, expect = 1;
  int contiguous = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    uint64_t n = (uint64_t)t->shape[d];
    if (n != 1 && (uint64_t)t->stride[d] != expect)
      contiguous = 0;
    if (__builtin_mul_overflow(numel, n, &numel) || numel > ((uint64_t)1 << 62))
      return tf_fail(f, "tensor \"%s\": its size overflows", name);
    if (n > 1 && __builtin_mul_overflow(expect, n, &expect))
      expect = UINT64_MAX;
  }
  if (numel == 0)
    contiguous = 1;
  if (!contiguous) {
    char strides[160] = "";
    size_t at = 0;
    for (int d = 0; d < t->ndim && at < sizeof strides; d++)
      at += (size_t)snprintf(strides + at, sizeof strides - at, "%s%lld", d ? ", " : "",
                             (long long)t->stride[d]);
    return tf_fail(f,
                   "tensor \"%s\" is stored non-contiguously (strides (%s)); only contiguous "
                   "tensors are read (save tensor.contiguous())",
                   name, strides);
  }
  if (!s->data && s->numel)
    return tf_fail(f, "tensor \"%s\": its storage was never resolved", name);
  if ((uint64_t)t->offset > (uint64_t)s->numel || numel > (uint64_t)s->numel - (uint64_t)t->offset)
    return tf_fail(f,
                   "tensor \"%s\" (%llu elements from offset %lld) lies outside its storage of "
                   "%lld elements",
                   name, (unsigned long long)numel, (long long)t->offset, (long long)s->numel);
  memset(out, 0, sizeof *out);
  out->dtype = s->dtype;
  out->ndim = t->ndim;
  for (int d = 0; d < t->ndim; d++)
    out->shape[d] = t->shape[d];
  out->nbytes = (size_t)(numel * esize);
  out->data = s->data ? s->data + (size_t)t->offset * esize : NULL;
  return 0;
}

/* A tensor entry under name (which it then owns): Python's dict keeps a key given twice at its
 * first place with its last value. */
static int add_tensor(sdr_torch_file *f, char *name, const sdr_pk_tensor *v) {
  sdr_st_tensor t;
  if (make_tensor(f, &t, name, v) != 0) {
    free(name);
    return -1;
  }
  t.name = name;
  tf_slot *slot = tf_slot_of(f, name);
  if (slot->key) {
    sdr_st_tensor *old = &f->tensors[slot->pos];
    free((char *)old->name);
    *old = t;
    slot->key = old->name;
    return 0;
  }
  f->tensors[f->count] = t;
  slot->key = name;
  slot->pos = f->count++;
  return 0;
}

static int check_key(const sdr_torch_file *f, const sdr_pk_value *k) {
  if (memchr(k->u.s.p, 0, k->u.s.len) || sdr_utf8_check(k->u.s.p, k->u.s.len) != k->u.s.len)
    return tf_fail(f, "a tensor name with a NUL byte or malformed UTF-8");
  return 0;
}

/* How many tensors a dict holds directly and in the dicts it holds. */
static size_t count_tensors(const sdr_pk_value *d) {
  size_t n = 0;
  for (size_t i = 0; i + 1 < d->u.seq.n; i += 2) {
    const sdr_pk_value *v = d->u.seq.v[i + 1];
    if (v->kind == SDR_PK_TENSOR)
      n++;
    else if (v->kind == SDR_PK_DICT)
      for (size_t j = 0; j + 1 < v->u.seq.n; j += 2)
        n += v->u.seq.v[j + 1]->kind == SDR_PK_TENSOR;
  }
  return n;
}

/* The dict of tensors: unwraps "state_dict" as diffusers does
 * (`while "state_dict" in checkpoint`), then takes every string key whose
 * value is a tensor, and the tensors of a dict one level down as "outer.inner"
 * (an IP-Adapter's {"image_proj": {...}, "ip_adapter": {...}}, which its
 * .safetensors form stores under those names). */
static int flatten(sdr_torch_file *f, const sdr_pk_value *root) {
  while (root && root->kind == SDR_PK_DICT) {
    const sdr_pk_value *inner = sdr_pk_dict_get(root, "state_dict");
    if (!inner)
      break;
    if (inner->kind != SDR_PK_DICT)
      return tf_fail(f, "\"state_dict\" holds a %s, not a dict", sdr_pk_kind_name(inner->kind));
    if (++f->unwrapped > MAX_UNWRAP)
      return tf_fail(f, "\"state_dict\" is nested more than %d deep", MAX_UNWRAP);
    root = inner;
  }
  if (!root || root->kind != SDR_PK_DICT)
    return tf_fail(f, "the file holds a %s, not a dict of tensors",
                   root ? sdr_pk_kind_name(root->kind) : "nothing");
  size_t npairs = root->u.seq.n / 2, ntensors = count_tensors(root), cap = 16;
  while (cap < 2 * ntensors)
    cap *= 2;
  f->tensors = calloc(ntensors ? ntensors : 1, sizeof *f->tensors);
  f->slots = calloc(cap, sizeof *f->slots);
  f->mask = cap - 1;
  if (!f->tensors || !f->slots)
    return sdr_fail("out of memory");
  for (size_t i = 0; i < npairs; i++) {
    const sdr_pk_value *k = root->u.seq.v[2 * i], *v = root->u.seq.v[2 * i + 1];
    if (k->kind != SDR_PK_STR || (v->kind != SDR_PK_TENSOR && v->kind != SDR_PK_DICT)) {
      f->skipped++;
      continue;
    }
    if (check_key(f, k) != 0)
      return -1;
    if (v->kind == SDR_PK_TENSOR) {
      char *name = strndup(k->u.s.p, k->u.s.len);
      if (!name)
        return sdr_fail("out of memory");
      if (add_tensor(f, name, v->u.tensor) != 0)
        return -1;
      continue;
    }
    for (size_t j = 0; j + 1 < v->u.seq.n; j += 2) {
      const sdr_pk_value *k2 = v->u.seq.v[j], *v2 = v->u.seq.v[j + 1];
      if (k2->kind != SDR_PK_STR || v2->kind != SDR_PK_TENSOR) {
        f->skipped++;
        continue;
      }
      if (check_key(f, k2) != 0)
        return -1;
      char *name = malloc(k->u.s.len + k2->u.s.len + 2);
      if (!name)
        return sdr_fail("out of memory");
      memcpy(name, k->u.s.p, k->u.s.len);
      name[k->u.s.len] = '.';
      memcpy(name + k->u.s.len + 1, k2->u.s.p, k2->u.s.len);
      name[k->u.s.len + 1 + k2->u.s.len] = 0;
      if (add_tensor(f, name, v2->u.tensor) != 0)
        return -1;
    }
  }
  return 0;
}

/* ---- the zip format -------------------------------------------------------------- */

/* Each storage's bytes are the record data/<key>; the record must hold the
 * elements the persistent id announces. */
static int resolve_zip(sdr_torch_file *f, const sdr_torch_zip *z, sdr_pickle *pk) {
  for (sdr_pk_storage *s = sdr_pickle_storages(pk); s; s = s->next) {
    char rec[128];
    if (s->key_len > 100 || memchr(s->key, 0, s->key_len))
      return tf_fail(f, "a storage key that is not a record name");
    snprintf(rec, sizeof rec, "data/%.*s", (int)s->key_len, s->key);
    const sdr_zip_record *r = sdr_torch_zip_find(z, rec);
    if (!r)
      return tf_fail(f, "storage \"%.*s\" has no record %s/%s", (int)s->key_len, s->key, z->folder,
                     rec);
    uint64_t need;
    if (__builtin_mul_overflow((uint64_t)s->numel, (uint64_t)sdr_dtype_size(s->dtype), &need) ||
        need > r->size)
      return tf_fail(f, "storage \"%.*s\": %lld %s elements do not fit in its record of %llu bytes",
                     (int)s->key_len, s->key, (long long)s->numel, sdr_dtype_name(s->dtype),
                     (unsigned long long)r->size);
    s->data = r->data;
    s->nbytes = r->size;
  }
  return 0;
}

static int load_zip(sdr_torch_file *f) {
  sdr_torch_zip z;
  if (sdr_torch_zip_open(&z, f->buf, f->len, f->name) != 0)
    return -1;
  int rc = -1;
  sdr_pickle *pk = NULL;
  const sdr_zip_record *pkl = sdr_torch_zip_find(&z, "data.pkl");
  const sdr_zip_record *order = sdr_torch_zip_find(&z, "byteorder");
  if (!pkl) {
    tf_fail(f, "a zip archive without %s/data.pkl: not a file torch.save wrote", z.folder);
    goto done;
  }
  if (order && !(order->size == 6 && memcmp(order->data, "little", 6) == 0)) {
    tf_fail(f, "a file saved on a big-endian machine is not supported");
    goto done;
  }
  /* The pickle is small and read whole: check it is the bytes torch wrote. */
  uLong crc = crc32(0L, Z_NULL, 0);
  for (uint64_t at = 0; at < pkl->size;) {
    uInt n = pkl->size - at > (1u << 30) ? 1u << 30 : (uInt)(pkl->size - at);
    crc = crc32(crc, pkl->data + at, n);
    at += n;
  }
  if ((uint32_t)crc != pkl->crc32) {
    tf_fail(f, "%s/data.pkl is corrupt (its CRC-32 does not match)", z.folder);
    goto done;
  }
  char pname[4096];
  snprintf(pname, sizeof pname, "%s: data.pkl", f->name);
  if (!(pk = sdr_pickle_new(pname)))
    goto done;
  const sdr_pk_value *root = sdr_pickle_load(pk, pkl->data, (size_t)pkl->size, NULL);
  if (root && resolve_zip(f, &z, pk) == 0 && flatten(f, root) == 0)
    rc = 0;
done:
  sdr_pickle_free(pk);
  sdr_torch_zip_close(&z);
  return rc;
}

/* ---- the legacy format ------------------------------------------------------------ */

static int legacy_storages(sdr_torch_file *f, sdr_pickle *pk, const sdr_pk_value *keys, size_t at) {
  if (keys->kind != SDR_PK_LIST)
    return tf_fail(f, "the storage keys are a %s, not a list", sdr_pk_kind_name(keys->kind));
  for (size_t i = 0; i < keys->u.seq.n; i++) {
    const sdr_pk_value *k = keys->u.seq.v[i];
    if (k->kind != SDR_PK_STR)
      return tf_fail(f, "a storage key that is not a string");
    sdr_pk_storage *first = NULL;
    for (sdr_pk_storage *s = sdr_pickle_storages(pk); s; s = s->next)
      if (s->key_len == k->u.s.len && memcmp(s->key, k->u.s.p, s->key_len) == 0 && !s->data)
        first = s;
    if (!first)
      return tf_fail(f, "storage \"%.*s\" is listed but no tensor uses it (or it is listed twice)",
                     (int)(k->u.s.len > 100 ? 100 : k->u.s.len), k->u.s.p);
    if (f->len - at < 8)
      return tf_fail(f, "truncated: storage \"%.*s\" is missing", (int)first->key_len, first->key);
    uint64_t numel = 0, nbytes;
    for (int b = 0; b < 8; b++)
      numel |= (uint64_t)f->buf[at + b] << (8 * b);
    at += 8;
    if (__builtin_mul_overflow(numel, (uint64_t)sdr_dtype_size(first->dtype), &nbytes) ||
        nbytes > f->len - at)
      return tf_fail(f, "truncated: storage \"%.*s\" of %llu elements runs past the end",
                     (int)first->key_len, first->key, (unsigned long long)numel);
    for (sdr_pk_storage *s = sdr_pickle_storages(pk); s; s = s->next)
      if (s->key_len == first->key_len && memcmp(s->key, first->key, s->key_len) == 0) {
        if ((uint64_t)s->numel > numel || s->dtype != first->dtype)
          return tf_fail(f, "storage \"%.*s\" is used with another type or size than stored",
                         (int)s->key_len, s->key);
        s->data = f->buf + at;
        s->nbytes = nbytes;
      }
    at += (size_t)nbytes;
  }
  for (sdr_pk_storage *s = sdr_pickle_storages(pk); s; s = s->next)
    if (!s->data)
      return tf_fail(f, "storage \"%.*s\" is used but not stored", (int)s->key_len, s->key);
  return 0;
}

static int load_legacy(sdr_torch_file *f) {
  sdr_pickle *pk = sdr_pickle_new(f->name);
  if (!pk)
    return -1;
  int rc = -1;
  size_t at = 0, used = 0;
  const sdr_pk_value *v[5];
  for (int i = 0; i < 5; i++) {
    if (!(v[i] = sdr_pickle_load(pk, f->buf + at, f->len - at, &used)))
      goto done;
    at += used;
  }
  /* v[0] is the magic number (sniffed already) */
  if (v[1]->kind != SDR_PK_INT || v[1]->u.i != LEGACY_PROTOCOL) {
    tf_fail(f, "legacy format protocol version is not %d", LEGACY_PROTOCOL);
    goto done;
  }
  const sdr_pk_value *little = sdr_pk_dict_get(v[2], "little_endian");
  if (v[2]->kind != SDR_PK_DICT || (little && little->kind == SDR_PK_BOOL && !little->u.i)) {
    tf_fail(f, "a file saved on a big-endian machine (or without sys_info) is not supported");
    goto done;
  }
  if (legacy_storages(f, pk, v[4], at) == 0 && flatten(f, v[3]) == 0)
    rc = 0;
done:
  sdr_pickle_free(pk);
  return rc;
}

/* ---- public ----------------------------------------------------------------------- */

static sdr_torch_file *tf_new(const char *name) {
  sdr_torch_file *f = calloc(1, sizeof *f);
  if (!f || !(f->name = strdup(name ? name : "<memory>"))) {
    free(f);
    sdr_fail("out of memory");
    return NULL;
  }
  return f;
}

static int tf_parse(sdr_torch_file *f) {
  if (sdr_torch_zip_sniff(f->buf, f->len))
    return load_zip(f);
  if (sdr_torch_file_sniff(f->buf, f->len))
    return load_legacy(f);
  if (f->len >= 262 && memcmp(f->buf + 257, "ustar", 5) == 0)
    return tf_fail(f, "a tar archive: torch's oldest format is not supported (load and save it "
                      "again with a recent torch)");
  return tf_fail(f, "not a file torch.save writes (neither its zip format nor its legacy one)");
}

sdr_torch_file *sdr_torch_file_from_memory(const void *data, size_t len, const char *name) {
  sdr_torch_file *f = tf_new(name);
  if (!f)
    return NULL;
  f->buf = data;
  f->len = data ? len : 0;
  if (tf_parse(f) != 0) {
    sdr_torch_file_close(f);
    return NULL;
  }
  return f;
}

sdr_torch_file *sdr_torch_file_open(const char *path) {
  sdr_torch_file *f = tf_new(path);
  if (!f)
    return NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat sb;
  if (fd < 0 || fstat(fd, &sb) != 0) {
    tf_fail(f, "%s", strerror(errno));
    goto fail;
  }
  if (!S_ISREG(sb.st_mode)) {
    tf_fail(f, "not a regular file");
    goto fail;
  }
  if ((uint64_t)sb.st_size > SIZE_MAX) {
    tf_fail(f, "too large to map on this machine");
    goto fail;
  }
  f->len = (size_t)sb.st_size;
  if (f->len > 0) {
    /* Read-only and private, as safetensors.c maps: tensors are used in place. */
    void *m = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      tf_fail(f, "mmap: %s", strerror(errno));
      goto fail;
    }
    f->map = m;
    f->buf = m;
  }
  close(fd);
  fd = -1;
  if (tf_parse(f) != 0)
    goto fail;
  return f;
fail:
  if (fd >= 0)
    close(fd);
  sdr_torch_file_close(f);
  return NULL;
}

void sdr_torch_file_close(sdr_torch_file *f) {
  if (!f)
    return;
  for (size_t i = 0; i < f->count; i++)
    free((char *)f->tensors[i].name);
  free(f->tensors);
  free(f->slots);
  if (f->map)
    munmap(f->map, f->len);
  free(f->name);
  free(f);
}

size_t sdr_torch_file_count(const sdr_torch_file *f) { return f ? f->count : 0; }

const sdr_st_tensor *sdr_torch_file_at(const sdr_torch_file *f, size_t i) {
  return f && i < f->count ? &f->tensors[i] : NULL;
}

const sdr_st_tensor *sdr_torch_file_find(const sdr_torch_file *f, const char *name) {
  if (!f || !name || !f->slots)
    return NULL;
  const tf_slot *s = tf_slot_of(f, name);
  return s->key ? &f->tensors[s->pos] : NULL;
}

const char *sdr_torch_file_name(const sdr_torch_file *f) { return f ? f->name : NULL; }

int sdr_torch_file_unwrapped(const sdr_torch_file *f) { return f ? f->unwrapped : 0; }

size_t sdr_torch_file_skipped(const sdr_torch_file *f) { return f ? f->skipped : 0; }

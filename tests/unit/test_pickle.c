/* engine/pickle, torch_zip, torch_file and the weights layer's file handling:
 * torch.save files (zip and legacy, every dtype, views, nesting) read back the
 * tensors their safetensors twins hold; hostile pickles are refused with the
 * global they ask for and run nothing; truncated, corrupt and oversized
 * inputs are errors, never crashes. Fixtures: tests/fixtures/torch
 * (scripts/reference/make_checkpoint_cases.py); hostile files are built here. */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "engine/error.h"            // sdr_last_error
#include "engine/pickle.h"           // sdr_pickle_*
#include "engine/torch_file.h"       // sdr_torch_file_*
#include "engine/torch_zip.h"        // sdr_torch_zip_*
#include "engine/weights.h"          // sdr_weights_*, sdr_weight_file_*
#include "kernels/cpu/cpu_backend.h" // sdr_cpu_backend_create

#define FIXTURES "tests/fixtures/torch"

static unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *len = (size_t)n;
  return buf;
}

static int has(const char *msg, const char *part) {
  if (msg && strstr(msg, part))
    return 1;
  fprintf(stderr, "  expected \"%s\" in: %s\n", part, msg ? msg : "(null)");
  return 0;
}

/* ---- byte builders ------------------------------------------------------------ */

typedef struct buf {
  unsigned char *p;
  size_t n, cap;
} buf;

static void put(buf *b, const void *data, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2 + 64;
    b->p = realloc(b->p, b->cap);
  }
  memcpy(b->p + b->n, data, n);
  b->n += n;
}

static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

/* A literal that may hold NUL bytes. */
#define PUTL(b, lit) put(b, lit, sizeof lit - 1)

static void put_le(buf *b, uint64_t v, int n) {
  for (int i = 0; i < n; i++) {
    unsigned char c = (unsigned char)(v >> (8 * i));
    put(b, &c, 1);
  }
}

/* BINUNICODE */
static void put_str(buf *b, const char *s) {
  puts_(b, "X");
  put_le(b, strlen(s), 4);
  puts_(b, s);
}

/* An int: BININT1, BININT or LONG1. */
static void put_int(buf *b, int64_t v) {
  if (v >= 0 && v < 256) {
    puts_(b, "K");
    put_le(b, (uint64_t)v, 1);
  } else if (v >= INT32_MIN && v <= INT32_MAX) {
    puts_(b, "J");
    put_le(b, (uint64_t)v, 4);
  } else {
    put(b, "\x8a\x08", 2); /* LONG1 */
    put_le(b, (uint64_t)v, 8);
  }
}

/* A tuple of ints (MARK ... TUPLE). */
static void put_ints(buf *b, const int64_t *v, int n) {
  puts_(b, "(");
  for (int i = 0; i < n; i++)
    put_int(b, v[i]);
  puts_(b, "t");
}

/* One dict entry name -> _rebuild_tensor_v2(storage key, offset, size, stride) of float32. */
static void put_tensor(buf *b, const char *name, const char *key, int64_t numel, int64_t offset,
                       int ndim, const int64_t *size, const int64_t *stride) {
  put_str(b, name);
  puts_(b, "ctorch._utils\n_rebuild_tensor_v2\n(");
  puts_(b, "(");
  put_str(b, "storage");
  puts_(b, "ctorch\nFloatStorage\n");
  put_str(b, key);
  put_str(b, "cpu");
  put_int(b, numel);
  puts_(b, "tQ");
  put_int(b, offset);
  put_ints(b, size, ndim);
  put_ints(b, stride, ndim);
  puts_(b, "\x89"
           "ccollections\nOrderedDict\n)RtR");
}

typedef struct zentry {
  const char *name;
  const void *data;
  size_t len;
} zentry;

/* A zip of stored records as torch writes them; with zip64, every size and
 * offset of the central directory is 0xFFFFFFFF and given in a ZIP64 extra
 * field, and the end record is ZIP64's, as for files over 4 GB. */
static buf make_zip_ex(const zentry *e, int n, int zip64);

static buf make_zip(const zentry *e, int n) { return make_zip_ex(e, n, 0); }

static buf make_zip_ex(const zentry *e, int n, int zip64) {
  buf z = {0};
  uint64_t *offs = calloc((size_t)n, sizeof *offs);
  for (int i = 0; i < n; i++) {
    offs[i] = z.n;
    put_le(&z, 0x04034b50, 4);
    put_le(&z, 20, 2);
    put_le(&z, 0, 2); /* flags */
    put_le(&z, 0, 2); /* stored */
    put_le(&z, 0, 4); /* time, date */
    put_le(&z, crc32(0, e[i].data, (uInt)e[i].len), 4);
    put_le(&z, e[i].len, 4);
    put_le(&z, e[i].len, 4);
    put_le(&z, strlen(e[i].name), 2);
    put_le(&z, 0, 2);
    puts_(&z, e[i].name);
    put(&z, e[i].data, e[i].len);
  }
  uint64_t cd = z.n;
  for (int i = 0; i < n; i++) {
    put_le(&z, 0x02014b50, 4);
    put_le(&z, 20, 2);
    put_le(&z, 20, 2);
    put_le(&z, 0, 2);
    put_le(&z, 0, 2);
    put_le(&z, 0, 4);
    put_le(&z, crc32(0, e[i].data, (uInt)e[i].len), 4);
    put_le(&z, zip64 ? 0xffffffffu : e[i].len, 4);
    put_le(&z, zip64 ? 0xffffffffu : e[i].len, 4);
    put_le(&z, strlen(e[i].name), 2);
    put_le(&z, zip64 ? 4 + 24 : 0, 2); /* extra */
    put_le(&z, 0, 2);                  /* comment */
    put_le(&z, 0, 4);                  /* disk, internal attributes */
    put_le(&z, 0, 4);                  /* external attributes */
    put_le(&z, zip64 ? 0xffffffffu : offs[i], 4);
    puts_(&z, e[i].name);
    if (zip64) {
      put_le(&z, 1, 2);
      put_le(&z, 24, 2);
      put_le(&z, e[i].len, 8);
      put_le(&z, e[i].len, 8);
      put_le(&z, offs[i], 8);
    }
  }
  uint64_t cdlen = z.n - cd;
  if (zip64) {
    uint64_t rec = z.n;
    put_le(&z, 0x06064b50, 4);
    put_le(&z, 44, 8);
    put_le(&z, 45, 2);
    put_le(&z, 45, 2);
    put_le(&z, 0, 8); /* disks */
    put_le(&z, (uint64_t)n, 8);
    put_le(&z, (uint64_t)n, 8);
    put_le(&z, cdlen, 8);
    put_le(&z, cd, 8);
    put_le(&z, 0x07064b50, 4);
    put_le(&z, 0, 4);
    put_le(&z, rec, 8);
    put_le(&z, 1, 4);
    put_le(&z, 0x06054b50, 4);
    put_le(&z, 0, 4);
    put_le(&z, 0xffff, 2);
    put_le(&z, 0xffff, 2);
    put_le(&z, 0xffffffffu, 4);
    put_le(&z, 0xffffffffu, 4);
    put_le(&z, 0, 2);
    free(offs);
    return z;
  }
  put_le(&z, 0x06054b50, 4);
  put_le(&z, 0, 4);
  put_le(&z, (uint64_t)n, 2);
  put_le(&z, (uint64_t)n, 2);
  put_le(&z, cdlen, 4);
  put_le(&z, cd, 4);
  put_le(&z, 0, 2);
  free(offs);
  return z;
}

/* archive/data.pkl = pkl, archive/data/0 = data. */
static buf torch_zip(const buf *pkl, const void *data, size_t len) {
  zentry e[3] = {{"archive/data.pkl", pkl->p, pkl->n},
                 {"archive/data/0", data, len},
                 {"archive/version", "3\n", 2}};
  return make_zip(e, 3);
}

/* A valid state dict {"w": (2, 3) float32 from storage "0" of 6 elements}. */
static buf good_pickle(int64_t numel, int64_t offset, const int64_t *size, const int64_t *stride) {
  buf b = {0};
  PUTL(&b, "\x80\x02}q\x00(");
  put_tensor(&b, "w", "0", numel, offset, 2, size, stride);
  puts_(&b, "u.");
  return b;
}

/* sdr_torch_file_from_memory on an exact-size copy, so ASan sees any overread. */
static sdr_torch_file *from_bytes(const void *p, size_t n) {
  unsigned char *copy = malloc(n ? n : 1);
  memcpy(copy, p, n);
  sdr_torch_file *f = sdr_torch_file_from_memory(copy, n, "mem.bin");
  if (f) { /* keep the copy alive as long as f: leak-free because tests close at once */
    sdr_torch_file_close(f);
    f = sdr_torch_file_from_memory(p, n, "mem.bin");
  }
  free(copy);
  return f;
}

/* ---- valid files ------------------------------------------------------------------ */

static void same_as_twin(const char *torch_path, const char *twin_path, size_t want) {
  sdr_torch_file *f = sdr_torch_file_open(torch_path);
  sdr_safetensors *st = sdr_safetensors_open(twin_path);
  if (!f)
    fprintf(stderr, "%s: %s\n", torch_path, sdr_last_error());
  CHECK(f && st);
  if (!f || !st)
    goto done;
  CHECK(sdr_torch_file_count(f) == want && sdr_safetensors_count(st) == want);
  for (size_t i = 0; i < sdr_safetensors_count(st); i++) {
    const sdr_st_tensor *a = sdr_safetensors_at(st, i);
    const sdr_st_tensor *b = sdr_torch_file_find(f, a->name);
    int ok = b && a->dtype == b->dtype && a->ndim == b->ndim && a->nbytes == b->nbytes &&
             memcmp(a->shape, b->shape, sizeof a->shape) == 0 &&
             (a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0);
    if (!ok)
      fprintf(stderr, "%s: tensor %s differs from %s\n", torch_path, a->name, twin_path);
    CHECK(ok);
  }
done:
  sdr_torch_file_close(f);
  sdr_safetensors_close(st);
}

static void test_fixtures(void) {
  same_as_twin(FIXTURES "/dtypes.pt", FIXTURES "/dtypes.safetensors", 17);
  same_as_twin(FIXTURES "/legacy.pt", FIXTURES "/dtypes.safetensors", 17);
  same_as_twin(FIXTURES "/nested.ckpt", FIXTURES "/nested.safetensors", 2);
  sdr_torch_file *f = sdr_torch_file_open(FIXTURES "/nested.ckpt");
  CHECK(f && sdr_torch_file_unwrapped(f) == 2 && sdr_torch_file_skipped(f) == 0);
  sdr_torch_file_close(f);
  f = sdr_torch_file_open(FIXTURES "/dtypes.pt");
  /* views share their storage: "view" is base[2:5], "row" base.view(2, 5)[1] */
  const sdr_st_tensor *base = f ? sdr_torch_file_find(f, "base") : NULL;
  const sdr_st_tensor *view = f ? sdr_torch_file_find(f, "view") : NULL;
  const sdr_st_tensor *row = f ? sdr_torch_file_find(f, "row") : NULL;
  CHECK(base && view && row && (const char *)view->data == (const char *)base->data + 8 &&
        (const char *)row->data == (const char *)base->data + 20);
  const sdr_st_tensor *empty = f ? sdr_torch_file_find(f, "empty") : NULL;
  CHECK(empty && empty->nbytes == 0 && empty->ndim == 2 && empty->shape[0] == 0);
  const sdr_st_tensor *scalar = f ? sdr_torch_file_find(f, "scalar") : NULL;
  CHECK(scalar && scalar->ndim == 0 && scalar->nbytes == 4);
  CHECK(f && sdr_torch_file_find(f, "nope") == NULL);
  sdr_torch_file_close(f);

  /* an IP-Adapter's {"image_proj": {...}, "ip_adapter": {...}}: one level down, named
   * "outer.inner" as its .safetensors form */
  f = sdr_torch_file_open("tests/models/tiny-ip-adapter/models/ip-adapter-plus_tiny.bin");
  const sdr_st_tensor *lat = f ? sdr_torch_file_find(f, "image_proj.latents") : NULL;
  const sdr_st_tensor *k1 = f ? sdr_torch_file_find(f, "ip_adapter.1.to_k_ip.weight") : NULL;
  CHECK(lat && lat->ndim == 3 && lat->shape[0] == 1 && lat->shape[1] == 6 && lat->shape[2] == 48);
  CHECK(k1 && k1->ndim == 2 && k1->shape[0] == 32 && k1->shape[1] == 32);
  CHECK(f && sdr_torch_file_count(f) == 7 + 4 * 11 + 6 * 2 && sdr_torch_file_skipped(f) == 0);
  sdr_torch_file_close(f);

  CHECK(sdr_torch_file_open(FIXTURES "/noncontiguous.pt") == NULL);
  CHECK(has(sdr_last_error(), "noncontiguous.pt: tensor \"t\" is stored non-contiguously"));
  CHECK(sdr_torch_file_open(FIXTURES "/no-such.pt") == NULL);
  CHECK(has(sdr_last_error(), "no-such.pt"));
  CHECK(sdr_torch_file_open(FIXTURES "/dtypes.safetensors") == NULL);
  CHECK(has(sdr_last_error(), "not a file torch.save writes"));
}

/* The zip prefix is the file's stem in older torch ("x/data.pkl"), "archive" in newer. */
static void test_zip_folder(void) {
  size_t len;
  unsigned char *p = slurp(FIXTURES "/dtypes.pt", &len);
  sdr_torch_zip z;
  CHECK(p && sdr_torch_zip_open(&z, p, len, "dtypes.pt") == 0);
  if (p && z.folder) {
    CHECK_STR(z.folder, "dtypes");
    CHECK(sdr_torch_zip_find(&z, "data.pkl") && sdr_torch_zip_find(&z, "version") &&
          sdr_torch_zip_find(&z, "data/0") && !sdr_torch_zip_find(&z, "data/999"));
    for (size_t i = 0; i < z.count; i++)
      if (strncmp(z.records[i].name, "data/", 5) == 0)
        CHECK((uintptr_t)(z.records[i].data - p) % 64 == 0); /* PyTorchStreamWriter aligns */
    sdr_torch_zip_close(&z);
  }
  free(p);
}

/* ---- hostile pickles ----------------------------------------------------------------- */

static void refused(const char *pickle, size_t n, const char *want) {
  sdr_pickle *pk = sdr_pickle_new("evil.pkl");
  const sdr_pk_value *v = sdr_pickle_load(pk, pickle, n, NULL);
  CHECK(v == NULL);
  if (!v)
    CHECK(has(sdr_last_error(), want));
  sdr_pickle_free(pk);
  /* and the same pickle inside a torch zip */
  buf pkl = {0};
  put(&pkl, pickle, n);
  buf z = torch_zip(&pkl, "\0\0\0\0", 4);
  sdr_torch_file *f = from_bytes(z.p, z.n);
  CHECK(f == NULL);
  if (!f)
    CHECK(has(sdr_last_error(), want));
  sdr_torch_file_close(f);
  free(pkl.p);
  free(z.p);
}

#define REFUSED(lit, want) refused(lit, sizeof lit - 1, want)

static void test_hostile_globals(void) {
  const char *marker = "/tmp/sdrepl-test-pickle-pwned";
  unlink(marker);
  /* pickle.dumps of an object whose __reduce__ is (os.system, ("touch ...",)) */
  REFUSED("\x80\x02"
          "cposix\nsystem\nq\x00X\x1d\x00\x00\x00touch "
          "/tmp/sdrepl-test-pickle-pwnedq\x01\x85q\x02Rq\x03.",
          "refusing to load: the file asks for the Python global posix.system");
  REFUSED("\x80\x02"
          "cos\nsystem\nX\x02\x00\x00\x00id\x85R.",
          "the Python global os.system");
  /* protocol 4: STACK_GLOBAL */
  REFUSED("\x80\x04\x95\x20\x00\x00\x00\x00\x00\x00\x00\x8c\x08"
          "builtins\x94\x8c\x04"
          "eval\x94\x93\x94\x8c\x03"
          "1+1\x94\x85\x94R\x94.",
          "the Python global builtins.eval");
  /* __reduce__ of an arbitrary class, nested inside a valid-looking dict */
  REFUSED("\x80\x02}q\x00X\x01\x00\x00\x00"
          "aq\x01"
          "c__main__\nEvil\nq\x02)Rq\x03s.",
          "the Python global __main__.Evil");
  REFUSED("\x80\x02(X\x02\x00\x00\x00idisubprocess\nPopen\n.", "subprocess.Popen");
  /* names are printed safely */
  REFUSED("\x80\x02"
          "cevil\x1b[31m\nx\n.",
          "evil\\x1b[31m.x");
  /* allowed globals used otherwise than torch does */
  REFUSED("\x80\x02"
          "ccollections\nOrderedDict\n)\x81.",
          "NEWOBJ");
  REFUSED("\x80\x02"
          "ctorch\nFloatStorage\nK\x03\x85R.",
          "calls torch.FloatStorage, which torch.save never calls");
  REFUSED("\x80\x02"
          "c_codecs\nencode\nX\x01\x00\x00\x00xX\x03\x00\x00\x00rot\x86R.",
          "_codecs.encode called with arguments other than");
  REFUSED("\x80\x02"
          "ctorch._utils\n_rebuild_tensor_v2\n)R.",
          "takes 6 or 7 arguments");
  REFUSED("\x80\x02\x82\x01.", "extension registry");
  REFUSED("\x80\x02"
          "ctorch\nTensor\n(o.",
          "OBJ");
  /* a persistent id that is not torch's */
  REFUSED("\x80\x02X\x03\x00\x00\x00"
          "abcQ.",
          "persistent id");
  REFUSED("\x80\x02(X\x07\x00\x00\x00storagecos\nsystem\nX\x01\x00\x00\x00"
          "0X\x03\x00\x00\x00"
          "cpuK\x01tQ.",
          "os.system");
  CHECK(access(marker, F_OK) != 0); /* nothing ran */
}

static void test_malformed_pickles(void) {
  REFUSED("\x80\x02]r\xff\xff\xff\x7f.", "memo index 2147483647 is out of order");
  REFUSED("\x80\x02h\x05.", "memo index 5 was never stored");
  REFUSED("\x80\x02\x8b\xff\xff\xff\x7f.", "truncated");
  REFUSED("\x80\x02\x8d\xff\xff\xff\xff\xff\xff\xff\xff.", "truncated");
  REFUSED("\x80\x02"
          "X\x10\x00\x00\x00short.",
          "truncated");
  REFUSED("\x80\x02}0.", "pops from an empty stack");
  REFUSED("\x80\x02(.", "empty stack");
  REFUSED("\x80\x02K\x01K\x02u.", "ends a MARK it never began");
  REFUSED("\x80\x02K\x01K\x02"
          "a.",
          "APPEND on a int");
  REFUSED("\x80\x02)K\x01K\x02s.", "SETITEM on a tuple");
  REFUSED("\x80\x02}(K\x01u.", "odd number");
  REFUSED("\x80\x02K\x01", "ends before its STOP");
  REFUSED("\x80\x09.", "protocol 9");
  REFUSED("\x80\x02"
          "F1.0\n.",
          "not supported here");
  REFUSED("\x80\x02"
          "cos\nsys",
          "newline");
  REFUSED("\x80\x02"
          "I99999999999999999999\n.",
          "not an integer in range");

  /* Deep nesting costs no recursion: a list nested 200000 deep, then a dict
   * that holds itself under "state_dict". */
  buf b = {0};
  puts_(&b, "\x80\x02");
  for (int i = 0; i < 200000; i++)
    puts_(&b, "]");
  for (int i = 0; i < 199999; i++)
    puts_(&b, "a");
  puts_(&b, ".");
  sdr_pickle *pk = sdr_pickle_new("deep");
  const sdr_pk_value *v = sdr_pickle_load(pk, b.p, b.n, NULL);
  CHECK(v && v->kind == SDR_PK_LIST && v->u.seq.n == 1);
  sdr_pickle_free(pk);
  buf z = torch_zip(&b, "", 0);
  CHECK(from_bytes(z.p, z.n) == NULL && has(sdr_last_error(), "holds a list, not a dict"));
  free(z.p);
  free(b.p);
  b = (buf){0};
  PUTL(&b, "\x80\x02}q\x00h\x00X\x0a\x00\x00\x00state_dicth\x00s0.");
  z = torch_zip(&b, "", 0);
  CHECK(from_bytes(z.p, z.n) == NULL && has(sdr_last_error(), "nested more than 8 deep"));
  free(z.p);
  free(b.p);
  /* A million marks and pushes: the stack grows, then the pickle fails cleanly. */
  b = (buf){0};
  puts_(&b, "\x80\x02");
  for (int i = 0; i < 1000000; i++)
    puts_(&b, "(N");
  pk = sdr_pickle_new("marks");
  CHECK(sdr_pickle_load(pk, b.p, b.n, NULL) == NULL && has(sdr_last_error(), "STOP"));
  sdr_pickle_free(pk);
  free(b.p);
}

/* ---- tensors and storages ------------------------------------------------------------- */

static void test_tensor_checks(void) {
  float data[6] = {1, 2, 3, 4, 5, 6};
  const int64_t size[2] = {2, 3}, stride[2] = {3, 1}, tstride[2] = {1, 2};
  buf p = good_pickle(6, 0, size, stride);
  buf z = torch_zip(&p, data, sizeof data);
  sdr_torch_file *f = from_bytes(z.p, z.n);
  CHECK(f && sdr_torch_file_count(f) == 1);
  const sdr_st_tensor *w = f ? sdr_torch_file_find(f, "w") : NULL;
  CHECK(w && w->dtype == SDR_F32 && w->nbytes == 24 && w->shape[1] == 3 &&
        memcmp(w->data, data, 24) == 0);
  sdr_torch_file_close(f);
  free(z.p);

  /* the same through ZIP64 records and extra fields */
  zentry e64[2] = {{"archive/data.pkl", p.p, p.n}, {"archive/data/0", data, sizeof data}};
  z = make_zip_ex(e64, 2, 1);
  f = from_bytes(z.p, z.n);
  CHECK(f && sdr_torch_file_count(f) == 1);
  w = f ? sdr_torch_file_find(f, "w") : NULL;
  CHECK(w && w->nbytes == 24 && memcmp(w->data, data, 24) == 0);
  sdr_torch_file_close(f);
  for (size_t n = 0; n < z.n; n++) /* and every truncation of it */
    CHECK(from_bytes(z.p, n) == NULL);
  free(z.p);

  /* the record is shorter than the storage the pickle announces */
  z = torch_zip(&p, data, 16);
  CHECK(from_bytes(z.p, z.n) == NULL && has(sdr_last_error(), "do not fit in its record of 16"));
  free(z.p);
  free(p.p);
  /* the tensor runs past its storage */
  p = good_pickle(6, 2, size, stride);
  z = torch_zip(&p, data, sizeof data);
  CHECK(from_bytes(z.p, z.n) == NULL && has(sdr_last_error(), "lies outside its storage"));
  free(z.p);
  free(p.p);
  p = good_pickle(6, 0, (const int64_t[]){3, 2}, tstride);
  z = torch_zip(&p, data, sizeof data);
  CHECK(from_bytes(z.p, z.n) == NULL && has(sdr_last_error(), "non-contiguously"));
  free(z.p);
  free(p.p);
  /* sizes that overflow */
  p = good_pickle(6, 0, (const int64_t[]){1ll << 40, 1ll << 40}, (const int64_t[]){1, 1});
  z = torch_zip(&p, data, sizeof data);
  CHECK(from_bytes(z.p, z.n) == NULL && has(sdr_last_error(), "overflows"));
  free(z.p);
  free(p.p);
  /* a storage key without its record */
  p = good_pickle(6, 0, size, stride);
  zentry e[2] = {{"archive/data.pkl", p.p, p.n}, {"archive/data/1", data, sizeof data}};
  z = make_zip(e, 2);
  CHECK(from_bytes(z.p, z.n) == NULL && has(sdr_last_error(), "has no record archive/data/0"));
  free(z.p);
  free(p.p);
}

/* ---- the container ------------------------------------------------------------------------ */

static void test_zip_damage(void) {
  float data[6] = {0};
  const int64_t size[2] = {2, 3}, stride[2] = {3, 1};
  buf p = good_pickle(6, 0, size, stride);
  buf z = torch_zip(&p, data, sizeof data);
  /* Every truncation is an error, never a read past the end. */
  for (size_t n = 0; n < z.n; n++) {
    sdr_torch_file *f = from_bytes(z.p, n);
    CHECK(f == NULL);
    sdr_torch_file_close(f);
  }
  /* Every single-byte change is handled (accepted or refused). */
  for (size_t i = 0; i < z.n; i++) {
    unsigned char keep = z.p[i];
    z.p[i] ^= 0x5a;
    sdr_torch_file_close(from_bytes(z.p, z.n));
    z.p[i] = keep;
  }
  /* data.pkl's CRC is checked */
  unsigned char *pk = memmem(z.p, z.n, "\x80\x02}", 3);
  CHECK(pk != NULL);
  if (pk) {
    pk[2] = ']';
    CHECK(from_bytes(z.p, z.n) == NULL && has(sdr_last_error(), "data.pkl is corrupt"));
    pk[2] = '}';
  }
  /* central directory offset out of the file */
  size_t eocd = z.n - 22;
  z.p[eocd + 19] = 0x7f;
  CHECK(from_bytes(z.p, z.n) == NULL && has(sdr_last_error(), "outside the file"));
  z.p[eocd + 19] = 0;
  /* a compressed record */
  unsigned char *cen = memmem(z.p, z.n, "PK\1\2", 4);
  cen[10] = 8;
  CHECK(from_bytes(z.p, z.n) == NULL && has(sdr_last_error(), "is compressed (method 8)"));
  cen[10] = 0;
  /* a local header offset out of the file */
  cen[42 + 3] = 0x40;
  CHECK(from_bytes(z.p, z.n) == NULL && has(sdr_last_error(), "local header"));
  cen[42 + 3] = 0;
  sdr_torch_file *ok = from_bytes(z.p, z.n); /* undamaged again */
  CHECK(ok != NULL);
  sdr_torch_file_close(ok);
  free(z.p);
  /* records outside the folder, twice, none at all, no data.pkl */
  zentry two[2] = {{"a/data.pkl", p.p, p.n}, {"b/data/0", data, sizeof data}};
  z = make_zip(two, 2);
  CHECK(from_bytes(z.p, z.n) == NULL && has(sdr_last_error(), "outside the folder"));
  free(z.p);
  zentry dup[2] = {{"a/data.pkl", p.p, p.n}, {"a/data.pkl", p.p, p.n}};
  z = make_zip(dup, 2);
  CHECK(from_bytes(z.p, z.n) == NULL && has(sdr_last_error(), "appears twice"));
  free(z.p);
  zentry nopkl[1] = {{"a/data/0", data, sizeof data}};
  z = make_zip(nopkl, 1);
  CHECK(from_bytes(z.p, z.n) == NULL && has(sdr_last_error(), "without a/data.pkl"));
  free(z.p);
  z = make_zip(NULL, 0);
  CHECK(from_bytes(z.p, z.n) == NULL && has(sdr_last_error(), "not a file torch.save writes"));
  free(z.p);
  free(p.p);
}

static void test_legacy_damage(void) {
  size_t len;
  unsigned char *p = slurp(FIXTURES "/legacy.pt", &len);
  CHECK(p != NULL);
  for (size_t n = 0; p && n < len; n++) {
    sdr_torch_file *f = from_bytes(p, n);
    CHECK(f == NULL);
    sdr_torch_file_close(f);
  }
  for (size_t i = 0; p && i < len; i++) {
    unsigned char keep = p[i];
    p[i] ^= 0xa5;
    sdr_torch_file_close(from_bytes(p, len));
    p[i] = keep;
  }
  free(p);
}

/* Every truncation and byte change of a real torch.save pickle. */
static void test_pickle_damage(void) {
  size_t len;
  unsigned char *p = slurp(FIXTURES "/nested.ckpt", &len);
  sdr_torch_zip z;
  CHECK(p && sdr_torch_zip_open(&z, p, len, "nested.ckpt") == 0);
  const sdr_zip_record *r = p ? sdr_torch_zip_find(&z, "data.pkl") : NULL;
  CHECK(r != NULL);
  if (r) {
    unsigned char *pkl = malloc(r->size);
    memcpy(pkl, r->data, r->size);
    for (size_t n = 0; n < r->size; n++) {
      sdr_pickle *pk = sdr_pickle_new("cut");
      CHECK(sdr_pickle_load(pk, pkl, n, NULL) == NULL);
      sdr_pickle_free(pk);
    }
    for (size_t i = 0; i < r->size; i++) {
      unsigned char keep = pkl[i];
      pkl[i] ^= 0x33;
      sdr_pickle *pk = sdr_pickle_new("flip");
      sdr_pickle_load(pk, pkl, r->size, NULL);
      sdr_pickle_free(pk);
      pkl[i] = keep;
    }
    free(pkl);
  }
  if (p)
    sdr_torch_zip_close(&z);
  free(p);
}

/* ---- the weights layer ------------------------------------------------------------------ */

static void test_weights(void) {
  sdr_backend *be = sdr_cpu_backend_create();
  /* either format, whatever the name */
  sdr_weight_file *a = sdr_weight_file_open(FIXTURES "/dtypes.pt");
  sdr_weight_file *b = sdr_weight_file_open(FIXTURES "/dtypes.safetensors");
  CHECK(a && b && sdr_weight_file_count(a) == 17 && sdr_weight_file_count(b) == 17);
  CHECK(sdr_weight_file_open(FIXTURES "/noncontiguous.pt") == NULL);
  CHECK(has(sdr_last_error(), "non-contiguously"));
  CHECK(sdr_weight_file_open(FIXTURES "/missing.bin") == NULL);
  CHECK(has(sdr_last_error(), "missing.bin"));

  /* the legacy format stores data unaligned: bound through a copy, same values */
  const char *legacy = FIXTURES "/legacy.pt";
  sdr_weights w;
  CHECK(sdr_weights_open(&w, be, "legacy", &legacy, 1, -1) == 0);
  sdr_tensor t;
  CHECK(sdr_weights_bind(&w, &t, "f32", 2, (int64_t[]){2, 3}) == 0);
  const sdr_st_tensor *want = sdr_weight_file_find(b, "f32");
  CHECK(t.data && want && memcmp(t.data, want->data, 24) == 0);
  CHECK(sdr_weights_bind(&w, &t, "base", 1, (int64_t[]){10}) == 0);
  CHECK(sdr_weights_finish(&w) != 0 && has(sdr_last_error(), "unexpected 'f16'"));
  sdr_weights_close(&w);

  /* views: other names, other shapes, slices */
  const sdr_st_tensor *base = sdr_weight_file_find(a, "base");
  sdr_weight_view views[3] = {{"first_half", base, 0, 1, {5}},
                              {"second_half", base, 20, 2, {5, 1}},
                              {"too_far", base, 24, 1, {5}}};
  CHECK(sdr_weights_open_views(&w, be, "views", a, views, 3, -1) != 0);
  CHECK(has(sdr_last_error(), "the view 'too_far' does not fit in 'base'"));
  CHECK(sdr_weights_open_views(&w, be, "views", a, views, 2, -1) == 0);
  sdr_tensor h1, h2;
  CHECK(sdr_weights_bind(&w, &h1, "first_half", 1, (int64_t[]){5}) == 0 &&
        sdr_weights_bind(&w, &h2, "second_half", 2, (int64_t[]){5, 1}) == 0);
  CHECK(h1.data == base->data && (const char *)h2.data == (const char *)base->data + 20);
  CHECK(sdr_weights_finish(&w) == 0);
  /* keep float16: converted copies */
  sdr_weights w16;
  CHECK(sdr_weights_open_views(&w16, be, "views", a, views, 1, SDR_F16) == 0);
  CHECK(sdr_weights_bind(&w16, &h1, "first_half", 1, (int64_t[]){5}) == 0 && h1.dtype == SDR_F16 &&
        h1.data != base->data);
  sdr_weights_close(&w16);

  /* a redirected path takes the views; the file is never opened */
  const char *fake = "/nonexistent/diffusion_pytorch_model.safetensors";
  CHECK(sdr_weights_redirect(fake, a, views, 2) == 0);
  sdr_weight_file_release(a); /* the redirect and w hold it now */
  sdr_weights r;
  CHECK(sdr_weights_open(&r, be, "unet", &fake, 1, -1) == 0);
  CHECK(sdr_weights_has(&r, "first_half") && !sdr_weights_has(&r, "base"));
  sdr_weights_close(&r);
  sdr_weights_redirect_end(fake);
  CHECK(sdr_weights_open(&r, be, "unet", &fake, 1, -1) != 0 &&
        has(sdr_last_error(), "unet: /nonexistent/"));
  sdr_weights_close(&w); /* its views still read the file until here */
  sdr_weight_file_release(b);
  sdr_cpu_backend_destroy(be);
}

int main(void) {
  test_fixtures();
  test_zip_folder();
  test_hostile_globals();
  test_malformed_pickles();
  test_tensor_checks();
  test_zip_damage();
  test_legacy_damage();
  test_pickle_damage();
  test_weights();
  return check_exit();
}

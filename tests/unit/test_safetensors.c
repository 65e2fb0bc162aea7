/* engine/safetensors: valid files in every dtype read back exactly, every
 * hostile fixture refused with a message naming the file (and tensor), the
 * writer reproducing the Python library's bytes, and hashed lookup at SD size.
 * Fixtures: tests/fixtures/safetensors (scripts/reference/make_safetensors_cases.py). */
#define _GNU_SOURCE /* memmem */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "engine/error.h"       // sdr_last_error
#include "engine/safetensors.h" // sdr_safetensors_*
#include "kernels/half.h"       // sdr_f16_to_f32, sdr_bf16_to_f32

#define FIXTURES "tests/fixtures/safetensors"

/* The whole file in a buffer of exactly its size, so ASan sees any read past it. */
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

static float f32_at(const sdr_st_tensor *t, size_t i) {
  float v;
  memcpy(&v, (const char *)t->data + 4 * i, 4);
  return v;
}

static uint16_t u16_at(const sdr_st_tensor *t, size_t i) {
  uint16_t v;
  memcpy(&v, (const char *)t->data + 2 * i, 2);
  return v;
}

static int64_t i64_at(const sdr_st_tensor *t, size_t i) {
  int64_t v;
  memcpy(&v, (const char *)t->data + 8 * i, 8);
  return v;
}

static int shape_is(const sdr_st_tensor *t, int ndim, int64_t a, int64_t b) {
  return t && t->ndim == ndim && (ndim < 1 || t->shape[0] == a) && (ndim < 2 || t->shape[1] == b);
}

static sdr_safetensors *open_valid(const char *name) {
  char path[256];
  snprintf(path, sizeof path, FIXTURES "/valid/%s.safetensors", name);
  sdr_safetensors *st = sdr_safetensors_open(path);
  if (!st)
    fprintf(stderr, "%s: %s\n", path, sdr_last_error());
  CHECK(st != NULL);
  return st;
}

/* ---- valid files ---------------------------------------------------------- */

static void test_dtypes(void) {
  sdr_safetensors *st = open_valid("f32");
  if (st) {
    CHECK(sdr_safetensors_count(st) == 1);
    const sdr_st_tensor *w = sdr_safetensors_find(st, "w");
    CHECK(w && w->dtype == SDR_F32 && shape_is(w, 2, 2, 3) && w->nbytes == 24);
    const float want[] = {-1.5f, 0, 0.25f, 1, 2.5f, 1024};
    for (int i = 0; w && i < 6; i++)
      CHECK(f32_at(w, i) == want[i]);
    CHECK(((uintptr_t)w->data & 7) == 0); /* padded header: aligned data */
    CHECK_STR(sdr_safetensors_metadata(st, "format"), "pt");
    CHECK_STR(sdr_safetensors_metadata(st, "note"), "hand-made");
    CHECK(sdr_safetensors_metadata(st, "Format") == NULL);
    CHECK(sdr_safetensors_metadata_count(st) == 2);
    CHECK_STR(sdr_safetensors_metadata_key(st, 0), "format");
    CHECK_STR(sdr_safetensors_metadata_key(st, 1), "note");
    CHECK(sdr_safetensors_metadata_key(st, 2) == NULL);
    CHECK(sdr_safetensors_find(st, "W") == NULL);
    CHECK(sdr_safetensors_find(st, "") == NULL);
    CHECK(sdr_safetensors_at(st, 1) == NULL);
    CHECK(strstr(sdr_safetensors_name(st), "f32.safetensors") != NULL);
    sdr_safetensors_close(st);
  }

  if ((st = open_valid("f16"))) {
    const sdr_st_tensor *h = sdr_safetensors_find(st, "h");
    CHECK(h && h->dtype == SDR_F16 && shape_is(h, 1, 4, 0) && h->nbytes == 8);
    const float want[] = {1, -2, 0.5f, 65504};
    for (int i = 0; h && i < 4; i++)
      CHECK(sdr_f16_to_f32(u16_at(h, i)) == want[i]);
    CHECK(sdr_safetensors_metadata(st, "format") == NULL);
    sdr_safetensors_close(st);
  }

  if ((st = open_valid("bf16"))) {
    const sdr_st_tensor *b = sdr_safetensors_find(st, "b");
    CHECK(b && b->dtype == SDR_BF16 && shape_is(b, 1, 3, 0) && b->nbytes == 6);
    const float want[] = {1, -3, 0.15625f};
    for (int i = 0; b && i < 3; i++)
      CHECK(sdr_bf16_to_f32(u16_at(b, i)) == want[i]);
    sdr_safetensors_close(st);
  }

  if ((st = open_valid("i64"))) {
    const sdr_st_tensor *t = sdr_safetensors_find(st, "ids");
    CHECK(t && t->dtype == SDR_I64 && shape_is(t, 2, 2, 2) && t->nbytes == 32);
    const int64_t want[] = {1, -2, (int64_t)1 << 40, -((int64_t)1 << 62)};
    for (int i = 0; t && i < 4; i++)
      CHECK(i64_at(t, i) == want[i]);
    sdr_safetensors_close(st);
  }
}

/* Every other dtype, a scalar, empty tensors, and a header out of data order. */
static void test_mixed(void) {
  sdr_safetensors *st = open_valid("mixed");
  if (!st)
    return;
  CHECK(sdr_safetensors_count(st) == 9);
  /* Numbered in data order, empty ranges before the range they share a start with. */
  const char *order[] = {"d", "e0", "i", "s", "e1", "c", "u", "t", "e2"};
  for (size_t i = 0; i < 9; i++) {
    const sdr_st_tensor *t = sdr_safetensors_at(st, i);
    CHECK(t && strcmp(t->name, order[i]) == 0);
    CHECK(t && sdr_safetensors_find(st, order[i]) == t);
  }
  const sdr_st_tensor *t = sdr_safetensors_find(st, "d");
  double d = 0;
  if (t)
    memcpy(&d, t->data, 8);
  CHECK(t && t->dtype == SDR_F64 && t->ndim == 0 && t->nbytes == 8 && d == 3.25);
  t = sdr_safetensors_find(st, "e0");
  CHECK(t && t->dtype == SDR_F32 && shape_is(t, 2, 0, 3) && t->nbytes == 0 && t->data);
  t = sdr_safetensors_find(st, "e1");
  CHECK(t && t->dtype == SDR_I64 && shape_is(t, 2, 5, 0) && t->nbytes == 0);
  t = sdr_safetensors_find(st, "e2");
  CHECK(t && t->dtype == SDR_BF16 && shape_is(t, 1, 0, 0) && t->nbytes == 0);
  int32_t i32[2] = {0};
  if ((t = sdr_safetensors_find(st, "i")))
    memcpy(i32, t->data, 8);
  CHECK(t && t->dtype == SDR_I32 && i32[0] == -7 && i32[1] == 7);
  int16_t i16[2] = {0};
  if ((t = sdr_safetensors_find(st, "s")))
    memcpy(i16, t->data, 4);
  CHECK(t && t->dtype == SDR_I16 && i16[0] == -300 && i16[1] == 300);
  t = sdr_safetensors_find(st, "c");
  CHECK(t && t->dtype == SDR_I8 && ((const int8_t *)t->data)[0] == -5);
  t = sdr_safetensors_find(st, "u");
  CHECK(t && t->dtype == SDR_U8 && ((const uint8_t *)t->data)[2] == 255);
  t = sdr_safetensors_find(st, "t");
  CHECK(t && t->dtype == SDR_BOOL && ((const uint8_t *)t->data)[0] == 1);
  sdr_safetensors_close(st);

  /* The other valid corner cases simply open. */
  const char *others[] = {"empty_file", "metadata_null", "unpadded", "unknown_field"};
  for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
    st = open_valid(others[i]);
    sdr_safetensors_close(st);
  }
  if ((st = open_valid("unpadded"))) {
    const sdr_st_tensor *x = sdr_safetensors_find(st, "x");
    CHECK(x && x->nbytes == 3 && memcmp(x->data, "abc", 3) == 0);
    sdr_safetensors_close(st);
  }
}

/* python_lib.safetensors' tensors (see python_lib_tensors() in the script). */
static const float alpha[6] = {-1, -0.5f, 0, 0.5f, 1, 1.5f};
static const uint16_t beta[3] = {0x3c00, 0xc000, 0x3800}; /* 1, -2, 0.5 */
static const uint16_t gamma_[2] = {0x3f80, 0xc040};       /* 1, -3 */
static const int64_t delta[3] = {1, -2, (int64_t)1 << 40};

static void python_lib_tensors(sdr_st_tensor t[5]) {
  memset(t, 0, 5 * sizeof *t);
  t[0] = (sdr_st_tensor){"alpha.weight", SDR_F32, 2, {2, 3}, alpha, sizeof alpha};
  t[1] = (sdr_st_tensor){"beta.half", SDR_F16, 1, {3}, beta, sizeof beta};
  t[2] = (sdr_st_tensor){"gamma.bf16", SDR_BF16, 2, {1, 2}, gamma_, sizeof gamma_};
  t[3] = (sdr_st_tensor){"delta.ids", SDR_I64, 1, {3}, delta, sizeof delta};
  t[4] = (sdr_st_tensor){"empty", SDR_F32, 2, {0, 4}, NULL, 0};
}

static void check_python_lib(const sdr_safetensors *st) {
  sdr_st_tensor want[5];
  python_lib_tensors(want);
  CHECK(sdr_safetensors_count(st) == 5);
  for (int i = 0; i < 5; i++) {
    const sdr_st_tensor *t = sdr_safetensors_find(st, want[i].name);
    CHECK(t && t->dtype == want[i].dtype && t->ndim == want[i].ndim && t->nbytes == want[i].nbytes);
    for (int d = 0; t && d < t->ndim; d++)
      CHECK(t->shape[d] == want[i].shape[d]);
    CHECK(t && (t->nbytes == 0 || memcmp(t->data, want[i].data, t->nbytes) == 0));
    CHECK(t && ((uintptr_t)t->data % sdr_dtype_size(t->dtype)) == 0);
  }
  CHECK_STR(sdr_safetensors_metadata(st, "format"), "pt");
}

static void test_python_lib(void) {
  sdr_safetensors *st = open_valid("python_lib");
  if (st)
    check_python_lib(st);
  sdr_safetensors_close(st);

  /* The same bytes through from_memory. */
  size_t len;
  unsigned char *buf = slurp(FIXTURES "/valid/python_lib.safetensors", &len);
  CHECK(buf != NULL);
  st = buf ? sdr_safetensors_from_memory(buf, len, "python_lib in memory") : NULL;
  CHECK(st != NULL);
  if (st)
    check_python_lib(st);
  sdr_safetensors_close(st);

  /* Every proper prefix of a valid file is refused (the data must end the file). */
  int accepted = 0;
  for (size_t n = 0; buf && n < len; n++) {
    unsigned char *cut = malloc(n ? n : 1);
    memcpy(cut, buf, n);
    sdr_safetensors *p = sdr_safetensors_from_memory(cut, n, "prefix");
    accepted += p != NULL;
    sdr_safetensors_close(p);
    free(cut);
  }
  CHECK(accepted == 0);
  free(buf);
}

/* ---- hostile files ---------------------------------------------------------- */

static const struct {
  const char *file, *message, *tensor;
} hostile[] = {
    {"short_file", "too short", NULL},
    {"header_truncated", "more than the 19 bytes that follow", NULL},
    {"header_huge_length", "over the 100 MB limit", NULL},
    {"header_over_100mb", "header length 100000001 is over the 100 MB limit", NULL},
    {"data_truncated", "go past the end of the data section (10 bytes)", "b"},
    {"out_of_range", "go past the end of the data section", "a"},
    {"overlap", "overlap tensor \"a\"", "b"},
    {"same_range", "overlap tensor", NULL},
    {"gap", "leave a gap", "b"},
    {"trailing_bytes", "last 4 bytes of the data section belong to no tensor", NULL},
    {"bad_dtype", "unknown dtype \"F17\"", "a"},
    {"unsupported_dtype", "unsupported dtype \"U16\"", "a"},
    {"size_mismatch", "needs 12 bytes, but data_offsets [0, 8] hold 8", "a"},
    {"duplicate_name", "the name appears twice", "a"},
    {"metadata_not_string", "__metadata__ \"format\": expected a string, got a number", NULL},
    {"metadata_not_object", "__metadata__: expected an object of strings, got a list", NULL},
    {"metadata_twice", "\"__metadata__\" appears twice", NULL},
    {"negative_offset", "data_offsets are not integers in [0, 2^53]", "a"},
    {"float_offset", "data_offsets are not integers", "a"},
    {"offset_too_big", "data_offsets are not integers", "a"},
    {"offsets_three", "expected a list [begin, end]", "a"},
    {"end_before_begin", "end before they begin", "a"},
    {"shape_not_list", "shape: expected a list of integers, got a number", "a"},
    {"shape_negative", "shape[0] is not an integer", "a"},
    {"shape_float", "shape[0] is not an integer", "a"},
    {"too_many_dims", "9 dimensions, more than 8", "a"},
    {"element_overflow", "overflows 64 bits", "a"},
    {"missing_offsets", "\"data_offsets\" is missing", "a"},
    {"entry_not_object", "expected an object", "a"},
    {"not_json", "not valid JSON", NULL},
    {"trailing_garbage", "not valid JSON", NULL},
    {"not_brace", "does not start with '{'", NULL},
    {"nul_in_header", "NUL byte", NULL},
    {"bad_utf8", "not valid UTF-8 (byte 3)", NULL},
    {"control_char", "a control character (byte", NULL},
    {"control_in_name", "a control character inside a string", NULL},
    {"nul_escape", "\\u0000 in a string", NULL},
    {"deep_nesting", "nesting deeper than 127 levels", NULL},
    {"nested_128", "nesting deeper than 127 levels", NULL},
};

static void test_hostile(void) {
  size_t n = sizeof hostile / sizeof hostile[0];
  for (size_t i = 0; i < n; i++) {
    char path[256], tensor[64];
    snprintf(path, sizeof path, FIXTURES "/hostile/%s.safetensors", hostile[i].file);
    sdr_clear_error();
    sdr_safetensors *st = sdr_safetensors_open(path);
    const char *err = sdr_last_error();
    int ok = !st && strstr(err, path) && strstr(err, hostile[i].message);
    if (hostile[i].tensor) {
      snprintf(tensor, sizeof tensor, "tensor \"%s\"", hostile[i].tensor);
      ok = ok && strstr(err, tensor);
    }
    if (!ok)
      fprintf(stderr, "%s: want \"%s\", got: %s\n", hostile[i].file, hostile[i].message,
              st ? "(accepted)" : err);
    CHECK(ok);
    sdr_safetensors_close(st);

    /* The same bytes from memory, in a buffer of exactly their size. */
    size_t len;
    unsigned char *buf = slurp(path, &len);
    CHECK(buf != NULL);
    st = buf ? sdr_safetensors_from_memory(buf, len, hostile[i].file) : NULL;
    CHECK(st == NULL && strstr(sdr_last_error(), hostile[i].message));
    sdr_safetensors_close(st);
    free(buf);
  }

  /* Every file in the folder is in the table: a new fixture needs its expectation. */
  DIR *dir = opendir(FIXTURES "/hostile");
  CHECK(dir != NULL);
  size_t seen = 0;
  for (struct dirent *e; dir && (e = readdir(dir));) {
    if (e->d_name[0] == '.')
      continue;
    seen++;
    int listed = 0;
    for (size_t i = 0; i < n; i++) {
      char want[128];
      snprintf(want, sizeof want, "%s.safetensors", hostile[i].file);
      listed |= strcmp(want, e->d_name) == 0;
    }
    if (!listed)
      fprintf(stderr, "hostile fixture %s has no expectation\n", e->d_name);
    CHECK(listed);
  }
  if (dir)
    closedir(dir);
  CHECK(seen == n);

  /* Not a file at all. */
  CHECK(sdr_safetensors_open(FIXTURES "/no-such-file.safetensors") == NULL);
  CHECK(strstr(sdr_last_error(), "no-such-file.safetensors: No such file"));
  CHECK(sdr_safetensors_open(FIXTURES "/hostile") == NULL);
  CHECK(strstr(sdr_last_error(), "not a regular file"));
  CHECK(sdr_safetensors_from_memory(NULL, 0, NULL) == NULL);
  CHECK(strstr(sdr_last_error(), "<memory>"));
  CHECK(sdr_safetensors_count(NULL) == 0 && sdr_safetensors_find(NULL, "a") == NULL);
  sdr_safetensors_close(NULL);
}

/* ---- the writer --------------------------------------------------------------- */

static char tmpdir[] = "/tmp/sdr_test_st_XXXXXX";

static int count_entries(const char *dir) {
  int n = 0;
  DIR *d = opendir(dir);
  for (struct dirent *e; d && (e = readdir(d));)
    n += e->d_name[0] != '.';
  if (d)
    closedir(d);
  return n;
}

static void test_writer(void) {
  char path[512];
  snprintf(path, sizeof path, "%s/ours.safetensors", tmpdir);
  sdr_st_tensor t[5];
  python_lib_tensors(t);
  const char *keys[] = {"format"}, *values[] = {"pt"};
  CHECK(sdr_safetensors_write_metadata(path, t, 5, keys, values, 1) == 0);

  /* Byte for byte what safetensors.torch.save_file wrote for the same tensors. */
  size_t len_ours = 0, len_py = 0;
  unsigned char *ours = slurp(path, &len_ours);
  unsigned char *py = slurp(FIXTURES "/valid/python_lib.safetensors", &len_py);
  CHECK(ours && py && len_ours == len_py && memcmp(ours, py, len_py) == 0);
  free(ours);
  free(py);
  sdr_safetensors *st = sdr_safetensors_open(path);
  CHECK(st != NULL);
  if (st)
    check_python_lib(st);
  sdr_safetensors_close(st);
  if (getenv("SDR_KEEP_WRITTEN")) { /* for make_safetensors_cases.py --verify */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", path, getenv("SDR_KEEP_WRITTEN"));
    CHECK(system(cmd) == 0);
  }

  /* Without metadata, overwriting: the rename replaces the old file, no temp left. */
  CHECK(sdr_safetensors_write(path, t, 3) == 0);
  CHECK((st = sdr_safetensors_open(path)) && sdr_safetensors_count(st) == 3 &&
        sdr_safetensors_metadata_count(st) == 0 && sdr_safetensors_find(st, "alpha.weight"));
  sdr_safetensors_close(st);
  CHECK(count_entries(tmpdir) == 1);

  /* No tensors at all: the library's own bytes for an empty dict. */
  snprintf(path, sizeof path, "%s/empty.safetensors", tmpdir);
  CHECK(sdr_safetensors_write(path, NULL, 0) == 0);
  size_t len = 0;
  unsigned char *buf = slurp(path, &len);
  CHECK(buf && len == 16 && memcmp(buf, "\x08\0\0\0\0\0\0\0{}      ", 16) == 0);
  free(buf);

  /* Names JSON must escape, read back intact. */
  const char *odd = "quote\" back\\ nl\n tab\t ctl\x01 é";
  uint8_t one = 7;
  sdr_st_tensor e = {odd, SDR_U8, 1, {1}, &one, 1};
  snprintf(path, sizeof path, "%s/odd.safetensors", tmpdir);
  CHECK(sdr_safetensors_write(path, &e, 1) == 0);
  CHECK((st = sdr_safetensors_open(path)) && sdr_safetensors_find(st, odd) &&
        *(const uint8_t *)sdr_safetensors_find(st, odd)->data == 7);
  sdr_safetensors_close(st);
  buf = slurp(path, &len);
  CHECK(buf && memmem(buf, len, "\\u0001", 6) && memmem(buf, len, "\\n", 2));
  free(buf);

  /* Refused before anything is written. */
  int before = count_entries(tmpdir);
  snprintf(path, sizeof path, "%s/bad.safetensors", tmpdir);
  sdr_st_tensor bad[2];
  python_lib_tensors(t);
  bad[0] = t[0];
  bad[1] = t[1];
  bad[1].name = "alpha.weight";
  CHECK(sdr_safetensors_write(path, bad, 2) != 0 && strstr(sdr_last_error(), "appears twice"));
  bad[1] = t[0];
  bad[1].nbytes = 20;
  CHECK(sdr_safetensors_write(path, bad + 1, 1) != 0 && strstr(sdr_last_error(), "nbytes"));
  bad[1] = t[0];
  bad[1].name = "__metadata__";
  CHECK(sdr_safetensors_write(path, bad + 1, 1) != 0);
  bad[1] = t[0];
  bad[1].dtype = SDR_DTYPE_COUNT;
  CHECK(sdr_safetensors_write(path, bad + 1, 1) != 0 && strstr(sdr_last_error(), "dtype"));
  bad[1] = t[0];
  bad[1].ndim = 9;
  CHECK(sdr_safetensors_write(path, bad + 1, 1) != 0);
  bad[1] = t[0];
  bad[1].data = NULL;
  CHECK(sdr_safetensors_write(path, bad + 1, 1) != 0 && strstr(sdr_last_error(), "no data"));
  bad[1] = t[0];
  bad[1].name = "bad\xff";
  CHECK(sdr_safetensors_write(path, bad + 1, 1) != 0 && strstr(sdr_last_error(), "UTF-8"));
  const char *dup_keys[] = {"a", "a"}, *dup_values[] = {"1", "2"};
  CHECK(sdr_safetensors_write_metadata(path, t, 1, dup_keys, dup_values, 2) != 0);
  CHECK(count_entries(tmpdir) == before);
  /* A folder that does not exist: an error, not a crash. */
  CHECK(sdr_safetensors_write("/nonexistent-dir/x.safetensors", t, 1) != 0 &&
        strstr(sdr_last_error(), "/nonexistent-dir/x.safetensors"));
}

/* SD-sized files: ~1100 tensors, each found by name. */
static void test_many(void) {
  enum { N = 1500 };
  static sdr_st_tensor t[N];
  static char names[N][48];
  static float vals[N];
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof names[i], "down_blocks.%d.resnets.%d.conv%d.weight", i / 100,
             (i / 10) % 10, i % 10);
    vals[i] = (float)i;
    t[i] = (sdr_st_tensor){names[i], i % 3 ? SDR_F32 : SDR_F16, 1, {1}, &vals[i], 4};
    if (t[i].dtype == SDR_F16)
      t[i].nbytes = 2; /* the first two bytes of the float: any bits will do */
  }
  char path[512];
  snprintf(path, sizeof path, "%s/many.safetensors", tmpdir);
  CHECK(sdr_safetensors_write(path, t, N) == 0);
  sdr_safetensors *st = sdr_safetensors_open(path);
  CHECK(st && sdr_safetensors_count(st) == N);
  int found = 0;
  for (int i = 0; st && i < N; i++) {
    const sdr_st_tensor *x = sdr_safetensors_find(st, names[i]);
    found += x && x->nbytes == t[i].nbytes && memcmp(x->data, &vals[i], x->nbytes) == 0;
  }
  CHECK(found == N);
  /* Data order puts the wider dtype first, as the Python library writes. */
  CHECK(st && sdr_safetensors_at(st, 0)->dtype == SDR_F32);
  CHECK(st && sdr_safetensors_at(st, N - 1)->dtype == SDR_F16);
  sdr_safetensors_close(st);
}

int main(void) {
  CHECK(mkdtemp(tmpdir) != NULL);
  test_dtypes();
  test_mixed();
  test_python_lib();
  test_hostile();
  test_writer();
  test_many();
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  CHECK(system(cmd) == 0);
  return check_exit();
}

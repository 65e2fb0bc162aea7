/* engine/npy: files numpy wrote, round trips, byte-for-byte agreement with
 * numpy.save, and refusal of broken or hostile headers (never a crash).
 *
 * tests/fixtures/npy/ was written by numpy 1.24 through
 * scripts/reference/make_rng_cases.py; the values are rebuilt here from the
 * same formulas.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include "check.h"
#include "engine/error.h" // sdr_last_error
#include "engine/npy.h"   // sdr_npy_read, sdr_npy_write, sdr_npy_read_memory
#include "kernels/half.h" // sdr_f16_to_f32

#define FIXTURES "tests/fixtures/npy/"

static unsigned char *read_bytes(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  fclose(f);
  *len = b ? (size_t)n : 0;
  return b;
}

static int shape_is(const sdr_npy *a, int ndim, const int64_t *shape) {
  if (a->ndim != ndim)
    return 0;
  for (int i = 0; i < ndim; i++)
    if (a->shape[i] != shape[i])
      return 0;
  return 1;
}

/* ---- files numpy wrote ---------------------------------------------------- */

static void check_numpy_files(void) {
  sdr_npy a;
  CHECK(sdr_npy_read(FIXTURES "f32_2x3.npy", &a) == 0);
  CHECK(a.dtype == SDR_F32 && shape_is(&a, 2, (int64_t[]){2, 3}) && a.count == 6);
  for (int i = 0; i < 6 && a.data; i++)
    CHECK(((float *)a.data)[i] == (float)i * 0.5f - 1);
  sdr_npy_free(&a);
  CHECK(a.data == NULL && a.count == 0);

  CHECK(sdr_npy_read(FIXTURES "f16_4.npy", &a) == 0);
  CHECK(a.dtype == SDR_F16 && shape_is(&a, 1, (int64_t[]){4}));
  for (int i = 0; i < 4 && a.data; i++) /* numpy divides in half precision */
    CHECK(fabsf(sdr_f16_to_f32(((uint16_t *)a.data)[i]) - (float)i / 3) < 1e-3f);
  sdr_npy_free(&a);

  CHECK(sdr_npy_read(FIXTURES "f64_scalar.npy", &a) == 0);
  CHECK(a.dtype == SDR_F64 && a.ndim == 0 && a.count == 1);
  CHECK(a.data && *(double *)a.data == M_PI);
  sdr_npy_free(&a);

  CHECK(sdr_npy_read(FIXTURES "i64_3x1.npy", &a) == 0);
  CHECK(a.dtype == SDR_I64 && shape_is(&a, 2, (int64_t[]){3, 1}));
  for (int i = 0; i < 3 && a.data; i++)
    CHECK(((int64_t *)a.data)[i] == (int64_t)i * -1000000000000);
  sdr_npy_free(&a);

  CHECK(sdr_npy_read(FIXTURES "i32_empty.npy", &a) == 0);
  CHECK(a.dtype == SDR_I32 && shape_is(&a, 1, (int64_t[]){0}) && a.count == 0 && a.data);
  sdr_npy_free(&a);

  CHECK(sdr_npy_read(FIXTURES "i16_2x2.npy", &a) == 0);
  CHECK(a.dtype == SDR_I16 && a.data && ((int16_t *)a.data)[0] == -2 &&
        ((int16_t *)a.data)[3] == 1);
  sdr_npy_free(&a);

  CHECK(sdr_npy_read(FIXTURES "i8_5.npy", &a) == 0);
  CHECK(a.dtype == SDR_I8 && a.data && ((int8_t *)a.data)[0] == -3 && ((int8_t *)a.data)[4] == 1);
  sdr_npy_free(&a);

  CHECK(sdr_npy_read(FIXTURES "u8_2x2x2.npy", &a) == 0);
  CHECK(a.dtype == SDR_U8 && shape_is(&a, 3, (int64_t[]){2, 2, 2}));
  CHECK(a.data && ((uint8_t *)a.data)[7] == 210);
  sdr_npy_free(&a);

  CHECK(sdr_npy_read(FIXTURES "bool_5.npy", &a) == 0);
  CHECK(a.dtype == SDR_BOOL && a.count == 5);
  CHECK(a.data && memcmp(a.data, "\1\0\1\1\0", 5) == 0);
  sdr_npy_free(&a);

  CHECK(sdr_npy_read(FIXTURES "f32_v2_3.npy", &a) == 0); /* format 2.0 */
  CHECK(a.dtype == SDR_F32 && a.count == 3 && a.data && ((float *)a.data)[2] == 2.0f);
  sdr_npy_free(&a);

  CHECK(sdr_npy_read(FIXTURES "f32_2x5x1x1x1x1x1x1.npy", &a) == 0); /* 8 dimensions */
  CHECK(a.ndim == 8 && a.count == 10);
  sdr_npy_free(&a);

  static const char *refused[] = {"bad_fortran_2x3.npy", "bad_bigendian_3.npy",
                                  "bad_structured.npy", "bad_9dims.npy", "missing.npy"};
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    char path[256];
    snprintf(path, sizeof path, FIXTURES "%s", refused[i]);
    a.data = (void *)1; /* must be emptied on failure */
    CHECK(sdr_npy_read(path, &a) < 0);
    CHECK(a.data == NULL);
    CHECK(strstr(sdr_last_error(), refused[i]) != NULL); /* the message names the file */
  }
}

/* ---- writing --------------------------------------------------------------- */

static char tmpdir[256];

static const char *tmp_path(const char *name) {
  static char buf[512];
  snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
  return buf;
}

/* Our file for numpy's values is byte for byte numpy's file. */
static void check_same_bytes_as_numpy(const char *fixture) {
  char path[256];
  snprintf(path, sizeof path, FIXTURES "%s", fixture);
  sdr_npy a;
  size_t want_len = 0, got_len = 0;
  unsigned char *want = read_bytes(path, &want_len);
  CHECK(want != NULL);
  CHECK(sdr_npy_read(path, &a) == 0);
  CHECK(sdr_npy_write(tmp_path("same.npy"), a.dtype, a.ndim, a.shape, a.data) == 0);
  unsigned char *got = read_bytes(tmp_path("same.npy"), &got_len);
  CHECK(got && want && got_len == want_len && memcmp(got, want, want_len) == 0);
  if (!(got && want && got_len == want_len && memcmp(got, want, want_len) == 0))
    fprintf(stderr, "%s: our bytes differ from numpy's\n", fixture);
  sdr_npy_free(&a);
  free(want);
  free(got);
}

static void check_round_trips(void) {
  static const sdr_dtype types[] = {SDR_F32, SDR_F16, SDR_F64, SDR_I64, SDR_I32,
                                    SDR_I16, SDR_I8,  SDR_U8,  SDR_BOOL};
  static const struct {
    int ndim;
    int64_t shape[8];
  } shapes[] = {{0, {0}},    {1, {0}},       {1, {7}},
                {2, {3, 5}}, {3, {2, 0, 4}}, {8, {1, 2, 1, 2, 1, 2, 1, 3}}};
  unsigned char buf[256]; /* the largest case: 24 doubles */
  for (int i = 0; i < 256; i++)
    buf[i] = (unsigned char)(i * 37 % 2);
  for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
      const char *p = tmp_path("round.npy");
      CHECK(sdr_npy_write(p, types[t], shapes[s].ndim, shapes[s].shape, buf) == 0);
      sdr_npy a;
      CHECK(sdr_npy_read(p, &a) == 0);
      CHECK(a.dtype == types[t] && shape_is(&a, shapes[s].ndim, shapes[s].shape));
      CHECK(a.data && memcmp(a.data, buf, a.count * sdr_dtype_size(types[t])) == 0);
      /* numpy's alignment: the data starts at a multiple of 64 */
      size_t len;
      unsigned char *bytes = read_bytes(p, &len);
      CHECK(bytes && (len - a.count * sdr_dtype_size(types[t])) % 64 == 0);
      free(bytes);
      sdr_npy_free(&a);
    }
  }
  check_same_bytes_as_numpy("f32_2x3.npy");
  check_same_bytes_as_numpy("f16_4.npy");
  check_same_bytes_as_numpy("f64_scalar.npy");
  check_same_bytes_as_numpy("i32_empty.npy");
  check_same_bytes_as_numpy("u8_2x2x2.npy");
  check_same_bytes_as_numpy("bool_5.npy");
  check_same_bytes_as_numpy("f32_2x5x1x1x1x1x1x1.npy");

  /* Refusals leave nothing behind, and an existing file is replaced whole. */
  float one = 1.0f;
  CHECK(sdr_npy_write(tmp_path("x.npy"), SDR_BF16, 1, (int64_t[]){1}, &one) < 0);
  CHECK(sdr_npy_write(tmp_path("x.npy"), SDR_F32, 9, (int64_t[9]){1, 1, 1, 1, 1, 1, 1, 1, 1},
                      &one) < 0);
  CHECK(sdr_npy_write(tmp_path("x.npy"), SDR_F32, 1, (int64_t[]){-1}, &one) < 0);
  CHECK(sdr_npy_write(tmp_path("x.npy"), SDR_F32, 2, (int64_t[]){INT64_MAX, 4}, &one) < 0);
  CHECK(sdr_npy_write(tmp_path("x.npy"), SDR_F32, 1, (int64_t[]){3}, NULL) < 0);
  CHECK(sdr_npy_write(tmp_path("no/such/dir/x.npy"), SDR_F32, 1, (int64_t[]){1}, &one) < 0);
  CHECK(strstr(sdr_last_error(), "no/such/dir/x.npy") != NULL);
  CHECK(sdr_npy_write(tmp_path("x.npy"), SDR_F32, 0, NULL, &one) == 0);
  float big[100] = {0};
  CHECK(sdr_npy_write(tmp_path("x.npy"), SDR_F32, 1, (int64_t[]){100}, big) == 0);
  sdr_npy a;
  CHECK(sdr_npy_read(tmp_path("x.npy"), &a) == 0 && a.count == 100);
  sdr_npy_free(&a);
  DIR *d = opendir(tmpdir);
  int files = 0;
  for (struct dirent *e; d && (e = readdir(d));)
    if (e->d_name[0] != '.') {
      files++;
      CHECK(strstr(e->d_name, ".tmp") == NULL); /* no temporary file left */
    }
  if (d)
    closedir(d);
  CHECK(files == 3); /* round.npy, same.npy, x.npy */
}

/* ---- broken and hostile input ---------------------------------------------- */

/* A file with this header text (padded as numpy pads it) and len data bytes. */
static unsigned char *make_file(const char *dict, size_t data_len, size_t *len) {
  size_t dl = strlen(dict), hlen = (10 + dl + 1 + 63) / 64 * 64 - 10;
  *len = 10 + hlen + data_len;
  unsigned char *b = calloc(1, *len);
  memcpy(b, "\x93NUMPY\x01\x00", 8);
  b[8] = (unsigned char)(hlen & 0xff);
  b[9] = (unsigned char)(hlen >> 8);
  memcpy(b + 10, dict, dl);
  memset(b + 10 + dl, ' ', hlen - dl - 1);
  b[10 + hlen - 1] = '\n';
  return b;
}

static int reads(const char *dict, size_t data_len) {
  size_t len;
  unsigned char *b = make_file(dict, data_len, &len);
  sdr_npy a;
  int rc = sdr_npy_read_memory(b, len, &a);
  if (rc == 0)
    sdr_npy_free(&a);
  free(b);
  return rc == 0;
}

static void check_broken(void) {
  /* The helper makes valid files... */
  CHECK(reads("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24));
  CHECK(reads("{\"descr\": \"<i8\", \"shape\": (1,), \"fortran_order\": True}", 8));
  CHECK(reads("{'descr': '|u1', 'fortran_order': False, 'shape': (3L,), }", 3));
  /* ...and these are refused. */
  CHECK(!reads("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 23));
  CHECK(!reads("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 25));
  CHECK(!reads("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, "
               "4294967296), }",
               0));
  CHECK(!reads("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 0));
  CHECK(!reads("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", 0));
  CHECK(!reads("{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", 8));
  CHECK(!reads("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 4));
  CHECK(!reads("{'descr': '<f4', 'fortran_order': False, }", 4));
  CHECK(!reads("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", 4));
  CHECK(!reads("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", 4));
  CHECK(!reads("{'descr': '<f4, 'fortran_order': False, 'shape': (1,), }", 4));
  CHECK(!reads("{'descr': '<f\\4', 'fortran_order': False, 'shape': (1,), }", 4));
  CHECK(!reads("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", 4));
  CHECK(!reads("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", 8));
  CHECK(!reads("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } x", 4));
  CHECK(!reads("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", 4));
  CHECK(!reads("{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}", 4));
  CHECK(!reads("['<f4', False, (1,)]", 4));
  CHECK(!reads("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\xc3\xa9", 4));
  CHECK(reads("{'descr': '|b1', 'fortran_order': False, 'shape': (1,), }", 1)); /* zero: False */
  {
    size_t len;
    unsigned char *b =
        make_file("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", 2, &len);
    b[len - 1] = 2; /* not a bool */
    sdr_npy a;
    CHECK(sdr_npy_read_memory(b, len, &a) < 0 && a.data == NULL);
    free(b);
  }

  /* Every truncation of a valid file and every single-byte change of its
   * prefix and header either reads or fails cleanly (ASan watches). */
  size_t len;
  unsigned char *good =
      make_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24, &len);
  sdr_npy a;
  for (size_t cut = 0; cut < len; cut++) {
    unsigned char *copy = malloc(cut ? cut : 1);
    memcpy(copy, good, cut);
    CHECK(sdr_npy_read_memory(copy, cut, &a) < 0);
    free(copy);
  }
  CHECK(sdr_npy_read_memory(NULL, 10, &a) < 0);
  int accepted = 0;
  static const unsigned char values[] = {0, 1, 2, 0x7f, 0x80, 0xff, '(', ')', ',', '\'', '\n', ' '};
  for (size_t at = 0; at < len - 24; at++) {
    for (size_t v = 0; v < sizeof values; v++) {
      unsigned char *copy = malloc(len);
      memcpy(copy, good, len);
      copy[at] = values[v];
      if (sdr_npy_read_memory(copy, len, &a) == 0) {
        accepted++;
        CHECK(a.count * sdr_dtype_size(a.dtype) <= len);
        sdr_npy_free(&a);
      }
      free(copy);
    }
  }
  CHECK(accepted > 0); /* e.g. padding spaces stay spaces */
  /* Header length larger than the file, and a future format version. */
  good[8] = 0xff;
  CHECK(sdr_npy_read_memory(good, len, &a) < 0);
  good[8] = (unsigned char)(len - 10 - 24);
  good[6] = 4;
  CHECK(sdr_npy_read_memory(good, len, &a) < 0);
  free(good);

  /* The same through a file: truncated data is reported, not read past. */
  unsigned char *f =
      make_file("{'descr': '<f8', 'fortran_order': False, 'shape': (1000,), }", 8000, &len);
  FILE *out = fopen(tmp_path("cut.npy"), "wb");
  CHECK(out && fwrite(f, 1, len - 1, out) == len - 1);
  if (out)
    fclose(out);
  CHECK(sdr_npy_read(tmp_path("cut.npy"), &a) < 0);
  CHECK(strstr(sdr_last_error(), "7999") != NULL);
  unlink(tmp_path("cut.npy"));
  free(f);
  CHECK(sdr_npy_read(tmpdir, &a) < 0); /* a directory */
}

int main(void) {
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/sdr_npy_XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  check_numpy_files();
  check_round_trips();
  check_broken();
  static const char *names[] = {"round.npy", "same.npy", "x.npy"};
  for (size_t i = 0; i < 3; i++)
    unlink(tmp_path(names[i]));
  rmdir(tmpdir);
  return check_exit();
}

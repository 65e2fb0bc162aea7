/* engine/image_jpeg: JPEG files open with Pillow's pixels, to the byte, and files that leave
 * out or misname their Huffman and quantisation tables open where Pillow opens them and are
 * refused where it refuses them (tests/fixtures/jpeg, scripts/reference/make_jpeg_cases.py,
 * Pillow 13 with its libjpeg-turbo). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "check.h"
#include "engine/error.h"      // sdr_last_error
#include "engine/image.h"      // sdr_image_decode
#include "engine/image_jpeg.h" // sdr_jpeg_is, sdr_jpeg_write
#include "test_image_npy.h"    // read_whole, npy_load_image_at, image_max_diff

static const char *case_path(const char *file) { return fixture_in("jpeg", file); }

static sdr_image *open_case(const char *file) {
  size_t len = 0;
  char *data = read_whole(case_path(file), &len);
  CHECK(data != NULL);
  sdr_image *img = data ? sdr_image_decode((const uint8_t *)data, len, file) : NULL;
  free(data);
  return img;
}

static void test_cases(void) {
  cJSON *manifest = fixture_manifest("jpeg");
  CHECK(manifest != NULL);
  const cJSON *cases = cJSON_GetObjectItem(manifest, "cases"), *c;
  CHECK(cJSON_GetArraySize(cases) == 17);
  cJSON_ArrayForEach(c, cases) {
    const char *file = cJSON_GetStringValue(cJSON_GetObjectItem(c, "file"));
    const char *verdict = cJSON_GetStringValue(cJSON_GetObjectItem(c, "verdict"));
    sdr_image *img = open_case(file);
    if (strcmp(verdict, "ok") == 0) {
      if (!img)
        fprintf(stderr, "%s: Pillow opens it; here: %s\n", file, sdr_last_error());
      /* CMYK opens as RGB here: the pixels are Pillow's convert("RGB") */
      sdr_image *want =
          npy_load_image_at(case_path(cJSON_GetStringValue(cJSON_GetObjectItem(c, "expect"))));
      int d = image_max_diff(file, img, want, 0);
      printf("%-26s %-4s max difference from Pillow %d\n", file,
             cJSON_GetStringValue(cJSON_GetObjectItem(c, "mode")), d);
      CHECK(d == 0);
      sdr_image_free(want);
    } else {
      if (img)
        fprintf(stderr, "%s: Pillow refuses it (%s); here it opened\n", file,
                cJSON_GetStringValue(cJSON_GetObjectItem(c, "message")));
      CHECK(img == NULL);
      CHECK(strstr(sdr_last_error(), file) != NULL);
      printf("%-26s refused: %s\n", file, sdr_last_error());
    }
    sdr_image_free(img);
  }
  cJSON_Delete(manifest);
}

/* Pillow's unoptimised tables are the standard's: the file without them is the same picture. */
static void test_standard_tables(void) {
  sdr_image *with = open_case("base.jpg"), *without = open_case("base_no_dht.jpg");
  CHECK(image_max_diff("standard tables", without, with, 0) == 0);
  sdr_image_free(with);
  sdr_image_free(without);
}

/* Cut anywhere, damaged files are refused (or, past the last scan, still whole); never a
 * crash, never stb's decoder. */
static void test_cut_files(void) {
  const char *files[] = {"progressive.jpg", "cmyk.jpg", "scan_dc_table_2.jpg", "no_dqt.jpg"};
  for (int f = 0; f < 4; f++) {
    size_t len;
    char *data = read_whole(case_path(files[f]), &len);
    CHECK(data != NULL);
    for (size_t n = 0; data && n < len; n += 5) {
      sdr_image *img = sdr_image_decode((const uint8_t *)data, n, files[f]);
      CHECK(img == NULL && strstr(sdr_last_error(), files[f]) != NULL);
      sdr_image_free(img);
    }
    free(data);
  }
}

/* Image.save's JPEG is Pillow's, byte for byte (quality 75, 4:2:0, a JFIF header). */
static void test_save_bytes(void) {
  cJSON *manifest = fixture_manifest("jpeg");
  const cJSON *saves = cJSON_GetObjectItem(manifest, "saves"), *c;
  CHECK(cJSON_GetArraySize(saves) == 3);
  cJSON_ArrayForEach(c, saves) {
    const char *file = cJSON_GetStringValue(cJSON_GetObjectItem(c, "file"));
    sdr_image *src =
        npy_load_image_at(case_path(cJSON_GetStringValue(cJSON_GetObjectItem(c, "source"))));
    size_t want_len = 0, got_len = 0;
    char *want = read_whole(case_path(file), &want_len);
    uint8_t *got = NULL;
    CHECK(src && want && sdr_jpeg_write(src, 75, &got, &got_len) == 0);
    int same = got && want && got_len == want_len && memcmp(got, want, got_len) == 0;
    printf("%-26s %zu bytes, Pillow's %zu: %s\n", file, got_len, want_len,
           same ? "the same" : "different");
    CHECK(same);
    free(got);
    free(want);
    sdr_image_free(src);
  }
  cJSON_Delete(manifest);
}

static void test_recognised(void) {
  CHECK(sdr_jpeg_is((const uint8_t *)"\xff\xd8\xff", 3));
  CHECK(sdr_jpeg_is((const uint8_t *)"\xff\xff\xd8", 3)); /* libjpeg's to refuse, not stb's */
  CHECK(!sdr_jpeg_is((const uint8_t *)"\xff", 1));
  CHECK(!sdr_jpeg_is((const uint8_t *)"\x89PNG", 4));
}

int main(void) {
  test_cases();
  test_standard_tables();
  test_cut_files();
  test_save_bytes();
  test_recognised();
  return check_exit();
}

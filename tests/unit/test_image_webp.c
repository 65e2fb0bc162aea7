/* engine/image_webp: WebP files open with Pillow's mode and pixels, to the byte (lossy and
 * lossless, with and without alpha, an animation's first frame, the EXIF orientation
 * load_image turns upright by: tests/fixtures/webp,
 * scripts/reference/make_webp_cases.py, Pillow 13), and files cut short are refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "check.h"
#include "engine/error.h"   // sdr_last_error
#include "engine/image.h"   // sdr_image_decode
#include "test_image_npy.h" // read_whole, npy_load_image_at, image_max_diff

static const char *path_of(const char *file) { return fixture_in("webp", file); }

int main(void) {
  size_t len;
  cJSON *m = fixture_manifest("webp");
  CHECK(m != NULL);
  const cJSON *c;
  int n = 0;
  cJSON_ArrayForEach(c, cJSON_GetObjectItem(m, "cases")) {
    const char *file = cJSON_GetStringValue(cJSON_GetObjectItem(c, "file"));
    const char *mode = cJSON_GetStringValue(cJSON_GetObjectItem(c, "mode"));
    char *data = read_whole(path_of(file), &len);
    CHECK(data != NULL);
    sdr_image *got = data ? sdr_image_decode((const uint8_t *)data, len, file) : NULL;
    if (!got)
      fprintf(stderr, "%s: %s\n", file, sdr_last_error());
    sdr_image *want =
        npy_load_image_at(path_of(cJSON_GetStringValue(cJSON_GetObjectItem(c, "expect"))));
    int d = image_max_diff(file, got, want, 0);
    printf("%-20s %-4s max difference from Pillow %d\n", file, mode, d);
    CHECK(d == 0);
    CHECK(got && got->channels == (strcmp(mode, "RGBA") == 0 ? 4 : 3));
    CHECK(got && got->orientation == cJSON_GetObjectItem(c, "orientation")->valueint);
    /* cut anywhere: refused, never a crash */
    for (size_t k = 0; data && k < len; k += 37) {
      sdr_image *cut = sdr_image_decode((const uint8_t *)data, k, file);
      CHECK(cut == NULL && strstr(sdr_last_error(), file));
      sdr_image_free(cut);
    }
    sdr_image_free(got);
    sdr_image_free(want);
    free(data);
    n++;
  }
  CHECK(n == 7);
  cJSON_Delete(m);
  return check_exit();
}

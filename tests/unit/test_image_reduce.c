/* engine/image_reduce, image_resize's reducing_gap and image_thumbnail against Pillow 13
 * (tests/fixtures/pil_reduce, scripts/reference/make_reduce_cases.py): Image.reduce over every
 * factor Pillow has its own code for, with and without a box; resize(reducing_gap=...) for
 * each filter; Image.thumbnail's sizes and pixels. L, RGB and RGBA; to the byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "check.h"
#include "engine/error.h"   // sdr_last_error
#include "engine/image.h"   // sdr_image_reduce, sdr_image_resize_gap, sdr_image_thumbnail_size
#include "test_image_npy.h" // read_whole, npy_load_image_at, image_max_diff

static sdr_image *src[3]; /* l, rgb, rgba */

static const char *path_of(const char *file) { return fixture_in("pil_reduce", file); }

static sdr_image *source(const cJSON *c) {
  const char *k = cJSON_GetStringValue(cJSON_GetObjectItem(c, "src"));
  return src[strcmp(k, "l") == 0 ? 0 : strcmp(k, "rgb") == 0 ? 1 : 2];
}

static int compare(const cJSON *c, const char *what, sdr_image *got) {
  const char *file = cJSON_GetStringValue(cJSON_GetObjectItem(c, "file"));
  sdr_image *want = npy_load_image_at(path_of(file));
  char label[256];
  snprintf(label, sizeof label, "%s %s", what, file);
  if (!got)
    fprintf(stderr, "%s: %s\n", label, sdr_last_error());
  int d = image_max_diff(label, got, want, 0);
  sdr_image_free(want);
  sdr_image_free(got);
  return d;
}

static double number(const cJSON *c, const char *key) {
  return cJSON_GetNumberValue(cJSON_GetObjectItem(c, key));
}

/* reducing_gap: a number, or 0 for None */
static double gap_of(const cJSON *c) {
  const cJSON *g = cJSON_GetObjectItem(c, "reducing_gap");
  return cJSON_IsNumber(g) ? g->valuedouble : 0;
}

/* A list of 4 numbers, or 0 for null. */
static int box_of(const cJSON *c, double box[4]) {
  const cJSON *b = cJSON_GetObjectItem(c, "box");
  if (!cJSON_IsArray(b))
    return 0;
  for (int i = 0; i < 4; i++)
    box[i] = cJSON_GetArrayItem(b, i)->valuedouble;
  return 1;
}

int main(void) {
  cJSON *m = fixture_manifest("pil_reduce");
  CHECK(m != NULL);
  if (!m)
    return check_exit();
  const char *names[3] = {"src_l.npy", "src_rgb.npy", "src_rgba.npy"};
  for (int i = 0; i < 3; i++)
    CHECK((src[i] = npy_load_image_at(path_of(names[i]))) != NULL);

  int worst = 0, n = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, cJSON_GetObjectItem(m, "reduce")) {
    const cJSON *f = cJSON_GetObjectItem(c, "factor");
    double b[4];
    int box[4], has_box = box_of(c, b);
    for (int i = 0; i < 4; i++)
      box[i] = (int)b[i];
    int d = compare(c, "reduce",
                    sdr_image_reduce(source(c), cJSON_GetArrayItem(f, 0)->valueint,
                                     cJSON_GetArrayItem(f, 1)->valueint, has_box ? box : NULL));
    worst = d > worst ? d : worst, n++;
  }
  cJSON_ArrayForEach(c, cJSON_GetObjectItem(m, "resize")) {
    const cJSON *s = cJSON_GetObjectItem(c, "size");
    double box[4];
    int has_box = box_of(c, box);
    int d =
        compare(c, "resize",
                sdr_image_resize_gap(source(c), cJSON_GetArrayItem(s, 0)->valueint,
                                     cJSON_GetArrayItem(s, 1)->valueint, (int)number(c, "resample"),
                                     has_box ? box : NULL, number(c, "reducing_gap")));
    worst = d > worst ? d : worst, n++;
  }
  cJSON_ArrayForEach(c, cJSON_GetObjectItem(m, "thumbnail")) {
    const cJSON *s = cJSON_GetObjectItem(c, "size"), *r = cJSON_GetObjectItem(c, "result");
    sdr_image *img = source(c);
    int w = img->width, h = img->height;
    int fits = sdr_image_thumbnail_size(img, cJSON_GetArrayItem(s, 0)->valuedouble,
                                        cJSON_GetArrayItem(s, 1)->valuedouble, &w, &h);
    CHECK(fits >= 0);
    if (w != cJSON_GetArrayItem(r, 0)->valueint || h != cJSON_GetArrayItem(r, 1)->valueint)
      fprintf(stderr, "thumbnail %s: %dx%d, Pillow's %dx%d\n",
              cJSON_GetStringValue(cJSON_GetObjectItem(c, "file")), w, h,
              cJSON_GetArrayItem(r, 0)->valueint, cJSON_GetArrayItem(r, 1)->valueint);
    CHECK(w == cJSON_GetArrayItem(r, 0)->valueint && h == cJSON_GetArrayItem(r, 1)->valueint);
    sdr_image *t =
        fits == 0 ? sdr_image_copy(img)
                  : sdr_image_resize_gap(img, w, h, (int)number(c, "resample"), NULL, gap_of(c));
    int d = compare(c, "thumbnail", t);
    worst = d > worst ? d : worst, n++;
  }
  printf("%d cases of reduce, resize(reducing_gap) and thumbnail: largest difference from Pillow "
         "%d\n",
         n, worst);
  CHECK(n == 3 * (17 + 9 + 8));
  CHECK(worst == 0);

  /* errors, in Pillow's words */
  int w, h;
  CHECK(sdr_image_reduce(src[1], 0, 2, NULL) == NULL &&
        strstr(sdr_last_error(), "scale must be > 0"));
  const int outside[4] = {0, 0, 200, 10};
  CHECK(sdr_image_reduce(src[1], 2, 2, outside) == NULL &&
        strstr(sdr_last_error(), "can't exceed original image size"));
  CHECK(sdr_image_resize_gap(src[1], 10, 10, SDR_RESAMPLE_BICUBIC, NULL, 0.5) == NULL &&
        strstr(sdr_last_error(), "reducing_gap must be 1.0 or greater"));
  CHECK(sdr_image_thumbnail_size(src[1], 0, 10, &w, &h) < 0);
  for (int i = 0; i < 3; i++)
    sdr_image_free(src[i]);
  cJSON_Delete(m);
  return check_exit();
}

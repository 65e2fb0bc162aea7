/* engine/image: our convert, resize, crop, paste and decode against Pillow's own
 * answers (tests/fixtures/pil, made by scripts/reference/make_pil_fixtures.py).
 * Prints the largest difference per resize filter; any difference fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "check.h"
#include "engine/error.h" // sdr_last_error
#include "engine/image.h" // sdr_image_*
#include "test_image_npy.h"

enum { NSOURCES = 3 };
static const char *source_names[NSOURCES] = {"rgb", "rgba", "l"};
static sdr_image *sources[NSOURCES];

static const sdr_image *source(const char *name) {
  for (int i = 0; i < NSOURCES; i++)
    if (name && strcmp(name, source_names[i]) == 0)
      return sources[i];
  fprintf(stderr, "unknown source %s\n", name ? name : "(null)");
  return NULL;
}

static const char *str(const cJSON *o, const char *key) {
  return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static int num(const cJSON *o, const char *key) {
  return (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static int num_at(const cJSON *o, const char *key, int i) {
  return (int)cJSON_GetNumberValue(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, key), i));
}

/* Compares got with the fixture file of case c; 0 tolerance unless given. */
static int expect(const char *what, const sdr_image *got, const cJSON *c, const char *key,
                  int tol) {
  sdr_image *want = npy_load_image(str(c, key));
  int d = image_max_diff(what, got, want, tol);
  if (d > tol)
    check_failures++;
  sdr_image_free(want);
  return d;
}

static void test_convert(const cJSON *cases) {
  const cJSON *c;
  int n = 0;
  cJSON_ArrayForEach(c, cases) {
    const sdr_image *src = source(str(c, "src"));
    sdr_image *got = src ? sdr_image_convert(src, sdr_image_mode_channels(str(c, "mode"))) : NULL;
    expect(str(c, "file"), got, c, "file", 0);
    sdr_image_free(got);
    n++;
  }
  printf("convert: %d cases\n", n);
  CHECK(n == 6);
}

static void test_resize(const cJSON *cases) {
  /* Indexed by Pillow's filter numbers. */
  int maxd[6] = {0}, count[6] = {0};
  const char *names[6] = {0};
  const cJSON *c;
  cJSON_ArrayForEach(c, cases) {
    const sdr_image *src = source(str(c, "src"));
    int f = num(c, "filter");
    CHECK(f >= 0 && f < 6);
    if (!src || f < 0 || f >= 6)
      continue;
    sdr_image *got = sdr_image_resize(src, num_at(c, "size", 0), num_at(c, "size", 1), f);
    if (!got)
      fprintf(stderr, "%s: %s\n", str(c, "file"), sdr_last_error());
    int d = expect(str(c, "file"), got, c, "file", 0);
    if (d > maxd[f])
      maxd[f] = d;
    count[f]++;
    names[f] = str(c, "filter_name");
    sdr_image_free(got);
  }
  for (int f = 0; f < 6; f++) {
    printf("resize %-8s: %2d cases, max difference from Pillow %d\n", names[f] ? names[f] : "?",
           count[f], maxd[f]);
    CHECK(count[f] > 0);
  }
}

static void test_crop(const cJSON *cases) {
  const cJSON *c;
  cJSON_ArrayForEach(c, cases) {
    const sdr_image *src = source(str(c, "src"));
    sdr_image *got = src ? sdr_image_crop(src, num_at(c, "box", 0), num_at(c, "box", 1),
                                          num_at(c, "box", 2), num_at(c, "box", 3))
                         : NULL;
    expect(str(c, "file"), got, c, "file", 0);
    sdr_image_free(got);
  }
}

static void test_paste(const cJSON *cases) {
  const cJSON *c;
  cJSON_ArrayForEach(c, cases) {
    int l = num_at(c, "box", 0), u = num_at(c, "box", 1), r = num_at(c, "box", 2),
        b = num_at(c, "box", 3);
    const sdr_image *dst0 = source(str(c, "dst")), *src0 = source(str(c, "src"));
    const char *mask_name = str(c, "mask");
    if (!dst0 || !src0)
      continue;
    sdr_image *dst = sdr_image_copy(dst0), *src = sdr_image_crop(src0, l, u, r, b);
    sdr_image *mask = mask_name ? sdr_image_crop(source(mask_name), l, u, r, b) : NULL;
    int rc = sdr_image_paste(dst, src, num_at(c, "at", 0), num_at(c, "at", 1), mask);
    CHECK(rc == 0);
    expect(str(c, "file"), dst, c, "file", 0);
    sdr_image_free(dst);
    sdr_image_free(src);
    sdr_image_free(mask);
  }
}

/* paste(color, box, mask); the mask is the top left of a source, the box's size. */
static void test_paste_color(const cJSON *cases) {
  const cJSON *c;
  int n = 0;
  cJSON_ArrayForEach(c, cases) {
    int l = num_at(c, "box", 0), u = num_at(c, "box", 1), r = num_at(c, "box", 2),
        b = num_at(c, "box", 3);
    const sdr_image *dst0 = source(str(c, "dst"));
    const char *mask_name = str(c, "mask");
    if (!dst0)
      continue;
    uint8_t color[4] = {0};
    for (int i = 0; i < 4 && i < cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(c, "color"));
         i++)
      color[i] = (uint8_t)num_at(c, "color", i);
    sdr_image *dst = sdr_image_copy(dst0);
    sdr_image *mask = mask_name ? sdr_image_crop(source(mask_name), 0, 0, r - l, b - u) : NULL;
    CHECK(sdr_image_paste_color(dst, color, l, u, r, b, mask) == 0);
    expect(str(c, "file"), dst, c, "file", 0);
    sdr_image_free(dst);
    sdr_image_free(mask);
    n++;
  }
  CHECK(n == 6);
}

static void test_decode(const cJSON *cases) {
  const cJSON *c;
  cJSON_ArrayForEach(c, cases) {
    const char *file = str(c, "file");
    sdr_image *got = sdr_image_load(fixture_path(file));
    if (!got) {
      fprintf(stderr, "%s: %s\n", file, sdr_last_error());
      check_failures++;
      continue;
    }
    int tol = num(c, "tolerance");
    int d = expect(file, got, c, "expect", tol);
    printf("decode %-14s %dx%d %-4s max difference from Pillow %d (allowed %d)\n", file, got->width,
           got->height, sdr_image_mode_name(got->channels), d, tol);
    const char *want = str(c, "parameters");
    if (want) {
      CHECK_STR(got->parameters, want);
    } else {
      CHECK(got->parameters == NULL);
    }
    sdr_image_free(got);
  }
}

/* The comparison must be able to fail: a wrong filter and a one-level change are caught. */
static void test_comparison_fails(const cJSON *resize_cases) {
  const cJSON *c;
  cJSON_ArrayForEach(c, resize_cases) {
    if (strcmp(str(c, "filter_name"), "BICUBIC") != 0 || num_at(c, "size", 0) != 18)
      continue;
    sdr_image *want = npy_load_image(str(c, "file"));
    sdr_image *wrong =
        sdr_image_resize(source(str(c, "src")), want->width, want->height, SDR_RESAMPLE_BILINEAR);
    fprintf(stderr, "(expected mismatch report follows)\n");
    CHECK(image_max_diff("bilinear vs bicubic", wrong, want, 0) > 0);
    sdr_image *off_by_one = sdr_image_copy(want);
    off_by_one->pixels[7] ^= 1;
    CHECK(image_max_diff("one level off", off_by_one, want, 0) == 1);
    sdr_image_free(off_by_one);
    sdr_image_free(wrong);
    sdr_image_free(want);
    return;
  }
  CHECK(!"no BICUBIC 18-wide case in the manifest");
}

int main(void) {
  size_t len;
  char *text = read_whole(fixture_path("manifest.json"), &len);
  cJSON *m = text ? cJSON_Parse(text) : NULL;
  free(text);
  if (!m) {
    fprintf(stderr, "cannot read %s\n", fixture_path("manifest.json"));
    return 1;
  }
  printf("fixtures from Pillow %s\n", str(m, "pillow"));
  const cJSON *srcs = cJSON_GetObjectItemCaseSensitive(m, "sources");
  for (int i = 0; i < NSOURCES; i++) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(srcs, source_names[i]);
    sources[i] = npy_load_image(str(s, "file"));
    CHECK(sources[i] && sources[i]->channels == sdr_image_mode_channels(str(s, "mode")));
    if (!sources[i])
      return check_exit();
  }
  test_convert(cJSON_GetObjectItemCaseSensitive(m, "convert"));
  test_resize(cJSON_GetObjectItemCaseSensitive(m, "resize"));
  test_crop(cJSON_GetObjectItemCaseSensitive(m, "crop"));
  test_paste(cJSON_GetObjectItemCaseSensitive(m, "paste"));
  test_paste_color(cJSON_GetObjectItemCaseSensitive(m, "paste_color"));
  test_decode(cJSON_GetObjectItemCaseSensitive(m, "decode"));
  test_comparison_fails(cJSON_GetObjectItemCaseSensitive(m, "resize"));
  for (int i = 0; i < NSOURCES; i++)
    sdr_image_free(sources[i]);
  cJSON_Delete(m);
  return check_exit();
}

/* tests/unit/test_image_npy.h — the PIL fixtures: .npy arrays as images, and pixel comparison.
 *
 * scripts/reference/make_pil_fixtures.py saves Pillow's inputs and outputs
 * as uint8 .npy files of shape (H, W) for L or (H, W, C), listed in
 * tests/fixtures/pil/manifest.json. Only that dialect is read here.
 */
#ifndef SDR_TESTS_IMAGE_NPY_H
#define SDR_TESTS_IMAGE_NPY_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "engine/image.h" // sdr_image

/* tests/fixtures/<dir>/<name>, in a buffer the next call reuses. */
static inline const char *fixture_in(const char *dir, const char *name) {
  const char *root = getenv("SDREPL_SOURCE_DIR");
  static char buf[4096];
  snprintf(buf, sizeof buf, "%s/tests/fixtures/%s/%s", root ? root : ".", dir, name);
  return buf;
}

static inline const char *fixture_path(const char *name) { return fixture_in("pil", name); }

static char *read_whole(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  size_t cap = 1 << 16, n = 0;
  char *data = malloc(cap + 1);
  size_t got;
  while (data && (got = fread(data + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) {
      char *p = realloc(data, 2 * cap + 1);
      if (!p) {
        free(data);
        data = NULL;
        break;
      }
      data = p;
      cap *= 2;
    }
  }
  fclose(f);
  if (data)
    data[n] = 0;
  *len = n;
  return data;
}

/* tests/fixtures/<dir>/manifest.json, parsed; NULL (with a message) when unreadable. */
static inline cJSON *fixture_manifest(const char *dir) {
  size_t len;
  char *text = read_whole(fixture_in(dir, "manifest.json"), &len);
  cJSON *m = text ? cJSON_Parse(text) : NULL;
  free(text);
  if (!m)
    fprintf(stderr, "cannot read tests/fixtures/%s/manifest.json\n", dir);
  return m;
}

/* A uint8 (H, W) or (H, W, C) .npy file at path as an image; NULL (and a message)
 * otherwise. */
static sdr_image *npy_load_image_at(const char *path) {
  const char *name = path;
  size_t len;
  char *data = read_whole(path, &len);
  if (!data || len < 10 || memcmp(data, "\x93NUMPY", 6) != 0) {
    fprintf(stderr, "%s: not an .npy file\n", name);
    free(data);
    return NULL;
  }
  size_t hlen, off;
  const unsigned char *u = (const unsigned char *)data;
  if (u[6] == 1) {
    hlen = u[8] | (size_t)u[9] << 8;
    off = 10;
  } else {
    hlen = u[8] | (size_t)u[9] << 8 | (size_t)u[10] << 16 | (size_t)u[11] << 24;
    off = 12;
  }
  char header[512];
  if (hlen >= sizeof header || off + hlen > len) {
    fprintf(stderr, "%s: bad .npy header\n", name);
    free(data);
    return NULL;
  }
  memcpy(header, data + off, hlen);
  header[hlen] = 0;
  int h = 0, w = 0, c = 1;
  const char *shape = strstr(header, "'shape': (");
  if (!strstr(header, "'|u1'") || !strstr(header, "'fortran_order': False") || !shape ||
      sscanf(shape, "'shape': (%d, %d, %d)", &h, &w, &c) < 2) {
    fprintf(stderr, "%s: not a C-ordered uint8 image array: %s\n", name, header);
    free(data);
    return NULL;
  }
  sdr_image *img = sdr_image_new(w, h, c);
  if (img && off + hlen + sdr_image_bytes(img) == len)
    memcpy(img->pixels, data + off + hlen, sdr_image_bytes(img));
  else if (img) {
    fprintf(stderr, "%s: %zu data bytes for shape (%d, %d, %d)\n", name, len - off - hlen, h, w, c);
    sdr_image_free(img);
    img = NULL;
  }
  free(data);
  return img;
}

/* The same for a file of tests/fixtures/pil. */
static inline sdr_image *npy_load_image(const char *name) {
  return npy_load_image_at(fixture_path(name));
}

/* Largest per-channel difference between got and want, printing the first few
 * pixels that differ by more than tol (or a size/mode mismatch, as 256). */
static int image_max_diff(const char *what, const sdr_image *got, const sdr_image *want, int tol) {
  if (!got || !want) {
    fprintf(stderr, "%s: missing image\n", what);
    return 256;
  }
  if (got->width != want->width || got->height != want->height || got->channels != want->channels) {
    fprintf(stderr, "%s: got %dx%d %s, want %dx%d %s\n", what, got->width, got->height,
            sdr_image_mode_name(got->channels), want->width, want->height,
            sdr_image_mode_name(want->channels));
    return 256;
  }
  int maxd = 0, shown = 0;
  long bad = 0;
  for (int y = 0; y < got->height; y++)
    for (int x = 0; x < got->width; x++)
      for (int c = 0; c < got->channels; c++) {
        size_t i = ((size_t)y * (size_t)got->width + (size_t)x) * (size_t)got->channels + (size_t)c;
        int d = abs((int)got->pixels[i] - (int)want->pixels[i]);
        if (d > maxd)
          maxd = d;
        if (d > tol) {
          bad++;
          if (shown++ < 5)
            fprintf(stderr, "%s: pixel (%d, %d) channel %d: got %d, want %d\n", what, x, y, c,
                    got->pixels[i], want->pixels[i]);
        }
      }
  if (bad > 5)
    fprintf(stderr, "%s: ... %ld values differ by more than %d\n", what, bad, tol);
  return maxd;
}

#endif

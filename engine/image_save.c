/* engine/image_save.c — Image.save: PNG or JPEG by extension, written atomically.
 *
 * The format follows the extension as in PIL (.png; .jpg and .jpeg at PIL's
 * default quality of 75). The bytes are encoded in memory, written to a new
 * file beside the target, flushed to disk, and renamed over the target. A
 * rename within one folder is atomic, so a reader (or a crash, or Ctrl-C)
 * sees the old file or the whole new one, never half of one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <stb_image_write.h>

#include "engine/atomic_file.h" // sdr_write_file_atomic
#include "engine/error.h" // sdr_fail
#include "engine/image.h" // sdr_image, sdr_image_save, sdr_image_encode_png

enum { JPEG_QUALITY = 75 }; /* PIL's default */

typedef struct {
  uint8_t *data;
  size_t len, cap;
  int failed;
} jpeg_buf;

static void jpeg_append(void *ctx, void *data, int size) {
  jpeg_buf *b = ctx;
  if (b->failed || size <= 0)
    return;
  if (b->len + (size_t)size > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + (size_t)size)
      cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
      b->failed = 1;
      return;
    }
    b->data = p;
    b->cap = cap;
  }
  memcpy(b->data + b->len, data, (size_t)size);
  b->len += (size_t)size;
}

static int encode_jpeg(const sdr_image *img, uint8_t **out, size_t *out_len) {
  if (img->channels == 4)
    return sdr_fail("cannot write mode RGBA as JPEG (convert it to RGB first)");
  if (img->width < 1 || img->height < 1)
    return sdr_fail("cannot encode an empty %dx%d image", img->width, img->height);
  jpeg_buf b = {0};
  if (!stbi_write_jpg_to_func(jpeg_append, &b, img->width, img->height, img->channels, img->pixels,
                              JPEG_QUALITY) ||
      b.failed) {
    free(b.data);
    return sdr_fail(b.failed ? "out of memory encoding JPEG" : "JPEG encoder failed");
  }
  *out = b.data;
  *out_len = b.len;
  return 0;
}

/* The extension of the last path component, without the dot ("" when none). */
static const char *extension(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  const char *dot = strrchr(base, '.');
  return dot && dot != base ? dot + 1 : "";
}

int sdr_image_save(const sdr_image *img, const char *path) {
  const char *ext = extension(path);
  int png = strcasecmp(ext, "png") == 0;
  if (!png && strcasecmp(ext, "jpg") != 0 && strcasecmp(ext, "jpeg") != 0) {
    if (!*ext)
      return sdr_fail("cannot save %s: no file extension (use .png, .jpg or .jpeg)", path);
    return sdr_fail("cannot save %s: unknown file extension '.%s' (use .png, .jpg or .jpeg)", path,
                    ext);
  }
  uint8_t *data = NULL;
  size_t len = 0;
  if ((png ? sdr_image_encode_png(img, &data, &len) : encode_jpeg(img, &data, &len)) != 0)
    return sdr_fail_prefix("cannot save %s: ", path);
  int rc = sdr_write_file_atomic(path, data, len);
  free(data);
  return rc;
}

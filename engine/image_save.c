/* engine/image_save.c — Image.save: PNG or JPEG by extension, written atomically.
 *
 * The format follows the extension as in PIL (.png; .jpg and .jpeg at PIL's
 * default quality of 75, by the same libjpeg: the same bytes). The bytes are encoded in memory,
 * written to a new file beside the target, flushed to disk, and renamed over the target. A rename
 * within one folder is atomic, so a reader (or a crash, or Ctrl-C) sees the old file or the whole
 * new one, never half of one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/atomic_file.h" // sdr_write_file_atomic
#include "engine/error.h"       // sdr_fail
#include "engine/image.h"       // sdr_image, sdr_image_save, sdr_image_encode_png
#include "engine/image_jpeg.h"  // sdr_jpeg_write

enum { JPEG_QUALITY = 75 }; /* PIL's default */

static int encode_jpeg(const sdr_image *img, uint8_t **out, size_t *out_len) {
  if (img->channels == 4)
    return sdr_fail("cannot write mode RGBA as JPEG (convert it to RGB first)");
  if (img->width < 1 || img->height < 1)
    return sdr_fail("cannot encode an empty %dx%d image", img->width, img->height);
  return sdr_jpeg_write(img, JPEG_QUALITY, out, out_len);
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

/* engine/image: decoding, PNG encoding with the parameters chunk, and saving.
 * Round trips, damaged and hostile files, and the atomic save. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "check.h"
#include "engine/error.h"     // sdr_last_error
#include "engine/image.h"     // sdr_image_*
#include "engine/image_png.h" // sdr_png_read_parameters

static int contains(const char *s, const char *part) { return s && strstr(s, part) != NULL; }

static sdr_image *pattern(int w, int h, int channels) {
  sdr_image *img = sdr_image_new(w, h, channels);
  for (size_t i = 0; img && i < sdr_image_bytes(img); i++)
    img->pixels[i] = (uint8_t)(i * 7 + i / 3);
  return img;
}

static int same_pixels(const sdr_image *a, const sdr_image *b) {
  return a && b && a->width == b->width && a->height == b->height && a->channels == b->channels &&
         memcmp(a->pixels, b->pixels, sdr_image_bytes(a)) == 0;
}

/* The type of the chunk after IHDR in an encoded PNG. */
static int second_chunk_is(const uint8_t *png, size_t len, const char *type) {
  return len > 41 && memcmp(png + 37, type, 4) == 0;
}

static void test_png_round_trip(void) {
  for (int ch = 1; ch <= 4; ch++) {
    if (ch == 2)
      continue;
    sdr_image *img = pattern(13, 7, ch);
    uint8_t *png;
    size_t len;
    CHECK(sdr_image_encode_png(img, &png, &len) == 0);
    CHECK(second_chunk_is(png, len, "IDAT"));
    sdr_image *back = sdr_image_decode(png, len, "round.png");
    CHECK(same_pixels(img, back)); /* grey stays L, alpha stays */
    CHECK(back && back->parameters == NULL);
    sdr_image_free(back);
    free(png);
    sdr_image_free(img);
  }
  /* How the text is stored follows PIL's add_text: tEXt when Latin-1 holds it. */
  static const struct {
    const char *text, *chunk;
  } texts[] = {
      {"a photo of a cat\nSteps: 20, Sampler: PNDM, Seed: 1", "tEXt"},
      {"caf\xc3\xa9 au lait", "tEXt"},               /* é fits Latin-1 */
      {"un chat \xe2\x80\x94 \xe7\x8c\xab", "iTXt"}, /* — and 猫 do not */
      {"", "tEXt"},
      {"broken \xff utf-8", "iTXt"}, /* kept byte for byte */
  };
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    sdr_image *img = pattern(5, 4, 3);
    sdr_image_set_parameters(img, texts[i].text);
    uint8_t *png;
    size_t len;
    CHECK(sdr_image_encode_png(img, &png, &len) == 0);
    CHECK(second_chunk_is(png, len, texts[i].chunk));
    sdr_image *back = sdr_image_decode(png, len, "text.png");
    CHECK(same_pixels(img, back));
    CHECK_STR(back ? back->parameters : NULL, texts[i].text);
    sdr_image_free(back);
    free(png);
    sdr_image_free(img);
  }
  sdr_image *empty = sdr_image_new(0, 3, 3);
  uint8_t *png = (uint8_t *)"x";
  size_t len = 1;
  CHECK(sdr_image_encode_png(empty, &png, &len) != 0 && png == NULL && len == 0);
  CHECK(contains(sdr_last_error(), "empty"));
  sdr_image_free(empty);
}

/* A PNG holding extra chunks put together by hand: signature, IHDR etc. from an
 * encoded image, then `extra` spliced in after IHDR. */
static uint8_t *with_chunk(const uint8_t *png, size_t len, const char *type, const void *body,
                           size_t n, int good_crc, size_t *out_len) {
  uint8_t *out = malloc(len + n + 12);
  memcpy(out, png, 33);
  uint8_t *c = out + 33;
  c[0] = (uint8_t)(n >> 24), c[1] = (uint8_t)(n >> 16), c[2] = (uint8_t)(n >> 8), c[3] = (uint8_t)n;
  memcpy(c + 4, type, 4);
  memcpy(c + 8, body, n);
  uLong crc = crc32(0, c + 4, (uInt)(n + 4)) ^ (good_crc ? 0 : 1);
  c[8 + n] = (uint8_t)(crc >> 24), c[9 + n] = (uint8_t)(crc >> 16);
  c[10 + n] = (uint8_t)(crc >> 8), c[11 + n] = (uint8_t)crc;
  memcpy(c + 12 + n, png + 33, len - 33);
  *out_len = len + n + 12;
  return out;
}

static void test_text_chunks(void) {
  sdr_image *img = pattern(3, 3, 3);
  uint8_t *png, *p2, *p3;
  size_t len, len2, len3;
  sdr_image_encode_png(img, &png, &len);

  p2 = with_chunk(png, len, "tEXt", "parameters\0first", 16, 1, &len2);
  p3 = with_chunk(p2, len2, "tEXt", "parameters\0second", 17, 1, &len3);
  char *t = sdr_png_read_parameters(p3, len3);
  CHECK_STR(t, "first"); /* p3 put "second" first; the later chunk wins, as in PIL's dict */
  free(t);
  free(p3);
  p3 = with_chunk(p2, len2, "tEXt", "parameters\0damaged", 18, 0, &len3);
  t = sdr_png_read_parameters(p3, len3); /* a bad CRC is skipped, the good one read */
  CHECK_STR(t, "first");
  free(t);
  free(p3);
  free(p2);

  p2 = with_chunk(png, len, "tEXt", "Software\0sdrepl", 15, 1, &len2);
  CHECK(sdr_png_read_parameters(p2, len2) == NULL); /* another keyword */
  free(p2);
  p2 = with_chunk(png, len, "tEXt", "parameters", 10, 1, &len2);
  CHECK(sdr_png_read_parameters(p2, len2) == NULL); /* no separator */
  free(p2);
  p2 = with_chunk(png, len, "iTXt", "parameters\0\0", 12, 1, &len2);
  CHECK(sdr_png_read_parameters(p2, len2) == NULL); /* iTXt cut short */
  free(p2);

  /* zTXt: compressed; one that unpacks past the cap is ignored, not inflated whole. */
  uint8_t body[64 + 16], *big = calloc(4u << 20, 1), *zbig = malloc(64 << 10);
  memcpy(body, "parameters\0\0", 12);
  uLongf zn = sizeof body - 12;
  CHECK(compress(body + 12, &zn, (const Bytef *)"zipped words", 12) == Z_OK);
  p2 = with_chunk(png, len, "zTXt", body, 12 + zn, 1, &len2);
  t = sdr_png_read_parameters(p2, len2);
  CHECK_STR(t, "zipped words");
  free(t);
  free(p2);
  p2 = with_chunk(png, len, "zTXt", body, 12 + zn - 3, 1, &len2); /* stream cut short */
  CHECK(sdr_png_read_parameters(p2, len2) == NULL);
  free(p2);
  memcpy(zbig, "parameters\0\0", 12);
  zn = (64 << 10) - 12;
  CHECK(compress(zbig + 12, &zn, big, 4u << 20) == Z_OK);
  p2 = with_chunk(png, len, "zTXt", zbig, 12 + zn, 1, &len2);
  CHECK(sdr_png_read_parameters(p2, len2) == NULL);
  sdr_image *back = sdr_image_decode(p2, len2, "bomb.png"); /* the picture still opens */
  CHECK(same_pixels(img, back) && back->parameters == NULL);
  sdr_image_free(back);
  free(p2);
  free(zbig);
  free(big);

  /* A chunk length running past the end stops the walk without reading past it. */
  uint8_t *cut = malloc(len);
  memcpy(cut, png, len);
  cut[33] = 0x7f;
  CHECK(sdr_png_read_parameters(cut, len) == NULL);
  CHECK(sdr_png_read_parameters(cut, 7) == NULL);
  CHECK(sdr_png_read_parameters((const uint8_t *)"GIF89a", 6) == NULL);
  free(cut);
  free(png);
  sdr_image_free(img);
}

static void test_damaged_files(void) {
  sdr_image *img = pattern(40, 30, 3);
  uint8_t *png;
  size_t len;
  sdr_image_encode_png(img, &png, &len);
  /* Every truncation either fails with the file's name or (past the pixel
   * data) still gives the whole picture; none crashes. */
  int failed = 0;
  for (size_t n = 0; n < len; n++) {
    sdr_image *back = sdr_image_decode(png, n, "cut.png");
    if (!back) {
      failed++;
      CHECK(contains(sdr_last_error(), "cut.png: "));
    } else {
      CHECK(same_pixels(img, back));
    }
    sdr_image_free(back);
  }
  CHECK(failed > (int)len / 2);
  /* cut inside its pixel data: refused before decoding, in PIL's words */
  CHECK(sdr_image_decode(png, len / 2, "half.png") == NULL);
  CHECK(contains(sdr_last_error(), "half.png: image file is truncated ("));

  uint8_t garbage[256];
  for (int i = 0; i < 256; i++)
    garbage[i] = (uint8_t)(i * 151 + 7);
  CHECK(sdr_image_decode(garbage, sizeof garbage, "noise.bin") == NULL);
  CHECK(contains(sdr_last_error(), "noise.bin: cannot identify image file ("));
  CHECK(sdr_image_decode(garbage, 0, NULL) == NULL);

  /* Headers that claim huge pictures fail before any pixel memory is taken. */
  uint8_t *big = malloc(len);
  memcpy(big, png, len);
  big[16] = 0, big[17] = 0, big[18] = 0x9c, big[19] = 0x40; /* width 40000 */
  uLong crc = crc32(0, big + 12, 17);
  big[29] = (uint8_t)(crc >> 24), big[30] = (uint8_t)(crc >> 16), big[31] = (uint8_t)(crc >> 8),
  big[32] = (uint8_t)crc;
  CHECK(sdr_image_decode(big, len, "wide.png") == NULL &&
        contains(sdr_last_error(), "out of range"));
  big[18] = 0x36, big[19] = 0xb0, big[22] = 0x36, big[23] = 0xb0; /* 14000 x 14000 */
  crc = crc32(0, big + 12, 17);
  big[29] = (uint8_t)(crc >> 24), big[30] = (uint8_t)(crc >> 16), big[31] = (uint8_t)(crc >> 8),
  big[32] = (uint8_t)crc;
  CHECK(sdr_image_decode(big, len, "bomb.png") == NULL &&
        contains(sdr_last_error(), "decompression bomb"));
  free(big);
  free(png);
  sdr_image_free(img);
}

/* Files cut short: PIL's "image file is truncated", where stb alone would pad them with
 * zeros and decode (tests/fixtures/pil: the formats stb reads without compression,
 * run-length TGA, and JPEG, whose end marker is then missing). Whole files still decode. */
static void test_truncated_files(void) {
  static const char *const names[] = {"rgb.jpg", "l.jpg",   "rgb.bmp",    "rgb.ppm",
                                      "l.pgm",   "rgb.tga", "rgb_rle.tga"};
  const char *src = getenv("SDREPL_SOURCE_DIR");
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/pil/%s", src ? src : ".", names[i]);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f)
      continue;
    uint8_t buf[1 << 14];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    sdr_image *whole = sdr_image_decode(buf, len, names[i]);
    CHECK(whole != NULL);
    sdr_image_free(whole);
    /* the TGA's 26-byte footer is not pixel data: cut into the pixels */
    size_t tail = strstr(names[i], ".tga") ? 27 : strstr(names[i], ".jpg") ? 2 : 1;
    const size_t cuts[] = {len / 2, len * 9 / 10, len - tail};
    for (int c = 0; c < 3; c++) {
      sdr_image *cut = sdr_image_decode(buf, cuts[c], names[i]);
      if (cut || !contains(sdr_last_error(), "image file is truncated"))
        fprintf(stderr, "%s cut to %zu of %zu bytes: %s\n", names[i], cuts[c], len,
                cut ? "decoded" : sdr_last_error());
      CHECK(cut == NULL && contains(sdr_last_error(), "image file is truncated"));
      sdr_image_free(cut);
    }
  }
}

/* Names in dir other than . and .. */
static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
      n++;
  if (d)
    closedir(d);
  return n;
}

static void test_save_and_load(void) {
  char dir[] = "/tmp/sdrepl-image-XXXXXX", path[512];
  CHECK(mkdtemp(dir) != NULL);
  sdr_image *img = pattern(21, 17, 3);
  sdr_image_set_parameters(img, "seed 100");

  snprintf(path, sizeof path, "%s/out.png", dir);
  CHECK(sdr_image_save(img, path) == 0);
  CHECK(count_entries(dir) == 1); /* no temporary file left behind */
  sdr_image *back = sdr_image_load(path);
  CHECK(same_pixels(img, back));
  CHECK_STR(back ? back->parameters : NULL, "seed 100");
  sdr_image_free(back);
  struct stat st;
  mode_t mask = umask(0);
  umask(mask);
  CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == (0666 & ~mask)); /* as any new file */

  /* Overwrite in place: the new picture replaces the old one whole. */
  sdr_image *other = pattern(5, 5, 1);
  CHECK(sdr_image_save(other, path) == 0 && count_entries(dir) == 1);
  back = sdr_image_load(path);
  CHECK(same_pixels(other, back));
  sdr_image_free(back);

  /* JPEG by extension, any case; lossy, so close rather than equal. */
  sdr_image *smooth = sdr_image_new(32, 24, 3);
  for (int y = 0; y < 24; y++)
    for (int x = 0; x < 32; x++)
      for (int c = 0; c < 3; c++)
        smooth->pixels[(y * 32 + x) * 3 + c] = (uint8_t)(x * 5 + y * 2 + c * 20);
  const char *jpegs[] = {"a.jpg", "b.JPEG", "c.Jpg"};
  for (int i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, jpegs[i]);
    CHECK(sdr_image_save(smooth, path) == 0);
    back = sdr_image_load(path);
    CHECK(back && back->width == 32 && back->height == 24 && back->channels == 3);
    int maxd = 0;
    for (size_t k = 0; back && k < sdr_image_bytes(back); k++) {
      int d = abs(back->pixels[k] - smooth->pixels[k]);
      maxd = d > maxd ? d : maxd;
    }
    CHECK(maxd <= 12);
    sdr_image_free(back);
  }
  /* An L picture is written as a grey JPEG and comes back L, as in PIL. */
  snprintf(path, sizeof path, "%s/grey.jpg", dir);
  CHECK(sdr_image_save(other, path) == 0);
  back = sdr_image_load(path);
  CHECK(back && back->width == 5 && back->channels == 1);
  sdr_image_free(back);
  CHECK(count_entries(dir) == 5);

  /* Errors name the path and the reason, and leave nothing behind. */
  sdr_image *rgba = pattern(4, 4, 4);
  snprintf(path, sizeof path, "%s/alpha.jpg", dir);
  CHECK(sdr_image_save(rgba, path) != 0 && contains(sdr_last_error(), path) &&
        contains(sdr_last_error(), "RGBA as JPEG"));
  snprintf(path, sizeof path, "%s/x.gif", dir);
  CHECK(sdr_image_save(img, path) != 0 &&
        contains(sdr_last_error(), "unknown file extension '.gif'"));
  snprintf(path, sizeof path, "%s/noext", dir);
  CHECK(sdr_image_save(img, path) != 0 && contains(sdr_last_error(), "no file extension"));
  snprintf(path, sizeof path, "%s/.png", dir); /* a hidden name, not an extension */
  CHECK(sdr_image_save(img, path) != 0);
  snprintf(path, sizeof path, "%s/missing/out.png", dir);
  CHECK(sdr_image_save(img, path) != 0 && contains(sdr_last_error(), path) &&
        contains(sdr_last_error(), "No such file or directory"));
  snprintf(path, sizeof path, "%s/sub.png", dir); /* the target is a folder */
  CHECK(mkdir(path, 0755) == 0);
  CHECK(sdr_image_save(img, path) != 0 && contains(sdr_last_error(), "Is a directory"));
  CHECK(count_entries(dir) == 6); /* 5 pictures and the folder: no temporary files */
  /* Permissions do not stop root, so the read-only folder is checked for others only. */
  if (geteuid() != 0) {
    char ro[480];
    snprintf(ro, sizeof ro, "%s/ro", dir);
    CHECK(mkdir(ro, 0555) == 0);
    snprintf(path, sizeof path, "%s/out.png", ro);
    CHECK(sdr_image_save(img, path) != 0 && contains(sdr_last_error(), "Permission denied"));
    CHECK(count_entries(ro) == 0);
    rmdir(ro);
  }

  /* Loading: the reason and the path. */
  snprintf(path, sizeof path, "%s/nothing.png", dir);
  CHECK(sdr_image_load(path) == NULL && contains(sdr_last_error(), path) &&
        contains(sdr_last_error(), "No such file or directory"));
  snprintf(path, sizeof path, "%s/sub.png", dir);
  CHECK(sdr_image_load(path) == NULL && contains(sdr_last_error(), "Is a directory"));
  snprintf(path, sizeof path, "%s/empty.png", dir);
  FILE *f = fopen(path, "wb");
  fclose(f);
  CHECK(sdr_image_load(path) == NULL && contains(sdr_last_error(), "empty.png: cannot identify"));

  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
  sdr_image_free(rgba);
  sdr_image_free(smooth);
  sdr_image_free(other);
  sdr_image_free(img);
}

/* Empty IDAT chunks carry nothing: a picture with them (before the data, where stb_image
 * would read through a null buffer, and between) decodes as the one without. */
static void test_empty_idat(void) {
  sdr_image *img = pattern(7, 5, 3);
  uint8_t *png = NULL;
  size_t len = 0;
  CHECK(sdr_image_encode_png(img, &png, &len) == 0);
  size_t n;
  const uint8_t *idat = png ? sdr_png_find_chunk(png, len, "IDAT", &n) : NULL;
  CHECK(idat != NULL);
  if (idat) {
    static const uint8_t empty[12] = {0, 0, 0, 0, 'I', 'D', 'A', 'T', 0x35, 0xaf, 0x06, 0x1e};
    const size_t at = (size_t)(idat - 8 - png), after = at + 12 + n;
    uint8_t *with = malloc(len + 24);
    memcpy(with, png, at);
    memcpy(with + at, empty, 12);
    memcpy(with + at + 12, png + at, after - at);
    memcpy(with + after + 12, empty, 12);
    memcpy(with + after + 24, png + after, len - after);
    sdr_image *back = sdr_image_decode(with, len + 24, "empty-idat.png");
    CHECK(same_pixels(back, img));
    size_t clean_len = 0;
    uint8_t *clean = sdr_png_without_empty_idat(with, len + 24, &clean_len);
    CHECK(clean && clean_len == len && memcmp(clean, png, len) == 0);
    CHECK(sdr_png_without_empty_idat(png, len, &clean_len) == NULL);
    free(clean);
    sdr_image_free(back);
    free(with);
  }
  free(png);
  sdr_image_free(img);
}

/* Appends a PNG chunk (length, type, data, CRC) at *p. */
static void put_chunk(uint8_t **p, const char *type, const uint8_t *data, uint32_t n) {
  uint8_t *q = *p;
  q[0] = (uint8_t)(n >> 24), q[1] = (uint8_t)(n >> 16), q[2] = (uint8_t)(n >> 8), q[3] = (uint8_t)n;
  memcpy(q + 4, type, 4);
  memcpy(q + 8, data, n);
  uLong crc = crc32(crc32(0, (const Bytef *)type, 4), data, n);
  q[8 + n] = (uint8_t)(crc >> 24), q[9 + n] = (uint8_t)(crc >> 16), q[10 + n] = (uint8_t)(crc >> 8),
        q[11 + n] = (uint8_t)crc;
  *p = q + 12 + n;
}

/* A 16-bit grey PNG: PIL opens it as "I;16", whose L and RGB conversions clip at 255 (what
 * load_image gives; measured with Pillow 13: 0 100 255 256 1000 65535 -> 0 100 255 255 255
 * 255). Here it opens as that L picture. */
static void test_grey16(void) {
  static const uint16_t v[6] = {0, 100, 255, 256, 1000, 65535};
  uint8_t raw[1 + 12], z[64], png[256], *p = png;
  raw[0] = 0; /* filter: none */
  for (int i = 0; i < 6; i++)
    raw[1 + 2 * i] = (uint8_t)(v[i] >> 8), raw[2 + 2 * i] = (uint8_t)v[i];
  uLongf zn = sizeof z;
  CHECK(compress(z, &zn, raw, sizeof raw) == Z_OK);
  const uint8_t ihdr[13] = {0, 0, 0, 6, 0, 0, 0, 1, 16, 0, 0, 0, 0}; /* 6x1, 16-bit grey */
  memcpy(p, "\x89PNG\r\n\x1a\n", 8);
  p += 8;
  put_chunk(&p, "IHDR", ihdr, 13);
  put_chunk(&p, "IDAT", z, (uint32_t)zn);
  put_chunk(&p, "IEND", (const uint8_t *)"", 0);
  sdr_image *img = sdr_image_decode(png, (size_t)(p - png), "grey16.png");
  CHECK(img && img->channels == 1 && img->width == 6);
  static const uint8_t want[6] = {0, 100, 255, 255, 255, 255};
  CHECK(img && memcmp(img->pixels, want, 6) == 0);
  sdr_image_free(img);
}

int main(void) {
  test_grey16();
  test_empty_idat();
  test_png_round_trip();
  test_text_chunks();
  test_damaged_files();
  test_truncated_files();
  test_save_and_load();
  return check_exit();
}

/* engine/image_jpeg.c — JPEG decoding through libjpeg-turbo with PIL's settings. */
#include "engine/image_jpeg.h"

#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE */
#include <stdlib.h>
#include <string.h>

#include <jerror.h> /* JERR_NO_SOI, JWRN_JPEG_EOF */
#include <jpeglib.h>

#include "engine/error.h" // sdr_fail

/* More scans than any real progressive file has: a crafted one repeats scans to make the
 * decoder loop for minutes (libjpeg-turbo's advice for untrusted files). */
enum { MAX_SCANS = 500 };

typedef struct {
  struct jpeg_error_mgr pub;
  struct jpeg_progress_mgr progress;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  int hit_end; /* the data ended where libjpeg wanted more */
} decoder_errors;

static void on_error(j_common_ptr cinfo) {
  decoder_errors *e = (decoder_errors *)cinfo->err;
  cinfo->err->format_message(cinfo, e->message);
  longjmp(e->jump, 1);
}

/* Warnings (corrupt data libjpeg decodes past) are silent, as in PIL. */
static void on_message(j_common_ptr cinfo) { (void)cinfo; }

static void on_emit(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF)
    ((decoder_errors *)cinfo->err)->hit_end = 1;
}

static void on_progress(j_common_ptr cinfo) {
  j_decompress_ptr d = (j_decompress_ptr)cinfo;
  if (d->input_scan_number > MAX_SCANS) {
    decoder_errors *e = (decoder_errors *)cinfo->err;
    snprintf(e->message, sizeof e->message, "more than %d scans", MAX_SCANS);
    longjmp(e->jump, 1);
  }
}

int sdr_jpeg_is(const uint8_t *data, size_t len) {
  size_t i = 0;
  if (len < 2 || data[0] != 0xFF)
    return 0;
  while (i < len && data[i] == 0xFF)
    i++;
  return i < len && data[i] == 0xD8;
}

/* What PIL's mode becomes: L, RGB, or CMYK (4, made RGB after decoding); 0 for layouts
 * PIL does not open either. */
static int channels_of(const struct jpeg_decompress_struct *d) {
  switch (d->jpeg_color_space) {
  case JCS_GRAYSCALE:
    return 1;
  case JCS_YCbCr:
  case JCS_RGB:
    return 3;
  case JCS_CMYK:
  case JCS_YCCK:
    return 4;
  default:
    return 0;
  }
}

/* Starts a decompressor on data and reads the header. Returns 0 or -1 (message in e). */
static int open_header(struct jpeg_decompress_struct *d, decoder_errors *e, const uint8_t *data,
                       size_t len) {
  d->err = jpeg_std_error(&e->pub);
  e->pub.error_exit = on_error;
  e->pub.output_message = on_message;
  e->pub.emit_message = on_emit;
  jpeg_create_decompress(d);
  e->progress.progress_monitor = on_progress;
  d->progress = &e->progress;
  jpeg_mem_src(d, data, (unsigned long)len);
  jpeg_read_header(d, TRUE);
  if (!channels_of(d)) {
    snprintf(e->message, sizeof e->message, "%d color components are not supported",
             d->num_components);
    return -1;
  }
  return 0;
}

int sdr_jpeg_info(const uint8_t *data, size_t len, const char *name, int *width, int *height,
                  int *channels) {
  struct jpeg_decompress_struct d;
  decoder_errors e = {.message = ""};
  if (setjmp(e.jump) || open_header(&d, &e, data, len) != 0) {
    /* Past its start marker it is a JPEG, a damaged one: PIL opens it and fails to load. */
    int identified = e.pub.msg_code != JERR_NO_SOI;
    jpeg_destroy_decompress(&d);
    if (e.hit_end) /* PIL's words for a file cut short (engine/image_complete.h) */
      return sdr_fail("%s: image file is truncated (the JPEG data ends before its first scan)",
                      name);
    return sdr_fail("%s: %s (%s)", name,
                    identified ? "cannot decode image" : "cannot identify image file", e.message);
  }
  *width = (int)d.image_width;
  *height = (int)d.image_height;
  *channels = channels_of(&d) == 1 ? 1 : 3;
  jpeg_destroy_decompress(&d);
  return 0;
}

/* PIL's convert("RGB") of a CMYK picture (libImaging's cmyk2rgb): each ink darkens the
 * white that the black leaves, rounded as its MULDIV255. */
static void cmyk_to_rgb(const uint8_t *cmyk, uint8_t *rgb, int n) {
  for (int i = 0; i < n; i++, cmyk += 4, rgb += 3) {
    int nk = 255 - cmyk[3];
    for (int c = 0; c < 3; c++) {
      int t = cmyk[c] * nk + 128;
      int v = nk - (((t >> 8) + t) >> 8);
      rgb[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
  }
}

int sdr_jpeg_read(const uint8_t *data, size_t len, const char *name, sdr_image *img) {
  return sdr_jpeg_read_scaled(data, len, name, 1, img);
}

int sdr_jpeg_read_scaled(const uint8_t *data, size_t len, const char *name, int scale,
                         sdr_image *img) {
  struct jpeg_decompress_struct d;
  decoder_errors e = {.message = ""};
  /* volatile: written after setjmp, read after a longjmp back to it */
  uint8_t *volatile row4 = NULL;
  if (setjmp(e.jump)) {
    free(row4);
    jpeg_destroy_decompress(&d);
    return sdr_fail("%s: cannot decode image (%s)", name, e.message);
  }
  if (open_header(&d, &e, data, len) != 0)
    longjmp(e.jump, 1);
  int in_channels = channels_of(&d);
  d.out_color_space = in_channels == 1 ? JCS_GRAYSCALE : in_channels == 3 ? JCS_RGB : JCS_CMYK;
  if (scale > 1) { /* PIL's draft: the IDCT at 1/2, 1/4 or 1/8 size */
    d.scale_num = 1;
    d.scale_denom = (unsigned)scale;
  }
  jpeg_start_decompress(&d);
  if ((int)d.output_width != img->width || (int)d.output_height != img->height ||
      (int)d.output_components != in_channels || img->channels != (in_channels == 1 ? 1 : 3)) {
    snprintf(e.message, sizeof e.message, "size changed while decoding");
    longjmp(e.jump, 1);
  }
  /* PIL reads an Adobe-marked CMYK file as inverted ("CMYK;I"), as Photoshop writes it. */
  int invert = in_channels == 4 && d.saw_Adobe_marker;
  if (in_channels == 4) {
    row4 = malloc((size_t)img->width * 4);
    if (!row4) {
      snprintf(e.message, sizeof e.message, "out of memory");
      longjmp(e.jump, 1);
    }
  }
  size_t stride = (size_t)img->width * (size_t)img->channels;
  while (d.output_scanline < d.output_height) {
    uint8_t *out = img->pixels + (size_t)d.output_scanline * stride;
    JSAMPROW row = in_channels == 4 ? row4 : out;
    jpeg_read_scanlines(&d, &row, 1);
    if (in_channels == 4) {
      if (invert)
        for (int i = 0; i < img->width * 4; i++)
          row4[i] = (uint8_t)(255 - row4[i]);
      cmyk_to_rgb(row4, out, img->width);
    }
  }
  jpeg_finish_decompress(&d);
  free(row4);
  jpeg_destroy_decompress(&d);
  return 0;
}

/* A growing buffer of our own as libjpeg's destination, so an error frees it here. */
typedef struct {
  struct jpeg_destination_mgr pub;
  uint8_t *data;
  size_t cap;
} grow_dest;

static void dest_init(j_compress_ptr c) {
  grow_dest *d = (grow_dest *)c->dest;
  d->pub.next_output_byte = d->data;
  d->pub.free_in_buffer = d->cap;
}

static boolean dest_grow(j_compress_ptr c) {
  grow_dest *d = (grow_dest *)c->dest;
  uint8_t *p = realloc(d->data, 2 * d->cap);
  if (!p)
    ERREXIT1(c, JERR_OUT_OF_MEMORY, 0);
  d->data = p;
  d->pub.next_output_byte = p + d->cap;
  d->pub.free_in_buffer = d->cap;
  d->cap *= 2;
  return TRUE;
}

static void dest_term(j_compress_ptr c) { (void)c; }

int sdr_jpeg_write(const sdr_image *img, int quality, uint8_t **out, size_t *out_len) {
  struct jpeg_compress_struct c;
  decoder_errors e = {.message = ""};
  grow_dest dest = {.pub = {.init_destination = dest_init,
                            .empty_output_buffer = dest_grow,
                            .term_destination = dest_term},
                    .cap = 1 << 16};
  dest.data = malloc(dest.cap);
  if (!dest.data)
    return sdr_fail("out of memory encoding JPEG");
  c.err = jpeg_std_error(&e.pub);
  e.pub.error_exit = on_error;
  e.pub.output_message = on_message;
  if (setjmp(e.jump)) {
    jpeg_destroy_compress(&c);
    free(dest.data);
    return sdr_fail("cannot encode JPEG (%s)", e.message);
  }
  jpeg_create_compress(&c);
  c.dest = &dest.pub;
  c.image_width = (JDIMENSION)img->width;
  c.image_height = (JDIMENSION)img->height;
  c.input_components = img->channels;
  c.in_color_space = img->channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  /* PIL's defaults: libjpeg's own (4:2:0 chroma, a JFIF header, no optimisation). */
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  jpeg_start_compress(&c, TRUE);
  size_t stride = (size_t)img->width * (size_t)img->channels;
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = img->pixels + (size_t)c.next_scanline * stride;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  *out_len = dest.cap - dest.pub.free_in_buffer;
  *out = dest.data;
  jpeg_destroy_compress(&c);
  return 0;
}

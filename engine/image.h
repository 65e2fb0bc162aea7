/* engine/image.h — 8-bit images, the PIL subset sdrepl needs.
 *
 * An image is H×W pixels of 1 (L), 3 (RGB) or 4 (RGBA) interleaved bytes,
 * row-major, like PIL's modes of the same names. Functions follow PIL's
 * arithmetic (convert's ITU-R 601 luma with its rounding, resize's filters with
 * its support and fixed-point rounding) so pictures match what a diffusers
 * notebook would hold. Errors: NULL or -1 and sdr_last_error().
 */
#ifndef SDR_ENGINE_IMAGE_H
#define SDR_ENGINE_IMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct sdr_image {
  int width, height;
  int channels;     /* 1 = "L", 3 = "RGB", 4 = "RGBA" */
  uint8_t *pixels;  /* (height, width, channels) */
  char *parameters; /* how the image was made (PNG "parameters" text), or NULL; owned */
  int orientation;  /* the EXIF orientation (1 to 8) of the file it came from; 0: none */
} sdr_image;

/* PIL's resampling filters, with PIL's numbers (Image.NEAREST == 0 ...). */
enum {
  SDR_RESAMPLE_NEAREST = 0,
  SDR_RESAMPLE_LANCZOS = 1,
  SDR_RESAMPLE_BILINEAR = 2,
  SDR_RESAMPLE_BICUBIC = 3,
  SDR_RESAMPLE_BOX = 4,
  SDR_RESAMPLE_HAMMING = 5,
};

/* Largest side accepted anywhere, so width*height*4 never overflows. */
enum { SDR_IMAGE_MAX_SIDE = 1 << 15 };

/* Pixels zeroed. */
sdr_image *sdr_image_new(int width, int height, int channels);
void sdr_image_free(sdr_image *img);
sdr_image *sdr_image_copy(const sdr_image *img);
const char *sdr_image_mode_name(int channels); /* "L", "RGB", "RGBA" */
int sdr_image_mode_channels(const char *mode); /* 0 for an unknown mode */

/* Decoding: PNG, JPEG, WebP, BMP, GIF first frame, TGA, PSD, PNM (engine/image_decode.c).
 * Grey files open as L, grey+alpha as RGBA, others as RGB or RGBA. A PNG's
 * "parameters" text chunk is kept. */
sdr_image *sdr_image_load(const char *path);
sdr_image *sdr_image_decode(const uint8_t *data, size_t len, const char *name);
/* sdr_image_load that, for a JPEG (when jpeg is not NULL), also hands back the file's bytes
 * (*jpeg, the caller frees it), for a later draft as PIL's lazily opened JPEG allows. */
sdr_image *sdr_image_load_source(const char *path, uint8_t **jpeg, size_t *jpeg_len);
/* PIL's JPEG draft: the file decoded at 1/scale (2, 4 or 8) by libjpeg's scaled IDCT, its size
 * rounded up. */
sdr_image *sdr_image_jpeg_draft(const uint8_t *data, size_t len, const char *name, int scale);

/* Encoding. PNG carries a tEXt "parameters" chunk when img->parameters is set.
 * save picks PNG or JPEG (quality 75, as PIL) by extension, writes a temporary
 * file in the same folder and renames it, so no half-written file is left. */
int sdr_image_encode_png(const sdr_image *img, uint8_t **out, size_t *out_len);
int sdr_image_save(const sdr_image *img, const char *path);

sdr_image *sdr_image_convert(const sdr_image *img, int channels);
sdr_image *sdr_image_resize(const sdr_image *img, int width, int height, int resample);
/* resize(size, resample, box): the output samples the region box (left, upper, right, lower,
 * within the image; a side may be empty: Pillow then samples around that edge). */
sdr_image *sdr_image_resize_box(const sdr_image *img, int width, int height, int resample,
                                const double *box);
/* resize(size, resample, box, reducing_gap): with a reducing_gap (>= 1; 0 for None) and a
 * filter other than NEAREST, first Image.reduce by the whole factors that leave the filter at
 * least reducing_gap of shrinking, as Pillow does (engine/image_reduce.c). */
sdr_image *sdr_image_resize_gap(const sdr_image *img, int width, int height, int resample,
                                const double *box, double reducing_gap);
/* Image.reduce(factor, box): the mean of each xscale x yscale block of the box (left, upper,
 * right, lower; NULL for the whole picture), the edge blocks over what they hold, with
 * Pillow's fixed-point rounding; RGBA premultiplied by alpha. sdr_image_reduce_plain: the
 * same for every channel alike, box given. */
sdr_image *sdr_image_reduce(const sdr_image *img, int xscale, int yscale, const int *box);
sdr_image *sdr_image_reduce_plain(const sdr_image *img, int xscale, int yscale, const int box[4]);
/* ImageOps (engine/image_fit.c), as Pillow computes their sizes and boxes: contain (the
 * largest size within w x h with the aspect kept), cover (the smallest covering it), pad
 * (contain, then centred on color by cx, cy in [0, 1]), expand (a border of color, left, top,
 * right, bottom) and fit (the centred crop of the aspect asked for, less bleed on each edge,
 * resized to w x h). */
sdr_image *sdr_image_contain(const sdr_image *img, int w, int h, int method);
sdr_image *sdr_image_cover(const sdr_image *img, int w, int h, int method);
sdr_image *sdr_image_pad(const sdr_image *img, int w, int h, int method, const uint8_t *color,
                         double cx, double cy);
sdr_image *sdr_image_expand(const sdr_image *img, const int border[4], const uint8_t *color);
sdr_image *sdr_image_fit(const sdr_image *img, int w, int h, int method, double bleed, double cx,
                         double cy);
/* A picture's bands (engine/image_bands.c), as PIL's: band k as an L picture (split,
 * getchannel); L pictures of one size merged into L, RGB or RGBA (Image.merge); putalpha in
 * place (an L alpha, or value when alpha is NULL; RGB becomes RGBA; L refused, having no LA);
 * point through a table of 256 values per band; getbbox (1 and box when any pixel is not zero
 * in any band, or in alpha with alpha_only, else 0); getextrema's per-band minimum and
 * maximum (0 for an empty picture). */
sdr_image *sdr_image_band(const sdr_image *img, int band);
sdr_image *sdr_image_merge(const sdr_image *const *bands, int n);
int sdr_image_putalpha(sdr_image *img, const sdr_image *alpha, uint8_t value);
sdr_image *sdr_image_point(const sdr_image *img, const uint8_t *lut);
int sdr_image_getbbox(const sdr_image *img, int alpha_only, int box[4]);
int sdr_image_extrema(const sdr_image *img, uint8_t lo[4], uint8_t hi[4]);
/* ImageDraw's rectangle and ellipse (engine/image_draw.c), as Pillow rasterises them: the box
 * x0..x1, y0..y1 inclusive, filled (fill) or outlined width pixels deep, ink written (the
 * picture's bytes per pixel) without blending. */
void sdr_image_draw_rectangle(sdr_image *img, int x0, int y0, int x1, int y1, const uint8_t *ink,
                              int fill, int width);
void sdr_image_draw_ellipse(sdr_image *img, int x0, int y0, int x1, int y1, const uint8_t *ink,
                            int fill, int width);
/* ImageDraw's polygon through count points (xy: x, y pairs), filled by Draw.c's scan lines, or
 * outlined one pixel wide. 0, or -1 and sdr_last_error() when out of memory. */
int sdr_image_draw_polygon(sdr_image *img, const int *xy, int count, const uint8_t *ink, int fill);
/* ImageDraw's line through count points: Bresenham segments and the last point for width 1,
 * else each segment as Pillow's wide line (a four-sided polygon). 0, or -1 when out of memory. */
int sdr_image_draw_line(sdr_image *img, const int *xy, int count, const uint8_t *ink, int width);
/* Image.thumbnail's size: size (floats floored) with the picture's aspect kept as Pillow
 * rounds it; 0 when the picture already fits (thumbnail then changes nothing), -1 and
 * sdr_last_error() for a size with a side under 1. */
int sdr_image_thumbnail_size(const sdr_image *img, double width, double height, int *out_w,
                             int *out_h);
/* Image.alpha_composite(dst, src) in place: both RGBA and of one size; Pillow's integer
 * arithmetic. */
int sdr_image_alpha_composite(sdr_image *dst, const sdr_image *src);
/* Image.blend(a, b, alpha): a + alpha (b - a) per value, truncated as Pillow does (clipped
 * when alpha is outside [0, 1]); one mode and size (engine/image_blend.c). */
sdr_image *sdr_image_blend(const sdr_image *a, const sdr_image *b, float alpha);
/* Box outside the image is filled with zeros, as PIL does. */
sdr_image *sdr_image_crop(const sdr_image *img, int left, int upper, int right, int lower);
/* Pastes src at (x, y) clipped to dst; src converted to dst's mode. With an
 * RGBA or L mask, blends as PIL's paste(im, box, mask). */
int sdr_image_paste(sdr_image *dst, const sdr_image *src, int x, int y, const sdr_image *mask);
/* Fill with a color given per channel (missing channels 255 for alpha, else 0). */
void sdr_image_fill(sdr_image *img, const uint8_t *color, int ncolor);

/* PIL's paste(color, box, mask): fills the box, clipped to img, with color
 * (img->channels bytes); with an L or RGBA mask of the box's size, blends as
 * PIL's fill_mask_L / fill_mask_RGBA. */
int sdr_image_paste_color(sdr_image *img, const uint8_t *color, int left, int upper, int right,
                          int lower, const sdr_image *mask);
/* width * height * channels: the size of img->pixels in bytes. */
size_t sdr_image_bytes(const sdr_image *img);
/* Replaces img->parameters by a copy of text (NULL clears it). */
int sdr_image_set_parameters(sdr_image *img, const char *text);
/* dst->parameters = copy of src->parameters (and the orientation), as PIL copies info
 * into derived images. */
int sdr_image_copy_parameters(sdr_image *dst, const sdr_image *src);
/* PIL's Image.Transpose methods, with PIL's numbers. */
enum {
  SDR_FLIP_LEFT_RIGHT = 0,
  SDR_FLIP_TOP_BOTTOM = 1,
  SDR_ROTATE_90 = 2, /* counter-clockwise */
  SDR_ROTATE_180 = 3,
  SDR_ROTATE_270 = 4,
  SDR_TRANSPOSE = 5,
  SDR_TRANSVERSE = 6,
};
/* engine/image_exif.c: the EXIF orientation tag of JPEG or PNG bytes (0: none); PIL's
 * transpose(method); ImageOps.exif_transpose (a copy turned upright, orientation cleared). */
int sdr_image_exif_orientation(const uint8_t *data, size_t len);
sdr_image *sdr_image_transpose(const sdr_image *img, int method);
/* Pillow's box_blur (passes boxes of the radii along rows, then columns; a fractional radius
 * weighs the box's two far pixels) and gaussian_blur (ImageFilter.GaussianBlur: three boxes
 * of the radius with the gaussian's variance), pixel for pixel (engine/image_blur.c). */
sdr_image *sdr_image_box_blur(const sdr_image *img, float xradius, float yradius, int passes);
sdr_image *sdr_image_gaussian_blur(const sdr_image *img, float xradius, float yradius);
sdr_image *sdr_image_exif_transpose(const sdr_image *img);
/* The pixels of PIL's resize(size, resample) of an RGBA image go through
 * premultiplied alpha (PIL's "RGBa"); these are its two conversions, in place. */
void sdr_image_premultiply(sdr_image *img);
void sdr_image_unpremultiply(sdr_image *img);

#endif

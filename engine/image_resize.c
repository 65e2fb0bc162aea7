/* engine/image_resize.c — Image.resize with Pillow's filters and Pillow's rounding.
 *
 * Mirrors Pillow's src/libImaging/Resample.c (and, for NEAREST, the affine
 * scale in Geometry.c that Pillow's _resize uses instead), so a resized
 * picture here equals the one a diffusers notebook gets, byte for byte:
 *
 *  - Each output pixel is a weighted sum over a window of input pixels. The
 *    window is the filter's support, widened by the downscale factor so that
 *    shrinking averages every input pixel (antialiasing); upscaling keeps it.
 *  - Window bounds round with (int)(x + 0.5) and are clipped to the image;
 *    weights are normalized to sum to 1 over what remains, then turned into
 *    fixed point with PRECISION_BITS = 32 - 8 - 2 fractional bits (8 bits of
 *    result, 2 bits of headroom for the filters' negative lobes).
 *  - Two passes, one per axis, each rounding to 8 bits (add half, shift,
 *    clip to 0..255) before the next; usually horizontal first, but Pillow
 *    13 goes vertical first in some shapes (see resample()), and since each
 *    pass rounds, the order shows in the last bit.
 *  - RGBA is resized premultiplied by alpha (Pillow's "RGBa") and divided
 *    back afterwards, except with NEAREST, which only copies pixels.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h" // sdr_fail
#include "engine/image.h" // sdr_image, sdr_image_resize

enum { PRECISION_BITS = 32 - 8 - 2 };

static const double PI = 3.14159265358979323846;

typedef struct {
  double (*weight)(double x);
  double support; /* half-width of the filter at scale 1 */
} resample_filter;

static double box_weight(double x) { return x > -0.5 && x <= 0.5 ? 1.0 : 0.0; }

static double bilinear_weight(double x) {
  x = fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

static double hamming_weight(double x) {
  x = fabs(x);
  if (x == 0.0)
    return 1.0;
  if (x >= 1.0)
    return 0.0;
  x *= PI;
  /* Pillow writes the window's constants as floats; 0.54f != 0.54, and the
   * difference shows in the last bit of some weights, so keep them as floats. */
  return sin(x) / x * (0.54f + 0.46f * cos(x));
}

/* Keys' cubic convolution with a = -0.5. */
static double bicubic_weight(double x) {
  const double a = -0.5;
  x = fabs(x);
  if (x < 1.0)
    return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0)
    return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

static double sinc(double x) {
  if (x == 0.0)
    return 1.0;
  x *= PI;
  return sin(x) / x;
}

static double lanczos_weight(double x) {
  return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0;
}

static const resample_filter *filter_for(int resample) {
  static const resample_filter box = {box_weight, 0.5}, bilinear = {bilinear_weight, 1.0},
                               hamming = {hamming_weight, 1.0}, bicubic = {bicubic_weight, 2.0},
                               lanczos = {lanczos_weight, 3.0};
  switch (resample) {
  case SDR_RESAMPLE_BOX:
    return &box;
  case SDR_RESAMPLE_BILINEAR:
    return &bilinear;
  case SDR_RESAMPLE_HAMMING:
    return &hamming;
  case SDR_RESAMPLE_BICUBIC:
    return &bicubic;
  case SDR_RESAMPLE_LANCZOS:
    return &lanczos;
  default:
    return NULL;
  }
}

/* For each of out_size output positions along one axis: the first input index
 * (first[i]), how many follow (count[i]) and their fixed-point weights
 * (weights[i * ksize ...]). Pillow's precompute_coeffs + normalize_coeffs_8bpc. */
typedef struct {
  int ksize;
  int *first, *count;
  int32_t *weights;
} axis_coeffs;

static void coeffs_free(axis_coeffs *c) {
  free(c->first);
  free(c->count);
  free(c->weights);
}

/* Output positions sample the input span [in0, in1) (the whole axis but for a box). */
static int coeffs_compute(axis_coeffs *c, int in_size, double in0, double in1, int out_size,
                          const resample_filter *f) {
  double scale = (in1 - in0) / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
  double support = f->support * filterscale;
  c->ksize = (int)ceil(support) * 2 + 1;
  c->first = malloc((size_t)out_size * sizeof *c->first);
  c->count = malloc((size_t)out_size * sizeof *c->count);
  c->weights = malloc((size_t)out_size * (size_t)c->ksize * sizeof *c->weights);
  double *w = malloc((size_t)c->ksize * sizeof *w);
  if (!c->first || !c->count || !c->weights || !w) {
    free(w);
    coeffs_free(c);
    return sdr_fail("out of memory for resize coefficients");
  }
  double inv = 1.0 / filterscale;
  for (int i = 0; i < out_size; i++) {
    double center = in0 + (i + 0.5) * scale;
    int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
    if (lo < 0)
      lo = 0;
    if (hi > in_size)
      hi = in_size;
    int n = hi - lo;
    double sum = 0.0;
    for (int k = 0; k < n; k++) {
      /* Evaluated in Pillow's order: (index - center + 0.5) * (1 / filterscale). */
      w[k] = f->weight(((double)(k + lo) - center + 0.5) * inv);
      sum += w[k];
    }
    int32_t *out = c->weights + (size_t)i * (size_t)c->ksize;
    for (int k = 0; k < c->ksize; k++) {
      double v = k < n ? (sum != 0.0 ? w[k] / sum : w[k]) : 0.0;
      /* Round half away from zero into fixed point. */
      out[k] =
          (int32_t)(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
    }
    c->first[i] = lo;
    c->count[i] = n > 0 ? n : 0;
  }
  free(w);
  return 0;
}

static uint8_t clip8(int32_t acc) {
  int32_t v = acc >> PRECISION_BITS; /* arithmetic shift: negative sums clip to 0 */
  return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Rows [row0, row0 + out->height) of in, resampled along x into out. ch is a
 * constant at each call, so the channel loops unroll. */
static inline void pass_horizontal(sdr_image *out, const sdr_image *in, int row0,
                                   const axis_coeffs *c, int ch) {
  for (int y = 0; y < out->height; y++) {
    const uint8_t *src = in->pixels + (size_t)(y + row0) * (size_t)in->width * (size_t)ch;
    uint8_t *dst = out->pixels + (size_t)y * (size_t)out->width * (size_t)ch;
    for (int x = 0; x < out->width; x++) {
      const int32_t *k = c->weights + (size_t)x * (size_t)c->ksize;
      const uint8_t *p = src + (size_t)c->first[x] * (size_t)ch;
      int32_t acc[4] = {1 << (PRECISION_BITS - 1), 1 << (PRECISION_BITS - 1),
                        1 << (PRECISION_BITS - 1), 1 << (PRECISION_BITS - 1)};
      for (int i = 0; i < c->count[x]; i++, p += ch)
        for (int b = 0; b < ch; b++)
          acc[b] += p[b] * k[i];
      for (int b = 0; b < ch; b++)
        dst[(size_t)x * (size_t)ch + (size_t)b] = clip8(acc[b]);
    }
  }
}

/* in resampled along y into out; c->first is relative to in's first row. */
static inline void pass_vertical(sdr_image *out, const sdr_image *in, const axis_coeffs *c,
                                 int ch) {
  size_t stride = (size_t)in->width * (size_t)ch;
  for (int y = 0; y < out->height; y++) {
    const int32_t *k = c->weights + (size_t)y * (size_t)c->ksize;
    const uint8_t *src = in->pixels + (size_t)c->first[y] * stride;
    uint8_t *dst = out->pixels + (size_t)y * stride;
    for (size_t x = 0; x < stride; x += (size_t)ch) {
      int32_t acc[4] = {1 << (PRECISION_BITS - 1), 1 << (PRECISION_BITS - 1),
                        1 << (PRECISION_BITS - 1), 1 << (PRECISION_BITS - 1)};
      const uint8_t *p = src + x;
      for (int i = 0; i < c->count[y]; i++, p += stride)
        for (int b = 0; b < ch; b++)
          acc[b] += p[b] * k[i];
      for (int b = 0; b < ch; b++)
        dst[x + (size_t)b] = clip8(acc[b]);
    }
  }
}

static void run_horizontal(sdr_image *out, const sdr_image *in, int row0, const axis_coeffs *c) {
  switch (in->channels) {
  case 1:
    pass_horizontal(out, in, row0, c, 1);
    break;
  case 3:
    pass_horizontal(out, in, row0, c, 3);
    break;
  default:
    pass_horizontal(out, in, row0, c, 4);
    break;
  }
}

static void run_vertical(sdr_image *out, const sdr_image *in, const axis_coeffs *c) {
  switch (in->channels) {
  case 1:
    pass_vertical(out, in, c, 1);
    break;
  case 3:
    pass_vertical(out, in, c, 3);
    break;
  default:
    pass_vertical(out, in, c, 4);
    break;
  }
}

/* Pillow's ImagingResampleInner. Each pass rounds to 8 bits, so the order of
 * the passes shows in the result: Pillow 13 runs the vertical pass first
 * when the height shrinks by more than twice what the width shrinks, box or
 * not (measured against Pillow on every size pair of several pictures; see
 * tests/unit/test_image_parity.c and the reducing_gap cases of
 * tests/unit/test_image_reduce.c), else the horizontal pass first. Going
 * horizontal first, only the input rows the vertical pass reads are done. */
static sdr_image *resample(const sdr_image *in, int width, int height, const resample_filter *f,
                           const double box[4]) {
  axis_coeffs vert = {0}, horiz = {0};
  sdr_image *tmp = NULL, *out = NULL;
  /* ImagingResample's tests: the box's far edge against the output's size, as Pillow has it */
  int need_h = width != in->width || box[0] != 0 || box[2] != width;
  int need_v = height != in->height || box[1] != 0 || box[3] != height;
  if ((need_v && coeffs_compute(&vert, in->height, box[1], box[3], height, f) != 0) ||
      (need_h && coeffs_compute(&horiz, in->width, box[0], box[2], width, f) != 0))
    goto done;
  if (!need_h && !need_v) {
    out = sdr_image_copy(in);
    goto done;
  }
  if (!need_h || !need_v) {
    if ((out = sdr_image_new(width, height, in->channels))) {
      if (need_h)
        run_horizontal(out, in, 0, &horiz);
      else
        run_vertical(out, in, &vert);
    }
  } else if (height < in->height && 2LL * (in->width - width) < in->height - height) {
    if ((tmp = sdr_image_new(in->width, height, in->channels)) &&
        (out = sdr_image_new(width, height, in->channels))) {
      run_vertical(tmp, in, &vert);
      run_horizontal(out, tmp, 0, &horiz);
    }
  } else {
    int row0 = vert.first[0], row1 = vert.first[height - 1] + vert.count[height - 1];
    if ((tmp = sdr_image_new(width, row1 - row0, in->channels)) &&
        (out = sdr_image_new(width, height, in->channels))) {
      run_horizontal(tmp, in, row0, &horiz);
      for (int i = 0; i < height; i++)
        vert.first[i] -= row0;
      run_vertical(out, tmp, &vert);
    }
  }
done:
  sdr_image_free(tmp);
  coeffs_free(&horiz);
  coeffs_free(&vert);
  return out;
}

/* Pillow's NEAREST: ImagingScaleAffine, which walks the source in steps of
 * in/out from half a step in, accumulating the position in a double. The
 * accumulation (not x * step) decides ties, so it is kept. */
static sdr_image *nearest(const sdr_image *in, int width, int height) {
  sdr_image *out = sdr_image_new(width, height, in->channels);
  if (!out)
    return NULL;
  int *xin = malloc((size_t)width * sizeof *xin);
  if (!xin) {
    sdr_image_free(out);
    sdr_fail("out of memory for resize");
    return NULL;
  }
  double ax = (double)in->width / width, ay = (double)in->height / height;
  double xo = ax * 0.5, yo = ay * 0.5;
  int xmin = width, xmax = 0;
  for (int x = 0; x < width; x++, xo += ax) {
    int xi = xo < 0.0 ? -1 : (int)xo;
    if (xi >= 0 && xi < in->width) {
      xmax = x + 1;
      if (x < xmin)
        xmin = x;
      xin[x] = xi;
    }
  }
  size_t ch = (size_t)in->channels;
  for (int y = 0; y < height; y++, yo += ay) {
    int yi = yo < 0.0 ? -1 : (int)yo;
    if (yi < 0 || yi >= in->height)
      continue; /* left zero, as Pillow's fill */
    const uint8_t *src = in->pixels + (size_t)yi * (size_t)in->width * ch;
    uint8_t *dst = out->pixels + (size_t)y * (size_t)width * ch;
    for (int x = xmin; x < xmax; x++)
      memcpy(dst + (size_t)x * ch, src + (size_t)xin[x] * ch, ch);
  }
  free(xin);
  return out;
}

sdr_image *sdr_image_resize(const sdr_image *img, int width, int height, int resample_id) {
  return sdr_image_resize_box(img, width, height, resample_id, NULL);
}

sdr_image *sdr_image_resize_box(const sdr_image *img, int width, int height, int resample_id,
                                const double *box_in) {
  return sdr_image_resize_gap(img, width, height, resample_id, box_in, 0);
}

/* Image._get_safe_box: the box widened by the filter's reach (its support less half a pixel,
 * scaled), in whole pixels within the image. */
static void safe_box(const sdr_image *img, int width, int height, const resample_filter *f,
                     const double box[4], int out[4]) {
  const double reach = f->support - 0.5;
  const double sx = reach * ((box[2] - box[0]) / width), sy = reach * ((box[3] - box[1]) / height);
  const int x0 = (int)(box[0] - sx), y0 = (int)(box[1] - sy); /* int(): toward zero */
  const double x1 = ceil(box[2] + sx), y1 = ceil(box[3] + sy);
  out[0] = x0 > 0 ? x0 : 0;
  out[1] = y0 > 0 ? y0 : 0;
  out[2] = x1 < img->width ? (int)x1 : img->width;
  out[3] = y1 < img->height ? (int)y1 : img->height;
}

/* The box as Pillow's C resize takes it: float32. */
static void float_box(const double in[4], double out[4]) {
  for (int i = 0; i < 4; i++)
    out[i] = (float)in[i];
}

/* resize's two steps with a reducing_gap: Image.reduce by whole factors while the rest still
 * shrinks by reducing_gap or more, then the filter over the box moved into the reduced
 * picture, the arithmetic in Python's float64 until the C call. `in` is already
 * premultiplied when it has alpha. */
static sdr_image *reduce_then_resample(const sdr_image *in, int width, int height,
                                       const resample_filter *f, const double box[4], double gap) {
  int fx = (int)((box[2] - box[0]) / width / gap), fy = (int)((box[3] - box[1]) / height / gap);
  fx = fx ? fx : 1;
  fy = fy ? fy : 1;
  if (fx == 1 && fy == 1) {
    double fb[4];
    float_box(box, fb);
    return resample(in, width, height, f, fb);
  }
  int rb[4];
  safe_box(in, width, height, f, box, rb);
  sdr_image *small = sdr_image_reduce_plain(in, fx, fy, rb);
  if (!small)
    return NULL;
  /* the box in the reduced picture's coordinates */
  const double moved[4] = {(box[0] - rb[0]) / fx, (box[1] - rb[1]) / fy, (box[2] - rb[0]) / fx,
                           (box[3] - rb[1]) / fy};
  double fb[4];
  float_box(moved, fb);
  sdr_image *out = resample(small, width, height, f, fb);
  sdr_image_free(small);
  return out;
}

sdr_image *sdr_image_resize_gap(const sdr_image *img, int width, int height, int resample_id,
                                const double *box_in, double reducing_gap) {
  const double whole[4] = {0, 0, img->width, img->height};
  const double *box = box_in ? box_in : whole;
  double fbox[4]; /* what the filter samples without a reducing_gap */
  float_box(box, fbox);
  if (reducing_gap != 0 && !(reducing_gap >= 1.0)) {
    sdr_fail("reducing_gap must be 1.0 or greater (got %g)", reducing_gap);
    return NULL;
  }
  const resample_filter *f = filter_for(resample_id);
  if (box_in && !f) {
    sdr_fail("resize: a box needs a filter other than NEAREST");
    return NULL;
  }
  if (box[0] < 0 || box[1] < 0 || box[2] > img->width || box[3] > img->height || box[2] < box[0] ||
      box[3] < box[1]) {
    sdr_fail("resize: box (%g, %g, %g, %g) is not within the %dx%d image", box[0], box[1], box[2],
             box[3], img->width, img->height);
    return NULL;
  }
  if (!f && resample_id != SDR_RESAMPLE_NEAREST) {
    sdr_fail("unknown resampling filter (%d)", resample_id);
    return NULL;
  }
  if (width < 1 || height < 1) {
    sdr_fail("height and width must be > 0 (got %dx%d)", width, height);
    return NULL;
  }
  if (width > SDR_IMAGE_MAX_SIDE || height > SDR_IMAGE_MAX_SIDE) {
    sdr_fail("size %dx%d too large (at most %d on a side)", width, height, SDR_IMAGE_MAX_SIDE);
    return NULL;
  }
  if (width == img->width && height == img->height && memcmp(box, whole, sizeof whole) == 0)
    return sdr_image_copy(img);
  sdr_image *out;
  if (img->width == 0 || img->height == 0) {
    out = sdr_image_new(width, height, img->channels); /* nothing to sample: black, as Pillow */
  } else if (!f) {
    out = nearest(img, width, height);
  } else if (img->channels == 4) {
    sdr_image *pre = sdr_image_copy(img);
    if (!pre)
      return NULL;
    sdr_image_premultiply(pre);
    out = reducing_gap ? reduce_then_resample(pre, width, height, f, box, reducing_gap)
                       : resample(pre, width, height, f, fbox);
    sdr_image_free(pre);
    if (out)
      sdr_image_unpremultiply(out);
  } else {
    out = reducing_gap ? reduce_then_resample(img, width, height, f, box, reducing_gap)
                       : resample(img, width, height, f, fbox);
  }
  if (out && sdr_image_copy_parameters(out, img) != 0) {
    sdr_image_free(out);
    return NULL;
  }
  return out;
}

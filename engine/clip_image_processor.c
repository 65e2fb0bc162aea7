/* engine/clip_image_processor.c — CLIPImageProcessor.preprocess for pictures. */
#include "engine/clip_image_processor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "engine/error.h"        // sdr_fail
#include "engine/model_config.h" // sdr_json

static const double clip_mean[3] = {0.48145466, 0.4578275, 0.40821073}; /* OPENAI_CLIP_MEAN */
static const double clip_std[3] = {0.26862954, 0.26130258, 0.27577711}; /* OPENAI_CLIP_STD */

void sdr_clip_image_processor_default(sdr_clip_image_processor *p) {
  memset(p, 0, sizeof *p);
  p->do_convert_rgb = p->do_resize = p->do_center_crop = p->do_rescale = p->do_normalize = 1;
  p->shortest_edge = 224;
  p->resample = SDR_RESAMPLE_BICUBIC;
  p->crop_h = p->crop_w = 224;
  p->rescale_factor = 1.0 / 255.0;
  memcpy(p->mean, clip_mean, sizeof p->mean);
  memcpy(p->std, clip_std, sizeof p->std);
}

static int positive(const char *path, const char *key, const cJSON *v, int *out) {
  if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int)v->valuedouble || v->valuedouble < 1 ||
      v->valuedouble > (1 << 15))
    return sdr_fail("%s: \"%s\" must hold positive whole sizes", path, key);
  *out = (int)v->valuedouble;
  return 0;
}

/* get_size_dict: an int is the shortest edge (size) or a square (crop_size); a dict has
 * "shortest_edge", or "height" and "width". */
static int read_size(const sdr_json *j, const char *key, int square, int *shortest, int *h,
                     int *w) {
  const cJSON *v = sdr_json_get(j, key);
  if (!v || cJSON_IsNull(v))
    return 0;
  *shortest = 0;
  if (cJSON_IsNumber(v)) {
    if (positive(j->path, key, v, square ? h : shortest) != 0)
      return -1;
    if (square)
      *w = *h;
    return 0;
  }
  const cJSON *se = cJSON_GetObjectItemCaseSensitive(v, "shortest_edge");
  const cJSON *hh = cJSON_GetObjectItemCaseSensitive(v, "height");
  const cJSON *ww = cJSON_GetObjectItemCaseSensitive(v, "width");
  if (cJSON_IsObject(v) && se && !square)
    return positive(j->path, key, se, shortest);
  if (cJSON_IsObject(v) && hh && ww)
    return positive(j->path, key, hh, h) || positive(j->path, key, ww, w) ? -1 : 0;
  return sdr_fail("%s: \"%s\" must be a size or {%s\"height\", \"width\"}", j->path, key,
                  square ? "" : "\"shortest_edge\"} or {");
}

static int read_triple(const sdr_json *j, const char *key, double *out) {
  const cJSON *v = sdr_json_get(j, key);
  if (!v || cJSON_IsNull(v))
    return 0;
  if (cJSON_IsNumber(v)) {
    out[0] = out[1] = out[2] = v->valuedouble;
    return 0;
  }
  if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 3)
    return sdr_fail("%s: \"%s\" must be a number or 3 numbers (one per channel)", j->path, key);
  for (int i = 0; i < 3; i++) {
    const cJSON *e = cJSON_GetArrayItem(v, i);
    if (!cJSON_IsNumber(e))
      return sdr_fail("%s: \"%s\" must be a number or 3 numbers (one per channel)", j->path, key);
    out[i] = e->valuedouble;
  }
  return 0;
}

int sdr_clip_image_processor_load(sdr_clip_image_processor *p, const char *config_json) {
  sdr_clip_image_processor_default(p);
  sdr_json j;
  if (sdr_json_load(&j, config_json) != 0)
    return -1;
  long long resample = p->resample;
  int rc = 0;
  rc = rc ? rc : sdr_json_bool_opt(&j, "do_convert_rgb", 1, &p->do_convert_rgb);
  rc = rc ? rc : sdr_json_bool_opt(&j, "do_resize", 1, &p->do_resize);
  rc = rc ? rc : sdr_json_bool_opt(&j, "do_center_crop", 1, &p->do_center_crop);
  rc = rc ? rc : sdr_json_bool_opt(&j, "do_rescale", 1, &p->do_rescale);
  rc = rc ? rc : sdr_json_bool_opt(&j, "do_normalize", 1, &p->do_normalize);
  rc = rc ? rc : sdr_json_number_opt(&j, "rescale_factor", 1.0 / 255.0, &p->rescale_factor);
  rc = rc ? rc : sdr_json_int_opt(&j, "resample", SDR_RESAMPLE_BICUBIC, &resample);
  rc = rc ? rc : read_size(&j, "size", 0, &p->shortest_edge, &p->size_h, &p->size_w);
  rc = rc ? rc : read_size(&j, "crop_size", 1, &(int){0}, &p->crop_h, &p->crop_w);
  rc = rc ? rc : read_triple(&j, "image_mean", p->mean);
  rc = rc ? rc : read_triple(&j, "image_std", p->std);
  if (rc == 0 && (resample < 0 || resample > SDR_RESAMPLE_HAMMING))
    rc = sdr_fail("%s: \"resample\" %lld is not one of Pillow's filters (0 to 5)", config_json,
                  resample);
  for (int i = 0; rc == 0 && i < 3; i++)
    if (p->std[i] == 0)
      rc = sdr_fail("%s: \"image_std\" has a zero", config_json);
  p->resample = (int)resample;
  sdr_json_free(&j);
  return rc;
}

/* get_resize_output_image_size with default_to_square=False: the shortest edge to s, the
 * other int(s * long / short). */
static void resized_size(const sdr_clip_image_processor *p, int w, int h, int *ow, int *oh) {
  if (p->shortest_edge <= 0) {
    *ow = p->size_w, *oh = p->size_h;
    return;
  }
  const int s = p->shortest_edge;
  const int shorter = w <= h ? w : h, longer = w <= h ? h : w;
  const int nl = (int)((double)s * longer / shorter);
  *ow = w <= h ? s : nl;
  *oh = w <= h ? nl : s;
}

/* center_crop along one axis: out index i reads in index first + i (zero where that is
 * outside). transformers pads a smaller picture by (new - orig) // 2 and slices the crop
 * window out of the padded one, so an odd pad leaves one row fewer: *n says how many. */
static void crop_axis(int orig, int crop, int *first, int *n) {
  const int big = crop > orig ? crop : orig, pad = (big - orig) / 2;
  const int d = orig - crop, top = d >= 0 ? d / 2 : -((-d + 1) / 2); /* Python's // */
  const int t = top + pad, lo = t > 0 ? t : 0, hi = t + crop < big ? t + crop : big;
  *first = lo - pad;
  *n = hi - lo;
}

static int one(const sdr_clip_image_processor *p, const sdr_image *src, float **out, int *oh,
               int *ow) {
  sdr_image *rgb = NULL, *sized = NULL;
  const sdr_image *img = src;
  if (p->do_convert_rgb && img->channels != 3) {
    if (!(rgb = sdr_image_convert(img, 3)))
      return -1;
    img = rgb;
  }
  if (img->channels != 3) {
    sdr_image_free(rgb);
    return sdr_fail("feature_extractor: a %s picture; RGB expected (do_convert_rgb is off)",
                    sdr_image_mode_name(img->channels));
  }
  if (p->do_resize) {
    int w, h;
    resized_size(p, img->width, img->height, &w, &h);
    sized = sdr_image_resize(img, w, h, p->resample);
    sdr_image_free(rgb);
    rgb = NULL;
    if (!sized)
      return -1;
    img = sized;
  }
  int x0 = 0, y0 = 0, w = img->width, h = img->height;
  if (p->do_center_crop) {
    crop_axis(img->width, p->crop_w, &x0, &w);
    crop_axis(img->height, p->crop_h, &y0, &h);
  }
  float *px = w > 0 && h > 0 ? malloc((size_t)3 * w * h * sizeof *px) : NULL;
  if (!px) {
    sdr_image_free(rgb);
    sdr_image_free(sized);
    return sdr_fail(w > 0 && h > 0 ? "out of memory" : "feature_extractor: nothing left to crop");
  }
  const float mean[3] = {(float)p->mean[0], (float)p->mean[1], (float)p->mean[2]};
  const float std[3] = {(float)p->std[0], (float)p->std[1], (float)p->std[2]};
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        const int sy = y0 + y, sx = x0 + x;
        const int in = sy >= 0 && sy < img->height && sx >= 0 && sx < img->width;
        const uint8_t u = in ? img->pixels[((size_t)sy * img->width + sx) * 3 + c] : 0;
        float v = p->do_rescale ? (float)((double)u * p->rescale_factor) : (float)u;
        if (p->do_normalize)
          v = (v - mean[c]) / std[c];
        px[((size_t)c * h + y) * w + x] = v;
      }
  sdr_image_free(rgb);
  sdr_image_free(sized);
  *out = px;
  *oh = h;
  *ow = w;
  return 0;
}

int sdr_clip_image_processor_run(const sdr_clip_image_processor *p, const sdr_image *const *imgs,
                                 int n, float **out, int *height, int *width) {
  float *all = NULL;
  int H = 0, W = 0;
  for (int i = 0; i < n; i++) {
    float *px = NULL;
    int h = 0, w = 0;
    if (one(p, imgs[i], &px, &h, &w) != 0) {
      free(all);
      return -1;
    }
    if (i == 0) {
      H = h, W = w;
      all = malloc((size_t)n * 3 * h * w * sizeof *all);
      if (!all) {
        free(px);
        return sdr_fail("out of memory");
      }
    } else if (h != H || w != W) {
      free(px);
      free(all);
      return sdr_fail("feature_extractor: picture %d comes out %dx%d, the first %dx%d; they must "
                      "all be one size (turn do_center_crop on)",
                      i + 1, w, h, W, H);
    }
    memcpy(all + (size_t)i * 3 * H * W, px, (size_t)3 * H * W * sizeof *px);
    free(px);
  }
  *out = all;
  *height = H;
  *width = W;
  return 0;
}

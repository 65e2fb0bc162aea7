/* engine/image_processor.c — VaeImageProcessor's preprocess and postprocess. */
#include "engine/image_processor.h"

#include <math.h>
#include <stdlib.h>

#include "engine/error.h" // sdr_fail

static int to_pixels(const sdr_image *img, int width, int height, int normalize, int resample,
                     float *out) {
  sdr_image *rgb = NULL, *sized = NULL;
  const sdr_image *src = img;
  if (src->channels != 3) {
    rgb = sdr_image_convert(src, 3);
    if (!rgb)
      return -1;
    src = rgb;
  }
  /* VaeImageProcessor.resize with its resample (Lanczos by default) */
  if (width != src->width || height != src->height) {
    sized = sdr_image_resize(src, width, height, resample);
    if (!sized) {
      sdr_image_free(rgb);
      return -1;
    }
    src = sized;
  }
  /* pil_to_numpy (/255 in float32), then normalize (2x - 1), NHWC to NCHW. */
  const int w = width, h = height;
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        float v = (float)src->pixels[((size_t)y * w + x) * 3 + c] / 255.0f;
        out[((size_t)c * h + y) * w + x] = normalize ? 2.0f * v - 1.0f : v;
      }
  sdr_image_free(rgb);
  sdr_image_free(sized);
  return 0;
}

int sdr_image_to_pixels(const sdr_image *img, int width, int height, float *out) {
  return to_pixels(img, width, height, 1, SDR_RESAMPLE_LANCZOS, out);
}

int sdr_image_to_pixels_with(const sdr_image *img, int width, int height, int resample,
                             float *out) {
  return to_pixels(img, width, height, 1, resample, out);
}

int sdr_image_to_unit_pixels(const sdr_image *img, int width, int height, float *out) {
  return to_pixels(img, width, height, 0, SDR_RESAMPLE_LANCZOS, out);
}

int sdr_image_to_tensor(const sdr_image *img, int factor, float **data, int *height, int *width) {
  int w = img->width - img->width % factor, h = img->height - img->height % factor;
  if (w < factor || h < factor)
    return sdr_fail("the image is %dx%d; it must be at least %dx%d", img->width, img->height,
                    factor, factor);
  float *out = malloc((size_t)3 * w * h * sizeof *out);
  if (!out)
    return sdr_fail("out of memory");
  if (sdr_image_to_pixels(img, w, h, out) != 0) {
    free(out);
    return -1;
  }
  *data = out;
  *height = h;
  *width = w;
  return 0;
}

/* F.interpolate(mode="nearest"): source index floor(i * in / out); then 2v - 1 when map */
static void nearest(const float *x, int B, int C, int H, int W, int height, int width, int map,
                    float *out) {
  const float sy = (float)H / (float)height, sx = (float)W / (float)width;
  for (int b = 0; b < B; b++)
    for (int c = 0; c < C; c++)
      for (int y = 0; y < height; y++) {
        int iy = (int)floorf((float)y * sy);
        iy = iy < H ? iy : H - 1;
        for (int xx = 0; xx < width; xx++) {
          int ix = (int)floorf((float)xx * sx);
          ix = ix < W ? ix : W - 1;
          float v = x[(((size_t)b * C + c) * H + iy) * W + ix];
          out[(((size_t)b * C + c) * height + y) * width + xx] = map ? 2.0f * v - 1.0f : v;
        }
      }
}

int sdr_pixels_preprocess(const float *x, int B, int C, int H, int W, int height, int width,
                          float *out) {
  float lo = 0;
  const size_t n = (size_t)B * C * H * W;
  for (size_t i = 0; i < n; i++)
    lo = i == 0 || x[i] < lo ? x[i] : lo;
  const int normalize = lo >= 0; /* [-1, 1] given: taken as it is (with diffusers' warning) */
  nearest(x, B, C, H, W, height, width, normalize, out);
  return normalize;
}

void sdr_pixels_resize_nearest(const float *x, int B, int C, int H, int W, int height, int width,
                               float *out) {
  nearest(x, B, C, H, W, height, width, 0, out);
}

static float denormalize(float v) {
  v = v / 2.0f + 0.5f;
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

void sdr_tensor_to_np(const float *x, int B, int H, int W, float *out) {
  for (int b = 0; b < B; b++)
    for (int y = 0; y < H; y++)
      for (int px = 0; px < W; px++)
        for (int c = 0; c < 3; c++)
          out[(((size_t)b * H + y) * W + px) * 3 + c] =
              denormalize(x[(((size_t)b * 3 + c) * H + y) * W + px]);
}

int sdr_tensor_to_images(const float *x, int B, int H, int W, sdr_image **imgs) {
  for (int b = 0; b < B; b++)
    imgs[b] = NULL;
  for (int b = 0; b < B; b++) {
    sdr_image *img = sdr_image_new(W, H, 3);
    if (!img) {
      for (int k = 0; k < b; k++)
        sdr_image_free(imgs[k]), imgs[k] = NULL;
      return -1;
    }
    for (int y = 0; y < H; y++)
      for (int px = 0; px < W; px++)
        for (int c = 0; c < 3; c++) {
          /* numpy_to_pil: (images * 255).round().astype("uint8"), round half to even */
          float v = denormalize(x[(((size_t)b * 3 + c) * H + y) * W + px]) * 255.0f;
          img->pixels[((size_t)y * W + px) * 3 + c] = (uint8_t)nearbyintf(v);
        }
    imgs[b] = img;
  }
  return 0;
}

sdr_image *sdr_latents_preview(const float *latents, int C, int h, int w) {
  /* A linear map from SD 1.x's four latent channels to RGB, fitted by the
   * community for previews; other channel counts show channel 0 as grey. */
  static const float to_rgb[4][3] = {{0.3512f, 0.2297f, 0.3227f},
                                     {0.3250f, 0.4974f, 0.2350f},
                                     {-0.2829f, 0.1762f, 0.2721f},
                                     {-0.2120f, -0.2616f, -0.7177f}};
  sdr_image *img = sdr_image_new(w, h, 3);
  if (!img)
    return NULL;
  const size_t plane = (size_t)h * w;
  for (size_t i = 0; i < plane; i++)
    for (int c = 0; c < 3; c++) {
      float v = 0;
      if (C == 4)
        for (int k = 0; k < 4; k++)
          v += latents[k * plane + i] * to_rgb[k][c];
      else
        v = latents[i];
      v = (v + 1.0f) * 0.5f;
      img->pixels[i * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 1 ? 255 : v * 255.0f + 0.5f);
    }
  return img;
}

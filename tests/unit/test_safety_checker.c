/* tests/unit/test_safety_checker.c — the safety checker's stages against diffusers 0.27.2
 * and transformers 4.40.2.
 *
 * Reference: tests/reference/safety_checker/ and tests/models/tiny-sd-sc/safety_checker
 * (scripts/reference/make_safety_checker_cases.py).
 *   - CLIPImageProcessor at CompVis' 224 settings from 64x64, 96x80 and 300x200 pictures:
 *     the resized and cropped pixels equal transformers' (Pillow's bicubic) exactly, and
 *     pixel_values within 1e-6;
 *   - the tiny checker on one run's pixel_values: the feature extractor's own
 *     pixel_values within 1e-6, image_embeds and both cosine similarities within 1e-5
 *     (relative to the largest), and the flags the reference run got;
 *   - vision_config_dict wins over vision_config, with CLIPVisionConfig's defaults;
 *   - the verdict rule: a special-care concept above its threshold adds 0.01, and
 *     scores round to 3 places before the comparison.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/arena.h"                // sdr_arena
#include "engine/clip_image_processor.h" // sdr_clip_image_processor_run
#include "engine/error.h"                // sdr_last_error
#include "engine/image.h"                // sdr_image_load
#include "engine/npy.h"                  // sdr_npy_read
#include "engine/safety_checker.h"       // sdr_safety_checker
#include "kernels/cpu/cpu_backend.h"     // sdr_cpu_backend_create

#define REF "tests/reference/safety_checker/"
#define MODEL "tests/models/tiny-sd-sc/"

static int load(const char *name, sdr_npy *a) {
  char path[256];
  snprintf(path, sizeof path, REF "%s.npy", name);
  if (sdr_npy_read(path, a) != 0) {
    fprintf(stderr, "cannot read %s: %s\n", path, sdr_last_error());
    check_failures++;
    return -1;
  }
  return 0;
}

/* max |got - want| / max |want| (scale 1 for small references) below tol */
static void close_to(const char *what, const float *got, const float *want, size_t n, double tol,
                     int relative) {
  double diff = 0, scale = relative ? 0 : 1;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - want[i]);
    diff = !(d <= diff) ? (isnan(d) ? INFINITY : d) : diff;
    if (relative && fabs(want[i]) > scale)
      scale = fabs(want[i]);
  }
  if (!(diff <= tol * scale)) {
    fprintf(stderr, "%s: max difference %.3g (tolerance %.3g)\n", what, diff, tol * scale);
    for (size_t i = 0, shown = 0; i < n && shown < 5; i++)
      if (!(fabs((double)got[i] - want[i]) <= tol * scale)) {
        fprintf(stderr, "  [%zu] %.7g, reference %.7g\n", i, got[i], want[i]);
        shown++;
      }
    check_failures++;
  }
}

static void feature_extractor_cases(void) {
  static const int sizes[][2] = {{64, 64}, {96, 80}, {300, 200}};
  sdr_clip_image_processor fe, raw;
  sdr_clip_image_processor_default(&fe);
  raw = fe;
  raw.do_rescale = raw.do_normalize = 0;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char path[256], name[64];
    snprintf(path, sizeof path, REF "fe_%dx%d.png", sizes[i][0], sizes[i][1]);
    sdr_image *img = sdr_image_load(path);
    CHECK(img != NULL);
    if (!img)
      continue;
    snprintf(name, sizeof name, "fe_%dx%d_crop", sizes[i][0], sizes[i][1]);
    sdr_npy crop;
    float *px = NULL;
    int h = 0, w = 0;
    const sdr_image *list[] = {img};
    if (load(name, &crop) == 0) {
      CHECK(sdr_clip_image_processor_run(&raw, list, 1, &px, &h, &w) == 0);
      CHECK(h == 224 && w == 224 && crop.dtype == SDR_U8 && crop.shape[0] == 224 &&
            crop.shape[1] == 224 && crop.shape[2] == 3);
      int diffs = 0;
      const uint8_t *u = crop.data;
      for (int c = 0; px && c < 3; c++)
        for (int y = 0; y < h; y++)
          for (int x = 0; x < w; x++)
            diffs += px[((size_t)c * h + y) * w + x] != u[((size_t)y * w + x) * 3 + c];
      if (diffs)
        fprintf(stderr, "%s: %d pixels differ from transformers'\n", name, diffs);
      CHECK(diffs == 0);
      free(px);
      sdr_npy_free(&crop);
    }
    if (i == 0) {
      sdr_npy pv;
      if (load("fe_64x64_pixel_values", &pv) == 0) {
        CHECK(sdr_clip_image_processor_run(&fe, list, 1, &px, &h, &w) == 0);
        if (px)
          close_to("pixel_values at 224", px, pv.data, pv.count, 1e-6, 0);
        free(px);
        sdr_npy_free(&pv);
      }
    }
    sdr_image_free(img);
  }
  /* CompVis' config: sizes as ints */
  CHECK(sdr_clip_image_processor_load(&fe, MODEL "feature_extractor/preprocessor_config.json") ==
        0);
  CHECK(fe.shortest_edge == 32 && fe.crop_h == 32 && fe.crop_w == 32 && fe.resample == 3);
}

/* The pictures of the reference run t2i_n3 (np, (B, H, W, 3) in [0, 1]) as PIL makes them. */
static int run_pictures(sdr_image **imgs, int *B) {
  sdr_npy run;
  if (load("t2i_n3_unchecked", &run) != 0)
    return -1;
  *B = (int)run.shape[0];
  const int H = (int)run.shape[1], W = (int)run.shape[2];
  const float *v = run.data;
  for (int b = 0; b < *B; b++) {
    imgs[b] = sdr_image_new(W, H, 3);
    for (size_t i = 0; i < (size_t)H * W * 3; i++) /* numpy_to_pil: (x * 255).round() */
      imgs[b]->pixels[i] = (uint8_t)nearbyintf(v[(size_t)b * H * W * 3 + i] * 255.0f);
  }
  sdr_npy_free(&run);
  return 0;
}

static void checker_cases(sdr_backend *be) {
  sdr_safety_checker sc;
  if (sdr_safety_checker_load(&sc, be, MODEL "safety_checker", NULL, -1) != 0) {
    fprintf(stderr, "load: %s\n", sdr_last_error());
    check_failures++;
    return;
  }
  /* vision_config says gelu; vision_config_dict says nothing, so quick_gelu */
  CHECK(sc.vision.cfg.quick_gelu == 1 && sc.vision.cfg.image_size == 32 &&
        sc.vision.cfg.patch_size == 4 && sc.projection_dim == 16);
  sdr_arena a;
  sdr_arena_init(&a, be);
  sdr_npy pv, emb, sp, cp;
  sdr_image *imgs[8] = {0};
  int B = 0;
  sdr_clip_image_processor fe;
  CHECK(sdr_clip_image_processor_load(&fe, MODEL "feature_extractor/preprocessor_config.json") ==
        0);
  if (load("t2i_n3_pixel_values", &pv) == 0 && run_pictures(imgs, &B) == 0) {
    float *mine = NULL;
    int h = 0, w = 0;
    CHECK(sdr_clip_image_processor_run(&fe, (const sdr_image *const *)imgs, B, &mine, &h, &w) == 0);
    CHECK(B == pv.shape[0] && h == 32 && w == 32);
    if (mine)
      close_to("pixel_values", mine, pv.data, pv.count, 1e-6, 0);
    free(mine);
  }
  if (pv.data && load("t2i_n3_image_embeds", &emb) == 0 && load("t2i_n3_special_cos", &sp) == 0 &&
      load("t2i_n3_concept_cos", &cp) == 0) {
    const int64_t n = pv.shape[0];
    float *e = malloc((size_t)n * 16 * sizeof *e);
    float *s = malloc((size_t)n * 3 * sizeof *s), *c = malloc((size_t)n * 17 * sizeof *c);
    unsigned char flags[8];
    CHECK(sdr_safety_checker_scores(&sc, &a, pv.data, n, 32, e, s, c) == 0);
    close_to("image_embeds", e, emb.data, emb.count, 1e-5, 1);
    close_to("special_cos", s, sp.data, sp.count, 1e-5, 0);
    close_to("concept_cos", c, cp.data, cp.count, 1e-5, 0);
    CHECK(sdr_safety_checker_verdicts(&sc, &a, s, c, n, flags) == 0);
    for (int64_t b = 0; b < n; b++)
      CHECK(flags[b] == 1); /* the manifest's flags for t2i_n3 */

    /* the rule, on made-up similarities against the model's thresholds */
    float cw[17], sw[3];
    sdr_tensor t32;
    sdr_arena_tensor(&a, &t32, SDR_F32, 1, (int64_t[]){17});
    sdr_cast(be, &t32, &sc.concept_w);
    sdr_download(be, cw, t32.data, sizeof cw);
    sdr_arena_tensor(&a, &t32, SDR_F32, 1, (int64_t[]){3});
    sdr_cast(be, &t32, &sc.special_w);
    sdr_download(be, sw, t32.data, sizeof sw);
    float s1[3], c1[17];
    for (int k = 0; k < 3; k++)
      s1[k] = sw[k] - 0.1f;
    for (int k = 0; k < 17; k++)
      c1[k] = cw[k] - 0.1f;
    c1[5] = cw[5] + 0.0004f; /* rounds to 0: not flagged */
    CHECK(sdr_safety_checker_verdicts(&sc, &a, s1, c1, 1, flags) == 0 && flags[0] == 0);
    c1[5] = cw[5] + 0.0007f; /* rounds to 0.001 */
    CHECK(sdr_safety_checker_verdicts(&sc, &a, s1, c1, 1, flags) == 0 && flags[0] == 1);
    c1[5] = cw[5] - 0.008f; /* below, until a special-care concept adds 0.01 */
    CHECK(sdr_safety_checker_verdicts(&sc, &a, s1, c1, 1, flags) == 0 && flags[0] == 0);
    s1[2] = sw[2] + 0.002f;
    CHECK(sdr_safety_checker_verdicts(&sc, &a, s1, c1, 1, flags) == 0 && flags[0] == 1);
    free(e);
    free(s);
    free(c);
    sdr_npy_free(&emb);
    sdr_npy_free(&sp);
    sdr_npy_free(&cp);
  }
  sdr_npy_free(&pv);
  for (int b = 0; b < B; b++)
    sdr_image_free(imgs[b]);
  sdr_arena_free(&a);
  sdr_safety_checker_free(&sc);
}

int main(void) {
  sdr_backend *be = sdr_cpu_backend_create();
  feature_extractor_cases();
  checker_cases(be);
  sdr_cpu_backend_destroy(be);
  return check_exit();
}

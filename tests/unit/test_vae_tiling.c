/* tests/unit/test_vae_tiling.c — VAE tiling against diffusers 0.27.2's enable_tiling().
 *
 * Reference: tests/reference/vae_tiling/ and tests/models/tiny-vae-tiling/
 * (scripts/reference/make_vae_tiling_cases.py). The VAE has sample_size 32 and
 * two blocks: 32-pixel and 16-latent tiles.
 *   - every case of the manifest through sdr_vae_decode_tiled or
 *     sdr_vae_encode_tiled: max |ours - diffusers| / max |diffusers| < 1e-4;
 *   - cases at or below the tile's size are bit for bit the untiled call, and
 *     tiled cases differ from it (tiling did engage);
 *   - two whole runs of tiny-sd-b with pipe.enable_vae_tiling() (txt2img
 *     decodes a 32x48 picture in tiles, img2img also encodes one): max abs
 *     difference of output_type="np" below 2e-3, as test_pipelines.lua holds
 *     whole runs; the txt2img run again with vae_slicing too;
 *   - the errors a config can cause: tiles too small, tiles that do not split
 *     an image into multiples of the VAE's factor, tiles whose joined size is
 *     not the image's.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/arena.h"            // sdr_arena
#include "engine/error.h"            // sdr_last_error
#include "engine/generator.h"        // sdr_generator
#include "engine/image.h"            // sdr_image_load
#include "engine/image_processor.h"  // sdr_tensor_to_np
#include "engine/npy.h"              // sdr_npy_read
#include "engine/pipeline.h"         // sdr_pipeline
#include "engine/vae_tiling.h"       // sdr_vae_decode_tiled, sdr_vae_encode_tiled
#include "kernels/cpu/cpu_backend.h" // sdr_cpu_backend_create

#include <cjson/cJSON.h>

#define REF "tests/reference/vae_tiling/"
static const double TOL = 1e-4;     /* relative, per tensor */
static const double RUN_TOL = 2e-3; /* max abs on [0, 1] pictures */

static sdr_backend *be;
static sdr_arena arena;

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  if (buf)
    buf[n] = 0;
  fclose(f);
  return buf;
}

/* A float32 .npy of the reference; a failed check when missing. */
static int load(const char *name, sdr_npy *a) {
  char path[256];
  snprintf(path, sizeof path, REF "%s.npy", name);
  if (sdr_npy_read(path, a) != 0 || a->dtype != SDR_F32 || a->ndim != 4) {
    fprintf(stderr, "cannot read %s: %s\n", path, sdr_last_error());
    check_failures++;
    return -1;
  }
  return 0;
}

/* max |got - want| / max |want|, printing the first mismatches. */
static double rel_err(const char *what, const float *got, const float *want, size_t n) {
  double diff = 0, scale = 0;
  int shown = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - want[i]);
    if (!(d <= diff))
      diff = isnan(d) ? INFINITY : d;
    if (fabs(want[i]) > scale)
      scale = fabs(want[i]);
  }
  double err = scale > 0 ? diff / scale : diff;
  for (size_t i = 0; i < n && err >= TOL && shown < 5; i++)
    if (!(fabs((double)got[i] - want[i]) <= TOL * scale)) {
      fprintf(stderr, "  %s[%zu]: %.7g, diffusers %.7g\n", what, i, got[i], want[i]);
      shown++;
    }
  return err;
}

/* ---- VAE cases ----------------------------------------------------------------- */

/* One call on the backend: host input -> host output of out_shape. */
static float *run_vae(sdr_vae *v, int tiled, int decode, const sdr_npy *in,
                      const int64_t *out_shape) {
  sdr_arena_reset(&arena);
  sdr_tensor x, y;
  size_t n = (size_t)(out_shape[0] * out_shape[1] * out_shape[2] * out_shape[3]);
  float *host = malloc(n * sizeof *host);
  if (!host || sdr_arena_tensor(&arena, &x, SDR_F32, 4, in->shape) != 0 ||
      sdr_arena_tensor(&arena, &y, SDR_F32, 4, out_shape) != 0 ||
      sdr_upload(be, x.data, in->data, in->count * sizeof(float)) != 0)
    goto fail;
  int rc = decode ? (tiled ? sdr_vae_decode_tiled : sdr_vae_decode)(v, &arena, &y, &x)
                  : (tiled ? sdr_vae_encode_tiled : sdr_vae_encode)(v, &arena, &y, &x);
  if (rc != 0 || sdr_download(be, host, y.data, n * sizeof *host) != 0)
    goto fail;
  return host;
fail:
  fprintf(stderr, "vae call failed: %s\n", sdr_last_error());
  check_failures++;
  free(host);
  return NULL;
}

static void vae_case(sdr_vae *v, const cJSON *c) {
  const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
  const int decode = strcmp(cJSON_GetObjectItem(c, "kind")->valuestring, "decode") == 0;
  const int tiled = cJSON_IsTrue(cJSON_GetObjectItem(c, "tiled"));
  char key[128];
  sdr_npy in = {0}, want = {0};
  snprintf(key, sizeof key, "%s_in", name);
  if (load(key, &in) != 0)
    return;
  snprintf(key, sizeof key, "%s_out", name);
  if (load(key, &want) != 0) {
    sdr_npy_free(&in);
    return;
  }
  float *got = run_vae(v, 1, decode, &in, want.shape);
  float *plain = run_vae(v, 0, decode, &in, want.shape);
  if (got && plain) {
    double e = rel_err(name, got, want.data, want.count);
    CHECK(e < TOL);
    int same = memcmp(got, plain, want.count * sizeof *got) == 0;
    CHECK(same == !tiled);
    printf("%-14s %s relative error %.2e (%s)\n", name, tiled ? "tiled  " : "untiled", e,
           same ? "the untiled call, bit for bit" : "differs from the untiled call");
    if (e >= TOL || same != !tiled)
      fprintf(stderr, "%s: relative error %.3g, same as untiled: %d\n", name, e, same);
  }
  free(got);
  free(plain);
  sdr_npy_free(&in);
  sdr_npy_free(&want);
}

/* A tiled call that must fail with a message containing expect. */
static void expect_error(sdr_vae *v, int decode, const char *input, const int64_t *out_shape,
                         const char *expect) {
  sdr_npy in = {0};
  if (load(input, &in) != 0)
    return;
  sdr_arena_reset(&arena);
  sdr_tensor x, y;
  int rc = sdr_arena_tensor(&arena, &x, SDR_F32, 4, in.shape) |
           sdr_arena_tensor(&arena, &y, SDR_F32, 4, out_shape);
  CHECK(rc == 0);
  if (rc == 0) {
    sdr_upload(be, x.data, in.data, in.count * sizeof(float));
    rc = decode ? sdr_vae_decode_tiled(v, &arena, &y, &x) : sdr_vae_encode_tiled(v, &arena, &y, &x);
    CHECK(rc == -1);
    if (!strstr(sdr_last_error(), expect)) {
      fprintf(stderr, "error \"%s\" does not say \"%s\"\n", sdr_last_error(), expect);
      check_failures++;
    }
  }
  sdr_npy_free(&in);
}

static void vae_cases(void) {
  sdr_vae v;
  if (sdr_vae_load(&v, be, "tests/models/tiny-vae-tiling", NULL, -1) != 0) {
    fprintf(stderr, "cannot load the VAE: %s\n", sdr_last_error());
    check_failures++;
    return;
  }
  char *text = read_text(REF "manifest.json");
  cJSON *m = text ? cJSON_Parse(text) : NULL;
  free(text);
  CHECK(m != NULL);
  if (m) {
    CHECK(sdr_vae_tile_sample_size(&v) == cJSON_GetObjectItem(m, "tile_sample_min_size")->valueint);
    CHECK(sdr_vae_tile_latent_size(&v) == cJSON_GetObjectItem(m, "tile_latent_min_size")->valueint);
    const cJSON *c;
    int n = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(m, "cases")) {
      vae_case(&v, c);
      n++;
    }
    CHECK(n == 12);
    cJSON_Delete(m);
  }

  /* Configs that cannot tile as diffusers would. */
  v.cfg.sample_size =
      2; /* 1-latent tiles: overlap_size int(0.75) = 0 (Python: range() arg 3 is 0) */
  expect_error(&v, 1, "dec_64x64_in", (int64_t[]){1, 3, 64, 64}, "too small to tile");
  v.cfg.sample_size = 29; /* 29-pixel tiles every 21: odd sides the encoder cannot halve */
  expect_error(&v, 0, "enc_64x64_in", (int64_t[]){1, 8, 32, 32}, "not multiples of 2");
  v.cfg.sample_size = 36; /* 18-latent tiles every 13 keep 27 pixels: 66 joined, not 64 */
  expect_error(&v, 1, "dec_64x64_in", (int64_t[]){1, 3, 64, 64},
               "tiling gives float32 (1, 3, 66, 66)");
  v.cfg.sample_size = 32;
  expect_error(&v, 1, "dec_64x64_in", (int64_t[]){1, 3, 64, 60},
               "the output is float32 (1, 3, 64, 60)");
  sdr_vae_free(&v);
}

/* ---- whole runs ---------------------------------------------------------------- */

static void pipeline_run(sdr_pipeline *p, const char *name, const sdr_generate *g, int slicing) {
  sdr_npy want = {0};
  char key[64];
  snprintf(key, sizeof key, "run_%s", name);
  if (load(key, &want) != 0)
    return;
  p->vae_slicing = slicing;
  sdr_generated out;
  if (sdr_pipeline_generate(p, g, &out) != 0) {
    fprintf(stderr, "%s: %s\n", name, sdr_last_error());
    check_failures++;
    sdr_npy_free(&want);
    return;
  }
  const int B = (int)out.shape[0], H = (int)out.shape[2], W = (int)out.shape[3];
  CHECK(want.shape[0] == B && want.shape[1] == H && want.shape[2] == W && want.shape[3] == 3);
  if (want.count == (size_t)B * H * W * 3) {
    float *np = malloc(want.count * sizeof *np);
    sdr_tensor_to_np(out.data, B, H, W, np);
    double diff = 0;
    const float *ref = want.data;
    for (size_t i = 0; i < want.count; i++) {
      double d = fabs((double)np[i] - ref[i]);
      if (!(d <= diff))
        diff = isnan(d) ? INFINITY : d;
    }
    CHECK(diff < RUN_TOL);
    printf("run %-10s%s max abs diff %.2e\n", name, slicing ? " (sliced)" : "         ", diff);
    free(np);
  }
  sdr_generated_free(&out);
  sdr_npy_free(&want);
}

static void pipeline_runs(void) {
  sdr_pipeline p;
  if (sdr_pipeline_load(&p, be, "tests/models/tiny-sd-b", NULL, -1) != 0) {
    fprintf(stderr, "cannot load tiny-sd-b: %s\n", sdr_last_error());
    check_failures++;
    return;
  }
  p.vae_tiling = 1;
  sdr_generator gen;
  sdr_generator *gens[1] = {&gen};
  const char *t2i_prompt[] = {"a red cube"}, *i2i_prompt[] = {"a sketch"};
  sdr_generate g = {.prompts = t2i_prompt,
                    .nprompts = 1,
                    .height = 32,
                    .width = 48,
                    .num_inference_steps = 4,
                    .guidance_scale = 7.5f,
                    .num_images_per_prompt = 2,
                    .generators = gens,
                    .ngenerators = 1};
  for (int slicing = 0; slicing < 2; slicing++) {
    sdr_generator_init(&gen, SDR_GENERATOR_CPU);
    sdr_generator_manual_seed(&gen, 5);
    pipeline_run(&p, "t2i_tiled", &g, slicing);
  }
  sdr_image *init = sdr_image_load(REF "init_image.png");
  CHECK(init != NULL && init->width == 48 && init->height == 32);
  if (init) {
    sdr_generate i2i = {.prompts = i2i_prompt,
                        .nprompts = 1,
                        .num_inference_steps = 5,
                        .guidance_scale = 7.5f,
                        .num_images_per_prompt = 1,
                        .strength = 0.8f,
                        .image = init,
                        .generators = gens,
                        .ngenerators = 1};
    sdr_generator_init(&gen, SDR_GENERATOR_CPU);
    sdr_generator_manual_seed(&gen, 6);
    pipeline_run(&p, "i2i_tiled", &i2i, 0);
    sdr_image_free(init);
  }
  sdr_pipeline_free(&p);
}

int main(void) {
  be = sdr_cpu_backend_create();
  if (!be) {
    fprintf(stderr, "no CPU backend: %s\n", sdr_last_error());
    return 1;
  }
  sdr_arena_init(&arena, be);
  vae_cases();
  pipeline_runs();
  sdr_arena_free(&arena);
  sdr_cpu_backend_destroy(be);
  return check_exit();
}

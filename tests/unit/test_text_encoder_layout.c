/* A text encoder saved by transformers 5 names its tensors without the
 * "text_model." prefix ("encoder.layers.0.mlp.fc1.weight"): a pipeline folder
 * whose text_encoder is written that way gives the very pictures of the folder
 * it was made from (tests/models/tiny-sd-a), and a tensor missing from it is
 * still reported by name.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "short_run.h"               // short_run
#include "engine/error.h"            // sdr_last_error
#include "engine/pipeline.h"         // sdr_pipeline_*
#include "engine/safetensors.h"      // sdr_safetensors_*
#include "kernels/cpu/cpu_backend.h" // sdr_cpu_backend_create

#define MODEL "tests/models/tiny-sd-a"

static int link_to(const char *src, const char *dst) {
  char abs[PATH_MAX];
  return realpath(src, abs) && symlink(abs, dst) == 0 ? 0 : -1;
}

/* dir: the model's folder with text_encoder/model.safetensors written without
 * "text_model." (and without `drop`, when given). */
static int make_folder(const char *dir, const char *drop) {
  static const char *const same[] = {"model_index.json", "unet", "vae", "tokenizer", "scheduler"};
  char src[PATH_MAX], dst[PATH_MAX];
  for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
    snprintf(src, sizeof src, "%s/%s", MODEL, same[i]);
    snprintf(dst, sizeof dst, "%s/%s", dir, same[i]);
    if (link_to(src, dst) != 0)
      return -1;
  }
  snprintf(dst, sizeof dst, "%s/text_encoder", dir);
  if (mkdir(dst, 0700) != 0)
    return -1;
  snprintf(dst, sizeof dst, "%s/text_encoder/config.json", dir);
  if (link_to(MODEL "/text_encoder/config.json", dst) != 0)
    return -1;
  sdr_safetensors *st = sdr_safetensors_open(MODEL "/text_encoder/model.safetensors");
  if (!st)
    return -1;
  size_t n = sdr_safetensors_count(st), k = 0;
  sdr_st_tensor *t = calloc(n, sizeof *t);
  for (size_t i = 0; t && i < n; i++) {
    sdr_st_tensor one = *sdr_safetensors_at(st, i);
    if (strncmp(one.name, "text_model.", 11) == 0)
      one.name += 11;
    if (drop && strcmp(one.name, drop) == 0)
      continue;
    t[k++] = one;
  }
  snprintf(dst, sizeof dst, "%s/text_encoder/model.safetensors", dir);
  int rc = t ? sdr_safetensors_write(dst, t, k) : -1;
  free(t);
  sdr_safetensors_close(st);
  return rc;
}

static void remove_folder(const char *dir) {
  char cmd[PATH_MAX + 16];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
}

int main(void) {
  const char *src = getenv("SDREPL_SOURCE_DIR");
  if (src && chdir(src) != 0)
    return 1;
  sdr_backend *be = sdr_cpu_backend_create();
  CHECK(be != NULL);

  sdr_pipeline ref;
  CHECK(sdr_pipeline_load(&ref, be, MODEL, NULL, -1) == 0);
  size_t n_ref = 0, n = 0;
  float *want = short_run(&ref, "tiny-sd-a", &n_ref);
  CHECK(want != NULL);
  sdr_pipeline_free(&ref);

  char dir[] = "/tmp/sdrepl-te5-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  CHECK(make_folder(dir, NULL) == 0);
  sdr_pipeline p;
  int loaded = sdr_pipeline_load(&p, be, dir, NULL, -1) == 0;
  if (!loaded)
    fprintf(stderr, "loading the unprefixed text encoder: %s\n", sdr_last_error());
  CHECK(loaded);
  if (loaded) {
    float *got = short_run(&p, "unprefixed text encoder", &n);
    CHECK(got && want && n == n_ref && memcmp(got, want, n * sizeof *got) == 0);
    free(got);
    sdr_pipeline_free(&p);
  }
  remove_folder(dir);

  /* A tensor missing from such a file is named as diffusers names it. */
  char dir2[] = "/tmp/sdrepl-te5-XXXXXX";
  CHECK(mkdtemp(dir2) != NULL);
  CHECK(make_folder(dir2, "final_layer_norm.bias") == 0);
  CHECK(sdr_pipeline_load(&p, be, dir2, NULL, -1) != 0);
  CHECK(strstr(sdr_last_error(), "missing 'text_model.final_layer_norm.bias'") != NULL);
  remove_folder(dir2);

  free(want);
  sdr_cpu_backend_destroy(be);
  return check_exit();
}

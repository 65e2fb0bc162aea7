/* PyTorch .bin folders and single-file checkpoints give the very pictures of
 * the diffusers folders they were made from (scripts/reference/make_checkpoint_cases.py):
 *
 *   tests/models/tiny-sd-a-bin              == tests/models/tiny-sd-a    (.bin weights)
 *   tests/models/tiny-sd-a-ldm.ckpt         == tests/models/tiny-sd-a    (LDM layout, CLIP, fp32)
 *   the same as .safetensors (written here) == tests/models/tiny-sd-a
 *   tests/models/tiny-sd-b-ldm.safetensors  == tests/models/tiny-sd-b    (OpenCLIP, fp16)
 *   tests/models/tiny-sd-c-ldm.safetensors, configuration inferred
 *                                           == the same with the configs diffusers made for it
 *
 * and the full-size key sets of SD 1.5 and SD 2.1 (768, v) single files
 * (tests/fixtures/single_file, as sparse files of the right shapes) give the
 * configs diffusers makes for them.
 *
 * "The very pictures" is bit-exact: the same tensors reach the same code. Also
 * the EMA choice, and the errors a user can meet (wrong files, sizes the rules
 * cannot guess, a tokenizer too big for the text encoder).
 */
#include <cJSON.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "short_run.h"               // short_run
#include "engine/error.h"            // sdr_last_error
#include "engine/pipeline.h"         // sdr_pipeline_*
#include "engine/single_file.h"      // sdr_pipeline_load_single_file_ex
#include "engine/torch_file.h"       // sdr_torch_file_*
#include "kernels/cpu/cpu_backend.h" // sdr_cpu_backend_create

#define MODELS "tests/models"

static int has(const char *msg, const char *part) {
  if (msg && strstr(msg, part))
    return 1;
  fprintf(stderr, "  expected \"%s\" in: %s\n", part, msg ? msg : "(null)");
  return 0;
}

static int load_folder(sdr_pipeline *p, sdr_backend *be, const char *dir, int keep) {
  if (sdr_pipeline_load(p, be, dir, NULL, keep) == 0)
    return 0;
  fprintf(stderr, "%s: %s\n", dir, sdr_last_error());
  check_failures++;
  return -1;
}

static int load_single(sdr_pipeline *p, sdr_backend *be, const char *path, int keep,
                       const sdr_single_file_options *o) {
  if (sdr_pipeline_load_single_file_ex(p, be, path, keep, o) == 0)
    return 0;
  fprintf(stderr, "%s: %s\n", path, sdr_last_error());
  check_failures++;
  return -1;
}

/* Runs both pipelines and checks the images are bit-identical. */
static void same_pictures(sdr_pipeline *a, sdr_pipeline *b, const char *what) {
  size_t na = 0, nb = 0;
  float *x = short_run(a, what, &na), *y = short_run(b, what, &nb);
  CHECK(x && y && na == nb && na > 0);
  if (x && y && na == nb) {
    size_t diff = 0;
    for (size_t i = 0; i < na; i++)
      diff += memcmp(&x[i], &y[i], sizeof *x) != 0;
    if (diff)
      fprintf(stderr, "%s: %zu of %zu values differ\n", what, diff, na);
    CHECK(diff == 0);
  }
  free(x);
  free(y);
}

/* ---- folders of .bin weights ---------------------------------------------------- */

static void test_bin_folder(sdr_backend *be) {
  sdr_pipeline st, bin;
  if (load_folder(&st, be, MODELS "/tiny-sd-a", -1) != 0)
    return;
  if (load_folder(&bin, be, MODELS "/tiny-sd-a-bin", -1) == 0) {
    same_pictures(&st, &bin, "tiny-sd-a-bin");
    sdr_pipeline_free(&bin);
  }
  sdr_pipeline_free(&st);
}

/* ---- single files with the folder's configs --------------------------------------- */

/* The .ckpt's tensors written to a .safetensors under the same names. */
static int ckpt_to_safetensors(const char *ckpt, const char *out) {
  sdr_torch_file *f = sdr_torch_file_open(ckpt);
  if (!f)
    return -1;
  size_t n = sdr_torch_file_count(f);
  sdr_st_tensor *t = calloc(n, sizeof *t);
  for (size_t i = 0; t && i < n; i++)
    t[i] = *sdr_torch_file_at(f, i);
  int rc = t ? sdr_safetensors_write(out, t, n) : -1;
  free(t);
  sdr_torch_file_close(f);
  return rc;
}

static void test_single_with_config(sdr_backend *be, const char *folder, const char *file,
                                    int keep) {
  sdr_pipeline ref, one;
  sdr_single_file_options o = {.config_dir = folder};
  if (load_folder(&ref, be, folder, keep) != 0)
    return;
  if (load_single(&one, be, file, keep, &o) == 0) {
    same_pictures(&ref, &one, file);
    sdr_pipeline_free(&one);
  }
  sdr_pipeline_free(&ref);
}

/* ---- inferred configuration --------------------------------------------------------- */

/* An inferred text config against a folder's: the same sizes; its token ids are those of
 * the configs diffusers would fetch (openai's and stabilityai's: bos 0, eos 2, pad 1),
 * where the folders hold their own. */
static int same_text_config(const sdr_clip_text_config *folder,
                            const sdr_clip_text_config *inferred) {
  sdr_clip_text_config c = *inferred;
  CHECK(c.bos_token_id == 0 && c.eos_token_id == 2 && c.pad_token_id == 1);
  c.bos_token_id = folder->bos_token_id;
  c.eos_token_id = folder->eos_token_id;
  c.pad_token_id = folder->pad_token_id;
  return memcmp(folder, &c, sizeof c) == 0;
}

static void test_inferred(sdr_backend *be) {
  const char *file = MODELS "/tiny-sd-c-ldm.safetensors";
  sdr_pipeline ref, one;
  sdr_single_file_options with = {.config_dir = MODELS "/tiny-sd-c-config"};
  sdr_single_file_options inferred = {.tokenizer_dir = MODELS "/tiny-sd-c-config/tokenizer"};
  if (load_single(&ref, be, file, -1, &with) != 0)
    return;
  if (load_single(&one, be, file, -1, &inferred) == 0) {
    const sdr_unet_config *a = &ref.unet.cfg, *b = &one.unet.cfg;
    CHECK(memcmp(a, b, sizeof *a) == 0); /* every field diffusers' config sets, as inferred */
    CHECK(memcmp(&ref.vae.cfg, &one.vae.cfg, sizeof ref.vae.cfg) == 0);
    CHECK(same_text_config(&ref.text_encoder.cfg, &one.text_encoder.cfg));
    /* create_scheduler_from_ldm's default, as diffusers made it for the config folder */
    CHECK_STR(sdr_scheduler_class_name(sdr_scheduler_kind_of(one.scheduler)), "DDIMScheduler");
    CHECK_STR(sdr_scheduler_class_name(sdr_scheduler_kind_of(ref.scheduler)), "DDIMScheduler");
    CHECK(one.unet.cfg.sample_size == 256); /* 512 pixels / the VAE's factor 2 */
    same_pictures(&ref, &one, "tiny-sd-c inferred");
    sdr_pipeline_free(&one);
  }
  sdr_pipeline_free(&ref);

  /* Without tokenizer_dir, CLIP ViT-L/14's: too many tokens for this text encoder. */
  CHECK(sdr_pipeline_load_single_file(&one, be, file, -1) != 0);
  CHECK(has(sdr_last_error(), "the tokenizer has 49408 tokens, the text encoder embeds 1514"));
  /* tiny-sd-a's 32-wide text encoder cannot be split into 64-channel heads */
  CHECK(sdr_pipeline_load_single_file(&one, be, MODELS "/tiny-sd-a-ldm.ckpt", -1) != 0);
  CHECK(has(sdr_last_error(), "does not split into CLIP's 64-channel heads; give config_dir"));
}

/* ---- full-size key sets ------------------------------------------------------------------ */

/* A .safetensors with the manifest's names and shapes whose data is a hole in
 * the file: the header is real, the 2 GB of zeros take no disk. */
static int sparse_checkpoint(const char *manifest, const char *out) {
  FILE *fp = fopen(manifest, "rb");
  if (!fp)
    return -1;
  static char text[1 << 18];
  size_t len = fread(text, 1, sizeof text - 1, fp);
  fclose(fp);
  text[len] = 0;
  cJSON *root = cJSON_Parse(text), *list = cJSON_GetObjectItem(root, "tensors"), *e;
  cJSON *header = cJSON_CreateObject();
  unsigned long long at = 0;
  cJSON_ArrayForEach(e, list) {
    const char *name = cJSON_GetArrayItem(e, 0)->valuestring;
    const char *dtype = cJSON_GetArrayItem(e, 1)->valuestring;
    cJSON *shape = cJSON_GetArrayItem(e, 2), *d;
    unsigned long long n = strcmp(dtype, "I64") == 0 ? 8 : 2;
    cJSON_ArrayForEach(d, shape) n *= (unsigned long long)d->valuedouble;
    cJSON *t = cJSON_AddObjectToObject(header, name);
    cJSON_AddStringToObject(t, "dtype", dtype);
    cJSON_AddItemToObject(t, "shape", cJSON_Duplicate(shape, 1));
    cJSON *offs = cJSON_AddArrayToObject(t, "data_offsets");
    cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)at));
    cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(at + n)));
    at += n;
  }
  char *h = cJSON_PrintUnformatted(header);
  size_t hlen = strlen(h), padded = (hlen + 7) / 8 * 8;
  int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  unsigned char n8[8];
  for (int i = 0; i < 8; i++)
    n8[i] = (unsigned char)(padded >> (8 * i));
  int ok = fd >= 0 && write(fd, n8, 8) == 8 && write(fd, h, hlen) == (ssize_t)hlen &&
           write(fd, "        ", padded - hlen) == (ssize_t)(padded - hlen) &&
           ftruncate(fd, (off_t)(8 + padded + at)) == 0;
  if (fd >= 0)
    close(fd);
  free(h);
  cJSON_Delete(header);
  cJSON_Delete(root);
  return ok ? 0 : -1;
}

static void test_full_size(sdr_backend *be, const char *tmp, const char *name, int sample_size,
                           const char *prediction) {
  char manifest[256], file[600], configs[256], tokenizer[4096];
  snprintf(manifest, sizeof manifest, "tests/fixtures/single_file/%s-keys.json", name);
  snprintf(configs, sizeof configs, "tests/fixtures/single_file/%s", name);
  snprintf(file, sizeof file, "%s/%s.safetensors", tmp, name);
  CHECK(sparse_checkpoint(manifest, file) == 0);
  CHECK(sdr_single_file_clip_tokenizer(tokenizer, sizeof tokenizer) == 0);
  sdr_single_file_options with = {.config_dir = configs, .tokenizer_dir = tokenizer};
  sdr_pipeline ref, one;
  if (load_single(&ref, be, file, -1, &with) == 0) {
    if (load_single(&one, be, file, -1, NULL) == 0) {
      CHECK(memcmp(&ref.unet.cfg, &one.unet.cfg, sizeof ref.unet.cfg) == 0);
      CHECK(memcmp(&ref.vae.cfg, &one.vae.cfg, sizeof ref.vae.cfg) == 0);
      CHECK(same_text_config(&ref.text_encoder.cfg, &one.text_encoder.cfg));
      CHECK(one.unet.cfg.sample_size == sample_size && one.unet.cfg.block_out_channels[3] == 1280);
      CHECK(one.text_encoder.cfg.vocab_size == 49408);
      CHECK(sdr_clip_tokenizer_pad_id(one.tokenizer) == (prediction[1] == 'v' ? 0 : 49407));
      CHECK(strstr(sdr_scheduler_config_json(one.scheduler), prediction) != NULL);
      CHECK(strstr(sdr_scheduler_config_json(ref.scheduler), prediction) != NULL);
      CHECK_STR(sdr_scheduler_class_name(sdr_scheduler_kind_of(one.scheduler)), "DDIMScheduler");
      sdr_pipeline_free(&one);
    }
    sdr_pipeline_free(&ref);
  }
  unlink(file);
}

/* ---- EMA weights ----------------------------------------------------------------------- */

/* tiny-sd-a-ldm with its UNet's weights moved to model_ema.* (LitEma's names)
 * and the model's own replaced by zeros: only extract_ema gives the folder's pictures. */
static int make_ema_file(const char *ckpt, const char *out, void **zeros) {
  sdr_torch_file *f = sdr_torch_file_open(ckpt);
  if (!f)
    return -1;
  size_t n = sdr_torch_file_count(f), m = 0, biggest = 0;
  sdr_st_tensor *t = calloc(2 * n, sizeof *t);
  char **names = calloc(n, sizeof *names);
  for (size_t i = 0; i < n; i++)
    if (sdr_torch_file_at(f, i)->nbytes > biggest)
      biggest = sdr_torch_file_at(f, i)->nbytes;
  *zeros = calloc(1, biggest);
  for (size_t i = 0; t && names && *zeros && i < n; i++) {
    const sdr_st_tensor *s = sdr_torch_file_at(f, i);
    t[m++] = *s;
    if (strncmp(s->name, "model.diffusion_model.", 22) != 0)
      continue;
    t[m - 1].data = *zeros;
    char flat[512] = "model_ema.";
    size_t o = strlen(flat);
    for (const char *p = s->name + 6; *p && o + 1 < sizeof flat; p++)
      if (*p != '.')
        flat[o++] = *p;
    flat[o] = 0;
    names[i] = strdup(flat);
    t[m] = *s;
    t[m++].name = names[i];
  }
  int rc = t && names && *zeros ? sdr_safetensors_write(out, t, m) : -1;
  for (size_t i = 0; names && i < n; i++)
    free(names[i]);
  free(names);
  free(t);
  sdr_torch_file_close(f);
  return rc;
}

static void test_ema(sdr_backend *be, const char *tmp) {
  char path[512];
  void *zeros = NULL;
  snprintf(path, sizeof path, "%s/ema.safetensors", tmp);
  CHECK(make_ema_file(MODELS "/tiny-sd-a-ldm.ckpt", path, &zeros) == 0);
  free(zeros);
  sdr_pipeline ref, ema, own;
  sdr_single_file_options with_ema = {.config_dir = MODELS "/tiny-sd-a", .extract_ema = 1};
  sdr_single_file_options without = {.config_dir = MODELS "/tiny-sd-a"};
  if (load_folder(&ref, be, MODELS "/tiny-sd-a", -1) != 0)
    return;
  if (load_single(&ema, be, path, -1, &with_ema) == 0) {
    same_pictures(&ref, &ema, "extract_ema");
    sdr_pipeline_free(&ema);
  }
  /* the model's own (zero) weights by default, as diffusers' extract_ema=False */
  if (load_single(&own, be, path, -1, &without) == 0) {
    CHECK(own.unet.conv_in_w.data && ((const float *)own.unet.conv_in_w.data)[0] == 0.0f);
    CHECK(ref.unet.conv_in_w.data && ((const float *)ref.unet.conv_in_w.data)[0] != 0.0f);
    sdr_pipeline_free(&own);
  }
  sdr_pipeline_free(&ref);
  unlink(path);
}

/* ---- what a user can get wrong ---------------------------------------------------------- */

static void test_errors(sdr_backend *be) {
  sdr_pipeline p;
  CHECK(sdr_pipeline_load_single_file(&p, be, MODELS "/no-such.ckpt", -1) != 0);
  CHECK(has(sdr_last_error(), "no-such.ckpt"));
  /* a diffusers component file is no single-file checkpoint */
  CHECK(sdr_pipeline_load_single_file(
            &p, be, MODELS "/tiny-sd-a/unet/diffusion_pytorch_model.safetensors", -1) != 0);
  CHECK(has(sdr_last_error(), "not a Stable Diffusion checkpoint in the original layout"));
  sdr_single_file_options bad = {.config_dir = MODELS "/tiny-sd-a", .scheduler_type = "heun"};
  bad.config_dir = NULL;
  bad.tokenizer_dir = MODELS "/tiny-sd-c-config/tokenizer";
  CHECK(sdr_pipeline_load_single_file_ex(&p, be, MODELS "/tiny-sd-c-ldm.safetensors", -1, &bad) !=
        0);
  CHECK(has(sdr_last_error(), "scheduler_type \"heun\" is not one of"));
  sdr_single_file_options nodir = {.config_dir = MODELS "/nowhere"};
  CHECK(sdr_pipeline_load_single_file_ex(&p, be, MODELS "/tiny-sd-a-ldm.ckpt", -1, &nodir) != 0);
  CHECK(has(sdr_last_error(), "config_dir " MODELS "/nowhere is not a folder"));
  /* the other model's configs: binding reports the mismatch by name */
  sdr_single_file_options other = {.config_dir = MODELS "/tiny-sd-b"};
  CHECK(sdr_pipeline_load_single_file_ex(&p, be, MODELS "/tiny-sd-a-ldm.ckpt", -1, &other) != 0);
  CHECK(has(sdr_last_error(), "problem"));
}

int main(void) {
  sdr_backend *be = sdr_cpu_backend_create();
  char tmp[] = "/tmp/sdrepl-test-single-file-XXXXXX";
  CHECK(mkdtemp(tmp) != NULL);
  test_bin_folder(be);
  test_single_with_config(be, MODELS "/tiny-sd-a", MODELS "/tiny-sd-a-ldm.ckpt", -1);
  char st[600];
  snprintf(st, sizeof st, "%s/tiny-sd-a-ldm.safetensors", tmp);
  CHECK(ckpt_to_safetensors(MODELS "/tiny-sd-a-ldm.ckpt", st) == 0);
  test_single_with_config(be, MODELS "/tiny-sd-a", st, -1);
  test_single_with_config(be, MODELS "/tiny-sd-a", st, SDR_F16);
  unlink(st);
  test_single_with_config(be, MODELS "/tiny-sd-b", MODELS "/tiny-sd-b-ldm.safetensors", -1);
  test_single_with_config(be, MODELS "/tiny-sd-b", MODELS "/tiny-sd-b-ldm.safetensors", SDR_F32);
  test_inferred(be);
  test_full_size(be, tmp, "sd15", 64, "\"epsilon\"");
  test_full_size(be, tmp, "sd21", 96, "\"v_prediction\"");
  test_ema(be, tmp);
  test_errors(be);
  rmdir(tmp);
  sdr_cpu_backend_destroy(be);
  return check_exit();
}

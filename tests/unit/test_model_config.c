/* engine/model_config: typed JSON getters and their messages; weight files
 * found as diffusers' and transformers' from_pretrained find them (variant,
 * use_safetensors, sharded checkpoints), in folders made in a temp dir. */
#define _GNU_SOURCE /* mkdtemp */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "engine/error.h"        // sdr_last_error
#include "engine/model_config.h" // sdr_json_*, sdr_find_weights

static char root[] = "/tmp/sdr_test_mc_XXXXXX";

/* Writes text to root/rel, making folders on the way. */
static void put(const char *rel, const char *text) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", root, rel);
  for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
    *p = 0;
    mkdir(path, 0777);
    *p = '/';
  }
  FILE *f = fopen(path, "wb");
  CHECK(f != NULL);
  if (f) {
    fputs(text, f);
    fclose(f);
  }
}

static char *at(const char *rel) {
  static char path[4][1024];
  static int k;
  k = (k + 1) % 4;
  snprintf(path[k], sizeof path[k], "%s/%s", root, rel);
  return path[k];
}

/* Checks the last error contains every fragment given. */
#define CHECK_ERROR(...)                                                                           \
  do {                                                                                             \
    const char *frags_[] = {__VA_ARGS__};                                                          \
    for (size_t i_ = 0; i_ < sizeof frags_ / sizeof frags_[0]; i_++)                               \
      if (!strstr(sdr_last_error(), frags_[i_])) {                                                 \
        fprintf(stderr, "%s:%d: error \"%s\" lacks \"%s\"\n", __FILE__, __LINE__,                  \
                sdr_last_error(), frags_[i_]);                                                     \
        check_failures++;                                                                          \
      }                                                                                            \
  } while (0)

/* ---- JSON getters -------------------------------------------------------- */

static const char *unet_config =
    "{\n"
    "  \"_class_name\": \"UNet2DConditionModel\",\n"
    "  \"_diffusers_version\": \"0.6.0\",\n"
    "  \"act_fn\": \"silu\",\n"
    "  \"attention_head_dim\": 8,\n"
    "  \"block_out_channels\": [320, 640, 1280, 1280],\n"
    "  \"center_input_sample\": false,\n"
    "  \"cross_attention_dim\": 768.0,\n"
    "  \"down_block_types\": [\"CrossAttnDownBlock2D\", \"DownBlock2D\"],\n"
    "  \"norm_eps\": 1e-05,\n"
    "  \"class_embed_type\": null,\n"
    "  \"sample_size\": 64,\n"
    "  \"sample_size\": 96,\n"
    "  \"flip_sin_to_cos\": true,\n"
    "  \"half\": 2.5,\n"
    "  \"text\": \"768\",\n"
    "  \"huge\": 1e300,\n"
    "  \"negative\": -3,\n"
    "  \"mixed\": [1, 2.5],\n"
    "  \"names_mixed\": [\"a\", null],\n"
    "  \"nested\": {\"a\": 1},\n"
    "  \"unicode\": \"caf\\u00e9 \xe2\x9c\x93\"\n"
    "}\n";

static void test_getters(void) {
  put("unet/config.json", unet_config);
  sdr_json j;
  CHECK(sdr_json_load(&j, at("unet/config.json")) == 0);

  long long i = 0;
  double d = 0;
  int b = -1;
  const char *s = NULL;
  CHECK(sdr_json_int(&j, "attention_head_dim", &i) == 0 && i == 8);
  CHECK(sdr_json_int(&j, "cross_attention_dim", &i) == 0 && i == 768); /* written 768.0 */
  CHECK(sdr_json_int(&j, "sample_size", &i) == 0 && i == 96);          /* the last one wins */
  CHECK(sdr_json_int(&j, "negative", &i) == 0 && i == -3);
  CHECK(sdr_json_number(&j, "norm_eps", &d) == 0 && d == 1e-05);
  CHECK(sdr_json_number(&j, "sample_size", &d) == 0 && d == 96);
  CHECK(sdr_json_bool(&j, "flip_sin_to_cos", &b) == 0 && b == 1);
  CHECK(sdr_json_bool(&j, "center_input_sample", &b) == 0 && b == 0);
  CHECK(sdr_json_string(&j, "act_fn", &s) == 0 && strcmp(s, "silu") == 0);
  CHECK(sdr_json_string(&j, "unicode", &s) == 0 && strcmp(s, "caf\xc3\xa9 \xe2\x9c\x93") == 0);

  /* Errors name the file, the key, what was expected and what was there. */
  CHECK(sdr_json_int(&j, "half", &i) != 0);
  CHECK_ERROR("unet/config.json: \"half\": expected an integer, got 2.5");
  CHECK(sdr_json_int(&j, "text", &i) != 0);
  CHECK_ERROR("\"text\": expected an integer, got \"768\"");
  CHECK(sdr_json_int(&j, "huge", &i) != 0);
  CHECK_ERROR("\"huge\": expected an integer, got 1.0000000000000001e+300");
  CHECK(sdr_json_int(&j, "class_embed_type", &i) != 0);
  CHECK_ERROR("\"class_embed_type\": expected an integer, got null");
  CHECK(sdr_json_int(&j, "flip_sin_to_cos", &i) != 0);
  CHECK_ERROR("got true");
  CHECK(sdr_json_int(&j, "block_out_channels", &i) != 0);
  CHECK_ERROR("got a list");
  CHECK(sdr_json_int(&j, "nested", &i) != 0);
  CHECK_ERROR("got an object");
  CHECK(sdr_json_int(&j, "no_such_key", &i) != 0);
  CHECK_ERROR("unet/config.json: \"no_such_key\" is missing");
  CHECK(sdr_json_int(&j, "Sample_Size", &i) != 0); /* keys are case-sensitive */
  CHECK(sdr_json_number(&j, "text", &d) != 0);
  CHECK_ERROR("\"text\": expected a number, got \"768\"");
  CHECK(sdr_json_bool(&j, "sample_size", &b) != 0);
  CHECK_ERROR("\"sample_size\": expected true or false, got 96");
  CHECK(sdr_json_string(&j, "sample_size", &s) != 0);
  CHECK_ERROR("\"sample_size\": expected a string, got 96");

  /* _or: the default for missing, null and wrong types alike; the last error untouched. */
  sdr_fail("marker");
  CHECK(sdr_json_int_or(&j, "sample_size", 1) == 96);
  CHECK(sdr_json_int_or(&j, "no_such_key", 7) == 7);
  CHECK(sdr_json_int_or(&j, "class_embed_type", 7) == 7);
  CHECK(sdr_json_int_or(&j, "half", 7) == 7);
  CHECK(sdr_json_number_or(&j, "norm_eps", 1) == 1e-05);
  CHECK(sdr_json_number_or(&j, "text", 0.5) == 0.5);
  CHECK(sdr_json_bool_or(&j, "flip_sin_to_cos", 0) == 1);
  CHECK(sdr_json_bool_or(&j, "no_such_key", 1) == 1);
  CHECK_STR(sdr_json_string_or(&j, "act_fn", "gelu"), "silu");
  CHECK_STR(sdr_json_string_or(&j, "class_embed_type", "none"), "none");
  CHECK_STR(sdr_last_error(), "marker");

  /* _opt: the default for missing and null only; a wrong type is an error. */
  CHECK(sdr_json_int_opt(&j, "class_embed_type", -1, &i) == 0 && i == -1);
  CHECK(sdr_json_int_opt(&j, "no_such_key", 5, &i) == 0 && i == 5);
  CHECK(sdr_json_int_opt(&j, "sample_size", 5, &i) == 0 && i == 96);
  CHECK(sdr_json_int_opt(&j, "text", 5, &i) != 0);
  CHECK_ERROR("\"text\": expected an integer, got \"768\"");
  CHECK(sdr_json_number_opt(&j, "no_such_key", 0.25, &d) == 0 && d == 0.25);
  CHECK(sdr_json_bool_opt(&j, "class_embed_type", 1, &b) == 0 && b == 1);
  CHECK(sdr_json_bool_opt(&j, "text", 1, &b) != 0);
  CHECK(sdr_json_string_opt(&j, "class_embed_type", NULL, &s) == 0 && s == NULL);
  CHECK(sdr_json_string_opt(&j, "act_fn", NULL, &s) == 0 && strcmp(s, "silu") == 0);
  CHECK(sdr_json_string_opt(&j, "half", NULL, &s) != 0);
  CHECK(sdr_json_has(&j, "act_fn") && !sdr_json_has(&j, "class_embed_type") &&
        !sdr_json_has(&j, "no_such_key"));
  CHECK(sdr_json_get(&j, "nested") != NULL && sdr_json_get(&j, "class_embed_type") != NULL);

  /* Lists. */
  long long ints[8];
  int n = -1;
  CHECK(sdr_json_int_array(&j, "block_out_channels", ints, 8, &n, 0) == 0 && n == 4 &&
        ints[0] == 320 && ints[3] == 1280);
  CHECK(sdr_json_int_array(&j, "attention_head_dim", ints, 8, &n, 4) == 0 && n == 4 &&
        ints[0] == 8 && ints[3] == 8); /* a single integer stands for one per block */
  CHECK(sdr_json_int_array(&j, "attention_head_dim", ints, 8, &n, 0) != 0);
  CHECK_ERROR("\"attention_head_dim\": expected a list of integers, got 8");
  CHECK(sdr_json_int_array(&j, "attention_head_dim", ints, 2, &n, 4) != 0);
  CHECK(sdr_json_int_array(&j, "block_out_channels", ints, 3, &n, 0) != 0 && n == 0);
  CHECK_ERROR("\"block_out_channels\": 4 entries, more than the 3 expected");
  CHECK(sdr_json_int_array(&j, "mixed", ints, 8, &n, 0) != 0);
  CHECK_ERROR("\"mixed\": expected an integer at index 1, got 2.5");
  CHECK(sdr_json_int_array(&j, "class_embed_type", ints, 8, &n, 4) != 0);
  CHECK_ERROR("expected an integer or a list of integers, got null");
  CHECK(sdr_json_int_array(&j, "no_such_key", ints, 8, &n, 4) != 0);
  CHECK_ERROR("\"no_such_key\" is missing");
  const char *names[4];
  CHECK(sdr_json_string_array(&j, "down_block_types", names, 4, &n) == 0 && n == 2 &&
        strcmp(names[1], "DownBlock2D") == 0);
  CHECK(sdr_json_string_array(&j, "down_block_types", names, 1, &n) != 0);
  CHECK(sdr_json_string_array(&j, "names_mixed", names, 4, &n) != 0);
  CHECK_ERROR("\"names_mixed\": expected a string at index 1, got null");
  CHECK(sdr_json_string_array(&j, "act_fn", names, 4, &n) != 0);
  CHECK_ERROR("expected a list of strings, got \"silu\"");
  sdr_json_free(&j);
  sdr_json_free(&j); /* twice is harmless */

  /* Files that are not configs. */
  CHECK(sdr_json_load(&j, at("missing/config.json")) != 0);
  CHECK_ERROR("missing/config.json: No such file");
  put("bad/syntax.json", "{\n  \"a\": 1,\n  \"b\": [1, 2,\n}\n");
  CHECK(sdr_json_load(&j, at("bad/syntax.json")) != 0);
  CHECK_ERROR("bad/syntax.json: not valid JSON (line 4");
  put("bad/list.json", "[1, 2]");
  CHECK(sdr_json_load(&j, at("bad/list.json")) != 0);
  CHECK_ERROR("expected a JSON object");
  put("bad/empty.json", "");
  CHECK(sdr_json_load(&j, at("bad/empty.json")) != 0);
  CHECK_ERROR("not valid JSON");
  put("bad/latin1.json", "{\"a\": \"caf\xe9\"}");
  CHECK(sdr_json_load(&j, at("bad/latin1.json")) != 0);
  CHECK_ERROR("not valid UTF-8 (line 1, column 11)");
  put("bad/bom.json", "\xef\xbb\xbf{}");
  CHECK(sdr_json_load(&j, at("bad/bom.json")) != 0);
  CHECK_ERROR("byte order mark");
  put("bad/trailing.json", "{} {}");
  CHECK(sdr_json_load(&j, at("bad/trailing.json")) != 0);
  CHECK(sdr_json_load(&j, at("bad")) != 0); /* a folder */
  char deep[4000];
  memset(deep, '[', 1500);
  strcpy(deep + 1500, "");
  put("bad/deep.json", deep);
  CHECK(sdr_json_load(&j, at("bad/deep.json")) != 0);
  CHECK(j.root == NULL && j.path == NULL);
  CHECK(sdr_json_int(&j, "a", &i) != 0); /* getters on a failed load fail, not crash */
}

/* ---- weight files -------------------------------------------------------- */

static const char *leaf(const char *path) { return path ? strrchr(path, '/') + 1 : "(null)"; }

static void check_found(int line, const char *component, const char *stem, const char *variant,
                        int use_st, const char *want) {
  char *p = sdr_find_weights(root, component, stem, variant, use_st);
  if (!p || strcmp(leaf(p), want) != 0) {
    fprintf(stderr, "%s:%d: %s/%s variant %s use_safetensors %d: got %s (%s), want %s\n", __FILE__,
            line, component, stem, variant ? variant : "-", use_st, leaf(p),
            p ? "" : sdr_last_error(), want);
    check_failures++;
  }
  free(p);
}
#define FOUND(...) check_found(__LINE__, __VA_ARGS__)

static void test_weights(void) {
  const char *dpm = "diffusion_pytorch_model";
  /* unet: everything there. */
  put("unet/diffusion_pytorch_model.safetensors", "x");
  put("unet/diffusion_pytorch_model.bin", "x");
  put("unet/diffusion_pytorch_model.fp16.safetensors", "x");
  put("unet/diffusion_pytorch_model.fp16.bin", "x");
  FOUND("unet", dpm, NULL, -1, "diffusion_pytorch_model.safetensors");
  FOUND("unet", dpm, NULL, 1, "diffusion_pytorch_model.safetensors");
  FOUND("unet", dpm, NULL, 0, "diffusion_pytorch_model.bin");
  FOUND("unet", dpm, "fp16", -1, "diffusion_pytorch_model.fp16.safetensors");
  FOUND("unet", dpm, "fp16", 0, "diffusion_pytorch_model.fp16.bin");
  FOUND("unet", dpm, "", -1, "diffusion_pytorch_model.safetensors"); /* "" is no variant */
  char *p = sdr_find_weights(root, "unet", dpm, NULL, -1);
  CHECK(p && strcmp(p, at("unet/diffusion_pytorch_model.safetensors")) == 0);
  free(p);

  /* vae: only a .bin. Preferring safetensors falls back; requiring them fails. */
  put("vae/diffusion_pytorch_model.bin", "x");
  FOUND("vae", dpm, NULL, -1, "diffusion_pytorch_model.bin");
  FOUND("vae", dpm, NULL, 0, "diffusion_pytorch_model.bin");
  CHECK(sdr_find_weights(root, "vae", dpm, NULL, 1) == NULL);
  CHECK_ERROR("Error no file named diffusion_pytorch_model.safetensors.index.json or "
              "diffusion_pytorch_model.safetensors found in directory ",
              "/vae.");
  /* A variant asked for and absent: no quiet fallback to the plain file. */
  CHECK(sdr_find_weights(root, "vae", dpm, "fp16", -1) == NULL);
  CHECK_ERROR("Error no file named diffusion_pytorch_model.safetensors.index.fp16.json, "
              "diffusion_pytorch_model.fp16.safetensors or diffusion_pytorch_model.fp16.bin "
              "found in directory");
  /* Nothing at all, and a folder that does not exist. */
  mkdir(at("empty"), 0777);
  CHECK(sdr_find_weights(root, "empty", dpm, NULL, 0) == NULL);
  CHECK_ERROR("Error no file named diffusion_pytorch_model.bin.index.json or "
              "diffusion_pytorch_model.bin found in directory ",
              "/empty.");
  CHECK(sdr_find_weights(root, "nope", dpm, NULL, -1) == NULL);
  /* A folder named like a weight file is not one. */
  mkdir(at("dirs"), 0777);
  mkdir(at("dirs/diffusion_pytorch_model.safetensors"), 0777);
  put("dirs/diffusion_pytorch_model.bin", "x");
  FOUND("dirs", dpm, NULL, -1, "diffusion_pytorch_model.bin");
  /* component NULL or "": the folder itself. */
  p = sdr_find_weights(at("unet"), NULL, dpm, NULL, -1);
  CHECK(p && strcmp(leaf(p), "diffusion_pytorch_model.safetensors") == 0);
  free(p);
  p = sdr_find_weights(at("unet"), "", dpm, "fp16", 0);
  CHECK(p && strcmp(leaf(p), "diffusion_pytorch_model.fp16.bin") == 0);
  free(p);

  /* text_encoder: transformers' names and order. */
  put("text_encoder/pytorch_model.bin", "x");
  FOUND("text_encoder", "model", NULL, -1, "pytorch_model.bin");
  FOUND("text_encoder", "model", NULL, 0, "pytorch_model.bin");
  CHECK(sdr_find_weights(root, "text_encoder", "model", NULL, 1) == NULL);
  CHECK_ERROR("Error no file named model.safetensors or model.safetensors.index.json found");
  put("text_encoder/model.safetensors", "x");
  put("text_encoder/model.fp16.safetensors", "x");
  FOUND("text_encoder", "model", NULL, -1, "model.safetensors");
  FOUND("text_encoder", "model", NULL, 1, "model.safetensors");
  FOUND("text_encoder", "model", NULL, 0, "pytorch_model.bin");
  FOUND("text_encoder", "model", "fp16", -1, "model.fp16.safetensors");
  CHECK(sdr_find_weights(root, "text_encoder", "model", "fp16", 0) == NULL);
  CHECK_ERROR("Error no file named pytorch_model.fp16.bin or pytorch_model.bin.index.fp16.json");

  /* Sharded: the index wins over a single file (diffusers checks it first). */
  put("big/diffusion_pytorch_model.safetensors.index.json",
      "{\"metadata\": {\"total_size\": 8},\n \"weight_map\": {\n"
      "  \"b.weight\": \"diffusion_pytorch_model-00002-of-00002.safetensors\",\n"
      "  \"a.weight\": \"diffusion_pytorch_model-00001-of-00002.safetensors\",\n"
      "  \"a.bias\": \"diffusion_pytorch_model-00001-of-00002.safetensors\"}}");
  put("big/diffusion_pytorch_model-00001-of-00002.safetensors", "x");
  put("big/diffusion_pytorch_model-00002-of-00002.safetensors", "x");
  put("big/diffusion_pytorch_model.safetensors", "x");
  size_t n = 0;
  char **files = sdr_find_weight_files(root, "big", dpm, NULL, -1, &n);
  CHECK(files && n == 2 && files[2] == NULL);
  CHECK(files &&
        strcmp(files[0], at("big/diffusion_pytorch_model-00001-of-00002.safetensors")) == 0 &&
        strcmp(leaf(files[1]), "diffusion_pytorch_model-00002-of-00002.safetensors") == 0);
  sdr_weight_files_free(files);
  CHECK(sdr_find_weights(root, "big", dpm, NULL, -1) == NULL);
  CHECK_ERROR("split into 2 shards");
  /* Single files come back as a list of one. */
  files = sdr_find_weight_files(root, "unet", dpm, "fp16", -1, &n);
  CHECK(files && n == 1 && strcmp(leaf(files[0]), "diffusion_pytorch_model.fp16.safetensors") == 0);
  sdr_weight_files_free(files);
  /* The variant index: _add_variant puts fp16 before ".json". */
  put("big/diffusion_pytorch_model.safetensors.index.fp16.json",
      "{\"weight_map\": {\"a\": \"diffusion_pytorch_model.fp16-00001-of-00001.safetensors\"}}");
  put("big/diffusion_pytorch_model.fp16-00001-of-00001.safetensors", "x");
  files = sdr_find_weight_files(root, "big", dpm, "fp16", 1, &n);
  CHECK(files && n == 1 &&
        strcmp(leaf(files[0]), "diffusion_pytorch_model.fp16-00001-of-00001.safetensors") == 0);
  sdr_weight_files_free(files);
  /* A shard missing, a shard outside the folder, an index without weight_map. */
  put("broken/diffusion_pytorch_model.safetensors.index.json",
      "{\"weight_map\": {\"a\": \"part-1.safetensors\", \"b\": \"part-2.safetensors\"}}");
  put("broken/part-1.safetensors", "x");
  CHECK(sdr_find_weight_files(root, "broken", dpm, NULL, -1, &n) == NULL && n == 0);
  CHECK_ERROR("broken does not appear to have a file named part-2.safetensors which is "
              "required according to the checkpoint index");
  put("escape/diffusion_pytorch_model.safetensors.index.json",
      "{\"weight_map\": {\"a\": \"../unet/diffusion_pytorch_model.safetensors\"}}");
  CHECK(sdr_find_weight_files(root, "escape", dpm, NULL, -1, &n) == NULL);
  CHECK_ERROR("weight_map \"a\": expected the name of a file in the folder");
  put("nomap/diffusion_pytorch_model.safetensors.index.json", "{\"metadata\": {}}");
  CHECK(sdr_find_weight_files(root, "nomap", dpm, NULL, -1, &n) == NULL);
  CHECK_ERROR("expected \"weight_map\"");
  put("badmap/diffusion_pytorch_model.safetensors.index.json", "{\"weight_map\": {\"a\": 3}}");
  CHECK(sdr_find_weight_files(root, "badmap", dpm, NULL, -1, &n) == NULL);
  put("badjson/diffusion_pytorch_model.safetensors.index.json", "{\"weight_map\": ");
  CHECK(sdr_find_weight_files(root, "badjson", dpm, NULL, -1, &n) == NULL);
  CHECK_ERROR("not valid JSON");
  /* transformers' shards: the single file first, the .bin index when only it exists. */
  put("te2/pytorch_model.bin.index.json", "{\"weight_map\": {\"a\": \"pytorch_model-1.bin\"}}");
  put("te2/pytorch_model-1.bin", "x");
  files = sdr_find_weight_files(root, "te2", "model", NULL, -1, &n);
  CHECK(files && n == 1 && strcmp(leaf(files[0]), "pytorch_model-1.bin") == 0);
  sdr_weight_files_free(files);
  CHECK(sdr_find_weight_files(NULL, "unet", dpm, NULL, -1, &n) == NULL);
}

static void test_variant_folders(void) {
  /* DiffusionPipeline.from_pretrained passes the variant only to components that have it. */
  CHECK(sdr_component_has_variant(root, "unet", "fp16") == 1);
  CHECK(sdr_component_has_variant(root, "unet", "fp") == 1); /* startswith, as Python */
  CHECK(sdr_component_has_variant(root, "unet", "bf16") == 0);
  CHECK(sdr_component_has_variant(root, "vae", "fp16") == 0);
  CHECK(sdr_component_has_variant(root, "unet", NULL) == 0);
  put("odd/README", "x"); /* no dot: Python would raise IndexError; here it just does not match */
  put("odd/model.safetensors.fp16", "x");
  CHECK(sdr_component_has_variant(root, "odd", "fp16") == 0);
  put("odd/model.fp16x.bin", "x");
  CHECK(sdr_component_has_variant(root, "odd", "fp16") == 1);
  CHECK(sdr_component_has_variant(root, "odd", "fp16.x") == 0); /* a part has no dots */
  CHECK(sdr_component_has_variant(root, "nope", "fp16") == -1);
}

int main(void) {
  CHECK(mkdtemp(root) != NULL);
  test_getters();
  test_weights();
  test_variant_folders();
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  CHECK(system(cmd) == 0);
  return check_exit();
}

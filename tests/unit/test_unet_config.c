/* tests/unit/test_unet_config.c — UNet2DConditionModel configs: what the engine takes, and
 * the options of other UNets, which change the numbers, refused by name instead of ignored.
 * tiny-sd-a's unet/config.json with one key changed at a time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/error.h"        // sdr_last_error
#include "engine/model_config.h" // sdr_json_load
#include "engine/unet.h"         // sdr_unet_config_parse

#include <cjson/cJSON.h>

static sdr_json base;

/* Parses base with key set to the JSON value (NULL: as it is); 0 when accepted. */
static int parse_with(const char *key, const char *value, sdr_unet_config *c) {
  cJSON *copy = cJSON_Duplicate(base.root, 1);
  if (key) {
    cJSON *v = cJSON_Parse(value);
    cJSON_DeleteItemFromObjectCaseSensitive(copy, key);
    cJSON_AddItemToObject(copy, key, v);
  }
  sdr_json j = {"unet/config.json", copy};
  int rc = sdr_unet_config_parse(c, &j, 1);
  cJSON_Delete(copy);
  return rc;
}

static void refused(const char *key, const char *value) {
  sdr_unet_config c;
  if (parse_with(key, value, &c) == 0) {
    fprintf(stderr, "%s = %s was accepted\n", key, value);
    check_failures++;
  } else if (!strstr(sdr_last_error(), key)) {
    fprintf(stderr, "%s = %s: the message does not name it: %s\n", key, value, sdr_last_error());
    check_failures++;
  }
}

static void accepted(const char *key, const char *value) {
  sdr_unet_config c;
  if (parse_with(key, value, &c) != 0) {
    fprintf(stderr, "%s = %s was refused: %s\n", key, value, sdr_last_error());
    check_failures++;
  }
}

int main(void) {
  const char *src = getenv("SDREPL_SOURCE_DIR");
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/models/tiny-sd-a/unet/config.json", src ? src : ".");
  if (sdr_json_load(&base, path) != 0) {
    fprintf(stderr, "cannot read %s: %s\n", path, sdr_last_error());
    return 1;
  }
  sdr_unet_config c;
  CHECK(parse_with(NULL, NULL, &c) == 0);
  CHECK(c.before_0_9 == 0);
  /* the defaults, as diffusers writes them, are taken */
  accepted("timestep_post_act", "null");
  accepted("time_embedding_act_fn", "null");
  accepted("cross_attention_norm", "null");
  accepted("attention_type", "\"default\"");
  accepted("resnet_skip_time_act", "false");
  accepted("class_embeddings_concat", "false");
  accepted("resnet_out_scale_factor", "1.0");
  accepted("time_embedding_dim", "null");
  char ted[32];
  snprintf(ted, sizeof ted, "%d", 4 * c.block_out_channels[0]);
  accepted("time_embedding_dim", ted);
  accepted("encoder_hid_dim_type", "null");
  /* other values would change the numbers: refused, naming the key */
  refused("timestep_post_act", "\"silu\"");
  refused("time_embedding_act_fn", "\"gelu\"");
  refused("cross_attention_norm", "\"group_norm\"");
  refused("attention_type", "\"gated\"");
  refused("resnet_skip_time_act", "true");
  refused("class_embeddings_concat", "true");
  refused("resnet_out_scale_factor", "0.5");
  refused("time_embedding_dim", "17");
  refused("encoder_hid_dim_type", "\"text_proj\"");
  refused("resnet_time_scale_shift", "\"scale_shift\"");
  refused("time_embedding_type", "\"fourier\"");
  refused("act_fn", "\"gelu\"");
  /* diffusers' version: before 0.9.0 is what StableDiffusionPipeline updates sample_size for */
  CHECK(parse_with("_diffusers_version", "\"0.8.0.dev0\"", &c) == 0 && c.before_0_9);
  CHECK(parse_with("_diffusers_version", "\"0.9.0\"", &c) == 0 && !c.before_0_9);
  CHECK(parse_with("_diffusers_version", "\"1.2.0\"", &c) == 0 && !c.before_0_9);
  sdr_json_free(&base);
  return check_exit();
}

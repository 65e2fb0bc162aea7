/* engine/model_config.h — a diffusers folder: model_index.json and each component's config.
 *
 * diffusers describes a pipeline by model_index.json ({"unet": ["diffusers",
 * "UNet2DConditionModel"], ...}) and each component by <component>/config.json;
 * weights are <component>/<name>[.<variant>].safetensors (or .bin). Model sizes
 * come from these files only, so tiny test models and full ones run the same code.
 */
#ifndef SDR_ENGINE_MODEL_CONFIG_H
#define SDR_ENGINE_MODEL_CONFIG_H

#include <stddef.h>

typedef struct cJSON cJSON;

/* A parsed JSON file that remembers its path for error messages. */
typedef struct sdr_json {
  char *path;
  cJSON *root;
} sdr_json;

int sdr_json_load(sdr_json *j, const char *path);
void sdr_json_free(sdr_json *j);

/* Typed getters: each fails with "<path>: \"key\": expected an integer, got ..."
 * (or "... is missing") unless a default is given with the _or variants. */
int sdr_json_int(const sdr_json *j, const char *key, long long *out);
int sdr_json_number(const sdr_json *j, const char *key, double *out);
int sdr_json_bool(const sdr_json *j, const char *key, int *out);
/* Returned string belongs to j. */
int sdr_json_string(const sdr_json *j, const char *key, const char **out);
long long sdr_json_int_or(const sdr_json *j, const char *key, long long dflt);
double sdr_json_number_or(const sdr_json *j, const char *key, double dflt);
int sdr_json_bool_or(const sdr_json *j, const char *key, int dflt);
const char *sdr_json_string_or(const sdr_json *j, const char *key, const char *dflt);
/* An array of integers (e.g. block_out_channels); a single integer counts as
 * an array of `n_if_scalar` copies, as diffusers allows for attention_head_dim. */
int sdr_json_int_array(const sdr_json *j, const char *key, long long *out, int max, int *n,
                       int n_if_scalar);
int sdr_json_string_array(const sdr_json *j, const char *key, const char **out, int max, int *n);

/* Finds the weight file of a component as diffusers' from_pretrained does:
 * <dir>/<component>/<stem>[.<variant>].safetensors, or .bin when
 * use_safetensors is not required (use_safetensors: 1 yes, 0 no, -1 prefer).
 * stem is "diffusion_pytorch_model" or "model". Malloc'd path. */
char *sdr_find_weights(const char *dir, const char *component, const char *stem,
                       const char *variant, int use_safetensors);

#endif

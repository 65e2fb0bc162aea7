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
/* The text of a config file (bounded in size), malloc'd and NUL-terminated; *len its length. */
char *sdr_json_read_text(const char *path, size_t *len);
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

/* Additions below.
 *
 * sdr_json_load requires the file to be UTF-8 (Python opens configs with
 * encoding="utf-8") holding a JSON object. A key given twice means its last
 * value, as Python's json keeps. Integers may be written 4.0 (accepted when
 * integral and within 2^53). The _or getters return dflt when the key is
 * missing, null (diffusers' None), or of another type; the _opt getters
 * below return dflt only for missing or null and fail on another type. */
int sdr_json_int_opt(const sdr_json *j, const char *key, long long dflt, long long *out);
int sdr_json_number_opt(const sdr_json *j, const char *key, double dflt, double *out);
int sdr_json_bool_opt(const sdr_json *j, const char *key, int dflt, int *out);
int sdr_json_string_opt(const sdr_json *j, const char *key, const char *dflt, const char **out);
/* 1 when key is present and not null, else 0. */
int sdr_json_has(const sdr_json *j, const char *key);
/* The value itself (the last one for a repeated key), or NULL; belongs to j. */
const cJSON *sdr_json_get(const sdr_json *j, const char *key);

/* All weight files of a component: one file, or the shards that an index file
 * (<stem>.safetensors.index[.<variant>].json, "weight_map") lists, each once,
 * sorted, each checked to exist beside the index. Returns a NULL-terminated
 * malloc'd list (free with sdr_weight_files_free) and its length in *n.
 * component NULL or "" means dir itself.
 *
 * The order of the search mirrors the library that owns the files:
 * - diffusers' ModelMixin.from_pretrained (stem "diffusion_pytorch_model"):
 *   the index, then <stem>[.<variant>].safetensors, then, when use_safetensors
 *   is -1, <stem>[.<variant>].bin; with 0 the .bin index, then the .bin.
 * - transformers' PreTrainedModel.from_pretrained (stem "model"):
 *   model[.<variant>].safetensors, its index, pytorch_model[.<variant>].bin,
 *   its index; 0 skips the first two. With 1, transformers still falls back
 *   to the .bin; we do not (1 means never unpickle).
 * (diffusers 0.27, our reference, reads no model index; the index rule is that
 * of later versions, which check it first.) sdr_find_weights resolves the same
 * way and refuses a sharded component. When nothing is found the error says
 * which names were looked for and where. */
char **sdr_find_weight_files(const char *dir, const char *component, const char *stem,
                             const char *variant, int use_safetensors, size_t *n);
void sdr_weight_files_free(char **files);

/* Whether DiffusionPipeline.from_pretrained would pass `variant` to this
 * component: some entry of <dir>/<component> has a second dot-separated part
 * starting with variant ("diffusion_pytorch_model.fp16.safetensors"). A
 * component without variant files then loads its plain files. 1, 0, or -1
 * (sdr_fail) when the folder cannot be read. */
int sdr_component_has_variant(const char *dir, const char *component, const char *variant);

#endif

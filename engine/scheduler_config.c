/* engine/scheduler_config.c — a scheduler's config dict, made as diffusers 0.27.2's
 * ConfigMixin makes it (configuration_utils.py: extract_init_dict, register_to_config).
 *
 * from_config(config, **kwargs):
 *   1. keys listed in config["_use_default_values"] are dropped: those were defaults of
 *      the class that wrote the config, so the new class takes its own defaults
 *      (PNDM's "leading" spacing does not follow SD 1.4's config into Euler, whose
 *      default is "linspace");
 *   2. each __init__ argument comes from kwargs, else the config, else its default;
 *      the ones that took the default are listed in the new "_use_default_values";
 *   3. every other key (another class's arguments, "_class_name", ...) is kept as a
 *      hidden entry, so a later from_config to a third class still finds it.
 * The resulting dict is what Lua shows as scheduler.config, in this order: arguments
 * in signature order, "_use_default_values", hidden keys in their original order.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"        // sdr_fail
#include "engine/json_python.h"  // sdr_json_print_python
#include "engine/model_config.h" // sdr_json, sdr_json_*_opt
#include "engine/scheduler_internal.h"

#include <cjson/cJSON.h>

/* ---- JSON with Python's Infinity ---- */

/* json.dumps writes float("-inf") as -Infinity, which strict JSON (and cJSON) lacks:
 * outside strings, Infinity becomes 1e999, which strtod reads as infinity. */
cJSON *sched_json_parse(const char *text, const char *what) {
  if (!text)
    return sdr_fail("%s: no JSON text", what), NULL;
  size_t n = strlen(text), cap = n + n / 2 + 16;
  char *buf = malloc(cap);
  if (!buf)
    return sdr_fail("%s: out of memory", what), NULL;
  size_t o = 0;
  int in_string = 0;
  for (size_t i = 0; i < n; i++) {
    char ch = text[i];
    if (in_string) {
      buf[o++] = ch;
      if (ch == '\\' && i + 1 < n)
        buf[o++] = text[++i];
      else if (ch == '"')
        in_string = 0;
    } else if (ch == '"') {
      in_string = 1;
      buf[o++] = ch;
    } else if (strncmp(text + i, "Infinity", 8) == 0 && o + 5 < cap) {
      memcpy(buf + o, "1e999", 5);
      o += 5;
      i += 7;
    } else {
      buf[o++] = ch;
    }
    if (o + 8 >= cap) { /* never: each Infinity (8) shrinks to 5 */
      free(buf);
      return sdr_fail("%s: JSON too long", what), NULL;
    }
  }
  buf[o] = 0;
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithOpts(buf, &end, 1);
  if (!root) {
    size_t at = end ? (size_t)(end - buf) : 0;
    free(buf);
    return sdr_fail("%s: not valid JSON (near byte %zu)", what, at), NULL;
  }
  free(buf);
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return sdr_fail("%s: expected a JSON object", what), NULL;
  }
  return root;
}

/* The last value of a key, as a Python dict keeps it. */
static const cJSON *get(const cJSON *obj, const char *key) {
  const cJSON *found = NULL;
  if (obj)
    for (const cJSON *c = obj->child; c; c = c->next)
      if (c->string && strcmp(c->string, key) == 0)
        found = c;
  return found;
}

static int listed(const cJSON *list, const char *key) {
  if (!cJSON_IsArray(list))
    return 0;
  for (const cJSON *c = list->child; c; c = c->next)
    if (cJSON_IsString(c) && strcmp(c->valuestring, key) == 0)
      return 1;
  return 0;
}

static int refresh_text(sdr_scheduler *s) {
  char *text = sdr_json_print_python(s->config);
  if (!text)
    return sdr_fail("%s: out of memory", s->cls->name);
  free(s->config_json);
  s->config_json = text;
  return 0;
}

/* ---- the typed values ---- */

/* Where each argument lands in sched_config; every class's arguments are among these. */
typedef struct field {
  const char *name;
  sched_ptype type;
  size_t offset;
} field;

#define F(name, type)                                                                              \
  { #name, type, offsetof(sched_config, name) }
static const field fields[] = {
    F(num_train_timesteps, SCHED_P_INT),
    F(beta_start, SCHED_P_NUMBER),
    F(beta_end, SCHED_P_NUMBER),
    F(beta_schedule, SCHED_P_STRING),
    F(trained_betas, SCHED_P_LIST_OR_NULL),
    F(prediction_type, SCHED_P_STRING),
    F(timestep_spacing, SCHED_P_STRING),
    F(steps_offset, SCHED_P_INT),
    F(skip_prk_steps, SCHED_P_BOOL),
    F(set_alpha_to_one, SCHED_P_BOOL),
    F(clip_sample, SCHED_P_BOOL),
    F(clip_sample_range, SCHED_P_NUMBER),
    F(thresholding, SCHED_P_BOOL),
    F(dynamic_thresholding_ratio, SCHED_P_NUMBER),
    F(sample_max_value, SCHED_P_NUMBER),
    F(rescale_betas_zero_snr, SCHED_P_BOOL),
    F(use_karras_sigmas, SCHED_P_BOOL),
    F(interpolation_type, SCHED_P_STRING),
    F(timestep_type, SCHED_P_STRING),
    F(sigma_min, SCHED_P_NUMBER_OR_NULL),
    F(sigma_max, SCHED_P_NUMBER_OR_NULL),
    F(solver_order, SCHED_P_INT),
    F(algorithm_type, SCHED_P_STRING),
    F(solver_type, SCHED_P_STRING),
    F(final_sigmas_type, SCHED_P_STRING),
    F(variance_type, SCHED_P_STRING_OR_NULL),
    F(lower_order_final, SCHED_P_BOOL),
    F(euler_at_final, SCHED_P_BOOL),
    F(use_lu_lambdas, SCHED_P_BOOL),
    F(lambda_min_clipped, SCHED_P_NUMBER),
    F(predict_x0, SCHED_P_BOOL),
    F(disable_corrector, SCHED_P_LIST),
    F(solver_p, SCHED_P_ANY_OR_NULL),
    F(original_inference_steps, SCHED_P_INT),
    F(timestep_scaling, SCHED_P_NUMBER),
    F(sigma_data, SCHED_P_NUMBER),
    F(rho, SCHED_P_NUMBER),
    F(noise_sampler_seed, SCHED_P_NUMBER_OR_NULL),
};
#undef F

static const field *field_of(const char *name) {
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    if (strcmp(fields[i].name, name) == 0)
      return &fields[i];
  return NULL;
}

static cJSON *default_value(const sched_param *p) {
  switch (p->type) {
  case SCHED_P_INT:
  case SCHED_P_NUMBER:
    return cJSON_CreateNumber(p->num);
  case SCHED_P_BOOL:
    return cJSON_CreateBool(p->num != 0);
  case SCHED_P_STRING:
    return cJSON_CreateString(p->str);
  case SCHED_P_LIST:
    return cJSON_CreateArray();
  default:
    return cJSON_CreateNull();
  }
}

/* A list, or {}: a config from Lua writes an empty table as an empty object (Lua's
 * tables do not tell the two apart), and the readers only walk its children. */
static int is_list(const cJSON *v) { return cJSON_IsArray(v) || (cJSON_IsObject(v) && !v->child); }

/* Reads argument p from the config into c. null means the default (None). */
static int read_value(const sdr_json *j, const sched_param *p, sched_config *c) {
  const field *f = field_of(p->name);
  if (!f)
    return sdr_fail("%s: internal: no field for \"%s\"", j->path, p->name);
  char *at = (char *)c + f->offset;
  switch (f->type) {
  case SCHED_P_INT:
    return sdr_json_int_opt(j, p->name, (long long)p->num, (long long *)at);
  case SCHED_P_NUMBER:
  case SCHED_P_NUMBER_OR_NULL: {
    /* a class whose argument must be a number where another's may be None (EDM's
     * sigma_min) takes no null: diffusers would compute with None and fail */
    const cJSON *v = sdr_json_get(j, p->name);
    if (p->type == SCHED_P_NUMBER && cJSON_IsNull(v))
      return sdr_fail("%s: \"%s\" is null, expected a number", j->path, p->name);
    return sdr_json_number_opt(j, p->name, p->type == SCHED_P_NUMBER ? p->num : NAN, (double *)at);
  }
  case SCHED_P_BOOL:
    return sdr_json_bool_opt(j, p->name, p->num != 0, (int *)at);
  case SCHED_P_STRING:
  case SCHED_P_STRING_OR_NULL:
    return sdr_json_string_opt(j, p->name, f->type == SCHED_P_STRING ? p->str : NULL,
                               (const char **)at);
  case SCHED_P_LIST_OR_NULL: {
    const cJSON *v = sdr_json_get(j, p->name);
    if (v && !cJSON_IsNull(v) && !is_list(v))
      return sdr_fail("%s: \"%s\": expected a list of numbers or null", j->path, p->name);
    *(const cJSON **)at = v && is_list(v) ? v : NULL;
    return 0;
  }
  case SCHED_P_LIST: {
    const cJSON *v = sdr_json_get(j, p->name);
    if (!is_list(v))
      return sdr_fail("%s: \"%s\": expected a list", j->path, p->name);
    *(const cJSON **)at = v;
    return 0;
  }
  case SCHED_P_ANY_OR_NULL: { /* the class's init decides what it takes */
    const cJSON *v = sdr_json_get(j, p->name);
    *(const cJSON **)at = v && !cJSON_IsNull(v) ? v : NULL;
    return 0;
  }
  }
  return 0;
}

/* Values of the arguments this class does not have: what "off" means for each. */
static void config_defaults(sched_config *c) {
  memset(c, 0, sizeof *c);
  c->num_train_timesteps = 1000;
  c->clip_sample_range = 1.0;
  c->sigma_min = NAN;
  c->sigma_max = NAN;
  c->solver_order = 2;
  c->lambda_min_clipped = -INFINITY;
  c->original_inference_steps = 50;
  c->timestep_scaling = 10.0;
  c->sigma_data = 0.5;
  c->rho = 7.0;
  c->noise_sampler_seed = NAN;
  c->beta_schedule = "linear";
  c->prediction_type = "epsilon";
  c->timestep_spacing = "leading";
  c->interpolation_type = "linear";
  c->timestep_type = "discrete";
  c->algorithm_type = "dpmsolver++";
  c->solver_type = "midpoint";
  c->final_sigmas_type = "zero";
}

/* ---- from_config ---- */

int sched_config_build(sdr_scheduler *s, const cJSON *in, const cJSON *kwargs) {
  const sched_class *cls = s->cls;
  const cJSON *used_defaults = get(in, "_use_default_values");
  cJSON *out = cJSON_CreateObject(), *defaulted = cJSON_CreateArray();
  if (!out || !defaulted)
    goto oom;
  for (int i = 0; i < cls->n_params; i++) {
    const sched_param *p = &cls->params[i];
    const cJSON *v = get(kwargs, p->name);
    if (!v && !listed(used_defaults, p->name))
      v = get(in, p->name);
    cJSON *item = v ? cJSON_Duplicate(v, 1) : default_value(p);
    if (!item)
      goto oom;
    cJSON_AddItemToObject(out, p->name, item);
    if (!v && !cJSON_AddItemToArray(defaulted, cJSON_CreateString(p->name)))
      goto oom;
  }
  if (cJSON_GetArraySize(defaulted) > 0)
    cJSON_AddItemToObject(out, "_use_default_values", defaulted);
  else
    cJSON_Delete(defaulted);
  defaulted = NULL;
  /* hidden entries: what the class does not take, first position, last value */
  for (const cJSON *c = in ? in->child : NULL; c; c = c->next) {
    const char *k = c->string;
    if (!k || strcmp(k, "_use_default_values") == 0 || listed(used_defaults, k) || get(out, k))
      continue;
    cJSON *item = strcmp(k, "_class_name") == 0 ? cJSON_CreateString(cls->name)
                                                : cJSON_Duplicate(get(in, k), 1);
    if (!item)
      goto oom;
    cJSON_AddItemToObject(out, k, item);
  }
  cJSON_Delete(s->config);
  s->config = out;
  if (refresh_text(s) != 0)
    return -1;

  char path[96];
  snprintf(path, sizeof path, "%s config", cls->name);
  sdr_json j = {path, out};
  config_defaults(&s->c);
  for (int i = 0; i < cls->n_params; i++)
    if (read_value(&j, &cls->params[i], &s->c) != 0)
      return -1;
  return 0;
oom:
  cJSON_Delete(out);
  cJSON_Delete(defaulted);
  return sdr_fail("%s: out of memory", cls->name);
}

int sched_config_set_string(sdr_scheduler *s, const char *key, const char *value) {
  cJSON *item = cJSON_CreateString(value);
  if (!item || !cJSON_ReplaceItemInObjectCaseSensitive(s->config, key, item)) {
    cJSON_Delete(item);
    return sdr_fail("%s: cannot set \"%s\"", s->cls->name, key);
  }
  /* the strings in s->c point into the tree: read this one again */
  const cJSON *v = get(s->config, key);
  if (strcmp(key, "algorithm_type") == 0)
    s->c.algorithm_type = v->valuestring;
  else if (strcmp(key, "solver_type") == 0)
    s->c.solver_type = v->valuestring;
  return refresh_text(s);
}

int sched_config_set_bool(sdr_scheduler *s, const char *key, int value) {
  cJSON *item = cJSON_CreateBool(value);
  if (!item || !cJSON_ReplaceItemInObjectCaseSensitive(s->config, key, item)) {
    cJSON_Delete(item);
    return sdr_fail("%s: cannot set \"%s\"", s->cls->name, key);
  }
  if (strcmp(key, "lower_order_final") == 0)
    s->c.lower_order_final = value;
  return refresh_text(s);
}

int sdr_scheduler_fix_outdated(sdr_scheduler *s, int inpaint) {
  int changed = 0;
  const int takes_offset = sdr_scheduler_takes(s->kind, "steps_offset");
  const cJSON *offset = get(s->config, "steps_offset");
  if (offset && !(cJSON_IsNumber(offset) && offset->valuedouble == 1)) { /* != 1, None too */
    cJSON *one = cJSON_CreateNumber(1);
    if (!one || !cJSON_ReplaceItemInObjectCaseSensitive(s->config, "steps_offset", one)) {
      cJSON_Delete(one);
      return sdr_fail("%s: cannot set \"steps_offset\"", s->cls->name);
    }
    if (takes_offset)
      s->c.steps_offset = 1;
    changed++;
  }
  /* `is True` / `is False`: only the booleans themselves */
  const char *key = inpaint ? "skip_prk_steps" : "clip_sample";
  const cJSON *flag = get(s->config, key);
  if (flag && (inpaint ? cJSON_IsFalse(flag) : cJSON_IsTrue(flag))) {
    if (sched_config_set_bool(s, key, inpaint) != 0)
      return -1;
    if (sdr_scheduler_takes(s->kind, key)) {
      if (inpaint)
        s->c.skip_prk_steps = 1;
      else
        s->c.clip_sample = 0;
    }
    changed++;
  }
  return changed && refresh_text(s) != 0 ? -1 : changed;
}

int sched_config_alias(sdr_scheduler *s, const char *key, const char *value, const char *const *ok,
                       const char *const *aliases, const char *to) {
  for (int i = 0; ok[i]; i++)
    if (strcmp(value, ok[i]) == 0)
      return 0;
  for (int i = 0; aliases && aliases[i]; i++)
    if (strcmp(value, aliases[i]) == 0)
      return sched_config_set_string(s, key, to);
  char list[160] = "";
  for (int i = 0; ok[i]; i++)
    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", ok[i]);
  return sdr_fail("%s: %s \"%s\" is not supported (%s)", s->cls->name, key, value, list);
}

int sched_check_solver_order(const sdr_scheduler *s) {
  /* diffusers takes any order, but above 3 the solvers would need terms (and UniPC larger
   * systems solved as LAPACK solves them) they do not have; SD uses 2 */
  if (s->c.solver_order < 1 || s->c.solver_order > 3)
    return sdr_fail("%s: solver_order %lld is not supported (1, 2, 3)", s->cls->name,
                    s->c.solver_order);
  return 0;
}

/* ---- values every class checks ---- */

int sched_parse_prediction(sdr_scheduler *s, unsigned predictions) {
  sched_config *c = &s->c;
  const char *name = s->cls->name;
  if (c->num_train_timesteps < 2 || c->num_train_timesteps > 1000000)
    return sdr_fail("%s: num_train_timesteps is %lld, expected 2 to 1000000", name,
                    c->num_train_timesteps);
  const char *p = c->prediction_type;
  if (strcmp(p, "epsilon") == 0)
    c->prediction = SCHED_EPSILON;
  else if (strcmp(p, "v_prediction") == 0)
    c->prediction = SCHED_V_PREDICTION;
  else if (strcmp(p, "sample") == 0 ||
           (s->kind == SDR_SCHED_EULER && strcmp(p, "original_sample") == 0))
    c->prediction = SCHED_SAMPLE;
  else
    c->prediction = (sched_prediction)-1;
  if ((int)c->prediction < 0 || !(predictions & (1u << c->prediction))) {
    char list[64] = "";
    const char *names[] = {"epsilon", "v_prediction", "sample"};
    for (int i = 0; i < 3; i++)
      if (predictions & (1u << i))
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? ", " : "",
                 names[i]);
    return sdr_fail("%s: prediction_type \"%s\" is not supported (%s)", name, p, list);
  }
  /* torch.quantile's own check, which diffusers meets only at the first step */
  if (c->thresholding &&
      !(c->dynamic_thresholding_ratio >= 0 && c->dynamic_thresholding_ratio <= 1))
    return sdr_fail("%s: dynamic_thresholding_ratio: quantile() q must be in the range [0, 1] but "
                    "got %g",
                    name, c->dynamic_thresholding_ratio);
  return 0;
}

int sched_parse_common(sdr_scheduler *s, unsigned predictions) {
  sched_config *c = &s->c;
  if (sched_parse_prediction(s, predictions) != 0)
    return -1;
  if (strcmp(c->timestep_spacing, "leading") == 0)
    c->spacing = SCHED_LEADING;
  else if (strcmp(c->timestep_spacing, "trailing") == 0)
    c->spacing = SCHED_TRAILING;
  else if (strcmp(c->timestep_spacing, "linspace") == 0)
    c->spacing = SCHED_LINSPACE;
  else
    return sdr_fail("%s: timestep_spacing \"%s\" is not supported (leading, trailing, linspace)",
                    s->cls->name, c->timestep_spacing);
  return sched_make_alphas_cumprod(s);
}

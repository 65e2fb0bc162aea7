/* engine/pipeline_save.c — save_pretrained of a pipeline: components, then model_index.json. */
#include "engine/pipeline_save.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/atomic_file.h" // sdr_make_dirs, sdr_write_file_atomic
#include "engine/error.h"       // sdr_fail
#include "engine/json_python.h" // sdr_json_parse_python, sdr_json_print_python
#include "engine/model_save.h"  // sdr_model_save

static int by_key(const void *a, const void *b) {
  return strcmp((*(cJSON *const *)a)->string, (*(cJSON *const *)b)->string);
}

/* The object's text as diffusers' save_config writes it: keys sorted, a newline at the end
 * (cJSON indents with tabs where Python's json uses two spaces; both read the same;
 * infinities are written as Python writes them).
 * Malloc'd, or NULL when out of memory. */
static char *config_text(cJSON *obj) {
  int n = cJSON_GetArraySize(obj);
  cJSON **items = malloc((size_t)(n ? n : 1) * sizeof *items);
  if (!items)
    return NULL;
  for (int i = 0; i < n; i++)
    items[i] = cJSON_DetachItemViaPointer(obj, obj->child);
  qsort(items, (size_t)n, sizeof *items, by_key);
  for (int i = 0; i < n; i++)
    cJSON_AddItemToObject(obj, items[i]->string, items[i]);
  free(items);
  char *text = sdr_json_print_python(obj);
  size_t len = text ? strlen(text) : 0;
  char *out = text ? realloc(text, len + 2) : NULL;
  if (!out) {
    free(text);
    return NULL;
  }
  memcpy(out + len, "\n", 2);
  return out;
}

/* What would be saved in a form that does not load back, with what to do instead. */
static int check_savable(sdr_pipeline *p) {
  for (int a = 0; a < p->lora.nadapters; a++)
    if (p->lora.adapters[a].name)
      return sdr_fail("LoRA adapters are loaded (\"%s\"): unload_lora_weights() first, after "
                      "fuse_lora() to keep them in the saved weights",
                      p->lora.adapters[a].name);
  if ((p->tokenizer && sdr_clip_tokenizer_len(p->tokenizer) != p->tokens_at_load[0]) ||
      (p->tokenizer_2 && sdr_clip_tokenizer_len(p->tokenizer_2) != p->tokens_at_load[1]))
    return sdr_fail("textual inversion tokens are loaded: unload_textual_inversion() first");
  if (p->nip_adapters)
    return sdr_fail("an IP-Adapter is loaded: unload_ip_adapter() first");
  return 0;
}

/* A scheduler's config as diffusers' save_config writes it: without the keys that only
 * from_config reads. */
static int write_scheduler(const sdr_scheduler *s, const char *dir, const char *sub) {
  cJSON *j = sdr_json_parse_python(sdr_scheduler_config_json(s));
  if (!j)
    return sdr_fail("%s: the scheduler's config does not parse", sub);
  cJSON_DeleteItemFromObjectCaseSensitive(j, "_use_default_values");
  cJSON_DeleteItemFromObjectCaseSensitive(j, "_ignore_files");
  char *text = config_text(j);
  cJSON_Delete(j);
  if (!text)
    return sdr_fail("out of memory");
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, sub);
  int rc = sdr_make_dirs(path);
  if (rc == 0) {
    snprintf(path, sizeof path, "%s/%s/scheduler_config.json", dir, sub);
    rc = sdr_write_file_atomic(path, text, strlen(text));
  }
  free(text);
  return rc;
}

/* Whether the feature extractor goes into the folder: the pipeline runs one and its
 * folder had its file. */
static int with_feature_extractor(const sdr_pipeline *p, const sdr_pipeline_save_spec *s) {
  return s->feature_extractor && p->feature_extractor &&
         sdr_kept_files_find(&p->kept, "feature_extractor/preprocessor_config.json");
}

/* model_index.json's entry for a component: [library, class], or [null, null]. */
static int set_component(cJSON *index, const char *name, const char *library, const char *cls) {
  cJSON *pair = cJSON_CreateArray();
  if (!pair)
    return -1;
  cJSON_AddItemToArray(pair, library ? cJSON_CreateString(library) : cJSON_CreateNull());
  cJSON_AddItemToArray(pair, cls ? cJSON_CreateString(cls) : cJSON_CreateNull());
  if (cJSON_GetArraySize(pair) != 2) {
    cJSON_Delete(pair);
    return -1;
  }
  if (cJSON_HasObjectItem(index, name))
    return cJSON_ReplaceItemInObjectCaseSensitive(index, name, pair) ? 0 : -1;
  return cJSON_AddItemToObject(index, name, pair) ? 0 : -1;
}

/* Keys of a folder's model_index.json that the class saved takes no argument for (diffusers
 * warns of each when loading): the adapter and upscaler pipelines have no image_encoder,
 * the upscaler no requires_safety_checker, SDXL's text-to-image classes no
 * requires_aesthetics_score. */
static void drop_foreign_keys(cJSON *index, const char *cls) {
  const int xl = strstr(cls, "XL") != NULL;
  if (strcmp(cls, "StableDiffusionAdapterPipeline") == 0 ||
      strcmp(cls, "StableDiffusionUpscalePipeline") == 0)
    cJSON_DeleteItemFromObjectCaseSensitive(index, "image_encoder");
  if (xl || strcmp(cls, "StableDiffusionUpscalePipeline") == 0)
    cJSON_DeleteItemFromObjectCaseSensitive(index, "requires_safety_checker");
  if (xl && !strstr(cls, "Img2Img") && !strstr(cls, "Inpaint"))
    cJSON_DeleteItemFromObjectCaseSensitive(index, "requires_aesthetics_score");
}

/* A scheduler's class, from its config. */
static int scheduler_class(const sdr_scheduler *s, char *out, size_t cap) {
  cJSON *j = sdr_json_parse_python(sdr_scheduler_config_json(s));
  const cJSON *cls = cJSON_GetObjectItemCaseSensitive(j, "_class_name");
  int ok = cJSON_IsString(cls) && snprintf(out, cap, "%s", cls->valuestring) < (int)cap;
  cJSON_Delete(j);
  return ok ? 0 : sdr_fail("model_index.json: the scheduler's config names no class");
}

static int set_flag(cJSON *index, const char *name, int on) {
  cJSON_DeleteItemFromObjectCaseSensitive(index, name);
  return cJSON_AddBoolToObject(index, name, on) ? 0 : -1;
}

char *sdr_pipeline_model_index(const sdr_pipeline *p, const sdr_pipeline_save_spec *s) {
  char sched[128], low_res[128] = "";
  if (scheduler_class(s->scheduler, sched, sizeof sched) != 0 ||
      (p->low_res_scheduler && scheduler_class(p->low_res_scheduler, low_res, sizeof low_res)))
    return NULL;
  const sdr_kept_file *kept = sdr_kept_files_find(&p->kept, "model_index.json");
  cJSON *index = kept ? sdr_json_parse_python(kept->data) : cJSON_CreateObject();
  if (!index) {
    sdr_fail("model_index.json: the loaded one does not parse");
    return NULL;
  }
  int bad = 0;
  if (!kept) { /* what diffusers' from_single_file pipelines register */
    bad |= !cJSON_AddStringToObject(index, "_diffusers_version", "0.27.2");
    bad |= set_component(index, "image_encoder", NULL, NULL);
    bad |= p->tokenizer_2
               ? set_flag(index, "force_zeros_for_empty_prompt", p->force_zeros_for_empty_prompt)
               : set_flag(index, "requires_safety_checker", 0);
    if (p->requires_aesthetics_score)
      bad |= set_flag(index, "requires_aesthetics_score", 1);
  }
  cJSON_DeleteItemFromObjectCaseSensitive(index, "_class_name");
  bad |= !cJSON_AddStringToObject(index, "_class_name", s->class_name);
  drop_foreign_keys(index, s->class_name);
  const int te = p->text_encoder.layers != NULL;
  bad |= set_component(index, "tokenizer", te ? "transformers" : NULL, te ? "CLIPTokenizer" : NULL);
  bad |=
      set_component(index, "text_encoder", te ? "transformers" : NULL, te ? "CLIPTextModel" : NULL);
  if (p->tokenizer_2) {
    bad |= set_component(index, "tokenizer_2", "transformers", "CLIPTokenizer");
    bad |= set_component(index, "text_encoder_2", "transformers", "CLIPTextModelWithProjection");
  }
  bad |= set_component(index, "unet", "diffusers", "UNet2DConditionModel");
  bad |= set_component(index, "vae", "diffusers",
                       p->vae.cfg.tiny ? "AutoencoderTiny" : "AutoencoderKL");
  bad |= set_component(index, "scheduler", "diffusers", sched);
  if (low_res[0])
    bad |= set_component(index, "low_res_scheduler", "diffusers", low_res);
  /* SDXL's classes take no safety checker: diffusers warns of the key */
  const int sc = s->safety_checker && p->safety_checker;
  if (sc || !p->tokenizer_2 || cJSON_HasObjectItem(index, "safety_checker"))
    bad |= set_component(index, "safety_checker", sc ? "stable_diffusion" : NULL,
                         sc ? "StableDiffusionSafetyChecker" : NULL);
  const int fe = with_feature_extractor(p, s);
  if (fe || !p->tokenizer_2 || cJSON_HasObjectItem(index, "feature_extractor"))
    bad |= set_component(index, "feature_extractor", fe ? "transformers" : NULL,
                         fe ? "CLIPImageProcessor" : NULL);
  /* the nets this pipeline holds; a ControlNet or T2I-Adapter folder's pipeline saved as
   * another class has none */
  cJSON_DeleteItemFromObjectCaseSensitive(index, "controlnet");
  cJSON_DeleteItemFromObjectCaseSensitive(index, "adapter");
  if (s->nets_key && s->nnets)
    bad |= set_component(index, s->nets_key, s->nets_library, s->nets_class);
  char *text = bad ? NULL : config_text(index);
  cJSON_Delete(index);
  if (!text)
    sdr_fail("model_index.json: out of memory");
  return text;
}

static int write_index(const sdr_pipeline *p, const sdr_pipeline_save_spec *s, const char *dir) {
  char *text = sdr_pipeline_model_index(p, s);
  if (!text)
    return -1;
  char path[4096];
  snprintf(path, sizeof path, "%s/model_index.json", dir);
  int rc = sdr_write_file_atomic(path, text, strlen(text));
  free(text);
  return rc;
}

static int save_model(sdr_weights *w, const char *dir, const char *sub, const char *stem,
                      const char *variant) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, sub);
  return sdr_model_save(w, path, stem, variant);
}

int sdr_pipeline_save_ready(sdr_pipeline *p) {
  if (check_savable(p) != 0)
    return -1;
  sdr_lora_models lm = sdr_pipeline_lora_models(p);
  return sdr_lora_apply(&p->lora, &lm);
}

int sdr_pipeline_save(sdr_pipeline *p, const sdr_pipeline_save_spec *s, const char *dir) {
  if (sdr_pipeline_save_ready(p) != 0 || sdr_make_dirs(dir) != 0)
    return -1;
  const char *v = s->variant;
  if (p->tokenizer && sdr_kept_files_write(&p->kept, dir, "tokenizer/") != 0)
    return -1;
  if (p->tokenizer_2 && sdr_kept_files_write(&p->kept, dir, "tokenizer_2/") != 0)
    return -1;
  if (p->text_encoder.layers &&
      save_model(&p->text_encoder.weights, dir, "text_encoder", "model", v) != 0)
    return -1;
  if (p->text_encoder_2.layers &&
      save_model(&p->text_encoder_2.weights, dir, "text_encoder_2", "model", v) != 0)
    return -1;
  if (save_model(&p->unet.weights, dir, "unet", "diffusion_pytorch_model", v) != 0 ||
      save_model(&p->vae.weights, dir, "vae", "diffusion_pytorch_model", v) != 0 ||
      write_scheduler(s->scheduler, dir, "scheduler") != 0)
    return -1;
  if (p->low_res_scheduler && write_scheduler(p->low_res_scheduler, dir, "low_res_scheduler") != 0)
    return -1;
  if (s->safety_checker && p->safety_checker &&
      save_model(&p->safety_checker->weights, dir, "safety_checker", "model", v) != 0)
    return -1;
  if (with_feature_extractor(p, s) &&
      sdr_kept_files_write(&p->kept, dir, "feature_extractor/") != 0)
    return -1;
  for (int i = 0; s->nets_key && i < s->nnets; i++) {
    char sub[64];
    snprintf(sub, sizeof sub, i ? "%s_%d" : "%s", s->nets_key, i);
    if (save_model(s->nets[i], dir, sub, "diffusion_pytorch_model", v) != 0)
      return -1;
  }
  return write_index(p, s, dir);
}

/* engine/pipeline.c — txt2img and img2img as diffusers runs them. */
#include "engine/pipeline.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "engine/error.h"            // sdr_fail
#include "engine/generator_device.h" // sdr_generator_fill_batch
#include "engine/image_processor.h"  // sdr_latents_preview
#include "engine/interrupt.h"        // sdr_interrupt_check
#include "engine/model_config.h"     // sdr_json, sdr_component_has_variant
#include "engine/pipeline_adapter.h"
#include "engine/pipeline_controlnet.h" // sdr_control_*
#include "engine/pipeline_ip_adapter.h" // sdr_ip_prepare, sdr_pipeline_ip_*
#include "engine/pipeline_lcm.h"        // sdr_pipeline_guided, sdr_lcm_timestep_cond
#include "engine/pipeline_pix2pix.h"    // sdr_pix2pix_image_latents
#include "engine/pipeline_upscale.h"    // sdr_upscale_size, sdr_upscale_prepare
#include "engine/pipeline_xl.h"         // sdr_xl_*
#include "engine/pipeline_img2img.h"    // sdr_img2img_wanted, sdr_img2img_size, sdr_img2img_latents
#include "engine/pipeline_inpaint.h"    // sdr_inpaint_*
#include "engine/progress.h"            // sdr_progress_*
#include "engine/vae_tiling.h"          // sdr_vae_decode_tiled

#define TRY(x)                                                                                     \
  do {                                                                                             \
    if ((x) != 0)                                                                                  \
      goto fail;                                                                                   \
  } while (0)

/* ---- loading ------------------------------------------------------------------ */

int sdr_pipeline_class_name(const char *dir, char *out, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/model_index.json", dir);
  sdr_json j;
  if (sdr_json_load(&j, path) != 0)
    return -1;
  const char *name = NULL;
  int rc = sdr_json_string(&j, "_class_name", &name);
  if (rc == 0 && strlen(name) >= n)
    rc = sdr_fail("%s: \"_class_name\" is too long", path);
  if (rc == 0)
    memcpy(out, name, strlen(name) + 1);
  sdr_json_free(&j);
  return rc;
}

/* The variant is passed to a component only when it has files of that variant,
 * as DiffusionPipeline.from_pretrained does. */
static const char *variant_for(const char *dir, const char *component, const char *variant) {
  if (!variant)
    return NULL;
  return sdr_component_has_variant(dir, component, variant) == 1 ? variant : NULL;
}

/* What model_index.json says of an optional component: 1 with its class in cls, 0 for
 * none (absent, or [null, null]). */
static int optional_component(const sdr_json *j, const char *name, char *cls, size_t n) {
  const cJSON *v = sdr_json_get(j, name);
  if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2 && cJSON_IsString(cJSON_GetArrayItem(v, 1))) {
    snprintf(cls, n, "%s", cJSON_GetArrayItem(v, 1)->valuestring);
    return 1;
  }
  if (v && !cJSON_IsNull(v) && !(cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2))
    return sdr_fail("%s: \"%s\" must be [library, class] or [null, null]", j->path, name);
  return 0;
}

/* Checks model_index.json (index) names the classes this pipeline knows; *has_text_encoder
 * says whether it names the first text encoder and tokenizer, which an SDXL refiner (with
 * text_encoder_2) has not. */
static int check_model_index(const sdr_json *index, int *has_text_encoder) {
  static const char *const need[] = {"unet", "vae", "scheduler", "text_encoder", "tokenizer"};
  char cls[128];
  const int second = optional_component(index, "text_encoder_2", cls, sizeof cls);
  const int first = second < 0 ? -1 : optional_component(index, "text_encoder", cls, sizeof cls);
  if (first < 0)
    return -1;
  *has_text_encoder = first || !second;
  for (size_t i = 0; i < (*has_text_encoder ? 5u : 3u); i++) {
    const char *names[2];
    int n = 0;
    if (!sdr_json_has(index, need[i]) || sdr_json_string_array(index, need[i], names, 2, &n) != 0 ||
        n != 2)
      return sdr_fail("%s: the pipeline has no \"%s\" component", index->path, need[i]);
  }
  return 0;
}

/* The safety checker and its feature extractor where model_index.json (index) names them, as
 * DiffusionPipeline.from_pretrained loads them (not the checker when declined). */
static int load_safety_checker(sdr_pipeline *p, sdr_backend *be, const char *dir,
                               const sdr_json *index, const char *variant, int keep_dtype,
                               int declined) {
  char fe_cls[128], sc_cls[128], sub[4096];
  const int has_fe = optional_component(index, "feature_extractor", fe_cls, sizeof fe_cls);
  const int has_sc = declined || has_fe < 0
                         ? 0
                         : optional_component(index, "safety_checker", sc_cls, sizeof sc_cls);
  if (has_fe < 0 || has_sc < 0)
    return -1;
  if (has_fe) {
    if (strcmp(fe_cls, "CLIPImageProcessor") != 0 && strcmp(fe_cls, "CLIPFeatureExtractor") != 0)
      return sdr_fail("%s: feature_extractor %s is not supported (CLIPImageProcessor is)", dir,
                      fe_cls);
    snprintf(sub, sizeof sub, "%s/feature_extractor/preprocessor_config.json", dir);
    p->feature_extractor = malloc(sizeof *p->feature_extractor);
    if (!p->feature_extractor)
      return sdr_fail("out of memory");
    if (sdr_clip_image_processor_load(p->feature_extractor, sub) != 0)
      return -1;
  }
  if (!has_sc)
    return 0;
  if (strcmp(sc_cls, "StableDiffusionSafetyChecker") != 0)
    return sdr_fail("%s: safety_checker %s is not supported (StableDiffusionSafetyChecker is); "
                    "pass safety_checker = false to load the pipeline without it",
                    dir, sc_cls);
  if (!p->feature_extractor)
    return sdr_fail("Make sure to define a feature extractor when loading the pipeline if you "
                    "want to use the safety checker. If you do not want to use the safety "
                    "checker, you can pass safety_checker = false instead.");
  snprintf(sub, sizeof sub, "%s/safety_checker", dir);
  p->safety_checker = malloc(sizeof *p->safety_checker);
  if (!p->safety_checker)
    return sdr_fail("out of memory");
  if (sdr_safety_checker_load(p->safety_checker, be, sub,
                              variant_for(dir, "safety_checker", variant), keep_dtype) != 0) {
    free(p->safety_checker);
    p->safety_checker = NULL;
    return -1;
  }
  return 0;
}

/* StableDiffusionUpscalePipeline's low_res_scheduler and max_noise_level, where
 * model_index.json (index) names them. */
static int load_low_res_scheduler(sdr_pipeline *p, const char *dir, const sdr_json *index) {
  char cls[128], sub[4096];
  const int has = optional_component(index, "low_res_scheduler", cls, sizeof cls);
  if (has <= 0)
    return has;
  snprintf(sub, sizeof sub, "%s/low_res_scheduler/scheduler_config.json", dir);
  size_t len;
  char *config = sdr_json_read_text(sub, &len);
  if (!config)
    return -1;
  p->low_res_scheduler = sdr_scheduler_load(config, -1);
  free(config);
  if (!p->low_res_scheduler) {
    sdr_fail_prefix("%s: ", sub);
    return -1;
  }
  long long v;
  if (sdr_json_int_opt(index, "max_noise_level", 350, &v) != 0)
    return -1;
  if (v < 0 || v > 1 << 20)
    return sdr_fail("%s: \"max_noise_level\" is %lld", index->path, v);
  p->max_noise_level = (int)v;
  return 0;
}

int sdr_pipeline_component_class(const char *dir, const char *component, char *cls, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/model_index.json", dir);
  sdr_json j;
  if (sdr_json_load(&j, path) != 0)
    return -1;
  const int rc = optional_component(&j, component, cls, n);
  sdr_json_free(&j);
  return rc;
}

int sdr_pipeline_dir_has(const char *dir, const char *component) {
  char cls[128];
  return sdr_pipeline_component_class(dir, component, cls, sizeof cls);
}

/* StableDiffusionXLPipeline's tokenizer_2 and text_encoder_2 where model_index.json (index)
 * names them, and its force_zeros_for_empty_prompt (True unless the config says otherwise, as
 * __init__) and requires_aesthetics_score. */
static int load_xl_parts(sdr_pipeline *p, sdr_backend *be, const char *dir, const sdr_json *index,
                         const char *variant, int keep_dtype, const sdr_clip_text_model *given) {
  char te_cls[128], tok_cls[128], sub[4096];
  const int has_te = optional_component(index, "text_encoder_2", te_cls, sizeof te_cls);
  const int has_tok =
      has_te < 0 ? -1 : optional_component(index, "tokenizer_2", tok_cls, sizeof tok_cls);
  int zeros = 1, aesthetics = 0;
  if (has_tok < 0 || sdr_json_bool_opt(index, "force_zeros_for_empty_prompt", 1, &zeros) != 0 ||
      sdr_json_bool_opt(index, "requires_aesthetics_score", 0, &aesthetics) != 0)
    return -1;
  if (!has_te && !has_tok)
    return 0;
  if (!has_te || !has_tok)
    return sdr_fail("%s: text_encoder_2 and tokenizer_2 go together", dir);
  if (strcmp(te_cls, "CLIPTextModelWithProjection") != 0)
    return sdr_fail("%s: text_encoder_2 %s is not supported (CLIPTextModelWithProjection is)", dir,
                    te_cls);
  p->force_zeros_for_empty_prompt = zeros;
  p->requires_aesthetics_score = aesthetics;
  snprintf(sub, sizeof sub, "%s/tokenizer_2", dir);
  if (!(p->tokenizer_2 = sdr_clip_tokenizer_load(sub)))
    return -1;
  snprintf(sub, sizeof sub, "%s/text_encoder_2", dir);
  if (given) { /* moved in by the caller once nothing can fail */
    if (!given->cfg.with_projection)
      return sdr_fail("text_encoder_2: a CLIPTextModelWithProjection expected (SDXL's second "
                      "text encoder)");
    return 0;
  }
  if (sdr_clip_text_model_load(&p->text_encoder_2, be, sub,
                               variant_for(dir, "text_encoder_2", variant), keep_dtype) != 0)
    return -1;
  if (!p->text_encoder_2.cfg.with_projection)
    return sdr_fail("%s: text_encoder_2's config does not name CLIPTextModelWithProjection", sub);
  return 0;
}

int sdr_pipeline_vae_keep_dtype(const sdr_pipeline *p, const sdr_vae_config *c, int keep_dtype) {
  return sdr_pipeline_is_xl(p) && c->force_upcast && keep_dtype >= 0 ? SDR_F32 : keep_dtype;
}

int sdr_pipeline_text_width(const sdr_pipeline *p) {
  return p->text_encoder.cfg.hidden_size +
         (sdr_pipeline_is_xl(p) ? p->text_encoder_2.cfg.hidden_size : 0);
}

int sdr_pipeline_load(sdr_pipeline *p, sdr_backend *be, const char *dir, const char *variant,
                      int keep_dtype) {
  return sdr_pipeline_load_given(p, be, dir, variant, keep_dtype, NULL);
}

/* A model the caller brings must be loaded on the backend the pipeline loads on. */
static int check_given(const char *what, const sdr_backend *model_be, const sdr_backend *be) {
  if (model_be != be)
    return sdr_fail("%s: it is on %s and the pipeline loads on %s; load both on one device", what,
                    sdr_device_name(model_be->device), sdr_device_name(be->device));
  return 0;
}

int sdr_pipeline_load_given(sdr_pipeline *p, sdr_backend *be, const char *dir, const char *variant,
                            int keep_dtype, const sdr_pipeline_given *given) {
  memset(p, 0, sizeof *p);
  p->be = be;
  p->dtype = keep_dtype >= 0 ? (sdr_dtype)keep_dtype : SDR_F32;
  const sdr_pipeline_given none = {0}, *gv = given ? given : &none;
  char sub[4096];
  snprintf(sub, sizeof sub, "%s/model_index.json", dir);
  sdr_json index;
  if (sdr_json_load(&index, sub) != 0)
    return -1;
  int has_te;
  TRY(check_model_index(&index, &has_te));
  if (!has_te && gv->text_encoder) {
    sdr_fail("%s: this pipeline has no text_encoder (only text_encoder_2) to replace", dir);
    goto fail;
  }
  if ((gv->unet && check_given("unet", gv->unet->be, be) != 0) ||
      (gv->vae && check_given("vae", gv->vae->be, be) != 0) ||
      (gv->text_encoder && check_given("text_encoder", gv->text_encoder->be, be) != 0) ||
      (gv->text_encoder_2 && check_given("text_encoder_2", gv->text_encoder_2->be, be) != 0))
    goto fail;
  snprintf(sub, sizeof sub, "%s/tokenizer", dir);
  if (has_te && !(p->tokenizer = sdr_clip_tokenizer_load(sub)))
    goto fail;
  snprintf(sub, sizeof sub, "%s/text_encoder", dir);
  if (has_te && !gv->text_encoder)
    TRY(sdr_clip_text_model_load(&p->text_encoder, be, sub,
                                 variant_for(dir, "text_encoder", variant), keep_dtype));
  TRY(load_xl_parts(p, be, dir, &index, variant, keep_dtype, gv->text_encoder_2));
  if (gv->text_encoder_2 && !p->tokenizer_2) {
    sdr_fail("%s: text_encoder_2 given for a pipeline without one (not an SDXL model)", dir);
    goto fail;
  }
  snprintf(sub, sizeof sub, "%s/unet", dir);
  if (!gv->unet)
    TRY(sdr_unet_load(&p->unet, be, sub, variant_for(dir, "unet", variant), keep_dtype));
  snprintf(sub, sizeof sub, "%s/vae", dir);
  if (!gv->vae) { /* its config first: an SDXL pipeline may keep it in float32 */
    char config_json[4200];
    sdr_vae_config vc;
    snprintf(config_json, sizeof config_json, "%s/config.json", sub);
    TRY(sdr_vae_config_load(&vc, config_json));
    TRY(sdr_vae_load(&p->vae, be, sub, variant_for(dir, "vae", variant),
                     sdr_pipeline_vae_keep_dtype(p, &vc, keep_dtype)));
  }
  snprintf(sub, sizeof sub, "%s/scheduler/scheduler_config.json", dir);
  size_t config_len;
  char *config = sdr_json_read_text(sub, &config_len);
  if (!config)
    goto fail;
  p->scheduler = sdr_scheduler_load(config, -1);
  free(config);
  if (!p->scheduler) {
    sdr_fail_prefix("%s: ", sub);
    goto fail;
  }
  TRY(load_safety_checker(p, be, dir, &index, variant, keep_dtype, gv->no_safety_checker));
  TRY(load_low_res_scheduler(p, dir, &index));
  const sdr_clip_text_model *te = gv->text_encoder ? gv->text_encoder : &p->text_encoder;
  const sdr_unet *un = gv->unet ? gv->unet : &p->unet;
  const sdr_clip_text_model *te2 = gv->text_encoder_2 ? gv->text_encoder_2 : &p->text_encoder_2;
  const int width =
      (has_te ? te->cfg.hidden_size : 0) + (p->tokenizer_2 ? te2->cfg.hidden_size : 0);
  if (width != un->cfg.cross_attention_dim[0]) {
    sdr_fail("%s: the text encoder%s %d wide, the UNet attends to %d", dir,
             p->tokenizer_2 ? "s together are" : " is", width, un->cfg.cross_attention_dim[0]);
    goto fail;
  }
  if (!!p->tokenizer_2 != !!un->cfg.addition_time_embed_dim) {
    sdr_fail(p->tokenizer_2 ? "%s: an SDXL pipeline needs a UNet with addition_embed_type "
                              "\"text_time\""
                            : "%s: this UNet (addition_embed_type \"text_time\") belongs to an "
                              "SDXL pipeline, with text_encoder_2",
             dir);
    goto fail;
  }
  snprintf(sub, sizeof sub, "%s/model_index.json", dir);
  TRY(sdr_kept_files_add(&p->kept, sub, "model_index.json"));
  snprintf(sub, sizeof sub, "%s/feature_extractor", dir);
  TRY(sdr_kept_files_add_folder(&p->kept, sub, "feature_extractor"));
  snprintf(sub, sizeof sub, "%s/tokenizer", dir);
  TRY(sdr_pipeline_keep_tokenizer(p, 0, sub));
  snprintf(sub, sizeof sub, "%s/tokenizer_2", dir);
  TRY(sdr_pipeline_keep_tokenizer(p, 1, sub));
  /* Nothing can fail from here: the given models move in, their structs left empty. */
  if (gv->text_encoder) {
    p->text_encoder = *gv->text_encoder;
    memset(gv->text_encoder, 0, sizeof *gv->text_encoder);
  }
  if (gv->text_encoder_2) {
    p->text_encoder_2 = *gv->text_encoder_2;
    memset(gv->text_encoder_2, 0, sizeof *gv->text_encoder_2);
  }
  if (gv->unet) {
    p->unet = *gv->unet;
    memset(gv->unet, 0, sizeof *gv->unet);
  }
  if (gv->vae) {
    p->vae = *gv->vae;
    memset(gv->vae, 0, sizeof *gv->vae);
  }
  sdr_arena_init(&p->arena, be);
  sdr_json_free(&index);
  return 0;
fail:
  sdr_json_free(&index);
  sdr_pipeline_free(p);
  return -1;
}

int sdr_pipeline_keep_tokenizer(sdr_pipeline *p, int second, const char *folder) {
  const sdr_clip_tokenizer *tok = second ? p->tokenizer_2 : p->tokenizer;
  if (!tok)
    return 0;
  p->tokens_at_load[second] = sdr_clip_tokenizer_len(tok);
  return sdr_kept_files_add_folder(&p->kept, folder, second ? "tokenizer_2" : "tokenizer");
}

sdr_lora_models sdr_pipeline_lora_models(sdr_pipeline *p) {
  return (sdr_lora_models){
      p->unet.be ? &p->unet : NULL, p->text_encoder.layers ? &p->text_encoder : NULL,
      p->text_encoder_2.layers ? &p->text_encoder_2 : NULL, sdr_pipeline_is_xl(p)};
}

void sdr_pipeline_free(sdr_pipeline *p) {
  sdr_lora_models lm = sdr_pipeline_lora_models(p);
  sdr_lora_free(&p->lora, &lm);
  if (p->tokenizer)
    sdr_clip_tokenizer_free(p->tokenizer);
  if (p->scheduler)
    sdr_scheduler_free(p->scheduler);
  if (p->low_res_scheduler)
    sdr_scheduler_free(p->low_res_scheduler);
  if (p->text_encoder.layers)
    sdr_clip_text_model_free(&p->text_encoder);
  if (p->tokenizer_2)
    sdr_clip_tokenizer_free(p->tokenizer_2);
  if (p->text_encoder_2.layers)
    sdr_clip_text_model_free(&p->text_encoder_2);
  if (p->unet.be)
    sdr_unet_free(&p->unet);
  if (p->vae.be)
    sdr_vae_free(&p->vae);
  sdr_pipeline_drop_safety_checker(p);
  free(p->feature_extractor);
  sdr_pipeline_ip_free(p->image_encoder, p->ip_adapters, p->nip_adapters);
  if (p->arena.be)
    sdr_arena_free(&p->arena);
  sdr_kept_files_free(&p->kept);
  memset(p, 0, sizeof *p);
}

int sdr_pipeline_replace_vae(sdr_pipeline *p, const sdr_vae *src, int keep_dtype, sdr_vae *old) {
  sdr_vae v;
  if (sdr_vae_copy_to(&v, src, p->be, sdr_pipeline_vae_keep_dtype(p, &src->cfg, keep_dtype)) != 0)
    return -1;
  *old = p->vae;
  p->vae = v;
  return 0;
}

void sdr_pipeline_drop_safety_checker(sdr_pipeline *p) {
  if (p->safety_checker)
    sdr_safety_checker_free(p->safety_checker);
  free(p->safety_checker);
  p->safety_checker = NULL;
}

int sdr_pipeline_to(sdr_pipeline *p, sdr_backend *be, int keep_dtype) {
  /* All three bound on the new backend before the old ones go: a failure (out
   * of GPU memory) leaves the pipeline as it was. */
  sdr_clip_text_model te = {0}, te2 = {0};
  sdr_unet u;
  sdr_vae v;
  sdr_safety_checker sc;
  if (p->text_encoder.layers && sdr_clip_text_model_copy_to(&te, &p->text_encoder, be, keep_dtype))
    return -1;
  if (sdr_pipeline_is_xl(p) &&
      sdr_clip_text_model_copy_to(&te2, &p->text_encoder_2, be, keep_dtype) != 0) {
    sdr_clip_text_model_free(&te);
    return -1;
  }
  if (sdr_unet_copy_to(&u, &p->unet, be, keep_dtype) != 0) {
    sdr_clip_text_model_free(&te);
    sdr_clip_text_model_free(&te2);
    return -1;
  }
  if (sdr_vae_copy_to(&v, &p->vae, be, sdr_pipeline_vae_keep_dtype(p, &p->vae.cfg, keep_dtype)) !=
      0) {
    sdr_clip_text_model_free(&te);
    sdr_clip_text_model_free(&te2);
    sdr_unet_free(&u);
    return -1;
  }
  if (p->safety_checker &&
      sdr_safety_checker_copy_to(&sc, p->safety_checker, be, keep_dtype) != 0) {
    sdr_clip_text_model_free(&te);
    sdr_clip_text_model_free(&te2);
    sdr_unet_free(&u);
    sdr_vae_free(&v);
    return -1;
  }
  sdr_clip_vision_projection *enc;
  sdr_ip_adapter *ads[SDR_IP_MAX];
  if (sdr_pipeline_ip_copy_to(p, be, &u, keep_dtype, &enc, ads) != 0 ||
      (p->nip_adapters && sdr_ip_adapters_attach(&u, ads, p->nip_adapters, p->ip_scale) != 0)) {
    sdr_pipeline_ip_free(enc, ads, p->nip_adapters);
    sdr_clip_text_model_free(&te);
    sdr_clip_text_model_free(&te2);
    sdr_unet_free(&u);
    sdr_vae_free(&v);
    if (p->safety_checker)
      sdr_safety_checker_free(&sc);
    return -1;
  }
  sdr_pipeline_ip_free(p->image_encoder, p->ip_adapters, p->nip_adapters);
  p->image_encoder = enc;
  memcpy(p->ip_adapters, ads, sizeof ads);
  sdr_lora_models lm = sdr_pipeline_lora_models(p);
  sdr_lora_release(&p->lora, &lm); /* on the old backend, before its models go */
  sdr_clip_text_model_free(&p->text_encoder);
  sdr_unet_free(&p->unet);
  sdr_vae_free(&p->vae);
  p->text_encoder = te;
  if (sdr_pipeline_is_xl(p)) {
    sdr_clip_text_model_free(&p->text_encoder_2);
    p->text_encoder_2 = te2;
  }
  p->unet = u;
  p->vae = v;
  if (p->safety_checker) {
    sdr_safety_checker_free(p->safety_checker);
    *p->safety_checker = sc;
  }
  sdr_arena_free(&p->arena);
  sdr_arena_init(&p->arena, be);
  p->be = be;
  lm = sdr_pipeline_lora_models(p);
  return sdr_lora_apply(&p->lora, &lm);
}

int sdr_pipeline_default_size(const sdr_pipeline *p) {
  return p->unet.cfg.sample_size * sdr_vae_scale_factor(&p->vae);
}

int sdr_img2img_t_start(int num_inference_steps, double strength, int order) {
  /* get_timesteps: init_timestep = min(int(N * strength), N); t_start = max(N - init, 0), in
   * Python's floats (a float32 strength would make int(50 * 0.9) 44) */
  int init = (int)((double)num_inference_steps * strength);
  if (init > num_inference_steps)
    init = num_inference_steps;
  int t_start = num_inference_steps - init;
  return (t_start > 0 ? t_start : 0) * order;
}

/* ---- prompts ------------------------------------------------------------------ */

/* text_encoder(ids) for n texts padded to T tokens -> embeds (n, T, D) on the backend;
 * with clip_skip, hidden_states[-(clip_skip + 1)] through the final layer norm
 * (encode_prompt). */
static int encode_texts(sdr_pipeline *p, const char *const *texts, int n, int T, int clip_skip,
                        sdr_tensor *embeds) {
  const sdr_clip_text_config *c = &p->text_encoder.cfg;
  if (T > c->max_position_embeddings)
    return sdr_fail("%d tokens per text exceed the text encoder's %d positions", T,
                    c->max_position_embeddings);
  int64_t *host = malloc((size_t)n * T * sizeof *host);
  if (!host)
    return sdr_fail("out of memory");
  if (sdr_clip_tokenizer_encode_padded(p->tokenizer, texts, n, T, host) != 0) {
    free(host);
    return -1;
  }
  sdr_arena *a = &p->arena;
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor ids, hidden;
  int rc = sdr_arena_tensor(a, &ids, SDR_I64, 2, (int64_t[]){n, T});
  if (rc == 0)
    rc = sdr_upload(p->be, ids.data, host, (size_t)n * T * sizeof *host);
  free(host);
  if (rc != 0)
    goto done;
  if (clip_skip <= 0) {
    rc = sdr_clip_text_forward(&p->text_encoder, a, embeds, NULL, &ids);
    goto done;
  }
  /* hidden_states[-(clip_skip + 1)] of L + 1 (the embeddings, then each layer's output) */
  if (clip_skip > c->num_hidden_layers) {
    rc = sdr_fail("clip_skip %d: the text encoder has %d layers (at most clip_skip=%d)", clip_skip,
                  c->num_hidden_layers, c->num_hidden_layers);
    goto done;
  }
  const int L = c->num_hidden_layers;
  rc = sdr_arena_tensor(a, &hidden, SDR_F32, 4, (int64_t[]){L + 1, n, T, c->hidden_size});
  sdr_tensor last, chosen, chosen3;
  if (rc == 0)
    rc = sdr_arena_tensor(a, &last, SDR_F32, 3, (int64_t[]){n, T, c->hidden_size});
  if (rc == 0)
    rc = sdr_clip_text_forward(&p->text_encoder, a, &last, &hidden, &ids);
  if (rc == 0)
    rc = sdr_tensor_narrow0(&chosen, &hidden, L - clip_skip, 1);
  if (rc == 0)
    rc = sdr_tensor_reshape(&chosen3, &chosen, 3, (int64_t[]){n, T, c->hidden_size});
  if (rc == 0)
    rc = sdr_layer_norm(p->be, embeds, &chosen3, &p->text_encoder.final_ln_w,
                        &p->text_encoder.final_ln_b, c->layer_norm_eps);
done:
  sdr_arena_release(a, mark);
  return rc;
}

/* n prompts' embeddings (n, T, D) as host rows: given ones copied, texts encoded. */
static int prompt_rows(sdr_pipeline *p, const char *const *texts, const float *given, int n, int T,
                       int D, int clip_skip, char *rows) {
  const size_t bytes = (size_t)n * T * D * sizeof(float);
  if (given) {
    memcpy(rows, given, bytes);
    return 0;
  }
  if (p->text_encoder.cfg.hidden_size != D) /* only when mixed with given embeddings */
    return sdr_fail("the text encoder makes embeddings %d wide, prompt_embeds are %d wide",
                    p->text_encoder.cfg.hidden_size, D);
  sdr_arena_mark mark = sdr_arena_get_mark(&p->arena);
  sdr_tensor embeds;
  int rc = sdr_arena_tensor(&p->arena, &embeds, SDR_F32, 3, (int64_t[]){n, T, D});
  if (rc == 0)
    rc = encode_texts(p, texts, n, T, clip_skip, &embeds);
  if (rc == 0)
    rc = sdr_download(p->be, rows, embeds.data, bytes);
  sdr_arena_release(&p->arena, mark);
  return rc;
}

/* ---- random draws -------------------------------------------------------------- */

/* randn_tensor: one draw of the whole shape from one generator, or one draw of
 * each batch entry from its own generator; drawn in the pipeline's dtype and
 * widened, as torch draws float16 noise as its own stream. */
static int draw(sdr_pipeline *p, const sdr_generate *g, sdr_tensor *out) {
  return sdr_generator_fill_batch(g->generators, g->ngenerators, p->be, &p->arena, out, p->dtype);
}

/* ---- checks ------------------------------------------------------------------- */

/* check_inputs' rules for prompt_embeds and negative_prompt_embeds; T is the
 * tokenizer's length, which negative embeddings given with text prompts must have. */
static int check_embeds(const sdr_pipeline *p, const sdr_generate *g, int T) {
  const int64_t *ps = g->prompt_embeds_shape, *ns = g->negative_embeds_shape;
  if (g->prompts && g->prompt_embeds)
    return sdr_fail("Cannot forward both `prompt` and `prompt_embeds`. Please make sure to only "
                    "forward one of the two.");
  if (!g->prompts && !g->prompt_embeds)
    return sdr_fail("Provide either `prompt` or `prompt_embeds`. Cannot leave both `prompt` and "
                    "`prompt_embeds` undefined.");
  if (g->negative_prompts && g->negative_prompt_embeds)
    return sdr_fail("Cannot forward both `negative_prompt` and `negative_prompt_embeds`. Please "
                    "make sure to only forward one of the two.");
  const int D = p->unet.cfg.cross_attention_dim[0];
  if (g->prompt_embeds && (ps[0] != g->nprompts || ps[1] < 1 || ps[1] > 65536 || ps[2] != D))
    return sdr_fail("prompt_embeds: shape (batch, tokens, %d) expected (the UNet's "
                    "cross_attention_dim), got (%lld, %lld, %lld)",
                    D, (long long)ps[0], (long long)ps[1], (long long)ps[2]);
  if (!g->negative_prompt_embeds)
    return 0;
  if (g->prompt_embeds && memcmp(ps, ns, sizeof g->prompt_embeds_shape) != 0)
    return sdr_fail("`prompt_embeds` and `negative_prompt_embeds` must have the same shape when "
                    "passed directly, but got: `prompt_embeds` (%lld, %lld, %lld) != "
                    "`negative_prompt_embeds` (%lld, %lld, %lld).",
                    (long long)ps[0], (long long)ps[1], (long long)ps[2], (long long)ns[0],
                    (long long)ns[1], (long long)ns[2]);
  const int hidden = sdr_pipeline_text_width(p);
  if (!g->prompt_embeds && (ns[0] != g->nprompts || ns[1] != T || ns[2] != hidden))
    return sdr_fail("negative_prompt_embeds: shape (%d, %d, %d) expected, one per prompt as the "
                    "text encoder makes them, got (%lld, %lld, %lld)",
                    g->nprompts, T, hidden, (long long)ns[0], (long long)ns[1], (long long)ns[2]);
  return 0;
}

/* The prompts' checks: the embeddings', then at least one prompt and, where they are used,
 * a negative prompt for each. */
static int check_prompts(const sdr_pipeline *p, const sdr_generate *g, int negatives_used) {
  const sdr_clip_tokenizer *tok = p->tokenizer ? p->tokenizer : p->tokenizer_2;
  if (check_embeds(p, g, sdr_clip_tokenizer_model_max_length(tok)) != 0)
    return -1;
  if (sdr_pipeline_is_xl(p) && sdr_xl_check(p, g) != 0)
    return -1;
  if (g->nprompts < 1)
    return sdr_fail("prompt: at least one prompt is needed");
  if (negatives_used && g->negative_prompts && g->nnegative != g->nprompts)
    return sdr_fail("`negative_prompt`: %d given for %d prompts; the numbers must match",
                    g->nnegative, g->nprompts);
  return 0;
}

static int check_params(const sdr_pipeline *p, const sdr_generate *g, int height, int width) {
  if (check_prompts(p, g, 1) != 0)
    return -1;
  if (sdr_pipeline_is_xl(p) && sdr_xl_check_time_ids(p, g) != 0)
    return -1;
  /* txt2img's check_inputs; img2img takes the pictures' size floored to the VAE's factor,
   * and the UNet follows any size as diffusers' does (its upsample_size) */
  if ((!sdr_img2img_wanted(g) || sdr_inpaint_wanted(g)) && (height % 8 || width % 8))
    return sdr_fail("`height` and `width` have to be divisible by 8 but are %d and %d.", height,
                    width);
  if (!g->timesteps && g->num_inference_steps < 1)
    return sdr_fail("num_inference_steps must be a positive number, got %d",
                    g->num_inference_steps);
  if (g->num_images_per_prompt < 1)
    return sdr_fail("num_images_per_prompt must be a positive number, got %d",
                    g->num_images_per_prompt);
  if (sdr_img2img_wanted(g) && !(g->strength >= 0 && g->strength <= 1)) /* NaN too */
    return sdr_fail("The value of strength should in [0.0, 1.0] but is %g", g->strength);
  const int total = g->nprompts * g->num_images_per_prompt;
  if (g->ngenerators != 1 && g->ngenerators != total)
    return sdr_fail("You have passed a list of generators of length %d, but requested an "
                    "effective batch size of %d. Make sure the batch size matches the length of "
                    "the generators.",
                    g->ngenerators, total);
  return 0;
}

/* A call's LoRA scale on one model's layers while it runs (scale_lora_layers), and taken
 * off after (unscale_lora_layers), as diffusers' encode_prompt and UNet forward do. The
 * weights are made for the model just before it runs; taking the scale off only changes the
 * state, so the next run with the same scale finds its weights ready. */
static int lora_scaled(sdr_pipeline *p, sdr_lora_part part, const sdr_generate *g) {
  if (g->has_lora_scale) {
    sdr_lora_scale(&p->lora, part, g->lora_scale);
    if (part != SDR_LORA_UNET) { /* encode_prompt: self._lora_scale = lora_scale */
      p->lora.has_last_scale = 1;
      p->lora.last_scale = g->lora_scale;
    }
  }
  sdr_lora_models lm = sdr_pipeline_lora_models(p);
  return sdr_lora_apply_part(&p->lora, &lm, part);
}

static void lora_unscaled(sdr_pipeline *p, sdr_lora_part part, const sdr_generate *g) {
  if (g->has_lora_scale)
    sdr_lora_unscale(&p->lora, part, g->lora_scale);
}

/* encode_prompt's work, with the text encoder's LoRA scale on. */
static int encode_prompt_scaled(sdr_pipeline *p, const sdr_generate *g, int guided, float **pos,
                                float **neg, int *T_out, int *D_out) {
  const int B0 = g->nprompts;
  /* prompt_embeds bring their own length and width (a prompt weighting library's may be
   * longer than the tokenizer's); text is encoded at the tokenizer's length. */
  const int T = g->prompt_embeds ? (int)g->prompt_embeds_shape[1]
                                 : sdr_clip_tokenizer_model_max_length(p->tokenizer);
  const int D = g->prompt_embeds ? (int)g->prompt_embeds_shape[2] : p->text_encoder.cfg.hidden_size;
  const size_t n = (size_t)B0 * T * D;
  float *rows = malloc((guided ? 2 : 1) * n * sizeof *rows);
  const char **empty = NULL;
  if (!rows)
    return sdr_fail("out of memory");
  if (prompt_rows(p, g->prompts, g->prompt_embeds, B0, T, D, g->clip_skip, (char *)rows) != 0)
    goto fail;
  if (guided) {
    const char *const *negs = g->negative_prompts;
    if (!negs && !g->negative_prompt_embeds) {
      empty = calloc((size_t)B0, sizeof *empty);
      if (!empty) {
        sdr_fail("out of memory");
        goto fail;
      }
      for (int i = 0; i < B0; i++)
        empty[i] = "";
      negs = empty;
    }
    /* no clip_skip for the negative, as diffusers */
    if (prompt_rows(p, negs, g->negative_prompt_embeds, B0, T, D, 0, (char *)(rows + n)) != 0)
      goto fail;
    free(empty);
    *neg = rows + n;
  }
  *pos = rows;
  *T_out = T;
  *D_out = D;
  return 0;
fail:
  free(empty);
  free(rows);
  return -1;
}

/* encode_prompt after its inputs were checked (check_prompts); the pooled embeddings for an
 * SDXL pipeline. */
static int encode_prompt(sdr_pipeline *p, const sdr_generate *g, int guided, float **pos,
                         float **neg, int *T_out, int *D_out, float **pooled, float **neg_pooled,
                         int *P) {
  *pos = *neg = *pooled = *neg_pooled = NULL;
  *P = 0;
  const int xl = sdr_pipeline_is_xl(p);
  int rc = lora_scaled(p, SDR_LORA_TEXT_ENCODER, g);
  /* SDXL's encode_prompt scales both encoders' layers (each is unscaled below either way) */
  const int rc2 = xl ? lora_scaled(p, SDR_LORA_TEXT_ENCODER_2, g) : 0;
  rc = rc ? rc : rc2;
  if (rc == 0 && xl)
    rc = sdr_xl_encode_prompt(p, g, guided, pos, neg, pooled, neg_pooled, T_out, D_out, P);
  else if (rc == 0)
    rc = encode_prompt_scaled(p, g, guided, pos, neg, T_out, D_out);
  lora_unscaled(p, SDR_LORA_TEXT_ENCODER, g);
  if (xl)
    lora_unscaled(p, SDR_LORA_TEXT_ENCODER_2, g);
  return rc;
}

int sdr_pipeline_encode_prompt(sdr_pipeline *p, const sdr_generate *g, int guided, float **pos,
                               float **neg, int *T, int *D, float **pooled, float **neg_pooled,
                               int *P) {
  *pos = *neg = *pooled = *neg_pooled = NULL;
  *P = 0;
  if (check_prompts(p, g, guided) != 0)
    return -1;
  return encode_prompt(p, g, guided, pos, neg, T, D, pooled, neg_pooled, P);
}

/* ---- the run ------------------------------------------------------------------ */

/* One UNet call of the denoising loop: its inputs, and the ControlNets acting at the step
 * (their residuals computed first, inside the same call). */
typedef struct unet_call {
  sdr_tensor *noise_pred;
  const sdr_tensor *x, *tvec, *context;
  const sdr_tensor *ip_tokens; /* each IP-Adapter's image tokens, nip of them */
  int nip;
  const sdr_tensor *timestep_cond;          /* an LCM's guidance embedding, or NULL */
  const sdr_tensor *text_embeds, *time_ids; /* SDXL's added_cond_kwargs, or NULL */
  const sdr_control_run *control;           /* NULL without ControlNets */
  unsigned active;                          /* which of them act at this step */
  const sdr_tensor *control_x;    /* the nets' latents (an inpainting UNet's x has more) */
  const sdr_tensor *class_labels; /* the upscaler's noise levels, or NULL */
  /* the T2I-Adapters' features at this step (none: nintrablock 0) */
  const sdr_tensor *intrablock;
  int nintrablock;
} unet_call;

static int unet_call_run(sdr_pipeline *p, const unet_call *c) {
  sdr_unet_cond cond = {.attn = {.text = c->context, .nimage = c->nip},
                        .timestep_cond = c->timestep_cond,
                        .text_embeds = c->text_embeds,
                        .time_ids = c->time_ids,
                        .class_labels = c->class_labels,
                        .intrablock = c->intrablock,
                        .nintrablock = c->nintrablock};
  for (int i = 0; i < c->nip; i++)
    cond.attn.image[i] = &c->ip_tokens[i];
  if (!c->control || !c->active)
    return sdr_unet_forward_cond(&p->unet, &p->arena, c->noise_pred, c->x, c->tvec, &cond);
  sdr_arena_mark mark = sdr_arena_get_mark(&p->arena);
  sdr_tensor down[SDR_UNET_MAX_SKIPS], mid;
  sdr_unet_residuals res;
  int rc = sdr_control_residuals(p, c->control, c->active, c->control_x, c->tvec, c->context,
                                 c->text_embeds, c->time_ids, down, &mid, &res);
  cond.res = &res;
  if (rc == 0)
    rc = sdr_unet_forward_cond(&p->unet, &p->arena, c->noise_pred, c->x, c->tvec, &cond);
  sdr_arena_release(&p->arena, mark);
  return rc;
}

/* Where the backend records graphs, the first call of a kind runs as it is while the
 * arena measures it, the second is recorded (its memory reserved first, so nothing is
 * allocated while recording) and every call of that kind from then on replays the
 * recording: the inputs (the scaled latents, the timesteps, the prompt embeddings, the
 * control pictures) are in the same buffers each step, and nothing in the call depends on
 * the step but those. A kind is the set of ControlNets acting (control_guidance_start/end
 * change it between steps); without them there is one. */
enum { MAX_CALL_KINDS = 8 };
typedef struct call_kind {
  unsigned key;
  int calls;
  size_t need; /* arena bytes one call takes */
  sdr_graph *graph;
} call_kind;

typedef struct unet_stepper {
  int graphs; /* the backend records them, they are not turned off, and recording worked */
  int replays;
  call_kind kinds[MAX_CALL_KINDS];
  int nkinds;
  char error[256]; /* why recording failed, if it did */
} unet_stepper;

static int unet_direct(sdr_pipeline *p, call_kind *k, const unet_call *c) {
  sdr_arena *a = &p->arena;
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_arena_watch(a);
  int rc = unet_call_run(p, c);
  k->need = sdr_arena_watched(a) - mark.in_use;
  sdr_arena_release(a, mark);
  return rc;
}

/* The first failure's message: later ones (a broken capture after a refused op) say less. */
static int keep_first_error(unet_stepper *s) {
  if (!s->error[0])
    snprintf(s->error, sizeof s->error, "%s", sdr_last_error());
  return -1;
}

/* Records the call and replays it; -1 with the first error in s->error on failure. */
static int unet_record(sdr_pipeline *p, unet_stepper *s, call_kind *k, const unet_call *c) {
  sdr_arena *a = &p->arena;
  if (sdr_arena_reserve(a, k->need) != 0)
    return keep_first_error(s);
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  if (sdr_graph_begin(p->be) != 0)
    return keep_first_error(s);
  int rc = unet_call_run(p, c);
  if (rc != 0)
    keep_first_error(s);
  sdr_graph *g = sdr_graph_end(p->be); /* ended whatever happened, so the backend goes on */
  sdr_arena_release(a, mark);
  if (rc != 0 || !g) {
    sdr_graph_destroy(p->be, g);
    return keep_first_error(s);
  }
  k->graph = g;
  return sdr_graph_replay(p->be, g) != 0 ? keep_first_error(s) : 0;
}

static void stepper_drop_graphs(sdr_pipeline *p, unet_stepper *s) {
  for (int i = 0; i < s->nkinds; i++) {
    sdr_graph_destroy(p->be, s->kinds[i].graph);
    s->kinds[i].graph = NULL;
  }
}

static int unet_step(sdr_pipeline *p, unet_stepper *s, const unet_call *c) {
  call_kind *k = NULL, spare = {0};
  /* the nets acting, and whether the adapters' features go in */
  const unsigned key = c->active | (c->nintrablock ? 1u << 31 : 0);
  for (int i = 0; i < s->nkinds && !k; i++)
    if (s->kinds[i].key == key)
      k = &s->kinds[i];
  if (!k && s->nkinds < MAX_CALL_KINDS) {
    k = &s->kinds[s->nkinds++];
    *k = (call_kind){key, 0, 0, NULL};
  }
  if (!k) /* more kinds than kept: run directly */
    return unet_direct(p, &spare, c);
  int rc;
  if (k->graph) {
    rc = sdr_graph_replay(p->be, k->graph);
    s->replays += rc == 0;
  } else if (s->graphs && k->calls == 1) {
    rc = unet_record(p, s, k, c);
    if (rc == 0) {
      s->replays++;
    } else {
      /* A call that cannot be recorded still runs: directly, from now on. A fault that
       * broke the device fails this call too, with its own message. */
      stepper_drop_graphs(p, s);
      s->graphs = 0;
      rc = unet_direct(p, k, c);
    }
  } else {
    rc = unet_direct(p, k, c);
  }
  k->calls++;
  return rc;
}

/* rescale_noise_cfg: each image's guided prediction scaled towards the text
 * prediction's standard deviation (torch's std: unbiased, over all but the batch),
 * by the fraction r. Two numbers per image, so they are computed on the host. */
static int rescale_noise_cfg(sdr_backend *be, sdr_tensor *cfg, const sdr_tensor *text, float r) {
  const int64_t B = cfg->shape[0], n = sdr_tensor_numel(cfg) / B;
  float *host = malloc((size_t)(2 * n) * sizeof *host);
  if (!host)
    return sdr_fail("out of memory");
  int rc = 0;
  for (int64_t b = 0; b < B && rc == 0; b++) {
    sdr_tensor c1, t1;
    rc = sdr_tensor_narrow0(&c1, cfg, b, 1);
    if (rc == 0)
      rc = sdr_tensor_narrow0(&t1, text, b, 1);
    if (rc == 0)
      rc = sdr_download(be, host, c1.data, (size_t)n * sizeof *host);
    if (rc == 0)
      rc = sdr_download(be, host + n, t1.data, (size_t)n * sizeof *host);
    if (rc != 0)
      break;
    double std[2];
    for (int k = 0; k < 2; k++) {
      const float *x = host + k * n;
      double mean = 0, ss = 0;
      for (int64_t i = 0; i < n; i++)
        mean += x[i];
      mean /= (double)n;
      for (int64_t i = 0; i < n; i++)
        ss += (x[i] - mean) * (x[i] - mean);
      std[k] = sqrt(ss / (double)(n - 1));
    }
    /* r * cfg * (std_text / std_cfg) + (1 - r) * cfg */
    rc = sdr_affine(be, &c1, &c1, (float)(r * (std[1] / std[0]) + (1.0 - r)), 0.0f);
  }
  free(host);
  return rc;
}

static int graphs_wanted(const sdr_backend *be) {
  const char *e = getenv("SDREPL_GRAPHS"); /* 0: every step runs its ops (debugging) */
  return sdr_graph_supported(be) && !(e && strcmp(e, "0") == 0);
}

static void show_preview(sdr_pipeline *p, const sdr_tensor *latents, int step, int total) {
  if (!sdr_progress_wants_preview())
    return;
  const int64_t C = latents->shape[1], h = latents->shape[2], w = latents->shape[3];
  float *host = malloc((size_t)(C * h * w) * sizeof *host);
  if (!host || sdr_download(p->be, host, latents->data, (size_t)(C * h * w) * sizeof *host) != 0) {
    free(host);
    return;
  }
  sdr_image *img = sdr_latents_preview(host, (int)C, (int)h, (int)w);
  free(host);
  if (!img)
    return;
  char title[64];
  snprintf(title, sizeof title, "step %d/%d", step, total);
  sdr_progress_preview(img, title);
  sdr_image_free(img);
}

int sdr_pipeline_run_size(const sdr_pipeline *p, const sdr_generate *g, int *height, int *width) {
  const int size = sdr_pipeline_default_size(p);
  int h = g->height > 0 ? g->height : size, w = g->width > 0 ? g->width : size;
  if (g->upscale) /* the pictures' size, the VAE's factor times */
    return sdr_upscale_size(p, g, height, width);
  const int inpaint = sdr_inpaint_wanted(g), img2img = !inpaint && sdr_img2img_wanted(g);
  const int control = g->ncontrols > 0;
  /* img2img takes its size from the pictures (floored to the VAE's factor); inpainting
   * resizes them to the run's */
  if (img2img && sdr_img2img_size(p, g, &h, &w) != 0)
    return -1;
  if (inpaint && sdr_inpaint_check(p, g) != 0)
    return -1;
  if (control && (img2img || inpaint)) {
    /* ControlNet img2img and inpainting: the picture's size, or height and width when given
     * (the pictures resized to them) */
    if (inpaint && sdr_img2img_size(p, g, &h, &w) != 0)
      return -1;
    const int latents_given = g->image_tensor && g->image_tensor_shape[1] == 4;
    if (latents_given && ((g->height > 0 && g->height != h) || (g->width > 0 && g->width != w)))
      return sdr_fail("height and width: latents given as the image keep their size (%dx%d)", w, h);
    h = g->height > 0 ? g->height : h;
    w = g->width > 0 ? g->width : w;
  } else if (control) { /* the control picture's size where none is asked for */
    h = g->height;
    w = g->width;
  }
  if (control && sdr_control_size(p, g, &h, &w) != 0)
    return -1;
  if (g->nadapters > 0 && sdr_adapter_size(p, g, &h, &w) != 0)
    return -1;
  *height = h;
  *width = w;
  return 0;
}

int sdr_pipeline_generate(sdr_pipeline *p, const sdr_generate *g, sdr_generated *out) {
  memset(out, 0, sizeof *out);
  int height, width;
  if (sdr_pipeline_run_size(p, g, &height, &width) != 0)
    return -1;
  /* InstructPix2Pix's picture is no starting point: its run is txt2img's */
  const int inpaint = sdr_inpaint_wanted(g);
  const int img2img = !inpaint && !g->pix2pix && !g->upscale && sdr_img2img_wanted(g);
  const int control = g->ncontrols > 0;
  if (check_params(p, g, height, width) != 0)
    return -1;
  sdr_backend *be = p->be;
  sdr_arena *a = &p->arena;
  const int B0 = g->nprompts, N = g->num_images_per_prompt, B = B0 * N;
  const int cfg = sdr_pipeline_guided(p, g);
  /* the guided batch: (negative, positive), or InstructPix2Pix's (text, image, neither) */
  const int nb = cfg ? (g->pix2pix ? 3 : 2) : 1;
  /* the latents' channels: the UNet's input, less the mask and masked latents an
   * inpainting UNet also takes, or InstructPix2Pix's picture latents */
  const int L =
      inpaint || g->pix2pix || g->upscale ? p->vae.cfg.latent_channels : p->unet.cfg.in_channels;
  const int f = sdr_vae_scale_factor(&p->vae);
  const int64_t lh = height / f, lw = width / f;
  const int64_t lat_shape[4] = {B, L, lh, lw};
  int rc = -1;
  float *host = NULL;
  unet_stepper stepper = {.graphs = graphs_wanted(be)};
  int unet_scaled = 0; /* a call's LoRA scale is on the UNet's layers */
  TRY(sdr_arena_reset(a));

  /* encode_prompt: (negative, then positive) embeddings, each repeated per image */
  float *pos = NULL, *neg = NULL, *pooled = NULL, *neg_pooled = NULL;
  int T, D, P;
  /* checked by check_params */
  TRY(encode_prompt(p, g, cfg, &pos, &neg, &T, &D, &pooled, &neg_pooled, &P));
  host = pos;
  /* SDXL's added_cond_kwargs: the pooled embeddings and the micro-conditioning */
  sdr_tensor xl_text, xl_time;
  const int xl = pooled != NULL;
  if (xl) {
    rc = sdr_xl_added_cond(p, g, cfg, B, height, width, pooled, neg_pooled, P, &xl_text, &xl_time);
    free(pooled);
    if (rc != 0)
      goto fail;
    rc = -1;
  }
  sdr_tensor context;
  TRY(sdr_arena_tensor(a, &context, SDR_F32, 3, (int64_t[]){(int64_t)nb * B, T, D}));
  {
    /* repeat(1, N, 1) puts each prompt's N copies together; guided, the negatives first, or
     * InstructPix2Pix's [prompt_embeds, negative_prompt_embeds, negative_prompt_embeds] */
    const size_t row = (size_t)T * D;
    float *rows = malloc((size_t)nb * B * row * sizeof *rows), *dst = rows;
    if (!rows) {
      sdr_fail("out of memory");
      goto fail;
    }
    for (int part = 0; part < nb; part++) {
      const int negative = cfg && (g->pix2pix ? part > 0 : part == 0);
      for (int i = 0; i < B0; i++)
        for (int k = 0; k < N; k++, dst += row)
          memcpy(dst, (negative ? neg : pos) + (size_t)i * row, row * sizeof *dst);
    }
    rc = sdr_upload(be, context.data, rows, (size_t)(dst - rows) * sizeof *rows);
    free(rows);
    if (rc != 0)
      goto fail;
    rc = -1;
    free(host);
    host = NULL;
  }

  /* timesteps, sliced by strength for img2img */
  /* retrieve_timesteps: custom ones make num_inference_steps their count */
  const int steps = g->timesteps ? g->ntimesteps : g->num_inference_steps;
  /* the LatentConsistencyModel pipelines pass original_inference_steps, and img2img's strength
   * (which cuts the scheduler's own schedule: no slice after) */
  const int lcm_strength = g->no_guidance && img2img;
  if (g->no_guidance)
    TRY(sdr_scheduler_set_timesteps_original(p->scheduler, g->num_inference_steps, g->timesteps,
                                             g->ntimesteps, g->original_inference_steps,
                                             lcm_strength ? g->strength : 1.0));
  else if (g->timesteps)
    TRY(sdr_scheduler_set_custom_timesteps(p->scheduler, g->timesteps, g->ntimesteps));
  else
    TRY(sdr_scheduler_set_timesteps(p->scheduler, g->num_inference_steps));
  int nts = 0;
  const double *ts = sdr_scheduler_timesteps(p->scheduler, &nts);
  int first = 0;
  if ((img2img || inpaint) && g->xl_img2img && sdr_xl_fraction(g->denoising_start)) {
    /* SDXL img2img's and inpainting's denoising_start picks the last steps, whatever strength
     * says */
    first = nts - sdr_xl_denoising_start(p, g, ts, nts);
  } else if ((img2img || inpaint) && !lcm_strength) {
    first = sdr_img2img_t_start(steps, g->strength, sdr_scheduler_order(p->scheduler));
    if (first >= nts) {
      sdr_fail("strength %g with %d steps leaves no step to run", g->strength, steps);
      goto fail;
    }
    /* SD's get_timesteps tells the scheduler where the sliced run begins (SDXL's ControlNet
     * img2img's too); SDXL's own does not, so there the scheduler finds its index from the
     * first timestep (the second of two equal ones, index_for_timestep's rule) */
    if (!g->xl_img2img || (control && img2img))
      TRY(sdr_scheduler_set_begin_index(p->scheduler, first));
  }
  sdr_control_run cr;
  if (control)
    TRY(sdr_control_prepare(p, g, cfg, B, height, width, nts - first, &cr));
  /* prepare_ip_adapter_image_embeds, then the UNet's encoder_hid_proj: once per run */
  sdr_tensor ip_tokens[SDR_IP_MAX];
  TRY(sdr_ip_prepare(p, g, cfg, B, ip_tokens));
  /* an LCM's guidance embedding (w = guidance_scale - 1), the same every step */
  sdr_tensor tcond_t;
  const sdr_tensor *tcond;
  TRY(sdr_lcm_timestep_cond(p, g, (int64_t)nb * B, &tcond_t, &tcond));
  /* InstructPix2Pix's picture latents beside the latents: (image, image, zeros) guided */
  sdr_tensor p2p_image, p2p_in;
  if (g->pix2pix) {
    TRY(sdr_arena_tensor(a, &p2p_image, SDR_F32, 4, (int64_t[]){(int64_t)nb * B, L, lh, lw}));
    TRY(sdr_pix2pix_image_latents(p, g, cfg, B, &p2p_image));
    TRY(sdr_arena_tensor(a, &p2p_in, SDR_F32, 4, (int64_t[]){(int64_t)nb * B, 2 * L, lh, lw}));
  }
  /* the upscaler's pictures beside the latents, and their noise level as the class label */
  sdr_tensor up_image, up_in, up_labels;
  if (g->upscale) {
    TRY(sdr_upscale_prepare(p, g, nb, B, lh, lw, &up_image, &up_labels));
    TRY(sdr_arena_tensor(a, &up_in, SDR_F32, 4, (int64_t[]){(int64_t)nb * B, L + 3, lh, lw}));
  }
  /* randn_tensor draws a step's noise in the model output's dtype. */
  TRY(sdr_scheduler_set_noise_dtype(p->scheduler, p->dtype));
  sdr_scheduler_set_default_generator(p->scheduler, g->default_generator);

  sdr_tensor latents;
  TRY(sdr_arena_tensor(a, &latents, SDR_F32, 4, lat_shape));
  sdr_inpaint ip = {0};
  if (inpaint) {
    TRY(sdr_inpaint_prepare(p, g, cfg, &latents, ts[first], &ip));
  } else if (img2img) {
    TRY(sdr_img2img_latents(p, g, &latents, ts[first]));
  } else {
    if (g->latents)
      TRY(sdr_upload(be, latents.data, g->latents, (size_t)sdr_tensor_nbytes(&latents)));
    else
      TRY(draw(p, g, &latents));
    double sigma = sdr_scheduler_init_noise_sigma(p->scheduler);
    if (sigma != 1.0)
      TRY(sdr_affine(be, &latents, &latents, (float)sigma, 0.0f));
  }

  /* the denoising loop: the UNet on (uncond, text) as one batch (SDXL's denoising_end may stop
   * it early) */
  const int nsteps =
      sdr_pipeline_is_xl(p) ? sdr_xl_denoising_steps(p, g, ts + first, nts - first) : nts - first;
  /* the T2I-Adapters' features, made once */
  sdr_adapter_run ar = {0};
  if (g->nadapters > 0)
    TRY(sdr_adapter_prepare(p, g, cfg, B0, N, height, width, nsteps, &ar));
  const int64_t in_shape[4] = {(int64_t)nb * B, L, lh, lw};
  sdr_tensor model_in, scaled, noise_pred, tvec, guided, prev;
  TRY(sdr_arena_tensor(a, &model_in, SDR_F32, 4, in_shape));
  TRY(sdr_arena_tensor(a, &scaled, SDR_F32, 4, in_shape));
  TRY(sdr_arena_tensor(a, &noise_pred, SDR_F32, 4,
                       (int64_t[]){in_shape[0], p->unet.cfg.out_channels, lh, lw}));
  TRY(sdr_arena_tensor(a, &tvec, SDR_F32, 1, (int64_t[]){in_shape[0]}));
  TRY(sdr_arena_tensor(a, &guided, SDR_F32, 4, lat_shape));
  TRY(sdr_arena_tensor(a, &prev, SDR_F32, 4, lat_shape));
  const int bar = !g->progress_disable;
  unet_scaled = 1;
  if (lora_scaled(p, SDR_LORA_UNET, g) != 0)
    goto fail;
  if (bar)
    sdr_progress_begin(g->progress_desc ? g->progress_desc : "", nsteps, 0);
  for (int i = 0; i < nsteps; i++) {
    const double t = ts[first + i];
    for (int part = 0; part < nb; part++) { /* torch.cat([latents] * nb) */
      sdr_tensor rows;
      TRY(sdr_tensor_narrow0(&rows, &model_in, (int64_t)part * B, B));
      TRY(sdr_affine(be, &rows, &latents, 1.0f, 0.0f));
    }
    TRY(sdr_scheduler_scale_model_input(p->scheduler, be, &scaled, &model_in, t));
    TRY(sdr_fill(be, &tvec, (float)t));
    const sdr_tensor *unet_x = &scaled;
    if (ip.unet9) {
      TRY(sdr_inpaint_unet_input(p, &ip, &scaled));
      unet_x = &ip.unet_in;
    } else if (g->pix2pix) {
      TRY(sdr_concat(be, &p2p_in, &scaled, &p2p_image, 1));
      unet_x = &p2p_in;
    } else if (g->upscale) {
      TRY(sdr_concat(be, &up_in, &scaled, &up_image, 1));
      unet_x = &up_in;
    }
    unet_call call = {&noise_pred,
                      unet_x,
                      &tvec,
                      &context,
                      ip_tokens,
                      g->nip_inputs,
                      tcond,
                      xl ? &xl_text : NULL,
                      xl ? &xl_time : NULL,
                      control ? &cr : NULL,
                      control ? sdr_control_active(&cr, i) : 0,
                      &scaled};
    call.class_labels = g->upscale ? &up_labels : NULL;
    if (i < ar.steps) {
      call.intrablock = ar.features;
      call.nintrablock = ar.nfeatures;
    }
    rc = unet_step(p, &stepper, &call);
    if (rc != 0)
      goto fail_progress;
    rc = -1;
    const sdr_tensor *eps = &noise_pred;
    if (cfg && g->pix2pix) {
      /* uncond + guidance_scale * (text - image) + image_guidance_scale * (image - uncond) */
      sdr_tensor tx, im, un, d;
      TRY(sdr_tensor_narrow0(&tx, &noise_pred, 0, B));
      TRY(sdr_tensor_narrow0(&im, &noise_pred, B, B));
      TRY(sdr_tensor_narrow0(&un, &noise_pred, 2 * (int64_t)B, B));
      TRY(sdr_tensor_narrow0(&d, &model_in, 0, B)); /* free until the next step */
      TRY(sdr_binary(be, &guided, &tx, &im, SDR_BINARY_SUB));
      TRY(sdr_affine(be, &guided, &guided, g->guidance_scale, 0.0f));
      TRY(sdr_binary(be, &guided, &un, &guided, SDR_BINARY_ADD));
      TRY(sdr_binary(be, &d, &im, &un, SDR_BINARY_SUB));
      TRY(sdr_affine(be, &d, &d, g->image_guidance_scale, 0.0f));
      TRY(sdr_binary(be, &guided, &guided, &d, SDR_BINARY_ADD));
      eps = &guided;
    } else if (cfg) {
      /* noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond) */
      sdr_tensor un, tx;
      TRY(sdr_tensor_narrow0(&un, &noise_pred, 0, B));
      TRY(sdr_tensor_narrow0(&tx, &noise_pred, B, B));
      TRY(sdr_binary(be, &guided, &tx, &un, SDR_BINARY_SUB));
      TRY(sdr_affine(be, &guided, &guided, g->guidance_scale, 0.0f));
      TRY(sdr_binary(be, &guided, &un, &guided, SDR_BINARY_ADD));
      if (g->guidance_rescale > 0)
        TRY(rescale_noise_cfg(be, &guided, &tx, g->guidance_rescale));
      eps = &guided;
    }
    /* the LatentConsistencyModel pipelines decode the last step's `denoised`, which is the
     * latents unless that step added noise (custom timesteps cut by strength) */
    const int keep_denoised = g->no_guidance && i == nsteps - 1;
    TRY(sdr_scheduler_step_full(p->scheduler, be, a, &prev, keep_denoised ? &guided : NULL, eps, t,
                                &latents, g->generators, g->ngenerators, g->eta));
    TRY(sdr_affine(be, &latents, keep_denoised ? &guided : &prev, 1.0f, 0.0f));
    if (inpaint && !ip.unet9)
      TRY(sdr_inpaint_blend(p, &ip, &latents, i < nsteps - 1,
                            i < nsteps - 1 ? ts[first + i + 1] : 0));
    out->steps_run++;
    if (g->on_step)
      TRY(g->on_step(g->on_step_ud, i, t, &latents));
    if (bar)
      sdr_progress_update(i + 1);
    show_preview(p, &latents, i + 1, nsteps);
    if (sdr_interrupt_check() != 0)
      goto fail_progress;
  }
  if (bar)
    sdr_progress_end(1);
  unet_scaled = 0;
  lora_unscaled(p, SDR_LORA_UNET, g);

  /* decode, or hand back the latents */
  if (g->output_latent) {
    size_t n = (size_t)sdr_tensor_numel(&latents);
    out->data = malloc(n * sizeof(float));
    if (!out->data) {
      sdr_fail("out of memory");
      goto fail;
    }
    TRY(sdr_download(be, out->data, latents.data, n * sizeof(float)));
    memcpy(out->shape, lat_shape, sizeof out->shape);
  } else {
    const int64_t img_shape[4] = {B, p->vae.cfg.out_channels, height, width};
    const size_t per = (size_t)(img_shape[1] * height * width);
    out->data = malloc((size_t)B * per * sizeof(float));
    if (!out->data) {
      sdr_fail("out of memory");
      goto fail;
    }
    /* SDXL's pipelines denormalize with the VAE's latents_mean and latents_std when given */
    TRY(xl ? sdr_xl_unscale_latents(p, a, &latents)
           : sdr_affine(be, &latents, &latents, 1.0f / p->vae.cfg.scaling_factor, 0.0f));
    /* vae_slicing decodes one image at a time: the same pictures, less memory.
     * vae_tiling decodes each chunk in tiles when it is larger than one (vae._decode). */
    const int64_t chunk = p->vae_slicing ? 1 : B;
    for (int64_t b = 0; b < B; b += chunk) {
      sdr_arena_mark m = sdr_arena_get_mark(a);
      sdr_tensor z, img;
      TRY(sdr_tensor_narrow0(&z, &latents, b, chunk));
      TRY(sdr_arena_tensor(a, &img, SDR_F32, 4, (int64_t[]){chunk, img_shape[1], height, width}));
      TRY((p->vae_tiling ? sdr_vae_decode_tiled : sdr_vae_decode)(&p->vae, a, &img, &z));
      TRY(sdr_download(be, out->data + (size_t)b * per, img.data,
                       (size_t)chunk * per * sizeof(float)));
      sdr_arena_release(a, m);
      if (sdr_interrupt_check() != 0)
        goto fail;
    }
    memcpy(out->shape, img_shape, sizeof out->shape);
    /* run_safety_checker, on the pictures as decoded */
    if (p->safety_checker && !g->no_safety_checker) {
      if (img_shape[1] != 3) {
        sdr_fail("safety_checker: the VAE makes %lld channels; the checker looks at RGB "
                 "pictures (load with safety_checker = false)",
                 (long long)img_shape[1]);
        goto fail;
      }
      if (!(out->nsfw = calloc((size_t)B, 1))) {
        sdr_fail("out of memory");
        goto fail;
      }
      TRY(sdr_safety_checker_run(p->safety_checker, p->feature_extractor, a, out->data, B, height,
                                 width, out->nsfw));
    }
  }
  rc = 0;
  goto done;
fail_progress:
  if (!g->progress_disable)
    sdr_progress_end(0);
fail:
  free(out->data);
  out->data = NULL;
  free(out->nsfw);
  out->nsfw = NULL;
  if (unet_scaled) /* the run's error is the one to report */
    lora_unscaled(p, SDR_LORA_UNET, g);
done:
  free(host);
  out->graph_replays = stepper.replays;
  snprintf(out->graph_error, sizeof out->graph_error, "%s", stepper.error);
  stepper_drop_graphs(p, &stepper); /* before the arena lets its memory go */
  sdr_arena_reset(a);
  return rc;
}

void sdr_generated_free(sdr_generated *out) {
  free(out->data);
  free(out->nsfw);
  memset(out, 0, sizeof *out);
}

/* engine/pipeline_save.h — a pipeline written as a diffusers folder, as
 * DiffusionPipeline.save_pretrained writes one (pipelines/pipeline_utils.py): each component
 * in its folder (engine/model_save.h for the models; the tokenizers' and feature
 * extractor's files as they were loaded; the scheduler's config as it is now), then
 * model_index.json naming the pipeline's class and each component's. Every file is whole
 * or not there; model_index.json comes last, so an interrupted save of a new folder does not
 * load as a pipeline.
 *
 * What diffusers would write in a form no loader takes back is refused with what to do:
 * LoRA adapters still loaded (PEFT's layers; fuse_lora and unload_lora_weights leave them
 * in the weights), textual inversion tokens, IP-Adapters.
 */
#ifndef SDR_ENGINE_PIPELINE_SAVE_H
#define SDR_ENGINE_PIPELINE_SAVE_H

#include "engine/pipeline.h" // sdr_pipeline

/* What the pipeline object decides: its class, and the components it runs with. */
typedef struct sdr_pipeline_save_spec {
  const char *class_name;         /* "StableDiffusionImg2ImgPipeline" */
  const sdr_scheduler *scheduler; /* pipe.scheduler now */
  int safety_checker;             /* 0: none (pipe.safety_checker = nil): [null, null] */
  int feature_extractor;
  const char *variant; /* NULL, or "fp16": unet/diffusion_pytorch_model.fp16.safetensors */
  /* a ControlNet or T2I-Adapter pipeline's nets: nets_key "controlnet" or "adapter" (NULL:
   * none), nets_library and nets_class their entry in model_index.json (["controlnet",
   * "MultiControlNetModel"] for several, as diffusers names a class of its pipelines folder);
   * written to the folders <key>, <key>_1, <key>_2, ..., which diffusers' Multi classes load
   * (their save_pretrained names a third net <key>_1_2, which they then do not load) */
  const char *nets_key, *nets_library, *nets_class;
  sdr_weights *const *nets;
  int nnets;
} sdr_pipeline_save_spec;

int sdr_pipeline_save(sdr_pipeline *p, const sdr_pipeline_save_spec *s, const char *dir);
/* The model_index.json it writes (malloc'd; NULL with a message): also diffusers'
 * pipe.config, which names the components the pipeline holds now. */
char *sdr_pipeline_model_index(const sdr_pipeline *p, const sdr_pipeline_save_spec *s);
/* Before one of p's models is saved alone (pipe.unet:save_pretrained): the refusals above,
 * then the LoRA state made into the weights. */
int sdr_pipeline_save_ready(sdr_pipeline *p);

#endif

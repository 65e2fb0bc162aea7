/* engine/pipeline_adapter.h — what StableDiffusionAdapterPipeline and
 * StableDiffusionXLAdapterPipeline (diffusers' pipelines/t2i_adapter/) add to a run: the
 * adapters' features, computed once from their pictures, scaled and summed (MultiAdapter),
 * laid out as the UNet's batch, and handed to the UNet as down_intrablock_additional_residuals
 * for the first steps. Used by engine/pipeline.c. */
#ifndef SDR_ENGINE_PIPELINE_ADAPTER_H
#define SDR_ENGINE_PIPELINE_ADAPTER_H

#include "engine/pipeline.h" // sdr_pipeline, sdr_generate

typedef struct sdr_adapter_run {
  sdr_tensor features[SDR_ADAPTER_MAX_FEATURES]; /* in p's arena: batch 1, or the UNet's */
  int nfeatures;
  int steps; /* the first steps that take them */
} sdr_adapter_run;

/* _default_height_width: height and width when not given (0), the first picture's floored
 * to the first adapter's downscale_factor. Also checks the adapters go together. */
int sdr_adapter_size(const sdr_pipeline *p, const sdr_generate *g, int *height, int *width);
/* The features for B0 prompts of N images each, guided or not, over a run of nsteps steps. */
int sdr_adapter_prepare(sdr_pipeline *p, const sdr_generate *g, int guided, int B0, int N,
                        int height, int width, int nsteps, sdr_adapter_run *r);

#endif

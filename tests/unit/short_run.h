/* tests/unit/short_run.h — a short guided txt2img run with a fixed seed, for tests that
 * compare two ways of loading one model picture for picture. Include after check.h. */
#ifndef SDR_TESTS_SHORT_RUN_H
#define SDR_TESTS_SHORT_RUN_H

#include <stdio.h>

#include "engine/error.h"    // sdr_last_error
#include "engine/pipeline.h" // sdr_pipeline_generate

/* 32x32, 3 steps, seed 7; the images (malloc'd, n floats), or NULL with the reason
 * printed as `what` and counted as a failure. */
static inline float *short_run(sdr_pipeline *p, const char *what, size_t *n) {
  sdr_generator gen;
  sdr_generator *gens[1] = {&gen};
  const char *prompts[] = {"a photograph of an astronaut riding a horse"};
  sdr_generate g = {.prompts = prompts,
                    .nprompts = 1,
                    .height = 32,
                    .width = 32,
                    .num_inference_steps = 3,
                    .guidance_scale = 7.5f,
                    .num_images_per_prompt = 1,
                    .generators = gens,
                    .ngenerators = 1};
  sdr_generator_init(&gen, SDR_GENERATOR_CPU);
  sdr_generator_manual_seed(&gen, 7);
  sdr_generated out = {0};
  if (sdr_pipeline_generate(p, &g, &out) != 0) {
    fprintf(stderr, "%s: %s\n", what, sdr_last_error());
    check_failures++;
    return NULL;
  }
  *n = (size_t)(out.shape[0] * out.shape[1] * out.shape[2] * out.shape[3]);
  return out.data; /* sdr_generated_free would free it: taken over */
}

#endif

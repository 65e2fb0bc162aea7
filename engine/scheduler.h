/* engine/scheduler.h — diffusers' schedulers, read from scheduler_config.json.
 *
 * PNDMScheduler (SD 1.4's own), DDIMScheduler, LMSDiscreteScheduler,
 * EulerDiscreteScheduler, EulerAncestralDiscreteScheduler and
 * DPMSolverMultistepScheduler (DPM-Solver++ 2M, Karras sigmas), each with the
 * numbers diffusers computes: set_timesteps, timesteps, init_noise_sigma,
 * scale_model_input, step, add_noise. A scheduler can be made from another's
 * config, as `Euler...Scheduler.from_config(pipe.scheduler.config)` does.
 *
 * Tensors go through the backend ops, so a scheduler step runs where the
 * latents are; its scalar coefficients are computed on the host. Steps that
 * draw noise (DDIM with eta > 0, Euler ancestral) draw from the generator
 * they are given, as diffusers' randn_tensor does.
 */
#ifndef SDR_ENGINE_SCHEDULER_H
#define SDR_ENGINE_SCHEDULER_H

#include "engine/arena.h"     // sdr_arena
#include "engine/generator.h" // sdr_generator
#include "kernels/backend.h"  // sdr_backend, sdr_tensor

typedef enum sdr_scheduler_kind {
  SDR_SCHED_PNDM,
  SDR_SCHED_DDIM,
  SDR_SCHED_LMS,
  SDR_SCHED_EULER,
  SDR_SCHED_EULER_ANCESTRAL,
  SDR_SCHED_DPMSOLVER_MULTISTEP,
  SDR_SCHED_COUNT
} sdr_scheduler_kind;

typedef struct sdr_scheduler sdr_scheduler;

/* diffusers' class name ("PNDMScheduler", ...) -> kind; -1 when unknown. */
int sdr_scheduler_kind_from_name(const char *class_name);
const char *sdr_scheduler_class_name(sdr_scheduler_kind kind);

/* From a scheduler_config.json; kind < 0 takes the kind from its "_class_name". */
sdr_scheduler *sdr_scheduler_load(const char *config_json, int kind);
/* Another kind of scheduler from the same config (diffusers' from_config). */
sdr_scheduler *sdr_scheduler_from_scheduler(const sdr_scheduler *s, sdr_scheduler_kind kind);
void sdr_scheduler_free(sdr_scheduler *s);
sdr_scheduler_kind sdr_scheduler_kind_of(const sdr_scheduler *s);

int sdr_scheduler_set_timesteps(sdr_scheduler *s, int num_inference_steps);
/* The timesteps of the last set_timesteps (PNDM's 51 for 50 steps, ...). */
const double *sdr_scheduler_timesteps(const sdr_scheduler *s, int *n);
double sdr_scheduler_init_noise_sigma(const sdr_scheduler *s);
int sdr_scheduler_order(const sdr_scheduler *s);

/* out = the sample scaled for the model at timestep t (identity for PNDM/DDIM). */
int sdr_scheduler_scale_model_input(sdr_scheduler *s, sdr_backend *be, sdr_tensor *out,
                                    const sdr_tensor *sample, double t);
/* prev_sample from the model output at timestep t; g may be NULL when the
 * scheduler draws nothing. Temporaries from the arena. */
int sdr_scheduler_step(sdr_scheduler *s, sdr_backend *be, sdr_arena *a, sdr_tensor *prev_sample,
                       const sdr_tensor *model_output, double t, const sdr_tensor *sample,
                       sdr_generator *g, float eta);
/* out = noisy version of original at timestep t (per batch entry if t has one value per entry). */
int sdr_scheduler_add_noise(sdr_scheduler *s, sdr_backend *be, sdr_tensor *out,
                            const sdr_tensor *original, const sdr_tensor *noise, double t);

/* The config as JSON text (for Lua's scheduler.config and from_config); owned by s. */
const char *sdr_scheduler_config_json(const sdr_scheduler *s);

#endif

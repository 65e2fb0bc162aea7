/* engine/scheduler.h — diffusers' schedulers, read from scheduler_config.json.
 *
 * PNDMScheduler (SD 1.4's own), DDIMScheduler, LMSDiscreteScheduler,
 * EulerDiscreteScheduler, EulerAncestralDiscreteScheduler,
 * DPMSolverMultistepScheduler (DPM-Solver++ 2M, Karras sigmas),
 * UniPCMultistepScheduler (UniPC's predictor-corrector), HeunDiscreteScheduler
 * (Heun's second-order method, two model calls per Heun step), DDPMScheduler
 * (ancestral sampling of Ho et al. 2020), KDPM2DiscreteScheduler (DPM-Solver-2, two
 * calls per step as Heun's), KDPM2AncestralDiscreteScheduler, DEISMultistepScheduler
 * (DEIS's log-rho multistep solver), DPMSolverSinglestepScheduler (DPM++ 2S) and
 * LCMScheduler (latent consistency models, LCM-LoRA's), and EDMEulerScheduler and
 * EDMDPMSolverMultistepScheduler (Karras et al.'s EDM preconditioning over a rho
 * schedule of sigmas: Playground v2.5's), each with the numbers diffusers
 * computes: set_timesteps, timesteps, init_noise_sigma,
 * scale_model_input, step, add_noise. A scheduler can be made from another's
 * config, as `Euler...Scheduler.from_config(pipe.scheduler.config)` does.
 *
 * Tensors go through the backend ops, so a scheduler step runs where the
 * latents are; its scalar coefficients are computed on the host. Steps that
 * draw noise (DDIM with eta > 0, Euler ancestral, DDPM) draw from the generator
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
  SDR_SCHED_UNIPC_MULTISTEP,
  SDR_SCHED_HEUN,
  SDR_SCHED_DDPM,
  SDR_SCHED_KDPM2,
  SDR_SCHED_KDPM2_ANCESTRAL,
  SDR_SCHED_DEIS_MULTISTEP,
  SDR_SCHED_DPMSOLVER_SINGLESTEP,
  SDR_SCHED_LCM,
  SDR_SCHED_EDM_EULER,
  SDR_SCHED_EDM_DPMSOLVER_MULTISTEP,
  SDR_SCHED_TCD,
  SDR_SCHED_DPMSOLVER_SDE,
  SDR_SCHED_DDIM_INVERSE,
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
/* set_timesteps(timesteps=[...]): n custom timesteps, strictly decreasing, below
 * num_train_timesteps. Only DDPMScheduler takes them (diffusers 0.27.2); the others fail
 * with diffusers' message. */
int sdr_scheduler_set_custom_timesteps(sdr_scheduler *s, const int64_t *timesteps, int n);
/* LCMScheduler's set_timesteps(num_inference_steps or timesteps, original_inference_steps=...,
 * strength=...) (original 0: the config's, as None; strength 1 for txt2img), what the
 * LatentConsistencyModel pipelines call; other classes fail as Python does for the keyword
 * they lack. */
int sdr_scheduler_set_timesteps_original(sdr_scheduler *s, int num_inference_steps,
                                         const int64_t *timesteps, int n, int original,
                                         double strength);
/* The timesteps of the last set_timesteps (PNDM's 51 for 50 steps, ...). */
const double *sdr_scheduler_timesteps(const sdr_scheduler *s, int *n);
double sdr_scheduler_init_noise_sigma(const sdr_scheduler *s);
/* diffusers' scheduler.order: 2 for Heun, whose timesteps come in pairs (one model call
 * each), 1 for the others; img2img's start index is t_start * order. */
int sdr_scheduler_order(const sdr_scheduler *s);
/* config.num_train_timesteps */
int sdr_scheduler_num_train_timesteps(const sdr_scheduler *s);

/* out = the sample scaled for the model at timestep t (identity for PNDM/DDIM). */
int sdr_scheduler_scale_model_input(sdr_scheduler *s, sdr_backend *be, sdr_tensor *out,
                                    const sdr_tensor *sample, double t);
/* prev_sample from the model output at timestep t; g may be NULL when the
 * scheduler draws nothing. Temporaries from the arena. */
int sdr_scheduler_step(sdr_scheduler *s, sdr_backend *be, sdr_arena *a, sdr_tensor *prev_sample,
                       const sdr_tensor *model_output, double t, const sdr_tensor *sample,
                       sdr_generator *g, double eta);
/* The same with a list of generators, one per batch entry (ngens == batch), each
 * drawing its entry's noise as diffusers' randn_tensor does with a list. */
int sdr_scheduler_step_each(sdr_scheduler *s, sdr_backend *be, sdr_arena *a,
                            sdr_tensor *prev_sample, const sdr_tensor *model_output, double t,
                            const sdr_tensor *sample, sdr_generator *const *gens, int ngens,
                            double eta);
/* sdr_scheduler_step_each that also writes diffusers' pred_original_sample into
 * pred_original (shaped like sample) for the classes whose step output has one
 * (sdr_scheduler_has_pred_original: DDIM, DDPM, LMS, Euler, Euler ancestral);
 * pred_original NULL: not wanted. */
int sdr_scheduler_step_full(sdr_scheduler *s, sdr_backend *be, sdr_arena *a,
                            sdr_tensor *prev_sample, sdr_tensor *pred_original,
                            const sdr_tensor *model_output, double t, const sdr_tensor *sample,
                            sdr_generator *const *gens, int ngens, double eta);
int sdr_scheduler_has_pred_original(const sdr_scheduler *s);
/* That output's name: "pred_original_sample", LCMScheduler's "denoised" or TCDScheduler's
 * "pred_noised_sample". */
const char *sdr_scheduler_x0_name(const sdr_scheduler *s);
/* The eta step takes when none is given: 0.3 for TCDScheduler (its step's default; the
 * pipelines pass their own eta, 0 by default), 0 for the others. */
double sdr_scheduler_default_eta(const sdr_scheduler *s);
/* out = noisy version of original at timestep t (per batch entry if t has one value per entry). */
int sdr_scheduler_add_noise(sdr_scheduler *s, sdr_backend *be, sdr_tensor *out,
                            const sdr_tensor *original, const sdr_tensor *noise, double t);

/* The config as JSON text (for Lua's scheduler.config and from_config); owned by s. */
const char *sdr_scheduler_config_json(const sdr_scheduler *s);

/* ---- additions ----
 *
 * Making: sdr_scheduler_load(json, kind) is diffusers' from_config(config): keys the
 * config lists in "_use_default_values" are dropped first, so the new class takes its
 * own defaults for them (EulerDiscreteScheduler from SD 1.4's PNDM config gets
 * "linspace" spacing, as in diffusers 0.27); keys the class does not take are kept in
 * its config for a later from_config. A config value that changes numbers and is not
 * supported (thresholding, an unknown beta_schedule, spacing or prediction_type, ...)
 * fails with a message naming the key and the accepted values.
 *
 * Stepping: prev_sample may be the sample itself (in place), as may scale_model_input's
 * out, and add_noise's out either input; add_noise uses its one t for every batch
 * entry. set_timesteps takes 1 to num_train_timesteps steps (diffusers lets some
 * classes go further, into schedules of repeated timesteps). eta is DDIM's (0 for the
 * others). DDIM with eta > 0, Euler ancestral, DDPM (every step with t > 0) and the SDE variants of
 * DPM-Solver draw noise shaped like the model output from g, one randn call per step as
 * randn_tensor makes; EulerDiscreteScheduler draws (and drops) the same numbers when g is given,
 * because diffusers' Euler step calls randn_tensor even with s_churn = 0.
 * set_timesteps starts a new run: step counters and multistep history are reset.
 *
 * Device memory: multistep history (PNDM's ets, LMS's derivatives, DPM's and UniPC's model
 * outputs, UniPC's last sample) and a few scalars live on the backend of the last step,
 * allocated on first use.
 * sdr_scheduler_free gives them back to that backend, so free a scheduler before its
 * backend, or call sdr_scheduler_release first. */

/* from_config(config, **kwargs): kwargs_json (a JSON object, or NULL) overrides values
 * of the config, including ones it lists in "_use_default_values". */
sdr_scheduler *sdr_scheduler_from_config(const char *config_json, int kind,
                                         const char *kwargs_json);
/* Whether the class's __init__ takes an argument of that name. */
int sdr_scheduler_takes(sdr_scheduler_kind kind, const char *name);
/* Gives back the device memory of the history (the current run's history is lost). */
void sdr_scheduler_release(sdr_scheduler *s);

/* set_begin_index(i), which img2img calls after slicing the timesteps: the first step
 * (and add_noise) use index i. LMS, Euler, Euler ancestral, DPM, UniPC, Heun; PNDM, DDIM and
 * DDPM have no such method in diffusers and ignore it. */
int sdr_scheduler_set_begin_index(sdr_scheduler *s, int begin_index);
/* step_index and begin_index; -1 for None. */
int sdr_scheduler_step_index(const sdr_scheduler *s);
int sdr_scheduler_begin_index(const sdr_scheduler *s);
/* num_inference_steps after set_timesteps (DPM, UniPC: len(timesteps)); 0 for None (Heun:
 * num_train_timesteps, which its __init__ sets up). */
int sdr_scheduler_num_inference_steps(const sdr_scheduler *s);
/* The dtype torch holds the timesteps in: SDR_I64 (PNDM, DDIM, DPM, UniPC, DDPM), SDR_F32
 * (most), SDR_F64 (LMS and Heun with Karras sigmas; Euler ancestral before set_timesteps). */
sdr_dtype sdr_scheduler_timesteps_dtype(const sdr_scheduler *s);
/* The sigmas of LMS, Euler, Euler ancestral, DPM, UniPC and Heun (float32, as diffusers keeps
 * them, with the final 0 or sigma_min, or UniPC's last Karras sigma repeated; Heun's
 * inner ones twice); NULL and *n = 0 for PNDM, DDIM and DDPM. */
const float *sdr_scheduler_sigmas(const sdr_scheduler *s, int *n);
/* The dtype noise is drawn in: float32 (default), or float16 / bfloat16 for a pipeline
 * whose model output is half (randn_tensor draws in the model output's dtype, and
 * torch's half normals are their own stream). DPM's SDE noise is always float32. */
int sdr_scheduler_set_noise_dtype(sdr_scheduler *s, sdr_dtype dtype);
/* What the __init__ of diffusers' StableDiffusionPipeline and StableDiffusionImg2ImgPipeline
 * (inpaint 0) and StableDiffusionInpaintPipeline (inpaint 1) do to an outdated scheduler
 * config: steps_offset becomes 1 where the config has another value, and clip_sample False
 * where it is True (inpainting: skip_prk_steps True where it is False), in the config and
 * in what the class then computes. Returns how many values changed, -1 on failure. */
int sdr_scheduler_fix_outdated(sdr_scheduler *s, int inpaint);
/* torch's default CPU generator (torch.manual_seed's), which DPMSolverSDEScheduler draws its
 * noise sampler's seed from (torch.randint) at a run's first step when its config has no
 * noise_sampler_seed; the other classes never use it. Kept, not owned; NULL: none. */
void sdr_scheduler_set_default_generator(sdr_scheduler *s, sdr_generator *g);

#endif

/* engine/scheduler.c — the public scheduler calls: argument checks, then the class.
 *
 * What each class computes lives in engine/scheduler_<name>.c; the config dict in
 * scheduler_config.c; the shared schedules in scheduler_schedule.c.
 */
#include "engine/scheduler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h" // sdr_fail
#include "engine/scheduler_internal.h"

#include <cjson/cJSON.h>

static const sched_class *const classes[SDR_SCHED_COUNT] = {
    [SDR_SCHED_PNDM] = &sched_pndm_class,
    [SDR_SCHED_DDIM] = &sched_ddim_class,
    [SDR_SCHED_LMS] = &sched_lms_class,
    [SDR_SCHED_EULER] = &sched_euler_class,
    [SDR_SCHED_EULER_ANCESTRAL] = &sched_euler_ancestral_class,
    [SDR_SCHED_DPMSOLVER_MULTISTEP] = &sched_dpmsolver_class,
    [SDR_SCHED_UNIPC_MULTISTEP] = &sched_unipc_class,
    [SDR_SCHED_HEUN] = &sched_heun_class,
    [SDR_SCHED_DDPM] = &sched_ddpm_class,
    [SDR_SCHED_KDPM2] = &sched_kdpm2_class,
    [SDR_SCHED_KDPM2_ANCESTRAL] = &sched_kdpm2_ancestral_class,
    [SDR_SCHED_DEIS_MULTISTEP] = &sched_deis_class,
    [SDR_SCHED_DPMSOLVER_SINGLESTEP] = &sched_dpmsolver_singlestep_class,
    [SDR_SCHED_LCM] = &sched_lcm_class,
    [SDR_SCHED_EDM_EULER] = &sched_edm_euler_class,
    [SDR_SCHED_EDM_DPMSOLVER_MULTISTEP] = &sched_edm_dpmsolver_class,
    [SDR_SCHED_TCD] = &sched_tcd_class,
    [SDR_SCHED_DPMSOLVER_SDE] = &sched_dpmsolver_sde_class,
    [SDR_SCHED_DDIM_INVERSE] = &sched_ddim_inverse_class,
};

int sdr_scheduler_kind_from_name(const char *class_name) {
  for (int k = 0; class_name && k < SDR_SCHED_COUNT; k++)
    if (strcmp(classes[k]->name, class_name) == 0)
      return k;
  return -1;
}

const char *sdr_scheduler_class_name(sdr_scheduler_kind kind) {
  return (unsigned)kind < SDR_SCHED_COUNT ? classes[kind]->name : NULL;
}

/* ---- making and freeing ---- */

static int unknown_class(const char *name) {
  return sdr_fail("unknown scheduler class \"%s\" (supported: PNDMScheduler, DDIMScheduler, "
                  "LMSDiscreteScheduler, EulerDiscreteScheduler, "
                  "EulerAncestralDiscreteScheduler, DPMSolverMultistepScheduler, "
                  "UniPCMultistepScheduler, HeunDiscreteScheduler, DDPMScheduler, "
                  "KDPM2DiscreteScheduler, KDPM2AncestralDiscreteScheduler, "
                  "DEISMultistepScheduler, DPMSolverSinglestepScheduler, LCMScheduler, "
                  "EDMEulerScheduler, EDMDPMSolverMultistepScheduler, TCDScheduler, "
                  "DPMSolverSDEScheduler, DDIMInverseScheduler)",
                  name);
}

int sdr_scheduler_takes(sdr_scheduler_kind kind, const char *name) {
  if ((int)kind < 0 || kind >= SDR_SCHED_COUNT || !name)
    return 0;
  for (int i = 0; i < classes[kind]->n_params; i++)
    if (strcmp(classes[kind]->params[i].name, name) == 0)
      return 1;
  return 0;
}

sdr_scheduler *sdr_scheduler_from_config(const char *config_json, int kind,
                                         const char *kwargs_json) {
  cJSON *in = sched_json_parse(config_json, "scheduler config");
  if (!in)
    return NULL;
  cJSON *kw = NULL;
  if (kwargs_json && !(kw = sched_json_parse(kwargs_json, "scheduler keyword arguments"))) {
    cJSON_Delete(in);
    return NULL;
  }
  sdr_scheduler *s = NULL;
  if (kind < 0) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(in, "_class_name");
    if (!cJSON_IsString(name)) {
      sdr_fail("scheduler config: no \"_class_name\" to say which scheduler it is");
      goto done;
    }
    kind = sdr_scheduler_kind_from_name(name->valuestring);
    if (kind < 0) {
      unknown_class(name->valuestring);
      goto done;
    }
  } else if (kind >= SDR_SCHED_COUNT) {
    sdr_fail("unknown scheduler kind %d", kind);
    goto done;
  }
  s = calloc(1, sizeof *s);
  if (!s) {
    sdr_fail("scheduler: out of memory");
    goto done;
  }
  s->kind = (sdr_scheduler_kind)kind;
  s->cls = classes[kind];
  s->noise_dtype = SDR_F32;
  sched_reset_run(s);
  if (sched_config_build(s, in, kw) != 0 || s->cls->init(s) != 0) {
    sdr_scheduler_free(s);
    s = NULL;
  }
done:
  cJSON_Delete(in);
  cJSON_Delete(kw);
  return s;
}

sdr_scheduler *sdr_scheduler_load(const char *config_json, int kind) {
  return sdr_scheduler_from_config(config_json, kind, NULL);
}

sdr_scheduler *sdr_scheduler_from_scheduler(const sdr_scheduler *s, sdr_scheduler_kind kind) {
  if (!s)
    return sdr_fail("from_config: no scheduler"), NULL;
  return sdr_scheduler_from_config(s->config_json, (int)kind, NULL);
}

void sdr_scheduler_release(sdr_scheduler *s) {
  if (!s)
    return;
  sched_free_buffers(s);
  s->n_hist = 0;
  s->has_cur_sample = s->has_cur_model_output = 0;
}

void sdr_scheduler_free(sdr_scheduler *s) {
  if (!s)
    return;
  sched_free_buffers(s);
  cJSON_Delete(s->config);
  free(s->config_json);
  free(s->alphas_cumprod);
  free(s->log_sigmas);
  free(s->timesteps);
  free(s->sigmas);
  free(s->sigmas_interpol);
  free(s);
}

/* ---- what it holds ---- */

sdr_scheduler_kind sdr_scheduler_kind_of(const sdr_scheduler *s) { return s->kind; }
const char *sdr_scheduler_config_json(const sdr_scheduler *s) { return s->config_json; }
int sdr_scheduler_order(const sdr_scheduler *s) {
  return !s ? 0 : s->cls->order ? s->cls->order : 1;
}

int sdr_scheduler_num_train_timesteps(const sdr_scheduler *s) {
  return (int)s->c.num_train_timesteps;
}

const double *sdr_scheduler_timesteps(const sdr_scheduler *s, int *n) {
  *n = s->n_timesteps;
  return s->timesteps;
}

sdr_dtype sdr_scheduler_timesteps_dtype(const sdr_scheduler *s) { return s->timesteps_dtype; }

const float *sdr_scheduler_sigmas(const sdr_scheduler *s, int *n) {
  *n = s->n_sigmas;
  return s->sigmas;
}

int sdr_scheduler_num_inference_steps(const sdr_scheduler *s) { return s->num_inference_steps; }
int sdr_scheduler_step_index(const sdr_scheduler *s) { return s->step_index; }
int sdr_scheduler_begin_index(const sdr_scheduler *s) { return s->begin_index; }

/* init_noise_sigma: 1, or for the classes that say so the largest sigma, or sqrt(max^2 + 1)
 * with leading spacing (a float32 0-d tensor in diffusers). */
double sdr_scheduler_init_noise_sigma(const sdr_scheduler *s) {
  if (s->cls->init_noise_sigma)
    return s->cls->init_noise_sigma(s);
  if (!s->cls->sigma_noise)
    return 1.0;
  float m = s->n_sigmas ? s->sigmas[0] : 0;
  for (int i = 1; i < s->n_sigmas; i++)
    m = s->sigmas[i] > m ? s->sigmas[i] : m;
  if (s->c.spacing == SCHED_LINSPACE || s->c.spacing == SCHED_TRAILING)
    return m;
  return sqrtf(m * m + 1.0f);
}

void sdr_scheduler_set_default_generator(sdr_scheduler *s, sdr_generator *g) {
  if (s)
    s->default_generator = g;
}

int sdr_scheduler_set_noise_dtype(sdr_scheduler *s, sdr_dtype dtype) {
  if (dtype != SDR_F32 && dtype != SDR_F16 && dtype != SDR_BF16)
    return sdr_fail("%s: noise is drawn in float32, float16 or bfloat16, not %s", s->cls->name,
                    sdr_dtype_name(dtype));
  s->noise_dtype = dtype;
  return 0;
}

/* ---- running ---- */

/* set_timesteps' checks of num_inference_steps, and of custom timesteps. */
static int check_steps(const sdr_scheduler *s, int num_inference_steps) {
  if (num_inference_steps < 1)
    return sdr_fail("%s.set_timesteps: num_inference_steps must be at least 1, got %d",
                    s->cls->name, num_inference_steps);
  if (num_inference_steps > s->n_train)
    return sdr_fail("%s.set_timesteps: num_inference_steps (%d) cannot be larger than "
                    "num_train_timesteps (%d)",
                    s->cls->name, num_inference_steps, s->n_train);
  return 0;
}

static int check_custom(const sdr_scheduler *s, const int64_t *timesteps, int n) {
  if (!s->cls->set_custom_timesteps) /* retrieve_timesteps' words */
    return sdr_fail("The current scheduler class %s's `set_timesteps` does not support custom "
                    "timestep schedules. Please check whether you are using the correct "
                    "scheduler.",
                    s->cls->name);
  if (n < 1)
    return sdr_fail("%s.set_timesteps: timesteps is an empty list", s->cls->name);
  for (int i = 0; i < n; i++) {
    if (i > 0 && timesteps[i] >= timesteps[i - 1])
      return sdr_fail("%s.set_timesteps: `custom_timesteps` must be in descending order.",
                      s->cls->name);
    if (timesteps[i] < 0) /* Python would index alphas_cumprod from its end */
      return sdr_fail("%s.set_timesteps: timesteps[%d] = %lld is negative", s->cls->name, i + 1,
                      (long long)timesteps[i]);
  }
  if (timesteps[0] >= s->n_train)
    return sdr_fail("%s.set_timesteps: `timesteps` must start before "
                    "`self.config.train_timesteps`: %d.",
                    s->cls->name, s->n_train);
  return 0;
}

int sdr_scheduler_set_timesteps(sdr_scheduler *s, int num_inference_steps) {
  if (!s)
    return sdr_fail("set_timesteps: no scheduler");
  if (check_steps(s, num_inference_steps) != 0)
    return -1;
  s->custom_timesteps = 0;
  if (s->cls->set_timesteps(s, num_inference_steps) != 0)
    return -1;
  sched_reset_run(s);
  return 0;
}

int sdr_scheduler_set_timesteps_original(sdr_scheduler *s, int num_inference_steps,
                                         const int64_t *timesteps, int n, int original,
                                         double strength) {
  if (!s)
    return sdr_fail("set_timesteps: no scheduler");
  if (s->kind != SDR_SCHED_LCM && s->kind != SDR_SCHED_TCD) /* Python's words for a keyword
                                                                the method lacks */
    return sdr_fail("%s.set_timesteps() got an unexpected keyword argument "
                    "'original_inference_steps'",
                    s->cls->name);
  if ((timesteps ? check_custom(s, timesteps, n) : check_steps(s, num_inference_steps)) != 0 ||
      (s->kind == SDR_SCHED_TCD
           ? sched_tcd_timesteps(s, num_inference_steps, timesteps, n, original, strength)
           : sched_lcm_timesteps(s, num_inference_steps, timesteps, n,
                                 original > 0 ? original : s->c.original_inference_steps,
                                 strength)) != 0)
    return -1;
  s->custom_timesteps = timesteps != NULL;
  sched_reset_run(s);
  return 0;
}

int sdr_scheduler_set_custom_timesteps(sdr_scheduler *s, const int64_t *timesteps, int n) {
  if (!s)
    return sdr_fail("set_timesteps: no scheduler");
  if (check_custom(s, timesteps, n) != 0 || s->cls->set_custom_timesteps(s, timesteps, n) != 0)
    return -1;
  s->custom_timesteps = 1;
  sched_reset_run(s);
  return 0;
}

int sdr_scheduler_set_begin_index(sdr_scheduler *s, int begin_index) {
  if (!s->cls->has_begin_index)
    return 0; /* PNDM, DDIM and DDPM have no set_begin_index; img2img skips them */
  if (begin_index < 0 || begin_index >= s->n_timesteps)
    return sdr_fail("%s.set_begin_index: %d is not in [0, %d)", s->cls->name, begin_index,
                    s->n_timesteps);
  s->begin_index = begin_index;
  return 0;
}

static int check_latent(const sdr_scheduler *s, const char *fn, const char *what,
                        const sdr_tensor *t, const sdr_backend *be) {
  if (!t)
    return sdr_fail("%s.%s: no %s", s->cls->name, fn, what);
  if (t->dtype != SDR_F32)
    return sdr_fail("%s.%s: %s is %s, expected float32", s->cls->name, fn, what,
                    sdr_dtype_name(t->dtype));
  if (t->device != be->device)
    return sdr_fail("%s.%s: %s is on %s, the backend on %s", s->cls->name, fn, what,
                    sdr_device_name(t->device), sdr_device_name(be->device));
  return 0;
}

static int check_same(const sdr_scheduler *s, const char *fn, const char *what, const sdr_tensor *t,
                      const sdr_tensor *like) {
  char a[96], b[96];
  if (!sdr_tensor_same_shape(t, like))
    return sdr_fail("%s.%s: %s is %s, the sample %s", s->cls->name, fn, what,
                    sdr_shape_str(t, a, sizeof a), sdr_shape_str(like, b, sizeof b));
  return 0;
}

int sdr_scheduler_scale_model_input(sdr_scheduler *s, sdr_backend *be, sdr_tensor *out,
                                    const sdr_tensor *sample, double t) {
  if (!s || !be)
    return sdr_fail("scale_model_input: no scheduler or backend");
  if (check_latent(s, "scale_model_input", "sample", sample, be) ||
      check_latent(s, "scale_model_input", "out", out, be) ||
      check_same(s, "scale_model_input", "out", out, sample))
    return -1;
  if (!s->cls->scale_model_input) {
    sched_ctx cx = {s, be, NULL};
    return sched_copy(&cx, out, sample);
  }
  return s->cls->scale_model_input(s, be, out, sample, t);
}

int sdr_scheduler_step(sdr_scheduler *s, sdr_backend *be, sdr_arena *a, sdr_tensor *prev_sample,
                       const sdr_tensor *model_output, double t, const sdr_tensor *sample,
                       sdr_generator *g, double eta) {
  return sdr_scheduler_step_each(s, be, a, prev_sample, model_output, t, sample, g ? &g : NULL,
                                 g ? 1 : 0, eta);
}

int sdr_scheduler_step_each(sdr_scheduler *s, sdr_backend *be, sdr_arena *a,
                            sdr_tensor *prev_sample, const sdr_tensor *model_output, double t,
                            const sdr_tensor *sample, sdr_generator *const *gens, int ngens,
                            double eta) {
  return sdr_scheduler_step_full(s, be, a, prev_sample, NULL, model_output, t, sample, gens, ngens,
                                 eta);
}

int sdr_scheduler_has_pred_original(const sdr_scheduler *s) { return s && s->cls->pred_original; }

const char *sdr_scheduler_x0_name(const sdr_scheduler *s) {
  return s->cls->x0_name ? s->cls->x0_name : "pred_original_sample";
}

double sdr_scheduler_default_eta(const sdr_scheduler *s) { return s->cls->default_eta; }

int sdr_scheduler_step_full(sdr_scheduler *s, sdr_backend *be, sdr_arena *a,
                            sdr_tensor *prev_sample, sdr_tensor *pred_original,
                            const sdr_tensor *model_output, double t, const sdr_tensor *sample,
                            sdr_generator *const *gens, int ngens, double eta) {
  sdr_generator *g = ngens > 0 ? gens[0] : NULL;
  if (!s || !be || !a)
    return sdr_fail("step: no scheduler, backend or arena");
  if (check_latent(s, "step", "model_output", model_output, be) ||
      check_latent(s, "step", "sample", sample, be) ||
      check_latent(s, "step", "prev_sample", prev_sample, be) ||
      check_same(s, "step", "model_output", model_output, sample) ||
      check_same(s, "step", "prev_sample", prev_sample, sample) ||
      (pred_original && (check_latent(s, "step", "pred_original_sample", pred_original, be) ||
                         check_same(s, "step", "pred_original_sample", pred_original, sample))))
    return -1;
  if (s->num_inference_steps == 0 && !s->custom_timesteps)
    return sdr_fail("%s.step: number of inference steps is None: call set_timesteps first",
                    s->cls->name);
  if (sched_use_backend(s, be) != 0)
    return -1;
  /* the history of a run must stay one shape */
  for (int k = 0; k < s->n_hist + 2; k++) {
    int i = k < s->n_hist             ? s->hist[k]
            : k == s->n_hist          ? (s->has_cur_sample ? SCHED_SLOT_CUR_SAMPLE : -1)
            : s->has_cur_model_output ? SCHED_SLOT_CUR_MODEL_OUTPUT
                                      : -1;
    if (i >= 0 && check_same(s, "step", "the history of this run", &s->buf.slot[i], sample))
      return -1;
  }
  if (ngens > 1 && ngens != sample->shape[0])
    return sdr_fail("%s.step: %d generators for a batch of %lld", s->cls->name, ngens,
                    (long long)sample->shape[0]);
  sched_ctx cx = {
      s, be, a, ngens > 1 ? gens : NULL, ngens, s->cls->pred_original ? pred_original : NULL};
  sdr_arena_mark m = sdr_arena_get_mark(a);
  int rc = s->cls->step(s, &cx, prev_sample, model_output, t, sample, g, eta);
  sdr_arena_release(a, m);
  return rc;
}

int sdr_scheduler_add_noise(sdr_scheduler *s, sdr_backend *be, sdr_tensor *out,
                            const sdr_tensor *original, const sdr_tensor *noise, double t) {
  if (!s || !be)
    return sdr_fail("add_noise: no scheduler or backend");
  if (check_latent(s, "add_noise", "original_samples", original, be) ||
      check_latent(s, "add_noise", "noise", noise, be) ||
      check_latent(s, "add_noise", "out", out, be) ||
      check_same(s, "add_noise", "noise", noise, original) ||
      check_same(s, "add_noise", "out", out, original))
    return -1;
  if (!s->cls->add_noise) /* DDIMInverseScheduler: Python's AttributeError */
    return sdr_fail("'%s' object has no attribute 'add_noise'", s->cls->name);
  return s->cls->add_noise(s, be, out, original, noise, t);
}

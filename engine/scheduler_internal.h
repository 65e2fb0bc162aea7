/* engine/scheduler_internal.h — what the scheduler files share (engine/scheduler*.c and
 * the scheduler's unit test); nothing else includes it.
 *
 * Layout of the scheduler code:
 *   scheduler.c          the public calls: checks, then the class's function
 *   scheduler_config.c   diffusers' from_config: the config dict, defaults, _use_default_values
 *   scheduler_schedule.c __init__'s numbers: betas, alphas_cumprod, sigmas, and the
 *                        timestep spacings, interpolations and Karras sigmas of set_timesteps
 *   scheduler_ops.c      tensor arithmetic as torch rounds it, noise, history buffers
 *   scheduler_libmath.c  torch's and numpy's float32 exp and log, which are not the C
 *                        library's
 *   scheduler_<name>.c   one diffusers scheduler each
 *
 * Rounding: diffusers computes its per-step coefficients on 0-d float32 tensors and
 * its schedules in numpy float64 (some in float32). Each piece here computes in the
 * type diffusers uses at that point, in the same order, so that the numbers agree to
 * the last bit where the libraries' own functions (log, exp) do. This relies on C
 * float arithmetic staying float (x86-64 SSE) and on no contraction into FMA, which
 * the pragma below forbids even in a build for a CPU that has FMA (-march=native
 * would otherwise fuse a * b + c); where torch itself fuses (torch.linspace, SLEEF),
 * fmaf() says so explicitly.
 */
#ifndef SDR_ENGINE_SCHEDULER_INTERNAL_H
#define SDR_ENGINE_SCHEDULER_INTERNAL_H

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "engine/brownian_tree.h" // sdr_brownian_tree
#include "engine/scheduler.h"     // sdr_scheduler, sdr_scheduler_kind

typedef struct cJSON cJSON;

/* ---- configuration (scheduler_config.c) ---- */

typedef enum { SCHED_LEADING, SCHED_TRAILING, SCHED_LINSPACE } sched_spacing;
typedef enum { SCHED_EPSILON, SCHED_V_PREDICTION, SCHED_SAMPLE } sched_prediction;
typedef enum {
  SCHED_DPMSOLVER_PP,     /* "dpmsolver++" (and "deis", which diffusers maps to it) */
  SCHED_DPMSOLVER,        /* "dpmsolver" */
  SCHED_SDE_DPMSOLVER_PP, /* "sde-dpmsolver++" */
  SCHED_SDE_DPMSOLVER     /* "sde-dpmsolver" */
} sched_algorithm;

/* Every __init__ argument of the nine classes that changes numbers; a class reads its own.
 * Strings and lists point into the scheduler's config tree. */
typedef struct sched_config {
  long long num_train_timesteps;
  double beta_start, beta_end;
  const char *beta_schedule;
  const cJSON *trained_betas; /* a list, or NULL for None */
  const char *prediction_type;
  const char *timestep_spacing;
  long long steps_offset;
  int skip_prk_steps;   /* PNDM */
  int set_alpha_to_one; /* PNDM, DDIM */
  int clip_sample;      /* DDIM, Heun, DDPM */
  double clip_sample_range;
  int thresholding; /* DDIM, DPM, UniPC, DDPM */
  double dynamic_thresholding_ratio, sample_max_value;
  int rescale_betas_zero_snr;                     /* DDIM, Euler, Euler ancestral, DPM, DDPM */
  int use_karras_sigmas;                          /* LMS, Euler, DPM, UniPC, Heun */
  const char *interpolation_type, *timestep_type; /* Euler */
  double sigma_min, sigma_max;                    /* Euler; NAN for None */
  long long solver_order;                         /* DPM, UniPC */
  const char *algorithm_type, *solver_type, *final_sigmas_type, *variance_type;
  int lower_order_final, euler_at_final, use_lu_lambdas;
  double lambda_min_clipped;
  int predict_x0;                     /* UniPC */
  const cJSON *disable_corrector;     /* UniPC: a list of step numbers */
  const cJSON *solver_p;              /* UniPC: NULL for None, the only value supported */
  long long original_inference_steps; /* LCM */
  double timestep_scaling;            /* LCM */
  double sigma_data, rho;             /* EDM (and its sigma_min, sigma_max) */
  double noise_sampler_seed;          /* DPM-Solver SDE; NAN for None */
  /* parsed from the strings above by the class's init */
  sched_spacing spacing;
  sched_prediction prediction;
  sched_algorithm algorithm;
} sched_config;

/* One __init__ argument: its name, its JSON type and its default (diffusers 0.27.2). */
typedef enum {
  SCHED_P_INT,
  SCHED_P_NUMBER,
  SCHED_P_BOOL,
  SCHED_P_STRING,
  SCHED_P_NUMBER_OR_NULL, /* default None */
  SCHED_P_STRING_OR_NULL, /* default None */
  SCHED_P_LIST_OR_NULL,   /* trained_betas: default None */
  SCHED_P_LIST,           /* disable_corrector: default [] */
  SCHED_P_ANY_OR_NULL     /* solver_p (a scheduler object in Python): default None */
} sched_ptype;

typedef struct sched_param {
  const char *name;
  sched_ptype type;
  double num;      /* default of INT, NUMBER, BOOL */
  const char *str; /* default of STRING */
} sched_param;

/* Fills s->config (the dict diffusers keeps as scheduler.config) from a config dict as
 * from_config does, then s->c from it. kwargs (may be NULL) are from_config's keyword
 * arguments. s->cls says which class. */
int sched_config_build(sdr_scheduler *s, const cJSON *config, const cJSON *kwargs);
/* A JSON object from text, accepting Python's Infinity and -Infinity as json.dumps
 * writes them (lambda_min_clipped). `what` names it in errors. */
cJSON *sched_json_parse(const char *text, const char *what);
/* Sets one value in s->config, as DPMSolverMultistepScheduler's register_to_config
 * does for "deis"; regenerates the text. */
int sched_config_set_string(sdr_scheduler *s, const char *key, const char *value);
/* A name diffusers' __init__ takes in another's place: value (key's) kept when it is one
 * of ok, registered as `to` when one of aliases, else refused, listing ok (both lists
 * NULL-terminated, aliases may be NULL). */
int sched_config_alias(sdr_scheduler *s, const char *key, const char *value, const char *const *ok,
                       const char *const *aliases, const char *to);
/* solver_order 1 to 3 (DPM-Solver, UniPC, DEIS, DPM-Solver singlestep). */
int sched_check_solver_order(const sdr_scheduler *s);
/* DPM-Solver's __init__ checks, shared by its multistep and singlestep classes:
 * algorithm_type one of `algorithms` ("deis" registered as dpmsolver++), solver_type
 * midpoint or heun (DEIS's and UniPC's names registered as midpoint), final_sigmas_type
 * zero or sigma_min (zero only for an algorithm, as given, of data predictions), the
 * solver order. */
int sched_dpm_check_solver(sdr_scheduler *s, const char *const *algorithms);
/* register_to_config(key=True/False) for a bool the struct mirrors (lower_order_final). */
int sched_config_set_bool(sdr_scheduler *s, const char *key, int value);

/* Checks num_train_timesteps, timestep_spacing, prediction_type (a set of 1 <<
 * sched_prediction the class accepts) and thresholding, then makes alphas_cumprod:
 * the start of every class's init. */
int sched_parse_common(sdr_scheduler *s, unsigned predictions);
/* The part of it without betas or spacing: num_train_timesteps, prediction_type and
 * thresholding's ratio (EDM's classes, which have neither). */
int sched_parse_prediction(sdr_scheduler *s, unsigned predictions);

/* ---- one diffusers class ---- */

typedef struct sched_ctx sched_ctx;

typedef struct sched_class {
  const char *name; /* diffusers' class name */
  const sched_param *params;
  int n_params;
  int has_begin_index; /* the class has set_begin_index (img2img calls it when present) */
  int order;           /* the class's `order`: 2 for two-call steps (Heun, KDPM2), else 1 */
  int sigma_noise;     /* init_noise_sigma is the largest sigma (or sqrt(max^2 + 1) with
                          leading spacing), not 1: the sigma-space classes */
  int pred_original;   /* its step output has pred_original_sample (sched_emit_x0) */
  const char *x0_name; /* that output's name when not "pred_original_sample" (LCM's denoised) */
  double default_eta;  /* step's eta when none is given: TCD's 0.3, else 0 */
  /* __init__ after the config is read: check values, make alphas_cumprod and the
   * timesteps and sigmas diffusers sets up before any set_timesteps. */
  int (*init)(sdr_scheduler *s);
  int (*set_timesteps)(sdr_scheduler *s, int num_inference_steps);
  /* set_timesteps(timesteps=[...]): NULL for the classes whose set_timesteps takes no
   * custom timesteps in diffusers 0.27.2 (DDPM's does). */
  int (*set_custom_timesteps)(sdr_scheduler *s, const int64_t *timesteps, int n);
  /* NULL when scale_model_input returns the sample itself. */
  int (*scale_model_input)(sdr_scheduler *s, sdr_backend *be, sdr_tensor *out,
                           const sdr_tensor *sample, double t);
  int (*step)(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *prev_sample,
              const sdr_tensor *model_output, double t, const sdr_tensor *sample, sdr_generator *g,
              double eta);
  int (*add_noise)(sdr_scheduler *s, sdr_backend *be, sdr_tensor *out, const sdr_tensor *original,
                   const sdr_tensor *noise, double t);
  /* init_noise_sigma when it is not read off the sigmas (EDM's, from its config); NULL
   * otherwise. */
  double (*init_noise_sigma)(const sdr_scheduler *s);
} sched_class;

extern const sched_class sched_pndm_class, sched_ddim_class, sched_lms_class, sched_euler_class,
    sched_euler_ancestral_class, sched_dpmsolver_class, sched_unipc_class, sched_heun_class,
    sched_ddpm_class, sched_kdpm2_class, sched_kdpm2_ancestral_class, sched_deis_class,
    sched_dpmsolver_singlestep_class, sched_lcm_class, sched_edm_euler_class,
    sched_edm_dpmsolver_class, sched_tcd_class, sched_dpmsolver_sde_class, sched_ddim_inverse_class;

/* ---- device buffers a scheduler keeps between steps ---- */

enum {
  SCHED_SLOTS = 8,   /* history (ets, derivatives, model outputs) and scratch */
  SCHED_SCRATCH = 7, /* the slot add_noise uses for its second product */
  SCHED_HISTORY = 4  /* at most this many history entries (PNDM's ets, LMS's order 4) */
};

typedef struct sched_buffers {
  sdr_backend *be;              /* where they live; NULL before the first use */
  sdr_tensor slot[SCHED_SLOTS]; /* each shaped like the sample, or data NULL */
  sdr_tensor scalar;            /* 0-d float32, for a division by a scalar */
} sched_buffers;

struct sdr_scheduler {
  const sched_class *cls;
  sdr_scheduler_kind kind;
  cJSON *config;     /* the config dict */
  char *config_json; /* its text */
  sched_config c;

  /* __init__ */
  int n_train;
  float *alphas_cumprod; /* (n_train) */
  float final_alpha_cumprod;
  float *log_sigmas; /* (n_train) np.log of the float32 sigmas, for _sigma_to_t */

  /* set_timesteps (or __init__'s defaults) */
  int num_inference_steps; /* 0 for None */
  int n_timesteps;
  double *timesteps;
  sdr_dtype timesteps_dtype; /* what torch would hold them in: int64, float32 or float64 */
  int n_sigmas;
  float *sigmas;
  int n_prk; /* PNDM without skip_prk_steps: the first n_prk timesteps are Runge-Kutta steps */
  float *sigmas_interpol; /* KDPM2: the midpoints' sigmas, n_sigmas of them; KDPM2
                             ancestral: then sigma_up's and sigma_down's as many */
  int custom_timesteps;   /* the last set_timesteps was given them (DDPM) */

  /* progress through a run; reset by set_timesteps */
  int step_index, begin_index; /* -1 for None */
  int counter;                 /* PNDM */
  int lower_order_nums;        /* DPM, UniPC */
  int this_order;              /* UniPC: the last predictor's order, the next corrector's */
  int n_hist;                  /* entries in hist, oldest first */
  int hist[SCHED_HISTORY];     /* slot numbers */
  int has_cur_sample;          /* PNDM: slot 4 holds cur_sample; UniPC: last_sample */
  int has_cur_model_output;    /* PNDM (PRK): slot 5 holds cur_model_output; Heun: slot 5
                                  holds prev_derivative */
  int heun_second;             /* Heun, KDPM2: the next step is a pair's second half
                                  (kept by sdr_scheduler_release, which frees its tensors) */
  float heun_dt;               /* Heun: that dt */
  /* DPMSolverSDEScheduler: its noise sampler (made at a run's first step, dropped by
   * set_timesteps), the midpoint's sigma a pair's second model input is scaled by, and
   * torch's default CPU generator, which the sampler's seed comes from */
  int has_noise_sampler;
  sdr_brownian_tree noise_sampler;
  float mid_point_sigma;
  sdr_generator *default_generator;

  sched_buffers buf;
  sdr_dtype noise_dtype;
};

enum { SCHED_SLOT_CUR_SAMPLE = 4, SCHED_SLOT_CUR_MODEL_OUTPUT = 5 };

/* ---- schedules (scheduler_schedule.c) ---- */

/* torch.linspace(start, end, n, dtype=float32) bit for bit, as torch 1.13 computes it on
 * a CPU with AVX2: pairs of 8-wide vectors, the rest one by one. */
void sched_torch_linspace_f32(float *out, double start, double end, int n);
/* np.linspace(start, stop, n) in float64. */
void sched_np_linspace(double *out, double start, double stop, int n);
/* numpy.arange(start, stop, step) for floats: ceil((stop - start) / step) values, the
 * first two computed, the rest start + i * (second - first) (numpy's DOUBLE_fill).
 * Returns the count, writing at most max. */
int sched_np_arange(double *out, int max, double start, double stop, double step);
/* np.interp(x, arange(n), fp) with numpy's formula, fp float32. */
double sched_np_interp(double x, const float *fp, int n);
/* betas from the config, rescale_zero_terminal_snr when asked, alphas_cumprod as torch
 * computes it (cumprod accumulates in double); final_alpha_cumprod. Also log_sigmas. */
int sched_make_alphas_cumprod(sdr_scheduler *s);
/* ((1 - ac) / ac) ** 0.5 in float32, index i. */
float sched_train_sigma(const sdr_scheduler *s, int i);
/* The end of DPM-Solver's and UniPC's __init__: sigma_min / sigma_max read from the
 * config (for Karras sigmas), and the schedule before set_timesteps: every training
 * sigma, timesteps T-1 down to 0. */
int sched_init_sigma_schedule(sdr_scheduler *s);
/* _sigma_to_alpha_sigma_t of DPM-Solver and UniPC: alpha = 1 / (sigma^2 + 1) ** 0.5 (a
 * reciprocal), sigma * alpha, and the log-SNR lambda = log(alpha) - log(sigma), as
 * diffusers computes them on 0-d float32 tensors. */
typedef struct sched_point {
  float alpha, sigma, lambda;
} sched_point;
sched_point sched_sigma_point(float sigma);
/* convert_model_output of DPM-Solver and UniPC at the current step's sigma: the model's
 * output as a data prediction x0 (data_prediction: DPM-Solver++'s, UniPC's predict_x0),
 * else as a noise prediction, from an epsilon, sample or v prediction; thresholded when
 * the config says so (a noise prediction only by DPM-Solver, through its x0). */
int sched_convert_model_output(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *out,
                               const sdr_tensor *mo, const sdr_tensor *sample, int data_prediction);
/* The end of DDIM's and DDPM's __init__: timesteps = arange(0, T)[::-1] as int64 (rising:
 * arange(0, T), DDIMInverseScheduler's), no inference steps yet. */
int sched_init_train_timesteps(sdr_scheduler *s, int rising);
/* DDIM's and DDPM's set_timesteps: the common spacings of n steps, rounded, as int64,
 * largest first. */
int sched_set_rounded_timesteps(sdr_scheduler *s, int n);
/* The same, smallest first (DDIMInverseScheduler's). */
int sched_set_rising_timesteps(sdr_scheduler *s, int n);
/* DPM-Solver's and UniPC's set_timesteps spacings of n steps over [0, last) (last is
 * T but for DPM's lambda_min_clipped): the timesteps into t (room for n + 1), largest
 * first; returns how many (trailing can give n + 1). scratch holds n + 1 doubles. */
int sched_spaced_timesteps(const sdr_scheduler *s, int n, long long last, double *t,
                           double *scratch);
/* What DPM-Solver's and UniPC's sigmas end with after the steps' own: 0, the training
 * schedule's smallest sigma, or the last step's again. */
typedef enum { SCHED_FINAL_ZERO, SCHED_FINAL_TRAIN_MIN, SCHED_FINAL_REPEAT } sched_final_sigma;
/* DPM-Solver's and UniPC's set_timesteps: n steps spaced over [0, last), their sigmas
 * interpolated from the training ones, or Karras's (use_karras_sigmas) or uniform in
 * log-sigma (lu_lambdas) with timesteps taken back from them; then the final sigma. */
int sched_solver_set_timesteps(sdr_scheduler *s, int n, long long last, int lu_lambdas,
                               sched_final_sigma final);
/* The timesteps PNDM, DDIM, LMS, Euler and Euler ancestral compute for their spacing,
 * largest first, as float64: linspace values unrounded (each class rounds or casts as it
 * does), leading and trailing ones integral. out has room for n + 1 (numpy's arange
 * gives one more with trailing spacing for some n, 61 of 1000 for instance). Returns
 * the count. */
int sched_common_timesteps(const sdr_scheduler *s, int n, double *out);
/* DPM-Solver's clipped_idx: how many of the last training timesteps have a log-SNR below
 * lambda_min_clipped (torch.searchsorted over the flipped lambda_t). */
int sched_clipped_index(const sdr_scheduler *s);
/* The sigmas of Heun's and the KDPM2 classes' set_timesteps: the spacing's timesteps as
 * np.float32 and the training sigmas interpolated at them, or Karras's n (sigma_min and
 * sigma_max from the config when there) with their timesteps taken back, rounded when
 * round_karras, in float64. t and sd have room for n + 1; returns the count (-1 with a
 * message) and the timesteps' dtype. */
int sched_discrete_sigmas(sdr_scheduler *s, int n, int round_karras, double *t, double *sd,
                          sdr_dtype *dtype);
/* Two-call steps (Heun, KDPM2, KDPM2 ancestral; scheduler_pairs.c). sched_pair_half:
 * step_index from t when unset, then 1 for a pair's first half, 0 for its second, -1
 * with a message when a released run cannot go on or no sigma is left (the first half
 * reads `ahead` sigmas past the index). sched_pair_move: d = (sample - x0) / div * dt, x0
 * the model output's prediction at sigma_input (epsilon or v). sched_pair_finish: out =
 * sample + d in the first half, which keeps the sample, or kept + d in the second; the
 * index moves on and the pair's state flips. */
int sched_pair_half(sdr_scheduler *s, double t, int ahead);
int sched_pair_move(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *d, const sdr_tensor *model_output,
                    const sdr_tensor *sample, float sigma_input, float div, float dt);
int sched_pair_finish(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *out, const sdr_tensor *sample,
                      const sdr_tensor *d, int first);
/* LCMScheduler's and TCDScheduler's __init__ arguments (the same, with the same defaults). */
enum { SCHED_LCM_N_PARAMS = 17 };
extern const sched_param sched_lcm_params[SCHED_LCM_N_PARAMS];
/* KDPM2's and KDPM2 ancestral's __init__ arguments (the same). */
enum { SCHED_KDPM2_N_PARAMS = 9 };
extern const sched_param sched_kdpm2_params[SCHED_KDPM2_N_PARAMS];
/* The KDPM2 classes' _sigma_to_t of a float32 tensor element (their midpoints'
 * timesteps): float32 arithmetic, unlike sched_sigma_to_t's. */
float sched_sigma_to_t_f32(const sdr_scheduler *s, float sigma);
/* torch.lerp(start, end, 0.5) at index k of a float32 tensor of n: an FMA where torch's
 * vectorized loop (eight at a time) computes it, two roundings in its scalar tail. */
float sched_torch_lerp_half(float start, float end, int k, int n);
/* _convert_to_karras: n sigmas from sigma_max down to sigma_min, rho 7. */
void sched_karras(double *out, double sigma_min, double sigma_max, int n);
/* _sigma_to_t: the fractional training timestep of a sigma, by log-sigma interpolation. */
double sched_sigma_to_t(const sdr_scheduler *s, double sigma);
/* numpy's round half to even. */
double sched_round(double x);
/* Sets s->timesteps (copied) and s->sigmas (copied); either may be NULL to keep none. */
int sched_set_schedule(sdr_scheduler *s, const double *timesteps, int n_timesteps,
                       sdr_dtype timesteps_dtype, const float *sigmas, int n_sigmas);
/* index_for_timestep: the position of t in the timesteps, the second one when it occurs
 * more than once; -1 when absent. */
int sched_index_for_timestep(const sdr_scheduler *s, double t);
/* _init_step_index for the classes that count steps. -1 (sdr_fail) when t is not one
 * of the timesteps and the class has no fallback. */
int sched_init_step_index(sdr_scheduler *s, double t, int last_if_absent);
/* alphas_cumprod[t] for an integer timestep t, with a message when it is not one. */
int sched_alpha_at(const sdr_scheduler *s, double t, float *out);
/* Forgets the progress of a run (set_timesteps does). */
void sched_reset_run(sdr_scheduler *s);

/* torch.exp and torch.log of float32 tensors, bit for bit (SLEEF's functions, which
 * torch runs on an AVX2 CPU), and numpy's float32 log (scheduler_libmath.c). */
float sched_torch_expf(float x);
float sched_torch_logf(float x);
/* torch.expm1 of a float32 tensor (SLEEF's Sleef_expm1f8_u10), bit for bit. */
float sched_torch_expm1f(float x);
float sched_numpy_logf(float x);

/* DDIM's (and DDIMInverseScheduler's) x0 and epsilon from the model output at alpha a_t by
 * the prediction type (scheduler_ddim.c); *pred_eps is eps, or the model output itself for
 * an epsilon prediction. t1, t2: scratch shaped like the sample. */
int sched_ddim_predict(sched_ctx *cx, sdr_tensor *x0, sdr_tensor *eps, const sdr_tensor **pred_eps,
                       const sdr_tensor *model_output, const sdr_tensor *sample, float a_t,
                       sdr_tensor *t1, sdr_tensor *t2);

/* ---- EDM (scheduler_edm.c): what EDMEulerScheduler and EDMDPMSolverMultistepScheduler
 * share ---- */

/* __init__: the checks, then num_train_timesteps sigmas of the rho schedule in float32 with
 * their timesteps 0.25 * log(sigma), and a final 0. */
int sched_edm_init(sdr_scheduler *s);
/* set_timesteps(n): n sigmas of the rho schedule (numpy float64, then float32), timesteps
 * 0.25 * log(sigma), then `last` (0, or DPM-Solver's sigma_min). */
int sched_edm_set_timesteps(sdr_scheduler *s, int n, float last);
/* precondition_inputs: sample / (sigma^2 + sigma_data^2) ** 0.5, counting the step index as
 * _init_step_index does (a timestep the schedule lacks: the last index when last_if_absent). */
int sched_edm_scale(sdr_scheduler *s, sdr_backend *be, sdr_tensor *out, const sdr_tensor *sample,
                    double t, int last_if_absent);
/* precondition_outputs: the denoised sample c_skip * sample + c_out * model_output at sigma
 * (epsilon or v predictions). */
int sched_edm_denoise(sched_ctx *cx, sdr_tensor *out, const sdr_tensor *sample,
                      const sdr_tensor *model_output, float sigma);
/* _sigma_to_alpha_sigma_t: the inputs are already scaled, so alpha is 1 and lambda is
 * -log(sigma) (infinite at the final 0). */
sched_point sched_edm_point(float sigma);
double sched_edm_init_noise_sigma(const sdr_scheduler *s);
/* DPMSolverMultistepScheduler's step (scheduler_dpmsolver.c), which EDM's DPM-Solver runs
 * with its own points and data prediction. */
int sched_dpm_step(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *prev_sample,
                   const sdr_tensor *model_output, double t, const sdr_tensor *sample,
                   sdr_generator *g, double eta);

/* ---- tensor arithmetic (scheduler_ops.c) ---- */

struct sched_ctx {
  sdr_scheduler *s;
  sdr_backend *be;
  sdr_arena *arena; /* NULL outside step */
  /* A list of generators, one per batch entry (diffusers' generator=[...]); NULL
   * when the step's one generator draws for the whole batch. */
  sdr_generator *const *gens;
  int ngens;
  /* Where the step writes diffusers' pred_original_sample (sched_emit_x0); NULL: not wanted. */
  sdr_tensor *x0_out;
};

/* Hands the step's predicted x0 to cx->x0_out, when one was asked for. */
int sched_emit_x0(sched_ctx *cx, const sdr_tensor *x0);

/* out = x * c, as torch multiplies a float32 tensor by a float32 scalar. */
int sched_mul(sched_ctx *cx, sdr_tensor *out, const sdr_tensor *x, float c);
/* out = x / c, true division as torch does it (not a multiplication by 1/c). */
int sched_div(sched_ctx *cx, sdr_tensor *out, const sdr_tensor *x, float c);
int sched_add(sched_ctx *cx, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b);
int sched_sub(sched_ctx *cx, sdr_tensor *out, const sdr_tensor *a, const sdr_tensor *b);
int sched_copy(sched_ctx *cx, sdr_tensor *out, const sdr_tensor *x);
/* A temporary shaped like `like`, from the arena. */
int sched_temp(sched_ctx *cx, sdr_tensor *out, const sdr_tensor *like);
/* randn_tensor(like.shape, generator=g, dtype) into a temporary: float32 unless dtype
 * says float16 or bfloat16 (a half pipeline draws half noise, its own stream). */
int sched_randn(sched_ctx *cx, sdr_tensor *out, const sdr_tensor *like, sdr_generator *g,
                sdr_dtype dtype);
/* out = x + randn_tensor(like.shape) * scale: the ancestral noise of DDIM (eta > 0),
 * DDPM and Euler ancestral, drawn in the scheduler's noise dtype. */
int sched_plus_noise(sched_ctx *cx, sdr_tensor *out, const sdr_tensor *x, const sdr_tensor *like,
                     sdr_generator *g, float scale);
/* fn(values, x, ctx) over x's float32 values in host memory, written back to x: a round
 * trip through the host when x is on a device. */
int sched_on_host(sched_ctx *cx, sdr_tensor *x, void (*fn)(float *, const sdr_tensor *, void *),
                  void *ctx);
/* The start of a multistep class's step (DPM-Solver, UniPC, DEIS, DPM-Solver singlestep):
 * step_index from t when unset (the last index when t is not a timestep), then -1 with a
 * message when no sigma follows or the run's history was released. */
int sched_multistep_begin(sdr_scheduler *s, double t);
/* The end of a step of those classes: one more lower-order step counted (up to the solver
 * order), the index moved on. */
void sched_multistep_end(sdr_scheduler *s);
/* out = c[0] * x[0] +- c[1] * x[1] +- ..., left to right, each product rounded: the shape
 * of DPM-Solver's and DEIS's update formulas. sign[k] is +1 or -1 for k > 0. */
int sched_combine(sched_ctx *cx, sdr_tensor *out, int n, const float *c, const int *sign,
                  const sdr_tensor *const *x);
/* "Clip or threshold predicted x_0" of DDIM, DDPM and Heun, in place: thresholded when
 * the config says so, else clamped to +-clip_sample_range with clip_sample (a round trip
 * through the host: no backend op clamps). */
int sched_clip_x0(sched_ctx *cx, sdr_tensor *x0);
/* _threshold_sample (dynamic thresholding, Saharia et al. 2022) in place: per batch
 * entry, s = clamp(quantile(|x|, dynamic_thresholding_ratio), 1, sample_max_value) and
 * x = clamp(x, -s, s) / s. */
int sched_threshold(sched_ctx *cx, sdr_tensor *x);
/* The device buffers: moves them to be (when no run is in progress) and returns slot i
 * shaped like `like`. */
int sched_use_backend(sdr_scheduler *s, sdr_backend *be);
int sched_slot(sched_ctx *cx, int i, const sdr_tensor *like, sdr_tensor *out);
/* Appends to the history (at most max entries; the oldest is reused) and returns the
 * tensor the new entry is to be written into. */
int sched_hist_push(sched_ctx *cx, int max, const sdr_tensor *like, sdr_tensor *out);
/* History entry k counted from the newest (0 = newest). */
const sdr_tensor *sched_hist(const sdr_scheduler *s, int k);
void sched_free_buffers(sdr_scheduler *s);

/* add_noise of PNDM and DDIM (alphas_cumprod), and of LMS, Euler and Euler ancestral
 * (sigmas); which sigma index add_noise uses (DPM too), -1 with a message. */
int sched_add_noise_alphas(sdr_scheduler *s, sdr_backend *be, sdr_tensor *out,
                           const sdr_tensor *original, const sdr_tensor *noise, double t);
int sched_add_noise_sigmas(sdr_scheduler *s, sdr_backend *be, sdr_tensor *out,
                           const sdr_tensor *original, const sdr_tensor *noise, double t);
int sched_add_noise_index(const sdr_scheduler *s, double t);
/* original + noise * sigmas[i] */
int sched_add_noise_at(sdr_scheduler *s, sdr_backend *be, sdr_tensor *out,
                       const sdr_tensor *original, const sdr_tensor *noise, int i);
/* DPM's and UniPC's: alpha_t * original + sigma_t * noise at the timestep's sigma, a
 * timestep missing from the schedule taking the last one. */
int sched_add_noise_alpha_sigma(sdr_scheduler *s, sdr_backend *be, sdr_tensor *out,
                                const sdr_tensor *original, const sdr_tensor *noise, double t);

/* LMS, Euler and Euler ancestral (scheduler_euler.c): scale_model_input, sample / (sigma^2
 * + 1) ** 0.5, counting the step index as _init_step_index does; and the
 * pred_original_sample of v_prediction. */
int sched_scale_by_sigma(sdr_scheduler *s, sdr_backend *be, sdr_tensor *out,
                         const sdr_tensor *sample, double t);
/* LCMScheduler.set_timesteps(num_inference_steps n, or the nt timesteps given,
 * original_inference_steps=original, strength=strength) (scheduler_lcm.c), checked by the
 * caller as set_timesteps is. */
int sched_lcm_timesteps(sdr_scheduler *s, int n, const int64_t *timesteps, int nt,
                        long long original, double strength);
/* The end of LCM's and TCD's step: prev_sample = x, or with noise a^.5 x + (1 - a)^.5 noise (the
 * noise shaped like `like`, drawn as randn_tensor does; tmp is scratch); the index moved on. */
int sched_consistency_end(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *prev_sample,
                          const sdr_tensor *x, sdr_tensor *tmp, const sdr_tensor *like,
                          sdr_generator *g, int noise, float a);
/* Python's repr of a float into buf (1.0, 0.3, 1e-05): how diffusers' messages print them. */
void sched_py_repr(char *buf, size_t n, double v);
/* set_timesteps' checks of LCM and TCD: n steps within num_train_timesteps, and at least one
 * candidate timestep per step (diffusers' skipping_step), with diffusers' messages. */
int sched_lcm_check_steps(const sdr_scheduler *s, int n, long long candidates, long long original,
                          double strength);
/* TCDScheduler's (scheduler_tcd.c): LCM's, but original_inference_steps given (original >
 * 0) makes every training timestep a candidate. */
int sched_tcd_timesteps(sdr_scheduler *s, int n, const int64_t *timesteps, int nt,
                        long long original, double strength);
/* The predicted original sample from alphas_cumprod a_t (DDPM's and LCM's step 4), by the
 * config's prediction type: epsilon (sample - b_t^.5 eps) / a_t^.5, sample as it is, v
 * a_t^.5 sample - b_t^.5 v, with b_t = 1 - a_t; t1 and t2 are scratch. */
int sched_x0_alpha(sched_ctx *cx, sdr_tensor *x0, const sdr_tensor *model_output,
                   const sdr_tensor *sample, float a_t, sdr_tensor *t1, sdr_tensor *t2);
int sched_x0_from_v(sched_ctx *cx, sdr_tensor *x0, const sdr_tensor *model_output,
                    const sdr_tensor *sample, float sigma);
/* The start of Euler's step (EulerDiscreteScheduler's and EDMEulerScheduler's): the step
 * index from t, a sigma after it, the noise drawn and dropped when g is given (s_churn 0),
 * sigma_hat = sigma * (gamma + 1) with gamma 0. */
int sched_euler_begin(sdr_scheduler *s, sched_ctx *cx, double t, const sdr_tensor *model_output,
                      sdr_generator *g, float *sigma_hat);
/* The end of Euler's step (EulerDiscreteScheduler's and EDMEulerScheduler's): x0 handed out
 * as pred_original_sample, then prev = sample + (sample - x0) / sigma_hat * dt with dt the
 * next sigma less sigma_hat, the index moved on; d is scratch shaped like the sample. */
int sched_euler_update(sched_ctx *cx, sdr_tensor *prev_sample, const sdr_tensor *sample,
                       const sdr_tensor *x0, sdr_tensor *d, float sigma_hat);

#endif

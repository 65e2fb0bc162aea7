/* tests/cuda/test_cuda_models.c — the models and whole pipelines on a device backend
 * against the CPU backend: the text encoder, one UNet call (a CFG batch of 2), VAE
 * encode and decode, and sdr_pipeline_generate runs (txt2img and img2img, guided
 * and not, 1 and 3 images, PNDM, Euler ancestral and DPM++ 2M, clip_skip, VAE
 * slicing and tiling; and a pipeline loaded on the CPU, then moved with
 * sdr_pipeline_to as pipe:to("cuda") does), with the tiny
 * models tests/models/tiny-sd-a (float32 files) and tiny-sd-b (stored float16),
 * each loaded on the device with keep_dtype float32, float16 and bfloat16.
 *
 *   test_cuda_models --backend cuda   the CUDA backend (exit 77 without a GPU)
 *   test_cuda_models --backend emu    the emulated device of emu_backend.h (CI)
 *   options: --model tiny-sd-a (repeatable), --dtype f16 (repeatable), --quick (two runs
 *   per configuration), --full-only (only the full-size part below)
 *   SDR_TEST_VERBOSE=1 prints every comparison.
 *
 * The reference. For each device dtype, the CPU pipeline is loaded with the same
 * keep_dtype: the CPU computes in float32 whatever the weights' dtype, so both
 * sides then hold the very same weights (float16-rounded ones for float16) and
 * draw the same noise (torch draws float16 noise as a stream of its own, and a
 * pipeline draws in its torch_dtype); what differs is only where and in which
 * dtype the activations are computed. For float32 that is keep_dtype -1's
 * pipeline (the same values). Model inputs are the diffusers reference's
 * (tests/reference/<model>/NAME.npy); outputs on the device are poisoned with NaN
 * first, and a NaN or infinity anywhere fails.
 *
 * Tolerances, as relative L2 error ||got - ref|| / ||ref|| and max |got - ref| /
 * max(max |ref|, 1) (images are in [-1, 1], so the second is an absolute error there):
 *   float32   one call 5e-5 and 5e-4: only summation order differs (cuBLAS vs
 *             OpenBLAS, im2col vs the CPU's Winograd, whose own error is ~3e-6 on
 *             these models); whole runs 5e-4 and 2e-3: a few 1e-4 on images, as
 *             the CPU itself is from diffusers over a run.
 *   float16   one call 1e-2 and 2e-2; whole runs 3e-2 and 5e-2. Each op rounds its
 *             output to 2^-11 (~5e-4 relative) and a model chains ~100 ops; the
 *             emulated device, which computes as the GPU does (float32 arithmetic,
 *             each op's output rounded), measures 1.5e-3 per call and 4e-3 per run
 *             on these models, so the limits leave ~8x for the GPU's own ways
 *             (flash attention rounds the softmax's P to float16, cuBLAS's blocking).
 *   bfloat16  2^-8 rounding: one call 8e-2 and 0.15, runs 0.2 and 0.3 (the emulator:
 *             1.2e-2 and 3.3e-2).
 * NaN or infinity fails in every dtype.
 * Graphs: on the emulator a run with graphs must equal, bit for bit, the same run
 * with SDREPL_GRAPHS=0; on a GPU it must pass the dtype's whole-run limits.
 *
 * Full size (optional; meant for --backend cuda, the emulator takes minutes at SD 1.5's
 * size): SDREPL_FULL_MODEL=<a diffusers SD 1.x folder>
 * (SDREPL_FULL_MODEL_VARIANT=fp16 to read variant files) loads its UNet and VAE on
 * the GPU at float16 and float32 and compares one UNet call at 64x64 latents with
 * a CFG batch of 2, and one VAE decode of a 64x64 latent, float16 against float32
 * (the CPU would take minutes): float16 within 3e-2 relative L2 and finite.
 *
 * Exit status: 0 all passed, 1 a failure, 77 (ctest's SKIP_RETURN_CODE) no GPU.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emu_backend.h"             // sdr_emu_backend_create, sdr_emu_backend_stats
#include "engine/brownian_tree.h"    // sdr_brownian_tree
#include "engine/generator_device.h" // sdr_generator_fill
#include "engine/image.h"            // sdr_image_load
#include "engine/image_processor.h"  // sdr_image_to_tensor
#include "engine/npy.h"              // sdr_npy_read
#include "engine/pipeline.h"         // sdr_pipeline_load, sdr_pipeline_generate
#include "engine/single_file.h"      // sdr_pipeline_load_single_file_ex
#include "kernels/cpu/cpu_backend.h" // sdr_cpu_backend_create
#include "kernels/error.h"           // sdr_last_error
#ifdef SDREPL_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h" // sdr_cuda_backend_create
#endif

static sdr_backend *cpu, *dev;
static int use_emu;
static int verbose;
static int quick;

/* ---- limits ---- */

typedef struct limits {
  double l2, max;
} limits;

static limits limits_for(sdr_dtype dt, int whole_run) {
  if (dt == SDR_F32)
    return whole_run ? (limits){5e-4, 2e-3} : (limits){5e-5, 5e-4};
  if (dt == SDR_F16)
    return whole_run ? (limits){3e-2, 5e-2} : (limits){1e-2, 2e-2};
  return whole_run ? (limits){0.2, 0.3} : (limits){8e-2, 0.15};
}

/* ---- results: a case per row, a (model, dtype) per column ---- */

enum { MAX_CASES = 24, MAX_CONFIGS = 8 };

static const char *case_names[MAX_CASES];
static int ncases;
static char config_names[MAX_CONFIGS][32];
static int nconfigs;
static double table[MAX_CASES][MAX_CONFIGS]; /* relative L2 error; NAN when not finite */
static int table_fail[MAX_CASES][MAX_CONFIGS];
static int table_set[MAX_CASES][MAX_CONFIGS];
static int failures;

static int case_index(const char *name) {
  for (int i = 0; i < ncases; i++)
    if (strcmp(case_names[i], name) == 0)
      return i;
  if (ncases == MAX_CASES)
    return MAX_CASES - 1;
  case_names[ncases] = name;
  return ncases++;
}

static void note(int config, const char *name, double err, int ok) {
  int c = case_index(name);
  if (!table_set[c][config] || !(err <= table[c][config]))
    table[c][config] = err;
  table_set[c][config] = 1;
  table_fail[c][config] |= !ok;
  failures += !ok;
}

/* A failure that is not a comparison (a call failed): counted, with its message. */
static void fail_call(int config, const char *name, const char *what) {
  fprintf(stderr, "FAIL %s %s: %s: %s\n", config_names[config], name, what, sdr_last_error());
  note(config, name, NAN, 0);
}

/* Compares n values; prints the first mismatches. */
static int compare(int config, const char *name, const float *got, const float *ref, size_t n,
                   limits lim) {
  double ss_err = 0, ss_ref = 0, max_err = 0, max_ref = 0;
  size_t nonfinite = 0, worst = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(got[i]) || !isfinite(ref[i])) {
      if (nonfinite++ < 3)
        fprintf(stderr, "  %s %s: element %zu: got %g, expected %g\n", config_names[config], name,
                i, (double)got[i], (double)ref[i]);
      continue;
    }
    double e = fabs((double)got[i] - (double)ref[i]);
    ss_err += e * e;
    ss_ref += (double)ref[i] * ref[i];
    if (e > max_err)
      max_err = e, worst = i;
    if (fabs((double)ref[i]) > max_ref)
      max_ref = fabs((double)ref[i]);
  }
  double l2 = ss_ref > 0 ? sqrt(ss_err / ss_ref) : (ss_err > 0 ? INFINITY : 0);
  double mx = max_err / (max_ref > 1 ? max_ref : 1);
  if (nonfinite || n == 0)
    l2 = NAN;
  int ok = nonfinite == 0 && n > 0 && l2 <= lim.l2 && mx <= lim.max;
  if (!ok)
    fprintf(stderr,
            "FAIL %s %s: %zu values, %zu not finite, relative L2 %.3g (limit %.3g), max %.3g "
            "(limit %.3g) at %zu: got %.7g, expected %.7g\n",
            config_names[config], name, n, nonfinite, l2, lim.l2, mx, lim.max, worst,
            (double)got[worst], (double)ref[worst]);
  else if (verbose)
    printf("ok   %s %s: relative L2 %.3g, max %.3g\n", config_names[config], name, l2, mx);
  note(config, name, l2, ok);
  return ok;
}

static void print_table(void) {
  printf("\nrelative L2 error against the CPU (full: float16 against float32; * failed)\n%-18s",
         "case");
  for (int c = 0; c < nconfigs; c++)
    printf(" %12s", config_names[c]);
  printf("\n");
  for (int i = 0; i < ncases; i++) {
    printf("%-18s", case_names[i]);
    for (int c = 0; c < nconfigs; c++) {
      if (!table_set[i][c])
        printf(" %12s", "-");
      else
        printf(" %11.2e%s", table[i][c], table_fail[i][c] ? "*" : " ");
    }
    printf("\n");
  }
}

/* ---- tensors on either backend ---- */

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* A tensor of dtype dt on be holding bytes (NaN-poisoned when bytes is NULL). */
static int put(sdr_backend *be, sdr_tensor *t, sdr_dtype dt, int nd, const int64_t *shape,
               const void *bytes) {
  *t = sdr_tensor_view(NULL, dt, be->device, nd, shape);
  size_t nb = sdr_tensor_nbytes(t);
  void *p = sdr_alloc(be, nb ? nb : 1);
  if (!p)
    return -1;
  void *poison = NULL;
  if (!bytes) {
    poison = malloc(nb ? nb : 1);
    if (!poison) {
      sdr_free(be, p);
      return -1;
    }
    memset(poison, 0xff, nb);
    bytes = poison;
  }
  int rc = nb ? sdr_upload(be, p, bytes, nb) : 0;
  free(poison);
  if (rc < 0) {
    sdr_free(be, p);
    return -1;
  }
  t->data = p;
  return 0;
}

static int put_npy(sdr_backend *be, sdr_tensor *t, const sdr_npy *a) {
  return put(be, t, a->dtype, a->ndim, a->shape, a->data);
}

/* t's float32 values, malloc'd (NaN on a failed download). */
static float *fetch(sdr_backend *be, const sdr_tensor *t) {
  size_t n = (size_t)sdr_tensor_numel(t);
  float *v = malloc((n ? n : 1) * sizeof *v);
  if (v && n && sdr_download(be, v, t->data, n * sizeof *v) < 0) {
    fprintf(stderr, "download failed: %s\n", sdr_last_error());
    for (size_t i = 0; i < n; i++)
      v[i] = NAN;
  }
  return v;
}

static void drop(sdr_backend *be, sdr_tensor *t) {
  sdr_free(be, t->data);
  t->data = NULL;
}

static int read_ref(sdr_npy *a, const char *model, const char *name) {
  char path[512];
  snprintf(path, sizeof path, "tests/reference/%s/%s.npy", model, name);
  return sdr_npy_read(path, a);
}

/* ---- one model call on both sides ---- */

typedef enum { CALL_TEXT, CALL_UNET, CALL_VAE_ENCODE, CALL_VAE_DECODE } call_kind;

/* Runs the call on pipeline p (backend be) with inputs in[] (host npy arrays) into
 * a float32 output of out_shape; returns its values (malloc'd) or NULL. */
static float *run_call(sdr_pipeline *p, call_kind kind, sdr_npy *in, int nin, int nd,
                       const int64_t *out_shape) {
  sdr_backend *be = p->be;
  sdr_tensor x[3], out;
  memset(x, 0, sizeof x);
  memset(&out, 0, sizeof out);
  float *result = NULL;
  sdr_arena a;
  sdr_arena_init(&a, be);
  int k = 0, rc = 0;
  for (; k < nin && rc == 0; k++)
    rc = put_npy(be, &x[k], &in[k]);
  if (rc == 0)
    rc = put(be, &out, SDR_F32, nd, out_shape, NULL);
  if (rc == 0) {
    switch (kind) {
    case CALL_TEXT:
      rc = sdr_clip_text_forward(&p->text_encoder, &a, &out, NULL, &x[0]);
      break;
    case CALL_UNET:
      rc = sdr_unet_forward(&p->unet, &a, &out, &x[0], &x[1], &x[2]);
      break;
    case CALL_VAE_ENCODE:
      rc = sdr_vae_encode(&p->vae, &a, &out, &x[0]);
      break;
    case CALL_VAE_DECODE:
      rc = sdr_vae_decode(&p->vae, &a, &out, &x[0]);
      break;
    }
  }
  if (rc == 0)
    result = fetch(be, &out);
  for (int i = 0; i < k; i++)
    drop(be, &x[i]);
  drop(be, &out);
  sdr_arena_free(&a);
  return result;
}

static void check_call(int config, const char *name, sdr_pipeline *pc, sdr_pipeline *pd,
                       call_kind kind, const char *model, const char *const *inputs, int nin,
                       int nd, const int64_t *out_shape, sdr_dtype dt) {
  sdr_npy in[3];
  memset(in, 0, sizeof in);
  for (int i = 0; i < nin; i++)
    if (read_ref(&in[i], model, inputs[i]) < 0) {
      fail_call(config, name, "reading the inputs");
      goto done;
    }
  size_t n = 1;
  for (int i = 0; i < nd; i++)
    n *= (size_t)out_shape[i];
  float *ref = run_call(pc, kind, in, nin, nd, out_shape);
  if (!ref) {
    fail_call(config, name, "the CPU reference");
    goto done;
  }
  float *got = run_call(pd, kind, in, nin, nd, out_shape);
  if (!got)
    fail_call(config, name, "the device");
  else
    compare(config, name, got, ref, n, limits_for(dt, 0));
  free(got);
  free(ref);
done:
  for (int i = 0; i < nin; i++)
    sdr_npy_free(&in[i]);
}

/* ---- whole runs ---- */

typedef struct run_spec {
  const char *name;
  const char *prompt, *negative;
  int img2img;
  float strength;
  int steps;
  float guidance;
  int images;
  sdr_scheduler_kind scheduler;
  uint64_t seed;
  int clip_skip, vae_slicing;
  int size, vae_tiling; /* size 0: the model's default; else that many times it */
} run_spec;

static const run_spec runs[] = {
    {"t2i_pndm", "a photograph of an astronaut riding a horse", NULL, 0, 0, 4, 7.5f, 1,
     SDR_SCHED_PNDM, 0, 0, 0},
    {"t2i_eulera_n3", "a cat", "blurry", 0, 0, 3, 5.0f, 3, SDR_SCHED_EULER_ANCESTRAL, 3, 0, 0},
    {"t2i_dpm_noguide", "a lake at dawn", NULL, 0, 0, 4, 1.0f, 1, SDR_SCHED_DPMSOLVER_MULTISTEP, 5,
     1, 0},
    {"i2i_pndm_s08", "face of a human in  joy", NULL, 1, 0.8f, 5, 7.5f, 1, SDR_SCHED_PNDM, 100, 0,
     0},
    {"i2i_eulera_n3", "a sketch", NULL, 1, 0.75f, 4, 6.0f, 3, SDR_SCHED_EULER_ANCESTRAL, 8, 0, 1},
    {"i2i_dpm_noguide", "a sketch", "ugly", 1, 0.6f, 5, 1.0f, 1, SDR_SCHED_DPMSOLVER_MULTISTEP, 11,
     0, 0},
    /* twice the VAE's tile: decoded in four overlapping tiles blended on the host */
    {"t2i_tiled_2x", "a mountain", NULL, 0, 0, 2, 1.0f, 1, SDR_SCHED_PNDM, 21, 0, 0, 2, 1},
};

static int set_scheduler(sdr_pipeline *p, sdr_scheduler_kind kind) {
  if (sdr_scheduler_kind_of(p->scheduler) == kind)
    return 0;
  sdr_scheduler *s = sdr_scheduler_from_scheduler(p->scheduler, kind);
  if (!s)
    return -1;
  sdr_scheduler_free(p->scheduler);
  p->scheduler = s;
  return 0;
}

/* One run on p; the images (malloc'd) and their count of values, or NULL. */
/* what the last generate() said of its UNet graph (sdr_generated's fields) */
static int last_replays;
static char last_graph_error[256];

static float *generate(sdr_pipeline *p, const run_spec *r, const sdr_image *init, size_t *n,
                       int *steps) {
  if (set_scheduler(p, r->scheduler) < 0)
    return NULL;
  sdr_generator g;
  sdr_generator_init(&g, SDR_GENERATOR_CPU);
  sdr_generator_manual_seed(&g, r->seed);
  sdr_generator *gens[1] = {&g};
  const char *prompts[1] = {r->prompt}, *negs[1] = {r->negative};
  sdr_generate req;
  memset(&req, 0, sizeof req);
  req.prompts = prompts;
  req.nprompts = 1;
  req.negative_prompts = r->negative ? negs : NULL;
  req.nnegative = r->negative ? 1 : 0;
  req.num_inference_steps = r->steps;
  req.guidance_scale = r->guidance;
  req.num_images_per_prompt = r->images;
  req.strength = r->strength;
  req.image = r->img2img ? init : NULL;
  req.generators = gens;
  req.ngenerators = 1;
  req.clip_skip = r->clip_skip;
  req.height = req.width = r->size * sdr_pipeline_default_size(p);
  p->vae_slicing = r->vae_slicing;
  p->vae_tiling = r->vae_tiling;
  sdr_generated out;
  if (sdr_pipeline_generate(p, &req, &out) != 0)
    return NULL;
  *n = (size_t)(out.shape[0] * out.shape[1] * out.shape[2] * out.shape[3]);
  *steps = out.steps_run;
  last_replays = out.graph_replays;
  snprintf(last_graph_error, sizeof last_graph_error, "%s", out.graph_error);
  return out.data; /* sdr_generated_free would free just this */
}

static void check_run(int config, sdr_pipeline *pc, sdr_pipeline *pd, const run_spec *r,
                      const sdr_image *init, sdr_dtype dt) {
  size_t nr = 0, ng = 0;
  int sr = 0, sg = 0;
  float *ref = generate(pc, r, init, &nr, &sr);
  if (!ref) {
    fail_call(config, r->name, "the CPU reference");
    return;
  }
  sdr_emu_stats s0, s1;
  if (use_emu)
    sdr_emu_backend_stats(dev, &s0);
  float *got = generate(pd, r, init, &ng, &sg);
  if (!got) {
    fail_call(config, r->name, "the device");
  } else if (ng != nr || sg != sr) {
    fprintf(stderr, "FAIL %s %s: %zu values in %d steps, the CPU %zu in %d\n", config_names[config],
            r->name, ng, sg, nr, sr);
    note(config, r->name, NAN, 0);
  } else {
    compare(config, r->name, got, ref, nr, limits_for(dt, 1));
  }
  if (use_emu && got) { /* the run computed in the weights' dtype */
    sdr_emu_backend_stats(dev, &s1);
    long long half = dt == SDR_F16 ? s1.ops_f16 - s0.ops_f16 : s1.ops_bf16 - s0.ops_bf16;
    if (dt != SDR_F32 && half == 0) {
      fprintf(stderr, "FAIL %s %s: no op ran with %s activations\n", config_names[config], r->name,
              sdr_dtype_name(dt));
      note(config, r->name, NAN, 0);
    }
  }
  if (use_emu && got && verbose) {
    printf("     %s %s: %d steps, %lld ops, %lld graph replays\n", config_names[config], r->name,
           sg, s1.ops_run - s0.ops_run, s1.graph_replays - s0.graph_replays);
  }
  free(got);
  free(ref);
}

/* The same run with graphs (the default where the backend records them) and with
 * SDREPL_GRAPHS=0: equal on the emulator, within the dtype's limits on a GPU. */
static void check_graphs(int config, sdr_pipeline *pd, const sdr_image *init, sdr_dtype dt) {
  const char *name = "graph_vs_direct";
  const run_spec *r = &runs[0];
  size_t n0 = 0, n1 = 0;
  int s0 = 0, s1 = 0;
  sdr_emu_stats e0, e1;
  if (use_emu)
    sdr_emu_backend_stats(dev, &e0);
  float *with = generate(pd, r, init, &n0, &s0);
  int replays = last_replays;
  char why[256];
  snprintf(why, sizeof why, "%s", last_graph_error);
  if (use_emu)
    sdr_emu_backend_stats(dev, &e1);
  setenv("SDREPL_GRAPHS", "0", 1);
  float *without = generate(pd, r, init, &n1, &s1);
  unsetenv("SDREPL_GRAPHS");
  if (!with || !without || n0 != n1) {
    fail_call(config, name, "a run");
  } else {
    limits lim = use_emu ? (limits){0, 0} : limits_for(dt, 1);
    compare(config, name, with, without, n0, lim);
    /* every UNet call after the first (which measures the arena) replays the graph */
    long long seen = use_emu ? e1.graph_replays - e0.graph_replays : replays;
    if (sdr_graph_supported(dev) && (replays < s0 - 1 || seen < s0 - 1)) {
      fprintf(stderr,
              "FAIL %s %s: %d steps but %d graph replays (the device counted %lld): the UNet "
              "call was not recorded: %s\n",
              config_names[config], name, s0, replays, seen, why[0] ? why : "no error given");
      note(config, name, NAN, 0);
    }
  }
  free(with);
  free(without);
  if (!use_emu || !with || !without)
    return;
  /* A UNet call that cannot be recorded (here an op refused halfway through the
   * recording) still runs: directly, the same picture, the first error kept. */
  sdr_emu_backend_refuse_recording(dev, 100);
  float *fallback = generate(pd, r, init, &n1, &s1);
  if (!fallback || n1 != n0) {
    fail_call(config, "graph_fallback", "a run whose recording fails");
  } else if (last_replays != 0 || !strstr(last_graph_error, "refused while recording")) {
    fprintf(stderr,
            "FAIL %s graph_fallback: %d replays, graph_error \"%s\" (want 0 and the "
            "refused op's message)\n",
            config_names[config], last_replays, last_graph_error);
    note(config, "graph_fallback", NAN, 0);
  } else {
    float *direct = generate(pd, r, init, &n1, &s1); /* graphs work again */
    if (!direct)
      fail_call(config, "graph_fallback", "the run after it");
    else
      compare(config, "graph_fallback", fallback, direct, n0, (limits){0, 0});
    free(direct);
  }
  free(fallback);
}

/* The notebook's way: from_pretrained on the CPU, a run there, then pipe:to("cuda")
 * (sdr_pipeline_to, as bindings/pipeline.c calls it) and a run on the device, which
 * must match the pipeline loaded on the device directly. The first run leaves the
 * scheduler's history on the CPU backend: the second must move it. */
/* A single-file checkpoint of the same weights beside the folder (tests/models:
 * <model>-ldm.ckpt or .safetensors), or NULL. */
static const char *single_file_of(const char *dir, char *buf, size_t n) {
  static const char *const ext[] = {".ckpt", ".safetensors"};
  for (int i = 0; i < 2; i++) {
    snprintf(buf, n, "%s-ldm%s", dir, ext[i]);
    FILE *f = fopen(buf, "rb");
    if (f) {
      fclose(f);
      return buf;
    }
  }
  return NULL;
}

/* pipe:to(device) after loading on the CPU: from the folder, or (single != NULL)
 * from the single-file checkpoint, whose weights the loader binds through views. */
static void check_moved(int config, const char *dir, const char *single, sdr_pipeline *pc,
                        const sdr_image *init, sdr_dtype dt) {
  const char *name = single ? "to_device_single_file" : "to_device";
  const run_spec *r = &runs[1];
  sdr_pipeline pm;
  int keep = dt == SDR_F32 ? -1 : (int)dt;
  sdr_single_file_options so = {.config_dir = dir}; /* tiny models: configs not inferable */
  if ((single ? sdr_pipeline_load_single_file_ex(&pm, cpu, single, keep, &so)
              : sdr_pipeline_load(&pm, cpu, dir, NULL, keep)) != 0) {
    fail_call(config, name, "loading on the CPU");
    return;
  }
  size_t n0 = 0, n1 = 0, n2 = 0;
  int s0 = 0, s1 = 0, s2 = 0;
  float *first = generate(&pm, r, init, &n0, &s0);
  float *ref = generate(pc, r, init, &n1, &s1);
  float *got = NULL;
  if (!first || !ref)
    fail_call(config, name, "a run on the CPU");
  else if (sdr_pipeline_to(&pm, dev, (int)dt) != 0)
    fail_call(config, name, "sdr_pipeline_to");
  else if (!(got = generate(&pm, r, init, &n2, &s2)))
    fail_call(config, name, "the run after sdr_pipeline_to");
  else if (n2 != n1 || s2 != s1 || pm.unet.act != dt) {
    fprintf(stderr, "FAIL %s %s: %zu values in %d steps (activations %s), the CPU %zu in %d\n",
            config_names[config], name, n2, s2, sdr_dtype_name(pm.unet.act), n1, s1);
    note(config, name, NAN, 0);
  } else
    compare(config, name, got, ref, n1, limits_for(dt, 1));
  free(first), free(ref), free(got);
  sdr_pipeline_free(&pm);
}

/* ---- one (model, dtype) ---- */

static void check_config(const char *model, sdr_dtype dt) {
  int config = nconfigs++;
  const char *shortname = strncmp(model, "tiny-sd-", 8) == 0 ? model + 8 : model;
  snprintf(config_names[config], sizeof config_names[config], "%s/%s", shortname,
           sdr_dtype_name(dt));
  char dir[512], png[512];
  snprintf(dir, sizeof dir, "tests/models/%s", model);
  snprintf(png, sizeof png, "tests/reference/%s/init_image.png", model);
  double t0 = now_s();
  sdr_pipeline pc, pd;
  /* the CPU with the same weights as the device: see the header */
  if (sdr_pipeline_load(&pc, cpu, dir, NULL, dt == SDR_F32 ? -1 : (int)dt) != 0) {
    fail_call(config, "load", "the CPU pipeline");
    return;
  }
  if (sdr_pipeline_load(&pd, dev, dir, NULL, (int)dt) != 0) {
    fail_call(config, "load", "the device pipeline");
    sdr_pipeline_free(&pc);
    return;
  }
  /* the device computes in the weights' dtype (float32 for the CPU) */
  int acts_ok = pd.unet.act == dt && pd.vae.act == dt && pd.text_encoder.act == dt &&
                pc.unet.act == SDR_F32 && pc.dtype == dt;
  if (!acts_ok)
    fprintf(stderr,
            "FAIL %s load: activations unet %s, vae %s, text %s on the device (want %s); CPU "
            "unet %s, noise %s\n",
            config_names[config], sdr_dtype_name(pd.unet.act), sdr_dtype_name(pd.vae.act),
            sdr_dtype_name(pd.text_encoder.act), sdr_dtype_name(dt), sdr_dtype_name(pc.unet.act),
            sdr_dtype_name(pc.dtype));
  note(config, "load", 0, acts_ok);

  /* one call of each model, on the diffusers reference's inputs */
  const int64_t B = 2, T = pd.text_encoder.cfg.max_position_embeddings;
  const int64_t D = pd.text_encoder.cfg.hidden_size;
  const char *text_in[1] = {"text_input_ids"};
  check_call(config, "text_encoder", &pc, &pd, CALL_TEXT, model, text_in, 1, 3,
             (int64_t[]){B, T, D}, dt);
  sdr_npy sample;
  if (read_ref(&sample, model, "unet_sample") == 0) {
    const char *unet_in[3] = {"unet_sample", "unet_timesteps", "unet_context"};
    int64_t shape[4] = {sample.shape[0], pd.unet.cfg.out_channels, sample.shape[2],
                        sample.shape[3]};
    check_call(config, "unet", &pc, &pd, CALL_UNET, model, unet_in, 3, 4, shape, dt);
    sdr_npy_free(&sample);
  } else {
    fail_call(config, "unet", "reading unet_sample");
  }
  sdr_npy x, z;
  const int f = sdr_vae_scale_factor(&pd.vae), L = pd.vae.cfg.latent_channels;
  if (read_ref(&x, model, "vae_encode_input") == 0) {
    const char *in[1] = {"vae_encode_input"};
    int64_t shape[4] = {x.shape[0], 2 * L, x.shape[2] / f, x.shape[3] / f};
    check_call(config, "vae_encode", &pc, &pd, CALL_VAE_ENCODE, model, in, 1, 4, shape, dt);
    sdr_npy_free(&x);
  } else {
    fail_call(config, "vae_encode", "reading vae_encode_input");
  }
  if (read_ref(&z, model, "vae_decode_input") == 0) {
    const char *in[1] = {"vae_decode_input"};
    int64_t shape[4] = {z.shape[0], pd.vae.cfg.out_channels, z.shape[2] * f, z.shape[3] * f};
    check_call(config, "vae_decode", &pc, &pd, CALL_VAE_DECODE, model, in, 1, 4, shape, dt);
    sdr_npy_free(&z);
  } else {
    fail_call(config, "vae_decode", "reading vae_decode_input");
  }

  /* whole runs */
  sdr_image *init = sdr_image_load(png);
  if (!init) {
    fail_call(config, "runs", "loading the init image");
  } else {
    size_t nruns = sizeof runs / sizeof runs[0];
    for (size_t i = 0; i < nruns; i++)
      if (!quick || i == 0 || i == 4)
        check_run(config, &pc, &pd, &runs[i], init, dt);
    check_graphs(config, &pd, init, dt);
    check_moved(config, dir, NULL, &pc, init, dt);
    char sf[4096];
    const char *single = single_file_of(dir, sf, sizeof sf);
    if (single)
      check_moved(config, dir, single, &pc, init, dt);
  }
  sdr_image_free(init);
  sdr_pipeline_free(&pd);
  sdr_pipeline_free(&pc);
  if (use_emu) { /* everything the engine allocated on the device is given back */
    sdr_emu_stats s;
    sdr_emu_backend_stats(dev, &s);
    if (s.live_allocs != 0)
      fprintf(stderr, "FAIL %s leaks: %lld device allocations (%zu bytes) left after freeing\n",
              config_names[config], s.live_allocs, s.live_bytes);
    note(config, "device_memory", 0, s.live_allocs == 0);
  }
  printf("%s: %.1f s\n", config_names[config], now_s() - t0);
}

/* ---- full size (GPU only) ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float rnd_normal(void) { /* Box-Muller over splitmix64 */
  double u[2];
  for (int i = 0; i < 2; i++) {
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    u[i] = ((double)(z >> 11) + 0.5) / 9007199254740992.0;
  }
  return (float)(sqrt(-2 * log(u[0])) * cos(6.283185307179586 * u[1]));
}

static float *random_normals(size_t n, float scale) {
  float *v = malloc(n * sizeof *v);
  for (size_t i = 0; v && i < n; i++)
    v[i] = scale * rnd_normal();
  return v;
}

static void check_full(const char *dir) {
  int config = nconfigs++;
  snprintf(config_names[config], sizeof config_names[config], "full f16/f32");
  const char *variant = getenv("SDREPL_FULL_MODEL_VARIANT");
  if (variant && !*variant)
    variant = NULL;
  char sub[4096];
  sdr_unet u[2];
  sdr_vae v[2];
  const sdr_dtype dts[2] = {SDR_F32, SDR_F16};
  memset(u, 0, sizeof u);
  memset(v, 0, sizeof v);
  double t0 = now_s();
  for (int i = 0; i < 2; i++) {
    snprintf(sub, sizeof sub, "%s/unet", dir);
    if (sdr_unet_load(&u[i], dev, sub, variant, (int)dts[i]) != 0) {
      fail_call(config, "full_load", sub);
      goto done;
    }
    snprintf(sub, sizeof sub, "%s/vae", dir);
    if (sdr_vae_load(&v[i], dev, sub, variant, (int)dts[i]) != 0) {
      fail_call(config, "full_load", sub);
      goto done;
    }
  }
  printf("full: loaded %s at float32 and float16 in %.1f s\n", dir, now_s() - t0);
  /* one UNet call at 64x64 latents (512x512 images), a CFG batch of 2 */
  {
    const int64_t B = 2, C = u[0].cfg.in_channels, H = 64, W = 64, S = 77;
    const int64_t Dc = u[0].cfg.cross_attention_dim[0];
    float *sample = random_normals((size_t)(B * C * H * W), 1.0f);
    float *ctx = random_normals((size_t)(B * S * Dc), 1.0f);
    float ts[2] = {801, 801};
    float *outs[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
      sdr_tensor xs, xt, xc, out;
      sdr_arena a;
      sdr_arena_init(&a, dev);
      int rc = put(dev, &xs, SDR_F32, 4, (int64_t[]){B, C, H, W}, sample);
      rc = rc ? rc : put(dev, &xt, SDR_F32, 1, (int64_t[]){B}, ts);
      rc = rc ? rc : put(dev, &xc, SDR_F32, 3, (int64_t[]){B, S, Dc}, ctx);
      rc = rc ? rc : put(dev, &out, SDR_F32, 4, (int64_t[]){B, u[i].cfg.out_channels, H, W}, NULL);
      double best = 1e9;
      for (int rep = 0; rc == 0 && rep < 3; rep++) { /* the first call warms up */
        double t = now_s();
        rc = sdr_unet_forward(&u[i], &a, &out, &xs, &xt, &xc);
        if (rc == 0)
          rc = sdr_sync(dev);
        sdr_arena_reset(&a);
        if (rep > 0 && now_s() - t < best)
          best = now_s() - t;
      }
      if (rc == 0) {
        outs[i] = fetch(dev, &out);
        printf("full: UNet call (2, %lld, 64, 64) in %s: %.1f ms\n", (long long)C,
               sdr_dtype_name(dts[i]), 1e3 * best);
      } else {
        fail_call(config, "full_unet", sdr_dtype_name(dts[i]));
      }
      drop(dev, &xs), drop(dev, &xt), drop(dev, &xc), drop(dev, &out);
      sdr_arena_free(&a);
    }
    if (outs[0] && outs[1])
      compare(config, "full_unet", outs[1], outs[0], (size_t)(B * u[0].cfg.out_channels * H * W),
              (limits){3e-2, 0.25});
    free(outs[0]), free(outs[1]), free(sample), free(ctx);
  }
  /* one VAE decode of a 64x64 latent (diffusers upcasts SD's VAE: force_upcast) */
  {
    const int64_t L = v[0].cfg.latent_channels, f = sdr_vae_scale_factor(&v[0]);
    float *z = random_normals((size_t)(L * 64 * 64), 1.0f / v[0].cfg.scaling_factor * 0.8f);
    float *outs[2] = {NULL, NULL};
    const int64_t oshape[4] = {1, v[0].cfg.out_channels, 64 * f, 64 * f};
    for (int i = 0; i < 2; i++) {
      sdr_tensor xz, out;
      sdr_arena a;
      sdr_arena_init(&a, dev);
      int rc = put(dev, &xz, SDR_F32, 4, (int64_t[]){1, L, 64, 64}, z);
      rc = rc ? rc : put(dev, &out, SDR_F32, 4, oshape, NULL);
      double t = now_s();
      rc = rc ? rc : sdr_vae_decode(&v[i], &a, &out, &xz);
      if (rc == 0 && (rc = sdr_sync(dev)) == 0) {
        printf("full: VAE decode 64x64 in %s: %.1f ms (first call)\n", sdr_dtype_name(dts[i]),
               1e3 * (now_s() - t));
        outs[i] = fetch(dev, &out);
      } else {
        fail_call(config, "full_vae_decode", sdr_dtype_name(dts[i]));
      }
      drop(dev, &xz), drop(dev, &out);
      sdr_arena_free(&a);
    }
    if (outs[0] && outs[1])
      compare(config, "full_vae_decode", outs[1], outs[0],
              (size_t)(oshape[1] * oshape[2] * oshape[3]), (limits){3e-2, 0.25});
    free(outs[0]), free(outs[1]), free(z);
  }
done:
  for (int i = 0; i < 2; i++) {
    if (u[i].be)
      sdr_unet_free(&u[i]);
    if (v[i].be)
      sdr_vae_free(&v[i]);
  }
  printf("full: %.1f s\n", now_s() - t0);
}

/* ---- main ---- */

/* torch.randn with a CUDA generator, as the pipeline draws its latents and step
 * noise: on a GPU by torch's own kernel (sdr_generator_fill -> sdr_philox), here
 * against the CPU's emulation of the same kernel. The GPU's sine and cosine are
 * approximate: the values agree to ~1e-6 (float16: within one rounding); the
 * generator's offset must move the same. */
static void check_generator(void) {
  static const size_t sizes[] = {7, 4 * 64 * 64, 3 * 4 * 64 * 64 + 5};
  static const sdr_dtype dts[] = {SDR_F32, SDR_F16};
  int ok_all = 1;
  double worst = 0;
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
    for (size_t d = 0; d < 2; d++) {
      sdr_generator gh, gd;
      sdr_generator_init(&gh, SDR_GENERATOR_CUDA);
      sdr_generator_manual_seed(&gh, 1024 + s);
      gd = gh;
      sdr_tensor th, td;
      const int64_t n = (int64_t)sizes[s];
      int rc = put(cpu, &th, SDR_F32, 1, &n, NULL) | put(dev, &td, SDR_F32, 1, &n, NULL);
      sdr_arena scratch_h, scratch_d;
      sdr_arena_init(&scratch_h, cpu);
      sdr_arena_init(&scratch_d, dev);
      for (int k = 0; k < 2 && rc == 0; k++) /* two draws: the second from the moved offset */
        rc = sdr_generator_fill(&gh, cpu, &scratch_h, &th, dts[d], 1) |
             sdr_generator_fill(&gd, dev, &scratch_d, &td, dts[d], 1);
      float *a = rc == 0 ? fetch(cpu, &th) : NULL, *b = rc == 0 ? fetch(dev, &td) : NULL;
      double max_err = a && b ? 0 : INFINITY;
      for (int64_t i = 0; a && b && i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (!(e <= max_err)) /* NaN too */
          max_err = isfinite(a[i]) && isfinite(b[i]) ? e : INFINITY;
      }
      double tol = dts[d] == SDR_F32 ? 1e-5 : 4e-3;
      int ok = rc == 0 && max_err <= tol && gh.philox_offset == gd.philox_offset;
      if (!ok)
        fprintf(stderr,
                "FAIL randn on the device: %lld values in %s: max abs error %g (offsets "
                "%llu and %llu)%s%s\n",
                (long long)n, sdr_dtype_name(dts[d]), max_err, (unsigned long long)gh.philox_offset,
                (unsigned long long)gd.philox_offset, rc ? ": " : "", rc ? sdr_last_error() : "");
      ok_all &= ok;
      if (max_err > worst)
        worst = max_err;
      free(a);
      free(b);
      sdr_arena_free(&scratch_h);
      sdr_arena_free(&scratch_d);
      drop(cpu, &th);
      drop(dev, &td);
    }
  failures += !ok_all;
  printf("randn with a CUDA generator, %s against the CPU's emulation: max abs error %.3g%s\n",
         sdr_philox_supported(dev) ? "drawn on the device" : "drawn on the host for the device",
         worst, ok_all ? "" : " FAILED");
}

/* DPMSolverSDEScheduler's noise on a device: a Brownian tree whose nodes draw from fresh
 * CUDA generators (torch.Generator("cuda"), as on a GPU pipeline), on the device against the
 * CPU's emulation of the same generators, over a run's intervals, a clamped one included. */
static void check_brownian_tree(void) {
  static const double q[][2] = {{9.5, 14.6}, {6.2, 9.5}, {0.03, 0.9}, {1.0, 20.0}};
  const int64_t shape[4] = {2, 4, 16, 16};
  sdr_brownian_tree tree;
  int rc = sdr_brownian_tree_init(&tree, 0.0291675, 14.614642, 123456789, SDR_GENERATOR_CUDA, NULL,
                                  SDR_F32);
  sdr_tensor th, td;
  rc |= put(cpu, &th, SDR_F32, 4, shape, NULL) | put(dev, &td, SDR_F32, 4, shape, NULL);
  sdr_arena ah, ad;
  sdr_arena_init(&ah, cpu);
  sdr_arena_init(&ad, dev);
  double worst = rc == 0 ? 0 : INFINITY;
  for (size_t k = 0; k < sizeof q / sizeof q[0] && rc == 0; k++) {
    rc = sdr_brownian_tree_increment(&tree, cpu, &ah, &th, q[k][0], q[k][1]) |
         sdr_brownian_tree_increment(&tree, dev, &ad, &td, q[k][0], q[k][1]);
    float *a = rc == 0 ? fetch(cpu, &th) : NULL, *b = rc == 0 ? fetch(dev, &td) : NULL;
    for (int64_t i = 0; a && b && i < sdr_tensor_numel(&th); i++) {
      double e = fabs((double)a[i] - (double)b[i]);
      if (!(e <= worst)) /* NaN too */
        worst = isfinite(a[i]) && isfinite(b[i]) ? e : INFINITY;
    }
    free(a);
    free(b);
    sdr_arena_reset(&ah);
    sdr_arena_reset(&ad);
  }
  const int ok = rc == 0 && worst <= 1e-4; /* increments of a few units; ~1e-6 per draw */
  if (rc != 0)
    fprintf(stderr, "FAIL Brownian tree: %s\n", sdr_last_error());
  failures += !ok;
  printf("Brownian tree (DPMSolverSDEScheduler's noise) with CUDA generators, against the CPU: "
         "max abs error %.3g%s\n",
         worst, ok ? "" : " FAILED");
  sdr_arena_free(&ah);
  sdr_arena_free(&ad);
  drop(cpu, &th);
  drop(dev, &td);
}

static void usage(void) {
  fprintf(stderr, "usage: test_cuda_models [--backend cuda|emu] [--model NAME]... "
                  "[--dtype f32|f16|bf16]... [--quick] [--full-only]\n");
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  verbose = getenv("SDR_TEST_VERBOSE") && atoi(getenv("SDR_TEST_VERBOSE")) > 0;
  const char *backend = NULL, *models[4];
  int nmodels = 0, ndts = 0, full_only = 0;
  sdr_dtype dts[3];
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc)
      backend = argv[++i];
    else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc && nmodels < 4)
      models[nmodels++] = argv[++i];
    else if (strcmp(argv[i], "--dtype") == 0 && i + 1 < argc && ndts < 3) {
      const char *d = argv[++i];
      dts[ndts++] = strcmp(d, "f16") == 0 || strcmp(d, "float16") == 0     ? SDR_F16
                    : strcmp(d, "bf16") == 0 || strcmp(d, "bfloat16") == 0 ? SDR_BF16
                                                                           : SDR_F32;
    } else if (strcmp(argv[i], "--quick") == 0)
      quick = 1;
    else if (strcmp(argv[i], "--full-only") == 0)
      full_only = 1;
    else {
      usage();
      return 2;
    }
  }
  if (!backend) {
#ifdef SDREPL_HAVE_CUDA
    backend = "cuda";
#else
    backend = "emu";
#endif
  }
  const char *full = getenv("SDREPL_FULL_MODEL");
  if (full_only && !(full && *full)) {
    printf("SKIPPED: --full-only without SDREPL_FULL_MODEL\n");
    return 77;
  }
  if (nmodels == 0 && !full_only) {
    models[nmodels++] = "tiny-sd-a";
    models[nmodels++] = "tiny-sd-b";
  }
  if (ndts == 0) {
    dts[ndts++] = SDR_F32;
    dts[ndts++] = SDR_F16;
    dts[ndts++] = SDR_BF16;
  }
  if (strcmp(backend, "emu") == 0) {
    use_emu = 1;
    dev = sdr_emu_backend_create();
  } else if (strcmp(backend, "cuda") == 0) {
#ifdef SDREPL_HAVE_CUDA
    if (sdr_cuda_device_count() == 0) {
      printf("SKIPPED: no CUDA GPU (%s)\n", sdr_cuda_unavailable_reason());
      return 77;
    }
    dev = sdr_cuda_backend_create(NULL);
#else
    printf("SKIPPED: this build has no CUDA\n");
    return 77;
#endif
  } else {
    usage();
    return 2;
  }
  cpu = sdr_cpu_backend_create();
  if (!dev || !cpu) {
    fprintf(stderr, "FAIL: making the backends: %s\n", sdr_last_error());
    return 1;
  }
  printf("device: %s\n", use_emu ? "emulated CUDA (emu_backend.h)" : dev->name);
  double t0 = now_s();
  if (!full_only) {
    check_generator();
    check_brownian_tree();
  }
  for (int m = 0; m < nmodels; m++)
    for (int d = 0; d < ndts && nconfigs < MAX_CONFIGS - 1; d++)
      check_config(models[m], dts[d]);
  if (full && *full) /* the emulator too: minutes for SD 1.5, seconds for a tiny model */
    check_full(full);
  print_table();
  printf("%d case(s) failed; %.1f s\n", failures, now_s() - t0);
  if (use_emu)
    sdr_emu_backend_destroy(dev);
#ifdef SDREPL_HAVE_CUDA
  else
    sdr_cuda_backend_destroy(dev);
#endif
  sdr_cpu_backend_destroy(cpu);
  return failures ? 1 : 0;
}

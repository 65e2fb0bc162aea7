/* tests/unit/test_scheduler.c — the schedulers against diffusers 0.27.2.
 *
 * Reference: tests/reference/schedulers/ (scripts/reference/make_scheduler_cases.py).
 * Each case makes its class from SD 1.4's config with from_config, as diffusers did,
 * and compares:
 *   - the config dict: the same keys and values, "_use_default_values" as a set;
 *   - alphas_cumprod: bit for bit;
 *   - timesteps: exactly (count, dtype and values), except the ones computed through
 *     numpy's float32 log (Karras, uniform-lambda, log-linear): those are bit-exact
 *     against this reference too (scheduler_libmath.c copies numpy's log), but a numpy
 *     built for another instruction set may round its log differently, so they are
 *     held to the tolerance below (SDREPL_TEST_VERBOSE=1 reports any inexact one);
 *   - sigmas, init_noise_sigma, scale_model_input, every recorded step's prev_sample,
 *     add_noise: within TOL (|ours - diffusers| <= TOL * max(|diffusers|, 1), a
 *     relative error of 1e-5 for latents of size 1 and more);
 *   - the generator's next draws after a run: exactly (steps draw what torch draws);
 *     a case with "global_seed" ran without a generator in diffusers, drawing from
 *     torch's default one seeded so, which a generator seeded the same stands for.
 * The first mismatches of each comparison are printed; a summary gives the largest
 * error and the share of bit-exact elements per class (SDREPL_TEST_VERBOSE=1: per
 * case). Then the errors a user can cause (unknown class, unsupported config values,
 * set_timesteps(0), bad calls), step counting, and the history's device memory.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/arena.h"     // sdr_arena
#include "engine/error.h"     // sdr_last_error
#include "engine/generator.h" // sdr_generator
#include "engine/npy.h"       // sdr_npy_read
#include "engine/scheduler.h"
#include "engine/scheduler_internal.h" // sched_json_parse, alphas_cumprod
#include "kernels/cpu/cpu_backend.h"   // sdr_cpu_backend_create

#include <cjson/cJSON.h>

#define DIR "tests/reference/schedulers/"
static const double TOL = 1e-5;

static sdr_backend *be;
static sdr_arena arena;
static cJSON *manifest;
static const char *pndm_config;

/* ---- statistics per class ---- */

typedef struct stats {
  double max_err;  /* largest |ours - ref| / max(|ref|, 1) */
  long n, n_exact; /* elements compared, of which bit-exact */
} stats;
static stats per_class[SDR_SCHED_COUNT];

/* ---- small helpers ---- */

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  if (buf)
    buf[n] = 0;
  fclose(f);
  return buf;
}

/* A .npy of the reference as float32 (NULL and a failed check when missing). */
static float *load(const char *name, size_t *count) {
  char path[256];
  snprintf(path, sizeof path, DIR "%s.npy", name);
  sdr_npy a;
  if (sdr_npy_read(path, &a) != 0 || a.dtype != SDR_F32) {
    fprintf(stderr, "cannot read %s: %s\n", path, sdr_last_error());
    check_failures++;
    return NULL;
  }
  if (count)
    *count = a.count;
  return a.data;
}

static const char *str(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}
static double num(const cJSON *o, const char *k, double dflt) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}
static const cJSON *item(const cJSON *o, const char *k) {
  return cJSON_GetObjectItemCaseSensitive(o, k);
}

/* Compares n values; prints the first few mismatches under `what`. Returns mismatches. */
static int compare(const char *what, const float *ours, const float *ref, size_t n, stats *st) {
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)ours[i] - (double)ref[i]);
    double scale = fabs((double)ref[i]) > 1 ? fabs((double)ref[i]) : 1;
    double e = d / scale;
    if (!(e <= TOL)) { /* NaN fails too */
      if (bad < 4)
        fprintf(stderr, "  %s[%zu]: ours %.9g, diffusers %.9g (error %.3g)\n", what, i, ours[i],
                ref[i], e);
      bad++;
    }
    if (st) {
      st->n++;
      st->n_exact += ours[i] == ref[i];
      if (e > st->max_err)
        st->max_err = e;
    }
  }
  if (bad) {
    fprintf(stderr, "%s: %d of %zu values differ by more than %g\n", what, bad, n, TOL);
    check_failures++;
  }
  return bad;
}

static sdr_tensor new_tensor(const int64_t *shape) {
  sdr_tensor t = sdr_tensor_view(NULL, SDR_F32, SDR_DEVICE_CPU, 4, shape);
  t.data = sdr_alloc(be, sdr_tensor_nbytes(&t));
  return t;
}

/* The reference's model: 0.9 * x_in + w * float(0.1 * sin(t * 0.01 + 1)), each
 * operation rounded to float32 as torch does. */
static void model_fn(float *mo, const float *x_in, const float *w, size_t n, double t) {
  float s = (float)(0.1 * sin(t * 0.01 + 1.0));
  for (size_t i = 0; i < n; i++) {
    volatile float a = 0.9f * x_in[i];
    float b = w[i] * s;
    mo[i] = a + b;
  }
}

static sdr_scheduler *make(const char *cls, const cJSON *kwargs) {
  int kind = sdr_scheduler_kind_from_name(cls);
  char *kw = kwargs ? cJSON_PrintUnformatted(kwargs) : NULL;
  sdr_scheduler *s = sdr_scheduler_from_config(pndm_config, kind, kw);
  if (!s) {
    fprintf(stderr, "%s from_config(%s): %s\n", cls, kw ? kw : "", sdr_last_error());
    check_failures++;
  }
  free(kw);
  return s;
}

/* ---- the config dict ---- */

static int json_equal(const cJSON *a, const cJSON *b) {
  if (cJSON_IsNumber(a) && cJSON_IsNumber(b))
    return a->valuedouble == b->valuedouble;
  if (cJSON_IsString(a) && cJSON_IsString(b))
    return strcmp(a->valuestring, b->valuestring) == 0;
  if (cJSON_IsBool(a) && cJSON_IsBool(b))
    return cJSON_IsTrue(a) == cJSON_IsTrue(b);
  if (cJSON_IsNull(a) && cJSON_IsNull(b))
    return 1;
  if (cJSON_IsArray(a) && cJSON_IsArray(b)) {
    if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b))
      return 0;
    for (const cJSON *x = a->child, *y = b->child; x && y; x = x->next, y = y->next)
      if (!json_equal(x, y))
        return 0;
    return 1;
  }
  return 0;
}

static int same_set(const cJSON *a, const cJSON *b) {
  if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b))
    return 0;
  for (const cJSON *x = a->child; x; x = x->next) {
    int found = 0;
    for (const cJSON *y = b->child; y; y = y->next)
      found |= json_equal(x, y);
    if (!found)
      return 0;
  }
  return 1;
}

static void check_config(const char *name, const sdr_scheduler *s, const char *ref_text) {
  cJSON *ref = sched_json_parse(ref_text, "reference config");
  cJSON *ours = sched_json_parse(sdr_scheduler_config_json(s), "our config");
  CHECK(ref && ours);
  if (ref && ours) {
    int bad = 0;
    for (const cJSON *r = ref->child; r; r = r->next) {
      const cJSON *o = item(ours, r->string);
      int ok =
          o && (strcmp(r->string, "_use_default_values") == 0 ? same_set(r, o) : json_equal(r, o));
      if (!ok && bad++ < 4)
        fprintf(stderr, "  %s: config \"%s\" differs\n", name, r->string);
    }
    if (cJSON_GetArraySize(ref) != cJSON_GetArraySize(ours)) {
      fprintf(stderr, "  %s: config has %d keys, diffusers' %d\n", name, cJSON_GetArraySize(ours),
              cJSON_GetArraySize(ref));
      bad++;
    }
    if (bad) {
      fprintf(stderr, "%s: config differs from diffusers'\n%s\n", name,
              sdr_scheduler_config_json(s));
      check_failures++;
    }
  }
  cJSON_Delete(ref);
  cJSON_Delete(ours);
}

/* ---- schedules ---- */

static const char *dtype_name(sdr_dtype d) {
  return d == SDR_I64 ? "int64" : d == SDR_F32 ? "float32" : d == SDR_F64 ? "float64" : "?";
}

/* Timesteps, their dtype, sigmas and init_noise_sigma as diffusers has them. */
static void check_schedule(const char *name, const sdr_scheduler *s, const cJSON *ref,
                           int approx_timesteps) {
  int n;
  const double *ts = sdr_scheduler_timesteps(s, &n);
  const cJSON *rts = item(ref, "timesteps");
  int rn = cJSON_GetArraySize(rts), bad = 0, i = 0, inexact = 0;
  if (n != rn) {
    fprintf(stderr, "%s: %d timesteps, diffusers %d\n", name, n, rn);
    check_failures++;
    return;
  }
  for (const cJSON *v = rts->child; v; v = v->next, i++) {
    double want = v->valuedouble, got = ts[i];
    if (s->timesteps_dtype == SDR_F32)
      want = (float)want; /* written in float32's shortest form */
    int ok = approx_timesteps ? fabs(got - want) <= TOL * fmax(fabs(want), 1) : got == want;
    if (!ok && bad++ < 4)
      fprintf(stderr, "  %s timesteps[%d]: ours %.17g, diffusers %.17g\n", name, i, got, want);
    inexact += got != want;
  }
  if (inexact && getenv("SDREPL_TEST_VERBOSE"))
    printf("  %s: %d timesteps agree within the tolerance, not bit for bit\n", name, inexact);
  if (bad) {
    fprintf(stderr, "%s: %d timesteps differ\n", name, bad);
    check_failures++;
  }
  const char *dt = str(ref, "timesteps_dtype");
  if (dt && strcmp(dt, dtype_name(sdr_scheduler_timesteps_dtype(s))) != 0) {
    fprintf(stderr, "%s: timesteps are %s, diffusers' %s\n", name,
            dtype_name(sdr_scheduler_timesteps_dtype(s)), dt);
    check_failures++;
  }
  const cJSON *rsg = item(ref, "sigmas");
  int ns;
  const float *sg = sdr_scheduler_sigmas(s, &ns);
  if (rsg) {
    int m = cJSON_GetArraySize(rsg);
    if (m != ns) {
      fprintf(stderr, "%s: %d sigmas, diffusers %d\n", name, ns, m);
      check_failures++;
    } else {
      float *want = malloc(sizeof(float) * (size_t)(m + 1));
      i = 0;
      for (const cJSON *v = rsg->child; v; v = v->next)
        want[i++] = (float)v->valuedouble;
      char what[160];
      snprintf(what, sizeof what, "%s sigmas", name);
      compare(what, sg, want, (size_t)m, &per_class[s->kind]);
      free(want);
    }
  }
  float ins = (float)sdr_scheduler_init_noise_sigma(s),
        rins = (float)num(ref, "init_noise_sigma", 0);
  char what[160];
  snprintf(what, sizeof what, "%s init_noise_sigma", name);
  compare(what, &ins, &rins, 1, NULL);
}

/* Timesteps that go through logarithms of float32 sigmas. */
static int approx_timesteps(const cJSON *kwargs) {
  return cJSON_IsTrue(item(kwargs, "use_karras_sigmas")) ||
         cJSON_IsTrue(item(kwargs, "use_lu_lambdas")) ||
         (str(kwargs, "interpolation_type") &&
          strcmp(str(kwargs, "interpolation_type"), "log_linear") == 0);
}

/* ---- a run ---- */

static void run_case(const cJSON *c) {
  const char *name = str(c, "name"), *cls = str(c, "class");
  int kind = sdr_scheduler_kind_from_name(cls);
  stats before = kind >= 0 ? per_class[kind] : (stats){0};
  const cJSON *kwargs = item(c, "kwargs");
  int steps = (int)num(c, "steps", 0), small = cJSON_IsTrue(item(c, "small"));
  int i2i = item(c, "strength") != NULL;
  double eta = num(c, "eta", 0);
  sdr_scheduler *s = make(cls, kwargs);
  if (!s)
    return;
  if (sdr_scheduler_set_timesteps(s, steps) != 0) {
    fprintf(stderr, "%s: set_timesteps: %s\n", name, sdr_last_error());
    check_failures++;
    sdr_scheduler_free(s);
    return;
  }
  /* as diffusers' config after set_timesteps (DPM-Solver singlestep's may change there) */
  if (str(c, "config"))
    check_config(name, s, str(c, "config"));
  check_schedule(name, s, c, approx_timesteps(kwargs));

  size_t n, nw;
  float *base = load(small ? "base_small" : "base", &n), *w = load(small ? "w_small" : "w", &nw);
  const float *prev = NULL, *scaled = NULL;
  float *prev_f = load(str(c, "prev"), NULL);
  float *scaled_f = str(c, "scaled") ? load(str(c, "scaled"), NULL) : NULL;
  /* pred_original_sample at the same steps, for the classes whose output has one */
  float *x0_f = str(c, "x0") ? load(str(c, "x0"), NULL) : NULL;
  prev = prev_f, scaled = scaled_f;
  int64_t shape[4] = {1, 4, small ? 4 : 8, small ? 4 : 8};
  sdr_tensor x = new_tensor(shape), x_in = new_tensor(shape), mo = new_tensor(shape),
             out = new_tensor(shape), x0 = new_tensor(shape);
  sdr_generator g;
  sdr_generator_init(&g, SDR_GENERATOR_CPU);
  sdr_generator_manual_seed(&g, (uint64_t)num(c, "seed", num(c, "global_seed", 0)));
  int has_gen = item(c, "seed") != NULL || item(c, "global_seed") != NULL;
  /* a run without a generator drew from torch's default one: DPMSolverSDEScheduler's seed */
  if (item(c, "global_seed"))
    sdr_scheduler_set_default_generator(s, &g);
  char what[200];

  /* the timesteps of the run: all, or img2img's slice with its begin index and add_noise */
  int nt;
  const double *all = sdr_scheduler_timesteps(s, &nt);
  int start = 0;
  CHECK((x0_f != NULL) == (sdr_scheduler_has_pred_original(s) != 0));
  if (!base || !w || !prev)
    goto done;
  if (i2i) {
    float *noise = load("noise_small", NULL), *noised = load(str(c, "noised"), NULL);
    int t_start = (int)num(c, "t_start", 0);
    int want = (int)steps - (int)(steps * num(c, "strength", 0));
    CHECK(t_start == (want > 0 ? want : 0));
    start = t_start * sdr_scheduler_order(s); /* Heun's pairs: diffusers' t_start * order */
    const cJSON *sl = item(c, "slice");
    CHECK(cJSON_GetArraySize(sl) == nt - start);
    int k = start;
    for (const cJSON *v = sl->child; v && k < nt; v = v->next, k++)
      CHECK((float)v->valuedouble == (float)all[k]);
    sdr_tensor nz = new_tensor(shape);
    if (noise && noised) {
      memcpy(x.data, base, n * sizeof(float));
      memcpy(nz.data, noise, n * sizeof(float));
      CHECK(sdr_scheduler_set_begin_index(s, start) == 0);
      CHECK(sdr_scheduler_add_noise(s, be, &x, &x, &nz, all[start]) == 0);
      snprintf(what, sizeof what, "%s add_noise", name);
      compare(what, x.data, noised, n, &per_class[s->kind]);
    }
    sdr_free(be, nz.data);
    free(noise), free(noised);
  } else {
    CHECK(sdr_affine(be, &x,
                     &(sdr_tensor){.dtype = SDR_F32,
                                   .device = SDR_DEVICE_CPU,
                                   .ndim = 4,
                                   .shape = {shape[0], shape[1], shape[2], shape[3]},
                                   .data = base},
                     (float)sdr_scheduler_init_noise_sigma(s), 0.0f) == 0);
  }

  const cJSON *rec = item(c, "rec_steps");
  int r = 0, nscaled = 0, in_place = (int)(strlen(name) % 2); /* both ways across cases */
  for (int i = start; i < nt; i++) {
    double t = all[i];
    int k = i - start;
    if (sdr_scheduler_scale_model_input(s, be, &x_in, &x, t) != 0) {
      fprintf(stderr, "%s: scale_model_input at step %d: %s\n", name, k, sdr_last_error());
      check_failures++;
      break;
    }
    model_fn(mo.data, x_in.data, w, n, t);
    sdr_tensor *dst = in_place ? &x : &out;
    sdr_arena_reset(&arena);
    sdr_generator *gp = &g;
    if (sdr_scheduler_step_full(s, be, &arena, dst, x0_f ? &x0 : NULL, &mo, t, &x,
                                has_gen ? &gp : NULL, has_gen ? 1 : 0, eta) != 0) {
      fprintf(stderr, "%s: step %d (t=%g): %s\n", name, k, t, sdr_last_error());
      check_failures++;
      break;
    }
    if (!in_place)
      memcpy(x.data, out.data, n * sizeof(float));
    const cJSON *rk = cJSON_GetArrayItem(rec, r);
    if (rk && (int)rk->valuedouble == k) {
      if (scaled && nscaled < 2) {
        snprintf(what, sizeof what, "%s scale_model_input at step %d", name, k);
        compare(what, x_in.data, scaled + (size_t)nscaled * n, n, &per_class[s->kind]);
        nscaled++;
      }
      snprintf(what, sizeof what, "%s prev_sample at step %d (t=%g)", name, k, t);
      if (compare(what, x.data, prev + (size_t)r * n, n, &per_class[s->kind]))
        break; /* the first step that differs is the one to look at */
      snprintf(what, sizeof what, "%s pred_original_sample at step %d (t=%g)", name, k, t);
      if (x0_f && compare(what, x0.data, x0_f + (size_t)r * n, n, &per_class[s->kind]))
        break;
      r++;
    }
  }
  CHECK(r == cJSON_GetArraySize(rec) || check_failures > 0);
  if (has_gen && item(c, "rng_after")) {
    float next[4], want[4];
    sdr_generator_randn_f32(&g, next, 4);
    int k = 0;
    for (const cJSON *v = item(c, "rng_after")->child; v && k < 4; v = v->next)
      want[k++] = (float)v->valuedouble;
    for (k = 0; k < 4; k++)
      if (next[k] != want[k]) {
        fprintf(stderr,
                "%s: the generator's next draw is %.9g, diffusers' %.9g: the steps "
                "drew a different amount of noise\n",
                name, next[k], want[k]);
        check_failures++;
        break;
      }
  }
done:
  if (getenv("SDREPL_TEST_VERBOSE") && kind >= 0) { /* which cases are not bit-exact */
    stats *st = &per_class[kind];
    printf("  %-24s %6ld values, %6ld not bit-exact\n", name, st->n - before.n,
           (st->n - st->n_exact) - (before.n - before.n_exact));
  }
  sdr_free(be, x.data), sdr_free(be, x_in.data), sdr_free(be, mo.data), sdr_free(be, out.data);
  sdr_free(be, x0.data), free(x0_f);
  free(base), free(w), free(prev_f), free(scaled_f);
  sdr_scheduler_free(s);
}

/* ---- alphas_cumprod, add_noise, timestep tables ---- */

static void check_alphas(void) {
  for (const cJSON *c = item(manifest, "alphas_cumprod")->child; c; c = c->next) {
    sdr_scheduler *s = make(str(c, "class"), item(c, "kwargs"));
    size_t n;
    float *want = load(str(c, "file"), &n);
    if (s && want) {
      int bad = 0;
      CHECK((size_t)s->n_train == n);
      for (size_t i = 0; i < n && i < (size_t)s->n_train; i++)
        if (s->alphas_cumprod[i] != want[i] && bad++ < 4)
          fprintf(stderr, "  %s alphas_cumprod[%zu]: ours %.9g, torch %.9g\n", str(c, "file"), i,
                  s->alphas_cumprod[i], want[i]);
      if (bad) {
        fprintf(stderr, "%s: %d of %zu alphas_cumprod differ (expected bit for bit)\n",
                str(c, "file"), bad, n);
        check_failures++;
      }
    }
    free(want);
    sdr_scheduler_free(s);
  }
}

static void check_add_noise(void) {
  size_t n;
  float *base = load("base", &n), *noise = load("noise", NULL);
  int64_t shape[4] = {1, 4, 8, 8};
  sdr_tensor x = new_tensor(shape), nz = new_tensor(shape), out = new_tensor(shape);
  for (const cJSON *c = item(manifest, "add_noise")->child; base && noise && c; c = c->next) {
    sdr_scheduler *s = make(str(c, "class"), NULL);
    float *want = load(str(c, "out"), NULL);
    if (s && want && sdr_scheduler_set_timesteps(s, 50) == 0) {
      int nt, start = (int)num(c, "t_start", 0) * sdr_scheduler_order(s);
      const double *ts = sdr_scheduler_timesteps(s, &nt);
      CHECK(cJSON_GetArraySize(item(c, "slice")) == nt - start);
      CHECK(start < nt && (float)item(c, "slice")->child->valuedouble == (float)ts[start]);
      memcpy(x.data, base, n * sizeof(float));
      memcpy(nz.data, noise, n * sizeof(float));
      CHECK(sdr_scheduler_set_begin_index(s, start) == 0);
      CHECK(sdr_scheduler_add_noise(s, be, &out, &x, &nz, ts[start]) == 0);
      compare(str(c, "out"), out.data, want, n, &per_class[s->kind]);
    }
    free(want);
    sdr_scheduler_free(s);
  }
  sdr_free(be, x.data), sdr_free(be, nz.data), sdr_free(be, out.data);
  free(base), free(noise);
}

static void check_timestep_tables(void) {
  for (const cJSON *c = item(manifest, "timesteps")->child; c; c = c->next) {
    cJSON *kw = cJSON_CreateObject();
    cJSON_AddStringToObject(kw, "timestep_spacing", str(c, "spacing"));
    sdr_scheduler *s = make(str(c, "class"), kw);
    char name[128];
    snprintf(name, sizeof name, "%s %s %d steps", str(c, "class"), str(c, "spacing"),
             (int)num(c, "steps", 0));
    if (s && sdr_scheduler_set_timesteps(s, (int)num(c, "steps", 0)) == 0)
      check_schedule(name, s, c, 0);
    else
      CHECK(!"set_timesteps");
    sdr_scheduler_free(s);
    cJSON_Delete(kw);
  }
}

/* ---- errors a user can cause ---- */

static void expect_load_error(const char *json, int kind, const char *kwargs, const char *needle) {
  sdr_scheduler *s = sdr_scheduler_from_config(json, kind, kwargs);
  if (s || !strstr(sdr_last_error(), needle)) {
    fprintf(stderr, "loading %s %s: expected an error with \"%s\", got %s\n", json,
            kwargs ? kwargs : "", needle, s ? "a scheduler" : sdr_last_error());
    check_failures++;
  }
  sdr_scheduler_free(s);
}

static void check_errors(void) {
  expect_load_error("{\"_class_name\": \"FooScheduler\"}", -1, NULL, "unknown scheduler class");
  expect_load_error("{\"beta_start\": 0.1}", -1, NULL, "_class_name");
  expect_load_error("{\"_class_name\": \"PNDMScheduler\"", -1, NULL, "not valid JSON");
  expect_load_error("[1, 2]", SDR_SCHED_PNDM, NULL, "expected a JSON object");
  expect_load_error(pndm_config, SDR_SCHED_PNDM, "{\"beta_schedule\": \"cubic\"}",
                    "beta_schedule \"cubic\" is not supported");
  expect_load_error(pndm_config, SDR_SCHED_DDIM, "{\"timestep_spacing\": \"even\"}",
                    "timestep_spacing \"even\"");
  expect_load_error(pndm_config, SDR_SCHED_PNDM, "{\"prediction_type\": \"sample\"}",
                    "prediction_type \"sample\" is not supported (epsilon, v_prediction)");
  expect_load_error(pndm_config, SDR_SCHED_EULER_ANCESTRAL, "{\"prediction_type\": \"sample\"}",
                    "prediction_type");
  expect_load_error(pndm_config, SDR_SCHED_DDIM,
                    "{\"thresholding\": true, \"dynamic_thresholding_ratio\": 1.5}",
                    "quantile() q must be in the range [0, 1] but got 1.5");
  expect_load_error(pndm_config, SDR_SCHED_DPMSOLVER_MULTISTEP, "{\"algorithm_type\": \"unipc\"}",
                    "algorithm_type \"unipc\"");
  expect_load_error(pndm_config, SDR_SCHED_DPMSOLVER_MULTISTEP, "{\"solver_order\": 4}",
                    "solver_order 4");
  expect_load_error(pndm_config, SDR_SCHED_DPMSOLVER_MULTISTEP,
                    "{\"algorithm_type\": \"dpmsolver\"}", "final_sigmas_type");
  /* "deis" becomes dpmsolver++, but diffusers checks the name it was given */
  expect_load_error(pndm_config, SDR_SCHED_DPMSOLVER_MULTISTEP, "{\"algorithm_type\": \"deis\"}",
                    "final_sigmas_type \"zero\" is not supported for algorithm_type deis");
  expect_load_error(pndm_config, SDR_SCHED_DPMSOLVER_SINGLESTEP, "{\"algorithm_type\": \"deis\"}",
                    "final_sigmas_type \"zero\" is not supported for algorithm_type deis");
  expect_load_error(pndm_config, SDR_SCHED_DPMSOLVER_MULTISTEP,
                    "{\"variance_type\": \"learned_range\"}", "variance_type");
  expect_load_error(pndm_config, SDR_SCHED_EULER, "{\"interpolation_type\": \"cubic\"}",
                    "interpolation_type");
  /* UniPC: what diffusers has and this one does not */
  expect_load_error(pndm_config, SDR_SCHED_UNIPC_MULTISTEP, "{\"solver_type\": \"bh3\"}",
                    "solver_type \"bh3\" is not supported (bh1, bh2)");
  expect_load_error(pndm_config, SDR_SCHED_UNIPC_MULTISTEP, "{\"solver_order\": 4}",
                    "solver_order 4 is not supported (1, 2, 3)");
  expect_load_error(pndm_config, SDR_SCHED_UNIPC_MULTISTEP, "{\"solver_order\": 0}",
                    "solver_order 0");
  expect_load_error(pndm_config, SDR_SCHED_UNIPC_MULTISTEP,
                    "{\"solver_p\": {\"_class_name\": \"DDIMScheduler\"}}",
                    "solver_p is not supported");
  expect_load_error(pndm_config, SDR_SCHED_UNIPC_MULTISTEP, "{\"disable_corrector\": null}",
                    "\"disable_corrector\": expected a list");
  expect_load_error(pndm_config, SDR_SCHED_UNIPC_MULTISTEP, "{\"disable_corrector\": [\"2\"]}",
                    "disable_corrector must list step numbers");
  expect_load_error(pndm_config, SDR_SCHED_UNIPC_MULTISTEP, "{\"prediction_type\": \"x0\"}",
                    "prediction_type \"x0\" is not supported (epsilon, v_prediction, sample)");
  expect_load_error(pndm_config, SDR_SCHED_UNIPC_MULTISTEP, "{\"timestep_spacing\": \"even\"}",
                    "timestep_spacing \"even\"");
  /* Heun and DDPM: what diffusers 0.27.2 has and these do not */
  expect_load_error(pndm_config, SDR_SCHED_HEUN, "{\"beta_schedule\": \"exp\"}",
                    "beta_schedule \"exp\" is not supported");
  expect_load_error(pndm_config, SDR_SCHED_HEUN, "{\"prediction_type\": \"x0\"}",
                    "prediction_type \"x0\" is not supported (epsilon, v_prediction, sample)");
  expect_load_error(pndm_config, SDR_SCHED_HEUN, "{\"timestep_spacing\": \"even\"}",
                    "timestep_spacing \"even\"");
  expect_load_error(pndm_config, SDR_SCHED_DDPM, "{\"variance_type\": \"learned\"}",
                    "variance_type \"learned\" is not supported");
  expect_load_error(pndm_config, SDR_SCHED_DDPM, "{\"variance_type\": \"learned_range\"}",
                    "variance_type \"learned_range\" is not supported");
  expect_load_error(pndm_config, SDR_SCHED_DDPM, "{\"variance_type\": null}",
                    "variance_type None is not supported");
  expect_load_error(pndm_config, SDR_SCHED_DDPM, "{\"variance_type\": \"fixed_large_log\"}",
                    "gives NaN on every step");
  expect_load_error(pndm_config, SDR_SCHED_DDPM, "{\"beta_schedule\": \"sigmoid\"}",
                    "beta_schedule \"sigmoid\" is not supported");
  expect_load_error(pndm_config, SDR_SCHED_DDPM, "{\"prediction_type\": \"x0\"}",
                    "prediction_type \"x0\"");
  expect_load_error(pndm_config, SDR_SCHED_LMS, "{\"steps_offset\": \"one\"}",
                    "\"steps_offset\": expected an integer");
  expect_load_error(pndm_config, SDR_SCHED_DDIM,
                    "{\"num_train_timesteps\": 3, \"trained_betas\": [0.1, 0.2]}",
                    "trained_betas has 2 values");
  /* EDM's classes: diffusers fails at the first step for a sample prediction, with None
   * sigmas in its first set_timesteps; these fail when made */
  expect_load_error(pndm_config, SDR_SCHED_EDM_EULER, "{\"prediction_type\": \"sample\"}",
                    "prediction_type \"sample\" is not supported (epsilon, v_prediction)");
  expect_load_error(pndm_config, SDR_SCHED_EDM_EULER, "{\"sigma_min\": null}",
                    "\"sigma_min\" is null, expected a number");
  expect_load_error(pndm_config, SDR_SCHED_EDM_EULER, "{\"sigma_min\": 5, \"sigma_max\": 2}",
                    "0 < sigma_min < sigma_max");
  expect_load_error(pndm_config, SDR_SCHED_EDM_DPMSOLVER_MULTISTEP, "{\"rho\": 0}",
                    "rho is 0, expected a positive number");
  expect_load_error(pndm_config, SDR_SCHED_EDM_DPMSOLVER_MULTISTEP,
                    "{\"algorithm_type\": \"dpmsolver\"}",
                    "algorithm_type \"dpmsolver\" is not supported (dpmsolver++, sde-dpmsolver++)");
  expect_load_error(pndm_config, SDR_SCHED_EDM_DPMSOLVER_MULTISTEP,
                    "{\"algorithm_type\": \"deis\"}",
                    "final_sigmas_type \"zero\" is not supported");
  expect_load_error(pndm_config, SDR_SCHED_EDM_DPMSOLVER_MULTISTEP,
                    "{\"final_sigmas_type\": \"denoise_to_zero\"}",
                    "final_sigmas_type \"denoise_to_zero\" is not supported");
  expect_load_error("{\"_class_name\": \"EDMDPMSolverMultistepScheduler\", \"solver_order\": 4}",
                    -1, NULL, "solver_order 4 is not supported");
  expect_load_error("{\"_class_name\": \"DPMSolverSDEScheduler\", \"noise_sampler_seed\": -1}", -1,
                    NULL, "noise_sampler_seed must be null or a whole number");
  expect_load_error(pndm_config, SDR_SCHED_DPMSOLVER_SDE, "{\"noise_sampler_seed\": 1.5}",
                    "noise_sampler_seed must be null or a whole number");
  expect_load_error(pndm_config, SDR_SCHED_DPMSOLVER_SDE, "{\"prediction_type\": \"sample\"}",
                    "prediction_type");

  sdr_scheduler *s = sdr_scheduler_load(pndm_config, -1);
  CHECK(s && sdr_scheduler_kind_of(s) == SDR_SCHED_PNDM);
  if (!s)
    return;
  int64_t shape[4] = {1, 4, 8, 8}, other[4] = {1, 4, 4, 8};
  sdr_tensor x = new_tensor(shape), y = new_tensor(other);
  sdr_fill(be, &x, 0.5f);
  /* step before set_timesteps, as diffusers refuses */
  CHECK(sdr_scheduler_step(s, be, &arena, &x, &x, 1, &x, NULL, 0) != 0);
  CHECK(strstr(sdr_last_error(), "set_timesteps") != NULL);
  CHECK(sdr_scheduler_set_timesteps(s, 0) != 0);
  CHECK(strstr(sdr_last_error(), "at least 1") != NULL);
  CHECK(sdr_scheduler_set_timesteps(s, -3) != 0);
  CHECK(sdr_scheduler_set_timesteps(s, 1001) != 0);
  CHECK(sdr_scheduler_set_timesteps(s, 10) == 0);
  CHECK(sdr_scheduler_step(s, be, &arena, &x, &y, 901, &x, NULL, 0) != 0);   /* shapes */
  CHECK(sdr_scheduler_step(s, be, &arena, &x, &x, 901.5, &x, NULL, 0) != 0); /* not a timestep */
  CHECK(sdr_scheduler_add_noise(s, be, &x, &x, &x, 5000) != 0);
  sdr_scheduler *e = sdr_scheduler_from_scheduler(s, SDR_SCHED_EULER);
  CHECK(e != NULL);
  if (e) {
    /* PNDM's defaulted "leading" does not follow into Euler (diffusers 0.27) */
    CHECK(strstr(sdr_scheduler_config_json(e), "\"linspace\"") != NULL);
    CHECK(strstr(sdr_scheduler_config_json(e), "\"EulerDiscreteScheduler\"") != NULL);
    CHECK(sdr_scheduler_set_timesteps(e, 10) == 0);
    CHECK(sdr_scheduler_step(e, be, &arena, &x, &x, 500, &x, NULL, 0) != 0);
    CHECK(strstr(sdr_last_error(), "not one of the scheduler's timesteps") != NULL);
    sdr_scheduler *ea = sdr_scheduler_from_scheduler(e, SDR_SCHED_EULER_ANCESTRAL);
    CHECK(ea && sdr_scheduler_set_timesteps(ea, 10) == 0);
    if (ea) { /* it draws noise: no generator is an error, not a crash */
      CHECK(sdr_scheduler_step(ea, be, &arena, &x, &x, 999, &x, NULL, 0) != 0);
      CHECK(strstr(sdr_last_error(), "generator") != NULL);
    }
    sdr_scheduler_free(ea);
    /* DPM-Solver SDE's seed comes from the default generator: none given is an error */
    sdr_scheduler *sde = sdr_scheduler_from_scheduler(e, SDR_SCHED_DPMSOLVER_SDE);
    CHECK(sde && sdr_scheduler_set_timesteps(sde, 10) == 0);
    if (sde) {
      CHECK(sdr_scheduler_step(sde, be, &arena, &x, &x, 999, &x, NULL, 0) != 0);
      CHECK(strstr(sdr_last_error(), "default generator") != NULL);
    }
    sdr_scheduler_free(sde);
  }
  sdr_scheduler_free(e);
  /* Python's -Infinity in a config, written back the same way */
  sdr_scheduler *d = sdr_scheduler_from_config(
      "{\"_class_name\": \"DPMSolverMultistepScheduler\", \"lambda_min_clipped\": -Infinity, "
      "\"note\": \"Infinity in a string stays\"}",
      -1, NULL);
  CHECK(d != NULL);
  if (d) {
    CHECK(strstr(sdr_scheduler_config_json(d), "-Infinity") != NULL);
    CHECK(strstr(sdr_scheduler_config_json(d), "Infinity in a string stays") != NULL);
    CHECK(sdr_scheduler_set_timesteps(d, 5) == 0);
  }
  sdr_scheduler_free(d);
  CHECK(sdr_scheduler_kind_from_name("PNDMScheduler") == SDR_SCHED_PNDM);
  CHECK(sdr_scheduler_kind_from_name("UniPCMultistepScheduler") == SDR_SCHED_UNIPC_MULTISTEP);
  CHECK(sdr_scheduler_kind_from_name("HeunDiscreteScheduler") == SDR_SCHED_HEUN);
  CHECK(sdr_scheduler_kind_from_name("DDPMScheduler") == SDR_SCHED_DDPM);
  CHECK(sdr_scheduler_kind_from_name("KDPM2DiscreteScheduler") == SDR_SCHED_KDPM2);
  CHECK(sdr_scheduler_kind_from_name("KDPM2AncestralDiscreteScheduler") ==
        SDR_SCHED_KDPM2_ANCESTRAL);
  CHECK(sdr_scheduler_kind_from_name("DEISMultistepScheduler") == SDR_SCHED_DEIS_MULTISTEP);
  CHECK(sdr_scheduler_kind_from_name("DPMSolverSinglestepScheduler") ==
        SDR_SCHED_DPMSOLVER_SINGLESTEP);
  CHECK(sdr_scheduler_kind_from_name("LCMScheduler") == SDR_SCHED_LCM);
  CHECK(sdr_scheduler_kind_from_name("EDMEulerScheduler") == SDR_SCHED_EDM_EULER);
  CHECK(sdr_scheduler_kind_from_name("EDMDPMSolverMultistepScheduler") ==
        SDR_SCHED_EDM_DPMSOLVER_MULTISTEP);
  CHECK(sdr_scheduler_kind_from_name("TCDScheduler") == SDR_SCHED_TCD);
  CHECK(sdr_scheduler_kind_from_name("DPMSolverSDEScheduler") == SDR_SCHED_DPMSOLVER_SDE);
  CHECK(sdr_scheduler_kind_from_name("DDIMInverseScheduler") == SDR_SCHED_DDIM_INVERSE);
  CHECK_STR(sdr_scheduler_class_name(SDR_SCHED_DPMSOLVER_MULTISTEP), "DPMSolverMultistepScheduler");
  sdr_free(be, x.data), sdr_free(be, y.data);
  sdr_scheduler_free(s);
}

/* ---- step counting and the history's memory ---- */

static void check_state(void) {
  int64_t shape[4] = {1, 4, 8, 8};
  sdr_tensor x = new_tensor(shape);
  sdr_fill(be, &x, 0.25f);
  /* index_for_timestep takes the second of two equal timesteps: DPM++ with Karras sigmas
   * over 50 steps ends 2, 1, 1, 0 (indices 46..49), so a run started at t=1 is at 48 */
  cJSON *kw = cJSON_Parse("{\"use_karras_sigmas\": true}");
  sdr_scheduler *d = make("DPMSolverMultistepScheduler", kw);
  cJSON_Delete(kw);
  if (d && sdr_scheduler_set_timesteps(d, 50) == 0) {
    int n;
    const double *ts = sdr_scheduler_timesteps(d, &n);
    CHECK(n == 50 && ts[47] == 1 && ts[48] == 1);
    CHECK(sdr_scheduler_step_index(d) == -1);
    CHECK(sdr_scheduler_step(d, be, &arena, &x, &x, 1, &x, NULL, 0) == 0);
    CHECK(sdr_scheduler_step_index(d) == 49);
    /* set_begin_index wins over the timestep's own index, and set_timesteps forgets it */
    CHECK(sdr_scheduler_set_timesteps(d, 50) == 0);
    CHECK(sdr_scheduler_set_begin_index(d, 10) == 0 && sdr_scheduler_begin_index(d) == 10);
    CHECK(sdr_scheduler_step(d, be, &arena, &x, &x, 1, &x, NULL, 0) == 0);
    CHECK(sdr_scheduler_step_index(d) == 11);
    CHECK(sdr_scheduler_set_begin_index(d, 50) != 0);
    CHECK(sdr_scheduler_set_timesteps(d, 50) == 0 && sdr_scheduler_begin_index(d) == -1);
  }
  sdr_scheduler_free(d);

  /* UniPC: a sliced run starts at its begin index without a corrector (no last sample);
   * a run whose history was released refuses to go on until set_timesteps */
  sdr_scheduler *u = make("UniPCMultistepScheduler", NULL);
  if (u && sdr_scheduler_set_timesteps(u, 10) == 0) {
    int n;
    const double *ts = sdr_scheduler_timesteps(u, &n);
    CHECK(n == 10 && sdr_scheduler_timesteps_dtype(u) == SDR_I64);
    CHECK(sdr_scheduler_sigmas(u, &n) != NULL && n == 11);
    CHECK(sdr_scheduler_set_begin_index(u, 3) == 0);
    CHECK(sdr_scheduler_step(u, be, &arena, &x, &x, ts[3], &x, NULL, 0) == 0);
    CHECK(sdr_scheduler_step(u, be, &arena, &x, &x, ts[4], &x, NULL, 0) == 0);
    CHECK(sdr_scheduler_step_index(u) == 5);
    sdr_scheduler_release(u);
    CHECK(sdr_scheduler_step(u, be, &arena, &x, &x, ts[5], &x, NULL, 0) != 0);
    CHECK(strstr(sdr_last_error(), "set_timesteps") != NULL);
    CHECK(sdr_scheduler_set_timesteps(u, 10) == 0);
    ts = sdr_scheduler_timesteps(u, &n); /* set_timesteps made new ones */
    CHECK(sdr_scheduler_step(u, be, &arena, &x, &x, ts[0], &x, NULL, 0) == 0);
    CHECK(sdr_scheduler_step_index(u) == 1 && sdr_scheduler_begin_index(u) == -1);
  }
  sdr_scheduler_free(u);
  /* DPM-Solver's SDE forms have no third-order update: a run fails where it needs one, as
   * diffusers' does, and not before (4 steps never reach it) */
  cJSON *sde3 = cJSON_Parse("{\"algorithm_type\": \"sde-dpmsolver++\", \"solver_order\": 3}");
  sdr_scheduler *d3 = make("DPMSolverMultistepScheduler", sde3);
  cJSON_Delete(sde3);
  sdr_generator g;
  sdr_generator_init(&g, SDR_GENERATOR_CPU);
  for (int steps = 4; d3 && steps <= 6; steps += 2) {
    int n;
    CHECK(sdr_scheduler_set_timesteps(d3, steps) == 0);
    const double *ts = sdr_scheduler_timesteps(d3, &n);
    int i = 0;
    while (i < n && sdr_scheduler_step(d3, be, &arena, &x, &x, ts[i], &x, &g, 0) == 0)
      i++;
    CHECK(i == (steps == 4 ? 4 : 2));
    if (steps == 6)
      CHECK(strstr(sdr_last_error(), "solver_order 3 has no sde-dpmsolver++ update") != NULL &&
            sdr_scheduler_step_index(d3) == 2);
    sdr_fill(be, &x, 0.25f);
  }
  sdr_scheduler_free(d3);
  /* variance_type matters to DPM-Solver only for epsilon predictions */
  cJSON *vlr = cJSON_Parse("{\"variance_type\": \"learned_range\", \"prediction_type\": "
                           "\"v_prediction\"}");
  sdr_scheduler *dv = make("DPMSolverMultistepScheduler", vlr);
  cJSON_Delete(vlr);
  CHECK(dv != NULL);
  sdr_scheduler_free(dv);
  /* an empty list may come as {} (from a Lua table) */
  cJSON *empty = cJSON_Parse("{\"disable_corrector\": {}}");
  sdr_scheduler *uc = make("UniPCMultistepScheduler", empty);
  cJSON_Delete(empty);
  CHECK(uc != NULL);
  sdr_scheduler_free(uc);
  /* DPM-Solver keeps a history too: released in the middle of a run, it refuses as well */
  sdr_scheduler *dpm = make("DPMSolverMultistepScheduler", NULL);
  if (dpm && sdr_scheduler_set_timesteps(dpm, 10) == 0) {
    int n;
    const double *ts = sdr_scheduler_timesteps(dpm, &n);
    CHECK(sdr_scheduler_step(dpm, be, &arena, &x, &x, ts[0], &x, NULL, 0) == 0);
    CHECK(sdr_scheduler_step(dpm, be, &arena, &x, &x, ts[1], &x, NULL, 0) == 0);
    sdr_scheduler_release(dpm);
    CHECK(sdr_scheduler_step(dpm, be, &arena, &x, &x, ts[2], &x, NULL, 0) != 0);
    CHECK(strstr(sdr_last_error(), "set_timesteps") != NULL);
  }
  sdr_scheduler_free(dpm);

  /* Heun: order 2, n steps are 2n - 1 calls; __init__ already set timesteps, so a step
   * may come first, as in diffusers; a pair's first half released before its second
   * refuses to go on; set_timesteps starts over in the first half */
  sdr_scheduler *h = make("HeunDiscreteScheduler", NULL);
  if (h) {
    int n;
    CHECK(sdr_scheduler_order(h) == 2 && sdr_scheduler_num_inference_steps(h) == 1000);
    CHECK(sdr_scheduler_timesteps(h, &n) != NULL && n == 1999);
    CHECK(sdr_scheduler_step(h, be, &arena, &x, &x, 999, &x, NULL, 0) == 0);
    CHECK(sdr_scheduler_set_timesteps(h, 5) == 0);
    const double *ts = sdr_scheduler_timesteps(h, &n);
    CHECK(n == 9 && ts[1] == ts[2] && sdr_scheduler_sigmas(h, &n) != NULL && n == 10);
    CHECK(sdr_scheduler_step(h, be, &arena, &x, &x, ts[0], &x, NULL, 0) == 0);
    CHECK(sdr_scheduler_step(h, be, &arena, &x, &x, ts[1], &x, NULL, 0) == 0);
    CHECK(sdr_scheduler_step(h, be, &arena, &x, &x, ts[2], &x, NULL, 0) == 0);
    sdr_scheduler_release(h);
    CHECK(sdr_scheduler_step(h, be, &arena, &x, &x, ts[3], &x, NULL, 0) != 0);
    CHECK(strstr(sdr_last_error(), "set_timesteps") != NULL);
    CHECK(sdr_scheduler_set_timesteps(h, 5) == 0);
    ts = sdr_scheduler_timesteps(h, &n);
    CHECK(sdr_scheduler_set_begin_index(h, 4) == 0);
    CHECK(sdr_scheduler_step(h, be, &arena, &x, &x, ts[4], &x, NULL, 0) == 0);
    CHECK(sdr_scheduler_step_index(h) == 5);
  }
  sdr_scheduler_free(h);
  /* KDPM2: the same two-call steps; released between a pair's halves, it refuses too */
  sdr_scheduler *k2 = make("KDPM2DiscreteScheduler", NULL);
  if (k2) {
    int n;
    CHECK(sdr_scheduler_order(k2) == 2 && sdr_scheduler_set_timesteps(k2, 5) == 0);
    const double *ts = sdr_scheduler_timesteps(k2, &n);
    CHECK(n == 9 && ts[1] != floor(ts[1]) && sdr_scheduler_sigmas(k2, &n) != NULL && n == 12);
    CHECK(sdr_scheduler_step(k2, be, &arena, &x, &x, ts[0], &x, NULL, 0) == 0);
    sdr_scheduler_release(k2);
    CHECK(sdr_scheduler_step(k2, be, &arena, &x, &x, ts[1], &x, NULL, 0) != 0);
    CHECK(strstr(sdr_last_error(), "set_timesteps") != NULL);
  }
  sdr_scheduler_free(k2);
  /* DPM-Solver singlestep: set_timesteps turns lower_order_final on in the config (the
   * last sigma is zero); a history released mid-group refuses to go on */
  sdr_scheduler *ss = make("DPMSolverSinglestepScheduler", NULL);
  if (ss) {
    int n;
    CHECK(strstr(sdr_scheduler_config_json(ss), "\"lower_order_final\":\tfalse") != NULL);
    CHECK(sdr_scheduler_set_timesteps(ss, 6) == 0);
    CHECK(strstr(sdr_scheduler_config_json(ss), "\"lower_order_final\":\ttrue") != NULL);
    const double *ts = sdr_scheduler_timesteps(ss, &n);
    CHECK(n == 6 && sdr_scheduler_step(ss, be, &arena, &x, &x, ts[0], &x, NULL, 0) == 0);
    sdr_scheduler_release(ss);
    CHECK(sdr_scheduler_step(ss, be, &arena, &x, &x, ts[1], &x, NULL, 0) != 0);
    CHECK(strstr(sdr_last_error(), "set_timesteps") != NULL);
  }
  sdr_scheduler_free(ss);
  /* DDPM: order 1; a step at t > 0 draws noise and needs a generator, one at t = 0 not */
  sdr_scheduler *dd = make("DDPMScheduler", NULL);
  if (dd && sdr_scheduler_set_timesteps(dd, 10) == 0) {
    CHECK(sdr_scheduler_order(dd) == 1 && sdr_scheduler_init_noise_sigma(dd) == 1.0);
    CHECK(sdr_scheduler_step(dd, be, &arena, &x, &x, 901, &x, NULL, 0) != 0);
    CHECK(strstr(sdr_last_error(), "generator") != NULL);
    CHECK(sdr_scheduler_step(dd, be, &arena, &x, &x, 0, &x, NULL, 0) == 0);
  }
  sdr_scheduler_free(dd);

  /* a run keeps its history on one backend: switching mid-run is an error, after
   * set_timesteps it is fine; release gives the memory back */
  sdr_backend *be2 = sdr_cpu_backend_create();
  sdr_arena arena2;
  sdr_arena_init(&arena2, be2);
  sdr_scheduler *p = sdr_scheduler_load(pndm_config, -1);
  sdr_tensor x2 =
      sdr_tensor_view(sdr_alloc(be2, sdr_tensor_nbytes(&x)), SDR_F32, SDR_DEVICE_CPU, 4, shape);
  sdr_fill(be2, &x2, 0.25f);
  if (p && be2 && sdr_scheduler_set_timesteps(p, 10) == 0) {
    CHECK(sdr_scheduler_step(p, be, &arena, &x, &x, 901, &x, NULL, 0) == 0);
    CHECK(sdr_scheduler_step(p, be2, &arena2, &x2, &x2, 801, &x2, NULL, 0) != 0);
    CHECK(strstr(sdr_last_error(), "set_timesteps") != NULL);
    CHECK(sdr_scheduler_set_timesteps(p, 10) == 0);
    CHECK(sdr_scheduler_step(p, be2, &arena2, &x2, &x2, 901, &x2, NULL, 0) == 0);
    sdr_scheduler_release(p); /* frees on be2 */
    CHECK(sdr_scheduler_set_timesteps(p, 10) == 0);
    CHECK(sdr_scheduler_step(p, be, &arena, &x, &x, 901, &x, NULL, 0) == 0);
    /* a batch of another shape mid-run is refused */
    int64_t two[4] = {2, 4, 8, 8};
    sdr_tensor y = new_tensor(two);
    sdr_fill(be, &y, 0.25f);
    CHECK(sdr_scheduler_step(p, be, &arena, &y, &y, 801, &y, NULL, 0) != 0);
    sdr_free(be, y.data);
  }
  sdr_scheduler_free(p); /* frees on be, before be goes */
  sdr_free(be2, x2.data);
  sdr_arena_free(&arena2);
  sdr_cpu_backend_destroy(be2);
  sdr_free(be, x.data);
}

/* Noise in float16 (a half pipeline's): each step draws torch's half normals, its own
 * stream, widened; the run ends where diffusers' does with the same noise. */
static void check_half_noise(void) {
  const cJSON *h = item(manifest, "half_noise");
  sdr_scheduler *s = h ? make(str(h, "class"), NULL) : NULL;
  int64_t shape[4] = {1, 4, 4, 4};
  sdr_tensor x = new_tensor(shape), x_in = new_tensor(shape), mo = new_tensor(shape);
  float *base = load("base_small", NULL), *w = load("w_small", NULL);
  float *want = h ? load(str(h, "final"), NULL) : NULL;
  sdr_generator g;
  sdr_generator_init(&g, SDR_GENERATOR_CPU);
  sdr_generator_manual_seed(&g, (uint64_t)num(h, "seed", 0));
  if (s && base && w && want && sdr_scheduler_set_timesteps(s, (int)num(h, "steps", 0)) == 0) {
    float sigma = (float)sdr_scheduler_init_noise_sigma(s);
    for (int i = 0; i < 64; i++)
      ((float *)x.data)[i] = base[i] * sigma;
    CHECK(sdr_scheduler_set_noise_dtype(s, SDR_I64) != 0);
    CHECK(sdr_scheduler_set_noise_dtype(s, SDR_F16) == 0);
    int n;
    const double *ts = sdr_scheduler_timesteps(s, &n);
    for (int i = 0; i < n; i++) {
      CHECK(sdr_scheduler_scale_model_input(s, be, &x_in, &x, ts[i]) == 0);
      model_fn(mo.data, x_in.data, w, 64, ts[i]);
      CHECK(sdr_scheduler_step(s, be, &arena, &x, &mo, ts[i], &x, &g, 0) == 0);
    }
    compare("Euler ancestral with float16 noise", x.data, want, 64,
            &per_class[SDR_SCHED_EULER_ANCESTRAL]);
    float next[4];
    sdr_generator_randn_f32(&g, next, 4);
    int k = 0;
    for (const cJSON *v = item(h, "rng_after")->child; v && k < 4; v = v->next, k++)
      if (next[k] != (float)v->valuedouble) {
        fprintf(stderr, "half noise: the generator's next draw is %.9g, torch's %.9g\n", next[k],
                v->valuedouble);
        check_failures++;
        break;
      }
  }
  sdr_scheduler_free(s);
  sdr_free(be, x.data), sdr_free(be, x_in.data), sdr_free(be, mo.data);
  free(base), free(w), free(want);
}

/* TCDScheduler.set_timesteps(n, original_inference_steps=..., strength=...): every training
 * timestep below T * strength a candidate (diffusers 0.27.2's numbers); step's own eta. */
static void check_tcd_original(void) {
  sdr_scheduler *s = make("TCDScheduler", NULL);
  CHECK(s != NULL);
  if (!s)
    return;
  static const struct {
    int n, original;
    double strength;
    double want[4];
  } cases[] = {{4, 50, 1.0, {999, 749, 499, 249}},
               {4, 50, 0.6, {599, 449, 299, 149}},
               {3, 7, 0.5, {499, 333, 166}}};
  for (int c = 0; c < 3; c++) {
    int n = 0;
    CHECK(sdr_scheduler_set_timesteps_original(s, cases[c].n, NULL, 0, cases[c].original,
                                               cases[c].strength) == 0);
    const double *ts = sdr_scheduler_timesteps(s, &n);
    CHECK(n == cases[c].n && sdr_scheduler_timesteps_dtype(s) == SDR_I64);
    for (int i = 0; i < n && i < cases[c].n; i++)
      CHECK(ts[i] == cases[c].want[i]);
  }
  CHECK(sdr_scheduler_set_timesteps_original(s, 8, NULL, 0, 7, 1.0) != 0 &&
        strstr(sdr_last_error(), "cannot be larger than `original_inference_steps`: 7"));
  CHECK(sdr_scheduler_default_eta(s) == 0.3);
  sdr_scheduler_free(s);
  s = make("LCMScheduler", NULL);
  CHECK(s && sdr_scheduler_default_eta(s) == 0);
  sdr_scheduler_free(s);
}

int main(void) {
  char *text = read_text(DIR "manifest.json");
  if (!text) {
    fprintf(stderr, "cannot read " DIR "manifest.json (run from the source root)\n");
    return 1;
  }
  manifest = cJSON_Parse(text);
  free(text);
  be = sdr_cpu_backend_create();
  if (!manifest || !be) {
    fprintf(stderr, "cannot start: %s\n", manifest ? sdr_last_error() : "bad manifest");
    return 1;
  }
  sdr_arena_init(&arena, be);
  pndm_config = str(manifest, "pndm_config");

  check_alphas();
  int cases = 0;
  for (const cJSON *c = item(manifest, "cases")->child; c; c = c->next, cases++)
    run_case(c);
  check_add_noise();
  check_timestep_tables();
  check_errors();
  check_state();
  check_half_noise();
  check_tcd_original();

  printf("%d cases; tolerance %g relative (to max(|diffusers|, 1))\n", cases, TOL);
  for (int k = 0; k < SDR_SCHED_COUNT; k++) {
    stats *st = &per_class[k];
    printf("  %-32s %7ld values, %5.1f%% bit-exact, largest error %.2g\n",
           sdr_scheduler_class_name((sdr_scheduler_kind)k), st->n,
           st->n ? 100.0 * st->n_exact / st->n : 0.0, st->max_err);
  }
  sdr_arena_free(&arena);
  sdr_cpu_backend_destroy(be);
  cJSON_Delete(manifest);
  return check_exit();
}

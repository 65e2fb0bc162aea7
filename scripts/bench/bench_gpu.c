/* scripts/bench/bench_gpu.c — the sdrepl side of scripts/bench_gpu.sh: Stable Diffusion 1.5
 * at float16 on one GPU, timed as scripts/bench/diffusers_gpu.py times diffusers.
 *
 *   bench_gpu MODEL_DIR PART [REPEAT]        PART: unet | txt2img | img2img | all
 *
 * MODEL_DIR is a diffusers folder (scripts/bench/make_random_sd.py writes one
 * with random weights at the SD 1.5 configuration: the timing does not depend
 * on the values). The pipeline is loaded as the notebook loads it,
 * from_pretrained(torch_dtype = torch.float16) on "cuda": weights uploaded
 * once in float16, activations in float16.
 *
 * Parts, each after a warm-up, the best of REPEAT (default 1):
 *   unet     one guided UNet call: batch 2 (uncond + text), latents of the
 *            config's sample_size (64x64 for SD 1.5), 77 tokens of the text
 *            encoder's width; rounds of 20 calls (fewer, down to 3, when a
 *            call takes over 50 ms), the stream synced before the clock is read. Measured twice:
 * every call running its ops (steps_per_second) and, where the backend records graphs, as the
 * pipeline's denoising loop runs it, one recording replayed (steps_per_second_graph). txt2img
 * StableDiffusionPipeline: one prompt, 512x512, 50 PNDM steps, guidance 7.5, from the prompt to
 * float pixels on the host. img2img  the notebook's StableDiffusionImg2ImgPipeline call: a 512x512
 *            image, num_images_per_prompt = 3, strength 0.8, 50 steps
 *            (40 UNet calls of batch 6), to pixels on the host.
 * One JSON line per part on stdout: seconds (per call for unet, per run
 * otherwise), steps_per_second (UNet calls per second: for txt2img and
 * img2img the run's calls, 51 and 41 with PNDM, over the whole run's seconds,
 * so text encoder and VAE count too), peak_gpu_mb (sdr_cuda_memory_stats: the most this process's
 * backend held through cudaMalloc since it was made, weights included; parts
 * after the first in one process see the earlier parts' peak too, so
 * bench_gpu.sh runs each part in a fresh process). A part that fails prints
 * {"part": ..., "error": ...} and the program exits 1.
 *
 * SDREPL_BENCH_PROFILE=FILE (on a GPU): after the timing, one eager UNet call
 * and one whole run of txt2img/img2img are profiled (sdr_cuda_profile_*: GPU
 * time per op and per op-and-shape group), appended to FILE.
 *
 * Exit 77 when this build has no CUDA or the machine has no GPU. With
 * SDREPL_BENCH_CPU=1 the same parts run on the CPU backend (no graphs, no GPU
 * memory figures): a check of this program on machines without a GPU, at the
 * size of a tiny test model.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/arena.h"            // sdr_arena_*
#include "engine/error.h"            // sdr_last_error
#include "engine/generator.h"        // sdr_generator_*
#include "engine/image.h"            // sdr_image_new
#include "engine/pipeline.h"         // sdr_pipeline_load, sdr_pipeline_generate
#include "kernels/backend.h"         // sdr_alloc, sdr_upload, sdr_sync, sdr_graph_*
#include "kernels/cpu/cpu_backend.h" // sdr_cpu_backend_create (SDREPL_BENCH_CPU=1)
#ifdef SDREPL_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h" // sdr_cuda_backend_create, sdr_cuda_memory_stats
#endif

/* A round of UNet calls lasts about ROUND_SECONDS: UNET_CALLS calls, fewer (not under 3)
 * when the warm-up shows a call takes longer than ROUND_SECONDS / UNET_CALLS. */
enum { UNET_CALLS = 20, STEPS = 50 };
static const double ROUND_SECONDS = 1.0;
static const float GUIDANCE = 7.5f;
static const char *const TXT2IMG_PROMPT = "a photograph of an astronaut riding a horse";
static const char *const IMG2IMG_PROMPT = "face of a human in  joy"; /* the notebook's */

typedef struct bench {
  sdr_backend *be;
  int on_gpu;
  int mma_default; /* the backend was made with the register-resident attention
                      (SDREPL_CUDA_ATTENTION=mma) */
  sdr_pipeline pipe;
  sdr_generator gen;
  double load_seconds;
  char gpu[256];
} bench;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- output ------------------------------------------------------------------- */

static void json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c < 0x20)
      printf("\\u%04x", c);
    else
      putchar(c);
  }
  putchar('"');
}

/* The most the backend held at once, in MiB; -1 where unknown (the CPU). */
static double peak_mb(const bench *b) {
#ifdef SDREPL_HAVE_CUDA
  size_t in_use = 0, peak = 0;
  if (b->on_gpu && sdr_cuda_memory_stats(b->be, &in_use, &peak) == 0)
    return (double)peak / (1024.0 * 1024.0);
#else
  (void)b;
#endif
  return -1;
}

static void print_head(const bench *b, const char *part) {
  printf("{\"side\": \"sdrepl\", \"part\": \"%s\", \"device\": ", part);
  json_string(b->gpu);
}

/* null for what was not measured (infinite or zero rates, negative sizes). */
static void print_number(const char *key, double v) {
  if (isfinite(v) && v > 0)
    printf(", \"%s\": %.6g", key, v);
  else
    printf(", \"%s\": null", key);
}

static int fail_part(const bench *b, const char *part) {
  print_head(b, part);
  printf(", \"error\": ");
  json_string(sdr_last_error());
  printf("}\n");
  fflush(stdout);
  fprintf(stderr, "bench_gpu: %s: %s\n", part, sdr_last_error());
  return -1;
}

/* ---- unet: one guided call (batch 2) ---------------------------------------- */

/* A device tensor of act dtype filled with torch.randn-like values (through float32). */
static int random_input(bench *b, sdr_tensor *t, sdr_dtype act, int ndim, const int64_t *shape,
                        void **owned) {
  sdr_tensor f = sdr_tensor_view(NULL, SDR_F32, b->be->device, ndim, shape);
  *t = sdr_tensor_view(NULL, act, b->be->device, ndim, shape);
  size_t n = (size_t)sdr_tensor_numel(&f);
  float *host = malloc(n * sizeof *host);
  if (!host)
    return sdr_fail("out of memory");
  sdr_generator_randn_f32(&b->gen, host, n);
  int rc = -1;
  f.data = sdr_alloc(b->be, sdr_tensor_nbytes(&f));
  if (f.data && sdr_upload(b->be, f.data, host, n * sizeof *host) == 0) {
    if (act == SDR_F32) {
      *t = f;
      f.data = NULL;
      rc = 0;
    } else if ((t->data = sdr_alloc(b->be, sdr_tensor_nbytes(t))) != NULL) {
      rc = sdr_cast(b->be, t, &f);
    }
  }
  free(host);
  if (f.data) {
    sdr_sync(b->be); /* the cast has read it */
    sdr_free(b->be, f.data);
  }
  *owned = t->data;
  return rc;
}

/* One call as the pipeline's loop makes it before it records: the arena
 * measures what the call takes (what a recording must reserve). */
static int unet_call(bench *b, sdr_tensor *out, const sdr_tensor *x, const sdr_tensor *t,
                     const sdr_tensor *ctx, size_t *need) {
  sdr_arena *a = &b->pipe.arena;
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_arena_watch(a);
  int rc = sdr_unet_forward(&b->pipe.unet, a, out, x, t, ctx);
  if (need)
    *need = sdr_arena_watched(a) - mark.in_use;
  sdr_arena_release(a, mark);
  return rc;
}

/* Seconds per call, the best of `repeat` rounds of `calls`; graph NULL: eager. */
static int time_calls(bench *b, int repeat, int calls, sdr_graph *g, sdr_tensor *out,
                      const sdr_tensor *x, const sdr_tensor *t, const sdr_tensor *ctx,
                      double *best) {
  *best = INFINITY;
  for (int r = 0; r < repeat; r++) {
    if (sdr_sync(b->be) != 0)
      return -1;
    double t0 = now();
    for (int k = 0; k < calls; k++)
      if ((g ? sdr_graph_replay(b->be, g) : unet_call(b, out, x, t, ctx, NULL)) != 0)
        return -1;
    if (sdr_sync(b->be) != 0)
      return -1;
    double s = (now() - t0) / calls;
    if (s < *best)
      *best = s;
  }
  return 0;
}

/* One UNet call recorded as a graph (its arena reserved first, as the pipeline's
 * loop does), replayed twice, then replays timed into *secs; on a failure *secs
 * is INFINITY, err says why and -1 is returned. */
static int time_graph(bench *b, size_t need, int repeat, int calls, sdr_tensor *out, sdr_tensor *x,
                      sdr_tensor *t, sdr_tensor *ctx, double *secs, char *err, size_t errn) {
  sdr_arena *a = &b->pipe.arena;
  sdr_graph *g = NULL;
  int rc = sdr_arena_reserve(a, need);
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  err[0] = '\0';
  if (rc == 0 && (rc = sdr_graph_begin(b->be)) == 0) {
    rc = sdr_unet_forward(&b->pipe.unet, a, out, x, t, ctx);
    if (rc != 0) /* the op's own error, not the broken capture's that follows */
      snprintf(err, errn, "%s", sdr_last_error());
    g = sdr_graph_end(b->be); /* ended whatever happened, so the backend goes on */
    if (rc == 0 && !g)
      rc = -1;
  }
  sdr_arena_release(a, mark);
  for (int i = 0; i < 2 && rc == 0; i++)
    rc = sdr_graph_replay(b->be, g);
  if (rc == 0)
    rc = time_calls(b, repeat, calls, g, out, x, t, ctx, secs);
  if (rc != 0) {
    if (!err[0])
      snprintf(err, errn, "%s", sdr_last_error());
    *secs = INFINITY;
  }
  sdr_sync(b->be);
  if (g)
    sdr_graph_destroy(b->be, g);
  return rc;
}

/* ---- where the time goes --------------------------------------------------------- */

/* Opens SDREPL_BENCH_PROFILE for appending and starts profiling; NULL when not
 * asked or not on a GPU (a failure to profile never fails the benchmark). */
static FILE *profile_begin(bench *b, const char *what) {
#ifdef SDREPL_HAVE_CUDA
  const char *path = getenv("SDREPL_BENCH_PROFILE");
  if (!b->on_gpu || !path || !*path)
    return NULL;
  FILE *f = fopen(path, "a");
  if (!f)
    return NULL;
  if (sdr_cuda_profile_start(b->be) != 0) {
    fclose(f);
    return NULL;
  }
  fprintf(f, "== %s on %s\n", what, b->gpu);
  return f;
#else
  (void)b, (void)what;
  return NULL;
#endif
}

static void profile_end(bench *b, FILE *f) {
  if (!f)
    return;
#ifdef SDREPL_HAVE_CUDA
  if (sdr_cuda_profile_report(b->be, f, 40) != 0)
    fprintf(f, "profile failed: %s\n", sdr_last_error());
#endif
  fprintf(f, "\n");
  fclose(f);
}

static int part_unet(bench *b, int repeat) {
  const sdr_unet_config *c = &b->pipe.unet.cfg;
  const int64_t B = 2, T = sdr_clip_tokenizer_model_max_length(b->pipe.tokenizer);
  const int64_t D = c->cross_attention_dim[0], S = c->sample_size;
  const sdr_dtype act = b->pipe.unet.act;
  sdr_tensor x, ctx, out, t;
  void *own[4] = {NULL, NULL, NULL, NULL};
  double eager = INFINITY, graphed = INFINITY, other_attention = INFINITY;
  char graph_error[512] = "", other_error[512] = "";
  size_t need = 0;
  int rc = -1, calls = UNET_CALLS;
  if (sdr_arena_reset(&b->pipe.arena) != 0)
    goto done;
  if (random_input(b, &x, act, 4, (int64_t[]){B, c->in_channels, S, S}, &own[0]) != 0)
    goto done;
  if (random_input(b, &ctx, act, 3, (int64_t[]){B, T, D}, &own[1]) != 0)
    goto done;
  out = sdr_tensor_view(NULL, act, b->be->device, 4, (int64_t[]){B, c->out_channels, S, S});
  t = sdr_tensor_view(NULL, SDR_F32, b->be->device, 1, (int64_t[]){B});
  if (!(own[2] = out.data = sdr_alloc(b->be, sdr_tensor_nbytes(&out))))
    goto done;
  if (!(own[3] = t.data = sdr_alloc(b->be, sdr_tensor_nbytes(&t))))
    goto done;
  if (sdr_fill(b->be, &t, 981.0f) != 0)
    goto done;
  /* Warm-up: the first call grows the arena; a reset makes it one block, as
   * every pipeline run after the first has it; then two more calls. */
  if (unet_call(b, &out, &x, &t, &ctx, &need) != 0 || sdr_sync(b->be) != 0 ||
      sdr_arena_reset(&b->pipe.arena) != 0)
    goto done;
  double t0 = now();
  for (int i = 0; i < 2; i++)
    if (unet_call(b, &out, &x, &t, &ctx, &need) != 0)
      goto done;
  if (sdr_sync(b->be) != 0)
    goto done;
  double per = (now() - t0) / 2;
  if (per * UNET_CALLS > ROUND_SECONDS)
    calls = per * 3 > ROUND_SECONDS ? 3 : (int)(ROUND_SECONDS / per);
  if (time_calls(b, repeat, calls, NULL, &out, &x, &t, &ctx, &eager) != 0)
    goto done;
  rc = 0;
  {
    FILE *pf = profile_begin(b, "one guided UNet call, every op run (no graph)");
    if (pf) {
      if (unet_call(b, &out, &x, &t, &ctx, NULL) != 0)
        fprintf(pf, "the call failed: %s\n", sdr_last_error());
      profile_end(b, pf);
    }
  }
  /* As the pipeline's loop does where the backend records: reserve what one
   * call took, record it, replay it. A failure here is reported beside the
   * eager figure. */
  if (sdr_graph_supported(b->be) && time_graph(b, need, repeat, calls, &out, &x, &t, &ctx, &graphed,
                                               graph_error, sizeof graph_error) == 0) {
#ifdef SDREPL_HAVE_CUDA
    /* The same with the other attention kernel (cuda_attention_mma.cu against
     * attn_flash): recorded again, since a graph keeps the kernels it was made with. */
    if (b->on_gpu) {
      int was = sdr_cuda_set_attention(b->be, !b->mma_default);
      time_graph(b, need, repeat, calls, &out, &x, &t, &ctx, &other_attention, other_error,
                 sizeof other_error);
      sdr_cuda_set_attention(b->be, was);
    }
#endif
  }
done:
  if (rc != 0)
    fail_part(b, "unet");
  sdr_sync(b->be);
  if (rc == 0) {
    print_head(b, "unet");
    printf(", \"batch\": %d, \"latent\": %d, \"tokens\": %d, \"dtype\": \"%s\", \"calls\": %d",
           (int)B, (int)S, (int)T, sdr_dtype_name(act), calls);
    print_number("seconds", eager);
    print_number("steps_per_second", 1.0 / eager);
    print_number("steps_per_second_graph", 1.0 / graphed);
    if (graph_error[0]) {
      printf(", \"graph_error\": ");
      json_string(graph_error);
    }
    if (b->on_gpu) { /* graph replays with the attention kernel not in use above */
      printf(", \"attention\": \"%s\"", b->mma_default ? "mma" : "flash");
      print_number(b->mma_default ? "steps_per_second_graph_flash" : "steps_per_second_graph_mma",
                   1.0 / other_attention);
      if (other_error[0]) {
        printf(", \"other_attention_error\": ");
        json_string(other_error);
      }
    }
    print_number("peak_gpu_mb", peak_mb(b));
    print_number("load_seconds", b->load_seconds);
    printf("}\n");
    fflush(stdout);
  }
  for (int i = 0; i < 4; i++)
    if (own[i])
      sdr_free(b->be, own[i]);
  sdr_arena_reset(&b->pipe.arena);
  return rc;
}

/* ---- txt2img and img2img, end to end ----------------------------------------- */

/* A 512x512 picture (the config's size): the same formula as diffusers_gpu.py's. */
static sdr_image *test_image(int size) {
  sdr_image *img = sdr_image_new(size, size, 3);
  if (!img)
    return NULL;
  for (int y = 0; y < size; y++)
    for (int x = 0; x < size; x++) {
      uint8_t *p = img->pixels + ((size_t)y * size + x) * 3;
      p[0] = (uint8_t)(x * 255 / (size - 1));
      p[1] = (uint8_t)(y * 255 / (size - 1));
      p[2] = (uint8_t)((x ^ y) & 255);
    }
  return img;
}

/* One run; *secs from the call to pixels on the host. */
static int generate(bench *b, const sdr_generate *g, double *secs, int *steps) {
  sdr_generated out;
  sdr_generator_manual_seed(&b->gen, 0);
  double t0 = now();
  if (sdr_pipeline_generate(&b->pipe, g, &out) != 0)
    return -1;
  *secs = now() - t0; /* out.data is on the host: the device is done */
  *steps = out.steps_run;
  sdr_generated_free(&out);
  return 0;
}

static int part_generate(bench *b, const char *part, int repeat) {
  const int img2img = strcmp(part, "img2img") == 0;
  const int size = sdr_pipeline_default_size(&b->pipe);
  sdr_generator *gens[1] = {&b->gen};
  const char *prompt = img2img ? IMG2IMG_PROMPT : TXT2IMG_PROMPT;
  sdr_image *img = NULL;
  sdr_generate g;
  memset(&g, 0, sizeof g);
  g.prompts = &prompt;
  g.nprompts = 1;
  g.guidance_scale = GUIDANCE;
  g.num_images_per_prompt = img2img ? 3 : 1;
  g.generators = gens;
  g.ngenerators = 1;
  if (img2img) {
    if (!(img = test_image(size)))
      return fail_part(b, part);
    g.image = img;
    g.strength = 0.8f;
  }
  double best = INFINITY, secs = 0;
  int steps = 0, rc = -1;
  /* Warm-up: a short run takes every path once (the first UNet call, the
   * recording, a replay, the VAE), as diffusers_gpu.py's does. */
  g.num_inference_steps = img2img ? 4 : 3;
  if (generate(b, &g, &secs, &steps) != 0)
    goto done;
  g.num_inference_steps = STEPS;
  for (int r = 0; r < repeat; r++) {
    if (generate(b, &g, &secs, &steps) != 0)
      goto done;
    if (secs < best)
      best = secs;
  }
  rc = 0;
  {
    /* the text encoder, the first UNet call and the VAE per op; replayed steps
     * show only as the scheduler's ops between them */
    FILE *pf = profile_begin(b, img2img ? "one img2img run (3 images)" : "one txt2img run");
    if (pf) {
      if (generate(b, &g, &secs, &steps) != 0)
        fprintf(pf, "the run failed: %s\n", sdr_last_error());
      profile_end(b, pf);
    }
  }
done:
  sdr_image_free(img);
  if (rc != 0)
    return fail_part(b, part);
  print_head(b, part);
  printf(", \"size\": %d, \"images\": %d, \"unet_calls\": %d, \"unet_batch\": %d", size,
         g.num_images_per_prompt, steps, 2 * g.num_images_per_prompt);
  print_number("seconds", best);
  print_number("steps_per_second", steps / best);
  print_number("peak_gpu_mb", peak_mb(b));
  print_number("load_seconds", b->load_seconds);
  printf("}\n");
  fflush(stdout);
  return 0;
}

/* ---- main ------------------------------------------------------------------- */

static int make_backend(bench *b) {
  const char *cpu = getenv("SDREPL_BENCH_CPU");
  if (cpu && strcmp(cpu, "1") == 0) {
    snprintf(b->gpu, sizeof b->gpu, "cpu");
    b->be = sdr_cpu_backend_create();
    return b->be ? 0 : -1;
  }
#ifdef SDREPL_HAVE_CUDA
  if (sdr_cuda_device_count() == 0) {
    fprintf(stderr, "bench_gpu: skipped: no GPU (%s)\n", sdr_cuda_unavailable_reason());
    return 77;
  }
  sdr_cuda_device_info info;
  if (sdr_cuda_device_info_get(0, &info) != 0)
    return -1;
  snprintf(b->gpu, sizeof b->gpu, "%s", info.name);
  if (!(b->be = sdr_cuda_backend_create(NULL)))
    return -1;
  b->on_gpu = 1;
  const char *attn = getenv("SDREPL_CUDA_ATTENTION");
  b->mma_default = attn && strcmp(attn, "mma") == 0;
  /* torch.manual_seed on "cuda": Philox laid out for this GPU */
  b->gen.geometry.sm_count = info.sm_count;
  b->gen.geometry.max_threads_per_sm = info.max_threads_per_sm;
  return 0;
#else
  fprintf(stderr, "bench_gpu: skipped: this build has no CUDA\n");
  return 77;
#endif
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL_DIR unet|txt2img|img2img|all [REPEAT]\n", argv[0]);
    return 2;
  }
  const char *model = argv[1], *part = argv[2];
  int repeat = argc > 3 ? atoi(argv[3]) : 1;
  if (repeat < 1)
    repeat = 1;
  int all = strcmp(part, "all") == 0;
  if (!all && strcmp(part, "unet") && strcmp(part, "txt2img") && strcmp(part, "img2img")) {
    fprintf(stderr, "bench_gpu: unknown part %s (unet, txt2img, img2img or all)\n", part);
    return 2;
  }
  static bench b; /* large (the pipeline, the generator's state): not on the stack */
  sdr_generator_init(&b.gen, SDR_GENERATOR_CUDA);
  b.gen.geometry.sm_count = 132; /* until the GPU says (the CPU check) */
  b.gen.geometry.max_threads_per_sm = 2048;
  int rc = make_backend(&b);
  if (rc == 77)
    return 77;
  if (rc != 0) {
    fprintf(stderr, "bench_gpu: %s\n", sdr_last_error());
    return 1;
  }
  double t0 = now();
  if (sdr_pipeline_load(&b.pipe, b.be, model, NULL, SDR_F16) != 0) {
    fail_part(&b, part);
    rc = 1;
    goto out;
  }
  if (sdr_sync(b.be) != 0) {
    fail_part(&b, part);
    rc = 1;
    goto out;
  }
  b.load_seconds = now() - t0;
  if ((all || !strcmp(part, "unet")) && part_unet(&b, repeat) != 0)
    rc = 1;
  if ((all || !strcmp(part, "txt2img")) && part_generate(&b, "txt2img", repeat) != 0)
    rc = 1;
  if ((all || !strcmp(part, "img2img")) && part_generate(&b, "img2img", repeat) != 0)
    rc = 1;
  sdr_pipeline_free(&b.pipe);
out:
#ifdef SDREPL_HAVE_CUDA
  if (b.on_gpu) {
    sdr_cuda_backend_destroy(b.be);
    b.be = NULL;
  }
#endif
  if (b.be)
    sdr_cpu_backend_destroy(b.be);
  return rc;
}

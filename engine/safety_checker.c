/* engine/safety_checker.c — StableDiffusionSafetyChecker (diffusers' safety_checker.py). */
#include "engine/safety_checker.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"           // sdr_fail
#include "engine/image_processor.h" // sdr_tensor_to_images
#include "engine/model_config.h"    // sdr_find_weight_files
#include "kernels/half.h"           // sdr_f32_to_f16, sdr_f32_to_bf16

#define TRY(x)                                                                                     \
  do {                                                                                             \
    if ((x) != 0)                                                                                  \
      goto fail;                                                                                   \
  } while (0)

static const char *const VISION_PREFIX = "vision_model.vision_model.";

static int bind_all(sdr_safety_checker *sc) {
  sdr_weights *w = &sc->weights;
  const int64_t P = sc->projection_dim, D = sc->vision.cfg.hidden_size;
  const sdr_dtype act = sdr_backend_act_dtype(sc->be, w->keep_dtype);
  TRY(sdr_clip_vision_bind(&sc->vision, w, VISION_PREFIX, act, "safety_checker"));
  TRY(sdr_weights_bind(w, &sc->proj_w, "visual_projection.weight", 2, (int64_t[]){P, D}));
  TRY(sdr_weights_bind(w, &sc->concept, "concept_embeds", 2, (int64_t[]){SDR_SAFETY_CONCEPTS, P}));
  TRY(sdr_weights_bind(w, &sc->special, "special_care_embeds", 2,
                       (int64_t[]){SDR_SAFETY_SPECIAL, P}));
  TRY(sdr_weights_bind(w, &sc->concept_w, "concept_embeds_weights", 1,
                       (int64_t[]){SDR_SAFETY_CONCEPTS}));
  TRY(sdr_weights_bind(w, &sc->special_w, "special_care_embeds_weights", 1,
                       (int64_t[]){SDR_SAFETY_SPECIAL}));
  return sdr_weights_finish(w);
fail:
  return -1;
}

int sdr_safety_checker_load(sdr_safety_checker *sc, sdr_backend *be, const char *dir,
                            const char *variant, int keep_dtype) {
  memset(sc, 0, sizeof *sc);
  sc->be = be;
  if (sdr_clip_vision_open(&sc->vision.cfg, &sc->projection_dim, &sc->weights, be, dir, variant,
                           "safety_checker", keep_dtype) != 0)
    return -1;
  if (bind_all(sc) != 0) {
    sdr_safety_checker_free(sc);
    return -1;
  }
  return 0;
}

int sdr_safety_checker_copy_to(sdr_safety_checker *dst, const sdr_safety_checker *src,
                               sdr_backend *be, int keep_dtype) {
  memset(dst, 0, sizeof *dst);
  dst->be = be;
  dst->vision.cfg = src->vision.cfg;
  dst->projection_dim = src->projection_dim;
  if (sdr_weights_reopen(&dst->weights, &src->weights, be, keep_dtype) != 0)
    return -1;
  if (bind_all(dst) != 0) {
    sdr_safety_checker_free(dst);
    return -1;
  }
  return 0;
}

void sdr_safety_checker_free(sdr_safety_checker *sc) {
  sdr_clip_vision_free(&sc->vision);
  sdr_weights_close(&sc->weights);
  memset(sc, 0, sizeof *sc);
}

/* A tensor's values as float32 on the host (n of them). */
static int host_floats(sdr_backend *be, sdr_arena *a, const sdr_tensor *t, float *out) {
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor f;
  int rc = sdr_arena_as(a, &f, t, SDR_F32);
  if (rc == 0)
    rc = sdr_download(be, out, f.data, sdr_tensor_nbytes(&f));
  sdr_arena_release(a, mark);
  return rc;
}

/* v as the model's dtype holds it (torch rounds each op's result to it). */
static double in_dtype(sdr_dtype dt, double v) {
  if (dt == SDR_F16)
    return sdr_f16_to_f32(sdr_f32_to_f16((float)v));
  if (dt == SDR_BF16)
    return sdr_bf16_to_f32(sdr_f32_to_bf16((float)v));
  return (float)v;
}

/* F.normalize(x) row by row: x / max(|x|, 1e-12), each result in dtype dt. */
static void normalize_rows(float *x, int64_t rows, int64_t n, sdr_dtype dt) {
  for (int64_t r = 0; r < rows; r++) {
    float *v = x + r * n;
    double ss = 0;
    for (int64_t i = 0; i < n; i++)
      ss += (double)v[i] * v[i];
    double norm = in_dtype(dt, sqrt(ss));
    norm = norm > 1e-12 ? norm : 1e-12;
    for (int64_t i = 0; i < n; i++)
      v[i] = (float)in_dtype(dt, v[i] / norm);
  }
}

/* cosine_distance: a (B, P), already normalized, @ normalize(b).T (K, P) -> (B, K), in dt. */
static void cosine(float *out, const float *a, float *b, int64_t B, int64_t K, int64_t P,
                   sdr_dtype dt) {
  normalize_rows(b, K, P, dt);
  for (int64_t i = 0; i < B; i++)
    for (int64_t k = 0; k < K; k++) {
      double s = 0;
      for (int64_t j = 0; j < P; j++)
        s += (double)a[i * P + j] * b[k * P + j];
      out[i * K + k] = (float)in_dtype(dt, s);
    }
}

int sdr_safety_checker_scores(sdr_safety_checker *sc, sdr_arena *a, const float *pixels, int64_t B,
                              int64_t S, float *embeds, float *special, float *concept) {
  const int64_t P = sc->projection_dim, D = sc->vision.cfg.hidden_size;
  const sdr_dtype act = sc->vision.act;
  float *host =
      malloc((size_t)(2 * B * P + (SDR_SAFETY_CONCEPTS + SDR_SAFETY_SPECIAL) * P) * sizeof *host);
  if (!host)
    return sdr_fail("out of memory");
  float *emb = host, *tmp = emb + B * P, *cpt = tmp + B * P, *spc = cpt + SDR_SAFETY_CONCEPTS * P;
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor pooled, projected;
  TRY(sdr_arena_tensor(a, &pooled, act, 2, (int64_t[]){B, D}));
  TRY(sdr_clip_vision_forward(&sc->vision, a, &pooled, pixels, B, S));
  TRY(sdr_arena_tensor(a, &projected, act, 2, (int64_t[]){B, P}));
  TRY(sdr_linear(sc->be, &projected, &pooled, &sc->proj_w, NULL));
  TRY(host_floats(sc->be, a, &projected, emb));
  TRY(host_floats(sc->be, a, &sc->concept, cpt));
  TRY(host_floats(sc->be, a, &sc->special, spc));
  if (embeds)
    memcpy(embeds, emb, (size_t)(B * P) * sizeof *emb);
  /* torch normalizes the embeddings in the model's dtype (in each cosine_distance call,
   * the same values both times) */
  memcpy(tmp, emb, (size_t)(B * P) * sizeof *tmp);
  normalize_rows(tmp, B, P, act);
  if (special)
    cosine(special, tmp, spc, B, SDR_SAFETY_SPECIAL, P, act);
  if (concept)
    cosine(concept, tmp, cpt, B, SDR_SAFETY_CONCEPTS, P, act);
  sdr_arena_release(a, mark);
  free(host);
  return 0;
fail:
  sdr_arena_release(a, mark);
  free(host);
  return -1;
}

/* round(score, 3) > 0 as numpy rounds a float64: rint(score * 1000) / 1000. */
static int above(double score) { return rint(score * 1000.0) / 1000.0 > 0; }

int sdr_safety_checker_verdicts(sdr_safety_checker *sc, sdr_arena *a, const float *special,
                                const float *concept, int64_t B, unsigned char *nsfw) {
  float cw[SDR_SAFETY_CONCEPTS], sw[SDR_SAFETY_SPECIAL];
  if (host_floats(sc->be, a, &sc->concept_w, cw) != 0 ||
      host_floats(sc->be, a, &sc->special_w, sw) != 0)
    return -1;
  for (int64_t b = 0; b < B; b++) {
    /* numpy 1.x: a float32 distance less a Python float is a float64 */
    double adjustment = 0.0;
    for (int k = 0; k < SDR_SAFETY_SPECIAL; k++)
      if (above((double)special[b * SDR_SAFETY_SPECIAL + k] - sw[k] + adjustment))
        adjustment = 0.01;
    nsfw[b] = 0;
    for (int k = 0; k < SDR_SAFETY_CONCEPTS; k++)
      if (above((double)concept[b * SDR_SAFETY_CONCEPTS + k] - cw[k] + adjustment))
        nsfw[b] = 1;
  }
  return 0;
}

int sdr_safety_checker_run(sdr_safety_checker *sc, const sdr_clip_image_processor *fe, sdr_arena *a,
                           float *x, int64_t B, int64_t H, int64_t W, unsigned char *nsfw) {
  if (B < 1)
    return 0;
  sdr_image **imgs = calloc((size_t)B, sizeof *imgs);
  float *special = malloc((size_t)B * (SDR_SAFETY_SPECIAL + SDR_SAFETY_CONCEPTS) * sizeof(float));
  float *pixels = NULL, *concept = special ? special + B * SDR_SAFETY_SPECIAL : NULL;
  int rc = -1, ph, pw;
  if (!imgs || !special) {
    sdr_fail("out of memory");
    goto done;
  }
  /* the pictures as postprocess(output_type="pil") makes them */
  TRY(sdr_tensor_to_images(x, (int)B, (int)H, (int)W, imgs));
  TRY(sdr_clip_image_processor_run(fe, (const sdr_image *const *)imgs, (int)B, &pixels, &ph, &pw));
  if (ph != pw) {
    sdr_fail("safety_checker: the feature extractor makes %dx%d pictures; the vision model "
             "takes squares",
             pw, ph);
    goto done;
  }
  TRY(sdr_safety_checker_scores(sc, a, pixels, B, ph, NULL, special, concept));
  TRY(sdr_safety_checker_verdicts(sc, a, special, concept, B, nsfw));
  const size_t per = (size_t)(3 * H * W);
  for (int64_t b = 0; b < B; b++)
    if (nsfw[b])
      for (size_t i = 0; i < per; i++)
        x[b * per + i] = -1.0f;
  rc = 0;
  goto done;
fail:
done:
  for (int64_t b = 0; imgs && b < B; b++)
    sdr_image_free(imgs[b]);
  free(imgs);
  free(special);
  free(pixels);
  return rc;
}

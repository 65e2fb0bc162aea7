/* engine/pipeline_xl.c — StableDiffusionXLPipeline's encode_prompt, time ids and
 * denoising_end. */
#include "engine/pipeline_xl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h" // sdr_fail

#define TRY(x)                                                                                     \
  do {                                                                                             \
    if ((x) != 0)                                                                                  \
      goto fail;                                                                                   \
  } while (0)

int sdr_xl_check(const sdr_pipeline *p, const sdr_generate *g) {
  if (g->prompts_2 && g->prompt_embeds)
    return sdr_fail("Cannot forward both `prompt_2` and `prompt_embeds`. Please make sure to "
                    "only forward one of the two.");
  if (g->negative_prompts_2 && g->negative_prompt_embeds)
    return sdr_fail("Cannot forward both `negative_prompt_2` and `negative_prompt_embeds`. "
                    "Please make sure to only forward one of the two.");
  if (g->prompt_embeds && !g->pooled_prompt_embeds)
    return sdr_fail("If `prompt_embeds` are provided, `pooled_prompt_embeds` also have to be "
                    "passed. Make sure to generate `pooled_prompt_embeds` from the same text "
                    "encoder that was used to generate `prompt_embeds`.");
  if (g->negative_prompt_embeds && !g->negative_pooled_prompt_embeds)
    return sdr_fail("If `negative_prompt_embeds` are provided, `negative_pooled_prompt_embeds` "
                    "also have to be passed. Make sure to generate "
                    "`negative_pooled_prompt_embeds` from the same text encoder that was used to "
                    "generate `negative_prompt_embeds`.");
  if (g->prompts_2 && g->nprompts_2 != g->nprompts)
    return sdr_fail("prompt_2: %d given for %d prompts; the numbers must match", g->nprompts_2,
                    g->nprompts);
  if (g->negative_prompts_2 && g->nnegative_2 != g->nprompts)
    return sdr_fail("`negative_prompt_2`: %d given for %d prompts; the numbers must match",
                    g->nnegative_2, g->nprompts);
  const int P = p->text_encoder_2.cfg.projection_dim;
  const struct {
    const float *v;
    const int64_t *shape;
    const char *name;
  } pooled[2] = {{g->pooled_prompt_embeds, g->pooled_shape, "pooled_prompt_embeds"},
                 {g->negative_pooled_prompt_embeds, g->negative_pooled_shape,
                  "negative_pooled_prompt_embeds"}};
  for (int i = 0; i < 2; i++)
    if (pooled[i].v && (pooled[i].shape[0] != g->nprompts || pooled[i].shape[1] != P))
      return sdr_fail("%s: shape (%d, %d) expected (one row per prompt, text_encoder_2's "
                      "projection_dim), got (%lld, %lld)",
                      pooled[i].name, g->nprompts, P, (long long)pooled[i].shape[0],
                      (long long)pooled[i].shape[1]);
  const int *sizes[] = {
      g->original_size,          g->crops_coords_top_left,          g->target_size,
      g->negative_original_size, g->negative_crops_coords_top_left, g->negative_target_size};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    if (sizes[i][0] < 0 || sizes[i][1] < 0)
      return sdr_fail("the micro-conditioning sizes and crops must not be negative");
  return 0;
}

int sdr_xl_check_time_ids(const sdr_pipeline *p, const sdr_generate *g) {
  const int P = p->text_encoder_2.cfg.projection_dim;
  const sdr_unet_config *u = &p->unet.cfg;
  const int aesthetics = g->xl_img2img && p->requires_aesthetics_score;
  const int d = u->addition_time_embed_dim, expected = u->projection_class_embeddings_input_dim;
  const int passed = d * (aesthetics ? 5 : 6) + P;
  if (g->xl_img2img && expected > passed && expected - passed == d)
    return sdr_fail("Model expects an added time embedding vector of length %d, but a vector of "
                    "%d was created. Please make sure to enable `requires_aesthetics_score` "
                    "(from_pretrained(..., {requires_aesthetics_score = true})) to make sure "
                    "`aesthetic_score` %g and `negative_aesthetic_score` %g is correctly used by "
                    "the model.",
                    expected, passed, g->aesthetic_score, g->negative_aesthetic_score);
  if (g->xl_img2img && expected < passed && passed - expected == d)
    return sdr_fail("Model expects an added time embedding vector of length %d, but a vector of "
                    "%d was created. Please make sure to disable `requires_aesthetics_score` "
                    "(from_pretrained(..., {requires_aesthetics_score = false})) to make sure "
                    "`target_size` is correctly used by the model.",
                    expected, passed);
  if (passed != expected)
    return sdr_fail("Model expects an added time embedding vector of length %d, but a vector of "
                    "%d was created. The model has an incorrect config. Please check "
                    "`unet.config.time_embedding_type` and `text_encoder_2.config.projection_dim`.",
                    expected, passed);
  if (sdr_xl_fraction(g->denoising_start) && sdr_xl_fraction(g->denoising_end) &&
      g->denoising_start >= g->denoising_end)
    return sdr_fail("`denoising_start`: %g cannot be larger than or equal to `denoising_end`:  %g "
                    "when using type float.",
                    g->denoising_start, g->denoising_end);
  return 0;
}

/* One text encoder's part of encode_prompt: hidden_states[-(clip_skip + 2)] of n texts (no
 * final layer norm) into the columns [col, col + its width) of rows (n, T, Dall); with pooled,
 * also its projected pooler_output (n, projection_dim). */
static int encode_tower(sdr_pipeline *p, const sdr_clip_tokenizer *tok, sdr_clip_text_model *m,
                        const char *const *texts, int n, int T, int clip_skip, float *rows,
                        int Dall, int col, float *pooled) {
  const sdr_clip_text_config *c = &m->cfg;
  const int L = c->num_hidden_layers, D = c->hidden_size, at = L - 1 - clip_skip;
  if (at < 0)
    return sdr_fail("clip_skip %d: the text encoders have %d layers (at most clip_skip=%d)",
                    clip_skip, L, L - 1);
  if (T > c->max_position_embeddings)
    return sdr_fail("%d tokens per text exceed the text encoder's %d positions", T,
                    c->max_position_embeddings);
  int64_t *ids_host = malloc((size_t)n * T * sizeof *ids_host);
  float *chosen_host = malloc((size_t)n * T * D * sizeof *chosen_host);
  sdr_arena *a = &p->arena;
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor ids, hidden, last, chosen, pool, proj;
  int rc = -1;
  if (!ids_host || !chosen_host) {
    sdr_fail("out of memory");
    goto fail;
  }
  TRY(sdr_clip_tokenizer_encode_padded(tok, texts, n, T, ids_host));
  TRY(sdr_arena_tensor(a, &ids, SDR_I64, 2, (int64_t[]){n, T}));
  TRY(sdr_upload(p->be, ids.data, ids_host, (size_t)n * T * sizeof *ids_host));
  TRY(sdr_arena_tensor(a, &hidden, SDR_F32, 4, (int64_t[]){L + 1, n, T, D}));
  TRY(sdr_arena_tensor(a, &last, SDR_F32, 3, (int64_t[]){n, T, D}));
  TRY(sdr_clip_text_forward(m, a, &last, &hidden, &ids));
  TRY(sdr_tensor_narrow0(&chosen, &hidden, at, 1));
  TRY(sdr_download(p->be, chosen_host, chosen.data, (size_t)n * T * D * sizeof *chosen_host));
  for (size_t r = 0; r < (size_t)n * T; r++)
    memcpy(rows + r * Dall + col, chosen_host + r * D, (size_t)D * sizeof *rows);
  if (pooled) {
    const int P = c->projection_dim;
    TRY(sdr_arena_tensor(a, &pool, SDR_F32, 2, (int64_t[]){n, D}));
    TRY(sdr_clip_text_pool(m, a, &pool, &last, &ids));
    TRY(sdr_arena_tensor(a, &proj, SDR_F32, 2, (int64_t[]){n, P}));
    TRY(sdr_clip_text_project(m, a, &proj, &pool));
    TRY(sdr_download(p->be, pooled, proj.data, (size_t)n * P * sizeof *pooled));
  }
  rc = 0;
fail:
  sdr_arena_release(a, mark);
  free(ids_host);
  free(chosen_host);
  return rc;
}

/* Both encoders on n texts (texts_2 for the second) into rows (n, T, D) and pooled (n, P). */
static int encode_both(sdr_pipeline *p, const char *const *texts, const char *const *texts_2, int n,
                       int T, int D, int clip_skip, float *rows, float *pooled) {
  const int width = sdr_pipeline_text_width(p);
  if (D != width) /* only when mixed with given embeddings */
    return sdr_fail("the text encoders make embeddings %d wide, prompt_embeds are %d wide", width,
                    D);
  /* a refiner has the second encoder only, which zip([prompt, prompt_2], [tokenizer_2]) gives
   * the first prompts */
  if (!p->tokenizer)
    return encode_tower(p, p->tokenizer_2, &p->text_encoder_2, texts, n, T, clip_skip, rows, D, 0,
                        pooled);
  if (encode_tower(p, p->tokenizer, &p->text_encoder, texts, n, T, clip_skip, rows, D, 0, NULL))
    return -1;
  return encode_tower(p, p->tokenizer_2, &p->text_encoder_2, texts_2, n, T, clip_skip, rows, D,
                      p->text_encoder.cfg.hidden_size, pooled);
}

int sdr_xl_encode_prompt(sdr_pipeline *p, const sdr_generate *g, int guided, float **pos,
                         float **neg, float **pooled, float **neg_pooled, int *T_out, int *D_out,
                         int *P_out) {
  *pos = *neg = *pooled = *neg_pooled = NULL;
  const int B0 = g->nprompts;
  const sdr_clip_tokenizer *tok = p->tokenizer ? p->tokenizer : p->tokenizer_2;
  const int T =
      g->prompt_embeds ? (int)g->prompt_embeds_shape[1] : sdr_clip_tokenizer_model_max_length(tok);
  const int D = g->prompt_embeds ? (int)g->prompt_embeds_shape[2] : sdr_pipeline_text_width(p);
  const int P = p->text_encoder_2.cfg.projection_dim;
  const size_t n = (size_t)B0 * T * D, np = (size_t)B0 * P;
  const int k = guided ? 2 : 1;
  float *rows = malloc(k * n * sizeof *rows), *pools = malloc(k * np * sizeof *pools);
  const char **empty = NULL;
  if (!rows || !pools) {
    sdr_fail("out of memory");
    goto fail;
  }
  if (g->prompt_embeds) {
    memcpy(rows, g->prompt_embeds, n * sizeof *rows);
    memcpy(pools, g->pooled_prompt_embeds, np * sizeof *pools);
  } else {
    TRY(encode_both(p, g->prompts, g->prompts_2 ? g->prompts_2 : g->prompts, B0, T, D, g->clip_skip,
                    rows, pools));
  }
  if (guided) {
    float *nrows = rows + n, *npools = pools + np;
    if (g->negative_prompt_embeds) {
      memcpy(nrows, g->negative_prompt_embeds, n * sizeof *rows);
      memcpy(npools, g->negative_pooled_prompt_embeds, np * sizeof *pools);
    } else if (!g->negative_prompts && p->force_zeros_for_empty_prompt) {
      /* zero_out_negative_prompt: no negative prompt, zeros (negative_prompt_2 unused) */
      memset(nrows, 0, n * sizeof *rows);
      memset(npools, 0, np * sizeof *pools);
    } else {
      const char *const *negs = g->negative_prompts;
      if (!negs) {
        if (!(empty = calloc((size_t)B0, sizeof *empty))) {
          sdr_fail("out of memory");
          goto fail;
        }
        for (int i = 0; i < B0; i++)
          empty[i] = "";
        negs = empty;
      }
      /* the negatives at the prompts' length, hidden_states[-2] whatever clip_skip says */
      TRY(encode_both(p, negs, g->negative_prompts_2 ? g->negative_prompts_2 : negs, B0, T, D, 0,
                      nrows, npools));
    }
    *neg = nrows;
    *neg_pooled = npools;
  }
  free(empty);
  *pos = rows;
  *pooled = pools;
  *T_out = T;
  *D_out = D;
  *P_out = P;
  return 0;
fail:
  *neg = *neg_pooled = NULL;
  free(empty);
  free(rows);
  free(pools);
  return -1;
}

static int is_set(const int size[2]) { return size[0] || size[1]; }

/* _get_add_time_ids: original_size + crops_coords_top_left + target_size (unset sizes: height
 * x width), or with an aesthetic score (score >= 0) in the target's place. */
static void time_ids(const int original[2], const int crops[2], const int target[2], int height,
                     int width, double score, float out[6]) {
  out[0] = (float)(is_set(original) ? original[0] : height);
  out[1] = (float)(is_set(original) ? original[1] : width);
  out[2] = (float)crops[0];
  out[3] = (float)crops[1];
  if (score >= 0) {
    out[4] = (float)score;
    return;
  }
  out[4] = (float)(is_set(target) ? target[0] : height);
  out[5] = (float)(is_set(target) ? target[1] : width);
}

int sdr_xl_added_cond(sdr_pipeline *p, const sdr_generate *g, int guided, int B, int height,
                      int width, const float *pooled, const float *neg_pooled, int P,
                      sdr_tensor *text_embeds, sdr_tensor *time_ids_t) {
  const int nb = guided ? 2 : 1, N = g->num_images_per_prompt;
  const int64_t rows = (int64_t)nb * B;
  const int aesthetics = g->xl_img2img && p->requires_aesthetics_score, nids = aesthetics ? 5 : 6;
  float pos_ids[6], neg_ids[6];
  const int *o = g->original_size, *t = g->target_size;
  const int *no = g->negative_original_size, *nt = g->negative_target_size;
  time_ids(o, g->crops_coords_top_left, t, height, width, aesthetics ? g->aesthetic_score : -1,
           pos_ids);
  if (g->xl_img2img) {
    /* img2img's: the negative sizes default to the positive ones; without the aesthetic score
     * its negative row takes crops_coords_top_left, not the negative crops (as diffusers') */
    const int *ncrop = aesthetics ? g->negative_crops_coords_top_left : g->crops_coords_top_left;
    time_ids(is_set(no) ? no : o, ncrop, is_set(nt) ? nt : t, height, width,
             aesthetics ? g->negative_aesthetic_score : -1, neg_ids);
  } else if (is_set(no) && is_set(nt)) {
    time_ids(no, g->negative_crops_coords_top_left, nt, height, width, -1, neg_ids);
  } else {
    memcpy(neg_ids, pos_ids, sizeof neg_ids);
  }
  float *host = malloc((size_t)rows * (P + nids) * sizeof *host);
  if (!host)
    return sdr_fail("out of memory");
  float *te = host, *ti = host + (size_t)rows * P, *dst = te;
  /* pooled: repeat(1, N).view(-1) per prompt, the negatives first */
  for (int part = 0; part < nb; part++)
    for (int i = 0; i < g->nprompts; i++)
      for (int k = 0; k < N; k++, dst += P)
        memcpy(dst, (guided && part == 0 ? neg_pooled : pooled) + (size_t)i * P,
               (size_t)P * sizeof *dst);
  /* txt2img's cat([negative_add_time_ids, add_time_ids]).repeat(B, 1): the two rows
   * alternate; img2img repeats each first: the negatives' rows, then the positives' */
  for (int64_t r = 0; r < rows; r++) {
    const int negative = guided && (g->xl_img2img ? r < B : r % 2 == 0);
    memcpy(ti + r * nids, negative ? neg_ids : pos_ids, (size_t)nids * sizeof *ti);
  }
  int rc = sdr_arena_tensor(&p->arena, text_embeds, SDR_F32, 2, (int64_t[]){rows, P});
  if (rc == 0)
    rc = sdr_arena_tensor(&p->arena, time_ids_t, SDR_F32, 2, (int64_t[]){rows, nids});
  if (rc == 0)
    rc = sdr_upload(p->be, text_embeds->data, te, (size_t)rows * P * sizeof *te);
  if (rc == 0)
    rc = sdr_upload(p->be, time_ids_t->data, ti, (size_t)rows * nids * sizeof *ti);
  free(host);
  return rc;
}

/* The timestep a denoising_end or denoising_start fraction cuts at:
 * int(round(num_train_timesteps - fraction * num_train_timesteps)), Python's round going to
 * even on a tie, as nearbyint does. */
static double cutoff_of(const sdr_pipeline *p, double fraction) {
  const double T = sdr_scheduler_num_train_timesteps(p->scheduler);
  return nearbyint(T - fraction * T);
}

int sdr_xl_denoising_steps(const sdr_pipeline *p, const sdr_generate *g, const double *ts, int n) {
  if (!sdr_xl_fraction(g->denoising_end))
    return n;
  const double cutoff = cutoff_of(p, g->denoising_end);
  int keep = 0;
  for (int i = 0; i < n; i++)
    keep += ts[i] >= cutoff;
  return keep;
}

int sdr_xl_denoising_start(const sdr_pipeline *p, const sdr_generate *g, const double *ts, int n) {
  /* get_timesteps: the steps whose timesteps lie below the cut, counted from the end (one more
   * for a second-order scheduler, not to stop between its two evaluations) */
  const double cutoff = cutoff_of(p, g->denoising_start);
  int keep = 0;
  for (int i = 0; i < n; i++)
    keep += ts[i] < cutoff;
  if (sdr_scheduler_order(p->scheduler) == 2 && keep % 2 == 0)
    keep++;
  /* timesteps[-0:] is all of them */
  return keep == 0 || keep > n ? n : keep;
}

int sdr_xl_unscale_latents(sdr_pipeline *p, sdr_arena *a, sdr_tensor *latents) {
  const sdr_vae_config *c = &p->vae.cfg;
  sdr_backend *be = p->be;
  if (!c->has_latents_stats)
    return sdr_affine(be, latents, latents, 1.0f / c->scaling_factor, 0.0f);
  if (latents->ndim != 4 || latents->shape[1] != c->latent_channels)
    return sdr_fail("decode: latents have %lld channels, the VAE's latents_mean and latents_std "
                    "%d",
                    latents->ndim == 4 ? (long long)latents->shape[1] : -1LL, c->latent_channels);
  /* latents * latents_std / scaling_factor + latents_mean, each a float32 op as torch's */
  sdr_arena_mark m = sdr_arena_get_mark(a);
  sdr_tensor mean, std, sf;
  const int64_t per_channel[4] = {1, c->latent_channels, 1, 1};
  int rc = -1;
  if (sdr_arena_tensor(a, &mean, SDR_F32, 4, per_channel) != 0 ||
      sdr_arena_tensor(a, &std, SDR_F32, 4, per_channel) != 0 ||
      sdr_arena_tensor(a, &sf, SDR_F32, 4, (int64_t[]){1, 1, 1, 1}) != 0 ||
      sdr_upload(be, mean.data, c->latents_mean, sizeof(float) * (size_t)c->latent_channels) != 0 ||
      sdr_upload(be, std.data, c->latents_std, sizeof(float) * (size_t)c->latent_channels) != 0 ||
      sdr_fill(be, &sf, c->scaling_factor) != 0 ||
      sdr_binary(be, latents, latents, &std, SDR_BINARY_MUL) != 0 ||
      sdr_binary(be, latents, latents, &sf, SDR_BINARY_DIV) != 0 ||
      sdr_binary(be, latents, latents, &mean, SDR_BINARY_ADD) != 0)
    goto done;
  rc = 0;
done:
  sdr_arena_release(a, m);
  return rc;
}

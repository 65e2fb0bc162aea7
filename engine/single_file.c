/* engine/single_file.c — StableDiffusionPipeline.from_single_file (see single_file.h).
 *
 * The component loaders (sdr_unet_load, ...) read a folder: a config.json
 * and a weight file. So the checkpoint is staged as such a folder in a
 * private temporary directory: each component gets its config (inferred, or
 * linked from config_dir) and an empty placeholder weight file whose path is
 * redirected to the component's views of the checkpoint
 * (sdr_weights_redirect). Nothing of the weights is copied; the directory is
 * removed before returning.
 */
#include "engine/single_file.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "engine/error.h"        // sdr_fail
#include "engine/model_config.h" // sdr_json

#define TRY(x)                                                                                     \
  do {                                                                                             \
    if ((x) != 0)                                                                                  \
      goto fail;                                                                                   \
  } while (0)

enum { PATH_LEN = 4096, MAX_STAGED = 40, MAX_REDIRECTED = 6 };

/* ---- small helpers ------------------------------------------------------------------- */

typedef struct sbuf {
  char *p;
  size_t n, cap;
  int oom;
} sbuf;

static void sbf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sbf(sbuf *b, const char *fmt, ...) {
  va_list ap;
  for (int tries = 0; tries < 2 && !b->oom; tries++) {
    va_start(ap, fmt);
    int n = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->oom = 1;
      return;
    }
    if (b->p && (size_t)n < b->cap - b->n) {
      b->n += (size_t)n;
      return;
    }
    size_t cap = (b->n + (size_t)n + 1) * 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
}

static void sb_ints(sbuf *b, const char *key, const int *v, int n) {
  sbf(b, "\"%s\": [", key);
  for (int i = 0; i < n; i++)
    sbf(b, "%s%d", i ? ", " : "", v[i]);
  sbf(b, "], ");
}

static void sb_strs(sbuf *b, const char *key, const char *a, const char *c, const int *pick,
                    int n) {
  sbf(b, "\"%s\": [", key);
  for (int i = 0; i < n; i++)
    sbf(b, "%s\"%s\"", i ? ", " : "", pick && pick[i] ? a : c);
  sbf(b, "], ");
}

static const sdr_st_tensor *tensorf(const sdr_weight_file *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static const sdr_st_tensor *tensorf(const sdr_weight_file *f, const char *fmt, ...) {
  char name[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  return sdr_weight_file_find(f, name);
}

/* A path into a PATH_LEN buffer; -1 with a message when it does not fit. */
static int pathf(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int pathf(char *out, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(out, PATH_LEN, fmt, ap);
  va_end(ap);
  return n >= 0 && n < PATH_LEN ? 0 : sdr_fail("a path longer than %d bytes", PATH_LEN - 1);
}

static int is_dir(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int is_file(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static char *read_text(const char *path) {
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    sdr_fail("cannot open %s: %s", path, strerror(errno));
    return NULL;
  }
  sbuf b = {0};
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0 && b.n < (16u << 20))
    sbf(&b, "%.*s", (int)n, chunk);
  fclose(fp);
  if (b.oom || !b.p) {
    free(b.p);
    sdr_fail(b.oom ? "out of memory" : "%s is empty", path);
    return NULL;
  }
  return b.p;
}

/* ---- what the checkpoint is ------------------------------------------------------------ */

typedef struct sf_model {
  const char *path;
  int v2;       /* a context width of 1024: SD 2.x */
  int openclip; /* cond_stage_model.model.*: OpenCLIP's text tower */
  /* SDXL (conditioner.embedders.*): 1 the base (CLIP ViT-L as embedders.0.transformer,
   * OpenCLIP bigG as embedders.1.model), 2 the refiner (bigG alone, as embedders.0.model) */
  int xl;
  const char *bigg; /* the bigG tower's prefix */
  int unet_layers;  /* layers_per_block, from input_blocks */
  int unet_levels;
  int vae_levels;
  int text_layers; /* the blocks the text encoder keeps */
  int text_layers_2;
  int image_size;
} sf_model;

static int sf_fail(const sf_model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int sf_fail(const sf_model *m, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return sdr_fail("%s: %s", m->path, msg);
}

/* Which model the keys describe (infer_original_config_file, infer_model_type; SDXL by its
 * text towers' names, as diffusers by one of their blocks). */
static int identify(const sdr_weight_file *f, sf_model *m) {
  if (sdr_weight_file_find(f, "conditioner.embedders.1.model.token_embedding.weight")) {
    m->xl = 1;
    m->bigg = "conditioner.embedders.1.model.";
  } else if (sdr_weight_file_find(f, "conditioner.embedders.0.model.token_embedding.weight")) {
    m->xl = 2;
    m->bigg = "conditioner.embedders.0.model.";
  }
  if (!sdr_weight_file_find(f, "model.diffusion_model.input_blocks.0.0.weight"))
    return sf_fail(m, "not a Stable Diffusion checkpoint in the original layout (no "
                      "model.diffusion_model.input_blocks.0.0.weight); a diffusers folder loads "
                      "with from_pretrained");
  if (!sdr_weight_file_find(f, "first_stage_model.encoder.conv_in.weight"))
    return sf_fail(m, "the checkpoint has no VAE (first_stage_model.*)");
  if (m->xl == 1 && !sdr_weight_file_find(f, "conditioner.embedders.0.transformer.text_model."
                                             "embeddings.token_embedding.weight"))
    return sf_fail(m, "an SDXL checkpoint without its first text encoder "
                      "(conditioner.embedders.0.transformer.*)");
  if (m->xl)
    return 0;
  m->openclip = sdr_weight_file_find(f, "cond_stage_model.model.token_embedding.weight") != NULL;
  if (!m->openclip &&
      !sdr_weight_file_find(
          f, "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight") &&
      !sdr_weight_file_find(f, "cond_stage_model.transformer.embeddings.token_embedding.weight"))
    return sf_fail(m, "the checkpoint has no text encoder (cond_stage_model.*)");
  const sdr_st_tensor *k = sdr_weight_file_find(
      f, "model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight");
  m->v2 = k && k->ndim == 2 && k->shape[1] == 1024;
  return 0;
}

/* ---- inferred configs (single_file_utils.create_*_diffusers_config) -------------------- */

/* The UNet's layout from input_blocks: conv_in, then per level its layers and
 * (but for the last level) a downsampler named op. */
static int unet_layout(const sdr_weight_file *f, sf_model *m) {
  int nin = sdr_ldm_count(f, "model.diffusion_model.input_blocks"), L = -1;
  for (int i = 1; i < nin && L < 0; i++)
    if (tensorf(f, "model.diffusion_model.input_blocks.%d.0.op.weight", i))
      L = i - 1;
  if (L < 0)
    L = nin - 1; /* one level, no downsampler */
  if (L < 1 || nin % (L + 1) || nin / (L + 1) > SDR_UNET_MAX_BLOCKS)
    return sf_fail(m, "cannot tell the UNet's blocks from its %d input blocks", nin);
  m->unet_layers = L;
  m->unet_levels = nin / (L + 1);
  return 0;
}

static int infer_unet(const sdr_weight_file *f, sf_model *m, sbuf *json) {
  const char *P = "model.diffusion_model.";
  const int L = m->unet_layers, n = m->unet_levels;
  const sdr_st_tensor *cin = tensorf(f, "%sinput_blocks.0.0.weight", P);
  const sdr_st_tensor *cout = tensorf(f, "%sout.2.weight", P);
  const sdr_st_tensor *proj = tensorf(f, "%smiddle_block.1.proj_in.weight", P);
  const sdr_st_tensor *ctx =
      tensorf(f, "%smiddle_block.1.transformer_blocks.0.attn2.to_k.weight", P);
  if (!cin || cin->ndim != 4 || !cout || cout->ndim != 4 || !proj || !ctx || ctx->ndim != 2)
    return sf_fail(m, "the UNet lacks conv_in, conv_out or its middle attention");
  if (cin->shape[1] != 4)
    return sf_fail(m, "a UNet of %lld input channels (an inpainting model?) is not supported",
                   (long long)cin->shape[1]);
  int ch[SDR_UNET_MAX_BLOCKS], down[SDR_UNET_MAX_BLOCKS], up[SDR_UNET_MAX_BLOCKS];
  int heads[SDR_UNET_MAX_BLOCKS], depth[SDR_UNET_MAX_BLOCKS];
  const int heads64 = m->v2 || m->xl; /* num_head_channels 64, else num_heads 8 */
  for (int i = 0; i < n; i++) {
    const sdr_st_tensor *c =
        tensorf(f, "%sinput_blocks.%d.0.out_layers.3.weight", P, (L + 1) * i + 1);
    if (!c)
      return sf_fail(m, "the UNet lacks input_blocks.%d.0.out_layers.3.weight", (L + 1) * i + 1);
    ch[i] = (int)c->shape[0];
    down[i] = tensorf(f, "%sinput_blocks.%d.1.proj_in.weight", P, (L + 1) * i + 1) != NULL;
    up[i] = tensorf(f, "%soutput_blocks.%d.1.proj_in.weight", P, (L + 1) * i) != NULL;
    /* v1: num_heads 8; v2 and SDXL: num_head_channels 64 (attention_head_dim [5, 10, 20, 20]) */
    if (heads64 && ch[i] % 64)
      return sf_fail(m, "block %d of %d channels does not split into 64-channel heads", i, ch[i]);
    heads[i] = heads64 ? ch[i] / 64 : 8;
    /* SDXL's transformer_depth differs by block ([0, 2, 10]); a block without attention
     * takes 1, which it never uses */
    char prefix[160];
    snprintf(prefix, sizeof prefix, "%sinput_blocks.%d.1.transformer_blocks", P, (L + 1) * i + 1);
    depth[i] = down[i] && m->xl ? sdr_ldm_count(f, prefix) : 1;
  }
  const int mid_depth = sdr_ldm_count(f, "model.diffusion_model.middle_block.1.transformer_blocks");
  if (!m->xl)
    for (int i = 0; i < n; i++)
      depth[i] = mid_depth;
  sbf(json, "{\"_class_name\": \"UNet2DConditionModel\", ");
  sb_ints(json, "block_out_channels", ch, n);
  sb_strs(json, "down_block_types", "CrossAttnDownBlock2D", "DownBlock2D", down, n);
  sb_strs(json, "up_block_types", "CrossAttnUpBlock2D", "UpBlock2D", up, n);
  sb_ints(json, "attention_head_dim", heads, n);
  sb_ints(json, "transformer_layers_per_block", depth, n);
  if (m->xl) { /* "text_time": addition_time_embed_dim 256, the input width from label_emb */
    const sdr_st_tensor *adm = tensorf(f, "%slabel_emb.0.0.weight", P);
    if (!adm || adm->ndim != 2)
      return sf_fail(m, "an SDXL UNet without its added embedding (label_emb.0.0.weight)");
    sbf(json,
        "\"addition_embed_type\": \"text_time\", \"addition_time_embed_dim\": 256, "
        "\"projection_class_embeddings_input_dim\": %lld, ",
        (long long)adm->shape[1]);
  }
  sbf(json,
      "\"in_channels\": %lld, \"out_channels\": %lld, \"layers_per_block\": %d, "
      "\"cross_attention_dim\": %lld, \"use_linear_projection\": %s, "
      "\"sample_size\": %d, \"norm_num_groups\": 32}",
      (long long)cin->shape[1], (long long)cout->shape[0], L, (long long)ctx->shape[1],
      proj->ndim == 2 ? "true" : "false", m->image_size >> (m->vae_levels - 1));
  return 0;
}

static int infer_vae(const sdr_weight_file *f, sf_model *m, sbuf *json) {
  const char *P = "first_stage_model.";
  const int n = m->vae_levels;
  const int L = sdr_ldm_count(f, "first_stage_model.encoder.down.0.block");
  const sdr_st_tensor *cin = tensorf(f, "%sencoder.conv_in.weight", P);
  const sdr_st_tensor *cout = tensorf(f, "%sdecoder.conv_out.weight", P);
  const sdr_st_tensor *z = tensorf(f, "%sdecoder.conv_in.weight", P);
  if (!cin || cin->ndim != 4 || !cout || cout->ndim != 4 || !z || z->ndim != 4 || L < 1 ||
      n > SDR_VAE_MAX_BLOCKS || sdr_ldm_count(f, "first_stage_model.decoder.up") != n)
    return sf_fail(m, "cannot tell the VAE's blocks");
  int ch[SDR_VAE_MAX_BLOCKS] = {0};
  for (int i = 0; i < n; i++) {
    const sdr_st_tensor *c = tensorf(f, "%sencoder.down.%d.block.0.conv1.weight", P, i);
    if (!c)
      return sf_fail(m, "the VAE lacks encoder.down.%d.block.0.conv1.weight", i);
    ch[i] = (int)c->shape[0];
  }
  sbf(json, "{\"_class_name\": \"AutoencoderKL\", ");
  sb_ints(json, "block_out_channels", ch, n);
  sb_strs(json, "down_block_types", "", "DownEncoderBlock2D", NULL, n);
  sb_strs(json, "up_block_types", "", "UpDecoderBlock2D", NULL, n);
  sbf(json,
      "\"in_channels\": %lld, \"out_channels\": %lld, \"latent_channels\": %lld, "
      "\"layers_per_block\": %d, \"sample_size\": %d, \"scaling_factor\": %s, "
      "\"use_quant_conv\": %s, \"use_post_quant_conv\": %s, \"norm_num_groups\": 32}",
      (long long)cin->shape[1], (long long)cout->shape[0], (long long)z->shape[1], L, m->image_size,
      m->xl ? "0.13025" : "0.18215", /* the SDXL configs' scale_factor */
      tensorf(f, "%squant_conv.weight", P) ? "true" : "false",
      tensorf(f, "%spost_quant_conv.weight", P) ? "true" : "false");
  return 0;
}

/* A text tower's config from its tensors, as diffusers' named configs give it:
 * openai/clip-vit-large-patch14's for a transformers CLIP tower at prefix (SD 1.x's
 * cond_stage_model.transformer., SDXL's conditioner.embedders.0.transformer.); for an
 * OpenCLIP tower (gelu) stabilityai/stable-diffusion-2's text_encoder (SD 2.x: its last block
 * dropped) or laion/CLIP-ViT-bigG-14's (SDXL: every block, and text_projection, kept in the
 * checkpoint's layout). Sizes from the tensors, heads of 64 channels as all have; token ids as
 * those configs give them (bos 0, eos 2, pad 1: transformers' legacy pooling at the largest
 * id). *layers: the blocks kept. */
static int text_json(const sdr_weight_file *f, sf_model *m, const char *prefix, int openclip,
                     sbuf *json, int *layers) {
  const sdr_st_tensor *tok, *pos, *fc1, *proj = NULL;
  char head[160];
  const int xl_bigg = openclip && m->xl;
  if (openclip) {
    tok = tensorf(f, "%stoken_embedding.weight", prefix);
    pos = tensorf(f, "%spositional_embedding", prefix);
    fc1 = tensorf(f, "%stransformer.resblocks.0.mlp.c_fc.weight", prefix);
    snprintf(head, sizeof head, "%stransformer.resblocks", prefix);
    *layers = sdr_ldm_count(f, head) - (xl_bigg ? 0 : 1);
    if (xl_bigg && !(proj = tensorf(f, "%stext_projection", prefix)))
      return sf_fail(m, "SDXL's OpenCLIP text encoder lacks %stext_projection", prefix);
    if (proj && proj->ndim != 2)
      return sf_fail(m, "%stext_projection is not a matrix", prefix);
  } else {
    snprintf(head, sizeof head, "%stext_model.", prefix);
    if (!tensorf(f, "%sembeddings.token_embedding.weight", head))
      snprintf(head, sizeof head, "%s", prefix); /* saved without the text_model level */
    tok = tensorf(f, "%sembeddings.token_embedding.weight", head);
    pos = tensorf(f, "%sembeddings.position_embedding.weight", head);
    fc1 = tensorf(f, "%sencoder.layers.0.mlp.fc1.weight", head);
    char count[200];
    snprintf(count, sizeof count, "%sencoder.layers", head);
    *layers = sdr_ldm_count(f, count);
  }
  if (!tok || tok->ndim != 2 || !pos || pos->ndim != 2 || !fc1 || fc1->ndim != 2 || *layers < 1)
    return sf_fail(m, "cannot tell the text encoder's sizes");
  if (tok->shape[1] % 64)
    return sf_fail(m,
                   "a text encoder %lld wide does not split into CLIP's 64-channel heads; give "
                   "config_dir, a diffusers folder of this model",
                   (long long)tok->shape[1]);
  sbf(json,
      "{\"vocab_size\": %lld, \"hidden_size\": %lld, \"intermediate_size\": %lld, "
      "\"num_attention_heads\": %lld, \"num_hidden_layers\": %d, "
      "\"max_position_embeddings\": %lld, \"hidden_act\": \"%s\", \"layer_norm_eps\": 1e-05, ",
      (long long)tok->shape[0], (long long)tok->shape[1], (long long)fc1->shape[0],
      (long long)tok->shape[1] / 64, *layers, (long long)pos->shape[0],
      openclip ? "gelu" : "quick_gelu");
  if (proj)
    sbf(json,
        "\"architectures\": [\"CLIPTextModelWithProjection\"], \"projection_dim\": %lld, "
        "\"text_projection_transposed\": true, ",
        (long long)proj->shape[1]);
  sbf(json, "\"bos_token_id\": 0, \"eos_token_id\": 2, \"pad_token_id\": 1}");
  return 0;
}

/* create_scheduler_from_ldm: SCHEDULER_DEFAULT_CONFIG with the v1/v2 configs' betas. */
static int scheduler_json(const sf_model *m, const sdr_single_file_options *o, sbuf *json) {
  static const char *const types[][2] = {
      {"ddim", "DDIMScheduler"},
      {"pndm", "PNDMScheduler"},
      {"lms", "LMSDiscreteScheduler"},
      {"euler", "EulerDiscreteScheduler"},
      {"euler-ancestral", "EulerAncestralDiscreteScheduler"},
      {"dpm", "DPMSolverMultistepScheduler"},
  };
  /* diffusers makes SDXL's Euler whatever scheduler_type says */
  const char *type = m->xl ? "euler" : o->scheduler_type ? o->scheduler_type : "ddim", *cls = NULL;
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
    if (strcmp(type, types[i][0]) == 0)
      cls = types[i][1];
  if (!cls)
    return sdr_fail("scheduler_type \"%s\" is not one of ddim, pndm, lms, euler, "
                    "euler-ancestral, dpm",
                    type);
  const char *pred = o->prediction_type ? o->prediction_type : m->v2 ? "v_prediction" : "epsilon";
  sbf(json,
      "{\"_class_name\": \"%s\", \"beta_schedule\": \"scaled_linear\", \"beta_start\": 0.00085, "
      "\"beta_end\": 0.012, \"interpolation_type\": \"linear\", \"num_train_timesteps\": 1000, "
      "\"prediction_type\": \"%s\", \"sample_max_value\": 1.0, \"set_alpha_to_one\": false, "
      "\"skip_prk_steps\": true, \"steps_offset\": 1, \"timestep_spacing\": \"leading\", "
      "\"clip_sample\": false}",
      cls, pred);
  return 0;
}

/* ---- the tokenizer ----------------------------------------------------------------------- */

static int tokenizer_at(const char *dir, char *out, size_t cap) {
  char vocab[PATH_LEN];
  pathf(vocab, "%s/vocab.json", dir);
  if (!is_file(vocab))
    return 0;
  snprintf(out, cap, "%s", dir);
  return 1;
}

/* huggingface_hub's cache: <cache>/models--openai--clip-vit-large-patch14/snapshots/<refs/main>. */
static int tokenizer_in_hub_cache(char *out, size_t cap) {
  char cache[PATH_LEN], ref[PATH_LEN], commit[128] = "";
  const char *hub = getenv("HF_HUB_CACHE"), *home = getenv("HF_HOME"), *h = getenv("HOME");
  if (hub && *hub)
    pathf(cache, "%s", hub);
  else if (home && *home)
    pathf(cache, "%s/hub", home);
  else if (h && *h)
    pathf(cache, "%s/.cache/huggingface/hub", h);
  else
    return 0;
  pathf(ref, "%s/models--openai--clip-vit-large-patch14/refs/main", cache);
  FILE *fp = fopen(ref, "r");
  if (!fp)
    return 0;
  int ok = fscanf(fp, "%127[0-9a-f]", commit) == 1;
  fclose(fp);
  if (!ok)
    return 0;
  pathf(ref, "%s/models--openai--clip-vit-large-patch14/snapshots/%s", cache, commit);
  return tokenizer_at(ref, out, cap);
}

int sdr_single_file_clip_tokenizer(char *out, size_t cap) {
  char dir[PATH_LEN];
  const char *env = getenv("SDREPL_CLIP_TOKENIZER"), *src = getenv("SDREPL_SOURCE_DIR");
  if (env && *env && tokenizer_at(env, out, cap))
    return 0;
  if (tokenizer_in_hub_cache(out, cap))
    return 0;
  if (src && *src) {
    pathf(dir, "%s/tests/fixtures/tokenizer/clip-vit-large-patch14", src);
    if (tokenizer_at(dir, out, cap))
      return 0;
  }
  /* this build's source tree: __FILE__ is <source>/engine/single_file.c */
  const char *file = __FILE__, *end = strstr(file, "engine/single_file.c");
  if (end && file[0] == '/') {
    pathf(dir, "%.*stests/fixtures/tokenizer/clip-vit-large-patch14", (int)(end - file), file);
    if (tokenizer_at(dir, out, cap))
      return 0;
  }
  return sdr_fail("a checkpoint carries no tokenizer and CLIP ViT-L/14's was not found: give "
                  "tokenizer_dir, set SDREPL_CLIP_TOKENIZER to a folder with its vocab.json and "
                  "merges.txt, or download openai/clip-vit-large-patch14 to the Hugging Face "
                  "cache");
}

/* ---- staging: a temporary folder per component ------------------------------------------ */

typedef struct sf_stage {
  char root[PATH_LEN];
  char made[MAX_STAGED][PATH_LEN]; /* files and folders, removed in reverse */
  int nmade;
  char redirected[MAX_REDIRECTED][PATH_LEN];
  int nredirected;
} sf_stage;

static int stage_path(sf_stage *s, char *out, const char *rel) {
  if (s->nmade == MAX_STAGED)
    return sdr_fail("single file: too many staged files");
  pathf(out, "%s/%s", s->root, rel);
  pathf(s->made[s->nmade++], "%s", out);
  return 0;
}

static int stage_dir(sf_stage *s, const char *rel) {
  char path[PATH_LEN];
  if (stage_path(s, path, rel) != 0)
    return -1;
  if (mkdir(path, 0700) != 0) {
    s->nmade--;
    return sdr_fail("cannot make %s: %s", path, strerror(errno));
  }
  return 0;
}

static int stage_text(sf_stage *s, const char *rel, const char *text) {
  char path[PATH_LEN];
  if (stage_path(s, path, rel) != 0)
    return -1;
  FILE *fp = fopen(path, "wb");
  int ok = fp && fputs(text, fp) >= 0;
  if (fp && fclose(fp) != 0)
    ok = 0;
  if (!ok) {
    if (!fp)
      s->nmade--;
    return sdr_fail("cannot write %s: %s", path, strerror(errno));
  }
  return 0;
}

static int stage_link(sf_stage *s, const char *rel, const char *target) {
  char path[PATH_LEN], abs[PATH_MAX];
  if (!realpath(target, abs))
    return sdr_fail("cannot open %s: %s", target, strerror(errno));
  if (stage_path(s, path, rel) != 0)
    return -1;
  if (symlink(abs, path) != 0) {
    s->nmade--;
    return sdr_fail("cannot link %s: %s", path, strerror(errno));
  }
  return 0;
}

static int stage_open(sf_stage *s) {
  memset(s, 0, sizeof *s);
  const char *tmp = getenv("TMPDIR");
  pathf(s->root, "%s/sdrepl-single-file-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(s->root))
    return sdr_fail("cannot make a temporary folder in %s: %s", tmp && *tmp ? tmp : "/tmp",
                    strerror(errno));
  return 0;
}

static void stage_close(sf_stage *s) {
  for (int i = 0; i < s->nredirected; i++)
    sdr_weights_redirect_end(s->redirected[i]);
  for (int i = s->nmade - 1; i >= 0; i--)
    if (unlink(s->made[i]) != 0)
      rmdir(s->made[i]);
  if (s->root[0])
    rmdir(s->root);
  memset(s, 0, sizeof *s);
}

/* A component folder: config (JSON text, or a file of config_dir to link), and
 * a placeholder weight file redirected to the views. */
static int stage_component(sf_stage *s, const char *comp, const char *weights_name,
                           const char *config_text, const char *config_file, sdr_weight_file *f,
                           const sdr_ldm_views *views) {
  char rel[256], path[PATH_LEN];
  if (stage_dir(s, comp) != 0)
    return -1;
  snprintf(rel, sizeof rel, "%s/config.json", comp);
  if ((config_file ? stage_link(s, rel, config_file) : stage_text(s, rel, config_text)) != 0)
    return -1;
  snprintf(rel, sizeof rel, "%s/%s", comp, weights_name);
  if (stage_text(s, rel, "") != 0)
    return -1;
  pathf(path, "%s/%s", s->root, rel);
  if (sdr_weights_redirect(path, f, views->v, views->n) != 0)
    return -1;
  if (s->nredirected == MAX_REDIRECTED) {
    sdr_weights_redirect_end(path);
    return sdr_fail("single file: too many staged components");
  }
  pathf(s->redirected[s->nredirected++], "%s", path);
  return 0;
}

/* SD 2.x's tokenizer (stabilityai/stable-diffusion-2) and SDXL's second
 * (laion/CLIP-ViT-bigG-14's): CLIP's files, padded with "!", as the folder `name`. */
static int stage_bang_tokenizer(sf_stage *s, const char *clip_dir, const char *name, char *out) {
  char target[PATH_LEN];
  static const char special[] =
      "{\"bos_token\": {\"content\": \"<|startoftext|>\", \"lstrip\": false, \"normalized\": true, "
      "\"rstrip\": false, \"single_word\": false}, \"eos_token\": {\"content\": "
      "\"<|endoftext|>\", \"lstrip\": false, \"normalized\": true, \"rstrip\": false, "
      "\"single_word\": false}, \"pad_token\": \"!\", \"unk_token\": {\"content\": "
      "\"<|endoftext|>\", \"lstrip\": false, \"normalized\": true, \"rstrip\": false, "
      "\"single_word\": false}}\n";
  static const char config[] = "{\"do_lower_case\": true, \"model_max_length\": 77, "
                               "\"pad_token\": \"!\", \"tokenizer_class\": \"CLIPTokenizer\"}\n";
  char rel[4][128];
  static const char *const files[] = {"vocab.json", "merges.txt", "special_tokens_map.json",
                                      "tokenizer_config.json"};
  for (int i = 0; i < 4; i++)
    snprintf(rel[i], sizeof rel[i], "%s/%s", name, files[i]);
  if (stage_dir(s, name) != 0)
    return -1;
  pathf(target, "%s/vocab.json", clip_dir);
  if (stage_link(s, rel[0], target) != 0)
    return -1;
  pathf(target, "%s/merges.txt", clip_dir);
  if (stage_link(s, rel[1], target) != 0 || stage_text(s, rel[2], special) != 0 ||
      stage_text(s, rel[3], config) != 0)
    return -1;
  pathf(out, "%s/%s", s->root, name);
  return 0;
}

/* ---- the pipeline ---------------------------------------------------------------------- */

static int views_or_fail(const sf_model *m, const char *what, const sdr_ldm_views *v) {
  if (!v->nunknown)
    return 0;
  char list[1024] = "";
  size_t at = 0;
  for (size_t i = 0; i < v->nunknown && i < 8 && at < sizeof list; i++)
    at += (size_t)snprintf(list + at, sizeof list - at, "%s%s", i ? ", " : "", v->unknown[i]);
  return sf_fail(m, "%zu key%s of the %s %s no place in diffusers' model: %s%s", v->nunknown,
                 v->nunknown == 1 ? "" : "s", what, v->nunknown == 1 ? "has" : "have", list,
                 v->nunknown > 8 ? ", ..." : "");
}

static int count_prefix(const sdr_weight_file *f, const char *prefix) {
  int n = 0;
  for (size_t i = 0; i < sdr_weight_file_count(f); i++)
    n += strncmp(sdr_weight_file_at(f, i)->name, prefix, strlen(prefix)) == 0;
  return n;
}

/* A text tower of the checkpoint: SD's one, or SDXL's two (the refiner has the second only). */
typedef struct sf_tower {
  const char *name;   /* the component: "text_encoder" or "text_encoder_2" */
  const char *prefix; /* its keys' */
  int openclip;
  int layers; /* the blocks kept */
  sbuf json;  /* its inferred config */
  sdr_ldm_views views;
} sf_tower;

static int towers_of(const sf_model *m, sf_tower *t) {
  memset(t, 0, 2 * sizeof *t);
  int n = 0;
  if (m->xl != 2)
    t[n++] = (sf_tower){"text_encoder",
                        m->xl         ? "conditioner.embedders.0.transformer."
                        : m->openclip ? "cond_stage_model.model."
                                      : "cond_stage_model.transformer.",
                        m->openclip && !m->xl};
  if (m->xl)
    t[n++] = (sf_tower){"text_encoder_2", m->bigg, 1};
  return n;
}

/* config_dir's config of an SDXL bigG tower, marked as holding the checkpoint's text_projection
 * (the transpose of a diffusers folder's), into *out (malloc'd). */
static int bigg_config_from(const char *path, char **out) {
  sdr_json j;
  if (sdr_json_load(&j, path) != 0)
    return -1;
  cJSON_DeleteItemFromObject(j.root, "text_projection_transposed");
  int ok = cJSON_AddBoolToObject(j.root, "text_projection_transposed", 1) != NULL &&
           (*out = cJSON_PrintUnformatted(j.root)) != NULL;
  sdr_json_free(&j);
  return ok ? 0 : sdr_fail("out of memory");
}

static int load_components(sdr_pipeline *p, sdr_backend *be, sdr_weight_file *f, sf_model *m,
                           int keep_dtype, const sdr_single_file_options *o, sf_stage *s) {
  sdr_ldm_views unet = {0}, vae = {0};
  sbuf uj = {0}, vj = {0}, sj = {0};
  sf_tower tw[2];
  const int ntw = towers_of(m, tw);
  char cfg[2][PATH_LEN], tcfg[PATH_LEN], dir[PATH_LEN], tok[PATH_LEN], clip[PATH_LEN];
  char *bigg_text = NULL;
  const char *cd = o->config_dir;
  int rc = -1;
  m->vae_levels = sdr_ldm_count(f, "first_stage_model.encoder.down");
  m->image_size = o->image_size > 0 ? o->image_size : m->xl ? 1024 : m->v2 ? 768 : 512;
  TRY(unet_layout(f, m));
  if (cd) {
    pathf(cfg[0], "%s/unet/config.json", cd);
    pathf(cfg[1], "%s/vae/config.json", cd);
    for (int i = 0; i < ntw; i++) {
      sdr_clip_text_config tc;
      pathf(tcfg, "%s/%s/config.json", cd, tw[i].name);
      TRY(sdr_clip_text_config_load(&tc, tcfg));
      tw[i].layers = tc.num_hidden_layers;
    }
  } else {
    TRY(infer_unet(f, m, &uj));
    TRY(infer_vae(f, m, &vj));
    for (int i = 0; i < ntw; i++)
      TRY(text_json(f, m, tw[i].prefix, tw[i].openclip, &tw[i].json, &tw[i].layers));
    int oom = uj.oom || vj.oom;
    for (int i = 0; i < ntw; i++)
      oom |= tw[i].json.oom;
    if (oom) {
      sdr_fail("out of memory");
      goto fail;
    }
  }
  /* convert_ldm_unet_checkpoint's rule: EMA when asked and over 100 model_ema keys */
  int ema = o->extract_ema && count_prefix(f, "model_ema") > 100;
  TRY(sdr_ldm_unet_views(f, m->unet_layers, ema, &unet));
  TRY(sdr_ldm_vae_views(f, m->vae_levels, &vae));
  TRY(views_or_fail(m, "UNet", &unet));
  TRY(views_or_fail(m, "VAE", &vae));
  TRY(stage_component(s, "unet", "diffusion_pytorch_model.safetensors", uj.p, cd ? cfg[0] : NULL, f,
                      &unet));
  TRY(stage_component(s, "vae", "diffusion_pytorch_model.safetensors", vj.p, cd ? cfg[1] : NULL, f,
                      &vae));
  for (int i = 0; i < ntw; i++) {
    sf_tower *t = &tw[i];
    TRY(t->openclip ? sdr_ldm_openclip_views(f, t->prefix, t->layers, m->xl != 0, &t->views)
                    : sdr_ldm_clip_views(f, t->prefix, &t->views));
    TRY(views_or_fail(m, i ? "second text encoder" : "text encoder", &t->views));
    const char *text = t->json.p, *file = NULL;
    if (cd) {
      pathf(tcfg, "%s/%s/config.json", cd, t->name);
      if (t->openclip && m->xl) {
        TRY(bigg_config_from(tcfg, &bigg_text));
        text = bigg_text;
      } else {
        file = tcfg;
      }
    }
    TRY(stage_component(s, t->name, "model.safetensors", text, file, f, &t->views));
  }

  /* the tokenizers: given, config_dir's, or CLIP's (padded with "!" for SD 2.x and for
   * SDXL's second, as laion/CLIP-ViT-bigG-14's) */
  const char *base_tok = o->tokenizer_dir;
  if (!base_tok && !cd) {
    TRY(sdr_single_file_clip_tokenizer(clip, sizeof clip));
    base_tok = clip;
  }
  if (m->xl != 2) {
    if (o->tokenizer_dir || !cd)
      TRY(m->openclip && !m->xl ? stage_bang_tokenizer(s, base_tok, "tokenizer", tok)
                                : pathf(tok, "%s", base_tok));
    else
      pathf(tok, "%s/tokenizer", cd);
    if (!(p->tokenizer = sdr_clip_tokenizer_load(tok)) ||
        sdr_pipeline_keep_tokenizer(p, 0, tok) != 0)
      goto prefixed;
  }
  if (m->xl) {
    if (o->tokenizer_dir || !cd)
      TRY(stage_bang_tokenizer(s, base_tok, "tokenizer_2", tok));
    else
      pathf(tok, "%s/tokenizer_2", cd);
    if (!(p->tokenizer_2 = sdr_clip_tokenizer_load(tok)) ||
        sdr_pipeline_keep_tokenizer(p, 1, tok) != 0)
      goto prefixed;
    /* what set_additional_components makes of a refiner and a base */
    p->force_zeros_for_empty_prompt = m->xl == 1;
    p->requires_aesthetics_score = m->xl == 2;
  }
  /* The loaders' messages name the component ("unet: 3 problems with the
   * weights: ..."); the checkpoint's path goes in front. */
  for (int i = 0; i < ntw; i++) {
    sdr_clip_text_model *tm =
        strcmp(tw[i].name, "text_encoder") ? &p->text_encoder_2 : &p->text_encoder;
    if (pathf(dir, "%s/%s", s->root, tw[i].name) != 0 ||
        sdr_clip_text_model_load(tm, be, dir, NULL, keep_dtype) != 0)
      goto prefixed;
  }
  sdr_vae_config vc;
  if (pathf(dir, "%s/unet", s->root) != 0 ||
      sdr_unet_load(&p->unet, be, dir, NULL, keep_dtype) != 0 ||
      pathf(tcfg, "%s/vae/config.json", s->root) != 0 || sdr_vae_config_load(&vc, tcfg) != 0 ||
      pathf(dir, "%s/vae", s->root) != 0 ||
      sdr_vae_load(&p->vae, be, dir, NULL, sdr_pipeline_vae_keep_dtype(p, &vc, keep_dtype)) != 0)
    goto prefixed;

  char *sched_text = NULL;
  if (cd) {
    pathf(dir, "%s/scheduler/scheduler_config.json", cd);
    sched_text = read_text(dir);
  } else if (scheduler_json(m, o, &sj) == 0 && !sj.oom) {
    sched_text = sj.p;
    sj.p = NULL;
  }
  if (!sched_text)
    goto fail;
  p->scheduler = sdr_scheduler_load(sched_text, -1);
  free(sched_text);
  if (!p->scheduler)
    goto fail;
  rc = 0;
  goto fail;
prefixed:
  sdr_fail_prefix("%s: ", m->path);
fail:
  sdr_ldm_views_free(&unet);
  sdr_ldm_views_free(&vae);
  for (int i = 0; i < ntw; i++) {
    sdr_ldm_views_free(&tw[i].views);
    free(tw[i].json.p);
  }
  free(bigg_text);
  free(uj.p);
  free(vj.p);
  free(sj.p);
  return rc;
}

int sdr_pipeline_load_single_file_ex(sdr_pipeline *p, sdr_backend *be, const char *path,
                                     int keep_dtype, const sdr_single_file_options *opts) {
  /* NULL or "" means unset, for each text option */
  sdr_single_file_options o_ = opts ? *opts : (sdr_single_file_options){0}, *o = &o_;
  const char **texts[] = {&o_.config_dir, &o_.tokenizer_dir, &o_.scheduler_type,
                          &o_.prediction_type};
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
    if (*texts[i] && !**texts[i])
      *texts[i] = NULL;
  memset(p, 0, sizeof *p);
  p->be = be;
  p->dtype = keep_dtype >= 0 ? (sdr_dtype)keep_dtype : SDR_F32;
  sf_model m = {.path = path};
  sf_stage s = {0};
  sdr_weight_file *f = NULL;
  if (o->config_dir && !is_dir(o->config_dir))
    return sdr_fail("%s: config_dir %s is not a folder", path, o->config_dir);
  if (!(f = sdr_weight_file_open(path)) || identify(f, &m) != 0)
    goto fail;
  if (o->want_xl && (o->want_xl > 0) != (m.xl != 0)) {
    sf_fail(&m,
            o->want_xl > 0
                ? "not a Stable Diffusion XL checkpoint (no conditioner.embedders.*); load it with "
                  "StableDiffusionPipeline.from_single_file"
                : "a Stable Diffusion XL checkpoint; load it with "
                  "StableDiffusionXLPipeline.from_single_file");
    goto fail;
  }
  if (stage_open(&s) != 0 || load_components(p, be, f, &m, keep_dtype, o, &s) != 0)
    goto fail;
  if (sdr_pipeline_text_width(p) != p->unet.cfg.cross_attention_dim[0]) {
    sf_fail(&m, "the text encoder%s %d wide, the UNet attends to %d",
            m.xl == 1 ? "s are together" : " is", sdr_pipeline_text_width(p),
            p->unet.cfg.cross_attention_dim[0]);
    goto fail;
  }
  const sdr_clip_tokenizer *toks[2] = {p->tokenizer, p->tokenizer_2};
  const sdr_clip_text_model *models[2] = {&p->text_encoder, &p->text_encoder_2};
  for (int i = 0; i < 2; i++)
    if (toks[i] && sdr_clip_tokenizer_len(toks[i]) > (size_t)models[i]->cfg.vocab_size) {
      sf_fail(&m,
              "the tokenizer has %zu tokens, the text encoder embeds %d; give the model's own "
              "tokenizer (tokenizer_dir or config_dir)",
              sdr_clip_tokenizer_len(toks[i]), models[i]->cfg.vocab_size);
      goto fail;
    }
  stage_close(&s);
  sdr_weight_file_release(f); /* the components hold it now */
  sdr_arena_init(&p->arena, be);
  return 0;
fail:
  stage_close(&s);
  sdr_weight_file_release(f);
  sdr_pipeline_free(p);
  return -1;
}

int sdr_pipeline_load_single_file(sdr_pipeline *p, sdr_backend *be, const char *path,
                                  int keep_dtype) {
  return sdr_pipeline_load_single_file_ex(p, be, path, keep_dtype, NULL);
}

/* engine/hub_files.c — which files of a repo a from_pretrained needs.
 *
 * A pipeline: what diffusers 0.27's DiffusionPipeline.download passes to
 * snapshot_download as allow_patterns and ignore_patterns:
 *   - variant_compatible_siblings: the variant's weight files, and the plain
 *     ones that have no variant twin;
 *   - the components' config.json, every file of the folders that hold no
 *     weights (tokenizer, scheduler), the root configs;
 *   - safetensors only when every .bin has a .safetensors beside it
 *     (is_safetensors_compatible), else .bin only; never flax, onnx or their indexes.
 * Components the caller leaves out (the safety checker when declined) are skipped
 * as diffusers skips components passed to from_pretrained. pipeline.py (custom
 * code) is never fetched: sdrepl runs no Python.
 * One model (ModelMixin, PreTrainedModel): the same choice inside its folder,
 * with its config.json. A tokenizer: transformers' CLIPTokenizer files. A
 * scheduler: scheduler_config.json.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "engine/error.h" // sdr_fail
#include "engine/hub_internal.h"
#include "engine/lora.h"         // sdr_lora_best_guess
#include "engine/model_config.h" // sdr_json_load

/* ---- a list of strings ------------------------------------------------------ */

typedef struct strlist {
  char **v;
  size_t n, cap;
} strlist;

static int sl_add(strlist *l, char *s) { /* takes s */
  if (!s)
    return -1;
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 16;
    char **v = realloc(l->v, cap * sizeof *v);
    if (!v) {
      free(s);
      return sdr_fail("out of memory");
    }
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = s;
  return 0;
}

static int sl_has(const strlist *l, const char *s) {
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->v[i], s) == 0)
      return 1;
  return 0;
}

static void sl_free(strlist *l) {
  for (size_t i = 0; i < l->n; i++)
    free(l->v[i]);
  free(l->v);
  memset(l, 0, sizeof *l);
}

/* ---- variant_compatible_siblings --------------------------------------------- */

/* The stems and extensions of diffusers' and transformers' weight names
 * (WEIGHTS_NAME, SAFETENSORS_WEIGHTS_NAME, FLAX_WEIGHTS_NAME, ONNX_WEIGHTS_NAME,
 * ONNX_EXTERNAL_WEIGHTS_NAME and transformers' three). */
static const char *const prefixes[] = {"diffusion_pytorch_model",
                                       "diffusion_flax_model",
                                       "model",
                                       "weights",
                                       "pytorch_model",
                                       "flax_model"};
static const char *const suffixes[] = {"bin", "safetensors", "msgpack", "onnx", "pb"};
enum {
  NPREFIX = sizeof prefixes / sizeof prefixes[0],
  NSUFFIX = sizeof suffixes / sizeof suffixes[0]
};

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

/* "\.(bin|safetensors|...)$" at s: the whole rest. */
static int is_suffix(const char *s) {
  if (*s != '.')
    return 0;
  for (int i = 0; i < NSUFFIX; i++)
    if (strcmp(s + 1, suffixes[i]) == 0)
      return 1;
  return 0;
}

/* "-\d{5}-of-\d{5}" at s: its length, or 0. */
static size_t shard_part(const char *s) {
  static const char shape[] = "-ddddd-of-ddddd";
  for (size_t i = 0; i < sizeof shape - 1; i++)
    if (shape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != shape[i])
      return 0;
  return sizeof shape - 1;
}

/* The regexes of variant_compatible_siblings, matched (re.match) on a base name.
 * Each tries every stem, as the alternation would. */
static int variant_file(const char *b, const char *variant) {
  /* (prefixes)\.(variant|variant-\d{5}-of-\d{5})\.(suffixes)$ */
  size_t vn = strlen(variant);
  for (int i = 0; i < NPREFIX; i++) {
    size_t pn = strlen(prefixes[i]);
    if (strncmp(b, prefixes[i], pn) != 0 || b[pn] != '.' || strncmp(b + pn + 1, variant, vn) != 0)
      continue;
    const char *r = b + pn + 1 + vn;
    if (is_suffix(r) || is_suffix(r + shard_part(r)))
      return 1;
  }
  return 0;
}

static int variant_index(const char *b, const char *variant) {
  /* (prefixes)\.(suffixes)\.index\.{variant}\.json$ */
  for (int i = 0; i < NPREFIX; i++) {
    size_t pn = strlen(prefixes[i]);
    if (strncmp(b, prefixes[i], pn) != 0 || b[pn] != '.')
      continue;
    for (int j = 0; j < NSUFFIX; j++) {
      size_t sn = strlen(suffixes[j]);
      const char *r = b + pn + 1;
      if (strncmp(r, suffixes[j], sn) == 0 && strncmp(r + sn, ".index.", 7) == 0 &&
          strncmp(r + sn + 7, variant, strlen(variant)) == 0 &&
          strcmp(r + sn + 7 + strlen(variant), ".json") == 0)
        return 1;
    }
  }
  return 0;
}

static int plain_file(const char *b) {
  /* (prefixes)(-\d{5}-of-\d{5})?\.(suffixes)$ */
  for (int i = 0; i < NPREFIX; i++) {
    size_t pn = strlen(prefixes[i]);
    if (strncmp(b, prefixes[i], pn) == 0 &&
        (is_suffix(b + pn) || (shard_part(b + pn) && is_suffix(b + pn + shard_part(b + pn)))))
      return 1;
  }
  return 0;
}

static int plain_index(const char *b) {
  /* (prefixes)\.(suffixes)\.index\.json, not anchored at the end */
  for (int i = 0; i < NPREFIX; i++) {
    size_t pn = strlen(prefixes[i]);
    if (strncmp(b, prefixes[i], pn) != 0 || b[pn] != '.')
      continue;
    for (int j = 0; j < NSUFFIX; j++) {
      size_t sn = strlen(suffixes[j]);
      if (strncmp(b + pn + 1, suffixes[j], sn) == 0 &&
          strncmp(b + pn + 1 + sn, ".index.json", 11) == 0)
        return 1;
    }
  }
  return 0;
}

/* re.match(r"^(.*?)\d{5}-of-\d{5}", f): the shard numbering anywhere in f. */
static int has_shard_number(const char *f) {
  static const char shape[] = "ddddd-of-ddddd";
  for (const char *p = f; *p; p++) {
    size_t i = 0;
    while (i < sizeof shape - 1 && p[i] &&
           (shape[i] == 'd' ? p[i] >= '0' && p[i] <= '9' : p[i] == shape[i]))
      i++;
    if (i == sizeof shape - 1)
      return 1;
  }
  return 0;
}

/* convert_to_variant(filename), on the whole path as diffusers does. */
static char *convert_to_variant(const char *f, const char *variant) {
  if (strstr(f, "index")) { /* filename.replace("index", f"index.{variant}") */
    size_t count = 0;
    for (const char *p = f; (p = strstr(p, "index")); p += 5)
      count++;
    char *out = malloc(strlen(f) + count * (strlen(variant) + 1) + 1);
    if (!out)
      return NULL;
    char *o = out;
    for (const char *p = f;;) {
      const char *q = strstr(p, "index");
      if (!q) {
        strcpy(o, p);
        break;
      }
      memcpy(o, p, (size_t)(q - p));
      o += q - p;
      o += sprintf(o, "index.%s", variant);
      p = q + 5;
    }
    return out;
  }
  if (has_shard_number(f)) { /* f"{split('-')[0]}.{variant}-{'-'.join(split('-')[1:])}" */
    const char *dash = strchr(f, '-');
    return hub_printf("%.*s.%s-%s", (int)(dash - f), f, variant, dash + 1);
  }
  /* f"{filename.split('.')[0]}.{variant}.{filename.split('.')[1]}" */
  const char *d1 = strchr(f, '.');
  if (!d1)
    return hub_printf("%s", f); /* Python raises IndexError; such a name is no weight file */
  const char *d2 = strchr(d1 + 1, '.');
  size_t n2 = d2 ? (size_t)(d2 - d1 - 1) : strlen(d1 + 1);
  return hub_printf("%.*s.%s.%.*s", (int)(d1 - f), f, variant, (int)n2, d1 + 1);
}

/* usable = variant files + plain files whose variant name is not among them;
 * *n_variant counts the variant files. */
static int variant_compatible_siblings(const char *const *files, size_t n, const char *variant,
                                       strlist *usable, size_t *n_variant) {
  strlist variants = {0};
  for (size_t i = 0; variant && i < n; i++) {
    const char *b = base_name(files[i]);
    if ((variant_file(b, variant) || variant_index(b, variant)) &&
        sl_add(&variants, hub_printf("%s", files[i])) != 0)
      goto fail;
  }
  *n_variant = variants.n;
  for (size_t i = 0; i < variants.n; i++)
    if (sl_add(usable, hub_printf("%s", variants.v[i])) != 0)
      goto fail;
  for (size_t i = 0; i < n; i++) {
    const char *b = base_name(files[i]);
    if (!plain_file(b) && !plain_index(b))
      continue;
    int twin = 0;
    if (variant) {
      char *v = convert_to_variant(files[i], variant);
      if (!v) {
        sdr_fail("out of memory");
        goto fail;
      }
      twin = sl_has(&variants, v);
      free(v);
    }
    if (!twin && !sl_has(usable, files[i]) && sl_add(usable, hub_printf("%s", files[i])) != 0)
      goto fail;
  }
  sl_free(&variants);
  return 0;
fail:
  sl_free(&variants);
  return -1;
}

/* ---- is_safetensors_compatible -------------------------------------------------- */

static int first_part_in(const char *f, const strlist *names) {
  const char *slash = strchr(f, '/');
  if (!slash || strchr(slash + 1, '/')) /* len(filename.split("/")) == 2 */
    return 0;
  for (size_t i = 0; i < names->n; i++)
    if (strlen(names->v[i]) == (size_t)(slash - f) &&
        strncmp(names->v[i], f, (size_t)(slash - f)) == 0)
      return 1;
  return 0;
}

static const char *
extension(const char *f) { /* os.path.splitext's: leading dots are no extension */
  const char *b = base_name(f);
  b += strspn(b, ".");
  const char *dot = strrchr(b, '.');
  return dot ? dot : "";
}

/* Every .bin has its .safetensors: "x/pytorch_model.fp16.bin" -> "x/model.fp16.safetensors". */
static int safetensors_compatible(const strlist *files, const strlist *passed) {
  for (size_t i = 0; i < files->n; i++) {
    const char *f = files->v[i];
    if (first_part_in(f, passed) || strcmp(extension(f), ".bin") != 0)
      continue;
    const char *b = base_name(f);
    size_t stem_len = strlen(b) - 4;
    char stem[512];
    if (stem_len >= sizeof stem)
      return 0;
    /* filename.replace("pytorch_model", "model") when it starts with it */
    if (strncmp(b, "pytorch_model", 13) == 0) {
      snprintf(stem, sizeof stem, "model");
      size_t j = 5;
      for (size_t k = 13; k < stem_len && j + 1 < sizeof stem;) {
        if (strncmp(b + k, "pytorch_model", 13) == 0 && k + 13 <= stem_len) {
          memcpy(stem + j, "model", 5);
          j += 5;
          k += 13;
        } else {
          stem[j++] = b[k++];
        }
      }
      stem[j] = 0;
    } else {
      snprintf(stem, sizeof stem, "%.*s", (int)stem_len, b);
    }
    char *want = hub_printf("%.*s%s.safetensors", (int)(b - f), f, stem);
    int ok = want && sl_has(files, want);
    free(want);
    if (!ok)
      return 0;
  }
  return 1;
}

/* ---- the choice ------------------------------------------------------------------ */

static int matches_any(const char *f, const strlist *patterns) {
  for (size_t i = 0; i < patterns->n; i++)
    if (fnmatch(patterns->v[i], f, 0) == 0) /* fnmatch.translate: '*' also crosses '/' */
      return 1;
  return 0;
}

static int in_folder(const char *f, const char *folder) {
  if (!folder || !*folder)
    return strchr(f, '/') == NULL;
  size_t n = strlen(folder);
  return strncmp(f, folder, n) == 0 && f[n] == '/' && !strchr(f + n + 1, '/');
}

/* The model folders and the others, from model_index.json: keys whose value
 * is a list, but "_class_name"; those not in `wanted` go to `passed`. */
static int read_model_index(const char *path, const char *const *wanted, strlist *folders,
                            strlist *passed) {
  sdr_json j;
  if (sdr_json_load(&j, path) != 0)
    return -1;
  int rc = 0;
  for (const cJSON *e = j.root->child; e && rc == 0; e = e->next) {
    if (!cJSON_IsArray(e) || strcmp(e->string, "_class_name") == 0)
      continue;
    int keep = !wanted;
    for (const char *const *w = wanted; w && *w && !keep; w++)
      keep = strcmp(*w, e->string) == 0;
    rc = sl_add(keep ? folders : passed, hub_printf("%s", e->string));
  }
  sdr_json_free(&j);
  return rc;
}

static int pipeline_patterns(const strlist *usable, const sdr_hub_options *o,
                             const char *model_index, strlist *allow, strlist *passed) {
  strlist folders = {0}, model_folders = {0};
  int rc = -1;
  if (read_model_index(model_index, o->components, &folders, passed) != 0)
    goto done;
  for (size_t i = 0; i < usable->n; i++) {
    const char *f = usable->v[i];
    const char *slash = strrchr(f, '/');
    char *dir = hub_printf("%.*s", slash ? (int)(slash - f) : 0, f);
    if (!dir)
      goto done;
    if ((sl_has(&folders, dir) || sl_has(passed, dir)) && !sl_has(&model_folders, dir)) {
      if (sl_add(&model_folders, dir) != 0)
        goto done;
    } else {
      free(dir);
    }
    if (sl_add(allow, hub_printf("%s", f)) != 0)
      goto done;
  }
  for (size_t i = 0; i < folders.n; i++)
    if (!sl_has(&model_folders, folders.v[i]) &&
        sl_add(allow, hub_printf("%s/*", folders.v[i])) != 0)
      goto done;
  for (size_t i = 0; i < model_folders.n; i++)
    if (sl_add(allow, hub_printf("%s/config.json", model_folders.v[i])) != 0)
      goto done;
  static const char *const root[] = {"scheduler_config.json", "config.json", "model_index.json"};
  for (size_t i = 0; i < 3; i++)
    if (sl_add(allow, hub_printf("%s", root[i])) != 0)
      goto done;
  /* Don't download any objects that are passed */
  size_t j = 0;
  for (size_t i = 0; i < allow->n; i++) {
    if (first_part_in(allow->v[i], passed))
      free(allow->v[i]);
    else
      allow->v[j++] = allow->v[i];
  }
  allow->n = j;
  rc = 0;
done:
  sl_free(&folders);
  sl_free(&model_folders);
  return rc;
}

const char **hub_needed_files(const char *const *siblings, size_t n, sdr_hub_kind kind,
                              const sdr_hub_options *o, const char *model_index) {
  const char *sub = o->subfolder && *o->subfolder ? o->subfolder : NULL;
  strlist pool = {0}, usable = {0}, allow = {0}, ignore = {0}, passed = {0};
  const char **out = NULL;
  /* The files one component's choice is made from: its folder's. */
  for (size_t i = 0; i < n; i++)
    if ((kind == SDR_HUB_PIPELINE || in_folder(siblings[i], sub)) &&
        sl_add(&pool, hub_printf("%s", siblings[i])) != 0)
      goto done;
  char prefix[512];
  snprintf(prefix, sizeof prefix, "%s%s", sub ? sub : "", sub ? "/" : "");
  if (kind == SDR_HUB_TEXTUAL_INVERSION) {
    /* load_textual_inversion_state_dicts: weight_name, else the .safetensors when the repo
     * has it (and safetensors are allowed), else the pickle */
    char *pick = NULL;
    if (o->weight_name) {
      pick = hub_printf("%s%s", prefix, o->weight_name);
    } else {
      pick = hub_printf("%slearned_embeds.safetensors", prefix);
      if (pick && (o->use_safetensors == 0 || !sl_has(&pool, pick)) && o->use_safetensors != 1) {
        free(pick);
        pick = hub_printf("%slearned_embeds.bin", prefix);
      }
    }
    if (!pick || !sl_has(&pool, pick)) {
      sdr_fail("the repo has no %s (give weight_name for another file)",
               pick ? pick : "learned_embeds file");
      free(pick);
      goto done;
    }
    if (sl_add(&allow, pick) != 0)
      goto done;
  } else if (kind == SDR_HUB_LORA || kind == SDR_HUB_FILE) {
    /* lora_state_dict: weight_name, else _best_guess_weight_name's .safetensors, else .bin;
     * a single file's link: its file */
    char *pick = o->weight_name ? hub_printf("%s%s", prefix, o->weight_name) : NULL;
    if (!o->weight_name && kind == SDR_HUB_LORA) {
      int k = sdr_lora_choose_file((const char *const *)pool.v, pool.n, o->use_safetensors);
      if (k == -2)
        goto done;
      if (k >= 0)
        pick = hub_printf("%s", pool.v[k]);
    }
    if (!pick || !sl_has(&pool, pick)) {
      sdr_fail(kind == SDR_HUB_FILE ? "the repo has no %s"
                                    : "the repo has no %s (give "
                                      "weight_name for another file)",
               pick ? pick : "LoRA weights file (.safetensors or .bin)");
      free(pick);
      goto done;
    }
    if (sl_add(&allow, pick) != 0)
      goto done;
  } else if (kind == SDR_HUB_TOKENIZER || kind == SDR_HUB_SCHEDULER) {
    static const char *const tok[] = {
        "vocab.json",        "merges.txt", "tokenizer_config.json", "special_tokens_map.json",
        "added_tokens.json", NULL};
    static const char *const sched[] = {"scheduler_config.json", NULL};
    const char *const *names = kind == SDR_HUB_TOKENIZER ? tok : sched;
    char *first = hub_printf("%s%s", prefix, names[0]);
    int found = first && sl_has(&pool, first);
    if (!found) {
      sdr_fail("no %s in the repo, so it holds no %s there%s", first ? first : names[0],
               kind == SDR_HUB_TOKENIZER ? "tokenizer" : "scheduler",
               sub ? "" : " (a subfolder option such as \"tokenizer\" may be missing)");
      free(first);
      goto done;
    }
    free(first);
    for (const char *const *nm = names; *nm; nm++)
      if (sl_add(&allow, hub_printf("%s%s", prefix, *nm)) != 0)
        goto done;
  } else {
    size_t n_variant = 0;
    if (variant_compatible_siblings((const char *const *)pool.v, pool.n, o->variant, &usable,
                                    &n_variant) != 0)
      goto done;
    if (o->variant && n_variant == 0) {
      sdr_fail("the repo has no weight files of variant '%s'%s%s: leave the variant option out "
               "to load its plain files",
               o->variant, sub ? " in " : "", sub ? sub : "");
      goto done;
    }
    if (kind == SDR_HUB_PIPELINE) {
      if (pipeline_patterns(&usable, o, model_index, &allow, &passed) != 0)
        goto done;
    } else {
      char *config = hub_printf("%sconfig.json", prefix);
      if (!config || !sl_has(&pool, config)) {
        sdr_fail("no %s in the repo%s", config ? config : "config.json",
                 sub ? "" : " (a subfolder option such as \"unet\" may be missing)");
        free(config);
        goto done;
      }
      if (sl_add(&allow, config) != 0)
        goto done;
      for (size_t i = 0; i < usable.n; i++)
        if (sl_add(&allow, hub_printf("%s", usable.v[i])) != 0)
          goto done;
    }
    /* use_safetensors None means True with pickles allowed as the fallback. */
    int compatible = safetensors_compatible(&usable, &passed);
    if (o->use_safetensors == 1 && !compatible) {
      sdr_fail("the repo lacks .safetensors weights for some .bin files%s%s: pass use_safetensors "
               "= false (or leave it out) to load the .bin files",
               o->variant ? " of variant " : "", o->variant ? o->variant : "");
      goto done;
    }
    static const char *const drop_bin[] = {"*.bin", "*.msgpack", "*.onnx", "*.pb"};
    static const char *const drop_st[] = {"*.safetensors", "*.msgpack", "*.onnx", "*.pb"};
    const char *const *drop = o->use_safetensors != 0 && compatible ? drop_bin : drop_st;
    for (int i = 0; i < 4; i++)
      if (sl_add(&ignore, hub_printf("%s", drop[i])) != 0 ||
          sl_add(&ignore, hub_printf("%s.index.*json", drop[i])) != 0)
        goto done;
  }
  out = calloc(n + 1, sizeof *out);
  if (!out) {
    sdr_fail("out of memory");
    goto done;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (matches_any(siblings[i], &allow) && !matches_any(siblings[i], &ignore))
      out[k++] = siblings[i];
done:
  sl_free(&pool);
  sl_free(&usable);
  sl_free(&allow);
  sl_free(&ignore);
  sl_free(&passed);
  return out;
}

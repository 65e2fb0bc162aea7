/* engine/lora_load.c — load_lora_weights' reading of a state dict (diffusers 0.27
 * lora_state_dict, _convert_kohya_lora_to_diffusers, load_lora_into_unet and
 * load_lora_into_text_encoder with PEFT's LoraConfig): which weight each pair goes
 * to, its rank, and the lora_alpha PEFT ends up giving it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/lora.h"

/* One module's pair as found in the file. */
typedef struct found {
  sdr_lora_part part;
  char *module; /* diffusers' module name, or Kohya's flattened one until resolved */
  int kohya;
  const sdr_lora_entry *down, *up, *alpha;
  int order; /* when its up key came (PEFT's rank dict is in that order) */
} found;

typedef struct found_list {
  found *v;
  int n;
} found_list;

static int starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static int ends_with(const char *s, const char *end) {
  size_t a = strlen(s), b = strlen(end);
  return a >= b && strcmp(s + a - b, end) == 0;
}

static found *module_of(found_list *l, sdr_lora_part part, const char *module, size_t len,
                        int kohya) {
  for (int i = 0; i < l->n; i++)
    if (l->v[i].part == part && strlen(l->v[i].module) == len &&
        strncmp(l->v[i].module, module, len) == 0)
      return &l->v[i];
  found *v = realloc(l->v, (size_t)(l->n + 1) * sizeof *v);
  if (!v)
    return NULL;
  l->v = v;
  found *f = &l->v[l->n];
  memset(f, 0, sizeof *f);
  f->part = part;
  f->kohya = kohya;
  f->order = -1;
  if (!(f->module = strndup(module, len)))
    return NULL;
  l->n++;
  return f;
}

/* ---- Kohya: lora_unet_<module with _ for .>.lora_down.weight, .lora_up.weight, .alpha ---- */

static const char *kohya_prefixes[] = {"lora_unet_", "lora_te_", "lora_te1_", "lora_te2_"};

static int is_kohya(const sdr_lora_file *f) {
  for (size_t i = 0; i < f->n; i++) {
    int ok = 0;
    for (int p = 0; p < 4; p++)
      ok |= starts_with(f->e[i].key, kohya_prefixes[p]);
    if (!ok)
      return 0;
  }
  return f->n > 0;
}

static const sdr_lora_entry *entry(const sdr_lora_file *f, const char *key) {
  for (size_t i = 0; i < f->n; i++)
    if (strcmp(f->e[i].key, key) == 0)
      return &f->e[i];
  return NULL;
}

static int64_t numel(const sdr_lora_entry *e) {
  int64_t n = 1;
  for (int i = 0; i < e->ndim; i++)
    n *= e->shape[i];
  return n;
}

/* lora_state_dict's test for SGM block names: any key with one */
static int has_sgm_names(const sdr_lora_file *f) {
  for (size_t i = 0; i < f->n; i++)
    if (strstr(f->e[i].key, "input_blocks") || strstr(f->e[i].key, "middle_block") ||
        strstr(f->e[i].key, "output_blocks"))
      return 1;
  return 0;
}

/* sgm_lpb: the UNet's layers_per_block where Kohya's SGM block names are mapped (an SDXL
 * pipeline's LoRA that has them), else 0. */
static int read_kohya(const sdr_lora_file *f, found_list *out, int sgm_lpb) {
  unsigned char *used = calloc(f->n ? f->n : 1, 1);
  if (!used)
    return sdr_fail("out of memory");
  int rc = 0, order = 0;
  for (size_t i = 0; rc == 0 && i < f->n; i++) {
    const char *key = f->e[i].key;
    if (!ends_with(key, "lora_down.weight"))
      continue;
    const char *dot = strchr(key, '.');
    size_t name_len = dot ? (size_t)(dot - key) : strlen(key);
    char up_key[1024], alpha_key[1024];
    snprintf(up_key, sizeof up_key, "%.*s.lora_up.weight", (int)name_len, key);
    snprintf(alpha_key, sizeof alpha_key, "%.*s.alpha", (int)name_len, key);
    const sdr_lora_entry *up = entry(f, up_key), *alpha = entry(f, alpha_key);
    if (!up) {
      rc = sdr_fail("the LoRA has '%s' but no '%s'", key, up_key);
      break;
    }
    if (alpha && numel(alpha) != 1) {
      rc = sdr_fail("the LoRA's '%s' holds %lld values; an alpha is one", alpha_key,
                    (long long)numel(alpha));
      break;
    }
    int p = 0;
    while (p < 4 && !starts_with(key, kohya_prefixes[p]))
      p++;
    const char *flat = key + strlen(kohya_prefixes[p]);
    size_t flat_len = name_len - strlen(kohya_prefixes[p]);
    /* diffusers keeps a text encoder's pair only for its attention and MLP */
    if (p != 0 && !strstr(key, "self_attn") && !strstr(key, "mlp"))
      continue;
    used[i] = 1;
    used[up - f->e] = 1;
    if (alpha)
      used[alpha - f->e] = 1;
    char mapped[1024];
    if (p == 0 && sgm_lpb) {
      if ((rc = sdr_lora_sgm_name(flat, flat_len, sgm_lpb, mapped, sizeof mapped)) != 0)
        break;
      flat = mapped;
      flat_len = strlen(mapped);
    }
    const sdr_lora_part part = p == 0   ? SDR_LORA_UNET
                               : p == 3 ? SDR_LORA_TEXT_ENCODER_2
                                        : SDR_LORA_TEXT_ENCODER;
    found *m = module_of(out, part, flat, flat_len, 1);
    if (!m) {
      rc = sdr_fail("out of memory");
      break;
    }
    m->down = &f->e[i];
    m->up = up;
    m->alpha = alpha;
    m->order = order++;
  }
  if (rc == 0) {
    size_t left = 0, len = 0;
    for (size_t i = 0; i < f->n; i++)
      if (!used[i]) {
        left++;
        len += strlen(f->e[i].key) + 2;
      }
    if (left) {
      char *names = malloc(len + 1), *w = names;
      for (size_t i = 0; names && i < f->n; i++)
        if (!used[i])
          w += sprintf(w, "%s%s", w == names ? "" : ", ", f->e[i].key);
      rc = sdr_fail("The following keys have not been correctly be renamed: \n\n %s",
                    names ? names : "(out of memory)");
      free(names);
    }
  }
  free(used);
  return rc;
}

/* ---- diffusers' and PEFT's names ------------------------------------------------ */

/* The suffixes that say which half a key is, after ".processor." is dropped. */
static const struct {
  const char *suffix;
  int up;
} halves[] = {
    {".lora_A.weight", 0},
    {".lora_B.weight", 1},
    {".lora.down.weight", 0},
    {".lora.up.weight", 1},
    {".lora_linear_layer.down.weight", 0},
    {".lora_linear_layer.up.weight", 1},
};

/* The attention processors' names (to_q_lora.down.weight) and what they stand for in the
 * UNet and in CLIP. */
static const struct {
  const char *proc, *unet, *clip;
} procs[] = {
    {".to_q_lora", ".to_q", ".q_proj"},
    {".to_k_lora", ".to_k", ".k_proj"},
    {".to_v_lora", ".to_v", ".v_proj"},
    {".to_out_lora", ".to_out.0", ".out_proj"},
};

/* key (its part's prefix gone) into out's module; 0, or 1 when not a LoRA half. */
static int add_half(found_list *out, sdr_lora_part part, const char *key, const sdr_lora_entry *e,
                    int *order) {
  char name[1024];
  /* KEYS_TO_ALWAYS_REPLACE: ".processor." -> "." */
  const char *proc = strstr(key, ".processor.");
  if (proc)
    snprintf(name, sizeof name, "%.*s%s", (int)(proc - key), key, proc + 10);
  else
    snprintf(name, sizeof name, "%s", key);
  size_t len = strlen(name);
  for (size_t h = 0; h < sizeof halves / sizeof *halves; h++) {
    if (!ends_with(name, halves[h].suffix))
      continue;
    size_t mlen = len - strlen(halves[h].suffix);
    char module[1024];
    snprintf(module, sizeof module, "%.*s", (int)mlen, name);
    for (size_t p = 0; p < sizeof procs / sizeof *procs; p++) {
      size_t pl = strlen(procs[p].proc);
      if (mlen >= pl && strcmp(module + mlen - pl, procs[p].proc) == 0) {
        snprintf(module + mlen - pl, sizeof module - (mlen - pl), "%s",
                 part == SDR_LORA_UNET ? procs[p].unet : procs[p].clip);
        break;
      }
    }
    found *m = module_of(out, part, module, strlen(module), 0);
    if (!m)
      return sdr_fail("out of memory");
    if (halves[h].up) {
      m->up = e;
      m->order = (*order)++;
    } else {
      m->down = e;
    }
    return 0;
  }
  /* to_q_lora.down.weight and its kin */
  for (size_t p = 0; p < sizeof procs / sizeof *procs; p++) {
    for (int up = 0; up < 2; up++) {
      char suffix[64];
      snprintf(suffix, sizeof suffix, "%s.%s.weight", procs[p].proc, up ? "up" : "down");
      if (!ends_with(name, suffix))
        continue;
      char module[1024];
      snprintf(module, sizeof module, "%.*s%s", (int)(len - strlen(suffix)), name,
               part == SDR_LORA_UNET ? procs[p].unet : procs[p].clip);
      found *m = module_of(out, part, module, strlen(module), 0);
      if (!m)
        return sdr_fail("out of memory");
      if (up) {
        m->up = e;
        m->order = (*order)++;
      } else {
        m->down = e;
      }
      return 0;
    }
  }
  return 1;
}

static int read_diffusers(const sdr_lora_file *f, found_list *out) {
  for (size_t i = 0; i < f->n; i++)
    if (!strstr(f->e[i].key, "lora"))
      return sdr_fail("Invalid LoRA checkpoint.");
  /* the newer format names each key's model; the older one is all the UNet's */
  int prefixed = 1;
  for (size_t i = 0; i < f->n; i++)
    prefixed &= starts_with(f->e[i].key, "unet") || starts_with(f->e[i].key, "text_encoder");
  int order = 0;
  for (size_t i = 0; i < f->n; i++) {
    const char *key = f->e[i].key;
    sdr_lora_part part = SDR_LORA_UNET;
    if (prefixed) {
      if (starts_with(key, "unet.")) {
        key += 5;
      } else if (starts_with(key, "text_encoder.")) {
        key += 13;
        part = SDR_LORA_TEXT_ENCODER;
      } else if (starts_with(key, "text_encoder_2.")) {
        key += 15;
        part = SDR_LORA_TEXT_ENCODER_2;
      } else {
        continue; /* "unet" or "text_encoder" alone, which no loader takes */
      }
    }
    int rc = add_half(out, part, key, &f->e[i], &order);
    if (rc < 0)
      return -1;
    if (rc > 0)
      return sdr_fail("'%s' is not a LoRA weight that load_lora_weights reads (lora_A/lora_B, "
                      "lora.down/lora.up, lora_linear_layer, to_q_lora, or Kohya's "
                      "lora_down/lora_up)",
                      f->e[i].key);
  }
  for (int i = 0; i < out->n; i++)
    if (!out->v[i].down || !out->v[i].up)
      return sdr_fail("the LoRA's '%s' has its %s half only", out->v[i].module,
                      out->v[i].down ? "down" : "up");
  return 0;
}

/* ---- where each pair goes ------------------------------------------------------ */

/* Kohya's flattened name (dots as underscores) back into the model's weight name. */
static int unflatten(sdr_weights *w, found *f) {
  for (size_t i = 0; i < sdr_weights_nbound(w); i++) {
    const char *name = sdr_weights_bound_name(w, i);
    size_t n = strlen(name), k = strlen(f->module);
    if (n != k + 7 || strcmp(name + k, ".weight") != 0)
      continue;
    int same = 1;
    for (size_t c = 0; same && c < k; c++)
      same = (name[c] == '.' ? '_' : name[c]) == f->module[c];
    if (same) {
      free(f->module);
      return (f->module = strndup(name, k)) ? 1 : sdr_fail("out of memory");
    }
  }
  return 0;
}

/* collections.Counter(values).most_common()[0][0]: the first of the most frequent. */
static double most_common(const double *v, int n) {
  int best = 0, best_count = 0;
  for (int i = 0; i < n; i++) {
    int c = 0;
    for (int j = 0; j < n; j++)
      c += v[j] == v[i];
    if (c > best_count) {
      best = i;
      best_count = c;
    }
  }
  return v[best];
}

/* get_peft_kwargs' lora_alpha for each of part's modules (index into l), as PEFT then
 * finds it: with no alphas, the first module's rank for all (the rank dict's first
 * value); with one alpha, that; with several, the most common, and a module's own
 * where alpha_pattern's key is the module's name (the UNet's, and CLIP's MLP; CLIP's
 * attention keys name the attention, not the projection, and miss). */
static void alphas(const found_list *l, sdr_lora_part part, const int *rank, double *out) {
  double *v = malloc((size_t)(l->n ? l->n : 1) * sizeof *v);
  int n = 0, first = -1;
  for (int i = 0; i < l->n; i++) {
    if (l->v[i].part != part)
      continue;
    if (l->v[i].alpha && v)
      v[n++] = l->v[i].alpha->values[0];
    if (first < 0 || l->v[i].order < l->v[first].order)
      first = i;
  }
  /* CLIP's rank dict starts at layer 0's out_proj */
  for (int i = 0; part != SDR_LORA_UNET && i < l->n; i++)
    if (l->v[i].part == part &&
        strcmp(l->v[i].module, "text_model.encoder.layers.0.self_attn.out_proj") == 0)
      first = i;
  int uniform = 1;
  for (int i = 1; i < n; i++)
    uniform &= v[i] == v[0];
  double common = n ? (uniform ? v[0] : most_common(v, n)) : 0;
  for (int i = 0; i < l->n; i++) {
    if (l->v[i].part != part)
      continue;
    if (!n)
      out[i] = first >= 0 ? rank[first] : rank[i];
    else if (uniform || !l->v[i].alpha)
      out[i] = common;
    else if (part == SDR_LORA_UNET || strstr(l->v[i].module, ".mlp."))
      out[i] = l->v[i].alpha->values[0];
    else
      out[i] = common;
  }
  free(v);
}

static const char *shape_text(char *buf, size_t cap, int ndim, const int64_t *shape) {
  int k = snprintf(buf, cap, "torch.Size([");
  for (int i = 0; i < ndim && k < (int)cap; i++)
    k += snprintf(buf + k, cap - (size_t)k, "%s%lld", i ? ", " : "", (long long)shape[i]);
  if (k < (int)cap)
    snprintf(buf + k, cap - (size_t)k, "])");
  return buf;
}

/* The pair's rank and its matrix shape against the weight it goes to. */
static int check_shapes(const found *f, const sdr_tensor *w, int *rank) {
  const sdr_lora_entry *d = f->down, *u = f->up;
  if (w->ndim != 2 && w->ndim != 4)
    return sdr_fail("Target module %s is not supported: LoRA goes on linear and conv layers",
                    f->module);
  int64_t rows = w->shape[0], cols = sdr_tensor_numel(w) / (rows ? rows : 1);
  int r = d->ndim >= 1 ? (int)d->shape[0] : 0;
  int ok = r > 0 && d->ndim == w->ndim && u->ndim == w->ndim && numel(d) == (int64_t)r * cols &&
           u->shape[0] == rows && u->ndim >= 2 && u->shape[1] == r && numel(u) == rows * r;
  if (!ok) {
    char a[96], b[96], c[96];
    return sdr_fail("size mismatch for %s: the LoRA's down %s and up %s do not fit its "
                    "weight %s",
                    f->module, shape_text(a, sizeof a, d->ndim, d->shape),
                    shape_text(b, sizeof b, u->ndim, u->shape),
                    shape_text(c, sizeof c, w->ndim, w->shape));
  }
  *rank = r;
  return 0;
}

/* The UNet's get_adapter_name: default_<adapters on its first LoRA layer>. */
static void default_name(const sdr_lora *l, sdr_lora_part part, char *out, size_t cap) {
  int first = -1;
  for (int a = 0; a < l->nadapters && first < 0; a++)
    if (l->adapters[a].name && l->adapters[a].part == part && l->adapters[a].npairs)
      first = l->adapters[a].pairs[0].target;
  int n = 0;
  for (int a = 0; first >= 0 && a < l->nadapters; a++)
    for (int i = 0; l->adapters[a].name && i < l->adapters[a].npairs; i++)
      n += l->adapters[a].pairs[i].target == first;
  snprintf(out, cap, "default_%d", n);
}

static int has_adapter(const sdr_lora *l, sdr_lora_part part, const char *name) {
  for (int a = 0; a < l->nadapters; a++)
    if (l->adapters[a].name && l->adapters[a].part == part &&
        strcmp(l->adapters[a].name, name) == 0)
      return 1;
  return 0;
}

/* Whether some adapter already has a pair on target k (PEFT wrapped that layer). */
static int wrapped(const sdr_lora *l, int k) {
  for (int a = 0; a < l->nadapters; a++)
    for (int i = 0; l->adapters[a].name && i < l->adapters[a].npairs; i++)
      if (l->adapters[a].pairs[i].target == k)
        return 1;
  return 0;
}

/* The index of part's weight among the targets, added when new; -1 on failure. */
static int add_target(sdr_lora *l, sdr_lora_part part, const char *weight) {
  for (int t = 0; t < l->ntargets; t++)
    if (l->targets[t].part == part && strcmp(l->targets[t].weight, weight) == 0)
      return t;
  sdr_lora_target *v = realloc(l->targets, (size_t)(l->ntargets + 1) * sizeof *v);
  if (!v)
    return sdr_fail("out of memory");
  l->targets = v;
  sdr_lora_target *t = &l->targets[l->ntargets];
  memset(t, 0, sizeof *t);
  t->part = part;
  t->stale = 1;
  static const char *const early[] = {"time_embedding.",   "class_embedding.", "add_embedding.",
                                      "encoder_hid_proj.", "conv_in.",         "position_net."};
  for (size_t i = 0; part == SDR_LORA_UNET && i < sizeof early / sizeof *early; i++)
    t->before_scale |= starts_with(weight, early[i]);
  if (!(t->weight = strdup(weight)))
    return sdr_fail("out of memory");
  return l->ntargets++;
}

static void free_found(found_list *l) {
  for (int i = 0; i < l->n; i++)
    free(l->v[i].module);
  free(l->v);
}

/* Appends to *warning (diffusers' logger.warning for keys no layer takes). */
static void warn_unmatched(char **warning, const char *part, const char *module) {
  size_t had = *warning ? strlen(*warning) : 0;
  char *w = realloc(*warning, had + strlen(module) + 128);
  if (!w)
    return;
  if (!had)
    sprintf(w,
            "Loading adapter weights from state_dict led to unexpected keys not found in the "
            "model (%s):",
            part);
  else
    w[had] = 0;
  strcat(w, " ");
  strcat(w, module);
  *warning = w;
}

int sdr_lora_load(sdr_lora *l, const sdr_lora_models *m, const sdr_lora_file *f, const char *name,
                  char **warning) {
  *warning = NULL;
  found_list fl = {0};
  int *rank = NULL;
  double *alpha = NULL;
  sdr_tensor **slot = NULL;
  const int sgm_lpb = m->sdxl && m->unet && has_sgm_names(f) ? m->unet->cfg.layers_per_block[0] : 0;
  int rc = is_kohya(f) ? read_kohya(f, &fl, sgm_lpb) : read_diffusers(f, &fl);
  if (rc != 0)
    goto done;
  rank = calloc((size_t)(fl.n ? fl.n : 1), sizeof *rank);
  alpha = calloc((size_t)(fl.n ? fl.n : 1), sizeof *alpha);
  slot = calloc((size_t)(fl.n ? fl.n : 1), sizeof *slot);
  if (!rank || !alpha || !slot) {
    rc = sdr_fail("out of memory");
    goto done;
  }
  int matched[SDR_LORA_NPARTS] = {0}, present[SDR_LORA_NPARTS] = {0};
  for (int i = 0; i < fl.n; i++) {
    found *x = &fl.v[i];
    sdr_weights *w = sdr_lora_models_weights(m, x->part);
    present[x->part]++;
    if (!w)
      continue;
    if (x->kohya && (rc = unflatten(w, x)) < 0)
      goto done;
    char wname[1100];
    snprintf(wname, sizeof wname, "%s.weight", x->module);
    slot[i] = sdr_weights_bound_slot(w, wname);
    if (!slot[i]) {
      warn_unmatched(warning, sdr_lora_part_names[x->part], x->module);
      continue;
    }
    if ((rc = check_shapes(x, slot[i], &rank[i])) != 0)
      goto done;
    matched[x->part]++;
  }
  rc = 0;
  for (int p = 0; p < SDR_LORA_NPARTS; p++)
    if (present[p] && !matched[p] && sdr_lora_models_weights(m, (sdr_lora_part)p)) {
      rc = sdr_fail("Target modules not found in the base model (%s): none of the LoRA's "
                    "layers is one of its linear or conv layers. Please check the target "
                    "modules and try again.",
                    sdr_lora_part_names[p]);
      goto done;
    }
  int any = 0;
  for (int p = 0; p < SDR_LORA_NPARTS; p++)
    any |= matched[p];
  if (!any) {
    rc = sdr_fail("Invalid LoRA checkpoint: it has no layers for this pipeline's models");
    goto done;
  }
  /* names, checked for both models before either changes */
  char names[SDR_LORA_NPARTS][256];
  for (int p = 0; p < SDR_LORA_NPARTS; p++) {
    if (name)
      snprintf(names[p], sizeof names[p], "%s", name);
    else
      default_name(l, (sdr_lora_part)p, names[p], sizeof names[p]);
    if (matched[p] && has_adapter(l, (sdr_lora_part)p, names[p])) {
      rc = p == SDR_LORA_UNET
               ? sdr_fail("Adapter name %s already in use in the Unet - please select a new "
                          "adapter name.",
                          names[p])
               : sdr_fail("Adapter with name %s already exists. Please use a different name.",
                          names[p]);
      goto done;
    }
  }
  for (int p = 0; p < SDR_LORA_NPARTS; p++) {
    if (!matched[p])
      continue;
    alphas(&fl, (sdr_lora_part)p, rank, alpha);
    sdr_lora_adapter *v = realloc(l->adapters, (size_t)(l->nadapters + 1) * sizeof *v);
    if (!v) {
      rc = sdr_fail("out of memory");
      goto done;
    }
    l->adapters = v;
    sdr_lora_adapter ad = {strdup(names[p]), (sdr_lora_part)p,
                           calloc((size_t)matched[p], sizeof(sdr_lora_pair)), 0};
    if (!ad.name || !ad.pairs) {
      free(ad.name);
      free(ad.pairs);
      rc = sdr_fail("out of memory");
      goto done;
    }
    for (int i = 0; i < fl.n; i++) {
      found *x = &fl.v[i];
      if (x->part != (sdr_lora_part)p || !slot[i])
        continue;
      sdr_lora_pair *q = &ad.pairs[ad.npairs];
      q->rank = rank[i];
      q->rows = slot[i]->shape[0];
      q->cols = sdr_tensor_numel(slot[i]) / (q->rows ? q->rows : 1);
      q->down = malloc((size_t)(q->rank * q->cols) * sizeof(float));
      q->up = malloc((size_t)(q->rows * q->rank) * sizeof(float));
      if (!q->down || !q->up) {
        free(q->down);
        free(q->up);
        rc = sdr_fail("out of memory");
        break;
      }
      memcpy(q->down, x->down->values, (size_t)(q->rank * q->cols) * sizeof(float));
      memcpy(q->up, x->up->values, (size_t)(q->rows * q->rank) * sizeof(float));
      q->alpha = alpha[i];
      q->scaling = alpha[i] / q->rank;
      char wname[1100];
      snprintf(wname, sizeof wname, "%s.weight", x->module);
      if ((q->target = add_target(l, (sdr_lora_part)p, wname)) < 0) {
        free(q->down);
        free(q->up);
        rc = -1;
        break;
      }
      ad.npairs++;
      /* a layer another adapter already wrapped keeps its active adapters */
      q->active = !wrapped(l, q->target);
    }
    l->adapters[l->nadapters++] = ad; /* freed with the state, even when incomplete */
    if (rc != 0)
      goto done;
    if (p != SDR_LORA_UNET && l->has_last_scale) /* lora_scale=self.lora_scale */
      sdr_lora_scale(l, (sdr_lora_part)p, l->last_scale);
  }
done:
  free_found(&fl);
  free(rank);
  free(alpha);
  free(slot);
  if (rc != 0) {
    free(*warning);
    *warning = NULL;
  }
  return rc;
}

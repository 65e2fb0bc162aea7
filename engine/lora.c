/* engine/lora.c — PEFT's LoRA layer state (peft/tuners/lora/layer.py: scaling, active
 * adapters, merge and unmerge, disable) and the weights it makes: each targeted
 * weight is W + sum of coefficient * up @ down over its pairs, made on the model's
 * backend in float32 and kept in the weight's dtype. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/lora.h"

const char *const sdr_lora_part_names[SDR_LORA_NPARTS] = {"unet", "text_encoder", "text_encoder_2"};

static sdr_clip_text_model *text_model_of(const sdr_lora_models *m, sdr_lora_part part) {
  return part == SDR_LORA_TEXT_ENCODER_2 ? m->text_encoder_2 : m->text_encoder;
}

sdr_weights *sdr_lora_models_weights(const sdr_lora_models *m, sdr_lora_part part) {
  if (part == SDR_LORA_UNET)
    return m->unet ? &m->unet->weights : NULL;
  sdr_clip_text_model *t = text_model_of(m, part);
  return t ? &t->weights : NULL;
}

#define EACH_PAIR(l, a, i)                                                                         \
  for (int a = 0; a < (l)->nadapters; a++)                                                         \
    for (int i = 0; i < (l)->adapters[a].npairs; i++)

/* PEFT's `merged` of each target's layer: some adapter of it is merged into the weight.
 * Calloc'd, one flag per target, or NULL. */
static unsigned char *layers_merged(const sdr_lora *l) {
  unsigned char *m = calloc((size_t)l->ntargets + 1, 1);
  EACH_PAIR(l, a, i) {
    if (m && l->adapters[a].pairs[i].merged)
      m[l->adapters[a].pairs[i].target] = 1;
  }
  return m;
}

/* What the layer's forward adds with a pair: the merged part is in the base weight; the
 * rest only while adapters are enabled and nothing of the layer is merged. */
static double coefficient(const sdr_lora *l, const unsigned char *merged,
                          const sdr_lora_adapter *ad, const sdr_lora_pair *q) {
  double c = q->fused;
  if (ad->name && q->active && !l->disabled[ad->part] && !merged[q->target])
    c += (float)q->scaling; /* torch multiplies a float32 tensor by it */
  return c;
}

/* PEFT's unmerge of one pair: what merge added, taken back with the scaling it has now. */
static void unmerge(sdr_lora_pair *q) {
  q->fused -= (float)q->scaling;
  q->merged = 0;
}

/* ---- the weights -------------------------------------------------------------------- */

static void forget_set_names(char **names, int n) {
  for (int k = 0; k < n; k++)
    free(names[k]);
  free(names);
}

static void restore(sdr_lora_target *t, sdr_weights *w) {
  if (t->buf && w) {
    sdr_tensor *slot = sdr_weights_bound_slot(w, t->weight);
    if (slot)
      *slot = t->orig;
    sdr_free(w->be, t->buf);
    t->buf = NULL;
  }
}

/* slot = orig + sum of c * up @ down, on w's backend. */
static int make_weight(sdr_lora *l, const unsigned char *merged, int k, sdr_weights *w,
                       sdr_tensor *slot, sdr_dtype act) {
  sdr_lora_target *t = &l->targets[k];
  sdr_backend *be = w->be;
  const sdr_tensor orig = t->buf ? t->orig : *slot;
  int64_t rows = orig.shape[0], cols = sdr_tensor_numel(&orig) / (rows ? rows : 1);
  size_t n = (size_t)(rows * cols);
  int any = 0;
  EACH_PAIR(l, a, i) {
    const sdr_lora_pair *q = &l->adapters[a].pairs[i];
    if (q->target == k)
      any |= coefficient(l, merged, &l->adapters[a], q) != 0;
  }
  if (!any) { /* the bound weight, bit for bit */
    restore(t, w);
    return 0;
  }
  /* The sum in the dtype torch holds the weight in: torch_dtype's, else float32 (a float16
   * file loaded without torch_dtype is widened there, so its LoRA sum is not rounded) where
   * the model computes in float32. */
  sdr_tensor out = orig;
  out.dtype = w->keep_dtype < 0 && act == SDR_F32 ? SDR_F32 : orig.dtype;
  int rc = 0, terms = 0;
  void *out_mem = t->buf ? t->buf : sdr_alloc(be, sdr_tensor_nbytes(&out));
  /* the float32 sum is made in place when the weight is float32: one pass fewer each way */
  void *acc_mem = out.dtype == SDR_F32 ? out_mem : sdr_alloc(be, n * sizeof(float));
  void *tmp_mem = NULL, *ud_mem = NULL;
  if (!out_mem || !acc_mem) {
    rc = sdr_fail_prefix("LoRA on '%s': ", t->weight);
    goto done;
  }
  const int64_t mat[2] = {rows, cols};
  sdr_tensor acc = sdr_tensor_view(acc_mem, SDR_F32, be->device, 2, mat);
  sdr_tensor o2 = orig;
  o2.ndim = 2;
  o2.shape[0] = rows;
  o2.shape[1] = cols;
  /* acc = sum of c * up @ down (the first product written into it, the others added) */
  EACH_PAIR(l, a, i) {
    const sdr_lora_pair *q = &l->adapters[a].pairs[i];
    if (rc != 0 || q->target != k)
      continue;
    double c = coefficient(l, merged, &l->adapters[a], q);
    if (c == 0)
      continue;
    if (terms && !tmp_mem && !(tmp_mem = sdr_alloc(be, n * sizeof(float)))) {
      rc = sdr_fail_prefix("LoRA on '%s': ", t->weight);
      break;
    }
    size_t r = (size_t)q->rank, bytes = (r * (size_t)cols + (size_t)rows * r) * sizeof(float);
    if (!(ud_mem = sdr_alloc(be, bytes))) {
      rc = sdr_fail_prefix("LoRA on '%s': ", t->weight);
      break;
    }
    float *up_dev = (float *)ud_mem, *down_dev = up_dev + (size_t)rows * r;
    sdr_tensor up = sdr_tensor_view(up_dev, SDR_F32, be->device, 3, (int64_t[]){1, rows, q->rank});
    sdr_tensor down =
        sdr_tensor_view(down_dev, SDR_F32, be->device, 3, (int64_t[]){1, q->rank, cols});
    sdr_tensor prod = sdr_tensor_view(terms ? tmp_mem : acc_mem, SDR_F32, be->device, 3,
                                      (int64_t[]){1, rows, cols});
    sdr_tensor tmp = sdr_tensor_view(tmp_mem, SDR_F32, be->device, 2, mat);
    if (sdr_upload(be, up_dev, q->up, (size_t)rows * r * sizeof(float)) != 0 ||
        sdr_upload(be, down_dev, q->down, r * (size_t)cols * sizeof(float)) != 0 ||
        sdr_bmm(be, &prod, &up, &down, 0, (float)c) != 0 ||
        (terms && sdr_binary(be, &acc, &acc, &tmp, SDR_BINARY_ADD) != 0))
      rc = -1;
    terms++;
    sdr_sync(be);
    sdr_free(be, ud_mem);
    ud_mem = NULL;
  }
  /* + the bound weight (widened first when it is not float32), then in out's dtype */
  if (rc == 0 && orig.dtype != SDR_F32 && !tmp_mem && !(tmp_mem = sdr_alloc(be, n * sizeof(float))))
    rc = sdr_fail_prefix("LoRA on '%s': ", t->weight);
  if (rc == 0) {
    sdr_tensor tmp = sdr_tensor_view(tmp_mem, SDR_F32, be->device, 2, mat);
    if (orig.dtype == SDR_F32)
      rc = sdr_binary(be, &acc, &acc, &o2, SDR_BINARY_ADD);
    else if ((rc = sdr_cast(be, &tmp, &o2)) == 0)
      rc = sdr_binary(be, &acc, &acc, &tmp, SDR_BINARY_ADD);
  }
  if (rc == 0 && out.dtype != SDR_F32) {
    sdr_tensor out2 = o2;
    out2.data = out_mem;
    rc = sdr_cast(be, &out2, &acc);
  }
  if (rc == 0)
    rc = sdr_sync(be);
  if (rc == 0) {
    out.data = out_mem;
    if (!t->buf)
      t->orig = *slot;
    t->buf = out_mem;
    *slot = out;
    out_mem = NULL;
  }
done:
  if (acc_mem && acc_mem != out_mem && acc_mem != t->buf)
    sdr_free(be, acc_mem);
  if (tmp_mem)
    sdr_free(be, tmp_mem);
  if (out_mem && out_mem != t->buf)
    sdr_free(be, out_mem);
  return rc;
}

int sdr_lora_apply(sdr_lora *l, const sdr_lora_models *m) {
  for (int p = 0; p < SDR_LORA_NPARTS; p++)
    if (sdr_lora_apply_part(l, m, (sdr_lora_part)p) != 0)
      return -1;
  return 0;
}

int sdr_lora_apply_part(sdr_lora *l, const sdr_lora_models *m, sdr_lora_part part) {
  /* one pass over the pairs finds the weights whose sums changed (before every run: the
   * usual answer is none) */
  unsigned char *merged = layers_merged(l), *changed = calloc((size_t)l->ntargets + 1, 1);
  int rc = merged && changed ? 0 : sdr_fail("out of memory");
  for (int k = 0; rc == 0 && k < l->ntargets; k++)
    changed[k] = (unsigned char)l->targets[k].stale;
  EACH_PAIR(l, a, i) {
    const sdr_lora_pair *q = &l->adapters[a].pairs[i];
    if (rc == 0 && coefficient(l, merged, &l->adapters[a], q) != q->applied)
      changed[q->target] = 1;
  }
  for (int k = 0; rc == 0 && k < l->ntargets; k++) {
    sdr_lora_target *t = &l->targets[k];
    sdr_weights *w = t->part == part && changed[k] ? sdr_lora_models_weights(m, part) : NULL;
    sdr_tensor *slot = w ? sdr_weights_bound_slot(w, t->weight) : NULL;
    if (!slot)
      continue;
    sdr_dtype act = part == SDR_LORA_UNET ? m->unet->act : text_model_of(m, part)->act;
    if (make_weight(l, merged, k, w, slot, act) != 0) {
      t->stale = 1; /* made again next time */
      rc = -1;
      break;
    }
    t->stale = 0;
    EACH_PAIR(l, a, i) {
      sdr_lora_pair *q = &l->adapters[a].pairs[i];
      if (q->target == k)
        q->applied = coefficient(l, merged, &l->adapters[a], q);
    }
  }
  free(merged);
  free(changed);
  return rc;
}

void sdr_lora_release(sdr_lora *l, const sdr_lora_models *m) {
  for (int k = 0; k < l->ntargets; k++) {
    restore(&l->targets[k], sdr_lora_models_weights(m, l->targets[k].part));
    l->targets[k].stale = 1;
  }
}

static void free_adapter(sdr_lora_adapter *ad) {
  for (int i = 0; i < ad->npairs; i++) {
    free(ad->pairs[i].down);
    free(ad->pairs[i].up);
  }
  free(ad->pairs);
  free(ad->name);
}

void sdr_lora_free(sdr_lora *l, const sdr_lora_models *m) {
  sdr_lora_release(l, m);
  for (int a = 0; a < l->nadapters; a++)
    free_adapter(&l->adapters[a]);
  for (int k = 0; k < l->ntargets; k++)
    free(l->targets[k].weight);
  free(l->adapters);
  free(l->targets);
  forget_set_names(l->set_names, l->nset);
  memset(l, 0, sizeof *l);
}

/* ---- PEFT's operations ------------------------------------------------------------- */

/* scale_layer(s) on part's layers; call: a call's scale, which misses the UNet's layers that
 * ran before it (fuse_lora's reaches them all). */
static void scale_layers(sdr_lora *l, sdr_lora_part part, double s, int call) {
  if (s == 1)
    return;
  EACH_PAIR(l, a, i) {
    sdr_lora_pair *q = &l->adapters[a].pairs[i];
    if (l->adapters[a].name && l->adapters[a].part == part && q->active &&
        !(call && l->targets[q->target].before_scale))
      q->scaling *= s;
  }
}

void sdr_lora_scale(sdr_lora *l, sdr_lora_part part, double s) { scale_layers(l, part, s, 1); }

void sdr_lora_unscale(sdr_lora *l, sdr_lora_part part, double s) {
  EACH_PAIR(l, a, i) {
    sdr_lora_pair *q = &l->adapters[a].pairs[i];
    if (!l->adapters[a].name || l->adapters[a].part != part || !q->active)
      continue;
    if (s == 0) /* unscale_lora_layers(0): set_scale(adapter, 1.0), on every layer */
      q->scaling = q->alpha / q->rank;
    else if (!l->targets[q->target].before_scale)
      q->scaling /= s;
  }
}

static int named(const char *name, const char *const *names, int n) {
  for (int k = 0; k < n; k++)
    if (strcmp(names[k], name) == 0)
      return k;
  return -1;
}

int sdr_lora_set_adapters(sdr_lora *l, const char *const *names, const double *weights, int n) {
  for (int k = 0; k < n; k++) {
    int found = 0;
    for (int a = 0; a < l->nadapters; a++)
      found |= l->adapters[a].name && l->adapters[a].part == SDR_LORA_UNET &&
               strcmp(l->adapters[a].name, names[k]) == 0;
    if (!found) {
      char list[512] = "";
      size_t len = 0;
      for (int a = 0; a < l->nadapters && len < sizeof list - 64; a++)
        if (l->adapters[a].name && l->adapters[a].part == SDR_LORA_UNET)
          len += (size_t)snprintf(list + len, sizeof list - len, "%s'%s'", len ? ", " : "",
                                  l->adapters[a].name);
      return sdr_fail("Adapter name(s) {'%s'} not in the list of present adapters: {%s}.", names[k],
                      list);
    }
  }
  char **copy = calloc((size_t)n + 1, sizeof *copy);
  for (int k = 0; copy && k < n; k++)
    if (!(copy[k] = strdup(names[k]))) {
      forget_set_names(copy, k);
      copy = NULL;
    }
  if (!copy)
    return sdr_fail("out of memory");
  forget_set_names(l->set_names, l->nset);
  l->set_names = copy;
  l->nset = n;
  EACH_PAIR(l, a, i) {
    sdr_lora_adapter *ad = &l->adapters[a];
    if (!ad->name)
      continue;
    int k = named(ad->name, names, n);
    ad->pairs[i].active = k >= 0;
    if (k >= 0) /* set_scale */
      ad->pairs[i].scaling = weights[k] * ad->pairs[i].alpha / ad->pairs[i].rank;
  }
  return 0;
}

void sdr_lora_enable(sdr_lora *l, int enabled) {
  for (int p = 0; p < SDR_LORA_NPARTS; p++)
    l->disabled[p] = !enabled;
  if (enabled)
    return;
  /* a disabled layer's forward unmerges what was merged */
  EACH_PAIR(l, a, i) {
    if (l->adapters[a].name && l->adapters[a].pairs[i].merged)
      unmerge(&l->adapters[a].pairs[i]);
  }
}

static int finite_pair(const sdr_lora_pair *q) {
  for (int64_t k = 0; k < (int64_t)q->rank * q->cols; k++)
    if (!isfinite(q->down[k]))
      return 0;
  for (int64_t k = 0; k < q->rows * (int64_t)q->rank; k++)
    if (!isfinite(q->up[k]))
      return 0;
  return 1;
}

int sdr_lora_fuse(sdr_lora *l, const int *parts, double lora_scale, int safe_fusing,
                  const char *const *names, int n) {
  if (safe_fusing)
    EACH_PAIR(l, a, i) {
      sdr_lora_adapter *ad = &l->adapters[a];
      sdr_lora_pair *q = &ad->pairs[i];
      int chosen = names ? named(ad->name ? ad->name : "", names, n) >= 0 : q->active;
      if (ad->name && parts[ad->part] && chosen && !q->merged && !finite_pair(q))
        return sdr_fail("NaNs detected in the merged weights. The adapter %s seems to be broken",
                        ad->name);
    }
  for (int p = 0; p < SDR_LORA_NPARTS; p++)
    if (parts[p] && lora_scale != 1.0)
      scale_layers(l, (sdr_lora_part)p, lora_scale, 0);
  EACH_PAIR(l, a, i) {
    sdr_lora_adapter *ad = &l->adapters[a];
    sdr_lora_pair *q = &ad->pairs[i];
    int chosen = names ? named(ad->name ? ad->name : "", names, n) >= 0 : q->active;
    if (ad->name && parts[ad->part] && chosen && !q->merged) {
      q->fused += (float)q->scaling;
      q->merged = 1;
    }
  }
  return 0;
}

void sdr_lora_unfuse(sdr_lora *l, const int *parts) {
  EACH_PAIR(l, a, i) {
    sdr_lora_pair *q = &l->adapters[a].pairs[i];
    if (l->adapters[a].name && parts[l->adapters[a].part] && q->merged)
      unmerge(q);
  }
}

/* An adapter's pairs that still hold something fused stay, nameless; the rest go. */
static void drop_adapter(sdr_lora_adapter *ad) {
  int kept = 0;
  for (int i = 0; i < ad->npairs; i++) {
    sdr_lora_pair *q = &ad->pairs[i];
    if (q->fused != 0) {
      q->merged = 0;
      q->active = 0;
      ad->pairs[kept++] = *q;
    } else {
      free(q->down);
      free(q->up);
    }
  }
  ad->npairs = kept;
  free(ad->name);
  ad->name = NULL;
}

int sdr_lora_delete(sdr_lora *l, const char *const *names, int n) {
  for (int k = 0; k < n; k++)
    for (int a = 0; a < l->nadapters; a++) {
      sdr_lora_adapter *ad = &l->adapters[a];
      if (!ad->name || strcmp(ad->name, names[k]) != 0)
        continue;
      /* PEFT's delete_adapter: a layer whose active adapter this was takes the others that
       * were active with it, else the first of its remaining adapters by name */
      for (int i = 0; i < ad->npairs; i++) {
        if (!ad->pairs[i].active)
          continue;
        int others = 0;
        const char *first = NULL;
        sdr_lora_pair *first_pair = NULL;
        for (int b = 0; b < l->nadapters; b++)
          for (int j = 0; b != a && l->adapters[b].name && l->adapters[b].part == ad->part &&
                          j < l->adapters[b].npairs;
               j++) {
            sdr_lora_pair *o = &l->adapters[b].pairs[j];
            if (o->target != ad->pairs[i].target)
              continue;
            others |= o->active;
            if (!first || strcmp(l->adapters[b].name, first) < 0) {
              first = l->adapters[b].name;
              first_pair = o;
            }
          }
        if (!others && first_pair)
          first_pair->active = 1;
      }
      drop_adapter(ad);
    }
  for (int k = 0; k < l->ntargets; k++) /* weights whose pairs went are made again */
    l->targets[k].stale = 1;
  /* names set by set_adapters that are gone leave the list */
  int kept = 0;
  for (int k = 0; k < l->nset; k++) {
    if (named(l->set_names[k], names, n) >= 0)
      free(l->set_names[k]);
    else
      l->set_names[kept++] = l->set_names[k];
  }
  l->nset = kept;
  return 0;
}

void sdr_lora_unload(sdr_lora *l) {
  for (int a = 0; a < l->nadapters; a++)
    if (l->adapters[a].name)
      drop_adapter(&l->adapters[a]);
  for (int p = 0; p < SDR_LORA_NPARTS; p++)
    l->disabled[p] = 0;
  for (int k = 0; k < l->ntargets; k++)
    l->targets[k].stale = 1;
  forget_set_names(l->set_names, l->nset);
  l->set_names = NULL;
  l->nset = 0;
}

/* Where a UNet module comes in unet.modules(): the order diffusers' classes register
 * their parts in (UNet2DConditionModel makes down_blocks and up_blocks before the mid
 * block; a block's attentions before its resnets; ...), numbers as numbers. */
static int part_rank(const char *p, size_t n) {
  static const char *const order[] = {"conv_in",
                                      "time_embedding",
                                      "linear_1",
                                      "linear_2",
                                      "down_blocks",
                                      "up_blocks",
                                      "mid_block",
                                      "attentions",
                                      "resnets",
                                      "downsamplers",
                                      "upsamplers",
                                      "norm",
                                      "proj_in",
                                      "transformer_blocks",
                                      "proj_out",
                                      "norm1",
                                      "attn1",
                                      "norm2",
                                      "attn2",
                                      "norm3",
                                      "ff",
                                      "to_q",
                                      "to_k",
                                      "to_v",
                                      "to_out",
                                      "net",
                                      "proj",
                                      "conv1",
                                      "time_emb_proj",
                                      "conv2",
                                      "conv_shortcut",
                                      "conv",
                                      "conv_norm_out",
                                      "conv_out",
                                      "weight"};
  for (size_t i = 0; i < sizeof order / sizeof *order; i++)
    if (strlen(order[i]) == n && strncmp(order[i], p, n) == 0)
      return (int)i;
  return (int)(sizeof order / sizeof *order);
}

static int module_before(const char *a, const char *b) {
  while (*a && *b) {
    size_t na = strcspn(a, "."), nb = strcspn(b, ".");
    int da = a[0] >= '0' && a[0] <= '9', db = b[0] >= '0' && b[0] <= '9';
    long ka = da ? strtol(a, NULL, 10) : part_rank(a, na);
    long kb = db ? strtol(b, NULL, 10) : part_rank(b, nb);
    if (ka != kb)
      return ka < kb;
    if (na != nb || strncmp(a, b, na) != 0) {
      int c = strncmp(a, b, na < nb ? na : nb);
      return c != 0 ? c < 0 : na < nb;
    }
    a += na + (a[na] == '.');
    b += nb + (b[nb] == '.');
  }
  return *a == 0 && *b != 0;
}

const char **sdr_lora_active(const sdr_lora *l) {
  /* PEFT's answer is the first LoRA layer's active adapters */
  int first = -1;
  EACH_PAIR(l, a, i) {
    const sdr_lora_adapter *ad = &l->adapters[a];
    int k = ad->pairs[i].target;
    if (ad->name && ad->part == SDR_LORA_UNET &&
        (first < 0 || module_before(l->targets[k].weight, l->targets[first].weight)))
      first = k;
  }
  const char **out = calloc((size_t)(l->nadapters + l->nset) + 1, sizeof *out);
  int n = 0;
  if (out && first >= 0 && l->nset) {
    for (int k = 0; k < l->nset; k++)
      out[n++] = l->set_names[k];
    return out;
  }
  EACH_PAIR(l, a, i) {
    const sdr_lora_adapter *ad = &l->adapters[a];
    if (out && first >= 0 && ad->name && ad->part == SDR_LORA_UNET && ad->pairs[i].active &&
        ad->pairs[i].target == first)
      out[n++] = ad->name;
  }
  return out;
}

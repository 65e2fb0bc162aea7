/* engine/lora_file.c — a LoRA file read as lora_state_dict reads it (safetensors' load_file,
 * else torch.load), and _best_guess_weight_name's choice of file in a folder or repo. */
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/lora.h"
#include "engine/weights.h"

int sdr_lora_file_add(sdr_lora_file *f, const char *key, int ndim, const int64_t *shape,
                      const float *values) {
  if (ndim < 0 || ndim > 4)
    return sdr_fail("LoRA tensor '%s' has %d dimensions; a LoRA's have at most 4", key, ndim);
  size_t n = 1;
  for (int i = 0; i < ndim; i++)
    n *= (size_t)shape[i];
  sdr_lora_entry *e = realloc(f->e, (f->n + 1) * sizeof *e);
  if (!e)
    return sdr_fail("out of memory");
  f->e = e;
  sdr_lora_entry *x = &f->e[f->n];
  memset(x, 0, sizeof *x);
  x->key = strdup(key);
  x->values = malloc((n ? n : 1) * sizeof(float));
  if (!x->key || !x->values) {
    free(x->key);
    free(x->values);
    return sdr_fail("out of memory");
  }
  memcpy(x->values, values, n * sizeof(float));
  x->ndim = ndim;
  memcpy(x->shape, shape, (size_t)ndim * sizeof *shape);
  f->n++;
  return 0;
}

static int by_key(const void *a, const void *b) {
  return strcmp(((const sdr_lora_entry *)a)->key, ((const sdr_lora_entry *)b)->key);
}

void sdr_lora_file_sort(sdr_lora_file *f) {
  if (f->n > 1)
    qsort(f->e, f->n, sizeof *f->e, by_key);
}

/* An integer alpha (some trainers store it so) as its float value. */
static void integers_to_floats(float *dst, const sdr_st_tensor *t, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const unsigned char *p = (const unsigned char *)t->data;
    switch (t->dtype) {
    case SDR_I64:
      dst[i] = (float)((const int64_t *)(const void *)p)[i];
      break;
    case SDR_I32:
      dst[i] = (float)((const int32_t *)(const void *)p)[i];
      break;
    case SDR_I16:
      dst[i] = (float)((const int16_t *)(const void *)p)[i];
      break;
    case SDR_I8:
      dst[i] = (float)((const int8_t *)(const void *)p)[i];
      break;
    default:
      dst[i] = (float)p[i];
      break;
    }
  }
}

int sdr_lora_file_read(const char *path, sdr_lora_file *f) {
  memset(f, 0, sizeof *f);
  sdr_weight_file *w = sdr_weight_file_open(path);
  if (!w)
    return -1;
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < sdr_weight_file_count(w); i++) {
    const sdr_st_tensor *t = sdr_weight_file_at(w, i);
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++)
      n *= (size_t)t->shape[d];
    float *v = malloc((n ? n : 1) * sizeof *v);
    if (!v) {
      rc = sdr_fail("out of memory");
      break;
    }
    /* the file's bytes may sit at any address (the legacy torch format) */
    void *aligned = malloc(t->nbytes ? t->nbytes : 1);
    if (!aligned) {
      free(v);
      rc = sdr_fail("out of memory");
      break;
    }
    memcpy(aligned, t->data, t->nbytes);
    sdr_st_tensor copy = *t;
    copy.data = aligned;
    if (t->dtype == SDR_F32 || t->dtype == SDR_F16 || t->dtype == SDR_BF16)
      sdr_floats_convert(v, SDR_F32, aligned, t->dtype, n);
    else if (t->dtype == SDR_F64)
      for (size_t k = 0; k < n; k++)
        v[k] = (float)((const double *)aligned)[k];
    else
      integers_to_floats(v, &copy, n);
    rc = sdr_lora_file_add(f, t->name, t->ndim, t->shape, v);
    free(aligned);
    free(v);
  }
  /* safetensors.torch.load_file gives the keys sorted; torch.load as saved */
  if (rc == 0 && sdr_weight_file_is_safetensors(w))
    sdr_lora_file_sort(f);
  sdr_weight_file_release(w);
  if (rc != 0) {
    sdr_fail_prefix("%s: ", path);
    sdr_lora_file_free(f);
  }
  return rc;
}

void sdr_lora_file_free(sdr_lora_file *f) {
  for (size_t i = 0; i < f->n; i++) {
    free(f->e[i].key);
    free(f->e[i].values);
  }
  free(f->e);
  memset(f, 0, sizeof *f);
}

static int ends_with(const char *s, const char *end) {
  size_t a = strlen(s), b = strlen(end);
  return a >= b && strcmp(s + a - b, end) == 0;
}

/* A file _best_guess_weight_name looks at: the extension, and nothing of training state. */
static int allowed(const char *file, const char *ext) {
  static const char *const unallowed[] = {"scheduler", "optimizer", "checkpoint"};
  int ok = ends_with(file, ext);
  for (int u = 0; ok && u < 3; u++)
    ok = strstr(file, unallowed[u]) == NULL;
  return ok;
}

int sdr_lora_best_guess(const char *const *files, size_t n, const char *ext) {
  const char *preferred =
      strcmp(ext, ".bin") == 0 ? "pytorch_lora_weights.bin" : "pytorch_lora_weights.safetensors";
  int any_preferred = 0;
  for (size_t i = 0; i < n; i++)
    any_preferred |= allowed(files[i], ext) && ends_with(files[i], preferred);
  int pick = -1, count = 0;
  for (size_t i = 0; i < n; i++) {
    if (!allowed(files[i], ext) || (any_preferred && !ends_with(files[i], preferred)))
      continue;
    if (pick < 0)
      pick = (int)i;
    count++;
  }
  if (count > 1) {
    sdr_fail("Provided path contains more than one weights file in the %s format. Either "
             "specify `weight_name` in `load_lora_weights` or make sure there's only one "
             "`.safetensors` or `.bin` file in the path.",
             ext);
    return -2;
  }
  return pick;
}

int sdr_lora_choose_file(const char *const *files, size_t n, int use_safetensors) {
  int pick = -1;
  for (int bin = 0; pick == -1 && bin < 2; bin++)
    if (!(bin ? use_safetensors == 1 : use_safetensors == 0))
      pick = sdr_lora_best_guess(files, n, bin ? ".bin" : ".safetensors");
  return pick;
}

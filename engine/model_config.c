/* engine/model_config.c — which weight files from_pretrained would load for a component.
 *
 * Names, as the Python libraries build them (_add_variant puts the variant
 * before the last dot-separated part):
 *   diffusers    diffusion_pytorch_model[.fp16].safetensors / .bin
 *                diffusion_pytorch_model.safetensors.index[.fp16].json
 *   transformers model[.fp16].safetensors, pytorch_model[.fp16].bin
 *                model.safetensors.index[.fp16].json
 * The search order is in engine/model_config.h; it follows diffusers'
 * models/modeling_utils.py (from_pretrained, _fetch_index_file,
 * _get_checkpoint_shard_files) and transformers' modeling_utils.py
 * (the is_local branch of from_pretrained).
 */
#include "engine/model_config.h"

#include <cJSON.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/error.h" // sdr_fail

/* ---- names -------------------------------------------------------------- */

static char *mc_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *mc_printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (s) {
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
  }
  return s;
}

/* diffusers' and transformers' _add_variant: "a.b.c" + v -> "a.b.v.c". */
static char *mc_add_variant(const char *name, const char *variant) {
  if (!variant)
    return strdup(name);
  const char *dot = strrchr(name, '.');
  if (!dot)
    return mc_printf("%s.%s", variant, name); /* as Python's split/join does */
  return mc_printf("%.*s.%s%s", (int)(dot - name), name, variant, dot);
}

static int mc_is_file(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISREG(sb.st_mode); /* follows links, as os.path.isfile */
}

/* ---- the search ------------------------------------------------------------- */

enum { MC_SINGLE, MC_INDEX };

typedef struct mc_candidate {
  char *name; /* file name inside the folder */
  int kind;
} mc_candidate;

/* The names from_pretrained tries, in its order. Returns the count. */
static int mc_candidates(const char *stem, const char *variant, int use_safetensors,
                         mc_candidate out[4]) {
  int transformers = strcmp(stem, "model") == 0;
  const char *bin_stem = transformers ? "pytorch_model" : stem;
  char *st = mc_printf("%s.safetensors", stem), *bin = mc_printf("%s.bin", bin_stem);
  char *st_index = mc_printf("%s.safetensors.index.json", stem);
  char *bin_index = mc_printf("%s.bin.index.json", bin_stem);
  mc_candidate all[4] = {{mc_add_variant(st, variant), MC_SINGLE},
                         {mc_add_variant(st_index, variant), MC_INDEX},
                         {mc_add_variant(bin, variant), MC_SINGLE},
                         {mc_add_variant(bin_index, variant), MC_INDEX}};
  free(st);
  free(bin);
  free(st_index);
  free(bin_index);
  /* Indices into all[]: 0 st, 1 st index, 2 bin, 3 bin index. */
  static const int diffusers_prefer[] = {1, 0, 2, -1}, diffusers_only[] = {1, 0, -1},
                   diffusers_bin[] = {3, 2, -1}, transformers_prefer[] = {0, 1, 2, 3, -1},
                   transformers_only[] = {0, 1, -1}, transformers_bin[] = {2, 3, -1};
  const int *pick = use_safetensors == 0  ? (transformers ? transformers_bin : diffusers_bin)
                    : use_safetensors > 0 ? (transformers ? transformers_only : diffusers_only)
                                          : (transformers ? transformers_prefer : diffusers_prefer);
  int n = 0, used[4] = {0};
  for (; pick[n] >= 0; n++) {
    out[n] = all[pick[n]];
    used[pick[n]] = 1;
  }
  for (int i = 0; i < 4; i++)
    if (!used[i])
      free(all[i].name);
  return n;
}

static int mc_name_cmp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The shard files an index lists: sorted, unique, existing, inside folder. */
static char **mc_shards(const char *folder, const char *index_path, size_t *count) {
  sdr_json idx;
  if (sdr_json_load(&idx, index_path) != 0)
    return NULL;
  char **files = NULL;
  const cJSON *map = sdr_json_get(&idx, "weight_map");
  if (!cJSON_IsObject(map) || !map->child) {
    sdr_fail("%s: expected \"weight_map\", an object from tensor names to shard files", index_path);
    goto fail;
  }
  size_t n = (size_t)cJSON_GetArraySize(map), k = 0;
  const char **names = malloc(n * sizeof *names);
  if (!names) {
    sdr_fail("%s: out of memory", index_path);
    goto fail;
  }
  for (const cJSON *e = map->child; e; e = e->next) {
    const char *f = cJSON_IsString(e) ? e->valuestring : NULL;
    /* A shard lies beside the index: a bare file name, never a path out of the folder. */
    if (!f || !*f || strchr(f, '/') || strcmp(f, ".") == 0 || strcmp(f, "..") == 0) {
      sdr_fail("%s: weight_map \"%.200s\": expected the name of a file in the folder", index_path,
               e->string);
      free(names);
      goto fail;
    }
    names[k++] = f;
  }
  qsort(names, n, sizeof *names, mc_name_cmp);
  files = calloc(n + 1, sizeof *files);
  size_t m = 0;
  for (size_t i = 0; files && i < n; i++) {
    if (i && strcmp(names[i], names[i - 1]) == 0)
      continue;
    if (!(files[m] = mc_printf("%s/%s", folder, names[i]))) {
      sdr_weight_files_free(files);
      files = NULL;
      break;
    }
    if (!mc_is_file(files[m])) {
      /* diffusers' words (_get_checkpoint_shard_files). */
      sdr_fail("%s does not appear to have a file named %s which is required according to "
               "the checkpoint index %s",
               folder, names[i], index_path);
      free(names);
      m++;
      goto fail;
    }
    m++;
  }
  free(names);
  if (!files) {
    sdr_fail("%s: out of memory", index_path);
    goto fail;
  }
  sdr_json_free(&idx);
  *count = m;
  return files;
fail:
  sdr_weight_files_free(files);
  sdr_json_free(&idx);
  return NULL;
}

char **sdr_find_weight_files(const char *dir, const char *component, const char *stem,
                             const char *variant, int use_safetensors, size_t *n) {
  *n = 0;
  if (!dir || !stem) {
    sdr_fail("sdr_find_weight_files: missing folder or file stem");
    return NULL;
  }
  if (variant && !*variant)
    variant = NULL;
  char *folder = component && *component ? mc_printf("%s/%s", dir, component) : strdup(dir);
  mc_candidate c[4];
  int nc = mc_candidates(stem, variant, use_safetensors, c);
  char **files = NULL;
  int found = 0;
  for (int i = 0; folder && i < nc && !found; i++) {
    char *path = mc_printf("%s/%s", folder, c[i].name);
    if (path && mc_is_file(path)) {
      found = 1;
      if (c[i].kind == MC_INDEX)
        files = mc_shards(folder, path, n);
      else if ((files = calloc(2, sizeof *files))) {
        files[0] = path;
        path = NULL;
        *n = 1;
      } else
        sdr_fail("out of memory");
    }
    free(path);
  }
  if (!found && folder) {
    /* diffusers' "Error no file named X found in directory D.", naming every X tried. */
    char list[1024] = "";
    size_t at = 0;
    for (int i = 0; i < nc; i++) {
      const char *sep = i == 0 ? "" : i == nc - 1 ? " or " : ", ";
      int w = snprintf(list + at, sizeof list - at, "%s%s", sep, c[i].name);
      if (w < 0 || (size_t)w >= sizeof list - at)
        break;
      at += (size_t)w;
    }
    sdr_fail("Error no file named %s found in directory %s.", list, folder);
  } else if (!folder)
    sdr_fail("out of memory");
  for (int i = 0; i < nc; i++)
    free(c[i].name);
  free(folder);
  return files;
}

void sdr_weight_files_free(char **files) {
  if (!files)
    return;
  for (char **f = files; *f; f++)
    free(*f);
  free(files);
}

char *sdr_find_weights(const char *dir, const char *component, const char *stem,
                       const char *variant, int use_safetensors) {
  size_t n = 0;
  char **files = sdr_find_weight_files(dir, component, stem, variant, use_safetensors, &n);
  if (!files)
    return NULL;
  if (n != 1) {
    sdr_fail("%s/%s: the weights are split into %zu shards; load them with "
             "sdr_find_weight_files",
             dir, component ? component : "", n);
    sdr_weight_files_free(files);
    return NULL;
  }
  char *path = files[0];
  free(files);
  return path;
}

int sdr_component_has_variant(const char *dir, const char *component, const char *variant) {
  if (!variant || !*variant)
    return 0;
  char *folder = component && *component ? mc_printf("%s/%s", dir, component) : strdup(dir);
  DIR *d = folder ? opendir(folder) : NULL;
  if (!d) {
    sdr_fail("%s: cannot list the folder", folder ? folder : dir);
    free(folder);
    return -1;
  }
  int found = 0;
  size_t vlen = strlen(variant);
  /* DiffusionPipeline.from_pretrained: any(p.split(".")[1].startswith(variant)).
   * (Python raises IndexError on a name without a dot; such a name just does not match.) */
  for (struct dirent *e; !found && (e = readdir(d));) {
    const char *part = strchr(e->d_name, '.');
    if (!part)
      continue;
    part++;
    const char *end = strchr(part, '.');
    size_t len = end ? (size_t)(end - part) : strlen(part);
    found = len >= vlen && strncmp(part, variant, vlen) == 0;
  }
  closedir(d);
  free(folder);
  return found;
}

/* engine/kept_files.c — a folder's small files, read whole and written back. */
#include "engine/kept_files.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/atomic_file.h" // sdr_write_file_atomic, sdr_make_dirs
#include "engine/error.h"       // sdr_fail

/* Tokenizers' files are the largest kept (tokenizer.json, a few MB); a bound keeps a
 * wrong folder from being read into memory. */
enum { KEPT_MAX_BYTES = 64 << 20 };

static int read_whole(const char *path, char **data, size_t *len) {
  FILE *fp = fopen(path, "rb");
  if (!fp)
    return sdr_fail("cannot read %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > KEPT_MAX_BYTES) {
    fclose(fp);
    return sdr_fail("cannot read %s: not a file of at most %d MB", path, KEPT_MAX_BYTES >> 20);
  }
  size_t n = (size_t)st.st_size;
  char *buf = malloc(n + 1);
  if (!buf) {
    fclose(fp);
    return sdr_fail("cannot read %s: out of memory", path);
  }
  size_t got = fread(buf, 1, n, fp);
  int err = ferror(fp);
  fclose(fp);
  if (err || got != n) {
    free(buf);
    return sdr_fail("cannot read %s: %s", path, err ? "read error" : "it changed while read");
  }
  buf[n] = 0;
  *data = buf;
  *len = n;
  return 0;
}

int sdr_kept_files_add(sdr_kept_files *k, const char *path, const char *rel) {
  sdr_kept_file *grown = realloc(k->f, (size_t)(k->n + 1) * sizeof *k->f);
  if (!grown)
    return sdr_fail("out of memory");
  k->f = grown;
  sdr_kept_file f = {strdup(rel), NULL, 0};
  int rc = f.rel ? read_whole(path, &f.data, &f.len) : sdr_fail("out of memory");
  if (rc != 0) {
    free(f.rel);
    return -1;
  }
  k->f[k->n++] = f;
  return 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int sdr_kept_files_add_folder(sdr_kept_files *k, const char *folder, const char *as) {
  char path[4096];
  snprintf(path, sizeof path, "%s", folder);
  DIR *d = opendir(path);
  if (!d)
    return errno == ENOENT ? 0 : sdr_fail("cannot read the folder %s: %s", path, strerror(errno));
  char **names = NULL;
  size_t n = 0;
  int rc = 0;
  for (struct dirent *e; rc == 0 && (e = readdir(d));) {
    char file[sizeof path + 257];
    struct stat st;
    snprintf(file, sizeof file, "%s/%s", path, e->d_name);
    if (e->d_name[0] == '.' || stat(file, &st) != 0 || !S_ISREG(st.st_mode))
      continue; /* hidden files (a download's leftovers) and folders stay behind */
    char **grown = realloc(names, (n + 1) * sizeof *names);
    if (!grown || !(grown[n] = strdup(e->d_name))) {
      if (grown)
        names = grown;
      rc = sdr_fail("out of memory");
      break;
    }
    names = grown;
    n++;
  }
  closedir(d);
  if (n)
    qsort(names, n, sizeof *names, by_name); /* the same order on every file system */
  for (size_t i = 0; i < n; i++) {
    char rel[512], file[sizeof path + 257];
    snprintf(rel, sizeof rel, "%s/%s", as, names[i]);
    snprintf(file, sizeof file, "%s/%s", path, names[i]);
    if (rc == 0)
      rc = sdr_kept_files_add(k, file, rel);
    free(names[i]);
  }
  free(names);
  return rc;
}

const sdr_kept_file *sdr_kept_files_find(const sdr_kept_files *k, const char *rel) {
  for (int i = 0; i < k->n; i++)
    if (strcmp(k->f[i].rel, rel) == 0)
      return &k->f[i];
  return NULL;
}

int sdr_kept_files_write(const sdr_kept_files *k, const char *dir, const char *prefix) {
  const size_t plen = strlen(prefix);
  for (int i = 0; i < k->n; i++) {
    if (strncmp(k->f[i].rel, prefix, plen) != 0)
      continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, k->f[i].rel);
    char *slash = strrchr(path, '/');
    *slash = 0;
    if (sdr_make_dirs(path) != 0)
      return -1;
    *slash = '/';
    if (sdr_write_file_atomic(path, k->f[i].data, k->f[i].len) != 0)
      return -1;
  }
  return 0;
}

void sdr_kept_files_free(sdr_kept_files *k) {
  for (int i = 0; i < k->n; i++) {
    free(k->f[i].rel);
    free(k->f[i].data);
  }
  free(k->f);
  k->f = NULL;
  k->n = 0;
}

/* engine/atomic_file.c — temporary file, fsync, rename. */
#include "engine/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/error.h" // sdr_fail

int sdr_atomic_begin(sdr_atomic_file *f, const char *path) {
  static atomic_uint counter;
  f->fd = -1;
  f->path = path;
  size_t size = strlen(path) + 48;
  f->tmp = malloc(size);
  if (!f->tmp)
    return sdr_fail("cannot write %s: out of memory", path);
  for (int attempt = 0; attempt < 100 && f->fd < 0; attempt++) {
    snprintf(f->tmp, size, "%s.tmp-%ld-%u", path, (long)getpid(), atomic_fetch_add(&counter, 1));
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (f->fd < 0 && errno != EEXIST)
      break;
  }
  if (f->fd < 0) {
    int e = errno;
    free(f->tmp);
    f->tmp = NULL;
    return sdr_fail("cannot write %s: %s", path, strerror(e));
  }
  return 0;
}

int sdr_atomic_write(sdr_atomic_file *f, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t n = write(f->fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return sdr_fail("cannot write %s: %s", f->path, strerror(errno));
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

void sdr_atomic_abort(sdr_atomic_file *f) {
  if (f->fd >= 0)
    close(f->fd);
  if (f->tmp)
    unlink(f->tmp);
  free(f->tmp);
  f->fd = -1;
  f->tmp = NULL;
}

int sdr_atomic_commit(sdr_atomic_file *f) {
  /* fsync before rename: after a crash the name points at whole data or the old file
   * (EINVAL: a file system that cannot sync, such as some pipes and special files). */
  int failed = fsync(f->fd) != 0 && errno != EINVAL;
  int e = errno;
  if (close(f->fd) != 0 && !failed) {
    failed = 1;
    e = errno;
  }
  f->fd = -1;
  if (!failed && rename(f->tmp, f->path) != 0) {
    failed = 1;
    e = errno;
  }
  if (failed) {
    sdr_atomic_abort(f);
    return sdr_fail("cannot write %s: %s", f->path, strerror(e));
  }
  free(f->tmp);
  f->tmp = NULL;
  return 0;
}

int sdr_write_file_atomic(const char *path, const void *data, size_t len) {
  sdr_atomic_file f;
  if (sdr_atomic_begin(&f, path) != 0)
    return -1;
  if (sdr_atomic_write(&f, data, len) != 0) {
    sdr_atomic_abort(&f);
    return -1;
  }
  return sdr_atomic_commit(&f);
}

int sdr_make_dirs(const char *dir) {
  char *p = strdup(dir);
  if (!p)
    return sdr_fail("cannot create %s: out of memory", dir);
  for (char *q = p + 1;; q++) {
    if (*q != '/' && *q != 0)
      continue;
    char was = *q;
    *q = 0;
    struct stat st;
    if (mkdir(p, 0755) != 0 && errno != EEXIST) {
      sdr_fail("cannot create %s: %s", p, strerror(errno));
      free(p);
      return -1;
    }
    if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
      sdr_fail("cannot create %s: a file is in the way", p);
      free(p);
      return -1;
    }
    if (was == 0)
      break;
    *q = was;
  }
  free(p);
  return 0;
}

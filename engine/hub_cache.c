/* engine/hub_cache.c — huggingface_hub's cache layout on disk.
 *
 *   models--{org}--{name}/refs/{revision}            a commit sha, no newline
 *   models--{org}--{name}/snapshots/{commit}/{path}  -> ../../blobs/{etag}
 *   .locks/models--{org}--{name}/{etag}.lock         flock, as Python's filelock
 *
 * Names that come from the server (ETags, commits, file paths) become file
 * names here, so each is checked before it is joined to a path, as
 * _get_pointer_path checks that a pointer stays inside snapshots/.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/error.h" // sdr_fail
#include "engine/hub_internal.h"
#include "engine/interrupt.h" // sdr_interrupt_check

/* repo_folder_name(repo_id, "model"): "models" + "--".join(repo_id.split("/")) */
char *hub_repo_folder_name(const char *repo_id) {
  char *s = hub_printf("models--%s", repo_id);
  if (!s)
    return NULL;
  /* repo ids have at most one '/' (sdr_hub_is_repo_id) */
  char *slash = strchr(s, '/');
  if (slash) {
    char *t = hub_printf("%.*s--%s", (int)(slash - s), s, slash + 1);
    free(s);
    s = t;
  }
  return s;
}

static int is_commit_sha(const char *s) {
  /* REGEX_COMMIT_HASH = ^[0-9a-f]{40}$ */
  size_t n = strspn(s, "0123456789abcdef");
  return n == 40 && s[40] == 0;
}

int hub_safe_name(const char *s) {
  if (!s || !*s || s[0] == '.' || strlen(s) > 200)
    return 0;
  return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") ==
         strlen(s);
}

int hub_safe_relpath(const char *path) {
  if (!path || !*path || path[0] == '/' || strchr(path, '\\'))
    return 0;
  for (const char *p = path; *p;) {
    size_t n = strcspn(p, "/");
    if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
      return 0;
    p += n;
    if (*p == '/')
      p++;
    if (*p == 0 && p[-1] == '/')
      return 0; /* a trailing slash names no file */
  }
  return 1;
}

char *hub_cached_commit(const char *storage, const char *revision) {
  if (is_commit_sha(revision))
    return hub_printf("%s", revision);
  if (!hub_safe_relpath(revision))
    return NULL;
  char *ref = hub_printf("%s/refs/%s", storage, revision);
  FILE *f = ref ? fopen(ref, "rb") : NULL;
  free(ref);
  if (!f)
    return NULL;
  char buf[128];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  /* Python writes the sha alone; read what it wrote (it does not strip either). */
  if (!hub_safe_name(buf))
    return NULL;
  return hub_printf("%s", buf);
}

/* Writes `text` to `path` through a temporary file renamed over it. */
static int write_atomically(const char *path, const char *text) {
  char *tmp = hub_printf("%s.tmp.%ld", path, (long)getpid());
  if (!tmp)
    return -1;
  FILE *f = fopen(tmp, "wb");
  int ok = f && fputs(text, f) >= 0;
  if (f && fclose(f) != 0)
    ok = 0;
  if (!ok || rename(tmp, path) != 0) {
    sdr_fail("cannot write %s: %s", path, strerror(errno));
    unlink(tmp);
    free(tmp);
    return -1;
  }
  free(tmp);
  return 0;
}

int hub_write_ref(const char *storage, const char *revision, const char *commit) {
  if (strcmp(revision, commit) == 0)
    return 0;
  if (!hub_safe_relpath(revision))
    return sdr_fail("revision '%s' cannot be a file name in the cache", revision);
  char *old = hub_cached_commit(storage, revision);
  int same = old && strcmp(old, commit) == 0;
  free(old);
  if (same) /* as Python: do not touch a ref that is right (the cache may be read-only) */
    return 0;
  char *ref = hub_printf("%s/refs/%s", storage, revision);
  if (!ref)
    return -1;
  char *dir = hub_printf("%s", ref);
  int rc = -1;
  if (dir) {
    *strrchr(dir, '/') = 0;
    rc = sdr_make_dirs(dir) == 0 ? write_atomically(ref, commit) : -1;
  }
  free(dir);
  free(ref);
  return rc;
}

int hub_link_snapshot(const char *storage, const char *commit, const char *path, const char *etag) {
  char *pointer = hub_printf("%s/snapshots/%s/%s", storage, commit, path);
  if (!pointer)
    return -1;
  /* _create_symlink: relpath(blob, dirname(pointer)) = "../" per folder of path, then ../../blobs
   */
  size_t depth = 0;
  for (const char *p = path; *p; p++)
    depth += *p == '/';
  size_t n = 3 * depth;
  char *target = malloc(n + strlen("../../blobs/") + strlen(etag) + 1);
  char *dir = hub_printf("%s", pointer);
  char *tmp = hub_printf("%s.tmp.%ld", pointer, (long)getpid());
  int rc = -1;
  if (!target || !dir || !tmp) {
    sdr_fail("out of memory");
    goto done;
  }
  target[0] = 0;
  for (size_t i = 0; i < depth; i++)
    strcat(target, "../");
  strcat(target, "../../blobs/");
  strcat(target, etag);
  *strrchr(dir, '/') = 0;
  if (sdr_make_dirs(dir) != 0)
    goto done;
  unlink(tmp);
  if (symlink(target, tmp) != 0) {
    sdr_fail("cannot create the link %s: %s", pointer, strerror(errno));
    goto done;
  }
  if (rename(tmp, pointer) != 0) {
    sdr_fail("cannot create the link %s: %s", pointer, strerror(errno));
    unlink(tmp);
    goto done;
  }
  rc = 0;
done:
  free(pointer);
  free(target);
  free(dir);
  free(tmp);
  return rc;
}

int hub_lock(const char *path, const char *what) {
  char *dir = hub_printf("%s", path);
  if (!dir)
    return -1;
  *strrchr(dir, '/') = 0;
  int made = sdr_make_dirs(dir);
  free(dir);
  if (made != 0)
    return -1;
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return sdr_fail("cannot create the lock %s: %s", path, strerror(errno));
  /* filelock polls flock(LOCK_EX | LOCK_NB); so do we, so that Ctrl-C ends the wait. */
  for (;;) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
      return fd;
    if (errno != EWOULDBLOCK && errno != EINTR) {
      int e = errno;
      close(fd);
      return sdr_fail("cannot lock %s: %s", path, strerror(e));
    }
    if (sdr_interrupt_check() != 0) {
      close(fd);
      return sdr_fail("interrupted while another process was downloading %s", what);
    }
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

void hub_unlock(int fd) {
  if (fd >= 0)
    close(fd); /* releases the flock; the file stays, as filelock leaves it */
}

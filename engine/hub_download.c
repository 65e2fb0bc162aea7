/* engine/hub_download.c — one file of a repo into the cache: huggingface_hub's
 * hf_hub_download(repo_id, filename, revision=<commit>), as snapshot_download
 * calls it.
 *
 *   1. snapshots/{commit}/{filename} exists: done, without a request.
 *   2. HEAD {endpoint}/{repo}/resolve/{commit}/{filename} (get_hf_file_metadata):
 *      the ETag (X-Linked-Etag for LFS files), the size (X-Linked-Size or
 *      Content-Length), and where the bytes are (Location of the CDN redirect).
 *   3. blobs/{etag} exists (another revision shares it): link it.
 *   4. Else, under .locks/.../{etag}.lock: fetch into blobs/{etag}.incomplete
 *      (resumed with Range when one is there), rename when whole, link.
 * The token goes to the hub's host only, never to the CDN's (signed URLs).
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "engine/download.h" // sdr_download_file
#include "engine/error.h"    // sdr_fail, sdr_last_error
#include "engine/hub_internal.h"

char *hub_url_quote(const char *s, const char *safe) {
  char *out = malloc(3 * strlen(s) + 1);
  if (!out) {
    sdr_fail("out of memory");
    return NULL;
  }
  char *o = out;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    int keep = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
               strchr("_.~-", *p) || (safe && *safe && strchr(safe, *p));
    if (keep && *p)
      *o++ = (char)*p;
    else
      o += sprintf(o, "%%%02X", *p);
  }
  *o = 0;
  return out;
}

/* _normalize_etag: without a leading W/ and the quotes. */
static char *normalize_etag(const char *etag) {
  if (!etag)
    return NULL;
  if (strncmp(etag, "W/", 2) == 0)
    etag += 2;
  size_t n = strlen(etag);
  while (n > 0 && etag[n - 1] == '"')
    n--;
  while (n > 0 && *etag == '"')
    etag++, n--;
  return hub_printf("%.*s", (int)n, etag);
}

static int64_t parse_size(const char *s) {
  if (!s || !*s)
    return -1;
  char *end;
  long long v = strtoll(s, &end, 10);
  return *end || v < 0 ? -1 : (int64_t)v;
}

static int is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode); /* follows links: os.path.exists */
}

static int same_host(const char *a, const char *b) {
  const char *pa = strstr(a, "://"), *pb = strstr(b, "://");
  if (!pa || !pb)
    return 0;
  pa += 3;
  pb += 3;
  size_t na = strcspn(pa, "/?#"), nb = strcspn(pb, "/?#");
  return na == nb && strncasecmp(pa, pb, na) == 0 && (pa - a) == (pb - b) &&
         strncasecmp(a, b, (size_t)(pa - a)) == 0;
}

/* _check_disk_space, but failing early with what to do (Python only warns). */
static int check_disk_space(const char *blob, int64_t expected, const char *filename) {
  if (expected <= 0)
    return 0;
  char *dir = hub_printf("%s", blob);
  if (!dir)
    return -1;
  *strrchr(dir, '/') = 0;
  char *part = hub_printf("%s.incomplete", blob);
  struct stat st;
  int64_t have = part && stat(part, &st) == 0 ? (int64_t)st.st_size : 0;
  free(part);
  struct statvfs vfs;
  int rc = 0;
  if (statvfs(dir, &vfs) == 0) {
    int64_t free_bytes = (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
    if (free_bytes < expected - have)
      rc = sdr_fail("not enough disk space for %s: it needs %.1f MB, %s has %.1f MB free; free "
                    "some space or point HF_HUB_CACHE (or the cache_dir option) at a disk with "
                    "room",
                    filename, (double)(expected - have) / 1e6, dir, (double)free_bytes / 1e6);
  }
  free(dir);
  return rc;
}

/* http_get's progress label: the path, its last 40 characters when longer. */
static void progress_label(const char *filename, char *out, size_t n) {
  size_t len = strlen(filename);
  if (len > 40)
    snprintf(out, n, "(…)%s", filename + len - 40);
  else
    snprintf(out, n, "%s", filename);
}

/* Steps 3 and 4, under the lock: the blob, then the link. */
static int fetch_blob(const hub_repo *h, const char *commit, const char *filename, const char *url,
                      const hub_response *meta, const char *etag) {
  char *blob = hub_printf("%s/blobs/%s", h->storage, etag);
  char *pointer = hub_printf("%s/snapshots/%s/%s", h->storage, commit, filename);
  char *blobs_dir = hub_printf("%s/blobs", h->storage);
  char *lock = hub_printf("%s/%s.lock", h->locks, etag);
  char *auth = NULL;
  int fd = -1, rc = -1;
  if (!blob || !pointer || !blobs_dir || !lock)
    goto done;
  if (is_file(blob)) { /* another revision or repo file has these bytes */
    rc = hub_link_snapshot(h->storage, commit, filename, etag);
    goto done;
  }
  if (sdr_make_dirs(blobs_dir) != 0 || (fd = hub_lock(lock, filename)) < 0)
    goto done;
  /* The download may have completed while we waited for the lock. */
  if (is_file(pointer)) {
    rc = 0;
    goto done;
  }
  if (!is_file(blob)) {
    int64_t expected = parse_size(meta->linked_size ? meta->linked_size : meta->content_length);
    if (check_disk_space(blob, expected, filename) != 0)
      goto done;
    /* A redirect to the CDN is followed by hand; the token stays with the hub. */
    const char *from = meta->location && meta->status >= 300 ? meta->location : url;
    const char *headers[2] = {NULL, NULL};
    if (h->token && same_host(from, url)) {
      auth = hub_printf("Authorization: Bearer %s", h->token);
      headers[0] = auth;
    }
    char label[64];
    progress_label(filename, label, sizeof label);
    if (sdr_download_file(from, blob, headers, label, 0) != 0) {
      if (strstr(sdr_last_error(), strerror(ENOSPC))) {
        char why[512];
        snprintf(why, sizeof why, "%s", sdr_last_error());
        sdr_fail("the disk is full: free some space or point HF_HUB_CACHE (or the cache_dir "
                 "option) at another disk, then run again to resume %s (%s)",
                 filename, why);
      }
      goto done;
    }
    struct stat st;
    if (expected >= 0 && stat(blob, &st) == 0 && (int64_t)st.st_size != expected) {
      unlink(blob);
      sdr_fail("consistency check failed: %s should be %" PRId64 " bytes but %" PRId64
               " came; run again to download it anew",
               filename, expected, (int64_t)st.st_size);
      goto done;
    }
  }
  rc = hub_link_snapshot(h->storage, commit, filename, etag);
done:
  hub_unlock(fd);
  free(auth);
  free(blob);
  free(pointer);
  free(blobs_dir);
  free(lock);
  return rc;
}

int hub_download_file(const hub_repo *h, const char *commit, const char *filename) {
  if (!hub_safe_relpath(filename))
    return sdr_fail("%s lists a file named '%s', which cannot be stored safely", h->repo_id,
                    filename);
  char *pointer = hub_printf("%s/snapshots/%s/%s", h->storage, commit, filename);
  if (!pointer)
    return -1;
  int cached = is_file(pointer);
  free(pointer);
  if (cached)
    return 0;
  /* hf_hub_url: {endpoint}/{repo_id}/resolve/{quote(revision, safe="")}/{quote(filename)} */
  char *qrev = hub_url_quote(commit, "");
  char *qname = hub_url_quote(filename, "/");
  char *url = qrev && qname
                  ? hub_printf("%s/%s/resolve/%s/%s", h->endpoint, h->repo_id, qrev, qname)
                  : NULL;
  free(qrev);
  free(qname);
  if (!url)
    return -1;
  hub_response meta;
  int rc = -1;
  if (hub_request("HEAD", url, h->token, &meta) != 0)
    goto done;
  if (meta.status == 0 || meta.status >= 400) {
    hub_fail_response(&meta, h->repo_id, h->revision, filename, h->token != NULL);
    goto done;
  }
  char *etag = normalize_etag(meta.linked_etag ? meta.linked_etag : meta.etag);
  if (!meta.repo_commit) {
    sdr_fail("%s does not answer as the Hugging Face hub does (no X-Repo-Commit for %s): check "
             "HF_ENDPOINT, a proxy or a firewall",
             h->endpoint, filename);
  } else if (!etag || !*etag) {
    sdr_fail("%s sent no ETag for %s of %s, so the cache cannot name it", h->endpoint, filename,
             h->repo_id);
  } else if (!hub_safe_name(etag)) {
    sdr_fail("%s sent an ETag for %s that cannot be a file name: %s", h->endpoint, filename, etag);
  } else {
    rc = fetch_blob(h, commit, filename, url, &meta, etag);
  }
  free(etag);
done:
  hub_response_free(&meta);
  free(url);
  return rc;
}

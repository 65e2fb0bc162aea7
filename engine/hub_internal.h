/* engine/hub_internal.h — what the engine/hub_*.c files share; not for callers.
 *
 *   hub_env.c       constants.py and _token.py: endpoint, folders, token, offline
 *   hub_http.c      metadata requests: repo_info, HEAD of a file, whoami; hf_raise_for_status
 *   hub_cache.c     the cache layout: refs, snapshot links, locks
 *   hub_download.c  hf_hub_download: one file into blobs/ and its snapshot link
 *   hub_files.c     which files DiffusionPipeline.download and from_pretrained need
 *   hub.c           snapshot_download: the revision, the list, the files
 *   hub_login.c     whoami, for login()
 */
#ifndef SDR_ENGINE_HUB_INTERNAL_H
#define SDR_ENGINE_HUB_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/atomic_file.h" // sdr_make_dirs
#include "engine/hub.h"

char *hub_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* urllib.parse.quote(s, safe): percent-encodes all but [A-Za-z0-9_.~-] and `safe`. malloc'd. */
char *hub_url_quote(const char *s, const char *safe);

/* ---- hub_http.c ------------------------------------------------------------ */

typedef struct hub_response {
  long status;         /* 0: no answer (see net_error) */
  char net_error[256]; /* curl's reason when there was no answer */
  char *body;          /* GET only; NUL-terminated */
  size_t body_len;
  /* Headers of the last response (NULL when absent), quotes kept. */
  char *etag, *linked_etag, *linked_size, *content_length, *location, *repo_commit;
  char *error_code, *error_message;
  char *url; /* the URL that answered (after relative redirects) */
} hub_response;

/* GET or HEAD `url` with "Authorization: Bearer <token>" when token is set.
 * HEAD follows only relative redirects (a renamed repo), not one to another
 * host (a CDN), so its Location and X-Linked-* headers are seen, as
 * huggingface_hub's _request_wrapper. Returns 0 when an answer came (any
 * status), -1 on an interrupt or out of memory (sdr_fail); no answer at all
 * is status 0 with net_error set. */
int hub_request(const char *method, const char *url, const char *token, hub_response *r);
void hub_response_free(hub_response *r);

/* hf_raise_for_status, with what to do: sets sdr_fail for a response that is
 * not 2xx (or none) and returns -1. `what` names the request ("model_index.json",
 * "the revision list"). */
int hub_fail_response(const hub_response *r, const char *repo_id, const char *revision,
                      const char *what, int sent_token);

/* 1 when diffusers would fall back to the cache after this answer to
 * repo_info: none at all, or any HTTP error. */
int hub_response_allows_cache(const hub_response *r);

/* ---- hub_cache.c ---------------------------------------------------------- */

/* repo_folder_name: "models--org--name". malloc'd. */
char *hub_repo_folder_name(const char *repo_id);
/* The commit refs/<revision> holds (or revision itself when it is a 40-hex
 * sha), malloc'd; NULL when not cached (no error set). */
char *hub_cached_commit(const char *storage, const char *revision);
/* _cache_commit_hash_for_specific_revision: refs/<revision> = commit, atomically. */
int hub_write_ref(const char *storage, const char *revision, const char *commit);
/* A relative path inside the repo that is safe to join: no "..", "." or empty
 * parts, not absolute, no backslash. */
int hub_safe_relpath(const char *path);
/* An ETag or commit usable as one file name: [A-Za-z0-9_.-], not starting with '.'. */
int hub_safe_name(const char *s);
/* snapshots/<commit>/<path> -> ../../blobs/<etag> (as many ../ as path has parts),
 * created atomically (a temporary link renamed over it). */
int hub_link_snapshot(const char *storage, const char *commit, const char *path, const char *etag);
/* flock(LOCK_EX) on `path` (created), waiting while another process holds it;
 * Ctrl-C stops the wait. Returns the fd or -1. */
int hub_lock(const char *path, const char *what);
void hub_unlock(int fd);

/* ---- hub_download.c ------------------------------------------------------- */

typedef struct hub_repo {
  const char *repo_id;
  const char *endpoint;
  const char *storage;  /* <cache>/models--org--name */
  const char *locks;    /* <cache>/.locks/models--org--name */
  const char *token;    /* NULL: none */
  const char *revision; /* what the user asked for, for messages */
} hub_repo;

/* hf_hub_download(repo, filename, revision=commit): the snapshot link when it
 * exists (no request), else HEAD for the ETag, the blob when it is there, else
 * the download under the lock. Returns 0 or -1 (sdr_fail). */
int hub_download_file(const hub_repo *h, const char *commit, const char *filename);

/* ---- hub_files.c ---------------------------------------------------------- */

/* The files `kind` needs out of the repo's `siblings` (n of them), as a
 * NULL-terminated malloc'd list of pointers into siblings (free the list
 * only). model_index: the parsed model_index.json for SDR_HUB_PIPELINE, else
 * NULL. Returns NULL and sdr_fail when the repo cannot give what is asked
 * (use_safetensors = 1 without safetensors, no config). */
const char **hub_needed_files(const char *const *siblings, size_t n, sdr_hub_kind kind,
                              const sdr_hub_options *o, const char *model_index_path);

#endif

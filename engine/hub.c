/* engine/hub.c — a repo id in, a snapshot folder out: huggingface_hub's
 * snapshot_download as diffusers' DiffusionPipeline.download drives it.
 *
 *   1. repo_info: GET {endpoint}/api/models/{repo}/revision/{rev} gives the
 *      commit the revision is at and the list of files ("siblings").
 *      When it cannot be asked (offline, no network, 5xx, 401/403), the
 *      snapshot refs/{rev} points to is used if the cache has it.
 *   2. refs/{rev} = commit.
 *   3. model_index.json first (a pipeline), then what hub_needed_files
 *      chooses, each by hf_hub_download(revision=commit): a file already in
 *      snapshots/{commit}/ costs no request, so a cached model costs one.
 */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/error.h" // sdr_fail
#include "engine/hub_internal.h"

typedef struct repo_info {
  char *sha;
  char **siblings;
  size_t n;
} repo_info;

static void repo_info_free(repo_info *ri) {
  for (size_t i = 0; i < ri->n; i++)
    free(ri->siblings[i]);
  free(ri->siblings);
  free(ri->sha);
  memset(ri, 0, sizeof *ri);
}

/* ModelInfo(**r.json()): the sha and siblings[].rfilename. */
static int parse_repo_info(const hub_response *r, const char *endpoint, repo_info *ri) {
  cJSON *root = cJSON_ParseWithLength(r->body ? r->body : "", r->body_len);
  const cJSON *sha = cJSON_GetObjectItemCaseSensitive(root, "sha");
  const cJSON *sib = cJSON_GetObjectItemCaseSensitive(root, "siblings");
  int rc = -1;
  if (!cJSON_IsString(sha) || !cJSON_IsArray(sib)) {
    sdr_fail("%s did not answer as the Hugging Face hub does (no sha and siblings in %s): check "
             "HF_ENDPOINT",
             endpoint, r->url ? r->url : "the model info");
    goto done;
  }
  if (!hub_safe_name(sha->valuestring)) {
    sdr_fail("%s gave a commit that cannot be a folder name: %s", endpoint, sha->valuestring);
    goto done;
  }
  ri->sha = hub_printf("%s", sha->valuestring);
  ri->siblings = calloc((size_t)cJSON_GetArraySize(sib) + 1, sizeof *ri->siblings);
  if (!ri->sha || !ri->siblings) {
    sdr_fail("out of memory");
    goto done;
  }
  const cJSON *e;
  cJSON_ArrayForEach(e, sib) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "rfilename");
    if (cJSON_IsString(name) && !(ri->siblings[ri->n++] = hub_printf("%s", name->valuestring)))
      goto done;
  }
  rc = 0;
done:
  cJSON_Delete(root);
  return rc;
}

static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The snapshot of `revision` the cache has, or NULL. */
static char *cached_snapshot(const char *storage, const char *revision) {
  char *commit = hub_cached_commit(storage, revision);
  char *snap = commit ? hub_printf("%s/snapshots/%s", storage, commit) : NULL;
  free(commit);
  if (snap && !is_dir(snap)) {
    free(snap);
    snap = NULL;
  }
  return snap;
}

/* The files of one kind into the snapshot of ri->sha. */
static char *fetch(const hub_repo *h, const repo_info *ri, sdr_hub_kind kind,
                   const sdr_hub_options *o) {
  char *snapshot = hub_printf("%s/snapshots/%s", h->storage, ri->sha);
  char *model_index = NULL;
  const char **needed = NULL;
  if (!snapshot)
    return NULL;
  if (kind == SDR_HUB_PIPELINE) {
    int has = 0;
    for (size_t i = 0; i < ri->n && !has; i++)
      has = strcmp(ri->siblings[i], "model_index.json") == 0;
    if (!has) {
      sdr_fail("%s has no model_index.json at revision '%s', so it is no diffusers pipeline (a "
               "single model loads with its own class, e.g. UNet2DConditionModel.from_pretrained)",
               h->repo_id, h->revision);
      goto fail;
    }
    if (hub_download_file(h, ri->sha, "model_index.json") != 0)
      goto fail;
    model_index = hub_printf("%s/model_index.json", snapshot);
    if (!model_index)
      goto fail;
  }
  needed = hub_needed_files((const char *const *)ri->siblings, ri->n, kind, o, model_index);
  if (!needed) {
    sdr_fail_prefix("%s (revision '%s'): ", h->repo_id, h->revision);
    goto fail;
  }
  for (const char **f = needed; *f; f++)
    if (hub_download_file(h, ri->sha, *f) != 0)
      goto fail;
  free(needed);
  free(model_index);
  return snapshot;
fail:
  free(needed);
  free(model_index);
  free(snapshot);
  return NULL;
}

/* No list from the hub: the cached snapshot, or an error that says why and what to do. */
static char *from_cache(const hub_repo *h, const char *cache, int offline, const hub_response *r,
                        sdr_hub_options *o) {
  char *snap = cached_snapshot(h->storage, h->revision);
  if (snap) {
    if (!offline) {
      char why[400];
      hub_fail_response(r, h->repo_id, h->revision, "the file list", h->token != NULL);
      snprintf(why, sizeof why, "%s", sdr_last_error());
      snprintf(o->note, sizeof o->note, "using the cached copy of %s (revision '%s'): %s",
               h->repo_id, h->revision, why);
    }
    return snap;
  }
  if (offline) {
    sdr_fail("%s (revision '%s') is not in the cache %s, and %s: run it once with the network "
             "(without HF_HUB_OFFLINE=1 and local_files_only)",
             h->repo_id, h->revision, cache,
             o->local_files_only ? "local_files_only forbids downloading"
                                 : "HF_HUB_OFFLINE=1 forbids downloading");
    return NULL;
  }
  hub_fail_response(r, h->repo_id, h->revision, "the file list", h->token != NULL);
  if (r->status == 0 || r->status >= 500)
    sdr_fail_prefix("no copy of it is in the cache %s either, so it cannot be loaded without "
                    "the network: ",
                    cache);
  return NULL;
}

char *sdr_hub_snapshot(const char *repo_id, sdr_hub_kind kind, sdr_hub_options *o) {
  o->note[0] = 0;
  if (!sdr_hub_is_repo_id(repo_id)) {
    sdr_fail("'%s' is neither a folder nor a repo id of the Hugging Face hub ('name' or "
             "'namespace/name')",
             repo_id);
    return NULL;
  }
  const char *revision = o->revision && *o->revision ? o->revision : "main";
  if (!hub_safe_relpath(revision)) {
    sdr_fail("revision '%s' is not a branch, tag or commit name", revision);
    return NULL;
  }
  char *cache = o->cache_dir ? hub_printf("%s", o->cache_dir) : sdr_hub_cache_dir();
  char *folder = hub_repo_folder_name(repo_id);
  char *storage = cache && folder ? hub_printf("%s/%s", cache, folder) : NULL;
  char *locks = cache && folder ? hub_printf("%s/.locks/%s", cache, folder) : NULL;
  char *endpoint = sdr_hub_endpoint();
  /* build_hf_headers: the token given, else the implicit one (unless disabled) */
  char *token = o->no_token                    ? NULL
                : o->token                     ? hub_printf("%s", o->token)
                : sdr_hub_implicit_token_off() ? NULL
                                               : sdr_hub_get_token();
  char *qrev = hub_url_quote(revision, "");
  char *result = NULL;
  hub_response r = {0};
  repo_info ri = {0};
  if (!storage || !locks || !endpoint || !qrev)
    goto done;
  hub_repo h = {.repo_id = repo_id,
                .endpoint = endpoint,
                .storage = storage,
                .locks = locks,
                .token = token,
                .revision = revision};
  int offline = o->local_files_only || sdr_hub_offline();
  if (offline) {
    result = from_cache(&h, cache, 1, &r, o);
    goto done;
  }
  char *url = hub_printf("%s/api/models/%s/revision/%s", endpoint, repo_id, qrev);
  int asked = url ? hub_request("GET", url, token, &r) : -1;
  free(url);
  if (asked != 0)
    goto done;
  if (r.status != 200) {
    if (hub_response_allows_cache(&r))
      result = from_cache(&h, cache, 0, &r, o);
    else
      hub_fail_response(&r, repo_id, revision, "the file list", token != NULL);
    goto done;
  }
  if (parse_repo_info(&r, endpoint, &ri) != 0 || hub_write_ref(storage, revision, ri.sha) != 0)
    goto done;
  result = fetch(&h, &ri, kind, o);
done:
  repo_info_free(&ri);
  hub_response_free(&r);
  free(cache);
  free(folder);
  free(storage);
  free(locks);
  free(endpoint);
  free(token);
  free(qrev);
  return result;
}

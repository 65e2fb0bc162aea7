/* engine/hub_http.c — the hub's metadata requests with libcurl, and its errors.
 *
 * Small answers (repo_info's JSON, whoami) and HEAD requests, whose headers
 * carry what a download needs: X-Repo-Commit, ETag or X-Linked-Etag, and for
 * a file stored with LFS a redirect to the CDN with X-Linked-Size. Files
 * themselves go through engine/http.c (resume, progress). Mirrors
 * huggingface_hub's _request_wrapper and get_hf_file_metadata; the error
 * texts follow hf_raise_for_status's cases and say what to do.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/error.h" // sdr_fail
#include "engine/hub_internal.h"
#include "engine/interrupt.h" // sdr_interrupt_pending, sdr_interrupt_check

enum { MAX_BODY = 64 << 20, MAX_RELATIVE_REDIRECTS = 10 };

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;
static void curl_init_once(void) { curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT); }

typedef struct request_state {
  hub_response *r;
  int too_big;
} request_state;

static void clear_headers(hub_response *r) {
  char **all[] = {&r->etag,     &r->linked_etag, &r->linked_size, &r->content_length,
                  &r->location, &r->repo_commit, &r->error_code,  &r->error_message};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    free(*all[i]);
    *all[i] = NULL;
  }
}

void hub_response_free(hub_response *r) {
  clear_headers(r);
  free(r->body);
  free(r->url);
  memset(r, 0, sizeof *r);
}

/* ---- callbacks -------------------------------------------------------------- */

static void keep_header(char **slot, const char *value) {
  free(*slot);
  *slot = strdup(value);
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud) {
  request_state *s = ud;
  size_t len = size * nitems;
  char line[2048];
  size_t n = len < sizeof line - 1 ? len : sizeof line - 1;
  memcpy(line, buf, n);
  while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n'))
    n--;
  line[n] = 0;
  if (strncmp(line, "HTTP/", 5) == 0) { /* a new response: forget the previous one's headers */
    clear_headers(s->r);
    return len;
  }
  char *colon = strchr(line, ':');
  if (!colon)
    return len;
  *colon = 0;
  const char *v = colon + 1 + strspn(colon + 1, " \t");
  static const struct {
    const char *name;
    size_t offset;
  } wanted[] = {{"etag", offsetof(hub_response, etag)},
                {"x-linked-etag", offsetof(hub_response, linked_etag)},
                {"x-linked-size", offsetof(hub_response, linked_size)},
                {"content-length", offsetof(hub_response, content_length)},
                {"location", offsetof(hub_response, location)},
                {"x-repo-commit", offsetof(hub_response, repo_commit)},
                {"x-error-code", offsetof(hub_response, error_code)},
                {"x-error-message", offsetof(hub_response, error_message)}};
  for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++)
    if (strcasecmp(line, wanted[i].name) == 0)
      keep_header((char **)((char *)s->r + wanted[i].offset), v);
  return len;
}

static size_t on_body(char *buf, size_t size, size_t nitems, void *ud) {
  request_state *s = ud;
  size_t len = size * nitems;
  hub_response *r = s->r;
  if (r->body_len + len > MAX_BODY) {
    s->too_big = 1;
    return 0;
  }
  char *grown = realloc(r->body, r->body_len + len + 1);
  if (!grown)
    return 0;
  memcpy(grown + r->body_len, buf, len);
  r->body = grown;
  r->body_len += len;
  r->body[r->body_len] = 0;
  return len;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
  return sdr_interrupt_pending() ? 1 : 0;
}

/* ---- one request ------------------------------------------------------------- */

static int perform(const char *method, const char *url, const char *token, hub_response *r) {
  CURL *h = curl_easy_init();
  if (!h)
    return sdr_fail("cannot ask %s: curl_easy_init failed", url);
  request_state s = {.r = r};
  char errbuf[CURL_ERROR_SIZE] = "";
  struct curl_slist *headers = curl_slist_append(NULL, "Accept-Encoding: identity");
  char *auth = token ? hub_printf("Authorization: Bearer %s", token) : NULL;
  if (auth)
    headers = curl_slist_append(headers, auth);
  int head = strcmp(method, "HEAD") == 0;
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_NOBODY, head ? 1L : 0L);
  /* GET follows redirects as requests does; HEAD must see them (see hub_request). */
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, head ? 0L : 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "sdrepl/0.1; hf_hub/0.22.2 (compatible; libcurl)");
  /* huggingface_hub's etag_timeout is 10 s; a list of files may take longer. */
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &s);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  CURLcode rc = curl_easy_perform(h);
  int status = 0;
  if (rc == CURLE_ABORTED_BY_CALLBACK || sdr_interrupt_pending()) {
    if (sdr_interrupt_check() == 0)
      sdr_fail("interrupted");
    status = -1;
  } else if (s.too_big) {
    status = sdr_fail("the answer of %s is larger than %d MB", url, MAX_BODY >> 20);
  } else if (rc != CURLE_OK) {
    r->status = 0;
    snprintf(r->net_error, sizeof r->net_error, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
  } else {
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    char *eff = NULL;
    curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &eff);
    free(r->url);
    r->url = strdup(eff ? eff : url);
  }
  curl_slist_free_all(headers);
  free(auth);
  curl_easy_cleanup(h);
  return status;
}

/* "scheme://host[:port]" of url, for a relative Location. */
static char *origin_of(const char *url) {
  const char *p = strstr(url, "://");
  p = p ? p + 3 : url;
  p += strcspn(p, "/?#");
  return hub_printf("%.*s", (int)(p - url), url);
}

int hub_request(const char *method, const char *url, const char *token, hub_response *r) {
  memset(r, 0, sizeof *r);
  pthread_once(&curl_once, curl_init_once);
  if (curl_init_result != CURLE_OK)
    return sdr_fail("cannot start libcurl: %s", curl_easy_strerror(curl_init_result));
  char *next = hub_printf("%s", url);
  if (!next)
    return -1;
  /* _request_wrapper(follow_relative_redirects=True): a Location without a
   * host (a renamed repo) is followed, one with a host (the CDN) is not. */
  for (int hops = 0;; hops++) {
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
    if (perform(method, next, token, r) != 0) {
      free(next);
      return -1;
    }
    const char *loc = r->location;
    int relative = r->status >= 300 && r->status < 400 && loc && loc[0] == '/' && loc[1] != '/';
    if (!relative || strcmp(method, "HEAD") != 0 || hops == MAX_RELATIVE_REDIRECTS)
      break;
    char *origin = origin_of(next);
    char *target = origin ? hub_printf("%s%.*s", origin, (int)strcspn(loc, "?#"), loc) : NULL;
    free(origin);
    free(next);
    if (!target)
      return -1;
    next = target;
  }
  free(next);
  return 0;
}

/* ---- errors ------------------------------------------------------------------- */

int hub_response_allows_cache(const hub_response *r) {
  /* diffusers' download() turns any HTTPError of model_info (a missing repo or
   * revision too) into local_files_only=True: the cached snapshot, if any. */
  return r->status == 0 || r->status >= 300;
}

static int code_is(const hub_response *r, const char *code) {
  return r->error_code && strcmp(r->error_code, code) == 0;
}

int hub_fail_response(const hub_response *r, const char *repo_id, const char *revision,
                      const char *what, int sent_token) {
  char *endpoint = sdr_hub_endpoint();
  const char *ep = endpoint ? endpoint : "the hub";
  const char *msg = r->error_message ? r->error_message : "";
  if (r->status == 0) {
    sdr_fail("cannot reach %s for %s of %s: %s", ep, what, repo_id, r->net_error);
  } else if (code_is(r, "GatedRepo")) {
    if (sent_token)
      sdr_fail("%s is a gated model and this token has no access to it (HTTP %ld): accept its "
               "conditions at %s/%s with the account the token belongs to, or log in with "
               "another token: login()",
               repo_id, r->status, ep, repo_id);
    else
      sdr_fail("%s is a gated model (HTTP %ld): accept its conditions at %s/%s, then log in "
               "with login() (or set HF_TOKEN) with a token of that account",
               repo_id, r->status, ep, repo_id);
  } else if (code_is(r, "RevisionNotFound")) {
    sdr_fail("revision '%s' not found in %s (HTTP %ld): check the branch, tag or commit name",
             revision, repo_id, r->status);
  } else if (code_is(r, "EntryNotFound")) {
    sdr_fail("%s not found in %s at revision '%s' (HTTP %ld)", what, repo_id, revision, r->status);
  } else if (code_is(r, "RepoNotFound") || r->status == 404 || (r->status == 401 && !sent_token)) {
    if (sent_token)
      sdr_fail("repository %s not found at %s (HTTP %ld), nor is it a folder here: check the "
               "name; a private repo is seen only with a token of an account that can read it",
               repo_id, ep, r->status);
    else
      sdr_fail("repository %s not found at %s (HTTP %ld), nor is it a folder here: check the "
               "name; if it is private or gated, log in with login() (or set HF_TOKEN)",
               repo_id, ep, r->status);
  } else if (r->status == 401) {
    sdr_fail("the hub refused the token (HTTP 401%s%s): log in again with login(), or fix "
             "HF_TOKEN or pass token = false",
             *msg ? ": " : "", msg);
  } else if (r->status == 403) {
    sdr_fail("access to %s denied (HTTP 403%s%s)", repo_id, *msg ? ": " : "", msg);
  } else if (r->status >= 500) {
    sdr_fail("%s answered HTTP %ld for %s of %s: the hub has trouble, try again later", ep,
             r->status, what, repo_id);
  } else {
    sdr_fail("HTTP %ld for %s of %s%s%s", r->status, what, repo_id, *msg ? ": " : "", msg);
  }
  free(endpoint);
  return -1;
}

/* engine/http.c — one resumable HTTP(S) transfer into a file, with libcurl.
 *
 * sdr_download_file() writes the body into "<path>.incomplete" and renames it
 * to <path> only once the transfer is whole (Content-Length or Content-Range
 * matched when the server gave one), so a partial file never passes for a
 * whole one. A later call continues the .incomplete file with a Range
 * request. Servers differ in how they answer one, and each answer is handled:
 *
 *   206 from where we stopped   append
 *   206 from elsewhere          start over without Range
 *   200 (Range ignored)         truncate and take the whole body
 *   416 "bytes * /N"            N equal to what we hold: it was whole already;
 *                               otherwise start over
 *
 * The .incomplete file is locked (flock) while it is written, so two
 * processes never interleave their bytes in it.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* flock, ftruncate under -std=c11 */
#endif
#include "engine/download.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/error.h"     // sdr_fail
#include "engine/interrupt.h" // sdr_interrupt_pending, sdr_interrupt_check
#include "engine/progress.h"  // sdr_progress_begin, sdr_progress_update, sdr_progress_end

/* ---- one-time setup ------------------------------------------------------ */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

/* curl_global_init is not thread-safe itself; pthread_once makes the first
 * download from any thread do it exactly once. */
static void curl_init_once(void) { curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---- the state of one request -------------------------------------------- */

typedef struct transfer {
  const char *url, *desc;
  int fd;           /* the locked .incomplete file */
  int64_t offset;   /* bytes it held when the request was made (sent as Range) */
  int64_t start;    /* where this response's body goes in the file */
  int64_t written;  /* body bytes written by this request */
  int64_t expected; /* the whole file's size, -1 when the server did not say */

  /* The response being received; reset by each status line, so after
   * redirects it describes the last one. */
  long status;
  char reason[64];
  int64_t content_length;         /* -1: not sent */
  int64_t range_first, range_all; /* Content-Range "bytes F-L/A"; -1: absent or "*" */

  int prepared;    /* the body of a 2xx response is being written */
  int began;       /* sdr_progress_begin was called */
  int bad_range;   /* a 206 that does not continue where we stopped */
  int write_errno; /* writing the file failed */
} transfer;

static void reset_response(transfer *t) {
  t->status = 0;
  t->reason[0] = 0;
  t->content_length = t->range_first = t->range_all = -1;
}

/* ---- headers ------------------------------------------------------------- */

/* "HTTP/1.1 404 Not Found": the code and the reason phrase (HTTP/2 has none). */
static void parse_status_line(transfer *t, const char *line) {
  reset_response(t);
  const char *p = strchr(line, ' ');
  if (!p)
    return;
  char *end;
  t->status = strtol(p + 1, &end, 10);
  while (*end == ' ')
    end++;
  snprintf(t->reason, sizeof t->reason, "%s", end);
}

static int64_t parse_int64(const char *s) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  return errno || end == s || v < 0 ? -1 : (int64_t)v;
}

/* "bytes 100-199/1000", "bytes 100-199/<star>" or, with a 416, "bytes <star>/1000". */
static void parse_content_range(transfer *t, const char *v) {
  if (strncasecmp(v, "bytes", 5) != 0)
    return;
  v += 5;
  while (*v == ' ' || *v == '=')
    v++;
  t->range_first = *v == '*' ? -1 : parse_int64(v);
  const char *slash = strchr(v, '/');
  t->range_all = slash && slash[1] != '*' ? parse_int64(slash + 1) : -1;
}

/* Headers are in: decide where the body goes, and start the progress bar. */
static int prepare_body(transfer *t) {
  if (t->status == 206) {
    if (t->range_first != t->offset) {
      t->bad_range = 1;
      return 0;
    }
    t->start = t->offset;
    t->expected = t->range_all >= 0        ? t->range_all
                  : t->content_length >= 0 ? t->offset + t->content_length
                                           : -1;
  } else {
    /* A 200 to a Range request means the server ignored it: the body is the
     * whole file, so what we held is dropped. */
    t->start = 0;
    t->expected = t->content_length;
  }
  if (ftruncate(t->fd, t->start) != 0 || lseek(t->fd, t->start, SEEK_SET) < 0) {
    t->write_errno = errno;
    return 0;
  }
  t->prepared = 1;
  /* A resumed transfer counts only what it fetches, so rate and ETA are true. */
  if (t->start > 0) {
    char desc[256];
    snprintf(desc, sizeof desc, "%s (resumed)", t->desc);
    sdr_progress_begin(desc, t->expected >= 0 ? t->expected - t->start : -1, 1);
  } else {
    sdr_progress_begin(t->desc, t->expected, 1);
  }
  t->began = 1;
  return 1;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud) {
  transfer *t = ud;
  size_t len = size * nitems;
  char line[512];
  size_t n = len < sizeof line - 1 ? len : sizeof line - 1;
  memcpy(line, buf, n);
  while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n'))
    n--;
  line[n] = 0;

  if (strncmp(line, "HTTP/", 5) == 0) {
    parse_status_line(t, line);
  } else if (n == 0) {
    /* The blank line ends a response's headers. Redirects and 1xx are
     * followed by curl; only a 2xx body is ours to keep. */
    if (t->status >= 200 && t->status < 300 && !t->prepared && !prepare_body(t))
      return 0;
  } else if (strncasecmp(line, "content-length:", 15) == 0) {
    t->content_length = parse_int64(line + 15 + strspn(line + 15, " \t"));
  } else if (strncasecmp(line, "content-range:", 14) == 0) {
    parse_content_range(t, line + 14 + strspn(line + 14, " \t"));
  }
  return len;
}

/* ---- body and progress --------------------------------------------------- */

static size_t on_body(char *buf, size_t size, size_t nitems, void *ud) {
  transfer *t = ud;
  size_t len = size * nitems;
  /* An error page is not the file: stop reading it (the status is reported). */
  if (!t->prepared)
    return 0;
  for (size_t done = 0; done < len;) {
    ssize_t w = write(t->fd, buf + done, len - done);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      t->write_errno = w < 0 ? errno : EIO;
      return 0;
    }
    done += (size_t)w;
  }
  t->written += (int64_t)len;
  return len;
}

/* Called often during the transfer and about once a second when it stalls;
 * returning non-zero aborts it, which is how Ctrl-C reaches a download. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
  transfer *t = ud;
  if (sdr_interrupt_pending())
    return 1;
  if (t->prepared)
    sdr_progress_update(t->written);
  return 0;
}

/* ---- one request ------------------------------------------------------- */

/* Standard phrases, for servers (and HTTP/2) that send none. */
static const char *reason_phrase(const transfer *t) {
  if (t->reason[0])
    return t->reason;
  static const struct {
    long code;
    const char *text;
  } phrases[] = {{300, "Multiple Choices"},
                 {301, "Moved Permanently"},
                 {302, "Found"},
                 {303, "See Other"},
                 {304, "Not Modified"},
                 {307, "Temporary Redirect"},
                 {308, "Permanent Redirect"},
                 {400, "Bad Request"},
                 {401, "Unauthorized"},
                 {403, "Forbidden"},
                 {404, "Not Found"},
                 {405, "Method Not Allowed"},
                 {408, "Request Timeout"},
                 {410, "Gone"},
                 {416, "Range Not Satisfiable"},
                 {429, "Too Many Requests"},
                 {500, "Internal Server Error"},
                 {501, "Not Implemented"},
                 {502, "Bad Gateway"},
                 {503, "Service Unavailable"},
                 {504, "Gateway Timeout"}};
  for (size_t i = 0; i < sizeof phrases / sizeof phrases[0]; i++)
    if (phrases[i].code == t->status)
      return phrases[i].text;
  return "";
}

enum { REQ_DONE, REQ_FAILED, REQ_RESTART };

static void set_options(CURL *h, transfer *t, struct curl_slist *headers, char *errbuf) {
  curl_easy_setopt(h, CURLOPT_URL, t->url);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 20L);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  /* Signals belong to the REPL (Ctrl-C); curl must neither use nor block them. */
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  /* Some hosts refuse requests without a User-Agent. */
  curl_easy_setopt(h, CURLOPT_USERAGENT, "sdrepl/0.1 (libcurl)");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
  /* A transfer that stalls for a minute fails (and can be resumed) rather than hanging. */
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
  /* No Accept-Encoding: the body must be the file's bytes, so that sizes and ranges match. */
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, t);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, t);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  if (headers)
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
}

/* What the finished request means, in the order that matters: a Ctrl-C
 * first, then what we decided ourselves, then the server, then the network. */
/* " (redirected to URL)" when the last response came from elsewhere; else "". */
static void redirect_note(CURL *h, const transfer *t, char *out, size_t n) {
  char *last = NULL;
  out[0] = 0;
  if (curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &last) == CURLE_OK && last &&
      strcmp(last, t->url) != 0)
    snprintf(out, n, " (redirected to %s)", last);
}

static int judge(CURL *h, transfer *t, CURLcode rc, const char *errbuf, const char *part) {
  if (rc == CURLE_ABORTED_BY_CALLBACK || sdr_interrupt_pending()) {
    if (sdr_interrupt_check() == 0) /* aborted for an interrupt already consumed */
      sdr_fail("interrupted");
    return REQ_FAILED;
  }
  if (t->bad_range)
    return REQ_RESTART;
  if (t->write_errno)
    return sdr_fail("writing %s: %s", part, strerror(t->write_errno)), REQ_FAILED;
  if (t->status == 416 && t->offset > 0)
    return t->range_all == t->offset ? REQ_DONE : REQ_RESTART;
  if (t->status >= 300 && rc != CURLE_TOO_MANY_REDIRECTS) {
    const char *why = reason_phrase(t);
    char note[512];
    redirect_note(h, t, note, sizeof note);
    sdr_fail("HTTP %ld%s%s%s for %s%s", t->status, *why ? " (" : "", why, *why ? ")" : "", t->url,
             note);
    return REQ_FAILED;
  }
  if (rc != CURLE_OK) {
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    if (t->start + t->written > 0)
      sdr_fail("cannot fetch %s: %s (the partial file is kept and resumed next time)", t->url, why);
    else
      sdr_fail("cannot fetch %s: %s", t->url, why);
    return REQ_FAILED;
  }
  if (!t->prepared)
    return sdr_fail("cannot fetch %s: the server sent no file", t->url), REQ_FAILED;
  int64_t have = t->start + t->written;
  if (t->expected >= 0 && have != t->expected) {
    sdr_fail("cannot fetch %s: got %" PRId64 " of %" PRId64 " bytes (kept to resume next time)",
             t->url, have, t->expected);
    return REQ_FAILED;
  }
  return REQ_DONE;
}

static int request(transfer *t, struct curl_slist *headers, const char *part) {
  CURL *h = curl_easy_init();
  if (!h)
    return sdr_fail("cannot fetch %s: curl_easy_init failed", t->url), REQ_FAILED;
  char errbuf[CURL_ERROR_SIZE] = "";
  set_options(h, t, headers, errbuf);
  char range[32];
  if (t->offset > 0) {
    snprintf(range, sizeof range, "%" PRId64 "-", t->offset);
    curl_easy_setopt(h, CURLOPT_RANGE, range);
  }
  CURLcode rc = curl_easy_perform(h);
  int result = judge(h, t, rc, errbuf, part);
  if (t->began)
    sdr_progress_end(result == REQ_DONE);
  curl_easy_cleanup(h);
  return result;
}

/* ---- the whole download -------------------------------------------------- */

static int open_locked(const char *part, int *fd) {
  *fd = open(part, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (*fd < 0)
    return sdr_fail("cannot create %s: %s", part, strerror(errno));
  if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    close(*fd);
    *fd = -1;
    if (e == EWOULDBLOCK)
      return sdr_fail("another download is writing %s", part);
    return sdr_fail("cannot lock %s: %s", part, strerror(e));
  }
  return 0;
}

static int fetch_into(const char *url, const char *part, int fd, struct curl_slist *headers,
                      const char *desc) {
  /* At most one start-over: after it we send no Range, so the cases that
   * cause one cannot happen again. */
  for (int attempt = 0; attempt < 2; attempt++) {
    struct stat st;
    if (fstat(fd, &st) != 0)
      return sdr_fail("cannot read %s: %s", part, strerror(errno));
    transfer t = {.url = url, .desc = desc, .fd = fd, .offset = st.st_size, .expected = -1};
    reset_response(&t);
    int r = request(&t, headers, part);
    if (r != REQ_RESTART)
      return r == REQ_DONE ? 0 : -1;
    if (ftruncate(fd, 0) != 0)
      return sdr_fail("cannot truncate %s: %s", part, strerror(errno));
  }
  return sdr_fail("cannot fetch %s: the server answers Range requests inconsistently", url);
}

int sdr_download_file(const char *url, const char *path, const char *const *headers,
                      const char *desc, int fresh) {
  pthread_once(&curl_once, curl_init_once);
  if (curl_init_result != CURLE_OK)
    return sdr_fail("cannot start libcurl: %s", curl_easy_strerror(curl_init_result));

  size_t n = strlen(path);
  char *part = malloc(n + sizeof ".incomplete");
  if (!part)
    return sdr_fail("out of memory");
  memcpy(part, path, n);
  memcpy(part + n, ".incomplete", sizeof ".incomplete");

  struct curl_slist *list = NULL;
  for (const char *const *hd = headers; hd && *hd; hd++) {
    struct curl_slist *next = curl_slist_append(list, *hd);
    if (!next) {
      curl_slist_free_all(list);
      free(part);
      return sdr_fail("out of memory");
    }
    list = next;
  }

  int fd, status = open_locked(part, &fd);
  if (status == 0 && fresh && ftruncate(fd, 0) != 0)
    status = sdr_fail("cannot truncate %s: %s", part, strerror(errno));
  if (status == 0)
    status = fetch_into(url, part, fd, list, desc ? desc : url);
  if (status == 0 && rename(part, path) != 0)
    status = sdr_fail("cannot rename %s to %s: %s", part, path, strerror(errno));
  if (status != 0 && fd >= 0) {
    /* An empty leftover holds nothing to resume; only tidy it away. */
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size == 0)
      unlink(part);
  }
  if (fd >= 0)
    close(fd); /* also releases the lock, after the rename */
  curl_slist_free_all(list);
  free(part);
  return status;
}

/* repl/capture.c — catching a cell's output at the file descriptors.
 *
 * Lua's print, io.write, C code's printf and a child process all end up on
 * fds 1 and 2, so that is where the capture sits: each is replaced by the
 * write end of a pipe. A thread reads both pipes, copies each to where it
 * went before (the terminal still shows everything, stderr stays stderr) and
 * appends it to one buffer in the order it arrived. The thread always reads,
 * so a cell that prints a lot never blocks on a full pipe.
 *
 * A third pipe carries requests from the caller: 's' (sync: read what is in
 * the pipes now, then answer) and 'q' (the same, then stop). Stopping does
 * not wait for end of file, because a background process started by the cell
 * may hold the pipes open forever.
 */
#define _GNU_SOURCE
#include "repl/capture.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Beyond this the text is cut (the terminal still gets all of it): a record
 * should not grow without bound because a loop printed forever. */
enum { CAPTURE_MAX = 32 << 20 };

struct capture {
  int saved[2]; /* the original fds 1 and 2 */
  int rd[2];    /* read ends of the pipes now behind fds 1 and 2 */
  int ctl[2];   /* requests to the thread */
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t answered;
  unsigned long requests, answers; /* a request is answered when answers catch up */
  char *buf;                       /* guarded by lock */
  size_t len, cap;
  int truncated;
};

/* ---- the thread -------------------------------------------------------- */

static void write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return; /* the terminal went away: keep capturing anyway */
    p += w;
    n -= (size_t)w;
  }
}

static void keep(capture *c, const char *p, size_t n) {
  pthread_mutex_lock(&c->lock);
  if (c->len + n > CAPTURE_MAX) {
    n = c->len < CAPTURE_MAX ? CAPTURE_MAX - c->len : 0;
    c->truncated = 1;
  }
  if (n && c->len + n + 1 > c->cap) {
    size_t cap = c->cap ? c->cap : 4096;
    while (cap < c->len + n + 1)
      cap *= 2;
    char *grown = realloc(c->buf, cap);
    if (grown) {
      c->buf = grown;
      c->cap = cap;
    } else {
      n = 0;
      c->truncated = 1;
    }
  }
  if (n) {
    memcpy(c->buf + c->len, p, n);
    c->len += n;
  }
  pthread_mutex_unlock(&c->lock);
}

/* Reads what is there now (the read ends are non-blocking). Returns 0 at end of file. */
static int drain(capture *c, int i) {
  char chunk[65536];
  for (;;) {
    ssize_t n = read(c->rd[i], chunk, sizeof chunk);
    if (n > 0) {
      write_all(c->saved[i], chunk, (size_t)n);
      keep(c, chunk, (size_t)n);
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    return n != 0;
  }
}

static void *capture_thread(void *arg) {
  capture *c = arg;
  int open_[2] = {1, 1};
  for (;;) {
    struct pollfd p[3] = {{c->rd[0], POLLIN, 0}, {c->rd[1], POLLIN, 0}, {c->ctl[0], POLLIN, 0}};
    for (int i = 0; i < 2; i++)
      if (!open_[i])
        p[i].fd = -1;
    if (poll(p, 3, -1) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    for (int i = 0; i < 2; i++)
      if (open_[i] && (p[i].revents & (POLLIN | POLLHUP | POLLERR)))
        open_[i] = drain(c, i);
    if (p[2].revents & (POLLIN | POLLHUP)) {
      char req = 'q';
      if (read(c->ctl[0], &req, 1) <= 0)
        req = 'q';
      /* Everything written before the request is in the pipes now. */
      for (int i = 0; i < 2; i++)
        if (open_[i])
          open_[i] = drain(c, i);
      pthread_mutex_lock(&c->lock);
      c->answers++;
      pthread_cond_broadcast(&c->answered);
      pthread_mutex_unlock(&c->lock);
      if (req == 'q')
        break;
    }
  }
  return NULL;
}

/* Sends a request and waits for the thread to answer it. */
static void ask(capture *c, char req) {
  pthread_mutex_lock(&c->lock);
  unsigned long want = ++c->requests;
  pthread_mutex_unlock(&c->lock);
  write_all(c->ctl[1], &req, 1);
  pthread_mutex_lock(&c->lock);
  while (c->answers < want)
    pthread_cond_wait(&c->answered, &c->lock);
  pthread_mutex_unlock(&c->lock);
}

/* ---- begin and end ----------------------------------------------------- */

static void close_fd(int *fd) {
  if (*fd >= 0)
    close(*fd);
  *fd = -1;
}

static void capture_destroy(capture *c) {
  for (int i = 0; i < 2; i++) {
    close_fd(&c->saved[i]);
    close_fd(&c->rd[i]);
    close_fd(&c->ctl[i]);
  }
  pthread_mutex_destroy(&c->lock);
  pthread_cond_destroy(&c->answered);
  free(c->buf);
  free(c);
}

capture *capture_begin(void) {
  capture *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  int wr[2] = {-1, -1};
  for (int i = 0; i < 2; i++)
    c->saved[i] = c->rd[i] = c->ctl[i] = -1;
  pthread_mutex_init(&c->lock, NULL);
  pthread_cond_init(&c->answered, NULL);
  fflush(stdout);
  fflush(stderr);
  int ok = pipe2(c->ctl, O_CLOEXEC) == 0;
  for (int i = 0; i < 2 && ok; i++) {
    int p[2];
    ok = pipe2(p, O_CLOEXEC) == 0;
    if (ok) {
      c->rd[i] = p[0];
      wr[i] = p[1];
      ok = fcntl(c->rd[i], F_SETFL, O_NONBLOCK) == 0;
      c->saved[i] = fcntl(1 + i, F_DUPFD_CLOEXEC, 3);
      ok = ok && c->saved[i] >= 0;
    }
  }
  if (ok) {
    /* The thread blocks every signal, so Ctrl-C always lands on the thread
     * running Lua (where the REPL's handler and EINTR are expected). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    ok = pthread_create(&c->thread, NULL, capture_thread, c) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  if (!ok) {
    close_fd(&wr[0]);
    close_fd(&wr[1]);
    capture_destroy(c);
    return NULL;
  }
  /* Only now the fds move: on any failure above nothing has changed. The pipes'
   * write ends live on as fds 1 and 2 alone (dup2 clears close-on-exec, so
   * child processes write into them too). */
  for (int i = 0; i < 2; i++) {
    while (dup2(wr[i], 1 + i) < 0 && errno == EINTR)
      ;
    close_fd(&wr[i]);
  }
  return c;
}

char *capture_take(capture *c, size_t *len) {
  fflush(stdout);
  fflush(stderr);
  ask(c, 's');
  pthread_mutex_lock(&c->lock);
  char *text = malloc(c->len + 1);
  size_t n = 0;
  if (text) {
    n = c->len;
    if (n) /* buf is NULL until something arrives */
      memcpy(text, c->buf, n);
    text[n] = '\0';
    c->len = 0;
  }
  pthread_mutex_unlock(&c->lock);
  if (len)
    *len = n;
  return text;
}

char *capture_end(capture *c, size_t *len) {
  if (!c) {
    if (len)
      *len = 0;
    return NULL;
  }
  fflush(stdout);
  fflush(stderr);
  /* Restore first: from here on nothing of ours writes into the pipes, so
   * what the thread drains after the request is all there is. */
  for (int i = 0; i < 2; i++)
    while (dup2(c->saved[i], 1 + i) < 0 && errno == EINTR)
      ;
  ask(c, 'q');
  pthread_join(c->thread, NULL);
  static const char cut[] = "\n[output cut: too long]\n";
  if (c->truncated) {
    char *grown = realloc(c->buf, c->len + sizeof cut);
    if (grown) {
      memcpy(grown + c->len, cut, sizeof cut);
      c->buf = grown;
      c->len += sizeof cut - 1;
    }
  }
  char *text = c->buf ? c->buf : malloc(1);
  size_t n = c->buf ? c->len : 0;
  if (text)
    text[n] = '\0';
  c->buf = NULL;
  capture_destroy(c);
  if (len)
    *len = text ? n : 0;
  return text;
}

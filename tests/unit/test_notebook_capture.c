/* tests/unit/test_notebook_capture.c — capture_begin/take/end: stdio and raw fds, both
 * streams, child processes, a large output that must not deadlock, fds restored. */
#define _POSIX_C_SOURCE 200809L /* dev_t, ino_t, dup */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "repl/capture.h" // capture_begin, capture_take, capture_end

/* What fds 1 and 2 are, to check they come back. */
static void fd_identity(int fd, dev_t *dev, ino_t *ino) {
  struct stat st;
  fstat(fd, &st);
  *dev = st.st_dev;
  *ino = st.st_ino;
}

static void test_both_streams(void) {
  dev_t d1, d2;
  ino_t i1, i2;
  fd_identity(1, &d1, &i1);
  fd_identity(2, &d2, &i2);

  printf("not caught\n"); /* sits in stdio's buffer: begin must flush it out first */
  capture *c = capture_begin();
  CHECK(c != NULL);
  printf("one ");
  fflush(stdout);
  fprintf(stderr, "two ");
  (void)!write(1, "three ", 6);
  CHECK(system("echo four") == 0);
  printf("five"); /* left buffered: end must flush it */
  size_t n;
  char *text = capture_end(c, &n);
  /* Each stream keeps its order; across the two, only the order of arrival
   * at the thread is known, so "two " may sit anywhere. */
  CHECK(text && n == strlen(text));
  char *two = text ? strstr(text, "two ") : NULL;
  CHECK(two != NULL);
  if (two)
    memmove(two, two + 4, strlen(two + 4) + 1);
  CHECK_STR(text, "one three four\nfive");
  free(text);

  dev_t e1, e2;
  ino_t j1, j2;
  fd_identity(1, &e1, &j1);
  fd_identity(2, &e2, &j2);
  CHECK(d1 == e1 && i1 == j1);
  CHECK(d2 == e2 && i2 == j2);
}

static void test_take(void) {
  capture *c = capture_begin();
  CHECK(c != NULL);
  size_t n;
  char *a = capture_take(c, &n); /* nothing yet: an empty string, not NULL */
  CHECK_STR(a, "");
  free(a);
  printf("before");
  a = capture_take(c, &n);
  CHECK_STR(a, "before");
  free(a);
  a = capture_take(c, &n);
  CHECK_STR(a, "");
  CHECK(n == 0);
  free(a);
  fprintf(stderr, "after\n");
  char *b = capture_end(c, &n);
  CHECK_STR(b, "after\n");
  free(b);
  CHECK(capture_end(NULL, &n) == NULL && n == 0);
}

/* 20 MB written in one call, far more than a pipe holds: only works if the
 * thread keeps reading while the writer blocks. */
static void test_large(void) {
  size_t big = 20u << 20;
  char *data = malloc(big);
  for (size_t i = 0; i < big; i++)
    data[i] = (char)('a' + i % 26);
  /* The copy to the "terminal" goes to /dev/null, not into the test log. */
  int saved = dup(1), saved_err = dup(2);
  int null = open("/dev/null", O_WRONLY);
  dup2(null, 1);
  dup2(null, 2);
  close(null);
  capture *c = capture_begin();
  CHECK(c != NULL);
  size_t off = 0;
  while (off < big) {
    ssize_t w = write(1, data + off, big - off);
    if (w <= 0)
      break;
    off += (size_t)w;
  }
  for (int i = 0; i < 1000; i++)
    fprintf(stderr, "line %d\n", i);
  size_t n;
  char *text = capture_end(c, &n);
  dup2(saved, 1);
  dup2(saved_err, 2);
  close(saved);
  close(saved_err);
  CHECK(off == big);
  CHECK(text && n > big);
  CHECK(text && memcmp(text, data, big) == 0);
  CHECK(text && strstr(text + big, "line 999\n") != NULL);
  free(text);
  free(data);
}

/* A background child that keeps the pipe open must not make capture_end hang. */
static void test_background_child(void) {
  capture *c = capture_begin();
  CHECK(c != NULL);
  CHECK(system("(sleep 3; echo late) >/dev/null 2>&1 & sleep 2 >&1 & echo ok") == 0);
  size_t n;
  char *text = capture_end(c, &n);
  CHECK_STR(text, "ok\n");
  free(text);
}

int main(void) {
  test_both_streams();
  test_take();
  test_large();
  test_background_child();
  return check_exit();
}

/* tests/unit/check.h — the few assertions C unit tests use.
 *
 * CHECK records a failure with file:line and goes on, so one run shows every
 * mismatch; check_exit() makes the program's status non-zero on any failure.
 */
#ifndef SDR_TESTS_CHECK_H
#define SDR_TESTS_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                     \
      check_failures++;                                                                            \
    }                                                                                              \
  } while (0)

#define CHECK_STR(a, b)                                                                            \
  do {                                                                                             \
    const char *check_a_ = (a), *check_b_ = (b);                                                   \
    if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {                               \
      fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__,                             \
              check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)");                     \
      check_failures++;                                                                            \
    }                                                                                              \
  } while (0)

static inline int check_exit(void) {
  if (check_failures)
    fprintf(stderr, "%d check(s) failed\n", check_failures);
  return check_failures ? 1 : 0;
}

#endif

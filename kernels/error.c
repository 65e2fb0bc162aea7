/* kernels/error.c — the per-thread last error message, shared by every layer. */
#include "kernels/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { SDR_ERROR_MAX = 1024 };
static _Thread_local char last_error[SDR_ERROR_MAX];

int sdr_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return -1;
}

int sdr_fail_prefix(const char *fmt, ...) {
  char prefix[SDR_ERROR_MAX], old[SDR_ERROR_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, last_error, sizeof old);
  int n = snprintf(last_error, sizeof last_error, "%s", prefix);
  if (n >= 0 && (size_t)n < sizeof last_error)
    snprintf(last_error + n, sizeof last_error - (size_t)n, "%s", old);
  return -1;
}

const char *sdr_last_error(void) { return last_error[0] ? last_error : "unknown error"; }

void sdr_clear_error(void) { last_error[0] = 0; }

/* repl/window_save.c — saving what the preview window shows, and telling where. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* strdup, getcwd under -std=c11 */
#endif
#include "repl/window_save.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <readline/readline.h>

#include "engine/error.h" // sdr_fail, sdr_last_error

int window_save_fresh(const sdr_image *img, char *path, size_t path_size) {
  enum { MAX_TRIES = 100000 };
  for (int n = 1; n < MAX_TRIES; n++) {
    snprintf(path, path_size, "sdrepl-%04d.png", n);
    /* O_EXCL claims the name, so two sessions in one folder never pick the
     * same one; the save then renames its finished file over our empty one. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
      if (errno == EEXIST)
        continue;
      return sdr_fail("cannot create %s: %s", path, strerror(errno));
    }
    close(fd);
    if (sdr_image_save(img, path) != 0) {
      unlink(path);
      return sdr_fail_prefix("saving %s: ", path);
    }
    return 0;
  }
  return sdr_fail("no free name sdrepl-NNNN.png left in this folder");
}

void window_say(const char *fmt, ...) {
  /* Keys are handled while Readline waits for a line (prompt.c pumps the
   * window between keystrokes). Printing there would run into the prompt, so
   * the visible line is cleared first and drawn again after the message. */
  int at_prompt = RL_ISSTATE(RL_STATE_CALLBACK) != 0;
  if (at_prompt)
    rl_clear_visible_line();
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
  if (at_prompt) {
    rl_on_new_line();
    rl_redisplay();
  }
}

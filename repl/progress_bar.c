/* repl/progress_bar.c — the one progress bar, drawn the way tqdm draws it.
 *
 * A diffusers user knows tqdm's line by heart, so the format is tqdm's
 * format_meter, down to its rounding:
 *
 *   desc:  42%|████▏     | 21/50 [00:05<00:06,  4.20it/s]
 *   x.png:  27%|██▋       | 12.3M/45.6M [00:02<00:05, 6.45MB/s]
 *   x.png: 12.3MB [00:02, 6.45MB/s]                       (total unknown)
 *
 * Byte counts are scaled by 1024 as huggingface_hub's bars do (unit_divisor=1024);
 * rates by 1000, because tqdm ignores unit_divisor there.
 * On a terminal the line is redrawn in place at most ten times a second
 * (and always in its final state); elsewhere (a log, CI) a line is printed at
 * each tenth and at the end, never a carriage return.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif
#include "repl/progress_bar.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "engine/progress.h" // sdr_progress_set_sink, sdr_progress_sink
#include "repl/window.h"     // preview_window_pump, preview_window_live, preview_window_is_open

/* ---- formatting: tqdm.format_meter ------------------------------------- */

/* tqdm.format_sizeof: three significant digits and a k/M/G/... suffix. */
static void format_sizeof(char *out, size_t n, double num, double divisor) {
  static const char *units[] = {"", "k", "M", "G", "T", "P", "E", "Z"};
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    double a = num < 0 ? -num : num;
    if (a < 999.5) {
      if (a < 99.95) {
        if (a < 9.995) {
          snprintf(out, n, "%1.2f%s", num, units[i]);
          return;
        }
        snprintf(out, n, "%2.1f%s", num, units[i]);
        return;
      }
      snprintf(out, n, "%3.0f%s", num, units[i]);
      return;
    }
    num /= divisor;
  }
  snprintf(out, n, "%3.1fY", num);
}

/* tqdm.format_interval: [H:]MM:SS of the whole seconds. */
static void format_interval(char *out, size_t n, double t) {
  long s = (long)t, m = s / 60, h = m / 60;
  if (h)
    snprintf(out, n, "%ld:%02ld:%02ld", h, m % 60, s % 60);
  else
    snprintf(out, n, "%02ld:%02ld", m, s % 60);
}

/* "4.20it/s", or "3.33s/it" when slower than one a second; "?it/s" at first. */
static void format_rate(char *out, size_t n, double rate, const char *unit, int scale,
                        double divisor) {
  char num[32];
  if (rate > 0 && 1 / rate > 1) {
    if (scale)
      format_sizeof(num, sizeof num, 1 / rate, divisor);
    else
      snprintf(num, sizeof num, "%5.2f", 1 / rate);
    snprintf(out, n, "%ss/%s", num, unit);
    return;
  }
  if (rate > 0 && scale)
    format_sizeof(num, sizeof num, rate, divisor);
  else if (rate > 0)
    snprintf(num, sizeof num, "%5.2f", rate);
  else
    snprintf(num, sizeof num, "?");
  snprintf(out, n, "%s%s/s", num, unit);
}

static void format_count(char *out, size_t n, int64_t v, int scale, double divisor) {
  if (scale)
    format_sizeof(out, n, (double)v, divisor);
  else
    snprintf(out, n, "%" PRId64, v);
}

/* Display width, counting each UTF-8 character as one column (as tqdm's disp_len
 * does for the characters we draw). */
static size_t display_len(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    n += ((unsigned char)*s & 0xC0) != 0x80;
  return n;
}

/* Cuts s to at most `cols` characters without splitting one. */
static void display_trim(char *s, size_t cols) {
  size_t n = 0;
  for (char *p = s; *p; p++) {
    if (((unsigned char)*p & 0xC0) != 0x80 && n++ == cols) {
      *p = 0;
      return;
    }
  }
}

/* tqdm's Bar with its UTF-8 charset: eighths of a block, blank padded. */
static void format_bar(char *out, size_t n, double frac, int width) {
  static const char *eighths[] = {" ", "▏", "▎", "▍", "▌", "▋", "▊", "▉", "█"};
  int ticks = (int)(frac * width * 8);
  int full = ticks / 8, part = ticks % 8;
  size_t len = 0;
  out[0] = 0;
  for (int i = 0; i < width; i++) {
    const char *c = i < full ? eighths[8] : i == full ? eighths[part] : eighths[0];
    size_t cl = strlen(c);
    if (len + cl + 1 > n)
      break;
    memcpy(out + len, c, cl + 1);
    len += cl;
  }
}

void progress_bar_format(char *buf, size_t n, const char *desc, int64_t done, int64_t total,
                         double elapsed_s, int bytes, int width) {
  if (n == 0)
    return;
  const char *unit = bytes ? "B" : "it";
  const double divisor = 1024;
  char prefix[256] = "";
  if (desc && *desc)
    snprintf(prefix, sizeof prefix, "%s: ", desc);
  /* tqdm forgets a total that has been overshot. */
  if (total > 0 && (double)done >= (double)total + 0.5)
    total = -1;
  double rate = elapsed_s > 0 ? (double)done / elapsed_s : 0;
  char n_fmt[32], rate_fmt[48], elapsed[32];
  format_count(n_fmt, sizeof n_fmt, done, bytes, divisor);
  /* tqdm scales rates by 1000 whatever unit_divisor says; so do we. */
  format_rate(rate_fmt, sizeof rate_fmt, rate, unit, bytes, 1000);
  format_interval(elapsed, sizeof elapsed, elapsed_s);

  if (total <= 0) {
    snprintf(buf, n, "%s%s%s [%s, %s]", prefix, n_fmt, unit, elapsed, rate_fmt);
  } else {
    char total_fmt[32], remaining[32], l_bar[300], r_bar[256], blocks[4 * 4096 + 1];
    format_count(total_fmt, sizeof total_fmt, total, bytes, divisor);
    if (rate > 0)
      format_interval(remaining, sizeof remaining, (double)(total - done) / rate);
    else
      snprintf(remaining, sizeof remaining, "?");
    double frac = (double)done / (double)total;
    snprintf(l_bar, sizeof l_bar, "%s%3.0f%%|", prefix, frac * 100);
    snprintf(r_bar, sizeof r_bar, "| %s/%s [%s<%s, %s]", n_fmt, total_fmt, elapsed, remaining,
             rate_fmt);
    int bar_width = 10;
    if (width > 0) {
      int rest = width - (int)(display_len(l_bar) + display_len(r_bar));
      bar_width = rest > 1 ? rest : 1;
    }
    if (bar_width > 4096)
      bar_width = 4096;
    format_bar(blocks, sizeof blocks, frac > 1 ? 1 : frac, bar_width);
    snprintf(buf, n, "%s%s%s", l_bar, blocks, r_bar);
  }
  if (width > 0)
    display_trim(buf, (size_t)width);
}

/* ---- drawing ------------------------------------------------------------- */

enum { LINE_MAX = 4096 };

static struct {
  int active, tty, bytes;
  char desc[256];
  int64_t total, done;
  double start, last_draw, last_pump;
  size_t last_len;      /* characters of the last line drawn in place */
  int64_t drawn_done;   /* `done` when it was last drawn */
  int last_tenth;       /* not a TTY: the last tenth printed */
  int64_t printed_done; /* not a TTY: `done` of the last line printed; -1: none */
} bar;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int terminal_width(void) {
  struct winsize ws;
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    return ws.ws_col;
  return 80;
}

static void format_now(char *line, int width) {
  progress_bar_format(line, LINE_MAX, bar.desc, bar.done, bar.total, now_s() - bar.start, bar.bytes,
                      width);
}

/* Redraws in place; blanks what a longer previous line left behind, as tqdm does. */
static void draw_in_place(void) {
  char line[LINE_MAX];
  format_now(line, terminal_width());
  size_t len = display_len(line);
  int pad = bar.last_len > len ? (int)(bar.last_len - len) : 0;
  fprintf(stderr, "\r%s%*s", line, pad, "");
  fflush(stderr);
  bar.last_len = len;
  bar.last_draw = now_s();
  bar.drawn_done = bar.done;
}

static void print_line(void) {
  char line[LINE_MAX];
  format_now(line, 0);
  fprintf(stderr, "%s\n", line);
  fflush(stderr);
  bar.printed_done = bar.done;
}

static void finish(void) {
  if (bar.tty) {
    draw_in_place();
    fputc('\n', stderr);
    fflush(stderr);
  } else if (bar.printed_done != bar.done) {
    print_line();
  }
  bar.active = 0;
}

/* ---- the engine's sink ------------------------------------------------- */

/* Live previews go to the window only, and only while it is open. */
static int on_wants_preview(void *ud) {
  (void)ud;
  return preview_window_is_open();
}

static void on_preview(void *ud, const struct sdr_image *img, const char *title) {
  (void)ud;
  preview_window_live(img, title);
}

static void on_begin(void *ud, const char *desc, int64_t total, int bytes) {
  (void)ud;
  if (bar.active)
    finish(); /* a bar left open by work that never ended it */
  snprintf(bar.desc, sizeof bar.desc, "%s", desc ? desc : "");
  bar.active = 1;
  bar.tty = isatty(STDERR_FILENO);
  bar.bytes = bytes;
  bar.total = total;
  bar.done = 0;
  bar.start = now_s();
  bar.last_pump = 0;
  bar.last_len = 0;
  bar.last_tenth = 0;
  bar.printed_done = -1;
  bar.drawn_done = -1;
  if (bar.tty)
    draw_in_place();
}

static void on_update(void *ud, int64_t done) {
  (void)ud;
  if (!bar.active)
    return;
  bar.done = done;
  double t = now_s();
  /* A download reports thousands of updates a second; the window needs far
   * fewer to stay responsive, and each pump may cost a redraw. */
  if (t - bar.last_pump >= 0.01) {
    bar.last_pump = t;
    preview_window_pump();
  }
  /* The final state is drawn at once, and once: curl reports it repeatedly. */
  int final = bar.total > 0 && done >= bar.total && done != bar.drawn_done;
  if (bar.tty) {
    if (final || t - bar.last_draw >= 0.1)
      draw_in_place();
    return;
  }
  if (bar.total > 0) {
    int64_t tenth = done * 10 / bar.total;
    if (tenth > 10)
      tenth = 10;
    if (tenth > bar.last_tenth) {
      bar.last_tenth = (int)tenth;
      print_line();
    }
  }
}

static void on_end(void *ud, int ok) {
  (void)ud;
  (void)ok;
  if (bar.active)
    finish();
  preview_window_pump();
}

void progress_bar_install(void) {
  static const sdr_progress_sink sink = {on_begin, on_update, on_end, on_wants_preview,
                                         on_preview, NULL};
  sdr_progress_set_sink(&sink);
}

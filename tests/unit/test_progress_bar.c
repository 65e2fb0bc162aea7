/* tests/unit/test_progress_bar.c — progress_bar_format against tqdm's format_meter.
 *
 * Each expected string is what tqdm 4.70 prints for the same numbers
 * (tqdm.format_meter(n, total, elapsed, ncols=width or None, prefix=desc),
 * with unit='B', unit_scale=True, unit_divisor=1024 for bytes).
 */
#include <stdint.h>

#include "check.h"
#include "repl/progress_bar.h" // progress_bar_format

static void check_fmt(int line, const char *desc, int64_t done, int64_t total, double elapsed,
                      int bytes, int width, const char *want) {
  char buf[1024];
  progress_bar_format(buf, sizeof buf, desc, done, total, elapsed, bytes, width);
  if (strcmp(buf, want) != 0) {
    fprintf(stderr, "line %d:\n  got  \"%s\"\n  want \"%s\"\n", line, buf, want);
    check_failures++;
  }
}
#define CHECK_FMT(...) check_fmt(__LINE__, __VA_ARGS__)

int main(void) {
  /* counts, known total */
  CHECK_FMT("desc", 21, 50, 5.0, 0, 0, "desc:  42%|████▏     | 21/50 [00:05<00:06,  4.20it/s]");
  CHECK_FMT("", 0, 50, 0.0, 0, 0, "  0%|          | 0/50 [00:00<?, ?it/s]");
  CHECK_FMT("step", 50, 50, 7.5, 0, 0, "step: 100%|██████████| 50/50 [00:07<00:00,  6.67it/s]");
  /* slower than one a second: seconds per item; hours in the intervals */
  CHECK_FMT("desc", 3, 50, 10.0, 0, 0, "desc:   6%|▌         | 3/50 [00:10<02:36,  3.33s/it]");
  CHECK_FMT("", 1, 10, 4000.0, 0, 0, " 10%|█         | 1/10 [1:06:40<10:00:00, 4000.00s/it]");
  /* unknown or overshot total: count and rate only */
  CHECK_FMT("desc", 21, -1, 5.0, 0, 0, "desc: 21it [00:05,  4.20it/s]");
  CHECK_FMT("", 60, 50, 5.0, 0, 0, "60it [00:05, 12.00it/s]");
  /* bytes, scaled by 1024 */
  CHECK_FMT("x.png", 12897485, 47815066, 2.0, 1, 0,
            "x.png:  27%|██▋       | 12.3M/45.6M [00:02<00:05, 6.45MB/s]");
  CHECK_FMT("x.png", 12897485, -1, 2.0, 1, 0, "x.png: 12.3MB [00:02, 6.45MB/s]");
  CHECK_FMT("f", 0, 1000000, 0.0, 1, 0, "f:   0%|          | 0.00/977k [00:00<?, ?B/s]");
  CHECK_FMT("model.safetensors", 1717986918, 3435973836, 30.0, 1, 0,
            "model.safetensors:  50%|█████     | 1.60G/3.20G [00:30<00:30, 57.3MB/s]");
  CHECK_FMT("f", 1, 100, 2.0, 1, 0, "f:   1%|          | 1.00/100 [00:02<03:18, 2.00s/B]");
  /* a width: the bar fills what is left, and the line never exceeds it */
  CHECK_FMT("desc", 21, 50, 5.0, 0, 60,
            "desc:  42%|███████▏         | 21/50 [00:05<00:06,  4.20it/s]");
  CHECK_FMT("desc", 21, 50, 5.0, 0, 45, "desc:  42%|▊ | 21/50 [00:05<00:06,  4.20it/s]");
  CHECK_FMT("a_very_long_description_here", 21, 50, 5.0, 0, 30, "a_very_long_description_here: ");
  CHECK_FMT("d", 5, 10, 1.0, 0, 1, "d");

  /* a small buffer is cut, never overrun */
  char small[8];
  memset(small, 'x', sizeof small);
  progress_bar_format(small, 6, "desc", 21, 50, 5.0, 0, 0);
  CHECK_STR(small, "desc:");
  CHECK(small[6] == 'x');
  return check_exit();
}

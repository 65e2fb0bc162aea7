/* engine/progress.c — forwards progress reports to the installed sink. */
#include "engine/progress.h"

#include <stddef.h>

static sdr_progress_sink sink;
static int have_sink;

void sdr_progress_set_sink(const sdr_progress_sink *s) {
  have_sink = s != NULL;
  if (s)
    sink = *s;
}

void sdr_progress_begin(const char *desc, int64_t total, int bytes) {
  if (have_sink && sink.begin)
    sink.begin(sink.ud, desc, total, bytes);
}

void sdr_progress_update(int64_t done) {
  if (have_sink && sink.update)
    sink.update(sink.ud, done);
}

void sdr_progress_end(int ok) {
  if (have_sink && sink.end)
    sink.end(sink.ud, ok);
}

int sdr_progress_wants_preview(void) {
  return have_sink && sink.wants_preview && sink.preview && sink.wants_preview(sink.ud);
}

void sdr_progress_preview(const struct sdr_image *img, const char *title) {
  if (have_sink && sink.preview)
    sink.preview(sink.ud, img, title);
}

/* engine/progress.h — progress of long work, drawn by whoever listens.
 *
 * The engine reports (downloads now, denoising steps later); the REPL installs
 * a sink that draws one tqdm-style bar and keeps the preview window alive.
 * Without a sink nothing is drawn. The sink is process-wide because there is
 * one terminal; reports come from the thread that runs the work.
 */
#ifndef SDR_ENGINE_PROGRESS_H
#define SDR_ENGINE_PROGRESS_H

#include <stdint.h>

struct sdr_image;

typedef struct sdr_progress_sink {
  /* total < 0 when unknown; bytes != 0 when counting bytes (drawn as MB, MB/s). */
  void (*begin)(void *ud, const char *desc, int64_t total, int bytes);
  void (*update)(void *ud, int64_t done);
  void (*end)(void *ud, int ok);
  /* Live pictures of long work (a denoising step's latents, roughly in RGB).
   * wants_preview says whether anyone would see one, so work is spent on it
   * only then. Either may be NULL. */
  int (*wants_preview)(void *ud);
  void (*preview)(void *ud, const struct sdr_image *img, const char *title);
  void *ud;
} sdr_progress_sink;

/* NULL removes the sink. The struct is copied. */
void sdr_progress_set_sink(const sdr_progress_sink *sink);

void sdr_progress_begin(const char *desc, int64_t total, int bytes);
void sdr_progress_update(int64_t done);
void sdr_progress_end(int ok);
int sdr_progress_wants_preview(void);
void sdr_progress_preview(const struct sdr_image *img, const char *title);

#endif

/* repl/progress_bar.h — the one progress bar of the program (tqdm-style).
 *
 * On a terminal: "desc  42%|████▏     | 21/50 [00:05<00:07, 4.01it/s]",
 * redrawn in place on stderr; otherwise a line at each tenth. Each update also
 * pumps the preview window so it stays responsive during long work.
 */
#ifndef SDR_REPL_PROGRESS_BAR_H
#define SDR_REPL_PROGRESS_BAR_H

#include <stddef.h>
#include <stdint.h>

/* Installs the bar as the engine's progress sink (engine/progress.h). */
void progress_bar_install(void);

/* Formats one bar line (no newline) into buf; total < 0 when unknown. */
void progress_bar_format(char *buf, size_t n, const char *desc, int64_t done, int64_t total,
                         double elapsed_s, int bytes, int width);

#endif

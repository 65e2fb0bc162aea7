/* engine/interrupt.h — a Ctrl-C that long engine work notices.
 *
 * The REPL's SIGINT handler calls sdr_interrupt_request(), which only sets a
 * flag (async-signal-safe). Loops that run for long (denoising steps,
 * downloads, big kernels) poll sdr_interrupt_pending() and stop with the
 * error "interrupted"; the REPL clears the flag before running the next chunk.
 */
#ifndef SDR_ENGINE_INTERRUPT_H
#define SDR_ENGINE_INTERRUPT_H

void sdr_interrupt_request(void);
int sdr_interrupt_pending(void);
void sdr_interrupt_clear(void);
/* If an interrupt is pending: consumes it, sets the error "interrupted" and
 * returns -1; else 0. Code that stops on an interrupt must consume it this
 * way, so the REPL's Lua hook does not raise it a second time over the
 * binding's own message ("download: interrupted"). */
int sdr_interrupt_check(void);

#endif

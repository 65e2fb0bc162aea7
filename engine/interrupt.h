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
/* If an interrupt is pending: sets the error "interrupted" and returns -1; else 0. */
int sdr_interrupt_check(void);

#endif

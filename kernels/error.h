/* kernels/error.h — errors as values, for every layer.
 *
 * Engine calls return 0 on success and -1 on failure (or NULL), and leave a
 * message for the caller to ask for with sdr_last_error(), as stb does with
 * stbi_failure_reason. Only the bindings turn the message into a Lua error.
 * The message is per thread, so a worker thread never clobbers the REPL's.
 */
#ifndef SDR_KERNELS_ERROR_H
#define SDR_KERNELS_ERROR_H

/* Sets the message (printf-style) and returns -1, so `return sdr_fail(...)` reads well. */
int sdr_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Puts context in front of the current message: "loading x.png: " + old message. */
int sdr_fail_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *sdr_last_error(void);
void sdr_clear_error(void);

#endif

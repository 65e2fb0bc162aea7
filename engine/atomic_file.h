/* engine/atomic_file.h — writing a file so that nobody ever sees half of it.
 *
 * The data goes to a fresh temporary file beside the target (same folder, so
 * the final rename is atomic; created with O_EXCL and 0666 so the umask
 * decides as for any new file), is synced, and is renamed over the target. A
 * crash, an error or Ctrl-C leaves the old file or the whole new one.
 *
 *   sdr_atomic_file f;
 *   if (sdr_atomic_begin(&f, path) != 0) return -1;
 *   if (sdr_atomic_write(&f, header, n) != 0 || sdr_atomic_write(&f, data, m) != 0)
 *     { sdr_atomic_abort(&f); return -1; }
 *   return sdr_atomic_commit(&f);
 */
#ifndef SDR_ENGINE_ATOMIC_FILE_H
#define SDR_ENGINE_ATOMIC_FILE_H

#include <stddef.h>

typedef struct sdr_atomic_file {
  int fd;
  char *tmp;        /* the temporary file's name */
  const char *path; /* the target; the caller's string */
} sdr_atomic_file;

/* Errors: -1 and sdr_last_error() naming the path and the reason. */
int sdr_atomic_begin(sdr_atomic_file *f, const char *path);
int sdr_atomic_write(sdr_atomic_file *f, const void *data, size_t len);
/* Syncs, closes and renames; on failure removes the temporary file. */
int sdr_atomic_commit(sdr_atomic_file *f);
/* Removes the temporary file (after a failed write). */
void sdr_atomic_abort(sdr_atomic_file *f);

/* The whole of a buffer, in one call. */
int sdr_write_file_atomic(const char *path, const void *data, size_t len);

/* mkdir -p: dir and the folders above it (0755 before the umask); an error names the
 * first that cannot be made or is a file. */
int sdr_make_dirs(const char *dir);

#endif

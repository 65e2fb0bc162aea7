/* engine/download.h — fetch a URL into a local cache, the way fastdownload does.
 *
 * The cached copy lives at <cache_dir>/<name derived from the URL>; a partial
 * download sits beside it as "<file>.incomplete" and is resumed with a Range
 * request; only a complete transfer is renamed into place, so a partial file
 * never passes for a whole one. http(s) with redirects, and file:// URLs.
 * Progress goes to engine/progress.h; Ctrl-C (engine/interrupt.h) stops it.
 */
#ifndef SDR_ENGINE_DOWNLOAD_H
#define SDR_ENGINE_DOWNLOAD_H

/* The default cache: $XDG_CACHE_HOME/sdrepl/downloads (~/.cache/...). malloc'd. */
char *sdr_download_default_dir(void);

/* Returns the malloc'd local path of a whole copy of url, fetching it unless a
 * cached copy exists (or force). cache_dir NULL means the default. */
char *sdr_download_url(const char *url, const char *cache_dir, int force);

/* Where sdr_download keeps url: <cache_dir>/<16 hex of a hash of the URL>/<the
 * URL's base name, sanitized; "index" when empty>. malloc'd; fetches nothing. */
char *sdr_download_cache_path(const char *url, const char *cache_dir);

/* Fetches an http(s) url into exactly `path` (its folder must exist),
 * continuing "<path>.incomplete" with a Range request unless `fresh`.
 * headers: NULL or NULL-terminated extra request headers ("Authorization:
 * Bearer ..."); desc: the progress bar's label. Returns 0 or -1 (sdr_fail). */
int sdr_download_file(const char *url, const char *path, const char *const *headers,
                      const char *desc, int fresh);

#endif

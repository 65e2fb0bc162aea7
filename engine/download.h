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
char *sdr_download(const char *url, const char *cache_dir, int force);

#endif

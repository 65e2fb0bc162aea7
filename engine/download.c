/* PLACEHOLDER: replaced by the download work. */
#include "engine/download.h"
#include <stddef.h>
#include "engine/error.h"
char *sdr_download_default_dir(void) { return NULL; }
char *sdr_download(const char *url, const char *cache_dir, int force) { sdr_fail("pending"); return NULL; }

/* bindings/download.h — FastDownload():download(url) and download(url). */
#ifndef SDR_BINDINGS_DOWNLOAD_H
#define SDR_BINDINGS_DOWNLOAD_H

#include <lua.h>

void lsdr_open_download(lua_State *L);

#endif

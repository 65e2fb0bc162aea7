/* PLACEHOLDER: replaced by the download work. */
#include "bindings/download.h"
void lsdr_open_download(lua_State *L) {}

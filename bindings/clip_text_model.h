/* bindings/clip_text_model.h — the global CLIPTextModel (transformers' text encoder). */
#ifndef SDR_BINDINGS_CLIP_TEXT_MODEL_H
#define SDR_BINDINGS_CLIP_TEXT_MODEL_H

#include <lua.h>

void lsdr_open_clip_text_model(lua_State *L);

#endif

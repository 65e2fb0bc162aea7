/* bindings/clip_text_model.h — the global CLIPTextModel (transformers' text encoder). */
#ifndef SDR_BINDINGS_CLIP_TEXT_MODEL_H
#define SDR_BINDINGS_CLIP_TEXT_MODEL_H

#include <lua.h>

#include "engine/clip_text_model.h" // sdr_clip_text_model

void lsdr_open_clip_text_model(lua_State *L);
/* The model of the CLIPTextModel at idx, or NULL when it is none. */
sdr_clip_text_model *lsdr_to_clip_text_model(lua_State *L, int idx);
/* Pushes a CLIPTextModel for a model the value at `owner` (a pipeline) holds. */
void lsdr_push_clip_text_model_ref(lua_State *L, sdr_clip_text_model *model, int owner);
/* The box of the CLIPTextModel that the part at idx (a userdata of type tname: text_model and
 * its pieces, an Embedding, its weight) holds as its first uservalue: a Lua error when the
 * model or its pipeline was closed; its scratch follows the model's device. */
struct lsdr_model_box *lsdr_clip_text_part_box(lua_State *L, int idx, const char *tname);

#endif

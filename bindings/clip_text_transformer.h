/* bindings/clip_text_transformer.h — text_encoder.text_model, transformers'
 * CLIPTextTransformer in its parts (embeddings, encoder, final_layer_norm). */
#ifndef SDR_BINDINGS_CLIP_TEXT_TRANSFORMER_H
#define SDR_BINDINGS_CLIP_TEXT_TRANSFORMER_H

#include <lua.h>

/* Pushes text_model of the CLIPTextModel at model_idx (which it keeps alive). */
void lsdr_push_text_model(lua_State *L, int model_idx);

#endif

/* bindings/token_embedding.h — a CLIPTextModel's token and position embeddings as
 * torch.nn.Embedding (get_input_embeddings, resize_token_embeddings,
 * text_model.embeddings), the weight a Parameter whose rows can be read, and set for the
 * token table: what a textual inversion done by hand writes. */
#ifndef SDR_BINDINGS_TOKEN_EMBEDDING_H
#define SDR_BINDINGS_TOKEN_EMBEDDING_H

#include <lua.h>

/* Pushes the token Embedding (position 0) or the position Embedding (1) of the CLIPTextModel
 * at model_idx (which it keeps alive). */
void lsdr_push_clip_embedding(lua_State *L, int model_idx, int position);

#endif

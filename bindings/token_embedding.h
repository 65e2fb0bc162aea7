/* bindings/token_embedding.h — a CLIPTextModel's token embedding as torch.nn.Embedding
 * (get_input_embeddings, resize_token_embeddings), its weight a Parameter whose rows can be
 * read and set: what a textual inversion done by hand writes. */
#ifndef SDR_BINDINGS_TOKEN_EMBEDDING_H
#define SDR_BINDINGS_TOKEN_EMBEDDING_H

#include <lua.h>

/* Pushes the Embedding of the CLIPTextModel at model_idx (which it keeps alive). */
void lsdr_push_token_embedding(lua_State *L, int model_idx);

#endif

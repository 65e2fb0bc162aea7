/* bindings/vae.h — the global AutoencoderKL and its DiagonalGaussianDistribution. */
#ifndef SDR_BINDINGS_VAE_H
#define SDR_BINDINGS_VAE_H

#include <lua.h>

#include "engine/vae.h" // sdr_vae

void lsdr_open_vae(lua_State *L);
/* Pushes an AutoencoderKL for a model the value at `owner` (a pipeline) holds. */
void lsdr_push_vae_ref(lua_State *L, sdr_vae *model, int owner);

#endif

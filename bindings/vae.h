/* bindings/vae.h — the global AutoencoderKL and its DiagonalGaussianDistribution. */
#ifndef SDR_BINDINGS_VAE_H
#define SDR_BINDINGS_VAE_H

#include <lua.h>

void lsdr_open_vae(lua_State *L);

#endif

/* bindings/generator.h — torch.Generator, torch.manual_seed and the default generators. */
#ifndef SDR_BINDINGS_GENERATOR_H
#define SDR_BINDINGS_GENERATOR_H

#include <lua.h>

#include "engine/generator.h" // sdr_generator

#define LSDR_GENERATOR "torch.Generator"
#define LSDR_GENERATOR_TYPE LSDR_GENERATOR /* as an lsdr type name */

sdr_generator *lsdr_to_generator(lua_State *L, int idx);
/* The generator torch.manual_seed seeds for that device (one per Lua state). */
sdr_generator *lsdr_default_generator(lua_State *L, sdr_generator_device d);
/* A CUDA generator's numbers depend on the GPU's size (torch's launch grid):
 * before a draw, lay them out for this machine's GPU 0, where there is one. */
void lsdr_generator_fit_device(sdr_generator *g);
/* Adds Generator, manual_seed, initial_seed to the torch table at torch_idx. */
void lsdr_open_generator(lua_State *L, int torch_idx);

#endif

/* bindings/vae.h — the global AutoencoderKL and its DiagonalGaussianDistribution, and what
 * the AutoencoderTiny class (bindings/autoencoder_tiny.c, the same engine struct) shares. */
#ifndef SDR_BINDINGS_VAE_H
#define SDR_BINDINGS_VAE_H

#include <lua.h>

#include "bindings/lsdr.h"         // lsdr_param
#include "bindings/model_common.h" // lsdr_model_box
#include "engine/vae.h"            // sdr_vae

#define LSDR_VAE "AutoencoderKL"
#define LSDR_VAE_TINY "AutoencoderTiny"

void lsdr_open_vae(lua_State *L);
void lsdr_open_autoencoder_tiny(lua_State *L);
/* Pushes an AutoencoderKL (or AutoencoderTiny) for a model the value at `owner` (a pipeline)
 * holds. */
void lsdr_push_vae_ref(lua_State *L, sdr_vae *model, int owner);
/* The open AutoencoderKL or AutoencoderTiny at idx, its scratch on the model's device. */
sdr_vae *lsdr_check_vae(lua_State *L, int idx, lsdr_model_box **box);
/* The box at idx, which showed a pipeline's VAE, takes old (that VAE, replaced in the
 * pipeline) as its own model: it keeps working after pipe.vae = another. */
void lsdr_vae_box_adopt(lua_State *L, int idx, const sdr_vae *old);
/* sdr_vae_load, refused (a message naming the other class) where the folder's class is not
 * the one asked for: tiny 1 for AutoencoderTiny. */
int lsdr_vae_load_class(sdr_vae *v, sdr_backend *be, const char *dir, const char *variant, int keep,
                        int tiny);
void lsdr_vae_free_own(void *m);

/* What both classes' methods share: vae:encode(x)'s raw result pushed (moments or latents),
 * decode, tiling and slicing, and the device and dtype properties (1 when k was one). */
void lsdr_vae_encode_raw(lua_State *L, lsdr_model_box **box, sdr_vae **vae);
int lsdr_vae_decode(lua_State *L);
/* model:save_pretrained(save_directory, opts), AutoencoderKL's and AutoencoderTiny's */
int lsdr_vae_save_pretrained(lua_State *L);
int lsdr_vae_enable_tiling(lua_State *L);
int lsdr_vae_disable_tiling(lua_State *L);
int lsdr_vae_enable_slicing(lua_State *L);
int lsdr_vae_disable_slicing(lua_State *L);
int lsdr_vae_device_dtype(lua_State *L, const sdr_vae *vae, const char *k);
extern const lsdr_param lsdr_vae_decode_options[];

#endif

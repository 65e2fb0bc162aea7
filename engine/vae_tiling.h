/* engine/vae_tiling.h — AutoencoderKL.enable_tiling(): encode and decode in
 * overlapping tiles, as diffusers 0.27.2 does (tiled_encode, tiled_decode,
 * blend_v and blend_h in models/autoencoders/autoencoder_kl.py).
 *
 * Each tile goes through the whole encoder or decoder on its own, so memory
 * stays that of one tile whatever the picture's size; the tiles overlap by a
 * quarter and are blended linearly where they meet. The result is diffusers'
 * tiled output (not the untiled one: each tile normalises and attends on its
 * own), and it is the same only when tiling engages, that is when the input
 * is larger than a tile in height or width; otherwise these calls are exactly
 * sdr_vae_encode and sdr_vae_decode.
 *
 * Tile sizes come from the config, as diffusers takes them:
 *   tile_sample_min_size = sample_size                       (pixels)
 *   tile_latent_min_size = int(sample_size / 2^(blocks - 1)) (latents)
 *   tile_overlap_factor  = 0.25
 * For SD 1.x (sample_size 512): 64-latent tiles every 48 latents, decoded to
 * 512 pixels of which 384 are kept, blended over 128 pixels.
 *
 * An AutoencoderTiny tiles as its own _tiled_encode and _tiled_decode do (512-pixel tiles
 * blended with masks over an eighth, always once tiling is on): vae_tiling.c's tiny_tiled.
 *
 * Tiles are cut, blended and joined on the host (backend.h has no op that
 * takes a window of H and W); only the tile's encoder or decoder runs on the
 * backend, with its temporaries from the arena.
 */
#ifndef SDR_ENGINE_VAE_TILING_H
#define SDR_ENGINE_VAE_TILING_H

#include "engine/arena.h" // sdr_arena
#include "engine/vae.h"   // sdr_vae, sdr_vae_encode, sdr_vae_decode

/* AutoencoderKL's tile_sample_min_size and tile_latent_min_size. */
int sdr_vae_tile_sample_size(const sdr_vae *v);
int sdr_vae_tile_latent_size(const sdr_vae *v);

/* vae.encode(x) with use_tiling: x (B, Cin, H, W) -> moments (B, 2L, H/f, W/f).
 * Tiled (tiled_encode) when H or W > tile_sample_min_size, else sdr_vae_encode. */
int sdr_vae_encode_tiled(sdr_vae *v, sdr_arena *a, sdr_tensor *moments, const sdr_tensor *x);
/* vae.decode(z) with use_tiling: z (B, L, h, w) -> image (B, Cout, h*f, w*f).
 * Tiled (tiled_decode) when h or w > tile_latent_min_size, else sdr_vae_decode. */
int sdr_vae_decode_tiled(sdr_vae *v, sdr_arena *a, sdr_tensor *image, const sdr_tensor *z);

#endif

/* bindings/unet.h — the global UNet2DConditionModel. */
#ifndef SDR_BINDINGS_UNET_H
#define SDR_BINDINGS_UNET_H

#include <lua.h>

#include "engine/unet.h" // sdr_unet

void lsdr_open_unet(lua_State *L);
/* Pushes a UNet2DConditionModel for a model that the value at `owner` (a
 * pipeline) holds; the owner stays alive as long as the new object. */
void lsdr_push_unet_ref(lua_State *L, sdr_unet *model, int owner);
/* enable_freeu's s1, s2, b1, b2 from the four values at first.. or the table at first, into
 * unet (a Lua error naming the one missing). Returns 0. */
int lsdr_freeu_enable(lua_State *L, sdr_unet *unet, int first);
/* Sets the config keys of the UNet's down half (in_channels, block_out_channels,
 * layers_per_block, attention_head_dim, norm_num_groups, norm_eps, use_linear_projection) on
 * the table at t: UNet2DConditionModel.config and ControlNetModel.config share them. */
void lsdr_set_unet_down_config(lua_State *L, int t, const sdr_unet_config *c);
/* A model call's timestep at idx (a number, or a tensor of one value or B) as a float32
 * tensor (B) on be, pushed. */
struct lsdr_tensor;
struct lsdr_tensor *lsdr_push_timesteps(lua_State *L, int idx, sdr_backend *be, int64_t B);
/* added_cond_kwargs' text_embeds and time_ids (an SDXL model's "text_time" embedding) from the
 * table at acond (0: none) as float32 tensors on be, pushed while in use; NULL where absent. */
void lsdr_read_text_time(lua_State *L, int acond, sdr_backend *be, const sdr_tensor **text_embeds,
                         const sdr_tensor **time_ids);

#endif

/* bindings/bindings.c — opens every module into a fresh Lua state. */
#include "bindings/bindings.h"

#include <lauxlib.h>
#include <lualib.h>

#include "bindings/clip_text_model.h" // lsdr_open_clip_text_model
#include "bindings/clip_tokenizer.h"  // lsdr_open_clip_tokenizer
#include "bindings/download.h"        // lsdr_open_download
#include "bindings/hub.h"             // lsdr_open_hub
#include "bindings/pipeline.h"        // lsdr_open_pipeline, lsdr_open_auto_pipeline
#include "bindings/safetensors_lua.h" // lsdr_open_safetensors
#include "bindings/controlnet.h"      // lsdr_open_controlnet
#include "bindings/t2i_adapter.h"     // lsdr_open_t2i_adapter
#include "bindings/safety_checker.h"  // lsdr_open_safety_checker
#include "bindings/scheduler.h"       // lsdr_open_scheduler
#include "bindings/unet.h"            // lsdr_open_unet
#include "bindings/vae.h"             // lsdr_open_vae, lsdr_open_autoencoder_tiny
#include "bindings/image.h"           // lsdr_open_image, lsdr_open_image_grid, lsdr_open_load_image
#include "bindings/image_processor.h" // lsdr_open_image_processor
#include "bindings/lsdr.h"            // lsdr_open_help
#include "bindings/tensor.h"          // lsdr_open_torch

void lsdr_open_all(lua_State *L) {
  luaL_openlibs(L);
  lsdr_open_help(L);
  lsdr_open_image(L);
  lsdr_open_image_grid(L);
  lsdr_open_load_image(L);
  lsdr_open_image_ops(L);
  lsdr_open_image_filter(L);
  lsdr_open_image_reduce(L);
  lsdr_open_image_fit(L);
  lsdr_open_image_bands(L);
  lsdr_open_image_draw(L);
  lsdr_open_image_compose(L);
  lsdr_open_download(L);
  lsdr_open_hub(L);
  lsdr_open_torch(L);
  lsdr_open_safetensors(L);
  lsdr_open_clip_tokenizer(L);
  lsdr_open_clip_text_model(L);
  lsdr_open_unet(L);
  lsdr_open_controlnet(L);
  lsdr_open_t2i_adapter(L);
  lsdr_open_vae(L);
  lsdr_open_autoencoder_tiny(L);
  lsdr_open_image_processor(L);
  lsdr_open_safety_checker(L);
  lsdr_open_scheduler(L);
  lsdr_open_pipeline(L);
  lsdr_open_auto_pipeline(L);
}

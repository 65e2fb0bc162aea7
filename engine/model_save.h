/* engine/model_save.h — one model written as diffusers' ModelMixin.save_pretrained (and
 * transformers' PreTrainedModel.save_pretrained) writes it: config.json and one .safetensors
 * file of its weights, with {"format": "pt"} as their metadata.
 *
 * The config is the text the model was loaded from (sdr_weights_keep_config): loading it
 * again gives the same model. The weights are every tensor the model bound, under
 * diffusers' names (a single-file checkpoint's converted ones too), as the model uses them
 * now (a fused LoRA included), in the dtype it keeps them (torch_dtype); tensors on a device
 * are read back first. Each file appears whole or not at all.
 */
#ifndef SDR_ENGINE_MODEL_SAVE_H
#define SDR_ENGINE_MODEL_SAVE_H

#include "engine/weights.h" // sdr_weights

/* Into the folder dir (made where missing): config.json and <stem>[.<variant>].safetensors;
 * stem "diffusion_pytorch_model" (diffusers' models) or "model" (transformers'). */
int sdr_model_save(sdr_weights *w, const char *dir, const char *stem, const char *variant);

#endif

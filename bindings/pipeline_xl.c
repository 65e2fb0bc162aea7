/* bindings/pipeline_xl.c — StableDiffusionXLPipeline's call options (diffusers'
 * pipeline_stable_diffusion_xl.py __call__): the second prompt, the pooled embeddings, the
 * micro-conditioning sizes and denoising_end. */
#include <lauxlib.h>

#include "bindings/lsdr.h"
#include "bindings/pipeline_internal.h"

/* A size or a crop corner: a list of two non-negative integers, (height, width) or (top,
 * left), into out; {0, 0} stays when the option is nil. */
static void read_pair(lua_State *L, int opts, const char *name, int out[2]) {
  lua_getfield(L, opts, name);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  if (!lua_istable(L, -1) || lua_rawlen(L, -1) != 2)
    lsdr_error(L, "option '%s': a list of two integers expected ({height, width} or {top, left})",
               name);
  for (int i = 0; i < 2; i++) {
    lua_rawgeti(L, -1, i + 1);
    int ok = 0;
    const lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < 0 || v > (1 << 20))
      lsdr_error(L, "option '%s': entry %d must be a non-negative integer", name, i + 1);
    out[i] = (int)v;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

void lsdr_read_xl_options(lua_State *L, int opts, sdr_generate *g) {
  const char **strings;
  lua_getfield(L, opts, "prompt_2");
  if (!lua_isnil(L, -1)) {
    g->nprompts_2 = lsdr_read_strings(L, lua_gettop(L), "prompt_2", &strings);
    g->prompts_2 = strings;
  }
  lua_getfield(L, opts, "negative_prompt_2");
  if (!lua_isnil(L, -1)) { /* one string for every prompt, as encode_prompt repeats it */
    g->nnegative_2 =
        lsdr_read_strings_for(L, lua_gettop(L), "negative_prompt_2", g->nprompts, &strings);
    g->negative_prompts_2 = strings;
  }
  lua_getfield(L, opts, "pooled_prompt_embeds");
  if (!lua_isnil(L, -1))
    g->pooled_prompt_embeds = lsdr_host_floats(L, opts, "pooled_prompt_embeds", 2, g->pooled_shape);
  lua_getfield(L, opts, "negative_pooled_prompt_embeds");
  if (!lua_isnil(L, -1))
    g->negative_pooled_prompt_embeds =
        lsdr_host_floats(L, opts, "negative_pooled_prompt_embeds", 2, g->negative_pooled_shape);
  read_pair(L, opts, "original_size", g->original_size);
  read_pair(L, opts, "crops_coords_top_left", g->crops_coords_top_left);
  read_pair(L, opts, "target_size", g->target_size);
  read_pair(L, opts, "negative_original_size", g->negative_original_size);
  read_pair(L, opts, "negative_crops_coords_top_left", g->negative_crops_coords_top_left);
  read_pair(L, opts, "negative_target_size", g->negative_target_size);
  lua_getfield(L, opts, "denoising_end");
  if (!lua_isnil(L, -1)) {
    if (!lua_isnumber(L, -1))
      lsdr_error(L, "option 'denoising_end': a number between 0 and 1 expected, got %s",
                 luaL_typename(L, -1));
    /* diffusers acts on a float strictly between 0 and 1 and ignores anything else */
    g->denoising_end = lua_isinteger(L, -1) ? 0 : lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  /* StableDiffusionXLImg2ImgPipeline's: any denoising_start given keeps the image unnoised;
   * one strictly between 0 and 1 also picks the steps */
  lua_getfield(L, opts, "denoising_start");
  if (!lua_isnil(L, -1)) {
    if (!lua_isnumber(L, -1))
      lsdr_error(L, "option 'denoising_start': a number between 0 and 1 expected, got %s",
                 luaL_typename(L, -1));
    g->has_denoising_start = 1;
    g->denoising_start = lua_isinteger(L, -1) ? 0 : lua_tonumber(L, -1);
  }
  lua_getfield(L, opts, "aesthetic_score");
  g->aesthetic_score = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : 6.0;
  lua_getfield(L, opts, "negative_aesthetic_score");
  g->negative_aesthetic_score = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : 2.5;
  lua_pop(L, 3);
  if (g->aesthetic_score < 0 || g->negative_aesthetic_score < 0)
    lsdr_error(L, "aesthetic_score and negative_aesthetic_score must not be negative");
}

/* what both SDXL pipelines take (diffusers' signatures, in their order) */
#define XL_PROMPT_OPTIONS                                                                          \
  {"prompt", "string|table", "nil", "a prompt or a list of prompts"}, {                            \
    "prompt_2", "string|table", "nil", "for the second text encoder (nil: prompt)"                 \
  }
#define XL_CALL_OPTIONS                                                                            \
  {"negative_prompt", "string|table", "nil",                                                       \
   "what to steer away from (nil: zeros, where force_zeros_for_empty_prompt)"},                    \
      {"negative_prompt_2", "string|table", "nil",                                                 \
       "for the second encoder (nil: negative_prompt)"},                                           \
      {"num_images_per_prompt", "integer", "1"}, {"eta", "number", "0.0", "DDIM's eta"},           \
      {"generator", "torch.Generator|table", "nil", "one, or one per image; nil: the global one"}, \
      {"prompt_embeds", "Tensor", "nil", "(batch, tokens, dim): instead of prompt"},               \
      {"negative_prompt_embeds", "Tensor", "nil", "the same shape: instead of negative_prompt"},   \
      {"pooled_prompt_embeds", "Tensor", "nil", "(batch, dim): with prompt_embeds"},               \
      {"negative_pooled_prompt_embeds", "Tensor", "nil", "with negative_prompt_embeds"},           \
      {"ip_adapter_image", "Image|table|Tensor", "nil",                                            \
       "the IP-Adapters' pictures: one entry per adapter (an Image or a list of them)"},           \
      {"ip_adapter_image_embeds", "table", "nil",                                                  \
       "instead: one tensor per adapter, as prepare_ip_adapter_image_embeds makes them"},          \
      {"output_type", "string", "\"pil\"", "\"pil\", \"np\", \"pt\" or \"latent\""},               \
      {"return_dict", "boolean", "true", "false: {images} as diffusers' tuple"},                   \
      {"cross_attention_kwargs", "table", "nil",                                                   \
       "{scale = s}: how much of the LoRA adapters to use"},                                       \
      {"guidance_rescale", "number", "0.0", "rescale_noise_cfg's fraction"},                       \
      {"original_size", "table", "nil", "{height, width} (nil: the run's size)"},                  \
      {"crops_coords_top_left", "table", "{0, 0}", "{top, left}"},                                 \
      {"target_size", "table", "nil", "{height, width} (nil: the run's size)"},                    \
      {"negative_original_size", "table", "nil", "the negative's original_size"},                  \
      {"negative_crops_coords_top_left", "table", "{0, 0}"},                                       \
      {"negative_target_size", "table", "nil"},                                                    \
      {"clip_skip", "integer", "nil", "layers of the text encoders to skip from the end"},         \
      {"callback_on_step_end", "function", "nil", "f(pipe, i, t, {latents}) -> nil or {latents}"}, \
      {"callback_on_step_end_tensor_inputs", "table", "nil", "only latents are passed"},           \
      {"callback", "function", "nil", "the older hook: f(i, t, latents)"}, {                       \
    "callback_steps", "integer", "1", "how often callback is called"                               \
  }

const lsdr_param lsdr_xl_call_options[] = {
    XL_PROMPT_OPTIONS,
    {"height", "integer", "nil", "default: unet.config.sample_size * vae_scale_factor (1024)"},
    {"width", "integer", "nil"},
    {"num_inference_steps", "integer", "50"},
    {"timesteps", "table", "nil", "custom timesteps, descending (DDPMScheduler, as in diffusers)"},
    {"denoising_end", "number", "nil",
     "a fraction in (0, 1): stop there, the rest left to a refiner"},
    {"latents", "Tensor", "nil", "starting noise (batch, 4, height/8, width/8)"},
    {"guidance_scale", "number", "5.0"},
    XL_CALL_OPTIONS,
    {0}};

const lsdr_param lsdr_xl_adapter_call_options[] = {
    XL_PROMPT_OPTIONS,
    {"image", "Image|table|Tensor", "nil",
     "the adapter's picture(s): one, one per prompt, or (MultiAdapter) one entry per adapter"},
    {"height", "integer", "nil",
     "default: the picture's, floored to the adapter's downscale_factor"},
    {"width", "integer", "nil"},
    {"num_inference_steps", "integer", "50"},
    {"timesteps", "table", "nil", "custom timesteps, descending (DDPMScheduler, as in diffusers)"},
    {"denoising_end", "number", "nil", "a fraction in (0, 1): stop there"},
    {"latents", "Tensor", "nil", "starting noise (batch, 4, height/8, width/8)"},
    {"guidance_scale", "number", "5.0"},
    XL_CALL_OPTIONS,
    {"adapter_conditioning_scale", "number|table", "1.0",
     "how much of the features (one per adapter, or one for all)"},
    {"adapter_conditioning_factor", "number", "1.0",
     "the fraction of the steps (from the first) that take the features"},
    {0}};

const lsdr_param lsdr_xl_controlnet_call_options[] = {
    XL_PROMPT_OPTIONS,
    {"image", "Image|table|Tensor", "nil",
     "the control picture(s): one, one per prompt, or (several nets) one entry per net"},
    {"height", "integer", "nil", "default: the control picture's, floored to vae_scale_factor"},
    {"width", "integer", "nil"},
    {"num_inference_steps", "integer", "50"},
    {"denoising_end", "number", "nil", "a fraction in (0, 1): stop there"},
    {"latents", "Tensor", "nil", "starting noise (batch, 4, height/8, width/8)"},
    {"guidance_scale", "number", "5.0"},
    XL_CALL_OPTIONS,
    {"controlnet_conditioning_scale", "number|table", "1.0",
     "how much of the residuals (one per net, or one for all)"},
    LSDR_CONTROL_CALL_OPTIONS,
    {0}};

const lsdr_param lsdr_xl_controlnet_i2i_call_options[] = {
    XL_PROMPT_OPTIONS,
    {"image", "Image|table|Tensor", "nil", "the picture(s) to start from"},
    {"control_image", "Image|table|Tensor", "nil",
     "the nets' picture(s): one, one per prompt, or (several nets) one entry per net"},
    {"height", "integer", "nil", "default: the pictures' own, floored to vae_scale_factor"},
    {"width", "integer", "nil"},
    {"strength", "number", "0.8", "how much to change it, 0 to 1"},
    {"num_inference_steps", "integer", "50"},
    {"guidance_scale", "number", "5.0"},
    {"aesthetic_score", "number", "6.0", "with requires_aesthetics_score"},
    {"negative_aesthetic_score", "number", "2.5", "with requires_aesthetics_score"},
    XL_CALL_OPTIONS,
    {"controlnet_conditioning_scale", "number|table", "0.8",
     "how much of the residuals (one per net, or one for all)"},
    LSDR_CONTROL_CALL_OPTIONS,
    {0}};

const lsdr_param lsdr_xl_controlnet_inpaint_call_options[] = {
    XL_PROMPT_OPTIONS,
    {"image", "Image|table|Tensor", "nil", "the picture(s) to paint into"},
    {"mask_image", "Image|table|Tensor", "nil", "white (1) where to paint"},
    {"control_image", "Image|table|Tensor", "nil",
     "the nets' picture(s): one, one per prompt, or (several nets) one entry per net"},
    {"height", "integer", "nil", "default: the picture's own, floored to vae_scale_factor"},
    {"width", "integer", "nil"},
    {"strength", "number", "0.9999", "how much to change the painted region, 0 to 1"},
    {"num_inference_steps", "integer", "50"},
    {"denoising_start", "number", "nil",
     "a fraction in (0, 1): start there (a base run's denoising_end), the picture not noised"},
    {"denoising_end", "number", "nil", "a fraction in (0, 1): stop there"},
    {"guidance_scale", "number", "5.0"},
    {"aesthetic_score", "number", "6.0", "with requires_aesthetics_score"},
    {"negative_aesthetic_score", "number", "2.5", "with requires_aesthetics_score"},
    XL_CALL_OPTIONS,
    {"controlnet_conditioning_scale", "number|table", "1.0",
     "how much of the residuals (one per net, or one for all)"},
    LSDR_CONTROL_CALL_OPTIONS,
    LSDR_PADDING_MASK_CROP_OPTION,
    {0}};

const lsdr_param lsdr_xl_inpaint_call_options[] = {
    XL_PROMPT_OPTIONS,
    {"image", "Image|table|Tensor", "nil",
     "the picture(s) to paint into (RGB, or a tensor in [0, 1]), resized to height x width"},
    {"mask_image", "Image|table|Tensor", "nil",
     "white (1) where to paint, binarized at 0.5; one or one per picture"},
    {"height", "integer", "nil", "default: unet.config.sample_size * vae_scale_factor (1024)"},
    {"width", "integer", "nil"},
    {"strength", "number", "0.9999",
     "how much to change the painted region, 0 to 1 (1: from pure noise)"},
    {"num_inference_steps", "integer", "50"},
    {"timesteps", "table", "nil", "custom timesteps, descending (DDPMScheduler, as in diffusers)"},
    {"denoising_start", "number", "nil",
     "a fraction in (0, 1): start there (a base run's denoising_end), the picture not noised"},
    {"denoising_end", "number", "nil", "a fraction in (0, 1): stop there"},
    {"latents", "Tensor", "nil", "starting noise (batch, 4, height/8, width/8)"},
    {"aesthetic_score", "number", "6.0", "with requires_aesthetics_score"},
    {"negative_aesthetic_score", "number", "2.5", "with requires_aesthetics_score"},
    {"guidance_scale", "number", "7.5", "(SDXL's inpainting takes 7.5 by default, not 5.0)"},
    XL_CALL_OPTIONS,
    LSDR_MASKED_IMAGE_LATENTS_OPTION,
    LSDR_PADDING_MASK_CROP_OPTION,
    {0}};

const lsdr_param lsdr_xl_i2i_call_options[] = {
    XL_PROMPT_OPTIONS,
    {"image", "Image|table|Tensor", "nil",
     "the picture(s) to start from, or latents (a base run's output_type = \"latent\")"},
    {"strength", "number", "0.3", "how much to change it, 0 to 1"},
    {"num_inference_steps", "integer", "50"},
    {"timesteps", "table", "nil", "custom timesteps, descending (DDPMScheduler, as in diffusers)"},
    {"denoising_start", "number", "nil",
     "a fraction in (0, 1): start there (a base run's denoising_end), the image not noised"},
    {"denoising_end", "number", "nil", "a fraction in (0, 1): stop there"},
    {"aesthetic_score", "number", "6.0", "with requires_aesthetics_score (the refiner)"},
    {"negative_aesthetic_score", "number", "2.5", "with requires_aesthetics_score"},
    {"guidance_scale", "number", "5.0"},
    XL_CALL_OPTIONS,
    {0}};

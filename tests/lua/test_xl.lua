-- StableDiffusionXLPipeline against diffusers 0.27.2 (tests/reference/xl and tests/models/tiny-sdxl,
-- made by scripts/reference/make_xl_cases.py): encode_prompt's four outputs (the two text
-- encoders' penultimate layers side by side, the second's projected pooled output, zeros for
-- an unset negative), the UNet's "text_time" embedding on its own, and whole runs (defaults,
-- prompt_2 and negatives with generators, micro-conditioning sizes with negative ones,
-- denoising_end, no guidance, clip_skip with guidance_rescale, force_zeros_for_empty_prompt
-- off, DPM-Solver); then the ways to the pipeline and the errors.
local check = require "check"

local src = os.getenv("SDREPL_SOURCE_DIR") or "."
local ref = src .. "/tests/reference/xl/"
local model = src .. "/tests/models/tiny-sdxl"

local function npy(name) return torch.load_npy(ref .. name .. ".npy") end
local function diff(a, b) return (a - b):abs():max():item() end
local function within(d, tol, what)
  check.truthy(d == d and d < tol, string.format("%s: max difference %.3g", what, d))
  print(string.format("%-34s max difference %.2e", what, d))
end

local pipe = DiffusionPipeline.from_pretrained(model)
check.truthy(tostring(pipe):find("StableDiffusionXLPipeline"), "DiffusionPipeline's class")
pipe:set_progress_bar_config{disable = true}

-- encode_prompt(prompt, device, num_images_per_prompt, do_classifier_free_guidance, {...})
local encode_cases = {
  {"enc_plain", "a red car", 1, true, {}},
  {"enc_both", {"a red car", "a tree"}, 2, true,
   {prompt_2 = {"a blue sky", "rain"}, negative_prompt = {"blurry", "dark"}}},
  {"enc_skip", "a castle", 1, true, {negative_prompt = "fog", clip_skip = 2}},
  {"enc_unguided", "a castle", 1, false, {}},
}
for _, c in ipairs(encode_cases) do
  local pe, ne, pp, np_ = pipe:encode_prompt(c[2], "cpu", c[3], c[4], c[5])
  within(diff(pe, npy(c[1] .. "_prompt_embeds")), 1e-5, c[1] .. " prompt_embeds")
  within(diff(pp, npy(c[1] .. "_pooled")), 1e-5, c[1] .. " pooled")
  if c[4] then
    within(diff(ne, npy(c[1] .. "_negative_embeds")), 1e-5, c[1] .. " negative")
    within(diff(np_, npy(c[1] .. "_negative_pooled")), 1e-5, c[1] .. " negative pooled")
  else
    check.truthy(ne == nil and np_ == nil, "no negatives without guidance")
  end
end

-- text_encoder_2 on its own: CLIPTextModelWithProjection's text_embeds, as encode_prompt's
-- pooled output (positionally first, as transformers' CLIPTextModelOutput)
do
  local ids = torch.tensor(pipe.tokenizer_2({"a red car"}, {padding = "max_length",
                                                            max_length = 77}).input_ids)
  local out = pipe.text_encoder_2(ids, {output_hidden_states = true})
  within(diff(out.text_embeds, npy("enc_plain_pooled")), 1e-5, "text_encoder_2 text_embeds")
  check.truthy(rawequal(out[1], out.text_embeds) and out.pooler_output == nil, "its fields")
  check.eq(#out.hidden_states, 4, "hidden_states")
end

-- the UNet on its own, with added_cond_kwargs
do
  local out = pipe.unet(npy("unet_x"), npy("unet_t"), {
    encoder_hidden_states = npy("unet_context"),
    added_cond_kwargs = {text_embeds = npy("unet_text_embeds"), time_ids = npy("unet_time_ids")},
  }).sample
  within(diff(out, npy("unet_out")), 1e-4, "unet with added_cond_kwargs")
  check.raises("text_embeds and time_ids", function()
    pipe.unet(npy("unet_x"), npy("unet_t"), {encoder_hidden_states = npy("unet_context")})
  end)
end

local cases = {
  {"xl_defaults", nil, {}, {prompt = "a photo of an astronaut riding a horse",
                            num_inference_steps = 4, seed = 1}},
  {"xl_negatives", nil, {}, {prompt = "a red car", prompt_2 = "a blue sky",
                             negative_prompt = "blurry", negative_prompt_2 = "dark",
                             num_images_per_prompt = 2, num_inference_steps = 3,
                             guidance_scale = 7.0, seeds = {2, 3}}},
  {"xl_sizes", nil, {}, {prompt = {"a cat", "a dog on a hill"}, height = 48, width = 64,
                         original_size = {128, 96}, crops_coords_top_left = {8, 4},
                         target_size = {64, 80}, negative_original_size = {32, 32},
                         negative_crops_coords_top_left = {0, 2},
                         negative_target_size = {48, 48}, num_inference_steps = 3, seed = 4}},
  {"xl_denoising_end", nil, {}, {prompt = "a lighthouse", denoising_end = 0.6,
                                 num_inference_steps = 5, output_type = "latent", seed = 5}},
  {"xl_unguided", nil, {}, {prompt = {"a cat", "a tree"}, guidance_scale = 1.0,
                            num_inference_steps = 3, seed = 6}},
  {"xl_clip_skip", nil, {}, {prompt = "a castle", negative_prompt = "fog", clip_skip = 1,
                             guidance_rescale = 0.7, num_inference_steps = 3, seed = 7}},
  {"xl_no_zeros", nil, {force_zeros_for_empty_prompt = false},
   {prompt = "a castle", num_inference_steps = 3, seed = 8}},
  {"xl_dpm", "dpm", {}, {prompt = "a river at dawn", num_inference_steps = 4, seed = 9}},
  {"xl_turbo", "turbo", {}, {prompt = "a cat", num_inference_steps = 1, guidance_scale = 0.0,
                             seed = 10}},
}
local euler = pipe.scheduler
for _, c in ipairs(cases) do
  local p = pipe
  if next(c[3]) then p = StableDiffusionXLPipeline.from_pretrained(model, c[3]) end
  p:set_progress_bar_config{disable = true}
  p.scheduler = c[2] == "dpm" and DPMSolverMultistepScheduler.from_config(euler.config)
                or c[2] == "turbo" and EulerAncestralDiscreteScheduler.from_config(
                  euler.config, {timestep_spacing = "trailing"})
                or euler
  local out = p(check.case_args({output_type = "np"}, c[4])).images
  within(diff(out, npy(c[1])), 2e-3, c[1])
end
pipe.scheduler = euler

-- the default size is the UNet's sample_size times the VAE's factor
do
  local out = pipe{prompt = "a cat", num_inference_steps = 1, output_type = "np"}.images
  check.eq(out:size(2), 64, "default height")
end

-- given embeddings give the same picture as the prompts they came from
do
  local pe, ne, pp, np_ = pipe:encode_prompt("a red car", "cpu", 1, true,
                                             {negative_prompt = "blurry"})
  local a = pipe{prompt = "a red car", negative_prompt = "blurry", num_inference_steps = 2,
                 generator = torch.Generator():manual_seed(3), output_type = "np"}.images
  local b = pipe{prompt_embeds = pe, negative_prompt_embeds = ne, pooled_prompt_embeds = pp,
                 negative_pooled_prompt_embeds = np_, num_inference_steps = 2,
                 generator = torch.Generator():manual_seed(3), output_type = "np"}.images
  within(diff(a, b), 1e-6, "given embeddings")
end

-- force_zeros_for_empty_prompt is a pipeline's own config: one made from another's components
-- takes its class's default (true), as diffusers' __init__; AutoPipeline's from_pipe keeps it
do
  local kept = StableDiffusionXLPipeline.from_pretrained(model, {force_zeros_for_empty_prompt = false})
  local _, ne = kept:encode_prompt("a cat", "cpu", 1, true)
  check.truthy(ne:abs():max():item() > 0, "false: the empty negative prompt encoded")
  local made = StableDiffusionXLImg2ImgPipeline(kept.components)
  local _, ne2 = made:encode_prompt("a cat", "cpu", 1, true)
  check.eq(ne2:abs():max():item(), 0, "Cls(components): the class's default, zeros")
  local _, ne3 = kept:encode_prompt("a cat", "cpu", 1, true)
  check.truthy(ne3:abs():max():item() > 0, "the first pipeline keeps its own")
  local auto = AutoPipelineForImage2Image.from_pipe(kept)
  local _, ne4 = auto:encode_prompt("a cat", "cpu", 1, true)
  check.truthy(ne4:abs():max():item() > 0, "from_pipe keeps the config")
end

-- a multi-vector textual inversion in the first tokenizer: spelled out there only
do
  local ti = StableDiffusionXLPipeline.from_pretrained(model)
  ti:set_progress_bar_config{disable = true}
  ti:load_textual_inversion(src .. "/tests/fixtures/textual_inversion/shiny/learned_embeds.safetensors",
                            {token = "<shiny>"})
  local out = ti{prompt = "a <shiny> car", negative_prompt = "a <shiny> blur",
                 num_inference_steps = 3, generator = torch.Generator():manual_seed(31),
                 output_type = "np"}.images
  within(diff(out, npy("xl_textual_inversion")), 2e-3, "xl_textual_inversion")
end

-- an SDXL embedding as its docs load one: safetensors.torch.load_file, then the clip_g half
-- into the second tokenizer and text encoder, the clip_l half into the first, one token
do
  local emb = StableDiffusionXLPipeline.from_pretrained(model)
  emb:set_progress_bar_config{disable = true}
  local state = safetensors.torch.load_file(src .. "/tests/fixtures/textual_inversion/xl/embedding.safetensors")
  emb:load_textual_inversion(state.clip_g, {token = "<xl-neg>", text_encoder = emb.text_encoder_2,
                                            tokenizer = emb.tokenizer_2})
  emb:load_textual_inversion(state.clip_l, {token = "<xl-neg>", text_encoder = emb.text_encoder,
                                            tokenizer = emb.tokenizer})
  check.eq(emb:maybe_convert_prompt("<xl-neg>", emb.tokenizer_2), "<xl-neg> <xl-neg>_1",
           "the second tokenizer spells out its own tokens")
  local out = emb{prompt = "a red car", negative_prompt = "<xl-neg>, blurry", num_inference_steps = 3,
                  generator = torch.Generator():manual_seed(34), output_type = "np"}.images
  within(diff(out, npy("xl_embedding")), 2e-3, "xl_embedding")
  check.raises("the pipeline's own pair expected", function()
    emb:load_textual_inversion(state.clip_g, {token = "<other>", text_encoder = emb.text_encoder_2,
                                              tokenizer = emb.tokenizer})
  end)
  emb:unload_textual_inversion("<xl-neg>", emb.tokenizer_2, emb.text_encoder_2)
  check.eq(emb:maybe_convert_prompt("<xl-neg>", emb.tokenizer_2), "<xl-neg>",
           "unloaded from the second pair")
  check.eq(emb:maybe_convert_prompt("<xl-neg>"), "<xl-neg> <xl-neg>_1", "the first pair keeps it")
end

-- StableDiffusionXLImg2ImgPipeline: the base as img2img, the refiner (text_encoder_2 only,
-- aesthetic scores in its time ids), and the ensemble of experts: the base to denoising_end
-- with latents out, the refiner from denoising_start on them
local refiner_dir = src .. "/tests/models/tiny-sdxl-refiner"
local i2i_cases = {
  {"xl_i2i_base", "base", nil, {prompt = "a red car", image = "sketch64", strength = 0.5,
                                num_inference_steps = 4, seed = 21}},
  {"xl_i2i_base_batch", "base", nil, {prompt = {"a cat", "a dog"}, image = "sketch80x72",
                                      negative_prompt = "blurry", num_images_per_prompt = 2,
                                      negative_original_size = {40, 40},
                                      crops_coords_top_left = {4, 8},
                                      negative_crops_coords_top_left = {2, 2},
                                      num_inference_steps = 5, seed = 22}},
  {"xl_refiner", "refiner", nil, {prompt = "a castle", image = "sketch64", strength = 0.6,
                                  negative_prompt = "fog", aesthetic_score = 7.0,
                                  negative_aesthetic_score = 2.0, num_inference_steps = 5,
                                  seed = 26}},
  {"xl_refiner_dpm", "refiner", "dpm", {prompt = "a castle", image = "sketch64", strength = 0.9,
                                        num_inference_steps = 6, denoising_end = 0.8, seed = 27,
                                        guidance_scale = 1.0}},
}
local refiner = DiffusionPipeline.from_pretrained(refiner_dir)
check.truthy(tostring(refiner):find("StableDiffusionXLImg2ImgPipeline"), "the refiner's class")
refiner:set_progress_bar_config{disable = true}
check.truthy(refiner.tokenizer == nil and refiner.text_encoder == nil, "a refiner's first encoder")
local i2i_base = AutoPipelineForImage2Image.from_pipe(pipe)
check.truthy(tostring(i2i_base):find("StableDiffusionXLImg2ImgPipeline"), "img2img from_pipe")
i2i_base:set_progress_bar_config{disable = true}
for _, c in ipairs(i2i_cases) do
  local p = c[2] == "base" and i2i_base or refiner
  local sched = p.scheduler
  if c[3] == "dpm" then p.scheduler = DPMSolverMultistepScheduler.from_config(sched.config) end
  local args = check.case_args({output_type = "np"}, c[4])
  args.image = Image.open(ref .. args.image .. ".png")
  within(diff(p(args).images, npy(c[1])), 2e-3, c[1])
  p.scheduler = sched
end
do -- the refiner as diffusers' notebook loads it: the base's text_encoder_2 and vae given
  local r = DiffusionPipeline.from_pretrained(refiner_dir, {text_encoder_2 = pipe.text_encoder_2,
                                                            vae = pipe.vae})
  r:set_progress_bar_config{disable = true}
  local args = check.case_args({output_type = "np"}, i2i_cases[3][4])
  args.image = Image.open(ref .. args.image .. ".png")
  within(diff(r(args).images, npy("xl_refiner")), 2e-3, "refiner given the base's models")
  check.truthy(pipe.vae and pipe.text_encoder_2, "the base keeps its models")
  check.raises("CLIPTextModelWithProjection expected", function()
    DiffusionPipeline.from_pretrained(refiner_dir, {text_encoder_2 = pipe.text_encoder})
  end)
end
do -- the ensemble of experts, one generator through both
  local g = torch.Generator():manual_seed(28)
  local latents = pipe{prompt = "a lighthouse", num_inference_steps = 6, denoising_end = 0.7,
                       output_type = "latent", generator = g}.images
  local out = refiner{prompt = "a lighthouse", num_inference_steps = 6, denoising_start = 0.7,
                      image = latents, generator = g, output_type = "np"}.images
  within(diff(out, npy("xl_ensemble")), 2e-3, "xl_ensemble")
end
do
  local pe, ne, pp, np_ = refiner:encode_prompt("a castle", "cpu", 1, true,
                                                {negative_prompt = "fog"})
  within(diff(pe, npy("enc_refiner_prompt_embeds")), 1e-5, "refiner prompt_embeds")
  within(diff(ne, npy("enc_refiner_negative_embeds")), 1e-5, "refiner negative")
  within(diff(pp, npy("enc_refiner_pooled")), 1e-5, "refiner pooled")
  within(diff(np_, npy("enc_refiner_negative_pooled")), 1e-5, "refiner negative pooled")
end
-- diffusers' words for time ids of the wrong kind (its advice, too, reads backwards)
check.raises("length 64, but a vector of 72 was created. Please make sure to disable", function()
  local r = StableDiffusionXLImg2ImgPipeline.from_pretrained(refiner_dir,
                                                             {requires_aesthetics_score = false})
  r{prompt = "a cat", image = Image.open(ref .. "sketch64.png"), num_inference_steps = 2}
end)
check.raises("length 72, but a vector of 64 was created. Please make sure to enable", function()
  local b = StableDiffusionXLImg2ImgPipeline.from_pretrained(model,
                                                             {requires_aesthetics_score = true})
  b{prompt = "a cat", image = Image.open(ref .. "sketch64.png"), num_inference_steps = 2}
end)
check.raises("cannot be larger than or equal to `denoising_end`", function()
  refiner{prompt = "a cat", image = Image.open(ref .. "sketch64.png"), denoising_start = 0.8,
          denoising_end = 0.5}
end)
check.raises("an SDXL refiner has text_encoder_2 only", function()
  refiner:load_textual_inversion(src .. "/tests/models/tiny-lcm-lora")
end)
check.truthy(tostring(StableDiffusionXLImg2ImgPipeline(refiner.components))
             :find("StableDiffusionXLImg2ImgPipeline"), "a refiner from its components")

-- StableDiffusionXLInpaintPipeline: the base's legacy blend (strength 0.9999 by default:
-- the picture's noised latents, not pure noise) and an inpainting UNet of 9 channels
local inpaint_cases = {
  {"xl_inpaint_legacy", "base", {prompt = "a red car", image = "sketch64", mask_image = "box64",
                                 num_inference_steps = 4, seed = 41}},
  {"xl_inpaint_full", "base", {prompt = {"a cat", "a dog"}, image = "sketch80x72",
                               mask_image = "box64", negative_prompt = "blurry", strength = 1.0,
                               num_images_per_prompt = 2, height = 48, width = 64,
                               num_inference_steps = 3, seed = 42}},
  {"xl_inpaint_9ch", "inpaint", {prompt = "a castle", image = "sketch64", mask_image = "box64",
                                 strength = 0.7, aesthetic_score = 5.0, num_inference_steps = 5,
                                 seeds = {43}}},
  {"xl_inpaint_9ch_start", "inpaint", {prompt = "a castle", image = "sketch64",
                                       mask_image = "box64", denoising_start = 0.6,
                                       num_inference_steps = 5, seed = 44}},
}
local inpaint_base = AutoPipelineForInpainting.from_pipe(pipe)
check.truthy(tostring(inpaint_base):find("StableDiffusionXLInpaintPipeline"), "inpaint from_pipe")
inpaint_base:set_progress_bar_config{disable = true}
local inpaint9 = AutoPipelineForInpainting.from_pretrained(src .. "/tests/models/tiny-sdxl-inpaint")
check.truthy(tostring(inpaint9):find("StableDiffusionXLInpaintPipeline"), "AutoPipelineForInpainting")
inpaint9:set_progress_bar_config{disable = true}
for _, c in ipairs(inpaint_cases) do
  local args = check.case_args({output_type = "np"}, c[3])
  args.image = Image.open(ref .. args.image .. ".png")
  args.mask_image = Image.open(ref .. args.mask_image .. ".png")
  local p = c[2] == "base" and inpaint_base or inpaint9
  within(diff(p(args).images, npy(c[1])), 2e-3, c[1])
end
-- the ensemble of experts for inpainting: the base to denoising_end with latents out, then from
-- denoising_start on those latents (diffusers' docs' way; the 4-channel UNet's blend)
do
  local args = {prompt = "a red car", mask_image = Image.open(ref .. "box64.png"),
                num_inference_steps = 6}
  local g = torch.Generator():manual_seed(45)
  local function with(extra)
    local a = {generator = g}
    for k, v in pairs(args) do a[k] = v end
    for k, v in pairs(extra) do a[k] = v end
    return a
  end
  local latents = inpaint_base(with{image = Image.open(ref .. "sketch64.png"), denoising_end = 0.7,
                                    output_type = "latent"}).images
  within(diff(latents, npy("xl_inpaint_ensemble_latents")), 1e-4, "xl_inpaint_ensemble latents")
  local out = inpaint_base(with{image = latents, denoising_start = 0.7, output_type = "np"}).images
  within(diff(out, npy("xl_inpaint_ensemble")), 2e-3, "xl_inpaint_ensemble")
  check.raises("latents given to inpaint with a 9-channel UNet", function()
    inpaint9{prompt = "a cat", image = latents, mask_image = Image.open(ref .. "box64.png"),
             denoising_start = 0.7}
  end)
end
check.raises("denoising_start with strength 1 and a 9-channel UNet", function()
  inpaint9{prompt = "a cat", image = Image.open(ref .. "sketch64.png"), strength = 1.0,
           mask_image = Image.open(ref .. "box64.png"), denoising_start = 0.5}
end)

-- the ways to it, and what a typo gets
local auto = AutoPipelineForText2Image.from_pretrained(model)
check.truthy(tostring(auto):find("StableDiffusionXLPipeline"), "AutoPipelineForText2Image")
local built = StableDiffusionXLPipeline(pipe.components)
check.truthy(tostring(built):find("StableDiffusionXLPipeline"), "from components")
check.truthy(pipe.tokenizer_2 and pipe.text_encoder_2, "tokenizer_2 and text_encoder_2")
check.truthy(pipe.components.text_encoder_2 == pipe.text_encoder_2, "components")
local sd = src .. "/tests/models/tiny-sd-a"
check.raises("Stable Diffusion XL model", function() StableDiffusionPipeline.from_pretrained(model) end)
check.raises("needs a Stable Diffusion XL model", function()
  StableDiffusionXLPipeline.from_pretrained(sd)
end)
check.raises("cannot be made from", function() StableDiffusionPipeline(pipe.components) end)
check.truthy(tostring(AutoPipelineForText2Image.from_pipe(pipe)):find("StableDiffusionXLPipeline"),
             "AutoPipelineForText2Image.from_pipe")
check.raises("a non-empty list of ControlNetModels expected", function()
  AutoPipelineForInpainting.from_pretrained(model, {controlnet = {}})
end)
check.raises("`pooled_prompt_embeds` also have to be passed", function()
  local pe = pipe:encode_prompt("a cat", "cpu", 1, false)
  pipe{prompt_embeds = pe, num_inference_steps = 1}
end)
check.raises("Cannot forward both `prompt_2` and `prompt_embeds`", function()
  local pe, _, pp = pipe:encode_prompt("a cat", "cpu", 1, false)
  pipe{prompt_embeds = pe, pooled_prompt_embeds = pp, prompt_2 = "x", num_inference_steps = 1}
end)
check.raises("prompt_2: 2 given for 1 prompts", function()
  pipe{prompt = "a cat", prompt_2 = {"a", "b"}, num_inference_steps = 1}
end)
check.raises("option 'original_size': table expected", function()
  pipe{prompt = "a cat", original_size = 1024, num_inference_steps = 1}
end)
check.raises("option 'target_size': a list of two integers", function()
  pipe{prompt = "a cat", target_size = {1024}, num_inference_steps = 1}
end)
-- an SD 1.5 LoRA on an SDXL UNet: PEFT's size mismatch, and no adapter left behind
check.raises("size mismatch for mid_block.attentions.0.proj_in", function()
  pipe:load_lora_weights(src .. "/tests/models/tiny-lcm-lora")
end)
check.eq(#pipe:get_active_adapters(), 0, "no adapter after a refused LoRA")
-- an SD 1.5 IP-Adapter on an SDXL UNet: a message saying which widths disagree
check.raises("(an IP-Adapter for another model?)", function()
  pipe:load_ip_adapter(src .. "/tests/models/tiny-ip-adapter", "models", "ip-adapter_tiny.safetensors")
end)
check.raises("clip_skip 3", function()
  pipe{prompt = "a cat", clip_skip = 3, num_inference_steps = 1}
end)
do -- a file with an SDXL text tower's key and nothing else: said, not crashed on
  local name = "conditioner.embedders.1.model.token_embedding.weight"
  local header = string.format('{"%s":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', name)
  local path = check.tmpdir() .. "/sd_xl_base_1.0.safetensors"
  local f = assert(io.open(path, "wb"))
  f:write(string.pack("<I8", #header), header, string.pack("<f", 0))
  f:close()
  check.raises("not a Stable Diffusion checkpoint in the original layout", function()
    StableDiffusionXLPipeline.from_single_file(path)
  end)
end
print("ok")

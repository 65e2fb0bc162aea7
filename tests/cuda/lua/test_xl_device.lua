-- Stable Diffusion XL on "cuda": the same pictures as on the CPU (both text encoders, the
-- UNet's text_time embedding in the recorded call, the micro-conditioning rows), in float16
-- too (the VAE decoding in float32, as force_upcast asks), Playground v2.5's layout (EDM's
-- scheduler, the VAE's latent statistics), LoRA adapters on all three models,
-- an IP-Adapter, a ControlNet, a single-file checkpoint, and the base with the refiner.
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local model = root .. "/models/tiny-sdxl"

local function run(p, args)
  local a = {prompt = "a red car", num_inference_steps = 4, output_type = "np",
             generator = torch.Generator():manual_seed(3)}
  for k, v in pairs(args) do a[k] = v end
  return p(a).images
end

local function same(what, args, tol, opts, path)
  local cpu = StableDiffusionXLPipeline.from_pretrained(path or model, opts)
  local gpu = StableDiffusionXLPipeline.from_pretrained(path or model, opts):to("cuda")
  cpu:set_progress_bar_config{disable = true}
  gpu:set_progress_bar_config{disable = true}
  local d = (run(cpu, args) - run(gpu, args)):abs():max():item()
  check.truthy(d == d and d < tol, string.format("%s: cuda against cpu %.3g", what, d))
  print(string.format("%-10s cuda against cpu %.2e", what, d))
end

same("guided", {prompt = {"a red car", "a tree"}, negative_prompt = "blurry",
                num_images_per_prompt = 2, original_size = {128, 96},
                negative_original_size = {32, 32}, negative_target_size = {48, 48}}, 2e-2)
same("unguided", {guidance_scale = 1.0, denoising_end = 0.7}, 2e-2)
same("float16", {}, 5e-2, {torch_dtype = torch.float16})
-- Playground v2.5's layout: EDM's DPM-Solver (float timesteps) and the VAE's latents_mean and
-- latents_std
same("playground", {guidance_scale = 3.0}, 2e-2, nil, root .. "/models/tiny-playground")
same("pg float16", {guidance_scale = 3.0}, 5e-2, {torch_dtype = torch.float16},
     root .. "/models/tiny-playground")

-- the ensemble of experts: the base to denoising_end, the refiner (text_encoder_2 only,
-- aesthetic-score time ids) from denoising_start on the base's latents
local function ensemble(device, dtype)
  local opts = {torch_dtype = dtype}
  local base = StableDiffusionXLPipeline.from_pretrained(model, opts):to(device)
  local refiner = DiffusionPipeline.from_pretrained(root .. "/models/tiny-sdxl-refiner", opts)
                    :to(device)
  base:set_progress_bar_config{disable = true}
  refiner:set_progress_bar_config{disable = true}
  local g = torch.Generator():manual_seed(5) -- the CPU's draws on both, as the others here
  local latents = base{prompt = "a lighthouse", num_inference_steps = 6, denoising_end = 0.7,
                       output_type = "latent", generator = g}.images
  return refiner{prompt = "a lighthouse", num_inference_steps = 6, denoising_start = 0.7,
                 image = latents, generator = g, output_type = "np"}.images
end
-- inpainting with the 9-channel UNet (the mask and the masked picture's latents beside the
-- latents in the recorded call)
do
  local inpaint = root .. "/models/tiny-sdxl-inpaint"
  local picture = Image.open(root .. "/reference/xl/sketch64.png")
  local mask = Image.open(root .. "/reference/xl/box64.png")
  local function paint(p)
    p:set_progress_bar_config{disable = true}
    return p{prompt = "a castle", image = picture, mask_image = mask, strength = 0.7,
             num_inference_steps = 5, output_type = "np",
             generator = torch.Generator():manual_seed(4)}.images
  end
  local d = (paint(StableDiffusionXLInpaintPipeline.from_pretrained(inpaint)) -
             paint(StableDiffusionXLInpaintPipeline.from_pretrained(inpaint):to("cuda")))
            :abs():max():item()
  check.truthy(d == d and d < 2e-2, string.format("inpaint: %.3g", d))
  print(string.format("%-10s cuda against cpu %.2e", "inpaint", d))
end

-- the pictures a pipeline made by make(device) paints on each device, within tol
local function against_cpu(what, make, tol)
  local d = (make("cpu") - make("cuda")):abs():max():item()
  check.truthy(d == d and d < tol, string.format("%s: cuda against cpu %.3g", what, d))
  print(string.format("%-10s cuda against cpu %.2e", what, d))
end

-- LoRA on SDXL: the diffusers file before the move (all three models), Kohya's SGM-named one
-- after it, and a call's scale
against_cpu("lora", function(device)
  local fix = root .. "/fixtures/lora-xl/"
  local p = StableDiffusionXLPipeline.from_pretrained(model)
  p:load_lora_weights(fix .. "diffusers")
  p = p:to(device)
  p:load_lora_weights(fix .. "kohya-sgm.safetensors", {adapter_name = "k"})
  p:set_adapters({"default_0", "k"}, {0.7, 0.4})
  p:set_progress_bar_config{disable = true}
  return run(p, {height = 64, width = 64, cross_attention_kwargs = {scale = 0.5}})
end, 2e-2)

-- an IP-Adapter (the Resampler) on SDXL's cross-attentions
against_cpu("ip-adapter", function(device)
  local p = StableDiffusionXLPipeline.from_pretrained(model):to(device)
  p:load_ip_adapter(root .. "/models/tiny-ip-adapter-xl", "sdxl_models",
                    "ip-adapter-plus_sdxl_tiny.bin")
  p:set_progress_bar_config{disable = true}
  return run(p, {height = 64, width = 64,
                 ip_adapter_image = Image.open(root .. "/reference/xl_ip_adapter/face.png")})
end, 2e-2)

-- a ControlNet with SDXL's added embedding, in guess mode (the net on the text half)
against_cpu("controlnet", function(device)
  local net = ControlNetModel.from_pretrained(root .. "/models/tiny-sdxl-controlnet")
  local p = StableDiffusionXLControlNetPipeline.from_pretrained(model, {controlnet = net})
              :to(device)
  p:set_progress_bar_config{disable = true}
  return run(p, {image = Image.open(root .. "/reference/xl_controlnet/sketch64.png"),
                 prompt = {"a red car", "a tree"}, guess_mode = true,
                 controlnet_conditioning_scale = 0.8})
end, 2e-2)

-- a single-file checkpoint, moved
against_cpu("singlefile", function(device)
  local p = StableDiffusionXLPipeline.from_single_file(root .. "/models/tiny-sdxl-single.safetensors",
                                                       {tokenizer = root .. "/models/tiny-sd-a/tokenizer"})
              :to(device)
  p:set_progress_bar_config{disable = true}
  return run(p, {height = 64, width = 64})
end, 2e-2)

for _, dtype in ipairs{false, torch.float16} do
  local d = (ensemble("cpu", dtype or nil) - ensemble("cuda", dtype or nil)):abs():max():item()
  local what = dtype and "ensemble16" or "ensemble"
  check.truthy(d == d and d < (dtype and 5e-2 or 2e-2), string.format("%s: %.3g", what, d))
  print(string.format("%-10s cuda against cpu %.2e", what, d))
end
print("ok")

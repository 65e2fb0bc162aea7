-- Stable Diffusion XL on "cuda": the same pictures as on the CPU (both text encoders, the
-- UNet's text_time embedding in the recorded call, the micro-conditioning rows), in float16
-- too (the VAE decoding in float32, as force_upcast asks).
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local model = root .. "/models/tiny-sdxl"

local function run(p, args)
  local a = {prompt = "a red car", num_inference_steps = 4, output_type = "np",
             generator = torch.Generator():manual_seed(3)}
  for k, v in pairs(args) do a[k] = v end
  return p(a).images
end

local function same(what, args, tol, opts)
  local cpu = StableDiffusionXLPipeline.from_pretrained(model, opts)
  local gpu = StableDiffusionXLPipeline.from_pretrained(model, opts):to("cuda")
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
print("ok")

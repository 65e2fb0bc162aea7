-- StableDiffusionUpscalePipeline on "cuda": the same pictures as on the CPU (the noised picture
-- beside the latents and the noise level as the class label in the recorded UNet call, the
-- only_cross_attention blocks), in float16 too.
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local picture = Image.open(root .. "/reference/upscale/sketch16.png")

local function run(p, args)
  local a = {prompt = "a white cat", image = picture, num_inference_steps = 4, output_type = "np",
             generator = torch.Generator():manual_seed(3)}
  for k, v in pairs(args) do a[k] = v end
  return p(a).images
end

local function same(what, args, tol, opts)
  local model = root .. "/models/tiny-upscaler"
  local cpu = StableDiffusionUpscalePipeline.from_pretrained(model, opts)
  local gpu = StableDiffusionUpscalePipeline.from_pretrained(model, opts):to("cuda")
  cpu:set_progress_bar_config{disable = true}
  gpu:set_progress_bar_config{disable = true}
  local d = (run(cpu, args) - run(gpu, args)):abs():max():item()
  check.truthy(d == d and d < tol, string.format("%s: cuda against cpu %.3g", what, d))
  print(string.format("%-10s cuda against cpu %.2e", what, d))
end

same("guided", {num_images_per_prompt = 2, negative_prompt = "blurry"}, 2e-2)
same("float16", {noise_level = 50}, 5e-2, {torch_dtype = torch.float16})
print("ok")

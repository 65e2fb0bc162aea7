-- InstructPix2Pix on "cuda": the same pictures as on the CPU (the picture's latents beside
-- the latents in the recorded UNet call, the three guided rows), in float16 too.
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local picture = Image.open(root .. "/reference/pix2pix/sketch64.png")

local function run(p, args)
  local a = {prompt = "turn it into a cat", image = picture, num_inference_steps = 5,
             output_type = "np", generator = torch.Generator():manual_seed(3)}
  for k, v in pairs(args) do a[k] = v end
  return p(a).images
end

local function same(what, args, tol, opts)
  local model = root .. "/models/tiny-pix2pix"
  local cpu = StableDiffusionInstructPix2PixPipeline.from_pretrained(model, opts)
  local gpu = StableDiffusionInstructPix2PixPipeline.from_pretrained(model, opts):to("cuda")
  cpu:set_progress_bar_config{disable = true}
  gpu:set_progress_bar_config{disable = true}
  local d = (run(cpu, args) - run(gpu, args)):abs():max():item()
  check.truthy(d == d and d < tol, string.format("%s: cuda against cpu %.3g", what, d))
  print(string.format("%-10s cuda against cpu %.2e", what, d))
end

same("guided", {num_images_per_prompt = 2, image_guidance_scale = 2.0}, 2e-2)
same("float16", {}, 5e-2, {torch_dtype = torch.float16})
print("ok")

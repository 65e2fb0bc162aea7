-- Inpainting on "cuda": the same pictures as on the CPU, with a 9-channel UNet (the mask and
-- masked latents concatenated to its input, inside the recorded CUDA graph) and with a
-- 4-channel one (the blend after each step, add_noise on the device), both at strength
-- below 1 (the picture encoded first).
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local ref = root .. "/reference/inpaint/"

local function same(what, model, image, mask, h)
  local function run(p)
    p:set_progress_bar_config{disable = true}
    return p{prompt = "a cat on a bench", image = Image.open(ref .. image .. ".png"),
             mask_image = Image.open(ref .. mask .. ".png"), strength = 0.8, height = h,
             width = h, num_inference_steps = 4, num_images_per_prompt = 2, output_type = "np",
             generator = torch.Generator():manual_seed(3)}.images
  end
  local cpu = run(StableDiffusionInpaintPipeline.from_pretrained(root .. "/models/" .. model))
  local gpu = run(StableDiffusionInpaintPipeline.from_pretrained(root .. "/models/" .. model):to("cuda"))
  local d = (cpu - gpu):abs():max():item()
  check.truthy(d == d and d < 2e-2, string.format("%s: cuda against cpu %.3g", what, d))
  print(string.format("%-10s cuda against cpu %.2e", what, d))
end

same("unet9", "tiny-sd-inpaint", "sketch64", "box64", 32)
same("unet4", "tiny-sd-a", "sketch128", "grey128", 64)
print("ok")

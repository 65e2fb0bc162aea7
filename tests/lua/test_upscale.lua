-- StableDiffusionUpscalePipeline against diffusers 0.27.2 (tests/models/tiny-upscaler and
-- tests/reference/upscale, made by scripts/reference/make_upscale_cases.py): the picture noised
-- by the low_res_scheduler to noise_level beside the latents, the noise level as the UNet's
-- class label, latents at the picture's size made 4x larger by the VAE; a negative prompt, two
-- prompts with a picture each and two images a prompt, a picture resized (bicubic) to a multiple
-- of 4 with noise_level 100 and no guidance. Images within 2e-3, as the other whole runs.
local check = require "check"

local src = os.getenv("SDREPL_SOURCE_DIR") or "."
local ref = src .. "/tests/reference/upscale/"
local pipe = StableDiffusionUpscalePipeline.from_pretrained(src .. "/tests/models/tiny-upscaler")
pipe:set_progress_bar_config{disable = true}
local function picture(n) return Image.open(ref .. n .. ".png") end

local cases = {
  {"up_one", {prompt = "a white cat", negative_prompt = "blurry", num_inference_steps = 4, seed = 1},
   {"sketch16"}},
  {"up_batch", {prompt = {"a white cat", "a red door"}, num_images_per_prompt = 2,
                num_inference_steps = 3, seed = 2}, {"sketch16", "rings16"}},
  {"up_odd_unguided", {prompt = "a lighthouse", noise_level = 100, guidance_scale = 1.0,
                       num_inference_steps = 4, seed = 3}, {"sketch18x14"}},
}
for _, c in ipairs(cases) do
  local images = {}
  for i, n in ipairs(c[3]) do images[i] = picture(n) end
  local out = pipe(check.case_args({image = #images == 1 and images[1] or images,
                                    output_type = "np"}, c[2])).images
  local d = (out - torch.load_npy(ref .. c[1] .. ".npy")):abs():max():item()
  check.truthy(d == d and d < 2e-3, string.format("%s: max difference %.3g", c[1], d))
  print(string.format("%-16s max difference %.2e", c[1], d))
end

-- the picture comes out four times larger; what a typo gets
local big = pipe{prompt = "a cat", image = picture("sketch16"), num_inference_steps = 1}.images[1]
check.eq(big.width, 64, "4x wider")
check.raises("`noise_level` has to be <= 350 but is 400", function()
  pipe{prompt = "a cat", image = picture("sketch16"), noise_level = 400, num_inference_steps = 1}
end)
check.raises("`image` input cannot be undefined.", function() pipe{prompt = "a cat"} end)
check.raises("the upscaler takes one picture per prompt", function()
  pipe{prompt = {"a", "b"}, image = picture("sketch16"), num_inference_steps = 1}
end)
check.raises("AutoPipeline can't find a pipeline linked to StableDiffusionUpscalePipeline",
             function() AutoPipelineForText2Image.from_pipe(pipe) end)

-- upcast_vae: a float16 pipeline's VAE in float32 from then on, the same pictures after
local half = StableDiffusionUpscalePipeline.from_pretrained(src .. "/tests/models/tiny-upscaler",
                                                            {torch_dtype = torch.float16})
half:set_progress_bar_config{disable = true}
check.eq(half.vae.dtype, torch.float16, "the VAE in torch_dtype")
local function one(p)
  return p{prompt = "a cat", image = picture("sketch16"), num_inference_steps = 2,
           output_type = "np", generator = torch.Generator():manual_seed(1)}.images
end
local before = one(half)
half:upcast_vae()
check.eq(half.vae.dtype, torch.float32, "upcast_vae")
local d = (one(half) - before):abs():max():item()
check.truthy(d < 1e-2, "upcast_vae changes the pictures by float16's error only: " .. d)
print("ok")

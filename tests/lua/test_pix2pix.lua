-- StableDiffusionInstructPix2PixPipeline against diffusers 0.27.2 (tests/reference/pix2pix and
-- tests/models/tiny-pix2pix, made by scripts/reference/make_pix2pix_cases.py): the picture's
-- latents beside the latents in the UNet's input, the three guided rows (text and image,
-- image only, neither) with guidance_scale and image_guidance_scale, Euler ancestral with
-- generators, two prompts with negatives, no guidance, a picture of another size, latents
-- out; then the ways to the pipeline and the errors.
local check = require "check"

local src = os.getenv("SDREPL_SOURCE_DIR") or "."
local ref = src .. "/tests/reference/pix2pix/"
local model = src .. "/tests/models/tiny-pix2pix"

local cases = {
  {"p2p_defaults", nil, {prompt = "turn it into a cat", image = "sketch64",
                         num_inference_steps = 5, seed = 1}},
  {"p2p_euler_a_gens", "euler_a", {prompt = "make it snow", image = "sketch64",
                                   num_inference_steps = 4, image_guidance_scale = 2.0,
                                   guidance_scale = 5.0, num_images_per_prompt = 2,
                                   seeds = {2, 3}}},
  {"p2p_prompts", nil, {prompt = {"turn it into a cat", "make it snow"}, image = "sketch80x72",
                        negative_prompt = {"blurry", "dark"}, num_images_per_prompt = 2,
                        num_inference_steps = 3, seed = 4}},
  {"p2p_unguided", nil, {prompt = "make it snow", image = "sketch64", image_guidance_scale = 0.8,
                         num_inference_steps = 4, seed = 5}},
  {"p2p_latent", nil, {prompt = "turn it into a cat", image = "sketch64", output_type = "latent",
                       num_inference_steps = 3, seed = 6}},
}

local function call(pipe, given)
  local args = check.case_args({output_type = "np"}, given)
  args.image = Image.open(ref .. args.image .. ".png")
  return pipe(args)
end

local pipe = DiffusionPipeline.from_pretrained(model)
check.truthy(tostring(pipe):find("StableDiffusionInstructPix2PixPipeline"), "DiffusionPipeline's class")
pipe:set_progress_bar_config{disable = true}
local pndm = pipe.scheduler
for _, c in ipairs(cases) do
  pipe.scheduler = c[2] == "euler_a" and EulerAncestralDiscreteScheduler.from_config(pndm.config)
                   or pndm
  local out = call(pipe, c[3]).images
  local d = (out - torch.load_npy(ref .. c[1] .. ".npy")):abs():max():item()
  check.truthy(d == d and d < 2e-3, string.format("%s: max difference %.3g", c[1], d))
  print(string.format("%-18s max difference %.2e", c[1], d))
end
pipe.scheduler = pndm

-- image_guidance_scale matters: 1.0 instead of 1.5 gives another picture
do
  local args = {}
  for k, v in pairs(cases[1][3]) do args[k] = v end
  args.image_guidance_scale = 1.0 -- the image row then counts for nothing beside the text's
  local d = (call(pipe, args).images - torch.load_npy(ref .. "p2p_defaults.npy")):abs():max():item()
  check.truthy(d > 0.01, "image_guidance_scale changes the picture: " .. d)
end

-- the ways to it, and what a typo gets
local built = StableDiffusionInstructPix2PixPipeline(pipe.components)
check.truthy(tostring(built):find("StableDiffusionInstructPix2PixPipeline"), "from components")
check.raises("`image` input cannot be undefined.", function() pipe{prompt = "a cat"} end)
check.raises("unexpected", function()
  pipe{prompt = "a cat", image = Image.open(ref .. "sketch64.png"), strength = 0.5}
end)
check.raises("expects 4 but received `num_channels_latents`: 4 + `num_channels_image`: 4", function()
  local sd = StableDiffusionInstructPix2PixPipeline.from_pretrained(src .. "/tests/models/tiny-sd-a")
  sd{prompt = "a cat", image = Image.open(ref .. "sketch64.png"), num_inference_steps = 2}
end)

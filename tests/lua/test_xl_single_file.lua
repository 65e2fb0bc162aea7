-- StableDiffusionXLPipeline.from_single_file against diffusers 0.27.2's converters
-- (tests/models/tiny-sdxl-single.safetensors in Stability AI's original layout and
-- tests/reference/xl_single_file, made by scripts/reference/make_xl_single_file_cases.py): the
-- configs inferred as diffusers makes them from sd_xl_base.yaml (64-channel heads, the added
-- embedding's 256-wide time ids, per-block transformer depths, the VAE's 0.13025, Euler with
-- the default config, 1024 pixels), both text towers (the OpenCLIP one with its projection in
-- the file's layout), the second tokenizer padded with "!"; then runs within 2e-3 of the
-- converted diffusers pipeline's, img2img from the same file, and the errors.
local check = require "check"

local src = os.getenv("SDREPL_SOURCE_DIR") or "."
local file = src .. "/tests/models/tiny-sdxl-single.safetensors"
local ref = src .. "/tests/reference/xl_single_file/"
local tok = src .. "/tests/models/tiny-sd-a/tokenizer"

local pipe = StableDiffusionXLPipeline.from_single_file(file, {tokenizer = tok})
pipe:set_progress_bar_config{disable = true}
check.eq(pipe.unet.config.addition_embed_type, "text_time", "unet addition_embed_type")
check.eq(pipe.unet.config.addition_time_embed_dim, 256, "unet addition_time_embed_dim")
check.truthy(math.abs(pipe.vae.config.scaling_factor - 0.13025) < 1e-7, "vae scaling_factor")
check.eq(pipe.unet.config.sample_size * pipe.vae_scale_factor, 1024, "the default size")
check.truthy(tostring(pipe.scheduler):find("EulerDiscreteScheduler"), "the scheduler: Euler")
check.eq(pipe.tokenizer_2.pad_token, "!", "tokenizer_2 pads with !")

local cases = {
  {"xlsf_guided", {prompt = "a photo of an astronaut", negative_prompt = "blurry", height = 64,
                   width = 64, num_inference_steps = 3, seed = 1}},
  {"xlsf_unguided_batch", {prompt = {"a red car", "a tree"}, guidance_scale = 1.0, height = 48,
                           width = 64, num_inference_steps = 3, seed = 2}},
}
local function same(p, name, args)
  local out = p(check.case_args({output_type = "np"}, args)).images
  local d = (out - torch.load_npy(ref .. name .. ".npy")):abs():max():item()
  check.truthy(d == d and d < 2e-3, string.format("%s: max difference %.3g", name, d))
  print(string.format("%-20s max difference %.2e", name, d))
end
for _, c in ipairs(cases) do same(pipe, c[1], c[2]) end

local i2i = StableDiffusionXLImg2ImgPipeline.from_single_file(file, {tokenizer = tok})
i2i:set_progress_bar_config{disable = true}
same(i2i, "xlsf_img2img", {prompt = "a lighthouse", image = Image.open(ref .. "sketch64.png"),
                           strength = 0.6, num_inference_steps = 4, seed = 3})

-- the refiner's layout (the OpenCLIP tower alone): its second tokenizer and text encoder only,
-- the aesthetic score in its time ids, no zeros for an empty negative
do
  local refiner = StableDiffusionXLImg2ImgPipeline.from_single_file(
    src .. "/tests/models/tiny-sdxl-refiner-single.safetensors", {tokenizer = tok})
  refiner:set_progress_bar_config{disable = true}
  check.eq(refiner.text_encoder, nil, "the refiner has no first text encoder")
  same(refiner, "xlsf_refiner", {prompt = "a lighthouse", image = Image.open(ref .. "sketch64.png"),
                                 strength = 0.5, aesthetic_score = 7.0, num_inference_steps = 4,
                                 seed = 4})
end

-- the class must fit the checkpoint, both ways
check.raises("a Stable Diffusion XL checkpoint; load it with StableDiffusionXLPipeline", function()
  StableDiffusionPipeline.from_single_file(file, {tokenizer = tok})
end)
check.raises("not a Stable Diffusion XL checkpoint", function()
  StableDiffusionXLPipeline.from_single_file(src .. "/tests/models/tiny-sd-b-ldm.safetensors")
end)
print("ok")

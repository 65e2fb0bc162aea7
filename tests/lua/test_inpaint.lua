-- StableDiffusionInpaintPipeline against diffusers 0.27.2 (tests/reference/inpaint and
-- tests/models/tiny-sd-inpaint, made by scripts/reference/make_inpaint_cases.py): a UNet of
-- 9 input channels (latents, mask, masked picture's latents) and diffusers' legacy
-- inpainting with tiny-sd-a's 4-channel UNet; strength 1 and below, two prompts with a
-- list of generators, no guidance, a mask with grey levels, pictures of another size than
-- the run's, PNDM, DDIM, Euler, Euler ancestral and DPM-Solver++. Images within 2e-3 as the
-- other whole runs. Then AutoPipelineForInpainting, from_pipe, components, and the errors.
local check = require "check"

local src = os.getenv("SDREPL_SOURCE_DIR") or "."
local ref = src .. "/tests/reference/inpaint/"
local models = src .. "/tests/models/"

-- the reference's cases (its manifest.json)
local cases = {
  {"in9_s1", "tiny-sd-inpaint", nil, "sketch64", "box64",
   {prompt = "a cat on a bench", num_images_per_prompt = 2, num_inference_steps = 4,
    height = 32, width = 48, seed = 3}},
  {"in9_s075_gens", "tiny-sd-inpaint", "ddim", "sketch80x72", "grey80x72",
   {prompt = {"a cat on a bench", "a red door"}, negative_prompt = {"blurry", "dark"},
    strength = 0.75, num_inference_steps = 6, height = 64, width = 64, seeds = {1, 2}}},
  {"in9_noguide_euler", "tiny-sd-inpaint", "euler", "sketch64", "box64",
   {prompt = "a lighthouse", guidance_scale = 1.0, num_inference_steps = 5, strength = 0.9,
    seed = 9}},
  {"in4_s1", "tiny-sd-a", nil, "sketch128", "box128",
   {prompt = "a cat on a bench", num_inference_steps = 4, seed = 5}},
  {"in4_s06_euler_a", "tiny-sd-a", "euler_a", "sketch128", "grey128",
   {prompt = "a red door", strength = 0.6, num_images_per_prompt = 2, num_inference_steps = 6,
    seed = 7}},
  {"in4_s08_dpm", "tiny-sd-a", "dpm", "sketch96", "box96",
   {prompt = "a lighthouse", strength = 0.8, num_inference_steps = 5, height = 128,
    width = 128, seed = 11}},
}
local schedulers = {ddim = DDIMScheduler, euler = EulerDiscreteScheduler,
                    euler_a = EulerAncestralDiscreteScheduler, dpm = DPMSolverMultistepScheduler}

local function picture(name) return Image.open(ref .. name .. ".png") end

local function load(model, sched)
  local pipe = StableDiffusionInpaintPipeline.from_pretrained(models .. model)
  if sched then pipe.scheduler = schedulers[sched].from_config(pipe.scheduler.config) end
  pipe:set_progress_bar_config{disable = true}
  return pipe
end

local function run(pipe, c, extra)
  return pipe(check.case_args({image = picture(c[4]), mask_image = picture(c[5]),
                               output_type = "np"}, c[6], extra))
end

local function same(images, name, what)
  local d = (images - torch.load_npy(ref .. name .. ".npy")):abs():max():item()
  check.truthy(d == d and d < 2e-3, string.format("%s: max difference %.3g", what or name, d))
  return d
end

local byname = {}
for _, c in ipairs(cases) do
  byname[c[1]] = c
  local d = same(run(load(c[2], c[3]), c).images, c[1])
  print(string.format("%-18s max difference %.2e", c[1], d))
end

-- the class the model names, and the other ways to an inpainting pipeline
local auto = DiffusionPipeline.from_pretrained(models .. "tiny-sd-inpaint")
check.truthy(tostring(auto):find("StableDiffusionInpaintPipeline"), "DiffusionPipeline's class")
auto:set_progress_bar_config{disable = true}
same(run(auto, byname.in9_s1).images, "in9_s1", "DiffusionPipeline")
local t2i = StableDiffusionPipeline.from_pretrained(models .. "tiny-sd-a")
local from_pipe = AutoPipelineForInpainting.from_pipe(t2i)
from_pipe:set_progress_bar_config{disable = true}
same(run(from_pipe, byname.in4_s1).images, "in4_s1", "AutoPipelineForInpainting.from_pipe")
local built = StableDiffusionInpaintPipeline(t2i.components)
built:set_progress_bar_config{disable = true}
same(run(built, byname.in4_s1).images, "in4_s1", "built from components")
local by_auto = AutoPipelineForInpainting.from_pretrained(models .. "tiny-sd-a")
check.truthy(tostring(by_auto):find("StableDiffusionInpaintPipeline"), "AutoPipelineForInpainting")
-- an inpainting model's pipeline as txt2img is diffusers' too (its UNet then fails there)
local back = AutoPipelineForImage2Image.from_pipe(auto)
check.truthy(tostring(back):find("StableDiffusionImg2ImgPipeline"), "and back to img2img")

-- the picture and the mask as tensors ((1, 3, H, W) in [0, 1] and (H, W), another size than
-- the run's: F.interpolate's nearest resize), as diffusers takes torch tensors
do
  local pipe = load("tiny-sd-inpaint")
  local image = torch.load_npy(ref .. "tensor_image.npy")
  local mask = torch.load_npy(ref .. "tensor_mask.npy")
  local out = pipe{prompt = "a cat on a bench", image = image, mask_image = mask, height = 64,
                   width = 64, strength = 0.8, num_inference_steps = 4, output_type = "np",
                   generator = torch.Generator():manual_seed(21)}
  same(out.images, "in9_tensors", "tensors")
  check.raises("(batch, 1, height, width)", function()
    pipe{prompt = "x", image = image, mask_image = torch.zeros(1, 3, 8, 8), height = 64, width = 64}
  end)
end

-- a single-file inpainting checkpoint (tests/models/tiny-sd-inpaint-ldm.safetensors): its
-- 9-channel UNet worked out from the tensors, the folder's configs
local single = StableDiffusionInpaintPipeline.from_single_file(
  models .. "tiny-sd-inpaint-ldm.safetensors", {config = models .. "tiny-sd-inpaint"})
single:set_progress_bar_config{disable = true}
check.eq(single.unet.config.in_channels, 9, "from_single_file: 9 channels")
same(run(single, byname.in9_s1).images, "in9_s1", "from_single_file")

-- output types: pil, latent; return_dict = false
local pil = run(load("tiny-sd-a"), byname.in4_s1, {output_type = "pil"}).images
check.eq(pil[1].size[1], 64, "pil size")
local lat = run(load("tiny-sd-a"), byname.in4_s1, {output_type = "latent"}).images
check.eq(lat:size(2), 4, "latents of the VAE's channels")

-- pipe.mask_processor: grey, resized, binarized at 0.5
local pipe = load("tiny-sd-inpaint")
local m = pipe.mask_processor:preprocess(picture("grey80x72"), {height = 64, width = 64})
check.eq((m - torch.load_npy(ref .. "mask_grey80x72_64.npy")):abs():max():item(), 0,
         "mask_processor")
check.eq(pipe.mask_processor.config.do_binarize, true, "mask_processor's config")

-- errors
local c = byname.in9_s1
check.raises("option 'mask_image'", function() run(pipe, c, {mask_image = "white"}) end)
check.raises("option 'image'", function()
  pipe{prompt = "x", mask_image = picture("box64"), num_inference_steps = 1}
end)
check.raises("RGB", function() run(pipe, c, {image = picture("grey128")}) end)
check.raises("(batch, 3, height, width)", function() run(pipe, c, {image = torch.rand(1, 5, 8, 8)}) end)
check.raises("latents given to inpaint with a 9-channel UNet", function()
  run(pipe, c, {image = torch.rand(1, 4, 8, 8)})
end)
check.raises("divisible by 8", function() run(pipe, c, {height = 36}) end)
check.raises("strength", function() run(pipe, c, {strength = 1.5}) end)
check.raises("masks", function()
  run(pipe, c, {mask_image = {picture("box64"), picture("box64"), picture("box64")}})
end)
-- padding_mask_crop (tests/lua/test_mask_crop.lua) gives PIL pictures only, as diffusers'
check.raises("The output type should be PIL when inpainting mask crop",
             function() run(pipe, c, {padding_mask_crop = 32}) end)

-- masked_image_latents given (tests/reference/masked_latents, made by
-- scripts/reference/make_masked_latents_cases.py): taken as they are, nothing drawn for them
local mref = src .. "/tests/reference/masked_latents/"
for _, m in ipairs {
  {"ml_in9", StableDiffusionInpaintPipeline, "tiny-sd-inpaint",
   {prompt = "a cat on a bench", strength = 0.75, num_inference_steps = 4,
    num_images_per_prompt = 2, seed = 7}},
  {"ml_legacy", StableDiffusionInpaintPipeline, "tiny-sd-a",
   {prompt = "a red door", num_inference_steps = 4, seed = 8}},
  {"ml_xl", StableDiffusionXLInpaintPipeline, "tiny-sdxl-inpaint",
   {prompt = "a lighthouse", num_inference_steps = 3, seed = 9}},
} do
  local mp = m[2].from_pretrained(models .. m[3])
  mp:set_progress_bar_config{disable = true}
  local args = check.case_args({image = Image.open(mref .. "picture.png"),
                                mask_image = Image.open(mref .. "mask.png"), height = 48,
                                width = 64, output_type = "np",
                                masked_image_latents = torch.load_npy(mref .. m[1] .. "_given.npy")},
                               m[4])
  local e = check.rel_err(mp(args).images, torch.load_npy(mref .. m[1] .. ".npy"), m[1])
  check.truthy(e < 2e-3, m[1] .. " relative error " .. e)
  print(string.format("%-18s max difference %.3g", m[1], e))
end
check.raises("masked_image_latents: latents (batch, 4, height/2, width/2) expected", function()
  run(pipe, c, {masked_image_latents = torch.zeros{1, 3, 16, 24}})
end)
print("ok")

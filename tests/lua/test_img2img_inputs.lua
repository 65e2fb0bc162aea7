-- What img2img takes as `image`, against diffusers 0.27.2 (tests/reference/img2img_inputs,
-- made by scripts/reference/make_img2img_input_cases.py with the same arguments as CASES
-- below): lists of pictures, pictures of other sizes, sizes the UNet cannot halve evenly,
-- torch tensors in [0, 1] and [-1, 1], numpy arrays (B, H, W, 3), latents as the image, an
-- RGBA picture.
-- Tolerance 2e-3 max abs on the np output, as the other whole runs.
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local ref = root .. "/reference/img2img_inputs/"
local TOL = 2e-3

-- {name, arguments, image (picture names or a tensor's name), scheduler, seed or seeds}
local CASES = {
  {"list2", {prompt = {"a cat", "a dog"}, strength = 0.8, num_inference_steps = 6},
   {"first", "second"}, "PNDMScheduler", 1},
  {"list2_n2", {prompt = {"a cat", "a dog"}, strength = 0.7, num_images_per_prompt = 2, num_inference_steps = 5},
   {"first", "second"}, "DDIMScheduler", 2},
  {"list2_gens", {prompt = {"a cat", "a dog"}, strength = 0.8, num_inference_steps = 6},
   {"first", "second"}, "EulerAncestralDiscreteScheduler", {3, 4}},
  {"one_for_two_n2", {prompt = {"a cat", "a dog"}, strength = 0.75, num_images_per_prompt = 2,
                      num_inference_steps = 4}, {"second"}, "DDIMScheduler", 4},
  {"sizes", {prompt = {"a cat", "a dog"}, strength = 0.8, num_inference_steps = 5},
   {"first", "small"}, "EulerDiscreteScheduler", 5},
  {"odd_size", {prompt = "a sketch", strength = 0.6, num_inference_steps = 5}, {"odd"}, "PNDMScheduler", 6},
  {"three_gens2", {prompt = "a sketch", strength = 0.8, num_images_per_prompt = 2, num_inference_steps = 5},
   {"first", "second", "third"}, "EulerAncestralDiscreteScheduler", {7, 8}},
  {"pt01", {prompt = "a sketch", strength = 0.8, num_inference_steps = 5}, "pt01", "EulerDiscreteScheduler", 9},
  {"pt_neg", {prompt = "a sketch", strength = 0.8, num_inference_steps = 6}, "pt_neg",
   "DPMSolverMultistepScheduler", 10},
  {"pt_resize", {prompt = "a sketch", strength = 0.7, num_inference_steps = 5}, "pt_resize", "DDIMScheduler", 11},
  {"np_nhwc", {prompt = {"a cat", "a dog"}, strength = 0.8, num_inference_steps = 5}, "np_nhwc",
   "PNDMScheduler", 12},
  {"latents", {prompt = "a sketch", strength = 0.6, num_inference_steps = 6}, "latents", "DDIMScheduler", 13},
  -- RGBA: diffusers keeps the 4 channels and takes them as latents (the output is the
  -- VAE's factor times the picture's size)
  {"rgba", {prompt = "a sketch", strength = 0.7, num_inference_steps = 5}, {"rgba"}, "EulerDiscreteScheduler", 14},
}

local pictures = {}
for _, name in ipairs {"first", "second", "small", "odd", "third", "rgba"} do
  pictures[name] = Image.open(ref .. name .. ".png")
end

local function generator(seed)
  if type(seed) ~= "table" then return torch.Generator():manual_seed(seed) end
  local list = {}
  for i, s in ipairs(seed) do list[i] = torch.Generator():manual_seed(s) end
  return list
end

for _, model in ipairs {"tiny-sd-a", "tiny-sd-b"} do
  local pipe = StableDiffusionImg2ImgPipeline.from_pretrained(root .. "/models/" .. model)
  for _, case in ipairs(CASES) do
    local name, args, image, sched, seed = table.unpack(case)
    pipe.scheduler = _G[sched].from_config(pipe.scheduler.config)
    local call = {output_type = "np", generator = generator(seed)}
    for k, v in pairs(args) do call[k] = v end
    if type(image) == "table" then
      call.image = {}
      for i, n in ipairs(image) do call.image[i] = pictures[n] end
    else
      call.image = torch.load_npy(ref .. image .. "_image.npy")
    end
    local got = pipe(call).images
    local want = torch.load_npy(ref .. model .. "_" .. name .. "_images.npy")
    for i = 1, #want.shape do check.eq(got.shape[i], want.shape[i], name .. " shape[" .. i .. "]") end
    local diff = (got - want):abs():max():item()
    check.truthy(diff == diff and diff < TOL, string.format("%s %s: max abs diff %.3g", model, name, diff))
    print(string.format("%s %-16s max abs diff %.2e", model, name, diff))
  end
end

-- Bad pictures are clear errors, and the pipeline goes on.
local pipe = StableDiffusionImg2ImgPipeline.from_pretrained(root .. "/models/tiny-sd-a")
local function run(image, extra)
  local call = {prompt = "x", image = image, num_inference_steps = 2, output_type = "np"}
  for k, v in pairs(extra or {}) do call[k] = v end
  return pipe(call).images
end
check.raises("Cannot duplicate `image` of batch size 2 to 3 text prompts",
             function() run({pictures.first, pictures.second}, {prompt = {"a", "b", "c"}}) end)
check.raises("image: 2 pictures for a batch of 1",
             function() run({pictures.first, pictures.second}) end)
check.raises("option 'image': entry 2 is a number, not an Image", function() run({pictures.first, 3}) end)
check.raises("option 'image': an empty list", function() run({}) end)
check.raises("option 'image': a tensor of 3 or 4 dimensions expected, got 2",
             function() run(torch.zeros(64, 64)) end)
check.raises("option 'image': pictures (batch, 3, height, width)",
             function() run(torch.zeros(1, 5, 64, 64)) end)
check.raises("the image is 2x2; it must be at least 4x4", function() run(torch.zeros(1, 3, 2, 2)) end)
-- A picture without the batch dimension, either layout.
local chw = torch.load_npy(ref .. "pt01_image.npy")[1]
check.eq(run(chw).shape[2], 64, "(3, H, W)")
check.eq(run(chw:permute(2, 3, 1)).shape[2], 64, "(H, W, 3)")
check.eq(run(pictures.first).shape[1], 1, "usable after the errors")
-- height and width, as txt2img code passes them: not used (diffusers' img2img ignores
-- them too), the same pictures at the image's size.
local plain = run(pictures.first, {generator = torch.Generator():manual_seed(3)})
local sized = run(pictures.first, {height = 128, width = 32, generator = torch.Generator():manual_seed(3)})
check.eq(sized.shape[2], plain.shape[2], "height ignored")
check.eq(sized.shape[3], plain.shape[3], "width ignored")
check.eq((sized - plain):abs():max():item(), 0, "the same pictures with height and width")
check.raises("option 'height': integer expected, got string", function() run(pictures.first, {height = "x"}) end)
print("ok")

-- StableDiffusionAdapterPipeline and StableDiffusionXLAdapterPipeline against diffusers 0.27.2
-- (tests/reference/t2i_adapter, made by scripts/reference/make_t2i_adapter_cases.py, on
-- tiny-sd-a and tiny-sdxl with the tiny T2I-Adapters): the run's size from the sketch, a
-- scale, one picture per prompt, two images per prompt unguided, a MultiAdapter (an RGB and
-- an "L" adapter, a scale each), SDXL's adapter_conditioning_factor. Each run's pictures
-- within 1e-4 of diffusers'; then the components and the mistakes a notebook makes.
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local ref = root .. "/reference/t2i_adapter/"
local PROMPT = "a sketch of a house by a lake"

local function run(pipe, name, opts)
  local o = {prompt = PROMPT, num_inference_steps = 4, output_type = "np",
             generator = torch.Generator():manual_seed(5)}
  for k, v in pairs(opts) do o[k] = v end
  local images = pipe(o).images
  local want = torch.load_npy(ref .. name .. ".npy")
  for i = 1, 4 do check.eq(images.shape[i], want.shape[i], name .. " shape[" .. i .. "]") end
  local d = (images - want):abs():max():item()
  check.truthy(d == d and d < 1e-4, string.format("%s: max difference %.3g", name, d))
  print(string.format("%-18s max difference %.2e", name, d))
  return images
end

local adapter = T2IAdapter.from_pretrained(root .. "/models/tiny-t2i-adapter")
local adapter_b = T2IAdapter.from_pretrained(root .. "/models/tiny-t2i-adapter-b")
local sketch = Image.open(ref .. "sketch.png")
local sketch2 = Image.open(ref .. "sketch2.png")

local pipe = StableDiffusionAdapterPipeline.from_pretrained(root .. "/models/tiny-sd-a",
                                                            {adapter = adapter, safety_checker = false})
pipe:set_progress_bar_config{disable = true}
check.truthy(pipe.adapter == adapter, "pipe.adapter is the adapter given")
check.truthy(pipe.components.adapter == adapter, "components.adapter")
run(pipe, "pipe_sd", {image = sketch, adapter_conditioning_scale = 0.8})
run(pipe, "pipe_sd_two", {prompt = {PROMPT, "a castle"}, image = {sketch, sketch2},
                          negative_prompt = {"blurry", "dark"}})
run(pipe, "pipe_sd_unguided", {image = sketch, guidance_scale = 1.0, num_images_per_prompt = 2})
-- a tensor is taken as it is: the sketch as _preprocess_adapter_image makes it at 64x48 (the
-- reference's adapter input) gives the picture the sketch itself gives at that size
do
  local function small(image)
    return pipe{prompt = PROMPT, image = image, num_inference_steps = 2, output_type = "np",
                generator = torch.Generator():manual_seed(1)}.images
  end
  local d = (small(torch.load_npy(ref .. "full_in.npy")) -
             pipe{prompt = PROMPT, image = sketch, height = 64, width = 48, num_inference_steps = 2,
                  output_type = "np", generator = torch.Generator():manual_seed(1)}.images)
              :abs():max():item()
  check.eq(d, 0, "a tensor as the adapter's picture")
end

-- a MultiAdapter, from a list: the features weighted and added up
local comps = pipe.components
comps.adapter = {adapter, adapter_b}
local multi = StableDiffusionAdapterPipeline(comps)
multi:set_progress_bar_config{disable = true}
check.truthy(tostring(multi.adapter):find("MultiAdapter of 2"), "a list makes a MultiAdapter")
run(multi, "pipe_sd_multi", {image = {sketch, sketch:convert("L")},
                             adapter_conditioning_scale = {0.7, 0.4}})

local xl = StableDiffusionXLAdapterPipeline.from_pretrained(root .. "/models/tiny-sdxl", {
  adapter = T2IAdapter.from_pretrained(root .. "/models/tiny-t2i-adapter-xl")})
xl:set_progress_bar_config{disable = true}
run(xl, "pipe_xl", {image = sketch, adapter_conditioning_factor = 0.5, guidance_scale = 5.0})

-- mistakes: no adapter, the picture missing, an RGB picture for an "L" adapter, a
-- MultiAdapter without a picture per adapter, adapters that downscale differently
local ok, err = pcall(StableDiffusionAdapterPipeline.from_pretrained, root .. "/models/tiny-sd-a")
check.truthy(not ok and tostring(err):find("needs a T2IAdapter"), "no adapter: " .. tostring(err))
ok, err = pcall(pipe, {prompt = PROMPT, num_inference_steps = 1})
check.truthy(not ok and tostring(err):find("picture is missing"), "no image: " .. tostring(err))
ok, err = pcall(multi, {prompt = PROMPT, num_inference_steps = 1, image = {sketch, sketch}})
check.truthy(not ok and tostring(err):find("takes pictures of 1 channels, the image has 3"),
             "an RGB picture for an L adapter: " .. tostring(err))
ok, err = pcall(multi, {prompt = PROMPT, num_inference_steps = 1, image = sketch})
check.truthy(not ok and tostring(err):find("MultiAdapter is enabled, but `image` is not a list"),
             "one picture for a MultiAdapter: " .. tostring(err))
ok, err = pcall(MultiAdapter, {adapter, T2IAdapter.from_pretrained(root .. "/models/tiny-t2i-adapter-xl")})
check.truthy(not ok and tostring(err):find("same downscaling behavior"),
             "adapters that downscale differently: " .. tostring(err))
ok, err = pcall(StableDiffusionPipeline.from_pretrained, root .. "/models/tiny-sd-a", {adapter = adapter})
check.truthy(not ok and tostring(err):find("a T2I%-Adapter runs in StableDiffusionAdapterPipeline"),
             "an adapter given to txt2img: " .. tostring(err))
print("ok")

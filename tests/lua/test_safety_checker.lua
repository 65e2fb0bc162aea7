-- The safety checker as diffusers 0.27.2 runs it (tests/reference/safety_checker and
-- tests/models/tiny-sd-sc, made by scripts/reference/make_safety_checker_cases.py): a
-- pipeline whose model_index.json names a StableDiffusionSafetyChecker and a
-- CLIPImageProcessor loads and runs them after the VAE; flagged pictures come back black
-- and nsfw_content_detected says which. Runs (txt2img, 2 prompts at 96x80, the seed
-- notebook's img2img with 3 images) within 2e-3 as the other whole runs, the flags equal;
-- every output type; safety_checker = false and pipe.safety_checker = nil; from_pipe and
-- components; pipe.feature_extractor(...) and pipe.safety_checker{...} called on their own;
-- the errors.
local check = require "check"

local src = os.getenv("SDREPL_SOURCE_DIR") or "."
local ref = src .. "/tests/reference/safety_checker/"
local MODEL = src .. "/tests/models/tiny-sd-sc"
-- the reference's cases (its manifest.json) and the flags diffusers gave
local manifest = {cases = {
  {name = "t2i_n3", pipeline = "t2i", prompt = "a red barn in a field", num_images_per_prompt = 3,
   num_inference_steps = 3, height = 64, width = 64, seed = 11, flags = {true, true, true}},
  {name = "t2i_2x_96x80", pipeline = "t2i",
   prompt = {"a red barn in a field", "an astronaut riding a horse"}, num_inference_steps = 3,
   height = 96, width = 80, seed = 5, flags = {false, false}},
  {name = "i2i_n3", pipeline = "i2i", prompt = "an astronaut riding a horse", strength = 0.8,
   num_images_per_prompt = 3, num_inference_steps = 5, seed = 1024, flags = {true, false, true}},
}}

local function load(cls, opts)
  local pipe = (cls or StableDiffusionPipeline).from_pretrained(MODEL, opts)
  pipe:set_progress_bar_config{disable = true}
  return pipe
end

local function args(case, extra)
  local a = {prompt = case.prompt, num_inference_steps = case.num_inference_steps,
             num_images_per_prompt = case.num_images_per_prompt, height = case.height,
             width = case.width, strength = case.strength, output_type = "np",
             generator = torch.Generator():manual_seed(case.seed)}
  if case.pipeline == "i2i" then a.image = Image.open(ref .. "i2i_init.png") end
  for k, v in pairs(extra or {}) do a[k] = v end
  return a
end

local function same(got, name, what)
  local d = (got - torch.load_npy(ref .. name .. ".npy")):abs():max():item()
  check.truthy(d == d and d < 2e-3, string.format("%s: max difference %.3g", what or name, d))
  return d
end

local t2i, i2i = load(), load(StableDiffusionImg2ImgPipeline)
check.truthy(tostring(t2i.safety_checker):find("StableDiffusionSafetyChecker"), "a checker")
check.truthy(t2i.safety_checker == t2i.safety_checker, "the same object each time")
check.eq(t2i.feature_extractor.crop_size.height, 32, "crop_size")
check.eq(t2i.feature_extractor.size.shortest_edge, 32, "size")
check.eq(t2i.safety_checker.config.vision_config.hidden_act, "quick_gelu",
         "vision_config_dict wins over vision_config")
check.truthy(t2i.components.safety_checker == t2i.safety_checker, "components")

-- the reference runs: pictures and flags
local cases = {}
for _, case in ipairs(manifest.cases) do
  cases[case.name] = case
  local pipe = case.pipeline == "i2i" and i2i or t2i
  local out = pipe(args(case))
  local d = same(out.images, case.name)
  check.eq(#out.nsfw_content_detected, #case.flags, case.name .. " flags")
  for i, f in ipairs(case.flags) do
    check.eq(out.nsfw_content_detected[i], f, case.name .. " flag " .. i)
    if f then check.eq(out.images[i]:abs():max():item(), 0, case.name .. " black " .. i) end
  end
  print(string.format("%-13s max difference %.2e, flags %s", case.name, d,
                      table.concat((function()
                        local s = {}
                        for i, f in ipairs(out.nsfw_content_detected) do s[i] = tostring(f) end
                        return s
                      end)(), " ")))
end

-- the other output types: a flagged picture is black in each; return_dict = false gives
-- (images, has_nsfw_concept)
local mixed = cases.i2i_n3 -- flags true, false, true
local pil = i2i(args(mixed, {output_type = "pil"}))
local np = torch.load_npy(ref .. "i2i_n3.npy")
for i = 1, 3 do
  local want = mixed.flags[i] and 0 or math.floor(np[i][5][7][2]:item() * 255 + 0.5)
  check.eq(pil.images[i]:getpixel{6, 4}[2], want, "pil pixel " .. i)
end
local pt = i2i(args(mixed, {output_type = "pt"}))
check.eq(pt.images[1]:abs():max():item(), 0, "pt: the flagged one is zeros")
check.truthy(pt.images[2]:abs():max():item() > 0, "pt: the other is not")
local tuple = i2i(args(mixed, {return_dict = false}))
check.eq(tuple[2][1], true, "return_dict = false: has_nsfw_concept second")
check.eq(tuple[2][2], false, "return_dict = false: has_nsfw_concept second")
local latent = i2i(args(mixed, {output_type = "latent"}))
check.eq(latent.nsfw_content_detected, nil, "latents are not checked")

-- the stages on their own: the feature extractor on the pictures, then the checker
local none = load(StableDiffusionPipeline, {safety_checker = false})
check.eq(none.safety_checker, nil, "safety_checker = false: none")
local plain = none(args(cases.t2i_n3))
check.eq(plain.nsfw_content_detected, nil, "no flags without a checker")
same(plain.images, "t2i_n3_unchecked", "without the checker")
local pictures = none(args(cases.t2i_n3, {output_type = "pil"})).images
local pv = t2i.feature_extractor(pictures, {return_tensors = "pt"}).pixel_values
-- our pictures are diffusers' within 2e-3, so a few pixels may round to the next level
-- (tests/unit/test_safety_checker.c checks the extractor exactly on diffusers' own pictures)
local diff = (pv - torch.load_npy(ref .. "t2i_n3_pixel_values.npy")):abs()
local level = 1 / 255 / 0.26130258 + 1e-5
check.truthy(diff:max():item() <= level, "pixel_values: " .. diff:max():item())
check.truthy(diff:mean():item() < level * 0.01, "pixel_values: under 1% of them a level off")
local x = torch.ones(3, 3, 8, 8)
local images, flags = t2i.safety_checker{images = x, clip_input = pv}
check.truthy(rawequal(images, x), "the images given back")
for i = 1, 3 do
  check.eq(flags[i], cases.t2i_n3.flags[i], "call flag " .. i)
  check.eq(x[i]:abs():max():item(), cases.t2i_n3.flags[i] and 0 or 1, "zeroed in place " .. i)
end
local _, flags2 = t2i.safety_checker(pv) -- forward(clip_input, images) by position
check.eq(flags2[1], true, "positional clip_input")

-- from_pipe shares the checker; pipe.safety_checker = nil turns it off on that pipeline
local other = AutoPipelineForImage2Image.from_pipe(t2i)
other:set_progress_bar_config{disable = true}
check.truthy(other.safety_checker ~= nil, "from_pipe keeps the checker")
t2i.safety_checker = nil
check.eq(t2i.safety_checker, nil, "set to nil")
same(t2i(args(cases.t2i_n3)).images, "t2i_n3_unchecked", "after pipe.safety_checker = nil")
check.eq(other(args(mixed)).nsfw_content_detected[1], true, "the other pipeline still checks")
-- components: the models' pipeline's own checker, or none
local built = StableDiffusionImg2ImgPipeline(i2i.components)
built:set_progress_bar_config{disable = true}
check.eq(built(args(mixed)).nsfw_content_detected[3], true, "built from components")
local comps = i2i.components
comps.safety_checker = false
local unguarded = StableDiffusionImg2ImgPipeline(comps)
check.eq(unguarded.safety_checker, nil, "components without the checker")
check.eq(i2i.safety_checker ~= nil, true, "the source keeps its own")

-- errors
check.raises("option 'safety_checker'", function() load(nil, {safety_checker = true}) end)
check.raises("can only be set to nil", function() i2i.safety_checker = 1 end)
check.raises("component 'safety_checker'", function()
  local c = i2i.components
  c.safety_checker = other.feature_extractor
  return StableDiffusionPipeline(c)
end)
local tmp = check.tmpdir()
local function model_copy(index_from, index_to, remove)
  os.execute(string.format("rm -rf '%s/m' && cp -r '%s' '%s/m'", tmp, MODEL, tmp))
  if remove then os.execute(string.format("rm -r '%s/m/%s'", tmp, remove)) end
  local path = tmp .. "/m/model_index.json"
  local text = assert(io.open(path)):read("a")
  local f = assert(io.open(path, "w"))
  f:write((text:gsub(index_from, index_to)))
  f:close()
  return tmp .. "/m"
end
check.raises("preprocessor_config.json", function()
  StableDiffusionPipeline.from_pretrained(model_copy("", "", "feature_extractor"))
end)
local no_fe = model_copy('"transformers",%s*"CLIPImageProcessor"', "null, null")
check.raises("define a feature extractor", function() StableDiffusionPipeline.from_pretrained(no_fe) end)
check.truthy(StableDiffusionPipeline.from_pretrained(no_fe, {safety_checker = false}),
             "loads without the checker when declined")
check.raises("safety_checker", function()
  StableDiffusionPipeline.from_pretrained(model_copy("", "", "safety_checker"))
end)
local other_class = model_copy("StableDiffusionSafetyChecker", "FlaxSafetyChecker")
check.raises("FlaxSafetyChecker is not supported", function()
  StableDiffusionPipeline.from_pretrained(other_class)
end)
print("ok")

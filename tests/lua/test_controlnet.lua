-- StableDiffusionControlNetPipeline against diffusers 0.27.2 (tests/reference/controlnet and
-- tests/models/tiny-controlnet-*, made by scripts/reference/make_controlnet_cases.py): the
-- size taken from the control picture, guess mode with guidance, control_guidance_start/end,
-- two ControlNets (MultiControlNetModel) with their own scales and step ranges, a batch of
-- control pictures, a control tensor, a net with pooled conditions and the "bgr" order, PNDM,
-- DDIM and Euler, StableDiffusionControlNetImg2ImgPipeline and ...InpaintPipeline (4- and
-- 9-channel UNets). Images within 2e-3 as the
-- other whole runs (they agree to about 1e-5; DDIM's to 3e-4, as without a ControlNet).
-- Then ControlNetModel's own call, the UNet given its residuals, the ways to the pipeline,
-- and the errors.
local check = require "check"

local src = os.getenv("SDREPL_SOURCE_DIR") or "."
local ref = src .. "/tests/reference/controlnet/"
local models = src .. "/tests/models/"

-- the reference's cases (its manifest.json)
local cases = {
  {"cn_size_from_image", "tiny-sd-a", {"tiny-controlnet-a"}, nil, {"sketch96x64"},
   {prompt = "a cat on a bench", num_inference_steps = 4, seed = 3}},
  {"cn_guess_ddim", "tiny-sd-a", {"tiny-controlnet-a"}, "ddim", {"sketch64"},
   {prompt = {"a cat on a bench", "a red door"}, negative_prompt = {"blurry", "dark"},
    num_images_per_prompt = 2, guess_mode = true, controlnet_conditioning_scale = 0.8,
    num_inference_steps = 5, seeds = {1, 2, 3, 4}}},
  {"cn_start_end_euler", "tiny-sd-a", {"tiny-controlnet-a"}, "euler", {"sketch80x72"},
   {prompt = "a lighthouse", control_guidance_start = 0.2, control_guidance_end = 0.7,
    height = 64, width = 64, num_inference_steps = 6, seed = 5}},
  {"cn_multi", "tiny-sd-a", {"tiny-controlnet-a", "tiny-controlnet-a2"}, nil,
   {"sketch64", "rings64"},
   {prompt = "a cat on a bench", controlnet_conditioning_scale = {1.0, 0.6},
    control_guidance_start = {0.0, 0.3}, control_guidance_end = {1.0, 0.8},
    num_inference_steps = 5, seed = 7}},
  {"cn_batch_images", "tiny-sd-a", {"tiny-controlnet-a"}, nil, {{"sketch64", "rings64"}},
   {prompt = {"a cat on a bench", "a red door"}, num_images_per_prompt = 2,
    guidance_scale = 5.0, num_inference_steps = 3, seed = 9}},
  {"cn_b_pooled_bgr", "tiny-sd-b", {"tiny-controlnet-b"}, nil, {"sketch32"},
   {prompt = "a lighthouse", guidance_scale = 1.0, controlnet_conditioning_scale = 1.5,
    num_inference_steps = 4, seed = 11}},
  {"cn_b_pooled_cfg", "tiny-sd-b", {"tiny-controlnet-b"}, "ddim", {"sketch32"},
   {prompt = "a lighthouse", num_inference_steps = 4, seed = 12}},
}
local schedulers = {ddim = DDIMScheduler, euler = EulerDiscreteScheduler}

local function picture(name) return Image.open(ref .. name .. ".png") end

local nets = {}
local function net(name)
  nets[name] = nets[name] or ControlNetModel.from_pretrained(models .. name)
  return nets[name]
end

local function load(model, names, sched)
  local cns = {}
  for i, n in ipairs(names) do cns[i] = net(n) end
  local pipe = StableDiffusionControlNetPipeline.from_pretrained(
    models .. model, {controlnet = #cns == 1 and cns[1] or cns})
  if sched then pipe.scheduler = schedulers[sched].from_config(pipe.scheduler.config) end
  pipe:set_progress_bar_config{disable = true}
  return pipe
end

local function images_of(spec)
  local out = {}
  for i, s in ipairs(spec) do
    if type(s) == "table" then
      out[i] = {}
      for j, n in ipairs(s) do out[i][j] = picture(n) end
    else
      out[i] = picture(s)
    end
  end
  return #out == 1 and out[1] or out
end

-- a case's call: its arguments over `args`, seed(s) made generators, then `extra`
local function call(pipe, args, given, extra) return pipe(check.case_args(args, given, extra)) end

local function run(pipe, c, extra)
  return call(pipe, {image = images_of(c[5]), output_type = "np"}, c[6], extra)
end

local function same(images, name, what)
  local d = (images - torch.load_npy(ref .. name .. ".npy")):abs():max():item()
  check.truthy(d == d and d < 2e-3, string.format("%s: max difference %.3g", what or name, d))
  return d
end

local byname = {}
for _, c in ipairs(cases) do
  byname[c[1]] = c
  local d = same(run(load(c[2], c[3], c[4]), c).images, c[1])
  print(string.format("%-20s max difference %.2e", c[1], d))
end

-- the ControlNet changes the picture (the references are not the plain txt2img's)
do
  local c = byname.cn_size_from_image
  local plain = StableDiffusionPipeline.from_pretrained(models .. "tiny-sd-a")
  plain:set_progress_bar_config{disable = true}
  local out = plain{prompt = c[6].prompt, height = 64, width = 96, num_inference_steps = 4,
                    output_type = "np", generator = torch.Generator():manual_seed(3)}
  local d = (out.images - torch.load_npy(ref .. c[1] .. ".npy")):abs():max():item()
  check.truthy(d > 0.05, "the ControlNet's residuals change the picture: " .. d)
end

-- the control picture as a tensor (1, 3, H, W) in [0, 1], resized as F.interpolate's nearest
do
  local pipe = load("tiny-sd-a", {"tiny-controlnet-a"})
  local out = pipe{prompt = "a cat on a bench", image = torch.load_npy(ref .. "tensor_image.npy"),
                   height = 64, width = 64, num_inference_steps = 4, output_type = "np",
                   generator = torch.Generator():manual_seed(21)}
  same(out.images, "cn_tensor", "control tensor")
end

-- ControlNetModel on its own, and the UNet given its residuals
for _, n in ipairs{"tiny-controlnet-a", "tiny-controlnet-b"} do
  local base = n == "tiny-controlnet-a" and "tiny-sd-a" or "tiny-sd-b"
  local p = ref .. "call_" .. n
  local x, e, cond = torch.load_npy(p .. "_sample.npy"), torch.load_npy(p .. "_ehs.npy"),
                     torch.load_npy(p .. "_cond.npy")
  local out = net(n)(x, 501, {encoder_hidden_states = e, controlnet_cond = cond,
                              conditioning_scale = 0.7, guess_mode = true})
  local worst = 0
  for i, d in ipairs(out.down_block_res_samples) do
    worst = math.max(worst, (d - torch.load_npy(p .. "_guess_down" .. (i - 1) .. ".npy")):abs():max():item())
  end
  worst = math.max(worst, (out.mid_block_res_sample - torch.load_npy(p .. "_guess_mid.npy")):abs():max():item())
  check.truthy(worst < 1e-4, n .. ": residuals, max difference " .. worst)
  local unet = UNet2DConditionModel.from_pretrained(models .. base .. "/unet")
  local pred = unet(x, 501, {encoder_hidden_states = e,
                             down_block_additional_residuals = out.down_block_res_samples,
                             mid_block_additional_residual = out.mid_block_res_sample}).sample
  local d = (pred - torch.load_npy(p .. "_guess_unet.npy")):abs():max():item()
  check.truthy(d < 1e-4, n .. ": the UNet given them, max difference " .. d)
  check.eq(out[2], out.mid_block_res_sample, "ControlNetOutput as a tuple")
end
check.eq(net("tiny-controlnet-b").config.controlnet_conditioning_channel_order, "bgr", "config")

-- the other ways to the pipeline: components, AutoPipelineForText2Image, MultiControlNetModel
do
  local c = byname.cn_size_from_image
  local t2i = StableDiffusionPipeline.from_pretrained(models .. "tiny-sd-a")
  local comps = t2i.components
  comps.controlnet = net("tiny-controlnet-a")
  local built = StableDiffusionControlNetPipeline(comps)
  built:set_progress_bar_config{disable = true}
  same(run(built, c).images, c[1], "built from components")
  check.eq(built.components.controlnet, net("tiny-controlnet-a"), "components.controlnet")
  local auto = AutoPipelineForText2Image.from_pretrained(models .. "tiny-sd-a",
                                                         {controlnet = net("tiny-controlnet-a")})
  check.truthy(tostring(auto):find("StableDiffusionControlNetPipeline"), "AutoPipeline's class")
  auto:set_progress_bar_config{disable = true}
  same(run(auto, c).images, c[1], "AutoPipelineForText2Image")
  local m = byname.cn_multi
  local multi = StableDiffusionControlNetPipeline.from_pretrained(models .. "tiny-sd-a", {
    controlnet = MultiControlNetModel{net("tiny-controlnet-a"), net("tiny-controlnet-a2")}})
  multi:set_progress_bar_config{disable = true}
  same(run(multi, m).images, m[1], "MultiControlNetModel")
  check.eq(#multi.controlnet.nets, 2, "pipe.controlnet.nets")
  check.eq(multi.control_image_processor.config.do_normalize, false, "control_image_processor")
end

-- StableDiffusionControlNetImg2ImgPipeline: image (where to start, made RGB) and
-- control_image; strength and controlnet_conditioning_scale default to 0.8; height and width
-- resize both pictures
local i2i_cases = {
  {"cni_defaults", {"tiny-controlnet-a"}, nil, "sketch64", {"rings64"},
   {prompt = "a cat on a bench", num_inference_steps = 5, seed = 13}},
  {"cni_resized_guess_euler", {"tiny-controlnet-a"}, "euler", "sketch80x72", {"sketch96x64"},
   {prompt = {"a cat on a bench", "a red door"}, num_images_per_prompt = 2, guess_mode = true,
    height = 64, width = 64, strength = 0.6, num_inference_steps = 6, seeds = {1, 2, 3, 4}}},
  {"cni_multi", {"tiny-controlnet-a", "tiny-controlnet-a2"}, nil, "sketch64",
   {"sketch64", "rings64"},
   {prompt = "a lighthouse", controlnet_conditioning_scale = {1.0, 0.5},
    control_guidance_start = {0.0, 0.25}, control_guidance_end = {0.75, 1.0}, strength = 0.75,
    num_inference_steps = 8, seed = 14}},
  {"cni_rgba", {"tiny-controlnet-a"}, nil, "rgba64", {"sketch64"},
   {prompt = "a red door", num_inference_steps = 4, seed = 15}},
}
local function load_i2i(names, sched)
  local cns = {}
  for i, n in ipairs(names) do cns[i] = net(n) end
  local pipe = StableDiffusionControlNetImg2ImgPipeline.from_pretrained(
    models .. "tiny-sd-a", {controlnet = #cns == 1 and cns[1] or cns})
  if sched then pipe.scheduler = schedulers[sched].from_config(pipe.scheduler.config) end
  pipe:set_progress_bar_config{disable = true}
  return pipe
end
local function run_i2i(pipe, c, extra)
  local controls = {}
  for i, n in ipairs(c[5]) do controls[i] = picture(n) end
  return call(pipe, {image = picture(c[4]), output_type = "np",
                     control_image = #controls == 1 and controls[1] or controls}, c[6], extra)
end
for _, c in ipairs(i2i_cases) do
  byname[c[1]] = c
  local d = same(run_i2i(load_i2i(c[2], c[3]), c).images, c[1])
  print(string.format("%-24s max difference %.2e", c[1], d))
end
do
  local c = byname.cni_defaults
  local auto = AutoPipelineForImage2Image.from_pretrained(models .. "tiny-sd-a",
                                                          {controlnet = net("tiny-controlnet-a")})
  check.truthy(tostring(auto):find("StableDiffusionControlNetImg2ImgPipeline"), "AutoPipeline i2i")
  auto:set_progress_bar_config{disable = true}
  same(run_i2i(auto, c).images, c[1], "AutoPipelineForImage2Image")
  local comps = StableDiffusionPipeline.from_pretrained(models .. "tiny-sd-a").components
  comps.controlnet = net("tiny-controlnet-a")
  local built = StableDiffusionControlNetImg2ImgPipeline(comps)
  built:set_progress_bar_config{disable = true}
  same(run_i2i(built, c).images, c[1], "img2img built from components")
  check.raises("option 'control_image'", function() run_i2i(built, c, {control_image = false}) end)
  check.raises("strength", function() run_i2i(built, c, {strength = 1.5}) end)
end

-- StableDiffusionControlNetInpaintPipeline: image, mask_image and control_image; strength 1 and
-- a conditioning scale of 0.5 by default, the picture's size; with a 9-channel UNet the nets
-- see the latents only
local inpaint_cases = {
  {"cnin4_defaults", "tiny-sd-a", "tiny-controlnet-a", nil, "sketch64", "box64", "rings64",
   {prompt = "a cat on a bench", num_inference_steps = 4, seed = 16}},
  {"cnin4_resized_guess_euler", "tiny-sd-a", "tiny-controlnet-a", "euler", "sketch80x72",
   "grey80x72", "sketch96x64",
   {prompt = {"a cat on a bench", "a red door"}, guess_mode = true, height = 64, width = 64,
    strength = 0.75, num_inference_steps = 5, seeds = {5, 6}}},
  {"cnin9_pooled", "tiny-sd-inpaint", "tiny-controlnet-b", nil, "sketch64", "box64", "sketch64",
   {prompt = "a lighthouse", num_inference_steps = 4, seed = 17}},
}
for _, c in ipairs(inpaint_cases) do
  local pipe = StableDiffusionControlNetInpaintPipeline.from_pretrained(models .. c[2],
                                                                        {controlnet = net(c[3])})
  if c[4] then pipe.scheduler = schedulers[c[4]].from_config(pipe.scheduler.config) end
  pipe:set_progress_bar_config{disable = true}
  local out = call(pipe, {image = picture(c[5]), mask_image = picture(c[6]),
                          control_image = picture(c[7]), output_type = "np"}, c[8])
  local d = same(out.images, c[1])
  print(string.format("%-26s max difference %.2e", c[1], d))
end
do
  local auto = AutoPipelineForInpainting.from_pretrained(models .. "tiny-sd-a",
                                                         {controlnet = net("tiny-controlnet-a")})
  check.truthy(tostring(auto):find("StableDiffusionControlNetInpaintPipeline"),
               "AutoPipelineForInpainting with a controlnet")
  check.eq(auto.mask_processor.config.do_binarize, true, "its mask_processor")
end

-- pipe.controlnet = another: the next call uses it (the multi-net run from a one-net pipeline)
do
  local m = byname.cn_multi
  local pipe = load("tiny-sd-a", {"tiny-controlnet-a"})
  pipe.controlnet = {net("tiny-controlnet-a"), net("tiny-controlnet-a2")}
  check.eq(#pipe.controlnet.nets, 2, "pipe.controlnet set to a list")
  same(run(pipe, m).images, m[1], "pipe.controlnet = {a, a2}")
  check.raises("ControlNetModel", function() pipe.controlnet = "canny" end)
  local plain = StableDiffusionPipeline.from_pretrained(models .. "tiny-sd-a")
  check.raises("takes no ControlNet", function() plain.controlnet = net("tiny-controlnet-a") end)
end

-- errors, in diffusers' words where it has them
local pipe = load("tiny-sd-a", {"tiny-controlnet-a"})
local c = byname.cn_size_from_image
check.raises("option 'controlnet'", function()
  StableDiffusionControlNetPipeline.from_pretrained(models .. "tiny-sd-a")
end)
check.raises("ControlNetModel", function()
  StableDiffusionControlNetPipeline.from_pretrained(models .. "tiny-sd-a", {controlnet = "canny"})
end)
check.raises("StableDiffusionControlNetPipeline", function()
  StableDiffusionPipeline.from_pretrained(models .. "tiny-sd-a", {controlnet = net("tiny-controlnet-a")})
end)
check.raises("another UNet", function()
  local wrong = StableDiffusionControlNetPipeline.from_pretrained(
    models .. "tiny-sd-b", {controlnet = net("tiny-controlnet-a")})
  run(wrong, c)
end)
check.raises("option 'image'", function() pipe{prompt = "x", num_inference_steps = 1} end)
check.raises("option 'image'", function() run(pipe, c, {image = "edges.png"}) end)
check.raises("must be type `float`", function()
  run(pipe, c, {controlnet_conditioning_scale = {1.0}})
end)
check.raises("cannot be larger or equal", function()
  run(pipe, c, {control_guidance_start = 0.5, control_guidance_end = 0.5})
end)
check.raises("can't be larger than 1.0", function() run(pipe, c, {control_guidance_end = 1.5}) end)
check.raises("same number of elements", function()
  run(pipe, c, {control_guidance_start = {0.1, 0.2}, control_guidance_end = {0.9}})
end)
check.raises("image batch size must be same as prompt batch size", function()
  run(pipe, c, {image = {picture("sketch64"), picture("sketch64"), picture("sketch64")}})
end)
check.raises("the ControlNet takes 3", function() run(pipe, c, {image = torch.rand(1, 1, 64, 64)}) end)
check.raises("option 'latents'", function() run(pipe, c, {latents = torch.randn(1, 4, 16, 16)}) end)
local multi = load("tiny-sd-a", {"tiny-controlnet-a", "tiny-controlnet-a2"})
check.raises("must be type `list`", function() run(multi, c, {image = picture("sketch64")}) end)
check.raises("same length as the number of controlnets", function()
  run(multi, c, {image = {picture("sketch64")}})
end)
check.raises("controlnets available", function()
  run(multi, c, {image = {picture("sketch64"), picture("rings64")},
                 control_guidance_start = {0.1, 0.2, 0.3}, control_guidance_end = {0.8, 0.8, 0.9}})
end)
check.raises("unexpected", function() run(pipe, c, {strength = 0.5}) end)
-- the session goes on: the pipeline still runs
same(run(pipe, c).images, c[1], "after the errors")

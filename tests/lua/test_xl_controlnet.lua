-- StableDiffusionXLControlNetPipeline against diffusers 0.27.2 (tests/reference/xl_controlnet
-- and tests/models/tiny-sdxl-controlnet, made by scripts/reference/make_xl_controlnet_cases.py):
-- the net's own call with added_cond_kwargs (its "text_time" embedding), the size taken from
-- the control picture, guess mode with a batch and negative micro-conditioning (the net sees
-- the second half of the time-id rows, as diffusers lays them out), control_guidance_start/end
-- with Euler ancestral, two nets, no guidance with denoising_end; the img2img pipeline's
-- defaults, resizing with guess mode, two nets; the inpainting pipeline's defaults and resizing
-- with guess mode and guidance_rescale. Images within 2e-3 as the
-- other whole runs; the residuals within 1e-5 relative. Then the ways to the pipeline and the
-- errors.
local check = require "check"

local src = os.getenv("SDREPL_SOURCE_DIR") or "."
local ref = src .. "/tests/reference/xl_controlnet/"
local models = src .. "/tests/models/"

local function picture(name) return Image.open(ref .. name .. ".png") end
local net = ControlNetModel.from_pretrained(models .. "tiny-sdxl-controlnet")

-- the net on its own: ControlNetModel(x, t, {..., added_cond_kwargs = {...}})
do
  local function L(n) return torch.load_npy(ref .. "direct_" .. n .. ".npy") end
  local out = net(L"x", 500, {encoder_hidden_states = L"ctx", controlnet_cond = L"cond",
                              conditioning_scale = 0.7,
                              added_cond_kwargs = {text_embeds = L"text_embeds",
                                                   time_ids = L"time_ids"}})
  local worst = 0
  for i, d in ipairs(out.down_block_res_samples) do
    local want = L("down_" .. (i - 1))
    worst = math.max(worst, (d - want):abs():max():item() / want:abs():max():item())
  end
  local want = L"mid"
  worst = math.max(worst, (out.mid_block_res_sample - want):abs():max():item() /
                          want:abs():max():item())
  check.truthy(worst < 1e-5, "the residuals: relative error " .. worst)
  print(string.format("%-26s relative error %.2e", "direct call", worst))
  check.raises("takes added_cond_kwargs text_embeds and time_ids", function()
    net(L"x", 500, {encoder_hidden_states = L"ctx", controlnet_cond = L"cond"})
  end)
end

-- name, nets (the one net this many times), scheduler, control pictures, call arguments
local cases = {
  {"xlcn_size_from_image", 1, nil, {"sketch96x64"},
   {prompt = "a cat on a bench", num_inference_steps = 3, seed = 1}},
  {"xlcn_guess_batch", 1, nil, {"sketch64"},
   {prompt = {"a cat on a bench", "a red door"}, negative_prompt = {"blurry", "dark"},
    num_images_per_prompt = 2, guess_mode = true, controlnet_conditioning_scale = 0.8,
    negative_original_size = {32, 32}, negative_target_size = {48, 48},
    num_inference_steps = 3, seeds = {2, 3, 4, 5}}},
  {"xlcn_start_end_ancestral", 1, "ancestral", {"sketch80x72"},
   {prompt = "a lighthouse", control_guidance_start = 0.2, control_guidance_end = 0.7,
    height = 64, width = 64, original_size = {128, 96}, num_inference_steps = 5, seed = 6}},
  {"xlcn_multi", 2, nil, {"sketch64", "rings64"},
   {prompt = "a cat on a bench", controlnet_conditioning_scale = {1.0, 0.6},
    control_guidance_start = {0.0, 0.3}, control_guidance_end = {1.0, 0.8},
    num_inference_steps = 4, seed = 7}},
  {"xlcn_unguided_end", 1, nil, {"rings64"},
   {prompt = "a lighthouse", guidance_scale = 1.0, denoising_end = 0.7,
    num_inference_steps = 4, output_type = "latent", seed = 8}},
}

local function load(nnets)
  local nets = {}
  for i = 1, nnets do nets[i] = net end
  local pipe = StableDiffusionXLControlNetPipeline.from_pretrained(
    models .. "tiny-sdxl", {controlnet = nnets == 1 and net or nets})
  pipe:set_progress_bar_config{disable = true}
  return pipe
end

for _, c in ipairs(cases) do
  local pipe = load(c[2])
  if c[3] then pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config) end
  local images = {}
  for i, n in ipairs(c[4]) do images[i] = picture(n) end
  local out = pipe(check.case_args({image = #images == 1 and images[1] or images,
                                    output_type = "np"}, c[5])).images
  local d = (out - torch.load_npy(ref .. c[1] .. ".npy")):abs():max():item()
  check.truthy(d == d and d < 2e-3, string.format("%s: max difference %.3g", c[1], d))
  print(string.format("%-26s max difference %.2e", c[1], d))
end

-- StableDiffusionXLControlNetImg2ImgPipeline: name, nets, picture, control pictures, arguments
local i2i_cases = {
  {"xlcni_defaults", 1, "sketch64", {"rings64"},
   {prompt = "a cat on a bench", num_inference_steps = 4, seed = 11}},
  {"xlcni_resized_guess", 1, "sketch80x72", {"sketch96x64"},
   {prompt = {"a cat on a bench", "a red door"}, num_images_per_prompt = 2, guess_mode = true,
    height = 64, width = 64, strength = 0.6, negative_original_size = {32, 32},
    num_inference_steps = 5, seed = 12}},
  {"xlcni_multi", 2, "sketch64", {"sketch64", "rings64"},
   {prompt = "a lighthouse", controlnet_conditioning_scale = {1.0, 0.5},
    control_guidance_start = {0.0, 0.25}, control_guidance_end = {0.75, 1.0}, strength = 0.75,
    num_inference_steps = 6, seed = 16}},
}
for _, c in ipairs(i2i_cases) do
  local nets = {}
  for i = 1, c[2] do nets[i] = net end
  local pipe = StableDiffusionXLControlNetImg2ImgPipeline.from_pretrained(
    models .. "tiny-sdxl", {controlnet = c[2] == 1 and net or nets})
  pipe:set_progress_bar_config{disable = true}
  local control = {}
  for i, n in ipairs(c[4]) do control[i] = picture(n) end
  local out = pipe(check.case_args({image = picture(c[3]), output_type = "np",
                                    control_image = #control == 1 and control[1] or control},
                                   c[5])).images
  local d = (out - torch.load_npy(ref .. c[1] .. ".npy")):abs():max():item()
  check.truthy(d == d and d < 2e-3, string.format("%s: max difference %.3g", c[1], d))
  print(string.format("%-26s max difference %.2e", c[1], d))
end

-- StableDiffusionXLControlNetInpaintPipeline: name, picture, mask, control picture, arguments
local inpaint_cases = {
  {"xlcnin4_defaults", "sketch64", "box64", "rings64",
   {prompt = "a cat on a bench", num_inference_steps = 4, seed = 21}},
  {"xlcnin4_resized_guess", "sketch80x72", "grey80x72", "sketch96x64",
   {prompt = {"a cat on a bench", "a red door"}, guess_mode = true, height = 64, width = 64,
    strength = 0.75, guidance_rescale = 0.5, num_inference_steps = 5, seed = 22}},
  {"xlcnin4_start", "sketch64", "box64", "rings64",
   {prompt = "a lighthouse", denoising_start = 0.6, num_inference_steps = 5, seed = 23}},
}
for _, c in ipairs(inpaint_cases) do
  local pipe = StableDiffusionXLControlNetInpaintPipeline.from_pretrained(
    models .. "tiny-sdxl", {controlnet = net})
  pipe:set_progress_bar_config{disable = true}
  local out = pipe(check.case_args({image = picture(c[2]), mask_image = picture(c[3]),
                                    control_image = picture(c[4]), output_type = "np"},
                                   c[5])).images
  local d = (out - torch.load_npy(ref .. c[1] .. ".npy")):abs():max():item()
  check.truthy(d == d and d < 2e-3, string.format("%s: max difference %.3g", c[1], d))
  print(string.format("%-26s max difference %.2e", c[1], d))
end

-- the ways to the pipeline: AutoPipelineForText2Image with a controlnet, and the class from
-- another SDXL pipeline's components
do
  local auto = AutoPipelineForText2Image.from_pretrained(models .. "tiny-sdxl", {controlnet = net})
  check.eq(tostring(getmetatable(auto).__name), "StableDiffusionXLControlNetPipeline",
           "AutoPipelineForText2Image with a controlnet")
  local base = StableDiffusionXLPipeline.from_pretrained(models .. "tiny-sdxl")
  local comps = base.components
  comps.controlnet = net
  local made = StableDiffusionXLControlNetPipeline(comps)
  made:set_progress_bar_config{disable = true}
  local c = cases[1]
  local out = made(check.case_args({image = picture("sketch96x64"), output_type = "np"}, c[5])).images
  local d = (out - torch.load_npy(ref .. c[1] .. ".npy")):abs():max():item()
  check.truthy(d < 2e-3, "from components: " .. d)
  local auto_i2i = AutoPipelineForImage2Image.from_pretrained(models .. "tiny-sdxl", {controlnet = net})
  check.eq(tostring(getmetatable(auto_i2i).__name), "StableDiffusionXLControlNetImg2ImgPipeline",
           "AutoPipelineForImage2Image with a controlnet")
  local auto_inpaint = AutoPipelineForInpainting.from_pretrained(models .. "tiny-sdxl",
                                                                 {controlnet = net})
  check.eq(tostring(getmetatable(auto_inpaint).__name), "StableDiffusionXLControlNetInpaintPipeline",
           "AutoPipelineForInpainting with a controlnet")
  -- from_pipe keeps a ControlNet pipeline's nets (the task's ControlNet class), as diffusers';
  -- controlnet = false leaves them out, controlnet = a net adds one
  local cn = StableDiffusionXLControlNetPipeline.from_pretrained(models .. "tiny-sdxl", {controlnet = net})
  local kept = AutoPipelineForImage2Image.from_pipe(cn)
  check.eq(tostring(getmetatable(kept).__name), "StableDiffusionXLControlNetImg2ImgPipeline",
           "from_pipe of a ControlNet pipeline")
  check.truthy(kept.controlnet == cn.controlnet, "from_pipe keeps the nets")
  kept:set_progress_bar_config{disable = true}
  local c = i2i_cases[1]
  local out = kept(check.case_args({image = picture(c[3]), control_image = picture(c[4][1]),
                                    output_type = "np"}, c[5])).images
  check.truthy((out - torch.load_npy(ref .. c[1] .. ".npy")):abs():max():item() < 2e-3,
               "the from_pipe pipeline paints the reference's picture")
  local dropped = AutoPipelineForImage2Image.from_pipe(cn, {controlnet = false})
  check.eq(tostring(getmetatable(dropped).__name), "StableDiffusionXLImg2ImgPipeline",
           "from_pipe with controlnet = false")
  check.eq(dropped.controlnet, nil, "no nets after controlnet = false")
  local sd = StableDiffusionPipeline.from_pretrained(models .. "tiny-sd-a")
  local added = AutoPipelineForText2Image.from_pipe(sd, {
    controlnet = ControlNetModel.from_pretrained(models .. "tiny-controlnet-a")})
  check.eq(tostring(getmetatable(added).__name), "StableDiffusionControlNetPipeline",
           "from_pipe with a controlnet")
  check.raises("AutoPipeline can't find a pipeline linked to LatentConsistencyModelPipeline", function()
    local lcm = LatentConsistencyModelPipeline.from_pretrained(models .. "tiny-lcm")
    AutoPipelineForText2Image.from_pipe(lcm, {controlnet = ControlNetModel.from_pretrained(
      models .. "tiny-controlnet-a")})
  end)
  -- tiny-sdxl-inpaint's UNet has one layer a block: a net of tiny-sdxl's two does not fit
  check.raises("was made for another UNet", function()
    StableDiffusionXLControlNetInpaintPipeline.from_pretrained(models .. "tiny-sdxl-inpaint",
      {controlnet = net}){prompt = "a cat", image = picture("sketch64"),
                          mask_image = picture("box64"), control_image = picture("rings64"),
                          num_inference_steps = 1}
  end)

  -- an SD 1.5 net on an SDXL UNet: said before anything runs
  check.raises("was made for another UNet", function()
    StableDiffusionXLControlNetPipeline.from_pretrained(models .. "tiny-sdxl",
      {controlnet = ControlNetModel.from_pretrained(models .. "tiny-controlnet-a")})
      {prompt = "a cat", image = picture("sketch64"), num_inference_steps = 1}
  end)
end
print("ok")
